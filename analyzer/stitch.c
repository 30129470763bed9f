// SPDX-License-Identifier: MIT
/*
 * stitch.c - windowed, NAT-aware attribution (see stitch.h).
 *
 * Two hash tables over struct dt_tuple (open addressing, linear probing, load at most
 * 1/2, no deletion):
 *  - keys: every key of every task, rebuilt whenever the task table's generation moves.
 *    Exact keys are stored as they are, any-port keys with their ports zeroed, so that a
 *    packet's tuple is looked up twice at most.
 *  - nat: learned translations, outside tuple -> (task, direction, inside tuple). A later
 *    lesson for the same outside tuple replaces the earlier one (a NAT reuses its ports).
 * A translation stores the task's id, not a pointer, and is checked against the task
 * table when used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "dt_time.h"
#include "stitch.h"

struct dt_stitch {
	struct dt_tasks *tasks;
	uint64_t window_ms;

	struct dt_attrib at; /* the task keys, translations and first fragments */

	struct dt_stitch_held *held; /* in arrival order, so ids ascend */
	size_t n_held, cap_held;
	uint64_t last_sample_ms; /* arrival of the newest sample */
	uint64_t next_held_id;	 /* the id the next held sample gets (from 1) */
	uint64_t saved_id;	 /* held ids below it are saved (dt_stitch_saved()) */
	uint64_t *released;	 /* saved held ids released since dt_stitch_saved() */
	size_t n_released, cap_released;

	/* Counters, cumulative. */
	uint64_t samples;    /* samples given to dt_stitch_add() */
	uint64_t attributed; /* samples attributed to a task (at once or after a window) */
	uint64_t late;	     /* of those, attributed when a window closed */
	uint64_t unmatched;  /* samples attributed to no task (held, then let go; or no room) */
	uint64_t after_end;  /* samples of a task that had just ended (its keys were still being
			      * disarmed): let go and counted here, not as unmatched */
	uint64_t nomem;	     /* samples lost to an allocation failure (counted here only) */
	uint64_t windows;    /* windows closed */
};

struct dt_stitch *dt_stitch_new(struct dt_tasks *tasks, uint64_t window_ms)
{
	struct dt_stitch *st = calloc(1, sizeof(*st));

	if (!st) {
		return NULL;
	}
	st->tasks = tasks;
	st->window_ms = window_ms;
	dt_attrib_init(&st->at, tasks);
	st->next_held_id = 1;
	st->saved_id = 1;
	return st;
}

void dt_stitch_free(struct dt_stitch *st)
{
	if (!st) {
		return;
	}
	dt_attrib_free(&st->at);
	free(st->held);
	free(st->released);
	free(st);
}

void dt_stitch_on_learn(struct dt_stitch *st, dt_stitch_learn_fn fn, void *arg)
{
	st->at.on_learn = fn;
	st->at.on_learn_arg = arg;
}

size_t dt_stitch_n_held(const struct dt_stitch *st)
{
	return st->n_held;
}

const struct dt_stitch_held *dt_stitch_held_at(const struct dt_stitch *st, size_t i)
{
	return &st->held[i];
}

size_t dt_stitch_n_released(const struct dt_stitch *st)
{
	return st->n_released;
}

uint64_t dt_stitch_released_at(const struct dt_stitch *st, size_t i)
{
	return st->released[i];
}

size_t dt_stitch_n_nat(const struct dt_stitch *st)
{
	return dt_attrib_n_nat(&st->at);
}

/*
 * A task that ended keeps coloring on the nodes until they apply the control set without
 * it (a heartbeat or two). True when in's tuple is a key of a task that ended within the
 * last few windows: such samples are neither attributed nor "unmatched" (which every
 * tenant's report shows), so one tenant's ended task never shows up in another's report.
 */
static bool ended_recently(const struct dt_stitch *st, const struct dt_stitch_in *in,
			   uint64_t now_ns)
{
	const struct dt_tasks *t = st->tasks;
	uint64_t grace_ns = (4 * st->window_ms + 5000) * 1000000ull;
	struct dt_tuple tu = in->o.tuple;

	for (size_t i = dt_tasks_n_all(t); i-- > 0;) {
		const struct dt_task *task = dt_tasks_nth(t, i);

		if (!task->ended_ns || task->ended_ns + grace_ns < now_ns)
			continue;
		for (unsigned int k = 0; k < task->n_keys; k++) {
			tu.vni = in->o.tuple.vni ? in->o.tuple.vni : task->keys[k].tuple.vni;
			if (dt_tuple_match(&task->keys[k].tuple, task->keys[k].flags, &tu))
				return true;
		}
	}
	return false;
}

/* Counts a sample attributed to no task. */
static void let_go(struct dt_stitch *st, const struct dt_stitch_in *in)
{
	if (ended_recently(st, in, dt_clock_ns(CLOCK_REALTIME)))
		st->after_end++;
	else
		st->unmatched++;
}

/* Gives o, attributed as m says, to its task. Returns 0 or -ENOMEM. */
static int deliver(struct dt_stitch *st, const struct dt_stitch_in *in, const struct dt_match *m)
{
	struct dt_obs *a = dt_task_obs_next(m->task, in->o.cap_len); /* filled in place */

	if (!a) {
		st->nomem++;
		return -ENOMEM;
	}
	*a = in->o;
	a->dir = m->dir;
	a->canon = m->canon;
	if (m->frag) {
		a->ident = m->ident;
	}
	dt_task_obs_keep(m->task, in->cap);
	st->attributed++;
	return 0;
}

/* Makes room for one more held sample. Returns 0 or -ENOMEM. */
static int held_reserve(struct dt_stitch *st)
{
	struct dt_stitch_held *v;
	size_t cap;

	if (st->n_held < st->cap_held) {
		return 0;
	}
	cap = st->cap_held ? st->cap_held * 2 : 256;
	if (!(v = realloc(st->held, cap * sizeof(*v)))) {
		return -ENOMEM;
	}
	st->held = v;
	st->cap_held = cap;
	return 0;
}

static int hold(struct dt_stitch *st, const struct dt_stitch_in *in)
{
	struct dt_stitch_held *h;

	if (st->n_held >= DT_STITCH_MAX_HELD) {
		let_go(st, in);
		return 0;
	}
	if (held_reserve(st) != 0) {
		st->nomem++;
		return -ENOMEM;
	}
	h = &st->held[st->n_held++];
	h->id = st->next_held_id++;
	h->in = *in;
	return 0;
}

int dt_stitch_add(struct dt_stitch *st, const struct dt_stitch_in *in, uint64_t now_ms)
{
	struct dt_match m;

	st->samples++;
	st->last_sample_ms = now_ms;
	if (dt_attrib_sync(&st->at) != 0) {
		st->nomem++;
		return -ENOMEM;
	}
	if (dt_attrib_match(&st->at, in, &m)) {
		return deliver(st, in, &m);
	}
	return hold(st, in);
}

bool dt_stitch_due(const struct dt_stitch *st, uint64_t now_ms)
{
	if (st->n_held == 0) {
		return false;
	}
	return now_ms >= st->last_sample_ms + st->window_ms ||
	       now_ms >= st->held[0].in.o.arrival_ms + DT_STITCH_MAX_WAIT_WINDOWS * st->window_ms;
}

bool dt_stitch_tick(struct dt_stitch *st, uint64_t now_ms)
{
	if (!dt_stitch_due(st, now_ms)) {
		return false;
	}
	dt_stitch_close(st, now_ms);
	return true;
}

/* Passes over the held samples at most, when each attributes something (chained NATs). */
#define MAX_PASSES 8

/*
 * Makes room to list every held sample as released, so that a close never releases a
 * sample it cannot list: its record would stay in the store and be counted again after a
 * restart. Returns 0 or -ENOMEM.
 */
static int released_reserve(struct dt_stitch *st)
{
	size_t need = st->n_released + st->n_held, cap = st->cap_released;
	uint64_t *v;

	if (need <= cap) {
		return 0;
	}
	while (cap < need) {
		cap = cap ? cap * 2 : 256;
	}
	if (!(v = realloc(st->released, cap * sizeof(*v)))) {
		return -ENOMEM;
	}
	st->released = v;
	st->cap_released = cap;
	return 0;
}

/* Notes that held sample h left (room reserved): its record goes when it was saved. */
static void release(struct dt_stitch *st, const struct dt_stitch_held *h)
{
	if (h->id < st->saved_id) {
		st->released[st->n_released++] = h->id;
	}
}

void dt_stitch_close(struct dt_stitch *st, uint64_t now_ms)
{
	bool progress = true;
	size_t i, m;
	int pass;

	st->windows++;
	if (st->n_held == 0) {
		return;
	}
	if (dt_attrib_sync(&st->at) != 0) {
		st->nomem++;
		return; /* held samples stay held: the next close tries again */
	}
	if (released_reserve(st) != 0) {
		return; /* nothing lost: they stay held, and the next close tries again */
	}
	for (pass = 0; pass < MAX_PASSES && progress; pass++) {
		progress = false;
		for (i = 0, m = 0; i < st->n_held; i++) {
			struct dt_match mt;

			if (dt_attrib_match(&st->at, &st->held[i].in, &mt)) {
				/* Without memory it is counted lost (nomem): released too. */
				if (deliver(st, &st->held[i].in, &mt) == 0) {
					st->late++;
				}
				release(st, &st->held[i]);
				progress = true;
				continue;
			}
			st->held[m++] = st->held[i];
		}
		st->n_held = m;
	}
	/* What still matches nothing after a full window is let go, and counted. */
	for (i = 0, m = 0; i < st->n_held; i++) {
		if (now_ms >= st->held[i].in.o.arrival_ms + st->window_ms) {
			let_go(st, &st->held[i].in);
			release(st, &st->held[i]);
			continue;
		}
		st->held[m++] = st->held[i];
	}
	st->n_held = m;
	if (m == 0 && st->cap_held > 4096) {
		free(st->held); /* give a burst's memory back */
		st->held = NULL;
		st->cap_held = 0;
	}
}

/* ------------------------------------------------------------------------------------ */
/* Durability (see stitch.h) */

size_t dt_stitch_unsaved(const struct dt_stitch *st)
{
	size_t i = st->n_held;

	/* Ids ascend along held[], and the unsaved ones are the newest. */
	while (i > 0 && st->held[i - 1].id >= st->saved_id) {
		i--;
	}
	return i;
}

void dt_stitch_saved(struct dt_stitch *st)
{
	st->saved_id = st->next_held_id;
	st->n_released = 0;
}

void dt_stitch_forget_unsaved(struct dt_stitch *st)
{
	st->n_held = dt_stitch_unsaved(st);
	/* Their ids were never stored: they can be given again. */
	st->next_held_id = st->saved_id;
}

int dt_stitch_restore_held(struct dt_stitch *st, uint64_t id, const struct dt_stitch_in *in,
			   uint64_t now_ms)
{
	struct dt_stitch_held *h;

	if (id < st->next_held_id || id == UINT64_MAX) {
		return -EINVAL;
	}
	if (held_reserve(st) != 0) {
		return -ENOMEM;
	}
	h = &st->held[st->n_held++];
	h->id = id;
	h->in = *in;
	h->in.o.arrival_ms = now_ms;
	st->next_held_id = id + 1;
	st->saved_id = st->next_held_id;
	st->last_sample_ms = now_ms;
	return 0;
}

/*
 * Why the translations are learned again from the stored observations instead of stored
 * themselves: every translation was taught by a sample with DT_SAMPLE_F_NAT that was
 * attributed, and that sample is an observation of its task, stored with the batch that
 * brought it (or, attributed from held, with the commit that deletes its held record).
 * The observation keeps all the lesson was: its tuple is the outside form as the gateway
 * saw it, its canon the packet's tuple inside every NAT in its own direction, and its dir
 * and task the rest. learn() with (tuple -> canon) for (task, dir) is what attribute()
 * did, so:
 *  - chains of NATs come back resolved: a second gateway's observation has the innermost
 *    tuple as its canon already (it was matched through the first gateway's
 *    translation), so it maps its outside form straight to the inside one;
 *  - replies come back: learn() adds the reversed pair when the task traces the other
 *    direction, from the task's keys, exactly as before; a reply entering at a gateway
 *    has the reply's outside and inside tuples and teaches both directions likewise;
 *  - nothing is learned that was not committed: a batch whose commit failed (its
 *    translations stay in memory until it is resent) left no observation behind.
 * Translations of tasks that ended are not learned (their observations are gone with
 * their final report), and would be ignored anyway: only active tasks are matched.
 * A later lesson for the same outside tuple replaces an earlier one (a NAT reuses its
 * ports), so the lessons are replayed in the order of their timestamps: the lessons
 * for one outside tuple come from the one gateway that owns its address, on one clock.
 */
struct lesson {
	uint64_t ts_ns;
	size_t seq; /* ties keep the order of the tasks and their observations */
	struct dt_task *task;
	const struct dt_obs *o;
};

static int lesson_cmp(const void *a, const void *b)
{
	const struct lesson *x = a, *y = b;

	if (x->ts_ns != y->ts_ns) {
		return x->ts_ns < y->ts_ns ? -1 : 1;
	}
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* What an observation teaches: a translation (NAT), or a first fragment. */
static bool relearnable(const struct dt_obs *o)
{
	return (o->flags & DT_SAMPLE_F_NAT) ||
	       ((o->frag & DT_FRAG_MF) && !(o->frag & DT_FRAG_OFFSET));
}

int dt_stitch_relearn(struct dt_stitch *st)
{
	const struct dt_tasks *t = st->tasks;
	uint64_t learned = st->at.learned, nat_full = st->at.nat_full;
	struct lesson *v = NULL;
	size_t n = 0, i, k;

	for (i = 0; i < dt_tasks_n_active(t); i++) {
		for (k = 0; k < dt_tasks_active(t, i)->n_obs; k++) {
			n += relearnable(&dt_tasks_active(t, i)->obs[k]);
		}
	}
	if (n == 0) {
		return 0;
	}
	if (!(v = calloc(n, sizeof(*v)))) {
		return -ENOMEM;
	}
	n = 0;
	for (i = 0; i < dt_tasks_n_active(t); i++) {
		struct dt_task *task = dt_tasks_active(t, i);

		for (k = 0; k < task->n_obs; k++) {
			if (relearnable(&task->obs[k])) {
				v[n] = (struct lesson){task->obs[k].ts_ns, n, task, &task->obs[k]};
				n++;
			}
		}
	}
	qsort(v, n, sizeof(*v), lesson_cmp);
	for (i = 0; i < n; i++) {
		const struct dt_obs *o = v[i].o;
		struct dt_match m = {.task = v[i].task, .dir = o->dir, .canon = o->canon};
		struct dt_tuple outside = o->tuple;

		if (o->dir >= DT_DIR_MAX) {
			continue;
		}
		if ((o->frag & DT_FRAG_MF) && !(o->frag & DT_FRAG_OFFSET)) {
			dt_attrib_remember_frag(&st->at, o, &m);
		}
		if (!(o->flags & DT_SAMPLE_F_NAT)) {
			continue;
		}
		if (outside.vni == 0) { /* as attribute() filled it in */
			outside.vni = o->canon.vni;
		}
		dt_attrib_learn(&st->at, &outside, &m);
	}
	free(v);
	/* Counted when they were first learned (the counters are restored separately). */
	st->at.learned = learned;
	st->at.nat_full = nat_full;
	return 0;
}

void dt_stitch_counters_get(const struct dt_stitch *st, struct dt_stitch_counters *c)
{
	c->samples = st->samples;
	c->attributed = st->attributed;
	c->late = st->late;
	c->unmatched = st->unmatched;
	c->after_end = st->after_end;
	c->learned = st->at.learned;
	c->nat_full = st->at.nat_full;
	c->nomem = st->nomem;
	c->windows = st->windows;
}

void dt_stitch_counters_set(struct dt_stitch *st, const struct dt_stitch_counters *c)
{
	st->samples = c->samples;
	st->attributed = c->attributed;
	st->late = c->late;
	st->unmatched = c->unmatched;
	st->after_end = c->after_end;
	st->at.learned = c->learned;
	st->at.nat_full = c->nat_full;
	st->nomem = c->nomem;
	st->windows = c->windows;
}
