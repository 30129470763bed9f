// SPDX-License-Identifier: MIT
/*
 * test_paths_blind.c - packets lost from sight where a node was not observing
 * (analyzer/paths_blind.c): unobserved, not vanished; the report's windows and verdict.
 *
 * The fixture is the lab's overlay of three hosts: h1, h2 and h3 each have a port (pt1,
 * pt2, pt3) and an uplink (ul0) on the underlay 192.168.0.1, .2 and .3; h3 is also the NAT
 * gateway of VNI 100 (gw). A ping goes h1/pt1 port-in -> h1/ul0 uplink-out -> h2/ul0
 * uplink-in -> h2/pt2 port-out; its pong the other way. The agents' windows without
 * observation are a table per node, as the hosts table gives them (ctx.gaps_of).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "paths_fixture.h"

#define UL_H1 0xc0a80001u /* 192.168.0.1, host order */
#define UL_H2 0xc0a80002u
#define UL_H3 0xc0a80003u

#define MS 1000000ull
#define T0 (1700000000000ull * MS) /* 2023-11-14T22:13:20.000Z */

/* Each node's windows, as its agent reported them. */
static struct node_gaps {
	const char *node;
	struct dt_gap gaps[DT_NODE_MAX_GAPS];
	uint32_t n;
} nodes[3] = {{.node = "h1"}, {.node = "h2"}, {.node = "h3"}};

static const struct dt_gap *test_gaps_of(const void *arg, const char *node, uint32_t *n)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		if (strcmp(nodes[i].node, node) == 0) {
			*n = nodes[i].n;
			return nodes[i].n ? nodes[i].gaps : NULL;
		}
	}
	*n = 0;
	return NULL;
}

static void add_gap(int node, uint64_t from, uint64_t to, uint32_t cause, uint32_t flags,
		    uint64_t lost)
{
	nodes[node].gaps[nodes[node].n++] = (struct dt_gap){
		.from_ns = from, .to_ns = to, .cause = cause, .flags = flags, .lost = lost};
}

static void setup(void)
{
	fixture_gw = "h3";
	fixture_setup(T0 + 3600000 * MS); /* an hour later: nothing is in flight */
	ctx.gaps_of = test_gaps_of;
	for (size_t i = 0; i < 3; i++) {
		nodes[i].n = 0;
	}
}

TestSuite(blind, .init = setup, .fini = teardown);

struct flow {
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint8_t dir;
};

static const struct flow ping = {0x0a640001, 0x0a640002, 7, 0, DT_DIR_REQUEST};
static const struct flow pong = {0x0a640002, 0x0a640001, 0, 7, DT_DIR_REPLY};
static const struct flow to_h2_via_gw = {0x0a640001, 0x0a640002, 9, 0, DT_DIR_REQUEST};

static struct dt_obs mk(const struct flow *f, uint16_t ip_id, const char *node, const char *ifname,
			uint8_t hook, uint64_t ts, uint32_t osrc, uint32_t odst)
{
	struct dt_obs o;

	memset(&o, 0, sizeof(o));
	o.node = name(node);
	o.ifname = name(ifname);
	o.drop_name = DT_STRTAB_NONE;
	o.drop_where = DT_STRTAB_NONE;
	o.hook = hook;
	o.ts_ns = ts;
	o.tuple.saddr = htonl(f->saddr);
	o.tuple.daddr = htonl(f->daddr);
	o.tuple.sport = htons(f->sport);
	o.tuple.dport = htons(f->dport);
	o.tuple.proto = IPPROTO_ICMP;
	o.tuple.vni = 100;
	o.ip_id = ip_id;
	o.ident = (uint32_t)f->sport << 16 | ip_id;
	o.len = 84;
	o.outer_saddr = htonl(osrc);
	o.outer_daddr = htonl(odst);
	o.canon = o.tuple;
	o.dir = f->dir;
	return o;
}

/*
 * The hops of packet ip_id of f sent at t: the sender's two, then the receiver's two
 * unless the receiver saw only rx of them. A ping goes h1 -> h2, a pong h2 -> h1.
 */
static size_t add(struct dt_obs *o, size_t n, const struct flow *f, uint16_t ip_id, uint64_t t,
		  int rx)
{
	bool rev = f->dir == DT_DIR_REPLY;
	const char *tx = rev ? "h2" : "h1", *rxn = rev ? "h1" : "h2";
	uint32_t os = rev ? UL_H2 : UL_H1, od = rev ? UL_H1 : UL_H2;

	o[n++] = mk(f, ip_id, tx, rev ? "pt2" : "pt1", DT_HOOK_PORT_IN, t, 0, 0);
	o[n++] = mk(f, ip_id, tx, "ul0", DT_HOOK_UPLINK_OUT, t + 10000, os, od);
	if (rx > 0) {
		o[n++] = mk(f, ip_id, rxn, "ul0", DT_HOOK_UPLINK_IN, t + 60000, os, od);
	}
	if (rx > 1) {
		o[n++] = mk(f, ip_id, rxn, rev ? "pt1" : "pt2", DT_HOOK_PORT_OUT, t + 68000, 0, 0);
	}
	return n;
}

/* Ten pings, one every second from T0; those in [lo, hi] reached only h1's hops. */
static size_t ten_pings(struct dt_obs *o, uint16_t lo, uint16_t hi)
{
	size_t n = 0;

	for (uint16_t i = 1; i <= 10; i++) {
		n = add(o, n, &ping, i, T0 + (uint64_t)i * 1000 * MS, i >= lo && i <= hi ? 0 : 2);
	}
	return n;
}

static const struct dt_packet_path *packet(const struct dt_report *r, uint8_t dir, uint16_t ip_id)
{
	for (uint32_t i = 0; i < r->n_packets; i++) {
		if (r->packets[i].ip_id == ip_id && r->packets[i].direction == dir) {
			return &r->packets[i];
		}
	}
	cr_assert_fail("no packet %u", ip_id);
	return NULL;
}

static uint64_t row_vanished(const struct dt_report *r)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < r->n_rows; i++) {
		v += r->rows[i].vanished;
	}
	return v;
}

/* h2's agent crashed while pings 4 to 7 crossed it: no loss, 4 unobserved at h2. */
Test(blind, a_covering_window_makes_them_unobserved_and_no_loss)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 4, 7);

	add_gap(1, T0 + 3500 * MS, T0 + 7500 * MS, DT_GAP_CRASHED, 0, 9);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	for (uint16_t i = 1; i <= 10; i++) {
		cr_expect_eq(packet(&r, DT_DIR_REQUEST, i)->fate,
			     i >= 4 && i <= 7 ? DT_FATE_UNOBSERVED : DT_FATE_DELIVERED, "ping %u",
			     i);
		cr_expect_eq(packet(&r, DT_DIR_REQUEST, i)->datagram_fate,
			     packet(&r, DT_DIR_REQUEST, i)->fate);
	}
	cr_expect_eq(r.verdict.judged, 10);
	cr_expect_eq(r.verdict.delivered, 6);
	cr_expect_eq(r.verdict.vanished + r.verdict.dropped + r.verdict.in_flight, 0);
	cr_expect_eq(r.verdict.unobserved, 4);
	cr_expect_eq(r.verdict.at.hook, DT_HOOK_NONE);
	cr_expect_str_eq(r.verdict.sentence,
			 "no loss: 6 of 10 packets delivered; 4 packets unobserved at h2 (agent "
			 "crashed between 2023-11-14T22:13:23.500Z and 2023-11-14T22:13:27.500Z, 9 "
			 "samples lost)");
	cr_assert_eq(r.n_blind, 1);
	cr_expect_str_eq(r.blind[0].node, "h2");
	cr_expect_eq(r.blind[0].gap.from_ns, T0 + 3500 * MS);
	cr_expect_eq(r.blind[0].gap.to_ns, T0 + 7500 * MS);
	cr_expect_eq(r.blind[0].gap.cause, DT_GAP_CRASHED);
	cr_expect_eq(r.blind[0].gap.lost, 9);
	cr_expect_eq(r.blind[0].packets, 4);
	cr_expect_eq(row_vanished(&r), 0, "the loss table blames no hop");
	dt_report_free(&r);
}

/* The same observations without a window: the network is blamed, as before. */
Test(blind, without_a_window_they_vanish)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 4, 7);

	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 5)->fate, DT_FATE_VANISHED);
	cr_expect_eq(r.verdict.vanished, 4);
	cr_expect_eq(r.verdict.unobserved, 0);
	cr_expect_str_eq(r.verdict.sentence,
			 "4 of 10 packets vanished after h1/ul0 uplink-out (no drop seen)");
	cr_expect_eq(r.n_blind, 0);
	cr_expect_null(r.blind);
	cr_expect_eq(row_vanished(&r), 4);
	dt_report_free(&r);
}

/* A window that ended before the pings, one that began after (beyond the slack of
 * 100 ms), and one on a node the packets were not going to: they vanished. */
Test(blind, a_window_elsewhere_or_at_another_time_excuses_nothing)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 4, 7);

	add_gap(1, T0 + 1000 * MS, T0 + 3800 * MS, DT_GAP_STOPPED, 0, 0);
	add_gap(1, T0 + 7200 * MS, T0 + 9000 * MS, DT_GAP_STOPPED, 0, 0);
	add_gap(2, T0, T0 + 20000 * MS, DT_GAP_CRASHED, 0, 3);
	add_gap(0, T0, T0 + 20000 * MS, DT_GAP_DETACHED, 0, 0);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(r.verdict.vanished, 4);
	cr_expect_eq(r.verdict.unobserved, 0);
	cr_expect_eq(r.n_blind, 0);
	cr_expect_str_eq(r.verdict.sentence,
			 "4 of 10 packets vanished after h1/ul0 uplink-out (no drop seen)");
	dt_report_free(&r);
}

/* The slack: a window ending 50 ms before the last hop seen still covers it (clocks of
 * two nodes, a transit), one ending 150 ms before does not. */
Test(blind, the_slack_is_100_ms)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 4, 4);
	uint64_t seen = T0 + 4000 * MS + 10000; /* ping 4's uplink-out */

	add_gap(1, seen - 2000 * MS, seen - 150 * MS, DT_GAP_STOPPED, 0, 0);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(r.verdict.vanished, 1);
	dt_report_free(&r);

	nodes[1].gaps[0].to_ns = seen - 50 * MS;
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(r.verdict.unobserved, 1);
	cr_expect_eq(r.verdict.vanished, 0);
	dt_report_free(&r);
}

/* A drop seen inside a window is a drop; the others in it are unobserved. */
Test(blind, a_drop_inside_a_window_stays_a_drop)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 4, 5);

	n = add(o, n, &ping, 11, T0 + 6000 * MS + 500 * MS, 1);
	o[n++] = mk(&ping, 11, "h2", "br0", DT_HOOK_DROP, T0 + 6500 * MS + 70000, 0, 0);
	o[n - 1].drop_reason = 6;
	o[n - 1].drop_name = name("NETFILTER_DROP");
	add_gap(1, T0 + 3500 * MS, T0 + 7500 * MS, DT_GAP_CRASHED, DT_GAP_F_LOST_UNKNOWN, 0);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 11)->fate, DT_FATE_DROPPED);
	cr_expect_eq(r.verdict.dropped, 1);
	cr_expect_eq(r.verdict.unobserved, 2);
	cr_expect_eq(r.verdict.judged, 11);
	cr_expect_str_eq(r.verdict.sentence,
			 "1 of 11 packets dropped at h2/br0 (after h2/ul0 uplink-in), reason "
			 "NETFILTER_DROP; 2 packets unobserved at h2 (agent crashed between "
			 "2023-11-14T22:13:23.500Z and 2023-11-14T22:13:27.500Z, samples lost: how "
			 "many is not known)");
	cr_assert_eq(r.n_blind, 1);
	cr_expect_eq(r.blind[0].packets, 2);
	cr_expect_eq(r.blind[0].gap.flags, DT_GAP_F_LOST_UNKNOWN);
	dt_report_free(&r);
}

/* Lost between two hops of one node: seen at h2's uplink-in, not at its port-out, while
 * h2's agent was stopped: the next hop was on h2 itself. */
Test(blind, between_two_hops_of_the_node_in_the_window)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0;

	for (uint16_t i = 1; i <= 4; i++) {
		n = add(o, n, &ping, i, T0 + (uint64_t)i * 1000 * MS, i == 3 ? 1 : 2);
	}
	add_gap(1, T0 + 3000 * MS + 60000, T0 + 3500 * MS, DT_GAP_STOPPED, 0, 0);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 3)->fate, DT_FATE_UNOBSERVED);
	cr_expect_eq(r.verdict.unobserved, 1);
	cr_expect_str_eq(r.verdict.sentence,
			 "no loss: 3 of 4 packets delivered; 1 packet unobserved at h2 (agent "
			 "stopped between 2023-11-14T22:13:23.000Z and 2023-11-14T22:13:23.500Z)");
	dt_report_free(&r);

	/* The same window on h1 (the node it had left) explains nothing. */
	nodes[0] = nodes[1];
	nodes[0].node = "h1";
	nodes[1].n = 0;
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(r.verdict.vanished, 1);
	cr_expect_eq(r.verdict.unobserved, 0);
	dt_report_free(&r);
}

/* Both directions: the pings are delivered, the pongs that h1 did not see while its
 * agent restarted are unobserved at h1, the ones h2 did not see at h2. */
Test(blind, the_two_directions)
{
	struct dt_obs o[128];
	struct dt_report r = {0};
	size_t n = 0;

	for (uint16_t i = 1; i <= 6; i++) {
		uint64_t t = T0 + (uint64_t)i * 1000 * MS;

		n = add(o, n, &ping, i, t, i == 5 ? 0 : 2);
		n = add(o, n, &pong, i, t + 200000, i == 2 || i == 3 ? 0 : 2);
	}
	add_gap(0, T0 + 1800 * MS, T0 + 3100 * MS, DT_GAP_STOPPED, 0, 0);
	add_gap(1, T0 + 4900 * MS, T0 + 5100 * MS, DT_GAP_CRASHED, 0, 1);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(packet(&r, DT_DIR_REPLY, 2)->fate, DT_FATE_UNOBSERVED);
	cr_expect_eq(packet(&r, DT_DIR_REPLY, 3)->fate, DT_FATE_UNOBSERVED);
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 5)->fate, DT_FATE_UNOBSERVED);
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 2)->fate, DT_FATE_DELIVERED);
	cr_expect_eq(r.verdict.delivered, 9);
	cr_expect_eq(r.verdict.unobserved, 3);
	cr_expect_eq(r.verdict.vanished, 0);
	cr_assert_eq(r.n_blind, 2);
	cr_expect_str_eq(r.blind[0].node, "h1");
	cr_expect_eq(r.blind[0].packets, 2);
	cr_expect_str_eq(r.blind[1].node, "h2");
	cr_expect_eq(r.blind[1].packets, 1);
	cr_expect_str_eq(r.verdict.sentence,
			 "no loss: 9 of 12 packets delivered; 2 packets unobserved at h1 (agent "
			 "stopped between 2023-11-14T22:13:21.800Z and 2023-11-14T22:13:23.100Z), "
			 "1 more elsewhere");
	dt_report_free(&r);
}

/* h2 saw none of the packets (its agent was down throughout): the next node is the one
 * that hosts the destination. */
Test(blind, the_destinations_host_when_no_uplink_in_names_the_node)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 1, 10);

	add_gap(1, T0, T0 + 20000 * MS, DT_GAP_STOPPED, 0, 0);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(r.verdict.unobserved, 10);
	cr_expect_eq(r.verdict.delivered, 0);
	cr_expect_eq(r.verdict.vanished, 0);
	cr_assert_eq(r.n_blind, 1);
	cr_expect_str_eq(r.blind[0].node, "h2");
	dt_report_free(&r);
}

/* Through the gateway on h3 (h1 -> h3 -> h2): h3 did not observe while the packets crossed
 * it. A packet that reached h2 is delivered and not flagged; one that h2 did not see
 * either vanished after h1's uplink-out towards h3, whose window explains it: the outer
 * destination names h3 (the other packets' uplink-in on it), not the destination's host. */
Test(blind, through_a_middle_node_in_a_window)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	const struct flow *f = &to_h2_via_gw;
	size_t n = 0;

	for (uint16_t i = 1; i <= 4; i++) {
		uint64_t t = T0 + (uint64_t)i * 1000 * MS;

		o[n++] = mk(f, i, "h1", "pt1", DT_HOOK_PORT_IN, t, 0, 0);
		o[n++] = mk(f, i, "h1", "ul0", DT_HOOK_UPLINK_OUT, t + 10000, UL_H1, UL_H3);
		if (i == 1) {
			o[n++] = mk(f, i, "h3", "ul0", DT_HOOK_UPLINK_IN, t + 50000, UL_H1, UL_H3);
			o[n++] = mk(f, i, "h3", "ul0", DT_HOOK_UPLINK_OUT, t + 60000, UL_H3, UL_H2);
		}
		if (i != 4) {
			o[n++] = mk(f, i, "h2", "ul0", DT_HOOK_UPLINK_IN, t + 90000, UL_H3, UL_H2);
			o[n++] = mk(f, i, "h2", "pt2", DT_HOOK_PORT_OUT, t + 98000, 0, 0);
		}
	}
	add_gap(2, T0 + 1500 * MS, T0 + 4500 * MS, DT_GAP_CRASHED, 0, 4);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	for (uint16_t i = 1; i <= 3; i++) {
		cr_expect_eq(packet(&r, DT_DIR_REQUEST, i)->fate, DT_FATE_DELIVERED, "packet %u",
			     i);
	}
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 4)->fate, DT_FATE_UNOBSERVED);
	cr_expect_eq(r.verdict.delivered, 3);
	cr_expect_eq(r.verdict.unobserved, 1);
	cr_assert_eq(r.n_blind, 1);
	cr_expect_str_eq(r.blind[0].node, "h3");
	cr_expect_eq(r.blind[0].packets, 1);
	dt_report_free(&r);

	/* The window on h2 instead: packet 4 was going to h3, so it vanished. */
	nodes[1] = nodes[2];
	nodes[1].node = "h2";
	nodes[2].n = 0;
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(packet(&r, DT_DIR_REQUEST, 4)->fate, DT_FATE_VANISHED);
	cr_expect_eq(r.verdict.unobserved, 0);
	dt_report_free(&r);
}

/* Without a gaps_of (a caller that knows no windows), nothing changes. */
Test(blind, no_gaps_of_no_windows)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = ten_pings(o, 4, 7);

	add_gap(1, T0, T0 + 20000 * MS, DT_GAP_CRASHED, 0, 0);
	ctx.gaps_of = NULL;
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_expect_eq(r.verdict.vanished, 4);
	cr_expect_eq(r.verdict.unobserved, 0);
	dt_report_free(&r);
}

/* A datagram of two fragments h2 saw neither of, in a window: it counts once, every
 * fragment and the datagram unobserved; a datagram whose second fragment h2 saw
 * (delivered) and whose first it did not is unobserved too, where its first was lost. */
Test(blind, a_datagram_counts_once)
{
	static const struct flow udp = {0x0a640001, 0x0a640002, 4000, 53, DT_DIR_REQUEST};
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, n0;

	for (uint16_t id = 1; id <= 2; id++) {
		for (uint16_t off = 0; off <= 185; off += 185) {
			n0 = n;
			n = add(o, n, &udp, id, T0 + id * 1000 * MS + off * 1000,
				id == 2 && off == 185 ? 2 : 0);
			for (size_t i = n0; i < n; i++) {
				o[i].tuple.proto = o[i].canon.proto = IPPROTO_UDP;
				o[i].frag = (uint16_t)(off | (off == 0 ? DT_FRAG_MF : 0));
				o[i].len = off == 0 ? 1500 : 548;
			}
		}
	}
	add_gap(1, T0, T0 + 20000 * MS, DT_GAP_CRASHED, 0, 2);
	cr_assert_eq(dt_paths_build(&ctx, o, n, &r), 0);
	cr_assert_eq(r.n_packets, 4);
	for (uint32_t i = 0; i < 4; i++) {
		const struct dt_packet_path *p = &r.packets[i];
		bool seen = p->ip_id == 2 && (p->frag & DT_FRAG_OFFSET);

		cr_expect_eq(p->fate, seen ? DT_FATE_DELIVERED : DT_FATE_UNOBSERVED, "packet %u",
			     i);
		cr_expect_eq(p->datagram_fate, DT_FATE_UNOBSERVED, "packet %u", i);
	}
	cr_expect_eq(r.verdict.judged, 2);
	cr_expect_eq(r.verdict.unobserved, 2);
	cr_expect_eq(r.verdict.vanished, 0);
	cr_assert_eq(r.n_blind, 1);
	cr_expect_eq(r.blind[0].packets, 2);
	dt_report_free(&r);
}
