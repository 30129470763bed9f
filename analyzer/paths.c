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
 * Steps 1 to 3 are here; the tree of step 2 is in paths_tree.c, the judgement of datagrams
 * (fragments) in paths_datagram.c and paths_segment.c (segments), steps 4 and 5 in paths_tables.c,
 * step 6 in paths_verdict.c. paths_int.h is what they share.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "paths_int.h"

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

static enum leaf_end leaf_end(const struct dt_paths_ctx *ctx, const struct item *it, uint32_t vni)
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
	if (entry[l] != root && dt_paths_from_underlay(in->o) && in_host &&
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

/* A hop's place (node, interface, hook) as one integer: names are interned, so equal
 * places have equal keys (DT_STRTAB_NONE reads as "", which index 0 is). */
static uint64_t place_key(const struct dt_obs *o)
{
	uint64_t node = o->node == DT_STRTAB_NONE ? 0 : o->node;
	uint64_t ifname = o->ifname == DT_STRTAB_NONE ? 0 : o->ifname;

	return node << 40 | ifname << 8 | o->hook;
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
 * the tree of its hops (dt_paths_hop_parents()), the destination branch (the leaf of the best
 * leaf_rank(); the deepest on a tie, then the earliest), the hops in dt_paths_dfs_order(), so that
 * the destination branch is hops[0 .. n_dest), and the fate, which that branch alone
 * decides (see paths.h). The hops' places go to place[0..n).
 */
static int build_packet(const struct dt_paths_ctx *ctx, const struct item *v, size_t n,
			uint64_t *place, struct pkt *k)
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

	root = dt_paths_hop_parents(v, n, parent, entry);
	for (i = 0; i < (int)n; i++) {
		if ((v[i].o->flags & DT_SAMPLE_F_REFRAG) && v[i].o->len > k->refrag_len) {
			k->refrag_len = v[i].o->len;
		}
		depth[i] = dt_paths_hop_depth(parent, i);
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
	dt_paths_dfs_order(v, n, parent, on_dest, root, order);

	/* One small allocation a packet: they come from the heap and reuse its pages, where one
	 * arena for all hops would be fresh pages, each faulted in, at every report. */
	p->hops = calloc(n, sizeof(*p->hops));
	if (!p->hops) {
		return -ENOMEM;
	}
	k->place = place;
	young = (ctx->now_ms < newest_ms + ctx->window_ms) ||
		(ctx->now_ns < newest_ns + ctx->window_ms * 1000000ull) || ctx->n_held_restored > 0;
	for (i = 0; i < (int)n; i++) {
		newidx[order[i]] = i;
	}
	for (i = 0; i < (int)n; i++) {
		int x = order[i];
		struct dt_hop *hop = &p->hops[i];

		fill_hop(hop, &v[x], ctx->strs);
		place[i] = place_key(v[x].o);
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
	k->lost_hop = -1;
	k->head = is_first_hop(v[root].o->hook);
	k->exit_len = end[best] == END_DELIVERED ? d->len : 0;
	k->hdrs = k->head ? dt_paths_l4_headers(v[root].o)
			  : 0; /* later hooks capture the outer frame */
	k->reason = REASON_NONE;
	if (end[best] == END_DELIVERED) {
		p->fate = DT_FATE_DELIVERED;
	} else if (d->hook == DT_HOOK_DROP && (!young || rank[best] >= 3)) {
		p->fate = DT_FATE_DROPPED;
		k->drop_hop = (int)k->n_dest - 1;
		k->reason = reason_key(d);
		p->drop_reason = d->drop_reason;
		copy_str(p->drop_name, dt_strtab_get(ctx->strs, d->drop_name),
			 sizeof(p->drop_name));
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

static int cmp_pkt_ts(const void *pa, const void *pb)
{
	const struct pkt *a = pa;
	const struct pkt *b = pb;

	CMP(a->p.hops[0].ts_ns, b->p.hops[0].ts_ns);
	/* Then packet key order, so that the result does not depend on qsort. */
	CMP(a->key, b->key);
	return 0;
}

int dt_paths_build(const struct dt_paths_ctx *ctx, const struct dt_obs *obs, size_t n,
		   struct dt_report *r)
{
	struct item *v = NULL;
	struct pkt *pk = NULL;
	uint64_t *places = NULL; /* every hop's place (place_key()), at its run's offset */
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
		places = malloc(n * sizeof(*places));
		if (!pk || !places) {
			goto out;
		}
	}

	for (i = 0; i < n; i = j) {
		struct pkt *k = &pk[built];
		size_t m;

		for (j = i + 1; j < n && cmp_packet_key(v[i].o, v[j].o) == 0; j++) {
		}
		m = trim_packet(&v[i], j - i);
		if (build_packet(ctx, &v[i], m, &places[i], k) != 0) {
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
	if ((err = dt_paths_judge_datagrams(pk, n_pk)) != 0 ||
	    (err = dt_paths_judge_segments(pk, n_pk)) != 0) {
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
	if ((err = dt_paths_stats(pk, n_pk, n_pairs, &stats, &n_stats)) != 0 ||
	    (err = dt_paths_rows(ctx->strs, pk, n_pk, n_pairs + n_pk, &rows, &n_rows)) != 0 ||
	    (err = dt_paths_copy_rows(pk, n_pk, &copy_rows, &n_copy_rows)) != 0 ||
	    (err = dt_paths_verdict(ctx, pk, n_pk, &verdict)) != 0) {
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
	free(places);

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
	for (i = 0; pk && i < built; i++) {
		free(pk[i].p.hops);
	}
	free(pk);
	free(places);
	return err;
}
