// SPDX-License-Identifier: MIT
/*
 * test_render.c - text and JSON output of tasks, reports and errors (report/render.c).
 *
 * JSON is checked twice: by a small strict validator below (RFC 8259 grammar, no
 * extensions), and by looking for the keys and values the lab tests read with jq.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "render.h"

/* ------------------------------------------------------------------------------------ */
/* A strict JSON validator: returns the end of one value, or NULL. */

static const char *ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
		s++;
	}
	return s;
}

static const char *value(const char *s, int depth);

static const char *string(const char *s)
{
	if (*s++ != '"') {
		return NULL;
	}
	while (*s != '"') {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20) {
			return NULL; /* also the end of the buffer */
		}
		if (c == '\\') {
			s++;
			if (*s == 'u') {
				int i;

				for (i = 1; i <= 4; i++) {
					if (!isxdigit((unsigned char)s[i])) {
						return NULL;
					}
				}
				s += 4;
			} else if (!strchr("\"\\/bfnrt", *s) || *s == '\0') {
				return NULL;
			}
		}
		s++;
	}
	return s + 1;
}

static const char *number(const char *s)
{
	if (*s == '-') {
		s++;
	}
	if (*s == '0') {
		s++;
	} else if (isdigit((unsigned char)*s)) {
		while (isdigit((unsigned char)*s)) {
			s++;
		}
	} else {
		return NULL;
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s)) {
			return NULL;
		}
		while (isdigit((unsigned char)*s)) {
			s++;
		}
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-') {
			s++;
		}
		if (!isdigit((unsigned char)*s)) {
			return NULL;
		}
		while (isdigit((unsigned char)*s)) {
			s++;
		}
	}
	return s;
}

static const char *members(const char *s, char close, int depth)
{
	s = ws(s + 1);
	if (*s == close) {
		return s + 1;
	}
	for (;;) {
		if (close == '}') {
			s = string(ws(s));
			if (!s) {
				return NULL;
			}
			s = ws(s);
			if (*s++ != ':') {
				return NULL;
			}
		}
		s = value(s, depth + 1);
		if (!s) {
			return NULL;
		}
		s = ws(s);
		if (*s == close) {
			return s + 1;
		}
		if (*s++ != ',') {
			return NULL;
		}
	}
}

static const char *value(const char *s, int depth)
{
	s = ws(s);
	if (depth > 64) {
		return NULL;
	}
	switch (*s) {
	case '{':
		return members(s, '}', depth);
	case '[':
		return members(s, ']', depth);
	case '"':
		return string(s);
	case 't':
		return strncmp(s, "true", 4) == 0 ? s + 4 : NULL;
	case 'f':
		return strncmp(s, "false", 5) == 0 ? s + 5 : NULL;
	case 'n':
		return strncmp(s, "null", 4) == 0 ? s + 4 : NULL;
	default:
		return number(s);
	}
}

/* One JSON document followed by exactly one newline. */
static bool json_valid(const char *doc)
{
	const char *end = value(doc, 0);

	return end && strcmp(end, "\n") == 0;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* ------------------------------------------------------------------------------------ */
/* Fixtures */

static struct dt_task_info ping_task(void)
{
	struct dt_task_info t;

	memset(&t, 0, sizeof(t));
	t.id = 3;
	t.state = DT_TASK_RUNNING;
	t.spec.flags = DT_TASK_F_ANYPORT;
	t.spec.tuple.saddr = htonl(0x0a640001);
	t.spec.tuple.daddr = htonl(0x0a640002);
	t.spec.tuple.proto = IPPROTO_ICMP;
	t.spec.tuple.vni = 100;
	t.created_ns = 1700000000123456789ull;
	t.colored = 3;
	t.delivered = 2;
	snprintf(t.tenant, sizeof(t.tenant), "acme");
	t.spec.budget = 100;
	t.spec.duration_s = 60;
	t.spec.rate_pps = 10;
	t.status = DT_TS_OK;
	snprintf(t.status_text, sizeof(t.status_text),
		 "running: colored packets are being sampled");
	t.armed_ns = 1700000000223456789ull;
	return t;
}

static void set_ref(struct dt_hop_ref *r, const char *node, const char *ifname, uint8_t hook)
{
	snprintf(r->node, sizeof(r->node), "%s", node);
	snprintf(r->ifname, sizeof(r->ifname), "%s", ifname);
	r->hook = hook;
}

static void set_hop(struct dt_hop *h, const char *node, const char *ifname, uint8_t hook,
		    uint64_t ts)
{
	set_ref(&h->at, node, ifname, hook);
	h->ts_ns = ts;
}

/* n_packets packets: #0 four hops, #1 lost after uplink-out, the rest four hops. */
static void make_report(struct dt_report *r, uint32_t n_packets)
{
	uint32_t i;

	memset(r, 0, sizeof(*r));
	r->task = ping_task();
	r->n_packets = n_packets;
	r->packets = calloc(n_packets, sizeof(*r->packets));
	cr_assert_not_null(r->packets);
	for (i = 0; i < n_packets; i++) {
		struct dt_packet_path *p = &r->packets[i];
		uint64_t t = 1700000001000000000ull + i * 1000000ull;

		p->ip_id = 1000 + i;
		p->ident = 7u << 16 | (i + 1);
		p->len = 84;
		p->direction = DT_DIR_REQUEST;
		p->fate = i == 1 ? DT_FATE_VANISHED : DT_FATE_DELIVERED;
		p->datagram_fate = p->fate;
		p->tuple = r->task.spec.tuple;
		p->tuple.sport = htons(7);
		p->n_hops = i == 1 ? 2 : 4;
		p->hops = calloc(4, sizeof(*p->hops));
		cr_assert_not_null(p->hops);
		set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, t);
		set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT, t + 12300);
		/* h2's clock is behind: the cross-node latency comes out negative. */
		set_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN, t + 12300 - 4000);
		set_hop(&p->hops[3], "h2", "pt2", DT_HOOK_PORT_OUT, t + 12300 - 4000 + 3200);
		for (uint32_t k = 0; k < 4; k++) {
			p->hops[k].tuple = p->tuple;
			p->hops[k].parent = k ? (uint16_t)(k - 1) : DT_HOP_ROOT;
		}
		p->dest_known = 1;
		/* The first hop captured 98 bytes from the Ethernet header. */
		p->hops[0].cap_link = DT_CAP_ETH;
		p->hops[0].cap_len = 98;
	}
	r->n_stats = 3;
	r->stats = calloc(3, sizeof(*r->stats));
	cr_assert_not_null(r->stats);
	set_ref(&r->stats[0].from, "h1", "pt1", DT_HOOK_PORT_IN);
	set_ref(&r->stats[0].to, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	set_ref(&r->stats[1].from, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	set_ref(&r->stats[1].to, "h2", "ul0", DT_HOOK_UPLINK_IN);
	set_ref(&r->stats[2].from, "h2", "ul0", DT_HOOK_UPLINK_IN);
	set_ref(&r->stats[2].to, "h2", "pt2", DT_HOOK_PORT_OUT);
	r->stats[0].count = n_packets;
	r->stats[0].min_ns = 12300;
	r->stats[0].max_ns = 12300;
	r->stats[0].mean_ns = 12300.0;
	r->stats[0].stddev_ns = 0.0;
	r->stats[1].count = n_packets - 1;
	r->stats[2].count = n_packets - 1;
	r->stats[2].min_ns = 3100;
	r->stats[2].max_ns = 3300;
	r->stats[2].mean_ns = 3200.0;
	r->stats[2].stddev_ns = 81.64965809277261;
	r->lost[DT_LOSS_RING_FULL] = 11;
	r->lost[DT_LOSS_QUEUE_FULL] = 22;
	r->lost[DT_LOSS_BAD_VERSION] = 33;
	r->lost[DT_LOSS_REJECTED] = 44;
	r->unmatched = 55;
	r->window_ms = 1000;
	r->verdict.judged = n_packets;
	r->verdict.delivered = n_packets - 1;
	r->verdict.vanished = 1;
	set_ref(&r->verdict.at, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "1 of %u packets vanished after h1/ul0 uplink-out (no drop seen)", n_packets);
}

static void free_report(struct dt_report *r)
{
	uint32_t i;

	for (i = 0; i < r->n_packets; i++) {
		free(r->packets[i].hops);
	}
	free(r->packets);
	free(r->stats);
	free(r->rows);
}

/* Renders with fn into a string the caller frees. */
#define RENDER(buf, call)                                                                          \
	do {                                                                                       \
		size_t len_;                                                                       \
		FILE *f = open_memstream(&(buf), &len_);                                           \
		cr_assert_not_null(f);                                                             \
		cr_assert_eq((call), 0);                                                           \
		cr_assert_eq(fclose(f), 0);                                                        \
	} while (0)

/* ------------------------------------------------------------------------------------ */

Test(render, validator_rejects_broken_json)
{
	/* The validator is part of what is tested: it must be able to say no. */
	cr_expect(json_valid("{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\u00e9\"}\n"));
	cr_expect_not(json_valid("{\"a\":[1,2}\n"));
	cr_expect_not(json_valid("{\"a\":1,}\n"));
	cr_expect_not(json_valid("{\"a\" 1}\n"));
	cr_expect_not(json_valid("{\"a\":\"x\ty\"}\n"));
	cr_expect_not(json_valid("{\"a\":\"\\x\"}\n"));
	cr_expect_not(json_valid("{\"a\":01}\n"));
	cr_expect_not(json_valid("{\"a\":1}{}\n"));
	cr_expect_not(json_valid("{\"a\":1}"));
}

Test(render, task_json)
{
	struct dt_task_info t = ping_task();
	char *out = NULL;

	RENDER(out, dt_render_task_json(f, &t));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_str_eq(out, "{\"id\":3,\"state\":\"running\",\"flow\":{\"src\":\"10.100.0.1\","
			      "\"dst\":\"10.100.0.2\",\"sport\":null,\"dport\":null,"
			      "\"proto\":\"icmp\",\"vni\":100,\"any_port\":true,"
			      "\"direction\":\"request\"},"
			      "\"created_ns\":1700000000123456789,\"colored\":3,"
			      "\"delivered\":2,\"tenant\":\"acme\","
			      "\"limits\":{\"budget\":100,\"duration_s\":60,\"rate_pps\":10},"
			      "\"status\":\"ok\","
			      "\"status_text\":\"running: colored packets are being sampled\","
			      "\"armed_ns\":1700000000223456789,\"ended_ns\":null}\n");
	free(out);
}

Test(render, task_json_with_ports)
{
	struct dt_task_info t = ping_task();
	char *out = NULL;

	t.spec.flags = 0;
	t.spec.tuple.proto = IPPROTO_TCP;
	t.spec.tuple.sport = htons(40000);
	t.spec.tuple.dport = htons(5201);
	t.state = DT_TASK_NEW;
	RENDER(out, dt_render_task_json(f, &t));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(strstr(out, "\"sport\":40000,\"dport\":5201,\"proto\":\"tcp\""), "%s",
			   out);
	cr_expect_not_null(strstr(out, "\"any_port\":false"), "%s", out);
	cr_expect_not_null(strstr(out, "\"state\":\"new\""), "%s", out);
	free(out);
}

Test(render, task_text)
{
	struct dt_task_info t = ping_task();
	char *out = NULL;

	RENDER(out, dt_render_task_text(f, &t));
	cr_expect_not_null(strstr(out, "task 3 (running): 10.100.0.1 -> 10.100.0.2 icmp vni 100"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "any port"), "%s", out);
	cr_expect_not_null(strstr(out, "created 2023-11-14T22:13:20.123Z"), "%s", out);
	cr_expect_not_null(strstr(out, "colored 3, delivered 2 (66.7%)"), "%s", out);
	free(out);
}

Test(render, report_json)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r, 3);
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	/* The document names its schema first (report/report.schema.json). */
	cr_expect_eq(strncmp(out,
			     "{\"schema\":\"dyetrace.report\",\"schema_version\":2,"
			     "\"task\":{\"id\":3,",
			     62),
		     0, "%s", out);
	cr_expect_eq(count(out, "\"ip_id\":"), 3);
	cr_expect_not_null(
		strstr(out,
		       "\"packets\":[{\"ip_id\":1000,\"ident\":458753,\"len\":84,"
		       "\"direction\":\"request\",\"fate\":\"delivered\","
		       "\"flow\":{\"src\":\"10.100.0.1\",\"dst\":\"10.100.0.2\","
		       "\"sport\":7,\"dport\":0,\"proto\":\"icmp\",\"vni\":100},"
		       "\"drop\":null,\"destination_known\":true,\"copies\":0,"
		       "\"fragment\":null,\"datagram_fate\":\"delivered\","
		       "\"hops\":[{\"node\":\"h1\",\"ifname\":\"pt1\","
		       "\"hook\":\"port-in\",\"ts_ns\":1700000001000000000,"
		       "\"parent\":null,\"latency_ns\":null,\"branch\":\"destination\",\"refragmented\":false,\"cap_len\":98},{\"node\":\"h1\","
		       "\"ifname\":\"ul0\",\"hook\":\"uplink-out\","
		       "\"ts_ns\":1700000001000012300,\"parent\":0,\"latency_ns\":12300,"
		       "\"branch\":\"destination\",\"refragmented\":false,"
		       "\"cap_len\":0},{\"node\":\"h2\",\"ifname\":\"ul0\","
		       "\"hook\":\"uplink-in\",\"ts_ns\":1700000001000008300,"
		       "\"parent\":1,\"latency_ns\":-4000,\"branch\":\"destination\",\"refragmented\":false,\"cap_len\":0},{\"node\":\"h2\","
		       "\"ifname\":\"pt2\",\"hook\":\"port-out\","
		       "\"ts_ns\":1700000001000011500,\"parent\":2,\"latency_ns\":3200,"
		       "\"branch\":\"destination\",\"refragmented\":false,"
		       "\"cap_len\":0}]}"),
		"%s", out);
	cr_expect_not_null(
		strstr(out, "\"hop_latency\":[{\"from\":{\"node\":\"h1\",\"ifname\":"
			    "\"pt1\",\"hook\":\"port-in\"},\"to\":{\"node\":\"h1\","
			    "\"ifname\":\"ul0\",\"hook\":\"uplink-out\"},\"count\":3,"
			    "\"min_ns\":12300,\"max_ns\":12300,\"mean_ns\":12300.000,"
			    "\"stddev_ns\":0.000,\"variance_ns2\":0.000,\"branch\":\"destination\","
			    "\"direction\":\"request\"}"),
		"%s", out);
	cr_expect_not_null(strstr(out, "\"count\":2,\"min_ns\":3100,\"max_ns\":3300,"
				       "\"mean_ns\":3200.000,\"stddev_ns\":81.650,"
				       "\"variance_ns2\":6666.667,\"branch\":\"destination\","
				       "\"direction\":\"request\"}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"lost\":{\"ring-full\":11,\"queue-full\":22,"
				       "\"bad-version\":33,\"rejected\":44"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "},\"unmatched\":55,\"window_ms\":1000,"
				       "\"clock_note\":\"latency between hops"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"fate\":\"vanished\""), "%s", out);
	cr_expect_eq(count(out, "\"flow\":"), 4, "task and packets only, no hop differs: %s", out);
	free(out);
	free_report(&r);
}

Test(render, report_json_names_its_schema_and_captures)
{
	struct dt_report r;
	char *out = NULL;

	memset(&r, 0, sizeof(r));
	r.task = ping_task();
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_eq(count(out, "\"schema_version\":2,"), 1, "%s", out);
	cr_expect_eq(count(out, "\"schema\":\"dyetrace.report\","), 1, "%s", out);
	free(out);

	/* Nothing captured is 0 bytes, whatever cap_len holds. */
	make_report(&r, 1);
	r.packets[0].hops[1].cap_len = 50;
	r.packets[0].hops[2].cap_link = DT_CAP_IPV4;
	r.packets[0].hops[2].cap_len = 40;
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"latency_ns\":null,\"branch\":\"destination\",\"refragmented\":false,\"cap_len\":98}"),
		"%s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"latency_ns\":12300,\"branch\":\"destination\",\"refragmented\":false,\"cap_len\":0}"),
		"%s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"latency_ns\":-4000,\"branch\":\"destination\",\"refragmented\":false,\"cap_len\":40}"),
		"%s", out);
	cr_expect_eq(count(out, "\"cap_len\":"), 4, "%s", out);
	free(out);
	free_report(&r);
}

Test(render, report_json_lists_every_packet)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r, 25);
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_eq(count(out, "\"ip_id\":"), 25);
	cr_expect_eq(count(out, "\"latency_ns\":null"), 25);
	free(out);
	free_report(&r);
}

Test(render, report_json_empty)
{
	struct dt_report r;
	char *out = NULL;

	memset(&r, 0, sizeof(r));
	r.task = ping_task();
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"packets\":[],\"hop_latency\":[],\"hops\":[],\"copies\":[],\"lost\":{"),
		"%s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"verdict\":{\"sentence\":\"\",\"judged\":0,"
		       "\"delivered\":0,\"dropped\":0,\"vanished\":0,"
		       "\"in_flight\":0,\"at\":null,\"reason\":\"\",\"destination_unknown\":0}"),
		"%s", out);
	free(out);
}

Test(render, strings_are_escaped)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r, 1);
	/* Quote, backslash, control character, valid UTF-8, a stray byte. */
	snprintf(r.packets[0].hops[0].at.node, DT_NAME_MAX, "a\"b\\c\x01h\xc3\xb4te\xff");
	snprintf(r.packets[0].hops[1].at.ifname, DT_IFNAME_MAX, "\xe2\x82");
	/* A name that fills its array without a NUL. */
	memset(r.stats[0].from.node, 'x', DT_NAME_MAX);
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(strstr(out, "\"node\":\"a\\\"b\\\\c\\u0001h\xc3\xb4te\\ufffd\""), "%s",
			   out);
	cr_expect_not_null(strstr(out, "\"ifname\":\"\\ufffd\\ufffd\""), "%s", out);
	cr_expect_eq(
		count(out, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""), 1,
		"%s", out);
	free(out);
	free_report(&r);
}

Test(render, non_finite_numbers_are_null)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r, 1);
	r.stats[0].mean_ns = 0.0 / 0.0;
	r.stats[0].stddev_ns = 1.0 / 0.0;
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(strstr(out, "\"mean_ns\":null,\"stddev_ns\":null"), "%s", out);
	free(out);
	free_report(&r);
}

Test(render, error_json)
{
	char *out = NULL;

	RENDER(out, dt_render_error_json(f, "not-found", "no task 7 \"here\""));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_str_eq(out, "{\"error\":{\"status\":\"not-found\","
			      "\"message\":\"no task 7 \\\"here\\\"\"}}\n");
	free(out);
}

/* Position of needle in hay after from, or fail. */
static const char *after(const char *hay, const char *from, const char *needle)
{
	const char *p = strstr(from, needle);

	cr_assert_not_null(p, "\"%s\" missing after offset %td in:\n%s", needle, from - hay, hay);
	return p + strlen(needle);
}

Test(render, report_text)
{
	struct dt_report r;
	char *out = NULL;
	const char *p;

	make_report(&r, 3);
	RENDER(out, dt_render_report_text(f, &r, DT_RENDER_TEXT_PACKETS));
	p = after(out, out, "task 3 (running): 10.100.0.1 -> 10.100.0.2 icmp vni 100");
	p = after(out, p, "colored 3, delivered 2 (66.7%)");
	/* The verdict before any table. */
	p = after(out, p,
		  "verdict: 1 of 3 packets vanished after h1/ul0 uplink-out (no drop seen)\n");
	p = after(out, p, "judged 3: delivered 2, dropped 0, vanished 1; in flight 0\n");
	p = after(out, p, "ring-full 11, queue-full 22, bad-version 33, rejected 44");
	p = after(out, p, "matched no task (any tenant): 55; analysis window 1000 ms\n");
	p = after(out, p, "per-hop loss: no hops seen");
	/* The latency table, in path order, in microseconds, with the variance. */
	p = after(out, p, "variance");
	p = after(out, p, "h1/pt1 port-in -> h1/ul0 uplink-out");
	p = after(out, p, "       3       12.3       12.3       12.3        0.0          0.0\n");
	p = after(out, p, "h1/ul0 uplink-out -> h2/ul0 uplink-in");
	p = after(out, p, "h2/ul0 uplink-in -> h2/pt2 port-out");
	p = after(out, p, "       2        3.1        3.2        3.3        0.1          0.0\n");
	/* The first packet's hops in order, with their latency. */
	p = after(out, p, "packets: 3\n");
	p = after(out, p, "#1 request ip_id 1000");
	p = after(out, p, ", delivered\n");
	p = after(out, p, "flow 10.100.0.1 -> 10.100.0.2 icmp id 7 vni 100\n");
	p = after(out, p, "h1/pt1 port-in");
	p = after(out, p, "+0.0\u00b5s");
	p = after(out, p, "-> h1/ul0 uplink-out");
	p = after(out, p, "+12.3\u00b5s");
	p = after(out, p, "-> h2/ul0 uplink-in");
	p = after(out, p, "-4.0\u00b5s  (clock skew)");
	p = after(out, p, "-> h2/pt2 port-out");
	p = after(out, p, "+3.2\u00b5s");
	/* The second was lost after leaving h1. */
	p = after(out, p, "#2 request ip_id 1001");
	p = after(out, p, "vanished: last seen at h1/ul0 uplink-out, no drop seen");
	p = after(out, p, "#3 request ip_id 1002");
	p = after(out, p,
		  "note: latency between hops on different nodes depends on their "
		  "clocks being in sync");
	cr_expect_null(strstr(out, "omitted"), "%s", out);
	cr_expect_eq(count(out, "vanished: last seen"), 1, "%s", out);
	cr_expect_null(strstr(out, "  as "), "no hop differs from its packet: %s", out);
	free(out);
	free_report(&r);
}

Test(render, report_text_limits_packets)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r, 25);
	RENDER(out, dt_render_report_text(f, &r, DT_RENDER_TEXT_PACKETS));
	cr_expect_not_null(strstr(out, "packets: 25, the first 20 listed, 5 omitted"), "%s", out);
	cr_expect_not_null(strstr(out, "#20 request ip_id 1019"), "%s", out);
	cr_expect_null(strstr(out, "#21 "), "%s", out);
	free(out);

	RENDER(out, dt_render_report_text(f, &r, 0));
	cr_expect_not_null(strstr(out, "#25 request ip_id 1024"), "%s", out);
	cr_expect_null(strstr(out, "omitted"), "%s", out);
	free(out);
	free_report(&r);
}

Test(render, write_errors_are_reported)
{
	struct dt_task_info t = ping_task();
	FILE *f = fopen("/dev/null", "r");

	cr_assert_not_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	cr_expect_eq(dt_render_task_json(f, &t), -EIO);
	cr_expect_eq(dt_render_task_text(f, &t), -EIO);
	fclose(f);
}

/* ------------------------------------------------------------------------------------ */
/* Loss diagnosis: a request through the gateway gw dropped after SNAT, and its rows. */

static void make_nat_report(struct dt_report *r)
{
	struct dt_packet_path *p;

	memset(r, 0, sizeof(*r));
	r->task = ping_task();
	r->task.spec.flags = DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH;
	r->task.spec.tuple.daddr = htonl(0xcb00710a); /* 203.0.113.10 */
	r->n_packets = 1;
	r->packets = calloc(1, sizeof(*r->packets));
	cr_assert_not_null(r->packets);
	p = r->packets;
	p->ip_id = 77;
	p->ident = 5;
	p->len = 84;
	p->direction = DT_DIR_REQUEST;
	p->fate = DT_FATE_DROPPED;
	p->datagram_fate = p->fate;
	p->tuple = r->task.spec.tuple;
	p->tuple.sport = htons(7);
	p->drop_reason = 6;
	snprintf(p->drop_name, sizeof(p->drop_name), "NETFILTER_DROP");
	snprintf(p->drop_where, sizeof(p->drop_where), "nf_hook_slow+0x8c");
	p->n_hops = 3;
	p->hops = calloc(3, sizeof(*p->hops));
	cr_assert_not_null(p->hops);
	set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, 1000);
	set_hop(&p->hops[1], "gw", "ul0", DT_HOOK_UPLINK_IN, 2000);
	set_hop(&p->hops[2], "gw", "ext0", DT_HOOK_DROP, 2500);
	p->hops[0].tuple = p->hops[1].tuple = p->tuple;
	p->hops[2].tuple = p->tuple;
	p->hops[0].parent = DT_HOP_ROOT;
	p->hops[1].parent = 0;
	p->hops[2].parent = 1;
	p->hops[2].drop_reason = p->drop_reason;
	snprintf(p->hops[2].drop_name, sizeof(p->hops[2].drop_name), "%s", p->drop_name);
	snprintf(p->hops[2].drop_where, sizeof(p->hops[2].drop_where), "%s", p->drop_where);
	p->dest_known = 1;
	/* Masqueraded behind 203.0.113.1; the NAT kept the id (it does when it can). */
	p->hops[2].tuple.saddr = htonl(0xcb007101);

	r->n_rows = 2;
	r->rows = calloc(2, sizeof(*r->rows));
	cr_assert_not_null(r->rows);
	set_ref(&r->rows[0].at, "gw", "ul0", DT_HOOK_UPLINK_IN);
	r->rows[0].direction = DT_DIR_REQUEST;
	r->rows[0].seen = 40;
	r->rows[0].dropped = 30;
	r->rows[0].vanished = 2;
	snprintf(r->rows[0].top_reason, sizeof(r->rows[0].top_reason), "NETFILTER_DROP");
	set_ref(&r->rows[1].at, "h1", "pt1", DT_HOOK_PORT_OUT);
	r->rows[1].direction = DT_DIR_REPLY;
	r->rows[1].seen = 8;

	r->verdict.judged = 40;
	r->verdict.delivered = 8;
	r->verdict.dropped = 30;
	r->verdict.vanished = 2;
	r->verdict.in_flight = 1;
	set_ref(&r->verdict.at, "gw", "ext0", DT_HOOK_DROP);
	snprintf(r->verdict.reason, sizeof(r->verdict.reason), "NETFILTER_DROP");
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "30 of 40 packets dropped at gw/ext0 (after gw/ul0 uplink-in), reason "
		 "NETFILTER_DROP; 2 more lost elsewhere; 1 in flight");
	r->unmatched = 3;
	r->window_ms = 250;
}

Test(render, loss_diagnosis_json)
{
	struct dt_report r;
	char *out = NULL;

	make_nat_report(&r);
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(strstr(out, "\"any_port\":true,\"direction\":\"both\"}"), "%s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"verdict\":{\"sentence\":\"30 of 40 packets dropped at gw/ext0 (after "
		       "gw/ul0 uplink-in), reason NETFILTER_DROP; 2 more lost elsewhere; 1 in "
		       "flight\",\"judged\":40,\"delivered\":8,\"dropped\":30,\"vanished\":2,"
		       "\"in_flight\":1,\"at\":{\"node\":\"gw\",\"ifname\":\"ext0\","
		       "\"hook\":\"drop\"},\"reason\":\"NETFILTER_DROP\",\"destination_unknown\":0}"),
		"%s", out);
	cr_expect_not_null(strstr(out,
				  "\"direction\":\"request\",\"fate\":\"dropped\","
				  "\"flow\":{\"src\":\"10.100.0.1\",\"dst\":\"203.0.113.10\","
				  "\"sport\":7,\"dport\":0,\"proto\":\"icmp\",\"vni\":100},"
				  "\"drop\":{\"reason\":6,\"name\":\"NETFILTER_DROP\","
				  "\"where\":\"nf_hook_slow+0x8c\"},\"destination_known\":true,"
				  "\"copies\":0,\"fragment\":null,\"datagram_fate\":\"dropped\","
				  "\"hops\":["),
			   "%s", out);
	/* Only the hop after the NAT has a flow of its own. */
	cr_expect_eq(count(out, "\"flow\":"), 3, "%s", out);
	cr_expect_not_null(
		strstr(out, "\"hook\":\"drop\",\"ts_ns\":2500,\"parent\":1,"
			    "\"latency_ns\":500,\"branch\":\"destination\",\"refragmented\":false,"
			    "\"drop\":{\"reason\":6,\"name\":\"NETFILTER_DROP\","
			    "\"where\":\"nf_hook_slow+0x8c\"},"
			    "\"cap_len\":0,\"flow\":{\"src\":\"203.0.113.1\","
			    "\"dst\":\"203.0.113.10\",\"sport\":7,\"dport\":0,"
			    "\"proto\":\"icmp\",\"vni\":100}}"),
		"%s", out);
	cr_expect_not_null(strstr(out,
				  "\"hops\":[{\"node\":\"gw\",\"ifname\":\"ul0\","
				  "\"hook\":\"uplink-in\",\"direction\":\"request\","
				  "\"seen\":40,\"dropped\":30,\"vanished\":2,\"loss_rate\":0.800,"
				  "\"top_reason\":\"NETFILTER_DROP\"},{\"node\":\"h1\","
				  "\"ifname\":\"pt1\",\"hook\":\"port-out\",\"direction\":"
				  "\"reply\",\"seen\":8,\"dropped\":0,\"vanished\":0,"
				  "\"loss_rate\":0.000,\"top_reason\":\"\"}]"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"unmatched\":3,\"window_ms\":250,"), "%s", out);
	free(out);
	free_report(&r);
}

Test(render, loss_diagnosis_text)
{
	struct dt_report r;
	char *out = NULL;
	const char *p;

	make_nat_report(&r);
	r.stats = calloc(1, sizeof(*r.stats));
	cr_assert_not_null(r.stats);
	r.n_stats = 1;
	set_ref(&r.stats[0].from, "h1", "pt1", DT_HOOK_PORT_IN);
	set_ref(&r.stats[0].to, "gw", "ul0", DT_HOOK_UPLINK_IN);
	r.stats[0].count = 4;
	r.stats[0].min_ns = 1000;
	r.stats[0].max_ns = 7000;
	r.stats[0].mean_ns = 4000.0;
	r.stats[0].stddev_ns = 2500.0; /* 2.5 us: variance 6.25 us^2 */
	RENDER(out, dt_render_report_text(f, &r, 0));
	p = after(out, out, "10.100.0.1 -> 203.0.113.10 icmp vni 100, any port, direction both\n");
	p = after(out, p,
		  "verdict: 30 of 40 packets dropped at gw/ext0 (after gw/ul0 uplink-in), "
		  "reason NETFILTER_DROP; 2 more lost elsewhere; 1 in flight\n");
	p = after(out, p, "  judged 40: delivered 8, dropped 30, vanished 2; in flight 1\n");
	p = after(out, p, "analysis window 250 ms");
	p = after(out, p, "per-hop loss:\n");
	p = after(out, p,
		  "  request   gw/ul0 uplink-in       40       30        2   80.0%  "
		  "NETFILTER_DROP\n");
	p = after(out, p, "  reply     h1/pt1 port-out         8        0        0    0.0%  \n");
	p = after(out, p, "hop latency");
	p = after(out, p, "       4        1.0        4.0        7.0        2.5          6.2\n");
	p = after(out, p, "#1 request ip_id 77 ident 0x00000005 len 84, ");
	p = after(out, p, ", dropped\n");
	p = after(out, p, "   flow 10.100.0.1 -> 203.0.113.10 icmp id 7 vni 100\n");
	p = after(out, p, "gw/ul0  uplink-in");
	p = after(out, p, "gw/ext0 drop");
	p = after(out, p,
		  "  as 203.0.113.1 -> 203.0.113.10 icmp id 7 vni 100 "
		  "(src 10.100.0.1 becomes 203.0.113.1)\n");
	p = after(out, p, "  dropped: reason NETFILTER_DROP (6) in nf_hook_slow+0x8c\n");
	cr_expect_eq(count(out, "  as "), 1, "only the translated hop: %s", out);
	free(out);
	free_report(&r);
}

Test(render, in_flight_and_unnamed_drops_in_text)
{
	struct dt_report r;
	char *out = NULL;

	make_nat_report(&r);
	r.packets[0].drop_name[0] = '\0';
	r.packets[0].drop_where[0] = '\0';
	r.packets[0].drop_reason = 99;
	RENDER(out, dt_render_report_text(f, &r, 0));
	cr_expect_not_null(strstr(out, "  dropped: reason unnamed (99)\n"), "%s", out);
	free(out);
	r.packets[0].fate = DT_FATE_IN_FLIGHT;
	RENDER(out, dt_render_report_text(f, &r, 0));
	cr_expect_not_null(strstr(out, ", in-flight\n"), "%s", out);
	cr_expect_not_null(strstr(out, "  in flight: last seen at gw/ext0 drop, within the "
				       "analysis window\n"),
			   "%s", out);
	cr_expect_null(strstr(out, "  dropped: "), "%s", out);
	free(out);
	free_report(&r);
}

Test(render, task_directions)
{
	struct dt_task_info t = ping_task();
	char *out = NULL;

	t.spec.flags = DT_TASK_F_ANYPORT | DT_TASK_DIR_REPLY;
	RENDER(out, dt_render_task_json(f, &t));
	cr_expect_not_null(strstr(out, "\"any_port\":true,\"direction\":\"reply\"}"), "%s", out);
	free(out);
	RENDER(out, dt_render_task_text(f, &t));
	cr_expect_not_null(strstr(out, "icmp vni 100, any port, direction reply\n"), "%s", out);
	free(out);
	t.spec.flags = DT_TASK_DIR_REQUEST;
	RENDER(out, dt_render_task_json(f, &t));
	cr_expect_not_null(strstr(out, "\"direction\":\"request\"}"), "%s", out);
	free(out);
}

Test(render, task_list_json_and_text)
{
	struct dt_task_info v[2] = {ping_task(), ping_task()};
	struct dt_task_list l = {.n_tasks = 2, .tasks = v};
	struct dt_task_list empty = {0};
	char *out = NULL;

	v[1].id = 4;
	v[1].state = DT_TASK_FAILED;
	v[1].status = DT_TS_NO_HOST;
	v[1].ended_ns = 1700000001000000000ull;
	RENDER(out, dt_render_task_list_json(f, &l));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect(strncmp(out, "{\"tasks\":[{\"id\":3,", 18) == 0, "%s", out);
	cr_expect(strstr(out, "},{\"id\":4,\"state\":\"failed\""), "%s", out);
	cr_expect(strstr(out, "\"status\":\"no-host\""), "%s", out);
	cr_expect(strstr(out, "\"ended_ns\":1700000001000000000}]}\n"), "%s", out);
	free(out);
	RENDER(out, dt_render_task_list_json(f, &empty));
	cr_expect_str_eq(out, "{\"tasks\":[]}\n");
	free(out);
	RENDER(out, dt_render_task_list_text(f, &l));
	cr_expect(strstr(out, "ID  STATE"), "%s", out);
	cr_expect(strstr(out, "       4  failed     no-host"), "%s", out);
	free(out);
	RENDER(out, dt_render_task_list_text(f, &empty));
	cr_expect_str_eq(out, "no tasks\n");
	free(out);
}

Test(render, task_text_has_status_limits_and_times)
{
	struct dt_task_info t = ping_task();
	char *out = NULL;

	RENDER(out, dt_render_task_text(f, &t));
	cr_expect(strstr(out, "status ok: running: colored packets are being sampled\n"), "%s",
		  out);
	cr_expect(strstr(out, "tenant acme; limits: budget 100 packets per direction, duration "
			      "60 s, rate 10 packets/s\n"),
		  "%s", out);
	cr_expect(strstr(out, ", armed 2023-11-14T22:13:20.223Z, ended -\n"), "%s", out);
	free(out);
	RENDER(out, dt_render_task_change_text(f, 1700000000123456789ull, &t));
	cr_expect_str_eq(out, "2023-11-14T22:13:20.123Z task 3 running (ok): running: colored "
			      "packets are being sampled; colored 3\n");
	free(out);
}

/* A report whose missing packets crossed h2 while its agent was down: the windows. */
static void make_blind_report(struct dt_report *r)
{
	memset(r, 0, sizeof(*r));
	r->task = ping_task();
	r->verdict.judged = 150;
	r->verdict.delivered = 98;
	r->verdict.unobserved = 52;
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "no loss: 98 of 150 packets delivered; 52 packets unobserved at h2 (agent crashed "
		 "between 2026-12-07T20:41:02.123Z and 2026-12-07T20:41:04.456Z, 3 samples lost)");
	r->n_blind = 2;
	r->blind = calloc(r->n_blind, sizeof(*r->blind));
	cr_assert_not_null(r->blind);
	strcpy(r->blind[0].node, "h2");
	r->blind[0].gap = (struct dt_gap){.from_ns = 1796676062123000000ull,
					  .to_ns = 1796676064456000000ull,
					  .cause = DT_GAP_CRASHED,
					  .lost = 3};
	r->blind[0].packets = 51;
	strcpy(r->blind[1].node, "h2");
	r->blind[1].gap = (struct dt_gap){.from_ns = 1796676070000000000ull,
					  .to_ns = 1796676071000000000ull,
					  .cause = DT_GAP_STOPPED,
					  .flags = DT_GAP_F_LOST_UNKNOWN};
	r->blind[1].packets = 1;
}

Test(render, unobserved_windows_text)
{
	struct dt_report r;
	char *out = NULL;

	make_blind_report(&r);
	RENDER(out, dt_render_report_text(f, &r, 0));
	cr_expect_not_null(strstr(out, "  judged 150: delivered 98, dropped 0, vanished 0, "
				       "unobserved 52; in flight 0\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\nunobserved: nodes not observing when these packets would "
				       "have crossed them (no loss):\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "  h2   2026-12-07T20:41:02.123Z 2026-12-07T20:41:04.456Z "
				       "agent crashed                3       51\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "agent stopped          unknown        1\n"), "%s", out);
	free(out);
	/* Without windows, the lines of before. */
	r.n_blind = 0;
	r.verdict.unobserved = 0;
	strcpy(r.verdict.sentence, "no loss: 98 of 98 packets delivered");
	RENDER(out, dt_render_report_text(f, &r, 0));
	cr_expect_null(strstr(out, "unobserved"), "%s", out);
	free(out);
	free(r.blind);
}

Test(render, unobserved_windows_json)
{
	struct dt_report r;
	char *out = NULL;

	make_blind_report(&r);
	RENDER(out, dt_render_report_json(f, &r));
	cr_assert(json_valid(out), "invalid JSON: %s", out);
	cr_expect_not_null(
		strstr(out,
		       "\"unobserved\":{\"packets\":52,\"windows\":[{\"node\":\"h2\","
		       "\"from_ns\":1796676062123000000,\"to_ns\":1796676064456000000,"
		       "\"cause\":\"crashed\",\"samples_lost\":3,\"samples_lost_unknown\":false,"
		       "\"packets\":51},{"),
		"%s", out);
	cr_expect_not_null(strstr(out, "\"cause\":\"stopped\",\"samples_lost\":0,"
				       "\"samples_lost_unknown\":true,\"packets\":1}]}}"),
			   "%s", out);
	free(out);
	free(r.blind);
}
