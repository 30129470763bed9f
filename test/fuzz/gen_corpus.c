/* SPDX-License-Identifier: MIT */
/*
 * gen_corpus.c - writes the seed corpus of the proto fuzzer: real messages made by the
 * encoders of proto/, one file per message, named after what it shows.
 *
 *     dt-fuzz-gen-corpus DIR     (test/fuzz/gen_corpus.sh runs it into corpus/proto/)
 *
 * Every message type appears at least twice (a minimal and a busy one, with the longest
 * names allowed); a few seeds repeat a message with the widest msgpack encodings
 * (uint64 integers, str32 strings, array32 arrays, float32 floats: legal, and the decoder
 * must accept them), and the seeds named refused-* are refused on purpose: another
 * version, a trailing byte, and for each kind of field a value just out of its range (a
 * string one byte longer than its char[] can hold, an enum one past its last value, an
 * index one past its table, an infinite float). Those sit on the boundaries where an
 * off-by-one in a decoder hides, which random mutation seldom reaches by itself.
 *
 * The output is deterministic: running it again over an up-to-date corpus changes nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_link.h"
#include "dt_proto.h"

static const char *out_dir;
static int n_written;

static void die(const char *what)
{
	fprintf(stderr, "dt-fuzz-gen-corpus: %s\n", what);
	exit(1);
}

/* Decodes a seed with the decoder of its type: 0 or a DT_PROTO_* code. */
static int decode_any(const void *data, size_t len)
{
	char token[DT_TOKEN_MAX];
	struct dt_task_list tasks;
	struct dt_task_spec spec;
	struct dt_task_info task;
	struct dt_control control;
	struct dt_report report;
	struct dt_error error;
	struct dt_batch batch;
	enum dt_msg_type type;
	struct dt_ack ack;
	uint32_t id;
	int rv;

	if ((rv = dt_msg_type(data, len, &type)) != 0) {
		return rv;
	}
	switch (type) {
	case DT_MSG_BATCH:
		rv = dt_batch_decode(data, len, &batch);
		dt_batch_free(&batch);
		return rv;
	case DT_MSG_ACK:
		rv = dt_ack_decode(data, len, &ack);
		dt_ack_free(&ack);
		return rv;
	case DT_MSG_CONTROL:
		rv = dt_control_decode(data, len, &control);
		dt_control_free(&control);
		return rv;
	case DT_MSG_TASK_CREATE:
		return dt_task_create_decode(data, len, token, &spec);
	case DT_MSG_TASK_GET:
		return dt_task_get_decode(data, len, token, &id);
	case DT_MSG_TASK:
		return dt_task_decode(data, len, &task);
	case DT_MSG_REPORT_GET:
		return dt_report_get_decode(data, len, token, &id);
	case DT_MSG_REPORT:
		rv = dt_report_decode(data, len, &report);
		dt_report_free(&report);
		return rv;
	case DT_MSG_ERROR:
		return dt_error_decode(data, len, &error);
	case DT_MSG_TASK_LIST:
		return dt_task_list_decode(data, len, token);
	case DT_MSG_TASKS:
		rv = dt_tasks_decode(data, len, &tasks);
		dt_task_list_free(&tasks);
		return rv;
	case DT_MSG_TASK_CANCEL:
		return dt_task_cancel_decode(data, len, token, &id);
	default:
		return DT_PROTO_EMSGTYPE;
	}
}

/* Writes a seed; only those named refused-* may be refused by their decoder. */
static void write_seed(const char *name, const void *data, size_t len)
{
	bool refused = strncmp(name, "refused-", 8) == 0;
	char path[4096];
	FILE *f;
	int rv;

	rv = decode_any(data, len);
	if ((rv != 0) != refused) {
		fprintf(stderr, "dt-fuzz-gen-corpus: %s: decoder says %s\n", name,
			dt_proto_strerror(rv));
		exit(1);
	}
	if (refused) {
		printf("%-40s %s\n", name, dt_proto_strerror(rv));
	}
	snprintf(path, sizeof(path), "%s/%s.msgpack", out_dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "dt-fuzz-gen-corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	n_written++;
}

static void emit_wide(const char *name, msgpack_sbuffer *sb);

/* Writes what an encoder appended to sb as seed name (and, with wide, as "wide-<name>"
 * too), and resets sb. */
static void emit_as(const char *name, int rv, msgpack_sbuffer *sb, bool wide)
{
	char wide_name[256];

	if (rv != 0) {
		fprintf(stderr, "dt-fuzz-gen-corpus: %s: %s\n", name, dt_proto_strerror(rv));
		exit(1);
	}
	write_seed(name, sb->data, sb->size);
	if (wide) {
		snprintf(wide_name, sizeof(wide_name), "wide-%s", name);
		emit_wide(wide_name, sb);
	}
	msgpack_sbuffer_clear(sb);
}

static void emit(const char *name, int rv, msgpack_sbuffer *sb)
{
	emit_as(name, rv, sb, false);
}

/* ---------------------------------------------------------------------------------------- */
/* Widest encodings: the same message, every integer, string and array at full width        */
/* ---------------------------------------------------------------------------------------- */

static void raw(msgpack_sbuffer *sb, const void *p, size_t n)
{
	if (msgpack_sbuffer_write(sb, p, n) != 0) {
		die("out of memory");
	}
}

static void raw_head(msgpack_sbuffer *sb, uint8_t marker, uint32_t n)
{
	uint32_t be = htonl(n);

	raw(sb, &marker, 1);
	raw(sb, &be, 4);
}

static void pack_wide(msgpack_sbuffer *sb, msgpack_packer *pk, const msgpack_object *o)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		msgpack_pack_fix_uint64(pk, o->via.u64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		msgpack_pack_float(pk, (float)o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		raw_head(sb, 0xdb, o->via.str.size);
		raw(sb, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		raw_head(sb, 0xdd, o->via.array.size);
		for (i = 0; i < o->via.array.size; i++) {
			pack_wide(sb, pk, &o->via.array.ptr[i]);
		}
		break;
	default:
		msgpack_pack_object(pk, *o);
		break;
	}
}

static void emit_wide(const char *name, msgpack_sbuffer *sb)
{
	msgpack_unpacked u;
	msgpack_sbuffer wide;
	msgpack_packer pk;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS) {
		die("cannot unpack an encoded message");
	}
	msgpack_sbuffer_init(&wide);
	msgpack_packer_init(&pk, &wide, msgpack_sbuffer_write);
	pack_wide(&wide, &pk, &u.data);
	write_seed(name, wide.data, wide.size);
	msgpack_sbuffer_destroy(&wide);
	msgpack_unpacked_destroy(&u);
}

/* ---------------------------------------------------------------------------------------- */
/* Boundaries: the same message with one element just out of its range                      */
/* ---------------------------------------------------------------------------------------- */

/* Packs o with the element at path (indices into nested arrays) replaced by with. */
static void pack_changed(msgpack_packer *pk, const msgpack_object *o, const unsigned int *path,
			 size_t depth, const msgpack_object *with)
{
	uint32_t i;

	if (depth == 0) {
		msgpack_pack_object(pk, *with);
		return;
	}
	if (o->type != MSGPACK_OBJECT_ARRAY || path[0] >= o->via.array.size) {
		die("a boundary seed's path leads nowhere");
	}
	msgpack_pack_array(pk, o->via.array.size);
	for (i = 0; i < o->via.array.size; i++) {
		if (i == path[0]) {
			pack_changed(pk, &o->via.array.ptr[i], path + 1, depth - 1, with);
		} else {
			msgpack_pack_object(pk, o->via.array.ptr[i]);
		}
	}
}

/* Writes the message in sb (left as it is) with the element at path replaced by with. */
static void emit_changed(const char *name, const msgpack_sbuffer *sb, const unsigned int *path,
			 size_t depth, msgpack_object with)
{
	msgpack_unpacked u;
	msgpack_sbuffer out;
	msgpack_packer pk;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS) {
		die("cannot unpack an encoded message");
	}
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	pack_changed(&pk, &u.data, path, depth, &with);
	write_seed(name, out.data, out.size);
	msgpack_sbuffer_destroy(&out);
	msgpack_unpacked_destroy(&u);
}

/* PATH(9, 0, 2): field 9 of the message (counting version and type), its element 0, that
 * element's field 2. */
#define PATH(...)                                                                                  \
	(const unsigned int[]){__VA_ARGS__},                                                       \
		sizeof((const unsigned int[]){__VA_ARGS__}) / sizeof(unsigned int)

static msgpack_object uint_obj(uint64_t v)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};

	o.via.u64 = v;
	return o;
}

static msgpack_object float_obj(double v)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64};

	o.via.f64 = v;
	return o;
}

/* A string of n characters: one more than a char[n] can hold with its NUL. */
static msgpack_object str_obj(uint32_t n)
{
	static char text[1024];
	msgpack_object o = {.type = MSGPACK_OBJECT_STR};

	if (n > sizeof(text)) {
		die("string too long");
	}
	memset(text, 'x', sizeof(text));
	o.via.str.ptr = text;
	o.via.str.size = n;
	return o;
}

/* ---------------------------------------------------------------------------------------- */
/* Messages                                                                                 */
/* ---------------------------------------------------------------------------------------- */

#define LONG_NAME "node-0123456789-0123456789-0123456789-0123456789-0123456789-abc" /* 63 */
#define LONG_IF "ifname-01234567"						    /* 15 */
#define LONG_TOKEN                                                                                 \
	"tok-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"     \
	"0123456789abcdef0123456789abcdef0123456789a" /* 127 */
#define TOKEN "acme-token-0123456789"

_Static_assert(sizeof(LONG_NAME) == DT_NAME_MAX && sizeof(LONG_IF) == DT_IFNAME_MAX &&
		       sizeof(LONG_TOKEN) == DT_TOKEN_MAX,
	       "the LONG_* strings have the longest length allowed");

static void mk_tuple(struct dt_tuple *t, unsigned int i)
{
	memset(t, 0, sizeof(*t));
	t->saddr = htonl(0x0a640001 + i); /* 10.100.0.1 */
	t->daddr = htonl(0x0a640102 + i);
	t->sport = htons(40000 + i);
	t->dport = htons(443);
	t->proto = i % 2 ? 17 : 6;
	t->vni = 100 + i;
}

/* Samples of one packet along its path: port-in, uplink-out, uplink-in, gw-out (NAT), a
 * drop with both names, and one more of every other hook. */
static void mk_samples(struct dt_batch *b)
{
	static const uint8_t hooks[] = {DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN,
					DT_HOOK_GW_OUT,	 DT_HOOK_DROP,	     DT_HOOK_GW_IN,
					DT_HOOK_PORT_OUT};
	uint32_t i;

	b->n_samples = sizeof(hooks);
	b->samples = calloc(b->n_samples, sizeof(*b->samples));
	if (b->samples == NULL) {
		die("out of memory");
	}
	for (i = 0; i < b->n_samples; i++) {
		struct dt_wire_sample *s = &b->samples[i];

		s->hook = hooks[i];
		s->iface = i % b->n_ifaces;
		s->ts_ns = 1700000000000000000ull + i * 25000;
		mk_tuple(&s->tuple, 0);
		s->ip_id = 4242;
		s->ident = 0x00070001;
		s->len = 84;
		s->drop_name = DT_STR_NONE;
		s->drop_where = DT_STR_NONE;
		if (i == 0) {
			s->flags = DT_SAMPLE_F_FIRST_HOP;
			s->task_id = 7;
		}
		if (s->hook == DT_HOOK_UPLINK_IN || s->hook == DT_HOOK_UPLINK_OUT) {
			s->outer_saddr = htonl(0xc0a80001);
			s->outer_daddr = htonl(0xc0a80002);
		}
		if (s->hook == DT_HOOK_GW_OUT || s->hook == DT_HOOK_GW_IN) {
			s->flags |= DT_SAMPLE_F_NAT;
			s->orig = s->tuple;
			s->tuple.saddr = htonl(0xcb007101); /* 203.0.113.1 */
			s->tuple.sport = htons(61000);
		}
		if (s->hook == DT_HOOK_DROP) {
			s->flags |= DT_SAMPLE_F_ENCAP;
			s->drop_reason = 5;
			s->drop_name = 0;
			s->drop_where = 1;
		}
		s->cap_link = s->hook == DT_HOOK_DROP ? DT_CAP_IPV4 : DT_CAP_ETH;
		s->cap_len = (uint16_t)(i == 0 ? DT_CAP_MAX : 34 + i);
		memset(s->cap, 0x45 + (int)i, s->cap_len);
	}
}

static void mk_node(struct dt_node_state *n, const char *name, uint64_t gen, uint32_t n_eps)
{
	uint32_t i;

	memset(n, 0, sizeof(*n));
	strcpy(n->node, name);
	n->ctl_gen = gen;
	n->n_endpoints = n_eps;
	n->endpoints = n_eps ? calloc(n_eps, sizeof(*n->endpoints)) : NULL;
	for (i = 0; i < n_eps; i++) {
		n->endpoints[i].vni = 100 + i;
		n->endpoints[i].addr = i + 1 == n_eps && n_eps > 1 ? 0 : htonl(0x0a640001 + i);
	}
}

static void gen_batches(msgpack_sbuffer *sb)
{
	struct dt_batch b;

	/* an agent's heartbeat: its own node state */
	memset(&b, 0, sizeof(b));
	strcpy(b.sender, "h1");
	b.seq = 1;
	strcpy(b.node, "h1");
	b.n_nodes = 1;
	b.nodes = calloc(1, sizeof(*b.nodes));
	mk_node(&b.nodes[0], "h1", 3, 2);
	b.nodes[0].task_map_max = 16384;
	b.nodes[0].task_map_used = 2;
	emit("batch-heartbeat-agent", dt_batch_encode(sb, &b), sb);
	dt_batch_free(&b);

	/* a collector's heartbeat: the states of its agents */
	memset(&b, 0, sizeof(b));
	strcpy(b.sender, "c1");
	b.seq = 1000;
	b.ctl_gen = 9;
	strcpy(b.node, "c1");
	b.n_nodes = 3;
	b.nodes = calloc(3, sizeof(*b.nodes));
	mk_node(&b.nodes[0], LONG_NAME, UINT64_MAX, 3);
	mk_node(&b.nodes[1], "h2", 9, 0);
	mk_node(&b.nodes[2], "gw", 8, 1);
	/* h2's task map is full: two keys of generation 9 it could not arm */
	b.nodes[1].task_map_max = 4;
	b.nodes[1].task_map_used = 4;
	b.nodes[1].n_arm_fails = 2;
	b.nodes[1].arm_fails = calloc(2, sizeof(*b.nodes[1].arm_fails));
	b.nodes[1].arm_fails[0] = (struct dt_arm_fail){.task_id = 5,
						       .tuple = {.saddr = htonl(0x0a640001),
								 .daddr = htonl(0x0a640002),
								 .proto = 1,
								 .vni = 100},
						       .err = E2BIG};
	b.nodes[1].arm_fails[1] = (struct dt_arm_fail){.task_id = UINT32_MAX,
						       .flags = 0x3,
						       .tuple = {.saddr = htonl(0x0a640002),
								 .daddr = htonl(0x0a640001),
								 .proto = 17,
								 .vni = 0xFFFFFF},
						       .err = EPERM};
	emit("batch-heartbeat-collector", dt_batch_encode(sb, &b), sb);
	dt_batch_free(&b);

	/* samples of a traced packet: every hook, a NAT, a drop with its names, losses */
	memset(&b, 0, sizeof(b));
	strcpy(b.sender, LONG_NAME);
	b.seq = 42;
	b.ctl_gen = 0x100000000ull;
	strcpy(b.node, LONG_NAME);
	b.n_ifaces = 3;
	strcpy(b.ifaces[0], "tap-vm1");
	strcpy(b.ifaces[1], "eth0");
	strcpy(b.ifaces[2], LONG_IF);
	b.lost[DT_LOSS_RING_FULL] = 7;
	b.lost[DT_LOSS_QUEUE_FULL] = UINT64_MAX;
	b.lost[DT_LOSS_SPOOL_FULL] = 3;
	b.n_strings = 3;
	b.strings = calloc(3, sizeof(*b.strings));
	strcpy(b.strings[0], "NETFILTER_DROP");
	strcpy(b.strings[1], "nf_hook_slow+0x8c");
	memset(b.strings[2], 's', DT_STR_MAX - 1);
	mk_samples(&b);
	emit_as("batch-samples", dt_batch_encode(sb, &b), sb, true);

	/* [2, 1, sender, seq, ctl_gen, node, [ifname...], [lost...], [string...], [sample...],
	 *  [node_state...]]; a sample: [hook, flags, iface, ts_ns, saddr, daddr, sport,
	 *  dport, proto, vni, ... drop_name (21), drop_where (22)]; sample 4 is the drop */
	if (dt_batch_encode(sb, &b) != 0) {
		die("batch");
	}
	emit_changed("refused-batch-sender-too-long", sb, PATH(2), str_obj(DT_NAME_MAX));
	emit_changed("refused-batch-ifname-too-long", sb, PATH(6, 2), str_obj(DT_IFNAME_MAX));
	emit_changed("refused-batch-string-too-long", sb, PATH(8, 2), str_obj(DT_STR_MAX));
	emit_changed("refused-batch-hook-unknown", sb, PATH(9, 0, 0), uint_obj(DT_HOOK_MAX));
	emit_changed("refused-batch-iface-index", sb, PATH(9, 0, 2), uint_obj(3));
	emit_changed("refused-batch-vni-too-big", sb, PATH(9, 0, 9), uint_obj(0x1000000));
	emit_changed("refused-batch-string-index", sb, PATH(9, 4, 21), uint_obj(3));
	msgpack_sbuffer_clear(sb);
	dt_batch_free(&b);

	/* the smallest batch: empty names, nothing in any list */
	memset(&b, 0, sizeof(b));
	emit("batch-empty", dt_batch_encode(sb, &b), sb);
}

static void mk_control(struct dt_control *c, uint64_t gen, uint32_t n)
{
	uint32_t i;

	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->n_arms = n;
	c->arms = n ? calloc(n, sizeof(*c->arms)) : NULL;
	for (i = 0; i < n; i++) {
		struct dt_arm *a = &c->arms[i];

		a->task_id = 1 + i / 2;
		a->flags = (i % 2 ? DT_TASK_F_REPLY : 0) | (i >= 2 ? DT_TASK_F_ANYPORT : 0);
		mk_tuple(&a->tuple, i);
		a->budget = i == 0 ? UINT32_MAX : 100;
		a->rate_pps = i == 1 ? 0 : 50;
	}
}

static void gen_control(msgpack_sbuffer *sb)
{
	struct dt_control c;
	struct dt_ack a;

	mk_control(&c, 0, 0);
	emit("control-empty", dt_control_encode(sb, &c), sb);
	mk_control(&c, 17, 4);
	emit("control-arms", dt_control_encode(sb, &c), sb);
	dt_control_free(&c);

	memset(&a, 0, sizeof(a));
	a.seq = 42;
	if (dt_ack_encode(sb, &a) != 0) {
		die("ack");
	}
	emit_changed("refused-ack-status-unknown", sb, PATH(3), uint_obj(DT_ST_MAX));
	emit("ack-plain", 0, sb);
	a.seq = UINT64_MAX;
	a.status = DT_ST_FAILED;
	a.has_control = true;
	mk_control(&a.control, 18, 2);
	emit("ack-control", dt_ack_encode(sb, &a), sb);
	/* Decodes, but a sender refuses it (dt_link_control_check()). */
	a.control.gen = DT_LINK_GEN_MAX + 1;
	emit("ack-control-generation-too-high", dt_ack_encode(sb, &a), sb);
	dt_ack_free(&a);
}

static void mk_spec(struct dt_task_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->flags = DT_TASK_DIR_BOTH;
	mk_tuple(&s->tuple, 0);
	s->budget = 100;
	s->duration_s = 60;
	s->rate_pps = 10;
}

static void mk_task(struct dt_task_info *t, uint32_t id, uint32_t state, uint32_t status)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->state = state;
	mk_spec(&t->spec);
	t->created_ns = 1700000000000000000ull;
	t->colored = state >= DT_TASK_RUNNING ? 100 : 0;
	t->delivered = state >= DT_TASK_RUNNING ? 94 : 0;
	strcpy(t->tenant, "acme");
	t->status = status;
	if (status == DT_TS_NO_HOST) {
		strcpy(t->status_text, "no node hosts 10.100.0.1 in VNI 100");
	}
	t->armed_ns = state >= DT_TASK_ARMED ? 1700000000200000000ull : 0;
	t->ended_ns = state >= DT_TASK_DONE ? 1700000060000000000ull : 0;
}

static void gen_api(msgpack_sbuffer *sb)
{
	struct dt_task_info tasks[3];
	struct dt_task_spec s;
	struct dt_task_list l;
	struct dt_error e;

	mk_spec(&s);
	if (dt_task_create_encode(sb, TOKEN, &s) != 0) {
		die("task create");
	}
	/* [2, 4, token, flags, saddr, daddr, sport, ...] */
	emit_changed("refused-task-create-port-too-big", sb, PATH(6), uint_obj(65536));
	emit("task-create", 0, sb);
	memset(&s, 0, sizeof(s));
	s.flags = DT_TASK_F_ANYPORT;
	mk_tuple(&s.tuple, 1);
	s.tuple.sport = 0;
	s.tuple.dport = 0;
	s.tuple.vni = 0xFFFFFF;
	emit("task-create-anyport-long-token", dt_task_create_encode(sb, LONG_TOKEN, &s), sb);

	emit_as("task-get", dt_task_get_encode(sb, TOKEN, 7), sb, true);
	emit("report-get", dt_report_get_encode(sb, TOKEN, UINT32_MAX), sb);
	emit("task-cancel", dt_task_cancel_encode(sb, LONG_TOKEN, 1), sb);
	if (dt_task_list_encode(sb, TOKEN) != 0) {
		die("task list");
	}
	emit_changed("refused-task-list-token-too-long", sb, PATH(2), str_obj(DT_TOKEN_MAX));
	emit("task-list", 0, sb);
	emit("task-list-empty-token", dt_task_list_encode(sb, ""), sb);

	mk_task(&tasks[0], 7, DT_TASK_RUNNING, DT_TS_OK);
	if (dt_task_encode(sb, &tasks[0]) != 0) {
		die("task");
	}
	emit_changed("refused-task-state-unknown", sb, PATH(3), uint_obj(DT_TASK_STATE_MAX));
	emit("task-running", 0, sb);
	mk_task(&tasks[1], 8, DT_TASK_FAILED, DT_TS_NO_HOST);
	emit("task-failed", dt_task_encode(sb, &tasks[1]), sb);
	mk_task(&tasks[2], UINT32_MAX, DT_TASK_DONE, DT_TS_BUDGET_SPENT);

	memset(&l, 0, sizeof(l));
	emit("tasks-none", dt_tasks_encode(sb, &l), sb);
	l.n_tasks = 3;
	l.tasks = tasks;
	if (dt_tasks_encode(sb, &l) != 0) {
		die("tasks");
	}
	/* [2, 11, [[id, state, ... status_text (17), ...]...]] */
	emit_changed("refused-tasks-status-text-too-long", sb, PATH(2, 1, 17), str_obj(DT_MSG_MAX));
	emit("tasks-three", 0, sb);

	memset(&e, 0, sizeof(e));
	e.status = DT_ST_NOT_FOUND;
	strcpy(e.message, "no task 9");
	emit("error-not-found", dt_error_encode(sb, &e), sb);
	e.status = DT_ST_REFUSED;
	memset(e.message, 'x', sizeof(e.message) - 1);
	e.message[sizeof(e.message) - 1] = '\0';
	if (dt_error_encode(sb, &e) != 0) {
		die("error");
	}
	emit_changed("refused-error-message-too-long", sb, PATH(3), str_obj(DT_MSG_MAX));
	emit_changed("refused-error-status-ok", sb, PATH(2), uint_obj(DT_ST_OK));
	emit("error-refused-long", 0, sb);
}

static void mk_ref(struct dt_hop_ref *r, const char *node, const char *ifname, uint8_t hook)
{
	strcpy(r->node, node);
	strcpy(r->ifname, ifname);
	r->hook = hook;
}

static void gen_reports(msgpack_sbuffer *sb)
{
	static const uint8_t hooks[4] = {DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN,
					 DT_HOOK_DROP};
	static const char *const nodes[4] = {"h1", "h1", LONG_NAME, LONG_NAME};
	static const char *const ifs[4] = {"tap-vm1", "eth0", "eth0", LONG_IF};
	struct dt_report r;
	uint32_t i, j;

	/* a running task, nothing seen yet: no loss, hook "none" in the verdict */
	memset(&r, 0, sizeof(r));
	mk_task(&r.task, 7, DT_TASK_ARMED, DT_TS_OK);
	strcpy(r.verdict.sentence, "no packet judged yet");
	r.window_ms = 1000;
	emit("report-empty", dt_report_encode(sb, &r), sb);

	/* a delivered request, a dropped reply (drop after uplink-in), a packet in flight */
	mk_task(&r.task, 7, DT_TASK_DONE, DT_TS_BUDGET_SPENT);
	r.n_packets = 3;
	r.packets = calloc(r.n_packets, sizeof(*r.packets));
	for (i = 0; i < r.n_packets; i++) {
		struct dt_packet_path *p = &r.packets[i];

		p->ip_id = 1000 + i;
		p->ident = 0x00070000 + i;
		p->len = 84;
		p->direction = i == 1 ? DT_DIR_REPLY : DT_DIR_REQUEST;
		p->fate = i == 0 ? DT_FATE_DELIVERED : i == 1 ? DT_FATE_DROPPED : DT_FATE_IN_FLIGHT;
		mk_tuple(&p->tuple, 0);
		if (p->fate == DT_FATE_DROPPED) {
			p->drop_reason = 5;
			strcpy(p->drop_name, "NETFILTER_DROP");
			strcpy(p->drop_where, "nf_hook_slow+0x8c");
		}
		p->n_hops = i == 2 ? 0 : 4;
		p->hops = p->n_hops ? calloc(p->n_hops, sizeof(*p->hops)) : NULL;
		for (j = 0; j < p->n_hops; j++) {
			mk_ref(&p->hops[j].at, nodes[j], ifs[j], hooks[j]);
			if (i == 0 && j == 3) {
				p->hops[j].at.hook = DT_HOOK_PORT_OUT;
			}
			p->hops[j].ts_ns = 1700000000000000000ull + i * 1000000 + j * 25000;
			p->hops[j].tuple = p->tuple;
			p->hops[j].cap_link = DT_CAP_ETH;
			p->hops[j].cap_len = (uint16_t)(14 + 20 + j);
			memset(p->hops[j].cap, 0x40 + (int)j, p->hops[j].cap_len);
			p->hops[j].parent = j == 0 ? DT_HOP_ROOT : (uint16_t)(j - 1);
			if (p->hops[j].at.hook == DT_HOOK_DROP) {
				p->hops[j].drop_reason = 5;
				strcpy(p->hops[j].drop_name, "NETFILTER_DROP");
				strcpy(p->hops[j].drop_where, "nf_hook_slow+0x8c");
			}
		}
		p->dest_known = 1;
	}
	/* the delivered request was also flooded: hop 2 is a bystander's filtered copy */
	r.packets[0].hops[2].branch = DT_BRANCH_COPY;
	r.packets[0].hops[2].copy_end = DT_COPY_FILTERED;
	r.packets[0].hops[3].parent = 1;
	r.packets[0].n_copies = 1;
	r.n_stats = 2;
	r.stats = calloc(r.n_stats, sizeof(*r.stats));
	for (j = 0; j < r.n_stats; j++) {
		mk_ref(&r.stats[j].from, nodes[j], ifs[j], hooks[j]);
		mk_ref(&r.stats[j].to, nodes[j + 1], ifs[j + 1], hooks[j + 1]);
		r.stats[j].count = 2;
		r.stats[j].min_ns = 20000;
		r.stats[j].max_ns = 30000;
		r.stats[j].mean_ns = 25000.5;
		r.stats[j].stddev_ns = j == 0 ? 0.0 : 1234.25;
	}
	r.lost[DT_LOSS_RING_FULL] = 1;
	r.lost[DT_LOSS_REJECTED] = 4;
	r.n_rows = 2;
	r.rows = calloc(r.n_rows, sizeof(*r.rows));
	mk_ref(&r.rows[0].at, "h1", "tap-vm1", DT_HOOK_PORT_IN);
	r.rows[0].seen = 3;
	mk_ref(&r.rows[1].at, LONG_NAME, "eth0", DT_HOOK_UPLINK_IN);
	r.rows[1].direction = DT_DIR_REPLY;
	r.rows[1].seen = 1;
	r.rows[1].dropped = 1;
	strcpy(r.rows[1].top_reason, "NETFILTER_DROP");
	r.verdict.judged = 2;
	r.verdict.delivered = 1;
	r.verdict.dropped = 1;
	r.verdict.in_flight = 1;
	mk_ref(&r.verdict.at, LONG_NAME, LONG_IF, DT_HOOK_DROP);
	strcpy(r.verdict.reason, "NETFILTER_DROP");
	strcpy(r.verdict.sentence,
	       "1 of 2 packets dropped at " LONG_NAME "/" LONG_IF ", reason NETFILTER_DROP");
	r.unmatched = 17;
	r.n_copy_rows = 1;
	r.copy_rows = calloc(r.n_copy_rows, sizeof(*r.copy_rows));
	mk_ref(&r.copy_rows[0].at, LONG_NAME, "eth0", DT_HOOK_UPLINK_IN);
	r.copy_rows[0].end = DT_COPY_FILTERED;
	r.copy_rows[0].count = 1;
	strcpy(r.copy_rows[0].reason, "NOT_SPECIFIED");
	r.verdict.unobserved = 1;
	r.n_blind = 1;
	r.blind = calloc(r.n_blind, sizeof(*r.blind));
	strcpy(r.blind[0].node, LONG_NAME);
	r.blind[0].gap =
		(struct dt_gap){.from_ns = 1, .to_ns = 2, .cause = DT_GAP_CRASHED, .lost = 3};
	r.blind[0].packets = 1;
	if (dt_report_encode(sb, &r) != 0) {
		die("report");
	}
	/* [4, 8, task, [packet...], [stat...], [lost...], [row...], verdict, ...]; a packet's
	 * hops are its field 14, a hop [node, ifname, hook, ...]; a stat [from, to, count,
	 * min, max, mean (5), stddev]; the verdict's place is its field 5 */
	emit_changed("refused-report-hop-hook-none", sb, PATH(3, 0, 14, 0, 2), uint_obj(0));
	emit_changed("refused-report-verdict-hook-unknown", sb, PATH(7, 5, 2),
		     uint_obj(DT_HOOK_MAX));
	emit_changed("refused-report-stat-mean-infinite", sb, PATH(4, 0, 5), float_obj(INFINITY));
	emit_changed("refused-report-drop-name-too-long", sb, PATH(3, 1, 12), str_obj(DT_STR_MAX));
	emit_changed("refused-report-root-with-parent", sb, PATH(3, 0, 14, 0, 10), uint_obj(0));
	emit_changed("refused-report-parent-after-hop", sb, PATH(3, 0, 14, 1, 10), uint_obj(2));
	emit_changed("refused-report-copy-row-end-none", sb, PATH(10, 0, 2), uint_obj(0));
	emit_changed("refused-report-blind-packets-none", sb, PATH(11, 0, 2), uint_obj(0));
	msgpack_sbuffer_clear(sb);
	emit_as("report-drop", dt_report_encode(sb, &r), sb, true);
	dt_report_free(&r);
}

/* Refused on purpose: the header checks and the framing. */
static void gen_refused(msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4); /* a task get of the previous protocol version */
	msgpack_pack_uint64(&pk, DT_PROTO_VERSION - 1);
	msgpack_pack_uint64(&pk, DT_MSG_TASK_GET);
	msgpack_pack_str_with_body(&pk, TOKEN, strlen(TOKEN));
	msgpack_pack_uint64(&pk, 7);
	emit("refused-old-version", 0, sb);

	dt_task_get_encode(sb, TOKEN, 7);
	msgpack_pack_nil(&pk);
	emit("refused-trailing-byte", 0, sb);
}

int main(int argc, char **argv)
{
	msgpack_sbuffer sb;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	msgpack_sbuffer_init(&sb);
	gen_batches(&sb);
	gen_control(&sb);
	gen_api(&sb);
	gen_reports(&sb);
	gen_refused(&sb);
	msgpack_sbuffer_destroy(&sb);
	printf("dt-fuzz-gen-corpus: %d seeds in %s\n", n_written, out_dir);
	return 0;
}
