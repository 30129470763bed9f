/* SPDX-License-Identifier: MIT */
/*
 * dt_codec_int.h - what the files of the codec share, and no consumer includes: the element
 * counts of the positional layouts, the encoder's and the decoder's sticky-error state, the
 * typed putters and getters of one msgpack value each, and the records several messages
 * contain (tuple, packet prefix, loss counters, task record).
 *
 * The one-value putters and getters are static inline: every field of every message goes
 * through them, and the batch decoder (dt_link_msg.c) must inline them as it did when the
 * codec was one file. Everything else is defined once, in the file named at its
 * declaration.
 */
#ifndef DT_CODEC_INT_H
#define DT_CODEC_INT_H

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "dt_proto.h"

#define DT_VNI_MAX 0xFFFFFFu

/* clang-format off */
/* Element counts of the positional layouts (dt_proto.h). */
#define N_SPEC 10    /* flags, tuple, budget, duration_s, rate_pps */
#define N_ARM 10     /* task_id, flags, tuple, budget, rate_pps */
#define N_TASK 20    /* id, state, spec, created_ns .. delivered, tenant .. ended_ns */
#define N_SAMPLE 26  /* hook .. outer_daddr, orig (4), drop_reason .. drop_where, cap_link, cap,
		      * frag */
#define N_BATCH 9    /* sender, seq, ctl_gen, node, ifnames, lost, strings, samples, nodes */
#define N_NODE 8     /* node, ctl_gen, [endpoint...], task_map_max, task_map_used,
		      * [arm_fail...], [gap...], [key_colored...] */
#define N_GAP 5	     /* from_ns, to_ns, cause, flags, lost */
#define N_COLORED 3  /* task_id, flags, colored */
#define N_ARM_FAIL 9 /* task_id, flags, tuple, err */
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
#define N_VERDICT 10 /* judged .. in_flight, [place], reason, sentence, dest_unknown,
		      * unobserved */
#define N_BLIND 3    /* node, [gap], packets */
#define N_REPORT 10  /* task, packets, stats, lost, rows, verdict, unmatched, window_ms,
		      * copy rows, blind windows */
/* clang-format on */

/* ---------------------------------------------------------------------------------------- */
/* Encoding: one msgpack value                                                              */
/* ---------------------------------------------------------------------------------------- */

struct dt_enc {
	msgpack_packer pk;
	msgpack_sbuffer *sb;
	size_t start; /* sb->size before this message: a failed encode truncates back to it */
	int err;      /* first error, then every put_*() does nothing */
};

static inline void dt_put_fail(struct dt_enc *e, int err)
{
	if (e->err == 0) {
		e->err = err;
	}
}

/* msgpack_pack_*() only fail when the sbuffer cannot grow. */
static inline void dt_put_check(struct dt_enc *e, int rv)
{
	if (rv != 0) {
		dt_put_fail(e, DT_PROTO_ENOMEM);
	}
}

static inline void dt_put_array(struct dt_enc *e, size_t n)
{
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_array(&e->pk, n));
	}
}

/* Unsigned integers always take their shortest encoding. */
static inline void dt_put_uint(struct dt_enc *e, uint64_t v)
{
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_uint64(&e->pk, v));
	}
}

static inline void dt_put_max(struct dt_enc *e, uint64_t v, uint64_t max)
{
	if (v > max) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	dt_put_uint(e, v);
}

/* v < limit: enum values and indexes. */
static inline void dt_put_below(struct dt_enc *e, uint64_t v, uint64_t limit)
{
	if (v >= limit) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	dt_put_uint(e, v);
}

/* A hook: 1..DT_HOOK_MAX-1, or also DT_HOOK_NONE when none_ok (a verdict without loss). */
static inline void dt_put_hook(struct dt_enc *e, unsigned int hook, bool none_ok)
{
	if (hook == DT_HOOK_NONE && !none_ok) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	dt_put_below(e, hook, DT_HOOK_MAX);
}

/* A NUL-terminated string held in a char[size]: unterminated means too long. */
static inline void dt_put_str(struct dt_enc *e, const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_str(&e->pk, n));
	}
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_str_body(&e->pk, s, n));
	}
}

/* The head of a variable-length list; true when its items should be written. */
static inline bool dt_put_list(struct dt_enc *e, uint32_t n, uint32_t max, const void *items)
{
	if (n > max || (n > 0 && items == NULL)) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	dt_put_array(e, n);
	return e->err == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: one msgpack value                                                              */
/* ---------------------------------------------------------------------------------------- */

struct dt_dec {
	msgpack_zone zone;
	bool has_zone;
	int err; /* first error, then every get_*() does nothing and returns 0 or NULL */
};

static inline void dt_get_fail(struct dt_dec *d, int err)
{
	if (d->err == 0) {
		d->err = err;
	}
}

static inline uint64_t dt_get_uint(struct dt_dec *d, const msgpack_object *o, uint64_t max)
{
	if (d->err != 0) {
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		dt_get_fail(d, DT_PROTO_ETYPE);
		return 0;
	}
	if (o->via.u64 > max) {
		dt_get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return o->via.u64;
}

/* v < limit: enum values and indexes. */
static inline uint64_t dt_get_below(struct dt_dec *d, const msgpack_object *o, uint64_t limit)
{
	uint64_t v = dt_get_uint(d, o, UINT64_MAX);

	if (d->err == 0 && v >= limit) {
		dt_get_fail(d, DT_PROTO_ERANGE);
		return 0;
	}
	return v;
}

/* A hook: 1..DT_HOOK_MAX-1, or also DT_HOOK_NONE when none_ok (a verdict without loss). */
static inline uint8_t dt_get_hook(struct dt_dec *d, const msgpack_object *o, bool none_ok)
{
	uint64_t v = dt_get_below(d, o, DT_HOOK_MAX);

	if (d->err == 0 && v == DT_HOOK_NONE && !none_ok) {
		dt_get_fail(d, DT_PROTO_ERANGE);
	}
	return v;
}

/* A msgpack str into char[size]: shorter than size, no NUL inside. */
static inline void dt_get_str(struct dt_dec *d, const msgpack_object *o, char *buf, size_t size)
{
	if (d->err != 0) {
		return;
	}
	if (o->type != MSGPACK_OBJECT_STR) {
		dt_get_fail(d, DT_PROTO_ETYPE);
		return;
	}
	if (o->via.str.size >= size) {
		dt_get_fail(d, DT_PROTO_ERANGE);
		return;
	}
	/* msgpack-c leaves ptr NULL for an empty string */
	if (o->via.str.size > 0) {
		if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
			dt_get_fail(d, DT_PROTO_ERANGE);
			return;
		}
		memcpy(buf, o->via.str.ptr, o->via.str.size);
	}
	buf[o->via.str.size] = '\0';
}

/* An array of at most max elements. Returns its elements and stores their count. */
static inline const msgpack_object *dt_get_list(struct dt_dec *d, const msgpack_object *o,
						uint32_t max, uint32_t *n)
{
	*n = 0;
	if (d->err != 0) {
		return NULL;
	}
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		dt_get_fail(d, DT_PROTO_ETYPE);
		return NULL;
	}
	if (o->via.array.size > max) {
		dt_get_fail(d, DT_PROTO_ELENGTH);
		return NULL;
	}
	*n = o->via.array.size;
	return o->via.array.ptr;
}

/* An array of exactly n elements (a positional record). */
static inline const msgpack_object *dt_get_record(struct dt_dec *d, const msgpack_object *o,
						  uint32_t n)
{
	const msgpack_object *f;
	uint32_t found;

	f = dt_get_list(d, o, UINT32_MAX, &found);
	if (f != NULL && found != n) {
		dt_get_fail(d, DT_PROTO_ELENGTH);
		return NULL;
	}
	return f;
}

/* Zeroed room for n items (NULL for none). */
static inline void *dt_get_mem(struct dt_dec *d, uint32_t n, size_t size)
{
	void *p;

	if (d->err != 0 || n == 0) {
		return NULL;
	}
	if ((p = calloc(n, size)) == NULL) {
		dt_get_fail(d, DT_PROTO_ENOMEM);
	}
	return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Defined once, shared by the messages                                                     */
/* ---------------------------------------------------------------------------------------- */

/* dt_wire.c: the envelope of every message */
void dt_enc_begin(struct dt_enc *e, msgpack_sbuffer *sb, enum dt_msg_type type, uint32_t n_fields);
int dt_enc_end(struct dt_enc *e);
const msgpack_object *dt_dec_begin(struct dt_dec *d, const void *buf, size_t len,
				   enum dt_msg_type type, uint32_t n_fields);
int dt_dec_end(struct dt_dec *d);

/*
 * dt_wire.c: decoding on the raw bytes, for a receiver that checks a message without
 * building its object tree (dt_batch_check()) and for re-framing one (dt_batch_reframe()).
 * The message is walked field by field from the offset dt_raw_begin() returns (the
 * envelope checked; 0 with d->err set): dt_raw_field() unpacks the object at *off with
 * msgpack-c into d's zone, after mp_scan() bounded it (as dt_dec_begin() does for the
 * whole message), dt_raw_skip() steps over it, dt_raw_list() reads the head of a list of
 * at most max elements (ETYPE, ELENGTH) and returns its count. dt_raw_records() walks a
 * list of at most max flat records of exactly n_fields (<= DT_RAW_RECORD_MAX) scalars,
 * each of the msgpack kind kinds[i] says, and hands each record to fn as the array object
 * msgpack-c would have built (on the stack, bins pointing into buf), so that the getters
 * that decode a record also check it. dt_raw_end() checks that the walk ended where the
 * message does (ETRAILING) and frees the zone. Like the getters, each does nothing once
 * d->err is set. Truncated input fails with DT_PROTO_ETRUNC where the walk meets its end.
 */
enum dt_raw_kind {
	DT_RAW_UINT = 1, /* any integer encoding holding a value >= 0 */
	DT_RAW_BIN = 2,
};

#define DT_RAW_RECORD_MAX 32

/* Record i of dt_raw_records(): rec is an array object of n_fields elements. */
typedef void (*dt_raw_record_fn)(struct dt_dec *d, const msgpack_object *rec, uint32_t i,
				 void *ctx);

size_t dt_raw_begin(struct dt_dec *d, const void *buf, size_t len, enum dt_msg_type type,
		    uint32_t n_fields);
void dt_raw_field(struct dt_dec *d, const void *buf, size_t len, size_t *off, msgpack_object *o);
void dt_raw_skip(struct dt_dec *d, const void *buf, size_t len, size_t *off);
uint32_t dt_raw_list(struct dt_dec *d, const void *buf, size_t len, size_t *off, uint32_t max);
uint32_t dt_raw_records(struct dt_dec *d, const void *buf, size_t len, size_t *off, uint32_t max,
			const uint8_t *kinds, uint32_t n_fields, dt_raw_record_fn fn, void *ctx);
int dt_raw_end(struct dt_dec *d, size_t len, size_t off);

/*
 * One field of a flat record at *off: a value of the given kind, read into o as msgpack-c
 * would have unpacked it (a positive integer, or a bin pointing into p). Returns 0 (*off
 * past it), DT_PROTO_ETRUNC or DT_PROTO_ETYPE. dt_raw_uint() is its fast path for integers.
 */
int dt_raw_value(const uint8_t *p, size_t len, size_t *off, enum dt_raw_kind kind,
		 msgpack_object *o);

/*
 * An integer field at *off into *v, as dt_raw_value() reads it. The encodings an encoder
 * writes (fixint, uint 8 to 64) are read inline when 9 bytes remain, without a branch
 * whose target depends on the bytes of an earlier field, so that a walk over many records
 * is not one long chain of dependent loads; anything else goes to dt_raw_value().
 */
static inline int dt_raw_uint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	size_t o = *off;
	msgpack_object obj;
	uint32_t v32;
	uint16_t v16;
	uint64_t v64;
	int rv;

	if (len - o >= 9) {
		uint8_t b = p[o];

		if (b < 0x80) {
			*v = b;
			*off = o + 1;
			return 0;
		}
		switch (b) {
		case 0xcc:
			*v = p[o + 1];
			*off = o + 2;
			return 0;
		case 0xcd:
			memcpy(&v16, p + o + 1, sizeof(v16));
			*v = be16toh(v16);
			*off = o + 3;
			return 0;
		case 0xce:
			memcpy(&v32, p + o + 1, sizeof(v32));
			*v = be32toh(v32);
			*off = o + 5;
			return 0;
		case 0xcf:
			memcpy(&v64, p + o + 1, sizeof(v64));
			*v = be64toh(v64);
			*off = o + 9;
			return 0;
		}
	}
	if ((rv = dt_raw_value(p, len, off, DT_RAW_UINT, &obj)) != 0) {
		return rv;
	}
	*v = obj.via.u64;
	return 0;
}

/*
 * dt_wire.c: records that several messages contain. The get_*() that take f read fields
 * inline from f[0] on; f may be NULL when d->err is set, so they return before touching it.
 */
void dt_put_addrs(struct dt_enc *e, const struct dt_tuple *t);
void dt_put_tuple(struct dt_enc *e, const struct dt_tuple *t);
void dt_put_cap(struct dt_enc *e, uint8_t link, uint16_t len, const uint8_t *cap);
void dt_put_lost(struct dt_enc *e, const uint64_t *lost);
void dt_get_addrs(struct dt_dec *d, const msgpack_object *f, struct dt_tuple *t);
void dt_get_tuple(struct dt_dec *d, const msgpack_object *f, struct dt_tuple *t);
void dt_get_cap(struct dt_dec *d, const msgpack_object *f, uint8_t *link, uint16_t *len,
		uint8_t *cap);
void dt_get_lost(struct dt_dec *d, const msgpack_object *o, uint64_t *lost);

/* dt_link_msg.c: a gap record, [from_ns, to_ns, cause, flags, lost] (node states,
 * reports' blind windows) */
void dt_put_gap(struct dt_enc *e, const struct dt_gap *g);
void dt_get_gap(struct dt_dec *d, const msgpack_object *o, struct dt_gap *g);

/* dt_api_msg.c: the task fields in an array of their own (reports, task lists) */
void dt_put_task_record(struct dt_enc *e, const struct dt_task_info *t);
void dt_get_task_record(struct dt_dec *d, const msgpack_object *o, struct dt_task_info *t);

#endif /* DT_CODEC_INT_H */
