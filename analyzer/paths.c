// SPDX-License-Identifier: MIT
/*
 * paths.c - from observations to per-packet paths and per-hop latency statistics.
 *
 * The work is a handful of sorts, so building a report costs O(n log n) in the number of
 * observations:
 *
 *  1. Sort pointers to the observations by (packet identity, node, timestamp, hook rank,
 *     interface). Each packet is then a contiguous run, each of its nodes a contiguous
 *     sub-run already in timestamp order, and duplicate observations are adjacent.
 *  2. Per packet, cut each node's hops into visits, order the visits (see order_visits())
 *     and copy the hops out in that order. This step is quadratic in the hop count of one
 *     packet, which is bounded by DT_REPORT_MAX_HOPS (see below), so linear in n overall.
 *  3. Sort the packets by the timestamp of their first hop.
 *  4. Collect every pair of consecutive hops, sort the pairs by (from, to) and summarise
 *     each run; sort the summaries along the path by the mean position of the pair.
 *
 * Decisions worth knowing:
 *  - The unit that hand-offs chain is a visit: the hops of one node in timestamp order,
 *    cut before an entry hook (port-in, uplink-in) that follows an exit hook (uplink-out,
 *    port-out). A packet normally visits a node once; one that leaves through the uplink
 *    and comes back to the same node (hairpin through a gateway) visits it twice, and the
 *    hand-offs place the other nodes in between.
 *  - Packet identity is the tuple's fields (not its padding), the IPv4 id and the ident.
 *  - Duplicate observations (same node, interface, hook and timestamp) count once.
 *  - Inside a node, equal timestamps are ordered by hook rank: port-in, uplink-out,
 *    uplink-in, port-out.
 *  - A packet with more than DT_REPORT_MAX_HOPS distinct hops (in practice: several
 *    packets whose ids collide) keeps its DT_REPORT_MAX_HOPS earliest hops, so that every
 *    report can be encoded. Likewise at most DT_REPORT_MAX_PACKETS packets (the earliest)
 *    and DT_REPORT_MAX_STATS hop pairs (the first along the path) are listed; colored and
 *    delivered always count every packet.
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
#include <stdbool.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

/* Visits of one packet: at most one per hop. */
#define MAX_VISITS DT_REPORT_MAX_HOPS

/* One hop pair of one packet, before aggregation. */
struct pair {
	const struct dt_hop *from;
	const struct dt_hop *to;
	uint64_t lat_ns; /* clamped at 0, see the top of the file */
	uint32_t pos;	 /* index of the from hop in its packet's path */
};

/* A summary, with the key it is ordered by along the path. */
struct stat_pos {
	struct dt_hop_stat st;
	double pos;
};

/* A packet being built, with its rank in packet key order. */
struct pkt {
	struct dt_packet_path p;
	size_t key;
};

/* One visit of a packet to a node: the hops [start, end) of the packet's sorted run. */
struct visit {
	size_t start;
	size_t end;
	uint64_t min_ts;
	bool port_in;
	bool placed;
};

/* Ties between equal timestamps inside one node. */
static int hook_rank(unsigned int hook)
{
	switch (hook) {
	case DT_HOOK_PORT_IN:
		return 0;
	case DT_HOOK_UPLINK_OUT:
		return 1;
	case DT_HOOK_UPLINK_IN:
		return 2;
	case DT_HOOK_PORT_OUT:
		return 3;
	default:
		return 4;
	}
}

#define CMP(a, b)                                                                                  \
	do {                                                                                       \
		if ((a) != (b)) {                                                                  \
			return (a) < (b) ? -1 : 1;                                                 \
		}                                                                                  \
	} while (0)

static int cmp_packet_key(const struct dt_obs *a, const struct dt_obs *b)
{
	const struct dt_tuple *ta = &a->s.tuple;
	const struct dt_tuple *tb = &b->s.tuple;

	CMP(ta->saddr, tb->saddr);
	CMP(ta->daddr, tb->daddr);
	CMP(ta->sport, tb->sport);
	CMP(ta->dport, tb->dport);
	CMP(ta->proto, tb->proto);
	CMP(ta->vni, tb->vni);
	CMP(a->s.ip_id, b->s.ip_id);
	CMP(a->s.ident, b->s.ident);
	return 0;
}

static int cmp_name(const char *a, const char *b, size_t size)
{
	return strncmp(a, b, size);
}

/* Order of one packet's observations inside its run, without the packet key. */
static int cmp_in_packet(const struct dt_obs *a, const struct dt_obs *b)
{
	int c;

	c = cmp_name(a->node, b->node, sizeof(a->node));
	if (c != 0) {
		return c;
	}
	CMP(a->s.ts_ns, b->s.ts_ns);
	CMP(hook_rank(a->s.hook), hook_rank(b->s.hook));
	CMP(a->s.hook, b->s.hook);
	return cmp_name(a->ifname, b->ifname, sizeof(a->ifname));
}

static int cmp_obs(const void *pa, const void *pb)
{
	const struct dt_obs *a = *(const struct dt_obs *const *)pa;
	const struct dt_obs *b = *(const struct dt_obs *const *)pb;
	int c;

	c = cmp_packet_key(a, b);
	if (c != 0) {
		return c;
	}
	c = cmp_in_packet(a, b);
	if (c != 0) {
		return c;
	}
	/* Same place and time: a duplicate. Input order keeps qsort deterministic. */
	CMP((uintptr_t)a, (uintptr_t)b);
	return 0;
}

static int cmp_obs_ts(const void *pa, const void *pb)
{
	const struct dt_obs *a = *(const struct dt_obs *const *)pa;
	const struct dt_obs *b = *(const struct dt_obs *const *)pb;

	CMP(a->s.ts_ns, b->s.ts_ns);
	CMP(hook_rank(a->s.hook), hook_rank(b->s.hook));
	CMP((uintptr_t)a, (uintptr_t)b);
	return 0;
}

static int cmp_obs_in_packet(const void *pa, const void *pb)
{
	const struct dt_obs *a = *(const struct dt_obs *const *)pa;
	const struct dt_obs *b = *(const struct dt_obs *const *)pb;
	int c;

	c = cmp_in_packet(a, b);
	if (c != 0) {
		return c;
	}
	CMP((uintptr_t)a, (uintptr_t)b);
	return 0;
}

static bool same_place_and_time(const struct dt_obs *a, const struct dt_obs *b)
{
	return a->s.hook == b->s.hook && a->s.ts_ns == b->s.ts_ns &&
	       cmp_name(a->node, b->node, sizeof(a->node)) == 0 &&
	       cmp_name(a->ifname, b->ifname, sizeof(a->ifname)) == 0;
}

/*
 * Removes duplicates from one packet's sorted run v[0..n) in place, and cuts a run of more
 * than DT_REPORT_MAX_HOPS distinct hops down to its earliest ones. Returns the new length.
 */
static size_t trim_packet(const struct dt_obs **v, size_t n)
{
	size_t i, m = 0;

	for (i = 0; i < n; i++) {
		if (m > 0 && same_place_and_time(v[m - 1], v[i])) {
			continue;
		}
		v[m++] = v[i];
	}
	if (m > DT_REPORT_MAX_HOPS) {
		qsort(v, m, sizeof(*v), cmp_obs_ts);
		m = DT_REPORT_MAX_HOPS;
		qsort(v, m, sizeof(*v), cmp_obs_in_packet);
	}
	return m;
}

/* True when some uplink-out hop of visit a hands the packet to an uplink-in hop of b. */
static bool hands_off(const struct dt_obs **v, const struct visit *a, const struct visit *b)
{
	size_t i, j;

	for (i = a->start; i < a->end; i++) {
		if (v[i]->s.hook != DT_HOOK_UPLINK_OUT) {
			continue;
		}
		for (j = b->start; j < b->end; j++) {
			if (v[j]->s.hook == DT_HOOK_UPLINK_IN &&
			    v[j]->s.outer_saddr == v[i]->s.outer_saddr &&
			    v[j]->s.outer_daddr == v[i]->s.outer_daddr) {
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
 * Orders the visits of one packet: the visit with the port-in hop first (the earliest one
 * if several have it); then, repeatedly, a visit that a hand-off from the most recently
 * placed visit able to hand off reaches (the earliest if several); when no hand-off leads
 * further, the next unreached visit by next_unreached(). Writes the order to order[0..ng).
 */
static void order_visits(const struct dt_obs **v, struct visit *g, int ng, int *order)
{
	static_assert(MAX_VISITS <= 64, "the reach matrix lives on the stack");
	bool reach[MAX_VISITS][MAX_VISITS];
	int i, j, k, placed = 0, first = -1;

	for (i = 0; i < ng; i++) {
		for (j = 0; j < ng; j++) {
			reach[i][j] = i != j && hands_off(v, &g[i], &g[j]);
		}
		if (g[i].port_in && (first < 0 || g[i].min_ts < g[first].min_ts)) {
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

static bool is_entry(unsigned int hook)
{
	return hook == DT_HOOK_PORT_IN || hook == DT_HOOK_UPLINK_IN;
}

static bool is_exit(unsigned int hook)
{
	return hook == DT_HOOK_PORT_OUT || hook == DT_HOOK_UPLINK_OUT;
}

/*
 * Cuts the trimmed run v[0..n) into visits (see the top of the file). Returns how many.
 */
static int cut_visits(const struct dt_obs **v, size_t n, struct visit *g)
{
	bool exited = false;
	int ng = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned int hook = v[i]->s.hook;

		if (i == 0 || cmp_name(v[i]->node, v[i - 1]->node, sizeof(v[i]->node)) != 0 ||
		    (exited && is_entry(hook))) {
			g[ng].start = i;
			g[ng].min_ts = v[i]->s.ts_ns; /* runs are in timestamp order */
			g[ng].port_in = false;
			g[ng].placed = false;
			exited = false;
			ng++;
		}
		g[ng - 1].end = i + 1;
		if (hook == DT_HOOK_PORT_IN) {
			g[ng - 1].port_in = true;
		}
		if (is_exit(hook)) {
			exited = true;
		}
	}
	return ng;
}

static void copy_name(char *dst, const char *src, size_t size)
{
	memcpy(dst, src, size);
	dst[size - 1] = '\0';
}

/* Builds one packet from its trimmed run v[0..n), 1 <= n <= DT_REPORT_MAX_HOPS. */
static int build_packet(const struct dt_obs **v, size_t n, struct dt_packet_path *p)
{
	struct visit g[MAX_VISITS];
	int order[MAX_VISITS];
	int ng, k;
	size_t i, h = 0;

	ng = cut_visits(v, n, g);
	order_visits(v, g, ng, order);

	p->hops = calloc(n, sizeof(*p->hops));
	if (!p->hops) {
		return -ENOMEM;
	}
	for (k = 0; k < ng; k++) {
		const struct visit *vis = &g[order[k]];

		for (i = vis->start; i < vis->end; i++) {
			struct dt_hop *hop = &p->hops[h++];

			copy_name(hop->at.node, v[i]->node, sizeof(hop->at.node));
			copy_name(hop->at.ifname, v[i]->ifname, sizeof(hop->at.ifname));
			hop->at.hook = v[i]->s.hook;
			hop->ts_ns = v[i]->s.ts_ns;
		}
	}
	p->n_hops = n;
	p->ip_id = v[0]->s.ip_id;
	p->ident = v[0]->s.ident;
	p->len = v[g[order[0]].start]->s.len; /* as seen at the first hop */
	return 0;
}

static int cmp_packet_ts(const void *pa, const void *pb)
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

	c = cmp_name(a->node, b->node, sizeof(a->node));
	if (c != 0) {
		return c;
	}
	c = cmp_name(a->ifname, b->ifname, sizeof(a->ifname));
	if (c != 0) {
		return c;
	}
	CMP(a->hook, b->hook);
	return 0;
}

static int cmp_pair(const void *pa, const void *pb)
{
	const struct pair *a = pa;
	const struct pair *b = pb;
	int c;

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

	CMP(a->pos, b->pos);
	c = cmp_ref(&a->st.from, &b->st.from);
	if (c != 0) {
		return c;
	}
	return cmp_ref(&a->st.to, &b->st.to);
}

/* Summarises the sorted pairs p[0..n) with equal (from, to). */
static void summarise(const struct pair *p, size_t n, struct stat_pos *out)
{
	double mean = 0.0, m2 = 0.0, pos = 0.0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->st.from = p[0].from->at;
	out->st.to = p[0].to->at;
	out->st.min_ns = UINT64_MAX;
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
static int build_stats(const struct dt_packet_path *pk, size_t n_pk, size_t n_pairs,
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
		for (j = 1; j < pk[i].n_hops; j++) {
			const struct dt_hop *a = &pk[i].hops[j - 1];
			const struct dt_hop *b = &pk[i].hops[j];
			int64_t lat = (int64_t)(b->ts_ns - a->ts_ns);

			pairs[np].from = a;
			pairs[np].to = b;
			pairs[np].lat_ns = lat > 0 ? (uint64_t)lat : 0;
			pairs[np].pos = j - 1;
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

static void free_pkts(struct pkt *pk, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(pk[i].p.hops);
	}
	free(pk);
}

static bool has_hook(const struct dt_packet_path *p, unsigned int hook)
{
	uint32_t k;

	for (k = 0; k < p->n_hops; k++) {
		if (p->hops[k].at.hook == hook) {
			return true;
		}
	}
	return false;
}

int dt_paths_build(const struct dt_obs *obs, size_t n, struct dt_report *r)
{
	const struct dt_obs **v = NULL;
	struct pkt *pk = NULL;
	struct dt_packet_path *paths = NULL;
	struct dt_hop_stat *stats = NULL;
	uint32_t n_stats = 0;
	uint64_t colored = 0, delivered = 0;
	size_t i, j, n_pk = 0, built = 0, n_pairs = 0;
	int err = -ENOMEM;

	if (n > 0) {
		v = malloc(n * sizeof(*v));
		if (!v) {
			return -ENOMEM;
		}
		for (i = 0; i < n; i++) {
			v[i] = &obs[i];
		}
		qsort(v, n, sizeof(*v), cmp_obs);
		for (i = 0; i < n; i++) {
			if (i == 0 || cmp_packet_key(v[i - 1], v[i]) != 0) {
				n_pk++;
			}
		}
		pk = calloc(n_pk, sizeof(*pk));
		if (!pk) {
			goto out;
		}
	}

	for (i = 0; i < n; i = j) {
		struct pkt *p = &pk[built];
		size_t m;

		for (j = i + 1; j < n && cmp_packet_key(v[i], v[j]) == 0; j++) {
		}
		m = trim_packet(&v[i], j - i);
		if (build_packet(&v[i], m, &p->p) != 0) {
			goto out;
		}
		p->key = built++;
		colored += has_hook(&p->p, DT_HOOK_PORT_IN);
		delivered += has_hook(&p->p, DT_HOOK_PORT_OUT);
	}
	free(v);
	v = NULL;

	if (n_pk > 0) {
		qsort(pk, n_pk, sizeof(*pk), cmp_packet_ts);
	}
	if (n_pk > DT_REPORT_MAX_PACKETS) {
		for (i = DT_REPORT_MAX_PACKETS; i < n_pk; i++) {
			free(pk[i].p.hops);
		}
		built = n_pk = DT_REPORT_MAX_PACKETS;
	}
	if (n_pk > 0) {
		paths = calloc(n_pk, sizeof(*paths));
		if (!paths) {
			goto out;
		}
	}
	for (i = 0; i < n_pk; i++) {
		paths[i] = pk[i].p;
		n_pairs += pk[i].p.n_hops - 1;
	}
	err = build_stats(paths, n_pk, n_pairs, &stats, &n_stats);
	if (err != 0) {
		free(paths); /* the hops are still owned by pk */
		goto out;
	}
	free(pk);

	r->packets = paths;
	r->n_packets = n_pk;
	r->stats = stats;
	r->n_stats = n_stats;
	r->task.colored = colored;
	r->task.delivered = delivered;
	return 0;

out:
	free(v);
	if (pk) {
		free_pkts(pk, built);
	}
	return err;
}
