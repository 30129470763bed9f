// SPDX-License-Identifier: MIT
/*
 * paths_tables.c - per-hop tables of a report: latency statistics of hop pairs, the
 * per-hop loss table, and the copies table.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "paths_int.h"

/* A summary, with the key it is ordered by. */
struct stat_pos {
	struct dt_hop_stat st;
	double pos; /* the sum of the from hops' depths, then their mean */
	double m2;  /* Welford's sum of squared differences */
	uint8_t dir;
};

/* The ends of copy branches at one place, with one end and drop reason, for the copies
 * table: at is the first of them. */
struct copy_rec {
	const struct hop *at;
	const char *drop_name; /* its drop reason's name, "" without */
	uint8_t dir;
	size_t count;
};

struct row_pos {
	struct dt_hop_row row;
	double pos;
};

/* ------------------------------------------------------------------------------------ */
/* Latency statistics */

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

/* Adds the latency of hop pair (from, to) at depth pos to its summary (Welford). */
static void add_pair(struct stat_pos *sp, const struct hop *from, const struct hop *to, uint8_t dir,
		     uint32_t pos)
{
	int64_t lat = (int64_t)(to->o->ts_ns - from->o->ts_ns);
	double x = lat > 0 ? (double)lat : 0.0, d;
	uint64_t v = lat > 0 ? (uint64_t)lat : 0;

	if (sp->st.count++ == 0) {
		sp->st.from = *from->at;
		sp->st.to = *to->at;
		sp->st.min_ns = UINT64_MAX;
		sp->st.branch = to->branch;
		sp->st.direction = dir;
		sp->dir = dir;
	}
	d = x - sp->st.mean_ns;
	sp->st.mean_ns += d / (double)sp->st.count;
	sp->m2 += d * (x - sp->st.mean_ns);
	sp->pos += pos;
	sp->st.min_ns = v < sp->st.min_ns ? v : sp->st.min_ns;
	sp->st.max_ns = v > sp->st.max_ns ? v : sp->st.max_ns;
}

/* Grows *v of *cap elements of size to hold element i, zeroing the new ones. */
static int grow_to(void **v, size_t *cap, size_t size, size_t i)
{
	size_t cap2 = *cap ? *cap : 16;
	void *p;

	if (i < *cap) {
		return 0;
	}
	while (cap2 <= i) {
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

/* The depth of hop j in packet k's tree. */
static uint32_t tree_depth(const struct pkt *k, uint32_t j)
{
	uint32_t d = 0;

	while (k->h[j].parent != DT_HOP_ROOT) {
		j = k->h[j].parent;
		d++;
	}
	return d;
}

/*
 * Fills *stats / *n_stats from every hop and the hop it followed, per branch kind. The
 * pairs are grouped by (direction, branch, from place, to place) with an index, in the
 * order they come, and summarised as they come: no array of pairs, no sort of them.
 */
int dt_paths_stats(const struct pkt *pk, size_t n_pk, size_t n_pairs, struct dt_hop_stat **stats,
		   uint32_t *n_stats)
{
	struct dt_paths_index ix = {0};
	struct stat_pos *sp = NULL;
	struct dt_hop_stat *out = NULL;
	size_t i, j, ns, cap = 0;
	int err = -ENOMEM;

	*stats = NULL;
	*n_stats = 0;
	if (n_pairs == 0) {
		return 0;
	}
	for (i = 0; i < n_pk; i++) {
		const struct pkt *k = &pk[i];

		for (j = 1; j < k->p.n_hops; j++) {
			const struct hop *b = &k->h[j];
			uint64_t key[3] = {(uint64_t)k->p.direction << 8 | b->branch,
					   k->place[b->parent], k->place[j]};
			long g = dt_paths_index_find(&ix, key);

			if (g < 0 || grow_to((void **)&sp, &cap, sizeof(*sp), (size_t)g) != 0) {
				goto out;
			}
			add_pair(&sp[g], &k->h[b->parent], b, k->p.direction,
				 tree_depth(k, b->parent));
		}
	}
	ns = ix.n;
	for (i = 0; i < ns; i++) {
		double n = (double)sp[i].st.count;

		sp[i].st.stddev_ns = sp[i].m2 > 0.0 ? sqrt(sp[i].m2 / n) : 0.0;
		sp[i].pos /= n;
	}
	qsort(sp, ns, sizeof(*sp), cmp_stat_pos);
	if (ns > DT_REPORT_MAX_STATS) {
		ns = DT_REPORT_MAX_STATS;
	}
	out = calloc(ns ? ns : 1, sizeof(*out));
	if (!out) {
		goto out;
	}
	for (i = 0; i < ns; i++) {
		out[i] = sp[i].st;
	}
	*stats = out;
	*n_stats = (uint32_t)ns;
	err = 0;
out:
	free(sp);
	dt_paths_index_free(&ix);
	return err;
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

/* A drop reason counted on a row (number g of the rows' index). */
struct row_reason {
	uint64_t g;
	uint64_t reason;
};

static int cmp_row_reason(const void *pa, const void *pb)
{
	const struct row_reason *a = pa;
	const struct row_reason *b = pb;

	CMP(a->g, b->g);
	CMP(a->reason, b->reason);
	return 0;
}

/* Each row's most frequent reason (the smallest on a tie) from v[0..n), as its label. */
static void label_reasons(const struct dt_strtab *strs, struct row_reason *v, size_t n,
			  struct row_pos *rp)
{
	size_t i, j, k;

	if (n == 0) {
		return;
	}
	qsort(v, n, sizeof(*v), cmp_row_reason);
	for (i = 0; i < n; i = j) {
		uint64_t best = REASON_NONE;
		size_t best_n = 0;

		for (j = i; j < n && v[j].g == v[i].g; j = k) {
			for (k = j + 1; k < n && v[k].g == v[i].g && v[k].reason == v[j].reason;
			     k++) {
			}
			if (k - j > best_n) {
				best = v[j].reason;
				best_n = k - j;
			}
		}
		reason_label(strs, best, rp[v[i].g].row.top_reason,
			     sizeof(rp[v[i].g].row.top_reason));
	}
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
	const struct hop *h = k->h;

	return k->drop_hop >= 1 && j + 1 == (uint32_t)k->drop_hop &&
	       strncmp(h[j].at->node, h[j + 1].at->node, sizeof(h[j].at->node)) == 0;
}

/*
 * The loss table: every hop of every packet's destination branch, grouped by (direction,
 * place) with an index as they come (no array of hops, no sort of them), summarised into
 * a row each; the rows sorted along the path.
 */
int dt_paths_rows(const struct dt_strtab *strs, const struct pkt *pk, size_t n_pk, size_t n_hops,
		  struct dt_hop_row **rows, uint32_t *n_rows)
{
	struct dt_paths_index ix = {0};
	struct row_pos *rp = NULL;
	struct dt_hop_row *out = NULL;
	struct row_reason *reasons = NULL;
	size_t i, j, nr, cap = 0, n_reasons = 0, cap_reasons = 0;
	int err = -ENOMEM;

	*rows = NULL;
	*n_rows = 0;
	if (n_hops == 0) {
		return 0;
	}
	for (i = 0; i < n_pk; i++) {
		const struct pkt *k = &pk[i];

		for (j = 0; j < k->n_dest; j++) {
			uint64_t key[3] = {k->p.direction, k->place[j], 0};
			long g = dt_paths_index_find(&ix, key);
			bool dropped = (int)j == k->drop_hop || dropped_right_after(k, j);
			struct row_pos *r;

			if (g < 0 || grow_to((void **)&rp, &cap, sizeof(*rp), (size_t)g) != 0) {
				goto out;
			}
			r = &rp[g];
			if (r->row.seen++ == 0) {
				r->row.at = *k->h[j].at;
				r->row.direction = k->p.direction;
			}
			r->row.dropped += dropped;
			r->row.vanished += k->p.fate == DT_FATE_VANISHED && j + 1 == k->n_dest;
			r->pos += j;
			if (dropped && k->reason != REASON_NONE) {
				if (grow_to((void **)&reasons, &cap_reasons, sizeof(*reasons),
					    n_reasons) != 0) {
					goto out;
				}
				reasons[n_reasons].g = (uint64_t)g;
				reasons[n_reasons++].reason = k->reason;
			}
		}
	}
	nr = ix.n;
	for (i = 0; i < nr; i++) {
		rp[i].pos /= (double)rp[i].row.seen;
	}
	label_reasons(strs, reasons, n_reasons, rp);
	qsort(rp, nr, sizeof(*rp), cmp_row_pos);
	if (nr > DT_REPORT_MAX_ROWS) {
		nr = DT_REPORT_MAX_ROWS;
	}
	out = calloc(nr ? nr : 1, sizeof(*out));
	if (!out) {
		goto out;
	}
	for (i = 0; i < nr; i++) {
		out[i] = rp[i].row;
	}
	*rows = out;
	*n_rows = (uint32_t)nr;
	err = 0;
out:
	dt_paths_index_free(&ix);
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
	c = cmp_ref(a->at->at, b->at->at);
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
	c = strcmp(a->drop_name, b->drop_name);
	if (c != 0) {
		return c;
	}
	CMP(drop_reason_of(a->at->o), drop_reason_of(b->at->o));
	return 0;
}

/* The name of a copy's drop reason as an operator reads it ("" without a drop). */
static void copy_reason(const struct copy_rec *c, char *buf, size_t len)
{
	uint32_t reason = drop_reason_of(c->at->o);

	if (!c->drop_name[0] && !reason) {
		buf[0] = '\0';
	} else if (c->drop_name[0]) {
		copy_str(buf, c->drop_name, len);
	} else {
		snprintf(buf, len, "%" PRIu32, reason);
	}
}

/* Where the copy branches of the packets ended, counted by place and end, with their most
 * frequent drop reason (the first by name on a tie). */
int dt_paths_copy_rows(const struct dt_strtab *strs, const struct pkt *pk, size_t n_pk,
		       struct dt_copy_row **rows, uint32_t *n_rows)
{
	struct dt_paths_index ix = {0};
	struct copy_rec *rec = NULL;
	struct dt_copy_row *out = NULL;
	size_t i, j, m, cap = 0, total = 0, nr = 0;

	*rows = NULL;
	*n_rows = 0;
	for (i = 0; i < n_pk; i++) {
		total += pk[i].p.n_copies;
	}
	if (total == 0) {
		return 0;
	}
	out = calloc(total < DT_REPORT_MAX_COPY_ROWS ? total : DT_REPORT_MAX_COPY_ROWS,
		     sizeof(*out));
	if (!out) {
		return -ENOMEM;
	}
	/* Grouped by an index, not sorted: the groups are few, the copies many. */
	for (i = 0; i < n_pk; i++) {
		for (j = 0; j < pk[i].p.n_hops; j++) {
			const struct hop *h = &pk[i].h[j];
			uint64_t name =
				h->o->hook == DT_HOOK_DROP && h->o->drop_name != DT_STRTAB_NONE
					? h->o->drop_name
					: 0; /* NONE and 0 both read as "" */
			uint64_t key[3] = {(uint64_t)h->copy_end << 8 | pk[i].p.direction,
					   pk[i].place[j], name << 32 | drop_reason_of(h->o)};
			long g;

			if (h->copy_end == DT_COPY_NONE) {
				continue;
			}
			if ((g = dt_paths_index_find(&ix, key)) < 0 ||
			    grow_to((void **)&rec, &cap, sizeof(*rec), (size_t)g) != 0) {
				dt_paths_index_free(&ix);
				free(rec);
				free(out);
				return -ENOMEM;
			}
			if (rec[g].count++ == 0) {
				rec[g].at = h;
				rec[g].drop_name = drop_name_of(strs, h->o);
				rec[g].dir = pk[i].p.direction;
			}
		}
	}
	m = ix.n;
	dt_paths_index_free(&ix);
	qsort(rec, m, sizeof(*rec), cmp_copy_rec_reason);
	for (i = 0; i < m && nr < DT_REPORT_MAX_COPY_ROWS; i = j) {
		struct dt_copy_row *r = &out[nr++];
		size_t best = i, best_n = 0, count = 0;

		for (j = i; j < m && cmp_copy_rec(&rec[i], &rec[j]) == 0; j++) {
			count += rec[j].count;
			if (rec[j].count > best_n) {
				best = j;
				best_n = rec[j].count;
			}
		}
		r->at = *rec[i].at->at;
		r->direction = rec[i].dir;
		r->end = rec[i].at->copy_end;
		r->count = count;
		copy_reason(&rec[best], r->reason, sizeof(r->reason));
	}
	free(rec);
	*rows = out;
	*n_rows = (uint32_t)nr;
	return 0;
}
