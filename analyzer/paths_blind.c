// SPDX-License-Identifier: MIT
/*
 * paths_blind.c - packets lost from sight where a node was not observing: unobserved, not
 * vanished.
 *
 * A node's agent reports the windows in which its data plane did not observe (struct
 * dt_gap: the agent stopped or crashed, its programs were detached), and in which it may
 * have lost what it observed. A packet that crossed the node then has no sample there
 * without any fault of the network. So a packet judged vanished after hop L is judged again:
 * when the node of its next hop had a window covering L's time, its fate is unobserved,
 * counted apart from the losses, and the window is listed in the report with the packets
 * it explains. A drop seen inside a window stays a drop: only vanished packets change.
 *
 * The next hop's node: L's own when L does not leave it (the packet was still on its way
 * through the node); after an uplink-out, the node whose uplink-in received that outer
 * destination address in this report (its underlay address, learned from the other
 * packets), else the node hosting the packet's destination, else the gateway of its VNI.
 * An exit (port-out, gw-out) has no next hop.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "paths_int.h"

/*
 * How far a window is stretched on each side: L's timestamp is on L's node's clock, the
 * window on the next node's, and the packet reaches that node a transit later. NTP keeps
 * one site's clocks within a few milliseconds and a hop takes well under one; 100 ms
 * covers both, and is short enough that a real loss rarely falls next to a window.
 */
#define BLIND_SLACK_NS 100000000ull

/* A node's windows, as ctx->gaps_of told them once a report. */
struct node_gaps {
	const struct dt_gap *g;
	uint32_t n;
	bool asked;
};

/* What judging needs: the nodes by underlay address, their windows, the windows found. */
struct blind_ctx {
	const struct dt_paths_ctx *ctx;
	struct dt_paths_index underlay; /* [outer address, 0, 0] */
	const char **owner;		/* per underlay key: the node that received on it */
	size_t n_owner;
	struct dt_paths_index found; /* [window's address, 0, 0]: the windows found */
	struct dt_blind *blind;	     /* per found window */
	size_t cap_blind;
	struct dt_paths_index named; /* [node name's address, 0, 0]: the nodes asked about */
	struct node_gaps *gaps;	     /* per node asked about: its windows */
	size_t cap_gaps;
};

/* Grows *v (of *cap elements of size bytes) to hold n; 0 or -ENOMEM. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t cap2 = *cap ? *cap : 8;
	void *p;

	if (n <= *cap) {
		return 0;
	}
	while (cap2 < n) {
		cap2 *= 2;
	}
	if (!(p = realloc(*v, cap2 * size))) {
		return -ENOMEM;
	}
	memset((char *)p + *cap * size, 0, (cap2 - *cap) * size);
	*v = p;
	*cap = cap2;
	return 0;
}

/* The number of outer address addr in the underlay index (added when new), or -ENOMEM. */
static long underlay_slot(struct blind_ctx *b, uint32_t addr)
{
	const uint64_t key[3] = {addr, 0, 0};
	long i = dt_paths_index_find(&b->underlay, key);

	if (i >= 0 && grow((void **)&b->owner, &b->n_owner, (size_t)i + 1, sizeof(*b->owner))) {
		return -ENOMEM;
	}
	return i;
}

/* Learns which node received on which underlay address from every uplink-in hop. */
static int learn_underlay(struct blind_ctx *b, const struct pkt *pk, size_t n_pk)
{
	for (size_t i = 0; i < n_pk; i++) {
		for (uint32_t j = 0; j < pk[i].p.n_hops; j++) {
			const struct hop *h = &pk[i].h[j];
			long s;

			if (h->o->hook != DT_HOOK_UPLINK_IN || h->o->outer_daddr == 0) {
				continue;
			}
			if ((s = underlay_slot(b, h->o->outer_daddr)) < 0) {
				return -ENOMEM;
			}
			if (!b->owner[s]) {
				b->owner[s] = h->at->node;
			}
		}
	}
	return 0;
}

/* The node of the hop after last (see the top of this file), or NULL; -ENOMEM in *err. */
static const char *next_node(struct blind_ctx *b, const struct hop *last, uint32_t vni, int *err)
{
	const struct dt_obs *o = last->o;
	const struct dt_paths_ctx *ctx = b->ctx;
	const char *node = NULL;
	long s;

	if (is_last_hop(o->hook)) {
		return NULL;
	}
	if (o->hook != DT_HOOK_UPLINK_OUT) {
		return last->at->node;
	}
	if (o->outer_daddr != 0) {
		if ((s = underlay_slot(b, o->outer_daddr)) < 0) {
			*err = -ENOMEM;
			return NULL;
		}
		node = b->owner[s];
	}
	if (!node && ctx->host_of) {
		node = ctx->host_of(ctx->host_arg, vni, o->tuple.daddr);
		node = node ? node : ctx->host_of(ctx->host_arg, vni, 0);
	}
	return node;
}

/* True when gap g, stretched by BLIND_SLACK_NS, covers ts. */
static bool covers(const struct dt_gap *g, uint64_t ts)
{
	return ts + BLIND_SLACK_NS >= g->from_ns &&
	       (ts < BLIND_SLACK_NS || ts - BLIND_SLACK_NS <= g->to_ns);
}

/*
 * The window of node covering ts (the earliest), or NULL; -ENOMEM in *err. Names are the
 * report's own strings (its places, the hosts table's), one address each: the nodes' windows
 * are asked for once a report by that address.
 */
static const struct dt_gap *window_of(struct blind_ctx *b, const char *node, uint64_t ts, int *err)
{
	const uint64_t key[3] = {(uint64_t)(uintptr_t)node, 0, 0};
	struct node_gaps *ng;
	long i;

	if (!node) {
		return NULL;
	}
	i = dt_paths_index_find(&b->named, key);
	if (i < 0 || grow((void **)&b->gaps, &b->cap_gaps, (size_t)i + 1, sizeof(*b->gaps))) {
		*err = -ENOMEM;
		return NULL;
	}
	ng = &b->gaps[i];
	if (!ng->asked) {
		ng->g = b->ctx->gaps_of(b->ctx->host_arg, node, &ng->n);
		ng->asked = true;
	}
	for (uint32_t j = 0; ng->g && j < ng->n; j++) {
		if (covers(&ng->g[j], ts)) {
			return &ng->g[j];
		}
	}
	return NULL;
}

/* The window that hid the hop after k's hop pos, with its node in *node; NULL when none
 * did. -ENOMEM in *err. */
static const struct dt_gap *hidden_after(struct blind_ctx *b, const struct pkt *k, uint32_t pos,
					 const char **node, int *err)
{
	const struct hop *last = &k->h[pos];

	*node = next_node(b, last, k->p.tuple.vni, err);
	return *err ? NULL : window_of(b, *node, last->o->ts_ns, err);
}

/* Counts one packet in window g of node; 0 or -ENOMEM. */
static int count_in(struct blind_ctx *b, const struct dt_gap *g, const char *node)
{
	const uint64_t key[3] = {(uint64_t)(uintptr_t)g, 0, 0};
	long i = dt_paths_index_find(&b->found, key);
	struct dt_blind *w;

	if (i < 0 || grow((void **)&b->blind, &b->cap_blind, (size_t)i + 1, sizeof(*b->blind))) {
		return -ENOMEM;
	}
	w = &b->blind[i];
	if (w->packets++ == 0) {
		copy_str(w->node, node, sizeof(w->node));
		w->gap = *g;
	}
	return 0;
}

/* Judges packet k again; 0 or -ENOMEM. */
static int judge_one(struct blind_ctx *b, struct pkt *k)
{
	const struct pkt *l = k->lost ? k->lost : k;
	const char *node;
	int err = 0;

	if (k->p.fate == DT_FATE_VANISHED && hidden_after(b, k, k->n_dest - 1, &node, &err)) {
		k->p.fate = DT_FATE_UNOBSERVED;
	}
	/*
	 * Its datagram's fate, judged where the verdict looks: the piece whose loss decides it
	 * (k->lost), else the packet counted on its own. A member (another fragment or segment)
	 * without such a piece is judged by its head's own last hop, which it does not know:
	 * it keeps its fate. Only the packet counted (not a member) counts in the window.
	 */
	if (!err && k->p.datagram_fate == DT_FATE_VANISHED && (!k->member || k->lost)) {
		uint32_t pos = l->lost_hop >= 0 ? (uint32_t)l->lost_hop : l->n_dest - 1;
		const struct dt_gap *g = hidden_after(b, l, pos, &node, &err);

		if (g && (k->member || (err = count_in(b, g, node)) == 0)) {
			k->p.datagram_fate = DT_FATE_UNOBSERVED;
		}
	}
	return err;
}

static int cmp_blind(const void *pa, const void *pb)
{
	const struct dt_blind *a = pa;
	const struct dt_blind *b = pb;
	int c = strncmp(a->node, b->node, sizeof(a->node));

	if (c != 0) {
		return c;
	}
	CMP(a->gap.from_ns, b->gap.from_ns);
	CMP(a->gap.to_ns, b->gap.to_ns);
	return 0;
}

/* True when some packet of pk[0..n_pk) is vanished: only then is there work. */
static bool any_vanished(const struct pkt *pk, size_t n_pk)
{
	for (size_t i = 0; i < n_pk; i++) {
		if (pk[i].p.fate == DT_FATE_VANISHED || pk[i].p.datagram_fate == DT_FATE_VANISHED) {
			return true;
		}
	}
	return false;
}

int dt_paths_judge_blind(const struct dt_paths_ctx *ctx, struct pkt *pk, size_t n_pk,
			 struct dt_blind **blind, uint32_t *n_blind)
{
	struct blind_ctx b = {.ctx = ctx};
	size_t n = 0;
	int err = 0;

	*blind = NULL;
	*n_blind = 0;
	if (!ctx->gaps_of || !any_vanished(pk, n_pk)) {
		return 0;
	}
	err = learn_underlay(&b, pk, n_pk);
	for (size_t i = 0; i < n_pk && err == 0; i++) {
		err = judge_one(&b, &pk[i]);
	}
	n = b.found.n;
	dt_paths_index_free(&b.underlay);
	dt_paths_index_free(&b.found);
	dt_paths_index_free(&b.named);
	free(b.owner);
	free(b.gaps);
	if (err != 0) {
		free(b.blind);
		return err;
	}
	if (n > 0) {
		qsort(b.blind, n, sizeof(*b.blind), cmp_blind);
	}
	*blind = b.blind;
	*n_blind = (uint32_t)(n < DT_REPORT_MAX_BLIND ? n : DT_REPORT_MAX_BLIND);
	return 0;
}

/* "2026-12-07T20:41:02.123Z" */
static void utc_str(uint64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000ull);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ns / 1000000ull % 1000));
}

void dt_paths_note_blind(struct dt_verdict *vd, const struct dt_blind *blind, uint32_t n_blind)
{
	const struct dt_blind *w = NULL;
	char from[40], to[40], lost[64] = "";
	size_t off = strlen(vd->sentence), len = sizeof(vd->sentence);

	for (uint32_t i = 0; i < n_blind; i++) {
		w = !w || blind[i].packets > w->packets ? &blind[i] : w;
	}
	if (!w || vd->unobserved == 0 || off >= len) {
		return;
	}
	utc_str(w->gap.from_ns, from, sizeof(from));
	utc_str(w->gap.to_ns, to, sizeof(to));
	if (w->gap.flags & DT_GAP_F_LOST_UNKNOWN) {
		snprintf(lost, sizeof(lost), ", samples lost: how many is not known");
	} else if (w->gap.lost > 0) {
		snprintf(lost, sizeof(lost), ", %" PRIu64 " samples lost", w->gap.lost);
	}
	off += (size_t)snprintf(vd->sentence + off, len - off,
				"; %" PRIu64
				" packet%s unobserved at %.*s (%s between %s and %s%s)",
				w->packets, w->packets == 1 ? "" : "s", DT_NAME_MAX, w->node,
				dt_gap_cause_words(w->gap.cause), from, to, lost);
	if (vd->unobserved > w->packets && off < len) {
		snprintf(vd->sentence + off, len - off, ", %" PRIu64 " more elsewhere",
			 vd->unobserved - w->packets);
	}
}
