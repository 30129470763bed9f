// SPDX-License-Identifier: MIT
/*
 * test_stitch.c - windowed, NAT-aware attribution (analyzer/stitch.c), the string table
 * (analyzer/strtab.c), and the analyzer's window_ms setting (analyzer/config.c).
 *
 * The fixture is the lab with its gateway: instance i1 (10.100.0.1, behind h1) pings or
 * connects to a server on the internet (203.0.113.10); the gateway gw masquerades it
 * behind 203.0.113.1 on ext0. Underlay: h1 192.168.0.1, gw 192.168.0.3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "analyzer.h"
#include "dt_time.h"
#include "dt_tuple.h"
#include "paths.h"
#include "stitch.h"
#include "strtab.h"
#include "tasks.h"

#define UL_H1 0xc0a80001u
#define UL_GW 0xc0a80003u
#define WIN 1000 /* ms */

static struct dt_tasks *tasks;
static struct dt_stitch *st;
static struct dt_strtab *strs;

static void setup(void)
{
	tasks = dt_tasks_new();
	st = dt_stitch_new(tasks, WIN);
	cr_assert_not_null(strs = dt_strtab_new());
}

static void teardown(void)
{
	dt_stitch_free(st);
	dt_tasks_free(tasks);
	dt_strtab_free(strs);
}

TestSuite(stitch, .init = setup, .fini = teardown);

static struct dt_tuple tuple(const char *src, uint16_t sport, const char *dst, uint16_t dport,
			     uint8_t proto, uint32_t vni)
{
	struct dt_tuple t;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(dt_ipv4_parse(src, &t.saddr), 0);
	cr_assert_eq(dt_ipv4_parse(dst, &t.daddr), 0);
	t.sport = htons(sport);
	t.dport = htons(dport);
	t.proto = proto;
	t.vni = vni;
	return t;
}

/* The flows: inside (as i1 sees it) and outside (after the masquerade). */
#define IN_REQ tuple("10.100.0.1", 40000, "203.0.113.10", 80, IPPROTO_TCP, 100)
#define OUT_REQ tuple("203.0.113.1", 61000, "203.0.113.10", 80, IPPROTO_TCP, 100)
#define OUT_REP tuple("203.0.113.10", 80, "203.0.113.1", 61000, IPPROTO_TCP, 100)
#define IN_REP tuple("203.0.113.10", 80, "10.100.0.1", 40000, IPPROTO_TCP, 100)

static struct dt_task *create(struct dt_tuple t, uint32_t flags)
{
	struct dt_task_spec spec = {.flags = flags, .tuple = t};
	struct dt_task *task;
	char err[256];

	cr_assert_eq(dt_tasks_create(tasks, &spec, 0, "acme", 1, &task, err, sizeof(err)), 0, "%s",
		     err);
	dt_task_ready(tasks, task, 0);
	return task;
}

static uint32_t name(const char *s)
{
	uint32_t idx;

	cr_assert_eq(dt_strtab_intern(strs, s, 64, &idx), 0);
	return idx;
}

/* A sample of packet (ip_id, ident) as the stitcher receives it. */
static struct dt_stitch_in sample(const char *node, const char *ifname, uint8_t hook,
				  struct dt_tuple t, uint16_t ip_id, uint64_t ts)
{
	struct dt_wire_sample w;
	struct dt_stitch_in in;

	memset(&w, 0, sizeof(w));
	w.hook = hook;
	w.ts_ns = ts;
	w.tuple = t;
	w.ip_id = ip_id;
	w.ident = 0x1000 + ip_id;
	w.len = 60;
	w.drop_name = 3; /* batch-local: the caller resolves it */
	dt_stitch_in_fill(&in, &w, name(node), name(ifname), DT_STRTAB_NONE, DT_STRTAB_NONE, 0);
	return in;
}

/* A gateway sample: tuple as seen (outside), orig inside. */
static struct dt_stitch_in nat_sample(const char *node, const char *ifname, uint8_t hook,
				      struct dt_tuple seen, struct dt_tuple inside, uint16_t ip_id,
				      uint64_t ts)
{
	struct dt_stitch_in in = sample(node, ifname, hook, seen, ip_id, ts);

	in.o.flags |= DT_SAMPLE_F_NAT;
	in.orig = inside;
	return in;
}

static struct dt_stitch_in drop_sample(const char *node, const char *ifname, struct dt_tuple t,
				       uint16_t ip_id, uint64_t ts, const char *reason)
{
	struct dt_stitch_in in = sample(node, ifname, DT_HOOK_DROP, t, ip_id, ts);

	in.o.drop_reason = 6;
	in.o.drop_name = name(reason);
	in.o.drop_where = name("nf_hook_slow+0x8c");
	return in;
}

/* Feeds in at now_ms, as the analyzer does. */
static void add(struct dt_stitch_in in, uint64_t now_ms)
{
	in.o.arrival_ms = now_ms;
	cr_assert_eq(dt_stitch_add(st, &in, now_ms), 0);
}

static bool tuple_eq(const struct dt_tuple *a, const struct dt_tuple *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto && a->vni == b->vni;
}

static void expect_obs(const struct dt_obs *o, uint8_t dir, struct dt_tuple canon)
{
	char a[DT_TUPLE_STR_MAX], b[DT_TUPLE_STR_MAX];

	cr_expect_eq(o->dir, dir, "direction %u, expected %u", o->dir, dir);
	cr_expect(tuple_eq(&o->canon, &canon), "canonical %s, expected %s",
		  dt_tuple_str(&o->canon, 0, a, sizeof(a)), dt_tuple_str(&canon, 0, b, sizeof(b)));
}

/* ------------------------------------------------------------------------------------ */

Test(stitch, first_hop_and_tuple_attribution)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_stitch_in o = sample("h1", "pt1", DT_HOOK_PORT_IN, IN_REQ, 1, 100);

	o.task_id = t->id;
	o.o.flags = DT_SAMPLE_F_FIRST_HOP;
	add(o, 10);
	add(sample("h1", "ul0", DT_HOOK_UPLINK_OUT, IN_REQ, 1, 200), 10);
	cr_assert_eq(t->n_obs, 2);
	expect_obs(&t->obs[0], DT_DIR_REQUEST, IN_REQ);
	expect_obs(&t->obs[1], DT_DIR_REQUEST, IN_REQ);
	cr_expect_eq(t->obs[1].node, name("h1"));
	cr_expect_eq(t->obs[0].arrival_ms, 10);
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_expect_eq(dt_stitch_counters(st).attributed, 2);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0);
	cr_expect_not(dt_stitch_due(st, 100000), "nothing held: no window to close");
}

Test(stitch, reply_direction_only_for_tasks_that_trace_it)
{
	struct dt_task *req = create(IN_REQ, DT_TASK_DIR_REQUEST);
	struct dt_tuple other = tuple("10.100.0.1", 40001, "203.0.113.10", 80, IPPROTO_TCP, 100);
	struct dt_tuple other_rep;
	struct dt_task *both = create(other, DT_TASK_DIR_BOTH);

	dt_tuple_reverse(&other, &other_rep);
	/* A reply of the request-only task: nobody's, held, then unmatched. */
	add(sample("h1", "pt1", DT_HOOK_PORT_OUT, IN_REP, 1, 100), 0);
	/* A reply of the task that traces both: attributed as a reply, canonical reversed. */
	add(sample("h1", "pt1", DT_HOOK_PORT_OUT, other_rep, 2, 100), 0);
	add(sample("h1", "pt1", DT_HOOK_PORT_IN, other, 3, 100), 0);
	cr_expect_eq(req->n_obs, 0);
	cr_assert_eq(both->n_obs, 2);
	expect_obs(&both->obs[0], DT_DIR_REPLY, other_rep);
	expect_obs(&both->obs[1], DT_DIR_REQUEST, other);
	cr_expect_eq(dt_stitch_n_held(st), 1);
	cr_assert(dt_stitch_tick(st, WIN));
	cr_expect_eq(dt_stitch_counters(st).unmatched, 1);
	cr_expect_eq(dt_stitch_n_held(st), 0);
}

Test(stitch, any_port_task_canonical_keeps_the_actual_ports)
{
	struct dt_tuple any = IN_REQ;
	struct dt_task *t;

	any.sport = any.dport = 0;
	t = create(any, DT_TASK_DIR_BOTH);
	add(sample("h1", "pt1", DT_HOOK_PORT_OUT, IN_REP, 1, 100), 0);
	cr_assert_eq(t->n_obs, 1);
	expect_obs(&t->obs[0], DT_DIR_REPLY, IN_REP);
}

/*
 * VTrace's case: a sample with the post-NAT tuple arrives before the gateway sample
 * that teaches the translation. It is held until the window closes, then attributed.
 */
Test(stitch, nat_learning_attributes_a_held_sample_after_the_window)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_tuple out;

	/* gw drops the packet after SNAT; this drop sample has no conntrack info. */
	add(drop_sample("gw", "ext0", OUT_REQ, 5, 900, "NETFILTER_DROP"), 0);
	cr_expect_eq(t->n_obs, 0);
	cr_expect_eq(dt_stitch_n_held(st), 1);

	/* Another packet of the flow leaves through the gateway: the lesson. */
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), 300);
	cr_assert_eq(t->n_obs, 1, "the teacher itself is attributed at once, by orig");
	expect_obs(&t->obs[0], DT_DIR_REQUEST, IN_REQ);
	cr_expect_eq(dt_stitch_counters(st).learned, 1);
	cr_expect_eq(dt_stitch_n_held(st), 1, "held samples wait for the window");

	/* The window is open until WIN ms pass with no new sample. */
	cr_expect_not(dt_stitch_tick(st, 300 + WIN - 1));
	cr_expect_eq(dt_stitch_n_held(st), 1);
	cr_assert(dt_stitch_tick(st, 300 + WIN));
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0);
	cr_expect_eq(dt_stitch_counters(st).late, 1);
	cr_assert_eq(t->n_obs, 2);
	expect_obs(&t->obs[1], DT_DIR_REQUEST, IN_REQ);
	out = OUT_REQ;
	cr_expect(tuple_eq(&t->obs[1].tuple, &out), "the sample keeps the tuple it saw");
	cr_expect_eq(t->obs[1].drop_name, name("NETFILTER_DROP"));
	cr_expect_eq(t->obs[1].arrival_ms, 0);
}

Test(stitch, a_drop_with_conntrack_orig_is_attributed_at_once)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_stitch_in o = drop_sample("gw", "ext0", OUT_REQ, 5, 900, "NETFILTER_DROP");

	o.o.flags |= DT_SAMPLE_F_NAT;
	o.orig = IN_REQ;
	add(o, 0);
	cr_assert_eq(t->n_obs, 1);
	expect_obs(&t->obs[0], DT_DIR_REQUEST, IN_REQ);
	cr_expect_eq(dt_stitch_counters(st).learned, 1, "a drop with orig teaches too");
}

Test(stitch, the_reply_through_the_nat_is_learned_from_the_request)
{
	struct dt_task *t = create(IN_REQ, DT_TASK_DIR_BOTH);

	/* The reply, dropped on gw before de-NAT (outside form, no orig), arrives first. */
	add(drop_sample("gw", "ext0", OUT_REP, 7, 2000, "TCP_INVALID_SEQUENCE"), 0);
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), 10);
	cr_assert(dt_stitch_tick(st, 10 + WIN));
	cr_assert_eq(t->n_obs, 2);
	expect_obs(&t->obs[1], DT_DIR_REPLY, IN_REP);
	cr_expect_eq(dt_stitch_counters(st).learned, 2, "outside -> inside, and its reverse");
}

Test(stitch, a_request_only_task_learns_no_reply_translation)
{
	struct dt_task *t = create(IN_REQ, 0);

	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), 0);
	add(drop_sample("gw", "ext0", OUT_REP, 7, 2000, "TCP_INVALID_SEQUENCE"), 0);
	cr_assert(dt_stitch_tick(st, WIN));
	cr_expect_eq(t->n_obs, 1);
	cr_expect_eq(dt_stitch_counters(st).learned, 1);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 1);
}

Test(stitch, a_reply_entering_at_the_gateway_is_a_reply)
{
	struct dt_task *t = create(IN_REQ, DT_TASK_DIR_REPLY);
	struct dt_stitch_in o = nat_sample("gw", "ext0", DT_HOOK_GW_IN, OUT_REP, IN_REP, 8, 3000);

	o.task_id = t->id;
	o.o.flags |= DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_REPLY;
	add(o, 0);
	add(sample("h1", "pt1", DT_HOOK_PORT_OUT, IN_REP, 8, 3100), 0);
	cr_assert_eq(t->n_obs, 2);
	expect_obs(&t->obs[0], DT_DIR_REPLY, IN_REP);
	expect_obs(&t->obs[1], DT_DIR_REPLY, IN_REP);
	/* The reply's outside tuple is learned too (a later drop before de-NAT is found). */
	add(drop_sample("gw", "ext0", OUT_REP, 9, 3200, "NETFILTER_DROP"), 0);
	cr_assert_eq(t->n_obs, 3);
	expect_obs(&t->obs[2], DT_DIR_REPLY, IN_REP);
}

Test(stitch, unrelated_samples_are_counted_never_dropped_silently)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_tuple stranger = tuple("10.100.0.9", 1, "10.100.0.8", 2, IPPROTO_UDP, 100);
	int i;

	for (i = 0; i < 5; i++) {
		add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, i, 100 + i), 100 * i);
	}
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), 400);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0, "held, not yet counted");
	cr_expect_eq(dt_stitch_n_held(st), 5);
	cr_assert(dt_stitch_tick(st, 400 + WIN));
	cr_expect_eq(dt_stitch_counters(st).unmatched, 5);
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_expect_eq(t->n_obs, 1);
	cr_expect_eq(dt_stitch_counters(st).samples, 6);
	cr_expect_eq(dt_stitch_counters(st).attributed + dt_stitch_counters(st).unmatched,
		     dt_stitch_counters(st).samples);
}

Test(stitch, a_busy_stream_still_closes_the_window)
{
	struct dt_task *t = create(IN_REQ, 0);
	uint64_t now = 0;

	add(drop_sample("gw", "ext0", OUT_REQ, 5, 900, "NETFILTER_DROP"), now);
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), now);
	/* A sample every half window: never quiet for a whole window. */
	while (now < (DT_STITCH_MAX_WAIT_WINDOWS * WIN) - WIN / 2) {
		now += WIN / 2;
		add(sample("h1", "pt1", DT_HOOK_PORT_IN, IN_REQ, (uint16_t)now, now), now);
		cr_assert_not(dt_stitch_tick(st, now), "closed at %llu", (unsigned long long)now);
	}
	/* A stranger arrives just before the forced close: it is too young to give up. */
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, tuple("1.1.1.1", 1, "2.2.2.2", 2, 17, 100), 1,
		   now),
	    now);
	now = DT_STITCH_MAX_WAIT_WINDOWS * WIN;
	cr_assert(dt_stitch_tick(st, now));
	cr_expect_eq(dt_stitch_counters(st).late, 1);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0);
	cr_expect_eq(dt_stitch_n_held(st), 1, "the young stranger stays held");
	cr_expect_eq(t->obs[t->n_obs - 1].hook, DT_HOOK_DROP);
}

Test(stitch, drops_of_unknown_vni_match_when_unambiguous)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_tuple novni = IN_REQ, other = IN_REQ;
	struct dt_task *u;

	novni.vni = 0;
	add(drop_sample("h1", "br0", novni, 1, 100, "NETFILTER_DROP"), 0);
	cr_assert_eq(t->n_obs, 1);
	expect_obs(&t->obs[0], DT_DIR_REQUEST, IN_REQ);
	/* Not for other hooks: an uplink sample always knows its VNI. */
	add(sample("h1", "ul0", DT_HOOK_UPLINK_IN, novni, 2, 100), 0);
	cr_expect_eq(dt_stitch_n_held(st), 1);

	/* Another task on another VNI with the same addresses: ambiguous. */
	other.vni = 200;
	u = create(other, 0);
	add(drop_sample("h1", "br0", novni, 3, 100, "NETFILTER_DROP"), 0);
	cr_expect_eq(t->n_obs, 1);
	cr_expect_eq(u->n_obs, 0);
	cr_expect_eq(dt_stitch_n_held(st), 2);
	cr_assert(dt_stitch_tick(st, WIN));
	cr_expect_eq(dt_stitch_counters(st).unmatched, 2);
}

Test(stitch, chained_nats_resolve)
{
	struct dt_task *t = create(IN_REQ, 0);
	/* A second gateway translates the first one's outside tuple once more. */
	struct dt_tuple out2 = tuple("198.51.100.1", 5000, "203.0.113.10", 80, IPPROTO_TCP, 100);

	add(sample("gw2", "ul0", DT_HOOK_UPLINK_IN, out2, 5, 900), 0); /* after both NATs */
	add(nat_sample("gw2", "ext0", DT_HOOK_GW_OUT, out2, OUT_REQ, 6, 1000), 0);
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 900), 0);
	cr_expect_eq(t->n_obs, 1, "gw's sample teaches at once");
	cr_expect_eq(dt_stitch_n_held(st), 2, "gw2's lesson came before gw's");
	cr_assert(dt_stitch_tick(st, WIN));
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0);
	cr_assert_eq(t->n_obs, 3);
	expect_obs(&t->obs[1], DT_DIR_REQUEST, IN_REQ);
	expect_obs(&t->obs[2], DT_DIR_REQUEST, IN_REQ);
}

/* Who hosts what: i1 (10.100.0.1) behind h1; gw is VNI 100's NAT gateway (addr 0). */
static const char *lab_host_of(const void *arg, uint32_t vni, uint32_t addr)
{
	(void)arg;
	if (vni != 100 || (addr != 0 && addr != htonl(0x0a640001))) {
		return NULL;
	}
	return addr ? "h1" : "gw";
}

/*
 * The samples of one packet i1 -> internet, through gw, dropped after SNAT, as three
 * collectors deliver them: in every order, the stitcher attributes all of them and the
 * path comes out the same.
 */
Test(stitch, out_of_order_across_collectors_gives_one_path)
{
	enum { N = 5 };
	struct dt_stitch_in s[N];
	int perm[N] = {0, 1, 2, 3, 4};
	int count = 0;

	s[0] = sample("h1", "pt1", DT_HOOK_PORT_IN, IN_REQ, 1, 1000);
	s[1] = sample("h1", "ul0", DT_HOOK_UPLINK_OUT, IN_REQ, 1, 1100);
	s[1].o.outer_saddr = htonl(UL_H1);
	s[1].o.outer_daddr = htonl(UL_GW);
	s[2] = sample("gw", "ul0", DT_HOOK_UPLINK_IN, IN_REQ, 1, 700); /* gw's clock behind */
	s[2].o.outer_saddr = htonl(UL_H1);
	s[2].o.outer_daddr = htonl(UL_GW);
	s[3] = drop_sample("gw", "ext0", OUT_REQ, 1, 800, "NETFILTER_DROP"); /* after SNAT */
	s[4] = nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 2,
			  790); /* another packet */

	for (;;) {
		struct dt_paths_ctx ctx = {strs, 4000000000000000000ull, 1ull << 40, WIN,
					   .host_of = lab_host_of};
		struct dt_report r = {0};
		struct dt_task *t;
		const struct dt_packet_path *p;
		int i, j, k;

		/* Fresh tasks and stitcher; the names stay (s[] refers to them). */
		dt_stitch_free(st);
		dt_tasks_free(tasks);
		tasks = dt_tasks_new();
		st = dt_stitch_new(tasks, WIN);
		t = create(IN_REQ, 0);
		for (i = 0; i < N; i++) {
			add(s[perm[i]], (uint64_t)i * 10);
		}
		dt_stitch_tick(st, 10 * N + WIN);
		cr_assert_eq(t->n_obs, N, "permutation %d", count);
		cr_assert_eq(dt_stitch_counters(st).unmatched, 0);
		cr_assert_eq(dt_paths_build(&ctx, t->obs, t->n_obs, &r), 0);
		cr_assert_eq(r.n_packets, 2);
		p = r.packets[0].ip_id == 1 ? &r.packets[0] : &r.packets[1];
		cr_assert_eq(p->n_hops, 4, "permutation %d", count);
		cr_expect_eq(p->hops[0].at.hook, DT_HOOK_PORT_IN);
		cr_expect_eq(p->hops[1].at.hook, DT_HOOK_UPLINK_OUT);
		cr_expect_eq(p->hops[2].at.hook, DT_HOOK_UPLINK_IN);
		cr_expect_eq(p->hops[3].at.hook, DT_HOOK_DROP);
		cr_expect_eq(p->fate, DT_FATE_DROPPED);
		cr_expect_str_eq(p->drop_name, "NETFILTER_DROP");
		cr_expect_str_eq(r.verdict.sentence,
				 "1 of 2 packets dropped at gw/ext0 (after gw/ul0 uplink-in), "
				 "reason NETFILTER_DROP");
		dt_report_free(&r);
		count++;

		/* Next permutation (lexicographic). */
		for (i = N - 2; i >= 0 && perm[i] > perm[i + 1]; i--) {
		}
		if (i < 0) {
			break;
		}
		for (j = N - 1; perm[j] < perm[i]; j--) {
		}
		k = perm[i];
		perm[i] = perm[j];
		perm[j] = k;
		for (j = i + 1, k = N - 1; j < k; j++, k--) {
			int x = perm[j];

			perm[j] = perm[k];
			perm[k] = x;
		}
	}
	cr_expect_eq(count, 120);
}

Test(stitch, in_fill_keeps_every_field_a_report_needs)
{
	struct dt_wire_sample w;
	struct dt_stitch_in in;
	struct dt_tuple t = OUT_REQ, o = IN_REQ;

	memset(&w, 0xa5, sizeof(w));
	w.hook = DT_HOOK_DROP;
	w.flags = DT_SAMPLE_F_NAT | DT_SAMPLE_F_ENCAP;
	w.ts_ns = 123456789;
	w.tuple = t;
	w.orig = o;
	w.task_id = 9;
	w.ip_id = 77;
	w.ident = 0xdeadbeef;
	w.len = 1400;
	w.outer_saddr = htonl(UL_H1);
	w.outer_daddr = htonl(UL_GW);
	w.drop_reason = 6;
	dt_stitch_in_fill(&in, &w, 1, 2, 3, 4, 55);
	cr_expect_eq(in.o.hook, DT_HOOK_DROP);
	cr_expect_eq(in.o.flags, DT_SAMPLE_F_NAT | DT_SAMPLE_F_ENCAP);
	cr_expect_eq(in.o.ts_ns, 123456789);
	cr_expect(tuple_eq(&in.o.tuple, &t));
	cr_expect(tuple_eq(&in.orig, &o));
	cr_expect_eq(in.task_id, 9);
	cr_expect_eq(in.o.ip_id, 77);
	cr_expect_eq(in.o.ident, 0xdeadbeef);
	cr_expect_eq(in.o.len, 1400);
	cr_expect_eq(in.o.outer_saddr, htonl(UL_H1));
	cr_expect_eq(in.o.outer_daddr, htonl(UL_GW));
	cr_expect_eq(in.o.drop_reason, 6);
	cr_expect_eq(in.o.node, 1);
	cr_expect_eq(in.o.ifname, 2);
	cr_expect_eq(in.o.drop_name, 3);
	cr_expect_eq(in.o.drop_where, 4);
	cr_expect_eq(in.o.arrival_ms, 55);
}

Test(stitch, new_tasks_are_indexed)
{
	struct dt_tuple other = tuple("10.100.0.2", 1, "10.100.0.3", 2, IPPROTO_UDP, 100);
	struct dt_task *a = create(IN_REQ, 0), *b;

	add(sample("h1", "pt1", DT_HOOK_PORT_IN, IN_REQ, 1, 1), 0);
	b = create(other, 0);
	add(sample("h1", "pt1", DT_HOOK_PORT_IN, other, 1, 1), 0);
	cr_expect_eq(a->n_obs, 1);
	cr_expect_eq(b->n_obs, 1);
}

/* ------------------------------------------------------------------------------------ */

Test(stitch, strtab_interns_once_and_resolves)
{
	uint32_t a, b, c, d;
	char big[300];

	cr_expect_str_eq(dt_strtab_get(strs, 0), "");
	cr_assert_eq(dt_strtab_intern(strs, "h1", 64, &a), 0);
	cr_assert_eq(dt_strtab_intern(strs, "h2", 64, &b), 0);
	cr_assert_eq(dt_strtab_intern(strs, "h1", 64, &c), 0);
	cr_expect_eq(a, c);
	cr_expect_neq(a, b);
	cr_expect_str_eq(dt_strtab_get(strs, a), "h1");
	cr_expect_str_eq(dt_strtab_get(strs, DT_STRTAB_NONE), "");
	cr_expect_str_eq(dt_strtab_get(strs, 999999), "");
	/* A string without NUL within max is cut at max. */
	memset(big, 'x', sizeof(big));
	cr_assert_eq(dt_strtab_intern(strs, big, 16, &d), 0);
	cr_expect_eq(strlen(dt_strtab_get(strs, d)), 16);
	/* Many strings: growth keeps every index. */
	for (int i = 0; i < 5000; i++) {
		char s[16];
		uint32_t x, y;

		snprintf(s, sizeof(s), "n%d", i);
		cr_assert_eq(dt_strtab_intern(strs, s, sizeof(s), &x), 0);
		cr_assert_eq(dt_strtab_intern(strs, s, sizeof(s), &y), 0);
		cr_assert_eq(x, y);
	}
	cr_expect_str_eq(dt_strtab_get(strs, a), "h1");
	cr_expect_eq(dt_strtab_count(strs), 5000 + 4);
}

/* ------------------------------------------------------------------------------------ */
/* window_ms in the analyzer's configuration */

static const char *write_cfg(char *path, const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/dt-test-stitch-cfg-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fputs("tenants = ( { name = \"acme\"; token = \"0123456789abcdef\"; } );\n", f);
	fclose(f);
	return path;
}

Test(stitch_config, window_ms)
{
	struct dt_analyzer_cfg cfg;
	char err[DT_ERRBUF_MAX] = "", path[64];

	cr_expect_eq(dt_analyzer_cfg_defaults.window_ms, 1000);
	write_cfg(path, "stats_interval_s = 5;\n");
	cr_assert_eq(dt_analyzer_cfg_load(path, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.window_ms, 1000);
	unlink(path);

	write_cfg(path, "window_ms = 250;\n");
	cr_assert_eq(dt_analyzer_cfg_load(path, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.window_ms, 250);
	unlink(path);

	write_cfg(path, "api = \"ipc:///x\";\nwindow_ms = 9;\n");
	cr_expect_eq(dt_analyzer_cfg_load(path, &cfg, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, ":2: ") && strstr(err, "window_ms"), "%s", err);
	unlink(path);

	write_cfg(path, "window_ms = 600001;\n");
	cr_expect_eq(dt_analyzer_cfg_load(path, &cfg, err, sizeof(err)), -EINVAL);
	unlink(path);
}

/*
 * Nodes keep coloring a task that just ended until they apply the control set without it:
 * its samples are counted as after_end, not unmatched (which every tenant's report shows).
 */
Test(stitch, samples_of_a_task_that_just_ended_are_not_unmatched)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_tuple stranger = tuple("10.100.0.9", 1, "10.100.0.8", 2, IPPROTO_UDP, 100);

	dt_task_end(tasks, t, DT_TASK_CANCELLED, DT_TS_CANCELLED, dt_clock_ns(CLOCK_REALTIME),
		    "cancelled");
	add(sample("h1", "pt1", DT_HOOK_PORT_IN, IN_REQ, 1, 100), 100);
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, 2, 101), 101);
	dt_stitch_tick(st, 101 + 2 * WIN);
	cr_expect_eq(dt_stitch_counters(st).after_end, 1, "the ended task's sample");
	cr_expect_eq(dt_stitch_counters(st).unmatched, 1, "the stranger's");
	cr_expect_eq(t->n_obs, 0, "an ended task takes no more samples");
}

/*
 * Durability bookkeeping: held samples get ascending ids; what was saved is told apart
 * from what is new; a close lists exactly the saved ids it released, however it released
 * them (attributed, unmatched, after_end).
 */
Test(stitch, held_ids_and_released_ids)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_tuple stranger = tuple("10.100.0.9", 1, "10.100.0.8", 2, IPPROTO_UDP, 100);

	add(drop_sample("gw", "ext0", OUT_REQ, 5, 900, "NETFILTER_DROP"), 0);
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, 1, 100), 0);
	cr_assert_eq(dt_stitch_n_held(st), 2);
	cr_expect_eq(dt_stitch_held_at(st, 0)->id, 1);
	cr_expect_eq(dt_stitch_held_at(st, 1)->id, 2);
	cr_expect_eq(dt_stitch_unsaved(st), 0, "nothing saved yet");
	dt_stitch_saved(st);
	cr_expect_eq(dt_stitch_unsaved(st), 2, "both saved");

	/* A new one, held after the save: unsaved, and not listed when it goes. */
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, 2, 200), 500);
	cr_assert_eq(dt_stitch_n_held(st), 3);
	cr_expect_eq(dt_stitch_held_at(st, 2)->id, 3);
	cr_expect_eq(dt_stitch_unsaved(st), 2);

	/* The lesson; at a close the drop is attributed, the first stranger waited a whole
	 * window and goes (unmatched), the second is too young and stays. */
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), 500);
	dt_stitch_close(st, WIN);
	cr_expect_eq(t->n_obs, 2);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 1);
	cr_assert_eq(dt_stitch_n_held(st), 1);
	cr_expect_eq(dt_stitch_held_at(st, 0)->id, 3);
	cr_assert_eq(dt_stitch_n_released(st), 2);
	cr_expect_eq(dt_stitch_released_at(st, 0), 1, "the attributed drop");
	cr_expect_eq(dt_stitch_released_at(st, 1), 2, "the stranger let go");
	cr_expect_eq(dt_stitch_unsaved(st), 0, "the young stranger is not saved yet");

	/* A failed commit: the unsaved one is forgotten, the released ids stay listed. */
	dt_stitch_forget_unsaved(st);
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_expect_eq(dt_stitch_n_released(st), 2);
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, 2, 200), 600);
	cr_expect_eq(dt_stitch_held_at(st, 0)->id, 3, "an id never stored is given again");
	dt_stitch_saved(st);
	cr_expect_eq(dt_stitch_n_released(st), 0);
	cr_expect_eq(dt_stitch_unsaved(st), 1);

	/* Released unsaved (never stored): not listed. */
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, 3, 300), 700);
	dt_stitch_close(st, 700 + 10 * WIN);
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_assert_eq(dt_stitch_n_released(st), 1);
	cr_expect_eq(dt_stitch_released_at(st, 0), 3);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 3);
}

/* Restored held samples keep their ids, wait a window from the restart, and new ones
 * come after them. */
Test(stitch, restored_held_samples_wait_a_window_again)
{
	struct dt_task *t = create(IN_REQ, 0);
	struct dt_stitch_in in = drop_sample("gw", "ext0", OUT_REQ, 5, 900, "NETFILTER_DROP");
	struct dt_tuple stranger = tuple("10.100.0.9", 1, "10.100.0.8", 2, IPPROTO_UDP, 100);

	in.o.arrival_ms = 123456; /* the other boot's clock */
	cr_assert_eq(dt_stitch_restore_held(st, 7, &in, 50), 0);
	cr_expect_eq(dt_stitch_restore_held(st, 7, &in, 50), -EINVAL, "ids ascend");
	cr_assert_eq(dt_stitch_n_held(st), 1);
	cr_expect_eq(dt_stitch_held_at(st, 0)->in.o.arrival_ms, 50);
	cr_expect_eq(dt_stitch_unsaved(st), 1, "restored: saved");
	cr_expect_eq(dt_stitch_counters(st).samples, 0, "counted before the restart, not again");
	cr_expect_not(dt_stitch_due(st, 50 + WIN - 1));
	add(sample("h2", "ul0", DT_HOOK_UPLINK_IN, stranger, 1, 100), 60);
	cr_expect_eq(dt_stitch_held_at(st, 1)->id, 8);
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 1000), 70);
	cr_assert(dt_stitch_tick(st, 70 + WIN));
	cr_assert_eq(t->n_obs, 2);
	cr_expect_eq(t->obs[1].arrival_ms, 50);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 1, "the stranger");
	cr_assert_eq(dt_stitch_n_released(st), 1, "the stranger was never saved: only 7 is listed");
	cr_expect_eq(dt_stitch_released_at(st, 0), 7);
}

/*
 * Translations learned again from observations (a restart): a NAT's outside tuple maps to
 * the canonical one, for replies too when the task traces them, chains of NATs flattened.
 */
Test(stitch, relearn_from_observations)
{
	struct dt_task *t = create(IN_REQ, DT_TASK_DIR_BOTH);
	struct dt_tuple out2 = tuple("198.51.100.1", 5000, "203.0.113.10", 80, IPPROTO_TCP, 100);
	struct dt_stitch_counters c;

	/* gw2's lesson first (held), then gw's: both attributed, both learned. */
	add(nat_sample("gw2", "ext0", DT_HOOK_GW_OUT, out2, OUT_REQ, 6, 1000), 0);
	add(nat_sample("gw", "ext0", DT_HOOK_GW_OUT, OUT_REQ, IN_REQ, 6, 900), 0);
	cr_assert(dt_stitch_tick(st, WIN));
	cr_assert_eq(t->n_obs, 2);
	dt_stitch_counters_get(st, &c);

	/* A new stitcher over the same task and its observations, as after a restart. */
	dt_stitch_free(st);
	st = dt_stitch_new(tasks, WIN);
	dt_stitch_counters_set(st, &c);
	cr_assert_eq(dt_stitch_relearn(st), 0);
	cr_expect_eq(dt_stitch_counters(st).learned, c.learned, "not counted twice");
	cr_expect_eq(dt_stitch_n_nat(st), 4, "two outside tuples, each both ways");

	/* A drop after gw2 without conntrack, and a reply dropped before gw's de-NAT. */
	add(drop_sample("gw2", "ext0", out2, 7, 1100, "NETFILTER_DROP"), 10);
	add(drop_sample("gw", "ext0", OUT_REP, 8, 1200, "NETFILTER_DROP"), 10);
	cr_assert_eq(t->n_obs, 4, "attributed at once");
	expect_obs(&t->obs[2], DT_DIR_REQUEST, IN_REQ);
	expect_obs(&t->obs[3], DT_DIR_REPLY, IN_REP);
	cr_expect_eq(dt_stitch_n_held(st), 0);
}

/* What the stitcher told of the translations it learned. */
static struct {
	int n;
	uint8_t dir[8];
	struct dt_tuple outside[8], inside[8];
} told;

static void on_learn(void *arg, struct dt_task *task, uint8_t dir, const struct dt_tuple *outside,
		     const struct dt_tuple *inside)
{
	(void)arg;
	(void)task;
	if (told.n < 8) {
		told.dir[told.n] = dir;
		told.outside[told.n] = *outside;
		told.inside[told.n] = *inside;
		told.n++;
	}
}

/*
 * A router inside the overlay serves a VIP with full NAT (DNAT to a backend, SNAT to
 * itself). Its uplink-out sample carries the tuple before any translation: the stitcher
 * learns both directions, tells the caller the replies' outside form (which the analyzer
 * arms at the backend), and the backend's replies, colored under that learned key, are
 * the task's replies in its own terms.
 */
Test(stitch, a_translation_inside_the_overlay_is_told_and_carries_the_replies)
{
#define VIP_REQ tuple("10.100.0.1", 40000, "10.99.0.100", 80, IPPROTO_TCP, 100)
#define BACK_REQ tuple("10.100.0.254", 33000, "10.100.0.13", 80, IPPROTO_TCP, 100)
#define BACK_REP tuple("10.100.0.13", 80, "10.100.0.254", 33000, IPPROTO_TCP, 100)
#define VIP_REP tuple("10.99.0.100", 80, "10.100.0.1", 40000, IPPROTO_TCP, 100)
	struct dt_task *t = create(VIP_REQ, DT_TASK_DIR_BOTH);
	struct dt_stitch_in first = sample("h1", "pt1", DT_HOOK_PORT_IN, VIP_REQ, 1, 100);
	struct dt_stitch_in reply = sample("h3", "pt1", DT_HOOK_PORT_IN, BACK_REP, 9, 400);
	struct dt_tuple back_rep = BACK_REP, vip_rep = VIP_REP;

	memset(&told, 0, sizeof(told));
	dt_stitch_on_learn(st, on_learn, NULL);
	first.task_id = t->id;
	first.o.flags = DT_SAMPLE_F_FIRST_HOP;
	add(first, 10);
	add(nat_sample("gw", "ul0", DT_HOOK_UPLINK_OUT, BACK_REQ, VIP_REQ, 1, 200), 10);
	add(sample("h3", "ul0", DT_HOOK_UPLINK_IN, BACK_REQ, 1, 300), 10);
	cr_assert_eq(t->n_obs, 3);
	expect_obs(&t->obs[2], DT_DIR_REQUEST, VIP_REQ);
	cr_assert_eq(told.n, 2, "both directions");
	cr_expect_eq(told.dir[1], DT_DIR_REPLY);
	cr_expect(tuple_eq(&told.outside[1], &back_rep));
	cr_expect(tuple_eq(&told.inside[1], &vip_rep));

	/* The reply, colored at the backend's port under the learned key. */
	cr_assert_eq(dt_tasks_add_learned(tasks, t, &told.outside[1], DT_DIR_REPLY), 0);
	reply.task_id = t->id;
	reply.o.flags = DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_REPLY;
	add(reply, 20);
	cr_assert_eq(t->n_obs, 4);
	expect_obs(&t->obs[3], DT_DIR_REPLY, VIP_REP);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0);
	dt_stitch_on_learn(st, NULL, NULL);
#undef VIP_REQ
#undef BACK_REQ
#undef BACK_REP
#undef VIP_REP
}

/*
 * A later fragment has no ports and no ident: it is attributed like its datagram's first
 * fragment seen at the same place, taking its canonical tuple and ident; one that comes
 * before its first fragment waits for it in the window.
 */
Test(stitch, later_fragments_follow_their_first_fragment)
{
	struct dt_tuple req = tuple("10.100.0.1", 40000, "10.100.0.2", 6000, IPPROTO_UDP, 100);
	struct dt_tuple bare = tuple("10.100.0.1", 0, "10.100.0.2", 0, IPPROTO_UDP, 100);
	struct dt_task *t = create(req, 0);
	struct dt_stitch_in first = sample("h2", "ul0", DT_HOOK_UPLINK_IN, req, 5, 100);
	struct dt_stitch_in later = sample("h2", "ul0", DT_HOOK_UPLINK_IN, bare, 5, 110);
	struct dt_stitch_in early = sample("h2", "pt1", DT_HOOK_PORT_OUT, bare, 5, 120);

	first.o.frag = DT_FRAG_MF;
	later.o.frag = DT_FRAG_MF | 185;
	later.o.ident = 0;
	early.o.frag = 370;
	early.o.ident = 0;
	add(early, 5); /* before its first fragment: held */
	cr_expect_eq(t->n_obs, 0);
	cr_expect_eq(dt_stitch_n_held(st), 1);
	add(first, 6);
	add(later, 7);
	cr_assert_eq(t->n_obs, 2);
	expect_obs(&t->obs[1], DT_DIR_REQUEST, req);
	cr_expect_eq(t->obs[1].ident, first.o.ident, "the datagram's ident");
	cr_expect_eq(t->obs[1].frag, DT_FRAG_MF | 185);
	cr_assert(dt_stitch_tick(st, 7 + WIN));
	cr_expect_eq(dt_stitch_n_held(st), 0);
	cr_assert_eq(t->n_obs, 3);
	expect_obs(&t->obs[2], DT_DIR_REQUEST, req);
	cr_expect_eq(t->obs[2].ident, first.o.ident);
	cr_expect_eq(dt_stitch_counters(st).unmatched, 0);
}
