// SPDX-License-Identifier: MIT
/*
 * paths_segment.c - packets the kernel segmented after their first hop (GSO): each
 * segment tied to its packet, which is delivered only when its segments cover it.
 */
#include <errno.h>
#include <stdlib.h>

#include "paths_int.h"

/* The length of the IPv4 and TCP or UDP headers in o's packet prefix, 0 when it does not
 * hold them (capture off, a VLAN tag stack, another protocol). */
uint16_t dt_paths_l4_headers(const struct dt_obs *o, const uint8_t *c)
{
	uint32_t off = 0, ihl;

	if (o->cap_link == DT_CAP_ETH) {
		off = 14;
		if (o->cap_len >= 14 && c[12] == 0x81 && c[13] == 0x00) {
			off = 18;
		}
	} else if (o->cap_link != DT_CAP_IPV4) {
		return 0;
	}
	if (o->cap_len < off + 20 || (c[off] >> 4) != 4) {
		return 0;
	}
	ihl = (uint32_t)(c[off] & 0xf) * 4;
	if (c[off + 9] == 17) {
		return (uint16_t)(ihl + 8);
	}
	if (c[off + 9] != 6 || o->cap_len < off + ihl + 13) {
		return 0;
	}
	return (uint16_t)(ihl + (uint32_t)(c[off + ihl + 12] >> 4) * 4);
}

/*
 * A packet the first hop saw whole can be cut into segments after it: software GSO on a
 * node whose uplink does not segment (TSO or UDP tunnel segmentation off), or a receiver's
 * GRO that merges segments at other boundaries. Every segment keeps the color (the IPv4
 * header is copied), but those after the first carry the next IPv4 ids and, for TCP,
 * their own sequence numbers; for UDP each segment is a datagram of its own. No first hop
 * saw them, so each would count as a packet of its own. Here each is tied to its packet:
 *  - TCP: the segment at sequence s belongs to the packet at the greatest sequence p <= s
 *    whose bytes hold s and whose IPv4 id is at most s - p before the segment's (each
 *    segment advances the id by one and the sequence by one byte at least); a
 *    retransmission, colored later with a later id, is not taken for the original.
 *  - UDP: the segment with id i belongs to the packet with the nearest id p <= i whose
 *    payload holds i - p segments of the segment's size.
 * Such a packet is delivered when its delivered pieces cover it: the packet itself (for
 * TCP its first segment keeps its id and sequence), its segments, and for TCP a piece of
 * an earlier packet that a receiver's GRO merged across the boundary. A TCP piece covers
 * [seq, seq + len - headers): the packet's own headers as its first hop's prefix shows them,
 * 40 bytes for a segment (their least), so a segment may seem longer than it is by its TCP
 * options, never shorter, and a missing segment still leaves a gap. Without the packet's
 * headers (capture off), a segment is tied only when it starts 40 bytes (the most options)
 * before its packet's end as it seems, so that the next packet is never taken for one. A UDP
 * segment covers its payload at (i - p) times the largest segment payload seen. Else the
 * packet takes the fate of its first piece not delivered that holds bytes not covered,
 * lost where that one was; with none, it vanished after the last hop that saw it whole.
 * Sequence numbers are compared as they are: a flow whose sequence wraps around 2^32
 * in the window ties no segment across the wrap.
 */

#define SEG_MAX_BACK 64		/* candidate packets looked at before a segment */
#define SEG_MAX_SPAN (1u << 20) /* bytes of one packet at most (BIG TCP included) */
#define SEG_GRO_SPAN (1u << 16) /* bytes a receiver's GRO merges at most */
#define TCP_MIN_HDRS 40u
#define TCP_MAX_OPTS 40u
#define UDP_HDRS 28u

struct piece {
	struct pkt *k;
	struct pkt *head; /* the packet it was cut from: itself for a packet a first hop saw */
	uint32_t start;	  /* TCP: sequence number; UDP: offset in its packet's payload */
	uint32_t size;	  /* payload bytes as delivered, as seen when not delivered */
};

static bool seg_tcp(const struct pkt *k)
{
	return k->p.tuple.proto == 6;
}

static uint32_t seg_hdrs(const struct pkt *k)
{
	return k->hdrs ? k->hdrs : seg_tcp(k) ? TCP_MIN_HDRS : UDP_HDRS;
}

static uint32_t seg_payload(const struct pkt *k, uint32_t len)
{
	return len > seg_hdrs(k) ? len - seg_hdrs(k) : 0;
}

static int cmp_piece(const void *pa, const void *pb)
{
	const struct piece *a = pa;
	const struct piece *b = pb;
	int c;

	CMP(a->k->p.direction, b->k->p.direction);
	c = memcmp(&a->k->p.tuple, &b->k->p.tuple, sizeof(a->k->p.tuple));
	if (c != 0) {
		return c;
	}
	if (seg_tcp(a->k)) {
		CMP(a->k->p.ident, b->k->p.ident);
	}
	CMP(a->k->p.ip_id, b->k->p.ip_id);
	CMP(!a->k->head, !b->k->head); /* the packet before its segments */
	CMP(a->k->key, b->k->key);
	return 0;
}

/* True when TCP segment x can have been cut from packet h (see above). */
static bool tcp_cut_from(const struct pkt *x, const struct pkt *h)
{
	uint32_t ids = (uint16_t)(x->p.ip_id - h->p.ip_id);
	uint32_t off = x->p.ident - h->p.ident;
	/* Without h's header length its payload may be up to TCP_MAX_OPTS shorter than it
	 * seems: the next packet, not a segment, could start there. */
	uint32_t bytes = seg_payload(h, h->p.len);

	bytes = h->hdrs ? bytes : bytes > TCP_MAX_OPTS ? bytes - TCP_MAX_OPTS : 0;
	return x->p.ident >= h->p.ident && off < bytes && ids > 0 && ids <= off;
}

static void tie(struct piece *x, struct pkt *h)
{
	x->head = h;
	x->k->member = true;
}

/* TCP: ties every segment among v[a..b) (one flow, in cmp_piece() order) that no first hop
 * saw to the packet it was cut from. Returns how many it tied. */
static size_t tie_tcp(struct piece *v, size_t a, size_t b)
{
	size_t i, j, n = 0;

	for (i = a; i < b; i++) {
		int seen = 0;

		for (j = i; !v[i].head && j-- > a && seen < SEG_MAX_BACK;) {
			if (!v[j].k->head) {
				continue;
			}
			seen++;
			if (v[i].k->p.ident - v[j].k->p.ident >= SEG_MAX_SPAN) {
				break;
			}
			if (tcp_cut_from(v[i].k, v[j].k)) {
				tie(&v[i], v[j].k);
				n++;
			}
		}
	}
	return n;
}

/* UDP: true when x is the first segment of h: the same id and first payload bytes, so
 * idents that differ by the UDP lengths alone (see struct dt_sample). */
static bool udp_first_of(const struct pkt *x, const struct pkt *h)
{
	return x->p.ip_id == h->p.ip_id && x->p.len < h->p.len &&
	       (x->p.ident ^ h->p.ident) == ((x->p.len - 20) ^ (h->p.len - 20)) << 16;
}

static int cmp_piece_seen(const void *pa, const void *pb)
{
	const struct piece *a = pa;
	const struct piece *b = pb;

	CMP(a->k->h[0].o->ts_ns, b->k->h[0].o->ts_ns);
	CMP(a->k->key, b->k->key);
	return 0;
}

static int cmp_piece_place(const void *pa, const void *pb)
{
	const struct piece *a = pa;
	const struct piece *b = pb;

	CMP(!a->head, !b->head);
	if (a->head && b->head) {
		CMP(a->head->key, b->head->key);
	}
	CMP(a->head != a->k, b->head != b->k); /* the packet before its segments */
	CMP(a->start, b->start);
	CMP(a->k->key, b->k->key);
	return 0;
}

/*
 * UDP: the ids of a packet's segments are the next ids of the socket, which its next
 * packets take too, so an id alone does not tell whose segment it is. The first segment
 * does (udp_first_of()); the others follow it, segmented at once, in the order in which
 * they were first seen: each is tied to the packet whose first segment came last before
 * it, when its id fits that packet's count of segments. Sorts v[a..b) by the time each
 * piece was first seen and places the tied ones. Returns how many it tied.
 */
static int cmp_head_id(const void *pa, const void *pb)
{
	const struct pkt *a = *(const struct pkt *const *)pa;
	const struct pkt *b = *(const struct pkt *const *)pb;

	CMP(a->p.ip_id, b->p.ip_id);
	CMP(a->key, b->key);
	return 0;
}

/* The packet among heads[0..n) (by id) whose first segment x is, or NULL. */
static struct pkt *udp_first_segment_of(struct pkt **heads, size_t n, const struct pkt *x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (heads[mid]->p.ip_id < x->p.ip_id) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	for (; lo < n && heads[lo]->p.ip_id == x->p.ip_id; lo++) {
		if (udp_first_of(x, heads[lo])) {
			return heads[lo];
		}
	}
	return NULL;
}

static size_t tie_udp(struct piece *v, size_t a, size_t b, struct pkt **heads)
{
	struct pkt *cur = NULL, *first;
	uint32_t seg = 0, count = 0, n = 0;
	size_t i, nh = 0;

	for (i = a; i < b; i++) {
		if (v[i].k->head) {
			heads[nh++] = v[i].k;
		}
	}
	qsort(heads, nh, sizeof(*heads), cmp_head_id);
	qsort(&v[a], b - a, sizeof(*v), cmp_piece_seen);
	for (i = a; i < b; i++) {
		struct pkt *x = v[i].k;
		uint32_t k;

		if (x->head) {
			continue;
		}
		if ((first = udp_first_segment_of(heads, nh, x))) {
			cur = first;
			seg = seg_payload(x, x->p.len);
			count = seg ? (seg_payload(cur, cur->p.len) + seg - 1) / seg : 0;
		}
		if (!cur) {
			continue;
		}
		k = (uint16_t)(x->p.ip_id - cur->p.ip_id);
		if (k < count && seg_payload(x, x->p.len) <= seg) {
			tie(&v[i], cur);
			v[i].start = k * seg;
			n++;
		}
	}
	return n;
}

/* The end of packet v[h].k's pieces in v[..b): TCP, the first piece past its bytes; UDP,
 * the first piece of another packet (cmp_piece_place() order). */
static size_t pieces_end(const struct piece *v, size_t b, size_t h)
{
	const struct pkt *head = v[h].k;
	size_t i;

	for (i = h + 1; i < b; i++) {
		if (seg_tcp(head)
			    ? v[i].k->p.ident - head->p.ident >= seg_payload(head, head->p.len)
			    : v[i].head != head) {
			break;
		}
	}
	return i;
}

/* True when piece q counts towards packet h's cover: one of h's own, or (TCP) a delivered
 * piece of a packet colored no later than h (not a later retransmission of h's bytes). */
static bool covers_for(const struct piece *q, const struct pkt *h)
{
	if (q->head == h) {
		return true;
	}
	return seg_tcp(h) && q->head && q->k->exit_len &&
	       q->head->h[0].o->ts_ns <= h->h[0].o->ts_ns;
}

/* The last hop of k's destination branch that saw it whole: its last uplink-out. */
static int last_whole_hop(const struct pkt *k)
{
	for (uint32_t j = k->n_dest; j-- > 0;) {
		if (k->h[j].o->hook == DT_HOOK_UPLINK_OUT) {
			return (int)j;
		}
	}
	return -1;
}

/* Judges packet v[h].k of the flow v[a..b) from its pieces (see above). */
static void judge_segmented(struct piece *v, size_t a, size_t b, size_t h)
{
	struct pkt *head = v[h].k;
	bool tcp = seg_tcp(head);
	uint32_t base = tcp ? head->p.ident : 0;
	uint32_t want = seg_payload(head, head->p.len), next = 0;
	struct pkt *worst = NULL;
	size_t i, lo = h, end = pieces_end(v, b, h);
	uint8_t fate;

	/* A piece that a receiver's GRO merged before h's bytes may reach into them (TCP). */
	while (tcp && lo > a && head->p.ident - v[lo - 1].k->p.ident < SEG_GRO_SPAN) {
		lo--;
	}
	for (i = lo; i < b; i++) { /* pieces in order of their start: TCP only */
		const struct piece *q = &v[i];
		uint32_t s, e;

		if (tcp && q->start - base < SEG_MAX_SPAN && q->start - base >= want) {
			break;
		}
		if (!tcp || !covers_for(q, head) || !q->k->exit_len) {
			continue;
		}
		s = q->start - base;
		e = s + q->size;
		if (s > next && s < SEG_MAX_SPAN) {
			break; /* a gap */
		}
		if (s >= SEG_MAX_SPAN) { /* starts before h's bytes */
			s = 0;
			e = q->start + q->size - base;
			if (e >= SEG_MAX_SPAN) {
				continue; /* ends before them too */
			}
		}
		next = e > next ? e : next;
	}
	if (!tcp) { /* UDP: the pieces tied to h, in id order, are in place order */
		for (i = h; i < end; i++) {
			const struct piece *q = &v[i];

			if (q->head != head || !q->k->exit_len || (q == &v[h] && !head->exit_len)) {
				continue;
			}
			if (q->start > next) {
				break;
			}
			next = q->start + q->size > next ? q->start + q->size : next;
		}
	}
	for (i = h; i < end && !worst && next < want; i++) {
		const struct piece *q = &v[i];

		if (q->head != head || q->k->p.fate == DT_FATE_DELIVERED || (q == &v[h] && !tcp) ||
		    q->start - base + q->size <= next) {
			continue;
		}
		worst = q->k;
	}
	if (next >= want) {
		fate = DT_FATE_DELIVERED;
	} else if (worst) {
		fate = worst->p.fate;
	} else {
		fate = head->p.fate == DT_FATE_IN_FLIGHT ? DT_FATE_IN_FLIGHT : DT_FATE_VANISHED;
		head->lost_hop = last_whole_hop(head);
	}
	for (i = h; i < end; i++) {
		if (v[i].head == head) {
			v[i].k->p.datagram_fate = fate;
			v[i].k->lost = worst;
		}
	}
	/* Its own path ends where it was cut (UDP: no segment keeps its identity), or its first
	 * segment went on inside another packet's (TCP, merged by a receiver): not a loss. */
	if ((head->p.fate == DT_FATE_VANISHED || head->p.fate == DT_FATE_IN_FLIGHT) &&
	    (tcp ? fate == DT_FATE_DELIVERED : end > h + 1)) {
		head->p.fate = DT_FATE_SEGMENTED;
	}
}

int dt_paths_judge_segments(struct pkt *pk, size_t n_pk)
{
	struct piece *v;
	struct pkt **heads;
	size_t i, j, x, m = 0;
	bool any = false;

	for (i = 0; i < n_pk; i++) {
		const struct pkt *k = &pk[i];

		if (k->p.frag || k->member || (k->p.tuple.proto != 6 && k->p.tuple.proto != 17)) {
			continue;
		}
		m++;
		any = any || !k->head || (seg_tcp(k) && k->exit_len > k->p.len);
	}
	if (!any) {
		return 0; /* nothing was cut or merged after its first hop */
	}
	v = calloc(m, sizeof(*v));
	heads = calloc(m, sizeof(*heads));
	if (!v || !heads) {
		free(v);
		free(heads);
		return -ENOMEM;
	}
	m = 0;
	for (i = 0; i < n_pk; i++) {
		struct pkt *k = &pk[i];

		if (k->p.frag || k->member || (k->p.tuple.proto != 6 && k->p.tuple.proto != 17)) {
			continue;
		}
		v[m].k = k;
		v[m].head = k->head ? k : NULL;
		v[m].start = seg_tcp(k) ? k->p.ident : 0;
		v[m++].size = seg_payload(k, k->exit_len ? k->exit_len : k->p.len);
	}
	qsort(v, m, sizeof(*v), cmp_piece);
	for (i = 0; i < m; i = j) {
		bool merged = false, tcp = seg_tcp(v[i].k);
		size_t tied;

		for (j = i + 1; j < m && same_flow(v[i].k, v[j].k); j++) {
		}
		for (x = i; x < j; x++) {
			merged = merged || (tcp && v[x].k->exit_len > v[x].k->p.len);
		}
		tied = tcp ? tie_tcp(v, i, j) : tie_udp(v, i, j, heads);
		if (tied == 0 && !merged) {
			continue;
		}
		if (!tcp) {
			qsort(&v[i], j - i, sizeof(*v), cmp_piece_place);
		}
		for (x = i; x < j; x++) {
			if (v[x].head == v[x].k) {
				judge_segmented(v, i, j, x);
			}
		}
	}
	free(heads);
	free(v);
	return 0;
}
