/* SPDX-License-Identifier: MIT */
/*
 * The batch link and its receiving side, over NNG's inproc transport: delivery with
 * acknowledgement, deduplication of a resent batch, control relay, and malformed
 * requests that are counted and refused while the server goes on.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "dt_ingest.h"
#include "dt_link.h"

#define MAX_STORED 64

/* A store in memory, standing in for LMDB. */
static struct {
	pthread_mutex_t mu;
	unsigned n;
	uint64_t seqs[MAX_STORED];
	uint32_t samples[MAX_STORED];
	uint64_t last;
	uint64_t controls_seen;
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	pthread_mutex_lock(&fake.mu);
	if (b->n_samples && fake.n < MAX_STORED) {
		fake.seqs[fake.n] = b->seq;
		fake.samples[fake.n++] = b->n_samples;
	}
	fake.last = b->seq;
	pthread_mutex_unlock(&fake.mu);
	return DT_ST_OK;
}

static uint64_t last_seq(void *arg, const char *sender)
{
	uint64_t r;

	pthread_mutex_lock(&fake.mu);
	r = fake.last;
	pthread_mutex_unlock(&fake.mu);
	return r;
}

static uint64_t on_control(void *arg, const struct dt_control *c)
{
	pthread_mutex_lock(&fake.mu);
	fake.controls_seen++;
	pthread_mutex_unlock(&fake.mu);
	return c->gen;
}

static unsigned stored(void)
{
	unsigned n;

	pthread_mutex_lock(&fake.mu);
	n = fake.n;
	pthread_mutex_unlock(&fake.mu);
	return n;
}

static void reset(void)
{
	pthread_mutex_lock(&fake.mu);
	fake.n = 0;
	fake.last = 0;
	fake.controls_seen = 0;
	pthread_mutex_unlock(&fake.mu);
}

TestSuite(link, .init = reset);

static struct dt_ingest *start_ingest(const char *url)
{
	struct dt_ingest_ops ops = {.on_batch = on_batch, .last_seq = last_seq};
	struct dt_ingest *in;

	cr_assert_eq(dt_ingest_start(url, &ops, &in), 0);
	return in;
}

static void fill_batch(struct dt_batch *b, struct dt_wire_sample *s, uint32_t n)
{
	memset(b, 0, sizeof(*b));
	strcpy(b->node, "h1");
	b->n_ifaces = 1;
	strcpy(b->ifaces[0], "pt1");
	memset(s, 0, sizeof(*s) * n);
	for (uint32_t i = 0; i < n; i++) {
		s[i].hook = DT_HOOK_PORT_IN;
		s[i].ts_ns = 1000 + i;
		s[i].drop_name = DT_STR_NONE;
		s[i].drop_where = DT_STR_NONE;
		s[i].tuple.proto = 1;
	}
	b->n_samples = n;
	b->samples = s;
}

/* Waits up to 5 s for cond; the polling only bounds the test, it asserts no timing. */
#define WAIT_FOR(cond)                                                                             \
	do {                                                                                       \
		for (int _i = 0; _i < 500 && !(cond); _i++)                                        \
			nng_msleep(10);                                                            \
	} while (0)

Test(link, delivers_batches_in_order_with_acknowledgement)
{
	struct dt_ingest *in = start_ingest("inproc://link-order");
	struct dt_link_cfg lc = {.url = "inproc://link-order",
				 .sender = "h1",
				 .heartbeat_ms = 50,
				 .timeout_ms = 1000,
				 .queue_max = 16};
	struct dt_link_ops ops = {.on_control = on_control};
	struct dt_wire_sample s[3];
	struct dt_link_stats st;
	struct dt_batch b;
	struct dt_link *l;

	cr_assert_eq(dt_link_start(&lc, &ops, &l), 0);
	for (uint32_t n = 1; n <= 3; n++) {
		fill_batch(&b, s, n);
		cr_assert_eq(dt_link_send(l, &b), 0);
	}
	WAIT_FOR(stored() == 3);
	cr_assert_eq(stored(), 3);
	cr_assert_eq(fake.samples[0], 1);
	cr_assert_eq(fake.samples[2], 3);
	cr_assert_lt(fake.seqs[0], fake.seqs[1]);
	cr_assert_lt(fake.seqs[1], fake.seqs[2]);
	dt_link_stats(l, &st);
	WAIT_FOR((dt_link_stats(l, &st), st.batches_sent == 3));
	cr_assert_eq(st.samples_sent, 6);
	cr_assert_eq(dt_link_stop(l, 1000), 0);
	dt_ingest_stop(in);
}

Test(link, full_queue_refuses_instead_of_growing)
{
	/* Nobody listens: nothing is acknowledged, so the queue fills up. */
	struct dt_link_cfg lc = {.url = "inproc://link-nobody",
				 .sender = "h1",
				 .heartbeat_ms = 50,
				 .timeout_ms = 50,
				 .queue_max = 2};
	struct dt_wire_sample s[1];
	struct dt_batch b;
	struct dt_link *l;

	cr_assert_eq(dt_link_start(&lc, NULL, &l), 0);
	fill_batch(&b, s, 1);
	cr_assert_eq(dt_link_send(l, &b), 0);
	cr_assert_eq(dt_link_send(l, &b), 0);
	cr_assert_eq(dt_link_send(l, &b), -ENOBUFS);
	cr_assert_eq(dt_link_stop(l, 0), 2);
}

Test(link, control_set_reaches_the_sender_and_is_advertised)
{
	struct dt_ingest *in = start_ingest("inproc://link-ctl");
	struct dt_link_cfg lc = {.url = "inproc://link-ctl",
				 .sender = "h1",
				 .heartbeat_ms = 20,
				 .timeout_ms = 1000,
				 .queue_max = 4};
	struct dt_link_ops ops = {.on_control = on_control};
	struct dt_arm arm = {.task_id = 9, .flags = DT_TASK_F_ANYPORT};
	struct dt_control c = {.gen = 5, .n_arms = 1, .arms = &arm};
	struct dt_link_stats st;
	struct dt_link *l;
	unsigned senders = 0;

	cr_assert_eq(dt_ingest_set_control(in, &c), 0);
	cr_assert_eq(dt_link_start(&lc, &ops, &l), 0);
	WAIT_FOR(dt_ingest_min_gen(in, 5000, &senders) == 5);
	cr_assert_eq(dt_ingest_min_gen(in, 5000, &senders), 5);
	cr_assert_eq(senders, 1);
	dt_link_stats(l, &st);
	cr_assert_eq(st.ctl_gen, 5);
	/* Once the sender advertises the generation, the set is not sent again. */
	nng_msleep(100);
	cr_assert_eq(fake.controls_seen, 1);
	dt_link_stop(l, 0);
	dt_ingest_stop(in);
}

/* Sends raw bytes as one request and returns the reply's message type. */
static enum dt_msg_type raw_request(nng_socket s, const void *buf, size_t len, uint32_t *status)
{
	enum dt_msg_type type = 0;
	void *reply;
	size_t rlen;

	cr_assert_eq(nng_send(s, (void *)buf, len, 0), 0);
	cr_assert_eq(nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC), 0);
	cr_assert_eq(dt_msg_type(reply, rlen, &type), 0);
	if (type == DT_MSG_ERROR) {
		struct dt_error e;

		cr_assert_eq(dt_error_decode(reply, rlen, &e), 0);
		*status = e.status;
	} else {
		struct dt_ack a;

		cr_assert_eq(dt_ack_decode(reply, rlen, &a), 0);
		*status = a.status;
		dt_ack_free(&a);
	}
	nng_free(reply, rlen);
	return type;
}

Test(link, malformed_requests_are_counted_refused_and_service_goes_on)
{
	struct dt_ingest *in = start_ingest("inproc://link-bad");
	struct dt_ingest_stats st;
	struct dt_wire_sample s[2];
	msgpack_sbuffer buf;
	struct dt_batch b;
	nng_socket req;
	uint32_t status = 0;

	cr_assert_eq(nng_req0_open(&req), 0);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 2000);
	cr_assert_eq(nng_dial(req, "inproc://link-bad", NULL, 0), 0);

	/* A well-formed message of a type the ingest side does not take. */
	msgpack_sbuffer_init(&buf);
	cr_assert_eq(dt_task_get_encode(&buf, "", 7), 0);
	cr_assert_eq(raw_request(req, buf.data, buf.size, &status), DT_MSG_ERROR);
	cr_assert_eq(status, DT_ST_INVALID);
	msgpack_sbuffer_clear(&buf);

	fill_batch(&b, s, 2);
	strcpy(b.sender, "h1");
	b.seq = 42;
	cr_assert_eq(dt_batch_encode(&buf, &b), 0);
	cr_assert_eq(raw_request(req, buf.data, buf.size - 1, &status),
		     DT_MSG_ERROR); /* truncated */
	cr_assert_eq(raw_request(req, buf.data, buf.size, &status), DT_MSG_ACK);
	cr_assert_eq(status, DT_ST_OK);
	/* The same batch again (a resend): acknowledged, stored once. */
	cr_assert_eq(raw_request(req, buf.data, buf.size, &status), DT_MSG_ACK);
	cr_assert_eq(status, DT_ST_OK);
	msgpack_sbuffer_destroy(&buf);

	dt_ingest_stats(in, &st);
	cr_assert_eq(st.malformed, 2);
	cr_assert_eq(st.malformed_by[-DT_PROTO_ETRUNC], 1);
	cr_assert_eq(st.malformed_by[-DT_PROTO_EMSGTYPE], 1);
	cr_assert_eq(st.batches, 1);
	cr_assert_eq(st.duplicates, 1);
	cr_assert_eq(stored(), 1);
	nng_close(req);
	dt_ingest_stop(in);
}

static void hb_nodes(void *arg, struct dt_batch *hb)
{
	struct dt_node_state *ns = calloc(1, sizeof(*ns));

	cr_assert_not_null(ns);
	strcpy(ns->node, "h7");
	ns->ctl_gen = 42;
	ns->n_endpoints = 2;
	ns->endpoints = calloc(2, sizeof(*ns->endpoints));
	ns->endpoints[0] = (struct dt_endpoint){.vni = 100, .addr = 0x0100640a};
	ns->endpoints[1] = (struct dt_endpoint){.vni = 100, .addr = 0};
	hb->nodes = ns;
	hb->n_nodes = 1;
}

Test(link, heartbeats_carry_node_states_to_the_receiver)
{
	struct dt_ingest *in = start_ingest("inproc://link-nodes");
	struct dt_link_cfg lc = {.url = "inproc://link-nodes",
				 .sender = "c1",
				 .heartbeat_ms = 20,
				 .timeout_ms = 1000,
				 .queue_max = 4};
	struct dt_link_ops ops = {.heartbeat_nodes = hb_nodes};
	struct dt_node_state *v = NULL;
	struct dt_link *l;
	uint32_t n = 0;

	cr_assert_eq(dt_link_start(&lc, &ops, &l), 0);
	for (int i = 0; i < 500 && n == 0; i++) {
		nng_msleep(10);
		cr_assert_eq(dt_ingest_nodes(in, 5000, &v, &n), 0);
		if (n == 0)
			dt_node_states_free(v, n);
	}
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0].node, "h7");
	cr_assert_eq(v[0].ctl_gen, 42);
	cr_assert_eq(v[0].n_endpoints, 2);
	cr_assert_eq(v[0].endpoints[0].addr, 0x0100640a);
	dt_node_states_free(v, n);
	/* A node not heard from within the window is not live. */
	nng_msleep(30);
	dt_link_stop(l, 0);
	nng_msleep(60);
	cr_assert_eq(dt_ingest_nodes(in, 50, &v, &n), 0);
	cr_assert_eq(n, 0);
	dt_node_states_free(v, n);
	dt_ingest_stop(in);
}

Test(link, heartbeats_keep_coming_while_batches_flow)
{
	struct dt_ingest *in = start_ingest("inproc://link-busy");
	struct dt_link_cfg lc = {.url = "inproc://link-busy",
				 .sender = "c1",
				 .heartbeat_ms = 100,
				 .timeout_ms = 1000,
				 .queue_max = 64};
	struct dt_link_ops ops = {.heartbeat_nodes = hb_nodes};
	struct dt_ingest_stats st;
	struct dt_wire_sample s[1];
	struct dt_node_state *v = NULL;
	struct dt_batch b;
	struct dt_link *l;
	uint32_t n = 0;

	cr_assert_eq(dt_link_start(&lc, &ops, &l), 0);
	fill_batch(&b, s, 1);
	/* A batch every 10 ms for 1.5 s: the queue is never idle for a heartbeat_ms, and
	 * the receiver must still hear the node states every heartbeat_ms (it forgets a
	 * node it has not heard of for its window, however many batches came). */
	for (int i = 0; i < 150; i++) {
		cr_assert_eq(dt_link_send(l, &b), 0);
		nng_msleep(10);
	}
	dt_ingest_stats(in, &st);
	cr_assert_geq(st.heartbeats, 5, "%" PRIu64 " heartbeats in 1.5 s of batches",
		      st.heartbeats);
	cr_assert_eq(dt_ingest_nodes(in, 300, &v, &n), 0);
	cr_assert_eq(n, 1, "the node states were heard within the last 300 ms");
	dt_node_states_free(v, n);
	dt_link_stop(l, 1000);
	dt_ingest_stop(in);
}

static uint64_t hb_lost_seen;

static void hb_lost(void *arg, uint64_t lost[DT_LOSS_MAX])
{
	lost[DT_LOSS_SPOOL_FULL] = 17;
}

static void on_hb(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	__atomic_store_n(&hb_lost_seen, b->lost[DT_LOSS_SPOOL_FULL], __ATOMIC_SEQ_CST);
}

Test(link, heartbeats_carry_loss_counters_to_the_receiver)
{
	struct dt_ingest_ops iops = {
		.on_batch = on_batch, .on_heartbeat = on_hb, .last_seq = last_seq};
	struct dt_link_cfg lc = {.url = "inproc://link-hblost",
				 .sender = "h1",
				 .heartbeat_ms = 20,
				 .timeout_ms = 1000,
				 .queue_max = 4};
	struct dt_link_ops ops = {.heartbeat_lost = hb_lost};
	struct dt_ingest *in;
	struct dt_link *l;

	cr_assert_eq(dt_ingest_start("inproc://link-hblost", &iops, &in), 0);
	cr_assert_eq(dt_link_start(&lc, &ops, &l), 0);
	WAIT_FOR(__atomic_load_n(&hb_lost_seen, __ATOMIC_SEQ_CST) == 17);
	cr_assert_eq(__atomic_load_n(&hb_lost_seen, __ATOMIC_SEQ_CST), 17);
	cr_assert_eq(stored(), 0, "a heartbeat is not a stored batch");
	dt_link_stop(l, 0);
	dt_ingest_stop(in);
}

/* ---------------------------------------------------------------------------------------- */
/* Group commit: the collector's way of storing (on_batches, check_only)                    */
/* ---------------------------------------------------------------------------------------- */

#define GROUP_SENDERS 8

/* A store that commits groups, slowly the first time so that the next group fills up. */
static struct {
	pthread_mutex_t mu;
	unsigned commits, stored, biggest;
	uint64_t committed[GROUP_SENDERS]; /* highest seq committed, by sender index */
	uint64_t early_acks;		   /* ACKs of a batch not committed yet */
	uint64_t acks;
	uint64_t stored_seqs[256];
} grp = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int sender_index(const char *sender)
{
	return sender[0] == 'g' ? atoi(sender + 1) : GROUP_SENDERS - 1;
}

static int group_commit(void *arg, const struct dt_ingest_item *items, unsigned n)
{
	pthread_mutex_lock(&grp.mu);
	if (grp.commits++ == 0) {
		pthread_mutex_unlock(&grp.mu);
		nng_msleep(300); /* a slow sync: the others' batches arrive meanwhile */
		pthread_mutex_lock(&grp.mu);
	}
	for (unsigned i = 0; i < n; i++) {
		cr_assert_null(items[i].b->samples, "check_only decodes no sample");
		cr_assert_gt(items[i].b->n_samples, 0);
		if (grp.stored < 256)
			grp.stored_seqs[grp.stored] = items[i].b->seq;
		grp.stored++;
		grp.committed[sender_index(items[i].b->sender)] = items[i].b->seq;
	}
	if (n > grp.biggest)
		grp.biggest = n;
	pthread_mutex_unlock(&grp.mu);
	return DT_ST_OK;
}

static uint64_t group_last_seq(void *arg, const char *sender)
{
	uint64_t r;

	pthread_mutex_lock(&grp.mu);
	r = grp.committed[sender_index(sender)];
	pthread_mutex_unlock(&grp.mu);
	return r;
}

/* The sender side: an ACK must never come before its batch's commit. */
static void group_acked(void *arg, uint64_t seq)
{
	int i = (int)(intptr_t)arg;

	pthread_mutex_lock(&grp.mu);
	grp.acks++;
	if (seq > grp.committed[i])
		grp.early_acks++;
	pthread_mutex_unlock(&grp.mu);
}

static struct dt_ingest *start_group_ingest(const char *url)
{
	struct dt_ingest_ops ops = {
		.on_batches = group_commit, .last_seq = group_last_seq, .check_only = true};
	struct dt_ingest *in;

	pthread_mutex_lock(&grp.mu);
	memset(grp.committed, 0, sizeof(grp.committed));
	grp.commits = grp.stored = grp.biggest = 0;
	grp.early_acks = grp.acks = 0;
	pthread_mutex_unlock(&grp.mu);
	cr_assert_eq(dt_ingest_start(url, &ops, &in), 0);
	return in;
}

static unsigned group_stored(void)
{
	unsigned n;

	pthread_mutex_lock(&grp.mu);
	n = grp.stored;
	pthread_mutex_unlock(&grp.mu);
	return n;
}

Test(link, batches_that_arrive_together_are_committed_together_and_acked_after)
{
	const char *url = "inproc://link-group";
	struct dt_ingest *in = start_group_ingest(url);
	struct dt_link *links[GROUP_SENDERS];
	struct dt_wire_sample s[4];
	struct dt_ingest_stats st;
	struct dt_batch b;

	for (int i = 0; i < GROUP_SENDERS; i++) {
		char name[8];
		struct dt_link_cfg lc = {.url = url,
					 .sender = name,
					 .heartbeat_ms = 5000,
					 .timeout_ms = 3000,
					 .queue_max = 16};
		struct dt_link_ops ops = {.on_acked = group_acked, .arg = (void *)(intptr_t)i};

		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(dt_link_start(&lc, &ops, &links[i]), 0);
	}
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < GROUP_SENDERS; i++) {
			fill_batch(&b, s, 4);
			cr_assert_eq(dt_link_send(links[i], &b), 0);
		}
	}
	WAIT_FOR(group_stored() == 3 * GROUP_SENDERS && grp.acks == 3 * GROUP_SENDERS);
	for (int i = 0; i < GROUP_SENDERS; i++)
		cr_assert_eq(dt_link_stop(links[i], 1000), 0);
	dt_ingest_stats(in, &st);
	dt_ingest_stop(in);
	cr_assert_eq(group_stored(), 3 * GROUP_SENDERS, "every batch stored once");
	cr_assert_eq(st.batches, 3 * GROUP_SENDERS);
	cr_assert_eq(st.samples, 3 * GROUP_SENDERS * 4);
	cr_assert_eq(grp.acks, 3 * GROUP_SENDERS);
	cr_assert_eq(grp.early_acks, 0, "an ACK came before its batch's commit");
	cr_assert_gt(grp.biggest, 1, "the batches that waited were committed one by one");
	cr_assert_lt(grp.commits, 3 * GROUP_SENDERS);
}

Test(link, a_resend_in_the_same_group_is_stored_once)
{
	const char *url = "inproc://link-group-dup";
	struct dt_ingest *in = start_group_ingest(url);
	struct dt_wire_sample s[2];
	msgpack_sbuffer blocker, dup;
	struct dt_ingest_stats st;
	nng_socket req[3];
	struct dt_batch b;
	nng_aio *aio[3];

	/* g1's batch holds the ingest in its slow first commit while g2 sends the same batch
	 * twice, on two sockets (a resend that overtook its first copy): both come in the
	 * next group. */
	fill_batch(&b, s, 2);
	msgpack_sbuffer_init(&blocker);
	msgpack_sbuffer_init(&dup);
	strcpy(b.sender, "g1");
	b.seq = 10;
	cr_assert_eq(dt_batch_encode(&blocker, &b), 0);
	strcpy(b.sender, "g2");
	b.seq = 20;
	cr_assert_eq(dt_batch_encode(&dup, &b), 0);
	for (int i = 0; i < 3; i++) {
		nng_msg *m;

		cr_assert_eq(nng_req0_open(&req[i]), 0);
		nng_socket_set_ms(req[i], NNG_OPT_RECVTIMEO, 3000);
		cr_assert_eq(nng_dial(req[i], url, NULL, 0), 0);
		cr_assert_eq(nng_aio_alloc(&aio[i], NULL, NULL), 0);
		cr_assert_eq(nng_msg_alloc(&m, 0), 0);
		if (i == 0)
			cr_assert_eq(nng_msg_append(m, blocker.data, blocker.size), 0);
		else
			cr_assert_eq(nng_msg_append(m, dup.data, dup.size), 0);
		nng_aio_set_msg(aio[i], m);
		nng_send_aio(req[i], aio[i]);
		if (i == 0)
			nng_msleep(100); /* the blocker first */
	}
	for (int i = 0; i < 3; i++) {
		uint32_t status = 99;

		nng_aio_wait(aio[i]);
		cr_assert_eq(nng_aio_result(aio[i]), 0);
		nng_recv_aio(req[i], aio[i]);
		nng_aio_wait(aio[i]);
		cr_assert_eq(nng_aio_result(aio[i]), 0);
		{
			nng_msg *m = nng_aio_get_msg(aio[i]);
			struct dt_ack ack;

			cr_assert_eq(dt_ack_decode(nng_msg_body(m), nng_msg_len(m), &ack), 0);
			status = ack.status;
			cr_assert_eq(ack.seq, i == 0 ? 10 : 20);
			dt_ack_free(&ack);
			nng_msg_free(m);
		}
		cr_assert_eq(status, DT_ST_OK, "request %d", i);
		nng_aio_free(aio[i]);
		nng_close(req[i]);
	}
	dt_ingest_stats(in, &st);
	dt_ingest_stop(in);
	cr_assert_eq(group_stored(), 2, "g2's batch stored once, g1's once");
	cr_assert_eq(st.batches, 2);
	cr_assert_eq(st.duplicates, 1);
	msgpack_sbuffer_destroy(&blocker);
	msgpack_sbuffer_destroy(&dup);
}

Test(link, a_bad_sample_value_is_refused_and_counted_by_the_check_and_the_decoder)
{
	const char *urls[2] = {"inproc://link-badsample-check", "inproc://link-badsample-decode"};
	struct dt_wire_sample s[3];
	msgpack_sbuffer buf;
	struct dt_batch b;
	char *p;

	/* valid framing, one sample's hook out of range (the encoder refuses it: patched) */
	fill_batch(&b, s, 3);
	strcpy(b.sender, "h1");
	b.seq = 5;
	s[2].hook = DT_HOOK_UPLINK_OUT;
	msgpack_sbuffer_init(&buf);
	cr_assert_eq(dt_batch_encode(&buf, &b), 0);
	p = memmem(buf.data, buf.size, "\xdc\x00\x1a\x04", 4);
	cr_assert_not_null(p);
	p[3] = DT_HOOK_MAX + 3;
	for (int k = 0; k < 2; k++) {
		struct dt_ingest *in = k == 0 ? start_group_ingest(urls[k]) : start_ingest(urls[k]);
		struct dt_ingest_stats st;
		uint32_t status = 0;
		nng_socket req;

		cr_assert_eq(nng_req0_open(&req), 0);
		nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 2000);
		cr_assert_eq(nng_dial(req, urls[k], NULL, 0), 0);
		cr_assert_eq(raw_request(req, buf.data, buf.size, &status), DT_MSG_ERROR, "%s",
			     urls[k]);
		cr_assert_eq(status, DT_ST_INVALID);
		dt_ingest_stats(in, &st);
		cr_assert_eq(st.malformed_by[-DT_PROTO_ERANGE], 1, "%s", urls[k]);
		cr_assert_eq(st.batches, 0);
		nng_close(req);
		dt_ingest_stop(in);
	}
	cr_assert_eq(group_stored(), 0);
	cr_assert_eq(stored(), 0);
	msgpack_sbuffer_destroy(&buf);
}

/*
 * The sender's side of the link is a door too: a collector (or something posing as one)
 * may answer anything. A fake collector answers the link's requests with the catalogue of
 * bad replies the ingest side is tested with, and two control sets that decode but cannot
 * be right.
 */
static struct dt_arm fake_arms[5];

static void ack_with_control(msgpack_sbuffer *out, uint64_t seq, uint64_t gen, uint32_t n_arms)
{
	struct dt_ack a = {.seq = seq,
			   .status = DT_ST_OK,
			   .has_control = true,
			   .control = {.gen = gen, .n_arms = n_arms, .arms = fake_arms}};

	for (uint32_t i = 0; i < n_arms; i++)
		fake_arms[i] = (struct dt_arm){.task_id = i + 1, .flags = DT_TASK_F_ANYPORT};
	cr_assert_eq(dt_ack_encode(out, &a), 0);
}

/* An ACK's five elements, with version, type and the seq's encoding of our choosing. */
static void ack_shaped(msgpack_sbuffer *out, uint32_t n, unsigned version, unsigned type,
		       uint64_t seq, bool seq_as_string)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, n);
	msgpack_pack_unsigned_int(&pk, version);
	msgpack_pack_unsigned_int(&pk, type);
	if (seq_as_string) {
		msgpack_pack_str(&pk, 3);
		msgpack_pack_str_body(&pk, "seq", 3);
	} else {
		msgpack_pack_uint64(&pk, seq);
	}
	msgpack_pack_unsigned_int(&pk, DT_ST_OK);
	if (n > 4)
		msgpack_pack_nil(&pk);
}

enum bad_reply {
	GOOD_GEN3,
	TRUNCATED,
	WRONG_TYPE,
	WRONG_LENGTH,
	NEWER_VERSION,
	UNKNOWN_MESSAGE,
	OTHER_MESSAGE,
	TRAILING,
	GEN_OUT_OF_RANGE,
	GOOD_GEN8,
};

static void make_reply(enum bad_reply kind, uint64_t seq, msgpack_sbuffer *out)
{
	struct dt_control c = {.gen = 4};

	switch (kind) {
	case GOOD_GEN3:
		return ack_with_control(out, seq, 3, 1);
	case TRUNCATED:
		ack_with_control(out, seq, 3, 1);
		out->size--;
		return;
	case WRONG_TYPE:
		return ack_shaped(out, 5, DT_PROTO_VERSION, DT_MSG_ACK, seq, true);
	case WRONG_LENGTH:
		return ack_shaped(out, 4, DT_PROTO_VERSION, DT_MSG_ACK, seq, false);
	case NEWER_VERSION:
		return ack_shaped(out, 5, DT_PROTO_VERSION + 1, DT_MSG_ACK, seq, false);
	case UNKNOWN_MESSAGE:
		return ack_shaped(out, 5, DT_PROTO_VERSION, 200, seq, false);
	case OTHER_MESSAGE:
		cr_assert_eq(dt_control_encode(out, &c), 0);
		return;
	case TRAILING:
		ack_with_control(out, seq, 3, 1);
		msgpack_sbuffer_write(out, "\xc0", 1);
		return;
	case GEN_OUT_OF_RANGE:
		return ack_with_control(out, seq, DT_LINK_GEN_MAX + 1, 1);
	case GOOD_GEN8:
		return ack_with_control(out, seq, 8, 2);
	}
}

/* Serves one request of the link on rep with the reply of kind. */
static void serve(nng_socket rep, enum bad_reply kind)
{
	msgpack_sbuffer out;
	struct dt_batch b;
	void *req;
	size_t len;

	cr_assert_eq(nng_recv(rep, &req, &len, NNG_FLAG_ALLOC), 0);
	cr_assert_eq(dt_batch_decode(req, len, &b), 0);
	nng_free(req, len);
	msgpack_sbuffer_init(&out);
	make_reply(kind, b.seq, &out);
	dt_batch_free(&b);
	cr_assert_eq(nng_send(rep, out.data, out.size, 0), 0);
	msgpack_sbuffer_destroy(&out);
}

/* Counts the lines of text holding needle. */
static unsigned count_lines(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

Test(link, bad_replies_are_refused_counted_and_the_control_set_stays)
{
	struct dt_link_cfg lc = {.url = "inproc://link-badreplies",
				 .sender = "h1",
				 .heartbeat_ms = 60000, /* only batches: each reply is scripted */
				 .timeout_ms = 2000,
				 .queue_max = 4};
	struct dt_link_ops ops = {.on_control = on_control};
	char log[8192] = "";
	struct dt_wire_sample s[1];
	struct dt_link_stats st;
	struct dt_batch b;
	struct dt_link *l;
	nng_socket rep;
	FILE *f = tmpfile();
	int saved = dup(2);

	cr_assert(f && saved >= 0);
	cr_assert_eq(nng_rep0_open(&rep), 0);
	nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000);
	cr_assert_eq(nng_listen(rep, lc.url, NULL, 0), 0);
	fflush(stderr);
	dup2(fileno(f), 2); /* the log lines, to count them */
	cr_assert_eq(dt_link_start(&lc, &ops, &l), 0);
	fill_batch(&b, s, 1);

	cr_assert_eq(dt_link_send(l, &b), 0);
	serve(rep, GOOD_GEN3);
	WAIT_FOR((dt_link_stats(l, &st), st.batches_sent == 1));
	cr_assert_eq(st.ctl_gen, 3);

	/* Replies that do not decode: each is counted and the same batch is sent again. */
	cr_assert_eq(dt_link_send(l, &b), 0);
	for (enum bad_reply k = TRUNCATED; k <= TRAILING; k++)
		serve(rep, k);
	/* Then an ACK of that batch whose control set cannot be right: the batch is
	 * delivered, the set refused. The same for the next batch. */
	serve(rep, GEN_OUT_OF_RANGE);
	cr_assert_eq(dt_link_send(l, &b), 0);
	serve(rep, GEN_OUT_OF_RANGE);
	WAIT_FOR((dt_link_stats(l, &st), st.batches_sent == 3));
	cr_assert_eq(st.batches_sent, 3);
	cr_assert_eq(st.bad_replies, 7);
	cr_assert_eq(st.bad_replies_by[-DT_PROTO_ETRUNC], 1);
	cr_assert_eq(st.bad_replies_by[-DT_PROTO_ETYPE], 1);
	cr_assert_eq(st.bad_replies_by[-DT_PROTO_ELENGTH], 1);
	cr_assert_eq(st.bad_replies_by[-DT_PROTO_EVERSION], 1);
	cr_assert_eq(st.bad_replies_by[-DT_PROTO_EMSGTYPE], 2, "an unknown and another message");
	cr_assert_eq(st.bad_replies_by[-DT_PROTO_ETRAILING], 1);
	cr_assert_eq(st.controls_refused[DT_LINK_CTL_GENERATION], 2);
	cr_assert_eq(st.ctl_gen, 3, "the sender keeps the set it applied");
	cr_assert_eq(fake.controls_seen, 1, "no bad set reached on_control");

	/* A good set is applied again. */
	cr_assert_eq(dt_link_send(l, &b), 0);
	serve(rep, GOOD_GEN8);
	WAIT_FOR((dt_link_stats(l, &st), st.batches_sent == 4));
	cr_assert_eq(st.ctl_gen, 8);
	cr_assert_eq(fake.controls_seen, 2);
	dt_link_stop(l, 0);
	nng_close(rep);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	log[fread(log, 1, sizeof(log) - 1, f)] = '\0';
	fclose(f);
	/* Logged with their ids, at most once a second: not a line per reply. */
	cr_assert_geq(count_lines(log, "DT-LINK-BADACK"), 1, "%s", log);
	cr_assert_lt(count_lines(log, "DT-LINK-BADACK"), 7, "%s", log);
	cr_assert_geq(count_lines(log, "DT-LINK-BADCONTROL"), 1, "%s", log);
	cr_assert(strstr(log, "refused control set 281474976710657 of 1 tasks (generation"), "%s",
		  log);
}
