/* SPDX-License-Identifier: MIT */
/*
 * test_proto.c - the msgpack codec (proto/).
 *
 * Round trips of every message with non-trivial values (drops, NAT, string tables, both
 * directions, every fate, loss rows and a verdict), encoder refusals, and for every
 * decoder: each truncation of a valid message, trailing bytes, wrong versions and types,
 * and a table of single-field mutations (wrong msgpack type, out-of-range value, arrays
 * one element short or long). Mutations are made on the decoded msgpack object tree of a
 * valid message, which is then packed again, so that each case changes exactly one thing.
 * Every failed decode must leave the output struct all zero; a fuzz loop flips bytes of
 * valid messages and checks the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dt_proto.h"

/* clang-format off */
#define LONG_NAME "node-0123456789-0123456789-0123456789-0123456789-0123456789-abc" /* 63 */
#define LONG_IF "ifname-01234567" /* 15 */
#define LONG_SYM "a_kernel_symbol_with_a_very_long_name_0123456789_0123456789_0123456789_0123456789_0123456+0x1fc" /* 95 */
/* clang-format on */

_Static_assert(sizeof(LONG_NAME) == DT_NAME_MAX && sizeof(LONG_IF) == DT_IFNAME_MAX &&
		       sizeof(LONG_SYM) == DT_STR_MAX,
	       "the LONG_* strings have the longest length allowed");

/* A tenant token of the longest length allowed (127 bytes). */
#define LONG_TOKEN                                                                                 \
	"tok-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"     \
	"0123456789abcdef0123456789abcdef0123456789a"

_Static_assert(sizeof(LONG_TOKEN) == DT_TOKEN_MAX, "LONG_TOKEN has the longest length allowed");

/* The string table of every test batch: samples refer to these by index. */
static const char *const batch_strings[] = {"NETFILTER_DROP", "nf_hook_slow+0x8c", LONG_SYM};
#define N_BATCH_STRINGS 3

/* ---------------------------------------------------------------------------------------- */
/* Valid messages                                                                           */
/* ---------------------------------------------------------------------------------------- */

static void fill(char *buf, size_t len, char c)
{
	memset(buf, c, len - 1);
	buf[len - 1] = '\0';
}

static void mk_tuple(struct dt_tuple *t, unsigned int i)
{
	t->saddr = htonl(0x0a640001 + i);
	t->daddr = htonl(0x0a640002 + i);
	t->sport = htons(40000 + i);
	t->dport = htons(443);
	t->proto = i % 3 == 0 ? 6 : i % 3 == 1 ? 17 : 1;
	t->vni = 0xFFFFFF - i;
}

/*
 * Sample i of a test batch. Hooks cycle through all seven, the drop early so that the
 * five-sample batch of the mutation tables has one: 0 port-in (first hop), 1 drop of an
 * encapsulated packet (both names), 2 uplink-out, 3 gw-out (NAT), 4 uplink-in, 5 gw-in
 * (NAT), 6 port-out, 7 port-in, 8 drop behind a NAT (a name, no location).
 */
static void mk_sample(struct dt_wire_sample *s, unsigned int i)
{
	static const uint8_t hooks[] = {DT_HOOK_PORT_IN, DT_HOOK_DROP,	    DT_HOOK_UPLINK_OUT,
					DT_HOOK_GW_OUT,	 DT_HOOK_UPLINK_IN, DT_HOOK_GW_IN,
					DT_HOOK_PORT_OUT};
	bool drop;

	s->hook = hooks[i % 7];
	drop = s->hook == DT_HOOK_DROP;
	s->flags = i == 0 ? DT_SAMPLE_F_FIRST_HOP : 0;
	s->iface = i % 3;
	s->ts_ns = 1700000000123456789ull + i * 1000;
	mk_tuple(&s->tuple, i);
	s->task_id = i == 0 ? 0xFFFFFFFFu : 0;
	s->ip_id = 0xFFFF - i;
	s->frag = i == 2 ? DT_FRAG_MF | 185 : i == 3 ? DT_FRAG_OFFSET : 0; /* fragments */
	s->ident = 0xDEADBEEF + i;
	s->len = 84 + i;
	if (s->hook == DT_HOOK_UPLINK_IN || s->hook == DT_HOOK_UPLINK_OUT || i == 1) {
		s->outer_saddr = htonl(0xc0a80001);
		s->outer_daddr = htonl(0xc0a80002);
	}
	if (i == 1) {
		s->flags |= DT_SAMPLE_F_ENCAP;
	}
	if (s->hook == DT_HOOK_GW_OUT || s->hook == DT_HOOK_GW_IN || i == 8) {
		s->flags |= DT_SAMPLE_F_NAT;
		mk_tuple(&s->orig, 100 + i);
		s->orig.proto = s->tuple.proto; /* not on the wire: the decoder copies them */
		s->orig.vni = s->tuple.vni;
	}
	s->drop_reason = drop ? (i == 1 ? 5 : 0x10000u + i) : 0; /* plain and subsystem reasons */
	s->drop_name = drop ? (i == 1 ? 0 : 1) : DT_STR_NONE;
	s->drop_where = drop && i == 1 ? N_BATCH_STRINGS - 1 : DT_STR_NONE;
	/* Packet prefixes: a frame at the first hop, the longest one at the drop, none else. */
	if (i == 0 || drop) {
		s->cap_link = drop ? DT_CAP_IPV4 : DT_CAP_ETH;
		s->cap_len = drop ? DT_CAP_MAX : 60 + i;
		for (unsigned int k = 0; k < s->cap_len; k++) {
			s->cap[k] = (uint8_t)(k * 7 + i);
		}
	}
}

/*
 * The node states of every test batch (a collector's heartbeat): node 0 (max-length name)
 * hosts three endpoints, the last the outside of a gateway (addr 0) of the largest VNI;
 * node 1 hosts none; node 2 one.
 */
static void mk_nodes(struct dt_batch *b)
{
	static const uint32_t n_eps[] = {3, 0, 1};
	uint32_t i, j;

	b->n_nodes = 3;
	b->nodes = calloc(b->n_nodes, sizeof(*b->nodes));
	for (i = 0; i < b->n_nodes; i++) {
		struct dt_node_state *n = &b->nodes[i];

		strcpy(n->node, i == 0 ? LONG_NAME : i == 1 ? "h2" : "gw");
		n->ctl_gen = i == 0 ? UINT64_MAX : i;
		n->n_endpoints = n_eps[i];
		n->endpoints =
			n->n_endpoints ? calloc(n->n_endpoints, sizeof(*n->endpoints)) : NULL;
		for (j = 0; j < n->n_endpoints; j++) {
			n->endpoints[j].vni = 100 + j;
			n->endpoints[j].addr = htonl(0x0a640001 + j);
		}
	}
	b->nodes[0].endpoints[2].vni = 0xFFFFFF;
	/* node 0 could not arm two keys: a reply key with the largest VNI (map full), and one
	 * of the largest task id (an update error); node 2 has a full map and no failure */
	b->nodes[0].task_map_max = 16384;
	b->nodes[0].task_map_used = 16384;
	b->nodes[0].n_arm_fails = 2;
	b->nodes[0].arm_fails = calloc(2, sizeof(*b->nodes[0].arm_fails));
	b->nodes[0].arm_fails[0] =
		(struct dt_arm_fail){.task_id = 7,
				     .flags = DT_TASK_F_REPLY | DT_TASK_F_ANYPORT,
				     .tuple = {.saddr = htonl(0x0a640002),
					       .daddr = htonl(0x0a640001),
					       .proto = 1,
					       .vni = 0xFFFFFF},
				     .err = E2BIG};
	b->nodes[0].arm_fails[1] = (struct dt_arm_fail){.task_id = UINT32_MAX,
							.tuple = {.saddr = UINT32_MAX,
								  .daddr = 1,
								  .sport = 65535,
								  .dport = 1,
								  .proto = 255,
								  .vni = 1},
							.err = EPERM};
	b->nodes[2].task_map_max = UINT32_MAX;
	b->nodes[2].task_map_used = 4;
	/* node 1 had two windows without observation (a stop; a crash that lost 3 samples and
	 * one that lost an unknown number) and colored two keys, one a reply key */
	b->nodes[1].n_gaps = 3;
	b->nodes[1].gaps[0] = (struct dt_gap){.from_ns = 1, .to_ns = 2, .cause = DT_GAP_STOPPED};
	b->nodes[1].gaps[1] = (struct dt_gap){.from_ns = 1700000000000000000ull,
					      .to_ns = UINT64_MAX,
					      .cause = DT_GAP_CRASHED,
					      .lost = 3};
	b->nodes[1].gaps[2] = (struct dt_gap){
		.from_ns = 5, .to_ns = 6, .cause = DT_GAP_DETACHED, .flags = DT_GAP_F_LOST_UNKNOWN};
	b->nodes[1].n_colored = 2;
	b->nodes[1].colored = calloc(2, sizeof(*b->nodes[1].colored));
	b->nodes[1].colored[0] = (struct dt_key_colored){.task_id = 7, .colored = UINT64_MAX};
	b->nodes[1].colored[1] = (struct dt_key_colored){
		.task_id = UINT32_MAX, .flags = DT_TASK_F_REPLY, .colored = 5};
	b->nodes[0].endpoints[2].addr = 0;
	b->nodes[2].endpoints[0].addr = UINT32_MAX;
}

/* A batch with max-length names, three interfaces, three strings, n samples (calloc'd:
 * zero padding) and three node states. */
static void mk_batch(struct dt_batch *b, uint32_t n)
{
	uint32_t i;

	memset(b, 0, sizeof(*b));
	strcpy(b->sender, LONG_NAME);
	b->seq = 42;
	b->ctl_gen = 0x100000000ull;
	strcpy(b->node, "h1");
	b->n_ifaces = 3;
	strcpy(b->ifaces[0], "pt1");
	strcpy(b->ifaces[1], "ul0");
	strcpy(b->ifaces[2], LONG_IF);
	b->lost[DT_LOSS_RING_FULL] = 7;
	b->lost[DT_LOSS_QUEUE_FULL] = UINT64_MAX;
	b->lost[DT_LOSS_BAD_VERSION] = 0;
	b->lost[DT_LOSS_REJECTED] = 3;
	b->n_strings = N_BATCH_STRINGS;
	b->strings = calloc(N_BATCH_STRINGS, sizeof(*b->strings));
	for (i = 0; i < N_BATCH_STRINGS; i++) {
		strcpy(b->strings[i], batch_strings[i]);
	}
	b->n_samples = n;
	b->samples = n > 0 ? calloc(n, sizeof(*b->samples)) : NULL;
	for (i = 0; i < n; i++) {
		mk_sample(&b->samples[i], i);
	}
	mk_nodes(b);
}

static void mk_arm(struct dt_arm *a, unsigned int i)
{
	a->task_id = 1 + i / 2;
	a->flags = (i % 4 >= 2 ? DT_TASK_F_ANYPORT : 0) | (i % 2 ? DT_TASK_F_REPLY : 0);
	mk_tuple(&a->tuple, i);
	if (a->flags & DT_TASK_F_ANYPORT) {
		a->tuple.sport = 0;
		a->tuple.dport = 0;
	}
	a->budget = i == 0 ? UINT32_MAX : 100 * i;
	a->rate_pps = i == 1 ? 0 : 10 + i;
}

static void mk_control(struct dt_control *c, uint64_t gen, uint32_t n)
{
	uint32_t i;

	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->n_arms = n;
	c->arms = n > 0 ? calloc(n, sizeof(*c->arms)) : NULL;
	for (i = 0; i < n; i++) {
		mk_arm(&c->arms[i], i);
	}
}

static void mk_task(struct dt_task_info *t)
{
	memset(t, 0, sizeof(*t));
	t->id = 0xFFFFFFFEu;
	t->state = DT_TASK_RUNNING;
	t->spec.flags = DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH;
	mk_tuple(&t->spec.tuple, 2);
	t->spec.tuple.sport = 0;
	t->spec.tuple.dport = 0;
	t->spec.budget = 100;
	t->spec.duration_s = UINT32_MAX;
	t->spec.rate_pps = 10000;
	t->created_ns = 1700000000000000000ull;
	t->colored = 10;
	t->delivered = 9;
	strcpy(t->tenant, "acme");
	t->status = DT_TS_RESTARTED;
	strcpy(t->status_text, "the analyzer restarted; the task was resumed");
	t->armed_ns = 1700000000500000000ull;
	t->ended_ns = UINT64_MAX;
}

static void mk_hop_ref(struct dt_hop_ref *r, const char *node, const char *ifname, uint8_t hook)
{
	strcpy(r->node, node);
	strcpy(r->ifname, ifname);
	r->hook = hook;
}

/*
 * A report of n_packets packets, the kinds in turn: 0 delivered request (four hops),
 * 1 dropped reply (the drop is the fourth hop), 2 request out through the NAT gateway
 * (the last hop has the translated tuple), 3 vanished after two hops; the last packet has
 * no hops and is in flight. Three hop stats, five loss rows and a verdict with a loss.
 */
static void mk_report(struct dt_report *r, uint32_t n_packets)
{
	static const uint8_t hooks[4][4] = {
		{DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN, DT_HOOK_PORT_OUT},
		{DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN, DT_HOOK_DROP},
		{DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN, DT_HOOK_GW_OUT},
		{DT_HOOK_PORT_IN, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_IN, DT_HOOK_PORT_OUT},
	};
	static const uint8_t fates[4] = {DT_FATE_DELIVERED, DT_FATE_DROPPED, DT_FATE_DELIVERED,
					 DT_FATE_VANISHED};
	static const char *const nodes[] = {"h1", "h1", LONG_NAME, LONG_NAME};
	static const char *const ifs[] = {"pt1", "ul0", "ul0", LONG_IF};
	uint32_t i, j, k;

	memset(r, 0, sizeof(*r));
	mk_task(&r->task);
	r->n_packets = n_packets;
	r->packets = calloc(n_packets, sizeof(*r->packets));
	for (i = 0; i < n_packets; i++) {
		struct dt_packet_path *p = &r->packets[i];
		bool last = i + 1 == n_packets;

		k = i % 4;
		p->ip_id = 1000 + i;
		p->ident = 0x00070000 + i;
		p->len = 84;
		p->direction = k == 1 ? DT_DIR_REPLY : DT_DIR_REQUEST;
		p->fate = last ? DT_FATE_IN_FLIGHT : fates[k];
		mk_tuple(&p->tuple, i);
		if (p->fate == DT_FATE_DROPPED) {
			p->drop_reason = 5;
			strcpy(p->drop_name, "NETFILTER_DROP");
			strcpy(p->drop_where, LONG_SYM);
		}
		p->n_hops = last ? 0 : k == 3 ? 2 : 4;
		p->hops = p->n_hops ? calloc(p->n_hops, sizeof(*p->hops)) : NULL;
		for (j = 0; j < p->n_hops; j++) {
			struct dt_hop *h = &p->hops[j];

			mk_hop_ref(&h->at, nodes[j], ifs[j], hooks[k][j]);
			if (h->at.hook == DT_HOOK_DROP) {
				strcpy(h->at.ifname, "vxlan0");
			} else if (h->at.hook == DT_HOOK_GW_OUT) {
				mk_hop_ref(&h->at, "gw", "ext0", DT_HOOK_GW_OUT);
			}
			h->ts_ns = 1700000000000000000ull + i * 1000000 + j * 25000;
			h->tuple = p->tuple;
			if (h->at.hook == DT_HOOK_GW_OUT) {
				h->tuple.saddr = htonl(0xcb007101); /* 203.0.113.1 */
				h->tuple.sport = htons(61000 + i);
			}
			if (j != 1) { /* a prefix on all hops but the second */
				h->cap_link = h->at.hook == DT_HOOK_DROP ? DT_CAP_IPV4 : DT_CAP_ETH;
				h->cap_len = (uint16_t)(j == 3 ? DT_CAP_MAX : 42 + i % 50);
				memset(h->cap, 0xa0 + (int)j, h->cap_len);
			}
			h->parent = j == 0 ? DT_HOP_ROOT : (uint16_t)(j - 1);
			h->refrag = k == 2 && j == 1;
			if (h->at.hook == DT_HOOK_DROP) {
				h->drop_reason = 5;
				strcpy(h->drop_name, "NETFILTER_DROP");
				strcpy(h->drop_where, LONG_SYM);
			}
		}
		p->dest_known = i % 2 == 0;
		p->frag = k == 2 ? DT_FRAG_MF | 185 : 0;
		p->datagram_fate = k == 2 ? DT_FATE_DROPPED : p->fate;
		if (k == 0 && p->n_hops == 4) {
			/* a tree: hop 2 is a bystander's copy, hop 3 hangs from hop 1 */
			p->hops[2].branch = DT_BRANCH_COPY;
			p->hops[2].copy_end = DT_COPY_FILTERED;
			p->hops[3].parent = 1;
			p->n_copies = 1;
		}
	}
	r->n_stats = 3;
	r->stats = calloc(r->n_stats, sizeof(*r->stats));
	for (j = 0; j < r->n_stats; j++) {
		struct dt_hop_stat *s = &r->stats[j];

		mk_hop_ref(&s->from, nodes[j], ifs[j], hooks[0][j]);
		mk_hop_ref(&s->to, nodes[j + 1], ifs[j + 1], hooks[0][j + 1]);
		s->count = n_packets - 1;
		s->min_ns = 20000 + j;
		s->max_ns = 30000 + j;
		s->mean_ns = 25000.125 + j;
		s->stddev_ns = j == 0 ? 0.0 : 1234.5;
		s->branch = j == 2 ? DT_BRANCH_COPY : DT_BRANCH_DEST;
		s->direction = j == 1 ? DT_DIR_REPLY : DT_DIR_REQUEST;
	}
	r->lost[DT_LOSS_RING_FULL] = 1;
	r->lost[DT_LOSS_QUEUE_FULL] = 2;
	r->lost[DT_LOSS_BAD_VERSION] = 3;
	r->lost[DT_LOSS_REJECTED] = 4;
	r->n_rows = 5;
	r->rows = calloc(r->n_rows, sizeof(*r->rows));
	for (j = 0; j < r->n_rows; j++) {
		struct dt_hop_row *w = &r->rows[j];

		if (j < 4) {
			mk_hop_ref(&w->at, nodes[j], ifs[j], hooks[1][j]);
		} else {
			mk_hop_ref(&w->at, "h1", "pt1", DT_HOOK_PORT_OUT);
		}
		w->direction = j == 4 ? DT_DIR_REPLY : DT_DIR_REQUEST;
		w->seen = 100 - j;
		w->dropped = j == 2 ? 94 : 0;
		w->vanished = j == 1 ? 1 : 0;
		if (j == 2) {
			strcpy(w->top_reason, "NETFILTER_DROP");
		} else if (j == 3) {
			strcpy(w->top_reason, LONG_SYM);
		}
	}
	r->rows[3].seen = UINT64_MAX;
	r->verdict.judged = 100;
	r->verdict.delivered = 5;
	r->verdict.dropped = 94;
	r->verdict.vanished = 1;
	r->verdict.in_flight = 7;
	mk_hop_ref(&r->verdict.at, LONG_NAME, "vxlan0", DT_HOOK_DROP);
	strcpy(r->verdict.reason, "NETFILTER_DROP");
	fill(r->verdict.sentence, sizeof(r->verdict.sentence), 's');
	r->unmatched = 17;
	r->window_ms = 2000;
	r->verdict.dest_unknown = 3;
	r->n_copy_rows = 2;
	r->copy_rows = calloc(r->n_copy_rows, sizeof(*r->copy_rows));
	mk_hop_ref(&r->copy_rows[0].at, "h3", "vxlan0", DT_HOOK_DROP);
	r->copy_rows[0].direction = DT_DIR_REQUEST;
	r->copy_rows[0].end = DT_COPY_FILTERED;
	r->copy_rows[0].count = 10;
	strcpy(r->copy_rows[0].reason, "NOT_SPECIFIED");
	mk_hop_ref(&r->copy_rows[1].at, LONG_NAME, LONG_IF, DT_HOOK_UPLINK_IN);
	r->copy_rows[1].direction = DT_DIR_REPLY;
	r->copy_rows[1].end = DT_COPY_VANISHED;
	r->copy_rows[1].count = UINT64_MAX;
	r->verdict.unobserved = 4;
	r->n_blind = 2;
	r->blind = calloc(r->n_blind, sizeof(*r->blind));
	strcpy(r->blind[0].node, "h2");
	r->blind[0].gap =
		(struct dt_gap){.from_ns = 1000, .to_ns = 2000, .cause = DT_GAP_CRASHED, .lost = 7};
	r->blind[0].packets = 3;
	strcpy(r->blind[1].node, LONG_NAME);
	r->blind[1].gap = (struct dt_gap){.from_ns = 5000,
					  .to_ns = UINT64_MAX,
					  .cause = DT_GAP_STOPPED,
					  .flags = DT_GAP_F_LOST_UNKNOWN};
	r->blind[1].packets = 1;
}

/* ---------------------------------------------------------------------------------------- */
/* The decoders behind one interface, with one valid message each                           */
/* ---------------------------------------------------------------------------------------- */

/* A request's outputs: the token, and the spec or the task id. */
struct create_req {
	char token[DT_TOKEN_MAX];
	struct dt_task_spec spec;
};

struct id_req {
	char token[DT_TOKEN_MAX];
	uint32_t task_id;
};

union any_msg {
	struct dt_batch batch;
	struct dt_ack ack;
	struct dt_control control;
	struct create_req create;
	struct id_req req;
	char token[DT_TOKEN_MAX];
	struct dt_task_info task;
	struct dt_task_list tasks;
	struct dt_error error;
	struct dt_report report;
};

struct codec {
	const char *name;
	enum dt_msg_type type;
	size_t size; /* of the decoder's output */
	int (*decode)(const void *buf, size_t len, union any_msg *m);
	void (*release)(union any_msg *m);
	void (*valid)(msgpack_sbuffer *sb); /* appends a valid, non-trivial message */
};

static int dec_batch(const void *b, size_t l, union any_msg *m)
{
	return dt_batch_decode(b, l, &m->batch);
}

static int dec_ack(const void *b, size_t l, union any_msg *m)
{
	return dt_ack_decode(b, l, &m->ack);
}

static int dec_control(const void *b, size_t l, union any_msg *m)
{
	return dt_control_decode(b, l, &m->control);
}

static int dec_task_create(const void *b, size_t l, union any_msg *m)
{
	return dt_task_create_decode(b, l, m->create.token, &m->create.spec);
}

static int dec_task_get(const void *b, size_t l, union any_msg *m)
{
	return dt_task_get_decode(b, l, m->req.token, &m->req.task_id);
}

static int dec_report_get(const void *b, size_t l, union any_msg *m)
{
	return dt_report_get_decode(b, l, m->req.token, &m->req.task_id);
}

static int dec_task_cancel(const void *b, size_t l, union any_msg *m)
{
	return dt_task_cancel_decode(b, l, m->req.token, &m->req.task_id);
}

static int dec_task_list(const void *b, size_t l, union any_msg *m)
{
	return dt_task_list_decode(b, l, m->token);
}

static int dec_task(const void *b, size_t l, union any_msg *m)
{
	return dt_task_decode(b, l, &m->task);
}

static int dec_tasks(const void *b, size_t l, union any_msg *m)
{
	return dt_tasks_decode(b, l, &m->tasks);
}

static int dec_error(const void *b, size_t l, union any_msg *m)
{
	return dt_error_decode(b, l, &m->error);
}

static int dec_report(const void *b, size_t l, union any_msg *m)
{
	return dt_report_decode(b, l, &m->report);
}

static void rel_batch(union any_msg *m)
{
	dt_batch_free(&m->batch);
}

static void rel_ack(union any_msg *m)
{
	dt_ack_free(&m->ack);
}

static void rel_control(union any_msg *m)
{
	dt_control_free(&m->control);
}

static void rel_report(union any_msg *m)
{
	dt_report_free(&m->report);
}

static void rel_tasks(union any_msg *m)
{
	dt_task_list_free(&m->tasks);
}

static void valid_batch(msgpack_sbuffer *sb)
{
	struct dt_batch b;

	mk_batch(&b, 5);
	cr_assert_eq(dt_batch_encode(sb, &b), 0);
	dt_batch_free(&b);
}

static void valid_ack(msgpack_sbuffer *sb)
{
	struct dt_ack a;

	memset(&a, 0, sizeof(a));
	a.seq = 42;
	a.status = DT_ST_OK;
	a.has_control = true;
	mk_control(&a.control, 7, 3);
	cr_assert_eq(dt_ack_encode(sb, &a), 0);
	dt_ack_free(&a);
}

static void valid_control(msgpack_sbuffer *sb)
{
	struct dt_control c;

	mk_control(&c, 9, 4);
	cr_assert_eq(dt_control_encode(sb, &c), 0);
	dt_control_free(&c);
}

static void valid_task_create(msgpack_sbuffer *sb)
{
	struct dt_task_spec s;

	memset(&s, 0, sizeof(s));
	mk_tuple(&s.tuple, 0);
	s.budget = 500;
	s.duration_s = 60;
	s.rate_pps = 100;
	cr_assert_eq(dt_task_create_encode(sb, "acme-token-0123456789", &s), 0);
}

static void valid_task_get(msgpack_sbuffer *sb)
{
	cr_assert_eq(dt_task_get_encode(sb, "acme-token-0123456789", 300), 0);
}

static void valid_report_get(msgpack_sbuffer *sb)
{
	cr_assert_eq(dt_report_get_encode(sb, "acme-token-0123456789", 70000), 0);
}

static void valid_task_cancel(msgpack_sbuffer *sb)
{
	cr_assert_eq(dt_task_cancel_encode(sb, "acme-token-0123456789", 3), 0);
}

static void valid_task_list(msgpack_sbuffer *sb)
{
	cr_assert_eq(dt_task_list_encode(sb, "acme-token-0123456789"), 0);
}

static void valid_task(msgpack_sbuffer *sb)
{
	struct dt_task_info t;

	mk_task(&t);
	cr_assert_eq(dt_task_encode(sb, &t), 0);
}

/* Three tasks: 0 as mk_task, 1 failed with no host, 2 new with an empty tenant and text. */
static void mk_tasks(struct dt_task_list *l, uint32_t n)
{
	uint32_t i;

	l->n_tasks = n;
	l->tasks = n > 0 ? calloc(n, sizeof(*l->tasks)) : NULL;
	for (i = 0; i < n; i++) {
		mk_task(&l->tasks[i]);
		l->tasks[i].id = i + 1;
		l->tasks[i].state = i % DT_TASK_STATE_MAX;
		l->tasks[i].status = i % DT_TS_MAX;
	}
	if (n > 2) {
		l->tasks[1].state = DT_TASK_FAILED;
		l->tasks[1].status = DT_TS_NO_HOST;
		memset(l->tasks[1].status_text, 0, sizeof(l->tasks[1].status_text));
		strcpy(l->tasks[1].status_text, "no node hosts 10.100.0.3 in VNI 16777213");
		l->tasks[2].state = DT_TASK_NEW;
		l->tasks[2].status = DT_TS_OK;
		memset(l->tasks[2].tenant, 0, sizeof(l->tasks[2].tenant));
		memset(l->tasks[2].status_text, 0, sizeof(l->tasks[2].status_text));
		l->tasks[2].armed_ns = 0;
		l->tasks[2].ended_ns = 0;
	}
}

static void valid_tasks(msgpack_sbuffer *sb)
{
	struct dt_task_list l;

	mk_tasks(&l, 3);
	cr_assert_eq(dt_tasks_encode(sb, &l), 0);
	dt_task_list_free(&l);
}

static void valid_error(msgpack_sbuffer *sb)
{
	struct dt_error e;

	memset(&e, 0, sizeof(e));
	e.status = DT_ST_NOT_FOUND;
	strcpy(e.message, "no task 7");
	cr_assert_eq(dt_error_encode(sb, &e), 0);
}

static void valid_report(msgpack_sbuffer *sb)
{
	struct dt_report r;

	mk_report(&r, 3);
	cr_assert_eq(dt_report_encode(sb, &r), 0);
	dt_report_free(&r);
}

#define CODEC(n, t, field, rel)                                                                    \
	{                                                                                          \
		.name = #n, .type = t, .size = sizeof(((union any_msg *)0)->field),                \
		.decode = dec_##n, .release = rel, .valid = valid_##n,                             \
	}

static const struct codec codecs[] = {
	CODEC(batch, DT_MSG_BATCH, batch, rel_batch),
	CODEC(ack, DT_MSG_ACK, ack, rel_ack),
	CODEC(control, DT_MSG_CONTROL, control, rel_control),
	CODEC(task_create, DT_MSG_TASK_CREATE, create, NULL),
	CODEC(task_get, DT_MSG_TASK_GET, req, NULL),
	CODEC(task, DT_MSG_TASK, task, NULL),
	CODEC(report_get, DT_MSG_REPORT_GET, req, NULL),
	CODEC(report, DT_MSG_REPORT, report, rel_report),
	CODEC(error, DT_MSG_ERROR, error, NULL),
	CODEC(task_list, DT_MSG_TASK_LIST, token, NULL),
	CODEC(tasks, DT_MSG_TASKS, tasks, rel_tasks),
	CODEC(task_cancel, DT_MSG_TASK_CANCEL, req, NULL),
};

#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))

/* dt_batch_check() behind the codec interface: not in codecs[], as it decodes the type of
 * another codec. It must refuse exactly what dt_batch_decode() refuses. */
static int chk_batch(const void *b, size_t l, union any_msg *m)
{
	return dt_batch_check(b, l, &m->batch);
}

static const struct codec batch_check = {
	.name = "batch_check",
	.type = DT_MSG_BATCH,
	.size = sizeof(struct dt_batch),
	.decode = chk_batch,
	.release = rel_batch,
	.valid = valid_batch,
};

static const struct codec *codec_of(enum dt_msg_type type)
{
	size_t i;

	for (i = 0; i < N_CODECS; i++) {
		if (codecs[i].type == type) {
			return &codecs[i];
		}
	}
	cr_assert_fail("no codec for type %d", type);
	return NULL;
}

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++) {
		if (c[i] != 0) {
			return false;
		}
	}
	return true;
}

/*
 * Decodes into an output filled with garbage. On failure the output must be all zero;
 * on success it is released again. Returns the decoder's result.
 */
static int try_decode(const struct codec *c, const void *buf, size_t len)
{
	union any_msg *m = malloc(sizeof(*m));
	int rv;

	cr_assert_not_null(m);
	memset(m, 0xa5, sizeof(*m));
	rv = c->decode(buf, len, m);
	if (rv == 0) {
		if (c->release != NULL) {
			c->release(m);
			cr_expect(all_zero(m, c->size), "%s: *_free() left bytes behind", c->name);
		}
	} else {
		cr_expect(all_zero(m, c->size), "%s: output not zeroed after error %d (len %zu)",
			  c->name, rv, len);
	}
	free(m);
	return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Mutating valid messages                                                                  */
/* ---------------------------------------------------------------------------------------- */

enum op {
	OP_UINT, /* the object becomes the unsigned integer u */
	OP_NEG,	 /* the negative integer -u */
	OP_STR,	 /* the string s (of length n, or strlen(s) when n is 0) */
	OP_BIN,	 /* the binary s */
	OP_NIL,
	OP_BOOL,
	OP_F64,	   /* the double f */
	OP_F32,	   /* the float f */
	OP_MAP,	   /* an empty map */
	OP_DROP,   /* an array loses its last element */
	OP_RESIZE, /* an array gets u elements (0: one more), copies of its last one */
};

#define END -1

struct mutation {
	const char *what;
	int path[6]; /* array indexes from the root, ended by END */
	enum op op;
	uint64_t u;
	const char *s;
	size_t n;
	double f;
	int expect;
};

static const char chars300[] =
	"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
	"8901234567890123456789012345678901234567890123456789012345678901234567890123456789012345"
	"6789012345678901234567890123456789012345678901234567890123456789012345678901234567890123"
	"456789012345678901234567890123456789";

/* Applies m to the valid message in `in` and appends the result to `out`. */
static void mutate(const msgpack_sbuffer *in, const struct mutation *m, msgpack_sbuffer *out)
{
	msgpack_object root, *o = &root, *items;
	msgpack_packer pk;
	msgpack_zone zone;
	uint32_t i, size, want;
	size_t off = 0;

	cr_assert(msgpack_zone_init(&zone, 4096));
	cr_assert_eq(msgpack_unpack(in->data, in->size, &off, &zone, &root),
		     MSGPACK_UNPACK_SUCCESS);
	for (i = 0; m->path[i] != END; i++) {
		cr_assert_eq(o->type, MSGPACK_OBJECT_ARRAY, "%s: path", m->what);
		cr_assert_lt((uint32_t)m->path[i], o->via.array.size, "%s: path", m->what);
		o = &o->via.array.ptr[m->path[i]];
	}
	switch (m->op) {
	case OP_UINT:
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = m->u;
		break;
	case OP_NEG:
		o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
		o->via.i64 = -(int64_t)m->u;
		break;
	case OP_STR:
	case OP_BIN:
		o->type = m->op == OP_STR ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
		o->via.str.ptr = m->s;
		o->via.str.size = m->n ? m->n : strlen(m->s);
		break;
	case OP_NIL:
		o->type = MSGPACK_OBJECT_NIL;
		break;
	case OP_BOOL:
		o->type = MSGPACK_OBJECT_BOOLEAN;
		o->via.boolean = true;
		break;
	case OP_F64:
	case OP_F32:
		o->type = m->op == OP_F64 ? MSGPACK_OBJECT_FLOAT64 : MSGPACK_OBJECT_FLOAT32;
		o->via.f64 = m->f;
		break;
	case OP_MAP:
		o->type = MSGPACK_OBJECT_MAP;
		o->via.map.size = 0;
		o->via.map.ptr = NULL;
		break;
	case OP_DROP:
		cr_assert_eq(o->type, MSGPACK_OBJECT_ARRAY, "%s", m->what);
		cr_assert_gt(o->via.array.size, 0, "%s", m->what);
		o->via.array.size--;
		break;
	case OP_RESIZE:
		cr_assert_eq(o->type, MSGPACK_OBJECT_ARRAY, "%s", m->what);
		size = o->via.array.size;
		want = m->u ? m->u : size + 1;
		cr_assert_gt(size, 0, "%s", m->what);
		items = msgpack_zone_malloc(&zone, want * sizeof(*items));
		cr_assert_not_null(items);
		for (i = 0; i < want; i++) {
			items[i] = o->via.array.ptr[i < size ? i : size - 1];
		}
		o->via.array.ptr = items;
		o->via.array.size = want;
		break;
	}
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	cr_assert_eq(msgpack_pack_object(&pk, root), 0);
	msgpack_zone_destroy(&zone);
}

/* Runs a mutation table against a codec's valid message. */
static void run_mutations(const struct codec *c, const struct mutation *tab, size_t n)
{
	msgpack_sbuffer valid, bad;
	size_t i;
	int rv;

	msgpack_sbuffer_init(&valid);
	c->valid(&valid);
	cr_assert_eq(try_decode(c, valid.data, valid.size), 0, "%s: valid message", c->name);
	for (i = 0; i < n; i++) {
		msgpack_sbuffer_init(&bad);
		mutate(&valid, &tab[i], &bad);
		rv = try_decode(c, bad.data, bad.size);
		cr_expect_eq(rv, tab[i].expect, "%s: %s: got %d (%s), want %d (%s)", c->name,
			     tab[i].what, rv, dt_proto_strerror(rv), tab[i].expect,
			     dt_proto_strerror(tab[i].expect));
		msgpack_sbuffer_destroy(&bad);
	}
	msgpack_sbuffer_destroy(&valid);
}

#define RUN_MUTATIONS(type, tab) run_mutations(codec_of(type), tab, sizeof(tab) / sizeof(tab[0]))

/* ---------------------------------------------------------------------------------------- */
/* Round trips                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void expect_batch_eq(const struct dt_batch *a, const struct dt_batch *b)
{
	uint32_t i;

	cr_assert_str_eq(a->sender, b->sender);
	cr_assert_eq(a->seq, b->seq);
	cr_assert_eq(a->ctl_gen, b->ctl_gen);
	cr_assert_str_eq(a->node, b->node);
	cr_assert_eq(a->n_ifaces, b->n_ifaces);
	for (i = 0; i < a->n_ifaces; i++) {
		cr_assert_str_eq(a->ifaces[i], b->ifaces[i]);
	}
	cr_assert_arr_eq(a->lost, b->lost, sizeof(a->lost));
	cr_assert_eq(a->n_strings, b->n_strings);
	for (i = 0; i < a->n_strings; i++) {
		cr_assert_str_eq(a->strings[i], b->strings[i]);
	}
	if (a->n_strings == 0) {
		cr_assert_null(b->strings);
	}
	cr_assert_eq(a->n_samples, b->n_samples);
	for (i = 0; i < a->n_samples; i++) {
		cr_assert_arr_eq(&a->samples[i], &b->samples[i], sizeof(a->samples[i]),
				 "sample %u differs", i);
	}
	cr_assert_eq(a->n_nodes, b->n_nodes);
	if (a->n_nodes == 0) {
		cr_assert_null(b->nodes);
	}
	for (i = 0; i < a->n_nodes; i++) {
		const struct dt_node_state *x = &a->nodes[i], *y = &b->nodes[i];

		cr_assert_str_eq(x->node, y->node);
		cr_assert_eq(x->ctl_gen, y->ctl_gen);
		cr_assert_eq(x->n_endpoints, y->n_endpoints);
		if (x->n_endpoints > 0) {
			cr_assert_arr_eq(x->endpoints, y->endpoints,
					 x->n_endpoints * sizeof(*x->endpoints), "node %u", i);
		} else {
			cr_assert_null(y->endpoints);
		}
		cr_assert_eq(x->task_map_max, y->task_map_max);
		cr_assert_eq(x->task_map_used, y->task_map_used);
		cr_assert_eq(x->n_arm_fails, y->n_arm_fails);
		if (x->n_arm_fails > 0) {
			cr_assert_arr_eq(x->arm_fails, y->arm_fails,
					 x->n_arm_fails * sizeof(*x->arm_fails), "node %u", i);
		} else {
			cr_assert_null(y->arm_fails);
		}
		cr_assert_eq(x->n_gaps, y->n_gaps);
		cr_assert_arr_eq(x->gaps, y->gaps, x->n_gaps * sizeof(*x->gaps), "node %u", i);
		cr_assert_eq(x->n_colored, y->n_colored);
		if (x->n_colored > 0) {
			cr_assert_arr_eq(x->colored, y->colored, x->n_colored * sizeof(*x->colored),
					 "node %u", i);
		} else {
			cr_assert_null(y->colored);
		}
	}
}

Test(roundtrip, batch)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;

	mk_batch(&in, 9);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	memset(&out, 0xa5, sizeof(out));
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	expect_batch_eq(&in, &out);
	cr_assert_eq(strlen(out.sender), DT_NAME_MAX - 1);
	cr_assert_eq(strlen(out.ifaces[2]), DT_IFNAME_MAX - 1);
	cr_assert_eq(out.samples[0].tuple.vni, 0xFFFFFF);
	cr_assert_eq(out.samples[0].task_id, 0xFFFFFFFFu);
	cr_assert_eq(strlen(out.strings[2]), DT_STR_MAX - 1);
	/* every hook travels, the drop and gateway fields with it */
	cr_assert_eq(out.samples[1].hook, DT_HOOK_DROP);
	cr_assert_eq(out.samples[1].flags, DT_SAMPLE_F_ENCAP);
	cr_assert_eq(out.samples[1].drop_reason, 5);
	cr_assert_str_eq(out.strings[out.samples[1].drop_name], "NETFILTER_DROP");
	cr_assert_str_eq(out.strings[out.samples[1].drop_where], LONG_SYM);
	cr_assert_eq(out.samples[8].drop_reason, 0x10008);
	cr_assert_eq(out.samples[8].drop_where, DT_STR_NONE);
	cr_assert_eq(out.samples[3].hook, DT_HOOK_GW_OUT);
	cr_assert_eq(out.samples[5].hook, DT_HOOK_GW_IN);
	cr_assert_eq(out.samples[6].hook, DT_HOOK_PORT_OUT);
	cr_assert_eq(out.samples[3].flags, DT_SAMPLE_F_NAT);
	cr_assert_eq(out.samples[3].orig.saddr, htonl(0x0a640001 + 103));
	cr_assert_eq(out.samples[3].orig.proto, out.samples[3].tuple.proto);
	cr_assert_eq(out.samples[3].orig.vni, out.samples[3].tuple.vni);
	/* no NAT: orig stays all zero, its proto and vni included */
	cr_assert(all_zero(&out.samples[2].orig, sizeof(out.samples[2].orig)));
	cr_assert_eq(out.samples[2].drop_name, DT_STR_NONE);
	/* node states: a gateway endpoint (addr 0), a node without endpoints */
	cr_assert_eq(out.n_nodes, 3);
	cr_assert_eq(strlen(out.nodes[0].node), DT_NAME_MAX - 1);
	cr_assert_eq(out.nodes[0].ctl_gen, UINT64_MAX);
	cr_assert_eq(out.nodes[0].endpoints[2].vni, 0xFFFFFF);
	cr_assert_eq(out.nodes[0].endpoints[2].addr, 0);
	cr_assert_eq(out.nodes[1].n_endpoints, 0);
	cr_assert_null(out.nodes[1].endpoints);
	cr_assert_eq(out.nodes[2].endpoints[0].addr, UINT32_MAX);
	/* the task map and the keys a node could not arm, with their task and reason */
	cr_assert_eq(out.nodes[0].task_map_max, 16384);
	cr_assert_eq(out.nodes[0].n_arm_fails, 2);
	cr_assert_eq(out.nodes[0].arm_fails[0].task_id, 7);
	cr_assert_eq(out.nodes[0].arm_fails[0].flags, DT_TASK_F_REPLY | DT_TASK_F_ANYPORT);
	cr_assert_eq(out.nodes[0].arm_fails[0].tuple.vni, 0xFFFFFF);
	cr_assert_eq(out.nodes[0].arm_fails[0].err, E2BIG);
	cr_assert_eq(out.nodes[0].arm_fails[1].task_id, UINT32_MAX);
	cr_assert_eq(out.nodes[0].arm_fails[1].err, EPERM);
	cr_assert_eq(out.nodes[2].task_map_max, UINT32_MAX);
	cr_assert_null(out.nodes[1].arm_fails);
	dt_batch_free(&out);
	cr_assert(all_zero(&out, sizeof(out)));
	dt_batch_free(&out); /* safe on a zeroed struct */
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, batch_heartbeat_without_samples)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;

	mk_batch(&in, 0);
	in.n_ifaces = 0;
	free(in.strings);
	in.strings = NULL;
	in.n_strings = 0;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	expect_batch_eq(&in, &out);
	cr_assert_null(out.samples);
	cr_assert_null(out.strings);
	cr_assert_eq(out.n_nodes, 3); /* an agent's heartbeat carries its node state */
	dt_batch_free(&out);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

/* A sample whose orig proto and vni differ from its tuple's: they are not on the wire. */
/* An ordinary batch carries no node states: an empty list, decoded as NULL. */
Test(roundtrip, batch_without_node_states)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;

	mk_batch(&in, 2);
	dt_batch_free(&(struct dt_batch){.n_nodes = in.n_nodes, .nodes = in.nodes});
	in.nodes = NULL;
	in.n_nodes = 0;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	expect_batch_eq(&in, &out);
	cr_assert_null(out.nodes);
	dt_batch_free(&out);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

/* The most node states a batch may carry, one of them with the most endpoints. */
Test(roundtrip, batch_max_node_states)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;
	uint32_t i;

	mk_batch(&in, 1);
	dt_batch_free(&(struct dt_batch){.n_nodes = in.n_nodes, .nodes = in.nodes});
	in.n_nodes = DT_BATCH_MAX_NODES;
	in.nodes = calloc(in.n_nodes, sizeof(*in.nodes));
	for (i = 0; i < in.n_nodes; i++) {
		snprintf(in.nodes[i].node, sizeof(in.nodes[i].node), "node-%u", i);
		in.nodes[i].ctl_gen = i;
		in.nodes[i].n_endpoints = i == 7 ? DT_NODE_MAX_ENDPOINTS : 1;
		in.nodes[i].endpoints =
			calloc(in.nodes[i].n_endpoints, sizeof(*in.nodes[i].endpoints));
	}
	for (i = 0; i < DT_NODE_MAX_ENDPOINTS; i++) {
		in.nodes[7].endpoints[i].vni = i;
		in.nodes[7].endpoints[i].addr = htonl(0x0a000000 + i);
	}
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	expect_batch_eq(&in, &out);
	dt_batch_free(&out);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, batch_orig_takes_proto_and_vni_from_tuple)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;

	mk_batch(&in, 4);
	in.samples[3].orig.proto = 0;
	in.samples[3].orig.vni = 0;
	in.samples[2].orig.proto = 17; /* no DT_SAMPLE_F_NAT: orig is not meant to be read */
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	cr_assert_eq(out.samples[3].orig.proto, in.samples[3].tuple.proto);
	cr_assert_eq(out.samples[3].orig.vni, in.samples[3].tuple.vni);
	cr_assert_eq(out.samples[3].orig.daddr, in.samples[3].orig.daddr);
	cr_assert_eq(out.samples[2].orig.proto, 0);
	dt_batch_free(&out);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, batch_max_strings)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;
	uint32_t i;

	mk_batch(&in, 9);
	free(in.strings);
	in.n_strings = DT_BATCH_MAX_STRINGS;
	in.strings = calloc(in.n_strings, sizeof(*in.strings));
	for (i = 0; i < in.n_strings; i++) {
		fill(in.strings[i], DT_STR_MAX, 'A' + i % 26);
	}
	in.samples[1].drop_name = DT_BATCH_MAX_STRINGS - 1;
	in.samples[8].drop_where = 0;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	expect_batch_eq(&in, &out);
	dt_batch_free(&out);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, batch_max_interfaces)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;
	uint32_t i;

	mk_batch(&in, 2);
	in.n_ifaces = DT_BATCH_MAX_IFACES;
	for (i = 0; i < DT_BATCH_MAX_IFACES; i++) {
		fill(in.ifaces[i], DT_IFNAME_MAX, 'a' + i % 26);
	}
	in.samples[1].iface = DT_BATCH_MAX_IFACES - 1;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_decode(sb.data, sb.size, &out), 0);
	expect_batch_eq(&in, &out);
	dt_batch_free(&out);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

static void expect_control_eq(const struct dt_control *a, const struct dt_control *b)
{
	cr_assert_eq(a->gen, b->gen);
	cr_assert_eq(a->n_arms, b->n_arms);
	if (a->n_arms > 0) {
		cr_assert_arr_eq(a->arms, b->arms, a->n_arms * sizeof(*a->arms));
	} else {
		cr_assert_null(b->arms);
	}
}

Test(roundtrip, control)
{
	struct dt_control in, out;
	msgpack_sbuffer sb;

	mk_control(&in, UINT64_MAX, 6);
	cr_assert_eq(in.arms[3].flags, DT_TASK_F_ANYPORT | DT_TASK_F_REPLY);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_control_encode(&sb, &in), 0);
	cr_assert_eq(dt_control_decode(sb.data, sb.size, &out), 0);
	expect_control_eq(&in, &out);
	cr_assert_eq(out.arms[3].flags, DT_TASK_F_ANYPORT | DT_TASK_F_REPLY);
	cr_assert_eq(out.arms[3].tuple.sport, 0);
	dt_control_free(&out);
	dt_control_free(&out);
	dt_control_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, control_empty_set)
{
	struct dt_control in, out;
	msgpack_sbuffer sb;

	mk_control(&in, 1, 0);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_control_encode(&sb, &in), 0);
	cr_assert_eq(dt_control_decode(sb.data, sb.size, &out), 0);
	expect_control_eq(&in, &out);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, ack_with_control)
{
	struct dt_ack in, out;
	msgpack_sbuffer sb;

	memset(&in, 0, sizeof(in));
	in.seq = 0x123456789ull;
	in.status = DT_ST_FAILED;
	in.has_control = true;
	mk_control(&in.control, 3, 5);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_ack_encode(&sb, &in), 0);
	cr_assert_eq(dt_ack_decode(sb.data, sb.size, &out), 0);
	cr_assert_eq(out.seq, in.seq);
	cr_assert_eq(out.status, DT_ST_FAILED);
	cr_assert(out.has_control);
	expect_control_eq(&in.control, &out.control);
	dt_ack_free(&out);
	cr_assert(all_zero(&out, sizeof(out)));
	dt_ack_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, ack_without_control)
{
	struct dt_ack in, out;
	struct dt_arm junk[2];
	msgpack_sbuffer sb;

	/* has_control false: whatever control holds is not sent */
	memset(&in, 0, sizeof(in));
	memset(junk, 0xff, sizeof(junk));
	in.seq = 1;
	in.status = DT_ST_OK;
	in.control.gen = 99;
	in.control.n_arms = 2;
	in.control.arms = junk;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_ack_encode(&sb, &in), 0);
	cr_assert_eq(dt_ack_decode(sb.data, sb.size, &out), 0);
	cr_assert_eq(out.seq, 1);
	cr_assert_eq(out.status, DT_ST_OK);
	cr_assert_not(out.has_control);
	cr_assert(all_zero(&out.control, sizeof(out.control)));
	dt_ack_free(&out);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, task_create_anyport_and_ports)
{
	static const char *const tokens[] = {"acme-token-0123456789", "", LONG_TOKEN, "t"};
	char token[DT_TOKEN_MAX];
	struct dt_task_spec in, out;
	msgpack_sbuffer sb;
	int i;

	for (i = 0; i < 4; i++) {
		memset(&in, 0, sizeof(in));
		mk_tuple(&in.tuple, 2); /* ICMP */
		if (i >= 2) {
			in.flags =
				i == 2 ? DT_TASK_DIR_REPLY : DT_TASK_DIR_BOTH | DT_TASK_F_ANYPORT;
		} else if (i == 0) {
			in.flags = DT_TASK_F_ANYPORT;
			in.tuple.sport = 0;
			in.tuple.dport = 0;
		} else {
			in.flags = 0;
			in.tuple.proto = 6;
			in.tuple.sport = htons(65535);
		}
		/* limits: 0 (the analyzer's defaults), small, the largest */
		in.budget = i == 0 ? 0 : i == 1 ? UINT32_MAX : 100;
		in.duration_s = i == 2 ? UINT32_MAX : (uint32_t)i * 30;
		in.rate_pps = i == 3 ? UINT32_MAX : (uint32_t)i;
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_task_create_encode(&sb, tokens[i], &in), 0);
		memset(&out, 0xa5, sizeof(out));
		memset(token, 0xa5, sizeof(token));
		cr_assert_eq(dt_task_create_decode(sb.data, sb.size, token, &out), 0);
		cr_assert_arr_eq(&in, &out, sizeof(in));
		cr_assert_str_eq(token, tokens[i]);
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(roundtrip, task_get_report_get_and_cancel)
{
	static const uint32_t ids[] = {0, 1, 127, 128, 65535, 65536, UINT32_MAX};
	static const char *const tokens[] = {"acme-token-0123456789", "", LONG_TOKEN};
	char token[DT_TOKEN_MAX];
	msgpack_sbuffer sb;
	size_t i, k;
	uint32_t out;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const char *tok = tokens[i % 3];

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_task_get_encode(&sb, tok, ids[i]), 0);
		out = 12345;
		memset(token, 0xa5, sizeof(token));
		cr_assert_eq(dt_task_get_decode(sb.data, sb.size, token, &out), 0);
		cr_assert_eq(out, ids[i]);
		cr_assert_str_eq(token, tok);
		cr_assert_eq(dt_report_get_decode(sb.data, sb.size, token, &out),
			     DT_PROTO_EMSGTYPE);
		cr_assert_eq(out, 0);
		cr_assert(all_zero(token, sizeof(token)));
		cr_assert_eq(dt_task_cancel_decode(sb.data, sb.size, token, &out),
			     DT_PROTO_EMSGTYPE);
		msgpack_sbuffer_destroy(&sb);

		for (k = 0; k < 2; k++) {
			msgpack_sbuffer_init(&sb);
			if (k == 0) {
				cr_assert_eq(dt_report_get_encode(&sb, tok, ids[i]), 0);
				cr_assert_eq(dt_report_get_decode(sb.data, sb.size, token, &out),
					     0);
			} else {
				cr_assert_eq(dt_task_cancel_encode(&sb, tok, ids[i]), 0);
				cr_assert_eq(dt_task_cancel_decode(sb.data, sb.size, token, &out),
					     0);
			}
			cr_assert_eq(out, ids[i]);
			cr_assert_str_eq(token, tok);
			msgpack_sbuffer_destroy(&sb);
		}
	}
}

Test(roundtrip, task_list)
{
	static const char *const tokens[] = {"acme-token-0123456789", "", LONG_TOKEN};
	char token[DT_TOKEN_MAX];
	msgpack_sbuffer sb;
	uint32_t id;
	size_t i;

	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_task_list_encode(&sb, tokens[i]), 0);
		memset(token, 0xa5, sizeof(token));
		cr_assert_eq(dt_task_list_decode(sb.data, sb.size, token), 0);
		cr_assert_str_eq(token, tokens[i]);
		cr_assert_eq(dt_task_get_decode(sb.data, sb.size, token, &id), DT_PROTO_EMSGTYPE);
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(roundtrip, tasks)
{
	struct dt_task_list in, out;
	msgpack_sbuffer sb;
	uint32_t n;

	for (n = 0; n < 12; n += 3) {
		mk_tasks(&in, n);
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_tasks_encode(&sb, &in), 0);
		memset(&out, 0xa5, sizeof(out));
		cr_assert_eq(dt_tasks_decode(sb.data, sb.size, &out), 0);
		cr_assert_eq(out.n_tasks, n);
		if (n == 0) {
			cr_assert_null(out.tasks);
		} else {
			cr_assert_arr_eq(in.tasks, out.tasks, n * sizeof(*in.tasks));
		}
		dt_task_list_free(&out);
		cr_assert(all_zero(&out, sizeof(out)));
		dt_task_list_free(&out);
		dt_task_list_free(&in);
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(roundtrip, tasks_max)
{
	struct dt_task_list in, out;
	msgpack_sbuffer sb;

	mk_tasks(&in, DT_LIST_MAX_TASKS);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_tasks_encode(&sb, &in), 0);
	cr_assert_eq(dt_tasks_decode(sb.data, sb.size, &out), 0);
	cr_assert_eq(out.n_tasks, DT_LIST_MAX_TASKS);
	cr_assert_arr_eq(in.tasks, out.tasks, in.n_tasks * sizeof(*in.tasks));
	dt_task_list_free(&out);
	dt_task_list_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, task)
{
	struct dt_task_info in, out;
	msgpack_sbuffer sb;
	unsigned int st;

	for (st = 0; st < DT_TASK_STATE_MAX; st++) {
		mk_task(&in);
		in.state = st;
		in.status = st % DT_TS_MAX;
		if (st == DT_TASK_NEW) {
			memset(in.status_text, 0, sizeof(in.status_text));
			in.armed_ns = 0;
			in.ended_ns = 0;
		} else if (st == DT_TASK_FAILED) {
			/* the longest tenant name and sentence */
			strcpy(in.tenant, LONG_NAME);
			fill(in.status_text, sizeof(in.status_text), 't');
		}
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_task_encode(&sb, &in), 0);
		memset(&out, 0xa5, sizeof(out));
		cr_assert_eq(dt_task_decode(sb.data, sb.size, &out), 0);
		cr_assert_arr_eq(&in, &out, sizeof(in));
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(roundtrip, error_max_length_message)
{
	struct dt_error in, out;
	msgpack_sbuffer sb;

	memset(&in, 0, sizeof(in));
	in.status = DT_ST_REFUSED;
	fill(in.message, sizeof(in.message), 'm');
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_error_encode(&sb, &in), 0);
	cr_assert_eq(dt_error_decode(sb.data, sb.size, &out), 0);
	cr_assert_eq(out.status, DT_ST_REFUSED);
	cr_assert_str_eq(out.message, in.message);
	cr_assert_eq(strlen(out.message), DT_MSG_MAX - 1);
	msgpack_sbuffer_destroy(&sb);
}

static void expect_hop_ref_eq(const struct dt_hop_ref *a, const struct dt_hop_ref *b)
{
	cr_assert_str_eq(a->node, b->node);
	cr_assert_str_eq(a->ifname, b->ifname);
	cr_assert_eq(a->hook, b->hook);
}

static void expect_report_eq(const struct dt_report *a, const struct dt_report *b)
{
	uint32_t i, j;

	cr_assert_arr_eq(&a->task, &b->task, sizeof(a->task));
	cr_assert_eq(a->n_packets, b->n_packets);
	for (i = 0; i < a->n_packets; i++) {
		const struct dt_packet_path *p = &a->packets[i], *q = &b->packets[i];

		cr_assert_eq(p->ip_id, q->ip_id);
		cr_assert_eq(p->ident, q->ident);
		cr_assert_eq(p->len, q->len);
		cr_assert_eq(p->direction, q->direction);
		cr_assert_eq(p->fate, q->fate);
		cr_assert_arr_eq(&p->tuple, &q->tuple, sizeof(p->tuple));
		cr_assert_eq(p->drop_reason, q->drop_reason);
		cr_assert_str_eq(p->drop_name, q->drop_name);
		cr_assert_str_eq(p->drop_where, q->drop_where);
		cr_assert_eq(p->n_hops, q->n_hops);
		for (j = 0; j < p->n_hops; j++) {
			expect_hop_ref_eq(&p->hops[j].at, &q->hops[j].at);
			cr_assert_eq(p->hops[j].ts_ns, q->hops[j].ts_ns);
			cr_assert_arr_eq(&p->hops[j].tuple, &q->hops[j].tuple,
					 sizeof(p->hops[j].tuple), "packet %u hop %u", i, j);
			cr_assert_eq(p->hops[j].cap_link, q->hops[j].cap_link);
			cr_assert_eq(p->hops[j].cap_len, q->hops[j].cap_len);
			cr_assert_arr_eq(p->hops[j].cap, q->hops[j].cap, p->hops[j].cap_len,
					 "packet %u hop %u", i, j);
			cr_assert_eq(p->hops[j].parent, q->hops[j].parent);
			cr_assert_eq(p->hops[j].branch, q->hops[j].branch);
			cr_assert_eq(p->hops[j].copy_end, q->hops[j].copy_end);
			cr_assert_eq(p->hops[j].drop_reason, q->hops[j].drop_reason);
			cr_assert_str_eq(p->hops[j].drop_name, q->hops[j].drop_name);
			cr_assert_str_eq(p->hops[j].drop_where, q->hops[j].drop_where);
			cr_assert_eq(p->hops[j].refrag, q->hops[j].refrag);
		}
		cr_assert_eq(p->dest_known, q->dest_known);
		cr_assert_eq(p->n_copies, q->n_copies);
		cr_assert_eq(p->frag, q->frag);
		cr_assert_eq(p->datagram_fate, q->datagram_fate);
	}
	cr_assert_eq(a->n_stats, b->n_stats);
	for (i = 0; i < a->n_stats; i++) {
		const struct dt_hop_stat *s = &a->stats[i], *t = &b->stats[i];

		expect_hop_ref_eq(&s->from, &t->from);
		expect_hop_ref_eq(&s->to, &t->to);
		cr_assert_eq(s->count, t->count);
		cr_assert_eq(s->min_ns, t->min_ns);
		cr_assert_eq(s->max_ns, t->max_ns);
		cr_assert_eq(s->mean_ns, t->mean_ns); /* doubles travel exactly */
		cr_assert_eq(s->stddev_ns, t->stddev_ns);
		cr_assert_eq(s->branch, t->branch);
		cr_assert_eq(s->direction, t->direction);
	}
	cr_assert_arr_eq(a->lost, b->lost, sizeof(a->lost));
	cr_assert_eq(a->n_rows, b->n_rows);
	for (i = 0; i < a->n_rows; i++) {
		const struct dt_hop_row *v = &a->rows[i], *w = &b->rows[i];

		expect_hop_ref_eq(&v->at, &w->at);
		cr_assert_eq(v->direction, w->direction);
		cr_assert_eq(v->seen, w->seen);
		cr_assert_eq(v->dropped, w->dropped);
		cr_assert_eq(v->vanished, w->vanished);
		cr_assert_str_eq(v->top_reason, w->top_reason);
	}
	cr_assert_eq(a->verdict.judged, b->verdict.judged);
	cr_assert_eq(a->verdict.delivered, b->verdict.delivered);
	cr_assert_eq(a->verdict.dropped, b->verdict.dropped);
	cr_assert_eq(a->verdict.vanished, b->verdict.vanished);
	cr_assert_eq(a->verdict.in_flight, b->verdict.in_flight);
	expect_hop_ref_eq(&a->verdict.at, &b->verdict.at);
	cr_assert_str_eq(a->verdict.reason, b->verdict.reason);
	cr_assert_str_eq(a->verdict.sentence, b->verdict.sentence);
	cr_assert_eq(a->unmatched, b->unmatched);
	cr_assert_eq(a->window_ms, b->window_ms);
	cr_assert_eq(a->verdict.dest_unknown, b->verdict.dest_unknown);
	cr_assert_eq(a->n_copy_rows, b->n_copy_rows);
	for (i = 0; i < a->n_copy_rows; i++) {
		const struct dt_copy_row *c = &a->copy_rows[i], *d = &b->copy_rows[i];

		expect_hop_ref_eq(&c->at, &d->at);
		cr_assert_eq(c->direction, d->direction);
		cr_assert_eq(c->end, d->end);
		cr_assert_eq(c->count, d->count);
		cr_assert_str_eq(c->reason, d->reason);
	}
	cr_assert_eq(a->verdict.unobserved, b->verdict.unobserved);
	cr_assert_eq(a->n_blind, b->n_blind);
	for (i = 0; i < a->n_blind; i++) {
		cr_assert_str_eq(a->blind[i].node, b->blind[i].node);
		cr_assert_eq(memcmp(&a->blind[i].gap, &b->blind[i].gap, sizeof(a->blind[i].gap)),
			     0);
		cr_assert_eq(a->blind[i].packets, b->blind[i].packets);
	}
}

Test(roundtrip, report)
{
	struct dt_report in, out;
	msgpack_sbuffer sb;

	mk_report(&in, 5);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_report_encode(&sb, &in), 0);
	memset(&out, 0xa5, sizeof(out));
	cr_assert_eq(dt_report_decode(sb.data, sb.size, &out), 0);
	expect_report_eq(&in, &out);
	cr_assert_eq(out.packets[4].n_hops, 0);
	cr_assert_null(out.packets[4].hops);
	cr_assert_eq(out.packets[4].fate, DT_FATE_IN_FLIGHT);
	cr_assert_eq(out.packets[0].hops[3].at.hook, DT_HOOK_PORT_OUT);
	/* the drop: the last hop, with its reason and location */
	cr_assert_eq(out.packets[1].direction, DT_DIR_REPLY);
	cr_assert_eq(out.packets[1].fate, DT_FATE_DROPPED);
	cr_assert_eq(out.packets[1].hops[3].at.hook, DT_HOOK_DROP);
	cr_assert_str_eq(out.packets[1].drop_name, "NETFILTER_DROP");
	cr_assert_eq(strlen(out.packets[1].drop_where), DT_STR_MAX - 1);
	/* the NAT: the gateway hop has the translated tuple, with the packet's proto and vni */
	cr_assert_eq(out.packets[2].hops[3].at.hook, DT_HOOK_GW_OUT);
	cr_assert_eq(out.packets[2].hops[3].tuple.saddr, htonl(0xcb007101));
	cr_assert_eq(out.packets[2].hops[3].tuple.sport, htons(61002));
	cr_assert_eq(out.packets[2].hops[3].tuple.proto, out.packets[2].tuple.proto);
	cr_assert_eq(out.packets[2].hops[3].tuple.vni, out.packets[2].tuple.vni);
	cr_assert_eq(out.packets[2].hops[2].tuple.saddr, out.packets[2].tuple.saddr);
	cr_assert_eq(out.packets[3].fate, DT_FATE_VANISHED);
	cr_assert_eq(out.packets[3].n_hops, 2);
	cr_assert_eq(out.rows[3].seen, UINT64_MAX);
	cr_assert_eq(out.rows[4].direction, DT_DIR_REPLY);
	cr_assert_eq(strlen(out.verdict.sentence), DT_MSG_MAX - 1);
	cr_assert_eq(out.verdict.at.hook, DT_HOOK_DROP);
	dt_report_free(&out);
	cr_assert(all_zero(&out, sizeof(out)));
	dt_report_free(&out);
	dt_report_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, report_empty)
{
	struct dt_report in, out;
	msgpack_sbuffer sb;

	memset(&in, 0, sizeof(in));
	mk_task(&in.task);
	in.task.state = DT_TASK_NEW;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_report_encode(&sb, &in), 0);
	cr_assert_eq(dt_report_decode(sb.data, sb.size, &out), 0);
	expect_report_eq(&in, &out);
	cr_assert_null(out.packets);
	cr_assert_null(out.stats);
	cr_assert_null(out.rows);
	cr_assert_eq(out.verdict.at.hook, DT_HOOK_NONE);
	dt_report_free(&out);
	msgpack_sbuffer_destroy(&sb);
}

/* No loss: the verdict names no place (hook 0, the only place where it is valid). */
Test(roundtrip, report_verdict_without_loss)
{
	struct dt_report in, out;
	msgpack_sbuffer sb;

	mk_report(&in, 2);
	memset(&in.verdict, 0, sizeof(in.verdict));
	in.verdict.judged = 1;
	in.verdict.delivered = 1;
	in.verdict.in_flight = 1;
	strcpy(in.verdict.sentence, "no loss: 1 of 1 packets delivered");
	in.unmatched = UINT64_MAX;
	in.window_ms = 0;
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_report_encode(&sb, &in), 0);
	cr_assert_eq(dt_report_decode(sb.data, sb.size, &out), 0);
	expect_report_eq(&in, &out);
	cr_assert_eq(out.verdict.at.hook, DT_HOOK_NONE);
	cr_assert_str_eq(out.verdict.at.node, "");
	cr_assert_str_eq(out.verdict.reason, "");
	dt_report_free(&out);
	dt_report_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, report_max_rows)
{
	struct dt_report in, out;
	msgpack_sbuffer sb;
	uint32_t i;

	mk_report(&in, 1);
	free(in.rows);
	in.n_rows = DT_REPORT_MAX_ROWS;
	in.rows = calloc(in.n_rows, sizeof(*in.rows));
	for (i = 0; i < in.n_rows; i++) {
		mk_hop_ref(&in.rows[i].at, "h2", "vxlan0", 1 + i % (DT_HOOK_MAX - 1));
		in.rows[i].direction = i % DT_DIR_MAX;
		in.rows[i].seen = i;
		fill(in.rows[i].top_reason, DT_STR_MAX, 'a' + i % 26);
	}
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_report_encode(&sb, &in), 0);
	cr_assert_eq(dt_report_decode(sb.data, sb.size, &out), 0);
	expect_report_eq(&in, &out);
	dt_report_free(&out);
	dt_report_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, encoders_append_to_the_buffer)
{
	char token[DT_TOKEN_MAX];
	msgpack_sbuffer sb;
	size_t first;
	uint32_t id;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_task_get_encode(&sb, "a", 5), 0);
	first = sb.size;
	cr_assert_eq(dt_task_get_encode(&sb, "b", 6), 0);
	cr_assert_gt(sb.size, first);
	cr_assert_eq(dt_task_get_decode(sb.data, sb.size, token, &id), DT_PROTO_ETRAILING);
	cr_assert_eq(dt_task_get_decode(sb.data, first, token, &id), 0);
	cr_assert_eq(id, 5);
	cr_assert_str_eq(token, "a");
	cr_assert_eq(dt_task_get_decode(sb.data + first, sb.size - first, token, &id), 0);
	cr_assert_eq(id, 6);
	cr_assert_str_eq(token, "b");
	msgpack_sbuffer_destroy(&sb);
}

/* ---------------------------------------------------------------------------------------- */
/* Encoders refuse what decoders would refuse, and leave the buffer as it was               */
/* ---------------------------------------------------------------------------------------- */

/* Encodes with a prefix already in the buffer; the failed encode must not touch it. */
#define EXPECT_ENCODE_FAILS(call, want)                                                            \
	do {                                                                                       \
		msgpack_sbuffer sb_;                                                               \
		msgpack_sbuffer *sb = &sb_;                                                        \
		int rv_;                                                                           \
		msgpack_sbuffer_init(sb);                                                          \
		msgpack_sbuffer_write(sb, "pre", 3);                                               \
		rv_ = (call);                                                                      \
		cr_expect_eq(rv_, want, "%s: got %d, want %d", #call, rv_, want);                  \
		cr_expect_eq(sb->size, 3, "%s: buffer not rolled back", #call);                    \
		cr_expect_eq(memcmp(sb->data, "pre", 3), 0);                                       \
		msgpack_sbuffer_destroy(sb);                                                       \
	} while (0)

Test(encode, batch_refusals)
{
	struct dt_batch b;

	mk_batch(&b, 3);
	memset(b.sender, 'x', sizeof(b.sender)); /* no NUL: too long */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	strcpy(b.sender, "h1");
	memset(b.ifaces[1], 'x', sizeof(b.ifaces[1]));
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	strcpy(b.ifaces[1], "ul0");

	b.samples[2].hook = DT_HOOK_NONE;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.samples[2].hook = DT_HOOK_MAX;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.samples[2].hook = DT_HOOK_UPLINK_OUT;

	/* string indices: below n_strings or DT_STR_NONE */
	b.samples[1].drop_name = N_BATCH_STRINGS;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.samples[1].drop_name = 0;
	b.samples[2].drop_where = DT_STR_NONE - 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.samples[2].drop_where = DT_STR_NONE;
	b.n_strings = 2; /* sample 1 names string #2 */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.n_strings = N_BATCH_STRINGS;
	memset(b.strings[1], 'x', sizeof(b.strings[1])); /* no NUL: too long */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	strcpy(b.strings[1], "nf_hook_slow+0x8c");
	b.n_strings = DT_BATCH_MAX_STRINGS + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.n_strings = N_BATCH_STRINGS;

	/* a zeroed sample names string #0: in a batch without strings, that is out of range */
	{
		struct dt_wire_sample zero = {.hook = DT_HOOK_PORT_IN};
		struct dt_batch z = {.n_ifaces = 1, .n_samples = 1, .samples = &zero};
		msgpack_sbuffer tmp;

		EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &z), DT_PROTO_ERANGE);
		zero.drop_name = DT_STR_NONE;
		zero.drop_where = DT_STR_NONE;
		msgpack_sbuffer_init(&tmp);
		cr_expect_eq(dt_batch_encode(&tmp, &z), 0);
		msgpack_sbuffer_destroy(&tmp);
	}

	b.samples[1].iface = b.n_ifaces;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.samples[1].iface = 0;

	b.samples[0].tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.samples[0].tuple.vni = 0xFFFFFF;

	/* a gap is a window with a known cause */
	b.nodes[1].gaps[0].to_ns = b.nodes[1].gaps[0].from_ns;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].gaps[0].to_ns = 2;
	b.nodes[1].gaps[1].cause = 0;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].gaps[1].cause = DT_GAP_CAUSE_MAX;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].gaps[1].cause = DT_GAP_SILENT;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].gaps[1].cause = DT_GAP_CRASHED;
	b.nodes[1].gaps[2].flags = 2;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].gaps[2].flags = DT_GAP_F_LOST_UNKNOWN;
	b.nodes[1].n_gaps = DT_NODE_MAX_GAPS + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].n_gaps = 3;

	b.n_ifaces = DT_BATCH_MAX_IFACES + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.n_ifaces = 3;

	b.n_samples = DT_BATCH_MAX_SAMPLES + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.n_samples = 3;

	free(b.samples);
	b.samples = NULL; /* n_samples > 0 without samples */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.n_samples = 0;
	free(b.strings);
	b.strings = NULL; /* n_strings > 0 without strings */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	dt_batch_free(&b);
}

Test(encode, other_refusals)
{
	struct dt_control c;
	struct dt_task_spec s;
	struct dt_task_info t;
	struct dt_error e;
	struct dt_report r;
	struct dt_ack a;

	mk_control(&c, 1, 2);
	c.arms[1].tuple.vni = 0xFFFFFFFF;
	EXPECT_ENCODE_FAILS(dt_control_encode(sb, &c), DT_PROTO_ERANGE);
	c.arms[1].tuple.vni = 1;
	c.n_arms = DT_CONTROL_MAX_TASKS + 1;
	EXPECT_ENCODE_FAILS(dt_control_encode(sb, &c), DT_PROTO_ERANGE);
	c.n_arms = 2;

	memset(&a, 0, sizeof(a));
	a.status = DT_ST_MAX;
	EXPECT_ENCODE_FAILS(dt_ack_encode(sb, &a), DT_PROTO_ERANGE);
	a.status = DT_ST_OK;
	a.has_control = true;
	a.control = c;
	a.control.arms[0].tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_ack_encode(sb, &a), DT_PROTO_ERANGE);
	dt_control_free(&c);

	memset(&s, 0, sizeof(s));
	s.tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_task_create_encode(sb, "t", &s), DT_PROTO_ERANGE);

	mk_task(&t);
	t.state = DT_TASK_STATE_MAX;
	EXPECT_ENCODE_FAILS(dt_task_encode(sb, &t), DT_PROTO_ERANGE);

	memset(&e, 0, sizeof(e));
	e.status = DT_ST_OK; /* an error is never ok */
	EXPECT_ENCODE_FAILS(dt_error_encode(sb, &e), DT_PROTO_ERANGE);
	e.status = DT_ST_MAX;
	EXPECT_ENCODE_FAILS(dt_error_encode(sb, &e), DT_PROTO_ERANGE);
	e.status = DT_ST_INVALID;
	memset(e.message, 'x', sizeof(e.message));
	EXPECT_ENCODE_FAILS(dt_error_encode(sb, &e), DT_PROTO_ERANGE);

	mk_report(&r, 2);
	r.stats[1].mean_ns = NAN;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.stats[1].mean_ns = 1;
	r.stats[2].to.hook = DT_HOOK_NONE;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.stats[2].to.hook = DT_HOOK_PORT_OUT;
	r.packets[0].n_hops = DT_REPORT_MAX_HOPS + 1;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[0].n_hops = 4;
	r.n_stats = DT_REPORT_MAX_STATS + 1;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.n_stats = 3;
	r.task.spec.tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	dt_report_free(&r);
}

Test(encode, task_service_refusals)
{
	char long_token[DT_TOKEN_MAX + 1];
	struct dt_task_list l;
	struct dt_task_spec s;
	struct dt_task_info t;
	struct dt_report r;
	struct dt_batch b;

	/* tokens: NULL, or DT_TOKEN_MAX bytes and more, are refused by every request */
	fill(long_token, sizeof(long_token), 'k'); /* 128 bytes */
	memset(&s, 0, sizeof(s));
	EXPECT_ENCODE_FAILS(dt_task_create_encode(sb, NULL, &s), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_create_encode(sb, long_token, &s), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_get_encode(sb, NULL, 1), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_get_encode(sb, long_token, 1), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_report_get_encode(sb, NULL, 1), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_report_get_encode(sb, long_token, 1), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_cancel_encode(sb, NULL, 1), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_cancel_encode(sb, long_token, 1), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_list_encode(sb, NULL), DT_PROTO_ERANGE);
	EXPECT_ENCODE_FAILS(dt_task_list_encode(sb, long_token), DT_PROTO_ERANGE);
	long_token[DT_TOKEN_MAX - 1] = '\0'; /* 127 bytes: the longest token */
	{
		msgpack_sbuffer tmp;

		msgpack_sbuffer_init(&tmp);
		cr_expect_eq(dt_task_list_encode(&tmp, long_token), 0);
		cr_expect_eq(dt_task_cancel_encode(&tmp, "", 0), 0);
		msgpack_sbuffer_destroy(&tmp);
	}

	/* the task record: status, tenant and status_text */
	mk_task(&t);
	t.status = DT_TS_MAX;
	EXPECT_ENCODE_FAILS(dt_task_encode(sb, &t), DT_PROTO_ERANGE);
	t.status = DT_TS_OK;
	memset(t.tenant, 'x', sizeof(t.tenant));
	EXPECT_ENCODE_FAILS(dt_task_encode(sb, &t), DT_PROTO_ERANGE);
	strcpy(t.tenant, "acme");
	memset(t.status_text, 'x', sizeof(t.status_text));
	EXPECT_ENCODE_FAILS(dt_task_encode(sb, &t), DT_PROTO_ERANGE);
	t.status_text[0] = '\0';
	t.spec.tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_task_encode(sb, &t), DT_PROTO_ERANGE);

	/* ... also inside a report and a task list */
	mk_report(&r, 2);
	r.task.status = DT_TS_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	dt_report_free(&r);
	mk_tasks(&l, 3);
	l.tasks[2].status = DT_TS_MAX;
	EXPECT_ENCODE_FAILS(dt_tasks_encode(sb, &l), DT_PROTO_ERANGE);
	l.tasks[2].status = DT_TS_OK;
	memset(l.tasks[1].tenant, 'x', sizeof(l.tasks[1].tenant));
	EXPECT_ENCODE_FAILS(dt_tasks_encode(sb, &l), DT_PROTO_ERANGE);
	strcpy(l.tasks[1].tenant, "acme");
	l.n_tasks = DT_LIST_MAX_TASKS + 1;
	EXPECT_ENCODE_FAILS(dt_tasks_encode(sb, &l), DT_PROTO_ERANGE);
	l.n_tasks = 3;
	dt_task_list_free(&l);
	l.n_tasks = 1; /* n_tasks > 0 without tasks */
	EXPECT_ENCODE_FAILS(dt_tasks_encode(sb, &l), DT_PROTO_ERANGE);

	/* node states */
	mk_batch(&b, 2);
	memset(b.nodes[1].node, 'x', sizeof(b.nodes[1].node));
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	strcpy(b.nodes[1].node, "h2");
	b.nodes[0].endpoints[1].vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[0].endpoints[1].vni = 0xFFFFFF;
	b.nodes[0].n_endpoints = DT_NODE_MAX_ENDPOINTS + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[0].n_endpoints = 3;
	b.nodes[1].n_endpoints = 1; /* n_endpoints > 0 without endpoints */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].n_endpoints = 0;
	b.nodes[0].arm_fails[0].tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[0].arm_fails[0].tuple.vni = 0xFFFFFF;
	b.nodes[0].n_arm_fails = DT_NODE_MAX_ARM_FAILS + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[0].n_arm_fails = 2;
	b.nodes[1].n_arm_fails = 1; /* n_arm_fails > 0 without arm_fails */
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.nodes[1].n_arm_fails = 0;
	b.n_nodes = DT_BATCH_MAX_NODES + 1;
	EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &b), DT_PROTO_ERANGE);
	b.n_nodes = 3;
	{
		msgpack_sbuffer tmp;

		msgpack_sbuffer_init(&tmp);
		cr_expect_eq(dt_batch_encode(&tmp, &b), 0, "the batch is valid again");
		msgpack_sbuffer_destroy(&tmp);
	}
	{
		struct dt_batch z = {.n_nodes = 2}; /* n_nodes > 0 without nodes */

		EXPECT_ENCODE_FAILS(dt_batch_encode(sb, &z), DT_PROTO_ERANGE);
	}
	dt_batch_free(&b);
}

Test(encode, report_loss_refusals)
{
	struct dt_report r;
	char keep[DT_STR_MAX];

	mk_report(&r, 3);
	r.packets[1].direction = DT_DIR_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].direction = DT_DIR_REPLY;
	r.packets[0].fate = DT_FATE_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[0].fate = DT_FATE_DELIVERED;
	r.packets[0].tuple.vni = 0x1000000;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[0].tuple.vni = 1;
	strcpy(keep, r.packets[1].drop_name);
	memset(r.packets[1].drop_name, 'x', sizeof(r.packets[1].drop_name));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	strcpy(r.packets[1].drop_name, keep);
	memset(r.packets[1].drop_where, 'x', sizeof(r.packets[1].drop_where));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].drop_where[0] = '\0';
	r.packets[1].hops[3].at.hook = DT_HOOK_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[3].at.hook = DT_HOOK_NONE; /* hook 0 is for the verdict only */
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[3].at.hook = DT_HOOK_DROP;
	r.packets[1].hops[0].parent = 0; /* the root has no parent */
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[0].parent = DT_HOP_ROOT;
	r.packets[1].hops[2].parent = 2; /* a parent comes before its child */
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[2].parent = DT_HOP_ROOT; /* only the root has none */
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[2].parent = 1;
	r.packets[1].hops[2].branch = DT_BRANCH_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[2].branch = DT_BRANCH_DEST;
	r.packets[1].hops[2].copy_end = DT_COPY_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].hops[2].copy_end = DT_COPY_NONE;
	r.packets[1].dest_known = 2;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.packets[1].dest_known = 1;
	r.stats[1].branch = DT_BRANCH_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.stats[1].branch = DT_BRANCH_DEST;
	r.stats[1].direction = DT_DIR_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.stats[1].direction = DT_DIR_REPLY;
	r.copy_rows[0].end = DT_COPY_NONE; /* a copy row says how the copies ended */
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.copy_rows[0].end = DT_COPY_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.copy_rows[0].end = DT_COPY_FILTERED;
	r.copy_rows[1].direction = DT_DIR_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.copy_rows[1].direction = DT_DIR_REPLY;
	r.n_copy_rows = DT_REPORT_MAX_COPY_ROWS + 1;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.n_copy_rows = 2;

	r.rows[2].direction = DT_DIR_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.rows[2].direction = DT_DIR_REQUEST;
	r.rows[0].at.hook = DT_HOOK_NONE;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.rows[0].at.hook = DT_HOOK_PORT_IN;
	memset(r.rows[4].top_reason, 'x', sizeof(r.rows[4].top_reason));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.rows[4].top_reason[0] = '\0';
	memset(r.rows[4].at.ifname, 'x', sizeof(r.rows[4].at.ifname));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	strcpy(r.rows[4].at.ifname, "pt1");
	r.n_rows = DT_REPORT_MAX_ROWS + 1;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.n_rows = 5;

	r.verdict.at.hook = DT_HOOK_MAX;
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.verdict.at.hook = DT_HOOK_DROP;
	memset(r.verdict.at.node, 'x', sizeof(r.verdict.at.node));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	strcpy(r.verdict.at.node, "h2");
	memset(r.verdict.reason, 'x', sizeof(r.verdict.reason));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.verdict.reason[0] = '\0';
	memset(r.verdict.sentence, 'x', sizeof(r.verdict.sentence));
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.verdict.sentence[0] = '\0';

	free(r.rows);
	r.rows = NULL; /* n_rows > 0 without rows */
	EXPECT_ENCODE_FAILS(dt_report_encode(sb, &r), DT_PROTO_ERANGE);
	r.n_rows = 0;
	{
		msgpack_sbuffer tmp;

		msgpack_sbuffer_init(&tmp);
		cr_expect_eq(dt_report_encode(&tmp, &r), 0, "the report is valid again");
		msgpack_sbuffer_destroy(&tmp);
	}
	dt_report_free(&r);
}

/* ---------------------------------------------------------------------------------------- */
/* The collector's check and re-framing                                                     */
/* ---------------------------------------------------------------------------------------- */

/* What dt_batch_check() gives: everything of the decoded batch but the samples. */
static void expect_head_eq(const struct dt_batch *dec, const struct dt_batch *chk)
{
	struct dt_batch head = *dec;

	head.samples = NULL;
	head.n_samples = 0;
	cr_assert_eq(chk->n_samples, dec->n_samples);
	cr_assert_null(chk->samples);
	{
		struct dt_batch c = *chk;

		c.n_samples = 0;
		expect_batch_eq(&head, &c);
	}
}

Test(check, accepts_every_valid_batch_and_gives_its_head)
{
	const uint32_t sizes[] = {0, 1, 9, 1000};
	struct dt_batch in, dec, chk;
	msgpack_sbuffer sb;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		mk_batch(&in, sizes[k]);
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_batch_encode(&sb, &in), 0);
		cr_assert_eq(dt_batch_decode(sb.data, sb.size, &dec), 0);
		memset(&chk, 0xa5, sizeof(chk));
		cr_assert_eq(dt_batch_check(sb.data, sb.size, &chk), 0, "%u samples", sizes[k]);
		expect_head_eq(&dec, &chk);
		dt_batch_free(&chk);
		cr_assert(all_zero(&chk, sizeof(chk)));
		dt_batch_free(&dec);
		dt_batch_free(&in);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* What dt_batch_samples() hands on, in order. */
struct samples_seen {
	struct dt_wire_sample *v;
	uint32_t n, cap;
};

static void see_sample(void *arg, const struct dt_wire_sample *s)
{
	struct samples_seen *seen = arg;

	cr_assert_lt(seen->n, seen->cap, "more samples handed on than the batch holds");
	seen->v[seen->n++] = *s;
}

/* The samples read off the raw bytes are the decoder's, one by one, in order. */
Test(check, samples_read_raw_are_the_decoded_ones)
{
	const uint32_t sizes[] = {0, 1, 9, 1000};
	struct dt_batch in, dec, chk;
	msgpack_sbuffer sb;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct samples_seen seen = {.cap = sizes[k] + 1};

		seen.v = calloc(seen.cap, sizeof(*seen.v));
		cr_assert_not_null(seen.v);
		mk_batch(&in, sizes[k]);
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(dt_batch_encode(&sb, &in), 0);
		cr_assert_eq(dt_batch_decode(sb.data, sb.size, &dec), 0);
		cr_assert_eq(dt_batch_check(sb.data, sb.size, &chk), 0);
		cr_assert_eq(dt_batch_samples(sb.data, sb.size, &chk, see_sample, &seen), 0);
		cr_assert_eq(seen.n, dec.n_samples, "%u samples", sizes[k]);
		for (uint32_t i = 0; i < seen.n; i++) {
			cr_assert(memcmp(&seen.v[i], &dec.samples[i], sizeof(seen.v[i])) == 0,
				  "sample %u of %u", i, sizes[k]);
		}
		free(seen.v);
		dt_batch_free(&chk);
		dt_batch_free(&dec);
		dt_batch_free(&in);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* A sample that its head refuses stops the read there: those before it were handed on. */
Test(check, samples_read_raw_stop_at_a_bad_one)
{
	struct samples_seen seen = {.cap = 300};
	struct dt_batch in, chk;
	msgpack_sbuffer sb;

	seen.v = calloc(seen.cap, sizeof(*seen.v));
	cr_assert_not_null(seen.v);
	mk_batch(&in, 300);
	for (uint32_t i = 0; i < in.n_samples; i++) {
		in.samples[i].iface = i == 299 ? 2 : 0;
	}
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_check(sb.data, sb.size, &chk), 0);
	chk.n_ifaces = 2; /* a head with two interfaces: the last sample names a third */
	cr_assert_eq(dt_batch_samples(sb.data, sb.size, &chk, see_sample, &seen), DT_PROTO_ERANGE);
	cr_assert_eq(seen.n, 299);
	free(seen.v);
	dt_batch_free(&chk);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

/* Every value of a sample travels raw: a bad one in the last of many samples is found. */
Test(check, finds_a_bad_value_in_the_last_sample)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb;

	mk_batch(&in, 300);
	for (uint32_t i = 0; i < in.n_samples; i++) {
		in.samples[i].iface = i == 299 ? 2 : 0;
	}
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	cr_assert_eq(dt_batch_check(sb.data, sb.size, &out), 0);
	dt_batch_free(&out);
	/* the interface list cut to two names (the encoder would refuse it): only the last
	 * sample names interface #2 */
	{
		struct mutation m = {"2 ifaces", {6, END}, OP_DROP, .expect = DT_PROTO_ERANGE};
		msgpack_sbuffer bad;

		msgpack_sbuffer_init(&bad);
		mutate(&sb, &m, &bad);
		cr_assert_eq(try_decode(&batch_check, bad.data, bad.size), DT_PROTO_ERANGE);
		cr_assert_eq(try_decode(&codecs[0], bad.data, bad.size), DT_PROTO_ERANGE);
		msgpack_sbuffer_destroy(&bad);
	}
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
}

Test(check, reframe_changes_only_sender_seq_and_ctl_gen)
{
	struct dt_batch in, out;
	msgpack_sbuffer sb, re;
	uint32_t n = 1;
	size_t size;

	mk_batch(&in, 9);
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_init(&re);
	cr_assert_eq(dt_batch_encode(&sb, &in), 0);
	msgpack_sbuffer_write(&re, "x", 1); /* appends after what the buffer holds */
	cr_assert_eq(dt_batch_reframe(&re, sb.data, sb.size, "region-1", 1ull << 40, 77, &n), 0);
	cr_assert_eq(n, 9);
	cr_assert_eq(dt_batch_decode(re.data + 1, re.size - 1, &out), 0);
	strcpy(in.sender, "region-1");
	in.seq = 1ull << 40;
	in.ctl_gen = 77;
	expect_batch_eq(&in, &out);
	dt_batch_free(&out);

	/* refusals leave the buffer as it was */
	size = re.size;
	cr_assert_eq(dt_batch_reframe(&re, sb.data, 3, "region-1", 1, 1, &n), DT_PROTO_ETRUNC);
	cr_assert_eq(n, 0);
	cr_assert_eq(dt_batch_reframe(&re, (const char[]){'\x93', DT_PROTO_VERSION, DT_MSG_ACK}, 3,
				      "r", 1, 1, &n),
		     DT_PROTO_EMSGTYPE);
	cr_assert_eq(dt_batch_reframe(&re, sb.data, sb.size, LONG_NAME "x", 1, 1, &n),
		     DT_PROTO_ERANGE);
	cr_assert_eq(n, 0);
	cr_assert_eq(re.size, size);
	dt_batch_free(&in);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&re);
}

/* ---------------------------------------------------------------------------------------- */
/* Malformed input, for every decoder                                                       */
/* ---------------------------------------------------------------------------------------- */

Test(malformed, every_truncation_of_every_message)
{
	msgpack_sbuffer sb;
	size_t i, len;
	int rv;

	for (i = 0; i < N_CODECS; i++) {
		msgpack_sbuffer_init(&sb);
		codecs[i].valid(&sb);
		cr_assert_eq(try_decode(&codecs[i], sb.data, sb.size), 0, "%s", codecs[i].name);
		for (len = 0; len < sb.size; len++) {
			rv = try_decode(&codecs[i], sb.data, len);
			cr_expect_eq(rv, DT_PROTO_ETRUNC, "%s cut to %zu of %zu bytes: %d",
				     codecs[i].name, len, sb.size, rv);
		}
		/* a NULL buffer is an empty one */
		cr_expect_eq(try_decode(&codecs[i], NULL, 0), DT_PROTO_ETRUNC);
		msgpack_sbuffer_destroy(&sb);
	}
	msgpack_sbuffer_init(&sb);
	valid_batch(&sb);
	for (len = 0; len < sb.size; len++) {
		rv = try_decode(&batch_check, sb.data, len);
		cr_expect_eq(rv, DT_PROTO_ETRUNC, "batch_check cut to %zu of %zu bytes: %d", len,
			     sb.size, rv);
	}
	cr_expect_eq(try_decode(&batch_check, NULL, 0), DT_PROTO_ETRUNC);
	msgpack_sbuffer_destroy(&sb);
}

Test(malformed, trailing_bytes)
{
	msgpack_sbuffer sb;
	size_t i, len;

	for (i = 0; i < N_CODECS; i++) {
		msgpack_sbuffer_init(&sb);
		codecs[i].valid(&sb);
		len = sb.size;
		msgpack_sbuffer_write(&sb, "\xc0", 1);
		cr_expect_eq(try_decode(&codecs[i], sb.data, sb.size), DT_PROTO_ETRAILING, "%s",
			     codecs[i].name);
		codecs[i].valid(&sb); /* a second whole message after the nil */
		cr_expect_eq(try_decode(&codecs[i], sb.data, sb.size), DT_PROTO_ETRAILING, "%s",
			     codecs[i].name);
		cr_expect_eq(try_decode(&codecs[i], sb.data, len), 0, "%s", codecs[i].name);
		if (codecs[i].type == DT_MSG_BATCH) {
			cr_expect_eq(try_decode(&batch_check, sb.data, sb.size),
				     DT_PROTO_ETRAILING);
			cr_expect_eq(try_decode(&batch_check, sb.data, len), 0);
		}
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(malformed, wrong_message_type_for_every_decoder)
{
	msgpack_sbuffer sb;
	size_t i, j;
	int rv;

	for (i = 0; i < N_CODECS; i++) {
		msgpack_sbuffer_init(&sb);
		codecs[i].valid(&sb);
		for (j = 0; j < N_CODECS; j++) {
			rv = try_decode(&codecs[j], sb.data, sb.size);
			cr_expect_eq(rv, i == j ? 0 : DT_PROTO_EMSGTYPE, "%s decoded as %s: %d",
				     codecs[i].name, codecs[j].name, rv);
		}
		rv = try_decode(&batch_check, sb.data, sb.size);
		cr_expect_eq(rv, codecs[i].type == DT_MSG_BATCH ? 0 : DT_PROTO_EMSGTYPE,
			     "%s checked as a batch: %d", codecs[i].name, rv);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* The header and the top-level array, checked on every message type. */
Test(malformed, header_of_every_message)
{
	/* clang-format off */
	const struct mutation tab[] = {
		{"version 0", {0, END}, OP_UINT, 0, .expect = DT_PROTO_EVERSION},
		{"version 1 (older)", {0, END}, OP_UINT, DT_PROTO_VERSION - 1, .expect = DT_PROTO_EVERSION},
		{"version 3", {0, END}, OP_UINT, DT_PROTO_VERSION + 1, .expect = DT_PROTO_EVERSION},
		{"version 2^40", {0, END}, OP_UINT, 1ull << 40, .expect = DT_PROTO_EVERSION},
		{"version -1", {0, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"version \"1\"", {0, END}, OP_STR, .s = "1", .expect = DT_PROTO_ETYPE},
		{"version 1.0", {0, END}, OP_F64, .f = 1.0, .expect = DT_PROTO_ETYPE},
		{"version nil", {0, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"type 0", {1, END}, OP_UINT, 0, .expect = DT_PROTO_EMSGTYPE},
		{"type MAX", {1, END}, OP_UINT, DT_MSG_TYPE_MAX, .expect = DT_PROTO_EMSGTYPE},
		{"type 300", {1, END}, OP_UINT, 300, .expect = DT_PROTO_EMSGTYPE},
		{"type \"batch\"", {1, END}, OP_STR, .s = "batch", .expect = DT_PROTO_ETYPE},
		{"type true", {1, END}, OP_BOOL, .expect = DT_PROTO_ETYPE},
		{"one field short", {END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"one field more", {END}, OP_RESIZE, 0, .expect = DT_PROTO_ELENGTH},
		{"only the version", {END}, OP_RESIZE, 1, .expect = DT_PROTO_ELENGTH},
		{"root is an integer", {END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"root is a string", {END}, OP_STR, .s = "hello", .expect = DT_PROTO_ETYPE},
		{"root is a map", {END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"root is nil", {END}, OP_NIL, .expect = DT_PROTO_ETYPE},
	};
	/* clang-format on */
	size_t i;

	for (i = 0; i < N_CODECS; i++) {
		run_mutations(&codecs[i], tab, sizeof(tab) / sizeof(tab[0]));
	}
	run_mutations(&batch_check, tab, sizeof(tab) / sizeof(tab[0]));
}

Test(malformed, batch_fields)
{
	/* [2, 1, sender, seq, ctl_gen, node, [ifname...], [lost...], [string...], [sample...],
	 *  [[node, ctl_gen, [[vni, addr]...]]...]]
	 * sample: [hook, flags, iface, ts_ns, saddr, daddr, sport, dport, proto, vni, task_id,
	 *          ip_id, ident, len, outer_saddr, outer_daddr, orig_saddr, orig_daddr,
	 *          orig_sport, orig_dport, drop_reason, drop_name, drop_where, cap_link, cap]
	 * The valid batch has 3 ifaces, 3 strings and samples 0 port-in, 1 drop (names #0 and
	 * #2), 2 uplink-out, 3 gw-out (NAT), 4 uplink-in; node states 0 (3 endpoints, the
	 * last a gateway's), 1 (none), 2 (one). */
	/* clang-format off */
	const struct mutation tab[] = {
		{"sender uint", {2, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"sender bin", {2, END}, OP_BIN, .s = "h1", .expect = DT_PROTO_ETYPE},
		{"sender 64 chars", {2, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"sender 63 chars", {2, END}, OP_STR, .s = chars300, .n = 63, .expect = 0},
		{"sender empty", {2, END}, OP_STR, .s = "", .expect = 0},
		{"sender with NUL", {2, END}, OP_STR, .s = "h\0x", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"seq negative", {3, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"seq string", {3, END}, OP_STR, .s = "1", .expect = DT_PROTO_ETYPE},
		{"seq float", {3, END}, OP_F64, .f = 1.0, .expect = DT_PROTO_ETYPE},
		{"seq nil", {3, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"seq bool", {3, END}, OP_BOOL, .expect = DT_PROTO_ETYPE},
		{"ctl_gen max", {4, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"ctl_gen map", {4, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"node 64 chars", {5, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"ifaces nil", {6, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"ifaces map", {6, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"ifname 16 chars", {6, 1, END}, OP_STR, .s = chars300, .n = 16,
		  .expect = DT_PROTO_ERANGE},
		{"ifname uint", {6, 0, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"256 ifaces", {6, END}, OP_RESIZE, 256, .expect = 0},
		{"257 ifaces", {6, END}, OP_RESIZE, 257, .expect = DT_PROTO_ELENGTH},
		{"2 ifaces, sample uses #2", {6, END}, OP_DROP, .expect = DT_PROTO_ERANGE},
		{"lost short", {7, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"lost long", {7, END}, OP_RESIZE, DT_LOSS_MAX + 1, .expect = DT_PROTO_ELENGTH},
		{"lost uint", {7, END}, OP_UINT, 3, .expect = DT_PROTO_ETYPE},
		{"lost[1] negative", {7, 1, END}, OP_NEG, 5, .expect = DT_PROTO_ETYPE},
		{"lost[3] max", {7, 3, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"strings nil", {8, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"strings map", {8, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"strings uint", {8, END}, OP_UINT, 3, .expect = DT_PROTO_ETYPE},
		{"string uint", {8, 0, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"string bin", {8, 1, END}, OP_BIN, .s = "nf", .expect = DT_PROTO_ETYPE},
		{"string 96 chars", {8, 1, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"string 95 chars", {8, 1, END}, OP_STR, .s = chars300, .n = 95, .expect = 0},
		{"string empty", {8, 1, END}, OP_STR, .s = "", .expect = 0},
		{"string with NUL", {8, 0, END}, OP_STR, .s = "NF\0", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"1024 strings", {8, END}, OP_RESIZE, DT_BATCH_MAX_STRINGS, .expect = 0},
		{"1025 strings", {8, END}, OP_RESIZE, DT_BATCH_MAX_STRINGS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"2 strings, sample uses #2", {8, END}, OP_DROP, .expect = DT_PROTO_ERANGE},
		{"samples uint", {9, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"samples map", {9, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"65536 samples", {9, END}, OP_RESIZE, DT_BATCH_MAX_SAMPLES, .expect = 0},
		{"65537 samples", {9, END}, OP_RESIZE, DT_BATCH_MAX_SAMPLES + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"sample short", {9, 3, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"sample long", {9, 3, END}, OP_RESIZE, 27, .expect = DT_PROTO_ELENGTH},
		{"sample of v3 (25)", {9, 3, END}, OP_RESIZE, 25, .expect = DT_PROTO_ELENGTH},
		{"frag 0x4000 (DF is not carried)", {9, 0, 25, END}, OP_UINT, 0x4000,
		  .expect = DT_PROTO_ERANGE},
		{"frag MF | max offset", {9, 0, 25, END}, OP_UINT, 0x3fff, .expect = 0},
		{"frag string", {9, 1, 25, END}, OP_STR, .s = "mf", .expect = DT_PROTO_ETYPE},
		{"sample of v1 (16)", {9, 3, END}, OP_RESIZE, 16, .expect = DT_PROTO_ELENGTH},
		{"sample empty", {9, 3, END}, OP_RESIZE, 1, .expect = DT_PROTO_ELENGTH},
		{"sample uint", {9, 0, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"hook 0", {9, 0, 0, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"hook 8", {9, 0, 0, END}, OP_UINT, DT_HOOK_MAX, .expect = DT_PROTO_ERANGE},
		{"hook 7", {9, 0, 0, END}, OP_UINT, DT_HOOK_DROP, .expect = 0},
		{"hook 6", {9, 0, 0, END}, OP_UINT, DT_HOOK_GW_IN, .expect = 0},
		{"hook 5", {9, 0, 0, END}, OP_UINT, DT_HOOK_GW_OUT, .expect = 0},
		{"hook 4", {9, 0, 0, END}, OP_UINT, DT_HOOK_UPLINK_OUT, .expect = 0},
		{"hook string", {9, 0, 0, END}, OP_STR, .s = "port-in", .expect = DT_PROTO_ETYPE},
		{"flags 256", {9, 1, 1, END}, OP_UINT, 256, .expect = DT_PROTO_ERANGE},
		{"flags 255", {9, 1, 1, END}, OP_UINT, 255, .expect = 0},
		{"iface = n_ifaces", {9, 1, 2, END}, OP_UINT, 3, .expect = DT_PROTO_ERANGE},
		{"iface 2^16", {9, 1, 2, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"iface n_ifaces-1", {9, 1, 2, END}, OP_UINT, 2, .expect = 0},
		{"ts max", {9, 1, 3, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"ts negative", {9, 1, 3, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"saddr 2^32", {9, 2, 4, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"daddr float", {9, 2, 5, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},
		{"sport 2^16", {9, 2, 6, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"dport nil", {9, 2, 7, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"proto 256", {9, 2, 8, END}, OP_UINT, 256, .expect = DT_PROTO_ERANGE},
		{"vni 2^24", {9, 4, 9, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"vni 2^24-1", {9, 4, 9, END}, OP_UINT, 0xFFFFFF, .expect = 0},
		{"task_id 2^32", {9, 4, 10, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"ip_id 2^16", {9, 4, 11, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"ident negative", {9, 4, 12, END}, OP_NEG, 7, .expect = DT_PROTO_ETYPE},
		{"len 2^32", {9, 4, 13, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"outer_saddr bin", {9, 4, 14, END}, OP_BIN, .s = "abcd", .expect = DT_PROTO_ETYPE},
		{"outer_daddr string", {9, 4, 15, END}, OP_STR, .s = "x", .expect = DT_PROTO_ETYPE},
		{"orig_saddr 2^32", {9, 3, 16, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"orig_saddr 2^32-1", {9, 3, 16, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"orig_daddr negative", {9, 3, 17, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"orig_sport 2^16", {9, 3, 18, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"orig_dport nil", {9, 0, 19, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"orig_dport 2^16-1", {9, 0, 19, END}, OP_UINT, 65535, .expect = 0},
		{"drop_reason 2^32", {9, 1, 20, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"drop_reason 2^32-1", {9, 1, 20, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"drop_reason string", {9, 1, 20, END}, OP_STR, .s = "NETFILTER_DROP",
		  .expect = DT_PROTO_ETYPE},
		{"drop_name = n_strings", {9, 1, 21, END}, OP_UINT, 3, .expect = DT_PROTO_ERANGE},
		{"drop_name n_strings-1", {9, 1, 21, END}, OP_UINT, 2, .expect = 0},
		{"drop_name 0", {9, 2, 21, END}, OP_UINT, 0, .expect = 0},
		{"drop_name none", {9, 1, 21, END}, OP_UINT, DT_STR_NONE, .expect = 0},
		{"drop_name none-1", {9, 1, 21, END}, OP_UINT, DT_STR_NONE - 1,
		  .expect = DT_PROTO_ERANGE},
		{"drop_name 2^16", {9, 1, 21, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"drop_name string", {9, 1, 21, END}, OP_STR, .s = "NETFILTER_DROP",
		  .expect = DT_PROTO_ETYPE},
		{"drop_where = n_strings", {9, 1, 22, END}, OP_UINT, 3, .expect = DT_PROTO_ERANGE},
		{"cap_link 3", {9, 0, 23, END}, OP_UINT, 3, .expect = DT_PROTO_ERANGE},
		{"cap_link ipv4", {9, 0, 23, END}, OP_UINT, DT_CAP_IPV4, .expect = 0},
		{"cap_link none with bytes", {9, 0, 23, END}, OP_UINT, DT_CAP_NONE,
		  .expect = DT_PROTO_ERANGE},
		{"cap_link eth without bytes", {9, 2, 23, END}, OP_UINT, DT_CAP_ETH,
		  .expect = DT_PROTO_ERANGE},
		{"cap_link string", {9, 0, 23, END}, OP_STR, .s = "eth", .expect = DT_PROTO_ETYPE},
		{"cap string", {9, 0, 24, END}, OP_STR, .s = "abcd", .expect = DT_PROTO_ETYPE},
		{"cap nil", {9, 2, 24, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"cap 129 bytes", {9, 0, 24, END}, OP_BIN, .s = chars300, .n = DT_CAP_MAX + 1,
		  .expect = DT_PROTO_ERANGE},
		{"cap 128 bytes", {9, 0, 24, END}, OP_BIN, .s = chars300, .n = DT_CAP_MAX, .expect = 0},
		{"cap empty with a link", {9, 1, 24, END}, OP_BIN, .s = "", .expect = DT_PROTO_ERANGE},
		{"cap bytes without a link", {9, 2, 24, END}, OP_BIN, .s = "ab",
		  .expect = DT_PROTO_ERANGE},
		{"drop_where 1000", {9, 4, 22, END}, OP_UINT, 1000, .expect = DT_PROTO_ERANGE},
		{"drop_where none", {9, 1, 22, END}, OP_UINT, DT_STR_NONE, .expect = 0},
		{"drop_where nil", {9, 1, 22, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"drop_where negative", {9, 4, 22, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"without node states (old layout)", {END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"nodes nil", {10, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"nodes uint", {10, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"nodes map", {10, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"4096 nodes", {10, END}, OP_RESIZE, DT_BATCH_MAX_NODES, .expect = 0},
		{"4097 nodes", {10, END}, OP_RESIZE, DT_BATCH_MAX_NODES + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"node uint", {10, 0, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"node string", {10, 1, END}, OP_STR, .s = "h2", .expect = DT_PROTO_ETYPE},
		{"node short", {10, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"node long", {10, 2, END}, OP_RESIZE, 9, .expect = DT_PROTO_ELENGTH},
		{"node of v5 (6)", {10, 1, END}, OP_RESIZE, 6, .expect = DT_PROTO_ELENGTH},
		{"node of v4 (3)", {10, 2, END}, OP_RESIZE, 3, .expect = DT_PROTO_ELENGTH},
		{"node name uint", {10, 1, 0, END}, OP_UINT, 2, .expect = DT_PROTO_ETYPE},
		{"node name 64 chars", {10, 1, 0, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"node name 63 chars", {10, 1, 0, END}, OP_STR, .s = chars300, .n = 63, .expect = 0},
		{"node name empty", {10, 1, 0, END}, OP_STR, .s = "", .expect = 0},
		{"node name with NUL", {10, 2, 0, END}, OP_STR, .s = "g\0w", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"node ctl_gen negative", {10, 1, 1, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"node ctl_gen float", {10, 0, 1, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},
		{"node ctl_gen 0", {10, 0, 1, END}, OP_UINT, 0, .expect = 0},
		{"endpoints nil", {10, 1, 2, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"endpoints uint", {10, 0, 2, END}, OP_UINT, 3, .expect = DT_PROTO_ETYPE},
		{"endpoints map", {10, 2, 2, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"4096 endpoints", {10, 0, 2, END}, OP_RESIZE, DT_NODE_MAX_ENDPOINTS, .expect = 0},
		{"4097 endpoints", {10, 0, 2, END}, OP_RESIZE, DT_NODE_MAX_ENDPOINTS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"endpoint uint", {10, 0, 2, 1, END}, OP_UINT, 100, .expect = DT_PROTO_ETYPE},
		{"endpoint short", {10, 0, 2, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"endpoint long", {10, 2, 2, 0, END}, OP_RESIZE, 3, .expect = DT_PROTO_ELENGTH},
		{"endpoint vni 2^24", {10, 0, 2, 1, 0, END}, OP_UINT, 0x1000000,
		  .expect = DT_PROTO_ERANGE},
		{"endpoint vni 2^24-1", {10, 0, 2, 1, 0, END}, OP_UINT, 0xFFFFFF, .expect = 0},
		{"endpoint vni 0", {10, 0, 2, 1, 0, END}, OP_UINT, 0, .expect = 0},
		{"endpoint vni negative", {10, 2, 2, 0, 0, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"endpoint vni string", {10, 0, 2, 0, 0, END}, OP_STR, .s = "100",
		  .expect = DT_PROTO_ETYPE},
		{"endpoint addr 2^32", {10, 2, 2, 0, 1, END}, OP_UINT, 1ull << 32,
		  .expect = DT_PROTO_ERANGE},
		{"endpoint addr 2^32-1", {10, 0, 2, 0, 1, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"endpoint addr 0", {10, 0, 2, 0, 1, END}, OP_UINT, 0, .expect = 0},
		{"endpoint addr float", {10, 0, 2, 2, 1, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},
		{"endpoint addr nil", {10, 0, 2, 2, 1, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"task_map_max 2^32", {10, 0, 3, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"task_map_max 0", {10, 0, 3, END}, OP_UINT, 0, .expect = 0},
		{"task_map_max nil", {10, 1, 3, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"task_map_used 2^32", {10, 2, 4, END}, OP_UINT, 1ull << 32,
		  .expect = DT_PROTO_ERANGE},
		{"task_map_used negative", {10, 0, 4, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"arm_fails nil", {10, 0, 5, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"arm_fails map", {10, 1, 5, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"65536 arm_fails", {10, 0, 5, END}, OP_RESIZE, DT_NODE_MAX_ARM_FAILS, .expect = 0},
		{"65537 arm_fails", {10, 0, 5, END}, OP_RESIZE, DT_NODE_MAX_ARM_FAILS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"arm_fail uint", {10, 0, 5, 0, END}, OP_UINT, 7, .expect = DT_PROTO_ETYPE},
		{"arm_fail short", {10, 0, 5, 1, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"arm_fail long", {10, 0, 5, 0, END}, OP_RESIZE, 10, .expect = DT_PROTO_ELENGTH},
		{"arm_fail task_id 2^32", {10, 0, 5, 0, 0, END}, OP_UINT, 1ull << 32,
		  .expect = DT_PROTO_ERANGE},
		{"arm_fail flags string", {10, 0, 5, 1, 1, END}, OP_STR, .s = "reply",
		  .expect = DT_PROTO_ETYPE},
		{"arm_fail sport 2^16", {10, 0, 5, 0, 4, END}, OP_UINT, 65536,
		  .expect = DT_PROTO_ERANGE},
		{"arm_fail vni 2^24", {10, 0, 5, 1, 7, END}, OP_UINT, 0x1000000,
		  .expect = DT_PROTO_ERANGE},
		{"arm_fail err negative", {10, 0, 5, 0, 8, END}, OP_NEG, 7, .expect = DT_PROTO_ETYPE},
		{"arm_fail err 2^32-1", {10, 0, 5, 1, 8, END}, OP_UINT, UINT32_MAX, .expect = 0},
		/* node 1: gaps 0 stopped [1, 2], 1 crashed [1.7e18, 2^64-1], 2 detached [5, 6] */
		{"gaps nil", {10, 1, 6, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"16 gaps", {10, 1, 6, END}, OP_RESIZE, DT_NODE_MAX_GAPS, .expect = 0},
		{"17 gaps", {10, 1, 6, END}, OP_RESIZE, DT_NODE_MAX_GAPS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"gap short", {10, 1, 6, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"gap long", {10, 1, 6, 1, END}, OP_RESIZE, 6, .expect = DT_PROTO_ELENGTH},
		{"gap empty window", {10, 1, 6, 0, 1, END}, OP_UINT, 1, .expect = DT_PROTO_ERANGE},
		{"gap reversed window", {10, 1, 6, 2, 0, END}, OP_UINT, 7,
		  .expect = DT_PROTO_ERANGE},
		{"gap from 0", {10, 1, 6, 2, 0, END}, OP_UINT, 0, .expect = 0},
		{"gap to negative", {10, 1, 6, 1, 1, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"gap cause 0", {10, 1, 6, 0, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"gap cause unknown", {10, 1, 6, 0, 2, END}, OP_UINT, DT_GAP_CAUSE_MAX,
		  .expect = DT_PROTO_ERANGE},
		{"gap cause silent (the analyzer's)", {10, 1, 6, 0, 2, END}, OP_UINT, DT_GAP_SILENT,
		  .expect = DT_PROTO_ERANGE},
		{"gap flags unknown", {10, 1, 6, 1, 3, END}, OP_UINT, 2, .expect = DT_PROTO_ERANGE},
		{"gap lost max", {10, 1, 6, 1, 4, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"gap lost string", {10, 1, 6, 1, 4, END}, OP_STR, .s = "3",
		  .expect = DT_PROTO_ETYPE},
		/* node 1: colored 0 [7, 0, 2^64-1], 1 [2^32-1, reply, 5] */
		{"colored nil", {10, 1, 7, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"colored map", {10, 0, 7, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"65536 colored", {10, 1, 7, END}, OP_RESIZE, DT_NODE_MAX_COLORED, .expect = 0},
		{"65537 colored", {10, 1, 7, END}, OP_RESIZE, DT_NODE_MAX_COLORED + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"key_colored short", {10, 1, 7, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"key_colored long", {10, 1, 7, 1, END}, OP_RESIZE, 4, .expect = DT_PROTO_ELENGTH},
		{"key_colored task_id 2^32", {10, 1, 7, 0, 0, END}, OP_UINT, 1ull << 32,
		  .expect = DT_PROTO_ERANGE},
		{"key_colored flags nil", {10, 1, 7, 1, 1, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"key_colored colored float", {10, 1, 7, 1, 2, END}, OP_F64, .f = 1,
		  .expect = DT_PROTO_ETYPE},
	};
	/* clang-format on */

	RUN_MUTATIONS(DT_MSG_BATCH, tab);
	/* the collector's check refuses each of them the same way */
	run_mutations(&batch_check, tab, sizeof(tab) / sizeof(tab[0]));
}

Test(malformed, ack_fields)
{
	/* [2, 2, seq, status, nil | [gen, [arm...]]] */
	/* clang-format off */
	const struct mutation tab[] = {
		{"seq negative", {2, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"status 6", {3, END}, OP_UINT, DT_ST_MAX, .expect = DT_PROTO_ERANGE},
		{"status 5", {3, END}, OP_UINT, DT_ST_FULL, .expect = 0},
		{"status 4", {3, END}, OP_UINT, DT_ST_FAILED, .expect = 0},
		{"status string", {3, END}, OP_STR, .s = "ok", .expect = DT_PROTO_ETYPE},
		{"control nil", {4, END}, OP_NIL, .expect = 0},
		{"control uint", {4, END}, OP_UINT, 7, .expect = DT_PROTO_ETYPE},
		{"control false", {4, END}, OP_BOOL, .expect = DT_PROTO_ETYPE},
		{"control map", {4, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"control short", {4, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"control long", {4, END}, OP_RESIZE, 3, .expect = DT_PROTO_ELENGTH},
		{"gen negative", {4, 0, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"arms nil", {4, 1, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"arm short", {4, 1, 2, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"arm long", {4, 1, 0, END}, OP_RESIZE, 11, .expect = DT_PROTO_ELENGTH},
		{"arm of the old layout (8)", {4, 1, 0, END}, OP_RESIZE, 8, .expect = DT_PROTO_ELENGTH},
		{"arm vni 2^24", {4, 1, 1, 7, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"arm budget 2^32", {4, 1, 1, 8, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"arm rate_pps string", {4, 1, 2, 9, END}, OP_STR, .s = "1", .expect = DT_PROTO_ETYPE},
	};
	/* clang-format on */

	RUN_MUTATIONS(DT_MSG_ACK, tab);
}

Test(malformed, control_fields)
{
	/* [2, 3, gen, [[task_id, flags, saddr, daddr, sport, dport, proto, vni, budget,
	 *               rate_pps]...]] */
	/* clang-format off */
	const struct mutation tab[] = {
		{"gen string", {2, END}, OP_STR, .s = "9", .expect = DT_PROTO_ETYPE},
		{"arms uint", {3, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"no arms", {3, END}, OP_RESIZE, 1, .expect = 0},
		{"65536 arms", {3, END}, OP_RESIZE, DT_CONTROL_MAX_TASKS, .expect = 0},
		{"65537 arms", {3, END}, OP_RESIZE, DT_CONTROL_MAX_TASKS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"arm short", {3, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"arm long", {3, 3, END}, OP_RESIZE, 11, .expect = DT_PROTO_ELENGTH},
		{"arm of the old layout (8)", {3, 2, END}, OP_RESIZE, 8, .expect = DT_PROTO_ELENGTH},
		{"arm nil", {3, 1, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"task_id 2^32", {3, 0, 0, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"flags negative", {3, 0, 1, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"sport 2^16", {3, 2, 4, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"proto string", {3, 2, 6, END}, OP_STR, .s = "tcp", .expect = DT_PROTO_ETYPE},
		{"vni 2^24", {3, 3, 7, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"budget 2^32", {3, 0, 8, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"budget 2^32-1", {3, 1, 8, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"budget 0", {3, 0, 8, END}, OP_UINT, 0, .expect = 0},
		{"budget negative", {3, 2, 8, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"budget nil", {3, 3, 8, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"rate_pps 2^32", {3, 0, 9, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"rate_pps 2^32-1", {3, 3, 9, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"rate_pps float", {3, 2, 9, END}, OP_F64, .f = 10, .expect = DT_PROTO_ETYPE},
		{"rate_pps string", {3, 1, 9, END}, OP_STR, .s = "10", .expect = DT_PROTO_ETYPE},
	};
	/* clang-format on */

	RUN_MUTATIONS(DT_MSG_CONTROL, tab);
}

/* The token that starts every API request: at path {2}. */
/* clang-format off */
#define TOKEN_MUTATIONS                                                                            \
	{"token uint", {2, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},                            \
	{"token nil", {2, END}, OP_NIL, .expect = DT_PROTO_ETYPE},                                 \
	{"token bin", {2, END}, OP_BIN, .s = "acme", .expect = DT_PROTO_ETYPE},                    \
	{"token float", {2, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},                       \
	{"token map", {2, END}, OP_MAP, .expect = DT_PROTO_ETYPE},                                 \
	{"token 128 chars", {2, END}, OP_STR, .s = chars300, .n = 128, .expect = DT_PROTO_ERANGE}, \
	{"token 300 chars", {2, END}, OP_STR, .s = chars300, .n = 300, .expect = DT_PROTO_ERANGE}, \
	{"token 127 chars", {2, END}, OP_STR, .s = chars300, .n = 127, .expect = 0},               \
	{"token empty", {2, END}, OP_STR, .s = "", .expect = 0},                                   \
	{"token with NUL", {2, END}, OP_STR, .s = "ab\0cd", .n = 5, .expect = DT_PROTO_ERANGE}
/* clang-format on */

Test(malformed, small_message_fields)
{
	/* [2, 4, token, flags, saddr, daddr, sport, dport, proto, vni, budget, duration_s,
	 *  rate_pps] */
	/* clang-format off */
	const struct mutation create[] = {
		TOKEN_MUTATIONS,
		{"flags 2^32", {3, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"flags string", {3, END}, OP_STR, .s = "x", .expect = DT_PROTO_ETYPE},
		{"saddr 2^32", {4, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"daddr float", {5, END}, OP_F64, .f = 2, .expect = DT_PROTO_ETYPE},
		{"sport negative", {6, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"dport 2^16", {7, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"proto 256", {8, END}, OP_UINT, 256, .expect = DT_PROTO_ERANGE},
		{"vni 2^24", {9, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"vni 2^24-1", {9, END}, OP_UINT, 0xFFFFFF, .expect = 0},
		{"budget 0", {10, END}, OP_UINT, 0, .expect = 0},
		{"budget 2^32-1", {10, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"budget 2^32", {10, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"budget negative", {10, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"budget string", {10, END}, OP_STR, .s = "100", .expect = DT_PROTO_ETYPE},
		{"duration_s 2^32-1", {11, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"duration_s 2^32", {11, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"duration_s float", {11, END}, OP_F64, .f = 60, .expect = DT_PROTO_ETYPE},
		{"duration_s nil", {11, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"rate_pps 2^32-1", {12, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"rate_pps 2^32", {12, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"rate_pps bool", {12, END}, OP_BOOL, .expect = DT_PROTO_ETYPE},
		{"rate_pps negative", {12, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"without the limits (old layout)", {END}, OP_RESIZE, 10, .expect = DT_PROTO_ELENGTH},
	};
	/* clang-format on */
	/* [2, 5, 7 or 12, token, task_id] */
	/* clang-format off */
	const struct mutation get[] = {
		TOKEN_MUTATIONS,
		{"task_id 2^32", {3, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"task_id 2^32-1", {3, END}, OP_UINT, UINT32_MAX, .expect = 0},
		{"task_id 0", {3, END}, OP_UINT, 0, .expect = 0},
		{"task_id negative", {3, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"task_id string", {3, END}, OP_STR, .s = "7", .expect = DT_PROTO_ETYPE},
		{"task_id nil", {3, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"without the token (old layout)", {END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
	};
	/* clang-format on */
	/* [2, 10, token] */
	/* clang-format off */
	const struct mutation list[] = {
		TOKEN_MUTATIONS,
		{"with a task id", {END}, OP_RESIZE, 4, .expect = DT_PROTO_ELENGTH},
		{"without the token", {END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
	};
	/* clang-format on */
	/* [2, 6, id, state, flags, saddr, daddr, sport, dport, proto, vni, budget, duration_s,
	 *  rate_pps, created_ns, colored, delivered, tenant, status, status_text, armed_ns,
	 *  ended_ns] */
	/* clang-format off */
	const struct mutation task[] = {
		{"id 2^32", {2, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"state 8", {3, END}, OP_UINT, DT_TASK_STATE_MAX, .expect = DT_PROTO_ERANGE},
		{"state 7", {3, END}, OP_UINT, DT_TASK_FAILED, .expect = 0},
		{"flags negative", {4, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"sport 2^16", {7, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"vni 2^24", {10, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"budget 2^32", {11, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"budget string", {11, END}, OP_STR, .s = "1", .expect = DT_PROTO_ETYPE},
		{"duration_s 2^32", {12, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"duration_s negative", {12, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"rate_pps 2^32", {13, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"rate_pps 0", {13, END}, OP_UINT, 0, .expect = 0},
		{"created_ns max", {14, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"created_ns float", {14, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},
		{"colored negative", {15, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"delivered float", {16, END}, OP_F64, .f = 9, .expect = DT_PROTO_ETYPE},
		{"tenant uint", {17, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"tenant bin", {17, END}, OP_BIN, .s = "acme", .expect = DT_PROTO_ETYPE},
		{"tenant 64 chars", {17, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"tenant 63 chars", {17, END}, OP_STR, .s = chars300, .n = 63, .expect = 0},
		{"tenant empty", {17, END}, OP_STR, .s = "", .expect = 0},
		{"tenant with NUL", {17, END}, OP_STR, .s = "a\0b", .n = 3, .expect = DT_PROTO_ERANGE},
		{"status 9", {18, END}, OP_UINT, DT_TS_MAX, .expect = DT_PROTO_ERANGE},
		{"status 8", {18, END}, OP_UINT, DT_TS_TENANT_REMOVED, .expect = 0},
		{"status 7", {18, END}, OP_UINT, DT_TS_ARM_FAILED, .expect = 0},
		{"status 6", {18, END}, OP_UINT, DT_TS_RESTARTED, .expect = 0},
		{"status 0", {18, END}, OP_UINT, DT_TS_OK, .expect = 0},
		{"status 2^32", {18, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"status negative", {18, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"status string", {18, END}, OP_STR, .s = "ok", .expect = DT_PROTO_ETYPE},
		{"status_text 256 chars", {19, END}, OP_STR, .s = chars300, .n = 256,
		  .expect = DT_PROTO_ERANGE},
		{"status_text 255 chars", {19, END}, OP_STR, .s = chars300, .n = 255, .expect = 0},
		{"status_text empty", {19, END}, OP_STR, .s = "", .expect = 0},
		{"status_text with NUL", {19, END}, OP_STR, .s = "ok\0", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"status_text nil", {19, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"armed_ns max", {20, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"armed_ns negative", {20, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"armed_ns string", {20, END}, OP_STR, .s = "0", .expect = DT_PROTO_ETYPE},
		{"ended_ns 0", {21, END}, OP_UINT, 0, .expect = 0},
		{"ended_ns float", {21, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},
		{"ended_ns nil", {21, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"old layout (12 fields)", {END}, OP_RESIZE, 14, .expect = DT_PROTO_ELENGTH},
	};
	/* clang-format on */
	/* [2, 9, status, message] */
	/* clang-format off */
	const struct mutation error[] = {
		{"status ok", {2, END}, OP_UINT, DT_ST_OK, .expect = DT_PROTO_ERANGE},
		{"status 6", {2, END}, OP_UINT, DT_ST_MAX, .expect = DT_PROTO_ERANGE},
		{"message 256 chars", {3, END}, OP_STR, .s = chars300, .n = 256,
		  .expect = DT_PROTO_ERANGE},
		{"message 255 chars", {3, END}, OP_STR, .s = chars300, .n = 255, .expect = 0},
		{"message with NUL", {3, END}, OP_STR, .s = "ab\0", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"message uint", {3, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"message bin", {3, END}, OP_BIN, .s = "no", .expect = DT_PROTO_ETYPE},
	};
	/* clang-format on */

	RUN_MUTATIONS(DT_MSG_TASK_CREATE, create);
	RUN_MUTATIONS(DT_MSG_TASK_GET, get);
	RUN_MUTATIONS(DT_MSG_REPORT_GET, get);
	RUN_MUTATIONS(DT_MSG_TASK_CANCEL, get);
	RUN_MUTATIONS(DT_MSG_TASK_LIST, list);
	RUN_MUTATIONS(DT_MSG_TASK, task);
	RUN_MUTATIONS(DT_MSG_ERROR, error);
}

Test(malformed, tasks_fields)
{
	/* [2, 11, [[id, state, flags, saddr, daddr, sport, dport, proto, vni, budget,
	 *           duration_s, rate_pps, created_ns, colored, delivered, tenant, status,
	 *           status_text, armed_ns, ended_ns]...]]
	 * The valid list has three tasks; #2 has an empty tenant and status_text. */
	/* clang-format off */
	const struct mutation tab[] = {
		{"list nil", {2, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"list uint", {2, END}, OP_UINT, 3, .expect = DT_PROTO_ETYPE},
		{"list map", {2, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"4 tasks", {2, END}, OP_RESIZE, 0, .expect = 0},
		{"65536 tasks", {2, END}, OP_RESIZE, DT_LIST_MAX_TASKS, .expect = 0},
		{"65537 tasks", {2, END}, OP_RESIZE, DT_LIST_MAX_TASKS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"task uint", {2, 1, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"task nil", {2, 0, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"task short", {2, 2, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"task long", {2, 1, END}, OP_RESIZE, 21, .expect = DT_PROTO_ELENGTH},
		{"task of the old layout (12)", {2, 0, END}, OP_RESIZE, 12, .expect = DT_PROTO_ELENGTH},
		{"id negative", {2, 0, 0, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"state 8", {2, 1, 1, END}, OP_UINT, DT_TASK_STATE_MAX, .expect = DT_PROTO_ERANGE},
		{"vni 2^24", {2, 2, 8, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"budget 2^32", {2, 2, 9, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"duration_s string", {2, 1, 10, END}, OP_STR, .s = "60", .expect = DT_PROTO_ETYPE},
		{"rate_pps 2^32", {2, 0, 11, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"tenant 64 chars", {2, 2, 15, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"tenant uint", {2, 1, 15, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"status 9", {2, 1, 16, END}, OP_UINT, DT_TS_MAX, .expect = DT_PROTO_ERANGE},
		{"status 8", {2, 1, 16, END}, OP_UINT, DT_TS_TENANT_REMOVED, .expect = 0},
		{"status 7", {2, 1, 16, END}, OP_UINT, DT_TS_ARM_FAILED, .expect = 0},
		{"status 6", {2, 1, 16, END}, OP_UINT, DT_TS_RESTARTED, .expect = 0},
		{"status_text 256 chars", {2, 0, 17, END}, OP_STR, .s = chars300, .n = 256,
		  .expect = DT_PROTO_ERANGE},
		{"status_text bin", {2, 2, 17, END}, OP_BIN, .s = "x", .expect = DT_PROTO_ETYPE},
		{"armed_ns negative", {2, 2, 18, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"ended_ns float", {2, 1, 19, END}, OP_F64, .f = 1, .expect = DT_PROTO_ETYPE},
	};
	/* clang-format on */

	RUN_MUTATIONS(DT_MSG_TASKS, tab);
}

Test(malformed, report_fields)
{
	/* [4, 8, [task...], [packet...], [stat...], [lost...], [row...], verdict, unmatched,
	 *  window_ms, [copy_row...]]
	 * packet: [ip_id, ident, len, direction, fate, saddr, daddr, sport, dport, proto, vni,
	 *          drop_reason, drop_name, drop_where, [[node, ifname, hook, ts, saddr, daddr,
	 *          sport, dport]...]]
	 * stat:    [[from...], [to...], count, min, max, mean, stddev]
	 * row:     [[node, ifname, hook], direction, seen, dropped, vanished, top_reason]
	 * verdict: [judged, delivered, dropped, vanished, in_flight, [node, ifname, hook],
	 *           reason, sentence]
	 * The valid report has packets 0 delivered (4 hops), 1 dropped reply (4 hops, the last
	 * the drop), 2 in flight (no hops); 3 stats, 5 rows. */
	/* clang-format off */
	const struct mutation tab[] = {
		{"task uint", {2, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"task short", {2, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"task long", {2, END}, OP_RESIZE, 21, .expect = DT_PROTO_ELENGTH},
		{"task of the old layout (12)", {2, END}, OP_RESIZE, 12, .expect = DT_PROTO_ELENGTH},
		{"task state 8", {2, 1, END}, OP_UINT, 8, .expect = DT_PROTO_ERANGE},
		{"task budget 2^32", {2, 9, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"task tenant 64 chars", {2, 15, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"task status 8", {2, 16, END}, OP_UINT, DT_TS_MAX, .expect = DT_PROTO_ERANGE},
		{"task status_text uint", {2, 17, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"task ended_ns negative", {2, 19, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"packets map", {3, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"packet short", {3, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"packet long", {3, 1, END}, OP_RESIZE, 20, .expect = DT_PROTO_ELENGTH},
		{"packet frag 0x4000", {3, 0, 17, END}, OP_UINT, 0x4000, .expect = DT_PROTO_ERANGE},
		{"packet frag 370", {3, 0, 17, END}, OP_UINT, 370, .expect = 0},
		{"datagram_fate 4", {3, 0, 18, END}, OP_UINT, DT_FATE_MAX, .expect = DT_PROTO_ERANGE},
		{"datagram_fate 2", {3, 0, 18, END}, OP_UINT, DT_FATE_VANISHED, .expect = 0},
		{"packet of v3 (15)", {3, 1, END}, OP_RESIZE, 15, .expect = DT_PROTO_ELENGTH},
		{"dest_known 2", {3, 0, 15, END}, OP_UINT, 2, .expect = DT_PROTO_ERANGE},
		{"dest_known 0", {3, 0, 15, END}, OP_UINT, 0, .expect = 0},
		{"n_copies 2^32", {3, 0, 16, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"n_copies nil", {3, 1, 16, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"packet of v1 (4)", {3, 1, END}, OP_RESIZE, 4, .expect = DT_PROTO_ELENGTH},
		{"ip_id 2^16", {3, 0, 0, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"direction 2", {3, 0, 3, END}, OP_UINT, DT_DIR_MAX, .expect = DT_PROTO_ERANGE},
		{"direction 1", {3, 0, 3, END}, OP_UINT, DT_DIR_REPLY, .expect = 0},
		{"direction string", {3, 0, 3, END}, OP_STR, .s = "reply", .expect = DT_PROTO_ETYPE},
		{"fate 4", {3, 1, 4, END}, OP_UINT, DT_FATE_MAX, .expect = DT_PROTO_ERANGE},
		{"fate 3", {3, 1, 4, END}, OP_UINT, DT_FATE_IN_FLIGHT, .expect = 0},
		{"fate 256", {3, 1, 4, END}, OP_UINT, 256, .expect = DT_PROTO_ERANGE},
		{"fate negative", {3, 1, 4, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"packet saddr 2^32", {3, 0, 5, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"packet dport 2^16", {3, 0, 8, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"packet proto 256", {3, 2, 9, END}, OP_UINT, 256, .expect = DT_PROTO_ERANGE},
		{"packet vni 2^24", {3, 1, 10, END}, OP_UINT, 0x1000000, .expect = DT_PROTO_ERANGE},
		{"drop_reason 2^32", {3, 1, 11, END}, OP_UINT, 1ull << 32, .expect = DT_PROTO_ERANGE},
		{"drop_reason float", {3, 1, 11, END}, OP_F64, .f = 5, .expect = DT_PROTO_ETYPE},
		{"drop_name 96 chars", {3, 1, 12, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"drop_name 95 chars", {3, 1, 12, END}, OP_STR, .s = chars300, .n = 95, .expect = 0},
		{"drop_name uint", {3, 1, 12, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"drop_name nil", {3, 0, 12, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"drop_where with NUL", {3, 1, 13, END}, OP_STR, .s = "nf\0", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"drop_where 96 chars", {3, 2, 13, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"drop_where bin", {3, 1, 13, END}, OP_BIN, .s = "nf", .expect = DT_PROTO_ETYPE},
		{"hops uint", {3, 0, 14, END}, OP_UINT, 4, .expect = DT_PROTO_ETYPE},
		{"64 hops", {3, 1, 14, END}, OP_RESIZE, DT_REPORT_MAX_HOPS, .expect = 0},
		{"65 hops", {3, 1, 14, END}, OP_RESIZE, DT_REPORT_MAX_HOPS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"hop short", {3, 1, 14, 2, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"hop long", {3, 1, 14, 2, END}, OP_RESIZE, 18, .expect = DT_PROTO_ELENGTH},
		{"hop refrag 2", {3, 1, 14, 2, 16, END}, OP_UINT, 2, .expect = DT_PROTO_ERANGE},
		{"hop refrag 1", {3, 1, 14, 2, 16, END}, OP_UINT, 1, .expect = 0},
		{"hop of v3 (10)", {3, 1, 14, 2, END}, OP_RESIZE, 10, .expect = DT_PROTO_ELENGTH},
		{"root with a parent", {3, 0, 14, 0, 10, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"root parent 2^16", {3, 0, 14, 0, 10, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"parent is the hop itself", {3, 1, 14, 2, 10, END}, OP_UINT, 2,
		  .expect = DT_PROTO_ERANGE},
		{"parent after the hop", {3, 1, 14, 1, 10, END}, OP_UINT, 3, .expect = DT_PROTO_ERANGE},
		{"no parent but not the root", {3, 1, 14, 3, 10, END}, OP_UINT, DT_HOP_ROOT,
		  .expect = DT_PROTO_ERANGE},
		{"parent 0 at hop 3", {3, 1, 14, 3, 10, END}, OP_UINT, 0, .expect = 0},
		{"parent negative", {3, 1, 14, 3, 10, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"branch 2", {3, 1, 14, 3, 11, END}, OP_UINT, DT_BRANCH_MAX, .expect = DT_PROTO_ERANGE},
		{"branch 1", {3, 1, 14, 3, 11, END}, OP_UINT, DT_BRANCH_COPY, .expect = 0},
		{"copy_end 6", {3, 1, 14, 3, 12, END}, OP_UINT, DT_COPY_MAX, .expect = DT_PROTO_ERANGE},
		{"copy_end 5", {3, 1, 14, 3, 12, END}, OP_UINT, DT_COPY_DELIVERED, .expect = 0},
		{"hop drop_reason 2^32", {3, 1, 14, 3, 13, END}, OP_UINT, 1ull << 32,
		  .expect = DT_PROTO_ERANGE},
		{"hop drop_name 96 chars", {3, 1, 14, 3, 14, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"hop drop_where uint", {3, 1, 14, 3, 15, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"hop of v1 (4)", {3, 1, 14, 2, END}, OP_RESIZE, 4, .expect = DT_PROTO_ELENGTH},
		{"hop node 64 chars", {3, 0, 14, 0, 0, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"hop ifname 16 chars", {3, 0, 14, 1, 1, END}, OP_STR, .s = chars300, .n = 16,
		  .expect = DT_PROTO_ERANGE},
		{"hop ifname with NUL", {3, 0, 14, 1, 1, END}, OP_STR, .s = "e\0h", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"hop hook 0", {3, 0, 14, 3, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"hop hook 8", {3, 1, 14, 0, 2, END}, OP_UINT, DT_HOOK_MAX, .expect = DT_PROTO_ERANGE},
		{"hop hook 7", {3, 0, 14, 3, 2, END}, OP_UINT, DT_HOOK_DROP, .expect = 0},
		{"hop hook 5", {3, 0, 14, 3, 2, END}, OP_UINT, DT_HOOK_GW_OUT, .expect = 0},
		{"hop ts negative", {3, 0, 14, 2, 3, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"hop saddr 2^32", {3, 0, 14, 0, 4, END}, OP_UINT, 1ull << 32,
		  .expect = DT_PROTO_ERANGE},
		{"hop daddr string", {3, 1, 14, 3, 5, END}, OP_STR, .s = "10.0.0.1",
		  .expect = DT_PROTO_ETYPE},
		{"hop sport 2^16", {3, 1, 14, 1, 6, END}, OP_UINT, 65536, .expect = DT_PROTO_ERANGE},
		{"hop dport nil", {3, 0, 14, 2, 7, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"hop dport 2^16-1", {3, 0, 14, 2, 7, END}, OP_UINT, 65535, .expect = 0},
		{"stats nil", {4, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"4097 stats", {4, END}, OP_RESIZE, DT_REPORT_MAX_STATS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"stat short", {4, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"stat from uint", {4, 0, 0, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"stat from short", {4, 0, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"stat to hook 0", {4, 2, 1, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"stat to hook 8", {4, 2, 1, 2, END}, OP_UINT, 8, .expect = DT_PROTO_ERANGE},
		{"stat count negative", {4, 1, 2, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"mean string", {4, 0, 5, END}, OP_STR, .s = "1.5", .expect = DT_PROTO_ETYPE},
		{"mean nil", {4, 0, 5, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"mean float32", {4, 0, 5, END}, OP_F32, .f = 1.5, .expect = 0},
		{"mean uint", {4, 0, 5, END}, OP_UINT, 7, .expect = 0},
		{"mean negative int", {4, 0, 5, END}, OP_NEG, 7, .expect = 0},
		{"mean NaN", {4, 0, 5, END}, OP_F64, .f = NAN, .expect = DT_PROTO_ERANGE},
		{"stddev inf", {4, 1, 6, END}, OP_F64, .f = INFINITY, .expect = DT_PROTO_ERANGE},
		{"stddev bool", {4, 1, 6, END}, OP_BOOL, .expect = DT_PROTO_ETYPE},
		{"stat of v3 (7)", {4, 1, END}, OP_RESIZE, 7, .expect = DT_PROTO_ELENGTH},
		{"stat long", {4, 1, END}, OP_RESIZE, 10, .expect = DT_PROTO_ELENGTH},
		{"stat direction 2", {4, 1, 8, END}, OP_UINT, DT_DIR_MAX, .expect = DT_PROTO_ERANGE},
		{"stat direction 1", {4, 0, 8, END}, OP_UINT, DT_DIR_REPLY, .expect = 0},
		{"stat branch 2", {4, 1, 7, END}, OP_UINT, DT_BRANCH_MAX, .expect = DT_PROTO_ERANGE},
		{"stat branch 1", {4, 0, 7, END}, OP_UINT, DT_BRANCH_COPY, .expect = 0},
		{"verdict dest_unknown negative", {7, 8, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"verdict of v3 (8)", {7, END}, OP_RESIZE, 8, .expect = DT_PROTO_ELENGTH},
		{"copy rows nil", {10, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"blind nil", {11, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"one blind window", {11, END}, OP_RESIZE, 1, .expect = 0},
		{"4097 blind windows", {11, END}, OP_RESIZE, DT_REPORT_MAX_BLIND + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"blind short", {11, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"blind node 64 chars", {11, 0, 0, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"blind gap short", {11, 0, 1, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"blind gap cause 0", {11, 0, 1, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"blind gap cause 5", {11, 0, 1, 2, END}, OP_UINT, DT_GAP_CAUSE_MAX,
		  .expect = DT_PROTO_ERANGE},
		{"blind gap cause silent", {11, 0, 1, 2, END}, OP_UINT, DT_GAP_SILENT, .expect = 0},
		{"blind gap ends at its start", {11, 0, 1, 1, END}, OP_UINT, 1000,
		  .expect = DT_PROTO_ERANGE},
		{"blind gap flags 2", {11, 0, 1, 3, END}, OP_UINT, 2, .expect = DT_PROTO_ERANGE},
		{"blind packets 0", {11, 0, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"blind packets negative", {11, 1, 2, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"4096 copy rows", {10, END}, OP_RESIZE, DT_REPORT_MAX_COPY_ROWS, .expect = 0},
		{"4097 copy rows", {10, END}, OP_RESIZE, DT_REPORT_MAX_COPY_ROWS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"copy row short", {10, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"copy row hook 0", {10, 0, 0, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"copy row direction 2", {10, 1, 1, END}, OP_UINT, DT_DIR_MAX, .expect = DT_PROTO_ERANGE},
		{"copy row end 0", {10, 0, 2, END}, OP_UINT, DT_COPY_NONE, .expect = DT_PROTO_ERANGE},
		{"copy row end 6", {10, 0, 2, END}, OP_UINT, DT_COPY_MAX, .expect = DT_PROTO_ERANGE},
		{"copy row end 5", {10, 0, 2, END}, OP_UINT, DT_COPY_DELIVERED, .expect = 0},
		{"copy row count negative", {10, 1, 3, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"copy row reason 96 chars", {10, 0, 4, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"lost short", {5, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"lost[2] string", {5, 2, END}, OP_STR, .s = "3", .expect = DT_PROTO_ETYPE},
		{"rows nil", {6, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"rows map", {6, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"no rows", {6, END}, OP_RESIZE, 1, .expect = 0},
		{"4096 rows", {6, END}, OP_RESIZE, DT_REPORT_MAX_ROWS, .expect = 0},
		{"4097 rows", {6, END}, OP_RESIZE, DT_REPORT_MAX_ROWS + 1,
		  .expect = DT_PROTO_ELENGTH},
		{"row short", {6, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"row long", {6, 4, END}, OP_RESIZE, 7, .expect = DT_PROTO_ELENGTH},
		{"row uint", {6, 1, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"row place uint", {6, 0, 0, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"row place short", {6, 0, 0, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"row place long", {6, 0, 0, END}, OP_RESIZE, 4, .expect = DT_PROTO_ELENGTH},
		{"row node 64 chars", {6, 1, 0, 0, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"row ifname 16 chars", {6, 1, 0, 1, END}, OP_STR, .s = chars300, .n = 16,
		  .expect = DT_PROTO_ERANGE},
		{"row hook 0", {6, 2, 0, 2, END}, OP_UINT, 0, .expect = DT_PROTO_ERANGE},
		{"row hook 8", {6, 3, 0, 2, END}, OP_UINT, DT_HOOK_MAX, .expect = DT_PROTO_ERANGE},
		{"row hook 7", {6, 0, 0, 2, END}, OP_UINT, DT_HOOK_DROP, .expect = 0},
		{"row direction 2", {6, 4, 1, END}, OP_UINT, DT_DIR_MAX, .expect = DT_PROTO_ERANGE},
		{"row direction nil", {6, 4, 1, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"row seen negative", {6, 0, 2, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"row seen max", {6, 0, 2, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"row dropped float", {6, 2, 3, END}, OP_F64, .f = 94, .expect = DT_PROTO_ETYPE},
		{"row vanished string", {6, 1, 4, END}, OP_STR, .s = "1", .expect = DT_PROTO_ETYPE},
		{"row top_reason 96 chars", {6, 2, 5, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"row top_reason 95 chars", {6, 2, 5, END}, OP_STR, .s = chars300, .n = 95,
		  .expect = 0},
		{"row top_reason with NUL", {6, 2, 5, END}, OP_STR, .s = "NF\0", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"row top_reason uint", {6, 2, 5, END}, OP_UINT, 5, .expect = DT_PROTO_ETYPE},
		{"verdict nil", {7, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"verdict uint", {7, END}, OP_UINT, 1, .expect = DT_PROTO_ETYPE},
		{"verdict map", {7, END}, OP_MAP, .expect = DT_PROTO_ETYPE},
		{"verdict short", {7, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"verdict long", {7, END}, OP_RESIZE, 11, .expect = DT_PROTO_ELENGTH},
		{"verdict without unobserved (9)", {7, END}, OP_RESIZE, 9, .expect = DT_PROTO_ELENGTH},
		{"verdict unobserved negative", {7, 9, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"judged negative", {7, 0, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"delivered string", {7, 1, END}, OP_STR, .s = "5", .expect = DT_PROTO_ETYPE},
		{"dropped float", {7, 2, END}, OP_F64, .f = 94, .expect = DT_PROTO_ETYPE},
		{"vanished nil", {7, 3, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"in_flight max", {7, 4, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"in_flight bool", {7, 4, END}, OP_BOOL, .expect = DT_PROTO_ETYPE},
		{"verdict at uint", {7, 5, END}, OP_UINT, 0, .expect = DT_PROTO_ETYPE},
		{"verdict at short", {7, 5, END}, OP_DROP, .expect = DT_PROTO_ELENGTH},
		{"verdict at node 64 chars", {7, 5, 0, END}, OP_STR, .s = chars300, .n = 64,
		  .expect = DT_PROTO_ERANGE},
		{"verdict at ifname 16 chars", {7, 5, 1, END}, OP_STR, .s = chars300, .n = 16,
		  .expect = DT_PROTO_ERANGE},
		{"verdict at hook 0 (no loss)", {7, 5, 2, END}, OP_UINT, DT_HOOK_NONE, .expect = 0},
		{"verdict at hook 8", {7, 5, 2, END}, OP_UINT, DT_HOOK_MAX,
		  .expect = DT_PROTO_ERANGE},
		{"verdict at hook negative", {7, 5, 2, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"verdict reason 96 chars", {7, 6, END}, OP_STR, .s = chars300, .n = 96,
		  .expect = DT_PROTO_ERANGE},
		{"verdict reason 95 chars", {7, 6, END}, OP_STR, .s = chars300, .n = 95, .expect = 0},
		{"verdict reason uint", {7, 6, END}, OP_UINT, 5, .expect = DT_PROTO_ETYPE},
		{"sentence 256 chars", {7, 7, END}, OP_STR, .s = chars300, .n = 256,
		  .expect = DT_PROTO_ERANGE},
		{"sentence 255 chars", {7, 7, END}, OP_STR, .s = chars300, .n = 255, .expect = 0},
		{"sentence with NUL", {7, 7, END}, OP_STR, .s = "ok\0", .n = 3,
		  .expect = DT_PROTO_ERANGE},
		{"sentence bin", {7, 7, END}, OP_BIN, .s = "ok", .expect = DT_PROTO_ETYPE},
		{"unmatched negative", {8, END}, OP_NEG, 1, .expect = DT_PROTO_ETYPE},
		{"unmatched max", {8, END}, OP_UINT, UINT64_MAX, .expect = 0},
		{"unmatched nil", {8, END}, OP_NIL, .expect = DT_PROTO_ETYPE},
		{"window_ms string", {9, END}, OP_STR, .s = "2000", .expect = DT_PROTO_ETYPE},
		{"window_ms float", {9, END}, OP_F64, .f = 2000, .expect = DT_PROTO_ETYPE},
		{"window_ms 0", {9, END}, OP_UINT, 0, .expect = 0},
	};
	/* clang-format on */

	RUN_MUTATIONS(DT_MSG_REPORT, tab);
}

/* Values accepted by a mutation are decoded faithfully, not only accepted. */
Test(malformed, accepted_variants_decode_their_value)
{
	const struct mutation f32 = {"mean float32", {4, 0, 5, END}, OP_F32, .f = 1.5};
	const struct mutation neg = {"stddev -3", {4, 0, 6, END}, OP_NEG, .u = 3};
	msgpack_sbuffer valid, bad;
	struct dt_report r;

	msgpack_sbuffer_init(&valid);
	valid_report(&valid);
	msgpack_sbuffer_init(&bad);
	mutate(&valid, &f32, &bad);
	cr_assert_eq(dt_report_decode(bad.data, bad.size, &r), 0);
	cr_assert_eq(r.stats[0].mean_ns, 1.5);
	dt_report_free(&r);
	msgpack_sbuffer_destroy(&bad);

	msgpack_sbuffer_init(&bad);
	mutate(&valid, &neg, &bad);
	cr_assert_eq(dt_report_decode(bad.data, bad.size, &r), 0);
	cr_assert_eq(r.stats[0].stddev_ns, -3.0);
	dt_report_free(&r);
	msgpack_sbuffer_destroy(&bad);
	msgpack_sbuffer_destroy(&valid);
}

/* Integers encoded as signed msgpack types but >= 0 are integers like any other. */
Test(malformed, signed_encodings_of_non_negative_integers)
{
	/* [2, 5, "", 7] with every integer as int8, and the task id as int64 */
	/* clang-format off */
	static const unsigned char ok[] = {
		0x94, 0xd0, DT_PROTO_VERSION, 0xd0, 0x05, 0xa0,
		0xd3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	};
	/* clang-format on */
	static const unsigned char neg[] = {0x94, DT_PROTO_VERSION, 0x05, 0xa1, 'x', 0xd0, 0xff};
	char token[DT_TOKEN_MAX];
	uint32_t id = 1;
	enum dt_msg_type t;

	cr_assert_eq(dt_msg_type(ok, sizeof(ok), &t), 0);
	cr_assert_eq(t, DT_MSG_TASK_GET);
	cr_assert_eq(dt_task_get_decode(ok, sizeof(ok), token, &id), 0);
	cr_assert_eq(id, 7);
	cr_assert_str_eq(token, "");
	cr_assert_eq(dt_task_get_decode(neg, sizeof(neg), token, &id), DT_PROTO_ETYPE);
	cr_assert_eq(id, 0);
	cr_assert(all_zero(token, sizeof(token)));
}

/* Hostile framing: huge announced counts must fail fast, without allocating them. */
Test(malformed, huge_announced_lengths)
{
	static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01};
	static const unsigned char nested[] = {0x93, 0x01, 0x05, 0xdd, 0x7f, 0xff, 0xff, 0xff};
	static const unsigned char map32[] = {0x93, 0x01, 0x05, 0xdf, 0x10, 0, 0, 0, 0xc0};
	static const unsigned char str32[] = {0x94, 0x01, 0x09, 0x01, 0xdb,
					      0xff, 0xff, 0xff, 0xff, 'x'};
	static const unsigned char bad_byte[] = {0x93, 0x01, 0x05, 0xc1};
	const struct codec *c = codec_of(DT_MSG_TASK_GET);

	cr_expect_eq(try_decode(c, arr32, sizeof(arr32)), DT_PROTO_ETRUNC);
	cr_expect_eq(try_decode(c, nested, sizeof(nested)), DT_PROTO_ETRUNC);
	cr_expect_eq(try_decode(c, map32, sizeof(map32)), DT_PROTO_ETRUNC);
	cr_expect_eq(try_decode(codec_of(DT_MSG_ERROR), str32, sizeof(str32)), DT_PROTO_ETRUNC);
	cr_expect_eq(try_decode(c, bad_byte, sizeof(bad_byte)), DT_PROTO_ETRUNC);
}

Test(malformed, deep_nesting)
{
	unsigned char buf[3 + 100 + 1];
	size_t i;
	int rv;

	/* [2, 10, [[[[...[]...]]]]] 100 levels deep (a TASK_LIST, whose only field is the
	 * token): refused, not a crash */
	buf[0] = 0x93;
	buf[1] = DT_PROTO_VERSION;
	buf[2] = DT_MSG_TASK_LIST;
	for (i = 0; i < 100; i++) {
		buf[3 + i] = 0x91;
	}
	buf[3 + 100] = 0x90;
	rv = try_decode(codec_of(DT_MSG_TASK_LIST), buf, sizeof(buf));
	cr_expect_lt(rv, 0);
	/* 3 levels: a well-formed message whose field is of the wrong type */
	buf[6] = 0x90;
	cr_expect_eq(try_decode(codec_of(DT_MSG_TASK_LIST), buf, 7), DT_PROTO_ETYPE);
}

/* ---------------------------------------------------------------------------------------- */
/* dt_msg_type and names                                                                    */
/* ---------------------------------------------------------------------------------------- */

Test(msg_type, peeks_every_message)
{
	enum dt_msg_type t;
	msgpack_sbuffer sb;
	size_t i;

	for (i = 0; i < N_CODECS; i++) {
		msgpack_sbuffer_init(&sb);
		codecs[i].valid(&sb);
		cr_expect_eq(dt_msg_type(sb.data, sb.size, &t), 0, "%s", codecs[i].name);
		cr_expect_eq(t, codecs[i].type, "%s", codecs[i].name);
		/* only the header is looked at: a cut body still names its type (5 bytes: an
		 * array 16 head, the version and the type) */
		cr_expect_eq(dt_msg_type(sb.data, 5, &t), 0, "%s", codecs[i].name);
		cr_expect_eq(t, codecs[i].type);
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(msg_type, refuses_bad_headers)
{
	static const struct {
		const char *what;
		const char *buf;
		size_t len;
		int expect;
	} tab[] = {
		{"empty", "", 0, DT_PROTO_ETRUNC},
		{"array head only", "\x93", 1, DT_PROTO_ETRUNC},
		{"version only", "\x93\x06", 2, DT_PROTO_ETRUNC},
		{"cut uint16 type", "\x93\x06\xcd\x00", 4, DT_PROTO_ETRUNC},
		{"not an array", "\x01", 1, DT_PROTO_ETYPE},
		{"a map", "\x81\x01\x01", 3, DT_PROTO_ETYPE},
		{"empty array", "\x90", 1, DT_PROTO_ELENGTH},
		{"one element", "\x91\x02", 2, DT_PROTO_ELENGTH},
		{"version 0", "\x92\x00\x01", 3, DT_PROTO_EVERSION},
		{"version 2", "\x92\x02\x01", 3, DT_PROTO_EVERSION},
		{"version 3", "\x92\x03\x01", 3, DT_PROTO_EVERSION},
		{"version 4", "\x92\x04\x01", 3, DT_PROTO_EVERSION},
		{"version 5", "\x92\x05\x01", 3, DT_PROTO_EVERSION},
		{"version 7", "\x92\x07\x01", 3, DT_PROTO_EVERSION},
		{"version string", "\x92\xa1\x31\x01", 4, DT_PROTO_ETYPE},
		{"version -1", "\x92\xff\x01", 3, DT_PROTO_ETYPE},
		{"type 0", "\x92\x06\x00", 3, DT_PROTO_EMSGTYPE},
		{"type 13", "\x92\x06\x0d", 3, DT_PROTO_EMSGTYPE},
		{"type uint16 big", "\x92\x06\xcd\x01\x00", 5, DT_PROTO_EMSGTYPE},
		{"type nil", "\x92\x06\xc0", 3, DT_PROTO_ETYPE},
		{"byte 0xc1", "\xc1", 1, DT_PROTO_ETRUNC},
	};
	enum dt_msg_type t;
	size_t i;
	int rv;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		t = DT_MSG_BATCH;
		rv = dt_msg_type(tab[i].buf, tab[i].len, &t);
		cr_expect_eq(rv, tab[i].expect, "%s: %d", tab[i].what, rv);
		cr_expect_eq(t, 0, "%s: type left set", tab[i].what);
	}
	cr_expect_eq(dt_msg_type("\x92\x06\x09", 3, &t), 0);
	cr_expect_eq(t, DT_MSG_ERROR);
	cr_expect_eq(dt_msg_type("\x92\x06\x0c", 3, &t), 0);
	cr_expect_eq(t, DT_MSG_TASK_CANCEL);
}

Test(names, all)
{
	cr_expect_str_eq(dt_hook_name(DT_HOOK_PORT_IN), "port-in");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_PORT_OUT), "port-out");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_UPLINK_IN), "uplink-in");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_UPLINK_OUT), "uplink-out");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_GW_OUT), "gw-out");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_GW_IN), "gw-in");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_DROP), "drop");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_NONE), "?");
	cr_expect_str_eq(dt_hook_name(DT_HOOK_MAX), "?");
	cr_expect_str_eq(dt_hook_name(~0u), "?");

	cr_expect_str_eq(dt_direction_name(DT_DIR_REQUEST), "request");
	cr_expect_str_eq(dt_direction_name(DT_DIR_REPLY), "reply");
	cr_expect_str_eq(dt_direction_name(DT_DIR_MAX), "?");
	cr_expect_str_eq(dt_direction_name(~0u), "?");

	cr_expect_str_eq(dt_fate_name(DT_FATE_DELIVERED), "delivered");
	cr_expect_str_eq(dt_fate_name(DT_FATE_DROPPED), "dropped");
	cr_expect_str_eq(dt_fate_name(DT_FATE_VANISHED), "vanished");
	cr_expect_str_eq(dt_fate_name(DT_FATE_IN_FLIGHT), "in-flight");
	cr_expect_str_eq(dt_fate_name(DT_FATE_MAX), "?");

	cr_expect_str_eq(dt_task_state_name(DT_TASK_NEW), "new");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_READY), "ready");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_ARMED), "armed");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_RUNNING), "running");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_DONE), "done");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_EXPIRED), "expired");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_CANCELLED), "cancelled");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_FAILED), "failed");
	cr_expect_str_eq(dt_task_state_name(DT_TASK_STATE_MAX), "?");

	cr_expect_str_eq(dt_status_name(DT_ST_OK), "ok");
	cr_expect_str_eq(dt_status_name(DT_ST_INVALID), "invalid");
	cr_expect_str_eq(dt_status_name(DT_ST_NOT_FOUND), "not-found");
	cr_expect_str_eq(dt_status_name(DT_ST_REFUSED), "refused");
	cr_expect_str_eq(dt_status_name(DT_ST_FULL), "full");
	cr_expect_str_eq(dt_status_name(DT_ST_FAILED), "failed");
	cr_expect_str_eq(dt_status_name(DT_ST_MAX), "?");

	cr_expect_str_eq(dt_task_status_name(DT_TS_OK), "ok");
	cr_expect_str_eq(dt_task_status_name(DT_TS_NO_HOST), "no-host");
	cr_expect_str_eq(dt_task_status_name(DT_TS_ARM_TIMEOUT), "arm-timeout");
	cr_expect_str_eq(dt_task_status_name(DT_TS_BUDGET_SPENT), "budget-spent");
	cr_expect_str_eq(dt_task_status_name(DT_TS_DURATION), "duration");
	cr_expect_str_eq(dt_task_status_name(DT_TS_CANCELLED), "cancelled");
	cr_expect_str_eq(dt_task_status_name(DT_TS_RESTARTED), "restarted");
	cr_expect_str_eq(dt_task_status_name(DT_TS_ARM_FAILED), "arm-failed");
	cr_expect_str_eq(dt_task_status_name(DT_TS_TENANT_REMOVED), "tenant-removed");
	cr_expect_str_eq(dt_task_status_name(DT_TS_MAX), "?");
	cr_expect_str_eq(dt_task_status_name(~0u), "?");

	cr_expect_str_eq(dt_loss_name(DT_LOSS_RING_FULL), "ring-full");
	cr_expect_str_eq(dt_loss_name(DT_LOSS_QUEUE_FULL), "queue-full");
	cr_expect_str_eq(dt_loss_name(DT_LOSS_BAD_VERSION), "bad-version");
	cr_expect_str_eq(dt_loss_name(DT_LOSS_REJECTED), "rejected");
	cr_expect_str_eq(dt_loss_name(DT_LOSS_MAX), "?");
}

Test(names, strerror_is_distinct_and_never_null)
{
	int a, b;

	for (a = DT_PROTO_ENOMEM; a <= 0; a++) {
		cr_assert_not_null(dt_proto_strerror(a));
		for (b = DT_PROTO_ENOMEM; b < a; b++) {
			cr_expect_str_neq(dt_proto_strerror(a), dt_proto_strerror(b));
		}
	}
	cr_expect_str_eq(dt_proto_strerror(DT_PROTO_ETRUNC), "truncated or malformed message");
	cr_assert_not_null(dt_proto_strerror(-1000));
	cr_assert_not_null(dt_proto_strerror(1));
}

/* ---------------------------------------------------------------------------------------- */
/* Fuzz-ish: random byte flips never crash and never leave a half-filled struct             */
/* ---------------------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: the same sequence on every libc */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static void fuzz(const struct codec *c, unsigned int iterations)
{
	unsigned int it, k, flips, ok = 0, failed = 0;
	msgpack_sbuffer sb;
	unsigned char *buf;
	size_t len;
	int rv;

	msgpack_sbuffer_init(&sb);
	c->valid(&sb);
	buf = malloc(sb.size);
	cr_assert_not_null(buf);
	for (it = 0; it < iterations; it++) {
		memcpy(buf, sb.data, sb.size);
		len = sb.size;
		flips = 1 + rng() % 4;
		for (k = 0; k < flips; k++) {
			buf[rng() % len] = rng() & 0xff;
		}
		if (rng() % 8 == 0) {
			len = 1 + rng() % len; /* and sometimes cut it too */
		}
		rv = try_decode(c, buf, len);
		cr_assert(rv <= 0 && rv >= DT_PROTO_ENOMEM, "%s: iteration %u returned %d", c->name,
			  it, rv);
		if (rv == 0) {
			ok++;
		} else {
			failed++;
		}
	}
	/* both outcomes must have happened, or the loop tested nothing */
	cr_expect_gt(ok, 0, "%s: no mutated message decoded", c->name);
	cr_expect_gt(failed, iterations / 4, "%s: too few mutated messages refused", c->name);
	free(buf);
	msgpack_sbuffer_destroy(&sb);
}

Test(fuzz, batch_byte_flips)
{
	rng_state = 0x9E3779B97F4A7C15ull;
	fuzz(codec_of(DT_MSG_BATCH), 5000);
}

Test(fuzz, report_byte_flips)
{
	rng_state = 0xD1B54A32D192ED03ull;
	fuzz(codec_of(DT_MSG_REPORT), 5000);
}

Test(fuzz, tasks_byte_flips)
{
	rng_state = 0x8BADF00DDEADBEEFull;
	fuzz(codec_of(DT_MSG_TASKS), 5000);
}

/* A collector's heartbeat: no samples, only node states (the bytes that are flipped). */
static void valid_heartbeat(msgpack_sbuffer *sb)
{
	struct dt_batch b;

	mk_batch(&b, 0);
	cr_assert_eq(dt_batch_encode(sb, &b), 0);
	dt_batch_free(&b);
}

Test(fuzz, heartbeat_node_states_byte_flips)
{
	struct codec c = *codec_of(DT_MSG_BATCH);

	c.name = "heartbeat";
	c.valid = valid_heartbeat;
	rng_state = 0x0123456789ABCDEFull;
	fuzz(&c, 5000);
}

Test(fuzz, every_message_byte_flips)
{
	size_t i;

	rng_state = 42;
	for (i = 0; i < N_CODECS; i++) {
		fuzz(&codecs[i], 1000);
	}
}
