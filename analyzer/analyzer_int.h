/* SPDX-License-Identifier: MIT */
/*
 * analyzer_int.h - what the files of dyetrace-analyzer share: its state (struct analyzer)
 * and the functions one file calls in another. analyzer.c runs the daemon (threads, the
 * tick, the lifecycle); ingest.c takes the collectors' batches; persist.c writes the store
 * and reads it back after a restart; reports.c builds reports and final reports; api.c
 * answers the CLI; stats.c logs and exports the counters. Not a public interface.
 */
#ifndef DT_ANALYZER_INT_H
#define DT_ANALYZER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "analyzer.h"
#include "dt_ingest.h"
#include "dt_log.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_time.h"
#include "paths.h"
#include "silent.h"
#include "stitch.h"
#include "strtab.h"
#include "tasks.h"
#include "taskstore.h"

/* How often the main loop wakes up without API requests: windows, lifecycle, store. */
#define TICK_MS 100

/* What a node last reported as lost, cumulative since its agent started. */
struct node_loss {
	struct node_loss *next;
	char node[DT_NAME_MAX];
	uint64_t lost[DT_LOSS_MAX];
	bool dirty; /* rose since the last commit */
};

/* Highest batch seq stored per sender (collector), for deduplication. */
struct sender_seq {
	struct sender_seq *next;
	char name[DT_NAME_MAX];
	uint64_t seq;
};

struct analyzer {
	const struct dt_analyzer_cfg *cfg;
	pthread_mutex_t mu; /* guards everything below */
	struct dt_tasks *tasks;
	struct dt_strtab *strs;	     /* names the observations refer to */
	uint32_t stored_strs;	     /* strs[0..stored_strs) are in the store */
	struct dt_stitch *stitch;    /* attributes samples to tasks */
	uint64_t restored_held_upto; /* held ids up to it were restored after a restart */
	/* The stitcher's counters as last committed. */
	struct dt_stitch_counters stored_counters;
	struct dt_taskstore *store;
	struct node_loss *losses;
	struct sender_seq *seqs;
	/* The live nodes' states as of the last tick, and who hosts what among them (the
	 * handshake, and the destinations of the packets in reports). */
	struct dt_node_state *nodes;
	uint32_t n_nodes;
	uint64_t nodes_ns, nodes_ms; /* when they were taken (CLOCK_REALTIME, monotonic) */
	struct dt_hosts hosts;
	struct dt_silent silent; /* the nodes that left the live ones (silent.h) */
	struct dt_ingest *ingest;
	uint64_t sent_gen; /* the control generation given to the ingest server */
	nng_socket api;
	uint64_t samples, api_requests, api_malformed, api_refused_token, store_errors;
	uint64_t names_full;	  /* names not interned: the table is full (they read as "") */
	uint64_t evicted, purged; /* ended tasks out of memory, out of the store (ana_retain) */
	uint64_t purged_ms;	  /* monotonic: the last purge of the store */
	uint64_t api_by_status[DT_ST_MAX]; /* API replies by status (count_reply()) */
	struct dt_metrics *metrics;
	struct dt_ratelimit rl_api, rl_nomem, rl_auth, rl_store, rl_learn;
	/* on_batch's scratch: a batch's interface names and strings as string table indices */
	uint32_t batch_ifaces[DT_BATCH_MAX_IFACES];
	uint32_t batch_strs[DT_BATCH_MAX_STRINGS];
};

/* ingest.c */

/* The highest batch seq stored from sender name, made on first use (NULL: no memory). */
struct sender_seq *ana_seq_of(struct analyzer *a, const char *name);

/* The ingest server's question: the last seq stored from sender (0: none). */
uint64_t ana_last_seq(void *arg, const char *sender);

/* Heartbeats (and loss-only batches a collector forwards) carry nodes' loss counters. */
void ana_on_heartbeat(void *arg, const struct dt_batch *b, const void *raw, size_t len);

/*
 * Feeds the batch's samples to the stitcher, with their names resolved into the
 * analyzer's string table, and commits what they became before the batch is
 * acknowledged. Names cannot be interned without memory, or the store fails: then the
 * sender is told to resend the batch.
 */
int ana_on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len);

/* persist.c */

/* Counts a store failure and logs it, rate-limited. */
void ana_store_failed(struct analyzer *a, const char *what, int rv);

/*
 * Within an open transaction: new names, new observations of active tasks, tasks marked
 * dirty, the stitcher's held samples not stored yet, the held records it released since
 * (in the same commit as the observations they became), its counters c when they moved,
 * and the meta record. ana_persisted() follows a successful commit.
 */
int ana_persist_write(struct analyzer *a, const struct dt_stitch_counters *c);

/* What ana_persist_write() wrote is committed: memory and store agree again. */
void ana_persisted(struct analyzer *a, const struct dt_stitch_counters *c);

/*
 * Writes what changed to the store in one transaction: new names, new observations of
 * active tasks, tasks marked dirty, the counters, the stitcher's held samples (new and
 * released) and its counters, and sender's seq when sender is not NULL. Returns 0 or a
 * negative errno: then nothing of it is stored and memory stays ahead of the store
 * until the next commit (ana_on_batch() takes a failed batch back itself). Lock held.
 */
int ana_persist(struct analyzer *a, const char *sender, uint64_t seq);
/* The deployment's lost samples by reason (every node's) and unmatched samples, now.
 * Lock held. A new task keeps them as its base (reports count what came after). */
void ana_loss_totals(const struct analyzer *a, uint64_t lost[DT_LOSS_MAX], uint64_t *unmatched);
/* The loss counters of node, created (zero) when new; NULL without memory. */
struct node_loss *ana_loss_of(struct analyzer *a, const char *node);

/*
 * A batch's commit failed: takes back what it did in memory, since its sender resends
 * it. Its observations and the samples it left held go, and the stitcher's counters are
 * put back as they were before it (c), so that nothing is counted twice. What it taught
 * the stitcher stays: the resend teaches the same.
 */
void ana_unstore_batch(struct analyzer *a, const struct dt_stitch_counters *c);

/*
 * Reads the store back: names, seqs, tasks. Ended tasks are served as they were. Active
 * tasks are resumed with their observations (and re-armed by the control set at the
 * next generation), unless their duration ran out meanwhile: then they end EXPIRED, with
 * what was stored. Lock held (nothing runs yet).
 */
int ana_restore(struct analyzer *a);

/* reports.c */

/* Builds the report of task (lock held), closing the analysis window first when due. Without
 * packets, the report lists none: the tick and a task's live counts read only counts and
 * the verdict, and copying every hop's prefix and names is most of a report's cost. */
int ana_build_report(struct analyzer *a, struct dt_task *task, bool packets, struct dt_report *r);

/* The samples report r counts lost (its lost[]), whatever the cause. */
uint64_t ana_report_lost(const struct dt_report *r);

/*
 * Stores an ended task with its final report, and drops its observations. On failure
 * the task keeps them and final_pending, and the next ana_tick tries again. Lock held.
 */
int ana_finalize(struct analyzer *a, struct dt_task *task);

/* api.c */

/* Answers one API request buf[0..len) into out (always a reply: an error when it fails). */
void ana_api_handle(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out);

/* stats.c */

/* Counts an API reply by its status (main loop; under a->mu for the metrics page). */
void ana_count_reply(struct analyzer *a, const msgpack_sbuffer *out);

/* The periodic counters line, logged under message id. */
void ana_log_stats(struct analyzer *a, const char *id);

/*
 * The metrics page (dt_metrics.h), on an nng thread: the numbers of ana_log_stats(), read the
 * same way (the ingest's counters without a->mu, the rest under it).
 */
void ana_render_metrics(void *arg, struct dt_metrics_buf *b);

/* analyzer.c */

/* Hands the control set to the ingest server when its generation moved. Lock not held. */
void ana_publish_control(struct analyzer *a);

/* Every ana_tick: the stitcher's window, the lifecycle against the live node states, the
 * store, the control set. */
void ana_tick(struct analyzer *a);

/* retention_s and report_retention_s: ended tasks leave memory, then their stored reports
 * leave the store (checked at most every half report_retention_s, and hourly). Lock held. */
void ana_retain(struct analyzer *a, uint64_t now_ns, uint64_t now_ms);

#endif /* DT_ANALYZER_INT_H */
