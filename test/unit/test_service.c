/* SPDX-License-Identifier: MIT */
/*
 * The analyzer as a whole, in process: its API (tokens, tenants, limits, list, cancel),
 * the handshake against node states relayed in a collector's heartbeat, DONE by budget,
 * and the store across a restart (a finished report is served byte for byte as before, a
 * running task is resumed with its status saying so, batch seqs are not stored twice).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "analyzer.h"
#include "dt_tuple.h"

#define ACME "acme-0123456789abcdef"
#define BETA "beta-0123456789abcdef"

static struct dt_analyzer_cfg cfg;
static char dir[64];
static volatile int stop_flag;
static pthread_t thread;
static int run_rv;

static void *run(void *arg)
{
	run_rv = dt_analyzer_run(&cfg, &stop_flag);
	return NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* One request, one reply (malloc'd into *buf). Retries the dial while the analyzer starts. */
static void request(const char *url, const msgpack_sbuffer *req, void **buf, size_t *len)
{
	nng_socket s;
	int rv = -1;

	cr_assert_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	for (int i = 0; i < 100 && rv != 0; i++) {
		if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
			sleep_ms(20);
		}
	}
	cr_assert_eq(rv, 0, "dial %s: %s", url, nng_strerror(rv));
	cr_assert_eq(nng_send(s, req->data, req->size, 0), 0);
	cr_assert_eq(nng_recv(s, buf, len, NNG_FLAG_ALLOC), 0);
	nng_close(s);
}

static void start(void)
{
	stop_flag = 0;
	cr_assert_eq(pthread_create(&thread, NULL, run, NULL), 0);
}

static void stop(void)
{
	stop_flag = 1;
	pthread_join(thread, NULL);
	cr_assert_eq(run_rv, 0);
}

static void setup(void)
{
	strcpy(dir, "/tmp/dt-test-svc-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cfg = dt_analyzer_cfg_defaults;
	snprintf(cfg.listen, sizeof(cfg.listen), "ipc://%s/ingest", dir);
	snprintf(cfg.api, sizeof(cfg.api), "ipc://%s/api", dir);
	snprintf(cfg.store, sizeof(cfg.store), "%s/store", dir);
	cfg.store_size_mb = 64;
	cfg.window_ms = 50;
	cfg.stats_interval_s = 0;
	cfg.lifecycle.host_grace_ms = 300;
	cfg.lifecycle.arm_timeout_ms = 3000;
	cfg.n_tenants = 2;
	snprintf(cfg.tenants[0].name, sizeof(cfg.tenants[0].name), "acme");
	snprintf(cfg.tenants[0].token, sizeof(cfg.tenants[0].token), ACME);
	snprintf(cfg.tenants[1].name, sizeof(cfg.tenants[1].name), "beta");
	snprintf(cfg.tenants[1].token, sizeof(cfg.tenants[1].token), BETA);
	start();
}

static void teardown(void)
{
	char cmd[128];

	if (!stop_flag) {
		stop();
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 60);

/* The reply to an API request: a task (returns 0) or an error (returns its status). */
static uint32_t api(const msgpack_sbuffer *req, struct dt_task_info *t, char *msg)
{
	enum dt_msg_type type;
	struct dt_error e;
	void *buf;
	size_t len;

	request(cfg.api, req, &buf, &len);
	cr_assert_eq(dt_msg_type(buf, len, &type), 0);
	if (type == DT_MSG_ERROR) {
		cr_assert_eq(dt_error_decode(buf, len, &e), 0);
		nng_free(buf, len);
		if (msg) {
			strcpy(msg, e.message);
		}
		return e.status;
	}
	cr_assert_eq(type, DT_MSG_TASK);
	cr_assert_eq(dt_task_decode(buf, len, t), 0);
	nng_free(buf, len);
	return DT_ST_OK;
}

static uint32_t create(const char *token, const char *src, const char *dst, uint32_t budget,
		       uint32_t duration_s, struct dt_task_info *t, char *msg)
{
	struct dt_task_spec s;
	msgpack_sbuffer sb;
	uint32_t st;

	memset(&s, 0, sizeof(s));
	dt_ipv4_parse(src, &s.tuple.saddr);
	dt_ipv4_parse(dst, &s.tuple.daddr);
	s.tuple.proto = IPPROTO_ICMP;
	s.tuple.vni = 100;
	s.budget = budget;
	s.duration_s = duration_s;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_task_create_encode(&sb, token, &s), 0);
	st = api(&sb, t, msg);
	msgpack_sbuffer_destroy(&sb);
	return st;
}

typedef int (*id_encoder)(msgpack_sbuffer *out, const char *token, uint32_t id);

static uint32_t by_id(id_encoder enc, const char *token, uint32_t id, struct dt_task_info *t,
		      char *msg)
{
	msgpack_sbuffer sb;
	uint32_t st;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(enc(&sb, token, id), 0);
	st = api(&sb, t, msg);
	msgpack_sbuffer_destroy(&sb);
	return st;
}

static uint32_t show(const char *token, uint32_t id, struct dt_task_info *t, char *msg)
{
	return by_id(dt_task_get_encode, token, id, t, msg);
}

/* The raw reply to a report request. */
static void report_raw(const char *token, uint32_t id, void **buf, size_t *len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_report_get_encode(&sb, token, id), 0);
	request(cfg.api, &sb, buf, len);
	msgpack_sbuffer_destroy(&sb);
}

static void list(const char *token, struct dt_task_list *l)
{
	msgpack_sbuffer sb;
	void *buf;
	size_t len;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_task_list_encode(&sb, token), 0);
	request(cfg.api, &sb, &buf, &len);
	cr_assert_eq(dt_tasks_decode(buf, len, l), 0);
	nng_free(buf, len);
	msgpack_sbuffer_destroy(&sb);
}

/* Polls task id until it reaches state (or 5 s pass). */
static void wait_state(uint32_t id, uint32_t state, struct dt_task_info *t)
{
	for (int i = 0; i < 250; i++) {
		cr_assert_eq(show(ACME, id, t, NULL), DT_ST_OK);
		if (t->state == state) {
			return;
		}
		sleep_ms(20);
	}
	cr_assert_fail("task %u stayed %s (%s), wanted %s", id, dt_task_state_name(t->state),
		       t->status_text, dt_task_state_name(state));
}

/* The task map h1 reports in its node state: its size (0: not reported) and the keys it
 * could not arm. */
static uint32_t hb_map_max, hb_n_fails;
static struct dt_arm_fail hb_fail;

/* A collector's batch: samples of node h1, and/or the node state of h1 (hosting
 * 10.100.0.1 in VNI 100, applied ctl_gen, with hb_map_max and hb_fail). Returns the ACK
 * status. */
static uint32_t batch(uint64_t seq, uint64_t ctl_gen, struct dt_wire_sample *s, uint32_t n)
{
	struct dt_endpoint ep = {.vni = 100};
	struct dt_node_state ns;
	struct dt_batch b;
	struct dt_ack ack;
	msgpack_sbuffer sb;
	void *buf;
	size_t len;
	uint32_t st;

	memset(&b, 0, sizeof(b));
	memset(&ns, 0, sizeof(ns));
	snprintf(b.sender, sizeof(b.sender), "c1");
	snprintf(b.node, sizeof(b.node), "h1");
	b.seq = seq;
	b.ctl_gen = ctl_gen;
	b.n_ifaces = 1;
	snprintf(b.ifaces[0], sizeof(b.ifaces[0]), "pt1");
	b.samples = s;
	b.n_samples = n;
	if (n == 0) {
		dt_ipv4_parse("10.100.0.1", &ep.addr);
		snprintf(ns.node, sizeof(ns.node), "h1");
		ns.ctl_gen = ctl_gen;
		ns.n_endpoints = 1;
		ns.endpoints = &ep;
		ns.task_map_max = hb_map_max;
		ns.n_arm_fails = hb_n_fails;
		ns.arm_fails = hb_n_fails ? &hb_fail : NULL;
		b.nodes = &ns;
		b.n_nodes = 1;
	}
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &b), 0);
	request(cfg.listen, &sb, &buf, &len);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(dt_ack_decode(buf, len, &ack), 0);
	st = ack.status;
	dt_ack_free(&ack);
	nng_free(buf, len);
	return st;
}

static void sample(struct dt_wire_sample *w, uint8_t hook, const char *dst, uint32_t task,
		   uint16_t ip_id)
{
	memset(w, 0, sizeof(*w));
	w->hook = hook;
	w->flags = hook == DT_HOOK_PORT_IN ? DT_SAMPLE_F_FIRST_HOP : 0;
	w->ts_ns = (uint64_t)time(NULL) * 1000000000ull - 5000000000ull + ip_id * 1000ull +
		   (hook == DT_HOOK_PORT_OUT ? 500 : 0);
	dt_ipv4_parse("10.100.0.1", &w->tuple.saddr);
	dt_ipv4_parse(dst, &w->tuple.daddr);
	w->tuple.proto = IPPROTO_ICMP;
	w->tuple.vni = 100;
	w->tuple.sport = htons(7);
	w->task_id = hook == DT_HOOK_PORT_IN ? task : 0;
	w->ip_id = ip_id;
	w->len = 84;
	w->drop_name = DT_STR_NONE;
	w->drop_where = DT_STR_NONE;
}

Test(service, tokens_and_tenants)
{
	struct dt_task_info t, other;
	struct dt_task_list l;
	char msg[DT_MSG_MAX], missing[DT_MSG_MAX];

	cr_assert_eq(create(ACME, "10.100.0.1", "10.100.0.2", 0, 0, &t, msg), DT_ST_OK, "%s", msg);
	cr_expect_eq(t.id, 1);
	cr_expect_eq(t.state, DT_TASK_READY);
	cr_expect_str_eq(t.tenant, "acme");
	cr_expect_eq(t.spec.budget, 100, "the default budget");
	cr_expect_eq(t.spec.duration_s, 60);
	cr_expect_eq(t.spec.rate_pps, 100);

	/* Wrong and missing tokens are refused. */
	cr_expect_eq(create("acme-0123456789abcdeX", "10.100.0.5", "10.100.0.6", 0, 0, &other, msg),
		     DT_ST_REFUSED);
	cr_expect_str_eq(msg, "unknown tenant token");
	cr_expect_eq(create("", "10.100.0.5", "10.100.0.6", 0, 0, &other, msg), DT_ST_REFUSED);
	cr_expect_eq(show("", 1, &other, msg), DT_ST_REFUSED);
	cr_expect_eq(by_id(dt_task_cancel_encode, "nope", 1, &other, msg), DT_ST_REFUSED);

	/* Another tenant's task is exactly like one that does not exist. */
	cr_expect_eq(show(BETA, 999, &other, missing), DT_ST_NOT_FOUND);
	cr_expect_str_eq(missing, "no task 999");
	cr_expect_eq(show(BETA, 1, &other, msg), DT_ST_NOT_FOUND);
	cr_expect_str_eq(msg, "no task 1");
	cr_expect_eq(by_id(dt_report_get_encode, BETA, 1, &other, msg), DT_ST_NOT_FOUND);
	cr_expect_str_eq(msg, "no task 1");
	cr_expect_eq(by_id(dt_task_cancel_encode, BETA, 1, &other, msg), DT_ST_NOT_FOUND);
	cr_expect_str_eq(msg, "no task 1");
	cr_expect_eq(show(ACME, 1, &other, msg), DT_ST_OK, "beta's cancel did nothing");
	cr_expect_neq(other.state, DT_TASK_CANCELLED);

	/* beta's overlapping request is refused without a word about acme's task. */
	cr_expect_eq(create(BETA, "10.100.0.1", "10.100.0.2", 0, 0, &other, msg), DT_ST_REFUSED);
	cr_expect(strstr(msg, "overlaps"), "%s", msg);
	cr_expect_null(strstr(msg, "acme"), "%s", msg);
	cr_expect_null(strstr(msg, "task 1"), "%s", msg);

	/* Limits above the maxima are refused, naming the maximum. */
	cr_expect_eq(create(BETA, "10.100.0.7", "10.100.0.8", 100001, 0, &other, msg),
		     DT_ST_REFUSED);
	cr_expect(strstr(msg, "maximum of 100000"), "%s", msg);
	cr_expect_eq(create(BETA, "10.100.0.7", "10.100.0.8", 0, 3601, &other, msg), DT_ST_REFUSED);
	cr_expect(strstr(msg, "maximum of 3600"), "%s", msg);

	/* Lists are per tenant. */
	cr_assert_eq(create(BETA, "10.100.0.7", "10.100.0.8", 0, 0, &other, msg), DT_ST_OK, "%s",
		     msg);
	list(ACME, &l);
	cr_expect_eq(l.n_tasks, 1);
	cr_expect_eq(l.tasks[0].id, 1);
	dt_task_list_free(&l);
	list(BETA, &l);
	cr_expect_eq(l.n_tasks, 1);
	cr_expect_eq(l.tasks[0].id, other.id);
	cr_expect_str_eq(l.tasks[0].tenant, "beta");
	dt_task_list_free(&l);

	/* acme cancels its own; twice is harmless. */
	cr_expect_eq(by_id(dt_task_cancel_encode, ACME, 1, &t, msg), DT_ST_OK);
	cr_expect_eq(t.state, DT_TASK_CANCELLED);
	cr_expect_eq(t.status, DT_TS_CANCELLED);
	cr_expect_neq(t.ended_ns, 0);
	cr_expect_eq(by_id(dt_task_cancel_encode, ACME, 1, &t, msg), DT_ST_OK);
	/* Its tuple is free again. */
	cr_expect_eq(create(BETA, "10.100.0.1", "10.100.0.2", 0, 0, &other, msg), DT_ST_OK, "%s",
		     msg);
}

Test(service, no_room_is_refused_and_a_key_not_armed_fails_its_task)
{
	struct dt_task_info t1, t2, t;
	char msg[DT_MSG_MAX] = "";

	/* h1's task map holds one key. */
	hb_map_max = 1;
	cr_assert_eq(batch(1, 0, NULL, 0), DT_ST_OK);
	sleep_ms(300); /* a tick takes the node state in */
	cr_assert_eq(create(ACME, "10.100.0.1", "10.100.0.2", 0, 0, &t1, msg), DT_ST_OK, "%s", msg);
	cr_expect_eq(create(ACME, "10.100.0.1", "10.100.0.3", 0, 0, &t2, msg), DT_ST_FULL);
	cr_expect(strstr(msg, "no room on node h1, the first hop of the requests"), "%s", msg);
	/* h1 applied the set holding t1, but could not arm its key (an ICMP task without an
	 * identifier: any port). */
	hb_fail = (struct dt_arm_fail){.task_id = t1.id, .flags = DT_TASK_F_ANYPORT, .err = E2BIG};
	hb_fail.tuple = t1.spec.tuple;
	hb_n_fails = 1;
	cr_assert_eq(batch(2, 1000, NULL, 0), DT_ST_OK);
	wait_state(t1.id, DT_TASK_FAILED, &t);
	cr_expect_eq(t.status, DT_TS_ARM_FAILED);
	cr_expect_eq(t.armed_ns, 0, "never armed");
	cr_expect(strstr(t.status_text, "node h1, the first hop of the requests, could not arm it: "
					"its task map is full (1 keys"),
		  "%s", t.status_text);
	/* Its room is free again. */
	cr_expect_eq(create(ACME, "10.100.0.1", "10.100.0.3", 0, 0, &t2, msg), DT_ST_OK, "%s", msg);
}

Test(service, no_host_fails)
{
	struct dt_task_info t;

	cr_assert_eq(create(ACME, "10.100.0.9", "10.100.0.2", 0, 0, &t, NULL), DT_ST_OK);
	wait_state(t.id, DT_TASK_FAILED, &t);
	cr_expect_eq(t.status, DT_TS_NO_HOST);
	cr_expect(strstr(t.status_text, "10.100.0.9"), "%s", t.status_text);
}

Test(service, handshake_done_and_restart)
{
	struct dt_wire_sample s[3];
	struct dt_task_info t1, t2, t;
	struct dt_task_list l;
	struct dt_report rep;
	void *r1, *r1_after;
	size_t r1_len, r1_after_len;

	cr_assert_eq(create(ACME, "10.100.0.1", "10.100.0.2", 1, 60, &t1, NULL), DT_ST_OK);
	cr_assert_eq(create(ACME, "10.100.0.1", "10.100.0.3", 1000, 600, &t2, NULL), DT_ST_OK);
	cr_expect_eq(t1.state, DT_TASK_READY);
	/* h1 hosts the source and applied a set that includes both: ARMED. */
	cr_assert_eq(batch(1, 1000, NULL, 0), DT_ST_OK);
	wait_state(t1.id, DT_TASK_ARMED, &t);
	cr_expect_neq(t.armed_ns, 0);
	cr_expect(strstr(t.status_text, "armed at h1"), "%s", t.status_text);
	/* One packet of task 1, delivered; one of task 2. */
	sample(&s[0], DT_HOOK_PORT_IN, "10.100.0.2", t1.id, 1);
	sample(&s[1], DT_HOOK_PORT_OUT, "10.100.0.2", 0, 1);
	sample(&s[2], DT_HOOK_PORT_IN, "10.100.0.3", t2.id, 2);
	cr_assert_eq(batch(2, 1000, s, 3), DT_ST_OK);
	wait_state(t1.id, DT_TASK_DONE, &t);
	cr_expect_eq(t.status, DT_TS_BUDGET_SPENT);
	cr_expect_eq(t.colored, 1);
	cr_expect_eq(t.delivered, 1);
	wait_state(t2.id, DT_TASK_RUNNING, &t);
	report_raw(ACME, t1.id, &r1, &r1_len);
	cr_assert_eq(dt_report_decode(r1, r1_len, &rep), 0);
	cr_expect_eq(rep.n_packets, 1);
	cr_expect_eq(rep.verdict.delivered, 1);
	cr_expect_eq(rep.task.state, DT_TASK_DONE);
	dt_report_free(&rep);

	stop();
	start();

	/* The finished report, byte for byte. */
	report_raw(ACME, t1.id, &r1_after, &r1_after_len);
	cr_assert_eq(r1_after_len, r1_len);
	cr_expect_eq(memcmp(r1, r1_after, r1_len), 0, "the final report changed on restart");
	nng_free(r1, r1_len);
	nng_free(r1_after, r1_after_len);
	cr_expect_eq(show(ACME, t1.id, &t, NULL), DT_ST_OK);
	cr_expect_eq(t.state, DT_TASK_DONE);
	cr_expect_eq(show(BETA, t1.id, &t, NULL), DT_ST_NOT_FOUND, "still acme's only");
	/* The running task is resumed, with its sample, and says so. */
	cr_expect_eq(show(ACME, t2.id, &t, NULL), DT_ST_OK);
	cr_expect_eq(t.state, DT_TASK_RUNNING);
	cr_expect_eq(t.status, DT_TS_RESTARTED);
	cr_expect(strstr(t.status_text, "restarted"), "%s", t.status_text);
	cr_expect_eq(t.colored, 1);
	/* The collector resends batch 2 (its ACK was lost): not counted twice. */
	cr_assert_eq(batch(2, 1000, s, 3), DT_ST_OK);
	report_raw(ACME, t2.id, &r1, &r1_len);
	cr_assert_eq(dt_report_decode(r1, r1_len, &rep), 0);
	cr_assert_eq(rep.n_packets, 1);
	cr_expect_eq(rep.packets[0].n_hops, 1, "the resent batch was stored twice");
	dt_report_free(&rep);
	nng_free(r1, r1_len);
	list(ACME, &l); /* a list counts first-hop samples, not packets */
	cr_assert_eq(l.n_tasks, 2);
	cr_expect_eq(l.tasks[1].id, t2.id);
	cr_expect_eq(l.tasks[1].colored, 1, "the resent batch was stored twice");
	dt_task_list_free(&l);
	/* New ids continue after the old ones. */
	cr_assert_eq(create(ACME, "10.100.0.1", "10.100.0.4", 0, 0, &t, NULL), DT_ST_OK);
	cr_expect_eq(t.id, t2.id + 1);
	list(ACME, &l);
	cr_expect_eq(l.n_tasks, 3);
	dt_task_list_free(&l);
}

Test(service, a_task_whose_duration_ran_out_while_stopped_ends_expired)
{
	struct dt_wire_sample s;
	struct dt_task_info t;
	void *r;
	size_t len;
	struct dt_report rep;

	cr_assert_eq(create(ACME, "10.100.0.1", "10.100.0.2", 100, 1, &t, NULL), DT_ST_OK);
	cr_assert_eq(batch(1, 1000, NULL, 0), DT_ST_OK);
	sample(&s, DT_HOOK_PORT_IN, "10.100.0.2", t.id, 1);
	cr_assert_eq(batch(2, 1000, &s, 1), DT_ST_OK);
	stop();
	sleep_ms(1100);
	start();
	cr_expect_eq(show(ACME, t.id, &t, NULL), DT_ST_OK);
	cr_expect_eq(t.state, DT_TASK_EXPIRED);
	cr_expect_eq(t.status, DT_TS_RESTARTED);
	cr_expect(strstr(t.status_text, "while the analyzer was stopped"), "%s", t.status_text);
	report_raw(ACME, t.id, &r, &len);
	cr_assert_eq(dt_report_decode(r, len, &rep), 0);
	cr_expect_eq(rep.n_packets, 1, "the sample stored before the stop is in the report");
	dt_report_free(&rep);
	nng_free(r, len);
}
