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

enum slot_kind {
	SLOT_FREE = 0,
	SLOT_EXACT,   /* a task key with ports */
	SLOT_ANYPORT, /* a task key without ports (stored with ports 0) */
	SLOT_NAT,     /* a learned translation */
	SLOT_FRAG,    /* a first fragment attributed (key: addresses, proto, sport = ip_id) */
};

struct dt_tmap_slot {
	struct dt_tuple key;	/* padding zeroed */
	struct dt_tuple inside; /* SLOT_NAT: the tuple inside the NAT */
	uint32_t task_id;
	uint32_t ident; /* SLOT_FRAG: the datagram's ident */
	uint8_t kind;
	uint8_t dir;
};

/* A hash table of tuples (stitch.c). */
struct dt_tmap {
	struct dt_tmap_slot *slots;
	uint32_t n_slots; /* a power of two */
	uint32_t n;
};

struct dt_stitch {
	struct dt_tasks *tasks;
	uint64_t window_ms;

	uint64_t keys_gen;   /* tasks->gen the key index was built for */
	struct dt_tmap keys; /* task keys: exact and any-port */
	uint32_t *vnis;	     /* the distinct VNIs of the task keys */
	size_t n_vnis;
	struct dt_tmap nat; /* learned translations: outside tuple -> inside */
	struct dt_tmap frags; /* first fragments attributed: (addresses as seen, protocol,
			       * IPv4 id) -> their task, direction, canonical tuple and ident */
	dt_stitch_learn_fn on_learn; /* NULL: nobody is told */
	void *on_learn_arg;

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
	uint64_t learned;    /* translations learned or changed */
	uint64_t nat_full;   /* translations not learned (or first fragments not remembered):
			      * the table is full */
	uint64_t nomem;	     /* samples lost to an allocation failure (counted here only) */
	uint64_t windows;    /* windows closed */
};

/* What a sample was attributed to. */
struct match {
	struct dt_task *task;
	uint8_t dir;
	struct dt_tuple canon;
	bool frag;      /* a later fragment: ident is its datagram's */
	uint32_t ident;
};

/* ------------------------------------------------------------------------------------ */
/* Tuple hash tables */

static void norm_tuple(const struct dt_tuple *in, struct dt_tuple *out)
{
	memset(out, 0, sizeof(*out));
	out->saddr = in->saddr;
	out->daddr = in->daddr;
	out->sport = in->sport;
	out->dport = in->dport;
	out->vni = in->vni;
	out->proto = in->proto;
}

static uint32_t tuple_hash(const struct dt_tuple *t, uint8_t kind)
{
	uint64_t ports = (uint64_t)t->sport << 48 | (uint64_t)t->dport << 32;
	uint64_t h = (uint64_t)t->saddr << 32 | t->daddr;

	h ^= (ports | (uint64_t)t->proto << 24 | kind) * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)t->vni * 0xc2b2ae3d27d4eb4full;
	/* splitmix64's finalizer */
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)(h ^ (h >> 31));
}

static bool tuple_eq(const struct dt_tuple *a, const struct dt_tuple *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport &&
	       a->dport == b->dport && a->vni == b->vni && a->proto == b->proto;
}

/* The slot holding (key, kind), or the free slot where it would go. n_slots > 0. */
static struct dt_tmap_slot *tmap_slot(const struct dt_tmap *m, const struct dt_tuple *key,
				      uint8_t kind)
{
	uint32_t mask = m->n_slots - 1;
	uint32_t i = tuple_hash(key, kind) & mask;

	for (;;) {
		struct dt_tmap_slot *s = &m->slots[i];

		if (s->kind == SLOT_FREE || (s->kind == kind && tuple_eq(&s->key, key))) {
			return s;
		}
		i = (i + 1) & mask;
	}
}

static const struct dt_tmap_slot *tmap_find(const struct dt_tmap *m, const struct dt_tuple *key,
					    uint8_t kind)
{
	const struct dt_tmap_slot *s;

	if (m->n == 0) {
		return NULL;
	}
	s = tmap_slot(m, key, kind);
	return s->kind == SLOT_FREE ? NULL : s;
}

static void tmap_free(struct dt_tmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Makes room for one more entry. Returns 0 or -ENOMEM. */
static int tmap_reserve(struct dt_tmap *m)
{
	struct dt_tmap_slot *old = m->slots;
	uint32_t old_n = m->n_slots, i;
	uint32_t n_slots;

	if ((uint64_t)(m->n + 1) * 2 <= m->n_slots) {
		return 0;
	}
	n_slots = m->n_slots ? m->n_slots * 2 : 64;
	m->slots = calloc(n_slots, sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		return -ENOMEM;
	}
	m->n_slots = n_slots;
	for (i = 0; i < old_n; i++) {
		if (old[i].kind != SLOT_FREE) {
			*tmap_slot(m, &old[i].key, old[i].kind) = old[i];
		}
	}
	free(old);
	return 0;
}

/* Inserts or replaces the entry of (e->key, e->kind). Returns 0 or -ENOMEM. */
static int tmap_put(struct dt_tmap *m, const struct dt_tmap_slot *e)
{
	struct dt_tmap_slot *s;
	int rv;

	if ((rv = tmap_reserve(m)) != 0) {
		return rv;
	}
	s = tmap_slot(m, &e->key, e->kind);
	if (s->kind == SLOT_FREE) {
		m->n++;
	}
	*s = *e;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The key index */

/* Rebuilds the key index when the task table changed. Returns 0 or -ENOMEM. */
static int sync_keys(struct dt_stitch *st)
{
	const struct dt_tasks *t = st->tasks;
	struct dt_tmap keys = {0};
	uint32_t *vnis = NULL;
	size_t n_keys = 0, n_vnis = 0, i, j;
	unsigned int k;

	if (st->keys_gen == dt_tasks_gen(t)) {
		return 0;
	}
	for (i = 0; i < dt_tasks_n_active(t); i++) {
		n_keys += dt_tasks_active(t, i)->n_keys;
	}
	if (n_keys > 0 && !(vnis = calloc(n_keys, sizeof(*vnis)))) {
		return -ENOMEM;
	}
	for (i = 0; i < dt_tasks_n_active(t); i++) {
		const struct dt_task *task = dt_tasks_active(t, i);

		for (k = 0; k < task->n_keys; k++) {
			const struct dt_task_key *key = &task->keys[k];
			struct dt_tmap_slot e;

			if (key->learned) {
				continue; /* attributed through its translation */
			}

			memset(&e, 0, sizeof(e));
			norm_tuple(&key->tuple, &e.key);
			e.kind = key->flags & DT_TASK_F_ANYPORT ? SLOT_ANYPORT : SLOT_EXACT;
			if (e.kind == SLOT_ANYPORT) {
				e.key.sport = 0;
				e.key.dport = 0;
			}
			e.task_id = task->id;
			e.dir = key->dir;
			/* Keys never overlap (tasks.c), so nothing is replaced here. */
			if (tmap_put(&keys, &e) != 0) {
				tmap_free(&keys);
				free(vnis);
				return -ENOMEM;
			}
			for (j = 0; j < n_vnis && vnis[j] != key->tuple.vni; j++) {
			}
			if (j == n_vnis) {
				vnis[n_vnis++] = key->tuple.vni;
			}
		}
	}
	tmap_free(&st->keys);
	free(st->vnis);
	st->keys = keys;
	st->vnis = vnis;
	st->n_vnis = n_vnis;
	st->keys_gen = dt_tasks_gen(t);
	return 0;
}

/* Matches tuple t against the task keys, then the translations. */
static bool match_tuple(const struct dt_stitch *st, const struct dt_tuple *t, struct match *m)
{
	const struct dt_tmap_slot *s;
	struct dt_tuple k;

	norm_tuple(t, &k);
	s = tmap_find(&st->keys, &k, SLOT_EXACT);
	if (!s) {
		k.sport = 0;
		k.dport = 0;
		s = tmap_find(&st->keys, &k, SLOT_ANYPORT);
		norm_tuple(t, &k);
	}
	m->frag = false;
	if (s) {
		m->canon = k;
	} else if ((s = tmap_find(&st->nat, &k, SLOT_NAT)) != NULL) {
		m->canon = s->inside;
	} else {
		return false;
	}
	m->task = dt_tasks_find_active(st->tasks, s->task_id);
	m->dir = s->dir;
	return m->task != NULL;
}

/* A first hop's task_id, when one of that task's keys matches t. */
static bool match_hint(const struct dt_stitch *st, uint32_t task_id, const struct dt_tuple *t,
		       struct match *m)
{
	struct dt_task *task = task_id ? dt_tasks_find_active(st->tasks, task_id) : NULL;
	unsigned int k;

	if (!task) {
		return false;
	}
	for (k = 0; k < task->n_keys; k++) {
		const struct dt_task_key *key = &task->keys[k];

		if (!key->learned && dt_tuple_match(&key->tuple, key->flags, t)) {
			m->task = task;
			m->dir = key->dir;
			m->frag = false;
			norm_tuple(t, &m->canon);
			return true;
		}
	}
	return false;
}

/* match_tuple() for a tuple whose VNI is unknown (0): exactly one VNI must answer. */
static bool match_any_vni(const struct dt_stitch *st, const struct dt_tuple *t, struct match *m)
{
	struct match found = {0}, cur = {0};
	struct dt_tuple k = *t;
	size_t i, hits = 0;

	for (i = 0; i < st->n_vnis; i++) {
		k.vni = st->vnis[i];
		if (match_tuple(st, &k, &cur)) {
			if (hits > 0 && (cur.task != found.task || cur.dir != found.dir ||
					 !tuple_eq(&cur.canon, &found.canon))) {
				return false; /* ambiguous */
			}
			found = cur;
			hits++;
		}
	}
	if (hits == 0) {
		return false;
	}
	*m = found;
	return true;
}

/* Tells the caller of a translation the stitcher knows (see dt_stitch_learn_fn). */
static void tell(struct dt_stitch *st, struct dt_task *task, const struct dt_tmap_slot *e)
{
	if (st->on_learn) {
		st->on_learn(st->on_learn_arg, task, e->dir, &e->key, &e->inside);
	}
}

/* Learns outside -> inside for m's task and direction (and the reverse, when traced). */
static void learn(struct dt_stitch *st, const struct dt_tuple *outside, const struct match *m)
{
	struct dt_tmap_slot e[2];
	unsigned int n = 1, i, k;

	memset(e, 0, sizeof(e));
	norm_tuple(outside, &e[0].key);
	if (tuple_eq(&e[0].key, &m->canon)) {
		return; /* no translation */
	}
	e[0].kind = SLOT_NAT;
	e[0].task_id = m->task->id;
	e[0].dir = m->dir;
	e[0].inside = m->canon;
	for (k = 0; k < m->task->n_keys; k++) {
		if (!m->task->keys[k].learned && m->task->keys[k].dir != m->dir) {
			dt_tuple_reverse(&e[0].key, &e[1].key);
			dt_tuple_reverse(&e[0].inside, &e[1].inside);
			e[1].kind = SLOT_NAT;
			e[1].task_id = m->task->id;
			e[1].dir = m->task->keys[k].dir;
			n = 2;
		}
	}
	for (i = 0; i < n; i++) {
		const struct dt_tmap_slot *old = tmap_find(&st->nat, &e[i].key, SLOT_NAT);

		if (old && old->task_id == e[i].task_id && old->dir == e[i].dir &&
		    tuple_eq(&old->inside, &e[i].inside)) {
			tell(st, m->task, &e[i]); /* known already (relearning tells again) */
			continue;
		}
		if (!old && st->nat.n >= DT_STITCH_MAX_NAT) {
			st->nat_full++;
			continue;
		}
		if (tmap_put(&st->nat, &e[i]) != 0) {
			st->nat_full++;
			continue;
		}
		st->learned++;
		tell(st, m->task, &e[i]);
	}
}

/* The key of the datagram a fragment seen as o belongs to (see stitch.h, step 4). */
static void frag_key(const struct dt_obs *o, struct dt_tuple *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = o->tuple.saddr;
	k->daddr = o->tuple.daddr;
	k->proto = o->tuple.proto;
	k->sport = o->ip_id;
}

/* Remembers a first fragment attributed as m, for its datagram's later fragments. */
static void remember_frag(struct dt_stitch *st, const struct dt_obs *o, const struct match *m)
{
	struct dt_tmap_slot e;
	const struct dt_tmap_slot *old;

	memset(&e, 0, sizeof(e));
	frag_key(o, &e.key);
	e.kind = SLOT_FRAG;
	e.task_id = m->task->id;
	e.dir = m->dir;
	e.inside = m->canon;
	e.ident = o->ident;
	old = tmap_find(&st->frags, &e.key, SLOT_FRAG);
	if (old && old->task_id == e.task_id && old->dir == e.dir && old->ident == e.ident &&
	    tuple_eq(&old->inside, &e.inside)) {
		return;
	}
	if ((!old && st->frags.n >= DT_STITCH_MAX_NAT) || tmap_put(&st->frags, &e) != 0) {
		st->nat_full++;
	}
}

/* A later fragment: its datagram's first fragment, as seen at the same place. */
static bool match_later_frag(const struct dt_stitch *st, const struct dt_obs *o, struct match *m)
{
	const struct dt_tmap_slot *s;
	struct dt_tuple k;

	frag_key(o, &k);
	if (!(s = tmap_find(&st->frags, &k, SLOT_FRAG))) {
		return false;
	}
	m->task = dt_tasks_find_active(st->tasks, s->task_id);
	m->dir = s->dir;
	m->canon = s->inside;
	m->frag = true;
	m->ident = s->ident;
	return m->task != NULL;
}

/* Attributes in (see stitch.h), learning from it. False when nothing matches yet. */
static bool attribute(struct dt_stitch *st, const struct dt_stitch_in *in, struct match *m)
{
	const struct dt_obs *s = &in->o;
	bool nat = s->flags & DT_SAMPLE_F_NAT;
	const struct dt_tuple *t = nat ? &in->orig : &s->tuple;
	bool ok;

	m->frag = false;
	if (s->frag & DT_FRAG_OFFSET) {
		return match_later_frag(st, s, m);
	}

	ok = match_hint(st, in->task_id, t, m) || match_tuple(st, t, m);
	if (!ok && s->hook == DT_HOOK_DROP && t->vni == 0) {
		ok = match_any_vni(st, t, m);
	}
	if (ok && nat) {
		struct dt_tuple outside = s->tuple;

		if (outside.vni == 0) {
			outside.vni = m->canon.vni;
		}
		learn(st, &outside, m);
	}
	if (!ok && nat) {
		/* orig belongs to nothing we know: maybe the tuple itself does. */
		ok = match_tuple(st, &s->tuple, m);
	}
	if (ok && (s->frag & DT_FRAG_MF)) {
		remember_frag(st, s, m);
	}
	return ok;
}

/* ------------------------------------------------------------------------------------ */

void dt_stitch_in_fill(struct dt_stitch_in *in, const struct dt_wire_sample *w, uint32_t node,
		       uint32_t ifname, uint32_t drop_name, uint32_t drop_where,
		       uint64_t arrival_ms)
{
	struct dt_obs *o = &in->o;

	memset(in, 0, sizeof(*in));
	o->ts_ns = w->ts_ns;
	o->arrival_ms = arrival_ms;
	o->tuple = w->tuple;
	o->ident = w->ident;
	o->len = w->len;
	o->outer_saddr = w->outer_saddr;
	o->outer_daddr = w->outer_daddr;
	o->drop_reason = w->drop_reason;
	o->node = node;
	o->ifname = ifname;
	o->drop_name = drop_name;
	o->drop_where = drop_where;
	o->ip_id = w->ip_id;
	o->hook = w->hook;
	o->flags = w->flags;
	o->cap_link = w->cap_link;
	o->cap_len = w->cap_len <= DT_CAP_MAX ? w->cap_len : DT_CAP_MAX;
	o->frag = w->frag;
	memcpy(o->cap, w->cap, o->cap_len);
	in->orig = w->orig;
	in->task_id = w->task_id;
}

struct dt_stitch *dt_stitch_new(struct dt_tasks *tasks, uint64_t window_ms)
{
	struct dt_stitch *st = calloc(1, sizeof(*st));

	if (!st) {
		return NULL;
	}
	st->tasks = tasks;
	st->window_ms = window_ms;
	st->keys_gen = UINT64_MAX; /* nothing indexed yet */
	st->next_held_id = 1;
	st->saved_id = 1;
	return st;
}

void dt_stitch_free(struct dt_stitch *st)
{
	if (!st) {
		return;
	}
	tmap_free(&st->keys);
	tmap_free(&st->nat);
	tmap_free(&st->frags);
	free(st->vnis);
	free(st->held);
	free(st->released);
	free(st);
}

void dt_stitch_on_learn(struct dt_stitch *st, dt_stitch_learn_fn fn, void *arg)
{
	st->on_learn = fn;
	st->on_learn_arg = arg;
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
	return st->nat.n;
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
static int deliver(struct dt_stitch *st, const struct dt_stitch_in *in, const struct match *m)
{
	struct dt_obs a = in->o;

	a.dir = m->dir;
	a.canon = m->canon;
	if (m->frag) {
		a.ident = m->ident;
	}
	if (dt_task_add_obs(m->task, &a) != 0) {
		st->nomem++;
		return -ENOMEM;
	}
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
	struct match m;

	st->samples++;
	st->last_sample_ms = now_ms;
	if (sync_keys(st) != 0) {
		st->nomem++;
		return -ENOMEM;
	}
	if (attribute(st, in, &m)) {
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
	if (sync_keys(st) != 0) {
		st->nomem++;
		return; /* held samples stay held: the next close tries again */
	}
	if (released_reserve(st) != 0) {
		return; /* nothing lost: they stay held, and the next close tries again */
	}
	for (pass = 0; pass < MAX_PASSES && progress; pass++) {
		progress = false;
		for (i = 0, m = 0; i < st->n_held; i++) {
			struct match mt;

			if (attribute(st, &st->held[i].in, &mt)) {
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
	return (o->flags & DT_SAMPLE_F_NAT) || ((o->frag & DT_FRAG_MF) && !(o->frag & DT_FRAG_OFFSET));
}

int dt_stitch_relearn(struct dt_stitch *st)
{
	const struct dt_tasks *t = st->tasks;
	uint64_t learned = st->learned, nat_full = st->nat_full;
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
		struct match m = {.task = v[i].task, .dir = o->dir, .canon = o->canon};
		struct dt_tuple outside = o->tuple;

		if (o->dir >= DT_DIR_MAX) {
			continue;
		}
		if ((o->frag & DT_FRAG_MF) && !(o->frag & DT_FRAG_OFFSET)) {
			remember_frag(st, o, &m);
		}
		if (!(o->flags & DT_SAMPLE_F_NAT)) {
			continue;
		}
		if (outside.vni == 0) { /* as attribute() filled it in */
			outside.vni = o->canon.vni;
		}
		learn(st, &outside, &m);
	}
	free(v);
	/* Counted when they were first learned (the counters are restored separately). */
	st->learned = learned;
	st->nat_full = nat_full;
	return 0;
}

void dt_stitch_counters_get(const struct dt_stitch *st, struct dt_stitch_counters *c)
{
	c->samples = st->samples;
	c->attributed = st->attributed;
	c->late = st->late;
	c->unmatched = st->unmatched;
	c->after_end = st->after_end;
	c->learned = st->learned;
	c->nat_full = st->nat_full;
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
	st->learned = c->learned;
	st->nat_full = c->nat_full;
	st->nomem = c->nomem;
	st->windows = c->windows;
}
