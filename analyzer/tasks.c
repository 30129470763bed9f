/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "tasks.h"

#define SPEC_FLAGS (DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH)

void dt_tasks_init(struct dt_tasks *t)
{
	memset(t, 0, sizeof(*t));
	t->next_id = 1;
}

void dt_tasks_free(struct dt_tasks *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i]->obs);
		free(t->v[i]);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

unsigned int dt_task_keys(const struct dt_task_spec *spec, struct dt_task_key keys[DT_DIR_MAX])
{
	uint32_t any = spec->flags & DT_TASK_F_ANYPORT;
	unsigned int n = 0;

	if (spec->flags & DT_TASK_DIR_REQUEST || !(spec->flags & DT_TASK_DIR_BOTH)) {
		keys[n].tuple = spec->tuple;
		keys[n].flags = any;
		keys[n].dir = DT_DIR_REQUEST;
		n++;
	}
	if (spec->flags & DT_TASK_DIR_REPLY) {
		dt_tuple_reverse(&spec->tuple, &keys[n].tuple);
		keys[n].flags = any | DT_TASK_F_REPLY;
		keys[n].dir = DT_DIR_REPLY;
		n++;
	}
	return n;
}

bool dt_key_overlap(const struct dt_task_key *a, const struct dt_task_key *b)
{
	const struct dt_tuple *x = &a->tuple, *y = &b->tuple;

	if (x->saddr != y->saddr || x->daddr != y->daddr || x->proto != y->proto ||
	    x->vni != y->vni)
		return false;
	if ((a->flags | b->flags) & DT_TASK_F_ANYPORT)
		return true;
	return x->sport == y->sport && x->dport == y->dport;
}

bool dt_spec_overlap(const struct dt_task_spec *a, const struct dt_task_spec *b)
{
	struct dt_task_key ka[DT_DIR_MAX], kb[DT_DIR_MAX];
	unsigned int na = dt_task_keys(a, ka), nb = dt_task_keys(b, kb);

	for (unsigned int i = 0; i < na; i++)
		for (unsigned int j = 0; j < nb; j++)
			if (dt_key_overlap(&ka[i], &kb[j]))
				return true;
	return false;
}

/* Arms the control set holds now: one per key. */
static size_t count_arms(const struct dt_tasks *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += t->v[i]->n_keys;
	return n;
}

/* Refuses a key of the new task that overlaps a key of an active one (-EEXIST). */
static int check_overlap(const struct dt_tasks *t, const struct dt_task_key *keys,
			 unsigned int n_keys, char *err, size_t errlen)
{
	char buf[DT_TUPLE_STR_MAX];

	for (unsigned int k = 0; k < n_keys; k++) {
		for (size_t i = 0; i < t->n; i++) {
			const struct dt_task *o = t->v[i];

			for (unsigned int j = 0; j < o->n_keys; j++) {
				if (!dt_key_overlap(&keys[k], &o->keys[j]))
					continue;
				/* Says which of our directions collides, never which task. */
				snprintf(err, errlen,
					 "%s%s overlaps a six-tuple traced by an active task; "
					 "six-tuples of active tasks must not overlap",
					 keys[k].dir == DT_DIR_REPLY ? "the reply direction " : "",
					 dt_tuple_str(&keys[k].tuple, keys[k].flags, buf,
						      sizeof(buf)));
				return -EEXIST;
			}
		}
	}
	return 0;
}

int dt_tasks_create(struct dt_tasks *t, const struct dt_task_spec *spec, uint64_t now_ns,
		    struct dt_task **out, char *err, size_t errlen)
{
	struct dt_task_spec norm = {.flags = spec->flags & SPEC_FLAGS};
	struct dt_task_key keys[DT_DIR_MAX];
	struct dt_task *task;
	char buf[DT_TUPLE_STR_MAX];
	unsigned int n_keys;
	int rv;

	if (spec->flags & ~(uint32_t)SPEC_FLAGS) {
		snprintf(err, errlen, "unknown task flags 0x%x",
			 spec->flags & ~(uint32_t)SPEC_FLAGS);
		return -EINVAL;
	}
	if (!(norm.flags & DT_TASK_DIR_BOTH))
		norm.flags |= DT_TASK_DIR_REQUEST;
	if (dt_tuple_task_key(&spec->tuple, &norm.flags, &norm.tuple)) {
		snprintf(err, errlen,
			 "%s does not name a flow: give both addresses, a protocol, a VNI below "
			 "2^24, and both ports or none (ICMP: an echo identifier or none)",
			 dt_tuple_str(&spec->tuple, spec->flags, buf, sizeof(buf)));
		return -EINVAL;
	}
	n_keys = dt_task_keys(&norm, keys);
	if (n_keys == 2 && dt_key_overlap(&keys[0], &keys[1])) {
		snprintf(err, errlen,
			 "%s is its own reply (same address and port on both ends): trace one "
			 "direction",
			 dt_tuple_str(&norm.tuple, norm.flags, buf, sizeof(buf)));
		return -EINVAL;
	}
	if ((rv = check_overlap(t, keys, n_keys, err, errlen)))
		return rv;
	if (count_arms(t) + n_keys > DT_CONTROL_MAX_TASKS) {
		snprintf(err, errlen,
			 "too many active tasks: the control set holds at most %d keys",
			 DT_CONTROL_MAX_TASKS);
		return -ENOSPC;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct dt_task **v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	task = calloc(1, sizeof(*task));
	if (!task)
		return -ENOMEM;
	task->id = t->next_id++;
	task->spec = norm;
	task->n_keys = n_keys;
	memcpy(task->keys, keys, sizeof(keys));
	task->created_ns = now_ns;
	task->arm_gen = ++t->gen;
	t->v[t->n++] = task;
	*out = task;
	return 0;
}

struct dt_task *dt_tasks_find(const struct dt_tasks *t, uint32_t id)
{
	size_t lo = 0, hi = t->n;

	/* Ids are handed out in ascending order and tasks are appended: v is sorted. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->v[mid]->id == id)
			return t->v[mid];
		if (t->v[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int dt_task_add_obs(struct dt_task *task, const struct dt_obs *o)
{
	if (task->n_obs == task->cap_obs) {
		size_t cap = task->cap_obs ? task->cap_obs * 2 : 64;
		struct dt_obs *v = realloc(task->obs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		task->obs = v;
		task->cap_obs = cap;
	}
	task->obs[task->n_obs++] = *o;
	return 0;
}

int dt_tasks_control(const struct dt_tasks *t, struct dt_control *c)
{
	size_t n = count_arms(t), k = 0;

	memset(c, 0, sizeof(*c));
	c->gen = t->gen;
	if (n == 0)
		return 0;
	c->arms = calloc(n, sizeof(*c->arms));
	if (!c->arms)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		for (unsigned int j = 0; j < t->v[i]->n_keys; j++) {
			c->arms[k].task_id = t->v[i]->id;
			c->arms[k].flags = t->v[i]->keys[j].flags;
			c->arms[k].tuple = t->v[i]->keys[j].tuple;
			k++;
		}
	}
	c->n_arms = (uint32_t)n;
	return 0;
}

void dt_task_info_fill(const struct dt_task *task, uint64_t applied_gen,
		       struct dt_task_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = task->id;
	info->spec = task->spec;
	info->created_ns = task->created_ns;
	if (task->n_obs)
		info->state = DT_TASK_RUNNING;
	else if (applied_gen >= task->arm_gen)
		info->state = DT_TASK_ARMED;
	else
		info->state = DT_TASK_READY;
}
