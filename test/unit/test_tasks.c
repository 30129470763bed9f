/* SPDX-License-Identifier: MIT */
/* The analyzer's task table: directions and their keys, overlap refusal, id lookups. */
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

static struct dt_tasks *tasks;

static void setup(void)
{
	tasks = dt_tasks_new();
}

static void teardown(void)
{
	dt_tasks_free(tasks);
}

TestSuite(tasks, .init = setup, .fini = teardown);

/* Creates a task of tenant 0 and makes it READY (in the control set). */
static int create(const struct dt_task_spec *s, struct dt_task **t, char *err, size_t len)
{
	int rv = dt_tasks_create(tasks, s, 0, "acme", 1, t, err, len);

	if (rv == 0) {
		dt_task_ready(tasks, *t, 0);
	}
	return rv;
}

Test(tasks, overlapping_tuples_are_refused_without_naming_the_other_task)
{
	struct dt_task_spec exact = spec(1000, 80, IPPROTO_TCP), any = spec(0, 0, IPPROTO_TCP);
	struct dt_task_spec other = spec(1001, 80, IPPROTO_TCP);
	struct dt_task *t;
	char err[256];

	cr_assert_eq(create(&exact, &t, err, sizeof(err)), 0);
	cr_assert_eq(t->id, 1);
	cr_assert_eq(create(&exact, &t, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "overlaps"), "%s", err);
	cr_assert_null(strstr(err, "task 1"), "%s", err);
	cr_assert_eq(create(&any, &t, err, sizeof(err)), -EEXIST);
	cr_assert_eq(create(&other, &t, err, sizeof(err)), 0);
	cr_assert_eq(t->id, 2);
	cr_assert_eq(dt_tasks_gen(tasks), 2);
}

Test(tasks, invalid_tuple_is_refused)
{
	struct dt_task_spec half = spec(1000, 0, IPPROTO_TCP);
	struct dt_task *t;
	char err[256];

	cr_assert_eq(create(&half, &t, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "does not name a flow"), "%s", err);
	cr_assert_eq(dt_tasks_n_active(tasks), 0);
}

Test(tasks, control_set_has_one_arm_per_key)
{
	struct dt_task_spec both = spec(1000, 80, IPPROTO_TCP), req = spec(0, 0, IPPROTO_ICMP);
	struct dt_task_spec ping = spec(7, 0, IPPROTO_ICMP);
	struct dt_control c;
	struct dt_task *t;
	char err[256];

	both.flags = DT_TASK_DIR_BOTH;
	req.tuple.daddr = htonl(0x0a640003);
	ping.flags = DT_TASK_DIR_REPLY;
	ping.tuple.daddr = htonl(0x0a640004);
	cr_assert_eq(create(&both, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t->n_keys, 2);
	cr_assert_eq(create(&req, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t->n_keys, 1);
	cr_assert_eq(create(&ping, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(dt_tasks_control(tasks, &c), 0);
	cr_assert_eq(c.n_arms, 4);
	/* Task 1: its tuple, then the reverse flagged as a reply key. */
	cr_expect_eq(c.arms[0].task_id, 1);
	cr_expect_eq(c.arms[0].flags, 0);
	cr_expect_eq(c.arms[0].tuple.saddr, both.tuple.saddr);
	cr_expect_eq(c.arms[0].tuple.sport, htons(1000));
	cr_expect_eq(c.arms[1].task_id, 1);
	cr_expect_eq(c.arms[1].flags, DT_TASK_F_REPLY);
	cr_expect_eq(c.arms[1].tuple.saddr, both.tuple.daddr);
	cr_expect_eq(c.arms[1].tuple.daddr, both.tuple.saddr);
	cr_expect_eq(c.arms[1].tuple.sport, htons(80));
	cr_expect_eq(c.arms[1].tuple.dport, htons(1000));
	/* Task 2: request only, any port; no direction bits reach the data plane. */
	cr_expect_eq(c.arms[2].task_id, 2);
	cr_expect_eq(c.arms[2].flags, DT_TASK_F_ANYPORT);
	/* Task 3: replies of ping id 7 only: the echo reply carries the id as dport. */
	cr_expect_eq(c.arms[3].task_id, 3);
	cr_expect_eq(c.arms[3].flags, DT_TASK_F_REPLY);
	cr_expect_eq(c.arms[3].tuple.sport, 0);
	cr_expect_eq(c.arms[3].tuple.dport, htons(7));
	cr_expect_eq(c.arms[3].tuple.saddr, ping.tuple.daddr);
	dt_control_free(&c);
}

/* The error must not name another task: no id, no "task N". */
static void expect_anonymous(const char *err)
{
	cr_expect(strstr(err, "overlaps"), "%s", err);
	cr_expect_null(strstr(err, "task 1"), "%s", err);
	cr_expect_null(strstr(err, "task #"), "%s", err);
	cr_expect_null(strstr(err, "id 1 "), "%s", err);
}

Test(tasks, reply_keys_overlap_request_keys_of_other_tasks)
{
	struct dt_task_spec a = spec(1000, 80, IPPROTO_TCP);
	struct dt_task_spec back = spec(80, 1000, IPPROTO_TCP);
	struct dt_task *t;
	char err[256];

	a.flags = DT_TASK_DIR_BOTH;
	/* back names a's reply as its request. */
	back.tuple.saddr = a.tuple.daddr;
	back.tuple.daddr = a.tuple.saddr;
	cr_assert_eq(create(&a, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(create(&back, &t, err, sizeof(err)), -EEXIST);
	expect_anonymous(err);
	cr_expect_null(strstr(err, "reply direction"), "%s", err);
	/* back's reply key is a's request key. */
	back.flags = DT_TASK_DIR_REPLY;
	cr_assert_eq(create(&back, &t, err, sizeof(err)), -EEXIST);
	expect_anonymous(err);
	cr_expect(strstr(err, "the reply direction 10.100.0.1:1000 -> 10.100.0.2:80 tcp"), "%s",
		  err);
	cr_expect_eq(dt_tasks_n_active(tasks), 1);
	cr_expect_eq(dt_tasks_gen(tasks), 1, "a refused task changes no control set");
}

Test(tasks, reply_key_of_a_new_task_meets_an_any_port_request)
{
	struct dt_task_spec any = spec(0, 0, IPPROTO_UDP), b = spec(53, 5353, IPPROTO_UDP);
	struct dt_task *t;
	char err[256];

	any.tuple.saddr = htonl(0x0a640002);
	any.tuple.daddr = htonl(0x0a640001);
	cr_assert_eq(create(&any, &t, err, sizeof(err)), 0, "%s", err);
	/* b's request 10.100.0.1 -> 10.100.0.2 is free; its reply is inside any's flow. */
	cr_assert_eq(create(&b, &t, err, sizeof(err)), 0, "%s", err);
	b.tuple.sport = htons(54);
	b.flags = DT_TASK_DIR_BOTH;
	cr_assert_eq(create(&b, &t, err, sizeof(err)), -EEXIST);
	expect_anonymous(err);
	cr_expect(dt_spec_overlap(&dt_tasks_active(tasks, 0)->spec,
				  &dt_tasks_active(tasks, 1)->spec) == false);
}

Test(tasks, a_flow_that_is_its_own_reply_traces_one_direction)
{
	struct dt_task_spec self = spec(0, 0, IPPROTO_UDP);
	struct dt_task *t;
	char err[256];

	self.tuple.daddr = self.tuple.saddr;
	self.flags = DT_TASK_DIR_BOTH;
	cr_assert_eq(create(&self, &t, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "its own reply"), "%s", err);
	self.flags = DT_TASK_DIR_REPLY;
	cr_assert_eq(create(&self, &t, err, sizeof(err)), 0, "%s", err);
}

Test(tasks, unknown_flags_are_refused)
{
	struct dt_task_spec s = spec(1000, 80, IPPROTO_TCP);
	struct dt_task *t;
	char err[256];

	s.flags = DT_TASK_F_REPLY; /* a data-plane flag, not a spec flag */
	cr_assert_eq(create(&s, &t, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "unknown task flags 0x2"), "%s", err);
	cr_expect_eq(dt_tasks_n_active(tasks), 0);
}

Test(tasks, find_by_id)
{
	struct dt_task *t;
	char err[256];
	uint16_t i;

	for (i = 1; i <= 40; i++) {
		struct dt_task_spec s = spec(i, 80, IPPROTO_TCP);

		cr_assert_eq(create(&s, &t, err, sizeof(err)), 0, "%s", err);
	}
	for (i = 1; i <= 40; i++) {
		cr_assert_not_null(dt_tasks_find(tasks, i));
		cr_expect_eq(dt_tasks_find(tasks, i)->id, i);
		cr_expect_eq(dt_tasks_find(tasks, i)->spec.tuple.sport, htons(i));
	}
	cr_expect_null(dt_tasks_find(tasks, 0));
	cr_expect_null(dt_tasks_find(tasks, 41));
}

/* A key learned from a translation: in the control set, indexed, and gone with its task. */
Test(tasks, learned_keys_are_armed_until_the_task_ends)
{
	struct dt_task_spec s = spec(0, 0, IPPROTO_ICMP), other = spec(0, 0, IPPROTO_UDP);
	struct dt_tuple back = {0};
	struct dt_control c;
	struct dt_task *t, *u;
	char err[256];
	int i;

	s.flags = DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH;
	cr_assert_eq(create(&s, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t->n_keys, 2);
	/* The reply as a backend behind a VIP sends it: 10.100.0.13 -> the router 10.100.0.254. */
	dt_ipv4_parse("10.100.0.13", &back.saddr);
	dt_ipv4_parse("10.100.0.254", &back.daddr);
	back.dport = htons(7);
	back.proto = IPPROTO_ICMP;
	back.vni = 100;
	uint64_t gen = dt_tasks_gen(tasks);

	cr_assert_eq(dt_tasks_add_learned(tasks, t, &back, DT_DIR_REPLY), 0);
	cr_expect_eq(t->n_keys, 3);
	cr_expect(t->keys[2].learned);
	cr_expect_eq(t->keys[2].dir, DT_DIR_REPLY);
	cr_expect_eq(dt_tasks_gen(tasks), gen + 1, "a new control generation");
	cr_assert_eq(dt_tasks_add_learned(tasks, t, &back, DT_DIR_REPLY), 0, "once only");
	cr_expect_eq(t->n_keys, 3);
	cr_expect_eq(dt_tasks_gen(tasks), gen + 1);
	cr_assert_eq(dt_tasks_control(tasks, &c), 0);
	cr_assert_eq(c.n_arms, 3);
	cr_expect_eq(c.arms[2].task_id, t->id);
	cr_expect_eq(c.arms[2].flags, DT_TASK_F_REPLY);
	cr_expect_eq(c.arms[2].tuple.saddr, back.saddr);
	dt_control_free(&c);

	/* Another task cannot take that flow, nor add it. */
	other.tuple = back;
	other.tuple.proto = IPPROTO_ICMP;
	other.flags = DT_TASK_F_ANYPORT;
	other.tuple.dport = 0;
	cr_expect_eq(create(&other, &u, err, sizeof(err)), -EEXIST);
	other = spec(5, 6, IPPROTO_UDP);
	cr_assert_eq(create(&other, &u, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(dt_tasks_add_learned(tasks, u, &back, DT_DIR_REPLY), -EEXIST);

	/* A task learns at most DT_TASK_MAX_LEARNED keys; the rest are counted. */
	for (i = 0; i < DT_TASK_MAX_LEARNED + 2; i++) {
		back.sport = htons((uint16_t)(100 + i));
		back.proto = IPPROTO_UDP;
		dt_tasks_add_learned(tasks, t, &back, DT_DIR_REPLY);
	}
	cr_expect_eq(t->n_keys, DT_TASK_MAX_KEYS);
	cr_expect_eq(t->learned_full, 3);

	/* The task ends: every key leaves the control set. */
	dt_task_end(tasks, t, DT_TASK_CANCELLED, DT_TS_CANCELLED, 5, "cancelled");
	cr_assert_eq(dt_tasks_control(tasks, &c), 0);
	cr_expect_eq(c.n_arms, 1, "only the other task's key");
	cr_expect_eq(c.arms[0].task_id, u->id);
	dt_control_free(&c);
	back.sport = htons(100);
	other = spec(0, 0, IPPROTO_UDP);
	other.tuple = back;
	cr_expect_eq(create(&other, &u, err, sizeof(err)), 0, "its learned keys are free again: %s",
		     err);
}
