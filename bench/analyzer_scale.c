/* SPDX-License-Identifier: MIT */
/*
 * analyzer_scale.c - the analyzer's growth curves (issue 16, "How the cost grows"), for
 * bench/run.sh --scale:
 *
 *     dt-bench-analyzer --scale DIR [MAX_RECORDS]      (default 10^7)
 *
 * Each point runs in a child process of its own, so that its peak memory is its own:
 *  1. hop records: 10^4 .. MAX_RECORDS records of unicast packets (4 hops), one task;
 *  2. the same with every packet flooded (10 hops: 3 copies, 2 of them filtered);
 *  3. concurrent tasks: 1, 100, 4,096 and 10,000 tasks, 10^6 records (or MAX_RECORDS
 *     when smaller), packet p of task p % tasks, so that every batch interleaves them.
 * Setup (not timed): the batches, encoded as agents send them, in memory (the store's scan
 * is left out: benchmark 4 measures it). Timed (thread CPU): decode, intern and attribute
 * every batch (as analyzer.c's on_batch), then build every task's report as the tick does
 * (no packet list). Memory: the resident set after attribution less before it, per packet
 * (what a packet held in the window costs), and the peak (getrusage) less the same start.
 *
 * Prints markdown (common.h, dtb_md()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyzer_input.h"
#include "common.h"

struct point {
	uint64_t records;
	double load;		/* records/s: decode + intern + attribute */
	double build;		/* records/s: every task's report */
	double total;		/* records/s: both */
	double held_per_packet; /* bytes */
	double peak_mib;	/* above the resident set before attribution */
};

struct bufs {
	struct {
		void *data;
		size_t len;
	} * v;
	size_t n, cap;
};

static void keep(void *arg, const char *sender, uint64_t seq, const void *buf, size_t len)
{
	struct bufs *b = arg;

	(void)sender;
	(void)seq;
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 1024;
		if (!(b->v = realloc(b->v, b->cap * sizeof(*b->v))))
			dtb_die("out of memory");
	}
	if (!(b->v[b->n].data = malloc(len)))
		dtb_die("out of memory");
	memcpy(b->v[b->n].data, buf, len);
	b->v[b->n++].len = len;
}

static double rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
		dtb_die("cannot read /proc/self/statm");
	fclose(f);
	return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* One point, in this process (a child). */
static void measure(uint32_t packets, bool copies, uint32_t n_tasks, struct point *pt)
{
	struct bufs b = {0};
	struct rusage ru;
	uint64_t t0, t1, t2, delivered = 0, n_obs = 0;
	double rss0, rss1;
	struct ana a;

	bench_batches(packets, copies, n_tasks, keep, &b);
	ana_init(&a, n_tasks);
	rss0 = rss_bytes();
	t0 = dtb_thread_cpu_ns();
	for (size_t i = 0; i < b.n; i++)
		on_stored(&a, i, b.v[i].data, b.v[i].len);
	t1 = dtb_thread_cpu_ns();
	rss1 = rss_bytes();
	for (uint32_t t = 0; t < n_tasks; t++) {
		struct dt_paths_ctx ctx;
		struct dt_report rep;

		ana_ctx(&a, packets, &ctx);
		memset(&rep, 0, sizeof(rep));
		if (dt_paths_build(&ctx, a.task[t]->obs, a.task[t]->n_obs, &rep))
			dtb_die("dt_paths_build: out of memory");
		if (n_tasks == 1)
			ana_check(&rep, packets, copies);
		delivered += rep.task.delivered;
		n_obs += a.task[t]->n_obs;
		dt_report_free(&rep);
	}
	t2 = dtb_thread_cpu_ns();
	if (delivered != packets || n_obs != a.records)
		dtb_die("%llu of %u packets delivered, %llu of %llu records attributed",
			(unsigned long long)delivered, packets, (unsigned long long)n_obs,
			(unsigned long long)a.records);
	getrusage(RUSAGE_SELF, &ru);
	pt->records = a.records;
	pt->load = a.records / ((t1 - t0) / 1e9);
	pt->build = a.records / ((t2 - t1) / 1e9);
	pt->total = a.records / ((t2 - t0) / 1e9);
	pt->held_per_packet = (rss1 - rss0) / packets;
	pt->peak_mib = ((double)ru.ru_maxrss * 1024 - rss0) / (1024.0 * 1024.0);
	ana_free(&a);
}

/* One point in a child process: its peak memory is its own. */
static void point(uint32_t packets, bool copies, uint32_t n_tasks, struct point *pt)
{
	int fd[2], status;
	pid_t pid;

	if (pipe(fd) != 0 || (pid = fork()) < 0)
		dtb_die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fd[0]);
		measure(packets, copies, n_tasks, pt);
		if (write(fd[1], pt, sizeof(*pt)) != (ssize_t)sizeof(*pt))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], pt, sizeof(*pt)) != (ssize_t)sizeof(*pt) ||
	    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		dtb_die("the point of %u packets, %u tasks failed", packets, n_tasks);
	close(fd[0]);
	dtb_note("%u packets%s, %u tasks: %.2f M records/s (attribute %.2f, build %.2f), %.0f "
		 "bytes a packet held, peak %.1f MiB",
		 packets, copies ? " (copies)" : "", n_tasks, pt->total / 1e6, pt->load / 1e6,
		 pt->build / 1e6, pt->held_per_packet, pt->peak_mib);
}

static void table_head(const char *first)
{
	dtb_md("| %s | records | records/s (all) | attribute | build reports | bytes a packet "
	       "held | peak MiB |",
	       first);
	dtb_md("|---|---|---|---|---|---|---|");
}

static void table_row(const char *first, const struct point *p)
{
	dtb_md("| %s | %llu | %.2f M | %.2f M | %.2f M | %.0f | %.1f |", first,
	       (unsigned long long)p->records, p->total / 1e6, p->load / 1e6, p->build / 1e6,
	       p->held_per_packet, p->peak_mib);
}

/* How the throughput of p[0..n) holds from the second point to the last (the first is
 * small enough to sit in caches), as a sentence. */
static void say_linear(const char *what, const struct point *p, size_t n, const char *why_not)
{
	double r = p[n - 1].total / p[n > 1 ? 1 : 0].total;
	double m = p[n - 1].peak_mib / p[n > 1 ? 1 : 0].peak_mib;
	double x = (double)p[n - 1].records / (double)p[n > 1 ? 1 : 0].records;

	dtb_md("%s", "");
	if (r >= 0.75)
		dtb_md("%s: the cost grows linearly: throughput at %llu records is x%.2f of that at "
		       "%llu, and peak memory grows x%.1f for x%.0f the records.",
		       what, (unsigned long long)p[n - 1].records, r,
		       (unsigned long long)p[n > 1 ? 1 : 0].records, m, x);
	else
		dtb_md("%s: the cost grows faster than linearly: throughput at %llu records is "
		       "x%.2f of that at %llu (peak memory x%.1f for x%.0f the records). %s",
		       what, (unsigned long long)p[n - 1].records, r,
		       (unsigned long long)p[n > 1 ? 1 : 0].records, m, x, why_not);
}

int analyzer_scale(uint64_t max_records)
{
	static const uint32_t tasks[] = {1, 100, 4096, 10000};
	struct point uni[4], cop[4], tk[4];
	size_t n = 0;
	uint64_t per_task = max_records < 1000000 ? max_records : 1000000;
	const char *why = "The grouping by packet is linear; what is left superlinear is the "
			  "sort of the packets by time and of the hop pairs and hops for the "
			  "tables (n log n), and the working set outgrowing the caches.";

	dtb_md("## Analyzer: hop records to paths and statistics");
	dtb_md("%s", "");
	dtb_md("Thread CPU time of decoding, interning and attributing encoded batches "
	       "(`dt_stitch_add`), then building every task's report as the tick does "
	       "(`dt_paths_build`, no packet list). Each point runs in a process of its own; "
	       "memory is the resident set above that before attribution.");
	dtb_md("%s", "");
	table_head("input");
	for (uint64_t r = 10000; r <= max_records && n < 4; r *= 10, n++) {
		point((uint32_t)(r / 4), false, 1, &uni[n]);
		table_row("unicast, 4 hops a packet", &uni[n]);
	}
	for (size_t i = 0; i < n; i++) {
		point((uint32_t)(uni[i].records / 10), true, 1, &cop[i]);
		table_row("flooded, 10 hops a packet (3 copies)", &cop[i]);
	}
	if (max_records < 10000000) {
		dtb_md("%s", "");
		dtb_md("Capped at %llu records (MAX_RECORDS).", (unsigned long long)max_records);
	}
	say_linear("Hop records", uni, n, why);
	say_linear("Packets with copies", cop, n, why);
	dtb_md("%s", "");
	dtb_md("A packet held in the window costs its observations: %zu bytes each "
	       "(`struct dt_obs`), 4 a unicast packet and 10 a flooded one, plus the array's "
	       "growth by doubling, and their packet prefixes apart (none in this input; up to "
	       "128 bytes each as the agents capture them).",
	       sizeof(struct dt_obs));
	dtb_md("%s", "");
	table_head("concurrent tasks");
	for (size_t i = 0; i < 4; i++) {
		point((uint32_t)(per_task / 4), false, tasks[i], &tk[i]);
		table_row(dtb_fmt("%u", tasks[i]), &tk[i]);
	}
	dtb_md("%s", "");
	dtb_md("Concurrent tasks, %llu records in all, their samples interleaved in every batch: "
	       "throughput at 10,000 tasks is x%.2f of one task's. %s",
	       (unsigned long long)tk[0].records, tk[3].total / tk[0].total,
	       tk[3].total / tk[0].total >= 0.75
		       ? "Linear in the records: attribution looks a sample's task up by hash, "
			 "and each report costs its own task's records (many small reports build "
			 "faster than one large one: their scratch memory is reused from the heap, "
			 "where a large report faults fresh pages in)."
		       : "Each report has a fixed cost (its tables, verdict and allocations) "
			 "that many small tasks pay many times.");
	return 0;
}
