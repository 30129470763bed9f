// SPDX-License-Identifier: MIT
/*
 * paths.c - from observations to per-packet paths, fates, the per-hop loss table, the
 * verdict and per-hop latency statistics.
 *
 * The work is a handful of sorts, so building a report costs O(n log n) in the number of
 * observations:
 *
 *  1. Resolve every observation's node and interface name once (struct item) and sort the
 *     items by (packet identity, node, timestamp, hook rank, interface). Each packet is
 *     then a contiguous run, each of its nodes a contiguous sub-run already in timestamp
 *     order, and duplicate observations are adjacent.
 *  2. Per packet, cut each node's hops into visits, order the visits (see order_visits())
 *     and copy the hops out in that order; judge the packet's fate. This step is quadratic
 *     in the hop count of one packet, which is bounded by DT_REPORT_MAX_HOPS (see below),
 *     so linear in n overall.
 *  3. Sort the packets by the timestamp of their first hop.
 *  4. Collect every pair of consecutive hops, sort the pairs by (direction, from, to) and
 *     summarise each run; sort the summaries by direction, then along the path by the mean
 *     position of the pair.
 *  5. Collect every hop of every packet with what happened right after it, sort by
 *     (direction, hop) and summarise each run into a row of the loss table; sort the rows
 *     like the summaries.
 *  6. Collect every lost packet with where it was lost, sort by (direction, kind, place)
 *     and pick the place that lost the most: the verdict.
 *
 * Decisions worth knowing:
 *  - Packet identity is (direction, canonical tuple, IPv4 id, ident): the canonical tuple
 *    is the one inside any NAT (stitch.h), so the hops before and after a gateway are one
 *    packet; each hop keeps the tuple it was seen with, which shows the translation.
 *  - The unit that hand-offs chain is a visit: the hops of one node in timestamp order,
 *    cut before an entry hook (port-in, gw-in, uplink-in) that follows an exit hook
 *    (uplink-out, port-out, gw-out) or a drop. A packet normally visits a node once; one
 *    that leaves through the uplink and comes back to the same node (hairpin through a
 *    gateway) visits it twice, and the hand-offs place the other nodes in between. A drop
 *    of the encapsulated packet (DT_SAMPLE_F_ENCAP) carries the outer addresses and can be
 *    reached by a hand-off like an uplink-in.
 *  - Duplicate observations (same node, interface, hook and timestamp) count once.
 *  - Inside a node, equal timestamps are ordered by hook rank: port-in, gw-in,
 *    uplink-out, uplink-in, port-out, gw-out, drop.
 *  - A packet with more than DT_REPORT_MAX_HOPS distinct hops (in practice: several
 *    packets whose ids collide) keeps its DT_REPORT_MAX_HOPS earliest hops, so that every
 *    report can be encoded. At most DT_REPORT_MAX_PACKETS packets (the earliest),
 *    DT_REPORT_MAX_STATS hop pairs and DT_REPORT_MAX_ROWS rows (the first in order) are
 *    listed; colored, delivered, the rows and the verdict always count every packet.
 *  - A packet's drop is its fatal one: the last drop hop of its path. The loss table
 *    counts it on the drop's own row and, when the hop before it is on the same node, on
 *    that hop's row too ("dropped right after it"). Drop reasons are told apart by name
 *    (kernels may number them differently); a reason without a name by its value.
 *  - Latency of a hop pair is to.ts - from.ts, computed signed. It can only be negative
 *    between two nodes whose clocks disagree (inside a node hops are in timestamp order).
 *    Such a negative latency enters the statistics as 0: min_ns/max_ns are unsigned on the
 *    wire, and clamping every value (rather than only min/max) keeps count, min, max, mean
 *    and stddev describing the same numbers. The per-packet hops keep their raw
 *    timestamps, so the skew stays visible there.
 *  - stddev_ns is the population standard deviation (divide by count) of the latencies
 *    seen: it describes the traced packets, it does not estimate a wider population.
 *    One value gives 0. Mean and variance use Welford's online algorithm.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

/* Hops of one packet, and its visits: at most one per hop. */
#define MAX_HOPS DT_REPORT_MAX_HOPS
#define MAX_VISITS DT_REPORT_MAX_HOPS

/* A drop reason as told apart: by name, or by value when it has none. */
#define REASON_NONE UINT64_MAX
#define REASON_NAMED (1ull << 40)

/* One observation with its names resolved. */
struct item {
	const struct dt_obs *o;
	const char *node;
	const char *ifname;
};

/* A packet being built. */
struct pkt {
	struct dt_packet_path p;
	size_t key;	 /* rank in packet key order: a deterministic tie-break */
	uint32_t n_dest; /* p.hops[0 .. n_dest) is the destination branch */
	bool member;	 /* a fragment counted through its datagram's first (aggregate_datagrams()) */
	const char *refrag_at; /* its datagram was refragmented on this node (NULL: not) */
	uint32_t refrag_len;   /* the largest new fragment it was seen as (0: none) */
	bool refrag_smaller;   /* its datagram's new fragments are smaller than the old */
	const struct pkt *lost; /* for a datagram: the fragment whose loss decides its place */
	int drop_hop;	 /* index of the fatal drop hop in p.hops, or -1 */
	uint64_t reason; /* the fatal drop's reason key (see REASON_*) */
};

/* One hop pair of one packet (a hop and its parent), before aggregation. */
struct pair {
	const struct dt_hop *from;
	const struct dt_hop *to;
	uint64_t lat_ns; /* clamped at 0, see the top of the file */
	uint32_t pos;	 /* depth of the from hop in its packet's tree */
	uint8_t dir;
	uint8_t branch; /* the to hop's */
};

/* A summary, with the key it is ordered by. */
struct stat_pos {
	struct dt_hop_stat st;
	double pos;
	uint8_t dir;
};

/* One end of a copy branch, for the copies table. */
struct copy_rec {
	const struct dt_hop *at;
	uint8_t dir;
};

/* One hop of one packet, for the loss table. */
struct hop_rec {
	const struct dt_hop_ref *at;
	uint64_t reason; /* of the drop counted here, REASON_NONE */
	uint32_t pos;
	uint8_t dir;
	bool dropped;  /* this hop is the fatal drop, or the hop right before it on its node */
	bool vanished; /* the last hop of a vanished packet */
};

struct row_pos {
	struct dt_hop_row row;
	double pos;
};

/* One lost packet, for the verdict. */
struct loss_rec {
	const struct dt_hop_ref *at;	/* the drop hop, or the last hop seen */
	const struct dt_hop_ref *after; /* the hop before the drop, or NULL */
	uint64_t reason;
	uint32_t pos;
	uint8_t dir;
	uint8_t kind; /* DT_FATE_DROPPED or DT_FATE_VANISHED */
};

#define CMP(a, b)                                                                                  \
	do {                                                                                       \
		if ((a) != (b)) {                                                                  \
			return (a) < (b) ? -1 : 1;                                                 \
		}                                                                                  \
	} while (0)

/* Ties between equal timestamps inside one node. */
static int hook_rank(unsigned int hook)
{
	switch (hook) {
	case DT_HOOK_PORT_IN:
		return 0;
	case DT_HOOK_GW_IN:
		return 1;
	case DT_HOOK_UPLINK_OUT:
		return 2;
	case DT_HOOK_UPLINK_IN:
		return 3;
	case DT_HOOK_PORT_OUT:
		return 4;
	case DT_HOOK_GW_OUT:
		return 5;
	case DT_HOOK_DROP:
		return 6;
	default:
		return 7;
	}
}

static bool is_first_hop(unsigned int hook)
{
	return hook == DT_HOOK_PORT_IN || hook == DT_HOOK_GW_IN;
}

static bool is_entry(unsigned int hook)
{
	return is_first_hop(hook) || hook == DT_HOOK_UPLINK_IN;
}

/* The end of a packet's journey in our network. */
static bool is_last_hop(unsigned int hook)
{
	return hook == DT_HOOK_PORT_OUT || hook == DT_HOOK_GW_OUT;
}

static bool leaves_node(unsigned int hook)
{
	return is_last_hop(hook) || hook == DT_HOOK_UPLINK_OUT || hook == DT_HOOK_DROP;
}

static int cmp_packet_key(const struct dt_obs *a, const struct dt_obs *b)
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

/* Names are interned: equal indices are equal names. */
static int cmp_name(uint32_t ia, const char *a, uint32_t ib, const char *b)
{
	return ia == ib ? 0 : strcmp(a, b);
}

/* Order of one packet's observations inside its run, without the packet key. */
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

static int cmp_item(const void *pa, const void *pb)
{
	const struct item *a = pa;
	const struct item *b = pb;
	int c;

	c = cmp_packet_key(a->o, b->o);
	if (c != 0) {
		return c;
	}
	c = cmp_in_packet(a, b);
	if (c != 0) {
		return c;
	}
	/* Same place and time: a duplicate. Input order keeps qsort deterministic. */
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

static int cmp_item_in_packet(const void *pa, const void *pb)
{
	const struct item *a = pa;
	const struct item *b = pb;
	int c;

	c = cmp_in_packet(a, b);
	if (c != 0) {
		return c;
	}
	CMP((uintptr_t)a->o, (uintptr_t)b->o);
	return 0;
}

static bool same_place_and_time(const struct item *a, const struct item *b)
{
	return a->o->hook == b->o->hook && a->o->ts_ns == b->o->ts_ns &&
	       a->o->outer_daddr == b->o->outer_daddr && a->o->outer_saddr == b->o->outer_saddr &&
	       cmp_name(a->o->node, a->node, b->o->node, b->node) == 0 &&
	       cmp_name(a->o->ifname, a->ifname, b->o->ifname, b->ifname) == 0;
}

/*
 * Removes duplicates from one packet's sorted run v[0..n) in place, and cuts a run of more
 * than DT_REPORT_MAX_HOPS distinct hops down to its earliest ones. Returns the new length.
 */
static size_t trim_packet(struct item *v, size_t n)
{
	size_t i, m = 0;

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

/* One visit of a packet to a node: the hops [start, end) of the packet's sorted run. */
struct visit {
	size_t start;
	size_t end;
	uint64_t min_ts;
	bool first_hop;
	bool placed;
};

/* True when hop o saw the packet as it came from the underlay (it carries outer addresses). */
static bool from_underlay(const struct dt_obs *o)
{
	return o->hook == DT_HOOK_UPLINK_IN ||
	       (o->hook == DT_HOOK_DROP && (o->flags & DT_SAMPLE_F_ENCAP));
}

/* True when hop b receives what hop a sent to the underlay. */
static bool receives(const struct dt_obs *a, const struct dt_obs *b)
{
	return from_underlay(b) && b->outer_saddr == a->outer_saddr &&
	       b->outer_daddr == a->outer_daddr;
}

/* The uplink-out hop of visit a that hands the packet to visit b, or -1. Several can
 * (a node that sent b the packet twice): the last one sent before b's first hop, else the
 * first one. */
static int hand_off(const struct item *v, const struct visit *a, const struct visit *b)
{
	int before = -1, after = -1;
	size_t i, j;

	for (i = a->start; i < a->end; i++) {
		if (v[i].o->hook != DT_HOOK_UPLINK_OUT) {
			continue;
		}
		for (j = b->start; j < b->end && !receives(v[i].o, v[j].o); j++) {
		}
		if (j == b->end) {
			continue;
		}
		if (v[i].o->ts_ns <= b->min_ts) {
			before = (int)i;
		} else if (after < 0) {
			after = (int)i;
		}
	}
	return before >= 0 ? before : after;
}

/*
 * Among the unplaced visits, the one with the earliest timestamp, preferring those that no
 * other unplaced visit hands the packet to (so that a receiving node whose clock is behind
 * does not go first when the first hop was not seen). -1 when every visit is placed.
 */
static int next_unreached(const struct visit *g, int ng, bool reach[][MAX_VISITS])
{
	int best = -1, best_root = -1;
	int i, j;

	for (i = 0; i < ng; i++) {
		bool root = true;

		if (g[i].placed) {
			continue;
		}
		for (j = 0; j < ng && root; j++) {
			if (j != i && !g[j].placed && reach[j][i]) {
				root = false;
			}
		}
		if (best < 0 || g[i].min_ts < g[best].min_ts) {
			best = i;
		}
		if (root && (best_root < 0 || g[i].min_ts < g[best_root].min_ts)) {
			best_root = i;
		}
	}
	return best_root >= 0 ? best_root : best;
}

/*
 * The hop an orphan visit b (no hand-off from a placed visit reaches it: a sample is
 * missing, or a node on the way has no agent) hangs from, by what b's first hop says of
 * where the packet came from (its outer source address):
 *  1. the first hop of a placed visit that sent from that address (only the uplink-out
 *     sample of b's copy is missing);
 *  2. a placed uplink-out hop that sent to that address (the packet crossed a node that
 *     saw nothing: no agent, or one that was restarting);
 *  3. else the first hop of the placed visit that began last before b, else the root's.
 */
static size_t orphan_parent(const struct item *v, const struct visit *g, int ng, int b,
			    int root)
{
	const struct dt_obs *in = v[g[b].start].o;
	int sender = -1, before = -1, via = -1, i;
	bool outer = from_underlay(in) && in->outer_saddr != 0;
	size_t h;

	for (i = 0; i < ng; i++) {
		if (!g[i].placed) {
			continue;
		}
		if (g[i].min_ts <= g[b].min_ts && (before < 0 || g[i].min_ts >= g[before].min_ts)) {
			before = i;
		}
		for (h = g[i].start; outer && h < g[i].end; h++) {
			const struct dt_obs *o = v[h].o;

			if (o->hook != DT_HOOK_UPLINK_OUT) {
				continue;
			}
			if (o->outer_saddr == in->outer_saddr &&
			    (sender < 0 || g[i].min_ts > g[sender].min_ts)) {
				sender = i;
			}
			if (o->outer_daddr == in->outer_saddr &&
			    (via < 0 || o->ts_ns > v[via].o->ts_ns)) {
				via = (int)h;
			}
		}
	}
	if (sender >= 0) {
		return g[sender].start;
	}
	if (via >= 0) {
		return (size_t)via;
	}
	return g[before >= 0 ? before : root].start;
}

/*
 * Links the visits into a tree: vparent[b] is the hop (index into v) that visit b's first
 * hop followed, -1 for the root visit. The root is the visit with a first hop (port-in,
 * gw-in; the earliest if several), else next_unreached(). Then, breadth first, every
 * visit that a hand-off from a placed visit reaches hangs from that hand-off's uplink-out
 * hop; when none is left, the next unreached visit hangs from orphan_parent(). Returns the
 * root visit.
 */
static int link_visits(const struct item *v, struct visit *g, int ng, int *vparent)
{
	static_assert(MAX_VISITS <= 64, "the reach matrix lives on the stack");
	bool reach[MAX_VISITS][MAX_VISITS];
	int i, j, placed = 0, root = -1;

	for (i = 0; i < ng; i++) {
		for (j = 0; j < ng; j++) {
			reach[i][j] = i != j && hand_off(v, &g[i], &g[j]) >= 0;
		}
		if (g[i].first_hop && (root < 0 || g[i].min_ts < g[root].min_ts)) {
			root = i;
		}
	}
	if (root < 0) {
		root = next_unreached(g, ng, reach);
	}
	g[root].placed = true;
	vparent[root] = -1;
	placed = 1;

	while (placed < ng) {
		bool progress = false;

		for (j = 0; j < ng; j++) {
			int best = -1;

			if (g[j].placed) {
				continue;
			}
			for (i = 0; i < ng; i++) {
				int h;

				if (!g[i].placed || !reach[i][j]) {
					continue;
				}
				h = hand_off(v, &g[i], &g[j]);
				if (best < 0 || (v[h].o->ts_ns <= g[j].min_ts &&
						 (v[best].o->ts_ns > g[j].min_ts ||
						  v[h].o->ts_ns > v[best].o->ts_ns))) {
					best = h;
				}
			}
			if (best >= 0) {
				vparent[j] = best;
				g[j].placed = true;
				placed++;
				progress = true;
			}
		}
		if (!progress) {
			j = next_unreached(g, ng, reach);
			vparent[j] = (int)orphan_parent(v, g, ng, j, root);
			g[j].placed = true;
			placed++;
		}
	}
	return root;
}

/* Cuts the trimmed run v[0..n) into visits (see the top of the file). Returns how many. */
static int cut_visits(const struct item *v, size_t n, struct visit *g)
{
	bool left = false;
	int ng = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned int hook = v[i].o->hook;

		if (i == 0 || cmp_name(v[i].o->node, v[i].node, v[i - 1].o->node, v[i - 1].node) ||
		    (left && is_entry(hook))) {
			g[ng].start = i;
			g[ng].min_ts = v[i].o->ts_ns; /* runs are in timestamp order */
			g[ng].first_hop = false;
			g[ng].placed = false;
			left = false;
			ng++;
		}
		g[ng - 1].end = i + 1;
		if (is_first_hop(hook)) {
			g[ng - 1].first_hop = true;
		}
		if (leaves_node(hook)) {
			left = true;
		}
	}
	return ng;
}

/* True when drop d happened to what hop o sent out (o is earlier in d's visit): the
 * encapsulated packet of an uplink-out (same outer addresses), or a packet that left
 * through the same interface (a qdisc or the device dropped it after the hook). */
static bool drop_after(const struct item *o, const struct item *d)
{
	if (o->o->hook == DT_HOOK_UPLINK_OUT) {
		return (d->o->flags & DT_SAMPLE_F_ENCAP) && o->o->outer_saddr == d->o->outer_saddr &&
		       o->o->outer_daddr == d->o->outer_daddr;
	}
	return is_last_hop(o->o->hook) && !(d->o->flags & DT_SAMPLE_F_ENCAP) &&
	       cmp_name(o->o->ifname, o->ifname, d->o->ifname, d->ifname) == 0;
}

/*
 * The parent of every hop of the run v[0..n) (index into v, -1 at the root), and the first
 * hop of its visit (entry), by which the root hop's index is returned. A visit's
 * first hop follows what linked the visit (link_visits()); a drop follows the latest hop
 * of its visit that sent out what it dropped (drop_after()); every other hop follows its
 * visit's first hop: inside a node a packet goes from where it entered to where it left,
 * and each copy leaves on its own.
 */
static int hop_parents(const struct item *v, size_t n, int *parent, int *entry)
{
	struct visit g[MAX_VISITS];
	int vparent[MAX_VISITS];
	int ng, root, k;
	size_t i, j;

	ng = cut_visits(v, n, g);
	root = link_visits(v, g, ng, vparent);
	for (k = 0; k < ng; k++) {
		parent[g[k].start] = vparent[k];
		entry[g[k].start] = (int)g[k].start;
		for (i = g[k].start + 1; i < g[k].end; i++) {
			const struct dt_obs *o = v[i].o;

			parent[i] = (int)g[k].start;
			entry[i] = (int)g[k].start;
			if (o->hook != DT_HOOK_DROP) {
				continue;
			}
			for (j = i; j-- > g[k].start;) {
				if (drop_after(&v[j], &v[i])) {
					parent[i] = (int)j;
					break;
				}
			}
		}
	}
	assert(g[ng - 1].end == n);
	return (int)g[root].start;
}

static void copy_str(char *dst, const char *src, size_t size)
{
	snprintf(dst, size, "%s", src);
}

static uint64_t reason_key(const struct dt_obs *o)
{
	if (o->drop_name != DT_STRTAB_NONE && o->drop_name != 0) {
		return REASON_NAMED | o->drop_name;
	}
	return o->drop_reason ? o->drop_reason : REASON_NONE; /* 0: the kernel said nothing */
}

/* The reason's name as an operator reads it: the kernel's name, else its value. */
static void reason_label(const struct dt_strtab *strs, uint64_t key, char *buf, size_t len)
{
	if (key == REASON_NONE) {
		buf[0] = '\0';
	} else if (key & REASON_NAMED) {
		copy_str(buf, dt_strtab_get(strs, (uint32_t)(key & ~REASON_NAMED)), len);
	} else {
		snprintf(buf, len, "%" PRIu64, key);
	}
}

/*
 * True when a drop gave no specific reason: what a bridge or a VXLAN device does with a
 * copy that is not for its host (br_handle_frame_finish frees it as NOT_SPECIFIED).
 * Kernels number their reasons differently: by name when there is one.
 */
static bool unspecified_drop(const struct dt_strtab *strs, const struct dt_obs *o)
{
	if (o->drop_name != DT_STRTAB_NONE && o->drop_name != 0) {
		return strcmp(dt_strtab_get(strs, o->drop_name), "NOT_SPECIFIED") == 0;
	}
	return o->drop_reason <= 2; /* SKB_NOT_DROPPED_YET, SKB_CONSUMED, NOT_SPECIFIED */
}

/* How a leaf of a packet's tree ended, before the destination branch is chosen. */
enum leaf_end {
	END_DELIVERED, /* an exit: gw-out, or a port-out towards the destination */
	END_FILTERED,  /* a drop without a specific reason, or a port-out to another instance */
	END_DROPPED,   /* a drop with a specific reason */
	END_OPEN,      /* not seen again */
};

/* The node hosting (vni, addr) per ctx, or NULL when no node reported it. */
static const char *host_of(const struct dt_paths_ctx *ctx, uint32_t vni, uint32_t addr)
{
	return ctx->host_of ? ctx->host_of(ctx->host_arg, vni, addr) : NULL;
}

static enum leaf_end leaf_end(const struct dt_paths_ctx *ctx, const struct item *it,
			      uint32_t vni)
{
	const struct dt_obs *o = it->o;
	const char *host;

	switch (o->hook) {
	case DT_HOOK_GW_OUT:
		return END_DELIVERED;
	case DT_HOOK_PORT_OUT:
		if (o->flags & DT_SAMPLE_F_HOSTED) {
			return END_DELIVERED; /* its port hosts the destination */
		}
		host = host_of(ctx, vni, o->tuple.daddr);
		if ((o->flags & DT_SAMPLE_F_STRANGER) || (host && strcmp(host, it->node) != 0)) {
			return END_FILTERED;
		}
		return END_DELIVERED;
	case DT_HOOK_DROP:
		return unspecified_drop(ctx->strs, o) ? END_FILTERED : END_DROPPED;
	default:
		return END_OPEN;
	}
}

/*
 * How likely the branch ending at leaf l is the one towards the packet's destination
 * (higher: likelier), see choose_destination().
 */
static int leaf_rank(const struct dt_paths_ctx *ctx, const struct item *v, const int *entry,
		     size_t l, enum leaf_end end, uint32_t vni, int root)
{
	const struct item *in = &v[entry[l]];
	const char *host = host_of(ctx, vni, v[l].o->tuple.daddr);
	const char *in_host;

	if (end == END_DELIVERED) {
		return 5;
	}
	if (host && strcmp(host, v[l].node) == 0) {
		return 4; /* it reached the destination's host */
	}
	/* A copy received from the underlay by a host that is not the destination's. */
	in_host = host_of(ctx, vni, in->o->tuple.daddr);
	if (entry[l] != root && from_underlay(in->o) && in_host &&
	    strcmp(in_host, in->node) != 0) {
		return 0;
	}
	switch (end) {
	case END_DROPPED:
		return 3;
	case END_OPEN:
		return 2;
	default:
		return 1;
	}
}

/* The depth of hop i in the tree parent[] (the root's is 0). */
static int hop_depth(const int *parent, int i)
{
	int d = 0;

	while (parent[i] >= 0) {
		i = parent[i];
		d++;
	}
	return d;
}

/* The depth-first order of the tree: at each hop, its child on the destination branch
 * first, then the others by timestamp. Writes order[0..n). */
static void dfs_order(const struct item *v, size_t n, const int *parent, const bool *on_dest,
		      int root, int *order)
{
	int stack[MAX_HOPS], kids[MAX_HOPS];
	size_t sp = 0, m = 0, i;
	int nk, a, b;

	stack[sp++] = root;
	while (sp > 0) {
		int x = stack[--sp];

		order[m++] = x;
		nk = 0;
		for (i = 0; i < n; i++) {
			if (parent[i] == x) {
				kids[nk++] = (int)i;
			}
		}
		/* Insertion sort, best last: it is popped first. */
		for (a = 1; a < nk; a++) {
			int c = kids[a];

			for (b = a; b > 0; b--) {
				const int p = kids[b - 1];
				bool c_first = on_dest[c] != on_dest[p] ? on_dest[c]
					       : v[c].o->ts_ns != v[p].o->ts_ns ? v[c].o->ts_ns < v[p].o->ts_ns
					       : c < p;

				if (!c_first) {
					break;
				}
				kids[b] = p;
			}
			kids[b] = c;
		}
		while (nk > 0) {
			stack[sp++] = kids[--nk];
		}
	}
	assert(m == n);
}

static uint8_t copy_end_of(enum leaf_end end, bool young)
{
	switch (end) {
	case END_DELIVERED:
		return DT_COPY_DELIVERED;
	case END_FILTERED:
		return DT_COPY_FILTERED;
	case END_DROPPED:
		return DT_COPY_DROPPED;
	default:
		return young ? DT_COPY_IN_FLIGHT : DT_COPY_VANISHED;
	}
}

static void fill_hop(struct dt_hop *hop, const struct item *it, const struct dt_strtab *strs)
{
	const struct dt_obs *o = it->o;

	copy_str(hop->at.node, it->node, sizeof(hop->at.node));
	copy_str(hop->at.ifname, it->ifname, sizeof(hop->at.ifname));
	hop->at.hook = o->hook;
	hop->ts_ns = o->ts_ns;
	hop->tuple = o->tuple;
	hop->cap_link = o->cap_link;
	hop->cap_len = o->cap_len;
	memcpy(hop->cap, o->cap, o->cap_len);
	hop->refrag = (o->flags & DT_SAMPLE_F_REFRAG) != 0;
	if (o->hook == DT_HOOK_DROP) {
		hop->drop_reason = o->drop_reason;
		copy_str(hop->drop_name, dt_strtab_get(strs, o->drop_name), sizeof(hop->drop_name));
		copy_str(hop->drop_where, dt_strtab_get(strs, o->drop_where),
			 sizeof(hop->drop_where));
	}
}

/*
 * Builds and judges one packet from its trimmed run v[0..n), 1 <= n <= DT_REPORT_MAX_HOPS:
 * the tree of its hops (hop_parents()), the destination branch (the leaf of the best
 * leaf_rank(); the deepest on a tie, then the earliest), the hops in dfs_order(), so that
 * the destination branch is hops[0 .. n_dest), and the fate, which that branch alone
 * decides (see paths.h).
 */
static int build_packet(const struct dt_paths_ctx *ctx, const struct item *v, size_t n,
			struct pkt *k)
{
	struct dt_packet_path *p = &k->p;
	int parent[MAX_HOPS], entry[MAX_HOPS], depth[MAX_HOPS], rank[MAX_HOPS];
	int order[MAX_HOPS], newidx[MAX_HOPS], nkids[MAX_HOPS] = {0};
	enum leaf_end end[MAX_HOPS];
	bool on_dest[MAX_HOPS] = {false};
	uint32_t vni = v[0].o->canon.vni;
	uint64_t newest_ms = 0, newest_ns = 0;
	const struct dt_obs *d;
	int root, best = -1, i;
	bool young;

	root = hop_parents(v, n, parent, entry);
	for (i = 0; i < (int)n; i++) {
		if ((v[i].o->flags & DT_SAMPLE_F_REFRAG) && v[i].o->len > k->refrag_len) {
			k->refrag_len = v[i].o->len;
		}
		depth[i] = hop_depth(parent, i);
		if (parent[i] >= 0) {
			nkids[parent[i]]++;
		}
		if (v[i].o->arrival_ms > newest_ms) {
			newest_ms = v[i].o->arrival_ms;
		}
		if (v[i].o->ts_ns > newest_ns) {
			newest_ns = v[i].o->ts_ns;
		}
	}
	for (i = 0; i < (int)n; i++) {
		if (nkids[i] > 0) {
			continue;
		}
		end[i] = leaf_end(ctx, &v[i], vni);
		rank[i] = leaf_rank(ctx, v, entry, (size_t)i, end[i], vni, root);
		if (best < 0 || rank[i] > rank[best] ||
		    (rank[i] == rank[best] &&
		     (depth[i] > depth[best] ||
		      (depth[i] == depth[best] && v[i].o->ts_ns < v[best].o->ts_ns)))) {
			best = i;
		}
	}
	for (i = best; i >= 0; i = parent[i]) {
		on_dest[i] = true;
	}
	dfs_order(v, n, parent, on_dest, root, order);

	p->hops = calloc(n, sizeof(*p->hops));
	if (!p->hops) {
		return -ENOMEM;
	}
	young = (ctx->now_ms < newest_ms + ctx->window_ms) ||
		(ctx->now_ns < newest_ns + ctx->window_ms * 1000000ull) || ctx->n_held_restored > 0;
	for (i = 0; i < (int)n; i++) {
		newidx[order[i]] = i;
	}
	for (i = 0; i < (int)n; i++) {
		int x = order[i];
		struct dt_hop *hop = &p->hops[i];

		fill_hop(hop, &v[x], ctx->strs);
		hop->parent = parent[x] < 0 ? DT_HOP_ROOT : (uint16_t)newidx[parent[x]];
		hop->branch = on_dest[x] ? DT_BRANCH_DEST : DT_BRANCH_COPY;
		if (!on_dest[x] && nkids[x] == 0) {
			hop->copy_end = copy_end_of(end[x], young);
			p->n_copies++;
		}
	}
	p->n_hops = n;
	k->n_dest = (uint32_t)depth[best] + 1;
	p->ip_id = v[0].o->ip_id;
	p->ident = v[0].o->ident;
	p->len = v[root].o->len; /* as seen at the first hop */
	p->direction = v[0].o->dir;
	p->tuple = v[0].o->canon;
	p->frag = v[root].o->frag;

	d = v[best].o;
	p->dest_known = (end[best] == END_DELIVERED &&
			 (d->hook == DT_HOOK_GW_OUT || (d->flags & DT_SAMPLE_F_HOSTED))) ||
			host_of(ctx, vni, d->tuple.daddr) || host_of(ctx, vni, 0);
	k->drop_hop = -1;
	k->reason = REASON_NONE;
	if (end[best] == END_DELIVERED) {
		p->fate = DT_FATE_DELIVERED;
	} else if (d->hook == DT_HOOK_DROP && (!young || rank[best] >= 3)) {
		p->fate = DT_FATE_DROPPED;
		k->drop_hop = (int)k->n_dest - 1;
		k->reason = reason_key(d);
		p->drop_reason = d->drop_reason;
		copy_str(p->drop_name, dt_strtab_get(ctx->strs, d->drop_name), sizeof(p->drop_name));
		copy_str(p->drop_where, dt_strtab_get(ctx->strs, d->drop_where),
			 sizeof(p->drop_where));
	} else if (young) {
		p->fate = DT_FATE_IN_FLIGHT;
	} else {
		p->fate = DT_FATE_VANISHED;
	}
	p->datagram_fate = p->fate;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Datagrams of fragments */

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
			if (f[i]->p.hops[j].refrag) {
				return f[i]->p.hops[j].at.node;
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
	const struct dt_hop *end = &k->p.hops[k->n_dest - 1];

	for (uint32_t j = 0; j < k->p.n_hops; j++) {
		if (k->p.hops[j].refrag) {
			return false; /* one of the new fragments */
		}
	}
	return (k->p.fate == DT_FATE_VANISHED || k->p.fate == DT_FATE_IN_FLIGHT) &&
	       strncmp(end->at.node, node, sizeof(end->at.node)) == 0;
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
		old_max = f[i]->p.len > old_max ? f[i]->p.len : old_max; /* as the first hop saw it */
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
static int aggregate_datagrams(struct pkt *pk, size_t n_pk)
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
		for (j = i + 1; j < m && v[j]->p.direction == v[i]->p.direction &&
				v[j]->p.ip_id == v[i]->p.ip_id && v[j]->p.ident == v[i]->p.ident &&
				memcmp(&v[j]->p.tuple, &v[i]->p.tuple, sizeof(v[i]->p.tuple)) == 0;
		     j++) {
		}
		judge_datagram(&v[i], j - i);
	}
	free(v);
	return 0;
}

static int cmp_pkt_ts(const void *pa, const void *pb)
{
	const struct pkt *a = pa;
	const struct pkt *b = pb;

	CMP(a->p.hops[0].ts_ns, b->p.hops[0].ts_ns);
	/* Then packet key order, so that the result does not depend on qsort. */
	CMP(a->key, b->key);
	return 0;
}

static int cmp_ref(const struct dt_hop_ref *a, const struct dt_hop_ref *b)
{
	int c;

	c = strncmp(a->node, b->node, sizeof(a->node));
	if (c != 0) {
		return c;
	}
	c = strncmp(a->ifname, b->ifname, sizeof(a->ifname));
	if (c != 0) {
		return c;
	}
	CMP(a->hook, b->hook);
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Latency statistics */

static int cmp_pair(const void *pa, const void *pb)
{
	const struct pair *a = pa;
	const struct pair *b = pb;
	int c;

	CMP(a->dir, b->dir);
	CMP(a->branch, b->branch);
	c = cmp_ref(&a->from->at, &b->from->at);
	if (c != 0) {
		return c;
	}
	return cmp_ref(&a->to->at, &b->to->at);
}

static int cmp_stat_pos(const void *pa, const void *pb)
{
	const struct stat_pos *a = pa;
	const struct stat_pos *b = pb;
	int c;

	CMP(a->dir, b->dir);
	CMP(a->st.branch, b->st.branch);
	CMP(a->pos, b->pos);
	c = cmp_ref(&a->st.from, &b->st.from);
	if (c != 0) {
		return c;
	}
	return cmp_ref(&a->st.to, &b->st.to);
}

/* Summarises the sorted pairs p[0..n) with equal (direction, from, to). */
static void summarise(const struct pair *p, size_t n, struct stat_pos *out)
{
	double mean = 0.0, m2 = 0.0, pos = 0.0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->st.from = p[0].from->at;
	out->st.to = p[0].to->at;
	out->st.min_ns = UINT64_MAX;
	out->st.branch = p[0].branch;
	out->st.direction = p[0].dir;
	out->dir = p[0].dir;
	for (i = 0; i < n; i++) {
		double x = (double)p[i].lat_ns;
		double d = x - mean;

		mean += d / (double)(i + 1);
		m2 += d * (x - mean);
		pos += p[i].pos;
		if (p[i].lat_ns < out->st.min_ns) {
			out->st.min_ns = p[i].lat_ns;
		}
		if (p[i].lat_ns > out->st.max_ns) {
			out->st.max_ns = p[i].lat_ns;
		}
	}
	out->st.count = n;
	out->st.mean_ns = mean;
	out->st.stddev_ns = m2 > 0.0 ? sqrt(m2 / (double)n) : 0.0;
	out->pos = pos / (double)n;
}

/* The depth of hop j in packet p's tree. */
static uint32_t tree_depth(const struct dt_packet_path *p, uint32_t j)
{
	uint32_t d = 0;

	while (p->hops[j].parent != DT_HOP_ROOT) {
		j = p->hops[j].parent;
		d++;
	}
	return d;
}

/* Fills *stats / *n_stats from every hop and the hop it followed, per branch kind. */
static int build_stats(const struct pkt *pk, size_t n_pk, size_t n_pairs,
		       struct dt_hop_stat **stats, uint32_t *n_stats)
{
	struct pair *pairs = NULL;
	struct stat_pos *sp = NULL;
	struct dt_hop_stat *out = NULL;
	size_t i, j, np = 0, ns = 0;

	*stats = NULL;
	*n_stats = 0;
	if (n_pairs == 0) {
		return 0;
	}
	pairs = calloc(n_pairs, sizeof(*pairs));
	if (!pairs) {
		return -ENOMEM;
	}
	for (i = 0; i < n_pk; i++) {
		const struct dt_packet_path *p = &pk[i].p;

		for (j = 1; j < p->n_hops; j++) {
			const struct dt_hop *b = &p->hops[j];
			const struct dt_hop *a = &p->hops[b->parent];
			int64_t lat = (int64_t)(b->ts_ns - a->ts_ns);

			pairs[np].from = a;
			pairs[np].to = b;
			pairs[np].lat_ns = lat > 0 ? (uint64_t)lat : 0;
			pairs[np].pos = tree_depth(p, b->parent);
			pairs[np].dir = p->direction;
			pairs[np].branch = b->branch;
			np++;
		}
	}
	qsort(pairs, np, sizeof(*pairs), cmp_pair);

	sp = calloc(np, sizeof(*sp));
	if (!sp) {
		free(pairs);
		return -ENOMEM;
	}
	for (i = 0; i < np; i = j) {
		for (j = i + 1; j < np && cmp_pair(&pairs[i], &pairs[j]) == 0; j++) {
		}
		summarise(&pairs[i], j - i, &sp[ns++]);
	}
	free(pairs);
	qsort(sp, ns, sizeof(*sp), cmp_stat_pos);
	if (ns > DT_REPORT_MAX_STATS) {
		ns = DT_REPORT_MAX_STATS;
	}

	out = calloc(ns, sizeof(*out));
	if (!out) {
		free(sp);
		return -ENOMEM;
	}
	for (i = 0; i < ns; i++) {
		out[i] = sp[i].st;
	}
	free(sp);
	*stats = out;
	*n_stats = ns;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The per-hop loss table */

static int cmp_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

	CMP(a, b);
	return 0;
}

/*
 * The most frequent of the keys v[0..n) (sorted in place; REASON_NONE ignored), the
 * smallest on a tie; REASON_NONE when there is none.
 */
static uint64_t most_frequent(uint64_t *v, size_t n)
{
	uint64_t best = REASON_NONE;
	size_t i, j, best_n = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && v[j] == v[i]; j++) {
		}
		if (v[i] != REASON_NONE && j - i > best_n) {
			best = v[i];
			best_n = j - i;
		}
	}
	return best;
}

static int cmp_hop_rec(const void *pa, const void *pb)
{
	const struct hop_rec *a = pa;
	const struct hop_rec *b = pb;

	CMP(a->dir, b->dir);
	return cmp_ref(a->at, b->at);
}

static int cmp_row_pos(const void *pa, const void *pb)
{
	const struct row_pos *a = pa;
	const struct row_pos *b = pb;

	CMP(a->row.direction, b->row.direction);
	CMP(a->pos, b->pos);
	return cmp_ref(&a->row.at, &b->row.at);
}

/* True when the hop before a packet's fatal drop is on the drop's node. */
static bool dropped_right_after(const struct pkt *k, uint32_t j)
{
	const struct dt_hop *h = k->p.hops;

	return k->drop_hop >= 1 && j + 1 == (uint32_t)k->drop_hop &&
	       strncmp(h[j].at.node, h[j + 1].at.node, sizeof(h[j].at.node)) == 0;
}

static int build_rows(const struct dt_strtab *strs, const struct pkt *pk, size_t n_pk,
		      size_t n_hops, struct dt_hop_row **rows, uint32_t *n_rows)
{
	struct hop_rec *rec = NULL;
	struct row_pos *rp = NULL;
	struct dt_hop_row *out = NULL;
	uint64_t *reasons = NULL;
	size_t i, j, m = 0, nr = 0;
	int err = -ENOMEM;

	*rows = NULL;
	*n_rows = 0;
	if (n_hops == 0) {
		return 0;
	}
	rec = calloc(n_hops, sizeof(*rec));
	reasons = calloc(n_hops, sizeof(*reasons));
	if (!rec || !reasons) {
		goto out;
	}
	for (i = 0; i < n_pk; i++) {
		const struct pkt *k = &pk[i];

		for (j = 0; j < k->n_dest; j++) {
			struct hop_rec *r = &rec[m++];

			r->at = &k->p.hops[j].at;
			r->dir = k->p.direction;
			r->pos = j;
			r->reason = REASON_NONE;
			r->dropped = (int)j == k->drop_hop || dropped_right_after(k, j);
			if (r->dropped) {
				r->reason = k->reason;
			}
			r->vanished = k->p.fate == DT_FATE_VANISHED && j + 1 == k->n_dest;
		}
	}
	qsort(rec, m, sizeof(*rec), cmp_hop_rec);
	rp = calloc(m, sizeof(*rp));
	if (!rp) {
		goto out;
	}
	for (i = 0; i < m; i = j) {
		struct row_pos *r = &rp[nr++];
		double pos = 0.0;
		size_t n_reasons = 0;

		for (j = i; j < m && cmp_hop_rec(&rec[i], &rec[j]) == 0; j++) {
			r->row.seen++;
			r->row.dropped += rec[j].dropped;
			r->row.vanished += rec[j].vanished;
			pos += rec[j].pos;
			reasons[n_reasons++] = rec[j].reason;
		}
		r->row.at = *rec[i].at;
		r->row.direction = rec[i].dir;
		r->pos = pos / (double)(j - i);
		reason_label(strs, most_frequent(reasons, n_reasons), r->row.top_reason,
			     sizeof(r->row.top_reason));
	}
	qsort(rp, nr, sizeof(*rp), cmp_row_pos);
	if (nr > DT_REPORT_MAX_ROWS) {
		nr = DT_REPORT_MAX_ROWS;
	}
	out = calloc(nr, sizeof(*out));
	if (!out) {
		goto out;
	}
	for (i = 0; i < nr; i++) {
		out[i] = rp[i].row;
	}
	*rows = out;
	*n_rows = nr;
	err = 0;
out:
	free(rec);
	free(rp);
	free(reasons);
	return err;
}

/* ------------------------------------------------------------------------------------ */
/* The copies table */

static int cmp_copy_rec(const void *pa, const void *pb)
{
	const struct copy_rec *a = pa;
	const struct copy_rec *b = pb;
	int c;

	CMP(a->dir, b->dir);
	c = cmp_ref(&a->at->at, &b->at->at);
	if (c != 0) {
		return c;
	}
	CMP(a->at->copy_end, b->at->copy_end);
	return 0;
}

/* cmp_copy_rec(), then by drop reason (by name; by value when it has none). */
static int cmp_copy_rec_reason(const void *pa, const void *pb)
{
	const struct copy_rec *a = pa;
	const struct copy_rec *b = pb;
	int c = cmp_copy_rec(pa, pb);

	if (c != 0) {
		return c;
	}
	c = strncmp(a->at->drop_name, b->at->drop_name, sizeof(a->at->drop_name));
	if (c != 0) {
		return c;
	}
	CMP(a->at->drop_reason, b->at->drop_reason);
	return 0;
}

/* The name of a copy's drop reason as an operator reads it ("" without a drop). */
static void copy_reason(const struct dt_hop *h, char *buf, size_t len)
{
	if (h->at.hook != DT_HOOK_DROP || (!h->drop_name[0] && !h->drop_reason)) {
		buf[0] = '\0';
	} else if (h->drop_name[0]) {
		copy_str(buf, h->drop_name, len);
	} else {
		snprintf(buf, len, "%" PRIu32, h->drop_reason);
	}
}

/* Where the copy branches of the packets ended, counted by place and end, with their most
 * frequent drop reason (the first by name on a tie). */
static int build_copy_rows(const struct pkt *pk, size_t n_pk, struct dt_copy_row **rows,
			   uint32_t *n_rows)
{
	struct copy_rec *rec = NULL;
	struct dt_copy_row *out = NULL;
	size_t i, j, k, m = 0, total = 0, nr = 0;

	*rows = NULL;
	*n_rows = 0;
	for (i = 0; i < n_pk; i++) {
		total += pk[i].p.n_copies;
	}
	if (total == 0) {
		return 0;
	}
	rec = calloc(total, sizeof(*rec));
	out = calloc(total < DT_REPORT_MAX_COPY_ROWS ? total : DT_REPORT_MAX_COPY_ROWS,
		     sizeof(*out));
	if (!rec || !out) {
		free(rec);
		free(out);
		return -ENOMEM;
	}
	for (i = 0; i < n_pk; i++) {
		for (j = 0; j < pk[i].p.n_hops; j++) {
			if (pk[i].p.hops[j].copy_end != DT_COPY_NONE) {
				rec[m].at = &pk[i].p.hops[j];
				rec[m].dir = pk[i].p.direction;
				m++;
			}
		}
	}
	qsort(rec, m, sizeof(*rec), cmp_copy_rec_reason);
	for (i = 0; i < m && nr < DT_REPORT_MAX_COPY_ROWS; i = j) {
		struct dt_copy_row *r = &out[nr++];
		size_t best = i, best_n = 0;

		for (j = i; j < m && cmp_copy_rec(&rec[i], &rec[j]) == 0; j = k) {
			for (k = j + 1; k < m && cmp_copy_rec_reason(&rec[j], &rec[k]) == 0; k++) {
			}
			if (k - j > best_n) {
				best = j;
				best_n = k - j;
			}
		}
		r->at = rec[i].at->at;
		r->direction = rec[i].dir;
		r->end = rec[i].at->copy_end;
		r->count = j - i;
		copy_reason(rec[best].at, r->reason, sizeof(r->reason));
	}
	free(rec);
	*rows = out;
	*n_rows = (uint32_t)nr;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The verdict */

static int cmp_loss_rec(const void *pa, const void *pb)
{
	const struct loss_rec *a = pa;
	const struct loss_rec *b = pb;

	CMP(a->dir, b->dir);
	CMP(a->kind, b->kind);
	return cmp_ref(a->at, b->at);
}

static int cmp_after(const void *pa, const void *pb)
{
	const struct loss_rec *a = pa;
	const struct loss_rec *b = pb;

	if (!a->after || !b->after) {
		CMP(a->after != NULL, b->after != NULL);
		return 0;
	}
	return cmp_ref(a->after, b->after);
}

/* "h2/vxlan0" */
static void place_str(const struct dt_hop_ref *r, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s/%.*s", (int)sizeof(r->node), r->node, (int)sizeof(r->ifname),
		 r->ifname);
}

/* The group of lost packets to name and what it says. */
struct culprit {
	const struct loss_rec *first; /* of its run */
	size_t count;
	double pos;
	const struct dt_hop_ref *after; /* the most frequent hop before it */
	uint64_t reason;
};

/* Summarises the run v[0..n) of lost packets lost at one place (sorts it). */
static void summarise_loss(struct loss_rec *v, size_t n, uint64_t *reasons, struct culprit *c)
{
	size_t i, j, best_n = 0;
	double pos = 0.0;

	c->first = v;
	c->count = n;
	c->after = NULL;
	for (i = 0; i < n; i++) {
		pos += v[i].pos;
		reasons[i] = v[i].reason;
	}
	c->pos = pos / (double)n;
	c->reason = most_frequent(reasons, n);
	qsort(v, n, sizeof(*v), cmp_after);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && cmp_after(&v[i], &v[j]) == 0; j++) {
		}
		if (v[i].after && j - i > best_n) {
			c->after = v[i].after;
			best_n = j - i;
		}
	}
}

/* Appends, at off in the sentence, that some destinations were not known. */
static void note_dest_unknown(struct dt_verdict *vd, size_t off)
{
	if (vd->dest_unknown && off < sizeof(vd->sentence)) {
		snprintf(vd->sentence + off, sizeof(vd->sentence) - off,
			 "; destination of %" PRIu64 " not known to any node (judged from their "
			 "branches)", vd->dest_unknown);
	}
}

/*
 * Appends the finding that datagrams were refragmented on the way: the kernel reassembled
 * them there (conntrack on a bridge or a router does) and fragmented them anew. When the
 * new fragments are smaller than the instance's, the MTU along the overlay is
 * inconsistent: the finding to act on. Else conntrack's reassembly alone did it.
 */
static void note_refrag(struct dt_verdict *vd, const struct pkt *pk, size_t n_pk)
{
	const char *node = NULL;
	size_t i, n = 0, off = strlen(vd->sentence);
	bool smaller = false;

	for (i = 0; i < n_pk; i++) {
		if (!pk[i].member && pk[i].refrag_at) {
			node = node ? node : pk[i].refrag_at;
			smaller = smaller || pk[i].refrag_smaller;
			n++;
		}
	}
	if (n > 0 && off < sizeof(vd->sentence)) {
		snprintf(vd->sentence + off, sizeof(vd->sentence) - off,
			 "; %zu datagram%s refragmented at %.*s (%s)", n, n == 1 ? "" : "s",
			 DT_NAME_MAX, node,
			 smaller ? "the MTU along the overlay is inconsistent"
				 : "reassembled by conntrack and fragmented anew");
	}
}

static void write_sentence(struct dt_verdict *vd, const struct culprit *c,
			   const uint64_t judged_dir[DT_DIR_MAX], bool both_dirs)
{
	char at[DT_NAME_MAX + DT_IFNAME_MAX + 2], after[sizeof(at)];
	char *s = vd->sentence;
	size_t len = sizeof(vd->sentence), off;
	uint64_t lost = vd->dropped + vd->vanished;
	uint8_t dir = c->first->dir;
	const char *dw = !both_dirs ? "" : dir == DT_DIR_REPLY ? "reply " : "request ";

	place_str(c->first->at, at, sizeof(at));
	if (c->first->kind == DT_FATE_DROPPED) {
		off = (size_t)snprintf(s, len, "%" PRIu64 " of %" PRIu64 " %spackets dropped at %s",
				       (uint64_t)c->count, judged_dir[dir], dw, at);
		if (c->after && off < len) {
			place_str(c->after, after, sizeof(after));
			off += (size_t)snprintf(s + off, len - off, " (after %s %s)", after,
						dt_hook_name(c->after->hook));
		}
		if (vd->reason[0] && off < len) {
			off += (size_t)snprintf(s + off, len - off, ", reason %s", vd->reason);
		}
	} else {
		off = (size_t)snprintf(s, len,
				       "%" PRIu64 " of %" PRIu64
				       " %spackets vanished after %s %s (no drop seen)",
				       (uint64_t)c->count, judged_dir[dir], dw, at,
				       dt_hook_name(c->first->at->hook));
	}
	if (lost > c->count && off < len) {
		off += (size_t)snprintf(s + off, len - off, "; %" PRIu64 " more lost elsewhere",
					lost - c->count);
	}
	if (vd->in_flight && off < len) {
		off += (size_t)snprintf(s + off, len - off, "; %" PRIu64 " in flight", vd->in_flight);
	}
	note_dest_unknown(vd, off);
}

static int build_verdict(const struct dt_paths_ctx *ctx, const struct pkt *pk, size_t n_pk,
			 struct dt_verdict *vd)
{
	uint64_t judged_dir[DT_DIR_MAX] = {0};
	struct loss_rec *rec = NULL;
	uint64_t *reasons = NULL;
	struct culprit best = {0}, c;
	bool dirs[DT_DIR_MAX] = {false};
	size_t i, j, m = 0;

	memset(vd, 0, sizeof(*vd));
	for (i = 0; i < n_pk; i++) {
		const struct dt_packet_path *p = &pk[i].p;

		if (pk[i].member) {
			continue; /* a fragment: its datagram counts once */
		}
		dirs[p->direction < DT_DIR_MAX ? p->direction : 0] = true;
		switch (p->datagram_fate) {
		case DT_FATE_DELIVERED:
			vd->delivered++;
			break;
		case DT_FATE_DROPPED:
			vd->dropped++;
			break;
		case DT_FATE_VANISHED:
			vd->vanished++;
			break;
		default:
			vd->in_flight++;
			continue;
		}
		judged_dir[p->direction < DT_DIR_MAX ? p->direction : 0]++;
		vd->dest_unknown += !p->dest_known;
	}
	vd->judged = vd->delivered + vd->dropped + vd->vanished;
	if (n_pk == 0) {
		snprintf(vd->sentence, sizeof(vd->sentence), "no packets traced yet");
		return 0;
	}
	if (vd->judged == 0) {
		snprintf(vd->sentence, sizeof(vd->sentence),
			 "%" PRIu64 " packet%s in flight, none judged yet (seen within the last "
			 "%" PRIu64 " ms)",
			 vd->in_flight, vd->in_flight == 1 ? "" : "s", ctx->window_ms);
		return 0;
	}
	if (vd->dropped + vd->vanished == 0) {
		int off = snprintf(vd->sentence, sizeof(vd->sentence),
				   "no loss: %" PRIu64 " of %" PRIu64 " packets delivered",
				   vd->delivered, vd->judged);

		if (vd->in_flight) {
			off += snprintf(vd->sentence + off, sizeof(vd->sentence) - (size_t)off,
					"; %" PRIu64 " in flight", vd->in_flight);
		}
		note_dest_unknown(vd, (size_t)off);
		note_refrag(vd, pk, n_pk);
		return 0;
	}

	rec = calloc(vd->dropped + vd->vanished, sizeof(*rec));
	reasons = calloc(vd->dropped + vd->vanished, sizeof(*reasons));
	if (!rec || !reasons) {
		free(rec);
		free(reasons);
		return -ENOMEM;
	}
	for (i = 0; i < n_pk; i++) {
		const struct pkt *k = &pk[i];
		struct loss_rec *r;
		uint8_t fate = k->p.datagram_fate;

		if (k->member || (fate != DT_FATE_DROPPED && fate != DT_FATE_VANISHED)) {
			continue;
		}
		if (k->lost) {
			k = k->lost; /* where the datagram's first missing fragment was lost */
		}
		r = &rec[m++];
		r->dir = k->p.direction;
		r->kind = fate;
		r->reason = REASON_NONE;
		if (fate == DT_FATE_DROPPED && k->drop_hop >= 0) {
			r->pos = (uint32_t)k->drop_hop;
			r->at = &k->p.hops[k->drop_hop].at;
			r->after = k->drop_hop > 0 ? &k->p.hops[k->drop_hop - 1].at : NULL;
			r->reason = k->reason;
		} else {
			r->pos = k->n_dest - 1;
			r->at = &k->p.hops[k->n_dest - 1].at;
		}
	}
	qsort(rec, m, sizeof(*rec), cmp_loss_rec);
	/* The place that lost the most; on a tie the earliest along the path. */
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && cmp_loss_rec(&rec[i], &rec[j]) == 0; j++) {
		}
		summarise_loss(&rec[i], j - i, reasons, &c);
		if (!best.first || c.count > best.count ||
		    (c.count == best.count && c.pos < best.pos)) {
			best = c;
		}
	}
	vd->at = *best.first->at;
	reason_label(ctx->strs, best.reason, vd->reason, sizeof(vd->reason));
	write_sentence(vd, &best, judged_dir, dirs[DT_DIR_REQUEST] && dirs[DT_DIR_REPLY]);
	free(rec);
	free(reasons);
	note_refrag(vd, pk, n_pk);
	return 0;
}

/* ------------------------------------------------------------------------------------ */

static void free_pkts(struct pkt *pk, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(pk[i].p.hops);
	}
	free(pk);
}

int dt_paths_build(const struct dt_paths_ctx *ctx, const struct dt_obs *obs, size_t n,
		   struct dt_report *r)
{
	struct item *v = NULL;
	struct pkt *pk = NULL;
	struct dt_packet_path *paths = NULL;
	struct dt_hop_stat *stats = NULL;
	struct dt_hop_row *rows = NULL;
	struct dt_copy_row *copy_rows = NULL;
	struct dt_verdict verdict;
	uint32_t n_stats = 0, n_rows = 0, n_copy_rows = 0;
	uint64_t colored = 0, delivered = 0;
	size_t i, j, m, n_pk = 0, built = 0, n_pairs = 0, n_listed;
	int err = -ENOMEM;

	if (n > 0) {
		v = malloc(n * sizeof(*v));
		if (!v) {
			return -ENOMEM;
		}
		for (i = 0; i < n; i++) {
			v[i].o = &obs[i];
			v[i].node = dt_strtab_get(ctx->strs, obs[i].node);
			v[i].ifname = dt_strtab_get(ctx->strs, obs[i].ifname);
		}
		qsort(v, n, sizeof(*v), cmp_item);
		for (i = 0; i < n; i++) {
			if (i == 0 || cmp_packet_key(v[i - 1].o, v[i].o) != 0) {
				n_pk++;
			}
		}
		pk = calloc(n_pk, sizeof(*pk));
		if (!pk) {
			goto out;
		}
	}

	for (i = 0; i < n; i = j) {
		struct pkt *k = &pk[built];
		size_t m;

		for (j = i + 1; j < n && cmp_packet_key(v[i].o, v[j].o) == 0; j++) {
		}
		m = trim_packet(&v[i], j - i);
		if (build_packet(ctx, &v[i], m, k) != 0) {
			goto out;
		}
		k->key = built++;
		for (m = 0; m < k->p.n_hops; m++) {
			if (is_first_hop(k->p.hops[m].at.hook)) {
				colored++;
				break;
			}
		}
		delivered += k->p.fate == DT_FATE_DELIVERED;
		n_pairs += k->p.n_hops - 1;
	}
	free(v);
	v = NULL;

	if (n_pk > 0) {
		qsort(pk, n_pk, sizeof(*pk), cmp_pkt_ts);
	}
	if ((err = aggregate_datagrams(pk, n_pk)) != 0) {
		goto out;
	}
	/* A datagram counts once, as its first fragment, with its datagram's fate. */
	colored = delivered = 0;
	for (i = 0; i < n_pk; i++) {
		if (pk[i].member) {
			continue;
		}
		delivered += pk[i].p.datagram_fate == DT_FATE_DELIVERED;
		for (m = 0; m < pk[i].p.n_hops; m++) {
			if (is_first_hop(pk[i].p.hops[m].at.hook)) {
				colored++;
				break;
			}
		}
	}
	if ((err = build_stats(pk, n_pk, n_pairs, &stats, &n_stats)) != 0 ||
	    (err = build_rows(ctx->strs, pk, n_pk, n_pairs + n_pk, &rows, &n_rows)) != 0 ||
	    (err = build_copy_rows(pk, n_pk, &copy_rows, &n_copy_rows)) != 0 ||
	    (err = build_verdict(ctx, pk, n_pk, &verdict)) != 0) {
		goto out;
	}
	err = -ENOMEM;
	n_listed = n_pk < DT_REPORT_MAX_PACKETS ? n_pk : DT_REPORT_MAX_PACKETS;
	if (n_listed > 0) {
		paths = calloc(n_listed, sizeof(*paths));
		if (!paths) {
			goto out;
		}
	}
	for (i = 0; i < n_listed; i++) {
		paths[i] = pk[i].p;
	}
	for (i = n_listed; i < n_pk; i++) {
		free(pk[i].p.hops);
	}
	free(pk);

	r->packets = paths;
	r->n_packets = n_listed;
	r->stats = stats;
	r->n_stats = n_stats;
	r->rows = rows;
	r->n_rows = n_rows;
	r->copy_rows = copy_rows;
	r->n_copy_rows = n_copy_rows;
	r->verdict = verdict;
	r->task.colored = colored;
	r->task.delivered = delivered;
	return 0;

out:
	free(v);
	free(stats);
	free(rows);
	free(copy_rows);
	if (pk) {
		free_pkts(pk, built);
	}
	return err;
}
