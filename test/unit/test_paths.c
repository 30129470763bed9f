// SPDX-License-Identifier: MIT
/*
 * test_paths.c - path ordering, fates, the per-hop loss table, the verdict and hop latency
 * statistics (analyzer/paths.c).
 *
 * The fixture is the lab's overlay: h1 and h2 each have a port (pt1, pt2) and an uplink
 * (ul0) on the underlay 192.168.0.1 <-> 192.168.0.2. A packet from the instance behind
 * h1 goes h1/pt1 port-in -> h1/ul0 uplink-out -> h2/ul0 uplink-in -> h2/pt2 port-out.
 * The gateway gw (underlay 192.168.0.3) masquerades traffic leaving ext0 behind
 * 203.0.113.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "paths_fixture.h"

/*
 * Allocation failure injection: while fail_after > 0, the fail_after-th malloc() or
 * calloc() from now on returns NULL. The executable's definitions take precedence over
 * libc's; glibc exports the real allocators as __libc_*. Under AddressSanitizer
 * (DT_SANITIZE) the real allocators are its own, exported as __interceptor_*: free()
 * must get what they allocated.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#ifdef __SANITIZE_ADDRESS__
#define real_malloc __interceptor_malloc
#define real_calloc __interceptor_calloc
#else
#define real_malloc __libc_malloc
#define real_calloc __libc_calloc
#endif
extern void *real_malloc(size_t size);
extern void *real_calloc(size_t n, size_t size);
static int fail_after;

static bool fail_now(void)
{
	return fail_after > 0 && --fail_after == 0;
}

void *malloc(size_t size)
{
	return fail_now() ? NULL : real_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : real_calloc(n, size);
}

#define UL_H1 0xc0a80001u /* 192.168.0.1, host order */
#define UL_H2 0xc0a80002u
#define UL_H3 0xc0a80003u
#define UL_GW UL_H3

static void setup(void)
{
	fixture_setup(4000000000000000000ull);
}

TestSuite(paths, .init = setup, .fini = teardown);

static int build(const struct dt_obs *o, size_t n, struct dt_report *r)
{
	return dt_paths_build(&ctx, o, n, r);
}

/* A flow, in host order for readability. */
struct flow {
	uint32_t saddr;
	uint32_t daddr;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint32_t vni;
};

static const struct flow ping = {0x0a640001, 0x0a640002, 7, 0, IPPROTO_ICMP, 100};
static const struct flow pong = {0x0a640002, 0x0a640001, 0, 7, IPPROTO_ICMP, 100};

static struct dt_obs mk(const struct flow *f, uint16_t ip_id, uint32_t ident, const char *node,
			const char *ifname, uint8_t hook, uint64_t ts, uint32_t osrc, uint32_t odst)
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
	o.tuple.proto = f->proto;
	o.tuple.vni = f->vni;
	o.ip_id = ip_id;
	o.ident = ident;
	o.len = 84;
	o.outer_saddr = htonl(osrc);
	o.outer_daddr = htonl(odst);
	o.canon = o.tuple;
	o.dir = DT_DIR_REQUEST;
	return o;
}

/*
 * Appends the four observations of one packet h1 -> h2 (or h2 -> h1 when rev) at
 * t0 + {0, a, a + b, a + b + c} where the last two are on the receiver's clock, shifted
 * by skew.
 */
static size_t add_packet(struct dt_obs *o, size_t n, const struct flow *f, uint16_t ip_id,
			 uint64_t t0, uint64_t a, uint64_t b, uint64_t c, int64_t skew, bool rev)
{
	const char *tx = rev ? "h2" : "h1", *rx = rev ? "h1" : "h2";
	const char *txp = rev ? "pt2" : "pt1", *rxp = rev ? "pt1" : "pt2";
	uint32_t os = rev ? UL_H2 : UL_H1, od = rev ? UL_H1 : UL_H2;
	uint32_t ident = 7u << 16 | ip_id;

	o[n++] = mk(f, ip_id, ident, tx, txp, DT_HOOK_PORT_IN, t0, 0, 0);
	o[n++] = mk(f, ip_id, ident, tx, "ul0", DT_HOOK_UPLINK_OUT, t0 + a, os, od);
	o[n++] = mk(f, ip_id, ident, rx, "ul0", DT_HOOK_UPLINK_IN, t0 + a + b + skew, os, od);
	o[n++] = mk(f, ip_id, ident, rx, rxp, DT_HOOK_PORT_OUT, t0 + a + b + c + skew, 0, 0);
	return n;
}

/* A fixed Fisher-Yates shuffle (LCG), so that failures are reproducible. */
static void shuffle(struct dt_obs *o, size_t n, uint32_t seed)
{
	size_t i;

	for (i = n; i > 1; i--) {
		size_t j;
		struct dt_obs t;

		seed = seed * 1103515245u + 12345u;
		j = (seed >> 8) % i;
		t = o[i - 1];
		o[i - 1] = o[j];
		o[j] = t;
	}
}

static void report_clear(struct dt_report *r)
{
	dt_report_free(r);
}

static void expect_hop(const struct dt_hop *h, const char *node, const char *ifname, uint8_t hook)
{
	cr_expect_str_eq(h->at.node, node);
	cr_expect_str_eq(h->at.ifname, ifname);
	cr_expect_eq(h->at.hook, hook, "hook %u at %s/%s, expected %u", h->at.hook, h->at.node,
		     h->at.ifname, hook);
}

static void expect_four_hops(const struct dt_packet_path *p, bool rev)
{
	cr_assert_eq(p->n_hops, 4, "packet ip_id %u has %u hops", p->ip_id, p->n_hops);
	expect_hop(&p->hops[0], rev ? "h2" : "h1", rev ? "pt2" : "pt1", DT_HOOK_PORT_IN);
	expect_hop(&p->hops[1], rev ? "h2" : "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&p->hops[2], rev ? "h1" : "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&p->hops[3], rev ? "h1" : "h2", rev ? "pt1" : "pt2", DT_HOOK_PORT_OUT);
}

static void expect_ref(const struct dt_hop_ref *r, const char *node, const char *ifname,
		       uint8_t hook)
{
	cr_expect_str_eq(r->node, node);
	cr_expect_str_eq(r->ifname, ifname);
	cr_expect_eq(r->hook, hook);
}

Test(paths, shuffled_ping_pong_four_hops)
{
	struct dt_obs o[64], copy[64];
	struct dt_report r = {0};
	size_t n = 0;
	uint16_t id;

	/* Requests h1 -> h2 and replies h2 -> h1, interleaved in time. */
	for (id = 1; id <= 5; id++) {
		uint64_t t = 1000000000ull + id * 1000000ull;

		n = add_packet(o, n, &ping, id, t, 10000, 50000, 8000, 0, false);
		n = add_packet(o, n, &pong, 100 + id, t + 200000, 9000, 40000, 7000, 0, true);
	}
	shuffle(o, n, 42);
	memcpy(copy, o, sizeof(o[0]) * n);

	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(memcmp(copy, o, sizeof(o[0]) * n), 0, "input was modified");
	cr_assert_eq(r.n_packets, 10);
	for (id = 0; id < 10; id++) {
		const struct dt_packet_path *p = &r.packets[id];
		bool rev = id % 2 == 1; /* request, reply, request, ... by time */

		cr_expect_eq(p->ip_id, rev ? 100 + id / 2 + 1 : id / 2 + 1, "packet %u: ip_id %u",
			     id, p->ip_id);
		cr_expect_eq(p->len, 84);
		expect_four_hops(p, rev);
	}
	cr_expect_eq(r.task.colored, 10);
	cr_expect_eq(r.task.delivered, 10);
	report_clear(&r);
}

/* A listed hop carries its observation's prefix, from the prefix store the context names;
 * without one (ctx.prefixes NULL), none. */
Test(paths, listed_hops_carry_their_prefixes)
{
	struct dt_prefixes pre = {0};
	struct dt_report r = {0};
	uint8_t cap[DT_CAP_MAX];
	struct dt_obs o[4];
	size_t n = add_packet(o, 0, &ping, 1, 1000000000ull, 10000, 50000, 8000, 0, false);

	for (size_t i = 0; i < n; i++) {
		o[i].cap_link = DT_CAP_ETH;
		o[i].cap_len = (uint16_t)(21 + 13 * i); /* odd lengths: the store aligns them */
		memset(cap, 0x10 + (int)i, o[i].cap_len);
		cr_assert_eq(dt_prefixes_reserve(&pre, o[i].cap_len), 0);
		dt_prefixes_append(&pre, &o[i], cap);
	}
	ctx.prefixes = &pre;
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	expect_four_hops(&r.packets[0], false); /* in the order they were added */
	for (uint32_t j = 0; j < 4; j++) {
		const struct dt_hop *h = &r.packets[0].hops[j];

		cr_expect_eq(h->cap_link, DT_CAP_ETH);
		cr_assert_eq(h->cap_len, 21 + 13 * j, "hop %u", j);
		for (uint16_t k = 0; k < h->cap_len; k++) {
			cr_assert_eq(h->cap[k], 0x10 + j, "hop %u, byte %u", j, k);
		}
	}
	report_clear(&r);
	ctx.prefixes = NULL;
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect(r.packets[0].hops[0].cap_len == 0 &&
		  r.packets[0].hops[0].cap_link == DT_CAP_NONE);
	report_clear(&r);
	dt_prefixes_free(&pre);
}

Test(paths, hand_off_beats_receiver_clock_behind)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* h2's clock is 1 ms behind: its samples look older than h1's port-in. */
	n = add_packet(o, n, &ping, 1, 5000000, 10000, 30000, 5000, -1000000, false);
	shuffle(o, n, 7);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	expect_four_hops(&r.packets[0], false);

	/* The negative cross-node latency enters the statistics as 0. */
	cr_assert_eq(r.n_stats, 3);
	expect_ref(&r.stats[1].from, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_ref(&r.stats[1].to, "h2", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(r.stats[1].min_ns, 0);
	cr_expect_eq(r.stats[1].max_ns, 0);
	cr_expect_float_eq(r.stats[1].mean_ns, 0.0, 1e-9);
	/* Inside one node latency is exact whatever the skew. */
	cr_expect_eq(r.stats[0].min_ns, 10000);
	cr_expect_eq(r.stats[2].min_ns, 5000);
	report_clear(&r);
}

Test(paths, no_port_in_starts_with_sender_despite_skew)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* The port-in sample was lost and h2's clock is behind: h1 must still go first. */
	n = add_packet(o, n, &ping, 1, 5000000, 10000, 30000, 5000, -1000000, false);
	memmove(&o[0], &o[1], sizeof(o[0]) * --n);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	cr_assert_eq(r.packets[0].n_hops, 3);
	expect_hop(&r.packets[0].hops[0], "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&r.packets[0].hops[1], "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&r.packets[0].hops[2], "h2", "pt2", DT_HOOK_PORT_OUT);
	cr_expect_eq(r.task.colored, 0);
	cr_expect_eq(r.task.delivered, 1);
	report_clear(&r);
}

Test(paths, no_port_in_no_hand_off_starts_with_earliest)
{
	struct dt_obs o[4];
	struct dt_report r = {0};

	/* Two uplink-in hops that no hand-off links: plain time order, whatever the names. */
	o[0] = mk(&ping, 1, 1, "h1", "ul0", DT_HOOK_UPLINK_IN, 900, UL_H3, UL_H1);
	o[1] = mk(&ping, 1, 1, "h2", "ul0", DT_HOOK_UPLINK_IN, 500, UL_H3, UL_H2);
	cr_assert_eq(build(o, 2, &r), 0);
	cr_assert_eq(r.packets[0].n_hops, 2);
	expect_hop(&r.packets[0].hops[0], "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&r.packets[0].hops[1], "h1", "ul0", DT_HOOK_UPLINK_IN);
	report_clear(&r);
}

Test(paths, unreached_nodes_follow_by_time)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* h1 hands off to nobody seen; h3 (earlier) and h2 (later) follow by time. */
	o[n++] = mk(&ping, 9, 9, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[n++] = mk(&ping, 9, 9, "h1", "ul0", DT_HOOK_UPLINK_OUT, 1100, UL_H1, UL_H2);
	o[n++] = mk(&ping, 9, 9, "h2", "ul0", DT_HOOK_UPLINK_IN, 3000, UL_H3, UL_H2);
	o[n++] = mk(&ping, 9, 9, "h2", "pt2", DT_HOOK_PORT_OUT, 3100, 0, 0);
	o[n++] = mk(&ping, 9, 9, "h3", "ul0", DT_HOOK_UPLINK_IN, 2000, UL_H2, UL_H3);
	shuffle(o, n, 3);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	cr_assert_eq(r.packets[0].n_hops, 5);
	expect_hop(&r.packets[0].hops[0], "h1", "pt1", DT_HOOK_PORT_IN);
	expect_hop(&r.packets[0].hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&r.packets[0].hops[2], "h3", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&r.packets[0].hops[3], "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&r.packets[0].hops[4], "h2", "pt2", DT_HOOK_PORT_OUT);
	report_clear(&r);
}

Test(paths, port_in_goes_first_even_when_another_node_is_earlier)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_packet(o, n, &ping, 4, 5000000, 10000, 30000, 5000, 0, false);
	/* h3 saw the packet on a link nobody else reports, on a clock far behind. */
	o[n++] = mk(&ping, 4, 4 | 7u << 16, "h3", "ul0", DT_HOOK_UPLINK_IN, 100, UL_H3, UL_H3);
	shuffle(o, n, 21);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	cr_assert_eq(r.packets[0].n_hops, 5);
	expect_hop(&r.packets[0].hops[0], "h1", "pt1", DT_HOOK_PORT_IN);
	expect_hop(&r.packets[0].hops[3], "h2", "pt2", DT_HOOK_PORT_OUT);
	expect_hop(&r.packets[0].hops[4], "h3", "ul0", DT_HOOK_UPLINK_IN);
	report_clear(&r);
}

/* The index of the hop at node/ifname/hook in p, or -1. */
static int hop_at(const struct dt_packet_path *p, const char *node, const char *ifname,
		  uint8_t hook)
{
	for (uint32_t i = 0; i < p->n_hops; i++) {
		if (strcmp(p->hops[i].at.node, node) == 0 &&
		    strcmp(p->hops[i].at.ifname, ifname) == 0 && p->hops[i].at.hook == hook) {
			return (int)i;
		}
	}
	return -1;
}

Test(paths, receivers_of_one_uplink_out_are_siblings)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	const struct dt_packet_path *p;
	size_t n = 0;
	int out;

	/* h1's one uplink-out reaches h2 and h3 (same outer pair, as a multicast underlay
	 * would deliver BUM traffic); h4 is unrelated but its sample falls between them. */
	o[n++] = mk(&ping, 6, 6, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[n++] = mk(&ping, 6, 6, "h1", "ul0", DT_HOOK_UPLINK_OUT, 1100, UL_H1, UL_H2);
	o[n++] = mk(&ping, 6, 6, "h3", "ul0", DT_HOOK_UPLINK_IN, 3000, UL_H1, UL_H2);
	o[n++] = mk(&ping, 6, 6, "h2", "ul0", DT_HOOK_UPLINK_IN, 2000, UL_H1, UL_H2);
	o[n++] = mk(&ping, 6, 6, "h4", "ul0", DT_HOOK_UPLINK_IN, 2500, UL_H3, UL_H1);
	cr_assert_eq(build(o, n, &r), 0);
	p = &r.packets[0];
	cr_assert_eq(p->n_hops, 5);
	out = hop_at(p, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	cr_assert_eq(out, 1);
	/* i2 lives on h2: its copy is the destination branch, h3's a bystander's. */
	expect_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(p->hops[2].parent, out);
	cr_expect_eq(p->hops[2].branch, DT_BRANCH_DEST);
	cr_expect_eq(p->hops[hop_at(p, "h3", "ul0", DT_HOOK_UPLINK_IN)].parent, out);
	cr_expect_eq(p->hops[hop_at(p, "h3", "ul0", DT_HOOK_UPLINK_IN)].branch, DT_BRANCH_COPY);
	cr_expect_neq(p->hops[hop_at(p, "h4", "ul0", DT_HOOK_UPLINK_IN)].parent, out,
		      "h4 received from another sender");
	report_clear(&r);
}

Test(paths, hairpin_visits_a_node_twice)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* h1 -> gateway h3 -> back to h1 (another port); h3's clock is far ahead. */
	o[n++] = mk(&ping, 5, 5, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[n++] = mk(&ping, 5, 5, "h1", "ul0", DT_HOOK_UPLINK_OUT, 1100, UL_H1, UL_H3);
	o[n++] = mk(&ping, 5, 5, "h3", "ul0", DT_HOOK_UPLINK_IN, 90000, UL_H1, UL_H3);
	o[n++] = mk(&ping, 5, 5, "h3", "ul0", DT_HOOK_UPLINK_OUT, 90100, UL_H3, UL_H1);
	o[n++] = mk(&ping, 5, 5, "h1", "ul0", DT_HOOK_UPLINK_IN, 1300, UL_H3, UL_H1);
	o[n++] = mk(&ping, 5, 5, "h1", "pt9", DT_HOOK_PORT_OUT, 1400, 0, 0);
	shuffle(o, n, 17);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.packets[0].n_hops, 6);
	expect_hop(&r.packets[0].hops[0], "h1", "pt1", DT_HOOK_PORT_IN);
	expect_hop(&r.packets[0].hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&r.packets[0].hops[2], "h3", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&r.packets[0].hops[3], "h3", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&r.packets[0].hops[4], "h1", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&r.packets[0].hops[5], "h1", "pt9", DT_HOOK_PORT_OUT);
	report_clear(&r);
}

/* A hand-off needs both outer addresses to match: one of them is not enough. */
static void hand_off_needs_both(uint32_t decoy_src, uint32_t decoy_dst)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	o[n++] = mk(&ping, 3, 3, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[n++] = mk(&ping, 3, 3, "h1", "ul0", DT_HOOK_UPLINK_OUT, 1100, UL_H1, UL_H2);
	/* h2 sees something earlier, but only one outer address matches. */
	o[n++] = mk(&ping, 3, 3, "h2", "ul0", DT_HOOK_UPLINK_IN, 1200, decoy_src, decoy_dst);
	/* h3 is the real receiver, its sample later than the decoy. */
	o[n++] = mk(&ping, 3, 3, "h3", "ul0", DT_HOOK_UPLINK_IN, 1500, UL_H1, UL_H2);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.packets[0].n_hops, 4);
	cr_expect_eq(
		r.packets[0].hops[hop_at(&r.packets[0], "h3", "ul0", DT_HOOK_UPLINK_IN)].parent,
		hop_at(&r.packets[0], "h1", "ul0", DT_HOOK_UPLINK_OUT),
		"the real receiver follows the uplink-out");
	cr_expect_eq(
		r.packets[0].hops[hop_at(&r.packets[0], "h2", "ul0", DT_HOOK_UPLINK_IN)].parent, 0,
		"the decoy hangs from h1's first hop, not from its uplink-out");
	report_clear(&r);
}

Test(paths, hand_off_needs_outer_saddr_and_daddr)
{
	hand_off_needs_both(UL_H1, UL_H3);
	hand_off_needs_both(UL_H3, UL_H2);
}

Test(paths, equal_timestamps_in_a_node_order_by_hook)
{
	struct dt_obs o[4];
	struct dt_report r = {0};

	o[0] = mk(&ping, 1, 1, "h1", "ul0", DT_HOOK_UPLINK_OUT, 1000, UL_H1, UL_H2);
	o[1] = mk(&ping, 1, 1, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[2] = mk(&ping, 1, 1, "h2", "pt2", DT_HOOK_PORT_OUT, 2000, 0, 0);
	o[3] = mk(&ping, 1, 1, "h2", "ul0", DT_HOOK_UPLINK_IN, 2000, UL_H1, UL_H2);
	cr_assert_eq(build(o, 4, &r), 0);
	expect_four_hops(&r.packets[0], false);
	report_clear(&r);
}

Test(paths, lost_in_the_middle_is_colored_not_delivered)
{
	struct dt_obs o[16];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_packet(o, n, &ping, 1, 1000000, 10000, 50000, 8000, 0, false);
	n = add_packet(o, n, &ping, 2, 2000000, 10000, 50000, 8000, 0, false);
	n -= 2; /* packet 2 died on the underlay: no uplink-in, no port-out */
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 2);
	cr_expect_eq(r.task.colored, 2);
	cr_expect_eq(r.task.delivered, 1);
	expect_four_hops(&r.packets[0], false);
	cr_assert_eq(r.packets[1].n_hops, 2);
	expect_hop(&r.packets[1].hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT);
	/* The first pair was taken by both packets, the others by one. */
	cr_assert_eq(r.n_stats, 3);
	cr_expect_eq(r.stats[0].count, 2);
	cr_expect_eq(r.stats[1].count, 1);
	cr_expect_eq(r.stats[2].count, 1);
	report_clear(&r);
}

Test(paths, stats_against_hand_computed_values)
{
	/* uplink-out -> uplink-in latencies 1000, 2000, 3000, 6000 ns:
	 * mean 3000, deviations -2000 -1000 0 3000, squares sum 14e6,
	 * population variance 3.5e6, stddev 1870.8286933869706. */
	static const uint64_t lat[] = {1000, 2000, 3000, 6000};
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	for (i = 0; i < 4; i++) {
		n = add_packet(o, n, &ping, i + 1, 1000000 * (i + 1), 500 + i * 100, lat[i], 700, 0,
			       false);
	}
	/* A reply, to have a pair taken once. */
	n = add_packet(o, n, &pong, 50, 9000000, 4000, 4000, 4000, 0, true);
	shuffle(o, n, 11);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_stats, 6);

	/* Along the path: positions 0, 1, 2; ties by name (h1 < h2). */
	expect_ref(&r.stats[0].from, "h1", "pt1", DT_HOOK_PORT_IN);
	expect_ref(&r.stats[0].to, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_ref(&r.stats[1].from, "h2", "pt2", DT_HOOK_PORT_IN);
	expect_ref(&r.stats[2].from, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_ref(&r.stats[2].to, "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_ref(&r.stats[4].from, "h1", "ul0", DT_HOOK_UPLINK_IN);
	expect_ref(&r.stats[4].to, "h1", "pt1", DT_HOOK_PORT_OUT);
	expect_ref(&r.stats[5].from, "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_ref(&r.stats[5].to, "h2", "pt2", DT_HOOK_PORT_OUT);

	cr_expect_eq(r.stats[2].count, 4);
	cr_expect_eq(r.stats[2].min_ns, 1000);
	cr_expect_eq(r.stats[2].max_ns, 6000);
	cr_expect_float_eq(r.stats[2].mean_ns, 3000.0, 1e-9);
	cr_expect_float_eq(r.stats[2].stddev_ns, 1870.8286933869706, 1e-9);

	/* port-in -> uplink-out: 500, 600, 700, 800: mean 650, stddev sqrt(12500). */
	cr_expect_eq(r.stats[0].count, 4);
	cr_expect_eq(r.stats[0].min_ns, 500);
	cr_expect_eq(r.stats[0].max_ns, 800);
	cr_expect_float_eq(r.stats[0].mean_ns, 650.0, 1e-9);
	cr_expect_float_eq(r.stats[0].stddev_ns, 111.80339887498948, 1e-9);

	/* A single value: stddev 0. */
	cr_expect_eq(r.stats[1].count, 1);
	cr_expect_eq(r.stats[1].min_ns, 4000);
	cr_expect_eq(r.stats[1].max_ns, 4000);
	cr_expect_float_eq(r.stats[1].mean_ns, 4000.0, 1e-9);
	cr_expect_float_eq(r.stats[1].stddev_ns, 0.0, 1e-12);
	report_clear(&r);
}

Test(paths, duplicates_count_once)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	n = add_packet(o, n, &ping, 1, 1000000, 10000, 50000, 8000, 0, false);
	n = add_packet(o, n, &ping, 2, 2000000, 20000, 50000, 8000, 0, false);
	for (i = 0; i < 8; i++) {
		o[n++] = o[i]; /* every observation twice (a batch delivered twice) */
	}
	o[n++] = o[1]; /* and one of them three times */
	shuffle(o, n, 5);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 2);
	expect_four_hops(&r.packets[0], false);
	expect_four_hops(&r.packets[1], false);
	cr_expect_eq(r.task.colored, 2);
	cr_expect_eq(r.task.delivered, 2);
	cr_assert_eq(r.n_stats, 3);
	for (i = 0; i < 3; i++) {
		cr_expect_eq(r.stats[i].count, 2, "stat %zu counted %lu", i,
			     (unsigned long)r.stats[i].count);
	}
	cr_expect_eq(r.stats[0].min_ns, 10000);
	cr_expect_eq(r.stats[0].max_ns, 20000);
	report_clear(&r);
}

Test(paths, same_node_and_time_but_other_hook_is_no_duplicate)
{
	struct dt_obs o[2];
	struct dt_report r = {0};

	o[0] = mk(&ping, 1, 1, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[1] = mk(&ping, 1, 1, "h1", "pt1", DT_HOOK_PORT_OUT, 1000, 0, 0);
	cr_assert_eq(build(o, 2, &r), 0);
	cr_expect_eq(r.packets[0].n_hops, 2);
	report_clear(&r);
}

Test(paths, empty_input)
{
	struct dt_report r = {0};

	r.task.id = 17;
	r.task.colored = 99;
	r.task.delivered = 98;
	r.lost[DT_LOSS_RING_FULL] = 5;
	cr_assert_eq(build(NULL, 0, &r), 0);
	cr_expect_eq(r.n_packets, 0);
	cr_expect_null(r.packets);
	cr_expect_eq(r.n_stats, 0);
	cr_expect_null(r.stats);
	cr_expect_eq(r.task.colored, 0);
	cr_expect_eq(r.task.delivered, 0);
	cr_expect_eq(r.task.id, 17, "task fields other than the counters are the caller's");
	cr_expect_eq(r.lost[DT_LOSS_RING_FULL], 5);
	cr_expect_eq(r.n_rows, 0);
	cr_expect_null(r.rows);
	cr_expect_eq(r.verdict.judged, 0);
	cr_expect_eq(r.verdict.at.hook, DT_HOOK_NONE);
	cr_expect_str_eq(r.verdict.sentence, "no packets traced yet");
}

Test(paths, anyport_flows_with_the_same_ip_id_are_separate)
{
	struct flow other = ping;
	struct dt_obs o[16];
	struct dt_report r = {0};
	size_t n = 0;

	other.sport = 8; /* another ping process: another echo identifier */
	n = add_packet(o, n, &ping, 42, 1000000, 10000, 50000, 8000, 0, false);
	n = add_packet(o, n, &other, 42, 1000500, 10000, 50000, 8000, 0, false);
	shuffle(o, n, 9);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 2);
	expect_four_hops(&r.packets[0], false);
	expect_four_hops(&r.packets[1], false);
	cr_expect_eq(r.packets[0].hops[0].ts_ns, 1000000);
	cr_expect_eq(r.packets[1].hops[0].ts_ns, 1000500);
	cr_expect_eq(r.task.colored, 2);
	cr_assert_eq(r.n_stats, 3);
	cr_expect_eq(r.stats[0].count, 2);
	report_clear(&r);
}

Test(paths, a_colliding_id_keeps_the_earliest_max_hops)
{
	size_t n = DT_REPORT_MAX_HOPS + 36, i;
	struct dt_obs *o = calloc(n, sizeof(*o));
	struct dt_report r = {0};

	cr_assert_not_null(o);
	for (i = 0; i < n; i++) {
		char node[8];

		snprintf(node, sizeof(node), "n%zu", n - i); /* names against time order */
		o[i] = mk(&ping, 1, 1, node, "ul0", DT_HOOK_UPLINK_IN, 1000 + i, UL_H3, UL_H1);
	}
	shuffle(o, n, 13);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	cr_assert_eq(r.packets[0].n_hops, DT_REPORT_MAX_HOPS);
	for (i = 0; i < DT_REPORT_MAX_HOPS; i++) {
		cr_expect_eq(r.packets[0].hops[i].ts_ns, 1000 + i);
	}
	cr_expect_eq(r.n_stats, DT_REPORT_MAX_HOPS - 1);
	report_clear(&r);
	free(o);
}

/*
 * Builds a report of o[0..n) into *r with the k-th allocation failing, k = 1, 2, ... until
 * it succeeds: each failure must leave r as it was. Returns how many failed, or -1 when
 * malloc() is not this file's (the test is then skipped).
 */
static int fail_each_allocation(const struct dt_obs *o, size_t n, struct dt_report *r)
{
	int k, err, failures = 0;
	/* called through a volatile pointer: gcc knows what malloc() does, not what this
	 * file's does, and would drop the store to fail_after before the call */
	void *(*volatile alloc)(size_t) = malloc;
	void *probe;

	fail_after = 1;
	probe = alloc(1);
	fail_after = 0;
	if (probe) {
		free(probe);
		return -1;
	}
	for (k = 1;; k++) {
		bool reached;

		memset(r, 0, sizeof(*r));
		r->task.colored = 77;
		fail_after = k;
		err = build(o, n, r);
		reached = fail_after == 0; /* else the build made fewer than k allocations */
		fail_after = 0;
		if (err == 0 && !reached) {
			break;
		}
		if (err == 0) {
			report_clear(r); /* a failure libc survives (qsort's buffer) */
			continue;
		}
		failures++;
		cr_assert_eq(err, -ENOMEM, "allocation %d: %d", k, err);
		cr_expect_null(r->packets, "allocation %d", k);
		cr_expect_null(r->stats, "allocation %d", k);
		cr_expect_null(r->blind, "allocation %d", k);
		cr_expect_eq(r->n_packets, 0);
		cr_expect_eq(r->task.colored, 77, "r changed on failure at allocation %d", k);
		cr_assert_lt(k, 1000);
	}
	return failures;
}

#define SKIP_WITHOUT_FAILURES(failures)                                                            \
	do {                                                                                       \
		if ((failures) < 0) {                                                              \
			cr_skip_test("malloc() is not this file's (valgrind without "              \
				     "--soname-synonyms=somalloc=nouserintercepts?)");             \
		}                                                                                  \
	} while (0)

Test(paths, out_of_memory_at_every_allocation_leaves_nothing)
{
	struct dt_obs o[64];
	struct dt_report r;
	size_t n = 0;
	int k, failures;

	for (k = 1; k <= 10; k++) {
		n = add_packet(o, n, &ping, k, 1000000 * k, 10000, 50000, 8000, 0, false);
	}
	n -= 2; /* one packet without its last two hops */
	shuffle(o, n, 23);
	failures = fail_each_allocation(o, n, &r);
	SKIP_WITHOUT_FAILURES(failures);
	/* index, packets, places, 10 hop arrays, paths, pairs, summaries, stats */
	cr_expect_geq(failures, 16, "only %d allocations failed", failures);
	cr_expect_eq(r.n_packets, 10);
	cr_expect_eq(r.task.colored, 10);
	cr_expect_eq(r.task.delivered, 9);
	report_clear(&r);
}

/* h2 was not observing throughout (paths_blind.c). */
static const struct dt_gap *h2_blind(const void *arg, const char *node, uint32_t *n)
{
	static const struct dt_gap gap = {
		.from_ns = 1, .to_ns = 1ull << 62, .cause = DT_GAP_CRASHED};

	(void)arg;
	*n = strcmp(node, "h2") == 0;
	return *n ? &gap : NULL;
}

/* The same, when the packet that lost its last two hops is unobserved: judging it again
 * allocates too (the underlay's nodes, the windows found), more than the verdict saves. */
Test(paths, out_of_memory_judging_unobserved_packets_leaves_nothing)
{
	struct dt_obs o[64];
	struct dt_report r;
	size_t n = 0;
	int k, plain, failures;

	for (k = 1; k <= 10; k++) {
		n = add_packet(o, n, &ping, k, 1000000 * k, 10000, 50000, 8000, 0, false);
	}
	n -= 2;
	n = add_packet(o, n, &ping, 11, 11000000, 10000, 50000, 8000, 0, false);
	n -= 3; /* one more that never left h1: vanished either way */
	shuffle(o, n, 23);
	/* Once first: the verdict names the window's times, and libc loads its time zone
	 * data at the first conversion (an allocation it survives, not the report's). */
	ctx.gaps_of = h2_blind;
	cr_assert_eq(build(o, n, &r), 0);
	report_clear(&r);
	ctx.gaps_of = NULL;
	plain = fail_each_allocation(o, n, &r);
	SKIP_WITHOUT_FAILURES(plain);
	cr_expect_eq(r.verdict.vanished, 2);
	report_clear(&r);
	ctx.gaps_of = h2_blind;
	failures = fail_each_allocation(o, n, &r);
	cr_expect_gt(failures, plain, "judging again allocated nothing that could fail: %d, %d",
		     failures, plain);
	cr_expect_eq(r.verdict.unobserved, 1);
	cr_expect_eq(r.verdict.vanished, 1);
	cr_assert_eq(r.n_blind, 1);
	cr_expect_str_eq(r.blind[0].node, "h2");
	report_clear(&r);
}

/* ------------------------------------------------------------------------------------ */
/* Fates, the loss table and the verdict */

/* A drop sample of flow f at node/ifname. */
static struct dt_obs mk_drop(const struct flow *f, uint16_t ip_id, const char *node,
			     const char *ifname, uint64_t ts, uint32_t reason, const char *rname,
			     const char *where)
{
	struct dt_obs o = mk(f, ip_id, 7u << 16 | ip_id, node, ifname, DT_HOOK_DROP, ts, 0, 0);

	o.drop_reason = reason;
	o.drop_name = rname ? name(rname) : DT_STRTAB_NONE;
	o.drop_where = where ? name(where) : DT_STRTAB_NONE;
	return o;
}

/* The first three hops of a packet h1 -> h2, then a drop on h2 after uplink-in. */
static size_t add_dropped(struct dt_obs *o, size_t n, uint16_t ip_id, uint64_t t0,
			  const char *rname)
{
	n = add_packet(o, n, &ping, ip_id, t0, 10000, 50000, 8000, 0, false);
	n--; /* no port-out */
	o[n++] = mk_drop(&ping, ip_id, "h2", "br0", t0 + 70000, 6, rname, "nf_hook_slow+0x8c");
	return n;
}

static const struct dt_hop_row *find_row(const struct dt_report *r, uint8_t dir, const char *node,
					 const char *ifname, uint8_t hook)
{
	uint32_t i;

	for (i = 0; i < r->n_rows; i++) {
		const struct dt_hop_row *w = &r->rows[i];

		if (w->direction == dir && strcmp(w->at.node, node) == 0 &&
		    strcmp(w->at.ifname, ifname) == 0 && w->at.hook == hook) {
			return w;
		}
	}
	cr_assert_fail("no row %s/%s %s", node, ifname, dt_hook_name(hook));
	return NULL;
}

Test(paths, healthy_flow_is_no_loss)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	for (i = 1; i <= 5; i++) {
		n = add_packet(o, n, &ping, i, 1000000 * i, 10000, 50000, 8000, 0, false);
	}
	shuffle(o, n, 77);
	cr_assert_eq(build(o, n, &r), 0);
	for (i = 0; i < 5; i++) {
		cr_expect_eq(r.packets[i].fate, DT_FATE_DELIVERED);
		cr_expect_eq(r.packets[i].direction, DT_DIR_REQUEST);
		cr_expect_eq(r.packets[i].tuple.saddr, htonl(ping.saddr));
		cr_expect_str_eq(r.packets[i].drop_name, "");
	}
	cr_expect_eq(r.verdict.judged, 5);
	cr_expect_eq(r.verdict.delivered, 5);
	cr_expect_eq(r.verdict.dropped + r.verdict.vanished + r.verdict.in_flight, 0);
	cr_expect_eq(r.verdict.at.hook, DT_HOOK_NONE);
	cr_expect_str_eq(r.verdict.at.node, "");
	cr_expect_str_eq(r.verdict.reason, "");
	cr_expect_str_eq(r.verdict.sentence, "no loss: 5 of 5 packets delivered");
	/* Four rows in path order, nothing lost anywhere. */
	cr_assert_eq(r.n_rows, 4);
	expect_ref(&r.rows[0].at, "h1", "pt1", DT_HOOK_PORT_IN);
	expect_ref(&r.rows[1].at, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_ref(&r.rows[2].at, "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_ref(&r.rows[3].at, "h2", "pt2", DT_HOOK_PORT_OUT);
	for (i = 0; i < 4; i++) {
		cr_expect_eq(r.rows[i].seen, 5);
		cr_expect_eq(r.rows[i].dropped + r.rows[i].vanished, 0);
		cr_expect_str_eq(r.rows[i].top_reason, "");
	}
	report_clear(&r);
}

Test(paths, drop_at_a_hop_is_the_verdict)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	const struct dt_hop_row *w;
	const struct dt_packet_path *p;
	size_t n = 0, i;

	/* 6 delivered; 3 dropped on h2 after uplink-in, all reason 6, one of them reported
	 * without a name (its kernel's BTF lacked it); 1 vanished. */
	for (i = 1; i <= 6; i++) {
		n = add_packet(o, n, &ping, i, 1000000 * i, 10000, 50000, 8000, 0, false);
	}
	n = add_dropped(o, n, 7, 7000000, "NETFILTER_DROP");
	n = add_dropped(o, n, 8, 8000000, "NETFILTER_DROP");
	n = add_dropped(o, n, 9, 9000000, NULL);
	n = add_packet(o, n, &ping, 10, 10000000, 10000, 50000, 8000, 0, false);
	n -= 2;
	shuffle(o, n, 5);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 10);

	p = &r.packets[6];
	cr_expect_eq(p->ip_id, 7);
	cr_expect_eq(p->fate, DT_FATE_DROPPED);
	cr_assert_eq(p->n_hops, 4);
	expect_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&p->hops[3], "h2", "br0", DT_HOOK_DROP);
	cr_expect_eq(p->drop_reason, 6);
	cr_expect_str_eq(p->drop_name, "NETFILTER_DROP");
	cr_expect_str_eq(p->drop_where, "nf_hook_slow+0x8c");
	cr_expect_eq(r.packets[8].fate, DT_FATE_DROPPED);
	cr_expect_str_eq(r.packets[8].drop_name, "");
	cr_expect_eq(r.packets[9].fate, DT_FATE_VANISHED);
	cr_expect_eq(r.task.colored, 10);
	cr_expect_eq(r.task.delivered, 6);

	cr_expect_eq(r.verdict.judged, 10);
	cr_expect_eq(r.verdict.delivered, 6);
	cr_expect_eq(r.verdict.dropped, 3);
	cr_expect_eq(r.verdict.vanished, 1);
	expect_ref(&r.verdict.at, "h2", "br0", DT_HOOK_DROP);
	cr_expect_str_eq(r.verdict.reason, "NETFILTER_DROP");
	cr_expect_str_eq(r.verdict.sentence,
			 "3 of 10 packets dropped at h2/br0 (after h2/ul0 uplink-in), reason "
			 "NETFILTER_DROP; 1 more lost elsewhere");

	/* The loss table: drops on the hop before the drop (same node) and on the drop row. */
	w = find_row(&r, DT_DIR_REQUEST, "h2", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(w->seen, 9);
	cr_expect_eq(w->dropped, 3);
	cr_expect_eq(w->vanished, 0);
	cr_expect_str_eq(w->top_reason, "NETFILTER_DROP");
	w = find_row(&r, DT_DIR_REQUEST, "h2", "br0", DT_HOOK_DROP);
	cr_expect_eq(w->seen, 3);
	cr_expect_eq(w->dropped, 3);
	w = find_row(&r, DT_DIR_REQUEST, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	cr_expect_eq(w->seen, 10);
	cr_expect_eq(w->dropped, 0);
	cr_expect_eq(w->vanished, 1);
	w = find_row(&r, DT_DIR_REQUEST, "h2", "pt2", DT_HOOK_PORT_OUT);
	cr_expect_eq(w->seen, 6);
	/* Rows in path order: port-in, uplink-out, uplink-in, then port-out and the drop. */
	expect_ref(&r.rows[0].at, "h1", "pt1", DT_HOOK_PORT_IN);
	expect_ref(&r.rows[1].at, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_ref(&r.rows[2].at, "h2", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(r.n_rows, 5);
	report_clear(&r);
}

Test(paths, a_reason_without_a_name_reads_as_its_value)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_dropped(o, n, 1, 1000000, NULL);
	o[n - 1].drop_reason = 77;
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.reason, "77");
	cr_expect_str_eq(r.verdict.sentence,
			 "1 of 1 packets dropped at h2/br0 (after h2/ul0 uplink-in), reason 77");
	report_clear(&r);
}

Test(paths, vanished_after_the_last_hop_seen)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	for (i = 1; i <= 4; i++) {
		n = add_packet(o, n, &ping, i, 1000000 * i, 10000, 50000, 8000, 0, false);
		if (i % 2 == 0) {
			n -= 2; /* lost on the wire: no uplink-in, no port-out */
		}
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[1].fate, DT_FATE_VANISHED);
	cr_expect_eq(r.packets[1].drop_reason, 0);
	cr_expect_eq(r.verdict.vanished, 2);
	expect_ref(&r.verdict.at, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	cr_expect_str_eq(r.verdict.reason, "");
	cr_expect_str_eq(r.verdict.sentence,
			 "2 of 4 packets vanished after h1/ul0 uplink-out (no drop seen)");
	report_clear(&r);
}

Test(paths, a_packet_seen_within_the_window_is_in_flight)
{
	struct dt_obs o[16];
	struct dt_report r = {0};
	size_t n = 0, i;

	n = add_packet(o, n, &ping, 1, 1000000, 10000, 50000, 8000, 0, false);
	n = add_packet(o, n, &ping, 2, 2000000, 10000, 50000, 8000, 0, false);
	n -= 2;
	/* Packet 2's samples arrived 999 ms before the report: more may come. */
	for (i = 4; i < n; i++) {
		o[i].arrival_ms = ctx.now_ms - 999;
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[1].fate, DT_FATE_IN_FLIGHT);
	cr_expect_eq(r.verdict.judged, 1);
	cr_expect_eq(r.verdict.in_flight, 1);
	cr_expect_str_eq(r.verdict.sentence, "no loss: 1 of 1 packets delivered; 1 in flight");
	cr_expect_eq(r.rows[1].vanished, 0, "in flight is not vanished");
	report_clear(&r);

	/* A window later it has vanished. */
	for (i = 4; i < n; i++) {
		o[i].arrival_ms = ctx.now_ms - 1000;
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[1].fate, DT_FATE_VANISHED);
	report_clear(&r);

	/* ... unless samples held across a restart still wait: one may be its next hop.
	 * Delivered packets stay delivered. */
	ctx.n_held_restored = 1;
	cr_assert_eq(build(o, n, &r), 0);
	ctx.n_held_restored = 0;
	cr_expect_eq(r.packets[1].fate, DT_FATE_IN_FLIGHT);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DELIVERED);
	report_clear(&r);

	/* Young by its timestamp (the report's wall clock) counts too. */
	o[4].ts_ns = o[5].ts_ns = ctx.now_ns - 500000000ull;
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[1].fate, DT_FATE_IN_FLIGHT);
	cr_expect_str_eq(r.packets[1].drop_name, "");
	report_clear(&r);

	/* Nothing judged yet. */
	cr_assert_eq(build(&o[4], 2, &r), 0);
	cr_expect_eq(r.verdict.judged, 0);
	cr_expect_str_eq(r.verdict.sentence,
			 "1 packet in flight, none judged yet (seen within the last 1000 ms)");
	report_clear(&r);
}

/* Request 10.100.0.1 -> 203.0.113.10 (ICMP id 7) masqueraded behind 203.0.113.1 (id 1024). */
static const struct flow inet_in = {0x0a640001, 0xcb00710a, 7, 0, IPPROTO_ICMP, 100};
static const struct flow inet_out = {0xcb007101, 0xcb00710a, 1024, 0, IPPROTO_ICMP, 100};
static const struct flow inet_back_out = {0xcb00710a, 0xcb007101, 0, 1024, IPPROTO_ICMP, 100};
static const struct flow inet_back_in = {0xcb00710a, 0x0a640001, 0, 7, IPPROTO_ICMP, 100};

/* Observation of flow f whose canonical (inside) flow is c, as the stitcher gives it. */
static struct dt_obs mk_nat(const struct flow *f, const struct flow *c, uint8_t dir, uint16_t ip_id,
			    const char *node, const char *ifname, uint8_t hook, uint64_t ts,
			    uint32_t osrc, uint32_t odst)
{
	struct dt_obs o = mk(f, ip_id, 1, node, ifname, hook, ts, osrc, odst);
	struct dt_obs k = mk(c, ip_id, 1, node, ifname, hook, ts, osrc, odst);

	o.canon = k.tuple;
	o.dir = dir;
	return o;
}

Test(paths, nat_gateway_exit_is_delivered_with_the_translation_on_its_hop)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	const struct dt_packet_path *p;
	size_t n = 0;

	o[n++] = mk_nat(&inet_in, &inet_in, DT_DIR_REQUEST, 3, "h1", "pt1", DT_HOOK_PORT_IN, 1000,
			0, 0);
	o[n++] = mk_nat(&inet_in, &inet_in, DT_DIR_REQUEST, 3, "h1", "ul0", DT_HOOK_UPLINK_OUT,
			1100, UL_H1, UL_GW);
	/* The gateway's clock is behind. */
	o[n++] = mk_nat(&inet_in, &inet_in, DT_DIR_REQUEST, 3, "gw", "ul0", DT_HOOK_UPLINK_IN, 500,
			UL_H1, UL_GW);
	o[n++] = mk_nat(&inet_out, &inet_in, DT_DIR_REQUEST, 3, "gw", "ext0", DT_HOOK_GW_OUT, 600,
			0, 0);
	shuffle(o, n, 3);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1, "the hops before and after the NAT are one packet");
	p = &r.packets[0];
	cr_assert_eq(p->n_hops, 4);
	expect_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN);
	expect_hop(&p->hops[2], "gw", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&p->hops[3], "gw", "ext0", DT_HOOK_GW_OUT);
	cr_expect_eq(p->fate, DT_FATE_DELIVERED);
	cr_expect_eq(p->tuple.saddr, htonl(inet_in.saddr), "the packet's flow is the inside one");
	cr_expect_eq(p->hops[2].tuple.saddr, htonl(inet_in.saddr));
	cr_expect_eq(p->hops[3].tuple.saddr, htonl(inet_out.saddr), "the hop shows the NAT");
	cr_expect_eq(p->hops[3].tuple.sport, htons(1024));
	cr_expect_eq(r.task.delivered, 1);
	report_clear(&r);
}

Test(paths, a_drop_after_the_exit_is_terminal)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* A qdisc on ext0 drops the packet after the gateway sampled it leaving. */
	o[n++] = mk_nat(&inet_in, &inet_in, DT_DIR_REQUEST, 3, "gw", "ul0", DT_HOOK_UPLINK_IN, 500,
			UL_H1, UL_GW);
	o[n++] = mk_nat(&inet_out, &inet_in, DT_DIR_REQUEST, 3, "gw", "ext0", DT_HOOK_GW_OUT, 600,
			0, 0);
	o[n] = mk_nat(&inet_out, &inet_in, DT_DIR_REQUEST, 3, "gw", "ext0", DT_HOOK_DROP, 600, 0,
		      0);
	o[n].drop_reason = 40;
	o[n++].drop_name = name("QDISC_DROP");
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.packets[0].n_hops, 3);
	expect_hop(&r.packets[0].hops[2], "gw", "ext0", DT_HOOK_DROP);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DROPPED);
	cr_expect_str_eq(r.verdict.sentence, "1 of 1 packets dropped at gw/ext0 (after gw/ext0 "
					     "gw-out), reason QDISC_DROP");
	cr_expect_eq(r.task.delivered, 0);
	report_clear(&r);
}

Test(paths, a_reply_starts_at_the_gateway_entry)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	const struct dt_packet_path *p;
	size_t n = 0;

	/* h1's clock is behind the gateway's: time order would put h1 first. */
	o[n++] = mk_nat(&inet_back_in, &inet_back_in, DT_DIR_REPLY, 9, "h1", "pt1",
			DT_HOOK_PORT_OUT, 300, 0, 0);
	o[n++] = mk_nat(&inet_back_in, &inet_back_in, DT_DIR_REPLY, 9, "h1", "ul0",
			DT_HOOK_UPLINK_IN, 200, UL_GW, UL_H1);
	o[n++] = mk_nat(&inet_back_out, &inet_back_in, DT_DIR_REPLY, 9, "gw", "ext0", DT_HOOK_GW_IN,
			5000, 0, 0);
	o[n++] = mk_nat(&inet_back_in, &inet_back_in, DT_DIR_REPLY, 9, "gw", "ul0",
			DT_HOOK_UPLINK_OUT, 5100, UL_GW, UL_H1);
	shuffle(o, n, 8);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	p = &r.packets[0];
	cr_expect_eq(p->direction, DT_DIR_REPLY);
	cr_assert_eq(p->n_hops, 4);
	expect_hop(&p->hops[0], "gw", "ext0", DT_HOOK_GW_IN);
	expect_hop(&p->hops[1], "gw", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&p->hops[2], "h1", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&p->hops[3], "h1", "pt1", DT_HOOK_PORT_OUT);
	cr_expect_eq(p->fate, DT_FATE_DELIVERED);
	cr_expect_eq(r.task.colored, 1, "gw-in is a first hop");
	cr_expect_eq(r.rows[0].direction, DT_DIR_REPLY);
	report_clear(&r);
}

Test(paths, directions_are_separate_packets_rows_and_verdict_words)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	/* Request and reply with the same ip_id and ident: still two packets. */
	n = add_packet(o, n, &ping, 1, 1000000, 10000, 50000, 8000, 0, false);
	n = add_packet(o, n, &pong, 1, 1500000, 10000, 50000, 8000, 0, true);
	for (i = 4; i < 8; i++) {
		o[i].ident = o[0].ident;
		o[i].dir = DT_DIR_REPLY;
	}
	/* A second reply that vanishes on the wire. */
	n = add_packet(o, n, &pong, 2, 2500000, 10000, 50000, 8000, 0, true);
	n -= 2;
	for (i = 8; i < n; i++) {
		o[i].dir = DT_DIR_REPLY;
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 3);
	cr_expect_eq(r.packets[0].direction, DT_DIR_REQUEST);
	cr_expect_eq(r.packets[1].direction, DT_DIR_REPLY);
	/* Rows: the request's first, then the reply's. */
	cr_assert_eq(r.n_rows, 8);
	for (i = 0; i < 8; i++) {
		cr_expect_eq(r.rows[i].direction, i < 4 ? DT_DIR_REQUEST : DT_DIR_REPLY);
	}
	expect_ref(&r.rows[4].at, "h2", "pt2", DT_HOOK_PORT_IN);
	cr_expect_str_eq(r.verdict.sentence,
			 "1 of 2 reply packets vanished after h2/ul0 uplink-out (no drop seen)");
	report_clear(&r);
}

Test(paths, an_encapsulated_drop_is_reached_by_hand_off)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* h2 dropped the VXLAN packet before its uplink hook (its clock far behind). */
	o[n++] = mk(&ping, 4, 4, "h1", "pt1", DT_HOOK_PORT_IN, 100000, 0, 0);
	o[n++] = mk(&ping, 4, 4, "h1", "ul0", DT_HOOK_UPLINK_OUT, 100100, UL_H1, UL_H2);
	o[n++] = mk(&ping, 4, 4, "h3", "ul0", DT_HOOK_UPLINK_IN, 10, UL_H3, UL_H3);
	o[n] = mk(&ping, 4, 4, "h2", "ul0", DT_HOOK_DROP, 50, UL_H1, UL_H2);
	o[n++].flags = DT_SAMPLE_F_ENCAP;
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.packets[0].n_hops, 4);
	expect_hop(&r.packets[0].hops[2], "h2", "ul0", DT_HOOK_DROP);
	expect_hop(&r.packets[0].hops[3], "h3", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DROPPED, "a drop and no exit: dropped");
	/* Not the last hop: the verdict still names the drop, after h1's uplink. */
	cr_expect_str_eq(r.verdict.sentence,
			 "1 of 1 packets dropped at h2/ul0 (after h1/ul0 uplink-out)");
	/* The drop is on another node than the hop before it: only the drop row counts it. */
	cr_expect_eq(find_row(&r, DT_DIR_REQUEST, "h1", "ul0", DT_HOOK_UPLINK_OUT)->dropped, 0);
	cr_expect_eq(find_row(&r, DT_DIR_REQUEST, "h2", "ul0", DT_HOOK_DROP)->dropped, 1);
	report_clear(&r);
}

Test(paths, a_drop_ends_its_visit)
{
	struct dt_obs o[8];
	struct dt_report r = {0};
	size_t n = 0;

	/* h1 drops a copy; the packet comes back to h1 later from h2 (clock far behind):
	 * the entry after the drop is a visit of its own, placed after h2's hand-off. */
	o[n++] = mk(&ping, 4, 4, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[n++] = mk(&ping, 4, 4, "h1", "br0", DT_HOOK_DROP, 1100, 0, 0);
	o[n++] = mk(&ping, 4, 4, "h1", "ul0", DT_HOOK_UPLINK_IN, 1200, UL_H2, UL_H1);
	o[n++] = mk(&ping, 4, 4, "h2", "ul0", DT_HOOK_UPLINK_OUT, 5, UL_H2, UL_H1);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.packets[0].n_hops, 4);
	expect_hop(&r.packets[0].hops[1], "h1", "br0", DT_HOOK_DROP);
	expect_hop(&r.packets[0].hops[2], "h2", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&r.packets[0].hops[3], "h1", "ul0", DT_HOOK_UPLINK_IN);
	report_clear(&r);
}

Test(paths, direction_is_part_of_packet_identity)
{
	struct dt_obs o[2];
	struct dt_report r = {0};

	/* Same canonical tuple, ip_id and ident (a flow that is its own reverse). */
	o[0] = mk(&ping, 1, 1, "h1", "pt1", DT_HOOK_PORT_IN, 1000, 0, 0);
	o[1] = mk(&ping, 1, 1, "h1", "pt1", DT_HOOK_PORT_OUT, 2000, 0, 0);
	o[1].dir = DT_DIR_REPLY;
	cr_assert_eq(build(o, 2, &r), 0);
	cr_assert_eq(r.n_packets, 2);
	cr_expect_eq(r.packets[0].n_hops, 1);
	cr_expect_eq(r.packets[1].direction, DT_DIR_REPLY);
	report_clear(&r);
}

Test(paths, stats_are_per_direction)
{
	struct dt_obs o[16];
	struct dt_report r = {0};
	size_t n = 0, i;

	/* The same hop pair in both directions (hairpin-like naming): two summaries. */
	n = add_packet(o, n, &ping, 1, 1000000, 1000, 50000, 8000, 0, false);
	n = add_packet(o, n, &ping, 2, 2000000, 3000, 50000, 8000, 0, false);
	for (i = 4; i < 8; i++) {
		o[i].dir = DT_DIR_REPLY;
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_stats, 6);
	cr_expect_eq(r.stats[0].count, 1);
	cr_expect_eq(r.stats[0].min_ns, 1000);
	cr_expect_eq(r.stats[3].min_ns, 3000);
	report_clear(&r);
}

/* ------------------------------------------------------------------------------------ */
/* Copies: the overlay floods (head-end replication to every remote VTEP) */

#define UL_H4 0xc0a80004u

/* What happens at a flooded copy's receiver. */
enum rx {
	RX_FILTERED, /* the bridge discards it: NOT_SPECIFIED in br_handle_frame_finish */
	RX_DELIVER,  /* port-out to the instance */
	RX_RULE,     /* a firewall rule drops it: NETFILTER_DROP */
	RX_NOTHING,  /* lost on the wire: the receiver saw nothing */
};

/*
 * One ping i1 -> i2 that h1 floods to h3, h2 and h4 (in that order), each receiver doing
 * what rx[] says (h3, h2, h4). skew shifts the receivers' clocks. Returns the new n.
 */
static size_t add_flooded(struct dt_obs *o, size_t n, uint16_t ip_id, uint64_t t0,
			  const enum rx rx[3], int64_t skew)
{
	static const char *const node[3] = {"h3", "h2", "h4"};
	static const uint32_t ul[3] = {UL_H3, UL_H2, UL_H4};
	uint32_t ident = 7u << 16 | ip_id;

	o[n++] = mk(&ping, ip_id, ident, "h1", "pt1", DT_HOOK_PORT_IN, t0, 0, 0);
	for (int k = 0; k < 3; k++) {
		uint64_t t = t0 + 100000 + 1000 * (uint64_t)k + (uint64_t)skew;

		o[n++] = mk(&ping, ip_id, ident, "h1", "ul0", DT_HOOK_UPLINK_OUT,
			    t0 + 10000 + 1000 * (uint64_t)k, UL_H1, ul[k]);
		if (rx[k] == RX_NOTHING) {
			continue;
		}
		o[n++] =
			mk(&ping, ip_id, ident, node[k], "ul0", DT_HOOK_UPLINK_IN, t, UL_H1, ul[k]);
		switch (rx[k]) {
		case RX_FILTERED:
			o[n++] = mk_drop(&ping, ip_id, node[k], "vxlan0", t + 5000, 2,
					 "NOT_SPECIFIED", "br_handle_frame_finish+0x1a0");
			break;
		case RX_RULE:
			o[n++] = mk_drop(&ping, ip_id, node[k], "br0", t + 5000, 6,
					 "NETFILTER_DROP", "nf_hook_slow+0x8c");
			break;
		default:
			o[n++] = mk(&ping, ip_id, ident, node[k], "pt2", DT_HOOK_PORT_OUT, t + 8000,
				    0, 0);
			break;
		}
	}
	return n;
}

static const enum rx healthy_flood[3] = {RX_FILTERED, RX_DELIVER, RX_FILTERED};

/* The destination branch of p is h1/pt1 -> h1/ul0 (to h2) -> h2/ul0 -> last. */
static void expect_dest_branch(const struct dt_packet_path *p, const char *last_if,
			       uint8_t last_hook)
{
	expect_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN);
	expect_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT);
	expect_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN);
	expect_hop(&p->hops[3], "h2", last_if, last_hook);
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(p->hops[i].branch, DT_BRANCH_DEST, "hop %d", i);
		cr_expect_eq(p->hops[i].parent, i ? i - 1 : DT_HOP_ROOT, "hop %d", i);
		cr_expect_eq(p->hops[i].copy_end, DT_COPY_NONE, "hop %d", i);
	}
}

Test(paths, flooded_copies_are_branches_and_not_losses)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0, i, j;

	for (i = 0; i < 5; i++) {
		n = add_flooded(o, n, (uint16_t)(10 + i), 1000000 * (i + 1), healthy_flood, 0);
	}
	shuffle(o, n, 77);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 5);
	cr_expect_str_eq(r.verdict.sentence, "no loss: 5 of 5 packets delivered");
	cr_expect_eq(r.verdict.delivered, 5);
	cr_expect_eq(r.task.colored, 5);
	cr_expect_eq(r.task.delivered, 5);
	for (i = 0; i < r.n_packets; i++) {
		const struct dt_packet_path *p = &r.packets[i];

		cr_assert_eq(p->n_hops, 10, "three uplink-outs, two filtered copies");
		cr_expect_eq(p->fate, DT_FATE_DELIVERED);
		cr_expect(p->dest_known);
		cr_expect_eq(p->n_copies, 2);
		expect_dest_branch(p, "pt2", DT_HOOK_PORT_OUT);
		for (j = 4; j < p->n_hops; j++) {
			cr_expect_eq(p->hops[j].branch, DT_BRANCH_COPY);
			cr_expect_lt(p->hops[j].parent, j);
			if (p->hops[j].at.hook == DT_HOOK_UPLINK_OUT) {
				cr_expect_eq(p->hops[j].parent, 0, "each copy leaves from port-in");
			}
			if (p->hops[j].at.hook == DT_HOOK_DROP) {
				cr_expect_eq(p->hops[j].copy_end, DT_COPY_FILTERED);
				cr_expect_str_eq(p->hops[j].drop_name, "NOT_SPECIFIED");
			} else {
				cr_expect_eq(p->hops[j].copy_end, DT_COPY_NONE);
			}
		}
	}
	/* The loss table has the destination branch only. */
	cr_assert_eq(r.n_rows, 4);
	for (i = 0; i < r.n_rows; i++) {
		cr_expect_eq(r.rows[i].seen, 5);
		cr_expect_eq(r.rows[i].dropped + r.rows[i].vanished, 0);
		cr_expect(strcmp(r.rows[i].at.node, "h3") && strcmp(r.rows[i].at.node, "h4"));
	}
	/* Copies: where they ended, counted. */
	cr_assert_eq(r.n_copy_rows, 2);
	expect_ref(&r.copy_rows[0].at, "h3", "vxlan0", DT_HOOK_DROP);
	expect_ref(&r.copy_rows[1].at, "h4", "vxlan0", DT_HOOK_DROP);
	for (i = 0; i < 2; i++) {
		cr_expect_eq(r.copy_rows[i].end, DT_COPY_FILTERED);
		cr_expect_eq(r.copy_rows[i].count, 5);
		cr_expect_str_eq(r.copy_rows[i].reason, "NOT_SPECIFIED");
	}
	/* Latency: real parent -> child pairs only; the destination's three, then copies. */
	for (i = 0; i < r.n_stats; i++) {
		const struct dt_hop_stat *st = &r.stats[i];

		/* port-in -> uplink-out is taken by both copies of every packet */
		cr_expect_eq(st->count, st->branch == DT_BRANCH_COPY && i == 3 ? 10 : 5, "stat %zu",
			     i);
		cr_expect(!(strcmp(st->from.node, st->to.node) && strcmp(st->from.node, "h1")),
			  "a pair across nodes starts at the sender: %s -> %s", st->from.node,
			  st->to.node);
	}
	cr_assert_eq(r.n_stats, 8, "3 pairs on the destination branch, 5 on copies");
	for (i = 0; i < 3; i++) {
		cr_expect_eq(r.stats[i].branch, DT_BRANCH_DEST);
	}
	expect_ref(&r.stats[1].to, "h2", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(r.stats[3].branch, DT_BRANCH_COPY);
	expect_ref(&r.stats[3].from, "h1", "pt1", DT_HOOK_PORT_IN);
	expect_ref(&r.stats[3].to, "h1", "ul0", DT_HOOK_UPLINK_OUT);
	report_clear(&r);
}

static const enum rx dropped_flood[3] = {RX_FILTERED, RX_RULE, RX_FILTERED};
static const enum rx lost_flood[3] = {RX_FILTERED, RX_NOTHING, RX_FILTERED};

static void expect_same_ref(const struct dt_hop_ref *got, const struct dt_hop_ref *want)
{
	expect_ref(got, want->node, want->ifname, want->hook);
}

/* The tick and a task's counts build reports without the packet list (ctx.no_packets): every
 * count, table and the verdict must be those of the full report. */
Test(paths, a_report_without_packets_has_the_same_tables_and_verdict)
{
	struct dt_obs o[64];
	struct dt_report full = {0}, bare = {0};
	size_t n = 0, i;

	for (i = 0; i < 5; i++) {
		n = add_flooded(o, n, (uint16_t)(10 + i), 1000000 * (i + 1),
				i == 2	 ? dropped_flood
				: i == 3 ? lost_flood
					 : healthy_flood,
				0);
	}
	shuffle(o, n, 5);
	cr_assert_eq(build(o, n, &full), 0);
	ctx.no_packets = true;
	cr_assert_eq(build(o, n, &bare), 0);
	ctx.no_packets = false;
	cr_assert_eq(full.n_packets, 5);
	cr_expect_eq(bare.n_packets, 0);
	cr_expect_null(bare.packets);
	cr_expect_eq(bare.task.colored, full.task.colored);
	cr_expect_eq(bare.task.delivered, full.task.delivered);
	cr_expect_str_eq(bare.verdict.sentence, full.verdict.sentence);
	cr_expect_eq(bare.verdict.delivered, full.verdict.delivered);
	cr_expect_eq(bare.verdict.dropped, full.verdict.dropped);
	cr_expect_eq(bare.verdict.vanished, full.verdict.vanished);
	cr_expect_str_eq(bare.verdict.reason, full.verdict.reason);
	expect_same_ref(&bare.verdict.at, &full.verdict.at);
	cr_assert_eq(bare.n_stats, full.n_stats);
	for (i = 0; i < full.n_stats; i++) {
		expect_same_ref(&bare.stats[i].from, &full.stats[i].from);
		expect_same_ref(&bare.stats[i].to, &full.stats[i].to);
		cr_expect_eq(bare.stats[i].count, full.stats[i].count);
		cr_expect_eq(bare.stats[i].min_ns, full.stats[i].min_ns);
		cr_expect_eq(bare.stats[i].max_ns, full.stats[i].max_ns);
		cr_expect_eq(bare.stats[i].mean_ns, full.stats[i].mean_ns);
		cr_expect_eq(bare.stats[i].stddev_ns, full.stats[i].stddev_ns);
	}
	cr_assert_eq(bare.n_rows, full.n_rows);
	for (i = 0; i < full.n_rows; i++) {
		expect_same_ref(&bare.rows[i].at, &full.rows[i].at);
		cr_expect_eq(bare.rows[i].seen, full.rows[i].seen);
		cr_expect_eq(bare.rows[i].dropped, full.rows[i].dropped);
		cr_expect_eq(bare.rows[i].vanished, full.rows[i].vanished);
		cr_expect_str_eq(bare.rows[i].top_reason, full.rows[i].top_reason);
	}
	cr_assert_eq(bare.n_copy_rows, full.n_copy_rows);
	for (i = 0; i < full.n_copy_rows; i++) {
		expect_same_ref(&bare.copy_rows[i].at, &full.copy_rows[i].at);
		cr_expect_eq(bare.copy_rows[i].count, full.copy_rows[i].count);
		cr_expect_eq(bare.copy_rows[i].end, full.copy_rows[i].end);
		cr_expect_str_eq(bare.copy_rows[i].reason, full.copy_rows[i].reason);
	}
	report_clear(&full);
	report_clear(&bare);
}

Test(paths, a_drop_at_the_destination_is_the_verdict_whatever_the_copies)
{
	static const enum rx rx[3] = {RX_FILTERED, RX_RULE, RX_FILTERED};
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0, i;

	for (i = 0; i < 4; i++) {
		n = add_flooded(o, n, (uint16_t)(20 + i), 1000000 * (i + 1), rx, 0);
	}
	shuffle(o, n, 5);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence, "4 of 4 packets dropped at h2/br0 (after h2/ul0 "
					     "uplink-in), reason NETFILTER_DROP");
	for (i = 0; i < r.n_packets; i++) {
		cr_expect_eq(r.packets[i].fate, DT_FATE_DROPPED);
		cr_expect_str_eq(r.packets[i].drop_name, "NETFILTER_DROP");
		expect_dest_branch(&r.packets[i], "br0", DT_HOOK_DROP);
		cr_expect_eq(r.packets[i].n_copies, 2);
	}
	report_clear(&r);
}

Test(paths, a_rule_on_a_bystander_drops_a_copy_not_the_packet)
{
	static const enum rx rx[3] = {RX_RULE, RX_DELIVER, RX_FILTERED};
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_flooded(o, n, 30, 1000000, rx, 0);
	n = add_flooded(o, n, 31, 2000000, rx, 0);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence, "no loss: 2 of 2 packets delivered");
	cr_assert_eq(r.n_copy_rows, 2);
	expect_ref(&r.copy_rows[0].at, "h3", "br0", DT_HOOK_DROP);
	cr_expect_eq(r.copy_rows[0].end, DT_COPY_DROPPED);
	cr_expect_str_eq(r.copy_rows[0].reason, "NETFILTER_DROP");
	cr_expect_eq(r.copy_rows[0].count, 2);
	cr_expect_eq(r.copy_rows[1].end, DT_COPY_FILTERED);
	report_clear(&r);
}

Test(paths, lost_on_the_way_to_the_destination_is_placed_on_that_copy)
{
	/* h2's copy never arrives; h3's rule drop and h4's discard are bystanders'. */
	static const enum rx rx[3] = {RX_RULE, RX_NOTHING, RX_FILTERED};
	struct dt_obs o[32];
	struct dt_report r = {0};
	const struct dt_packet_path *p;
	size_t n = 0;

	n = add_flooded(o, n, 40, 1000000, rx, 0);
	cr_assert_eq(build(o, n, &r), 0);
	p = &r.packets[0];
	cr_expect_eq(p->fate, DT_FATE_VANISHED);
	cr_expect_str_eq(r.verdict.sentence,
			 "1 of 1 packets vanished after h1/ul0 uplink-out (no drop seen)");
	expect_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT);
	cr_expect_eq(p->hops[1].branch, DT_BRANCH_DEST);
	cr_expect_eq(p->n_copies, 2);
	report_clear(&r);
}

Test(paths, a_copy_seen_before_its_sender_still_hangs_from_it)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0;

	/* The receivers' clocks are far behind: their samples are older than h1's. */
	n = add_flooded(o, n, 50, 10000000, healthy_flood, -9000000);
	shuffle(o, n, 9);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 1);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DELIVERED);
	expect_dest_branch(&r.packets[0], "pt2", DT_HOOK_PORT_OUT);
	cr_expect_eq(r.packets[0].n_copies, 2);
	report_clear(&r);
}

Test(paths, a_copy_whose_sender_sample_is_missing_hangs_from_the_sender)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	const struct dt_packet_path *p;
	size_t n = 0, i, m = 0;

	n = add_flooded(o, n, 60, 1000000, healthy_flood, 0);
	/* Lose h1's uplink-out towards h2 (ring full, say). */
	for (i = 0; i < n; i++) {
		if (!(o[i].hook == DT_HOOK_UPLINK_OUT && o[i].outer_daddr == htonl(UL_H2))) {
			o[m++] = o[i];
		}
	}
	cr_assert_eq(m, n - 1);
	cr_assert_eq(build(o, m, &r), 0);
	p = &r.packets[0];
	cr_expect_eq(p->fate, DT_FATE_DELIVERED);
	expect_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN);
	expect_hop(&p->hops[1], "h2", "ul0", DT_HOOK_UPLINK_IN);
	cr_expect_eq(p->hops[1].parent, 0, "h2 received from h1: it hangs from h1's first hop");
	expect_hop(&p->hops[2], "h2", "pt2", DT_HOOK_PORT_OUT);
	cr_expect_eq(p->n_copies, 2);
	report_clear(&r);
}

Test(paths, without_hosts_the_branches_alone_decide_and_the_report_says_so)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0;

	ctx.host_of = NULL;
	n = add_flooded(o, n, 70, 1000000, healthy_flood, 0);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DELIVERED);
	cr_expect_not(r.packets[0].dest_known);
	cr_expect_eq(r.packets[0].n_copies, 2);
	cr_expect_eq(r.verdict.dest_unknown, 1);
	cr_expect_str_eq(r.verdict.sentence,
			 "no loss: 1 of 1 packets delivered; destination of 1 not known to any "
			 "node (judged from their branches)");
	report_clear(&r);
}

Test(paths, a_port_that_hosts_the_destination_decides_without_the_hosts_table)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	/* Right after an analyzer restart it has heard of no hosts yet: the agent's HOSTED
	 * flag on the delivering port-out is enough to know the destination. */
	ctx.host_of = NULL;
	n = add_flooded(o, n, 71, 1000000, healthy_flood, 0);
	for (i = 0; i < n; i++) {
		if (o[i].hook == DT_HOOK_PORT_OUT && o[i].node == name("h2")) {
			o[i].flags |= DT_SAMPLE_F_HOSTED;
		}
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DELIVERED);
	cr_expect(r.packets[0].dest_known);
	cr_expect_eq(r.verdict.dest_unknown, 0);
	cr_expect_str_eq(r.verdict.sentence, "no loss: 1 of 1 packets delivered");
	report_clear(&r);
}

Test(paths, a_young_packet_with_only_a_copy_seen_is_in_flight)
{
	static const enum rx rx[3] = {RX_FILTERED, RX_NOTHING, RX_NOTHING};
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	n = add_flooded(o, n, 80, 1000000, rx, 0);
	for (i = 0; i < n; i++) {
		o[i].arrival_ms = ctx.now_ms - 10; /* arrived just now */
	}
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[0].fate, DT_FATE_IN_FLIGHT);
	cr_expect_eq(r.verdict.judged, 0);
	report_clear(&r);
}

Test(paths, a_port_out_to_another_instance_is_a_filtered_copy)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0;

	/* Unknown MAC: h2's bridge also floods to pt3, whose instance is not i2. */
	n = add_flooded(o, n, 90, 1000000, healthy_flood, 0);
	o[n] = mk(&ping, 90, 7u << 16 | 90, "h2", "pt3", DT_HOOK_PORT_OUT, 1200000, 0, 0);
	o[n++].flags = DT_SAMPLE_F_STRANGER;
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.packets[0].fate, DT_FATE_DELIVERED);
	expect_dest_branch(&r.packets[0], "pt2", DT_HOOK_PORT_OUT);
	cr_expect_eq(r.packets[0].n_copies, 3);
	cr_expect_eq(
		r.packets[0].hops[hop_at(&r.packets[0], "h2", "pt3", DT_HOOK_PORT_OUT)].copy_end,
		DT_COPY_FILTERED);
	report_clear(&r);
}

/* ------------------------------------------------------------------------------------ */
/* Fragments: a datagram is delivered only when all of its fragments are */

static const struct flow udp_flow = {0x0a640001, 0x0a640002, 40000, 6000, IPPROTO_UDP, 100};

/* The four hops h1 -> h2 of one fragment (offset in 8-byte units, more, IP length). */
static size_t add_frag(struct dt_obs *o, size_t n, uint16_t ip_id, uint64_t t0, uint16_t off,
		       bool more, uint32_t len, bool lost_at_h2)
{
	size_t i, n0 = n;

	n = add_packet(o, n, &udp_flow, ip_id, t0, 10000, 50000, 8000, 0, false);
	if (lost_at_h2) {
		n--; /* no port-out at h2: dropped after its uplink-in */
		o[n++] = mk_drop(&udp_flow, ip_id, "h2", "br0", t0 + 65000, 6, "NETFILTER_DROP",
				 "nf_hook_slow+0x8c");
		o[n - 1].ident = 7u << 16 | ip_id;
	}
	for (i = n0; i < n; i++) {
		o[i].frag = (uint16_t)(off | (more ? DT_FRAG_MF : 0));
		o[i].len = len;
	}
	return n;
}

Test(paths, a_datagram_is_delivered_when_all_its_fragments_are)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i;

	/* 4000 bytes of UDP in three fragments (1480 + 1480 + 1048 payload bytes). */
	n = add_frag(o, n, 77, 1000000, 0, true, 1500, false);
	n = add_frag(o, n, 77, 1000100, 185, true, 1500, false);
	n = add_frag(o, n, 77, 1000200, 370, false, 1068, false);
	shuffle(o, n, 11);
	cr_assert_eq(build(o, n, &r), 0);
	cr_assert_eq(r.n_packets, 3, "one packet per fragment");
	cr_expect_str_eq(r.verdict.sentence, "no loss: 1 of 1 packets delivered");
	cr_expect_eq(r.task.colored, 1, "one datagram");
	cr_expect_eq(r.task.delivered, 1);
	for (i = 0; i < 3; i++) {
		cr_expect_eq(r.packets[i].fate, DT_FATE_DELIVERED);
		cr_expect_eq(r.packets[i].datagram_fate, DT_FATE_DELIVERED);
		cr_expect_eq(r.packets[i].frag & DT_FRAG_OFFSET, 185 * i);
	}
	report_clear(&r);
}

Test(paths, a_datagram_whose_last_fragment_is_dropped_is_dropped_there)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0, i;

	for (i = 0; i < 3; i++) {
		uint16_t id = (uint16_t)(80 + i);
		uint64_t t = 1000000 * (i + 1);

		n = add_frag(o, n, id, t, 0, true, 1500, false);
		n = add_frag(o, n, id, t + 100, 185, true, 1500, false);
		n = add_frag(o, n, id, t + 200, 370, false, 1068, true);
	}
	shuffle(o, n, 5);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence, "3 of 3 packets dropped at h2/br0 (after h2/ul0 "
					     "uplink-in), reason NETFILTER_DROP");
	cr_expect_eq(r.verdict.judged, 3);
	cr_expect_eq(r.task.delivered, 0);
	for (i = 0; i < r.n_packets; i++) {
		uint8_t own = (r.packets[i].frag & DT_FRAG_OFFSET) == 370 ? DT_FATE_DROPPED
									  : DT_FATE_DELIVERED;

		cr_expect_eq(r.packets[i].fate, own, "each fragment keeps its own fate");
		cr_expect_eq(r.packets[i].datagram_fate, DT_FATE_DROPPED);
	}
	report_clear(&r);
}

Test(paths, a_datagram_missing_a_fragment_nobody_saw_vanished)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_frag(o, n, 90, 1000000, 0, true, 1500, false);
	n = add_frag(o, n, 90, 1000200, 370, false, 1068, false); /* 185 never seen */
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.verdict.vanished, 1);
	cr_expect_eq(r.verdict.judged, 1);
	cr_expect_eq(r.packets[0].datagram_fate, DT_FATE_VANISHED);
	report_clear(&r);
}

/* One hop of fragment (off, more, len) of datagram ip_id; refrag: the node colored it again. */
static struct dt_obs frag_hop(uint16_t ip_id, const char *node, const char *ifname, uint8_t hook,
			      uint64_t ts, uint16_t off, bool more, uint32_t len, bool refrag)
{
	uint32_t os = 0, od = 0;
	struct dt_obs o;

	if (hook == DT_HOOK_UPLINK_OUT || hook == DT_HOOK_UPLINK_IN) {
		os = UL_H1;
		od = UL_H2;
	}
	o = mk(&udp_flow, ip_id, 7u << 16 | ip_id, node, ifname, hook, ts, os, od);
	o.frag = (uint16_t)(off | (more ? DT_FRAG_MF : 0));
	o.len = len;
	o.flags = refrag ? DT_SAMPLE_F_REFRAG : 0;
	return o;
}

/*
 * h1's bridge reassembled a datagram that left i1 in three fragments of 1480 bytes and
 * fragmented it anew for a smaller VXLAN MTU, in three of 1424: the old fragments end at
 * h1 (reassembled, not lost), the new ones carry the datagram to i2, and the verdict says
 * the MTU along the overlay is inconsistent, never that h1 lost anything.
 */
Test(paths, a_refragmented_datagram_is_delivered_and_the_mtu_named)
{
	struct dt_obs o[32];
	struct dt_report r = {0};
	size_t n = 0, i, reassembled = 0;
	static const uint16_t old_off[3] = {0, 185, 370}, new_off[3] = {0, 178, 356};
	static const uint32_t old_len[3] = {1500, 1500, 1068}, new_len[3] = {1444, 1444, 1180};

	for (i = 0; i < 3; i++) {
		uint64_t t = 1000000 + i * 100;

		o[n++] = frag_hop(60, "h1", "pt1", DT_HOOK_PORT_IN, t, old_off[i], i < 2,
				  old_len[i], false);
		o[n++] = frag_hop(60, "h1", "ul0", DT_HOOK_UPLINK_OUT, t + 20000, new_off[i], i < 2,
				  new_len[i], true);
		o[n++] = frag_hop(60, "h2", "ul0", DT_HOOK_UPLINK_IN, t + 70000, new_off[i], i < 2,
				  new_len[i], false);
		o[n++] = frag_hop(60, "h2", "pt2", DT_HOOK_PORT_OUT, t + 80000, new_off[i], i < 2,
				  new_len[i], false);
	}
	shuffle(o, n, 42);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(
		r.verdict.sentence,
		"no loss: 1 of 1 packets delivered; 1 datagram refragmented at h1 (the MTU "
		"along the overlay is inconsistent)");
	cr_expect_eq(r.task.delivered, 1);
	cr_assert_eq(r.n_packets, 5, "fragments 0 (old and new), 178, 185, 356, 370: %u",
		     r.n_packets);
	for (i = 0; i < r.n_packets; i++) {
		cr_expect_eq(r.packets[i].datagram_fate, DT_FATE_DELIVERED);
		reassembled += r.packets[i].fate == DT_FATE_REASSEMBLED;
	}
	cr_expect_eq(reassembled, 2, "the old fragments 185 and 370 ended in h1's reassembly");
	for (i = 0; i < r.n_rows; i++) {
		cr_expect_eq(r.rows[i].vanished, 0, "no hop lost anything");
	}
	report_clear(&r);
}

/* ------------------------------------------------------------------------------------ */
/* Packets segmented after their first hop (GSO), and merged again by a receiver (GRO) */

static const struct flow tcp_flow = {0x0a640001, 0x0a640002, 40000, 5201, IPPROTO_TCP, 100};

#define SEQ0 0x10000000u
#define MSS 1448u

/* What h1's first hop and uplink saw of packet (ip_id, ident, len) before segmentation. */
static size_t add_whole(struct dt_obs *o, size_t n, const struct flow *f, uint16_t ip_id,
			uint32_t ident, uint32_t len, uint64_t t0)
{
	o[n] = mk(f, ip_id, ident, "h1", "pt1", DT_HOOK_PORT_IN, t0, 0, 0);
	o[n++].len = len;
	o[n] = mk(f, ip_id, ident, "h1", "ul0", DT_HOOK_UPLINK_OUT, t0 + 10000, UL_H1, UL_H2);
	o[n++].len = len;
	return n;
}

/* What h2 saw of a segment (ip_id, ident, len): delivered, dropped on its bridge, or (at
 * == 0) nothing. */
enum seg_end { SEG_UNSEEN, SEG_DELIVERED, SEG_DROPPED };

static size_t add_piece(struct dt_obs *o, size_t n, const struct flow *f, uint16_t ip_id,
			uint32_t ident, uint32_t len, uint64_t t0, enum seg_end end)
{
	if (end == SEG_UNSEEN) {
		return n;
	}
	o[n] = mk(f, ip_id, ident, "h2", "ul0", DT_HOOK_UPLINK_IN, t0 + 60000, UL_H1, UL_H2);
	o[n++].len = len;
	if (end == SEG_DROPPED) {
		o[n] = mk_drop(f, ip_id, "h2", "br0", t0 + 65000, 6, "NETFILTER_DROP",
			       "nf_hook_slow+0x8c");
		o[n].ident = ident;
		o[n++].len = len;
	} else {
		o[n] = mk(f, ip_id, ident, "h2", "pt2", DT_HOOK_PORT_OUT, t0 + 70000, 0, 0);
		o[n++].len = len;
	}
	return n;
}

/* One TCP packet of three full segments (52 bytes of headers), cut at h1's uplink. */
static size_t add_tcp_gso(struct dt_obs *o, size_t n, uint16_t ip_id, uint32_t seq, uint64_t t0,
			  const enum seg_end end[3])
{
	n = add_whole(o, n, &tcp_flow, ip_id, seq, 52 + 3 * MSS, t0);
	for (uint32_t k = 0; k < 3; k++) {
		n = add_piece(o, n, &tcp_flow, (uint16_t)(ip_id + k), seq + k * MSS, 52 + MSS,
			      t0 + k * 100, end[k]);
	}
	return n;
}

static void expect_all_datagram_fates(const struct dt_report *r, uint8_t fate)
{
	for (uint32_t i = 0; i < r->n_packets; i++) {
		cr_expect_eq(r->packets[i].datagram_fate, fate, "packet %u: %s", i,
			     dt_fate_name(r->packets[i].datagram_fate));
	}
}

Test(paths, a_packet_segmented_after_its_first_hop_is_one_packet)
{
	static const enum seg_end all[3] = {SEG_DELIVERED, SEG_DELIVERED, SEG_DELIVERED};
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_tcp_gso(o, n, 100, SEQ0, 1000000, all);
	n = add_tcp_gso(o, n, 103, SEQ0 + 3 * MSS, 2000000, all);
	shuffle(o, n, 3);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence, "no loss: 2 of 2 packets delivered");
	cr_expect_eq(r.task.colored, 2);
	cr_expect_eq(r.task.delivered, 2);
	cr_expect_eq(r.n_packets, 6, "each packet and its two later segments");
	expect_all_datagram_fates(&r, DT_FATE_DELIVERED);
	report_clear(&r);
}

Test(paths, a_segment_dropped_after_segmentation_drops_its_packet_there)
{
	static const enum seg_end mid[3] = {SEG_DELIVERED, SEG_DROPPED, SEG_DELIVERED};
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_tcp_gso(o, n, 100, SEQ0, 1000000, mid);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence, "1 of 1 packets dropped at h2/br0 (after h2/ul0 "
					     "uplink-in), reason NETFILTER_DROP");
	cr_expect_eq(r.task.delivered, 0);
	expect_all_datagram_fates(&r, DT_FATE_DROPPED);
	report_clear(&r);
}

Test(paths, a_segment_nobody_saw_leaves_its_packet_vanished_where_it_was_whole)
{
	static const enum seg_end mid[3] = {SEG_DELIVERED, SEG_UNSEEN, SEG_DELIVERED};
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_tcp_gso(o, n, 100, SEQ0, 1000000, mid);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence,
			 "1 of 1 packets vanished after h1/ul0 uplink-out (no drop seen)");
	expect_all_datagram_fates(&r, DT_FATE_VANISHED);
	report_clear(&r);
}

Test(paths, a_retransmission_does_not_cover_the_lost_original)
{
	static const enum seg_end mid[3] = {SEG_DELIVERED, SEG_UNSEEN, SEG_DELIVERED};
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_tcp_gso(o, n, 100, SEQ0, 1000000, mid);
	/* The sender retransmits the missing segment, colored again, with a later id. */
	n = add_whole(o, n, &tcp_flow, 140, SEQ0 + MSS, 52 + MSS, 5000000);
	n = add_piece(o, n, &tcp_flow, 140, SEQ0 + MSS, 52 + MSS, 5000000, SEG_DELIVERED);
	shuffle(o, n, 8);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.task.colored, 2);
	cr_expect_eq(r.verdict.vanished, 1, "the original lost a segment");
	cr_expect_eq(r.verdict.delivered, 1, "the retransmission arrived");
	report_clear(&r);
}

/* h2's GRO merged the second segment of packet A with the first of packet B: B's first
 * segment never shows under B's id, yet all of B's bytes arrived. */
Test(paths, a_receivers_merge_across_packets_delivers_both)
{
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0;

	n = add_whole(o, n, &tcp_flow, 100, SEQ0, 52 + 2 * MSS, 1000000);
	n = add_whole(o, n, &tcp_flow, 102, SEQ0 + 2 * MSS, 52 + 2 * MSS, 1000500);
	n = add_piece(o, n, &tcp_flow, 100, SEQ0, 52 + MSS, 1000000, SEG_DELIVERED);
	n = add_piece(o, n, &tcp_flow, 101, SEQ0 + MSS, 52 + 2 * MSS, 1000100, SEG_DELIVERED);
	n = add_piece(o, n, &tcp_flow, 103, SEQ0 + 3 * MSS, 52 + MSS, 1000600, SEG_DELIVERED);
	shuffle(o, n, 21);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_str_eq(r.verdict.sentence, "no loss: 2 of 2 packets delivered");
	cr_expect_eq(r.task.colored, 2);
	cr_expect_eq(r.task.delivered, 2);
	report_clear(&r);
}

/* UDP GSO: every segment is a datagram of its own, with its own length and so its own ident
 * (first payload bytes XOR UDP length << 16); the first keeps the packet's first bytes. The
 * socket's next packet takes the next id, which its segments take too. */
static uint32_t udp_ident(char c, uint32_t ip_len)
{
	return (uint32_t)(unsigned char)c * 0x01010101u ^ (ip_len - 20) << 16;
}

static size_t add_udp_gso(struct dt_obs *o, size_t n, uint16_t ip_id, uint64_t t0,
			  const enum seg_end end[3])
{
	static const char first[3] = {'A', 'B', 'Z'};

	n = add_whole(o, n, &udp_flow, ip_id, udp_ident('A', 28 + 3 * 1400), 28 + 3 * 1400, t0);
	for (uint32_t k = 0; k < 3; k++) {
		n = add_piece(o, n, &udp_flow, (uint16_t)(ip_id + k),
			      udp_ident(first[k], 28 + 1400), 28 + 1400, t0 + k * 100, end[k]);
	}
	return n;
}

Test(paths, udp_segments_are_tied_to_their_datagram)
{
	static const enum seg_end all[3] = {SEG_DELIVERED, SEG_DELIVERED, SEG_DELIVERED};
	static const enum seg_end last[3] = {SEG_DELIVERED, SEG_DELIVERED, SEG_DROPPED};
	struct dt_obs o[64];
	struct dt_report r = {0};
	size_t n = 0, i, segmented = 0;

	n = add_udp_gso(o, n, 300, 1000000, all);
	n = add_udp_gso(o, n, 301, 2000000, last); /* ids 301-303: 301 and 302 taken twice */
	shuffle(o, n, 13);
	cr_assert_eq(build(o, n, &r), 0);
	cr_expect_eq(r.task.colored, 2);
	cr_expect_eq(r.task.delivered, 1);
	cr_expect_str_eq(r.verdict.sentence, "1 of 2 packets dropped at h2/br0 (after h2/ul0 "
					     "uplink-in), reason NETFILTER_DROP");
	for (i = 0; i < r.n_packets; i++) {
		segmented += r.packets[i].fate == DT_FATE_SEGMENTED;
	}
	cr_expect_eq(segmented, 2, "each packet's own path ends where it was cut, not a loss");
	for (i = 0; i < r.n_rows; i++) {
		cr_expect(strcmp(r.rows[i].at.node, "h1") != 0 || r.rows[i].vanished == 0,
			  "h1 lost nothing");
	}
	report_clear(&r);
}
