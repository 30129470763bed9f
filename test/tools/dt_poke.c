/* SPDX-License-Identifier: MIT */
/*
 * dt-poke - a test tool that speaks to the dyetrace daemons the wrong way on purpose.
 *
 *   dt-poke send URL KIND     send one malformed request of KIND to a daemon's rep
 *                             endpoint (collector, analyzer ingest or API); prints the
 *                             reply ("error invalid: ..." or "ack ok"); exit 0 when the
 *                             daemon answered, 1 when it did not
 *   dt-poke serve URL N [controls]
 *                             listen on URL as a fake collector and answer the first N
 *                             requests with garbage, the rest with nothing; exit after
 *                             N garbage replies (to test the agent's side). With
 *                             "controls": acknowledge them instead, the first with the
 *                             control set of generation 3 (one task), the others with a
 *                             set a sender refuses: a generation above DT_LINK_GEN_MAX
 *
 * KIND: garbage | truncated | wrong-type | newer-version | bad-hook | bad-cap | trailing
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "dt_link.h"
#include "dt_proto.h"

static void valid_batch(msgpack_sbuffer *out, uint8_t hook)
{
	struct dt_wire_sample s = {.hook = hook,
				   .ts_ns = 1,
				   .len = 84,
				   .drop_name = DT_STR_NONE,
				   .drop_where = DT_STR_NONE};
	struct dt_batch b;

	memset(&b, 0, sizeof(b));
	strcpy(b.sender, "dt-poke");
	strcpy(b.node, "dt-poke");
	b.seq = 1;
	b.n_ifaces = 1;
	strcpy(b.ifaces[0], "x0");
	s.tuple.proto = 1;
	s.cap_link = DT_CAP_ETH; /* a 4-byte packet prefix: 01 c4 04 ... on the wire */
	s.cap_len = 4;
	memcpy(s.cap, "\xde\xad\xbe\xef", 4);
	b.n_samples = 1;
	b.samples = &s;
	if (dt_batch_encode(out, &b) != 0 || out->size == 0) {
		fprintf(stderr, "dt-poke: cannot encode the base batch\n");
		exit(2);
	}
}

/* Builds the malformed message of kind into out. Returns 0, or -1 for an unknown kind. */
static int make(const char *kind, msgpack_sbuffer *out)
{
	if (strcmp(kind, "garbage") == 0) {
		msgpack_sbuffer_write(out, "\xc1\xc1\xc1\xc1 not msgpack", 16);
	} else if (strcmp(kind, "truncated") == 0) {
		valid_batch(out, DT_HOOK_PORT_IN);
		out->size /= 2;
	} else if (strcmp(kind, "wrong-type") == 0) {
		dt_task_get_encode(out, "", 1); /* a CLI request sent to an ingest endpoint */
	} else if (strcmp(kind, "newer-version") == 0) {
		valid_batch(out, DT_HOOK_PORT_IN);
		out->data[1] = DT_PROTO_VERSION + 1; /* [fixarray, version, ...] */
	} else if (strcmp(kind, "bad-hook") == 0) {
		/* The encoder refuses an unknown hook, so patch it in: the sample is an array16
		 * of 26 fields (dc 00 1a) whose first field is the hook as a positive fixint. */
		char *p;

		valid_batch(out, DT_HOOK_PORT_IN);
		p = memmem(out->data, out->size, "\xdc\x00\x1a\x01", 4);
		if (!p)
			return -1;
		p[3] = DT_HOOK_MAX + 3;
	} else if (strcmp(kind, "bad-cap") == 0) {
		/* A packet prefix that says "nothing captured" (link 0) but carries bytes. */
		char *p;

		valid_batch(out, DT_HOOK_PORT_IN);
		p = memmem(out->data, out->size, "\x01\xc4\x04\xde", 4);
		if (!p)
			return -1;
		p[0] = DT_CAP_NONE;
	} else if (strcmp(kind, "trailing") == 0) {
		valid_batch(out, DT_HOOK_PORT_IN);
		msgpack_sbuffer_write(out, "\x00", 1);
	} else {
		return -1;
	}
	return 0;
}

static int do_send(const char *url, const char *kind)
{
	msgpack_sbuffer msg;
	enum dt_msg_type type;
	struct dt_error e;
	nng_socket s;
	void *reply;
	size_t len;
	int rv;

	msgpack_sbuffer_init(&msg);
	if (make(kind, &msg)) {
		fprintf(stderr, "dt-poke: unknown kind '%s'\n", kind);
		return 2;
	}
	if ((rv = nng_req0_open(&s)) || (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000)) ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000)) ||
	    (rv = nng_dial(s, url, NULL, 0)) || (rv = nng_send(s, msg.data, msg.size, 0)) ||
	    (rv = nng_recv(s, &reply, &len, NNG_FLAG_ALLOC))) {
		fprintf(stderr, "dt-poke: %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	if (dt_msg_type(reply, len, &type) == 0 && type == DT_MSG_ERROR &&
	    dt_error_decode(reply, len, &e) == 0)
		printf("error %s: %s\n", dt_status_name(e.status), e.message);
	else if (type == DT_MSG_ACK)
		printf("ack\n");
	else
		printf("unreadable reply\n");
	nng_free(reply, len);
	nng_close(s);
	msgpack_sbuffer_destroy(&msg);
	return 0;
}

/* The i-th acknowledgement of request req in "controls" mode (see the top). */
static int control_reply(int i, const void *req, size_t len, msgpack_sbuffer *out)
{
	struct dt_arm arm = {.task_id = 1,
			     .flags = DT_TASK_F_ANYPORT,
			     .tuple = {.proto = 1, .saddr = htonl(0x0a6400fe), .vni = 999},
			     .budget = 1,
			     .rate_pps = 1};
	struct dt_ack a = {
		.status = DT_ST_OK,
		.has_control = true,
		.control = {.gen = i == 0 ? 3 : DT_LINK_GEN_MAX + 1, .n_arms = 1, .arms = &arm}};
	struct dt_batch b;

	if (dt_batch_decode(req, len, &b) != 0)
		return -1;
	a.seq = b.seq;
	dt_batch_free(&b);
	return dt_ack_encode(out, &a);
}

static int do_serve(const char *url, int n, bool controls)
{
	msgpack_sbuffer out;
	nng_socket s;
	int rv;

	msgpack_sbuffer_init(&out);
	if ((rv = nng_rep0_open(&s)) || (rv = nng_listen(s, url, NULL, 0))) {
		fprintf(stderr, "dt-poke: %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		void *req;
		size_t len;

		if ((rv = nng_recv(s, &req, &len, NNG_FLAG_ALLOC)))
			break;
		msgpack_sbuffer_clear(&out);
		if (!controls)
			/* an ACK header, then garbage */
			msgpack_sbuffer_write(&out, "\x93\x01\x02\xc1", 4);
		else if (control_reply(i, req, len, &out) != 0)
			fprintf(stderr, "dt-poke: request %d is not a batch\n", i);
		nng_free(req, len);
		nng_send(s, out.data, out.size, 0);
	}
	msgpack_sbuffer_destroy(&out);
	nng_msleep(200); /* closing at once may cut the last reply short */
	nng_close(s);
	return rv ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], argv[3]);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "serve") == 0)
		return do_serve(argv[2], atoi(argv[3]),
				argc == 5 && strcmp(argv[4], "controls") == 0);
	fprintf(stderr, "usage: dt-poke send URL KIND | dt-poke serve URL N [controls]\n");
	return 2;
}
