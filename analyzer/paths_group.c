// SPDX-License-Identifier: MIT
/*
 * paths_group.c - the observations of a report grouped into packets, and their places
 * named, in time linear in the number of observations.
 *
 * A packet's observations are found by a hash of its identity (direction, canonical tuple,
 * IPv4 id, ident, fragment offset): one pass assigns each observation its packet, a
 * counting sort lays every packet out as one contiguous run, in the order of the packet's
 * first observation, and only each run (a handful of hops) is sorted. No sort of all
 * observations, and no string compared per observation: names are interned (strtab.h),
 * and each distinct place (node, interface, hook) is named once a report, in a place
 * table the hops point into.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "paths_int.h"

/* Runs up to this long are sorted by insertion; longer ones (colliding ids) by qsort(). */
#define SMALL_RUN 16

int dt_paths_cmp_packet_key(const struct dt_obs *a, const struct dt_obs *b)
{
	const struct dt_tuple *ta = &a->canon;
	const struct dt_tuple *tb = &b->canon;

	CMP(a->dir, b->dir);
	CMP(ta->saddr, tb->saddr);
	CMP(ta->daddr, tb->daddr);
	CMP(ta->sport, tb->sport);
	CMP(ta->dport, tb->dport);
	CMP(ta->proto, tb->proto);
	CMP(ta->vni, tb->vni);
	CMP(a->ip_id, b->ip_id);
	CMP(a->ident, b->ident);
	CMP(a->frag & DT_FRAG_OFFSET, b->frag & DT_FRAG_OFFSET);
	return 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

/* A hash of what dt_paths_cmp_packet_key() compares. */
static uint64_t packet_hash(const struct dt_obs *o)
{
	const struct dt_tuple *t = &o->canon;
	uint64_t h;

	h = mix(0, (uint64_t)t->saddr << 32 | t->daddr);
	h = mix(h, (uint64_t)t->sport << 48 | (uint64_t)t->dport << 32 | t->vni);
	h = mix(h, (uint64_t)o->ident << 32 | (uint64_t)o->ip_id << 16 | (uint64_t)t->proto << 8 |
			   o->dir);
	return mix(h, o->frag & DT_FRAG_OFFSET);
}

/* Order of one packet's observations inside its run. */
static int cmp_in_packet(const struct item *a, const struct item *b)
{
	int c;

	c = cmp_name(a->o->node, a->node, b->o->node, b->node);
	if (c != 0) {
		return c;
	}
	CMP(a->o->ts_ns, b->o->ts_ns);
	CMP(hook_rank(a->o->hook), hook_rank(b->o->hook));
	CMP(a->o->hook, b->o->hook);
	return cmp_name(a->o->ifname, a->ifname, b->o->ifname, b->ifname);
}

static int cmp_item_in_packet(const void *pa, const void *pb)
{
	const struct item *a = pa;
	const struct item *b = pb;
	int c;

	c = cmp_in_packet(a, b);
	if (c != 0) {
		return c;
	}
	/* Same place and time: a duplicate. Input order keeps the order deterministic. */
	CMP((uintptr_t)a->o, (uintptr_t)b->o);
	return 0;
}

static int cmp_item_ts(const void *pa, const void *pb)
{
	const struct item *a = pa;
	const struct item *b = pb;

	CMP(a->o->ts_ns, b->o->ts_ns);
	CMP(hook_rank(a->o->hook), hook_rank(b->o->hook));
	CMP((uintptr_t)a->o, (uintptr_t)b->o);
	return 0;
}

/* Sorts one packet's run v[0..n) by cmp_item_in_packet(): a total order, so any sort
 * gives the same result. */
static void sort_run(struct item *v, size_t n)
{
	if (n > SMALL_RUN) {
		qsort(v, n, sizeof(*v), cmp_item_in_packet);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct item x = v[i];
		size_t j = i;

		for (; j > 0 && cmp_item_in_packet(&v[j - 1], &x) > 0; j--) {
			v[j] = v[j - 1];
		}
		v[j] = x;
	}
}

static bool same_place_and_time(const struct item *a, const struct item *b)
{
	return a->o->hook == b->o->hook && a->o->ts_ns == b->o->ts_ns &&
	       a->o->outer_daddr == b->o->outer_daddr && a->o->outer_saddr == b->o->outer_saddr &&
	       cmp_name(a->o->node, a->node, b->o->node, b->node) == 0 &&
	       cmp_name(a->o->ifname, a->ifname, b->o->ifname, b->ifname) == 0;
}

size_t dt_paths_trim_packet(struct item *v, size_t n)
{
	size_t i, m = 0;

	sort_run(v, n);
	for (i = 0; i < n; i++) {
		if (m > 0 && same_place_and_time(&v[m - 1], &v[i])) {
			continue;
		}
		v[m++] = v[i];
	}
	if (m > DT_REPORT_MAX_HOPS) {
		qsort(v, m, sizeof(*v), cmp_item_ts);
		m = DT_REPORT_MAX_HOPS;
		qsort(v, m, sizeof(*v), cmp_item_in_packet);
	}
	return m;
}

/* A hop's place (node, interface, hook) as one integer: names are interned, so equal
 * places have equal keys (DT_STRTAB_NONE reads as "", which index 0 is). */
uint64_t dt_paths_place_key(const struct dt_obs *o)
{
	uint64_t node = o->node == DT_STRTAB_NONE ? 0 : o->node;
	uint64_t ifname = o->ifname == DT_STRTAB_NONE ? 0 : o->ifname;

	return node << 40 | ifname << 8 | o->hook;
}

/* An open-addressed hash table of indices (0: empty, else index + 1), a power of two. */
struct slots {
	uint32_t *s;
	size_t mask;
};

static int slots_init(struct slots *t, size_t n)
{
	size_t size = 16;

	while (size < 2 * n) {
		size *= 2;
	}
	t->s = calloc(size, sizeof(*t->s));
	t->mask = size - 1;
	return t->s ? 0 : -ENOMEM;
}

/*
 * Every distinct place of obs[0..n) in pl->refs (named), and of[i], obs[i]'s index there.
 * The table grows with the places, which are few (nodes times interfaces times hooks).
 */
static int name_places(const struct dt_strtab *strs, const struct dt_obs *obs, size_t n,
		       struct dt_paths_places *pl, uint32_t *of)
{
	uint64_t *keys = NULL;
	struct slots t = {0};
	size_t i, cap = 0;
	int err = -ENOMEM;

	pl->refs = NULL;
	pl->n = 0;
	for (i = 0; i < n; i++) {
		uint64_t key = dt_paths_place_key(&obs[i]), h = mix(0, key);
		size_t s;

		if (pl->n + 1 > (t.mask + 1) / 2 || !t.s) {
			free(t.s);
			if (slots_init(&t, pl->n + 1) != 0) {
				goto out;
			}
			for (uint32_t p = 0; p < pl->n; p++) {
				for (s = mix(0, keys[p]) & t.mask; t.s[s]; s = (s + 1) & t.mask) {
				}
				t.s[s] = p + 1;
			}
		}
		for (s = h & t.mask; t.s[s] && keys[t.s[s] - 1] != key; s = (s + 1) & t.mask) {
		}
		if (!t.s[s]) {
			if (pl->n == cap) {
				uint64_t *k;

				cap = cap ? 2 * cap : 16;
				if (!(k = realloc(keys, cap * sizeof(*k)))) {
					goto out;
				}
				keys = k;
			}
			keys[pl->n] = key;
			t.s[s] = (uint32_t)++pl->n;
		}
		of[i] = t.s[s] - 1;
	}
	pl->refs = calloc(pl->n ? pl->n : 1, sizeof(*pl->refs));
	if (!pl->refs) {
		goto out;
	}
	for (i = 0; i < pl->n; i++) {
		struct dt_hop_ref *r = &pl->refs[i];
		uint32_t node = (uint32_t)(keys[i] >> 40), ifname = (uint32_t)(keys[i] >> 8);

		copy_str(r->node, dt_strtab_get(strs, node), sizeof(r->node));
		copy_str(r->ifname, dt_strtab_get(strs, ifname & 0xffffffff), sizeof(r->ifname));
		r->hook = (uint8_t)keys[i];
	}
	err = 0;
out:
	free(t.s);
	free(keys);
	return err;
}

/*
 * The packets' table: open addressing, each slot a packet's number + 1 (0: empty) and the
 * upper half of its hash, so that a probe compares an observation with another packet's
 * first only when their hashes agree. It grows with the packets, not the observations
 * (a few a packet): a smaller table, whose slots miss the cache less.
 */
struct pkt_slot {
	uint32_t tag;
	uint32_t pkt; /* + 1 */
};

struct pkt_table {
	struct pkt_slot *s;
	size_t mask;
	uint64_t *hash;	 /* of each packet, to move it when the table grows */
	uint32_t *first; /* each packet's first observation */
	size_t n, cap;
};

/* Puts packet p (hash h) into an empty slot of t. */
static void pkt_table_put(struct pkt_table *t, uint64_t h, uint32_t p)
{
	size_t s = h & t->mask;

	while (t->s[s].pkt) {
		s = (s + 1) & t->mask;
	}
	t->s[s] = (struct pkt_slot){(uint32_t)(h >> 32), p + 1};
}

/* Makes room for one more packet: the slots at most half full. 0 or -ENOMEM. */
static int pkt_table_grow(struct pkt_table *t)
{
	size_t size = t->mask + 1;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		uint64_t *h = realloc(t->hash, cap * sizeof(*h));
		uint32_t *f = h ? realloc(t->first, cap * sizeof(*f)) : NULL;

		if (h) {
			t->hash = h;
		}
		if (!f) {
			return -ENOMEM;
		}
		t->first = f;
		t->cap = cap;
	}
	if (t->s && 2 * (t->n + 1) <= size) {
		return 0;
	}
	size = t->s ? 2 * size : 2048;
	free(t->s);
	if (!(t->s = calloc(size, sizeof(*t->s)))) {
		return -ENOMEM;
	}
	t->mask = size - 1;
	for (size_t p = 0; p < t->n; p++) {
		pkt_table_put(t, t->hash[p], (uint32_t)p);
	}
	return 0;
}

/*
 * The packet of each observation (pkt_of[i]), by hash of its identity; the packets are
 * numbered in the order of their first observation, *n_pk of them. 0 or -ENOMEM.
 */
static int find_packets(const struct dt_obs *obs, size_t n, uint32_t *pkt_of, size_t *n_pk)
{
	struct pkt_table t = {0};
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		uint64_t h = packet_hash(&obs[i]);
		uint32_t tag = (uint32_t)(h >> 32);
		size_t s = h & t.mask;

		for (; t.s && t.s[s].pkt; s = (s + 1) & t.mask) {
			const struct pkt_slot *e = &t.s[s];

			if (e->tag == tag &&
			    dt_paths_cmp_packet_key(&obs[t.first[e->pkt - 1]], &obs[i]) == 0) {
				break;
			}
		}
		if (t.s && t.s[s].pkt) {
			pkt_of[i] = t.s[s].pkt - 1;
		} else if ((err = pkt_table_grow(&t)) == 0) {
			t.hash[t.n] = h;
			t.first[t.n] = (uint32_t)i;
			pkt_table_put(&t, h, (uint32_t)t.n);
			pkt_of[i] = (uint32_t)t.n++;
		}
	}
	*n_pk = t.n;
	free(t.s);
	free(t.hash);
	free(t.first);
	return err;
}

int dt_paths_group(const struct dt_strtab *strs, const struct dt_obs *obs, size_t n, struct item *v,
		   size_t **starts, size_t *n_pk, struct dt_paths_places *pl)
{
	uint32_t *pkt_of = malloc((n ? n : 1) * sizeof(*pkt_of));
	uint32_t *place_of = malloc((n ? n : 1) * sizeof(*place_of));
	size_t *at = NULL;
	size_t i;
	int err = -ENOMEM;

	*starts = NULL;
	pl->refs = NULL;
	if (!pkt_of || !place_of || find_packets(obs, n, pkt_of, n_pk) != 0 ||
	    name_places(strs, obs, n, pl, place_of) != 0) {
		goto out;
	}
	/* A counting sort by packet: runs in packet order, each in input order. */
	at = calloc(*n_pk + 1, sizeof(*at));
	if (!at) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		at[pkt_of[i] + 1]++;
	}
	for (i = 0; i < *n_pk; i++) {
		at[i + 1] += at[i];
	}
	for (i = 0; i < n; i++) {
		struct item *it = &v[at[pkt_of[i]]++];

		it->o = &obs[i];
		it->node = dt_strtab_get(strs, obs[i].node);
		it->ifname = dt_strtab_get(strs, obs[i].ifname);
		it->at = &pl->refs[place_of[i]];
	}
	/* at[p] is now where run p + 1 starts: shift it back. */
	memmove(at + 1, at, *n_pk * sizeof(*at));
	at[0] = 0;
	*starts = at;
	at = NULL;
	err = 0;
out:
	if (err) {
		free(pl->refs);
		pl->refs = NULL;
	}
	free(at);
	free(pkt_of);
	free(place_of);
	return err;
}

/* --- an index of small keys, for the tables' aggregation -------------------------------- */

static uint64_t key_hash(const uint64_t *k)
{
	return mix(mix(mix(0, k[0]), k[1]), k[2]);
}

static int index_grow(struct dt_paths_index *ix)
{
	struct slots t;

	if (slots_init(&t, ix->n + 1) != 0) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < ix->n; i++) {
		size_t s = key_hash(ix->keys[i]) & t.mask;

		for (; t.s[s]; s = (s + 1) & t.mask) {
		}
		t.s[s] = (uint32_t)i + 1;
	}
	free(ix->slots);
	ix->slots = t.s;
	ix->mask = t.mask;
	return 0;
}

long dt_paths_index_find(struct dt_paths_index *ix, const uint64_t key[3])
{
	size_t s;

	if (!ix->slots || ix->n + 1 > (ix->mask + 1) / 2) {
		if (index_grow(ix) != 0) {
			return -ENOMEM;
		}
	}
	for (s = key_hash(key) & ix->mask; ix->slots[s]; s = (s + 1) & ix->mask) {
		if (memcmp(ix->keys[ix->slots[s] - 1], key, sizeof(ix->keys[0])) == 0) {
			return (long)ix->slots[s] - 1;
		}
	}
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? 2 * ix->cap : 16;
		uint64_t(*k)[3] = realloc(ix->keys, cap * sizeof(*k));

		if (!k) {
			return -ENOMEM;
		}
		ix->keys = k;
		ix->cap = cap;
	}
	memcpy(ix->keys[ix->n], key, sizeof(ix->keys[0]));
	ix->slots[s] = (uint32_t)++ix->n;
	return (long)ix->n - 1;
}

void dt_paths_index_free(struct dt_paths_index *ix)
{
	free(ix->slots);
	free(ix->keys);
	memset(ix, 0, sizeof(*ix));
}
