/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto.c - libFuzzer target for every decoder of proto/dt_proto.h.
 *
 * Each input is handed to dt_msg_type() and to every decoder, whatever its type. Beyond
 * "no crash, no leak, no undefined behaviour" (the sanitizers), it checks the contract of
 * dt_proto.h and aborts when one does not hold:
 *
 *  - every call returns 0 or a DT_PROTO_* code;
 *  - at most one decoder accepts an input, the one for the type dt_msg_type() reports;
 *  - a failed decode leaves its output all zero, owning nothing (the output is filled with
 *    garbage before each call, so a decoder that forgets to clear it is caught);
 *  - nothing is lost or changed: what a decoder accepts encodes (E1), and E1 holds the same
 *    msgpack values as the input, element by element (only the widths of the encodings may
 *    differ, and a float field may come as any number: E1 always has a float64). A decoder
 *    that ignores an element, truncates a string at a NUL or reads garbage is caught here;
 *  - round trip: E1 decodes to the same struct and encodes to exactly the bytes of E1
 *    (E2 == E1);
 *  - the collector's path: dt_batch_check() accepts exactly the batches dt_batch_decode()
 *    accepts, with the same fields but the samples, and dt_batch_reframe() of an accepted
 *    batch changes nothing but its sender, seq and ctl_gen.
 *
 * Inputs are untrusted msgpack exactly as a socket would deliver them; the seeds are in
 * test/fuzz/corpus/proto/ (gen_corpus.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_link.h"
#include "dt_proto.h"

/* The outputs of the request decoders, gathered in one struct each. */
struct fz_create {
	char token[DT_TOKEN_MAX];
	struct dt_task_spec spec;
};

struct fz_token_id {
	char token[DT_TOKEN_MAX];
	uint32_t task_id;
};

union fz_msg {
	struct dt_batch batch;
	struct dt_ack ack;
	struct dt_control control;
	struct fz_create create;
	struct fz_token_id req;
	struct dt_task_info task;
	struct dt_task_list tasks;
	struct dt_error error;
	struct dt_report report;
};

/* One message of the wire format behind a uniform interface. */
struct fz_codec {
	const char *name;
	enum dt_msg_type type;
	size_t size; /* of the decoder's output in union fz_msg */
	bool flat;   /* the output holds no pointer: two decodes compare with memcmp */
	int (*decode)(const void *buf, size_t len, union fz_msg *m);
	int (*encode)(msgpack_sbuffer *sb, const union fz_msg *m);
	void (*release)(union fz_msg *m);	 /* NULL: nothing to free */
	bool (*is_empty)(const union fz_msg *m); /* NULL: all bytes zero */
};

#define FZ_FAIL(...)                                                                               \
	do {                                                                                       \
		fprintf(stderr, "fuzz_proto: " __VA_ARGS__);                                       \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

/* ---------------------------------------------------------------------------------------- */
/* The codecs                                                                               */
/* ---------------------------------------------------------------------------------------- */

static int dec_batch(const void *b, size_t l, union fz_msg *m)
{
	return dt_batch_decode(b, l, &m->batch);
}

static int enc_batch(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_batch_encode(sb, &m->batch);
}

static void rel_batch(union fz_msg *m)
{
	dt_batch_free(&m->batch);
}

static int dec_ack(const void *b, size_t l, union fz_msg *m)
{
	return dt_ack_decode(b, l, &m->ack);
}

static int enc_ack(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_ack_encode(sb, &m->ack);
}

static void rel_ack(union fz_msg *m)
{
	dt_ack_free(&m->ack);
}

static int dec_control(const void *b, size_t l, union fz_msg *m)
{
	return dt_control_decode(b, l, &m->control);
}

static int enc_control(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_control_encode(sb, &m->control);
}

static void rel_control(union fz_msg *m)
{
	dt_control_free(&m->control);
}

/* Field by field: the decoder builds it with "= {0}" and a struct copy (padding unknown). */
static bool empty_control(const union fz_msg *m)
{
	return m->control.gen == 0 && m->control.n_arms == 0 && m->control.arms == NULL;
}

static int dec_task_create(const void *b, size_t l, union fz_msg *m)
{
	return dt_task_create_decode(b, l, m->create.token, &m->create.spec);
}

static int enc_task_create(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_task_create_encode(sb, m->create.token, &m->create.spec);
}

static int dec_task_get(const void *b, size_t l, union fz_msg *m)
{
	return dt_task_get_decode(b, l, m->req.token, &m->req.task_id);
}

static int enc_task_get(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_task_get_encode(sb, m->req.token, m->req.task_id);
}

static int dec_report_get(const void *b, size_t l, union fz_msg *m)
{
	return dt_report_get_decode(b, l, m->req.token, &m->req.task_id);
}

static int enc_report_get(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_report_get_encode(sb, m->req.token, m->req.task_id);
}

static int dec_task_cancel(const void *b, size_t l, union fz_msg *m)
{
	return dt_task_cancel_decode(b, l, m->req.token, &m->req.task_id);
}

static int enc_task_cancel(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_task_cancel_encode(sb, m->req.token, m->req.task_id);
}

/* The list request carries no task id: that field is the harness's, cleared here. */
static int dec_task_list(const void *b, size_t l, union fz_msg *m)
{
	m->req.task_id = 0;
	return dt_task_list_decode(b, l, m->req.token);
}

static int enc_task_list(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_task_list_encode(sb, m->req.token);
}

static int dec_task(const void *b, size_t l, union fz_msg *m)
{
	return dt_task_decode(b, l, &m->task);
}

static int enc_task(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_task_encode(sb, &m->task);
}

static int dec_tasks(const void *b, size_t l, union fz_msg *m)
{
	return dt_tasks_decode(b, l, &m->tasks);
}

static int enc_tasks(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_tasks_encode(sb, &m->tasks);
}

static void rel_tasks(union fz_msg *m)
{
	dt_task_list_free(&m->tasks);
}

static bool empty_tasks(const union fz_msg *m)
{
	return m->tasks.n_tasks == 0 && m->tasks.tasks == NULL;
}

static int dec_error(const void *b, size_t l, union fz_msg *m)
{
	return dt_error_decode(b, l, &m->error);
}

static int enc_error(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_error_encode(sb, &m->error);
}

static int dec_report(const void *b, size_t l, union fz_msg *m)
{
	return dt_report_decode(b, l, &m->report);
}

static int enc_report(msgpack_sbuffer *sb, const union fz_msg *m)
{
	return dt_report_encode(sb, &m->report);
}

static void rel_report(union fz_msg *m)
{
	dt_report_free(&m->report);
}

/* clang-format off */
static const struct fz_codec codecs[] = {
	{"batch", DT_MSG_BATCH, sizeof(struct dt_batch), false,
	 dec_batch, enc_batch, rel_batch, NULL},
	{"ack", DT_MSG_ACK, sizeof(struct dt_ack), false,
	 dec_ack, enc_ack, rel_ack, NULL},
	{"control", DT_MSG_CONTROL, sizeof(struct dt_control), false,
	 dec_control, enc_control, rel_control, empty_control},
	{"task_create", DT_MSG_TASK_CREATE, sizeof(struct fz_create), true,
	 dec_task_create, enc_task_create, NULL, NULL},
	{"task_get", DT_MSG_TASK_GET, sizeof(struct fz_token_id), true,
	 dec_task_get, enc_task_get, NULL, NULL},
	{"task", DT_MSG_TASK, sizeof(struct dt_task_info), true,
	 dec_task, enc_task, NULL, NULL},
	{"report_get", DT_MSG_REPORT_GET, sizeof(struct fz_token_id), true,
	 dec_report_get, enc_report_get, NULL, NULL},
	{"report", DT_MSG_REPORT, sizeof(struct dt_report), false,
	 dec_report, enc_report, rel_report, NULL},
	{"error", DT_MSG_ERROR, sizeof(struct dt_error), true,
	 dec_error, enc_error, NULL, NULL},
	{"task_list", DT_MSG_TASK_LIST, sizeof(struct fz_token_id), true,
	 dec_task_list, enc_task_list, NULL, NULL},
	{"tasks", DT_MSG_TASKS, sizeof(struct dt_task_list), false,
	 dec_tasks, enc_tasks, rel_tasks, empty_tasks},
	{"task_cancel", DT_MSG_TASK_CANCEL, sizeof(struct fz_token_id), true,
	 dec_task_cancel, enc_task_cancel, NULL, NULL},
};
/* clang-format on */

#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))

_Static_assert(N_CODECS == DT_MSG_TYPE_MAX - 1,
	       "a message type was added to dt_proto.h: give it a codec here and seeds in "
	       "gen_corpus.c");

/* ---------------------------------------------------------------------------------------- */
/* Checks                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] != 0) {
			return false;
		}
	}
	return true;
}

static void check_code(const char *what, int rv)
{
	if (rv > 0 || rv < DT_PROTO_ENOMEM) {
		FZ_FAIL("%s returned %d, not 0 or a DT_PROTO_* code", what, rv);
	}
	if (dt_proto_strerror(rv) == NULL) {
		FZ_FAIL("dt_proto_strerror(%d) is NULL", rv);
	}
}

/* Decodes buf with c into m (filled with garbage first); checks the failure contract. */
static int decode_checked(const struct fz_codec *c, const void *buf, size_t len, union fz_msg *m)
{
	int rv;

	memset(m, 0xA5, sizeof(*m));
	rv = c->decode(buf, len, m);
	check_code(c->name, rv);
	if (rv != 0) {
		if (c->is_empty != NULL ? !c->is_empty(m) : !all_zero(m, c->size)) {
			FZ_FAIL("%s: failed decode (%s) left a non-zero output", c->name,
				dt_proto_strerror(rv));
		}
	}
	return rv;
}

/* Same msgpack value, up to the width of its encoding; b is the encoder's (float64 only). */
static bool same_value(const msgpack_object *a, const msgpack_object *b)
{
	uint32_t i;

	if (b->type == MSGPACK_OBJECT_FLOAT64) {
		switch (a->type) {
		case MSGPACK_OBJECT_FLOAT32: /* msgpack-c widens it to a double */
		case MSGPACK_OBJECT_FLOAT64:
			return a->via.f64 == b->via.f64;
		case MSGPACK_OBJECT_POSITIVE_INTEGER:
			return (double)a->via.u64 == b->via.f64;
		case MSGPACK_OBJECT_NEGATIVE_INTEGER:
			return (double)a->via.i64 == b->via.f64;
		default:
			return false;
		}
	}
	if (a->type != b->type) {
		return false;
	}
	switch (a->type) {
	case MSGPACK_OBJECT_NIL:
		return true;
	case MSGPACK_OBJECT_BOOLEAN:
		return a->via.boolean == b->via.boolean;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return a->via.u64 == b->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return a->via.i64 == b->via.i64;
	case MSGPACK_OBJECT_STR:
		return a->via.str.size == b->via.str.size &&
		       (a->via.str.size == 0 ||
			memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
	case MSGPACK_OBJECT_BIN: /* packet prefixes */
		return a->via.bin.size == b->via.bin.size &&
		       (a->via.bin.size == 0 ||
			memcmp(a->via.bin.ptr, b->via.bin.ptr, a->via.bin.size) == 0);
	case MSGPACK_OBJECT_ARRAY:
		if (a->via.array.size != b->via.array.size) {
			return false;
		}
		for (i = 0; i < a->via.array.size; i++) {
			if (!same_value(&a->via.array.ptr[i], &b->via.array.ptr[i])) {
				return false;
			}
		}
		return true;
	default: /* maps, ext: no message has them */
		return false;
	}
}

/* The input that a decoder accepted and its re-encoding E1 hold the same values. */
static void check_same_values(const struct fz_codec *c, const void *in, size_t in_len,
			      const msgpack_sbuffer *e1)
{
	msgpack_unpacked a, b;
	size_t off_a = 0, off_b = 0;

	msgpack_unpacked_init(&a);
	msgpack_unpacked_init(&b);
	if (msgpack_unpack_next(&a, in, in_len, &off_a) != MSGPACK_UNPACK_SUCCESS ||
	    msgpack_unpack_next(&b, e1->data, e1->size, &off_b) != MSGPACK_UNPACK_SUCCESS) {
		FZ_FAIL("%s: msgpack-c cannot unpack an accepted message or its re-encoding",
			c->name);
	}
	if (!same_value(&a.data, &b.data)) {
		FZ_FAIL("%s: the decoder accepted values it does not give back (re-encoded: "
			"%zu bytes from %zu)",
			c->name, e1->size, in_len);
	}
	msgpack_unpacked_destroy(&a);
	msgpack_unpacked_destroy(&b);
}

/*
 * m was decoded from in. E1 = encode(m) must hold in's values; decode(E1) = m2 must equal m
 * and E2 = encode(m2) must equal E1.
 */
static void round_trip(const struct fz_codec *c, const union fz_msg *m, const void *in,
		       size_t in_len)
{
	msgpack_sbuffer e1, e2;
	union fz_msg *m2;
	int rv;

	msgpack_sbuffer_init(&e1);
	msgpack_sbuffer_init(&e2);
	m2 = malloc(sizeof(*m2));
	if (m2 == NULL) {
		FZ_FAIL("out of memory");
	}
	if ((rv = c->encode(&e1, m)) != 0) {
		FZ_FAIL("%s: decoded message does not encode: %s", c->name, dt_proto_strerror(rv));
	}
	if (e1.size == 0) {
		FZ_FAIL("%s: encoder succeeded and wrote nothing", c->name);
	}
	check_same_values(c, in, in_len, &e1);
	if ((rv = decode_checked(c, e1.data, e1.size, m2)) != 0) {
		FZ_FAIL("%s: re-encoded message does not decode: %s", c->name,
			dt_proto_strerror(rv));
	}
	if (c->flat && memcmp(m, m2, c->size) != 0) {
		FZ_FAIL("%s: decoding the re-encoded message gives another struct", c->name);
	}
	if ((rv = c->encode(&e2, m2)) != 0) {
		FZ_FAIL("%s: second round does not encode: %s", c->name, dt_proto_strerror(rv));
	}
	if (e1.size != e2.size || memcmp(e1.data, e2.data, e1.size) != 0) {
		FZ_FAIL("%s: round trip changed the message (%zu bytes, then %zu)", c->name,
			e1.size, e2.size);
	}
	if (c->release != NULL) {
		c->release(m2);
		if (c->is_empty != NULL ? !c->is_empty(m2) : !all_zero(m2, c->size)) {
			FZ_FAIL("%s: free did not zero the struct", c->name);
		}
	}
	free(m2);
	msgpack_sbuffer_destroy(&e1);
	msgpack_sbuffer_destroy(&e2);
}

/* Two batches hold the same values but for their samples (dt_batch_check() keeps none). */
static bool same_head(const struct dt_batch *a, const struct dt_batch *b)
{
	uint32_t i;

	if (strcmp(a->sender, b->sender) != 0 || a->seq != b->seq || a->ctl_gen != b->ctl_gen ||
	    strcmp(a->node, b->node) != 0 || a->n_ifaces != b->n_ifaces ||
	    memcmp(a->lost, b->lost, sizeof(a->lost)) != 0 || a->n_strings != b->n_strings ||
	    a->n_samples != b->n_samples || a->n_nodes != b->n_nodes) {
		return false;
	}
	for (i = 0; i < a->n_ifaces; i++) {
		if (strcmp(a->ifaces[i], b->ifaces[i]) != 0) {
			return false;
		}
	}
	for (i = 0; i < a->n_strings; i++) {
		if (strcmp(a->strings[i], b->strings[i]) != 0) {
			return false;
		}
	}
	for (i = 0; i < a->n_nodes; i++) {
		const struct dt_node_state *x = &a->nodes[i], *y = &b->nodes[i];

		if (strcmp(x->node, y->node) != 0 || x->ctl_gen != y->ctl_gen ||
		    x->n_endpoints != y->n_endpoints ||
		    (x->n_endpoints > 0 &&
		     memcmp(x->endpoints, y->endpoints, x->n_endpoints * sizeof(*x->endpoints)))) {
			return false;
		}
	}
	return true;
}

/*
 * The collector's side: dt_batch_check() accepts exactly what dt_batch_decode() accepts,
 * with the same head and no samples, and leaves a zeroed output when it refuses; an
 * accepted batch re-framed under another sender, seq and ctl_gen decodes to the same
 * batch with those three changed.
 */
/* What dt_batch_samples() hands on must be the decoder's samples, one by one. */
struct fz_seen {
	const struct dt_batch *dec;
	uint32_t n;
	bool differs;
};

static void fz_see_sample(void *arg, const struct dt_wire_sample *s)
{
	struct fz_seen *seen = arg;

	if (seen->n >= seen->dec->n_samples ||
	    memcmp(s, &seen->dec->samples[seen->n], sizeof(*s)) != 0)
		seen->differs = true;
	seen->n++;
}

static void check_collector_path(const uint8_t *data, size_t size)
{
	struct fz_seen seen = {0};
	static struct dt_batch dec, chk, re;
	msgpack_sbuffer e1, e2;
	uint32_t n = 0;
	int drv, crv, rrv;

	memset(&chk, 0xA5, sizeof(chk));
	drv = dt_batch_decode(data, size, &dec);
	crv = dt_batch_check(data, size, &chk);
	check_code("batch_check", crv);
	if ((drv == 0) != (crv == 0)) {
		FZ_FAIL("batch_check %s what the decoder %s (%s, %s)", crv ? "refuses" : "accepts",
			drv ? "refuses" : "accepts", dt_proto_strerror(crv),
			dt_proto_strerror(drv));
	}
	if (crv != 0) {
		if (!all_zero(&chk, sizeof(chk))) {
			FZ_FAIL("batch_check: failed check left a non-zero output");
		}
		return;
	}
	if (chk.samples != NULL || !same_head(&dec, &chk)) {
		FZ_FAIL("batch_check: the head differs from the decoder's, or samples were kept");
	}
	seen.dec = &dec;
	if ((rrv = dt_batch_samples(data, size, &chk, fz_see_sample, &seen)) != 0 || seen.differs ||
	    seen.n != dec.n_samples) {
		FZ_FAIL("batch_samples: %s, or the samples differ from the decoder's",
			dt_proto_strerror(rrv));
	}
	msgpack_sbuffer_init(&e1);
	msgpack_sbuffer_init(&e2);
	if ((rrv = dt_batch_reframe(&e1, data, size, "fz", dec.seq + 1, 5, &n)) != 0 ||
	    n != dec.n_samples) {
		FZ_FAIL("batch_reframe refuses an accepted batch (%s) or miscounts",
			dt_proto_strerror(rrv));
	}
	if ((rrv = dt_batch_decode(e1.data, e1.size, &re)) != 0) {
		FZ_FAIL("a re-framed batch does not decode: %s", dt_proto_strerror(rrv));
	}
	strcpy(dec.sender, "fz");
	dec.seq++;
	dec.ctl_gen = 5;
	msgpack_sbuffer_clear(&e1);
	if (dt_batch_encode(&e1, &dec) != 0 || dt_batch_encode(&e2, &re) != 0 ||
	    e1.size != e2.size || memcmp(e1.data, e2.data, e1.size) != 0) {
		FZ_FAIL("re-framing changed more than sender, seq and ctl_gen");
	}
	msgpack_sbuffer_destroy(&e1);
	msgpack_sbuffer_destroy(&e2);
	dt_batch_free(&re);
	dt_batch_free(&chk);
	dt_batch_free(&dec);
}

/*
 * A control set an ACK carries goes through the sender's check (dt_link.h) before it is
 * applied: it refuses exactly the generations above DT_LINK_GEN_MAX.
 */
static void check_sender_control(const struct dt_control *c)
{
	enum dt_link_ctl_refusal want =
		c->gen > DT_LINK_GEN_MAX ? DT_LINK_CTL_GENERATION : DT_LINK_CTL_OK;

	if (dt_link_control_check(c) != want) {
		FZ_FAIL("dt_link_control_check(gen %llu) is not %d", (unsigned long long)c->gen,
			(int)want);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static union fz_msg m; /* large (a batch holds its interface names): not on the stack */
	enum dt_msg_type type = 0;
	const struct fz_codec *accepted = NULL;
	size_t i;
	int trv, rv;

	trv = dt_msg_type(data, size, &type);
	check_code("dt_msg_type", trv);
	if (trv == 0 && (type == 0 || type >= DT_MSG_TYPE_MAX)) {
		FZ_FAIL("dt_msg_type succeeded with type %d", (int)type);
	}
	if (trv != 0 && type != 0) {
		FZ_FAIL("dt_msg_type failed (%s) and left type %d", dt_proto_strerror(trv),
			(int)type);
	}
	for (i = 0; i < N_CODECS; i++) {
		const struct fz_codec *c = &codecs[i];

		if ((rv = decode_checked(c, data, size, &m)) != 0) {
			continue;
		}
		if (accepted != NULL) {
			FZ_FAIL("both %s and %s accept the same input", accepted->name, c->name);
		}
		accepted = c;
		if (trv != 0 || type != c->type) {
			FZ_FAIL("%s accepts an input that dt_msg_type() calls type %d (%s)",
				c->name, (int)type, dt_proto_strerror(trv));
		}
		round_trip(c, &m, data, size);
		if (c->type == DT_MSG_ACK && m.ack.has_control) {
			check_sender_control(&m.ack.control);
		}
		if (c->release != NULL) {
			c->release(&m);
		}
	}
	check_collector_path(data, size);
	return 0;
}
