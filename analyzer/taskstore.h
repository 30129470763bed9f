/* SPDX-License-Identifier: MIT */
/*
 * taskstore.h - the analyzer's durable state in LMDB: tasks, their observations, final
 * reports, the interned names the observations refer to, the highest batch seq stored
 * per sender (deduplication across restarts), the task id and control generation
 * counters, the samples the stitcher holds (acknowledged, not attributed yet) and its
 * counters.
 *
 * Writes go through one write transaction at a time (dt_taskstore_begin() ... commit or
 * abort), so that a batch's observations, its names and its sender's seq become durable
 * together: the analyzer acknowledges a batch only after that commit. A task's final
 * report is committed with the task's terminal record, and its observations are deleted
 * in the same transaction (the report holds all a reader can ask for from then on).
 *
 * Records are fixed binary layouts of this machine (the store is local to the analyzer);
 * the layout version is kept in the store and a store of another layout is refused at
 * open. Bump DT_TASKSTORE_LAYOUT when struct dt_obs, struct dt_stitch_in, struct
 * dt_stitch_counters, struct dt_task_spec or the task record change. (A new database or a
 * new record needs no bump: a store without it reads as empty.)
 *
 * Errors: 0 or a negative errno: -ENOSPC when the map is full (store_size_mb), -EIO for
 * LMDB's other failures, the system's -errno for a failed system call (LMDB's own text
 * is logged under DT-ANA-STORE, see dt_lmdb_errno()), -ENOMEM, -EPROTO for a store of
 * another layout, -ENOENT for a missing record. Not thread-safe: the analyzer serializes
 * access with its own lock.
 */
#ifndef DT_TASKSTORE_H
#define DT_TASKSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "paths.h"
#include "stitch.h"
#include "tasks.h"

#define DT_TASKSTORE_LAYOUT 5 /* 5: an observation's prefix after it, not in it */

struct dt_taskstore;

/* Opens (creating) the store in directory dir (created with its parents), map size
 * size_mb. On failure err says why. */
int dt_taskstore_open(const char *dir, uint64_t size_mb, struct dt_taskstore **out, char *err,
		      size_t errlen);
void dt_taskstore_close(struct dt_taskstore *s);

int dt_taskstore_begin(struct dt_taskstore *s);
int dt_taskstore_commit(struct dt_taskstore *s); /* on failure the transaction is gone too */
void dt_taskstore_abort(struct dt_taskstore *s);

/* Within a write transaction. */
int dt_taskstore_put_meta(struct dt_taskstore *s, uint32_t next_id, uint64_t gen);
int dt_taskstore_put_task(struct dt_taskstore *s, const struct dt_task *task);
/* The task's observations not stored yet (from task->n_stored on), with their prefixes. */
int dt_taskstore_put_obs(struct dt_taskstore *s, const struct dt_task *task);
int dt_taskstore_del_obs(struct dt_taskstore *s, uint32_t id);
int dt_taskstore_put_report(struct dt_taskstore *s, uint32_t id, const void *buf, size_t len);
int dt_taskstore_put_string(struct dt_taskstore *s, uint32_t idx, const char *str);
int dt_taskstore_put_seq(struct dt_taskstore *s, const char *sender, uint64_t seq);
/* A held sample under its id (struct dt_stitch_held); deleting a missing one is not an
 * error (0). */
int dt_taskstore_put_held(struct dt_taskstore *s, uint64_t id, const struct dt_stitch_in *in);
int dt_taskstore_del_held(struct dt_taskstore *s, uint64_t id);
int dt_taskstore_put_counters(struct dt_taskstore *s, const struct dt_stitch_counters *c);
/* A node's lost samples by reason (cumulative, as its agent reports them). */
int dt_taskstore_put_loss(struct dt_taskstore *s, const char *node,
			  const uint64_t lost[DT_LOSS_MAX]);

/* What dt_taskstore_load() hands out, in this order: meta, the stitcher's counters (when
 * stored), strings by ascending index, seqs, nodes' losses, tasks by ascending id, each active
 * task's observations in order, then the held samples by ascending id. A NULL callback skips its
 * records. A callback's non-zero return stops the load and is returned. */
struct dt_taskstore_load_ops {
	int (*meta)(void *arg, uint32_t next_id, uint64_t gen);
	int (*string)(void *arg, uint32_t idx, const char *str);
	int (*seq)(void *arg, const char *sender, uint64_t seq);
	int (*loss)(void *arg, const char *node, const uint64_t lost[DT_LOSS_MAX]);
	/* rec is malloc'd, owned by the callee from then on (also on error). */
	int (*task)(void *arg, struct dt_task *rec);
	int (*obs)(void *arg, uint32_t id, const struct dt_obs *o, const uint8_t *cap);
	int (*counters)(void *arg, const struct dt_stitch_counters *c);
	int (*held)(void *arg, uint64_t id, const struct dt_stitch_in *in);
	void *arg;
};

int dt_taskstore_load(struct dt_taskstore *s, const struct dt_taskstore_load_ops *ops);

/* Deletes the tasks that ended before ended_before_ns, with their reports and observations
 * (report_retention_s), in the open transaction; *n says how many. Returns 0 or -errno. */
int dt_taskstore_purge_ended(struct dt_taskstore *s, uint64_t ended_before_ns, size_t *n);

/* A copy of task id's final report (malloc'd, the caller frees it). */
int dt_taskstore_get_report(struct dt_taskstore *s, uint32_t id, void **buf, size_t *len);

#endif /* DT_TASKSTORE_H */
