// SPDX-License-Identifier: MIT
/*
 * paths_datagram.c - datagrams of fragments: a datagram is delivered only when all of its
 * fragments are, else lost where its first missing fragment was.
 */
#include <errno.h>
#include <stdlib.h>

#include "paths_int.h"

/* The fragment's offset and payload, in bytes (IPv4 options are not counted: rare). */
static uint32_t frag_start(const struct pkt *k)
{
	return (uint32_t)(k->p.frag & DT_FRAG_OFFSET) * 8;
}

static uint32_t frag_end(const struct pkt *k)
{
	return frag_start(k) + (k->p.len > 20 ? k->p.len - 20 : 0);
}

static int cmp_frag(const void *pa, const void *pb)
{
	const struct pkt *a = *(const struct pkt *const *)pa;
	const struct pkt *b = *(const struct pkt *const *)pb;
	int c;

	CMP(a->p.direction, b->p.direction);
	c = memcmp(&a->p.tuple, &b->p.tuple, sizeof(a->p.tuple));
	if (c != 0) {
		return c;
	}
	CMP(a->p.ip_id, b->p.ip_id);
	CMP(a->p.ident, b->p.ident);
	CMP(frag_start(a), frag_start(b));
	return 0;
}

/* The node where one of the fragments f[0..n) was colored again after refragmentation. */
static const char *refragmented_at(struct pkt *const *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < f[i]->p.n_hops; j++) {
			if (f[i]->h[j].o->flags & DT_SAMPLE_F_REFRAG) {
				return f[i]->h[j].at->node;
			}
		}
	}
	return NULL;
}

/*
 * True when fragment k ended where its datagram was refragmented (node): the kernel took
 * it into the reassembly there, and the new fragments went on; it was not lost.
 */
static bool reassembled(const struct pkt *k, const char *node)
{
	const struct hop *end = &k->h[k->n_dest - 1];

	for (uint32_t j = 0; j < k->p.n_hops; j++) {
		if (k->h[j].o->flags & DT_SAMPLE_F_REFRAG) {
			return false; /* one of the new fragments */
		}
	}
	return (k->p.fate == DT_FATE_VANISHED || k->p.fate == DT_FATE_IN_FLIGHT) &&
	       strncmp(end->at->node, node, sizeof(end->at->node)) == 0;
}

/*
 * Judges one datagram from its fragments f[0..n), by offset (fragments that its node's
 * reassembly took, where it was refragmented, are reassembled, not lost, and the new
 * fragments stand for them): delivered only when every
 * fragment was and they cover it (from offset 0 to one without more fragments following);
 * else the fate of its first fragment (by offset) not delivered, lost where that one was;
 * a datagram whose fragments were all delivered but do not cover it (a fragment nobody
 * saw: one that overtook its first fragment at the first hop, which colors it only after)
 * vanished. The first fragment carries the datagram; the others are members.
 */
static void judge_datagram(struct pkt **f, size_t n)
{
	const struct pkt *worst = NULL;
	const char *refrag_at = refragmented_at(f, n);
	bool covered = true, last = false, smaller;
	uint32_t next = 0, old_max = 0, new_max = 0;
	uint8_t fate;
	size_t i;

	for (i = 0; i < n; i++) {
		old_max =
			f[i]->p.len > old_max ? f[i]->p.len : old_max; /* as the first hop saw it */
		new_max = f[i]->refrag_len > new_max ? f[i]->refrag_len : new_max;
	}
	smaller = new_max > 0 && new_max < old_max;

	for (i = 0; i < n; i++) {
		if (refrag_at && reassembled(f[i], refrag_at)) {
			f[i]->p.fate = DT_FATE_REASSEMBLED; /* not a loss, not the datagram */
			continue;
		}
		if (frag_start(f[i]) > next) {
			covered = false;
		}
		if (frag_end(f[i]) > next) {
			next = frag_end(f[i]);
		}
		last = last || !(f[i]->p.frag & DT_FRAG_MF);
		if (!worst && f[i]->p.fate != DT_FATE_DELIVERED) {
			worst = f[i];
		}
	}
	fate = worst ? worst->p.fate : covered && last ? DT_FATE_DELIVERED : DT_FATE_VANISHED;
	for (i = 0; i < n; i++) {
		f[i]->p.datagram_fate = fate;
		f[i]->member = i > 0;
		f[i]->lost = worst;
		f[i]->refrag_at = refrag_at;
		f[i]->refrag_smaller = smaller;
	}
}

/* Groups the fragments among pk[0..n_pk) into datagrams and judges each. */
int dt_paths_judge_datagrams(struct pkt *pk, size_t n_pk)
{
	struct pkt **v;
	size_t i, j, m = 0;

	for (i = 0; i < n_pk; i++) {
		m += pk[i].p.frag != 0;
	}
	if (m == 0) {
		return 0;
	}
	if (!(v = malloc(m * sizeof(*v)))) {
		return -ENOMEM;
	}
	m = 0;
	for (i = 0; i < n_pk; i++) {
		if (pk[i].p.frag) {
			v[m++] = &pk[i];
		}
	}
	qsort(v, m, sizeof(*v), cmp_frag);
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && same_flow(v[j], v[i]) && v[j]->p.ip_id == v[i]->p.ip_id &&
				v[j]->p.ident == v[i]->p.ident;
		     j++) {
		}
		judge_datagram(&v[i], j - i);
	}
	free(v);
	return 0;
}
