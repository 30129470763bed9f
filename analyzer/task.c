/* SPDX-License-Identifier: MIT */
/*
 * task.c - one task record (see tasks.h): its keys and their overlaps, its limits, its
 * observations, what the API shows of it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "tasks.h"

bool dt_task_state_terminal(uint32_t state)
{
	return state == DT_TASK_DONE || state == DT_TASK_EXPIRED || state == DT_TASK_CANCELLED ||
	       state == DT_TASK_FAILED;
}

#define SPEC_FLAGS (DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH)

int dt_task_spec_normalize(const struct dt_task_spec *spec, struct dt_task_spec *norm, char *err,
			   size_t errlen)
{
	char buf[DT_TUPLE_STR_MAX];

	*norm = *spec;
	if (spec->flags & ~(uint32_t)SPEC_FLAGS) {
		snprintf(err, errlen, "unknown task flags 0x%x",
			 spec->flags & ~(uint32_t)SPEC_FLAGS);
		return -EINVAL;
	}
	if (!(norm->flags & DT_TASK_DIR_BOTH)) {
		norm->flags |= DT_TASK_DIR_REQUEST;
	}
	if (dt_tuple_task_key(&spec->tuple, &norm->flags, &norm->tuple)) {
		snprintf(err, errlen,
			 "%s does not name a flow: give both addresses, a protocol, a VNI below "
			 "2^24, and both ports or none (ICMP: an echo identifier or none)",
			 dt_tuple_str(&spec->tuple, spec->flags, buf, sizeof(buf)));
		return -EINVAL;
	}
	return 0;
}

unsigned int dt_task_keys(const struct dt_task_spec *spec, struct dt_task_key keys[DT_DIR_MAX])
{
	uint32_t any = spec->flags & DT_TASK_F_ANYPORT;
	unsigned int n = 0;

	memset(keys, 0, DT_DIR_MAX * sizeof(*keys));
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
	    x->vni != y->vni) {
		return false;
	}
	if ((a->flags | b->flags) & DT_TASK_F_ANYPORT) {
		return true;
	}
	return x->sport == y->sport && x->dport == y->dport;
}

bool dt_spec_overlap(const struct dt_task_spec *a, const struct dt_task_spec *b)
{
	struct dt_task_key ka[DT_DIR_MAX], kb[DT_DIR_MAX];
	unsigned int na = dt_task_keys(a, ka), nb = dt_task_keys(b, kb);

	for (unsigned int i = 0; i < na; i++) {
		for (unsigned int j = 0; j < nb; j++) {
			if (dt_key_overlap(&ka[i], &kb[j])) {
				return true;
			}
		}
	}
	return false;
}

static int check_limit(const char *what, const char *unit, uint32_t *v, uint64_t def, uint64_t max,
		       char *err, size_t errlen)
{
	if (*v == 0) {
		*v = (uint32_t)def;
		return 0;
	}
	if (*v > max) {
		snprintf(err, errlen, "%s of %u %s is above the maximum of %llu %s", what, *v, unit,
			 (unsigned long long)max, unit);
		return -EINVAL;
	}
	return 0;
}

int dt_limits_apply(const struct dt_limits *l, struct dt_task_spec *spec, char *err, size_t errlen)
{
	int rv;

	if ((rv = check_limit("a budget", "packets", &spec->budget, l->budget_default,
			      l->budget_max, err, errlen)) ||
	    (rv = check_limit("a duration", "s", &spec->duration_s, l->duration_default_s,
			      l->duration_max_s, err, errlen)) ||
	    (rv = check_limit("a rate", "packets/s", &spec->rate_pps, l->rate_default_pps,
			      l->rate_max_pps, err, errlen))) {
		return rv;
	}
	return 0;
}

int dt_prefixes_reserve(struct dt_prefixes *p, uint16_t len)
{
	size_t need = p->used + len + 7, size = p->size ? p->size : 4096;
	uint8_t *v;

	if (need <= p->size) {
		return 0;
	}
	if (need / 8 > UINT32_MAX) {
		return -ENOMEM; /* beyond what cap_at reaches */
	}
	while (size < need) {
		size *= 2;
	}
	if (!(v = realloc(p->bytes, size))) {
		return -ENOMEM;
	}
	p->bytes = v;
	p->size = size;
	return 0;
}

void dt_prefixes_append(struct dt_prefixes *p, struct dt_obs *o, const uint8_t *cap)
{
	o->cap_at = (uint32_t)(p->used / 8);
	if (o->cap_len) {
		memcpy(p->bytes + p->used, cap, o->cap_len);
		p->used += (o->cap_len + 7u) & ~7u;
	}
}

void dt_prefixes_truncate(struct dt_prefixes *p, const struct dt_obs *o)
{
	p->used = (size_t)o->cap_at * 8;
}

void dt_prefixes_free(struct dt_prefixes *p)
{
	free(p->bytes);
	memset(p, 0, sizeof(*p));
}

struct dt_obs *dt_task_obs_next(struct dt_task *task, uint16_t cap_len)
{
	if (task->n_obs == task->cap_obs) {
		size_t cap = task->cap_obs ? task->cap_obs * 2 : 64;
		struct dt_obs *v = realloc(task->obs, cap * sizeof(*v));

		if (!v) {
			return NULL;
		}
		task->obs = v;
		task->cap_obs = cap;
	}
	if (cap_len && dt_prefixes_reserve(&task->prefixes, cap_len) != 0) {
		return NULL;
	}
	return &task->obs[task->n_obs];
}

void dt_task_obs_keep(struct dt_task *task, const uint8_t *cap)
{
	struct dt_obs *o = &task->obs[task->n_obs++];

	dt_prefixes_append(&task->prefixes, o, cap);
	if (dt_obs_counts_colored(o)) {
		task->colored[o->dir]++;
	}
}

int dt_task_add_obs(struct dt_task *task, const struct dt_obs *o, const uint8_t *cap)
{
	struct dt_obs *slot = dt_task_obs_next(task, o->cap_len);

	if (!slot) {
		return -ENOMEM;
	}
	*slot = *o;
	dt_task_obs_keep(task, cap);
	return 0;
}

void dt_task_obs_truncate(struct dt_task *task, size_t n)
{
	if (n >= task->n_obs) {
		return;
	}
	dt_prefixes_truncate(&task->prefixes, &task->obs[n]);
	while (task->n_obs > n) {
		const struct dt_obs *o = &task->obs[--task->n_obs];

		if (dt_obs_counts_colored(o) && task->colored[o->dir]) {
			task->colored[o->dir]--;
		}
	}
}

void dt_task_drop_obs(struct dt_task *task)
{
	free(task->obs);
	task->obs = NULL;
	task->n_obs = task->cap_obs = task->n_stored = 0;
	dt_prefixes_free(&task->prefixes);
}

void dt_task_info_fill(const struct dt_task *task, struct dt_task_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = task->id;
	info->state = task->state;
	info->spec = task->spec;
	info->created_ns = task->created_ns;
	info->colored = task->colored[DT_DIR_REQUEST] + task->colored[DT_DIR_REPLY];
	info->delivered = task->delivered;
	snprintf(info->tenant, sizeof(info->tenant), "%s", task->tenant_name);
	info->status = task->status;
	snprintf(info->status_text, sizeof(info->status_text), "%s", task->status_text);
	info->armed_ns = task->armed_ns;
	info->ended_ns = task->ended_ns;
}

void dt_task_set_text(struct dt_task *task, const char *fmt, ...)
{
	char buf[DT_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, task->status_text) != 0) {
		memcpy(task->status_text, buf, sizeof(buf));
		task->dirty = true;
	}
}
