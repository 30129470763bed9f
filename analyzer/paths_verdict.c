// SPDX-License-Identifier: MIT
/*
 * paths_verdict.c - the verdict: the place that lost the most packets, its reason, and
 * the findings (destinations no node reported, refragmentation).
 */
#include <errno.h>
#include <stdlib.h>

#include "paths_int.h"

/* One lost packet, for the verdict. */
struct loss_rec {
	const struct dt_hop_ref *at;	/* the drop hop, or the last hop seen */
	const struct dt_hop_ref *after; /* the hop before the drop, or NULL */
	uint64_t reason;
	uint32_t pos;
	uint8_t dir;
	uint8_t kind; /* DT_FATE_DROPPED or DT_FATE_VANISHED */
};

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
	c->reason = dt_paths_most_frequent(reasons, n);
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
			 "branches)",
			 vd->dest_unknown);
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
		off += (size_t)snprintf(s + off, len - off, "; %" PRIu64 " in flight",
					vd->in_flight);
	}
	note_dest_unknown(vd, off);
}

int dt_paths_verdict(const struct dt_paths_ctx *ctx, const struct pkt *pk, size_t n_pk,
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
		case DT_FATE_UNOBSERVED:
			vd->unobserved++; /* judged, not lost: paths_blind.c names where */
			break;
		default:
			vd->in_flight++;
			continue;
		}
		judged_dir[p->direction < DT_DIR_MAX ? p->direction : 0]++;
		vd->dest_unknown += !p->dest_known;
	}
	vd->judged = vd->delivered + vd->dropped + vd->vanished + vd->unobserved;
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
			r->at = k->h[k->drop_hop].at;
			r->after = k->drop_hop > 0 ? k->h[k->drop_hop - 1].at : NULL;
			r->reason = k->reason;
		} else {
			r->pos = k->lost_hop >= 0 ? (uint32_t)k->lost_hop : k->n_dest - 1;
			r->at = k->h[r->pos].at;
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
