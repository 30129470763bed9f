// SPDX-License-Identifier: MIT
/*
 * test_render.c - text and JSON output of tasks, reports and errors (analyzer/render.c).
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
		p->n_hops = i == 1 ? 2 : 4;
		p->hops = calloc(4, sizeof(*p->hops));
		cr_assert_not_null(p->hops);
		set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, t);
		set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT, t + 12300);
		/* h2's clock is behind: the cross-node latency comes out negative. */
		set_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN, t + 12300 - 4000);
		set_hop(&p->hops[3], "h2", "pt2", DT_HOOK_PORT_OUT, t + 12300 - 4000 + 3200);
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
}

static void free_report(struct dt_report *r)
{
	uint32_t i;

	for (i = 0; i < r->n_packets; i++) {
		free(r->packets[i].hops);
	}
	free(r->packets);
	free(r->stats);
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
			      "\"proto\":\"icmp\",\"vni\":100,\"any_port\":true},"
			      "\"created_ns\":1700000000123456789,\"colored\":3,"
			      "\"delivered\":2}\n");
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
	cr_expect_eq(strncmp(out, "{\"task\":{\"id\":3,", 16), 0, "%s", out);
	cr_expect_eq(count(out, "\"ip_id\":"), 3);
	cr_expect_not_null(strstr(out, "\"packets\":[{\"ip_id\":1000,\"ident\":458753,\"len\":84,"
				       "\"hops\":[{\"node\":\"h1\",\"ifname\":\"pt1\","
				       "\"hook\":\"port-in\",\"ts_ns\":1700000001000000000,"
				       "\"latency_ns\":null},{\"node\":\"h1\",\"ifname\":\"ul0\","
				       "\"hook\":\"uplink-out\",\"ts_ns\":1700000001000012300,"
				       "\"latency_ns\":12300},{\"node\":\"h2\",\"ifname\":\"ul0\","
				       "\"hook\":\"uplink-in\",\"ts_ns\":1700000001000008300,"
				       "\"latency_ns\":-4000},{\"node\":\"h2\",\"ifname\":\"pt2\","
				       "\"hook\":\"port-out\",\"ts_ns\":1700000001000011500,"
				       "\"latency_ns\":3200}]}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"hop_latency\":[{\"from\":{\"node\":\"h1\",\"ifname\":"
				       "\"pt1\",\"hook\":\"port-in\"},\"to\":{\"node\":\"h1\","
				       "\"ifname\":\"ul0\",\"hook\":\"uplink-out\"},\"count\":3,"
				       "\"min_ns\":12300,\"max_ns\":12300,\"mean_ns\":12300.000,"
				       "\"stddev_ns\":0.000}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"count\":2,\"min_ns\":3100,\"max_ns\":3300,"
				       "\"mean_ns\":3200.000,\"stddev_ns\":81.650}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"lost\":{\"ring-full\":11,\"queue-full\":22,"
				       "\"bad-version\":33,\"rejected\":44},\"clock_note\":\"latency between hops"),
			   "%s", out);
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
	cr_expect_not_null(strstr(out, "\"packets\":[],\"hop_latency\":[],\"lost\":{"), "%s", out);
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
	p = after(out, p, "ring-full 11, queue-full 22, bad-version 33, rejected 44");
	/* The latency table, in path order, in microseconds. */
	p = after(out, p, "h1/pt1 port-in -> h1/ul0 uplink-out");
	p = after(out, p, "       3       12.3       12.3       12.3        0.0\n");
	p = after(out, p, "h1/ul0 uplink-out -> h2/ul0 uplink-in");
	p = after(out, p, "h2/ul0 uplink-in -> h2/pt2 port-out");
	p = after(out, p, "       2        3.1        3.2        3.3        0.1\n");
	/* The first packet's hops in order, with their latency. */
	p = after(out, p, "packets: 3\n");
	p = after(out, p, "#1 ip_id 1000");
	p = after(out, p, "h1/pt1 port-in");
	p = after(out, p, "+0.0\u00b5s");
	p = after(out, p, "-> h1/ul0 uplink-out");
	p = after(out, p, "+12.3\u00b5s");
	p = after(out, p, "-> h2/ul0 uplink-in");
	p = after(out, p, "-4.0\u00b5s  (clock skew)");
	p = after(out, p, "-> h2/pt2 port-out");
	p = after(out, p, "+3.2\u00b5s");
	/* The second was lost after leaving h1. */
	p = after(out, p, "#2 ip_id 1001");
	p = after(out, p, "not delivered: last seen at h1/ul0 uplink-out");
	p = after(out, p, "#3 ip_id 1002");
	p = after(out, p,
		  "note: latency between hops on different nodes depends on their "
		  "clocks being in sync");
	cr_expect_null(strstr(out, "omitted"), "%s", out);
	cr_expect_eq(count(out, "not delivered"), 1, "%s", out);
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
	cr_expect_not_null(strstr(out, "#20 ip_id 1019"), "%s", out);
	cr_expect_null(strstr(out, "#21 "), "%s", out);
	free(out);

	RENDER(out, dt_render_report_text(f, &r, 0));
	cr_expect_not_null(strstr(out, "#25 ip_id 1024"), "%s", out);
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
