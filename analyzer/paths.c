// SPDX-License-Identifier: MIT
/*
 * paths.c - from observations to per-packet paths, fates, the per-hop loss table, the
 * verdict and per-hop latency statistics.
 *
 * Building a report is linear in the number of observations n, but for sorting the
 * packets by time and the lost packets for the verdict:
 *
 *  1. Group the observations by packet with a hash of their identity (paths_group.c), each
 *     packet a contiguous run of items (an observation with its names resolved and its
 *     place in a place table named once a report); sort each run (a handful of hops) by
 *     (node, timestamp, hook rank, interface): each node a contiguous sub-run already in
 *     timestamp order, and duplicate observations adjacent.
 *  2. Per packet, cut each node's hops into visits, order the visits (see order_visits())
 *     and keep the hops in that order as references to their observations (struct hop);
 *     judge the packet's fate. This step is quadratic in the hop count of one packet, which
 *     is bounded by DT_REPORT_MAX_HOPS (see below), so linear in n overall.
 *  3. Sort the packets by the timestamp of their first hop.
 *  4. Summarise every pair of consecutive hops into its (direction, branch, from, to) as it
 *     comes (an index of keys, no sort); sort the summaries by direction, then along the
 *     path by the mean position of the pair.
 *  5. Likewise every hop of a destination branch into its (direction, place): a row of the
 *     loss table; sort the rows like the summaries.
 *  6. Collect every lost packet with where it was lost, sort by (direction, kind, place)
 *     and pick the place that lost the most: the verdict.
 *  7. Only when the caller lists packets (not ctx->no_packets): copy each listed packet's
 *     hops, with their packet prefixes and names, into the report's struct dt_hop. On a
 *     machine where a page fault is costly, this copy is most of a report's cost.
 *
 * Steps 2, 3 and 7 are here; the tree of step 2 is in paths_tree.c, the judgement of datagrams
 * (fragments) in paths_datagram.c and paths_segment.c (segments), of packets lost from sight
 * where a node was not observing in paths_blind.c, steps 4 and 5 in paths_tables.c, step 6 in
 * paths_verdict.c. paths_int.h is what they share.
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

/* The report's hop for h: the observation's prefix and names, copied. */
static void fill_hop(struct dt_hop *hop, const struct hop *h, const struct dt_paths_ctx *ctx)
{
	const struct dt_strtab *strs = ctx->strs;
	const struct dt_obs *o = h->o;

	hop->at = *h->at;
	hop->ts_ns = o->ts_ns;
	hop->tuple = o->tuple;
	if (ctx->prefixes) {
		hop->cap_link = o->cap_link;
		hop->cap_len = o->cap_len;
		if (o->cap_len) {
			memcpy(hop->cap, dt_prefix_of(ctx->prefixes, o), o->cap_len);
		}
	}
	hop->parent = h->parent;
	hop->branch = h->branch;
	hop->copy_end = h->copy_end;
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
 * decides (see paths.h). The hops go to h[0..n), their places to place[0..n).
 */
static void build_packet(const struct dt_paths_ctx *ctx, const struct item *v, size_t n,
			 struct hop *h, uint64_t *place, struct pkt *k)
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

	k->h = h;
	k->place = place;
	young = (ctx->now_ms < newest_ms + ctx->window_ms) ||
		(ctx->now_ns < newest_ns + ctx->window_ms * 1000000ull) || ctx->n_held_restored > 0;
	for (i = 0; i < (int)n; i++) {
		newidx[order[i]] = i;
	}
	for (i = 0; i < (int)n; i++) {
		int x = order[i];
		struct hop *hop = &h[i];

		hop->o = v[x].o;
		hop->at = v[x].at;
		hop->copy_end = DT_COPY_NONE;
		place[i] = dt_paths_place_key(v[x].o);
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
	/* Later hooks capture the outer frame. */
	k->hdrs = k->head && ctx->prefixes
			  ? dt_paths_l4_headers(v[root].o, dt_prefix_of(ctx->prefixes, v[root].o))
			  : 0;
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
}

static int cmp_pkt_ts(const void *pa, const void *pb)
{
	const struct pkt *a = pa;
	const struct pkt *b = pb;

	CMP(a->h[0].o->ts_ns, b->h[0].o->ts_ns);
	/* Then the order of first observation, so that the result does not depend on qsort. */
	CMP(a->key, b->key);
	return 0;
}

/*
 * True when pk[0..n_pk) is in cmp_pkt_ts() order already: packets are numbered in the
 * order of their first observation, which is mostly the order of their first hops (agents
 * send as they sample), and a sort of the large packet records would move them all.
 */
static bool pkts_in_order(const struct pkt *pk, size_t n_pk)
{
	for (size_t i = 1; i < n_pk; i++) {
		if (cmp_pkt_ts(&pk[i - 1], &pk[i]) > 0) {
			return false;
		}
	}
	return true;
}

/* True when a hop of packet k colored it (port-in, gw-in). */
static bool colored_packet(const struct pkt *k)
{
	for (uint32_t m = 0; m < k->p.n_hops; m++) {
		if (is_first_hop(k->h[m].o->hook)) {
			return true;
		}
	}
	return false;
}

/*
 * The report's hops of packet k: its prefix and names copied. One small allocation a
 * packet: they come from the heap and reuse its pages, where one arena for all hops would
 * be fresh pages, each faulted in, at every report.
 */
static int list_hops(const struct dt_paths_ctx *ctx, struct pkt *k)
{
	k->p.hops = calloc(k->p.n_hops, sizeof(*k->p.hops));
	if (!k->p.hops) {
		return -ENOMEM;
	}
	for (uint32_t j = 0; j < k->p.n_hops; j++) {
		fill_hop(&k->p.hops[j], &k->h[j], ctx);
	}
	return 0;
}

/* The packets a report lists: the first DT_REPORT_MAX_PACKETS of pk[0..n_pk), with their
 * hops, into *paths (NULL when there are none). 0 or -ENOMEM (then nothing is kept). */
static int list_packets(const struct dt_paths_ctx *ctx, struct pkt *pk, size_t n_pk,
			struct dt_packet_path **paths, size_t *n_listed)
{
	size_t i, n = n_pk < DT_REPORT_MAX_PACKETS ? n_pk : DT_REPORT_MAX_PACKETS;

	*paths = NULL;
	*n_listed = 0;
	if (n == 0) {
		return 0;
	}
	*paths = calloc(n, sizeof(**paths));
	if (!*paths) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		if (list_hops(ctx, &pk[i]) != 0) {
			while (i-- > 0) {
				free(pk[i].p.hops);
			}
			free(*paths);
			*paths = NULL;
			return -ENOMEM;
		}
		(*paths)[i] = pk[i].p;
	}
	*n_listed = n;
	return 0;
}

/* Groups obs[0..n) into packets and builds each into pk[0..*n_pk) (malloc'd), their hops
 * in hops[0..n) and places[0..n), named in pl. 0 or -ENOMEM (then nothing is kept). */
static int build_packets(const struct dt_paths_ctx *ctx, const struct dt_obs *obs, size_t n,
			 struct hop *hops, uint64_t *places, struct dt_paths_places *pl,
			 struct pkt **pkp, size_t *n_pk)
{
	struct item *v = malloc(n * sizeof(*v));
	size_t *starts = NULL;
	struct pkt *pk = NULL;
	size_t i;

	*pkp = NULL;
	if (!v || dt_paths_group(ctx->strs, obs, n, v, &starts, n_pk, pl) != 0) {
		free(v);
		return -ENOMEM;
	}
	pk = calloc(*n_pk ? *n_pk : 1, sizeof(*pk));
	if (!pk) {
		free(pl->refs);
		free(starts);
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < *n_pk; i++) {
		size_t at = starts[i];
		size_t m = dt_paths_trim_packet(&v[at], starts[i + 1] - at);

		build_packet(ctx, &v[at], m, &hops[at], &places[at], &pk[i]);
		pk[i].key = i;
	}
	free(starts);
	free(v);
	*pkp = pk;
	return 0;
}

int dt_paths_build(const struct dt_paths_ctx *ctx, const struct dt_obs *obs, size_t n,
		   struct dt_report *r)
{
	struct dt_paths_places pl = {0};
	struct pkt *pk = NULL;
	struct hop *hops = NULL; /* every packet's hops, at its run's offset */
	uint64_t *places = NULL; /* every hop's place (dt_paths_place_key()), likewise */
	struct dt_packet_path *paths = NULL;
	struct dt_hop_stat *stats = NULL;
	struct dt_hop_row *rows = NULL;
	struct dt_copy_row *copy_rows = NULL;
	struct dt_blind *blind = NULL;
	struct dt_verdict verdict;
	uint32_t n_stats = 0, n_rows = 0, n_copy_rows = 0, n_blind = 0;
	uint64_t colored = 0, delivered = 0;
	size_t i, n_pk = 0, n_pairs = 0, n_listed = 0;
	int err = -ENOMEM;

	if (n > 0) {
		hops = malloc(n * sizeof(*hops));
		places = malloc(n * sizeof(*places));
		if (!hops || !places ||
		    build_packets(ctx, obs, n, hops, places, &pl, &pk, &n_pk) != 0) {
			free(hops);
			free(places);
			return -ENOMEM;
		}
	}
	for (i = 0; i < n_pk; i++) {
		n_pairs += pk[i].p.n_hops - 1;
	}
	if (!pkts_in_order(pk, n_pk)) {
		qsort(pk, n_pk, sizeof(*pk), cmp_pkt_ts);
	}
	if ((err = dt_paths_judge_datagrams(pk, n_pk)) != 0 ||
	    (err = dt_paths_judge_segments(pk, n_pk)) != 0 ||
	    (err = dt_paths_judge_blind(ctx, pk, n_pk, &blind, &n_blind)) != 0) {
		goto out;
	}
	/* A datagram counts once, as its first fragment, with its datagram's fate. */
	for (i = 0; i < n_pk; i++) {
		if (pk[i].member) {
			continue;
		}
		delivered += pk[i].p.datagram_fate == DT_FATE_DELIVERED;
		colored += colored_packet(&pk[i]);
	}
	if ((err = dt_paths_stats(pk, n_pk, n_pairs, &stats, &n_stats)) != 0 ||
	    (err = dt_paths_rows(ctx->strs, pk, n_pk, n_pairs + n_pk, &rows, &n_rows)) != 0 ||
	    (err = dt_paths_copy_rows(ctx->strs, pk, n_pk, &copy_rows, &n_copy_rows)) != 0 ||
	    (err = dt_paths_verdict(ctx, pk, n_pk, &verdict)) != 0) {
		goto out;
	}
	dt_paths_note_blind(&verdict, blind, n_blind);
	if (!ctx->no_packets && (err = list_packets(ctx, pk, n_pk, &paths, &n_listed)) != 0) {
		goto out;
	}
	free(pk);
	free(hops);
	free(places);
	free(pl.refs);

	r->packets = paths;
	r->n_packets = (uint32_t)n_listed;
	r->stats = stats;
	r->n_stats = n_stats;
	r->rows = rows;
	r->n_rows = n_rows;
	r->copy_rows = copy_rows;
	r->n_copy_rows = n_copy_rows;
	r->verdict = verdict;
	r->blind = blind;
	r->n_blind = n_blind;
	r->task.colored = colored;
	r->task.delivered = delivered;
	return 0;

out:
	free(blind);
	free(stats);
	free(rows);
	free(copy_rows);
	free(pk);
	free(hops);
	free(places);
	free(pl.refs);
	return err;
}
