/* SPDX-License-Identifier: MIT */
/*
 * tasks.c - how the task service and the control path grow (issue 16, bench/run.sh --scale).
 *
 *     dt-bench-tasks DIR
 *
 * 1. The task service: a real analyzer (dt_analyzer_run() on its own thread, its store in
 *    DIR) and a collector played by this program, which reports one node hosting the
 *    traced instance and applies every control set it is handed at once. With 0, 1,000
 *    and 10,000 tasks already armed, it measures tasks created per second through the API
 *    (a burst of 500, one request after the other) and the time from a creation until
 *    the task shows ARMED (the median of 5; the analyzer's handshake runs on its 100 ms
 *    tick, so a single task takes up to one tick plus a heartbeat).
 * 2. The control path: a control set with one new task (ARMED tasks armed before)
 *    delivered by an ingest server (the collector's side, dt_ingest) to 1, 100 and 1,000
 *    simulated agents, each a real
 *    dt_link that heartbeats every HEARTBEAT_MS and applies what its acknowledgement
 *    carries: the bytes put on the wire (the acknowledgements that carry the set) and the
 *    time until every agent applied it. An agent hears of a new set only with its next
 *    acknowledgement, so the time is bounded by the heartbeat, not by the fan-out.
 *
 * Prints markdown sections as "md|" lines (common.h); timings against the baselines in the
 * same run: the API's cost is compared with an empty request (an unknown token, refused at
 * once).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "analyzer.h"
#include "common.h"
#include "dt_ingest.h"
#include "dt_link.h"
#include "dt_log.h"
#include "dt_proto.h"

#define TOKEN "bench-tenant-token-0123456789"
#define BURST 500
#define ARM_SAMPLES 5
#define HEARTBEAT_MS 100
#define ARMED 1000	     /* tasks armed in the deployment before the one created */
#define INSTANCE 0x0a640001u /* 10.100.0.1, the traced source of every task */
#define VNI 100

static char api_url[200], ingest_url[200];

/* --- one API request ------------------------------------------------------------------- */

static nng_socket api_sock;

static void api_open(void)
{
	if (nng_req0_open(&api_sock) != 0)
		dtb_die("nng_req0_open failed");
	nng_socket_set_ms(api_sock, NNG_OPT_RECVTIMEO, 10000);
	for (int i = 0; i < 500; i++) {
		if (nng_dial(api_sock, api_url, NULL, 0) == 0)
			return;
		usleep(10000);
	}
	dtb_die("the analyzer's API %s does not answer", api_url);
}

/* Sends req, returns the reply's type and, for a task, decodes it into t (may be NULL). */
static enum dt_msg_type api_call(const msgpack_sbuffer *req, struct dt_task_info *t)
{
	enum dt_msg_type type = 0;
	void *buf;
	size_t len;

	if (nng_send(api_sock, req->data, req->size, 0) != 0 ||
	    nng_recv(api_sock, &buf, &len, NNG_FLAG_ALLOC) != 0)
		dtb_die("API request failed");
	if (dt_msg_type(buf, len, &type) != 0)
		dtb_die("API reply undecodable");
	if (t && type == DT_MSG_TASK && dt_task_decode(buf, len, t) != 0)
		dtb_die("task reply undecodable");
	nng_free(buf, len);
	return type;
}

/* Creates the task from 10.100.0.1:sport; returns its id. */
static uint32_t task_create(uint16_t sport)
{
	struct dt_task_spec spec;
	struct dt_task_info t;
	msgpack_sbuffer sb;

	memset(&spec, 0, sizeof(spec));
	spec.tuple.saddr = htonl(INSTANCE);
	spec.tuple.daddr = htonl(0x0a650001u);
	spec.tuple.sport = htons(sport);
	spec.tuple.dport = htons(80);
	spec.tuple.proto = 6;
	spec.tuple.vni = VNI;
	spec.duration_s = 3600;
	msgpack_sbuffer_init(&sb);
	dt_task_create_encode(&sb, TOKEN, &spec);
	if (api_call(&sb, &t) != DT_MSG_TASK)
		dtb_die("task creation refused (sport %u)", sport);
	msgpack_sbuffer_destroy(&sb);
	return t.id;
}

static uint32_t task_state(uint32_t id)
{
	struct dt_task_info t;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	dt_task_get_encode(&sb, TOKEN, id);
	if (api_call(&sb, &t) != DT_MSG_TASK)
		dtb_die("task %u unknown", id);
	msgpack_sbuffer_destroy(&sb);
	return t.state;
}

/* An empty request: an unknown token, refused at once (the API's floor). */
static void api_refused(void)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	dt_task_get_encode(&sb, "no-such-token-0123456789", 1);
	api_call(&sb, NULL);
	msgpack_sbuffer_destroy(&sb);
}

/* --- the collector, played --------------------------------------------------------------- */

static volatile int coll_stop;
static uint64_t coll_gen; /* the control set applied */

/* Heartbeats every 20 ms: one node, h1, hosting the instance, with the last control set
 * it was handed applied. */
static void *collector(void *arg)
{
	struct dt_endpoint ep = {.vni = VNI, .addr = htonl(INSTANCE)};
	nng_socket s;
	uint64_t seq = 0;

	if (nng_req0_open(&s) != 0)
		dtb_die("nng_req0_open failed");
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	while (nng_dial(s, ingest_url, NULL, 0) != 0)
		usleep(10000);
	while (!coll_stop) {
		struct dt_node_state ns = {.ctl_gen = coll_gen, .n_endpoints = 1, .endpoints = &ep};
		struct dt_batch b;
		struct dt_ack ack;
		msgpack_sbuffer sb;
		void *buf;
		size_t len;

		memset(&b, 0, sizeof(b));
		snprintf(b.sender, sizeof(b.sender), "c1");
		snprintf(b.node, sizeof(b.node), "c1");
		snprintf(ns.node, sizeof(ns.node), "h1");
		b.seq = ++seq;
		b.ctl_gen = coll_gen;
		b.nodes = &ns;
		b.n_nodes = 1;
		msgpack_sbuffer_init(&sb);
		dt_batch_encode(&sb, &b);
		if (nng_send(s, sb.data, sb.size, 0) == 0 &&
		    nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) == 0) {
			if (dt_ack_decode(buf, len, &ack) == 0) {
				if (ack.has_control)
					__atomic_store_n(&coll_gen, ack.control.gen,
							 __ATOMIC_RELEASE);
				dt_ack_free(&ack);
			}
			nng_free(buf, len);
		}
		msgpack_sbuffer_destroy(&sb);
		usleep(20000);
	}
	nng_close(s);
	return NULL;
}

/* --- 1. the task service -------------------------------------------------------------- */

static volatile int ana_stop;

static void *analyzer_thread(void *arg)
{
	dt_analyzer_run(arg, &ana_stop);
	return NULL;
}

static uint16_t next_sport = 1024;

/* Creates tasks until n are armed (waits for the last). */
static void arm_up_to(uint32_t n, uint32_t *have)
{
	uint32_t last = 0;

	for (; *have < n; (*have)++)
		last = task_create(next_sport++);
	for (int i = 0; last && i < 6000 && task_state(last) != DT_TASK_ARMED; i++)
		usleep(10000);
	if (last && task_state(last) != DT_TASK_ARMED)
		dtb_die("the tasks were not armed within a minute");
}

static void task_service(const char *dir)
{
	static const uint32_t levels[] = {0, 1000, 10000};
	struct dt_analyzer_cfg cfg = dt_analyzer_cfg_defaults;
	pthread_t ana, coll;
	uint32_t have = 0;
	double floor_us;
	uint64_t t0;

	snprintf(cfg.listen, sizeof(cfg.listen), "%s", ingest_url);
	snprintf(cfg.api, sizeof(cfg.api), "%s", api_url);
	snprintf(cfg.store, sizeof(cfg.store), "%s/store", dir);
	cfg.stats_interval_s = 0;
	cfg.limits.tasks_max_per_tenant = 20000;
	cfg.lifecycle.arm_timeout_ms = 60000;
	cfg.n_tenants = 1;
	snprintf(cfg.tenants[0].name, sizeof(cfg.tenants[0].name), "bench");
	snprintf(cfg.tenants[0].token, sizeof(cfg.tenants[0].token), "%s", TOKEN);
	if (pthread_create(&ana, NULL, analyzer_thread, &cfg) != 0)
		dtb_die("pthread_create failed");
	api_open();
	if (pthread_create(&coll, NULL, collector, NULL) != 0)
		dtb_die("pthread_create failed");

	t0 = dtb_now_ns();
	for (int i = 0; i < BURST; i++)
		api_refused();
	floor_us = (double)(dtb_now_ns() - t0) / 1e3 / BURST;

	dtb_md("%s", "");
	dtb_md("## The task service");
	dtb_md("%s", "");
	dtb_md("Tasks created through the API (a burst of %d, one request after the other) "
	       "and the time from a creation until the task shows ARMED (median of %d), with "
	       "tasks already armed. Baseline: a refused request (unknown token) takes "
	       "%.0f µs, the API's floor.",
	       BURST, ARM_SAMPLES, floor_us);
	dtb_md("%s", "");
	dtb_md("| tasks already armed | created per second | per creation | vs the floor | "
	       "time until ARMED |");
	dtb_md("|---|---|---|---|---|");
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		double per_us, arm_ms[ARM_SAMPLES];

		arm_up_to(levels[l], &have);
		t0 = dtb_now_ns();
		for (int i = 0; i < BURST; i++)
			task_create(next_sport++);
		per_us = (double)(dtb_now_ns() - t0) / 1e3 / BURST;
		have += BURST;
		for (int k = 0; k < ARM_SAMPLES; k++) {
			uint32_t id;

			t0 = dtb_now_ns();
			id = task_create(next_sport++);
			have++;
			while (task_state(id) != DT_TASK_ARMED)
				usleep(1000);
			arm_ms[k] = (double)(dtb_now_ns() - t0) / 1e6;
		}
		dtb_md("| %u | %.0f | %.0f µs | ×%.1f | %.0f ms |", levels[l], 1e6 / per_us, per_us,
		       per_us / floor_us, dtb_median(arm_ms, ARM_SAMPLES));
		dtb_note("tasks: %u armed before: %.0f µs a creation, armed in %.0f ms", levels[l],
			 per_us, dtb_median(arm_ms, ARM_SAMPLES));
	}
	dtb_md("%s", "");
	dtb_md("Creation costs the request, a commit to the store (LMDB, one transaction a "
	       "task) and a new control set; the time until ARMED is the handshake: the next "
	       "acknowledgement carries the set, the next heartbeat reports it applied, the "
	       "next tick of the analyzer (every 100 ms) sees it.");
	coll_stop = 1;
	pthread_join(coll, NULL);
	nng_close(api_sock);
	ana_stop = 1;
	pthread_join(ana, NULL);
}

/* --- 2. the control path --------------------------------------------------------------- */

struct agent {
	struct dt_link *link;
	uint64_t applied;
};

static uint64_t agent_control(void *arg, const struct dt_control *c)
{
	struct agent *a = arg;

	__atomic_store_n(&a->applied, c->gen, __ATOMIC_RELEASE);
	return c->gen;
}

static int ing_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	return DT_ST_OK;
}

static uint64_t ing_last_seq(void *arg, const char *sender)
{
	return 0;
}

/* The bytes of one acknowledgement that carries control set c. */
static size_t ack_bytes(const struct dt_control *c)
{
	struct dt_ack ack = {.seq = 1, .status = DT_ST_OK, .has_control = true, .control = *c};
	msgpack_sbuffer sb;
	size_t n;

	msgpack_sbuffer_init(&sb);
	dt_ack_encode(&sb, &ack);
	n = sb.size;
	msgpack_sbuffer_destroy(&sb);
	return n;
}

static void control_path(const char *dir)
{
	static const unsigned counts[] = {1, 100, 1000};
	struct dt_ingest_ops ops = {.on_batch = ing_batch, .last_seq = ing_last_seq};
	struct dt_arm arms[ARMED + 1];
	struct dt_control c = {.gen = 1, .n_arms = ARMED, .arms = arms};
	char url[200];

	memset(arms, 0, sizeof(arms));
	for (uint32_t i = 0; i <= ARMED; i++) {
		arms[i].task_id = i + 1;
		arms[i].tuple.saddr = htonl(INSTANCE);
		arms[i].tuple.daddr = htonl(0x0a650001u);
		arms[i].tuple.sport = htons((uint16_t)(1024 + i));
		arms[i].tuple.dport = htons(80);
		arms[i].tuple.proto = 6;
		arms[i].tuple.vni = VNI;
	}
	dtb_md("%s", "");
	dtb_md("## The control path");
	dtb_md("%s", "");
	dtb_md("One task creation in a deployment with %d armed tasks (a control set with one "
	       "more task) delivered by a collector's ingest to N agents, each a real link "
	       "heartbeating every %d ms (simulated agents in one process, over ipc://). "
	       "Bytes: the acknowledgements that carry the set; time: until every agent "
	       "applied it.",
	       ARMED, HEARTBEAT_MS);
	dtb_md("%s", "");
	dtb_md("| agents | bytes on the wire | per agent | time until all applied |");
	dtb_md("|---|---|---|---|");
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		unsigned n = counts[k];
		struct agent *ag = calloc(n, sizeof(*ag));
		struct dt_ingest *in;
		uint64_t t0, gen;
		bool all;

		snprintf(url, sizeof(url), "ipc://%s/ctl-%u", dir, n);
		if (!ag || dt_ingest_start(url, &ops, &in) != 0)
			dtb_die("cannot start the ingest on %s", url);
		c.gen = gen = 1;
		c.n_arms = ARMED;
		dt_ingest_set_control(in, &c);
		for (unsigned i = 0; i < n; i++) {
			char name[32];
			struct dt_link_cfg lc = {.url = url,
						 .sender = name,
						 .heartbeat_ms = HEARTBEAT_MS,
						 .timeout_ms = 5000,
						 .queue_max = 4};
			struct dt_link_ops lo = {.on_control = agent_control, .arg = &ag[i]};

			snprintf(name, sizeof(name), "a%u", i);
			if (dt_link_start(&lc, &lo, &ag[i].link) != 0)
				dtb_die("cannot start agent %u", i);
		}
		/* Every agent on the first set before the measured one. */
		do {
			usleep(10000);
			all = true;
			for (unsigned i = 0; i < n && all; i++)
				all = __atomic_load_n(&ag[i].applied, __ATOMIC_ACQUIRE) == gen;
		} while (!all);
		c.gen = ++gen;
		c.n_arms = ARMED + 1;
		t0 = dtb_now_ns();
		dt_ingest_set_control(in, &c);
		do {
			usleep(1000);
			all = true;
			for (unsigned i = 0; i < n && all; i++)
				all = __atomic_load_n(&ag[i].applied, __ATOMIC_ACQUIRE) == gen;
		} while (!all);
		dtb_md("| %u | %zu | %zu | %.0f ms |", n, ack_bytes(&c) * n, ack_bytes(&c),
		       (double)(dtb_now_ns() - t0) / 1e6);
		dtb_note("control: %u agents applied in %.0f ms", n,
			 (double)(dtb_now_ns() - t0) / 1e6);
		for (unsigned i = 0; i < n; i++)
			dt_link_stop(ag[i].link, 0);
		dt_ingest_stop(in);
		free(ag);
	}
	dtb_md("%s", "");
	dtb_md("The bytes grow with the agents (each gets the whole set: it carries every armed "
	       "task of the deployment, so one creation costs the full set again per agent); "
	       "the time stays about one heartbeat, because the agents hear of a set on their "
	       "own next acknowledgement, in parallel.");
}

int main(int argc, char **argv)
{
	if (argc != 2)
		dtb_die("usage: dt-bench-tasks DIR");
	dt_log_set_level(DT_LOG_WARN);
	snprintf(api_url, sizeof(api_url), "ipc://%s/api", argv[1]);
	snprintf(ingest_url, sizeof(ingest_url), "ipc://%s/ingest", argv[1]);
	task_service(argv[1]);
	control_path(argv[1]);
	return 0;
}
