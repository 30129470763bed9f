// SPDX-License-Identifier: MIT
/*
 * paths_tree.c - the tree of one packet's hops: visits, hand-offs between nodes, orphans
 * (see paths.c for the rules).
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include "paths_int.h"

/* One visit of a packet to a node: the hops [start, end) of the packet's sorted run. */
struct visit {
	size_t start;
	size_t end;
	uint64_t min_ts;
	bool first_hop;
	bool placed;
};

/* True when hop o saw the packet as it came from the underlay (it carries outer addresses). */
bool dt_paths_from_underlay(const struct dt_obs *o)
{
	return o->hook == DT_HOOK_UPLINK_IN ||
	       (o->hook == DT_HOOK_DROP && (o->flags & DT_SAMPLE_F_ENCAP));
}

/* True when hop b receives what hop a sent to the underlay. */
static bool receives(const struct dt_obs *a, const struct dt_obs *b)
{
	return dt_paths_from_underlay(b) && b->outer_saddr == a->outer_saddr &&
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
static size_t orphan_parent(const struct item *v, const struct visit *g, int ng, int b, int root)
{
	const struct dt_obs *in = v[g[b].start].o;
	int sender = -1, before = -1, via = -1, i;
	bool outer = dt_paths_from_underlay(in) && in->outer_saddr != 0;
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
		return (d->o->flags & DT_SAMPLE_F_ENCAP) &&
		       o->o->outer_saddr == d->o->outer_saddr &&
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
int dt_paths_hop_parents(const struct item *v, size_t n, int *parent, int *entry)
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

/* The depth of hop i in the tree parent[] (the root's is 0). */
int dt_paths_hop_depth(const int *parent, int i)
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
void dt_paths_dfs_order(const struct item *v, size_t n, const int *parent, const bool *on_dest,
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
					       : v[c].o->ts_ns != v[p].o->ts_ns
						       ? v[c].o->ts_ns < v[p].o->ts_ns
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
