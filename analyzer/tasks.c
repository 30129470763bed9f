/* SPDX-License-Identifier: MIT */
/*
 * tasks.c - the task table: ids, the keys of active tasks, the control set (see tasks.h).
 * A task record alone is task.c's; the lifecycle is lifecycle.c's.
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

size_t dt_tasks_evict_ended(struct dt_tasks *t, uint64_t ended_before_ns)
{
	size_t kept = 0, gone;

	for (size_t i = 0; i < t->n_all; i++) {
		struct dt_task *task = t->all[i];

		if (dt_task_state_terminal(task->state) && !task->final_pending &&
		    task->ended_ns < ended_before_ns) {
			dt_task_drop_obs(task);
			free(task);
		} else {
			t->all[kept++] = task;
		}
	}
	if ((gone = t->n_all - kept) > 0) {
		t->n_all = kept;
		memset(t->ids, 0, t->n_ids * sizeof(*t->ids));
		for (size_t i = 0; i < kept; i++) {
			ids_put(t, t->all[i]);
		}
	}
	return gone;
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
		dt_task_drop_obs(t->all[i]);
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
	struct dt_task_spec norm;
	struct dt_task_key keys[DT_DIR_MAX];
	struct dt_task *task;
	char buf[DT_TUPLE_STR_MAX];
	unsigned int n_keys;
	int rv;

	if ((rv = dt_task_spec_normalize(spec, &norm, err, errlen))) {
		return rv;
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
		snprintf(err, errlen,
			 "too many active tasks: the control set holds at most %d keys",
			 DT_CONTROL_MAX_TASKS);
		return -ENOSPC;
	}
	if ((rv = reserve(t)) != 0 || !(task = calloc(1, sizeof(*task)))) {
		return -ENOMEM;
	}
	task->id = t->next_id;
	task->tenant = tenant;
	snprintf(task->tenant_name, sizeof(task->tenant_name), "%s",
		 tenant_name ? tenant_name : "");
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
	memset(&rec->prefixes, 0, sizeof(rec->prefixes));
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
	dt_task_set_text(task, "ready: its analysis is prepared; arming it with control set %llu",
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
