/* SPDX-License-Identifier: MIT */
/*
 * The task lifecycle (tasks.h): every transition of the state machine with the handshake
 * against node states, uniqueness across tenants, limits, hash lookups at scale, and the
 * analyzer's tenant/limit configuration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "analyzer.h"
#include "dt_tuple.h"
#include "tasks.h"

#define S 1000000000ull

static struct dt_tasks *tasks;
static const struct dt_lifecycle_cfg lc = {
	.host_grace_ms = 2000, .arm_timeout_ms = 5000, .settle_ms = 1000};

static void setup(void)
{
	tasks = dt_tasks_new();
}

static void teardown(void)
{
	dt_tasks_free(tasks);
}

TestSuite(lifecycle, .init = setup, .fini = teardown);

static struct dt_task_spec spec(const char *src, const char *dst, uint16_t sp, uint16_t dp)
{
	struct dt_task_spec s;

	memset(&s, 0, sizeof(s));
	dt_ipv4_parse(src, &s.tuple.saddr);
	dt_ipv4_parse(dst, &s.tuple.daddr);
	s.tuple.sport = htons(sp);
	s.tuple.dport = htons(dp);
	s.tuple.proto = sp || dp ? IPPROTO_TCP : IPPROTO_ICMP;
	s.tuple.vni = 100;
	s.budget = 2;
	s.duration_s = 60;
	s.rate_pps = 10;
	return s;
}

/* Creates at t=0 and makes it READY at monotonic 0. */
static struct dt_task *ready(struct dt_task_spec s, uint32_t tenant)
{
	struct dt_task *t;
	char err[256];

	cr_assert_eq(dt_tasks_create(tasks, &s, tenant, tenant ? "beta" : "acme", 0, &t, err,
				     sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(t->state, DT_TASK_NEW);
	dt_task_ready(tasks, t, 0);
	cr_assert_eq(t->state, DT_TASK_READY);
	return t;
}

/* Node states: h1 hosts 10.100.0.1, h2 hosts 10.100.0.2, gw hosts VNI 100's outside. */
static struct dt_endpoint ep1 = {100, 0}, ep2 = {100, 0}, epg = {100, 0};
static struct dt_node_state nodes[3];

static void node_states(uint64_t gen1, uint64_t gen2, uint64_t geng, uint32_t n)
{
	dt_ipv4_parse("10.100.0.1", &ep1.addr);
	dt_ipv4_parse("10.100.0.2", &ep2.addr);
	memset(nodes, 0, sizeof(nodes));
	snprintf(nodes[0].node, sizeof(nodes[0].node), "h1");
	nodes[0].ctl_gen = gen1;
	nodes[0].n_endpoints = 1;
	nodes[0].endpoints = &ep1;
	snprintf(nodes[1].node, sizeof(nodes[1].node), "h2");
	nodes[1].ctl_gen = gen2;
	nodes[1].n_endpoints = 1;
	nodes[1].endpoints = &ep2;
	snprintf(nodes[2].node, sizeof(nodes[2].node), "gw");
	nodes[2].ctl_gen = geng;
	nodes[2].n_endpoints = 1;
	nodes[2].endpoints = &epg;
	(void)n;
}

static bool settled_answer;
static int settled_asked, ended_calls;
static uint64_t settled_unsampled; /* as the last question gave it */

static bool settled(void *arg, struct dt_task *t, uint64_t unsampled)
{
	settled_asked++;
	settled_unsampled = unsampled;
	return settled_answer;
}

static void ended(void *arg, struct dt_task *t)
{
	ended_calls++;
}

static const struct dt_lifecycle_ops ops = {.settled = settled, .ended = ended};

/* One step with the first n node states. */
static size_t step(uint32_t n, uint64_t now_ns, uint64_t now_ms)
{
	struct dt_hosts h;
	size_t ended_n;

	cr_assert_eq(dt_hosts_build(&h, nodes, n), 0);
	ended_n = dt_tasks_step(tasks, &h, &lc, &ops, now_ns, now_ms);
	dt_hosts_free(&h);
	return ended_n;
}

static void add_obs(struct dt_task *t, uint8_t dir, bool first_hop)
{
	struct dt_obs o;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.hook = first_hop ? DT_HOOK_PORT_IN : DT_HOOK_UPLINK_IN;
	o.flags = first_hop ? DT_SAMPLE_F_FIRST_HOP : 0;
	cr_assert_eq(dt_task_add_obs(t, &o, NULL), 0);
}

static bool in_control(uint32_t id)
{
	struct dt_control c;
	bool found = false;

	cr_assert_eq(dt_tasks_control(tasks, &c), 0);
	for (uint32_t i = 0; i < c.n_arms; i++) {
		found |= c.arms[i].task_id == id;
	}
	dt_control_free(&c);
	return found;
}

Test(lifecycle, new_is_not_armed_until_ready)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;
	char err[256];
	uint64_t gen = dt_tasks_gen(tasks);

	cr_assert_eq(dt_tasks_create(tasks, &s, 0, "acme", 0, &t, err, sizeof(err)), 0);
	cr_expect_eq(t->state, DT_TASK_NEW);
	cr_expect_not(in_control(t->id), "no rule before READY");
	cr_expect_eq(dt_tasks_gen(tasks), gen, "creating alone does not move the control set");
	dt_task_ready(tasks, t, 0);
	cr_expect_eq(t->state, DT_TASK_READY);
	cr_expect(in_control(t->id));
	cr_expect_eq(t->arm_gen, dt_tasks_gen(tasks));
	cr_expect_gt(dt_tasks_gen(tasks), gen);
}

Test(lifecycle, ready_armed_running_done)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);
	struct dt_task_info info;
	struct dt_control c;

	/* h1 hosts the source but has applied an older set: still READY. */
	node_states(t->arm_gen - 1, 0, 0, 1);
	cr_expect_eq(step(1, 1 * S, 100), 0);
	cr_expect_eq(t->state, DT_TASK_READY);
	cr_expect(strstr(t->status_text, "h1"), "%s", t->status_text);
	/* h1 applied it: ARMED. */
	node_states(t->arm_gen, 0, 0, 1);
	cr_expect_eq(step(1, 2 * S, 200), 0);
	cr_expect_eq(t->state, DT_TASK_ARMED);
	cr_expect_eq(t->armed_ns, 2 * S);
	cr_expect(strstr(t->status_text, "armed at h1"), "%s", t->status_text);
	/* Its arm carries the limits. */
	cr_assert_eq(dt_tasks_control(tasks, &c), 0);
	cr_assert_eq(c.n_arms, 1);
	cr_expect_eq(c.arms[0].budget, 2);
	cr_expect_eq(c.arms[0].rate_pps, 10);
	dt_control_free(&c);
	/* First sample: RUNNING. */
	add_obs(t, DT_DIR_REQUEST, true);
	cr_expect_eq(step(1, 3 * S, 300), 0);
	cr_expect_eq(t->state, DT_TASK_RUNNING);
	/* Budget not reached: settled is not even asked. */
	settled_asked = 0;
	cr_expect_eq(step(1, 4 * S, 400), 0);
	cr_expect_eq(settled_asked, 0);
	/* Budget reached but a packet is in flight: not DONE yet. */
	add_obs(t, DT_DIR_REQUEST, true);
	add_obs(t, DT_DIR_REQUEST, false);
	settled_answer = false;
	cr_expect_eq(step(1, 5 * S, 500), 0);
	cr_expect_eq(settled_asked, 1);
	cr_expect_eq(t->state, DT_TASK_RUNNING);
	/* Judged: DONE, out of the control set. */
	settled_answer = true;
	ended_calls = 0;
	cr_expect_eq(step(1, 6 * S, 600), 1);
	cr_expect_eq(ended_calls, 1);
	cr_expect_eq(t->state, DT_TASK_DONE);
	cr_expect_eq(t->status, DT_TS_BUDGET_SPENT);
	cr_expect_eq(t->ended_ns, 6 * S);
	cr_expect_not(in_control(t->id));
	cr_expect_null(dt_tasks_find_active(tasks, t->id));
	cr_expect_eq(dt_tasks_find(tasks, t->id), t, "an ended task is still found by id");
	dt_task_info_fill(t, &info);
	cr_expect_eq(info.colored, 2);
	cr_expect_str_eq(info.tenant, "acme");
	cr_expect(strstr(info.status_text, "budget of 2"), "%s", info.status_text);
}

Test(lifecycle, done_needs_the_budget_in_every_traced_direction)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;

	s.flags = DT_TASK_DIR_BOTH;
	t = ready(s, 0);
	node_states(t->arm_gen, t->arm_gen, 0, 2);
	add_obs(t, DT_DIR_REQUEST, true);
	add_obs(t, DT_DIR_REQUEST, true);
	settled_answer = true;
	step(2, 1 * S, 100);
	cr_expect_eq(t->state, DT_TASK_RUNNING, "replies have not spent their budget");
	add_obs(t, DT_DIR_REPLY, true);
	add_obs(t, DT_DIR_REPLY, true);
	step(2, 2 * S, 200);
	cr_expect_eq(t->state, DT_TASK_DONE);
}

Test(lifecycle, a_sample_proves_arming_before_the_node_state_arrives)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	add_obs(t, DT_DIR_REQUEST, true);
	step(0, 1 * S, 100);
	cr_expect_eq(t->state, DT_TASK_RUNNING);
	cr_expect_eq(t->armed_ns, 1 * S);
}

Test(lifecycle, no_host_fails_after_the_grace_period)
{
	struct dt_task *t = ready(spec("10.100.0.9", "10.100.0.2", 0, 0), 0);

	node_states(100, 100, 100, 2); /* nobody hosts 10.100.0.9, and no gateway is live */
	cr_expect_eq(step(2, 1 * S, 1999), 0);
	cr_expect_eq(t->state, DT_TASK_READY, "still within the grace period");
	cr_expect(strstr(t->status_text, "waiting for a node that hosts 10.100.0.9"), "%s",
		  t->status_text);
	cr_expect_eq(step(2, 2 * S, 2000), 1);
	cr_expect_eq(t->state, DT_TASK_FAILED);
	cr_expect_eq(t->status, DT_TS_NO_HOST);
	cr_expect(strstr(t->status_text, "no live node hosts 10.100.0.9 in VNI 100"), "%s",
		  t->status_text);
	cr_expect_not(in_control(t->id));
}

Test(lifecycle, a_gateway_is_the_entry_of_replies_from_outside)
{
	struct dt_task_spec s = spec("10.100.0.1", "203.0.113.10", 0, 0);
	struct dt_task *t;

	s.flags = DT_TASK_DIR_BOTH;
	t = ready(s, 0);
	node_states(t->arm_gen, 0, t->arm_gen - 1, 3);
	step(3, 1 * S, 100);
	cr_expect_eq(t->state, DT_TASK_READY, "the gateway has not applied it");
	cr_expect(strstr(t->status_text, "gw"), "%s", t->status_text);
	node_states(t->arm_gen, 0, t->arm_gen, 3);
	step(3, 2 * S, 200);
	cr_expect_eq(t->state, DT_TASK_ARMED);
	cr_expect(strstr(t->status_text, "h1 (requests) and gw (replies)"), "%s", t->status_text);
}

Test(lifecycle, arm_timeout_names_the_node)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	node_states(t->arm_gen - 1, 0, 0, 1);
	cr_expect_eq(step(1, 1 * S, 4999), 0);
	cr_expect_eq(t->state, DT_TASK_READY);
	cr_expect_eq(step(1, 2 * S, 5000), 1);
	cr_expect_eq(t->state, DT_TASK_FAILED);
	cr_expect_eq(t->status, DT_TS_ARM_TIMEOUT);
	cr_expect(strstr(t->status_text, "node h1"), "%s", t->status_text);
	cr_expect(strstr(t->status_text, "within 5000 ms"), "%s", t->status_text);
}

Test(lifecycle, expired_by_duration_in_any_active_state)
{
	struct dt_task *r = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);
	struct dt_task *a = ready(spec("10.100.0.1", "10.100.0.3", 0, 0), 0);

	add_obs(a, DT_DIR_REQUEST, true);
	node_states(100, 100, 100, 1);
	step(1, 59 * S, 100);
	cr_expect_eq(a->state, DT_TASK_RUNNING);
	cr_expect_eq(step(1, 60 * S, 200), 2);
	cr_expect_eq(r->state, DT_TASK_EXPIRED);
	cr_expect_eq(r->status, DT_TS_DURATION);
	cr_expect_eq(a->state, DT_TASK_EXPIRED);
	cr_expect(strstr(a->status_text, "duration of 60 s"), "%s", a->status_text);
	cr_expect_eq(dt_tasks_n_active(tasks), 0);
	cr_expect_eq(dt_tasks_n_arms(tasks), 0);
}

Test(lifecycle, cancelled_leaves_the_control_set_and_frees_its_tuple)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t = ready(s, 0), *t2;
	uint64_t gen = dt_tasks_gen(tasks);
	char err[256];

	dt_task_end(tasks, t, DT_TASK_CANCELLED, DT_TS_CANCELLED, 5 * S, "cancelled by %s",
		    "its tenant");
	cr_expect_eq(t->state, DT_TASK_CANCELLED);
	cr_expect_eq(t->status, DT_TS_CANCELLED);
	cr_expect_eq(t->ended_ns, 5 * S);
	cr_expect_gt(dt_tasks_gen(tasks), gen);
	cr_expect_not(in_control(t->id));
	/* Ending again changes nothing. */
	dt_task_end(tasks, t, DT_TASK_FAILED, DT_TS_NO_HOST, 6 * S, "x");
	cr_expect_eq(t->state, DT_TASK_CANCELLED);
	/* The same six-tuple may be traced again. */
	cr_expect_eq(dt_tasks_create(tasks, &s, 0, "acme", 0, &t2, err, sizeof(err)), 0, "%s", err);
}

Test(lifecycle, overlap_across_tenants_is_refused_without_naming_the_other)
{
	struct dt_task_spec exact = spec("10.100.0.1", "10.100.0.2", 1000, 80);
	struct dt_task_spec any = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;
	char err[256];

	any.tuple.proto = IPPROTO_TCP;
	ready(exact, 0); /* acme's */
	cr_assert_eq(dt_tasks_create(tasks, &any, 1, "beta", 0, &t, err, sizeof(err)), -EEXIST);
	cr_expect(strstr(err, "overlaps a six-tuple traced by an active task"), "%s", err);
	cr_expect_null(strstr(err, "acme"), "%s", err);
	cr_expect_null(strstr(err, "task 1"), "%s", err);
	cr_expect_null(strstr(err, "tenant"), "%s", err);
	cr_expect_eq(dt_tasks_count_tenant(tasks, 1), 0);
	cr_expect_eq(dt_tasks_count_tenant(tasks, 0), 1);
}

Test(lifecycle, limits_defaults_and_maxima)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	char err[256] = "";

	s.budget = s.duration_s = s.rate_pps = 0;
	cr_assert_eq(dt_limits_apply(&dt_limits_defaults, &s, err, sizeof(err)), 0);
	cr_expect_eq(s.budget, 100);
	cr_expect_eq(s.duration_s, 60);
	cr_expect_eq(s.rate_pps, 100);

	s.budget = 100001;
	cr_expect_eq(dt_limits_apply(&dt_limits_defaults, &s, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "maximum of 100000 packets"), "%s", err);
	s.budget = 100000;
	s.duration_s = 3601;
	cr_expect_eq(dt_limits_apply(&dt_limits_defaults, &s, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "maximum of 3600 s"), "%s", err);
	s.duration_s = 3600;
	s.rate_pps = 10001;
	cr_expect_eq(dt_limits_apply(&dt_limits_defaults, &s, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "maximum of 10000 packets/s"), "%s", err);
	s.rate_pps = 10000;
	cr_expect_eq(dt_limits_apply(&dt_limits_defaults, &s, err, sizeof(err)), 0);
}

Test(lifecycle, hash_lookups_at_4096_tasks_with_8192_keys)
{
	struct dt_control c;
	char err[256];

	for (uint32_t i = 0; i < 4096; i++) {
		struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", (uint16_t)(1000 + i), 80);
		struct dt_task *t;

		s.flags = DT_TASK_DIR_BOTH;
		cr_assert_eq(dt_tasks_create(tasks, &s, i % 8, "t", 0, &t, err, sizeof(err)), 0,
			     "%u: %s", i, err);
		dt_task_ready(tasks, t, 0);
	}
	cr_expect_eq(dt_tasks_n_keys(tasks), 8192);
	cr_expect_eq(dt_tasks_n_arms(tasks), 8192);
	cr_assert_eq(dt_tasks_control(tasks, &c), 0);
	cr_expect_eq(c.n_arms, 8192);
	dt_control_free(&c);
	for (uint32_t id = 1; id <= 4096; id++) {
		cr_assert_not_null(dt_tasks_find(tasks, id));
		cr_assert_eq(dt_tasks_find(tasks, id)->id, id);
	}
	cr_expect_null(dt_tasks_find(tasks, 4097));
	/* Every tuple is taken, in both directions; a new port pair is not. */
	{
		struct dt_task_spec dup = spec("10.100.0.2", "10.100.0.1", 80, 3000);
		struct dt_task_spec fresh = spec("10.100.0.1", "10.100.0.2", 9999, 80);
		struct dt_task *t;

		cr_expect_eq(dt_tasks_create(tasks, &dup, 0, "t", 0, &t, err, sizeof(err)), -EEXIST,
			     "the reply key of task 2001 covers it");
		cr_expect_eq(dt_tasks_create(tasks, &fresh, 0, "t", 0, &t, err, sizeof(err)), 0);
	}
	/* Ending half of them removes their keys from the index. */
	for (uint32_t id = 1; id <= 4096; id += 2) {
		dt_task_end(tasks, dt_tasks_find(tasks, id), DT_TASK_CANCELLED, DT_TS_CANCELLED, 1,
			    "x");
	}
	cr_expect_eq(dt_tasks_n_keys(tasks), 4096 + 1);
	cr_expect_eq(dt_tasks_n_active(tasks), 2048 + 1);
	for (uint32_t id = 2; id <= 4096; id += 2) {
		cr_assert_eq(dt_tasks_find(tasks, id)->active_idx < dt_tasks_n_active(tasks), true);
		cr_assert_eq(dt_tasks_active(tasks, dt_tasks_find(tasks, id)->active_idx)->id, id);
	}
}

/* ------------------------------------------------------------------------------------ */
/* Configuration: tenants and limits */

static char cfg_path[64];

static const char *write_cfg(const char *text)
{
	FILE *f;
	int fd;

	strcpy(cfg_path, "/tmp/dt-test-lc-cfg-XXXXXX");
	fd = mkstemp(cfg_path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return cfg_path;
}

static int load(const char *text, struct dt_analyzer_cfg *cfg, char *err, size_t len)
{
	int rv = dt_analyzer_cfg_load(write_cfg(text), cfg, err, len);

	unlink(cfg_path);
	return rv;
}

#define T1 "{ name = \"acme\"; token = \"acme-0123456789abcdef\"; }"
#define T2 "{ name = \"beta\"; token = \"beta-0123456789abcdef\"; }"

Test(analyzer_config, tenants_are_required_and_checked)
{
	static struct dt_analyzer_cfg cfg;
	char err[DT_ERRBUF_MAX] = "";

	cr_expect_eq(load("window_ms = 100;\n", &cfg, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "'tenants' is required"), "%s", err);
	cr_assert_eq(load("tenants = ( " T1 ", " T2 " );\n", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.n_tenants, 2);
	cr_expect_str_eq(cfg.tenants[1].name, "beta");
	cr_expect_eq(load("tenants = ( " T1 ", " T1 " );\n", &cfg, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "given twice"), "%s", err);
	cr_expect_eq(load("tenants = ( " T1 ", { name = \"b\"; token = \"acme-0123456789abcdef\"; "
			  "} );\n",
			  &cfg, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "same token"), "%s", err);
	cr_expect_null(strstr(err, "acme-0123456789abcdef"), "never print a token: %s", err);
	cr_expect_eq(load("tenants = ( { name = \"a\"; token = \"short-secret\"; } );\n", &cfg, err,
			  sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, ":1: ") && strstr(err, "at least 16"), "%s", err);
	cr_expect_null(strstr(err, "short-secret"), "never print a token: %s", err);
	cr_expect_eq(load("tenants = ( { name = \"a\"; tokn = \"0123456789abcdefgh\"; } );\n", &cfg,
			  err, sizeof(err)),
		     -EINVAL);
}

Test(analyzer_config, tokens_authenticate_exactly)
{
	static struct dt_analyzer_cfg cfg;
	char err[DT_ERRBUF_MAX] = "";

	cr_assert_eq(load("tenants = ( " T1 ", " T2 " );\n", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(dt_tenant_auth(&cfg, "acme-0123456789abcdef"), 0);
	cr_expect_eq(dt_tenant_auth(&cfg, "beta-0123456789abcdef"), 1);
	cr_expect_eq(dt_tenant_auth(&cfg, ""), -1);
	cr_expect_eq(dt_tenant_auth(&cfg, "acme-0123456789abcde"), -1, "a prefix is not the token");
	cr_expect_eq(dt_tenant_auth(&cfg, "acme-0123456789abcdefX"), -1);
	cr_expect_eq(dt_tenant_auth(&cfg, "ACME-0123456789abcdef"), -1);
}

Test(analyzer_config, limits)
{
	static struct dt_analyzer_cfg cfg;
	char err[DT_ERRBUF_MAX] = "";

	cr_assert_eq(load("tenants = ( " T1 " );\n", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.limits.budget_default, 100);
	cr_expect_eq(cfg.limits.budget_max, 100000);
	cr_expect_eq(cfg.limits.duration_default_s, 60);
	cr_expect_eq(cfg.limits.duration_max_s, 3600);
	cr_expect_eq(cfg.limits.rate_default_pps, 100);
	cr_expect_eq(cfg.limits.rate_max_pps, 10000);
	cr_expect_eq(cfg.limits.tasks_max_per_tenant, 4096);
	cr_expect_eq(cfg.lifecycle.arm_timeout_ms, 5000);
	cr_assert_eq(load("tenants = ( " T1 " );\nlimits = { budget_default = 10; budget_max = 20; "
			  "rate_max_pps = 500; rate_default_pps = 50; };\narm_timeout_ms = 800;\n",
			  &cfg, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(cfg.limits.budget_default, 10);
	cr_expect_eq(cfg.limits.budget_max, 20);
	cr_expect_eq(cfg.limits.rate_max_pps, 500);
	cr_expect_eq(cfg.lifecycle.arm_timeout_ms, 800);
	cr_expect_eq(load("tenants = ( " T1 " );\nlimits = { budget_default = 30; budget_max = 20; "
			  "};\n",
			  &cfg, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "budget_default (30) is above budget_max (20)"), "%s", err);
	cr_expect_eq(
		load("tenants = ( " T1 " );\nlimits = { budget = 30; };\n", &cfg, err, sizeof(err)),
		-EINVAL);
	cr_expect(strstr(err, "budget"), "%s", err);
	cr_expect_eq(load("tenants = ( " T1 " );\nlimits = { rate_max_pps = 0; };\n", &cfg, err,
			  sizeof(err)),
		     -EINVAL);
}

Test(lifecycle, replies_from_an_address_nobody_hosts_are_armed_when_learned)
{
	/* A VIP: no node hosts 10.99.0.100 and no gateway is live; the replies start at the
	 * backend the router translates it to, which the analyzer learns later. */
	struct dt_task_spec s = spec("10.100.0.1", "10.99.0.100", 0, 0);
	struct dt_task *t;

	s.flags = DT_TASK_DIR_BOTH;
	t = ready(s, 0);
	node_states(t->arm_gen, t->arm_gen, 0, 2);
	cr_expect_eq(step(2, 1 * S, 5000), 0);
	cr_expect_eq(t->state, DT_TASK_ARMED, "%s", t->status_text);
	cr_expect(strstr(t->status_text, "armed at h1 (requests); replies start where a "
					 "translation on the way sends the requests"),
		  "%s", t->status_text);
	cr_expect(in_control(t->id));

	/* Without a host for its requests, it still fails. */
	s = spec("10.100.0.9", "10.99.0.100", 0, 0);
	s.flags = DT_TASK_DIR_BOTH;
	t = ready(s, 0);
	cr_expect_eq(step(2, 2 * S, 10000), 1);
	cr_expect_eq(t->status, DT_TS_NO_HOST);
}

Test(lifecycle, a_budget_counts_datagrams_not_fragments)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 40000, 6000), 0);
	struct dt_obs o;

	memset(&o, 0, sizeof(o));
	o.dir = DT_DIR_REQUEST;
	o.hook = DT_HOOK_PORT_IN;
	o.flags = DT_SAMPLE_F_FIRST_HOP;
	o.frag = DT_FRAG_MF; /* the first fragment */
	cr_assert_eq(dt_task_add_obs(t, &o, NULL), 0);
	o.frag = DT_FRAG_MF | 185;
	cr_assert_eq(dt_task_add_obs(t, &o, NULL), 0);
	o.frag = 370;
	cr_assert_eq(dt_task_add_obs(t, &o, NULL), 0);
	cr_expect_eq(t->colored[DT_DIR_REQUEST], 1, "one datagram of three fragments");
}

/* Node node's data plane reports the colored count of t's key of direction dir. */
static struct dt_key_colored counts[3][DT_DIR_MAX];

static void node_counts(unsigned int node, const struct dt_task *t, uint8_t dir, uint64_t n)
{
	counts[node][dir] = (struct dt_key_colored){
		.task_id = t->id, .flags = dir == DT_DIR_REPLY ? DT_TASK_F_REPLY : 0, .colored = n};
	nodes[node].colored = counts[node];
	nodes[node].n_colored = DT_DIR_MAX;
}

Test(lifecycle, done_when_the_data_plane_colored_the_budget_and_samples_were_lost)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;
	struct dt_task_info info;

	s.budget = 5;
	s.duration_s = 10;
	t = ready(s, 0);
	node_states(t->arm_gen, t->arm_gen, 0, 2);
	/* h1's data plane colored the budget; 2 of the 5 first-hop samples arrived. */
	node_counts(0, t, DT_DIR_REQUEST, 5);
	add_obs(t, DT_DIR_REQUEST, true);
	add_obs(t, DT_DIR_REQUEST, true);
	settled_answer = true;
	settled_asked = 0;
	step(2, 1 * S, 1000);
	step(2, 2 * S, 1500);
	cr_expect_eq(t->state, DT_TASK_RUNNING, "the missing samples may still arrive");
	cr_expect_eq(settled_asked, 0);
	/* The window passed, the missing samples are counted lost: DONE, not EXPIRED. */
	cr_expect_eq(step(2, 3 * S, 2000), 1);
	cr_expect_eq(t->state, DT_TASK_DONE);
	cr_expect_eq(t->status, DT_TS_BUDGET_SPENT);
	cr_expect_eq(settled_unsampled, 3, "the lifecycle asks for 3 samples counted lost");
	dt_task_info_fill(t, &info);
	cr_expect(strstr(info.status_text, "5 colored by the data plane, 2 of them sampled at "
					   "their first hop: 3 samples did not reach the analyzer"),
		  "%s", info.status_text);
	cr_expect_eq(info.colored, 2, "colored stays the first-hop samples that arrived");
}

Test(lifecycle, missing_samples_not_counted_lost_end_expired)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;

	s.budget = 5;
	s.duration_s = 10;
	t = ready(s, 0);
	node_states(t->arm_gen, t->arm_gen, 0, 2);
	node_counts(0, t, DT_DIR_REQUEST, 5);
	add_obs(t, DT_DIR_REQUEST, true);
	settled_answer = false; /* the lost counters do not cover the 4 missing samples */
	step(2, 1 * S, 1000);
	step(2, 5 * S, 5000);
	cr_expect_eq(t->state, DT_TASK_RUNNING);
	cr_expect_eq(settled_unsampled, 4);
	cr_expect_eq(step(2, 10 * S, 10000), 1);
	cr_expect_eq(t->state, DT_TASK_EXPIRED);
	cr_expect(strstr(t->status_text, "(5 packets colored of a budget of 5 per direction) "
					 "(5 colored by the data plane, 1 of them sampled"),
		  "%s", t->status_text);
}

Test(lifecycle, every_sample_arrived_is_done_at_once)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	node_states(t->arm_gen, t->arm_gen, 0, 2);
	node_counts(0, t, DT_DIR_REQUEST, 2);
	add_obs(t, DT_DIR_REQUEST, true);
	add_obs(t, DT_DIR_REQUEST, true);
	settled_answer = true;
	cr_expect_eq(step(2, 1 * S, 1000), 1, "nothing missing: no settle time");
	cr_expect_eq(t->state, DT_TASK_DONE);
	cr_expect_eq(settled_unsampled, 0);
	cr_expect(strstr(t->status_text, "(2 colored by the data plane, all sampled)"), "%s",
		  t->status_text);
}

Test(lifecycle, colored_below_the_budget_keeps_it_running)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	node_states(t->arm_gen, t->arm_gen, 0, 2);
	step(2, 1 * S, 1000);
	cr_expect_eq(t->state, DT_TASK_ARMED);
	/* One of 2 colored, its sample lost: the count proves the arming. */
	node_counts(0, t, DT_DIR_REQUEST, 1);
	settled_answer = true;
	settled_asked = 0;
	step(2, 2 * S, 2000);
	step(2, 5 * S, 5000);
	cr_expect_eq(t->state, DT_TASK_RUNNING);
	cr_expect_eq(settled_asked, 0, "the budget is not spent");
}

Test(lifecycle, the_reply_direction_is_counted_apart_and_summed_over_nodes)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;

	s.flags = DT_TASK_DIR_BOTH;
	t = ready(s, 0);
	node_states(t->arm_gen, t->arm_gen, t->arm_gen, 3);
	add_obs(t, DT_DIR_REQUEST, true);
	/* Requests colored 2 at h1; replies 1 at h2: not spent, whatever the request count. */
	node_counts(0, t, DT_DIR_REQUEST, 2);
	node_counts(1, t, DT_DIR_REPLY, 1);
	counts[0][DT_DIR_REPLY].colored = 0;
	settled_answer = true;
	step(3, 1 * S, 1000);
	step(3, 3 * S, 3000);
	cr_expect_eq(t->state, DT_TASK_RUNNING, "the replies have not spent their budget");
	cr_expect_eq(t->dp_colored[DT_DIR_REQUEST], 2);
	cr_expect_eq(t->dp_colored[DT_DIR_REPLY], 1);
	/* The gateway colored one more reply: 1 + 1 reach the budget of 2. */
	node_counts(2, t, DT_DIR_REPLY, 1);
	counts[2][DT_DIR_REQUEST].colored = 0;
	step(3, 4 * S, 4000);
	cr_expect_eq(t->dp_colored[DT_DIR_REPLY], 2);
	cr_expect_eq(t->state, DT_TASK_RUNNING, "3 samples missing: the window first");
	cr_expect_eq(step(3, 5 * S, 5000), 1);
	cr_expect_eq(t->state, DT_TASK_DONE);
	cr_expect_eq(settled_unsampled, 3);
}

/* A node reports that it could not arm key k of task t (errno err); its map holds max. */
static struct dt_arm_fail fail;

static void node_fails(unsigned int node, const struct dt_task *t, unsigned int k, uint32_t err,
		       uint32_t max)
{
	fail = (struct dt_arm_fail){
		.task_id = t->id, .flags = t->keys[k].flags, .tuple = t->keys[k].tuple, .err = err};
	nodes[node].arm_fails = &fail;
	nodes[node].n_arm_fails = 1;
	nodes[node].task_map_max = max;
	nodes[node].task_map_used = max;
}

Test(lifecycle, a_key_the_entry_node_cannot_arm_fails_the_task_never_armed)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	/* h1 applied the set holding it, but its task map was full. */
	node_states(t->arm_gen, t->arm_gen, 0, 2);
	node_fails(0, t, 0, E2BIG, 4);
	cr_expect_eq(step(2, 1 * S, 100), 1);
	cr_expect_eq(t->state, DT_TASK_FAILED);
	cr_expect_eq(t->status, DT_TS_ARM_FAILED);
	cr_expect_eq(t->armed_ns, 0, "never armed");
	cr_expect(strstr(t->status_text, "node h1, the first hop of the requests, could not arm "
					 "it: its task map is full (4 keys"),
		  "%s", t->status_text);
	cr_expect_not(in_control(t->id), "disarmed everywhere");
}

Test(lifecycle, an_update_error_names_the_errno)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	node_states(t->arm_gen, 0, 0, 1);
	node_fails(0, t, 0, EPERM, 16384);
	step(1, 1 * S, 100);
	cr_expect_eq(t->status, DT_TS_ARM_FAILED);
	cr_expect(strstr(t->status_text, "the task map update failed: Operation not permitted"),
		  "%s", t->status_text);
}

Test(lifecycle, a_failure_elsewhere_or_of_another_key_leaves_it_armed)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);
	struct dt_task *u = ready(spec("10.100.0.3", "10.100.0.2", 0, 0), 0);

	/* h2 does not host t's first hop: its full map does not matter to t. */
	node_states(u->arm_gen, u->arm_gen, 0, 2);
	node_fails(1, t, 0, E2BIG, 4);
	step(2, 1 * S, 100);
	cr_expect_eq(t->state, DT_TASK_ARMED, "%s", t->status_text);
	/* h1 reports a failure of the same task id with another tuple: not t's key. */
	node_fails(0, t, 0, E2BIG, 4);
	nodes[1].n_arm_fails = 0;
	fail.tuple.sport = htons(1);
	step(2, 2 * S, 200);
	cr_expect_eq(t->state, DT_TASK_ARMED, "%s", t->status_text);
}

Test(lifecycle, a_key_lost_while_running_fails_the_task)
{
	struct dt_task *t = ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);

	node_states(t->arm_gen, 0, 0, 1);
	step(1, 1 * S, 100);
	add_obs(t, DT_DIR_REQUEST, true);
	step(1, 2 * S, 200);
	cr_assert_eq(t->state, DT_TASK_RUNNING);
	/* Its agent restarted with a smaller map and could not arm it again. */
	node_fails(0, t, 0, E2BIG, 1);
	cr_expect_eq(step(1, 3 * S, 300), 1);
	cr_expect_eq(t->state, DT_TASK_FAILED);
	cr_expect_eq(t->status, DT_TS_ARM_FAILED);
}

Test(lifecycle, the_reply_key_failing_at_its_entry_names_the_replies)
{
	struct dt_task_spec s = spec("10.100.0.1", "10.100.0.2", 0, 0);
	struct dt_task *t;

	s.flags = DT_TASK_DIR_BOTH;
	t = ready(s, 0);
	cr_assert_eq(t->keys[1].dir, DT_DIR_REPLY);
	node_states(t->arm_gen, t->arm_gen, 0, 2);
	node_fails(1, t, 1, E2BIG, 2);
	step(2, 1 * S, 100);
	cr_expect_eq(t->status, DT_TS_ARM_FAILED);
	cr_expect(strstr(t->status_text, "node h2, the first hop of the replies"), "%s",
		  t->status_text);
}

/* Room: every node arms every active key, so h1's map of 2 keys takes 2 keys in all. */
static int room(struct dt_task_spec s, char *err, size_t len)
{
	struct dt_task_spec norm;
	struct dt_hosts h;
	int rv;

	cr_assert_eq(dt_task_spec_normalize(&s, &norm, err, len), 0);
	cr_assert_eq(dt_hosts_build(&h, nodes, 3), 0);
	rv = dt_tasks_check_room(tasks, &h, &norm, err, len);
	dt_hosts_free(&h);
	return rv;
}

Test(lifecycle, a_task_that_would_not_fit_where_it_starts_is_refused)
{
	struct dt_task_spec both = spec("10.100.0.1", "10.100.0.2", 0, 0);
	char err[256] = "";

	node_states(0, 0, 0, 3);
	nodes[0].task_map_max = 2;
	both.flags = DT_TASK_DIR_BOTH;
	cr_expect_eq(room(spec("10.100.0.1", "10.100.0.2", 0, 0), err, sizeof(err)), 0, "%s", err);
	ready(spec("10.100.0.1", "10.100.0.2", 0, 0), 0);
	cr_expect_eq(room(both, err, sizeof(err)), -ENOSPC, "1 + 2 keys in 2");
	/* A task that starts elsewhere takes room on h1 too: h1 arms its key as well. */
	cr_expect_eq(room(spec("10.100.0.2", "10.100.0.1", 0, 0), err, sizeof(err)), 0);
	ready(spec("10.100.0.2", "10.100.0.1", 0, 0), 0);
	err[0] = '\0';
	cr_expect_eq(room(spec("10.100.0.1", "10.100.0.4", 0, 0), err, sizeof(err)), -ENOSPC);
	cr_expect(strstr(err, "no room on node h1, the first hop of the requests: its task map "
			      "holds 2 keys, active tasks use 2 and this task needs 1"),
		  "%s", err);
	/* h2 reports no map size: a task starting there is not checked. */
	cr_expect_eq(room(spec("10.100.0.2", "10.100.0.4", 0, 0), err, sizeof(err)), 0);
	/* A cancelled task gives its room back. */
	dt_task_end(tasks, dt_tasks_find(tasks, 1), DT_TASK_CANCELLED, DT_TS_CANCELLED, 5,
		    "cancelled");
	cr_expect_eq(room(spec("10.100.0.1", "10.100.0.4", 0, 0), err, sizeof(err)), 0, "%s", err);
}
