/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "tasks.h"

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

bool dt_spec_overlap(const struct dt_task_spec *a, const struct dt_task_spec *b)
{
	const struct dt_tuple *x = &a->tuple, *y = &b->tuple;

	if (x->saddr != y->saddr || x->daddr != y->daddr || x->proto != y->proto ||
	    x->vni != y->vni)
		return false;
	if ((a->flags | b->flags) & DT_TASK_F_ANYPORT)
		return true;
	return x->sport == y->sport && x->dport == y->dport;
}

int dt_tasks_create(struct dt_tasks *t, const struct dt_task_spec *spec, uint64_t now_ns,
		    struct dt_task **out, char *err, size_t errlen)
{
	struct dt_task_spec norm = {.flags = spec->flags & DT_TASK_F_ANYPORT};
	struct dt_task *task;
	char buf[DT_TUPLE_STR_MAX];

	if (dt_tuple_task_key(&spec->tuple, &norm.flags, &norm.tuple)) {
		snprintf(err, errlen,
			 "%s does not name a flow: give both addresses, a protocol, a VNI below "
			 "2^24, and both ports or none (ICMP: an echo identifier or none)",
			 dt_tuple_str(&spec->tuple, spec->flags, buf, sizeof(buf)));
		return -EINVAL;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (dt_spec_overlap(&t->v[i]->spec, &norm)) {
			snprintf(err, errlen,
				 "%s overlaps the six-tuple of an active task; six-tuples of "
				 "active tasks must not overlap",
				 dt_tuple_str(&norm.tuple, norm.flags, buf, sizeof(buf)));
			return -EEXIST;
		}
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
	task->created_ns = now_ns;
	task->arm_gen = ++t->gen;
	t->v[t->n++] = task;
	*out = task;
	return 0;
}

struct dt_task *dt_tasks_find(struct dt_tasks *t, uint32_t id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i]->id == id)
			return t->v[i];
	return NULL;
}

static struct dt_task *match(struct dt_tasks *t, const struct dt_wire_sample *s)
{
	struct dt_task *task;

	if (s->task_id && (task = dt_tasks_find(t, s->task_id)) &&
	    dt_tuple_match(&task->spec.tuple, task->spec.flags, &s->tuple))
		return task;
	for (size_t i = 0; i < t->n; i++)
		if (dt_tuple_match(&t->v[i]->spec.tuple, t->v[i]->spec.flags, &s->tuple))
			return t->v[i];
	return NULL;
}

struct dt_task *dt_tasks_add_sample(struct dt_tasks *t, const char *node, const char *ifname,
				    const struct dt_wire_sample *s)
{
	struct dt_task *task = match(t, s);
	struct dt_obs *o;

	if (!task) {
		t->unmatched++;
		return NULL;
	}
	if (task->n_obs == task->cap_obs) {
		size_t cap = task->cap_obs ? task->cap_obs * 2 : 64;
		struct dt_obs *v = realloc(task->obs, cap * sizeof(*v));

		if (!v) {
			t->unmatched++;
			return NULL;
		}
		task->obs = v;
		task->cap_obs = cap;
	}
	o = &task->obs[task->n_obs++];
	memset(o, 0, sizeof(*o));
	snprintf(o->node, sizeof(o->node), "%s", node);
	snprintf(o->ifname, sizeof(o->ifname), "%s", ifname);
	o->s = *s;
	return task;
}

int dt_tasks_control(const struct dt_tasks *t, struct dt_control *c)
{
	memset(c, 0, sizeof(*c));
	c->gen = t->gen;
	if (t->n == 0)
		return 0;
	c->arms = calloc(t->n, sizeof(*c->arms));
	if (!c->arms)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		c->arms[i].task_id = t->v[i]->id;
		c->arms[i].flags = t->v[i]->spec.flags;
		c->arms[i].tuple = t->v[i]->spec.tuple;
	}
	c->n_arms = (uint32_t)t->n;
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
