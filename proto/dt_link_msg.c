/* SPDX-License-Identifier: MIT */
/*
 * dt_link_msg.c - the messages between agents, collectors and the analyzer: DT_MSG_BATCH
 * (samples, interface and string tables, loss counters, node states), DT_MSG_ACK and
 * DT_MSG_CONTROL (the armed task set). The layouts are in dt_link_msg.h and
 * proto/README.md; how a message is encoded and decoded is in dt_wire.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_codec_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void put_nil(struct dt_enc *e)
{
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_nil(&e->pk));
	}
}

/* An index into a batch's string table: < n_strings, or DT_STR_NONE. */
static void put_str_index(struct dt_enc *e, unsigned int v, uint32_t n_strings)
{
	if (v != DT_STR_NONE && v >= n_strings) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	dt_put_uint(e, v);
}

/* [task_id, flags, tuple, budget, rate_pps] */
static void put_arm(struct dt_enc *e, const struct dt_arm *a)
{
	dt_put_array(e, N_ARM);
	dt_put_uint(e, a->task_id);
	dt_put_uint(e, a->flags);
	dt_put_tuple(e, &a->tuple);
	dt_put_uint(e, a->budget);
	dt_put_uint(e, a->rate_pps);
}

/* gen, [arm...] (2 fields, inline) */
static void put_control(struct dt_enc *e, const struct dt_control *c)
{
	uint32_t i;

	dt_put_uint(e, c->gen);
	if (dt_put_list(e, c->n_arms, DT_CONTROL_MAX_TASKS, c->arms)) {
		for (i = 0; i < c->n_arms && e->err == 0; i++) {
			put_arm(e, &c->arms[i]);
		}
	}
}

/* [task_id, flags, tuple, err] */
static void put_arm_fail(struct dt_enc *e, const struct dt_arm_fail *f)
{
	dt_put_array(e, N_ARM_FAIL);
	dt_put_uint(e, f->task_id);
	dt_put_uint(e, f->flags);
	dt_put_tuple(e, &f->tuple);
	dt_put_uint(e, f->err);
}

/* [from_ns, to_ns, cause, flags, lost]: a window with from_ns < to_ns and a known cause */
void dt_put_gap(struct dt_enc *e, const struct dt_gap *g)
{
	if (g->from_ns >= g->to_ns || g->cause == 0 || g->cause >= DT_GAP_CAUSE_MAX ||
	    g->flags > DT_GAP_F_LOST_UNKNOWN) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	dt_put_array(e, N_GAP);
	dt_put_uint(e, g->from_ns);
	dt_put_uint(e, g->to_ns);
	dt_put_uint(e, g->cause);
	dt_put_uint(e, g->flags);
	dt_put_uint(e, g->lost);
}

/* [task_id, flags, colored] */
static void put_colored(struct dt_enc *e, const struct dt_key_colored *c)
{
	dt_put_array(e, N_COLORED);
	dt_put_uint(e, c->task_id);
	dt_put_uint(e, c->flags);
	dt_put_uint(e, c->colored);
}

/*
 * [node, ctl_gen, [[vni, addr]...], task_map_max, task_map_used, [arm_fail...], [gap...],
 *  [key_colored...]]
 */
static void put_node(struct dt_enc *e, const struct dt_node_state *n)
{
	uint32_t i;

	dt_put_array(e, N_NODE);
	dt_put_str(e, n->node, sizeof(n->node));
	dt_put_uint(e, n->ctl_gen);
	if (dt_put_list(e, n->n_endpoints, DT_NODE_MAX_ENDPOINTS, n->endpoints)) {
		for (i = 0; i < n->n_endpoints && e->err == 0; i++) {
			dt_put_array(e, N_ENDPOINT);
			dt_put_max(e, n->endpoints[i].vni, DT_VNI_MAX);
			dt_put_uint(e, n->endpoints[i].addr);
		}
	}
	dt_put_uint(e, n->task_map_max);
	dt_put_uint(e, n->task_map_used);
	if (dt_put_list(e, n->n_arm_fails, DT_NODE_MAX_ARM_FAILS, n->arm_fails)) {
		for (i = 0; i < n->n_arm_fails && e->err == 0; i++) {
			put_arm_fail(e, &n->arm_fails[i]);
		}
	}
	if (dt_put_list(e, n->n_gaps, DT_NODE_MAX_GAPS, n->gaps)) {
		for (i = 0; i < n->n_gaps && e->err == 0; i++) {
			if (n->gaps[i].cause == DT_GAP_SILENT) {
				dt_put_fail(e, DT_PROTO_ERANGE); /* only an analyzer says so */
			}
			dt_put_gap(e, &n->gaps[i]);
		}
	}
	if (dt_put_list(e, n->n_colored, DT_NODE_MAX_COLORED, n->colored)) {
		for (i = 0; i < n->n_colored && e->err == 0; i++) {
			put_colored(e, &n->colored[i]);
		}
	}
}

/*
 * [hook, flags, iface, ts_ns, tuple, task_id, ip_id, ident, len, outer_saddr, outer_daddr,
 *  orig saddr, daddr, sport, dport, drop_reason, drop_name, drop_where, cap_link, cap]
 * orig's proto and vni are tuple's and are not sent.
 */
static void put_sample(struct dt_enc *e, const struct dt_wire_sample *s, uint32_t n_ifaces,
		       uint32_t n_strings)
{
	dt_put_array(e, N_SAMPLE);
	dt_put_hook(e, s->hook, false);
	dt_put_uint(e, s->flags);
	dt_put_below(e, s->iface, n_ifaces);
	dt_put_uint(e, s->ts_ns);
	dt_put_tuple(e, &s->tuple);
	dt_put_uint(e, s->task_id);
	dt_put_uint(e, s->ip_id);
	dt_put_uint(e, s->ident);
	dt_put_uint(e, s->len);
	dt_put_uint(e, s->outer_saddr);
	dt_put_uint(e, s->outer_daddr);
	dt_put_addrs(e, &s->orig);
	dt_put_uint(e, s->drop_reason);
	put_str_index(e, s->drop_name, n_strings);
	put_str_index(e, s->drop_where, n_strings);
	dt_put_cap(e, s->cap_link, s->cap_len, s->cap);
	dt_put_max(e, s->frag, DT_FRAG_MF | DT_FRAG_OFFSET);
}

int dt_batch_encode(msgpack_sbuffer *out, const struct dt_batch *b)
{
	struct dt_enc e;
	uint32_t i;

	dt_enc_begin(&e, out, DT_MSG_BATCH, N_BATCH);
	dt_put_str(&e, b->sender, sizeof(b->sender));
	dt_put_uint(&e, b->seq);
	dt_put_uint(&e, b->ctl_gen);
	dt_put_str(&e, b->node, sizeof(b->node));
	if (dt_put_list(&e, b->n_ifaces, DT_BATCH_MAX_IFACES, b->ifaces)) {
		for (i = 0; i < b->n_ifaces && e.err == 0; i++) {
			dt_put_str(&e, b->ifaces[i], sizeof(b->ifaces[i]));
		}
	}
	dt_put_lost(&e, b->lost);
	if (dt_put_list(&e, b->n_strings, DT_BATCH_MAX_STRINGS, b->strings)) {
		for (i = 0; i < b->n_strings && e.err == 0; i++) {
			dt_put_str(&e, b->strings[i], sizeof(b->strings[i]));
		}
	}
	if (dt_put_list(&e, b->n_samples, DT_BATCH_MAX_SAMPLES, b->samples)) {
		for (i = 0; i < b->n_samples && e.err == 0; i++) {
			put_sample(&e, &b->samples[i], b->n_ifaces, b->n_strings);
		}
	}
	if (dt_put_list(&e, b->n_nodes, DT_BATCH_MAX_NODES, b->nodes)) {
		for (i = 0; i < b->n_nodes && e.err == 0; i++) {
			put_node(&e, &b->nodes[i]);
		}
	}
	return dt_enc_end(&e);
}

int dt_ack_encode(msgpack_sbuffer *out, const struct dt_ack *a)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, DT_MSG_ACK, N_ACK);
	dt_put_uint(&e, a->seq);
	dt_put_below(&e, a->status, DT_ST_MAX);
	if (a->has_control) {
		dt_put_array(&e, N_CONTROL);
		put_control(&e, &a->control);
	} else {
		put_nil(&e);
	}
	return dt_enc_end(&e);
}

int dt_control_encode(msgpack_sbuffer *out, const struct dt_control *c)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, DT_MSG_CONTROL, N_CONTROL);
	put_control(&e, c);
	return dt_enc_end(&e);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* An index into a batch's string table: < n_strings, or DT_STR_NONE. */
static uint16_t get_str_index(struct dt_dec *d, const msgpack_object *o, uint32_t n_strings)
{
	uint64_t v = dt_get_uint(d, o, UINT16_MAX);

	if (d->err == 0 && v != DT_STR_NONE && v >= n_strings) {
		dt_get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return v;
}

static void get_arm(struct dt_dec *d, const msgpack_object *o, struct dt_arm *a)
{
	const msgpack_object *f = dt_get_record(d, o, N_ARM);

	if (f == NULL) {
		return;
	}
	a->task_id = dt_get_uint(d, &f[0], UINT32_MAX);
	a->flags = dt_get_uint(d, &f[1], UINT32_MAX);
	dt_get_tuple(d, &f[2], &a->tuple);
	a->budget = dt_get_uint(d, &f[8], UINT32_MAX);
	a->rate_pps = dt_get_uint(d, &f[9], UINT32_MAX);
}

static void get_control(struct dt_dec *d, const msgpack_object *f, struct dt_control *c)
{
	const msgpack_object *arms;
	uint32_t i;

	if (d->err != 0) {
		return;
	}
	c->gen = dt_get_uint(d, &f[0], UINT64_MAX);
	arms = dt_get_list(d, &f[1], DT_CONTROL_MAX_TASKS, &c->n_arms);
	c->arms = dt_get_mem(d, c->n_arms, sizeof(*c->arms));
	for (i = 0; i < c->n_arms && d->err == 0; i++) {
		get_arm(d, &arms[i], &c->arms[i]);
	}
}

static void get_arm_fail(struct dt_dec *d, const msgpack_object *o, struct dt_arm_fail *a)
{
	const msgpack_object *f = dt_get_record(d, o, N_ARM_FAIL);

	if (f == NULL) {
		return;
	}
	a->task_id = dt_get_uint(d, &f[0], UINT32_MAX);
	a->flags = dt_get_uint(d, &f[1], UINT32_MAX);
	dt_get_tuple(d, &f[2], &a->tuple);
	a->err = dt_get_uint(d, &f[8], UINT32_MAX);
}

void dt_get_gap(struct dt_dec *d, const msgpack_object *o, struct dt_gap *g)
{
	const msgpack_object *f = dt_get_record(d, o, N_GAP);

	if (f == NULL) {
		return;
	}
	g->from_ns = dt_get_uint(d, &f[0], UINT64_MAX);
	g->to_ns = dt_get_uint(d, &f[1], UINT64_MAX);
	g->cause = dt_get_uint(d, &f[2], DT_GAP_CAUSE_MAX - 1);
	g->flags = dt_get_uint(d, &f[3], DT_GAP_F_LOST_UNKNOWN);
	g->lost = dt_get_uint(d, &f[4], UINT64_MAX);
	if (d->err == 0 && (g->cause == 0 || g->from_ns >= g->to_ns)) {
		dt_get_fail(d, DT_PROTO_ERANGE);
	}
}

static void get_colored(struct dt_dec *d, const msgpack_object *o, struct dt_key_colored *c)
{
	const msgpack_object *f = dt_get_record(d, o, N_COLORED);

	if (f == NULL) {
		return;
	}
	c->task_id = dt_get_uint(d, &f[0], UINT32_MAX);
	c->flags = dt_get_uint(d, &f[1], UINT32_MAX);
	c->colored = dt_get_uint(d, &f[2], UINT64_MAX);
}

/*
 * [node, ctl_gen, [[vni, addr]...], task_map_max, task_map_used, [arm_fail...], [gap...],
 *  [key_colored...]]
 */
static void get_node(struct dt_dec *d, const msgpack_object *o, struct dt_node_state *n)
{
	const msgpack_object *f = dt_get_record(d, o, N_NODE);
	const msgpack_object *items, *ep;
	uint32_t i;

	if (f == NULL) {
		return;
	}
	dt_get_str(d, &f[0], n->node, sizeof(n->node));
	n->ctl_gen = dt_get_uint(d, &f[1], UINT64_MAX);
	items = dt_get_list(d, &f[2], DT_NODE_MAX_ENDPOINTS, &n->n_endpoints);
	n->endpoints = dt_get_mem(d, n->n_endpoints, sizeof(*n->endpoints));
	for (i = 0; i < n->n_endpoints && d->err == 0; i++) {
		if ((ep = dt_get_record(d, &items[i], N_ENDPOINT)) != NULL) {
			n->endpoints[i].vni = dt_get_uint(d, &ep[0], DT_VNI_MAX);
			n->endpoints[i].addr = dt_get_uint(d, &ep[1], UINT32_MAX);
		}
	}
	n->task_map_max = dt_get_uint(d, &f[3], UINT32_MAX);
	n->task_map_used = dt_get_uint(d, &f[4], UINT32_MAX);
	items = dt_get_list(d, &f[5], DT_NODE_MAX_ARM_FAILS, &n->n_arm_fails);
	n->arm_fails = dt_get_mem(d, n->n_arm_fails, sizeof(*n->arm_fails));
	for (i = 0; i < n->n_arm_fails && d->err == 0; i++) {
		get_arm_fail(d, &items[i], &n->arm_fails[i]);
	}
	items = dt_get_list(d, &f[6], DT_NODE_MAX_GAPS, &n->n_gaps);
	for (i = 0; i < n->n_gaps && d->err == 0; i++) {
		dt_get_gap(d, &items[i], &n->gaps[i]);
		if (d->err == 0 && n->gaps[i].cause == DT_GAP_SILENT) {
			dt_get_fail(d, DT_PROTO_ERANGE); /* a node cannot say it is not heard */
		}
	}
	items = dt_get_list(d, &f[7], DT_NODE_MAX_COLORED, &n->n_colored);
	n->colored = dt_get_mem(d, n->n_colored, sizeof(*n->colored));
	for (i = 0; i < n->n_colored && d->err == 0; i++) {
		get_colored(d, &items[i], &n->colored[i]);
	}
}

/* A malloc'd copy of n items of size bytes each; NULL when n is 0 or memory ran out. */
static void *dup_items(const void *items, uint32_t n, size_t size)
{
	void *copy = n ? malloc(size * n) : NULL;

	if (copy) {
		memcpy(copy, items, size * n);
	}
	return copy;
}

int dt_node_state_copy(struct dt_node_state *dst, const struct dt_node_state *src)
{
	*dst = *src;
	dst->endpoints = dup_items(src->endpoints, src->n_endpoints, sizeof(*src->endpoints));
	dst->arm_fails = dup_items(src->arm_fails, src->n_arm_fails, sizeof(*src->arm_fails));
	dst->colored = dup_items(src->colored, src->n_colored, sizeof(*src->colored));
	if ((src->n_endpoints && !dst->endpoints) || (src->n_arm_fails && !dst->arm_fails) ||
	    (src->n_colored && !dst->colored)) {
		dt_node_state_free(dst);
		return -ENOMEM;
	}
	return 0;
}

void dt_node_state_free(struct dt_node_state *n)
{
	free(n->endpoints);
	free(n->arm_fails);
	free(n->colored);
	n->endpoints = NULL;
	n->arm_fails = NULL;
	n->colored = NULL;
	n->n_endpoints = n->n_arm_fails = n->n_colored = 0;
}

static void get_sample(struct dt_dec *d, const msgpack_object *o, uint32_t n_ifaces,
		       uint32_t n_strings, struct dt_wire_sample *s)
{
	const msgpack_object *f = dt_get_record(d, o, N_SAMPLE);

	if (f == NULL) {
		return;
	}
	s->hook = dt_get_hook(d, &f[0], false);
	s->flags = dt_get_uint(d, &f[1], UINT8_MAX);
	s->iface = dt_get_below(d, &f[2], n_ifaces);
	s->ts_ns = dt_get_uint(d, &f[3], UINT64_MAX);
	dt_get_tuple(d, &f[4], &s->tuple);
	s->task_id = dt_get_uint(d, &f[10], UINT32_MAX);
	s->ip_id = dt_get_uint(d, &f[11], UINT16_MAX);
	s->ident = dt_get_uint(d, &f[12], UINT32_MAX);
	s->len = dt_get_uint(d, &f[13], UINT32_MAX);
	s->outer_saddr = dt_get_uint(d, &f[14], UINT32_MAX);
	s->outer_daddr = dt_get_uint(d, &f[15], UINT32_MAX);
	dt_get_addrs(d, &f[16], &s->orig);
	if (s->flags & DT_SAMPLE_F_NAT) {
		/* orig has the proto and vni of tuple; without a NAT they stay 0 */
		s->orig.proto = s->tuple.proto;
		s->orig.vni = s->tuple.vni;
	}
	s->drop_reason = dt_get_uint(d, &f[20], UINT32_MAX);
	s->drop_name = get_str_index(d, &f[21], n_strings);
	s->drop_where = get_str_index(d, &f[22], n_strings);
	dt_get_cap(d, &f[23], &s->cap_link, &s->cap_len, s->cap);
	s->frag = dt_get_uint(d, &f[25], DT_FRAG_MF | DT_FRAG_OFFSET);
}

/* A batch's fields (after version and type), by position. */
enum batch_field {
	BF_SENDER,
	BF_SEQ,
	BF_CTL_GEN,
	BF_NODE,
	BF_IFACES,
	BF_LOST,
	BF_STRINGS,
	BF_SAMPLES,
	BF_NODES,
};

_Static_assert(BF_NODES + 1 == N_BATCH, "a field for every element of the batch's layout");

/* The fields before the samples, f[BF_SENDER] to f[BF_STRINGS]. */
static void get_batch_head(struct dt_dec *d, const msgpack_object *f, struct dt_batch *b)
{
	const msgpack_object *items;
	uint32_t i;

	if (d->err != 0) {
		return;
	}
	dt_get_str(d, &f[BF_SENDER], b->sender, sizeof(b->sender));
	b->seq = dt_get_uint(d, &f[BF_SEQ], UINT64_MAX);
	b->ctl_gen = dt_get_uint(d, &f[BF_CTL_GEN], UINT64_MAX);
	dt_get_str(d, &f[BF_NODE], b->node, sizeof(b->node));
	items = dt_get_list(d, &f[BF_IFACES], DT_BATCH_MAX_IFACES, &b->n_ifaces);
	for (i = 0; i < b->n_ifaces && d->err == 0; i++) {
		dt_get_str(d, &items[i], b->ifaces[i], sizeof(b->ifaces[i]));
	}
	dt_get_lost(d, &f[BF_LOST], b->lost);
	items = dt_get_list(d, &f[BF_STRINGS], DT_BATCH_MAX_STRINGS, &b->n_strings);
	b->strings = dt_get_mem(d, b->n_strings, sizeof(*b->strings));
	for (i = 0; i < b->n_strings && d->err == 0; i++) {
		dt_get_str(d, &items[i], b->strings[i], sizeof(b->strings[i]));
	}
}

/* [node_state...] */
static void get_batch_nodes(struct dt_dec *d, const msgpack_object *o, struct dt_batch *b)
{
	const msgpack_object *items = dt_get_list(d, o, DT_BATCH_MAX_NODES, &b->n_nodes);
	uint32_t i;

	b->nodes = dt_get_mem(d, b->n_nodes, sizeof(*b->nodes));
	for (i = 0; i < b->n_nodes && d->err == 0; i++) {
		get_node(d, &items[i], &b->nodes[i]);
	}
}

/* A failed decode frees what it allocated and hands back an all-zero batch. */
static int batch_done(struct dt_dec *d, struct dt_batch *b, struct dt_batch *out, size_t len,
		      size_t off)
{
	if (dt_raw_end(d, len, off) != 0) {
		dt_batch_free(b);
	}
	memcpy(out, b, sizeof(*b));
	return d->err;
}

int dt_batch_decode(const void *buf, size_t len, struct dt_batch *out)
{
	const msgpack_object *f, *items;
	struct dt_batch b;
	struct dt_dec d;
	uint32_t i;

	memset(&b, 0, sizeof(b));
	f = dt_dec_begin(&d, buf, len, DT_MSG_BATCH, N_BATCH);
	if (f != NULL) {
		get_batch_head(&d, f, &b);
		items = dt_get_list(&d, &f[BF_SAMPLES], DT_BATCH_MAX_SAMPLES, &b.n_samples);
		b.samples = dt_get_mem(&d, b.n_samples, sizeof(*b.samples));
		for (i = 0; i < b.n_samples && d.err == 0; i++) {
			get_sample(&d, &items[i], b.n_ifaces, b.n_strings, &b.samples[i]);
		}
		get_batch_nodes(&d, &f[BF_NODES], &b);
	}
	return batch_done(&d, &b, out, len, len);
}

/*
 * The collector's check of a sample record, the fields get_sample() reads with a plain
 * bound: the largest value each may hold (the others are checked apart in
 * check_sample()). get_sample() is the definition; the fuzz target holds the two to the
 * same verdict on every input (check_collector_path()).
 */
/* clang-format off */
static const uint64_t sample_max[N_SAMPLE] = {
	DT_HOOK_MAX - 1, UINT8_MAX, UINT64_MAX, UINT64_MAX, /* hook, flags, iface (apart), ts_ns */
	UINT32_MAX, UINT32_MAX, UINT16_MAX, UINT16_MAX,	/* saddr, daddr, sport, dport */
	UINT8_MAX, DT_VNI_MAX, UINT32_MAX, UINT16_MAX,	/* proto, vni, task_id, ip_id */
	UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX,	/* ident, len, outer addrs */
	UINT32_MAX, UINT32_MAX, UINT16_MAX, UINT16_MAX,	/* orig addrs, ports */
	UINT32_MAX, UINT16_MAX, UINT16_MAX, DT_CAP_IPV4,/* drop_reason, _name, _where,
							 * cap_link */
	0, DT_FRAG_MF | DT_FRAG_OFFSET,			/* cap (apart), frag */
};
/* clang-format on */

enum {
	SF_HOOK = 0,
	SF_IFACE = 2,
	SF_DROP_NAME = 21,
	SF_DROP_WHERE = 22,
	SF_CAP_LINK = 23,
	SF_CAP = 24
};

/* A string index of a sample is out of range (get_str_index()). */
static bool bad_str_index(uint64_t v, uint32_t n_strings)
{
	return v != DT_STR_NONE && v >= n_strings;
}

/*
 * One sample record at *off, checked as get_sample() checks it, straight on the bytes: the
 * framing first (the record's length, each field's type; as dt_raw_records() does before
 * it hands a record on), then the values, so that a record wrong in both ways is refused
 * with the same code as by the decoder's walk. Its fields are left in v[] (cap apart).
 * Returns 0 or the error.
 */
static int raw_sample(const uint8_t *p, size_t len, size_t *off, const struct dt_batch *b,
		      uint64_t v[N_SAMPLE], msgpack_object *cap)
{
	bool bad = false;
	int f, rv;

	_Static_assert(N_SAMPLE > 15 && N_SAMPLE <= UINT8_MAX, "a sample is an array 16");
	if (len - *off >= 3 && p[*off] == 0xdc && p[*off + 1] == 0 && p[*off + 2] == N_SAMPLE) {
		*off += 3; /* the head an encoder writes */
	} else {
		struct dt_dec d = {0};

		if (dt_raw_list(&d, p, len, off, UINT32_MAX) != N_SAMPLE) {
			return d.err ? d.err : DT_PROTO_ELENGTH;
		}
	}
	for (f = 0; f < SF_CAP; f++) {
		if ((rv = dt_raw_uint(p, len, off, &v[f])) != 0) {
			return rv;
		}
		bad |= v[f] > sample_max[f];
	}
	if ((rv = dt_raw_value(p, len, off, DT_RAW_BIN, cap)) != 0 ||
	    (rv = dt_raw_uint(p, len, off, &v[N_SAMPLE - 1])) != 0) {
		return rv;
	}
	bad |= v[N_SAMPLE - 1] > sample_max[N_SAMPLE - 1];
	bad |= v[SF_HOOK] == DT_HOOK_NONE || v[SF_IFACE] >= b->n_ifaces;
	bad |= bad_str_index(v[SF_DROP_NAME], b->n_strings);
	bad |= bad_str_index(v[SF_DROP_WHERE], b->n_strings);
	bad |= cap->via.bin.size > DT_CAP_MAX ||
	       (cap->via.bin.size == 0) != (v[SF_CAP_LINK] == DT_CAP_NONE);
	return bad ? DT_PROTO_ERANGE : 0;
}

static int check_sample(const uint8_t *p, size_t len, size_t *off, const struct dt_batch *b)
{
	uint64_t v[N_SAMPLE];
	msgpack_object cap;

	return raw_sample(p, len, off, b, v, &cap);
}

/* The sample of fields v[] and prefix cap (raw_sample() checked them), as get_sample()
 * fills it. */
static void fill_sample(struct dt_wire_sample *s, const uint64_t v[N_SAMPLE],
			const msgpack_object *cap)
{
	memset(s, 0, sizeof(*s)); /* as dt_batch_decode()'s array: what a sample lacks is 0 */
	s->hook = (uint8_t)v[0];
	s->flags = (uint8_t)v[1];
	s->iface = (uint32_t)v[2];
	s->ts_ns = v[3];
	s->tuple.saddr = (uint32_t)v[4];
	s->tuple.daddr = (uint32_t)v[5];
	s->tuple.sport = (uint16_t)v[6];
	s->tuple.dport = (uint16_t)v[7];
	s->tuple.proto = (uint8_t)v[8];
	s->tuple.vni = (uint32_t)v[9];
	s->task_id = (uint32_t)v[10];
	s->ip_id = (uint16_t)v[11];
	s->ident = (uint32_t)v[12];
	s->len = (uint32_t)v[13];
	s->outer_saddr = (uint32_t)v[14];
	s->outer_daddr = (uint32_t)v[15];
	s->orig.saddr = (uint32_t)v[16];
	s->orig.daddr = (uint32_t)v[17];
	s->orig.sport = (uint16_t)v[18];
	s->orig.dport = (uint16_t)v[19];
	if (s->flags & DT_SAMPLE_F_NAT) {
		/* orig has the proto and vni of tuple; without a NAT they stay 0 */
		s->orig.proto = s->tuple.proto;
		s->orig.vni = s->tuple.vni;
	}
	s->drop_reason = (uint32_t)v[20];
	s->drop_name = (uint16_t)v[21];
	s->drop_where = (uint16_t)v[22];
	s->cap_link = (uint8_t)v[23];
	s->cap_len = (uint16_t)cap->via.bin.size;
	if (s->cap_len > 0) {
		memcpy(s->cap, cap->via.bin.ptr, s->cap_len);
	}
	s->frag = (uint16_t)v[25];
}

/* The samples of a batch whose head is in b: a list of at most DT_BATCH_MAX_SAMPLES
 * records, each checked (check_sample()). Returns their count (0 with d->err set). */
static uint32_t check_samples(struct dt_dec *d, const void *buf, size_t len, size_t *off,
			      const struct dt_batch *b)
{
	uint32_t n = dt_raw_list(d, buf, len, off, DT_BATCH_MAX_SAMPLES), i;
	int rv;

	for (i = 0; i < n && d->err == 0; i++) {
		if ((rv = check_sample(buf, len, off, b)) != 0) {
			dt_get_fail(d, rv);
		}
	}
	return d->err == 0 ? n : 0;
}

int dt_batch_check(const void *buf, size_t len, struct dt_batch *out)
{
	msgpack_object f[N_BATCH];
	struct dt_batch b;
	struct dt_dec d;
	size_t off;
	int i;

	memset(&b, 0, sizeof(b));
	off = dt_raw_begin(&d, buf, len, DT_MSG_BATCH, N_BATCH);
	for (i = BF_SENDER; i < BF_SAMPLES; i++) {
		dt_raw_field(&d, buf, len, &off, &f[i]);
	}
	get_batch_head(&d, f, &b);
	b.n_samples = check_samples(&d, buf, len, &off, &b);
	dt_raw_field(&d, buf, len, &off, &f[BF_NODES]);
	get_batch_nodes(&d, &f[BF_NODES], &b);
	return batch_done(&d, &b, out, len, off);
}

int dt_batch_samples(const void *buf, size_t len, const struct dt_batch *b, dt_batch_sample_fn fn,
		     void *arg)
{
	struct dt_wire_sample s;
	uint64_t v[N_SAMPLE];
	msgpack_object cap;
	struct dt_dec d;
	uint32_t n, i;
	size_t off;
	int rv;

	off = dt_raw_begin(&d, buf, len, DT_MSG_BATCH, N_BATCH);
	for (i = BF_SENDER; i < BF_SAMPLES; i++) {
		dt_raw_skip(&d, buf, len, &off);
	}
	n = dt_raw_list(&d, buf, len, &off, DT_BATCH_MAX_SAMPLES);
	for (i = 0; i < n && d.err == 0; i++) {
		if ((rv = raw_sample(buf, len, &off, b, v, &cap)) != 0) {
			dt_get_fail(&d, rv);
			break;
		}
		fill_sample(&s, v, &cap);
		fn(arg, &s);
	}
	return dt_dec_end(&d);
}

int dt_batch_reframe(msgpack_sbuffer *out, const void *buf, size_t len, const char *sender,
		     uint64_t seq, uint64_t ctl_gen, uint32_t *n_samples)
{
	struct dt_dec d;
	struct dt_enc e;
	size_t off, rest;
	int i;

	*n_samples = 0;
	off = dt_raw_begin(&d, buf, len, DT_MSG_BATCH, N_BATCH);
	for (i = BF_SENDER; i < BF_NODE; i++) {
		dt_raw_skip(&d, buf, len, &off);
	}
	rest = off;
	for (; i < BF_SAMPLES; i++) {
		dt_raw_skip(&d, buf, len, &off);
	}
	*n_samples = dt_raw_list(&d, buf, len, &off, DT_BATCH_MAX_SAMPLES);
	if (dt_dec_end(&d) != 0) {
		*n_samples = 0;
		return d.err;
	}
	dt_enc_begin(&e, out, DT_MSG_BATCH, N_BATCH);
	dt_put_str(&e, sender, DT_NAME_MAX);
	dt_put_uint(&e, seq);
	dt_put_uint(&e, ctl_gen);
	if (e.err == 0) {
		dt_put_check(&e, msgpack_sbuffer_write(out, (const char *)buf + rest, len - rest));
	}
	if (dt_enc_end(&e) != 0) {
		*n_samples = 0;
	}
	return e.err;
}

void dt_batch_free(struct dt_batch *b)
{
	uint32_t i;

	for (i = 0; b->nodes != NULL && i < b->n_nodes; i++) {
		dt_node_state_free(&b->nodes[i]);
	}
	free(b->nodes);
	free(b->strings);
	free(b->samples);
	memset(b, 0, sizeof(*b));
}

int dt_control_decode(const void *buf, size_t len, struct dt_control *out)
{
	struct dt_control c = {0};
	const msgpack_object *f;
	struct dt_dec d;

	f = dt_dec_begin(&d, buf, len, DT_MSG_CONTROL, N_CONTROL);
	get_control(&d, f, &c);
	if (dt_dec_end(&d) != 0) {
		dt_control_free(&c);
	}
	*out = c;
	return d.err;
}

void dt_control_free(struct dt_control *c)
{
	free(c->arms);
	memset(c, 0, sizeof(*c));
}

int dt_ack_decode(const void *buf, size_t len, struct dt_ack *out)
{
	const msgpack_object *f;
	struct dt_ack a;
	struct dt_dec d;

	memset(&a, 0, sizeof(a));
	f = dt_dec_begin(&d, buf, len, DT_MSG_ACK, N_ACK);
	if (f != NULL) {
		a.seq = dt_get_uint(&d, &f[0], UINT64_MAX);
		a.status = dt_get_below(&d, &f[1], DT_ST_MAX);
		if (d.err == 0 && f[2].type != MSGPACK_OBJECT_NIL) {
			a.has_control = true;
			get_control(&d, dt_get_record(&d, &f[2], N_CONTROL), &a.control);
		}
	}
	if (dt_dec_end(&d) != 0) {
		dt_ack_free(&a);
	}
	memcpy(out, &a, sizeof(a));
	return d.err;
}

void dt_ack_free(struct dt_ack *a)
{
	dt_control_free(&a->control);
	memset(a, 0, sizeof(*a));
}
