/* SPDX-License-Identifier: MIT */
/*
 * dt_report.c - DT_MSG_REPORT, a task's report: its packets with their hops (a tree), the
 * latency statistics, the loss and copies tables and the verdict. The model is in
 * dt_report.h, the layout in proto/README.md; how a message is encoded and decoded is in
 * dt_wire.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dt_codec_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void put_double(struct dt_enc *e, double v)
{
	if (!isfinite(v)) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_double(&e->pk, v));
	}
}

/* node, ifname, hook (3 fields, inline): a hop place; hook 0 only when none_ok */
static void put_place(struct dt_enc *e, const struct dt_hop_ref *r, bool none_ok)
{
	dt_put_str(e, r->node, sizeof(r->node));
	dt_put_str(e, r->ifname, sizeof(r->ifname));
	dt_put_hook(e, r->hook, none_ok);
}

/* [node, ifname, hook]: a hop place in an array of its own */
static void put_hop_ref(struct dt_enc *e, const struct dt_hop_ref *r, bool none_ok)
{
	dt_put_array(e, N_HOP_REF);
	put_place(e, r, none_ok);
}

/* [node, ifname, hook, ts_ns, saddr, daddr, sport, dport, cap_link, cap, parent, branch,
 * copy_end, drop_reason, drop_name, drop_where]: proto and vni are the packet's */
static void put_hop(struct dt_enc *e, const struct dt_hop *h, uint32_t index)
{
	dt_put_array(e, N_HOP);
	put_place(e, &h->at, false);
	dt_put_uint(e, h->ts_ns);
	dt_put_addrs(e, &h->tuple);
	dt_put_cap(e, h->cap_link, h->cap_len, h->cap);
	if (index == 0) {
		if (h->parent != DT_HOP_ROOT) {
			dt_put_fail(e, DT_PROTO_ERANGE); /* the root, and only it, has no parent */
		}
		dt_put_uint(e, DT_HOP_ROOT);
	} else {
		dt_put_below(e, h->parent, index);
	}
	dt_put_below(e, h->branch, DT_BRANCH_MAX);
	dt_put_below(e, h->copy_end, DT_COPY_MAX);
	dt_put_uint(e, h->drop_reason);
	dt_put_str(e, h->drop_name, sizeof(h->drop_name));
	dt_put_str(e, h->drop_where, sizeof(h->drop_where));
	dt_put_below(e, h->refrag, 2);
}

/* [ip_id, ident, len, direction, fate, tuple, drop_reason, drop_name, drop_where, [hop...]] */
static void put_packet(struct dt_enc *e, const struct dt_packet_path *p)
{
	uint32_t i;

	dt_put_array(e, N_PACKET);
	dt_put_uint(e, p->ip_id);
	dt_put_uint(e, p->ident);
	dt_put_uint(e, p->len);
	dt_put_below(e, p->direction, DT_DIR_MAX);
	dt_put_below(e, p->fate, DT_FATE_MAX);
	dt_put_tuple(e, &p->tuple);
	dt_put_uint(e, p->drop_reason);
	dt_put_str(e, p->drop_name, sizeof(p->drop_name));
	dt_put_str(e, p->drop_where, sizeof(p->drop_where));
	if (dt_put_list(e, p->n_hops, DT_REPORT_MAX_HOPS, p->hops)) {
		for (i = 0; i < p->n_hops && e->err == 0; i++) {
			put_hop(e, &p->hops[i], i);
		}
	}
	dt_put_below(e, p->dest_known, 2);
	dt_put_uint(e, p->n_copies);
	dt_put_max(e, p->frag, DT_FRAG_MF | DT_FRAG_OFFSET);
	dt_put_below(e, p->datagram_fate, DT_FATE_MAX);
}

/* [[from...], [to...], count, min_ns, max_ns, mean_ns, stddev_ns] */
static void put_stat(struct dt_enc *e, const struct dt_hop_stat *s)
{
	dt_put_array(e, N_STAT);
	put_hop_ref(e, &s->from, false);
	put_hop_ref(e, &s->to, false);
	dt_put_uint(e, s->count);
	dt_put_uint(e, s->min_ns);
	dt_put_uint(e, s->max_ns);
	put_double(e, s->mean_ns);
	put_double(e, s->stddev_ns);
	dt_put_below(e, s->branch, DT_BRANCH_MAX);
	dt_put_below(e, s->direction, DT_DIR_MAX);
}

/* [[node, ifname, hook], direction, end, count, reason] */
static void put_copy_row(struct dt_enc *e, const struct dt_copy_row *c)
{
	dt_put_array(e, N_COPY_ROW);
	put_hop_ref(e, &c->at, false);
	dt_put_below(e, c->direction, DT_DIR_MAX);
	if (c->end == DT_COPY_NONE) {
		dt_put_below(e, c->end, 0); /* out of range: a copy row says how the copies ended */
	} else {
		dt_put_below(e, c->end, DT_COPY_MAX);
	}
	dt_put_uint(e, c->count);
	dt_put_str(e, c->reason, sizeof(c->reason));
}

/* [[node, ifname, hook], direction, seen, dropped, vanished, top_reason] */
static void put_row(struct dt_enc *e, const struct dt_hop_row *r)
{
	dt_put_array(e, N_ROW);
	put_hop_ref(e, &r->at, false);
	dt_put_below(e, r->direction, DT_DIR_MAX);
	dt_put_uint(e, r->seen);
	dt_put_uint(e, r->dropped);
	dt_put_uint(e, r->vanished);
	dt_put_str(e, r->top_reason, sizeof(r->top_reason));
}

/* [judged, delivered, dropped, vanished, in_flight, [node, ifname, hook], reason, sentence,
 *  dest_unknown, unobserved] */
static void put_verdict(struct dt_enc *e, const struct dt_verdict *v)
{
	dt_put_array(e, N_VERDICT);
	dt_put_uint(e, v->judged);
	dt_put_uint(e, v->delivered);
	dt_put_uint(e, v->dropped);
	dt_put_uint(e, v->vanished);
	dt_put_uint(e, v->in_flight);
	put_hop_ref(e, &v->at, true);
	dt_put_str(e, v->reason, sizeof(v->reason));
	dt_put_str(e, v->sentence, sizeof(v->sentence));
	dt_put_uint(e, v->dest_unknown);
	dt_put_uint(e, v->unobserved);
}

/* [node, [from_ns, to_ns, cause, flags, lost], packets] */
static void put_blind(struct dt_enc *e, const struct dt_blind *b)
{
	dt_put_array(e, N_BLIND);
	dt_put_str(e, b->node, sizeof(b->node));
	dt_put_gap(e, &b->gap);
	if (b->packets == 0) {
		dt_put_fail(e,
			    DT_PROTO_ERANGE); /* a window is listed for the packets it explains */
	}
	dt_put_uint(e, b->packets);
}

int dt_report_encode(msgpack_sbuffer *out, const struct dt_report *r)
{
	struct dt_enc e;
	uint32_t i;

	dt_enc_begin(&e, out, DT_MSG_REPORT, N_REPORT);
	dt_put_task_record(&e, &r->task);
	if (dt_put_list(&e, r->n_packets, DT_REPORT_MAX_PACKETS, r->packets)) {
		for (i = 0; i < r->n_packets && e.err == 0; i++) {
			put_packet(&e, &r->packets[i]);
		}
	}
	if (dt_put_list(&e, r->n_stats, DT_REPORT_MAX_STATS, r->stats)) {
		for (i = 0; i < r->n_stats && e.err == 0; i++) {
			put_stat(&e, &r->stats[i]);
		}
	}
	dt_put_lost(&e, r->lost);
	if (dt_put_list(&e, r->n_rows, DT_REPORT_MAX_ROWS, r->rows)) {
		for (i = 0; i < r->n_rows && e.err == 0; i++) {
			put_row(&e, &r->rows[i]);
		}
	}
	put_verdict(&e, &r->verdict);
	dt_put_uint(&e, r->unmatched);
	dt_put_uint(&e, r->window_ms);
	if (dt_put_list(&e, r->n_copy_rows, DT_REPORT_MAX_COPY_ROWS, r->copy_rows)) {
		for (i = 0; i < r->n_copy_rows && e.err == 0; i++) {
			put_copy_row(&e, &r->copy_rows[i]);
		}
	}
	if (dt_put_list(&e, r->n_blind, DT_REPORT_MAX_BLIND, r->blind)) {
		for (i = 0; i < r->n_blind && e.err == 0; i++) {
			put_blind(&e, &r->blind[i]);
		}
	}
	return dt_enc_end(&e);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* A float of either width; integers are accepted too. Must be finite. */
static double get_double(struct dt_dec *d, const msgpack_object *o)
{
	double v;

	if (d->err != 0) {
		return 0;
	}
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		v = o->via.f64;
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		v = (double)o->via.u64;
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		v = (double)o->via.i64;
		break;
	default:
		dt_get_fail(d, DT_PROTO_ETYPE);
		return 0;
	}
	if (!isfinite(v)) {
		dt_get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return v;
}

/* node, ifname, hook (3 fields, inline): a hop place; hook 0 only when none_ok */
static void get_place(struct dt_dec *d, const msgpack_object *f, struct dt_hop_ref *r, bool none_ok)
{
	if (d->err != 0) {
		return;
	}
	dt_get_str(d, &f[0], r->node, sizeof(r->node));
	dt_get_str(d, &f[1], r->ifname, sizeof(r->ifname));
	r->hook = dt_get_hook(d, &f[2], none_ok);
}

/* [node, ifname, hook]: a hop place in an array of its own */
static void get_hop_ref(struct dt_dec *d, const msgpack_object *o, struct dt_hop_ref *r,
			bool none_ok)
{
	get_place(d, dt_get_record(d, o, N_HOP_REF), r, none_ok);
}

/* Hop index of a packet; proto and vni come from the packet's tuple. */
static void get_hop(struct dt_dec *d, const msgpack_object *o, const struct dt_tuple *packet,
		    uint32_t index, struct dt_hop *h)
{
	const msgpack_object *f = dt_get_record(d, o, N_HOP);

	if (f == NULL) {
		return;
	}
	get_place(d, &f[0], &h->at, false);
	h->ts_ns = dt_get_uint(d, &f[3], UINT64_MAX);
	dt_get_addrs(d, &f[4], &h->tuple);
	h->tuple.proto = packet->proto;
	h->tuple.vni = packet->vni;
	dt_get_cap(d, &f[8], &h->cap_link, &h->cap_len, h->cap);
	if (index == 0) {
		/* the root, and only the root, has no parent */
		h->parent = dt_get_uint(d, &f[10], DT_HOP_ROOT);
		if (d->err == 0 && h->parent != DT_HOP_ROOT) {
			dt_get_fail(d, DT_PROTO_ERANGE);
		}
	} else {
		h->parent = dt_get_below(d, &f[10], index);
	}
	h->branch = dt_get_below(d, &f[11], DT_BRANCH_MAX);
	h->copy_end = dt_get_below(d, &f[12], DT_COPY_MAX);
	h->drop_reason = dt_get_uint(d, &f[13], UINT32_MAX);
	dt_get_str(d, &f[14], h->drop_name, sizeof(h->drop_name));
	dt_get_str(d, &f[15], h->drop_where, sizeof(h->drop_where));
	h->refrag = dt_get_below(d, &f[16], 2);
}

static void get_packet(struct dt_dec *d, const msgpack_object *o, struct dt_packet_path *p)
{
	const msgpack_object *f = dt_get_record(d, o, N_PACKET);
	const msgpack_object *hops;
	uint32_t i;

	if (f == NULL) {
		return;
	}
	p->ip_id = dt_get_uint(d, &f[0], UINT16_MAX);
	p->ident = dt_get_uint(d, &f[1], UINT32_MAX);
	p->len = dt_get_uint(d, &f[2], UINT32_MAX);
	p->direction = dt_get_below(d, &f[3], DT_DIR_MAX);
	p->fate = dt_get_below(d, &f[4], DT_FATE_MAX);
	dt_get_tuple(d, &f[5], &p->tuple);
	p->drop_reason = dt_get_uint(d, &f[11], UINT32_MAX);
	dt_get_str(d, &f[12], p->drop_name, sizeof(p->drop_name));
	dt_get_str(d, &f[13], p->drop_where, sizeof(p->drop_where));
	hops = dt_get_list(d, &f[14], DT_REPORT_MAX_HOPS, &p->n_hops);
	p->hops = dt_get_mem(d, p->n_hops, sizeof(*p->hops));
	for (i = 0; i < p->n_hops && d->err == 0; i++) {
		get_hop(d, &hops[i], &p->tuple, i, &p->hops[i]);
	}
	p->dest_known = dt_get_below(d, &f[15], 2);
	p->n_copies = dt_get_uint(d, &f[16], UINT32_MAX);
	p->frag = dt_get_uint(d, &f[17], DT_FRAG_MF | DT_FRAG_OFFSET);
	p->datagram_fate = dt_get_below(d, &f[18], DT_FATE_MAX);
}

static void get_stat(struct dt_dec *d, const msgpack_object *o, struct dt_hop_stat *s)
{
	const msgpack_object *f = dt_get_record(d, o, N_STAT);

	if (f == NULL) {
		return;
	}
	get_hop_ref(d, &f[0], &s->from, false);
	get_hop_ref(d, &f[1], &s->to, false);
	s->count = dt_get_uint(d, &f[2], UINT64_MAX);
	s->min_ns = dt_get_uint(d, &f[3], UINT64_MAX);
	s->max_ns = dt_get_uint(d, &f[4], UINT64_MAX);
	s->mean_ns = get_double(d, &f[5]);
	s->stddev_ns = get_double(d, &f[6]);
	s->branch = dt_get_below(d, &f[7], DT_BRANCH_MAX);
	s->direction = dt_get_below(d, &f[8], DT_DIR_MAX);
}

static void get_copy_row(struct dt_dec *d, const msgpack_object *o, struct dt_copy_row *c)
{
	const msgpack_object *f = dt_get_record(d, o, N_COPY_ROW);

	if (f == NULL) {
		return;
	}
	get_hop_ref(d, &f[0], &c->at, false);
	c->direction = dt_get_below(d, &f[1], DT_DIR_MAX);
	c->end = dt_get_below(d, &f[2], DT_COPY_MAX);
	if (d->err == 0 && c->end == DT_COPY_NONE) {
		dt_get_fail(d, DT_PROTO_ERANGE);
	}
	c->count = dt_get_uint(d, &f[3], UINT64_MAX);
	dt_get_str(d, &f[4], c->reason, sizeof(c->reason));
}

static void get_row(struct dt_dec *d, const msgpack_object *o, struct dt_hop_row *r)
{
	const msgpack_object *f = dt_get_record(d, o, N_ROW);

	if (f == NULL) {
		return;
	}
	get_hop_ref(d, &f[0], &r->at, false);
	r->direction = dt_get_below(d, &f[1], DT_DIR_MAX);
	r->seen = dt_get_uint(d, &f[2], UINT64_MAX);
	r->dropped = dt_get_uint(d, &f[3], UINT64_MAX);
	r->vanished = dt_get_uint(d, &f[4], UINT64_MAX);
	dt_get_str(d, &f[5], r->top_reason, sizeof(r->top_reason));
}

static void get_verdict(struct dt_dec *d, const msgpack_object *o, struct dt_verdict *v)
{
	const msgpack_object *f = dt_get_record(d, o, N_VERDICT);

	if (f == NULL) {
		return;
	}
	v->judged = dt_get_uint(d, &f[0], UINT64_MAX);
	v->delivered = dt_get_uint(d, &f[1], UINT64_MAX);
	v->dropped = dt_get_uint(d, &f[2], UINT64_MAX);
	v->vanished = dt_get_uint(d, &f[3], UINT64_MAX);
	v->in_flight = dt_get_uint(d, &f[4], UINT64_MAX);
	get_hop_ref(d, &f[5], &v->at, true);
	dt_get_str(d, &f[6], v->reason, sizeof(v->reason));
	dt_get_str(d, &f[7], v->sentence, sizeof(v->sentence));
	v->dest_unknown = dt_get_uint(d, &f[8], UINT64_MAX);
	v->unobserved = dt_get_uint(d, &f[9], UINT64_MAX);
}

static void get_blind(struct dt_dec *d, const msgpack_object *o, struct dt_blind *b)
{
	const msgpack_object *f = dt_get_record(d, o, N_BLIND);

	if (f == NULL) {
		return;
	}
	dt_get_str(d, &f[0], b->node, sizeof(b->node));
	dt_get_gap(d, &f[1], &b->gap);
	b->packets = dt_get_uint(d, &f[2], UINT64_MAX);
	if (d->err == 0 && b->packets == 0) {
		dt_get_fail(d, DT_PROTO_ERANGE);
	}
}

int dt_report_decode(const void *buf, size_t len, struct dt_report *out)
{
	const msgpack_object *f, *items;
	struct dt_report r;
	struct dt_dec d;
	uint32_t i;

	memset(&r, 0, sizeof(r));
	f = dt_dec_begin(&d, buf, len, DT_MSG_REPORT, N_REPORT);
	if (f != NULL) {
		dt_get_task_record(&d, &f[0], &r.task);
		items = dt_get_list(&d, &f[1], DT_REPORT_MAX_PACKETS, &r.n_packets);
		r.packets = dt_get_mem(&d, r.n_packets, sizeof(*r.packets));
		for (i = 0; i < r.n_packets && d.err == 0; i++) {
			get_packet(&d, &items[i], &r.packets[i]);
		}
		items = dt_get_list(&d, &f[2], DT_REPORT_MAX_STATS, &r.n_stats);
		r.stats = dt_get_mem(&d, r.n_stats, sizeof(*r.stats));
		for (i = 0; i < r.n_stats && d.err == 0; i++) {
			get_stat(&d, &items[i], &r.stats[i]);
		}
		dt_get_lost(&d, &f[3], r.lost);
		items = dt_get_list(&d, &f[4], DT_REPORT_MAX_ROWS, &r.n_rows);
		r.rows = dt_get_mem(&d, r.n_rows, sizeof(*r.rows));
		for (i = 0; i < r.n_rows && d.err == 0; i++) {
			get_row(&d, &items[i], &r.rows[i]);
		}
		get_verdict(&d, &f[5], &r.verdict);
		r.unmatched = dt_get_uint(&d, &f[6], UINT64_MAX);
		r.window_ms = dt_get_uint(&d, &f[7], UINT64_MAX);
		items = dt_get_list(&d, &f[8], DT_REPORT_MAX_COPY_ROWS, &r.n_copy_rows);
		r.copy_rows = dt_get_mem(&d, r.n_copy_rows, sizeof(*r.copy_rows));
		for (i = 0; i < r.n_copy_rows && d.err == 0; i++) {
			get_copy_row(&d, &items[i], &r.copy_rows[i]);
		}
		items = dt_get_list(&d, &f[9], DT_REPORT_MAX_BLIND, &r.n_blind);
		r.blind = dt_get_mem(&d, r.n_blind, sizeof(*r.blind));
		for (i = 0; i < r.n_blind && d.err == 0; i++) {
			get_blind(&d, &items[i], &r.blind[i]);
		}
	}
	if (dt_dec_end(&d) != 0) {
		dt_report_free(&r);
	}
	memcpy(out, &r, sizeof(r));
	return d.err;
}

void dt_report_free(struct dt_report *r)
{
	uint32_t i;

	for (i = 0; r->packets != NULL && i < r->n_packets; i++) {
		free(r->packets[i].hops);
	}
	free(r->packets);
	free(r->stats);
	free(r->rows);
	free(r->copy_rows);
	free(r->blind);
	memset(r, 0, sizeof(*r));
}
