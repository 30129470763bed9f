// SPDX-License-Identifier: MIT
/*
 * paths_tables.c - per-hop tables of a report: latency statistics of hop pairs, the
 * per-hop loss table, and the copies table.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "paths_int.h"

/* One hop pair of one packet (a hop and its parent), before aggregation. */
struct pair {
	const struct dt_hop *from;
	const struct dt_hop *to;
	uint64_t from_place, to_place; /* their place keys (struct pkt) */
	uint64_t lat_ns;	       /* clamped at 0, see the top of the file */
	uint32_t pos;		       /* depth of the from hop in its packet's tree */
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
	uint64_t place;	 /* its place key (struct pkt) */
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

/* ------------------------------------------------------------------------------------ */
/* Latency statistics */

/* Groups equal (direction, branch, from, to) by their integer keys: no string compared. */
static int cmp_pair(const void *pa, const void *pb)
{
	const struct pair *a = pa;
	const struct pair *b = pb;

	CMP(a->dir, b->dir);
	CMP(a->branch, b->branch);
	CMP(a->from_place, b->from_place);
	CMP(a->to_place, b->to_place);
	return 0;
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
int dt_paths_stats(const struct pkt *pk, size_t n_pk, size_t n_pairs, struct dt_hop_stat **stats,
		   uint32_t *n_stats)
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
			pairs[np].from_place = pk[i].place[b->parent];
			pairs[np].to_place = pk[i].place[j];
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
uint64_t dt_paths_most_frequent(uint64_t *v, size_t n)
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
	CMP(a->place, b->place);
	return 0;
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

int dt_paths_rows(const struct dt_strtab *strs, const struct pkt *pk, size_t n_pk, size_t n_hops,
		  struct dt_hop_row **rows, uint32_t *n_rows)
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
			r->place = k->place[j];
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
		reason_label(strs, dt_paths_most_frequent(reasons, n_reasons), r->row.top_reason,
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
int dt_paths_copy_rows(const struct pkt *pk, size_t n_pk, struct dt_copy_row **rows,
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
