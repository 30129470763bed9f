// SPDX-License-Identifier: MIT
/*
 * test_render_exports.c - the report as a Graphviz digraph, as SVG through dot, and as
 * an HTML page (report/render_graph.c, report/render_html.c).
 *
 * The fixture is the firewall scenario of test/lab/test_loss_firewall.sh, with a reply:
 * three echo requests h1 -> h2, two dropped by a rule on h2 (NETFILTER_DROP) after h2's
 * uplink, one delivered, and one reply delivered back. The copy fixture (make_copy_report)
 * is a flood lab's: each request to h3 copied to h2 too, whose bridge filtered its copy.
 * Tests that need Graphviz's dot fail when it is not installed (packaging/setup.sh
 * installs it); the others never run it. The JSON of both fixtures is validated against
 * report/report.schema.json with Debian's python3-jsonschema, as test/lab/test_exports.sh
 * validates a real trace's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include <criterion/criterion.h>

#include "render.h"
#include "render_graph.h"
#include "render_html.h"

#define T0 1700000001000000000ull

static void set_ref(struct dt_hop_ref *r, const char *node, const char *ifname, uint8_t hook)
{
	snprintf(r->node, sizeof(r->node), "%s", node);
	snprintf(r->ifname, sizeof(r->ifname), "%s", ifname);
	r->hook = hook;
}

/* Packet i of the fixture: 0 delivered, 1 and 2 dropped (requests), 3 a reply. */
static void make_packet(struct dt_report *r, uint32_t i)
{
	struct dt_packet_path *p = &r->packets[i];
	uint64_t t = T0 + i * 1000000ull;
	bool reply = i == 3, drop = i == 1 || i == 2;

	p->ip_id = (uint16_t)(500 + i);
	p->ident = i + 1;
	p->len = 84;
	p->direction = reply ? DT_DIR_REPLY : DT_DIR_REQUEST;
	p->fate = drop ? DT_FATE_DROPPED : DT_FATE_DELIVERED;
	p->datagram_fate = p->fate;
	p->tuple = r->task.spec.tuple;
	p->tuple.sport = htons(7);
	p->n_hops = 4;
	p->hops = calloc(4, sizeof(*p->hops));
	cr_assert_not_null(p->hops);
	if (reply) {
		set_ref(&p->hops[0].at, "h2", "pt1", DT_HOOK_PORT_IN);
		set_ref(&p->hops[1].at, "h2", "ul0", DT_HOOK_UPLINK_OUT);
		set_ref(&p->hops[2].at, "h1", "ul0", DT_HOOK_UPLINK_IN);
		set_ref(&p->hops[3].at, "h1", "pt1", DT_HOOK_PORT_OUT);
	} else {
		set_ref(&p->hops[0].at, "h1", "pt1", DT_HOOK_PORT_IN);
		set_ref(&p->hops[1].at, "h1", "ul0", DT_HOOK_UPLINK_OUT);
		set_ref(&p->hops[2].at, "h2", "ul0", DT_HOOK_UPLINK_IN);
		set_ref(&p->hops[3].at, "h2", "pt1", drop ? DT_HOOK_DROP : DT_HOOK_PORT_OUT);
	}
	for (uint32_t k = 0; k < 4; k++) {
		p->hops[k].ts_ns = t + k * 30000ull;
		p->hops[k].tuple = p->tuple;
		p->hops[k].parent = k ? (uint16_t)(k - 1) : DT_HOP_ROOT;
	}
	p->dest_known = 1;
	p->hops[0].cap_link = DT_CAP_ETH;
	p->hops[0].cap_len = 98;
	if (drop) {
		p->drop_reason = 6;
		snprintf(p->drop_name, sizeof(p->drop_name), "NETFILTER_DROP");
		snprintf(p->drop_where, sizeof(p->drop_where), "nf_hook_slow+0x8c");
	}
}

static void set_row(struct dt_hop_row *row, const char *node, const char *ifname, uint8_t hook,
		    uint8_t dir, uint64_t seen, uint64_t dropped, const char *reason)
{
	set_ref(&row->at, node, ifname, hook);
	row->direction = dir;
	row->seen = seen;
	row->dropped = dropped;
	snprintf(row->top_reason, sizeof(row->top_reason), "%s", reason);
}

static void make_report(struct dt_report *r)
{
	memset(r, 0, sizeof(*r));
	r->task.id = 9;
	r->task.state = DT_TASK_DONE;
	r->task.spec.flags = DT_TASK_F_ANYPORT | DT_TASK_DIR_BOTH;
	r->task.spec.tuple.saddr = htonl(0x0a640001);
	r->task.spec.tuple.daddr = htonl(0x0a640002);
	r->task.spec.tuple.proto = IPPROTO_ICMP;
	r->task.spec.tuple.vni = 100;
	r->task.created_ns = T0 - 1000000000ull;
	snprintf(r->task.tenant, sizeof(r->task.tenant), "acme");
	snprintf(r->task.status_text, sizeof(r->task.status_text), "done: budget spent");

	r->n_packets = 4;
	r->packets = calloc(4, sizeof(*r->packets));
	cr_assert_not_null(r->packets);
	for (uint32_t i = 0; i < 4; i++) {
		make_packet(r, i);
	}

	r->n_stats = 2;
	r->stats = calloc(2, sizeof(*r->stats));
	cr_assert_not_null(r->stats);
	set_ref(&r->stats[0].from, "h1", "pt1", DT_HOOK_PORT_IN);
	set_ref(&r->stats[0].to, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	r->stats[0].count = 3;
	r->stats[0].min_ns = 30000;
	r->stats[0].max_ns = 45500;
	r->stats[0].mean_ns = 37000.0;
	set_ref(&r->stats[1].from, "h2", "ul0", DT_HOOK_UPLINK_IN);
	set_ref(&r->stats[1].to, "h2", "pt1", DT_HOOK_DROP);
	r->stats[1].count = 2;
	r->stats[1].min_ns = 9000;
	r->stats[1].max_ns = 15000;
	r->stats[1].mean_ns = 12000.0;

	r->n_rows = 3;
	r->rows = calloc(3, sizeof(*r->rows));
	cr_assert_not_null(r->rows);
	set_row(&r->rows[0], "h1", "ul0", DT_HOOK_UPLINK_OUT, DT_DIR_REQUEST, 3, 0, "");
	set_row(&r->rows[1], "h2", "ul0", DT_HOOK_UPLINK_IN, DT_DIR_REQUEST, 3, 2,
		"NETFILTER_DROP");
	set_row(&r->rows[2], "h2", "pt1", DT_HOOK_DROP, DT_DIR_REQUEST, 2, 2, "NETFILTER_DROP");

	r->verdict.judged = 4;
	r->verdict.delivered = 2;
	r->verdict.dropped = 2;
	set_ref(&r->verdict.at, "h2", "pt1", DT_HOOK_DROP);
	snprintf(r->verdict.reason, sizeof(r->verdict.reason), "NETFILTER_DROP");
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "2 of 3 request packets dropped at h2/pt1 (after h2/ul0 uplink-in), reason "
		 "NETFILTER_DROP");
	r->window_ms = 500;
}

/*
 * The copy fixture: a flood lab of three hosts, i1 on h1 pinging i3 on h3. h1's VXLAN
 * device sends each request once per peer (head-end replication): the copy to h3 is the
 * destination branch, delivered; the copy to h2 is a bystander's, which h2's bridge
 * discards as not for it (filtered, NOT_SPECIFIED). Each packet's hops, in the report's
 * depth-first order (destination branch first), with their times after its first hop:
 *   #1 h1/pt1 port-in        0 µs
 *   #2 h1/ul0 uplink-out    20 µs, after #1 (to h3)
 *   #3 h3/ul0 uplink-in     50 µs, after #2
 *   #4 h3/pt1 port-out      60 µs, after #3
 *   #5 h1/ul0 uplink-out    25 µs, after #1 (the copy to h2)
 *   #6 h2/ul0 uplink-in     55 µs, after #5
 *   #7 h2/br0 drop          58 µs, after #6: the copy filtered
 * Consecutive hops #4 -> #5 are no pair: #5 follows #1.
 */
static const struct {
	const char *node, *ifname;
	uint8_t hook;
	uint64_t at_us;
	uint16_t parent;
	uint8_t branch;
} copy_hops[] = {
	{"h1", "pt1", DT_HOOK_PORT_IN, 0, DT_HOP_ROOT, DT_BRANCH_DEST},
	{"h1", "ul0", DT_HOOK_UPLINK_OUT, 20, 0, DT_BRANCH_DEST},
	{"h3", "ul0", DT_HOOK_UPLINK_IN, 50, 1, DT_BRANCH_DEST},
	{"h3", "pt1", DT_HOOK_PORT_OUT, 60, 2, DT_BRANCH_DEST},
	{"h1", "ul0", DT_HOOK_UPLINK_OUT, 25, 0, DT_BRANCH_COPY},
	{"h2", "ul0", DT_HOOK_UPLINK_IN, 55, 4, DT_BRANCH_COPY},
	{"h2", "br0", DT_HOOK_DROP, 58, 5, DT_BRANCH_COPY},
};

#define N_COPY_HOPS (sizeof(copy_hops) / sizeof(copy_hops[0]))

static void set_stat(struct dt_hop_stat *s, uint32_t from, uint32_t to, double mean_us)
{
	set_ref(&s->from, copy_hops[from].node, copy_hops[from].ifname, copy_hops[from].hook);
	set_ref(&s->to, copy_hops[to].node, copy_hops[to].ifname, copy_hops[to].hook);
	s->count = 2;
	s->min_ns = (uint64_t)(mean_us * 1000.0);
	s->max_ns = s->min_ns;
	s->mean_ns = mean_us * 1000.0;
	s->branch = copy_hops[to].branch;
}

static void make_copy_report(struct dt_report *r)
{
	memset(r, 0, sizeof(*r));
	r->task.id = 11;
	r->task.state = DT_TASK_DONE;
	r->task.spec.flags = DT_TASK_F_ANYPORT;
	r->task.spec.tuple.saddr = htonl(0x0a640001);
	r->task.spec.tuple.daddr = htonl(0x0a640003);
	r->task.spec.tuple.proto = IPPROTO_ICMP;
	r->task.spec.tuple.vni = 200;
	r->task.created_ns = T0 - 1000000000ull;
	r->task.colored = 2;
	r->task.delivered = 2;

	r->n_packets = 2;
	r->packets = calloc(2, sizeof(*r->packets));
	cr_assert_not_null(r->packets);
	for (uint32_t i = 0; i < 2; i++) {
		struct dt_packet_path *p = &r->packets[i];

		p->ip_id = (uint16_t)(700 + i);
		p->ident = i + 1;
		p->len = 84;
		p->direction = DT_DIR_REQUEST;
		p->fate = DT_FATE_DELIVERED;
		p->datagram_fate = p->fate;
		p->tuple = r->task.spec.tuple;
		p->tuple.sport = htons(9);
		p->dest_known = 1;
		p->n_copies = 1;
		p->n_hops = N_COPY_HOPS;
		p->hops = calloc(N_COPY_HOPS, sizeof(*p->hops));
		cr_assert_not_null(p->hops);
		for (uint32_t k = 0; k < N_COPY_HOPS; k++) {
			struct dt_hop *h = &p->hops[k];

			set_ref(&h->at, copy_hops[k].node, copy_hops[k].ifname, copy_hops[k].hook);
			h->ts_ns = T0 + i * 1000000ull + copy_hops[k].at_us * 1000ull;
			h->tuple = p->tuple;
			h->parent = copy_hops[k].parent;
			h->branch = copy_hops[k].branch;
		}
		p->hops[6].copy_end = DT_COPY_FILTERED;
		p->hops[6].drop_reason = 2;
		snprintf(p->hops[6].drop_name, DT_STR_MAX, "NOT_SPECIFIED");
		snprintf(p->hops[6].drop_where, DT_STR_MAX, "br_handle_frame_finish+0x1c5");
	}

	/* Each hop with its parent, per kind of branch: 3 pairs of each. */
	r->n_stats = 6;
	r->stats = calloc(6, sizeof(*r->stats));
	cr_assert_not_null(r->stats);
	set_stat(&r->stats[0], 0, 1, 20.0);
	set_stat(&r->stats[1], 1, 2, 30.0);
	set_stat(&r->stats[2], 2, 3, 10.0);
	set_stat(&r->stats[3], 0, 4, 25.0);
	set_stat(&r->stats[4], 4, 5, 30.0);
	set_stat(&r->stats[5], 5, 6, 3.0);

	r->n_rows = 4;
	r->rows = calloc(4, sizeof(*r->rows));
	cr_assert_not_null(r->rows);
	for (uint32_t k = 0; k < 4; k++) {
		set_row(&r->rows[k], copy_hops[k].node, copy_hops[k].ifname, copy_hops[k].hook,
			DT_DIR_REQUEST, 2, 0, "");
	}

	r->n_copy_rows = 1;
	r->copy_rows = calloc(1, sizeof(*r->copy_rows));
	cr_assert_not_null(r->copy_rows);
	set_ref(&r->copy_rows[0].at, "h2", "br0", DT_HOOK_DROP);
	r->copy_rows[0].direction = DT_DIR_REQUEST;
	r->copy_rows[0].end = DT_COPY_FILTERED;
	r->copy_rows[0].count = 2;
	snprintf(r->copy_rows[0].reason, DT_STR_MAX, "NOT_SPECIFIED");

	r->verdict.judged = 2;
	r->verdict.delivered = 2;
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "no loss: 2 of 2 packets delivered");
	r->window_ms = 500;
}

static void free_report(struct dt_report *r)
{
	for (uint32_t i = 0; i < r->n_packets; i++) {
		free(r->packets[i].hops);
	}
	free(r->packets);
	free(r->stats);
	free(r->rows);
	free(r->copy_rows);
}

/* Every node of the fixture renamed to name (request and reply hops, rows, stats). */
static void rename_node(struct dt_report *r, const char *from, const char *name)
{
	for (uint32_t i = 0; i < r->n_packets; i++) {
		for (uint32_t k = 0; k < r->packets[i].n_hops; k++) {
			struct dt_hop_ref *a = &r->packets[i].hops[k].at;

			if (strcmp(a->node, from) == 0) {
				snprintf(a->node, sizeof(a->node), "%s", name);
			}
		}
	}
	for (uint32_t i = 0; i < r->n_rows; i++) {
		if (strcmp(r->rows[i].at.node, from) == 0) {
			snprintf(r->rows[i].at.node, sizeof(r->rows[i].at.node), "%s", name);
		}
	}
	for (uint32_t i = 0; i < r->n_stats; i++) {
		if (strcmp(r->stats[i].from.node, from) == 0) {
			snprintf(r->stats[i].from.node, DT_NAME_MAX, "%s", name);
		}
		if (strcmp(r->stats[i].to.node, from) == 0) {
			snprintf(r->stats[i].to.node, DT_NAME_MAX, "%s", name);
		}
	}
	if (strcmp(r->verdict.at.node, from) == 0) {
		snprintf(r->verdict.at.node, sizeof(r->verdict.at.node), "%s", name);
	}
}

#define RENDER(buf, call)                                                                          \
	do {                                                                                       \
		size_t len_;                                                                       \
		FILE *f = open_memstream(&(buf), &len_);                                           \
		cr_assert_not_null(f);                                                             \
		cr_assert_eq((call), 0);                                                           \
		cr_assert_eq(fclose(f), 0);                                                        \
	} while (0)

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* The text of the cluster of node (from its line to its closing brace), malloc'd. */
static char *cluster(const char *dot, const char *node)
{
	char head[128];
	const char *s, *e;

	snprintf(head, sizeof(head), "\tsubgraph \"cluster_%s\" {\n", node);
	s = strstr(dot, head);
	cr_assert_not_null(s, "no cluster for %s in:\n%s", node, dot);
	e = strstr(s, "\n\t}\n");
	cr_assert_not_null(e, "cluster %s never closes:\n%s", node, dot);
	return strndup(s, (size_t)(e - s));
}

/* True when dot is on PATH (tests that run it fail otherwise). */
static bool have_dot(void)
{
	return system("command -v dot >/dev/null 2>&1") == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Dot */

Test(graph, places_and_edges_from_the_packets)
{
	struct dt_report r;
	struct dt_graph g;

	make_report(&r);
	cr_assert_eq(dt_graph_build(&r, &g), 0);
	cr_expect_eq(g.n_hosts, 2);
	cr_expect_eq(g.n_places, 9, "4 request places, the drop, 4 reply places: %u", g.n_places);
	/* Request: 3 edges of the delivered path + the edge into the drop; reply: 3. */
	cr_expect_eq(g.n_edges, 7);
	cr_expect_eq(g.places[4].at.hook, DT_HOOK_DROP);
	cr_expect_eq(g.places[4].dropped, 2);
	cr_expect_eq(g.places[4].before, 3, "from the loss table's h2/ul0 uplink-in row");
	cr_expect_str_eq(g.places[4].reason, "NETFILTER_DROP");
	cr_expect_eq(g.places[2].packets, 3);
	cr_expect_not(g.truncated);
	dt_graph_free(&g);
	free_report(&r);
}

Test(graph, dot_highlights_the_drop_with_reason_and_loss_rate)
{
	struct dt_report r;
	char *out = NULL, *h2, *h1;

	make_report(&r);
	RENDER(out, dt_render_report_dot(f, &r));
	cr_expect_eq(strncmp(out, "digraph dyetrace {\n", 19), 0, "%s", out);
	cr_expect_eq(strcmp(out + strlen(out) - 2, "}\n"), 0, "%s", out);
	/* The drop place: red, with the reason and 2 dropped of the 3 seen before it. */
	cr_expect_not_null(strstr(out, "\t\tp4 [label=\"DROP at pt1\\nreason NETFILTER_DROP\\n2 "
				       "packets dropped of 3 (loss 66.7%)\", color=\"#c62828\", "
				       "fontcolor=\"#c62828\", fillcolor=\"#fde4e4\", "
				       "style=\"rounded,filled,bold\", penwidth=2.5];\n"),
			   "%s", out);
	/* It sits in h2's cluster, with h2's other places, and not in h1's. */
	h2 = cluster(out, "h2");
	h1 = cluster(out, "h1");
	cr_expect_not_null(strstr(h2, "\t\tp4 [label=\"DROP"), "%s", h2);
	cr_expect_not_null(strstr(h2, "\t\tp2 [label=\"ul0\\nuplink-in\\n3 packets\"];"), "%s", h2);
	cr_expect_null(strstr(h1, "DROP"), "%s", h1);
	cr_expect_not_null(strstr(h1, "\t\tp0 [label=\"pt1\\nport-in\\n3 packets\"];"), "%s", h1);
	/* The edge into it: red, its packets and its latency in µs from the statistics. */
	cr_expect_not_null(strstr(out,
				  "\tp2 -> p4 [label=\"request: 2 packets\\nmean 12.0 \u00b5s, "
				  "max 15.0 \u00b5s\", color=\"#c62828\", fontcolor=\"#c62828\", "
				  "penwidth=2];\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out,
				  "\tp0 -> p1 [label=\"request: 3 packets\\nmean 37.0 \u00b5s, "
				  "max 45.5 \u00b5s\"];\n"),
			   "%s", out);
	/* Replies are dashed and blue; no statistics, no latency. */
	cr_expect_not_null(strstr(out, "\tp5 -> p6 [label=\"reply: 1 packet\", color=\"#1f5fbf\", "
				       "fontcolor=\"#1f5fbf\", style=dashed];\n"),
			   "%s", out);
	/* The title: the task and the verdict. */
	cr_expect_not_null(strstr(out, "label=\"task 9 (done): 10.100.0.1 -> 10.100.0.2 icmp vni "
				       "100, any port\\n2 of 3 request packets dropped at h2/pt1"),
			   "%s", out);
	cr_expect_eq(count(out, "subgraph"), 2, "%s", out);
	cr_expect_eq(count(out, " -> p"), 7, "%s", out);
	free(h1);
	free(h2);
	free(out);
	free_report(&r);
}

Test(graph, dot_marks_where_packets_vanished)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	r.packets[0].fate = DT_FATE_VANISHED;
	r.packets[0].n_hops = 2; /* last seen leaving h1 */
	RENDER(out, dt_render_report_dot(f, &r));
	cr_expect_not_null(strstr(out, "\t\tp1 [label=\"ul0\\nuplink-out\\n3 packets\\n1 vanished "
				       "after (loss 33.3%)\", color=\"#e67e00\""),
			   "%s", out);
	cr_expect_eq(count(out, "vanished after"), 1, "%s", out);
	free(out);
	free_report(&r);
}

Test(graph, dot_is_deterministic)
{
	struct dt_report r;
	char *a = NULL, *b = NULL;

	make_report(&r);
	RENDER(a, dt_render_report_dot(f, &r));
	RENDER(b, dt_render_report_dot(f, &r));
	cr_expect_str_eq(a, b);
	free(a);
	free(b);
	free_report(&r);
}

Test(graph, dot_escapes_names)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	/* A quote that would end the string, a backslash that would escape its end, a
	 * newline, an entity, a byte that is not UTF-8. */
	rename_node(&r, "h2", "h\"2\\\n&amp;\xff");
	snprintf(r.packets[1].hops[3].at.ifname, DT_IFNAME_MAX, "a\"];x->y[");
	RENDER(out, dt_render_report_dot(f, &r));
	cr_expect_not_null(strstr(out,
				  "\tsubgraph \"cluster_h\\\"2\\\\\xef\xbf\xbd&amp;\xef\xbf\xbd\" "
				  "{\n\t\tlabel=\"h\\\"2\\\\\xef\xbf\xbd&amp;amp;\xef\xbf\xbd\";"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "[label=\"DROP at a\\\"];x->y[\\nreason"), "%s", out);
	cr_expect_null(strstr(out, "\xff"), "%s", out);
	free(out);
	free_report(&r);
}

Test(graph, dot_of_an_empty_report)
{
	struct dt_report r;
	char *out = NULL;

	memset(&r, 0, sizeof(r));
	snprintf(r.verdict.sentence, sizeof(r.verdict.sentence), "no packets traced yet");
	RENDER(out, dt_render_report_dot(f, &r));
	cr_expect_not_null(strstr(out, "none [label=\"no packets traced yet\""), "%s", out);
	cr_expect_null(strstr(out, "subgraph"), "%s", out);
	free(out);
}

/* ------------------------------------------------------------------------------------ */
/* SVG through dot */

Test(graph, svg_without_dot_is_enoent)
{
	char dir[] = "/tmp/dt-nodot-XXXXXX", *svg = (char *)"x", *old;
	struct dt_report r;
	size_t len = 1;

	cr_assert_not_null(mkdtemp(dir));
	old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	cr_assert_eq(setenv("PATH", dir, 1), 0);
	make_report(&r);
	cr_expect_eq(dt_render_report_svg_mem(&r, &svg, &len), -ENOENT);
	cr_expect_null(svg);
	cr_expect_eq(len, 0);
	if (old) {
		setenv("PATH", old, 1);
	}
	free(old);
	rmdir(dir);
	free_report(&r);
}

Test(graph, svg_names_the_drop)
{
	struct dt_report r;
	char *svg = NULL;
	size_t len = 0;

	cr_assert(have_dot(),
		  "Graphviz's dot is not installed (packaging/setup.sh deps installs it)");
	make_report(&r);
	rename_node(&r, "h2", "h2<&>");
	cr_assert_eq(dt_render_report_svg_mem(&r, &svg, &len), 0);
	cr_assert_not_null(svg);
	cr_expect_eq(strlen(svg), len);
	cr_expect_not_null(strstr(svg, "<svg"), "%s", svg);
	cr_expect_eq(strcmp(svg + len - 7, "</svg>\n"), 0, "%s", svg + len - 20);
	cr_expect_not_null(strstr(svg, ">DROP at pt1</text>"), "%s", svg);
	cr_expect_not_null(strstr(svg, ">reason NETFILTER_DROP</text>"), "%s", svg);
	cr_expect_not_null(strstr(svg, "2 packets dropped of 3 (loss 66.7%)"), "%s", svg);
	/* dot escapes for XML what we escaped for DOT. */
	cr_expect_not_null(strstr(svg, ">h2&lt;&amp;&gt;</text>"), "%s", svg);
	cr_expect_null(strstr(svg, "h2<&>"), "%s", svg);
	free(svg);
	free_report(&r);
}

Test(graph, dot_failure_is_eproto)
{
	static const char bad[] = "digraph { a -> ; }\n";
	char *svg = (char *)"x";
	size_t len = 1;

	cr_assert(have_dot(),
		  "Graphviz's dot is not installed (packaging/setup.sh deps installs it)");
	cr_expect_eq(dt_dot_to_svg(bad, sizeof(bad) - 1, &svg, &len), -EPROTO);
	cr_expect_null(svg);
	cr_expect_eq(len, 0);
}

/* ------------------------------------------------------------------------------------ */
/* HTML */

/* Each open tag of name has its close tag, in this order, never nested below 0. */
static bool balanced(const char *html, const char *name)
{
	char open[32], close[32];
	const char *s = html;
	int depth = 0;

	snprintf(open, sizeof(open), "<%s", name);
	snprintf(close, sizeof(close), "</%s>", name);
	while ((s = strchr(s, '<')) != NULL) {
		size_t n = strlen(open);

		if (strncmp(s, open, n) == 0 && (s[n] == '>' || s[n] == ' ')) {
			depth++;
		} else if (strncmp(s, close, strlen(close)) == 0 && --depth < 0) {
			return false;
		}
		s++;
	}
	return depth == 0;
}

Test(html, page_has_the_verdict_tables_and_timeline)
{
	struct dt_report r;
	char *out = NULL;
	const char *v, *p, *l, *t, *k;

	make_report(&r);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_eq(strncmp(out, "<!DOCTYPE html>\n<html lang=\"en\">\n", 33), 0, "%s", out);
	cr_expect_eq(strcmp(out + strlen(out) - 8, "</html>\n"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "<meta charset=\"utf-8\">"), "%s", out);
	/* The verdict first, then the path, the tables, the packets. */
	v = strstr(out, "<section id=\"verdict\" class=\"verdict loss\">\n<p><b>Verdict:</b> "
			"<span id=\"verdict-sentence\">2 of 3 request packets dropped at h2/pt1 "
			"(after h2/ul0 uplink-in), reason NETFILTER_DROP</span></p>");
	p = strstr(out, "<section id=\"path\">");
	l = strstr(out, "<section id=\"loss\">");
	t = strstr(out, "<section id=\"latency\">");
	k = strstr(out, "<section id=\"packets\">");
	cr_assert(v && p && l && t && k, "%s", out);
	cr_expect(v < p && p < l && l < t && t < k, "%s", out);
	/* Without dot: the drop place as a red box with its reason and loss rate. */
	cr_expect_not_null(strstr(out, "<div class=\"place drop\">DROP at pt1: reason "
				       "NETFILTER_DROP, 2 packets dropped of 3 (loss 66.7%)</div>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<tr class=\"drop\"><td>request</td><td>h2/ul0 uplink-in"
				       "</td><td class=\"n\">3</td><td class=\"n\">2</td>"
				       "<td class=\"n\">0</td><td class=\"n\">66.7%</td>"
				       "<td>NETFILTER_DROP</td></tr>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<td>h1/pt1 port-in</td><td>h1/ul0 uplink-out</td>"
				       "<td class=\"n\">3</td><td class=\"n\">30.0</td>"
				       "<td class=\"n\">37.0</td><td class=\"n\">45.5</td>"),
			   "%s", out);
	/* Every packet, its fate and its hops; the drop with reason and location. */
	cr_expect_eq(count(out, "<div class=\"pkt "), 4, "%s", out);
	cr_expect_not_null(strstr(out, "<div class=\"pkt dropped\" id=\"pkt-2\">"), "%s", out);
	cr_expect_not_null(strstr(out,
				  "<span class=\"fate dropped\">dropped: reason NETFILTER_DROP "
				  "(6) in nf_hook_slow+0x8c</span>"),
			   "%s", out);
	cr_expect_not_null(
		strstr(out, "<tr class=\"drop\"><td class=\"n\">4</td>"
			    "<td>h2/pt1 drop</td><td class=\"n\">3</td>"
			    "<td class=\"branch\">destination</td><td>2023-11-14T22:13:21.001Z</td>"
			    "<td class=\"n\">+30.0</td><td class=\"n\">+90.0</td>"
			    "<td class=\"n\">0</td><td><span class=\"bar\" "
			    "style=\"width:240px\"></span></td></tr>"),
		"%s", out);
	cr_expect_not_null(strstr(out, "<td class=\"n\">+0.0</td><td class=\"n\">98</td>"), "%s",
			   out);
	for (const char *const *tag =
		     (const char *const[]){"html", "head", "body", "section", "div", "table", "tr",
					   "p", "span", NULL};
	     *tag; tag++) {
		cr_expect(balanced(out, *tag), "<%s> is not balanced", *tag);
	}
	/* Self-contained: nothing to fetch, nothing to run. */
	cr_expect_null(strstr(out, "http"), "%s", out);
	cr_expect_null(strstr(out, "<script"), "%s", out);
	cr_expect_null(strstr(out, "<link"), "%s", out);
	cr_expect_null(strstr(out, "url("), "%s", out);
	free(out);
	free_report(&r);
}

Test(html, names_are_escaped)
{
	static const char evil[] = "<script>alert('x')</script>&\"";
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	rename_node(&r, "h2", evil);
	snprintf(r.packets[1].drop_name, sizeof(r.packets[1].drop_name), "<b>DROP</b>\x01\xc3");
	snprintf(r.verdict.sentence, sizeof(r.verdict.sentence), "dropped at %s", evil);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_null(strstr(out, "<script"), "%s", out);
	cr_expect_null(strstr(out, "alert('x')"), "%s", out);
	cr_expect_null(strstr(out, "<b>DROP</b>"), "%s", out);
	cr_expect_not_null(strstr(out, "<span id=\"verdict-sentence\">dropped at &lt;script&gt;"
				       "alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;</span>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<div class=\"host\"><b>&lt;script&gt;alert(&#39;x&#39;)"
				       "&lt;/script&gt;&amp;&quot;</b>"),
			   "%s", out);
	cr_expect_not_null(
		strstr(out, "reason &lt;b&gt;DROP&lt;/b&gt;\xef\xbf\xbd\xef\xbf\xbd (6)"), "%s",
		out);
	cr_expect(balanced(out, "div"), "%s", out);
	free(out);
	free_report(&r);
}

Test(html, inlines_the_svg_without_its_prolog)
{
	static const char svg[] =
		"<?xml version=\"1.0\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD "
		"SVG 1.1//EN\" \"x.dtd\">\n<svg id=\"g\"><text>DROP</text></svg>\n";
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	RENDER(out, dt_render_report_html(f, &r, svg, sizeof(svg) - 1, 0));
	cr_expect_not_null(strstr(out, "<div class=\"picture\">\n<svg id=\"g\"><text>DROP</text>"
				       "</svg>\n</div>"),
			   "%s", out);
	cr_expect_null(strstr(out, "<?xml"), "%s", out);
	cr_expect_null(strstr(out, "DOCTYPE svg"), "%s", out);
	cr_expect_null(strstr(out, "class=\"hosts\""), "no fallback with an SVG: %s", out);
	free(out);
	free_report(&r);
}

Test(html, lists_the_first_packets_when_told)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 1));
	cr_expect_eq(count(out, "<div class=\"pkt "), 1, "%s", out);
	cr_expect_not_null(strstr(out, "the first 1 listed, 3 omitted"), "%s", out);
	free(out);
	free_report(&r);
}

Test(html, no_loss_is_green)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	r.verdict.dropped = 0;
	snprintf(r.verdict.sentence, sizeof(r.verdict.sentence), "no loss: 4 of 4 delivered");
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_not_null(strstr(out, "<section id=\"verdict\" class=\"verdict\">"), "%s", out);
	free(out);
	free_report(&r);
}

Test(html, write_errors_are_reported)
{
	struct dt_report r;
	FILE *f = fopen("/dev/null", "r");

	cr_assert_not_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	make_report(&r);
	cr_expect_eq(dt_render_report_html(f, &r, NULL, 0, 0), -EIO);
	cr_expect_eq(dt_render_report_dot(f, &r), -EIO);
	fclose(f);
	free_report(&r);
}

/* ------------------------------------------------------------------------------------ */
/* Copies: a packet's tree of hops */

/* The edge of g from place a to place b, or NULL. */
static const struct dt_graph_edge *edge(const struct dt_graph *g, uint32_t a, uint32_t b)
{
	for (uint32_t i = 0; i < g->n_edges; i++) {
		if (g->edges[i].from == a && g->edges[i].to == b) {
			return &g->edges[i];
		}
	}
	return NULL;
}

Test(graph, copies_have_places_and_edges_of_their_own)
{
	struct dt_report r;
	struct dt_graph g;
	const struct dt_graph_edge *e;

	make_copy_report(&r);
	cr_assert_eq(dt_graph_build(&r, &g), 0);
	cr_expect_eq(g.n_hosts, 3);
	/* The 4 places of the destination branch, then the copy's 3: h1/ul0 uplink-out twice,
	 * once on each kind of branch. */
	cr_assert_eq(g.n_places, 7);
	cr_expect_eq(g.n_copy_places, 3);
	for (uint32_t i = 0; i < 7; i++) {
		cr_expect_eq(g.places[i].branch, copy_hops[i].branch, "place %u", i);
		cr_expect_str_eq(g.places[i].at.node, copy_hops[i].node, "place %u", i);
		cr_expect_eq(g.places[i].packets, 2, "place %u: one visit per packet", i);
	}
	cr_expect_eq(g.places[6].ends[DT_COPY_FILTERED], 2);
	cr_expect_str_eq(g.places[6].reason, "NOT_SPECIFIED");
	cr_expect_eq(g.places[6].dropped, 0, "a copy's end is no drop");
	/* Parent -> child: 3 edges per branch, none between consecutive hops #4 and #5. */
	cr_expect_eq(g.n_edges, 6);
	cr_expect_null(edge(&g, 3, 4));
	cr_expect_null(edge(&g, 1, 5));
	cr_assert_not_null(e = edge(&g, 0, 1));
	cr_expect_eq(e->branch, DT_BRANCH_DEST);
	cr_expect_eq(e->stat, &r.stats[0], "the destination pair's statistics");
	cr_assert_not_null(e = edge(&g, 0, 4));
	cr_expect_eq(e->branch, DT_BRANCH_COPY);
	cr_expect_eq(e->stat, &r.stats[3], "the same hop pair on the copy: the copy's statistics");
	cr_expect_eq(e->packets, 2);
	cr_assert_not_null(e = edge(&g, 5, 6));
	cr_expect_eq(e->branch, DT_BRANCH_COPY);
	dt_graph_free(&g);
	free_report(&r);
}

Test(graph, dot_draws_copies_grey_and_dashed)
{
	struct dt_report r;
	char *out = NULL, *h1, *h2, *h3;

	make_copy_report(&r);
	RENDER(out, dt_render_report_dot(f, &r));
	/* The destination branch as without copies: black, packets, its own latency. */
	cr_expect_not_null(strstr(out, "\tp0 -> p1 [label=\"request: 2 packets\\nmean 20.0 "
				       "\u00b5s, max 20.0 \u00b5s\"];\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\tp2 -> p3 [label=\"request: 2 packets\\nmean 10.0 "
				       "\u00b5s, max 10.0 \u00b5s\"];\n"),
			   "%s", out);
	/* The copy: from the hop it left the destination branch at, grey and dashed. */
	cr_expect_not_null(strstr(out, "\tp0 -> p4 [label=\"request: 2 copies\\nmean 25.0 "
				       "\u00b5s, max 25.0 \u00b5s\", color=\"#8a939c\", "
				       "fontcolor=\"#57606a\", style=dashed];\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\tp4 -> p5 [label=\"request: 2 copies\\nmean 30.0 "
				       "\u00b5s, max 30.0 \u00b5s\", color=\"#8a939c\", "
				       "fontcolor=\"#57606a\", style=dashed];\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\tp5 -> p6 [label=\"request: 2 copies\\nmean 3.0 "
				       "\u00b5s, max 3.0 \u00b5s\", color=\"#8a939c\", "
				       "fontcolor=\"#57606a\", style=dashed];\n"),
			   "%s", out);
	cr_expect_eq(count(out, " -> p"), 6, "%s", out);
	cr_expect_eq(count(out, "style=dashed];"), 3, "%s", out);
	cr_expect_null(strstr(out, "p3 -> p4"), "no pair of consecutive hops: %s", out);
	/* Where the copy ended: grey, dashed, how it ended and why; no red anywhere. */
	h1 = cluster(out, "h1");
	h2 = cluster(out, "h2");
	h3 = cluster(out, "h3");
	cr_expect_not_null(strstr(h2, "\t\tp6 [label=\"br0\\ndrop (copies)\\nreason "
				      "NOT_SPECIFIED\\n2 copies, 2 filtered\", color=\"#8a939c\", "
				      "fontcolor=\"#57606a\", style=\"rounded,dashed\"];"),
			   "%s", h2);
	cr_expect_not_null(strstr(h2, "\t\tp5 [label=\"ul0\\nuplink-in (copies)\\n2 copies\", "
				      "color=\"#8a939c\""),
			   "%s", h2);
	/* h1's uplink-out twice: the packets to h3, and apart, the copies to h2. */
	cr_expect_not_null(strstr(h1, "\t\tp1 [label=\"ul0\\nuplink-out\\n2 packets\"];\n"), "%s",
			   h1);
	cr_expect_not_null(strstr(h1, "\t\tp4 [label=\"ul0\\nuplink-out (copies)\\n2 copies\", "
				      "color=\"#8a939c\""),
			   "%s", h1);
	cr_expect_not_null(strstr(h3, "\t\tp3 [label=\"pt1\\nport-out\\n2 packets\"];"), "%s", h3);
	cr_expect_null(strstr(out, "#c62828"), "nothing lost, nothing red: %s", out);
	cr_expect_null(strstr(out, "DROP at"), "%s", out);
	cr_expect_not_null(strstr(out, "\\nno loss: 2 of 2 packets delivered\\ngrey, dashed: "
				       "copies for other hosts (not in the verdict)\"];"),
			   "%s", out);
	free(h1);
	free(h2);
	free(h3);
	free(out);
	free_report(&r);

	/* Without copies, no word about them. */
	make_report(&r);
	RENDER(out, dt_render_report_dot(f, &r));
	cr_expect_null(strstr(out, "copies"), "%s", out);
	cr_expect_null(strstr(out, "#8a939c\", fontcolor"), "%s", out);
	free(out);
	free_report(&r);
}

/* The fate is the destination branch's last hop's, not the report's last hop's (a copy's). */
Test(graph, the_destination_branch_ends_where_its_fate_is)
{
	struct dt_report r;
	char *out = NULL;

	make_copy_report(&r);
	r.packets[1].fate = DT_FATE_VANISHED; /* after h3/pt1 port-out, hop #4 */
	RENDER(out, dt_render_report_dot(f, &r));
	cr_expect_not_null(strstr(out, "\t\tp3 [label=\"pt1\\nport-out\\n2 packets\\n1 vanished "
				       "after (loss 50.0%)\", color=\"#e67e00\""),
			   "%s", out);
	cr_expect_eq(count(out, "vanished"), 1, "%s", out);
	free(out);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_not_null(strstr(out, "<span class=\"fate vanished\">vanished: last seen at "
				       "h3/pt1 port-out, no drop seen</span>"),
			   "%s", out);
	free(out);
	free_report(&r);
}

Test(graph, svg_draws_copies_dashed)
{
	struct dt_report r;
	char *svg = NULL;
	size_t len = 0;

	cr_assert(have_dot(),
		  "Graphviz's dot is not installed (packaging/setup.sh deps installs it)");
	make_copy_report(&r);
	cr_assert_eq(dt_render_report_svg_mem(&r, &svg, &len), 0);
	cr_expect_not_null(strstr(svg, ">drop (copies)</text>"), "%s", svg);
	cr_expect_not_null(strstr(svg, ">2 copies, 2 filtered</text>"), "%s", svg);
	cr_expect_not_null(strstr(svg, "stroke=\"#8a939c\" stroke-dasharray"), "%s", svg);
	cr_expect_not_null(strstr(svg, ">cluster_h3</title>"), "%s", svg);
	free(svg);
	free_report(&r);
}

Test(html, copies_are_shown_apart)
{
	struct dt_report r;
	char *out = NULL;
	const char *l, *c, *t;

	make_copy_report(&r);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	/* The copies table, after the loss table, before the latency. */
	l = strstr(out, "<section id=\"loss\">");
	c = strstr(out, "<section id=\"copies\">\n<h2>Copies for other hosts</h2>");
	t = strstr(out, "<section id=\"latency\">");
	cr_assert(l && c && t, "%s", out);
	cr_expect(l < c && c < t, "%s", out);
	cr_expect_not_null(strstr(c, "<tr class=\"copy\"><td>request</td><td>h2/br0 drop</td>"
				     "<td>filtered</td><td class=\"n\">2</td>"
				     "<td>NOT_SPECIFIED</td></tr>\n</table>\n</section>"),
			   "%s", c);
	/* Latency: the same hop pair on each kind of branch, the copy's marked. */
	cr_expect_not_null(strstr(t,
				  "<tr><td>destination</td><td>h1/pt1 port-in</td><td>h1/ul0 "
				  "uplink-out</td><td class=\"n\">2</td><td class=\"n\">20.0</td>"),
			   "%s", t);
	cr_expect_not_null(strstr(t, "<tr class=\"copy\"><td>copy</td><td>h1/pt1 port-in</td>"
				     "<td>h1/ul0 uplink-out</td><td class=\"n\">2</td>"
				     "<td class=\"n\">25.0</td>"),
			   "%s", t);
	/* The packet: delivered, one copy; its timeline with the copy's rows grey, indented,
	 * each hop's latency from its parent. */
	cr_expect_not_null(strstr(out, "<span class=\"fate delivered\">delivered</span>; 1 copy "
				       "for other hosts<br>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<tr><td class=\"n\">4</td><td>h3/pt1 port-out</td>"
				       "<td class=\"n\">3</td><td class=\"branch\">destination</td>"
				       "<td>2023-11-14T22:13:21.000Z</td><td class=\"n\">+10.0</td>"
				       "<td class=\"n\">+60.0</td>"),
			   "%s", out);
	cr_expect_not_null(strstr(out,
				  "<tr class=\"copy\"><td class=\"n\">5</td>"
				  "<td style=\"padding-left:26px\">h1/ul0 uplink-out</td>"
				  "<td class=\"n\">1</td><td class=\"branch\">copy</td>"
				  "<td>2023-11-14T22:13:21.000Z</td><td class=\"n\">+25.0</td>"),
			   "after #1, not #4: %s", out);
	cr_expect_not_null(
		strstr(out,
		       "<tr class=\"copy\"><td class=\"n\">7</td>"
		       "<td style=\"padding-left:58px\">h2/br0 drop</td>"
		       "<td class=\"n\">6</td><td class=\"branch\">copy, <b class=\"copy-fate\">"
		       "filtered</b>: reason NOT_SPECIFIED (2) in "
		       "br_handle_frame_finish+0x1c5</td>"),
		"%s", out);
	cr_expect_null(strstr(out, "(clock skew)"), "no negative latency: %s", out);
	cr_expect_null(strstr(out, "<tr class=\"drop\">"), "a copy's end is no drop: %s", out);
	/* 1 in the copies table, 3 latency pairs, 3 hops of each packet. */
	cr_expect_eq(count(out, "<tr class=\"copy\">"), 1 + 3 + 2 * 3, "%s", out);
	/* Without dot: the copy's places dashed, its pairs marked. */
	cr_expect_not_null(strstr(out, "<div class=\"place copy\">br0 drop (copies), reason "
				       "NOT_SPECIFIED: 2 copies, 2 filtered</div>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<li class=\"request copy\">h1/ul0 uplink-out &rarr; "
				       "h2/ul0 uplink-in: request, 2 copies, mean 30.0 \u00b5s, "
				       "max 30.0 \u00b5s</li>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<li class=\"request\">h1/pt1 port-in &rarr; h1/ul0 "
				       "uplink-out: request, 2 packets, mean 20.0 \u00b5s"),
			   "%s", out);
	for (const char *const *tag = (const char *const[]){"section", "div", "table", "tr", "td",
							    "p", "span", "b", "li", NULL};
	     *tag; tag++) {
		cr_expect(balanced(out, *tag), "<%s> is not balanced", *tag);
	}
	cr_expect_null(strstr(out, "<script"), "%s", out);
	free(out);
	free_report(&r);
}

Test(html, no_copies_and_unknown_destinations_are_said)
{
	struct dt_report r;
	char *out = NULL;

	make_report(&r);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_not_null(strstr(out, "<section id=\"copies\">\n<h2>Copies for other hosts</h2>\n"
				       "<p>no copies: no packet reached a host it was not for</p>"),
			   "%s", out);
	cr_expect_null(strstr(out, "not known"), "%s", out);
	cr_expect_null(strstr(out, "destination-unknown"), "%s", out);
	free(out);

	r.verdict.dest_unknown = 1;
	r.packets[0].dest_known = 0;
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_not_null(strstr(out, "<p class=\"muted\" id=\"destination-unknown\">1 of them "
				       "had a destination no node reported hosting"),
			   "%s", out);
	cr_expect_eq(count(out, " (destination not known to any node)"), 1, "%s", out);
	free(out);
	free_report(&r);
}

/* ------------------------------------------------------------------------------------ */
/* JSON against report/report.schema.json */

/*
 * Validates the JSON at doc against the schema (Draft 2020-12, Debian's python3-jsonschema),
 * as written and with every object closed, as test/lab/test_exports.sh does. Returns the
 * validator's exit status: 0 valid, 1 invalid, 3 the validator failed (-1: it did not exit).
 */
static int schema_check(const char *doc)
{
	static const char py[] =
		"import copy, json, sys\n"
		"sys.excepthook = lambda t, v, tb: (print(t.__name__, v), sys.exit(3))\n"
		"from jsonschema import Draft202012Validator as V\n"
		"schema = json.load(open(sys.argv[1]))\n"
		"doc = json.load(open(sys.argv[2]))\n"
		"V.check_schema(schema)\n"
		"from jsonschema.exceptions import best_match\n"
		"e = best_match(V(schema).iter_errors(doc))\n"
		"if e is not None:\n"
		"    print('schema:', e.message[:300], 'at', list(e.absolute_path))\n"
		"    sys.exit(1)\n"
		"def close(s):\n"
		"    if isinstance(s, dict):\n"
		"        if 'properties' in s and 'additionalProperties' not in s:\n"
		"            s['additionalProperties'] = False\n"
		"        for v in s.values():\n"
		"            close(v)\n"
		"    elif isinstance(s, list):\n"
		"        for v in s:\n"
		"            close(v)\n"
		"strict = copy.deepcopy(schema)\n"
		"close(strict)\n"
		"errors = sorted(V(strict).iter_errors(doc), key=str)\n"
		"for e in errors[:5]:\n"
		"    print('closed schema:', e.message[:300], 'at', list(e.absolute_path))\n"
		"sys.exit(1 if errors else 0)\n";
	char schema[4096], script[] = "/tmp/dt-schema-XXXXXX", cmd[8192];
	const char *end = strstr(__FILE__, "test/unit/test_render_exports.c");
	FILE *f;
	int fd, st;

	cr_assert_not_null(end, "%s", __FILE__);
	snprintf(schema, sizeof(schema), "%.*sreport/report.schema.json", (int)(end - __FILE__),
		 __FILE__);
	fd = mkstemp(script);
	cr_assert_geq(fd, 0);
	cr_assert_not_null(f = fdopen(fd, "w"));
	cr_assert_eq(fputs(py, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s' '%s' >&2", script, schema, doc);
	st = system(cmd);
	unlink(script);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* r's JSON in a temporary file, whose name is written to path. */
static void json_to(const struct dt_report *r, char path[32])
{
	FILE *f;
	int fd;

	snprintf(path, 32, "/tmp/dt-report-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_not_null(f = fdopen(fd, "w"));
	cr_assert_eq(dt_render_report_json(f, r), 0);
	cr_assert_eq(fclose(f), 0);
}

Test(json, reports_validate_against_the_schema)
{
	struct dt_report r;
	char path[32];

	cr_assert_eq(system("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null"), 0,
		     "Debian's python3-jsonschema is not installed");
	make_copy_report(&r);
	json_to(&r, path);
	cr_expect_eq(schema_check(path), 0, "the copy fixture: %s", path);
	unlink(path);
	/* A vanished packet whose destination no node hosts, a copy a rule dropped. */
	r.packets[1].fate = DT_FATE_VANISHED;
	r.packets[1].dest_known = 0;
	r.packets[1].hops[6].copy_end = DT_COPY_DROPPED;
	r.verdict.dest_unknown = 1;
	json_to(&r, path);
	cr_expect_eq(schema_check(path), 0, "the copy fixture, varied: %s", path);
	unlink(path);
	free_report(&r);
	make_report(&r);
	json_to(&r, path);
	cr_expect_eq(schema_check(path), 0, "the firewall fixture: %s", path);
	unlink(path);

	/* The check can fail: copy_fate on the destination branch is not valid. */
	r.packets[0].hops[3].copy_end = DT_COPY_FILTERED;
	json_to(&r, path);
	cr_expect_eq(schema_check(path), 1, "copy_fate on a destination hop: %s", path);
	unlink(path);
	free_report(&r);
}

/* A node that was not observing: its window after the verdict, its name escaped, the
 * unobserved packet's fate; none of it without windows. */
Test(html, unobserved_windows_follow_the_verdict)
{
	struct dt_blind w = {.gap = {.from_ns = 1796676062123000000ull,
				     .to_ns = 1796676064456000000ull,
				     .cause = DT_GAP_CRASHED,
				     .flags = DT_GAP_F_LOST_UNKNOWN},
			     .packets = 2};
	struct dt_report r;
	char *out = NULL;
	const char *v, *u, *p;

	make_report(&r);
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	cr_expect_null(strstr(out, "id=\"unobserved\""), "%s", out);
	free(out);
	snprintf(w.node, sizeof(w.node), "<h2>");
	r.n_blind = 1;
	r.blind = &w;
	r.verdict.unobserved = 2;
	r.packets[0].fate = DT_FATE_UNOBSERVED;
	RENDER(out, dt_render_report_html(f, &r, NULL, 0, 0));
	v = strstr(out, "<section id=\"verdict\"");
	u = strstr(out, "<section id=\"unobserved\">");
	p = strstr(out, "<section id=\"path\">");
	cr_expect(v && u && p && v < u && u < p, "%s", out);
	cr_expect_not_null(strstr(out, ", unobserved 2; in flight"), "%s", out);
	cr_expect_not_null(strstr(out, "<tr><td>&lt;h2&gt;</td><td>2026-12-07T20:41:02.123Z</td>"
				       "<td>2026-12-07T20:41:04.456Z</td><td>agent crashed</td>"
				       "<td class=\"n\">unknown</td><td class=\"n\">2</td></tr>"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "<span class=\"fate unobserved\">unobserved: last seen at "),
			   "%s", out);
	cr_expect(balanced(out, "section"), "%s", out);
	free(out);
	r.blind = NULL;
	free_report(&r);
}
