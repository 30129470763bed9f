/* SPDX-License-Identifier: MIT */
/*
 * attribute.c - the attribution index (see attribute.h): hash tables of tuples (open
 * addressing), the task keys rebuilt per generation, translations, first fragments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attribute.h"
#include "dt_tuple.h"
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
	in->orig = w->orig;
	in->task_id = w->task_id;
	memcpy(in->cap, w->cap, o->cap_len);
}

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

int dt_attrib_sync(struct dt_attrib *st)
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
static bool match_tuple(const struct dt_attrib *st, const struct dt_tuple *t, struct dt_match *m)
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
static bool match_hint(const struct dt_attrib *st, uint32_t task_id, const struct dt_tuple *t,
		       struct dt_match *m)
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
static bool match_any_vni(const struct dt_attrib *st, const struct dt_tuple *t, struct dt_match *m)
{
	struct dt_match found = {0}, cur = {0};
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
static void tell(struct dt_attrib *st, struct dt_task *task, const struct dt_tmap_slot *e)
{
	if (st->on_learn) {
		st->on_learn(st->on_learn_arg, task, e->dir, &e->key, &e->inside);
	}
}

void dt_attrib_learn(struct dt_attrib *st, const struct dt_tuple *outside, const struct dt_match *m)
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

void dt_attrib_remember_frag(struct dt_attrib *st, const struct dt_obs *o, const struct dt_match *m)
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
static bool match_later_frag(const struct dt_attrib *st, const struct dt_obs *o, struct dt_match *m)
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

bool dt_attrib_match(struct dt_attrib *st, const struct dt_stitch_in *in, struct dt_match *m)
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
		dt_attrib_learn(st, &outside, m);
	}
	if (!ok && nat) {
		/* orig belongs to nothing we know: maybe the tuple itself does. */
		ok = match_tuple(st, &s->tuple, m);
	}
	if (ok && (s->frag & DT_FRAG_MF)) {
		dt_attrib_remember_frag(st, s, m);
	}
	return ok;
}

/* ------------------------------------------------------------------------------------ */

void dt_attrib_init(struct dt_attrib *at, struct dt_tasks *tasks)
{
	memset(at, 0, sizeof(*at));
	at->tasks = tasks;
	at->keys_gen = UINT64_MAX; /* nothing indexed yet */
}

void dt_attrib_free(struct dt_attrib *at)
{
	tmap_free(&at->keys);
	tmap_free(&at->nat);
	tmap_free(&at->frags);
	free(at->vnis);
	memset(at, 0, sizeof(*at));
}

size_t dt_attrib_n_nat(const struct dt_attrib *at)
{
	return at->nat.n;
}
