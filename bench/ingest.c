/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - benchmark 3: collector ingest, samples per second from senders to durable
 * storage, against appending the same bytes to LMDB directly.
 *
 *     dt-bench-ingest DIR [BATCHES]
 *
 * DIR is a scratch directory on the disk the collector would use (the caller removes it).
 * Both paths write BATCHES batches of 1,024 samples (~66 KiB of msgpack each) per round,
 * with durable LMDB commits, and alternate for ROUNDS rounds:
 *
 *  - real: SENDERS agents (dt_link, one NNG req socket each, in a child process so that
 *    their encoding does not count) -> tcp on loopback -> dt_ingest (dt_batch_check(),
 *    dedupe by sender and seq, ack) -> the collector's store (dt_store_put_items(): the
 *    batches that arrived together and their senders' seqs in one transaction, a group
 *    commit), exactly what collector.c's on_batches does. Timed from the moment the agents
 *    are told to go until every batch is acknowledged.
 *  - baseline: the same encoded batches appended with mdb_put(MDB_APPEND) to an LMDB
 *    environment opened like the store (synchronous), in as many transactions as the real
 *    round's group commits took, each holding as many batches as its counterpart did: the
 *    same durable work (one fdatasync per commit). Each round runs the real path first,
 *    then this baseline, then the old one (one transaction per batch, for information:
 *    it pays a sync per batch where the collector shares one between ~2).
 *
 * "Per core" is samples per CPU-second of the collector side (the benchmark process: the
 * ingest thread and NNG's I/O threads; the child's agents excluded); "wall" is samples
 * per second of elapsed time, which is bounded by the two synchronous writes of each
 * commit in both paths (fdatasync of the data pages, then the meta page through an
 * O_DSYNC descriptor). Figures are medians of the rounds. Prints rows (common.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <nng/nng.h>

#include "collector.h"
#include "common.h"
#include "dt_ingest.h"
#include "dt_link.h"
#include "dt_log.h"
#include "dt_proto.h"
#include "store.h"

#define SAMPLES 1024
#define SENDERS 4
#define ROUNDS 3
#define WARMUP 16
#define URL "tcp://127.0.0.1:17499"

static struct dt_batch *batches;
static unsigned n_batches;

/* --- the batches ------------------------------------------------------------------------- */

/*
 * Batch i: 256 packets of one TCP flow, each seen at the four hooks of a two-host path,
 * as an agent would ship them (hooks of one node in practice; the mix does not change
 * the encoding cost).
 */
static void make_batch(struct dt_batch *b, unsigned i)
{
	static const uint8_t hooks[4] = {DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN,
					 DT_HOOK_PORT_OUT};
	uint64_t t = 1790000000000000000ull + (uint64_t)i * 10000000ull;

	memset(b, 0, sizeof(*b));
	snprintf(b->sender, sizeof(b->sender), "h1");
	snprintf(b->node, sizeof(b->node), "h1");
	b->n_ifaces = 2;
	snprintf(b->ifaces[0], sizeof(b->ifaces[0]), "pt1");
	snprintf(b->ifaces[1], sizeof(b->ifaces[1]), "ul0");
	b->n_samples = SAMPLES;
	b->samples = calloc(SAMPLES, sizeof(*b->samples));
	if (!b->samples)
		dtb_die("out of memory");
	for (unsigned k = 0; k < SAMPLES; k++) {
		struct dt_wire_sample *s = &b->samples[k];
		uint32_t pkt = i * (SAMPLES / 4) + k / 4;

		s->hook = hooks[k % 4];
		s->flags = s->hook == DT_HOOK_PORT_IN ? DT_SAMPLE_F_FIRST_HOP : 0;
		s->iface = s->hook == DT_HOOK_PORT_IN || s->hook == DT_HOOK_PORT_OUT ? 0 : 1;
		s->ts_ns = t + pkt * 9000ull + (k % 4) * 21000ull;
		s->tuple.saddr = 0x0100640a; /* 10.100.0.1, network order */
		s->tuple.daddr = 0x0200640a;
		s->tuple.sport = 0x409c;
		s->tuple.dport = 0x5000;
		s->tuple.proto = 6;
		s->tuple.vni = 100;
		s->task_id = s->hook == DT_HOOK_PORT_IN ? 7 : 0;
		s->ip_id = (uint16_t)pkt;
		s->ident = 0x10000000u + pkt * 1448u;
		s->len = 1500;
		if (s->iface == 1) {
			s->outer_saddr = 0x01001fac;
			s->outer_daddr = 0x02001fac;
		}
		s->drop_name = DT_STR_NONE;
		s->drop_where = DT_STR_NONE;
	}
}

/* --- the agents (child process) ----------------------------------------------------------- */

/*
 * Commands on the pipe: a 32-bit count of batches to send (round-robin over the links),
 * answered with one byte once every one of them is acknowledged; 0 ends the child. The
 * n_links links connect at the first command, so that a child forked early connects only
 * when its turn comes.
 */
static void child(int cmd_fd, int done_fd, int n_links)
{
	struct dt_link **links = calloc((size_t)n_links, sizeof(*links));
	uint64_t *acked = calloc((size_t)n_links, sizeof(*acked));
	uint64_t *want = calloc((size_t)n_links, sizeof(*want));
	unsigned next = 0;
	uint32_t count;

	if (!links || !acked || !want)
		dtb_die("out of memory");
	while (read(cmd_fd, &count, sizeof(count)) == sizeof(count) && count) {
		char one = 1;

		for (int i = 0; i < n_links && !links[i]; i++) {
			char name[32];
			struct dt_link_cfg cfg = {.url = URL,
						  .sender = name,
						  .heartbeat_ms = 1000,
						  .timeout_ms = 5000,
						  .queue_max = 16};
			struct dt_link_ops ops = {0};

			snprintf(name, sizeof(name), "agent-%d-of-%d", i, n_links);
			if (dt_link_start(&cfg, &ops, &links[i]))
				dtb_die("dt_link_start");
		}
		for (int i = 0; i < n_links; i++)
			want[i] = acked[i];
		for (uint32_t k = 0; k < count; k++, next++) {
			struct dt_batch *b = &batches[next % n_batches];
			int l = (int)(next % (unsigned)n_links), rv;

			while ((rv = dt_link_send(links[l], b)) == -ENOBUFS)
				usleep(100);
			if (rv)
				dtb_die("dt_link_send: %s", strerror(-rv));
			want[l]++;
		}
		for (int i = 0; i < n_links; i++) {
			struct dt_link_stats st;

			do {
				dt_link_stats(links[i], &st);
				if (st.batches_sent < want[i])
					usleep(200);
			} while (st.batches_sent < want[i]);
			if (st.rejected)
				dtb_die("the collector rejected %llu batches",
					(unsigned long long)st.rejected);
			acked[i] = st.batches_sent;
		}
		if (write(done_fd, &one, 1) != 1)
			_exit(1);
	}
	for (int i = 0; i < n_links; i++)
		if (links[i])
			dt_link_stop(links[i], 1000);
	_exit(0);
}

/* A child with n_links agents, forked before anything starts NNG threads here. */
struct agents {
	pid_t pid;
	int cmd, done;
	int n_links;
};

static void agents_fork(struct agents *a, int n_links)
{
	int cmd[2], done[2];

	if (pipe(cmd) || pipe(done))
		dtb_die("pipe: %s", strerror(errno));
	a->n_links = n_links;
	a->pid = fork();
	if (a->pid < 0)
		dtb_die("fork: %s", strerror(errno));
	if (a->pid == 0) {
		close(cmd[1]);
		close(done[0]);
		child(cmd[0], done[1], n_links);
	}
	close(cmd[0]);
	close(done[1]);
	a->cmd = cmd[1];
	a->done = done[0];
}

static void agents_stop(struct agents *a)
{
	uint32_t zero = 0;
	int status;

	if (write(a->cmd, &zero, sizeof(zero)) != sizeof(zero))
		dtb_note("the agents' process is gone");
	waitpid(a->pid, &status, 0);
	close(a->cmd);
	close(a->done);
}

/* --- the collector side ------------------------------------------------------------------- */

struct coll {
	struct dt_store *store;
	uint64_t commits, batches; /* on_batches calls, the batches in them */
	unsigned *groups;	   /* the batches of each commit since groups_reset() */
	size_t n_groups, max_groups;
};

/* What collector.c does with the batches that arrived together: store them durably, in one
 * transaction, before their ACKs. */
static int on_batches(void *arg, const struct dt_ingest_item *items, unsigned n)
{
	struct coll *c = arg;

	c->commits++;
	c->batches += n;
	if (c->n_groups < c->max_groups)
		c->groups[c->n_groups++] = n;
	return dt_store_put_items(c->store, items, n) == 0 ? DT_ST_OK : DT_ST_FAILED;
}

static uint64_t last_seq(void *arg, const char *sender)
{
	struct coll *c = arg;

	return dt_store_last_seq(c->store, sender);
}

struct rate {
	double wall, core; /* samples per second, per CPU-second */
};

static struct rate real_round(const struct agents *a, uint32_t count)
{
	uint64_t t0 = dtb_now_ns(), c0 = dtb_cpu_ns(), t1, c1;
	char one;
	struct rate r;

	if (write(a->cmd, &count, sizeof(count)) != sizeof(count) || read(a->done, &one, 1) != 1)
		dtb_die("the agents' process died");
	t1 = dtb_now_ns();
	c1 = dtb_cpu_ns();
	r.wall = (double)count * SAMPLES / ((t1 - t0) / 1e9);
	r.core = (double)count * SAMPLES / ((c1 - c0) / 1e9);
	return r;
}

/* The commits of the next real round are noted (at most max of them). */
static void groups_reset(struct coll *c, size_t max)
{
	if (max > c->max_groups) {
		free(c->groups);
		if (!(c->groups = calloc(max, sizeof(*c->groups))))
			dtb_die("out of memory");
		c->max_groups = max;
	}
	c->n_groups = 0;
}

/* --- the baseline: LMDB directly ----------------------------------------------------------- */

struct direct {
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t next;
	msgpack_sbuffer *enc; /* n_batches encoded batches */
};

static void direct_open(struct direct *d, const char *dir)
{
	MDB_txn *txn;
	int rc;

	if (mkdir(dir, 0750) && errno != EEXIST)
		dtb_die("%s: %s", dir, strerror(errno));
	if ((rc = mdb_env_create(&d->env)) || (rc = mdb_env_set_maxdbs(d->env, 4)) ||
	    (rc = mdb_env_set_mapsize(d->env, (size_t)4 << 30)) ||
	    (rc = mdb_env_open(d->env, dir, 0, 0640)) ||
	    (rc = mdb_txn_begin(d->env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, "batches", MDB_CREATE, &d->dbi)) || (rc = mdb_txn_commit(txn)))
		dtb_die("LMDB %s: %s", dir, mdb_strerror(rc));
	d->next = 1;
	d->enc = calloc(n_batches, sizeof(*d->enc));
	if (!d->enc)
		dtb_die("out of memory");
	for (unsigned i = 0; i < n_batches; i++) {
		struct dt_batch b = batches[i];

		b.seq = i + 1;
		msgpack_sbuffer_init(&d->enc[i]);
		if (dt_batch_encode(&d->enc[i], &b))
			dtb_die("dt_batch_encode");
	}
}

/*
 * count batches appended, each commit holding as many as groups[] says in turn (the real
 * round's commits: the same durable work, one fdatasync per commit), or one a commit when
 * groups is NULL.
 */
static struct rate direct_round(struct direct *d, uint32_t count, const unsigned *groups,
				size_t n_groups)
{
	uint64_t t0 = dtb_now_ns(), c0 = dtb_thread_cpu_ns(), t1, c1;
	struct rate r;
	size_t g = 0;

	for (uint32_t i = 0; i < count; g++) {
		unsigned in_commit = groups && g < n_groups ? groups[g] : 1;
		MDB_txn *txn;
		int rc;

		if ((rc = mdb_txn_begin(d->env, NULL, 0, &txn)))
			dtb_die("LMDB begin: %s", mdb_strerror(rc));
		for (unsigned k = 0; k < in_commit && i < count; k++, i++, d->next++) {
			unsigned char kb[8];
			msgpack_sbuffer *e = &d->enc[d->next % n_batches];
			MDB_val key = {sizeof(kb), kb}, v = {e->size, e->data};

			for (int j = 0; j < 8; j++)
				kb[j] = (unsigned char)(d->next >> (56 - 8 * j));
			if ((rc = mdb_put(txn, d->dbi, &key, &v, MDB_APPEND)))
				dtb_die("LMDB append: %s", mdb_strerror(rc));
		}
		if ((rc = mdb_txn_commit(txn)))
			dtb_die("LMDB commit: %s", mdb_strerror(rc));
	}
	t1 = dtb_now_ns();
	c1 = dtb_thread_cpu_ns();
	r.wall = (double)count * SAMPLES / ((t1 - t0) / 1e9);
	r.core = (double)count * SAMPLES / ((c1 - c0) / 1e9);
	return r;
}

/* Samples per CPU-second of fn (dt_batch_check or dt_batch_decode) over every batch. */
static double batch_rate(const struct direct *d, int (*fn)(const void *, size_t, struct dt_batch *))
{
	uint64_t c0 = dtb_thread_cpu_ns();

	for (unsigned i = 0; i < n_batches; i++) {
		struct dt_batch b;

		if (fn(d->enc[i].data, d->enc[i].size, &b))
			dtb_die("a batch of the benchmark does not decode");
		dt_batch_free(&b);
	}
	return (double)n_batches * SAMPLES / ((dtb_thread_cpu_ns() - c0) / 1e9);
}

/* Everything both modes need first: quiet logs, SIGPIPE, the memory the collector keeps,
 * the batches. */
static void setup(void)
{
	dt_log_set_level(DT_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	dt_collector_keep_memory(); /* as the collector does: the baseline's process too */
	batches = calloc(n_batches, sizeof(*batches));
	if (!batches)
		dtb_die("out of memory");
	for (unsigned i = 0; i < n_batches; i++)
		make_batch(&batches[i], i);
}

/* The collector's side: its store in dir, dt_ingest on URL as collector.c sets it up. */
static struct dt_ingest *collector_start(const char *dir, struct coll *c)
{
	struct dt_ingest_ops ops = {
		.on_batches = on_batches, .last_seq = last_seq, .check_only = true, .arg = c};
	struct dt_ingest *in;

	if (dt_store_open(dir, 4096, &c->store))
		dtb_die("dt_store_open %s", dir);
	if (dt_ingest_start(URL, &ops, &in))
		dtb_die("dt_ingest_start %s", URL);
	return in;
}

/* --- the growth curve: 1, 4, 16 and 64 agents at once (bench/run.sh --scale) ------------- */

static const int scale_agents[] = {1, 4, 16, 64};
#define N_SCALE (sizeof(scale_agents) / sizeof(scale_agents[0]))

struct scale_row {
	double wall, core, cores, per_commit; /* samples/s, per CPU-second, CPUs busy, batches */
};

/* ROUNDS rounds of n_batches with one child's agents; the medians. */
static struct scale_row scale_one(struct agents *a, struct coll *c)
{
	double wall[ROUNDS], core[ROUNDS], cores[ROUNDS], per[ROUNDS];
	struct scale_row row;

	real_round(a, (uint32_t)(WARMUP > 2 * a->n_links ? WARMUP : 2 * a->n_links));
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t commits = c->commits, stored = c->batches;
		struct rate x = real_round(a, n_batches);

		wall[r] = x.wall;
		core[r] = x.core;
		cores[r] = x.wall / x.core;
		per[r] = (double)(c->batches - stored) / (double)(c->commits - commits);
		dtb_note("%d agents, round %d: %.2f M/s, %.2f M/s per core, %.2f batches a commit",
			 a->n_links, r + 1, x.wall / 1e6, x.core / 1e6, per[r]);
	}
	row.wall = dtb_median(wall, ROUNDS);
	row.core = dtb_median(core, ROUNDS);
	row.cores = dtb_median(cores, ROUNDS);
	row.per_commit = dtb_median(per, ROUNDS);
	return row;
}

static void scale_print(const struct scale_row *rows)
{
	const struct scale_row *first = &rows[0], *last = &rows[N_SCALE - 1];

	dtb_md("%s", "");
	dtb_md("## Collector ingest, agents connected at once");
	dtb_md("%s", "");
	dtb_md("`dt-bench-ingest --scale`: %d, %d, %d and %d agents (dt_link, in a child process) "
	       "send %u batches of %d samples per round round-robin to dt_ingest and the "
	       "collector's store over tcp on loopback, as in benchmark 3; medians of %d rounds. "
	       "CPU is the collector side's (CPU-seconds per second); batches a commit is how "
	       "many batches each durable LMDB commit stored (group commit).",
	       scale_agents[0], scale_agents[1], scale_agents[2], scale_agents[3], n_batches,
	       SAMPLES, ROUNDS);
	dtb_md("%s", "");
	dtb_md("| agents | samples/s | per agent | collector CPU | per core | batches a commit |");
	dtb_md("|---|---|---|---|---|---|");
	for (size_t i = 0; i < N_SCALE; i++)
		dtb_md("| %d | %.2f M | %.3f M | %.2f | %.2f M | %.1f |", scale_agents[i],
		       rows[i].wall / 1e6, rows[i].wall / scale_agents[i] / 1e6, rows[i].cores,
		       rows[i].core / 1e6, rows[i].per_commit);
	dtb_md("%s", "");
	dtb_md("From %d to %d agents the throughput grows x%.1f for x%d agents (per agent: %.0f%% "
	       "of one agent's rate), so it is not linear. An agent has one batch in flight and "
	       "waits for its durable commit (a synchronous fdatasync), so one agent gets one "
	       "batch per commit; more agents fill each commit (%.1f, then %.1f batches), which "
	       "spreads the sync over more batches. %s",
	       scale_agents[0], scale_agents[N_SCALE - 1], last->wall / first->wall,
	       scale_agents[N_SCALE - 1] / scale_agents[0],
	       100 * (last->wall / scale_agents[N_SCALE - 1]) / (first->wall / scale_agents[0]),
	       first->per_commit, last->per_commit,
	       last->cores < 0.8
		       ? dtb_fmt("The collector side stays below a core (%.2f at %d agents): the "
				 "limit is the latency of the disk's sync, which the groups share, "
				 "not the CPU (%.2f M samples per CPU-second).",
				 last->cores, scale_agents[N_SCALE - 1], last->core / 1e6)
		       : dtb_fmt("At %d agents the collector side is busy (%.2f cores): the one "
				 "ingest thread that checks and stores every batch is the limit "
				 "(%.2f M samples per CPU-second).",
				 scale_agents[N_SCALE - 1], last->cores, last->core / 1e6));
}

static int scale_main(int argc, char **argv)
{
	struct agents ag[N_SCALE];
	struct scale_row rows[N_SCALE];
	struct coll c = {0};
	struct dt_ingest *in;
	char path[1024];

	if (argc < 2)
		dtb_die("usage: dt-bench-ingest --scale DIR [BATCHES]");
	n_batches = argc > 2 ? (unsigned)atoi(argv[2]) : 600;
	if (n_batches < 64)
		dtb_die("BATCHES must be at least 64");
	setup();
	for (size_t i = 0; i < N_SCALE; i++)
		agents_fork(&ag[i], scale_agents[i]); /* before NNG starts here */
	if (mkdir(argv[1], 0750) && errno != EEXIST)
		dtb_die("%s: %s", argv[1], strerror(errno));
	snprintf(path, sizeof(path), "%s/store", argv[1]);
	in = collector_start(path, &c);
	for (size_t i = 0; i < N_SCALE; i++) {
		rows[i] = scale_one(&ag[i], &c);
		agents_stop(&ag[i]);
	}
	dt_ingest_stop(in);
	dt_store_close(c.store);
	scale_print(rows);
	return 0;
}

int main(int argc, char **argv)
{
	struct agents ag;
	double rw[ROUNDS], rc[ROUNDS], dw[ROUNDS], dc[ROUNDS], sw[ROUNDS], sc[ROUNDS], per[ROUNDS];
	struct dt_ingest_stats st;
	struct dt_ingest *in;
	struct direct d = {0};
	struct coll c = {0};
	double real_core, real_wall, dir_core, dir_wall, one_core, one_wall, ratio, check_rate,
		decode_rate;
	char path[1024];
	size_t enc_bytes = 0;

	if (argc < 2)
		dtb_die("usage: dt-bench-ingest DIR [BATCHES] | dt-bench-ingest --scale DIR [BATCHES]");
	if (strcmp(argv[1], "--scale") == 0)
		return scale_main(argc - 1, argv + 1);
	n_batches = argc > 2 ? (unsigned)atoi(argv[2]) : 600;
	if (n_batches < 16)
		dtb_die("BATCHES must be at least 16");
	setup();
	agents_fork(&ag, SENDERS);

	snprintf(path, sizeof(path), "%s/direct", argv[1]);
	direct_open(&d, path);
	for (unsigned i = 0; i < n_batches; i++)
		enc_bytes += d.enc[i].size;
	snprintf(path, sizeof(path), "%s/store", argv[1]);
	in = collector_start(path, &c);

	/* Warm-up: the links connect, the stores grow their first pages. */
	real_round(&ag, WARMUP);
	direct_round(&d, WARMUP, NULL, 0);
	for (int r = 0; r < ROUNDS; r++) {
		struct rate y, x, z;

		groups_reset(&c, n_batches);
		y = real_round(&ag, n_batches);
		x = direct_round(&d, n_batches, c.groups, c.n_groups);
		z = direct_round(&d, n_batches, NULL, 0);
		dw[r] = x.wall;
		dc[r] = x.core;
		rw[r] = y.wall;
		rc[r] = y.core;
		sw[r] = z.wall;
		sc[r] = z.core;
		per[r] = (double)n_batches / (double)c.n_groups;
		dtb_note("round %d: real %.2f M/s wall %.2f M/s per core (%.2f batches a commit); "
			 "direct, the same commits: %.2f M/s wall %.2f M/s per core; direct, one "
			 "batch a commit: %.2f M/s wall %.2f M/s per core",
			 r + 1, y.wall / 1e6, y.core / 1e6, per[r], x.wall / 1e6, x.core / 1e6,
			 z.wall / 1e6, z.core / 1e6);
	}
	dt_ingest_stats(in, &st);
	if (st.samples != (uint64_t)(WARMUP + ROUNDS * n_batches) * SAMPLES || st.malformed ||
	    st.store_errors)
		dtb_die("the collector stored %llu samples (%llu malformed, %llu store errors)",
			(unsigned long long)st.samples, (unsigned long long)st.malformed,
			(unsigned long long)st.store_errors);
	agents_stop(&ag);
	dt_ingest_stop(in);
	dt_store_close(c.store);
	mdb_env_close(d.env);

	/* Where the collector's CPU goes: the strict check of every batch, alone; and what
	 * the full decode (an object tree and every sample built) cost it before. */
	check_rate = batch_rate(&d, dt_batch_check);
	decode_rate = batch_rate(&d, dt_batch_decode);

	real_core = dtb_median(rc, ROUNDS);
	real_wall = dtb_median(rw, ROUNDS);
	dir_core = dtb_median(dc, ROUNDS);
	dir_wall = dtb_median(dw, ROUNDS);
	one_core = dtb_median(sc, ROUNDS);
	one_wall = dtb_median(sw, ROUNDS);
	dtb_note("%u batches of %d samples per round, %.1f KiB each encoded, %d agents over %s",
		 n_batches, SAMPLES, enc_bytes / 1024.0 / n_batches, SENDERS, URL);
	ratio = real_core / dir_core;
	dtb_row("collector ingest per core (dt_link -> NNG tcp -> dt_ingest -> LMDB store)",
		dtb_fmt("%.2f M samples/s/core", real_core / 1e6),
		dtb_fmt("LMDB append %.2f M/s/core", dir_core / 1e6), dtb_fmt("x%.2f", ratio),
		">= 3 M/s/core, >= x0.5",
		real_core >= 3e6 && ratio >= 0.5
			? "meets"
			: dtb_fmt("misses (%s)", real_core < 3e6 && ratio < 0.5 ? "rate and ratio"
						 : real_core < 3e6		? "rate"
										: "ratio"));
	dtb_row("collector ingest, wall clock (a durable commit per group of batches: fdatasync "
		"+ O_DSYNC meta page)",
		dtb_fmt("%.2f M samples/s", real_wall / 1e6),
		dtb_fmt("LMDB append %.2f M/s", dir_wall / 1e6),
		dtb_fmt("x%.2f", real_wall / dir_wall), "", "info");
	dtb_row("collector ingest per core against the old baseline (LMDB append, one commit per "
		"batch, where the collector groups batches into commits)",
		dtb_fmt("%.2f M samples/s/core (%.2f batches a commit)", real_core / 1e6,
			dtb_median(per, ROUNDS)),
		dtb_fmt("LMDB append %.2f M/s/core, %.2f M/s wall", one_core / 1e6, one_wall / 1e6),
		dtb_fmt("x%.2f", real_core / one_core), "", "info");
	dtb_row("collector: of which the strict check of each batch (dt_batch_check alone)",
		dtb_fmt("%.2f M samples/s/core", check_rate / 1e6),
		dtb_fmt("ingest %.2f M/s/core", real_core / 1e6),
		dtb_fmt("%.0f%% of the ingest CPU", 100 * real_core / check_rate), "", "info");
	dtb_row("collector: the full decode it no longer does (dt_batch_decode alone)",
		dtb_fmt("%.2f M samples/s/core", decode_rate / 1e6),
		dtb_fmt("check %.2f M/s/core", check_rate / 1e6),
		dtb_fmt("x%.2f", check_rate / decode_rate), "", "info");
	return 0;
}
