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

/* Visits of one packet: at most one per hop. */
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
	int drop_hop;	 /* index of the fatal drop hop in p.hops, or -1 */
	uint64_t reason; /* the fatal drop's reason key (see REASON_*) */
};

/* One hop pair of one packet, before aggregation. */
struct pair {
	const struct dt_hop *from;
	const struct dt_hop *to;
	uint64_t lat_ns; /* clamped at 0, see the top of the file */
	uint32_t pos;	 /* index of the from hop in its packet's path */
	uint8_t dir;
};

/* A summary, with the key it is ordered by. */
struct stat_pos {
	struct dt_hop_stat st;
	double pos;
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

/* True when hop b receives what hop a sent to the underlay. */
static bool receives(const struct dt_obs *a, const struct dt_obs *b)
{
	bool in = b->hook == DT_HOOK_UPLINK_IN ||
		  (b->hook == DT_HOOK_DROP && (b->flags & DT_SAMPLE_F_ENCAP));

	return in && b->outer_saddr == a->outer_saddr && b->outer_daddr == a->outer_daddr;
}

/* True when some uplink-out hop of visit a hands the packet to a hop of b. */
static bool hands_off(const struct item *v, const struct visit *a, const struct visit *b)
{
	size_t i, j;

	for (i = a->start; i < a->end; i++) {
		if (v[i].o->hook != DT_HOOK_UPLINK_OUT) {
			continue;
		}
		for (j = b->start; j < b->end; j++) {
			if (receives(v[i].o, v[j].o)) {
				return true;
			}
		}
	}
	return false;
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
 * Orders the visits of one packet: the visit with a first hop (port-in, gw-in) first (the
 * earliest one if several have it); then, repeatedly, a visit that a hand-off from the
 * most recently placed visit able to hand off reaches (the earliest if several); when no
 * hand-off leads further, the next unreached visit by next_unreached(). Writes the order
 * to order[0..ng).
 */
static void order_visits(const struct item *v, struct visit *g, int ng, int *order)
{
	static_assert(MAX_VISITS <= 64, "the reach matrix lives on the stack");
	bool reach[MAX_VISITS][MAX_VISITS];
	int i, j, k, placed = 0, first = -1;

	for (i = 0; i < ng; i++) {
		for (j = 0; j < ng; j++) {
			reach[i][j] = i != j && hands_off(v, &g[i], &g[j]);
		}
		if (g[i].first_hop && (first < 0 || g[i].min_ts < g[first].min_ts)) {
			first = i;
		}
	}
	if (first < 0) {
		first = next_unreached(g, ng, reach);
	}
	g[first].placed = true;
	order[placed++] = first;

	while (placed < ng) {
		int next = -1;

		for (k = placed - 1; k >= 0 && next < 0; k--) {
			int from = order[k];

			for (j = 0; j < ng; j++) {
				if (!g[j].placed && reach[from][j] &&
				    (next < 0 || g[j].min_ts < g[next].min_ts)) {
					next = j;
				}
			}
		}
		if (next < 0) {
			next = next_unreached(g, ng, reach);
		}
		g[next].placed = true;
		order[placed++] = next;
	}
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
 * Judges a built packet (see paths.h): fate, drop hop and drop fields. young: the packet
 * was seen within the window.
 */
static void judge(const struct dt_strtab *strs, struct pkt *k, const struct dt_obs *drop,
		  int drop_hop, bool young)
{
	struct dt_packet_path *p = &k->p;
	bool exit_seen = false;
	uint32_t i;

	for (i = 0; i < p->n_hops; i++) {
		exit_seen = exit_seen || is_last_hop(p->hops[i].at.hook);
	}
	k->drop_hop = -1;
	k->reason = REASON_NONE;
	if (drop && (drop_hop == (int)p->n_hops - 1 || !exit_seen)) {
		p->fate = DT_FATE_DROPPED;
		k->drop_hop = drop_hop;
		k->reason = reason_key(drop);
		p->drop_reason = drop->drop_reason;
		copy_str(p->drop_name, dt_strtab_get(strs, drop->drop_name), sizeof(p->drop_name));
		copy_str(p->drop_where, dt_strtab_get(strs, drop->drop_where),
			 sizeof(p->drop_where));
	} else if (exit_seen) {
		p->fate = DT_FATE_DELIVERED;
	} else if (young) {
		p->fate = DT_FATE_IN_FLIGHT;
	} else {
		p->fate = DT_FATE_VANISHED;
	}
}

/* Builds and judges one packet from its trimmed run v[0..n), 1 <= n <= DT_REPORT_MAX_HOPS. */
static int build_packet(const struct dt_paths_ctx *ctx, const struct item *v, size_t n,
			struct pkt *k)
{
	struct dt_packet_path *p = &k->p;
	const struct dt_obs *drop = NULL;
	uint64_t newest_ms = 0, newest_ns = 0;
	struct visit g[MAX_VISITS];
	int order[MAX_VISITS];
	int ng, j, drop_hop = -1;
	size_t i, h = 0;
	bool young;

	ng = cut_visits(v, n, g);
	order_visits(v, g, ng, order);

	p->hops = calloc(n, sizeof(*p->hops));
	if (!p->hops) {
		return -ENOMEM;
	}
	for (j = 0; j < ng; j++) {
		const struct visit *vis = &g[order[j]];

		for (i = vis->start; i < vis->end; i++) {
			const struct dt_obs *o = v[i].o;
			struct dt_hop *hop = &p->hops[h];

			copy_str(hop->at.node, v[i].node, sizeof(hop->at.node));
			copy_str(hop->at.ifname, v[i].ifname, sizeof(hop->at.ifname));
			hop->at.hook = o->hook;
			hop->ts_ns = o->ts_ns;
			hop->tuple = o->tuple;
			hop->cap_link = o->cap_link;
			hop->cap_len = o->cap_len;
			memcpy(hop->cap, o->cap, o->cap_len);
			if (o->hook == DT_HOOK_DROP) {
				drop = o; /* the last one in path order is the fatal one */
				drop_hop = (int)h;
			}
			if (o->arrival_ms > newest_ms) {
				newest_ms = o->arrival_ms;
			}
			if (o->ts_ns > newest_ns) {
				newest_ns = o->ts_ns;
			}
			h++;
		}
	}
	p->n_hops = n;
	p->ip_id = v[0].o->ip_id;
	p->ident = v[0].o->ident;
	p->len = v[g[order[0]].start].o->len; /* as seen at the first hop */
	p->direction = v[0].o->dir;
	p->tuple = v[0].o->canon;

	young = (ctx->now_ms < newest_ms + ctx->window_ms) ||
		(ctx->now_ns < newest_ns + ctx->window_ms * 1000000ull) || ctx->n_held_restored > 0;
	judge(ctx->strs, k, drop, drop_hop, young);
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

/* Fills *stats / *n_stats from the packets' consecutive hops. */
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
			const struct dt_hop *a = &p->hops[j - 1];
			const struct dt_hop *b = &p->hops[j];
			int64_t lat = (int64_t)(b->ts_ns - a->ts_ns);

			pairs[np].from = a;
			pairs[np].to = b;
			pairs[np].lat_ns = lat > 0 ? (uint64_t)lat : 0;
			pairs[np].pos = j - 1;
			pairs[np].dir = p->direction;
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

		for (j = 0; j < k->p.n_hops; j++) {
			struct hop_rec *r = &rec[m++];

			r->at = &k->p.hops[j].at;
			r->dir = k->p.direction;
			r->pos = j;
			r->reason = REASON_NONE;
			r->dropped = (int)j == k->drop_hop || dropped_right_after(k, j);
			if (r->dropped) {
				r->reason = k->reason;
			}
			r->vanished = k->p.fate == DT_FATE_VANISHED && j + 1 == k->p.n_hops;
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
		snprintf(s + off, len - off, "; %" PRIu64 " in flight", vd->in_flight);
	}
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

		dirs[p->direction < DT_DIR_MAX ? p->direction : 0] = true;
		switch (p->fate) {
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
			snprintf(vd->sentence + off, sizeof(vd->sentence) - (size_t)off,
				 "; %" PRIu64 " in flight", vd->in_flight);
		}
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

		if (k->p.fate != DT_FATE_DROPPED && k->p.fate != DT_FATE_VANISHED) {
			continue;
		}
		r = &rec[m++];
		r->dir = k->p.direction;
		r->kind = k->p.fate;
		r->reason = REASON_NONE;
		if (k->p.fate == DT_FATE_DROPPED) {
			r->pos = (uint32_t)k->drop_hop;
			r->at = &k->p.hops[k->drop_hop].at;
			r->after = k->drop_hop > 0 ? &k->p.hops[k->drop_hop - 1].at : NULL;
			r->reason = k->reason;
		} else {
			r->pos = k->p.n_hops - 1;
			r->at = &k->p.hops[k->p.n_hops - 1].at;
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
	struct dt_verdict verdict;
	uint32_t n_stats = 0, n_rows = 0;
	uint64_t colored = 0, delivered = 0;
	size_t i, j, n_pk = 0, built = 0, n_pairs = 0, n_listed;
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
	if ((err = build_stats(pk, n_pk, n_pairs, &stats, &n_stats)) != 0 ||
	    (err = build_rows(ctx->strs, pk, n_pk, n_pairs + n_pk, &rows, &n_rows)) != 0 ||
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
	r->verdict = verdict;
	r->task.colored = colored;
	r->task.delivered = delivered;
	return 0;

out:
	free(v);
	free(stats);
	free(rows);
	if (pk) {
		free_pkts(pk, built);
	}
	return err;
}
