/* SPDX-License-Identifier: MIT */
/*
 * dt_proto.c - the dyetrace msgpack codec. The contract is in dt_proto.h, the wire format
 * in proto/README.md.
 *
 * Decoding a message takes three steps:
 *
 *  1. scan: one pass over the raw bytes that checks the msgpack framing without allocating.
 *     It finds the end of the message (truncated or trailing bytes are reported here) and
 *     refuses any container whose element count cannot fit in the bytes that remain (each
 *     element takes at least one byte). msgpack-c allocates count * sizeof(msgpack_object)
 *     as soon as it reads an array header, so without this check a 5-byte message
 *     announcing 2^32 elements would make it reserve ~100 GiB. The scan also adds up how
 *     much the unpack zone will need, so that the zone is one chunk sized for the message
 *     (twice as fast as growing it, see docs/design.md).
 *  2. header: the version and the type are checked on the raw bytes by the same code
 *     that backs dt_msg_type(), then the element count against the layout.
 *  3. fields: msgpack_unpack() builds the object tree and small typed getters copy each
 *     field into a zeroed local struct, checking its msgpack type and its range.
 *
 * Encoders and getters carry a sticky error (struct enc, struct dec): the first failure is
 * kept and every later call does nothing, so that each message reads as a plain list of
 * its fields. A failed encode truncates the caller's buffer back to where it started; a
 * failed decode frees what it allocated and hands back an all-zero struct.
 *
 * Encoders check the same ranges as decoders: whatever encodes successfully decodes.
 */
#include <endian.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dt_proto.h"

#define DT_VNI_MAX 0xFFFFFFu

/* Element counts of the positional layouts (dt_proto.h). */
#define N_SPEC 10    /* flags, tuple, budget, duration_s, rate_pps */
#define N_ARM 10     /* task_id, flags, tuple, budget, rate_pps */
#define N_TASK 20    /* id, state, spec, created_ns .. delivered, tenant .. ended_ns */
#define N_SAMPLE 26  /* hook .. outer_daddr, orig (4), drop_reason .. drop_where, cap_link, cap,
		      * frag */
#define N_BATCH 9    /* sender, seq, ctl_gen, node, ifnames, lost, strings, samples, nodes */
#define N_NODE 3     /* node, ctl_gen, [endpoint...] */
#define N_ENDPOINT 2 /* vni, addr */
#define N_ACK 3	     /* seq, status, control */
#define N_CONTROL 2  /* gen, [arm...] */
#define N_CREATE 11  /* token, spec (N_SPEC) */
#define N_TOKEN_ID 2 /* token, task_id */
#define N_TOKEN 1    /* token */
#define N_TASKS 1    /* [task...] */
#define N_ERROR 2    /* status, message */
#define N_HOP_REF 3  /* node, ifname, hook */
#define N_HOP 17     /* hop place, ts_ns, saddr .. dport, cap_link, cap, parent, branch,
		      * copy_end, drop_reason, drop_name, drop_where, refrag */
#define N_PACKET 19  /* ip_id .. drop_where, [hop...], dest_known, n_copies, frag,
		      * datagram_fate */
#define N_STAT 9     /* from, to, count, min, max, mean, stddev, branch, direction */
#define N_COPY_ROW 5 /* [place], direction, end, count, reason */
#define N_ROW 6	    /* [place], direction, seen, dropped, vanished, top_reason */
#define N_VERDICT 9 /* judged .. in_flight, [place], reason, sentence, dest_unknown */
#define N_REPORT 9  /* task, packets, stats, lost, rows, verdict, unmatched, window_ms,
		     * copy rows */

/* ---------------------------------------------------------------------------------------- */
/* Raw msgpack framing                                                                      */
/* ---------------------------------------------------------------------------------------- */

enum mp_kind {
	MP_OTHER = 0, /* nil, bool, negative integer, float, str, bin, ext */
	MP_UINT,      /* any integer encoding holding a value >= 0 */
	MP_ARRAY,
	MP_MAP,
};

/* The head of one msgpack object. */
struct mp_head {
	enum mp_kind kind;
	uint64_t val;  /* MP_UINT: the value; MP_ARRAY, MP_MAP: the element (pair) count */
	uint64_t body; /* payload bytes that follow the head (str, bin, ext, float) */
};

/* Reads a big-endian unsigned integer of n (1, 2, 4 or 8) bytes at *off. */
static int mp_arg(const uint8_t *p, size_t len, size_t *off, unsigned int n, uint64_t *out)
{
	const uint8_t *q = p + *off;
	uint32_t v32;
	uint64_t v64;

	if (len - *off < n) {
		return DT_PROTO_ETRUNC;
	}
	switch (n) {
	case 1:
		*out = q[0];
		break;
	case 2:
		*out = (uint64_t)q[0] << 8 | q[1];
		break;
	case 4:
		memcpy(&v32, q, sizeof(v32));
		*out = be32toh(v32);
		break;
	default:
		memcpy(&v64, q, sizeof(v64));
		*out = be64toh(v64);
		break;
	}
	*off += n;
	return 0;
}

/*
 * Reads the head of the msgpack object at *off (its type byte and length or value bytes)
 * and advances *off past it, not past its body. Returns 0 or DT_PROTO_ETRUNC (the head is
 * cut off, or the byte 0xc1 that msgpack never uses).
 */
static int mp_head(const uint8_t *p, size_t len, size_t *off, struct mp_head *h)
{
	unsigned int n;
	uint8_t b;
	int rv;

	h->kind = MP_OTHER;
	h->val = 0;
	h->body = 0;
	if (*off >= len) {
		return DT_PROTO_ETRUNC;
	}
	b = p[(*off)++];
	if (b <= 0x7f) { /* positive fixint */
		h->kind = MP_UINT;
		h->val = b;
		return 0;
	}
	if (b >= 0xe0) { /* negative fixint */
		return 0;
	}
	switch (b & 0xf0) {
	case 0x80: /* fixmap */
		h->kind = MP_MAP;
		h->val = b & 0x0f;
		return 0;
	case 0x90: /* fixarray */
		h->kind = MP_ARRAY;
		h->val = b & 0x0f;
		return 0;
	case 0xa0:
	case 0xb0: /* fixstr */
		h->body = b & 0x1f;
		return 0;
	}
	switch (b) {
	case 0xc0: /* nil */
	case 0xc2: /* false */
	case 0xc3: /* true */
		return 0;
	case 0xc4 ... 0xc6: /* bin 8, 16, 32 */
		return mp_arg(p, len, off, 1u << (b - 0xc4), &h->body);
	case 0xc7 ... 0xc9: /* ext 8, 16, 32: length, then a type byte */
		rv = mp_arg(p, len, off, 1u << (b - 0xc7), &h->body);
		h->body += 1;
		return rv;
	case 0xca: /* float 32 */
		h->body = 4;
		return 0;
	case 0xcb: /* float 64 */
		h->body = 8;
		return 0;
	case 0xcc ... 0xcf: /* uint 8, 16, 32, 64 */
		h->kind = MP_UINT;
		return mp_arg(p, len, off, 1u << (b - 0xcc), &h->val);
	case 0xd0 ... 0xd3: /* int 8, 16, 32, 64: msgpack-c calls values >= 0 positive too */
		n = 1u << (b - 0xd0);
		if ((rv = mp_arg(p, len, off, n, &h->val)) != 0) {
			return rv;
		}
		if ((h->val >> (8 * n - 1)) & 1) {
			h->val = 0;
		} else {
			h->kind = MP_UINT;
		}
		return 0;
	case 0xd4 ... 0xd8: /* fixext 1, 2, 4, 8, 16: a type byte, then the data */
		h->body = 1 + (1u << (b - 0xd4));
		return 0;
	case 0xd9 ... 0xdb: /* str 8, 16, 32 */
		return mp_arg(p, len, off, 1u << (b - 0xd9), &h->body);
	case 0xdc:
	case 0xdd: /* array 16, 32 */
		h->kind = MP_ARRAY;
		return mp_arg(p, len, off, b == 0xdc ? 2 : 4, &h->val);
	case 0xde:
	case 0xdf: /* map 16, 32 */
		h->kind = MP_MAP;
		return mp_arg(p, len, off, b == 0xde ? 2 : 4, &h->val);
	default: /* 0xc1: never used */
		return DT_PROTO_ETRUNC;
	}
}

/* Total size of the objects whose first byte fixes it (scalars); 0 for the others. */
/* clang-format off */
static const uint8_t mp_fixed_size[256] = {
	[0x00 ... 0x7f] = 1,	/* positive fixint */
	[0xc0] = 1,		/* nil */
	[0xc2 ... 0xc3] = 1,	/* false, true */
	[0xca] = 5, [0xcb] = 9,	/* float 32, 64 */
	[0xcc] = 2, [0xcd] = 3, [0xce] = 5, [0xcf] = 9,	/* uint 8, 16, 32, 64 */
	[0xd0] = 2, [0xd1] = 3, [0xd2] = 5, [0xd3] = 9,	/* int 8, 16, 32, 64 */
	[0xd4] = 3, [0xd5] = 4, [0xd6] = 6, [0xd7] = 10, [0xd8] = 18, /* fixext 1..16 */
	[0xe0 ... 0xff] = 1,	/* negative fixint */
};
/* clang-format on */

/*
 * Walks one complete msgpack object from the start of buf. On success *end is its length
 * and *zone_bytes what msgpack-c will allocate for its arrays and maps. Fails with
 * DT_PROTO_ETRUNC when the object is cut off, is not msgpack, or announces more elements
 * than there are bytes left.
 */
static int mp_scan(const uint8_t *p, size_t len, size_t *end, size_t *zone_bytes)
{
	uint64_t pending = 1; /* objects still to read; each needs at least one byte */
	size_t off = 0, zone = 0;
	struct mp_head h;
	int rv;

	while (pending > 0) {
		/* fast path: integers, floats, nil, bools (most of a batch) */
		if (off < len && mp_fixed_size[p[off]] != 0) {
			if (mp_fixed_size[p[off]] > len - off) {
				return DT_PROTO_ETRUNC;
			}
			off += mp_fixed_size[p[off]];
			pending--;
			continue;
		}
		if ((rv = mp_head(p, len, &off, &h)) != 0) {
			return rv;
		}
		pending--;
		if (h.body > len - off) {
			return DT_PROTO_ETRUNC;
		}
		off += h.body;
		if (h.kind == MP_ARRAY) {
			pending += h.val;
		} else if (h.kind == MP_MAP) {
			pending += 2 * h.val;
		}
		if (pending > len - off) {
			return DT_PROTO_ETRUNC;
		}
		if (h.kind == MP_ARRAY) {
			zone += h.val * sizeof(msgpack_object);
		} else if (h.kind == MP_MAP) {
			zone += h.val * sizeof(msgpack_object_kv);
		}
	}
	*end = off;
	*zone_bytes = zone;
	return 0;
}

/*
 * Checks the header shared by all messages on the raw bytes: an array of at least two
 * elements, a supported version, a known type. Stores the type and the array's element
 * count. The rest of the message is not looked at.
 */
static int peek_header(const void *buf, size_t len, enum dt_msg_type *type, uint64_t *count)
{
	const uint8_t *p = buf;
	struct mp_head h;
	size_t off = 0;
	int rv;

	if ((rv = mp_head(p, len, &off, &h)) != 0) {
		return rv;
	}
	if (h.kind != MP_ARRAY) {
		return DT_PROTO_ETYPE;
	}
	if (h.val < 2) {
		return DT_PROTO_ELENGTH;
	}
	*count = h.val;
	if ((rv = mp_head(p, len, &off, &h)) != 0) {
		return rv;
	}
	if (h.kind != MP_UINT) {
		return DT_PROTO_ETYPE;
	}
	if (h.val != DT_PROTO_VERSION) {
		return DT_PROTO_EVERSION;
	}
	if ((rv = mp_head(p, len, &off, &h)) != 0) {
		return rv;
	}
	if (h.kind != MP_UINT) {
		return DT_PROTO_ETYPE;
	}
	if (h.val == 0 || h.val >= DT_MSG_TYPE_MAX) {
		return DT_PROTO_EMSGTYPE;
	}
	*type = h.val;
	return 0;
}

int dt_msg_type(const void *buf, size_t len, enum dt_msg_type *type)
{
	uint64_t count;
	int rv;

	*type = 0;
	if (buf == NULL) {
		return DT_PROTO_ETRUNC;
	}
	if ((rv = peek_header(buf, len, type, &count)) != 0) {
		*type = 0;
	}
	return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

struct enc {
	msgpack_packer pk;
	msgpack_sbuffer *sb;
	size_t start; /* sb->size before this message: a failed encode truncates back to it */
	int err;      /* first error, then every put_*() does nothing */
};

static void put_fail(struct enc *e, int err)
{
	if (e->err == 0) {
		e->err = err;
	}
}

/* msgpack_pack_*() only fail when the sbuffer cannot grow. */
static void put_check(struct enc *e, int rv)
{
	if (rv != 0) {
		put_fail(e, DT_PROTO_ENOMEM);
	}
}

static void put_array(struct enc *e, size_t n)
{
	if (e->err == 0) {
		put_check(e, msgpack_pack_array(&e->pk, n));
	}
}

static void put_nil(struct enc *e)
{
	if (e->err == 0) {
		put_check(e, msgpack_pack_nil(&e->pk));
	}
}

/* Unsigned integers always take their shortest encoding. */
static void put_uint(struct enc *e, uint64_t v)
{
	if (e->err == 0) {
		put_check(e, msgpack_pack_uint64(&e->pk, v));
	}
}

static void put_max(struct enc *e, uint64_t v, uint64_t max)
{
	if (v > max) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	put_uint(e, v);
}

/* v < limit: enum values and indexes. */
static void put_below(struct enc *e, uint64_t v, uint64_t limit)
{
	if (v >= limit) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	put_uint(e, v);
}

/* A hook: 1..DT_HOOK_MAX-1, or also DT_HOOK_NONE when none_ok (a verdict without loss). */
static void put_hook(struct enc *e, unsigned int hook, bool none_ok)
{
	if (hook == DT_HOOK_NONE && !none_ok) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	put_below(e, hook, DT_HOOK_MAX);
}

/* An index into a batch's string table: < n_strings, or DT_STR_NONE. */
static void put_str_index(struct enc *e, unsigned int v, uint32_t n_strings)
{
	if (v != DT_STR_NONE && v >= n_strings) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	put_uint(e, v);
}

static void put_double(struct enc *e, double v)
{
	if (!isfinite(v)) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	if (e->err == 0) {
		put_check(e, msgpack_pack_double(&e->pk, v));
	}
}

/* A NUL-terminated string held in a char[size]: unterminated means too long. */
static void put_str(struct enc *e, const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	if (e->err == 0) {
		put_check(e, msgpack_pack_str(&e->pk, n));
	}
	if (e->err == 0) {
		put_check(e, msgpack_pack_str_body(&e->pk, s, n));
	}
}

/* cap_link, cap (2 fields, inline): a packet prefix, DT_CAP_NONE exactly when empty */
static void put_cap(struct enc *e, uint8_t link, uint16_t len, const uint8_t *cap)
{
	if (len > DT_CAP_MAX || (len == 0) != (link == DT_CAP_NONE) || link > DT_CAP_IPV4) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	if (e->err == 0) {
		put_check(e, msgpack_pack_uint8(&e->pk, link));
	}
	if (e->err == 0) {
		put_check(e, msgpack_pack_bin(&e->pk, len));
	}
	if (e->err == 0 && len > 0) {
		put_check(e, msgpack_pack_bin_body(&e->pk, cap, len));
	}
}

/* The head of a variable-length list; true when its items should be written. */
static bool put_list(struct enc *e, uint32_t n, uint32_t max, const void *items)
{
	if (n > max || (n > 0 && items == NULL)) {
		put_fail(e, DT_PROTO_ERANGE);
	}
	put_array(e, n);
	return e->err == 0;
}

static void enc_begin(struct enc *e, msgpack_sbuffer *sb, enum dt_msg_type type, uint32_t n_fields)
{
	e->sb = sb;
	e->start = sb->size;
	e->err = 0;
	msgpack_packer_init(&e->pk, sb, msgpack_sbuffer_write);
	put_array(e, 2 + n_fields);
	put_uint(e, DT_PROTO_VERSION);
	put_uint(e, type);
}

static int enc_end(struct enc *e)
{
	if (e->err != 0) {
		e->sb->size = e->start;
	}
	return e->err;
}

/* saddr, daddr, sport, dport (4 fields, inline): a tuple whose proto and vni are implied */
static void put_addrs(struct enc *e, const struct dt_tuple *t)
{
	put_uint(e, t->saddr);
	put_uint(e, t->daddr);
	put_uint(e, t->sport);
	put_uint(e, t->dport);
}

/* saddr, daddr, sport, dport, proto, vni (6 fields, inline) */
static void put_tuple(struct enc *e, const struct dt_tuple *t)
{
	put_addrs(e, t);
	put_uint(e, t->proto);
	put_max(e, t->vni, DT_VNI_MAX);
}

/* A tenant token: a string < DT_TOKEN_MAX (empty is allowed: the analyzer refuses it). */
static void put_token(struct enc *e, const char *token)
{
	if (token == NULL) {
		put_fail(e, DT_PROTO_ERANGE);
		return;
	}
	put_str(e, token, DT_TOKEN_MAX);
}

/* flags, tuple, budget, duration_s, rate_pps (10 fields, inline) */
static void put_spec(struct enc *e, const struct dt_task_spec *s)
{
	put_uint(e, s->flags);
	put_tuple(e, &s->tuple);
	put_uint(e, s->budget);
	put_uint(e, s->duration_s);
	put_uint(e, s->rate_pps);
}

/* [task_id, flags, tuple, budget, rate_pps] */
static void put_arm(struct enc *e, const struct dt_arm *a)
{
	put_array(e, N_ARM);
	put_uint(e, a->task_id);
	put_uint(e, a->flags);
	put_tuple(e, &a->tuple);
	put_uint(e, a->budget);
	put_uint(e, a->rate_pps);
}

/* gen, [arm...] (2 fields, inline) */
static void put_control(struct enc *e, const struct dt_control *c)
{
	uint32_t i;

	put_uint(e, c->gen);
	if (put_list(e, c->n_arms, DT_CONTROL_MAX_TASKS, c->arms)) {
		for (i = 0; i < c->n_arms && e->err == 0; i++) {
			put_arm(e, &c->arms[i]);
		}
	}
}

/*
 * id, state, spec, created_ns, colored, delivered, tenant, status, status_text, armed_ns,
 * ended_ns (20 fields, inline)
 */
static void put_task(struct enc *e, const struct dt_task_info *t)
{
	put_uint(e, t->id);
	put_below(e, t->state, DT_TASK_STATE_MAX);
	put_spec(e, &t->spec);
	put_uint(e, t->created_ns);
	put_uint(e, t->colored);
	put_uint(e, t->delivered);
	put_str(e, t->tenant, sizeof(t->tenant));
	put_below(e, t->status, DT_TS_MAX);
	put_str(e, t->status_text, sizeof(t->status_text));
	put_uint(e, t->armed_ns);
	put_uint(e, t->ended_ns);
}

/* [id, state, ...]: the task fields in an array of their own (reports, task lists) */
static void put_task_record(struct enc *e, const struct dt_task_info *t)
{
	put_array(e, N_TASK);
	put_task(e, t);
}

/* [node, ctl_gen, [[vni, addr]...]] */
static void put_node(struct enc *e, const struct dt_node_state *n)
{
	uint32_t i;

	put_array(e, N_NODE);
	put_str(e, n->node, sizeof(n->node));
	put_uint(e, n->ctl_gen);
	if (put_list(e, n->n_endpoints, DT_NODE_MAX_ENDPOINTS, n->endpoints)) {
		for (i = 0; i < n->n_endpoints && e->err == 0; i++) {
			put_array(e, N_ENDPOINT);
			put_max(e, n->endpoints[i].vni, DT_VNI_MAX);
			put_uint(e, n->endpoints[i].addr);
		}
	}
}

/* [lost...]: exactly DT_LOSS_MAX counters */
static void put_lost(struct enc *e, const uint64_t *lost)
{
	unsigned int i;

	put_array(e, DT_LOSS_MAX);
	for (i = 0; i < DT_LOSS_MAX; i++) {
		put_uint(e, lost[i]);
	}
}

/* node, ifname, hook (3 fields, inline): a hop place; hook 0 only when none_ok */
static void put_place(struct enc *e, const struct dt_hop_ref *r, bool none_ok)
{
	put_str(e, r->node, sizeof(r->node));
	put_str(e, r->ifname, sizeof(r->ifname));
	put_hook(e, r->hook, none_ok);
}

/* [node, ifname, hook]: a hop place in an array of its own */
static void put_hop_ref(struct enc *e, const struct dt_hop_ref *r, bool none_ok)
{
	put_array(e, N_HOP_REF);
	put_place(e, r, none_ok);
}

/*
 * [hook, flags, iface, ts_ns, tuple, task_id, ip_id, ident, len, outer_saddr, outer_daddr,
 *  orig saddr, daddr, sport, dport, drop_reason, drop_name, drop_where, cap_link, cap]
 * orig's proto and vni are tuple's and are not sent.
 */
static void put_sample(struct enc *e, const struct dt_wire_sample *s, uint32_t n_ifaces,
		       uint32_t n_strings)
{
	put_array(e, N_SAMPLE);
	put_hook(e, s->hook, false);
	put_uint(e, s->flags);
	put_below(e, s->iface, n_ifaces);
	put_uint(e, s->ts_ns);
	put_tuple(e, &s->tuple);
	put_uint(e, s->task_id);
	put_uint(e, s->ip_id);
	put_uint(e, s->ident);
	put_uint(e, s->len);
	put_uint(e, s->outer_saddr);
	put_uint(e, s->outer_daddr);
	put_addrs(e, &s->orig);
	put_uint(e, s->drop_reason);
	put_str_index(e, s->drop_name, n_strings);
	put_str_index(e, s->drop_where, n_strings);
	put_cap(e, s->cap_link, s->cap_len, s->cap);
	put_max(e, s->frag, DT_FRAG_MF | DT_FRAG_OFFSET);
}

/* [node, ifname, hook, ts_ns, saddr, daddr, sport, dport, cap_link, cap, parent, branch,
 * copy_end, drop_reason, drop_name, drop_where]: proto and vni are the packet's */
static void put_hop(struct enc *e, const struct dt_hop *h, uint32_t index)
{
	put_array(e, N_HOP);
	put_place(e, &h->at, false);
	put_uint(e, h->ts_ns);
	put_addrs(e, &h->tuple);
	put_cap(e, h->cap_link, h->cap_len, h->cap);
	if (index == 0) {
		if (h->parent != DT_HOP_ROOT) {
			put_fail(e, DT_PROTO_ERANGE); /* the root, and only it, has no parent */
		}
		put_uint(e, DT_HOP_ROOT);
	} else {
		put_below(e, h->parent, index);
	}
	put_below(e, h->branch, DT_BRANCH_MAX);
	put_below(e, h->copy_end, DT_COPY_MAX);
	put_uint(e, h->drop_reason);
	put_str(e, h->drop_name, sizeof(h->drop_name));
	put_str(e, h->drop_where, sizeof(h->drop_where));
	put_below(e, h->refrag, 2);
}

/* [ip_id, ident, len, direction, fate, tuple, drop_reason, drop_name, drop_where, [hop...]] */
static void put_packet(struct enc *e, const struct dt_packet_path *p)
{
	uint32_t i;

	put_array(e, N_PACKET);
	put_uint(e, p->ip_id);
	put_uint(e, p->ident);
	put_uint(e, p->len);
	put_below(e, p->direction, DT_DIR_MAX);
	put_below(e, p->fate, DT_FATE_MAX);
	put_tuple(e, &p->tuple);
	put_uint(e, p->drop_reason);
	put_str(e, p->drop_name, sizeof(p->drop_name));
	put_str(e, p->drop_where, sizeof(p->drop_where));
	if (put_list(e, p->n_hops, DT_REPORT_MAX_HOPS, p->hops)) {
		for (i = 0; i < p->n_hops && e->err == 0; i++) {
			put_hop(e, &p->hops[i], i);
		}
	}
	put_below(e, p->dest_known, 2);
	put_uint(e, p->n_copies);
	put_max(e, p->frag, DT_FRAG_MF | DT_FRAG_OFFSET);
	put_below(e, p->datagram_fate, DT_FATE_MAX);
}

/* [[from...], [to...], count, min_ns, max_ns, mean_ns, stddev_ns] */
static void put_stat(struct enc *e, const struct dt_hop_stat *s)
{
	put_array(e, N_STAT);
	put_hop_ref(e, &s->from, false);
	put_hop_ref(e, &s->to, false);
	put_uint(e, s->count);
	put_uint(e, s->min_ns);
	put_uint(e, s->max_ns);
	put_double(e, s->mean_ns);
	put_double(e, s->stddev_ns);
	put_below(e, s->branch, DT_BRANCH_MAX);
	put_below(e, s->direction, DT_DIR_MAX);
}

/* [[node, ifname, hook], direction, end, count, reason] */
static void put_copy_row(struct enc *e, const struct dt_copy_row *c)
{
	put_array(e, N_COPY_ROW);
	put_hop_ref(e, &c->at, false);
	put_below(e, c->direction, DT_DIR_MAX);
	if (c->end == DT_COPY_NONE) {
		put_below(e, c->end, 0); /* out of range: a copy row says how the copies ended */
	} else {
		put_below(e, c->end, DT_COPY_MAX);
	}
	put_uint(e, c->count);
	put_str(e, c->reason, sizeof(c->reason));
}

/* [[node, ifname, hook], direction, seen, dropped, vanished, top_reason] */
static void put_row(struct enc *e, const struct dt_hop_row *r)
{
	put_array(e, N_ROW);
	put_hop_ref(e, &r->at, false);
	put_below(e, r->direction, DT_DIR_MAX);
	put_uint(e, r->seen);
	put_uint(e, r->dropped);
	put_uint(e, r->vanished);
	put_str(e, r->top_reason, sizeof(r->top_reason));
}

/* [judged, delivered, dropped, vanished, in_flight, [node, ifname, hook], reason, sentence] */
static void put_verdict(struct enc *e, const struct dt_verdict *v)
{
	put_array(e, N_VERDICT);
	put_uint(e, v->judged);
	put_uint(e, v->delivered);
	put_uint(e, v->dropped);
	put_uint(e, v->vanished);
	put_uint(e, v->in_flight);
	put_hop_ref(e, &v->at, true);
	put_str(e, v->reason, sizeof(v->reason));
	put_str(e, v->sentence, sizeof(v->sentence));
	put_uint(e, v->dest_unknown);
}

int dt_batch_encode(msgpack_sbuffer *out, const struct dt_batch *b)
{
	struct enc e;
	uint32_t i;

	enc_begin(&e, out, DT_MSG_BATCH, N_BATCH);
	put_str(&e, b->sender, sizeof(b->sender));
	put_uint(&e, b->seq);
	put_uint(&e, b->ctl_gen);
	put_str(&e, b->node, sizeof(b->node));
	if (put_list(&e, b->n_ifaces, DT_BATCH_MAX_IFACES, b->ifaces)) {
		for (i = 0; i < b->n_ifaces && e.err == 0; i++) {
			put_str(&e, b->ifaces[i], sizeof(b->ifaces[i]));
		}
	}
	put_lost(&e, b->lost);
	if (put_list(&e, b->n_strings, DT_BATCH_MAX_STRINGS, b->strings)) {
		for (i = 0; i < b->n_strings && e.err == 0; i++) {
			put_str(&e, b->strings[i], sizeof(b->strings[i]));
		}
	}
	if (put_list(&e, b->n_samples, DT_BATCH_MAX_SAMPLES, b->samples)) {
		for (i = 0; i < b->n_samples && e.err == 0; i++) {
			put_sample(&e, &b->samples[i], b->n_ifaces, b->n_strings);
		}
	}
	if (put_list(&e, b->n_nodes, DT_BATCH_MAX_NODES, b->nodes)) {
		for (i = 0; i < b->n_nodes && e.err == 0; i++) {
			put_node(&e, &b->nodes[i]);
		}
	}
	return enc_end(&e);
}

int dt_ack_encode(msgpack_sbuffer *out, const struct dt_ack *a)
{
	struct enc e;

	enc_begin(&e, out, DT_MSG_ACK, N_ACK);
	put_uint(&e, a->seq);
	put_below(&e, a->status, DT_ST_MAX);
	if (a->has_control) {
		put_array(&e, N_CONTROL);
		put_control(&e, &a->control);
	} else {
		put_nil(&e);
	}
	return enc_end(&e);
}

int dt_control_encode(msgpack_sbuffer *out, const struct dt_control *c)
{
	struct enc e;

	enc_begin(&e, out, DT_MSG_CONTROL, N_CONTROL);
	put_control(&e, c);
	return enc_end(&e);
}

int dt_task_create_encode(msgpack_sbuffer *out, const char *token, const struct dt_task_spec *s)
{
	struct enc e;

	enc_begin(&e, out, DT_MSG_TASK_CREATE, N_CREATE);
	put_token(&e, token);
	put_spec(&e, s);
	return enc_end(&e);
}

/* [2, type, token, task_id]: TASK_GET, REPORT_GET, TASK_CANCEL */
static int encode_token_id(msgpack_sbuffer *out, enum dt_msg_type type, const char *token,
			   uint32_t task_id)
{
	struct enc e;

	enc_begin(&e, out, type, N_TOKEN_ID);
	put_token(&e, token);
	put_uint(&e, task_id);
	return enc_end(&e);
}

int dt_task_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id)
{
	return encode_token_id(out, DT_MSG_TASK_GET, token, task_id);
}

int dt_report_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id)
{
	return encode_token_id(out, DT_MSG_REPORT_GET, token, task_id);
}

int dt_task_cancel_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id)
{
	return encode_token_id(out, DT_MSG_TASK_CANCEL, token, task_id);
}

int dt_task_list_encode(msgpack_sbuffer *out, const char *token)
{
	struct enc e;

	enc_begin(&e, out, DT_MSG_TASK_LIST, N_TOKEN);
	put_token(&e, token);
	return enc_end(&e);
}

int dt_task_encode(msgpack_sbuffer *out, const struct dt_task_info *t)
{
	struct enc e;

	enc_begin(&e, out, DT_MSG_TASK, N_TASK);
	put_task(&e, t);
	return enc_end(&e);
}

int dt_tasks_encode(msgpack_sbuffer *out, const struct dt_task_list *l)
{
	struct enc e;
	uint32_t i;

	enc_begin(&e, out, DT_MSG_TASKS, N_TASKS);
	if (put_list(&e, l->n_tasks, DT_LIST_MAX_TASKS, l->tasks)) {
		for (i = 0; i < l->n_tasks && e.err == 0; i++) {
			put_task_record(&e, &l->tasks[i]);
		}
	}
	return enc_end(&e);
}

int dt_error_encode(msgpack_sbuffer *out, const struct dt_error *err)
{
	struct enc e;

	enc_begin(&e, out, DT_MSG_ERROR, N_ERROR);
	if (err->status == DT_ST_OK) {
		put_fail(&e, DT_PROTO_ERANGE);
	}
	put_below(&e, err->status, DT_ST_MAX);
	put_str(&e, err->message, sizeof(err->message));
	return enc_end(&e);
}

int dt_report_encode(msgpack_sbuffer *out, const struct dt_report *r)
{
	struct enc e;
	uint32_t i;

	enc_begin(&e, out, DT_MSG_REPORT, N_REPORT);
	put_task_record(&e, &r->task);
	if (put_list(&e, r->n_packets, DT_REPORT_MAX_PACKETS, r->packets)) {
		for (i = 0; i < r->n_packets && e.err == 0; i++) {
			put_packet(&e, &r->packets[i]);
		}
	}
	if (put_list(&e, r->n_stats, DT_REPORT_MAX_STATS, r->stats)) {
		for (i = 0; i < r->n_stats && e.err == 0; i++) {
			put_stat(&e, &r->stats[i]);
		}
	}
	put_lost(&e, r->lost);
	if (put_list(&e, r->n_rows, DT_REPORT_MAX_ROWS, r->rows)) {
		for (i = 0; i < r->n_rows && e.err == 0; i++) {
			put_row(&e, &r->rows[i]);
		}
	}
	put_verdict(&e, &r->verdict);
	put_uint(&e, r->unmatched);
	put_uint(&e, r->window_ms);
	if (put_list(&e, r->n_copy_rows, DT_REPORT_MAX_COPY_ROWS, r->copy_rows)) {
		for (i = 0; i < r->n_copy_rows && e.err == 0; i++) {
			put_copy_row(&e, &r->copy_rows[i]);
		}
	}
	return enc_end(&e);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

struct dec {
	msgpack_zone zone;
	bool has_zone;
	int err; /* first error, then every get_*() does nothing and returns 0 or NULL */
};

static void get_fail(struct dec *d, int err)
{
	if (d->err == 0) {
		d->err = err;
	}
}

/*
 * Parses buf, which must hold exactly one message of the given type whose array has
 * 2 + n_fields elements. Returns its fields (after version and type), or NULL with d->err
 * set. The objects live in d's zone until dec_end().
 */
static const msgpack_object *dec_begin(struct dec *d, const void *buf, size_t len,
				       enum dt_msg_type type, uint32_t n_fields)
{
	enum dt_msg_type found = 0;
	size_t end = 0, zone_bytes = 0, off = 0;
	msgpack_unpack_return ret;
	msgpack_object root;
	uint64_t count = 0;
	int rv;

	d->has_zone = false;
	d->err = 0;
	if (buf == NULL) {
		get_fail(d, DT_PROTO_ETRUNC);
		return NULL;
	}
	if ((rv = mp_scan(buf, len, &end, &zone_bytes)) != 0) {
		get_fail(d, rv);
		return NULL;
	}
	if (end != len) {
		get_fail(d, DT_PROTO_ETRAILING);
		return NULL;
	}
	if ((rv = peek_header(buf, len, &found, &count)) != 0) {
		get_fail(d, rv);
		return NULL;
	}
	if (found != type) {
		get_fail(d, DT_PROTO_EMSGTYPE);
		return NULL;
	}
	if (count != 2 + (uint64_t)n_fields) {
		get_fail(d, DT_PROTO_ELENGTH);
		return NULL;
	}
	/* One chunk for the whole tree; the slack covers msgpack-c's alignment. */
	if (!msgpack_zone_init(&d->zone, zone_bytes + 64)) {
		get_fail(d, DT_PROTO_ENOMEM);
		return NULL;
	}
	d->has_zone = true;
	ret = msgpack_unpack(buf, len, &off, &d->zone, &root);
	if (ret != MSGPACK_UNPACK_SUCCESS || root.type != MSGPACK_OBJECT_ARRAY ||
	    root.via.array.size != count) {
		/* only nesting deeper than msgpack-c's stack gets here */
		get_fail(d, DT_PROTO_ETRUNC);
		return NULL;
	}
	return root.via.array.ptr + 2;
}

static int dec_end(struct dec *d)
{
	if (d->has_zone) {
		msgpack_zone_destroy(&d->zone);
		d->has_zone = false;
	}
	return d->err;
}

static uint64_t get_uint(struct dec *d, const msgpack_object *o, uint64_t max)
{
	if (d->err != 0) {
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		get_fail(d, DT_PROTO_ETYPE);
		return 0;
	}
	if (o->via.u64 > max) {
		get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return o->via.u64;
}

/* v < limit: enum values and indexes. */
static uint64_t get_below(struct dec *d, const msgpack_object *o, uint64_t limit)
{
	uint64_t v = get_uint(d, o, UINT64_MAX);

	if (d->err == 0 && v >= limit) {
		get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return v;
}

/* A hook: 1..DT_HOOK_MAX-1, or also DT_HOOK_NONE when none_ok (a verdict without loss). */
static uint8_t get_hook(struct dec *d, const msgpack_object *o, bool none_ok)
{
	uint64_t v = get_below(d, o, DT_HOOK_MAX);

	if (d->err == 0 && v == DT_HOOK_NONE && !none_ok) {
		get_fail(d, DT_PROTO_ERANGE);
	}
	return v;
}

/* An index into a batch's string table: < n_strings, or DT_STR_NONE. */
static uint16_t get_str_index(struct dec *d, const msgpack_object *o, uint32_t n_strings)
{
	uint64_t v = get_uint(d, o, UINT16_MAX);

	if (d->err == 0 && v != DT_STR_NONE && v >= n_strings) {
		get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return v;
}

/* A float of either width; integers are accepted too. Must be finite. */
static double get_double(struct dec *d, const msgpack_object *o)
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
		get_fail(d, DT_PROTO_ETYPE);
		return 0;
	}
	if (!isfinite(v)) {
		get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return v;
}

/* A msgpack str into char[size]: shorter than size, no NUL inside. */
static void get_str(struct dec *d, const msgpack_object *o, char *buf, size_t size)
{
	if (d->err != 0) {
		return;
	}
	if (o->type != MSGPACK_OBJECT_STR) {
		get_fail(d, DT_PROTO_ETYPE);
		return;
	}
	if (o->via.str.size >= size) {
		get_fail(d, DT_PROTO_ERANGE);
		return;
	}
	/* msgpack-c leaves ptr NULL for an empty string */
	if (o->via.str.size > 0) {
		if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
			get_fail(d, DT_PROTO_ERANGE);
			return;
		}
		memcpy(buf, o->via.str.ptr, o->via.str.size);
	}
	buf[o->via.str.size] = '\0';
}

/* cap_link, cap (2 fields): a packet prefix of at most DT_CAP_MAX bytes, DT_CAP_NONE exactly
 * when empty. */
static void get_cap(struct dec *d, const msgpack_object *f, uint8_t *link, uint16_t *len,
		    uint8_t *cap)
{
	*link = get_uint(d, &f[0], DT_CAP_IPV4);
	if (d->err != 0) {
		return;
	}
	if (f[1].type != MSGPACK_OBJECT_BIN) {
		get_fail(d, DT_PROTO_ETYPE);
		return;
	}
	if (f[1].via.bin.size > DT_CAP_MAX || (f[1].via.bin.size == 0) != (*link == DT_CAP_NONE)) {
		get_fail(d, DT_PROTO_ERANGE);
		return;
	}
	*len = (uint16_t)f[1].via.bin.size;
	if (*len > 0) {
		memcpy(cap, f[1].via.bin.ptr, *len);
	}
}

/* An array of at most max elements. Returns its elements and stores their count. */
static const msgpack_object *get_list(struct dec *d, const msgpack_object *o, uint32_t max,
				      uint32_t *n)
{
	*n = 0;
	if (d->err != 0) {
		return NULL;
	}
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		get_fail(d, DT_PROTO_ETYPE);
		return NULL;
	}
	if (o->via.array.size > max) {
		get_fail(d, DT_PROTO_ELENGTH);
		return NULL;
	}
	*n = o->via.array.size;
	return o->via.array.ptr;
}

/* An array of exactly n elements (a positional record). */
static const msgpack_object *get_record(struct dec *d, const msgpack_object *o, uint32_t n)
{
	const msgpack_object *f;
	uint32_t found;

	f = get_list(d, o, UINT32_MAX, &found);
	if (f != NULL && found != n) {
		get_fail(d, DT_PROTO_ELENGTH);
		return NULL;
	}
	return f;
}

/* Zeroed room for n items (NULL for none). */
static void *get_mem(struct dec *d, uint32_t n, size_t size)
{
	void *p;

	if (d->err != 0 || n == 0) {
		return NULL;
	}
	if ((p = calloc(n, size)) == NULL) {
		get_fail(d, DT_PROTO_ENOMEM);
	}
	return p;
}

/*
 * The get_*() below that take f read fields inline from f[0] on; f may be NULL when
 * d->err is set, so they return before touching it.
 */

/* saddr, daddr, sport, dport (4 fields, inline); proto and vni are left as they are */
static void get_addrs(struct dec *d, const msgpack_object *f, struct dt_tuple *t)
{
	if (d->err != 0) {
		return;
	}
	t->saddr = get_uint(d, &f[0], UINT32_MAX);
	t->daddr = get_uint(d, &f[1], UINT32_MAX);
	t->sport = get_uint(d, &f[2], UINT16_MAX);
	t->dport = get_uint(d, &f[3], UINT16_MAX);
}

static void get_tuple(struct dec *d, const msgpack_object *f, struct dt_tuple *t)
{
	if (d->err != 0) {
		return;
	}
	get_addrs(d, f, t);
	t->proto = get_uint(d, &f[4], UINT8_MAX);
	t->vni = get_uint(d, &f[5], DT_VNI_MAX);
}

/* flags, tuple, budget, duration_s, rate_pps (10 fields, inline) */
static void get_spec(struct dec *d, const msgpack_object *f, struct dt_task_spec *s)
{
	if (d->err != 0) {
		return;
	}
	s->flags = get_uint(d, &f[0], UINT32_MAX);
	get_tuple(d, &f[1], &s->tuple);
	s->budget = get_uint(d, &f[7], UINT32_MAX);
	s->duration_s = get_uint(d, &f[8], UINT32_MAX);
	s->rate_pps = get_uint(d, &f[9], UINT32_MAX);
}

static void get_arm(struct dec *d, const msgpack_object *o, struct dt_arm *a)
{
	const msgpack_object *f = get_record(d, o, N_ARM);

	if (f == NULL) {
		return;
	}
	a->task_id = get_uint(d, &f[0], UINT32_MAX);
	a->flags = get_uint(d, &f[1], UINT32_MAX);
	get_tuple(d, &f[2], &a->tuple);
	a->budget = get_uint(d, &f[8], UINT32_MAX);
	a->rate_pps = get_uint(d, &f[9], UINT32_MAX);
}

static void get_control(struct dec *d, const msgpack_object *f, struct dt_control *c)
{
	const msgpack_object *arms;
	uint32_t i;

	if (d->err != 0) {
		return;
	}
	c->gen = get_uint(d, &f[0], UINT64_MAX);
	arms = get_list(d, &f[1], DT_CONTROL_MAX_TASKS, &c->n_arms);
	c->arms = get_mem(d, c->n_arms, sizeof(*c->arms));
	for (i = 0; i < c->n_arms && d->err == 0; i++) {
		get_arm(d, &arms[i], &c->arms[i]);
	}
}

/* the 20 task fields, inline */
static void get_task(struct dec *d, const msgpack_object *f, struct dt_task_info *t)
{
	if (d->err != 0) {
		return;
	}
	t->id = get_uint(d, &f[0], UINT32_MAX);
	t->state = get_below(d, &f[1], DT_TASK_STATE_MAX);
	get_spec(d, &f[2], &t->spec);
	t->created_ns = get_uint(d, &f[12], UINT64_MAX);
	t->colored = get_uint(d, &f[13], UINT64_MAX);
	t->delivered = get_uint(d, &f[14], UINT64_MAX);
	get_str(d, &f[15], t->tenant, sizeof(t->tenant));
	t->status = get_below(d, &f[16], DT_TS_MAX);
	get_str(d, &f[17], t->status_text, sizeof(t->status_text));
	t->armed_ns = get_uint(d, &f[18], UINT64_MAX);
	t->ended_ns = get_uint(d, &f[19], UINT64_MAX);
}

/* [id, state, ...]: the task fields in an array of their own */
static void get_task_record(struct dec *d, const msgpack_object *o, struct dt_task_info *t)
{
	get_task(d, get_record(d, o, N_TASK), t);
}

/* [node, ctl_gen, [[vni, addr]...]] */
static void get_node(struct dec *d, const msgpack_object *o, struct dt_node_state *n)
{
	const msgpack_object *f = get_record(d, o, N_NODE);
	const msgpack_object *items, *ep;
	uint32_t i;

	if (f == NULL) {
		return;
	}
	get_str(d, &f[0], n->node, sizeof(n->node));
	n->ctl_gen = get_uint(d, &f[1], UINT64_MAX);
	items = get_list(d, &f[2], DT_NODE_MAX_ENDPOINTS, &n->n_endpoints);
	n->endpoints = get_mem(d, n->n_endpoints, sizeof(*n->endpoints));
	for (i = 0; i < n->n_endpoints && d->err == 0; i++) {
		if ((ep = get_record(d, &items[i], N_ENDPOINT)) != NULL) {
			n->endpoints[i].vni = get_uint(d, &ep[0], DT_VNI_MAX);
			n->endpoints[i].addr = get_uint(d, &ep[1], UINT32_MAX);
		}
	}
}

static void get_lost(struct dec *d, const msgpack_object *o, uint64_t *lost)
{
	const msgpack_object *f = get_record(d, o, DT_LOSS_MAX);
	unsigned int i;

	for (i = 0; f != NULL && i < DT_LOSS_MAX; i++) {
		lost[i] = get_uint(d, &f[i], UINT64_MAX);
	}
}

/* node, ifname, hook (3 fields, inline): a hop place; hook 0 only when none_ok */
static void get_place(struct dec *d, const msgpack_object *f, struct dt_hop_ref *r, bool none_ok)
{
	if (d->err != 0) {
		return;
	}
	get_str(d, &f[0], r->node, sizeof(r->node));
	get_str(d, &f[1], r->ifname, sizeof(r->ifname));
	r->hook = get_hook(d, &f[2], none_ok);
}

/* [node, ifname, hook]: a hop place in an array of its own */
static void get_hop_ref(struct dec *d, const msgpack_object *o, struct dt_hop_ref *r, bool none_ok)
{
	get_place(d, get_record(d, o, N_HOP_REF), r, none_ok);
}

static void get_sample(struct dec *d, const msgpack_object *o, uint32_t n_ifaces,
		       uint32_t n_strings, struct dt_wire_sample *s)
{
	const msgpack_object *f = get_record(d, o, N_SAMPLE);

	if (f == NULL) {
		return;
	}
	s->hook = get_hook(d, &f[0], false);
	s->flags = get_uint(d, &f[1], UINT8_MAX);
	s->iface = get_below(d, &f[2], n_ifaces);
	s->ts_ns = get_uint(d, &f[3], UINT64_MAX);
	get_tuple(d, &f[4], &s->tuple);
	s->task_id = get_uint(d, &f[10], UINT32_MAX);
	s->ip_id = get_uint(d, &f[11], UINT16_MAX);
	s->ident = get_uint(d, &f[12], UINT32_MAX);
	s->len = get_uint(d, &f[13], UINT32_MAX);
	s->outer_saddr = get_uint(d, &f[14], UINT32_MAX);
	s->outer_daddr = get_uint(d, &f[15], UINT32_MAX);
	get_addrs(d, &f[16], &s->orig);
	if (s->flags & DT_SAMPLE_F_NAT) {
		/* orig has the proto and vni of tuple; without a NAT they stay 0 */
		s->orig.proto = s->tuple.proto;
		s->orig.vni = s->tuple.vni;
	}
	s->drop_reason = get_uint(d, &f[20], UINT32_MAX);
	s->drop_name = get_str_index(d, &f[21], n_strings);
	s->drop_where = get_str_index(d, &f[22], n_strings);
	get_cap(d, &f[23], &s->cap_link, &s->cap_len, s->cap);
	s->frag = get_uint(d, &f[25], DT_FRAG_MF | DT_FRAG_OFFSET);
}

/* Hop index of a packet; proto and vni come from the packet's tuple. */
static void get_hop(struct dec *d, const msgpack_object *o, const struct dt_tuple *packet,
		    uint32_t index, struct dt_hop *h)
{
	const msgpack_object *f = get_record(d, o, N_HOP);

	if (f == NULL) {
		return;
	}
	get_place(d, &f[0], &h->at, false);
	h->ts_ns = get_uint(d, &f[3], UINT64_MAX);
	get_addrs(d, &f[4], &h->tuple);
	h->tuple.proto = packet->proto;
	h->tuple.vni = packet->vni;
	get_cap(d, &f[8], &h->cap_link, &h->cap_len, h->cap);
	if (index == 0) {
		/* the root, and only the root, has no parent */
		h->parent = get_uint(d, &f[10], DT_HOP_ROOT);
		if (d->err == 0 && h->parent != DT_HOP_ROOT) {
			get_fail(d, DT_PROTO_ERANGE);
		}
	} else {
		h->parent = get_below(d, &f[10], index);
	}
	h->branch = get_below(d, &f[11], DT_BRANCH_MAX);
	h->copy_end = get_below(d, &f[12], DT_COPY_MAX);
	h->drop_reason = get_uint(d, &f[13], UINT32_MAX);
	get_str(d, &f[14], h->drop_name, sizeof(h->drop_name));
	get_str(d, &f[15], h->drop_where, sizeof(h->drop_where));
	h->refrag = get_below(d, &f[16], 2);
}

static void get_packet(struct dec *d, const msgpack_object *o, struct dt_packet_path *p)
{
	const msgpack_object *f = get_record(d, o, N_PACKET);
	const msgpack_object *hops;
	uint32_t i;

	if (f == NULL) {
		return;
	}
	p->ip_id = get_uint(d, &f[0], UINT16_MAX);
	p->ident = get_uint(d, &f[1], UINT32_MAX);
	p->len = get_uint(d, &f[2], UINT32_MAX);
	p->direction = get_below(d, &f[3], DT_DIR_MAX);
	p->fate = get_below(d, &f[4], DT_FATE_MAX);
	get_tuple(d, &f[5], &p->tuple);
	p->drop_reason = get_uint(d, &f[11], UINT32_MAX);
	get_str(d, &f[12], p->drop_name, sizeof(p->drop_name));
	get_str(d, &f[13], p->drop_where, sizeof(p->drop_where));
	hops = get_list(d, &f[14], DT_REPORT_MAX_HOPS, &p->n_hops);
	p->hops = get_mem(d, p->n_hops, sizeof(*p->hops));
	for (i = 0; i < p->n_hops && d->err == 0; i++) {
		get_hop(d, &hops[i], &p->tuple, i, &p->hops[i]);
	}
	p->dest_known = get_below(d, &f[15], 2);
	p->n_copies = get_uint(d, &f[16], UINT32_MAX);
	p->frag = get_uint(d, &f[17], DT_FRAG_MF | DT_FRAG_OFFSET);
	p->datagram_fate = get_below(d, &f[18], DT_FATE_MAX);
}

static void get_stat(struct dec *d, const msgpack_object *o, struct dt_hop_stat *s)
{
	const msgpack_object *f = get_record(d, o, N_STAT);

	if (f == NULL) {
		return;
	}
	get_hop_ref(d, &f[0], &s->from, false);
	get_hop_ref(d, &f[1], &s->to, false);
	s->count = get_uint(d, &f[2], UINT64_MAX);
	s->min_ns = get_uint(d, &f[3], UINT64_MAX);
	s->max_ns = get_uint(d, &f[4], UINT64_MAX);
	s->mean_ns = get_double(d, &f[5]);
	s->stddev_ns = get_double(d, &f[6]);
	s->branch = get_below(d, &f[7], DT_BRANCH_MAX);
	s->direction = get_below(d, &f[8], DT_DIR_MAX);
}

static void get_copy_row(struct dec *d, const msgpack_object *o, struct dt_copy_row *c)
{
	const msgpack_object *f = get_record(d, o, N_COPY_ROW);

	if (f == NULL) {
		return;
	}
	get_hop_ref(d, &f[0], &c->at, false);
	c->direction = get_below(d, &f[1], DT_DIR_MAX);
	c->end = get_below(d, &f[2], DT_COPY_MAX);
	if (d->err == 0 && c->end == DT_COPY_NONE) {
		get_fail(d, DT_PROTO_ERANGE);
	}
	c->count = get_uint(d, &f[3], UINT64_MAX);
	get_str(d, &f[4], c->reason, sizeof(c->reason));
}

static void get_row(struct dec *d, const msgpack_object *o, struct dt_hop_row *r)
{
	const msgpack_object *f = get_record(d, o, N_ROW);

	if (f == NULL) {
		return;
	}
	get_hop_ref(d, &f[0], &r->at, false);
	r->direction = get_below(d, &f[1], DT_DIR_MAX);
	r->seen = get_uint(d, &f[2], UINT64_MAX);
	r->dropped = get_uint(d, &f[3], UINT64_MAX);
	r->vanished = get_uint(d, &f[4], UINT64_MAX);
	get_str(d, &f[5], r->top_reason, sizeof(r->top_reason));
}

static void get_verdict(struct dec *d, const msgpack_object *o, struct dt_verdict *v)
{
	const msgpack_object *f = get_record(d, o, N_VERDICT);

	if (f == NULL) {
		return;
	}
	v->judged = get_uint(d, &f[0], UINT64_MAX);
	v->delivered = get_uint(d, &f[1], UINT64_MAX);
	v->dropped = get_uint(d, &f[2], UINT64_MAX);
	v->vanished = get_uint(d, &f[3], UINT64_MAX);
	v->in_flight = get_uint(d, &f[4], UINT64_MAX);
	get_hop_ref(d, &f[5], &v->at, true);
	get_str(d, &f[6], v->reason, sizeof(v->reason));
	get_str(d, &f[7], v->sentence, sizeof(v->sentence));
	v->dest_unknown = get_uint(d, &f[8], UINT64_MAX);
}

int dt_batch_decode(const void *buf, size_t len, struct dt_batch *out)
{
	const msgpack_object *f, *items;
	struct dt_batch b;
	struct dec d;
	uint32_t i;

	memset(&b, 0, sizeof(b));
	f = dec_begin(&d, buf, len, DT_MSG_BATCH, N_BATCH);
	if (f != NULL) {
		get_str(&d, &f[0], b.sender, sizeof(b.sender));
		b.seq = get_uint(&d, &f[1], UINT64_MAX);
		b.ctl_gen = get_uint(&d, &f[2], UINT64_MAX);
		get_str(&d, &f[3], b.node, sizeof(b.node));
		items = get_list(&d, &f[4], DT_BATCH_MAX_IFACES, &b.n_ifaces);
		for (i = 0; i < b.n_ifaces && d.err == 0; i++) {
			get_str(&d, &items[i], b.ifaces[i], sizeof(b.ifaces[i]));
		}
		get_lost(&d, &f[5], b.lost);
		items = get_list(&d, &f[6], DT_BATCH_MAX_STRINGS, &b.n_strings);
		b.strings = get_mem(&d, b.n_strings, sizeof(*b.strings));
		for (i = 0; i < b.n_strings && d.err == 0; i++) {
			get_str(&d, &items[i], b.strings[i], sizeof(b.strings[i]));
		}
		items = get_list(&d, &f[7], DT_BATCH_MAX_SAMPLES, &b.n_samples);
		b.samples = get_mem(&d, b.n_samples, sizeof(*b.samples));
		for (i = 0; i < b.n_samples && d.err == 0; i++) {
			get_sample(&d, &items[i], b.n_ifaces, b.n_strings, &b.samples[i]);
		}
		items = get_list(&d, &f[8], DT_BATCH_MAX_NODES, &b.n_nodes);
		b.nodes = get_mem(&d, b.n_nodes, sizeof(*b.nodes));
		for (i = 0; i < b.n_nodes && d.err == 0; i++) {
			get_node(&d, &items[i], &b.nodes[i]);
		}
	}
	if (dec_end(&d) != 0) {
		dt_batch_free(&b);
	}
	memcpy(out, &b, sizeof(b));
	return d.err;
}

void dt_batch_free(struct dt_batch *b)
{
	uint32_t i;

	for (i = 0; b->nodes != NULL && i < b->n_nodes; i++) {
		free(b->nodes[i].endpoints);
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
	struct dec d;

	f = dec_begin(&d, buf, len, DT_MSG_CONTROL, N_CONTROL);
	get_control(&d, f, &c);
	if (dec_end(&d) != 0) {
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
	struct dec d;

	memset(&a, 0, sizeof(a));
	f = dec_begin(&d, buf, len, DT_MSG_ACK, N_ACK);
	if (f != NULL) {
		a.seq = get_uint(&d, &f[0], UINT64_MAX);
		a.status = get_below(&d, &f[1], DT_ST_MAX);
		if (d.err == 0 && f[2].type != MSGPACK_OBJECT_NIL) {
			a.has_control = true;
			get_control(&d, get_record(&d, &f[2], N_CONTROL), &a.control);
		}
	}
	if (dec_end(&d) != 0) {
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

int dt_task_create_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX],
			  struct dt_task_spec *out)
{
	char tok[DT_TOKEN_MAX] = "";
	const msgpack_object *f;
	struct dt_task_spec s;
	struct dec d;

	memset(&s, 0, sizeof(s));
	f = dec_begin(&d, buf, len, DT_MSG_TASK_CREATE, N_CREATE);
	if (f != NULL) {
		get_str(&d, &f[0], tok, sizeof(tok));
		get_spec(&d, &f[1], &s);
	}
	if (dec_end(&d) != 0) {
		memset(tok, 0, sizeof(tok));
		memset(&s, 0, sizeof(s));
	}
	memcpy(token, tok, sizeof(tok));
	memcpy(out, &s, sizeof(s));
	return d.err;
}

/*
 * [2, type, token] or [2, type, token, task_id]: the requests that carry only the token
 * (task_id NULL) or the token and a task id. Both outputs are all zero on error.
 */
static int decode_token_id(const void *buf, size_t len, enum dt_msg_type type,
			   char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	char tok[DT_TOKEN_MAX] = "";
	const msgpack_object *f;
	uint32_t id = 0;
	struct dec d;

	f = dec_begin(&d, buf, len, type, task_id != NULL ? N_TOKEN_ID : N_TOKEN);
	if (f != NULL) {
		get_str(&d, &f[0], tok, sizeof(tok));
		if (task_id != NULL) {
			id = get_uint(&d, &f[1], UINT32_MAX);
		}
	}
	if (dec_end(&d) != 0) {
		memset(tok, 0, sizeof(tok));
		id = 0;
	}
	memcpy(token, tok, sizeof(tok));
	if (task_id != NULL) {
		*task_id = id;
	}
	return d.err;
}

int dt_task_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	return decode_token_id(buf, len, DT_MSG_TASK_GET, token, task_id);
}

int dt_report_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	return decode_token_id(buf, len, DT_MSG_REPORT_GET, token, task_id);
}

int dt_task_cancel_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	return decode_token_id(buf, len, DT_MSG_TASK_CANCEL, token, task_id);
}

int dt_task_list_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX])
{
	return decode_token_id(buf, len, DT_MSG_TASK_LIST, token, NULL);
}

int dt_task_decode(const void *buf, size_t len, struct dt_task_info *out)
{
	const msgpack_object *f;
	struct dt_task_info t;
	struct dec d;

	memset(&t, 0, sizeof(t));
	f = dec_begin(&d, buf, len, DT_MSG_TASK, N_TASK);
	get_task(&d, f, &t);
	if (dec_end(&d) != 0) {
		memset(&t, 0, sizeof(t));
	}
	memcpy(out, &t, sizeof(t));
	return d.err;
}

int dt_tasks_decode(const void *buf, size_t len, struct dt_task_list *out)
{
	struct dt_task_list l = {0};
	const msgpack_object *f, *items;
	struct dec d;
	uint32_t i;

	f = dec_begin(&d, buf, len, DT_MSG_TASKS, N_TASKS);
	if (f != NULL) {
		items = get_list(&d, &f[0], DT_LIST_MAX_TASKS, &l.n_tasks);
		l.tasks = get_mem(&d, l.n_tasks, sizeof(*l.tasks));
		for (i = 0; i < l.n_tasks && d.err == 0; i++) {
			get_task_record(&d, &items[i], &l.tasks[i]);
		}
	}
	if (dec_end(&d) != 0) {
		dt_task_list_free(&l);
	}
	*out = l;
	return d.err;
}

void dt_task_list_free(struct dt_task_list *l)
{
	free(l->tasks);
	memset(l, 0, sizeof(*l));
}

int dt_error_decode(const void *buf, size_t len, struct dt_error *out)
{
	const msgpack_object *f;
	struct dt_error e;
	struct dec d;

	memset(&e, 0, sizeof(e));
	f = dec_begin(&d, buf, len, DT_MSG_ERROR, N_ERROR);
	if (f != NULL) {
		e.status = get_below(&d, &f[0], DT_ST_MAX);
		if (d.err == 0 && e.status == DT_ST_OK) {
			get_fail(&d, DT_PROTO_ERANGE);
		}
		get_str(&d, &f[1], e.message, sizeof(e.message));
	}
	if (dec_end(&d) != 0) {
		memset(&e, 0, sizeof(e));
	}
	memcpy(out, &e, sizeof(e));
	return d.err;
}

int dt_report_decode(const void *buf, size_t len, struct dt_report *out)
{
	const msgpack_object *f, *items;
	struct dt_report r;
	struct dec d;
	uint32_t i;

	memset(&r, 0, sizeof(r));
	f = dec_begin(&d, buf, len, DT_MSG_REPORT, N_REPORT);
	if (f != NULL) {
		get_task_record(&d, &f[0], &r.task);
		items = get_list(&d, &f[1], DT_REPORT_MAX_PACKETS, &r.n_packets);
		r.packets = get_mem(&d, r.n_packets, sizeof(*r.packets));
		for (i = 0; i < r.n_packets && d.err == 0; i++) {
			get_packet(&d, &items[i], &r.packets[i]);
		}
		items = get_list(&d, &f[2], DT_REPORT_MAX_STATS, &r.n_stats);
		r.stats = get_mem(&d, r.n_stats, sizeof(*r.stats));
		for (i = 0; i < r.n_stats && d.err == 0; i++) {
			get_stat(&d, &items[i], &r.stats[i]);
		}
		get_lost(&d, &f[3], r.lost);
		items = get_list(&d, &f[4], DT_REPORT_MAX_ROWS, &r.n_rows);
		r.rows = get_mem(&d, r.n_rows, sizeof(*r.rows));
		for (i = 0; i < r.n_rows && d.err == 0; i++) {
			get_row(&d, &items[i], &r.rows[i]);
		}
		get_verdict(&d, &f[5], &r.verdict);
		r.unmatched = get_uint(&d, &f[6], UINT64_MAX);
		r.window_ms = get_uint(&d, &f[7], UINT64_MAX);
		items = get_list(&d, &f[8], DT_REPORT_MAX_COPY_ROWS, &r.n_copy_rows);
		r.copy_rows = get_mem(&d, r.n_copy_rows, sizeof(*r.copy_rows));
		for (i = 0; i < r.n_copy_rows && d.err == 0; i++) {
			get_copy_row(&d, &items[i], &r.copy_rows[i]);
		}
	}
	if (dec_end(&d) != 0) {
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
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------------------------------- */
/* Names                                                                                    */
/* ---------------------------------------------------------------------------------------- */

const char *dt_proto_strerror(int err)
{
	switch (err) {
	case DT_PROTO_OK:
		return "success";
	case DT_PROTO_ETRUNC:
		return "truncated or malformed message";
	case DT_PROTO_ETYPE:
		return "field of the wrong type";
	case DT_PROTO_ELENGTH:
		return "array of the wrong length";
	case DT_PROTO_EVERSION:
		return "unsupported protocol version";
	case DT_PROTO_EMSGTYPE:
		return "unexpected message type";
	case DT_PROTO_ERANGE:
		return "value out of range";
	case DT_PROTO_ETRAILING:
		return "trailing bytes after the message";
	case DT_PROTO_ENOMEM:
		return "out of memory";
	default:
		return "unknown codec error";
	}
}

static const char *name_of(const char *const *names, size_t n, unsigned int v)
{
	return v < n && names[v] != NULL ? names[v] : "?";
}

#define NAME_OF(names, v) name_of(names, sizeof(names) / sizeof(names[0]), v)

const char *dt_hook_name(unsigned int hook)
{
	/* clang-format off */
	static const char *const names[DT_HOOK_MAX] = {
		[DT_HOOK_PORT_IN] = "port-in",
		[DT_HOOK_PORT_OUT] = "port-out",
		[DT_HOOK_UPLINK_IN] = "uplink-in",
		[DT_HOOK_UPLINK_OUT] = "uplink-out",
		[DT_HOOK_GW_OUT] = "gw-out",
		[DT_HOOK_GW_IN] = "gw-in",
		[DT_HOOK_DROP] = "drop",
	};
	/* clang-format on */

	return NAME_OF(names, hook);
}

const char *dt_direction_name(unsigned int dir)
{
	static const char *const names[DT_DIR_MAX] = {
		[DT_DIR_REQUEST] = "request",
		[DT_DIR_REPLY] = "reply",
	};

	return NAME_OF(names, dir);
}

const char *dt_fate_name(unsigned int fate)
{
	static const char *const names[DT_FATE_MAX] = {
		[DT_FATE_DELIVERED] = "delivered",
		[DT_FATE_DROPPED] = "dropped",
		[DT_FATE_VANISHED] = "vanished",
		[DT_FATE_IN_FLIGHT] = "in-flight",
		[DT_FATE_REASSEMBLED] = "reassembled",
		[DT_FATE_SEGMENTED] = "segmented",
	};

	return NAME_OF(names, fate);
}

const char *dt_branch_name(unsigned int branch)
{
	static const char *const names[DT_BRANCH_MAX] = {
		[DT_BRANCH_DEST] = "destination",
		[DT_BRANCH_COPY] = "copy",
	};

	return NAME_OF(names, branch);
}

const char *dt_copy_end_name(unsigned int end)
{
	static const char *const names[DT_COPY_MAX] = {
		[DT_COPY_NONE] = "",
		[DT_COPY_FILTERED] = "filtered",
		[DT_COPY_DROPPED] = "dropped",
		[DT_COPY_VANISHED] = "vanished",
		[DT_COPY_IN_FLIGHT] = "in-flight",
		[DT_COPY_DELIVERED] = "delivered",
	};

	return NAME_OF(names, end);
}

const char *dt_task_state_name(unsigned int state)
{
	static const char *const names[DT_TASK_STATE_MAX] = {
		[DT_TASK_NEW] = "new",
		[DT_TASK_READY] = "ready",
		[DT_TASK_ARMED] = "armed",
		[DT_TASK_RUNNING] = "running",
		[DT_TASK_DONE] = "done",
		[DT_TASK_EXPIRED] = "expired",
		[DT_TASK_CANCELLED] = "cancelled",
		[DT_TASK_FAILED] = "failed",
	};

	return NAME_OF(names, state);
}

const char *dt_status_name(unsigned int status)
{
	static const char *const names[DT_ST_MAX] = {
		[DT_ST_OK] = "ok",
		[DT_ST_INVALID] = "invalid",
		[DT_ST_NOT_FOUND] = "not-found",
		[DT_ST_REFUSED] = "refused",
		[DT_ST_FAILED] = "failed",
	};

	return NAME_OF(names, status);
}

const char *dt_task_status_name(unsigned int ts)
{
	static const char *const names[DT_TS_MAX] = {
		[DT_TS_OK] = "ok",
		[DT_TS_NO_HOST] = "no-host",
		[DT_TS_ARM_TIMEOUT] = "arm-timeout",
		[DT_TS_BUDGET_SPENT] = "budget-spent",
		[DT_TS_DURATION] = "duration",
		[DT_TS_CANCELLED] = "cancelled",
		[DT_TS_RESTARTED] = "restarted",
	};

	return NAME_OF(names, ts);
}

const char *dt_loss_name(unsigned int loss)
{
	static const char *const names[DT_LOSS_MAX] = {
		[DT_LOSS_RING_FULL] = "ring-full",
		[DT_LOSS_QUEUE_FULL] = "queue-full",
		[DT_LOSS_BAD_VERSION] = "bad-version",
		[DT_LOSS_REJECTED] = "rejected",
		[DT_LOSS_SPOOL_FULL] = "spool-full",
	};

	return NAME_OF(names, loss);
}
