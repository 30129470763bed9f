/* SPDX-License-Identifier: MIT */
/*
 * tasks.h - the analyzer's task table: creation with overlap checks, matching samples
 * to tasks by six-tuple, and the control set that arms them.
 *
 * Not thread-safe; the analyzer serializes access with its own lock.
 *
 * A task's state is derived, not stored: READY once created (its sample store exists),
 * ARMED once every collector has applied a control set that includes it, RUNNING once
 * its first sample arrived.
 */
#ifndef DT_TASKS_H
#define DT_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "paths.h"

struct dt_task {
	uint32_t id;
	struct dt_task_spec spec; /* normalized by dt_tuple_task_key() */
	uint64_t created_ns;
	uint64_t arm_gen;         /* first control generation that includes it */
	size_t n_obs, cap_obs;
	struct dt_obs *obs;
};

struct dt_tasks {
	uint32_t next_id;
	uint64_t gen; /* control generation: grows with every change of the armed set */
	size_t n, cap;
	struct dt_task **v;
	uint64_t unmatched; /* samples that matched no task */
};

void dt_tasks_init(struct dt_tasks *t);
void dt_tasks_free(struct dt_tasks *t);

/*
 * Creates a task for spec. Returns 0 and *out, -EINVAL (err says why) when the tuple
 * cannot name a flow, -EEXIST when it overlaps an active task (err does not name the
 * other task), -ENOMEM.
 */
int dt_tasks_create(struct dt_tasks *t, const struct dt_task_spec *spec, uint64_t now_ns,
		    struct dt_task **out, char *err, size_t errlen);

struct dt_task *dt_tasks_find(struct dt_tasks *t, uint32_t id);

/* True when two normalized specs can match the same packet. */
bool dt_spec_overlap(const struct dt_task_spec *a, const struct dt_task_spec *b);

/* Adds one sample to the task it belongs to (by task_id at the first hop, else by
 * tuple). Returns the task, or NULL (counted in unmatched). */
struct dt_task *dt_tasks_add_sample(struct dt_tasks *t, const char *node, const char *ifname,
				    const struct dt_wire_sample *s);

/* The control set of generation t->gen (arms malloc'd; free with dt_control_free). */
int dt_tasks_control(const struct dt_tasks *t, struct dt_control *c);

/* Fills info (state derived with applied_gen: the generation all collectors applied). */
void dt_task_info_fill(const struct dt_task *task, uint64_t applied_gen,
		       struct dt_task_info *info);

#endif /* DT_TASKS_H */
