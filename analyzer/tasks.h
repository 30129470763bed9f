/* SPDX-License-Identifier: MIT */
/*
 * tasks.h - the analyzer's task table: creation with overlap checks, each task's keys
 * (one per traced direction), and the control set that arms them.
 *
 * Not thread-safe; the analyzer serializes access with its own lock.
 *
 * A task's state is derived, not stored: READY once created (its sample store exists),
 * ARMED once every collector has applied a control set that includes it, RUNNING once
 * its first sample was attributed to it.
 *
 * Directions. A task names its flow as the source instance sees it (the request). It
 * traces the request direction, the reply direction or both (DT_TASK_DIR_* in its spec;
 * none given means request). Each traced direction is one key: the request key is the
 * task's tuple, the reply key the tuple reversed (dt_tuple_reverse()), flagged
 * DT_TASK_F_REPLY in the control set. The data plane matches keys at first hops, the
 * analyzer attributes samples by them (stitch.h), so the keys of active tasks must not
 * overlap: a packet may belong to one task and one direction only.
 *
 * Attributing samples is the stitcher's job (stitch.h): it appends to a task's
 * observations with dt_task_add_obs().
 */
#ifndef DT_TASKS_H
#define DT_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "paths.h"

/* One key of a task: what the data plane matches for one direction. */
struct dt_task_key {
	struct dt_tuple tuple; /* normalized (dt_tuple_task_key()), reversed for replies */
	uint32_t flags;        /* DT_TASK_F_ANYPORT, DT_TASK_F_REPLY: as armed */
	uint8_t dir;           /* enum dt_direction */
};

struct dt_task {
	uint32_t id;
	struct dt_task_spec spec; /* normalized: tuple by dt_tuple_task_key(); flags are
				   * DT_TASK_F_ANYPORT and DT_TASK_DIR_* (never no direction) */
	unsigned int n_keys;      /* 1 or 2 */
	struct dt_task_key keys[DT_DIR_MAX]; /* request key first when traced */
	uint64_t created_ns;
	uint64_t arm_gen;         /* first control generation that includes it */
	size_t n_obs, cap_obs;
	struct dt_obs *obs;       /* attributed observations, in arrival order */
};

struct dt_tasks {
	uint32_t next_id;
	uint64_t gen; /* control generation: grows with every change of the armed set */
	size_t n, cap;
	struct dt_task **v; /* in creation order, so ids ascend */
};

void dt_tasks_init(struct dt_tasks *t);
void dt_tasks_free(struct dt_tasks *t);

/*
 * Creates a task for spec. Returns 0 and *out, -EINVAL (err says why) when the tuple
 * cannot name a flow, the flags have unknown bits, or both directions would be the same
 * flow; -EEXIST when one of its keys overlaps a key of an active task (err names the
 * direction and the tuple, never the other task); -ENOMEM.
 */
int dt_tasks_create(struct dt_tasks *t, const struct dt_task_spec *spec, uint64_t now_ns,
		    struct dt_task **out, char *err, size_t errlen);

/* The task with this id, or NULL. O(log n). */
struct dt_task *dt_tasks_find(const struct dt_tasks *t, uint32_t id);

/*
 * Fills keys[] from a normalized spec (see the top of the file) and returns how many:
 * the request key first when the spec traces requests.
 */
unsigned int dt_task_keys(const struct dt_task_spec *spec, struct dt_task_key keys[DT_DIR_MAX]);

/* True when two keys can match the same packet. */
bool dt_key_overlap(const struct dt_task_key *a, const struct dt_task_key *b);

/* True when a key of one normalized spec can match the same packet as a key of the other. */
bool dt_spec_overlap(const struct dt_task_spec *a, const struct dt_task_spec *b);

/* Appends a copy of o to the task's observations. Returns 0 or -ENOMEM. */
int dt_task_add_obs(struct dt_task *task, const struct dt_obs *o);

/* The control set of generation t->gen: one arm per key of every task (arms malloc'd;
 * free with dt_control_free). Returns 0 or -ENOMEM. */
int dt_tasks_control(const struct dt_tasks *t, struct dt_control *c);

/* Fills info (state derived with applied_gen: the generation all collectors applied). */
void dt_task_info_fill(const struct dt_task *task, uint64_t applied_gen,
		       struct dt_task_info *info);

#endif /* DT_TASKS_H */
