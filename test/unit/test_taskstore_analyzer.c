// SPDX-License-Identifier: MIT
/*
 * test_taskstore_analyzer.c - the analyzer killed with SIGKILL (issue 7): a sample it
 * acknowledged while holding it, and a translation it learned, survive the crash; nothing
 * is counted twice.
 *
 * The analyzer runs as its own process (dyetrace-analyzer, next to this test's
 * executable: nng cannot run in a child forked from a process that uses it), which the
 * test kills with SIGKILL and starts again on the same store. The test plays a collector
 * (batches over the ingest socket) and the CLI (the API socket).
 *
 * One traced UDP flow, i1 (10.100.0.1:40300) to the internet (203.0.113.10:9), leaving
 * through a gateway that translates it to 203.0.113.1:40300. Each packet has two samples:
 * h1's port-in (the first hop) and gw's gw-out (the exit). A gw-out sample with the
 * outside tuple and no conntrack (orig) can be attributed only through a translation
 * learned from another gw-out sample that has one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "dt_proto.h"
#include "dt_tuple.h"

#define TOKEN "acme-0123456789abcdef"
#define WINDOW_MS 1000

static char dir[64], conf[96], api_url[96], ingest_url[96], analyzer[4096];
static pid_t child = -1;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Starts the analyzer on its configuration (the store stays). */
static void start(void)
{
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		execl(analyzer, analyzer, "-c", conf, (char *)NULL);
		_exit(127);
	}
}

/* The crash: SIGKILL, whatever the analyzer is doing. */
static void kill_analyzer(void)
{
	int status;

	cr_assert_eq(kill(child, SIGKILL), 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
	child = -1;
}

/* The analyzer's configuration, with one tenant, name (token TOKEN), and extra settings. */
static void write_conf_extra(const char *name, const char *extra)
{
	FILE *f;

	cr_assert_not_null(f = fopen(conf, "w"));
	fprintf(f,
		"listen = \"%s\";\napi = \"%s\";\nstore = \"%s/store\";\n"
		"store_size_mb = 64;\nwindow_ms = %d;\nstats_interval_s = 0;\n"
		"host_grace_ms = 60000;\narm_timeout_ms = 60000;\n"
		"tenants = ( { name = \"%s\"; token = \"%s\"; } );\n",
		ingest_url, api_url, dir, WINDOW_MS, name, TOKEN);
	fputs(extra, f);
	cr_assert_eq(fclose(f), 0);
}

static void write_conf(const char *name)
{
	write_conf_extra(name, "");
}

static void setup(void)
{
	char self[2048];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	cr_assert_gt(n, 0);
	self[n] = '\0';
	cr_assert_not_null(slash = strrchr(self, '/'));
	*slash = '\0';
	snprintf(analyzer, sizeof(analyzer), "%s/dyetrace-analyzer", self);
	cr_assert_eq(access(analyzer, X_OK), 0, "%s: build dyetrace-analyzer first", analyzer);
	strcpy(dir, "/tmp/dt-test-kill-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/analyzer.conf", dir);
	snprintf(api_url, sizeof(api_url), "ipc://%s/api", dir);
	snprintf(ingest_url, sizeof(ingest_url), "ipc://%s/ingest", dir);
	write_conf("acme");
	start();
}

static void teardown(void)
{
	char cmd[128];

	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(analyzer_kill, .init = setup, .fini = teardown, .timeout = 60);

/* One request, one reply (*buf: free with nng_free()). Retries the dial while the
 * analyzer starts. */
static void request(const char *url, const msgpack_sbuffer *req, void **buf, size_t *len)
{
	nng_socket s;
	int rv = -1;

	cr_assert_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	for (int i = 0; i < 250 && rv != 0; i++) {
		if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
			sleep_ms(20);
		}
	}
	cr_assert_eq(rv, 0, "dial %s: %s", url, nng_strerror(rv));
	cr_assert_eq(nng_send(s, req->data, req->size, 0), 0);
	cr_assert_eq(nng_recv(s, buf, len, NNG_FLAG_ALLOC), 0);
	nng_close(s);
}

static struct dt_tuple tuple(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct dt_tuple t;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(dt_ipv4_parse(src, &t.saddr), 0);
	cr_assert_eq(dt_ipv4_parse(dst, &t.daddr), 0);
	t.sport = htons(sport);
	t.dport = htons(dport);
	t.proto = IPPROTO_UDP;
	t.vni = 100;
	return t;
}

#define INSIDE tuple("10.100.0.1", 40300, "203.0.113.10", 9)
#define OUTSIDE tuple("203.0.113.1", 40300, "203.0.113.10", 9)

static uint32_t create_task(void)
{
	struct dt_task_spec spec;
	struct dt_task_info t;
	enum dt_msg_type type;
	msgpack_sbuffer sb;
	void *buf;
	size_t len;

	memset(&spec, 0, sizeof(spec));
	spec.tuple = INSIDE;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_task_create_encode(&sb, TOKEN, &spec), 0);
	request(api_url, &sb, &buf, &len);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(dt_msg_type(buf, len, &type), 0);
	cr_assert_eq(type, DT_MSG_TASK);
	cr_assert_eq(dt_task_decode(buf, len, &t), 0);
	nng_free(buf, len);
	return t.id;
}

/* The reply to one API request of the tenant about task id (*buf: free with nng_free()). */
static void api_reply(int (*encode)(msgpack_sbuffer *, const char *, uint32_t), uint32_t id,
		      void **buf, size_t *len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(encode(&sb, TOKEN, id), 0);
	request(api_url, &sb, buf, len);
	msgpack_sbuffer_destroy(&sb);
}

/* The type of the reply to one API request about task id (DT_MSG_ERROR when refused). */
static enum dt_msg_type api_type(int (*encode)(msgpack_sbuffer *, const char *, uint32_t),
				 uint32_t id)
{
	enum dt_msg_type type = 0;
	void *buf;
	size_t len;

	api_reply(encode, id, &buf, &len);
	cr_assert_eq(dt_msg_type(buf, len, &type), 0);
	nng_free(buf, len);
	return type;
}

/* The report of task id, decoded (free with dt_report_free()). */
static void report(uint32_t id, struct dt_report *r)
{
	enum dt_msg_type type;
	void *buf;
	size_t len;

	api_reply(dt_report_get_encode, id, &buf, &len);
	cr_assert_eq(dt_msg_type(buf, len, &type), 0);
	cr_assert_eq(type, DT_MSG_REPORT);
	cr_assert_eq(dt_report_decode(buf, len, r), 0);
	nng_free(buf, len);
}

/* A collector's batch seq of node, with samples s[0..n) and the node's loss counters lost
 * (NULL: none); without samples, a heartbeat. Returns the ACK status. */
static uint32_t batch_lost(uint64_t seq, const char *node, const char *ifname,
			   struct dt_wire_sample *s, uint32_t n, const uint64_t *lost)
{
	struct dt_batch b;
	struct dt_ack ack;
	msgpack_sbuffer sb;
	void *buf;
	size_t len;
	uint32_t st;

	memset(&b, 0, sizeof(b));
	snprintf(b.sender, sizeof(b.sender), "c1");
	snprintf(b.node, sizeof(b.node), "%s", node);
	b.seq = seq;
	b.n_ifaces = 1;
	snprintf(b.ifaces[0], sizeof(b.ifaces[0]), "%s", ifname);
	b.samples = s;
	b.n_samples = n;
	if (lost) {
		memcpy(b.lost, lost, sizeof(b.lost));
	}
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &b), 0);
	request(ingest_url, &sb, &buf, &len);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(dt_ack_decode(buf, len, &ack), 0);
	st = ack.status;
	dt_ack_free(&ack);
	nng_free(buf, len);
	return st;
}

/* A collector's batch seq of node, with samples s[0..n); returns the ACK status. */
static uint32_t batch(uint64_t seq, const char *node, const char *ifname, struct dt_wire_sample *s,
		      uint32_t n)
{
	return batch_lost(seq, node, ifname, s, n, NULL);
}

/* Packet ip_id's sample at hook: port-in (first hop, inside tuple), or gw-out (the outside
 * tuple, with orig when nat). */
static void sample(struct dt_wire_sample *w, uint8_t hook, uint32_t task, uint16_t ip_id, bool nat)
{
	uint64_t now_ns = (uint64_t)time(NULL) * 1000000000ull;

	memset(w, 0, sizeof(*w));
	w->hook = hook;
	w->ts_ns = now_ns - 30000000000ull + ip_id * 1000000ull + (hook == DT_HOOK_GW_OUT) * 1000;
	w->ip_id = ip_id;
	w->ident = 0x30000 + ip_id;
	w->len = 60;
	w->drop_name = DT_STR_NONE;
	w->drop_where = DT_STR_NONE;
	if (hook == DT_HOOK_PORT_IN) {
		w->flags = DT_SAMPLE_F_FIRST_HOP;
		w->task_id = task;
		w->tuple = INSIDE;
	} else {
		w->tuple = OUTSIDE;
		if (nat) {
			w->flags = DT_SAMPLE_F_NAT;
			w->orig = INSIDE;
		}
	}
}

/* Polls task id's report until every packet of it has 2 hops (or 10 s pass); leaves the
 * last report in r. */
static void wait_paths(uint32_t id, uint32_t n_packets, struct dt_report *r)
{
	for (int i = 0; i < 200; i++) {
		uint32_t full = 0;

		report(id, r);
		for (uint32_t k = 0; k < r->n_packets; k++) {
			full += r->packets[k].n_hops == 2;
		}
		if (r->n_packets == n_packets && full == n_packets) {
			return;
		}
		dt_report_free(r);
		sleep_ms(50);
	}
	report(id, r);
}

Test(analyzer_kill, held_samples_and_translations_survive_sigkill)
{
	struct dt_wire_sample p1[1], g1[1], p2[1], g2[1], p3[1], g3[1];
	struct dt_report r;
	uint32_t id = create_task();

	/* Packet 1: its gw-out sample has no orig, nothing taught its translation yet: held.
	 * Acknowledged, then the crash. */
	sample(p1, DT_HOOK_PORT_IN, id, 1, false);
	sample(g1, DT_HOOK_GW_OUT, id, 1, false);
	cr_assert_eq(batch(1, "h1", "pt1", p1, 1), DT_ST_OK);
	cr_assert_eq(batch(2, "gw", "ext0", g1, 1), DT_ST_OK);
	kill_analyzer();
	start();

	/* Packet 2's gw-out sample teaches the translation: the held sample of packet 1 is
	 * attributed when the window closes. */
	sample(p2, DT_HOOK_PORT_IN, id, 2, false);
	sample(g2, DT_HOOK_GW_OUT, id, 2, true);
	cr_assert_eq(batch(3, "h1", "pt1", p2, 1), DT_ST_OK);
	cr_assert_eq(batch(4, "gw", "ext0", g2, 1), DT_ST_OK);
	wait_paths(id, 2, &r);
	cr_assert_eq(r.n_packets, 2, "packets %u", r.n_packets);
	for (uint32_t k = 0; k < r.n_packets; k++) {
		cr_expect_eq(r.packets[k].n_hops, 2, "packet %u: %u hops (the held sample lost?)",
			     r.packets[k].ip_id, r.packets[k].n_hops);
	}
	cr_expect_eq(r.unmatched, 0);
	dt_report_free(&r);

	/*
	 * Crash again, once the next batch is acknowledged (the analyzer commits what the
	 * window released before it takes a batch): the held record went with the
	 * observation it became, so the sample is neither held again nor counted twice. The
	 * translation is learned again from what is stored: packet 3's gw-out sample,
	 * without orig, is attributed.
	 */
	sample(p3, DT_HOOK_PORT_IN, id, 3, false);
	sample(g3, DT_HOOK_GW_OUT, id, 3, false);
	cr_assert_eq(batch(5, "h1", "pt1", p3, 1), DT_ST_OK);
	kill_analyzer();
	start();
	cr_assert_eq(batch(6, "gw", "ext0", g3, 1), DT_ST_OK);
	/* A resent batch (its ACK lost in the crash) is not stored twice either. */
	cr_assert_eq(batch(2, "gw", "ext0", g1, 1), DT_ST_OK);
	wait_paths(id, 3, &r);
	cr_assert_eq(r.n_packets, 3, "packets %u", r.n_packets);
	for (uint32_t k = 0; k < r.n_packets; k++) {
		cr_expect_eq(r.packets[k].n_hops, 2, "packet %u: %u hops", r.packets[k].ip_id,
			     r.packets[k].n_hops);
	}
	cr_expect_eq(r.unmatched, 0);
	cr_expect_eq(r.task.colored, 3);
	dt_report_free(&r);

	/* A window later nothing more appears: nothing was left held to be counted again. */
	sleep_ms(2 * WINDOW_MS + 200);
	report(id, &r);
	cr_expect_eq(r.n_packets, 3);
	cr_expect_eq(r.unmatched, 0);
	for (uint32_t k = 0; k < r.n_packets; k++) {
		cr_expect_eq(r.packets[k].n_hops, 2);
	}
	dt_report_free(&r);
}

static uint32_t create_task_for(uint32_t duration_s)
{
	struct dt_task_spec spec;
	struct dt_task_info t;
	msgpack_sbuffer sb;
	void *buf;
	size_t len;

	memset(&spec, 0, sizeof(spec));
	spec.tuple = INSIDE;
	spec.duration_s = duration_s;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_task_create_encode(&sb, TOKEN, &spec), 0);
	request(api_url, &sb, &buf, &len);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(dt_task_decode(buf, len, &t), 0);
	nng_free(buf, len);
	return t.id;
}

/* A packet seen only at port-in, a window ago, has vanished; its task expires while the
 * analyzer is down, and the final report made at the restart still says vanished (the
 * restored observations do not count as just arrived for an expired task). */
Test(analyzer_kill, expired_while_down_final_report_keeps_vanished)
{
	struct dt_wire_sample p1[1];
	struct dt_report r;
	uint32_t id = create_task_for(3);

	sample(p1, DT_HOOK_PORT_IN, id, 1, false);
	cr_assert_eq(batch(1, "h1", "pt1", p1, 1), DT_ST_OK);
	sleep_ms(WINDOW_MS + 300);
	report(id, &r);
	cr_assert_eq(r.n_packets, 1);
	cr_expect_eq(r.packets[0].fate, DT_FATE_VANISHED, "live: %s", r.verdict.sentence);
	dt_report_free(&r);
	kill_analyzer();
	sleep_ms(3000);
	start();
	report(id, &r);
	cr_expect_eq(r.task.state, DT_TASK_EXPIRED);
	cr_assert_eq(r.n_packets, 1);
	cr_expect_eq(r.packets[0].fate, DT_FATE_VANISHED, "final: %s", r.verdict.sentence);
	dt_report_free(&r);
}

/* An unrelated sample the stitcher holds (it matches no task) does not make another
 * task's vanished packet look in flight: only samples held across a restart do. */
Test(analyzer_kill, an_unrelated_held_sample_judges_nothing)
{
	struct dt_wire_sample p1[1], x[1];
	struct dt_report r;
	uint32_t id = create_task();

	sample(p1, DT_HOOK_PORT_IN, id, 1, false);
	cr_assert_eq(batch(1, "h1", "pt1", p1, 1), DT_ST_OK);
	sleep_ms(WINDOW_MS + 300);
	report(id, &r);
	cr_expect_eq(r.packets[0].fate, DT_FATE_VANISHED, "before: %s", r.verdict.sentence);
	dt_report_free(&r);
	memset(x, 0, sizeof(x));
	x->hook = DT_HOOK_UPLINK_IN;
	x->ts_ns = (uint64_t)time(NULL) * 1000000000ull;
	x->tuple = tuple("192.0.2.1", 1, "192.0.2.2", 2);
	x->drop_name = x->drop_where = DT_STR_NONE;
	cr_assert_eq(batch(2, "h9", "ul0", x, 1), DT_ST_OK);
	report(id, &r);
	cr_expect_eq(r.packets[0].fate, DT_FATE_VANISHED, "with a stranger held: %s",
		     r.verdict.sentence);
	dt_report_free(&r);
}

/* The nodes' loss counters (the reports' lost) are stored with the rest: a restarted
 * analyzer reports the same lost as before, from a heartbeat and from a batch alike. A
 * report counts only what was lost after its task was created. */
Test(analyzer_kill, loss_counters_survive_sigkill)
{
	uint64_t before_h1[DT_LOSS_MAX] = {[DT_LOSS_RING_FULL] = 5};
	uint64_t lost_h1[DT_LOSS_MAX] = {[DT_LOSS_RING_FULL] = 12};
	uint64_t lost_gw[DT_LOSS_MAX] = {[DT_LOSS_QUEUE_FULL] = 3, [DT_LOSS_SPOOL_FULL] = 2};
	struct dt_wire_sample w;
	struct dt_report r;
	uint32_t id;

	cr_assert_eq(batch_lost(1, "h1", "pt1", NULL, 0, before_h1), DT_ST_OK, "heartbeat of h1");
	id = create_task();
	cr_assert_eq(batch_lost(2, "h1", "pt1", NULL, 0, lost_h1), DT_ST_OK, "heartbeat of h1");
	sample(&w, DT_HOOK_GW_OUT, id, 1, true);
	cr_assert_eq(batch_lost(3, "gw", "ext0", &w, 1, lost_gw), DT_ST_OK, "batch of gw");
	for (int run = 0; run < 2; run++) {
		report(id, &r);
		cr_expect_eq(r.lost[DT_LOSS_RING_FULL], 12 - 5, "run %d: ring-full %llu", run,
			     (unsigned long long)r.lost[DT_LOSS_RING_FULL]);
		cr_expect_eq(r.lost[DT_LOSS_QUEUE_FULL], 3, "run %d", run);
		cr_expect_eq(r.lost[DT_LOSS_SPOOL_FULL], 2, "run %d", run);
		dt_report_free(&r);
		if (run == 0) {
			kill_analyzer();
			start();
		}
	}
}

/* A tenant removed from the configuration has its active tasks cancelled at the next
 * start, with a status that says so; its report keeps what was stored. */
Test(analyzer_kill, tasks_of_a_removed_tenant_are_cancelled)
{
	struct dt_wire_sample w;
	struct dt_report r;
	uint32_t id = create_task();

	sample(&w, DT_HOOK_PORT_IN, id, 1, false);
	cr_assert_eq(batch(1, "h1", "pt1", &w, 1), DT_ST_OK);
	kill_analyzer();
	write_conf("another"); /* acme removed (the same token names the other tenant) */
	start();
	cr_expect_eq(api_type(dt_report_get_encode, id), DT_MSG_ERROR,
		     "another tenant does not see acme's task");
	kill_analyzer();
	write_conf("acme");
	start();
	report(id, &r);
	cr_expect_eq(r.task.state, DT_TASK_CANCELLED, "state %u", r.task.state);
	cr_expect_eq(r.task.status, DT_TS_TENANT_REMOVED, "status %u", r.task.status);
	cr_expect(strstr(r.task.status_text, "no longer in the analyzer's configuration"), "%s",
		  r.task.status_text);
	cr_expect_eq(r.n_packets, 1, "the stored sample's packet is in the final report");
	dt_report_free(&r);
}

/* How many tasks the tenant's task list holds. */
static uint32_t listed(void)
{
	struct dt_task_list l;
	msgpack_sbuffer sb;
	void *buf;
	size_t len;
	uint32_t n;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_task_list_encode(&sb, TOKEN), 0);
	request(api_url, &sb, &buf, &len);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(dt_tasks_decode(buf, len, &l), 0);
	nng_free(buf, len);
	n = l.n_tasks;
	dt_task_list_free(&l);
	return n;
}

/* retention_s: an ended task leaves memory (the list) but its report is still served, from
 * the store, and after a restart too; report_retention_s: then the report leaves the store. */
Test(analyzer_kill, ended_tasks_leave_memory_then_the_store)
{
	uint32_t id;
	int i;

	kill_analyzer();
	write_conf_extra("acme", "retention_s = 1;\nreport_retention_s = 4;\n");
	start();
	id = create_task();
	cr_assert_eq(api_type(dt_task_cancel_encode, id), DT_MSG_TASK, "cancelled");
	cr_assert_eq(listed(), 1, "listed while it is in memory");
	for (i = 0; i < 100 && listed() != 0; i++) {
		sleep_ms(50);
	}
	cr_expect_eq(listed(), 0, "out of memory (and of the list) after retention_s");
	cr_expect_eq(api_type(dt_report_get_encode, id), DT_MSG_REPORT,
		     "its report is served from the store");
	cr_expect_eq(api_type(dt_task_get_encode, id), DT_MSG_TASK, "task show reads the store");
	kill_analyzer();
	start();
	cr_expect_eq(listed(), 0, "a restart does not bring it back into memory");
	cr_expect_eq(api_type(dt_report_get_encode, id), DT_MSG_REPORT,
		     "its report after the restart");
	for (i = 0; i < 200 && api_type(dt_report_get_encode, id) == DT_MSG_REPORT; i++) {
		sleep_ms(50);
	}
	cr_expect_eq(api_type(dt_report_get_encode, id), DT_MSG_ERROR,
		     "purged after report_retention_s");
	cr_expect_eq(api_type(dt_task_get_encode, id), DT_MSG_ERROR, "task show: no task");
}
