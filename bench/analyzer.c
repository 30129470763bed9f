/* SPDX-License-Identifier: MIT */
/*
 * analyzer.c - benchmark 4: hop records per second turned into paths and statistics,
 * from the store, against a plain qsort of the same records.
 *
 *     dt-bench-analyzer DIR [PACKETS]
 *     dt-bench-analyzer --scale DIR [MAX_RECORDS]    (the growth curves: analyzer_scale.c)
 *
 * Setup (not timed): PACKETS packets (default 250,000) of one TCP flow, each sampled at the
 * four hops of the lab's path (h1 pt1 port-in, h1 ul0 uplink-out, h2 ul0 uplink-in,
 * h2 pt1 port-out), are shipped the way agents ship them, in batches of up to 1,024
 * samples per node, and stored in a collector store (collector/store.h, LMDB) in DIR.
 * A second input has the same number of records, from packets the overlay floods: h1
 * sends three copies of each (to h2, h3 and h4), h2 delivers it, h3 and h4 discard
 * theirs (10 records a packet), so that the tree of copies is measured too.
 *
 * Timed, on one thread, ROUNDS times (the median is reported), what the analyzer does
 * with them (analyzer.c's on_batch and build_report):
 *   1. scan the store (dt_store_scan()) and check each batch as the analyzer's ingest
 *      does (dt_batch_check());
 *   2. intern the batch's names (strtab.h), read its samples off the raw bytes
 *      (dt_batch_samples()) and attribute each to the task (dt_stitch_add(), stitch.h),
 *      which appends it to the task's observations;
 *   3. build the report: paths, fates, the per-hop table, the verdict and latency
 *      statistics (dt_paths_build(), paths.h), at a moment after the analysis window so
 *      that every packet is judged, as the analyzer's tick and a task's live counts do
 *      (ctx.no_packets: no packet list).
 * Apart, for information: the same report with every packet listed, its hops' prefixes
 * and names copied, as a report request builds it.
 * Baseline, same rounds: qsort() of a copy of the same attributed records by packet
 * identity and time, the least any grouping by packet must do.
 *
 * Prints rows (common.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "analyzer.h"
#include "analyzer_input.h"
#include "common.h"
#include "dt_log.h"
#include "store.h"

#define ROUNDS 3

static const struct dt_tuple flow = {
	.saddr = 0x0100640a, /* 10.100.0.1, network order */
	.daddr = 0x0200640a,
	.sport = 0x409c, /* 40000 */
	.dport = 0x5000, /* 80 */
	.vni = 100,
	.proto = 6,
};

/* --- the store ---------------------------------------------------------------------------- */

/* The flow of task t (0, 1, ...): the benchmark's flow from source port 40000 + t. */
static struct dt_tuple flow_of(uint32_t t)
{
	struct dt_tuple f = flow;

	f.sport = htons((uint16_t)(40000 + t));
	return f;
}

/*
 * The samples of packets [p0, p0 + n) at node (0: h1, 1: h2, 2: h3, 3: h4), as one batch.
 * Packet p is of task p % n_tasks (their samples interleaved).
 * Without copies: h1 port-in and uplink-out, h2 uplink-in and port-out. With copies, h1
 * floods every packet to h2, h3 and h4 (three uplink-outs, head-end replication), and h3
 * and h4 receive a copy and discard it (a drop without a specific reason).
 */
static void fill_batch(struct dt_batch *b, int node, uint32_t p0, uint32_t n, bool copies,
		       uint32_t n_tasks)
{
	b->n_samples = 0;
	for (uint32_t p = p0; p < p0 + n; p++) {
		uint64_t t = T0_NS + (uint64_t)p * 10000;
		int hops = node == 0 && copies ? 4 : 2;

		for (int h = 0; h < hops; h++) {
			struct dt_wire_sample *s = &b->samples[b->n_samples++];

			memset(s, 0, sizeof(*s));
			s->tuple = flow_of(p % n_tasks);
			s->ip_id = (uint16_t)p;
			s->ident = 0x10000000u + p * 1448u;
			s->len = 1500;
			s->drop_name = DT_STR_NONE;
			s->drop_where = DT_STR_NONE;
			s->outer_saddr = 0x01001fac; /* 172.31.0.1 -> .2 (.3, .4) */
			s->outer_daddr = (uint32_t)(node == 0 ? h + 1 : node + 1) << 24 | 0x001fac;
			if (node == 0 && h == 0) {
				s->hook = DT_HOOK_PORT_IN;
				s->flags = DT_SAMPLE_F_FIRST_HOP;
				s->task_id = p % n_tasks + 1; /* tasks are numbered from 1 */
				s->iface = 0;
				s->ts_ns = t;
				s->outer_saddr = s->outer_daddr = 0;
			} else if (node == 0) {
				s->hook = DT_HOOK_UPLINK_OUT;
				s->iface = 1;
				s->ts_ns = t + 35000 + (uint64_t)h * 1000;
			} else if (h == 0) {
				s->hook = DT_HOOK_UPLINK_IN;
				s->iface = 1;
				s->ts_ns = t + 42000 + (uint64_t)node * 1000;
			} else if (node == 1) {
				s->hook = DT_HOOK_PORT_OUT;
				s->iface = 0;
				s->ts_ns = t + 85000;
				s->outer_saddr = s->outer_daddr = 0;
			} else {
				s->hook = DT_HOOK_DROP;
				s->iface = 2;
				s->ts_ns = t + 50000 + (uint64_t)node * 1000;
				s->drop_reason =
					2; /* NOT_SPECIFIED: the bridge discards the copy */
				s->outer_saddr = s->outer_daddr = 0;
			}
		}
	}
}

void bench_batches(uint32_t packets, bool copies, uint32_t n_tasks,
		   void (*put)(void *arg, const char *sender, uint64_t seq, const void *buf,
			       size_t len),
		   void *arg)
{
	struct dt_batch b;
	msgpack_sbuffer buf;
	uint64_t seq[4] = {0, 0, 0, 0};
	int nodes = copies ? 4 : 2;

	memset(&b, 0, sizeof(b));
	b.samples = calloc(SAMPLES, sizeof(*b.samples));
	if (!b.samples)
		dtb_die("out of memory");
	b.n_ifaces = 3;
	snprintf(b.ifaces[0], sizeof(b.ifaces[0]), "pt1");
	snprintf(b.ifaces[1], sizeof(b.ifaces[1]), "ul0");
	snprintf(b.ifaces[2], sizeof(b.ifaces[2]), "vxlan0");
	for (uint32_t p0 = 0; p0 < packets; p0 += SAMPLES / 4) {
		uint32_t n = packets - p0 < SAMPLES / 4 ? packets - p0 : SAMPLES / 4;

		for (int node = 0; node < nodes; node++) {
			snprintf(b.sender, sizeof(b.sender), "h%d", node + 1);
			snprintf(b.node, sizeof(b.node), "h%d", node + 1);
			b.seq = ++seq[node];
			fill_batch(&b, node, p0, n, copies, n_tasks);
			msgpack_sbuffer_init(&buf);
			if (dt_batch_encode(&buf, &b))
				dtb_die("dt_batch_encode");
			put(arg, b.sender, b.seq, buf.data, buf.size);
			msgpack_sbuffer_destroy(&buf);
		}
	}
	free(b.samples);
}

static void store_put(void *arg, const char *sender, uint64_t seq, const void *buf, size_t len)
{
	if (dt_store_put(arg, sender, seq, buf, len))
		dtb_die("dt_store_put");
}

/* Who hosts what: i2 (the flow's destination) behind h2. */
static const char *host_of(const void *arg, uint32_t vni, uint32_t addr)
{
	(void)arg;
	return vni == flow.vni && addr == flow.daddr ? "h2" : NULL;
}

/* --- the analyzer's path ------------------------------------------------------------------- */

void ana_init(struct ana *a, uint32_t n_tasks)
{
	char err[256];

	memset(a, 0, sizeof(*a));
	if (!(a->strs = dt_strtab_new()) || !(a->tasks = dt_tasks_new()) ||
	    !(a->task = calloc(n_tasks, sizeof(*a->task))))
		dtb_die("no memory");
	for (uint32_t t = 0; t < n_tasks; t++) {
		struct dt_task_spec spec = {.flags = DT_TASK_DIR_REQUEST, .tuple = flow_of(t)};

		if (dt_tasks_create(a->tasks, &spec, 0, "bench", T0_NS - 1000000000ull, &a->task[t],
				    err, sizeof(err)))
			dtb_die("dt_tasks_create: %s", err);
		if (a->task[t]->id != t + 1)
			dtb_die("task %u has id %u, want %u", t, a->task[t]->id, t + 1);
		dt_task_ready(a->tasks, a->task[t], 0);
	}
	a->n_tasks = n_tasks;
	if (!(a->stitch = dt_stitch_new(a->tasks, WINDOW_MS)))
		dtb_die("no memory");
	a->now_ms = 1000000; /* the analyzer's monotonic clock at arrival */
}

void ana_free(struct ana *a)
{
	dt_stitch_free(a->stitch);
	dt_tasks_free(a->tasks);
	dt_strtab_free(a->strs);
	free(a->task);
}

void ana_ctx(const struct ana *a, uint32_t packets, struct dt_paths_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->strs = a->strs;
	ctx->now_ns = T0_NS + (uint64_t)packets * 10000 + 60000000000ull;
	ctx->now_ms = a->now_ms + 10 * WINDOW_MS;
	ctx->window_ms = WINDOW_MS;
	ctx->host_of = host_of;
	ctx->no_packets = true;
}

static uint32_t intern(struct ana *a, const char *s, size_t max)
{
	uint32_t idx;

	if (dt_strtab_intern(a->strs, s, max, &idx))
		dtb_die("dt_strtab_intern");
	return idx;
}

/* One sample of a batch, as analyzer/ingest.c's add_sample(). */
struct walk {
	struct ana *a;
	const struct dt_batch *b;
	uint32_t node, ifaces[DT_BATCH_MAX_IFACES];
};

static void add_sample(void *arg, const struct dt_wire_sample *w)
{
	const struct walk *wk = arg;
	struct dt_stitch_in sin;

	dt_stitch_in_fill(&sin, w, wk->node,
			  w->iface < wk->b->n_ifaces ? wk->ifaces[w->iface] : DT_STRTAB_NONE,
			  DT_STRTAB_NONE, DT_STRTAB_NONE, wk->a->now_ms);
	if (dt_stitch_add(wk->a->stitch, &sin, wk->a->now_ms))
		dtb_die("dt_stitch_add: out of memory");
}

/* What the analyzer does with one stored batch: dt_ingest's check (check_only), then
 * analyzer/ingest.c's on_batch: intern the names, read the samples off the raw bytes and
 * attribute each. */
int on_stored(void *arg, uint64_t lseq, const void *raw, size_t len)
{
	struct ana *a = arg;
	struct walk wk = {.a = a};
	struct dt_batch b;

	if (dt_batch_check(raw, len, &b))
		dtb_die("stored batch %llu does not check", (unsigned long long)lseq);
	wk.b = &b;
	wk.node = intern(a, b.node, sizeof(b.node));
	for (uint32_t i = 0; i < b.n_ifaces; i++)
		wk.ifaces[i] = intern(a, b.ifaces[i], sizeof(b.ifaces[i]));
	if (dt_batch_samples(raw, len, &b, add_sample, &wk))
		dtb_die("stored batch %llu does not read", (unsigned long long)lseq);
	a->records += b.n_samples;
	dt_batch_free(&b);
	return 0;
}

/* --- the baseline -------------------------------------------------------------------------- */

static int obs_cmp(const void *x, const void *y)
{
	const struct dt_obs *a = x, *b = y;
	int c = memcmp(&a->canon, &b->canon, sizeof(a->canon));

	if (c)
		return c;
	if (a->ip_id != b->ip_id)
		return a->ip_id < b->ip_id ? -1 : 1;
	if (a->ident != b->ident)
		return a->ident < b->ident ? -1 : 1;
	return a->ts_ns < b->ts_ns ? -1 : a->ts_ns > b->ts_ns;
}

/*
 * Stores PACKETS packets in DIR/name and runs the rounds on them: rows labelled with what
 * the input is. copies: every packet is flooded to three hosts (see fill_batch()).
 */
static void run(const char *dir, const char *name, uint32_t packets, bool copies)
{
	double e2e[ROUNDS], build[ROUNDS], sorts[ROUNDS], load[ROUNDS], listed[ROUNDS];
	size_t per_packet = copies ? 10 : 4;
	struct dt_store *st;
	char path[1024];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (dt_store_open(path, 8192, &st))
		dtb_die("dt_store_open %s", path);
	bench_batches(packets, copies, 1, store_put, st);

	for (int r = 0; r < ROUNDS; r++) {
		struct dt_report rep;
		struct dt_paths_ctx ctx;
		struct dt_obs *copy;
		uint64_t t0, t1, t2, t3;
		struct ana a;

		ana_init(&a, 1);
		t0 = dtb_thread_cpu_ns();
		dt_store_scan(st, 0, UINT32_MAX, on_stored, &a);
		t1 = dtb_thread_cpu_ns();
		ana_ctx(&a, packets, &ctx);
		ctx.prefixes = &a.task[0]->prefixes;
		memset(&rep, 0, sizeof(rep));
		if (dt_paths_build(&ctx, a.task[0]->obs, a.task[0]->n_obs, &rep))
			dtb_die("dt_paths_build: out of memory");
		t2 = dtb_thread_cpu_ns();
		n = a.task[0]->n_obs;
		if (n != a.records || n != (size_t)packets * per_packet)
			dtb_die("%zu of %llu records attributed to the task", n,
				(unsigned long long)a.records);
		ana_check(&rep, packets, copies);
		dt_report_free(&rep);

		/* A report request: the same with every packet listed. */
		ctx.no_packets = false;
		t3 = dtb_thread_cpu_ns();
		if (dt_paths_build(&ctx, a.task[0]->obs, a.task[0]->n_obs, &rep))
			dtb_die("dt_paths_build: out of memory");
		listed[r] = n / ((dtb_thread_cpu_ns() - t3) / 1e9);
		if (rep.n_packets != packets)
			dtb_die("the report lists %u packets, want %u", rep.n_packets, packets);
		ana_check(&rep, packets, copies);
		dt_report_free(&rep);

		copy = malloc(n * sizeof(*copy));
		if (!copy)
			dtb_die("out of memory");
		memcpy(copy, a.task[0]->obs, n * sizeof(*copy));
		t3 = dtb_thread_cpu_ns();
		qsort(copy, n, sizeof(*copy), obs_cmp);
		sorts[r] = n / ((dtb_thread_cpu_ns() - t3) / 1e9);
		free(copy);
		ana_free(&a);

		e2e[r] = n / ((t2 - t0) / 1e9);
		load[r] = n / ((t1 - t0) / 1e9);
		build[r] = n / ((t2 - t1) / 1e9);
		dtb_note("%s round %d: %zu records: from the store %.2f M/s (scan+decode+attribute "
			 "%.2f M/s, paths %.2f M/s, listing every packet %.2f M/s), qsort %.2f M/s",
			 name, r + 1, n, e2e[r] / 1e6, load[r] / 1e6, build[r] / 1e6,
			 listed[r] / 1e6, sorts[r] / 1e6);
	}
	dt_store_close(st);

	{
		double e = dtb_median(e2e, ROUNDS), b = dtb_median(build, ROUNDS);
		double s = dtb_median(sorts, ROUNDS), l = dtb_median(load, ROUNDS);
		double li = dtb_median(listed, ROUNDS);
		const char *what = copies ? ", every packet flooded: 3 copies, 2 filtered" : "";

		dtb_row(dtb_fmt("analyzer: %zu stored hop records%s -> paths + statistics (scan, "
				"decode, attribute, build)",
				n, what),
			dtb_fmt("%.2f M records/s", e / 1e6), dtb_fmt("qsort %.2f M/s", s / 1e6),
			dtb_fmt("x%.2f", e / s), ">= 5 M/s",
			e >= 5e6 ? "meets" : dtb_fmt("misses by %.2f M/s", (5e6 - e) / 1e6));
		dtb_row(dtb_fmt("analyzer%s: of which scan + decode + attribute (dt_stitch_add)",
				copies ? " (copies)" : ""),
			dtb_fmt("%.2f M records/s", l / 1e6), dtb_fmt("qsort %.2f M/s", s / 1e6),
			dtb_fmt("x%.2f", l / s), "", "info");
		dtb_row(dtb_fmt("analyzer%s: of which paths + statistics (dt_paths_build, in memory)",
				copies ? " (copies)" : ""),
			dtb_fmt("%.2f M records/s", b / 1e6), dtb_fmt("qsort %.2f M/s", s / 1e6),
			dtb_fmt("x%.2f", b / s), "", "info");
		dtb_row(dtb_fmt("analyzer%s: a report request, every packet listed with its hops' "
				"prefixes and names (dt_paths_build, in memory)",
				copies ? " (copies)" : ""),
			dtb_fmt("%.2f M records/s", li / 1e6), dtb_fmt("qsort %.2f M/s", s / 1e6),
			dtb_fmt("x%.2f", li / s), "", "info");
	}
}

void ana_check(const struct dt_report *rep, uint32_t packets, bool copies)
{
	if (rep->task.delivered != packets || rep->n_stats != (copies ? 8u : 3u) ||
	    rep->n_copy_rows != (copies ? 2u : 0u))
		dtb_die("the report has %llu delivered packets, %u hop pairs and %u copy rows, want "
			"%u, %u and %u",
			(unsigned long long)rep->task.delivered, rep->n_stats, rep->n_copy_rows,
			packets, copies ? 8 : 3, copies ? 2 : 0);
}

int main(int argc, char **argv)
{
	uint32_t packets;

	if (argc < 2)
		dtb_die("usage: dt-bench-analyzer DIR [PACKETS] | --scale DIR [MAX_RECORDS]");
	dt_log_set_level(DT_LOG_WARN);
	/* As the daemon does: freed memory stays for the next round (baseline included). */
	dt_analyzer_keep_memory();
	if (strcmp(argv[1], "--scale") == 0)
		return analyzer_scale(argc > 3 ? strtoull(argv[3], NULL, 10) : 10000000ull);
	packets = argc > 2 ? (uint32_t)atoi(argv[2]) : 250000;
	if (packets < 1 || packets > DT_REPORT_MAX_PACKETS)
		dtb_die("PACKETS must be 1..%u", DT_REPORT_MAX_PACKETS);
	run(argv[1], "store", packets, false);
	/* The same number of records: each flooded packet has 10 where a unicast one has 4. */
	run(argv[1], "store-copies", packets * 4 / 10 ? packets * 4 / 10 : 1, true);
	return 0;
}
