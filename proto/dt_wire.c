/* SPDX-License-Identifier: MIT */
/*
 * dt_wire.c - what every message of the dyetrace msgpack codec goes through: the raw
 * msgpack framing scan, the header (version and type), the start and end of every encode
 * and decode, the records several messages contain (tuple, packet prefix, loss counters),
 * and the codec's error texts. The contract is in dt_proto.h, the wire format in
 * proto/README.md; the messages are in dt_link_msg.c, dt_api_msg.c and dt_report.c.
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
 * Encoders and getters carry a sticky error (struct dt_enc, struct dt_dec, in
 * dt_codec_int.h): the first failure is kept and every later call does nothing, so that
 * each message reads as a plain list of its fields. A failed encode truncates the caller's
 * buffer back to where it started; a failed decode frees what it allocated and hands back
 * an all-zero struct.
 *
 * Encoders check the same ranges as decoders: whatever encodes successfully decodes.
 */
#include <endian.h>
#include <string.h>

#include "dt_codec_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Raw msgpack framing                                                                      */
/* ---------------------------------------------------------------------------------------- */

enum mp_kind {
	MP_OTHER = 0,	       /* nil, bool, negative integer, float, str, ext */
	MP_UINT = DT_RAW_UINT, /* any integer encoding holding a value >= 0 */
	MP_BIN = DT_RAW_BIN,
	MP_ARRAY,
	MP_MAP,
};

/* The head of one msgpack object. */
struct mp_head {
	enum mp_kind kind;
	uint64_t val;  /* MP_UINT: the value; MP_ARRAY, MP_MAP: the element (pair) count */
	uint64_t body; /* payload bytes that follow the head (str, bin, ext, float) */
};

/* Reads a big-endian unsigned integer of n (1, 2, 4 or 8) bytes. */
static uint64_t be_uint(const uint8_t *q, unsigned int n)
{
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (n) {
	case 1:
		return q[0];
	case 2:
		memcpy(&v16, q, sizeof(v16));
		return be16toh(v16);
	case 4:
		memcpy(&v32, q, sizeof(v32));
		return be32toh(v32);
	default:
		memcpy(&v64, q, sizeof(v64));
		return be64toh(v64);
	}
}

/* Reads a big-endian unsigned integer of n (1, 2, 4 or 8) bytes at *off. */
static int mp_arg(const uint8_t *p, size_t len, size_t *off, unsigned int n, uint64_t *out)
{
	if (len - *off < n) {
		return DT_PROTO_ETRUNC;
	}
	*out = be_uint(p + *off, n);
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
		h->kind = MP_BIN;
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
 * elements, a supported version, a known type. Stores the type, the array's element count
 * and the offset of its first field (after the type). The rest of the message is not
 * looked at.
 */
static int peek_header(const void *buf, size_t len, enum dt_msg_type *type, uint64_t *count,
		       size_t *fields)
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
	*fields = off;
	return 0;
}

int dt_msg_type(const void *buf, size_t len, enum dt_msg_type *type)
{
	uint64_t count;
	size_t fields;
	int rv;

	*type = 0;
	if (buf == NULL) {
		return DT_PROTO_ETRUNC;
	}
	if ((rv = peek_header(buf, len, type, &count, &fields)) != 0) {
		*type = 0;
	}
	return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

void dt_enc_begin(struct dt_enc *e, msgpack_sbuffer *sb, enum dt_msg_type type, uint32_t n_fields)
{
	e->sb = sb;
	e->start = sb->size;
	e->err = 0;
	msgpack_packer_init(&e->pk, sb, msgpack_sbuffer_write);
	dt_put_array(e, 2 + n_fields);
	dt_put_uint(e, DT_PROTO_VERSION);
	dt_put_uint(e, type);
}

int dt_enc_end(struct dt_enc *e)
{
	if (e->err != 0) {
		e->sb->size = e->start;
	}
	return e->err;
}

/* saddr, daddr, sport, dport (4 fields, inline): a tuple whose proto and vni are implied */
void dt_put_addrs(struct dt_enc *e, const struct dt_tuple *t)
{
	dt_put_uint(e, t->saddr);
	dt_put_uint(e, t->daddr);
	dt_put_uint(e, t->sport);
	dt_put_uint(e, t->dport);
}

/* saddr, daddr, sport, dport, proto, vni (6 fields, inline) */
void dt_put_tuple(struct dt_enc *e, const struct dt_tuple *t)
{
	dt_put_addrs(e, t);
	dt_put_uint(e, t->proto);
	dt_put_max(e, t->vni, DT_VNI_MAX);
}

/* cap_link, cap (2 fields, inline): a packet prefix, DT_CAP_NONE exactly when empty */
void dt_put_cap(struct dt_enc *e, uint8_t link, uint16_t len, const uint8_t *cap)
{
	if (len > DT_CAP_MAX || (len == 0) != (link == DT_CAP_NONE) || link > DT_CAP_IPV4) {
		dt_put_fail(e, DT_PROTO_ERANGE);
	}
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_uint8(&e->pk, link));
	}
	if (e->err == 0) {
		dt_put_check(e, msgpack_pack_bin(&e->pk, len));
	}
	if (e->err == 0 && len > 0) {
		dt_put_check(e, msgpack_pack_bin_body(&e->pk, cap, len));
	}
}

/* [lost...]: exactly DT_LOSS_MAX counters */
void dt_put_lost(struct dt_enc *e, const uint64_t *lost)
{
	unsigned int i;

	dt_put_array(e, DT_LOSS_MAX);
	for (i = 0; i < DT_LOSS_MAX; i++) {
		dt_put_uint(e, lost[i]);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/*
 * Checks the envelope of a message of the given type with n_fields fields (after version
 * and type) on the raw bytes, and stores the offset of its first field.
 */
static int check_envelope(const void *buf, size_t len, enum dt_msg_type type, uint32_t n_fields,
			  size_t *fields)
{
	enum dt_msg_type found = 0;
	uint64_t count = 0;
	int rv;

	if ((rv = peek_header(buf, len, &found, &count, fields)) != 0) {
		return rv;
	}
	if (found != type) {
		return DT_PROTO_EMSGTYPE;
	}
	if (count != 2 + (uint64_t)n_fields) {
		return DT_PROTO_ELENGTH;
	}
	return 0;
}

/*
 * Parses buf, which must hold exactly one message of the given type whose array has
 * 2 + n_fields elements. Returns its fields (after version and type), or NULL with d->err
 * set. The objects live in d's zone until dt_dec_end().
 */
const msgpack_object *dt_dec_begin(struct dt_dec *d, const void *buf, size_t len,
				   enum dt_msg_type type, uint32_t n_fields)
{
	size_t end = 0, zone_bytes = 0, off = 0, fields;
	msgpack_unpack_return ret;
	msgpack_object root;
	int rv;

	d->has_zone = false;
	d->err = 0;
	if (buf == NULL) {
		dt_get_fail(d, DT_PROTO_ETRUNC);
		return NULL;
	}
	if ((rv = mp_scan(buf, len, &end, &zone_bytes)) != 0) {
		dt_get_fail(d, rv);
		return NULL;
	}
	if (end != len) {
		dt_get_fail(d, DT_PROTO_ETRAILING);
		return NULL;
	}
	if ((rv = check_envelope(buf, len, type, n_fields, &fields)) != 0) {
		dt_get_fail(d, rv);
		return NULL;
	}
	/* One chunk for the whole tree; the slack covers msgpack-c's alignment. */
	if (!msgpack_zone_init(&d->zone, zone_bytes + 64)) {
		dt_get_fail(d, DT_PROTO_ENOMEM);
		return NULL;
	}
	d->has_zone = true;
	ret = msgpack_unpack(buf, len, &off, &d->zone, &root);
	if (ret != MSGPACK_UNPACK_SUCCESS || root.type != MSGPACK_OBJECT_ARRAY ||
	    root.via.array.size != 2 + n_fields) {
		/* only nesting deeper than msgpack-c's stack gets here */
		dt_get_fail(d, DT_PROTO_ETRUNC);
		return NULL;
	}
	return root.via.array.ptr + 2;
}

int dt_dec_end(struct dt_dec *d)
{
	if (d->has_zone) {
		msgpack_zone_destroy(&d->zone);
		d->has_zone = false;
	}
	return d->err;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding on the raw bytes: a walk that unpacks only the fields asked for                  */
/* ---------------------------------------------------------------------------------------- */

/* Total size of the unsigned integers whose first byte fixes it; 0 for everything else. */
/* clang-format off */
static const uint8_t mp_uint_size[256] = {
	[0x00 ... 0x7f] = 1,				/* positive fixint */
	[0xcc] = 2, [0xcd] = 3, [0xce] = 5, [0xcf] = 9,	/* uint 8, 16, 32, 64 */
};
/* clang-format on */

size_t dt_raw_begin(struct dt_dec *d, const void *buf, size_t len, enum dt_msg_type type,
		    uint32_t n_fields)
{
	size_t fields = 0;
	int rv;

	d->has_zone = false;
	d->err = 0;
	if (buf == NULL) {
		dt_get_fail(d, DT_PROTO_ETRUNC);
		return 0;
	}
	if ((rv = check_envelope(buf, len, type, n_fields, &fields)) != 0) {
		dt_get_fail(d, rv);
		return 0;
	}
	if (!msgpack_zone_init(&d->zone, MSGPACK_ZONE_CHUNK_SIZE)) {
		dt_get_fail(d, DT_PROTO_ENOMEM);
		return 0;
	}
	d->has_zone = true;
	return fields;
}

/* The end of the object at *off: mp_scan() on the rest of the message. 0 with d->err set. */
static size_t raw_extent(struct dt_dec *d, const void *buf, size_t len, size_t off)
{
	size_t end = 0, zone_bytes = 0;
	int rv;

	if (d->err != 0) {
		return 0;
	}
	if ((rv = mp_scan((const uint8_t *)buf + off, len - off, &end, &zone_bytes)) != 0) {
		dt_get_fail(d, rv);
		return 0;
	}
	return end;
}

void dt_raw_skip(struct dt_dec *d, const void *buf, size_t len, size_t *off)
{
	*off += raw_extent(d, buf, len, *off);
}

void dt_raw_field(struct dt_dec *d, const void *buf, size_t len, size_t *off, msgpack_object *o)
{
	size_t end = raw_extent(d, buf, len, *off);

	o->type = MSGPACK_OBJECT_NIL;
	if (d->err != 0) {
		return;
	}
	/* mp_scan() bounded it: only nesting deeper than msgpack-c's stack fails here */
	if (msgpack_unpack(buf, *off + end, off, &d->zone, o) != MSGPACK_UNPACK_SUCCESS) {
		o->type = MSGPACK_OBJECT_NIL;
		dt_get_fail(d, DT_PROTO_ETRUNC);
	}
}

uint32_t dt_raw_list(struct dt_dec *d, const void *buf, size_t len, size_t *off, uint32_t max)
{
	struct mp_head h;
	int rv;

	if (d->err != 0) {
		return 0;
	}
	if ((rv = mp_head(buf, len, off, &h)) != 0) {
		dt_get_fail(d, rv);
		return 0;
	}
	if (h.kind != MP_ARRAY) {
		dt_get_fail(d, DT_PROTO_ETYPE);
		return 0;
	}
	if (h.val > max) {
		dt_get_fail(d, DT_PROTO_ELENGTH);
		return 0;
	}
	return (uint32_t)h.val;
}

int dt_raw_value(const uint8_t *p, size_t len, size_t *off, enum dt_raw_kind kind,
		 msgpack_object *o)
{
	struct mp_head h;
	unsigned int n;
	int rv;

	if (kind == DT_RAW_UINT && *off < len && (n = mp_uint_size[p[*off]]) != 0) {
		if (n > len - *off) {
			return DT_PROTO_ETRUNC;
		}
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = n == 1 ? p[*off] : be_uint(p + *off + 1, n - 1);
		*off += n;
		return 0;
	}
	if ((rv = mp_head(p, len, off, &h)) != 0) {
		return rv;
	}
	if (h.kind != (enum mp_kind)kind) {
		return DT_PROTO_ETYPE;
	}
	if (h.body > len - *off) {
		return DT_PROTO_ETRUNC;
	}
	if (kind == DT_RAW_UINT) {
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = h.val;
	} else {
		o->type = MSGPACK_OBJECT_BIN;
		o->via.bin.size = (uint32_t)h.body;
		o->via.bin.ptr = h.body ? (const char *)p + *off : NULL;
	}
	*off += h.body;
	return 0;
}

uint32_t dt_raw_records(struct dt_dec *d, const void *buf, size_t len, size_t *off, uint32_t max,
			const uint8_t *kinds, uint32_t n_fields, dt_raw_record_fn fn, void *ctx)
{
	uint32_t n = dt_raw_list(d, buf, len, off, max), i, f;
	msgpack_object fields[DT_RAW_RECORD_MAX];
	msgpack_object rec = {.type = MSGPACK_OBJECT_ARRAY};
	int rv;

	if (n_fields > DT_RAW_RECORD_MAX) {
		dt_get_fail(d, DT_PROTO_ENOMEM);
		return 0;
	}
	rec.via.array.ptr = fields;
	rec.via.array.size = n_fields;
	for (i = 0; i < n && d->err == 0; i++) {
		if (dt_raw_list(d, buf, len, off, UINT32_MAX) != n_fields && d->err == 0) {
			dt_get_fail(d, DT_PROTO_ELENGTH);
		}
		for (f = 0; f < n_fields && d->err == 0; f++) {
			if ((rv = dt_raw_value(buf, len, off, kinds[f], &fields[f])) != 0) {
				dt_get_fail(d, rv);
			}
		}
		if (d->err == 0) {
			fn(d, &rec, i, ctx);
		}
	}
	return d->err == 0 ? n : 0;
}

int dt_raw_end(struct dt_dec *d, size_t len, size_t off)
{
	if (d->err == 0 && off != len) {
		dt_get_fail(d, DT_PROTO_ETRAILING);
	}
	return dt_dec_end(d);
}

/* saddr, daddr, sport, dport (4 fields, inline); proto and vni are left as they are */
void dt_get_addrs(struct dt_dec *d, const msgpack_object *f, struct dt_tuple *t)
{
	if (d->err != 0) {
		return;
	}
	t->saddr = dt_get_uint(d, &f[0], UINT32_MAX);
	t->daddr = dt_get_uint(d, &f[1], UINT32_MAX);
	t->sport = dt_get_uint(d, &f[2], UINT16_MAX);
	t->dport = dt_get_uint(d, &f[3], UINT16_MAX);
}

void dt_get_tuple(struct dt_dec *d, const msgpack_object *f, struct dt_tuple *t)
{
	if (d->err != 0) {
		return;
	}
	dt_get_addrs(d, f, t);
	t->proto = dt_get_uint(d, &f[4], UINT8_MAX);
	t->vni = dt_get_uint(d, &f[5], DT_VNI_MAX);
}

/* cap_link, cap (2 fields): a packet prefix of at most DT_CAP_MAX bytes, DT_CAP_NONE exactly
 * when empty. */
void dt_get_cap(struct dt_dec *d, const msgpack_object *f, uint8_t *link, uint16_t *len,
		uint8_t *cap)
{
	*link = dt_get_uint(d, &f[0], DT_CAP_IPV4);
	if (d->err != 0) {
		return;
	}
	if (f[1].type != MSGPACK_OBJECT_BIN) {
		dt_get_fail(d, DT_PROTO_ETYPE);
		return;
	}
	if (f[1].via.bin.size > DT_CAP_MAX || (f[1].via.bin.size == 0) != (*link == DT_CAP_NONE)) {
		dt_get_fail(d, DT_PROTO_ERANGE);
		return;
	}
	*len = (uint16_t)f[1].via.bin.size;
	if (*len > 0) {
		memcpy(cap, f[1].via.bin.ptr, *len);
	}
}

void dt_get_lost(struct dt_dec *d, const msgpack_object *o, uint64_t *lost)
{
	const msgpack_object *f = dt_get_record(d, o, DT_LOSS_MAX);
	unsigned int i;

	for (i = 0; f != NULL && i < DT_LOSS_MAX; i++) {
		lost[i] = dt_get_uint(d, &f[i], UINT64_MAX);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                   */
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

const char *dt_proto_errname(int err)
{
	static const char *const names[DT_PROTO_NCODES] = {
		[-DT_PROTO_OK] = "ok",
		[-DT_PROTO_ETRUNC] = "truncated",
		[-DT_PROTO_ETYPE] = "wrong-type",
		[-DT_PROTO_ELENGTH] = "wrong-length",
		[-DT_PROTO_EVERSION] = "version",
		[-DT_PROTO_EMSGTYPE] = "message-type",
		[-DT_PROTO_ERANGE] = "out-of-range",
		[-DT_PROTO_ETRAILING] = "trailing-bytes",
		[-DT_PROTO_ENOMEM] = "no-memory",
	};

	return err <= 0 && -err < DT_PROTO_NCODES ? names[-err] : "unknown";
}
