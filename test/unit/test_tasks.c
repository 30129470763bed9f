/* SPDX-License-Identifier: MIT */
/* The analyzer's task table: overlap refusal, sample attribution, derived state. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dt_tuple.h"
#include "tasks.h"

static struct dt_task_spec spec(uint16_t sp, uint16_t dp, uint8_t proto)
{
	struct dt_task_spec s;

	memset(&s, 0, sizeof(s));
	dt_ipv4_parse("10.100.0.1", &s.tuple.saddr);
	dt_ipv4_parse("10.100.0.2", &s.tuple.daddr);
	s.tuple.sport = htons(sp);
	s.tuple.dport = htons(dp);
	s.tuple.proto = proto;
	s.tuple.vni = 100;
	return s;
}

static struct dt_tasks tasks;

static void setup(void)
{
	dt_tasks_init(&tasks);
}

static void teardown(void)
{
	dt_tasks_free(&tasks);
}

TestSuite(tasks, .init = setup, .fini = teardown);

Test(tasks, overlapping_tuples_are_refused_without_naming_the_other_task)
{
	struct dt_task_spec exact = spec(1000, 80, IPPROTO_TCP), any = spec(0, 0, IPPROTO_TCP);
	struct dt_task_spec other = spec(1001, 80, IPPROTO_TCP);
	struct dt_task *t;
	char err[256];

	cr_assert_eq(dt_tasks_create(&tasks, &exact, 1, &t, err, sizeof(err)), 0);
	cr_assert_eq(t->id, 1);
	cr_assert_eq(dt_tasks_create(&tasks, &exact, 1, &t, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "overlaps"), "%s", err);
	cr_assert_null(strstr(err, "task 1"), "%s", err);
	cr_assert_eq(dt_tasks_create(&tasks, &any, 1, &t, err, sizeof(err)), -EEXIST);
	cr_assert_eq(dt_tasks_create(&tasks, &other, 1, &t, err, sizeof(err)), 0);
	cr_assert_eq(t->id, 2);
	cr_assert_eq(tasks.gen, 2);
}

Test(tasks, invalid_tuple_is_refused)
{
	struct dt_task_spec half = spec(1000, 0, IPPROTO_TCP);
	struct dt_task *t;
	char err[256];

	cr_assert_eq(dt_tasks_create(&tasks, &half, 1, &t, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "does not name a flow"), "%s", err);
	cr_assert_eq(tasks.n, 0);
}

Test(tasks, samples_are_attributed_by_tuple_and_state_is_derived)
{
	struct dt_task_spec icmp = spec(0, 0, IPPROTO_ICMP);
	struct dt_wire_sample s;
	struct dt_task_info info;
	struct dt_control c;
	struct dt_task *t;
	char err[256];

	cr_assert_eq(dt_tasks_create(&tasks, &icmp, 1, &t, err, sizeof(err)), 0);
	dt_task_info_fill(t, 0, &info);
	cr_assert_eq(info.state, DT_TASK_READY);
	dt_task_info_fill(t, t->arm_gen, &info);
	cr_assert_eq(info.state, DT_TASK_ARMED);

	cr_assert_eq(dt_tasks_control(&tasks, &c), 0);
	cr_assert_eq(c.gen, tasks.gen);
	cr_assert_eq(c.n_arms, 1);
	cr_assert(c.arms[0].flags & DT_TASK_F_ANYPORT);
	dt_control_free(&c);

	memset(&s, 0, sizeof(s));
	s.hook = DT_HOOK_UPLINK_IN;
	s.tuple = spec(0, 0, IPPROTO_ICMP).tuple;
	s.tuple.sport = htons(4242); /* an echo identifier: anyport matches it */
	cr_assert_eq(dt_tasks_add_sample(&tasks, "h2", "ul0", &s), t);
	s.tuple.vni = 101;
	cr_assert_null(dt_tasks_add_sample(&tasks, "h2", "ul0", &s));
	cr_assert_eq(tasks.unmatched, 1);
	cr_assert_eq(t->n_obs, 1);
	cr_assert_str_eq(t->obs[0].node, "h2");
	dt_task_info_fill(t, 0, &info);
	cr_assert_eq(info.state, DT_TASK_RUNNING);
}
