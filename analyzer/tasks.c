/* SPDX-License-Identifier: MIT */
/*
 * tasks.c - the task table and the lifecycle (see tasks.h).
 *
 * Two hashes: ids (open addressing over every task, never deleted from) and the keys of
 * active tasks (chained buckets keyed by the tuple without ports, so that an exact key and
 * an any-port key of the same flow land in the same bucket and one walk finds every
 * overlap).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "tasks.h"

#define SPEC_FLAGS (DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH)
#define NS_PER_S 1000000000ull

const struct dt_limits dt_limits_defaults = {
	.budget_default = 100,
	.budget_max = 100000,
	.duration_default_s = 60,
	.duration_max_s = 3600,
	.rate_default_pps = 100,
	.rate_max_pps = 10000,
	.tasks_max_per_tenant = 4096,
};

struct dt_tasks {
	uint32_t next_id;
	uint64_t gen; /* control generation: grows with every change of the armed set */
	/* Active tasks (NEW..RUNNING), in no particular order. */
	size_t n, cap;
	struct dt_task **v;
	size_t n_arms; /* keys of active tasks at READY or later */
	/* Every task, in creation order (ids ascend), and a hash over their ids. */
	size_t n_all, cap_all;
	struct dt_task **all;
	struct dt_task **ids; /* open addressing, n_ids slots (a power of two) */
	uint32_t n_ids;
	/* Keys of active tasks, chained by their tuple without ports. */
	struct dt_key_ent **kb;
	uint32_t n_kb;
	size_t n_keys;
};

struct dt_key_ent {
	struct dt_key_ent *next;
	struct dt_task *task;
	unsigned int k; /* index into task->keys */
};

struct dt_host_ent {
	uint32_t vni;
	uint32_t addr;
	uint32_t node; /* index into dt_hosts.nodes */
};

/* ------------------------------------------------------------------------------------ */
/* Hashes */

static uint32_t mix64(uint64_t h)
{
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)(h ^ (h >> 31));
}

static uint32_t id_hash(uint32_t id)
{
	return mix64(id);
}

/* The hash of a tuple without its ports. */
static uint32_t flow_hash(const struct dt_tuple *t)
{
	uint64_t h = (uint64_t)t->saddr << 32 | t->daddr;

	h ^= ((uint64_t)t->proto << 24 | (t->vni & 0xffffff)) * 0x9e3779b97f4a7c15ull;
	return mix64(h);
}

static int ids_grow(struct dt_tasks *t)
{
	uint32_t n = t->n_ids ? t->n_ids * 2 : 64;
	struct dt_task **v = calloc(n, sizeof(*v));

	if (!v) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->n_ids; i++) {
		struct dt_task *task = t->ids[i];
		uint32_t j;

		if (!task) {
			continue;
		}
		for (j = id_hash(task->id) & (n - 1); v[j]; j = (j + 1) & (n - 1)) {
		}
		v[j] = task;
	}
	free(t->ids);
	t->ids = v;
	t->n_ids = n;
	return 0;
}

/* Adds task to the id hash (room made by the caller). */
static void ids_put(struct dt_tasks *t, struct dt_task *task)
{
	uint32_t j;

	for (j = id_hash(task->id) & (t->n_ids - 1); t->ids[j]; j = (j + 1) & (t->n_ids - 1)) {
	}
	t->ids[j] = task;
}

struct dt_task *dt_tasks_find(const struct dt_tasks *t, uint32_t id)
{
	uint32_t j;

	if (t->n_ids == 0) {
		return NULL;
	}
	for (j = id_hash(id) & (t->n_ids - 1); t->ids[j]; j = (j + 1) & (t->n_ids - 1)) {
		if (t->ids[j]->id == id) {
			return t->ids[j];
		}
	}
	return NULL;
}

struct dt_task *dt_tasks_find_active(const struct dt_tasks *t, uint32_t id)
{
	struct dt_task *task = dt_tasks_find(t, id);

	return task && !dt_task_state_terminal(task->state) ? task : NULL;
}

static int kb_grow(struct dt_tasks *t)
{
	uint32_t n = t->n_kb ? t->n_kb * 2 : 256;
	struct dt_key_ent **v = calloc(n, sizeof(*v));

	if (!v) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->n_kb; i++) {
		while (t->kb[i]) {
			struct dt_key_ent *e = t->kb[i];
			uint32_t j = flow_hash(&e->task->keys[e->k].tuple) & (n - 1);

			t->kb[i] = e->next;
			e->next = v[j];
			v[j] = e;
		}
	}
	free(t->kb);
	t->kb = v;
	t->n_kb = n;
	return 0;
}

/* Indexes the keys [from, task->n_keys) of task. Returns 0 or -ENOMEM (then none is). */
static int keys_add_from(struct dt_tasks *t, struct dt_task *task, unsigned int from)
{
	struct dt_key_ent *e[DT_TASK_MAX_KEYS] = {0};
	unsigned int k, n = task->n_keys - from;

	if (t->n_keys + n > t->n_kb && kb_grow(t) != 0) {
		return -ENOMEM;
	}
	for (k = 0; k < n; k++) {
		if (!(e[k] = calloc(1, sizeof(*e[k])))) {
			while (k-- > 0) {
				free(e[k]);
			}
			return -ENOMEM;
		}
	}
	for (k = 0; k < n; k++) {
		uint32_t j = flow_hash(&task->keys[from + k].tuple) & (t->n_kb - 1);

		e[k]->task = task;
		e[k]->k = from + k;
		e[k]->next = t->kb[j];
		t->kb[j] = e[k];
	}
	t->n_keys += n;
	return 0;
}

/* Indexes the keys of task. Returns 0 or -ENOMEM (then none is indexed). */
static int keys_add(struct dt_tasks *t, struct dt_task *task)
{
	return keys_add_from(t, task, 0);
}

static void keys_del(struct dt_tasks *t, struct dt_task *task)
{
	for (unsigned int k = 0; k < task->n_keys; k++) {
		struct dt_key_ent **pp = &t->kb[flow_hash(&task->keys[k].tuple) & (t->n_kb - 1)];

		while (*pp) {
			struct dt_key_ent *e = *pp;

			if (e->task == task && e->k == k) {
				*pp = e->next;
				free(e);
				t->n_keys--;
				break;
			}
			pp = &e->next;
		}
	}
}

/* ------------------------------------------------------------------------------------ */
/* The table */

struct dt_tasks *dt_tasks_new(void)
{
	struct dt_tasks *t = calloc(1, sizeof(*t));

	if (t) {
		t->next_id = 1;
	}
	return t;
}

void dt_tasks_free(struct dt_tasks *t)
{
	if (!t) {
		return;
	}
	for (uint32_t i = 0; i < t->n_kb; i++) {
		while (t->kb[i]) {
			struct dt_key_ent *e = t->kb[i];

			t->kb[i] = e->next;
			free(e);
		}
	}
	for (size_t i = 0; i < t->n_all; i++) {
		free(t->all[i]->obs);
		free(t->all[i]);
	}
	free(t->kb);
	free(t->ids);
	free(t->all);
	free(t->v);
	free(t);
}

size_t dt_tasks_n_active(const struct dt_tasks *t)
{
	return t->n;
}

struct dt_task *dt_tasks_active(const struct dt_tasks *t, size_t i)
{
	return t->v[i];
}

size_t dt_tasks_n_all(const struct dt_tasks *t)
{
	return t->n_all;
}

struct dt_task *dt_tasks_nth(const struct dt_tasks *t, size_t i)
{
	return t->all[i];
}

uint32_t dt_tasks_next_id(const struct dt_tasks *t)
{
	return t->next_id;
}

uint64_t dt_tasks_gen(const struct dt_tasks *t)
{
	return t->gen;
}

size_t dt_tasks_n_arms(const struct dt_tasks *t)
{
	return t->n_arms;
}

size_t dt_tasks_n_keys(const struct dt_tasks *t)
{
	return t->n_keys;
}

void dt_tasks_restore_meta(struct dt_tasks *t, uint32_t next_id, uint64_t gen)
{
	t->next_id = next_id ? next_id : 1;
	t->gen = gen;
}

void dt_tasks_new_gen(struct dt_tasks *t)
{
	t->gen++;
}

bool dt_task_state_terminal(uint32_t state)
{
	return state == DT_TASK_DONE || state == DT_TASK_EXPIRED || state == DT_TASK_CANCELLED ||
	       state == DT_TASK_FAILED;
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

/* The first index entry whose key overlaps key, or NULL. */
static const struct dt_key_ent *find_overlap(const struct dt_tasks *t,
					     const struct dt_task_key *key)
{
	const struct dt_key_ent *e;

	if (t->n_kb == 0) {
		return NULL;
	}
	for (e = t->kb[flow_hash(&key->tuple) & (t->n_kb - 1)]; e; e = e->next) {
		if (dt_key_overlap(key, &e->task->keys[e->k])) {
			return e;
		}
	}
	return NULL;
}

/* Refuses a key of the new task that overlaps a key of an active one (-EEXIST). */
static int check_overlap(const struct dt_tasks *t, const struct dt_task_key *keys,
			 unsigned int n_keys, char *err, size_t errlen)
{
	char buf[DT_TUPLE_STR_MAX];

	for (unsigned int k = 0; k < n_keys; k++) {
		if (!find_overlap(t, &keys[k])) {
			continue;
		}
		/* Says which of our directions collides, never which task or whose. */
		snprintf(err, errlen,
			 "%s%s overlaps a six-tuple traced by an active task; six-tuples of "
			 "active tasks must not overlap",
			 keys[k].dir == DT_DIR_REPLY ? "the reply direction " : "",
			 dt_tuple_str(&keys[k].tuple, keys[k].flags, buf, sizeof(buf)));
		return -EEXIST;
	}
	return 0;
}

static int check_limit(const char *what, const char *unit, uint32_t *v, uint64_t def,
		       uint64_t max, char *err, size_t errlen)
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

int dt_limits_apply(const struct dt_limits *l, struct dt_task_spec *spec, char *err,
		    size_t errlen)
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

/* Makes room for one more task in all[], v[] and the id hash. */
static int reserve(struct dt_tasks *t)
{
	if (t->n_all == t->cap_all) {
		size_t cap = t->cap_all ? t->cap_all * 2 : 64;
		struct dt_task **v = realloc(t->all, cap * sizeof(*v));

		if (!v) {
			return -ENOMEM;
		}
		t->all = v;
		t->cap_all = cap;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct dt_task **v = realloc(t->v, cap * sizeof(*v));

		if (!v) {
			return -ENOMEM;
		}
		t->v = v;
		t->cap = cap;
	}
	if ((t->n_all + 1) * 2 > t->n_ids && ids_grow(t) != 0) {
		return -ENOMEM;
	}
	return 0;
}

static void active_add(struct dt_tasks *t, struct dt_task *task)
{
	task->active_idx = t->n;
	t->v[t->n++] = task;
}

static void active_del(struct dt_tasks *t, struct dt_task *task)
{
	size_t i = task->active_idx;

	if (i >= t->n || t->v[i] != task) {
		return;
	}
	t->v[i] = t->v[--t->n];
	t->v[i]->active_idx = i;
	task->active_idx = SIZE_MAX;
}

int dt_tasks_create(struct dt_tasks *t, const struct dt_task_spec *spec, uint32_t tenant,
		    const char *tenant_name, uint64_t now_ns, struct dt_task **out, char *err,
		    size_t errlen)
{
	struct dt_task_spec norm = *spec;
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
	if (!(norm.flags & DT_TASK_DIR_BOTH)) {
		norm.flags |= DT_TASK_DIR_REQUEST;
	}
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
	if ((rv = check_overlap(t, keys, n_keys, err, errlen))) {
		return rv;
	}
	if (t->n_keys + n_keys > DT_CONTROL_MAX_TASKS) {
		snprintf(err, errlen, "too many active tasks: the control set holds at most %d keys",
			 DT_CONTROL_MAX_TASKS);
		return -ENOSPC;
	}
	if ((rv = reserve(t)) != 0 || !(task = calloc(1, sizeof(*task)))) {
		return -ENOMEM;
	}
	task->id = t->next_id;
	task->tenant = tenant;
	snprintf(task->tenant_name, sizeof(task->tenant_name), "%s", tenant_name ? tenant_name : "");
	task->spec = norm;
	task->n_keys = n_keys;
	memcpy(task->keys, keys, sizeof(keys));
	task->state = DT_TASK_NEW;
	task->status = DT_TS_OK;
	snprintf(task->status_text, sizeof(task->status_text),
		 "created; its analysis state is being prepared");
	task->created_ns = now_ns;
	task->dirty = true;
	if (keys_add(t, task) != 0) {
		free(task);
		return -ENOMEM;
	}
	t->next_id++;
	t->all[t->n_all++] = task;
	ids_put(t, task);
	active_add(t, task);
	*out = task;
	return 0;
}

int dt_tasks_restore(struct dt_tasks *t, struct dt_task *rec)
{
	bool active = !dt_task_state_terminal(rec->state);

	if (dt_tasks_find(t, rec->id)) {
		return -EEXIST;
	}
	rec->obs = NULL;
	rec->n_obs = rec->cap_obs = rec->n_stored = 0;
	rec->n_keys = dt_task_keys(&rec->spec, rec->keys);
	if (active && check_overlap(t, rec->keys, rec->n_keys, rec->status_text, 0) != 0) {
		return -EEXIST;
	}
	if (reserve(t) != 0 || (active && keys_add(t, rec) != 0)) {
		return -ENOMEM;
	}
	/* all[] stays in id order: the store hands tasks out by ascending id. */
	t->all[t->n_all++] = rec;
	ids_put(t, rec);
	if (active) {
		active_add(t, rec);
		if (rec->state >= DT_TASK_READY) {
			t->n_arms += rec->n_keys;
		}
	}
	if (rec->id >= t->next_id) {
		t->next_id = rec->id + 1;
	}
	return 0;
}

size_t dt_tasks_count_tenant(const struct dt_tasks *t, uint32_t tenant)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++) {
		n += t->v[i]->tenant == tenant;
	}
	return n;
}

int dt_task_add_obs(struct dt_task *task, const struct dt_obs *o)
{
	if (task->n_obs == task->cap_obs) {
		size_t cap = task->cap_obs ? task->cap_obs * 2 : 64;
		struct dt_obs *v = realloc(task->obs, cap * sizeof(*v));

		if (!v) {
			return -ENOMEM;
		}
		task->obs = v;
		task->cap_obs = cap;
	}
	task->obs[task->n_obs++] = *o;
	if (dt_obs_counts_colored(o)) {
		task->colored[o->dir]++;
	}
	return 0;
}

void dt_task_drop_obs(struct dt_task *task)
{
	free(task->obs);
	task->obs = NULL;
	task->n_obs = task->cap_obs = task->n_stored = 0;
}

int dt_tasks_control(const struct dt_tasks *t, struct dt_control *c)
{
	size_t k = 0;

	memset(c, 0, sizeof(*c));
	c->gen = t->gen;
	if (t->n_arms == 0) {
		return 0;
	}
	c->arms = calloc(t->n_arms, sizeof(*c->arms));
	if (!c->arms) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct dt_task *task = t->v[i];

		if (task->state < DT_TASK_READY) {
			continue;
		}
		for (unsigned int j = 0; j < task->n_keys && k < t->n_arms; j++) {
			c->arms[k].task_id = task->id;
			c->arms[k].flags = task->keys[j].flags;
			c->arms[k].tuple = task->keys[j].tuple;
			c->arms[k].budget = task->spec.budget;
			c->arms[k].rate_pps = task->spec.rate_pps;
			k++;
		}
	}
	c->n_arms = (uint32_t)k;
	return 0;
}

int dt_tasks_add_learned(struct dt_tasks *t, struct dt_task *task, const struct dt_tuple *tuple,
			 uint8_t dir)
{
	struct dt_task_key key = {.dir = dir, .learned = true};
	uint32_t flags = dir == DT_DIR_REPLY ? DT_TASK_F_REPLY : 0;
	unsigned int k;
	int rv;

	if (dt_task_state_terminal(task->state) || dir >= DT_DIR_MAX ||
	    dt_tuple_task_key(tuple, &flags, &key.tuple) != 0) {
		return -EINVAL;
	}
	key.flags = flags;
	for (k = 0; k < task->n_keys; k++) {
		if (dt_key_overlap(&key, &task->keys[k])) {
			return 0; /* one of its keys covers it already */
		}
	}
	if (task->n_keys == DT_TASK_MAX_KEYS) {
		task->learned_full++;
		return -ENOSPC;
	}
	if (find_overlap(t, &key)) {
		return -EEXIST;
	}
	if (t->n_keys + 1 > DT_CONTROL_MAX_TASKS) {
		return -ENOSPC;
	}
	task->keys[task->n_keys++] = key;
	if ((rv = keys_add_from(t, task, task->n_keys - 1)) != 0) {
		task->n_keys--;
		return rv;
	}
	if (task->state >= DT_TASK_READY) {
		t->n_arms++;
	}
	t->gen++;
	return 0;
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

/* ------------------------------------------------------------------------------------ */
/* Lifecycle */

static int host_cmp(const void *a, const void *b)
{
	const struct dt_host_ent *x = a, *y = b;

	if (x->vni != y->vni) {
		return x->vni < y->vni ? -1 : 1;
	}
	if (x->addr != y->addr) {
		return x->addr < y->addr ? -1 : 1;
	}
	return x->node < y->node ? -1 : x->node > y->node;
}

int dt_hosts_build(struct dt_hosts *h, const struct dt_node_state *nodes, uint32_t n)
{
	size_t total = 0, k = 0;

	memset(h, 0, sizeof(*h));
	h->nodes = nodes;
	h->n_nodes = n;
	for (uint32_t i = 0; i < n; i++) {
		total += nodes[i].n_endpoints;
	}
	if (total == 0) {
		return 0;
	}
	if (!(h->v = calloc(total, sizeof(*h->v)))) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < nodes[i].n_endpoints; j++) {
			h->v[k].vni = nodes[i].endpoints[j].vni & 0xffffff;
			h->v[k].addr = nodes[i].endpoints[j].addr;
			h->v[k].node = i;
			k++;
		}
	}
	h->n = k;
	qsort(h->v, h->n, sizeof(*h->v), host_cmp);
	return 0;
}

void dt_hosts_free(struct dt_hosts *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* The entries hosting (vni, addr): *first and how many. */
static size_t hosts_find(const struct dt_hosts *h, uint32_t vni, uint32_t addr,
			 const struct dt_host_ent **first)
{
	size_t lo = 0, hi = h ? h->n : 0, n = 0;
	struct dt_host_ent key = {.vni = vni, .addr = addr, .node = 0};

	while (lo < hi) { /* the first entry not below (vni, addr, 0) */
		size_t mid = lo + (hi - lo) / 2;

		if (host_cmp(&h->v[mid], &key) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*first = h && lo < h->n ? &h->v[lo] : NULL;
	while (h && lo + n < h->n && h->v[lo + n].vni == vni && h->v[lo + n].addr == addr) {
		n++;
	}
	return n;
}

const char *dt_hosts_node(const struct dt_hosts *h, uint32_t vni, uint32_t addr)
{
	const struct dt_host_ent *first;

	return hosts_find(h, vni & 0xffffff, addr, &first) ? h->nodes[first->node].node : NULL;
}

/* How one direction's entry stands in the handshake. */
struct entry {
	size_t n_hosts;
	const char *host;     /* a hosting node, the first lagging one if any */
	bool lagging;         /* a hosting node has not applied arm_gen */
	uint64_t lag_gen;     /* what that node applied */
	uint32_t addr;        /* the address looked up (0: a gateway) */
};

static void entry_check(const struct dt_hosts *h, const struct dt_task *task,
			const struct dt_task_key *key, struct entry *e)
{
	const struct dt_host_ent *first;
	uint32_t vni = key->tuple.vni;

	memset(e, 0, sizeof(*e));
	/* A key's tuple is in its own direction: its source is where it enters. */
	e->addr = key->tuple.saddr;
	e->n_hosts = hosts_find(h, vni, e->addr, &first);
	if (e->n_hosts == 0) {
		e->addr = 0;
		e->n_hosts = hosts_find(h, vni, 0, &first);
	}
	for (size_t i = 0; i < e->n_hosts; i++) {
		const struct dt_node_state *ns = &h->nodes[first[i].node];

		if (!e->host) {
			e->host = ns->node;
		}
		if (ns->ctl_gen < task->arm_gen) {
			e->host = ns->node;
			e->lagging = true;
			e->lag_gen = ns->ctl_gen;
			break;
		}
	}
}

static void set_text(struct dt_task *task, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_text(struct dt_task *task, const char *fmt, ...)
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

static const char *dir_word(uint8_t dir)
{
	return dir == DT_DIR_REPLY ? "replies" : "requests";
}

void dt_task_ready(struct dt_tasks *t, struct dt_task *task, uint64_t now_ms)
{
	if (task->state != DT_TASK_NEW) {
		return;
	}
	task->state = DT_TASK_READY;
	task->arm_gen = ++t->gen;
	task->ready_ms = now_ms;
	t->n_arms += task->n_keys;
	task->dirty = true;
	set_text(task, "ready: its analysis is prepared; arming it with control set %llu",
		 (unsigned long long)task->arm_gen);
}

void dt_task_end(struct dt_tasks *t, struct dt_task *task, uint32_t state, uint32_t status,
		 uint64_t now_ns, const char *fmt, ...)
{
	va_list ap;

	if (dt_task_state_terminal(task->state)) {
		return;
	}
	if (task->state >= DT_TASK_READY) {
		t->n_arms -= task->n_keys;
	}
	keys_del(t, task);
	active_del(t, task);
	t->gen++;
	task->state = state;
	task->status = status;
	task->ended_ns = now_ns;
	va_start(ap, fmt);
	vsnprintf(task->status_text, sizeof(task->status_text), fmt, ap);
	va_end(ap);
	task->dirty = true;
}

static void entry_name(const struct dt_task_key *key, char *buf, size_t len)
{
	char a[16];

	snprintf(buf, len, "%s in VNI %u", dt_ipv4_str(key->tuple.saddr, a, sizeof(a)),
		 key->tuple.vni);
}

/*
 * True when key k of task is its reply key, that no node hosts, while its request key is
 * hosted: the request goes to an address nobody hosts (a load balancer's VIP, a router's
 * DNAT), and the reply starts where the translation sends the request. That first hop is
 * armed once the analyzer learns the translation (dt_tasks_add_learned()).
 */
static bool reply_learnable(const struct dt_task *task, unsigned int k, const struct entry *e)
{
	return task->keys[k].dir == DT_DIR_REPLY && k == 1 && e[0].n_hosts > 0 &&
	       task->keys[0].dir == DT_DIR_REQUEST;
}

/* How many of task's keys are its own (they come first; the learned ones follow). */
static unsigned int own_keys(const struct dt_task *task)
{
	unsigned int n = 0;

	while (n < task->n_keys && n < DT_DIR_MAX && !task->keys[n].learned) {
		n++;
	}
	return n;
}

/* READY: the handshake. Returns true when the task ended. */
static bool handshake(struct dt_tasks *t, struct dt_task *task, const struct dt_hosts *h,
		      const struct dt_lifecycle_cfg *cfg, uint64_t now_ns, uint64_t now_ms)
{
	struct entry e[DT_DIR_MAX];
	uint64_t waited = now_ms - task->ready_ms;
	unsigned int k, n_own = own_keys(task);
	char where[64];

	for (k = 0; k < n_own; k++) {
		entry_check(h, task, &task->keys[k], &e[k]);
	}
	for (k = 0; k < n_own; k++) {
		if (e[k].n_hosts || reply_learnable(task, k, e)) {
			continue;
		}
		entry_name(&task->keys[k], where, sizeof(where));
		if (waited >= cfg->host_grace_ms) {
			dt_task_end(t, task, DT_TASK_FAILED, DT_TS_NO_HOST, now_ns,
				    "failed: no live node hosts %s, nor a gateway of VNI %u: the "
				    "%s have no first hop to arm (waited %llu ms)",
				    where, task->keys[k].tuple.vni, dir_word(task->keys[k].dir),
				    (unsigned long long)waited);
			return true;
		}
		if (task->status != DT_TS_RESTARTED) {
			set_text(task, "ready: waiting for a node that hosts %s to report", where);
		}
		return false;
	}
	for (k = 0; k < n_own; k++) {
		if (!e[k].lagging) {
			continue;
		}
		if (waited >= cfg->arm_timeout_ms) {
			dt_task_end(t, task, DT_TASK_FAILED, DT_TS_ARM_TIMEOUT, now_ns,
				    "failed: node %s, the first hop of the %s, did not apply control "
				    "set %llu within %llu ms (it applied %llu)",
				    e[k].host, dir_word(task->keys[k].dir),
				    (unsigned long long)task->arm_gen,
				    (unsigned long long)cfg->arm_timeout_ms,
				    (unsigned long long)e[k].lag_gen);
			return true;
		}
		if (task->status != DT_TS_RESTARTED) {
			set_text(task, "ready: waiting for node %s to apply control set %llu",
				 e[k].host, (unsigned long long)task->arm_gen);
		}
		return false;
	}
	task->state = DT_TASK_ARMED;
	task->status = DT_TS_OK;
	task->armed_ns = now_ns;
	task->dirty = true;
	if (n_own == 2 && !e[1].n_hosts) {
		set_text(task, "armed at %s (requests); replies start where a translation on the "
			 "way sends the requests: armed there once it is learned", e[0].host);
	} else if (n_own == 2) {
		set_text(task, "armed at %s (requests) and %s (replies); waiting for its first "
			 "colored packet", e[0].host, e[1].host);
	} else {
		set_text(task, "armed at %s; waiting for its first colored packet", e[0].host);
	}
	return false;
}

static bool budget_spent(const struct dt_task *task)
{
	for (unsigned int k = 0; k < task->n_keys; k++) {
		if (task->colored[task->keys[k].dir] < task->spec.budget) {
			return false;
		}
	}
	return true;
}

static uint64_t colored(const struct dt_task *task)
{
	return task->colored[DT_DIR_REQUEST] + task->colored[DT_DIR_REPLY];
}

size_t dt_tasks_step(struct dt_tasks *t, const struct dt_hosts *hosts,
		     const struct dt_lifecycle_cfg *cfg, const struct dt_lifecycle_ops *ops,
		     uint64_t now_ns, uint64_t now_ms)
{
	size_t ended = 0;

	/* Backwards: ending a task moves the last one into its place, already visited. */
	for (size_t i = t->n; i-- > 0;) {
		struct dt_task *task = t->v[i];
		uint64_t deadline = task->created_ns + (uint64_t)task->spec.duration_s * NS_PER_S;

		if (task->state == DT_TASK_NEW) {
			continue;
		}
		if (now_ns >= deadline) {
			dt_task_end(t, task, DT_TASK_EXPIRED, DT_TS_DURATION, now_ns,
				    "expired: its duration of %u s ran out (%llu packets colored "
				    "of a budget of %u per direction)",
				    task->spec.duration_s, (unsigned long long)colored(task),
				    task->spec.budget);
		} else if (task->state == DT_TASK_READY && task->n_obs == 0) {
			handshake(t, task, hosts, cfg, now_ns, now_ms);
		} else if (task->state <= DT_TASK_ARMED && task->n_obs > 0) {
			/* A sample proves the arming even before the node's state is relayed. */
			if (!task->armed_ns) {
				task->armed_ns = now_ns;
			}
			task->state = DT_TASK_RUNNING;
			task->status = DT_TS_OK;
			task->dirty = true;
			set_text(task, "running: colored packets are being sampled");
		}
		if (task->state == DT_TASK_RUNNING && budget_spent(task) &&
		    (!ops || !ops->settled || ops->settled(ops->arg, task))) {
			dt_task_end(t, task, DT_TASK_DONE, DT_TS_BUDGET_SPENT, now_ns,
				    "done: its budget of %u packets per direction was colored and "
				    "every packet judged",
				    task->spec.budget);
		}
		if (dt_task_state_terminal(task->state)) {
			ended++;
			if (ops && ops->ended) {
				ops->ended(ops->arg, task);
			}
		}
	}
	return ended;
}
