/* SPDX-License-Identifier: MIT */
/*
 * test_dataplane.c - the real data plane programs on crafted packets.
 *
 * Every test loads a fresh skeleton (nothing is attached), makes the loopback device a
 * port with VNI 100 (BPF_PROG_TEST_RUN gives the skb the loopback device, ifindex 1),
 * arms tasks through dt_tuple_task_key() as the agent does, builds a frame with the test packet
 * builder (test/lib/dt_packet.h), runs one program on it with bpf_prog_test_run_opts() and checks
 * the frame that comes out, the records in the ring buffer and the counters.
 *
 * The gateway suites run in a network namespace of their own (unshare() in the test's
 * process), so that conntrack lookups see only what the test put there: nothing, or
 * entries created through ctnetlink with the source or destination NAT of a test case.
 * The drop program (tp_btf/kfree_skb) cannot be test-run; the lab tests cover it.
 *
 * Needs root (CAP_BPF + CAP_NET_ADMIN + CAP_SYS_ADMIN), a kernel with BTF, nf_conntrack
 * and nf_nat, like an agent on a gateway.
 */
#define _GNU_SOURCE /* unshare() */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/types.h>

#include "dt_packet.h"
#include "dt_sample.h"
#include "dt_filter.h"
#include "dt_ports.h"
#include "dt_tuple.h"
#include "dyetrace.skel.h"

#define TC_ACT_UNSPEC ((uint32_t)-1) /* what the tc programs return: no verdict */
#define LO_IFINDEX 1
#define PORT_VNI 100
#define UPLINK_VNI 4242
#define ETH_LEN DT_PKT_ETH_LEN
#define IP_LEN DT_PKT_IP_LEN
#define IP_DF DT_PKT_IP_DF
#define IP_MF DT_PKT_IP_MF
#define FRAME_MAX 2048
#define MAX_SAMPLES 256

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define A_IP IP4(10, 1, 0, 2) /* instance A */
#define B_IP IP4(10, 1, 0, 3) /* instance B */
#define C_IP IP4(10, 1, 0, 4)
#define HOST1 IP4(192, 168, 50, 1) /* underlay */
#define HOST2 IP4(192, 168, 50, 2)
#define GW_IP IP4(203, 0, 113, 1)   /* a gateway's outside address */
#define SRV_IP IP4(203, 0, 113, 10) /* a server outside */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * One inner (tenant) packet: Ethernet, IPv4 (options optional), TCP/UDP/ICMP, payload.
 * Numbers in host order; the builder writes them in network order.
 */
struct pkt {
	char name[32]; /* not a pointer: Criterion copies parameters into a fresh process */
	uint8_t proto;
	uint32_t saddr, daddr;
	uint16_t sport, dport; /* ICMP: the echo identifier in sport */
	uint8_t icmp_type;
	uint32_t seq;	   /* TCP sequence; ICMP echo sequence (low 16 bits) */
	uint16_t udp_csum; /* UDP checksum field as sent (the data plane ignores it) */
	uint16_t ip_id;
	uint16_t frag;	   /* IPv4 flags and offset; DT_COLOR_BIT makes it pre-colored */
	uint8_t opt_words; /* IPv4 options, 32-bit words (NOPs) */
	uint16_t payload;  /* payload bytes after the L4 header */
	uint8_t l4_cut;	   /* nonzero: the frame ends this many bytes into the L4 header */
};

/* The encapsulation around an inner packet on the underlay. */
struct outer {
	uint32_t saddr, daddr;
	uint8_t proto;	   /* 0: UDP */
	uint16_t dport;	   /* 0: DT_VXLAN_PORT */
	uint32_t vx_flags; /* 0: the I flag */
	uint32_t vni;
	uint16_t frag;
	uint8_t opt_words;
};

/* clang-format off */
static const struct pkt tcp_ab = {
	.name = "tcp", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP, .sport = 40000,
	.dport = 80, .seq = 0xdeadbeef, .ip_id = 0x1234, .frag = IP_DF, .payload = 100,
};
static const struct pkt udp_ab = {
	.name = "udp", .proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 5353,
	.dport = 53, .udp_csum = 0xabcd, .ip_id = 0x0101, .payload = 32,
};
static const struct pkt icmp_ab = {
	.name = "icmp-echo", .proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP, .sport = 0x77,
	.icmp_type = ICMP_ECHO, .seq = 3, .ip_id = 0xbeef, .frag = IP_DF, .payload = 56,
};
/* clang-format on */

static struct dyetrace *skel; /* bpftool gen skeleton ... name dyetrace */
static struct ring_buffer *rb;
static struct dt_sample samples[MAX_SAMPLES];
static int nsamples;

/* What the test armed in dt_tasks, as the agent keeps it: the slot table is written from it. */
#define MAX_ARMED 64
static struct dt_armed_key armed_keys[MAX_ARMED];
static unsigned n_armed;

/* --- frames --------------------------------------------------------------------------- */

/*
 * k as dt_packet.h describes it, with what every frame of these tests has in common: the
 * default MACs, TCP ack 0x01020304 and checksum 0x5a5a, ICMP checksum 0x3c3c (the data
 * plane checks neither), and payload bytes 01 08 0f 16 ... (byte i is i * 7 + 1).
 */
static struct dt_pkt pkt_spec(const struct pkt *k)
{
	struct dt_pkt d = {
		.saddr = k->saddr,
		.daddr = k->daddr,
		.ip_id = k->ip_id,
		.frag = k->frag,
		.opt_words = k->opt_words,
		.proto = k->proto,
		.sport = k->sport,
		.dport = k->dport,
		.seq = k->seq,
		.ack = 0x01020304,
		.icmp_type = k->icmp_type,
		.payload = k->payload,
		.fill_mul = 7,
		.fill_add = 1,
		.l4_cut = k->l4_cut,
	};

	if (k->proto == IPPROTO_TCP)
		d.l4_csum = 0x5a5a;
	else if (k->proto == IPPROTO_UDP)
		d.l4_csum = k->udp_csum;
	else if (k->proto == IPPROTO_ICMP)
		d.l4_csum = 0x3c3c;
	return d;
}

/* The frame of k at p (dt_pkt_frame()); returns its length. */
static size_t pkt_frame(uint8_t *p, const struct pkt *k)
{
	const struct dt_pkt d = pkt_spec(k);

	return dt_pkt_frame(p, &d);
}

/*
 * The frame of k in o's encapsulation at p (dt_pkt_vxlan()), with what o leaves out:
 * outer IPv4 id 0x4321, DF, UDP from port 51234 to DT_VXLAN_PORT, the VXLAN I flag.
 * Returns its length.
 */
static size_t vxlan_frame(uint8_t *p, const struct outer *o, const struct pkt *k)
{
	const struct dt_pkt_vxlan d = {
		.saddr = o->saddr,
		.daddr = o->daddr,
		.ip_id = 0x4321,
		.frag = o->frag ? o->frag : IP_DF,
		.opt_words = o->opt_words,
		.proto = o->proto ? o->proto : IPPROTO_UDP,
		.sport = 51234,
		.dport = o->dport ? o->dport : DT_VXLAN_PORT,
		.vx_flags = o->vx_flags ? o->vx_flags : DT_PKT_VXLAN_I,
		.vni = o->vni,
	};
	uint8_t inner[FRAME_MAX];

	return dt_pkt_vxlan(p, &d, inner, pkt_frame(inner, k));
}

/* --- what the data plane should make of a packet ---------------------------------------- */

static bool has_l4(const struct pkt *k)
{
	return !(k->frag & 0x1fff);
}

static struct dt_tuple pkt_tuple(const struct pkt *k, uint32_t vni)
{
	struct dt_tuple t;

	memset(&t, 0, sizeof(t));
	t.saddr = htonl(k->saddr);
	t.daddr = htonl(k->daddr);
	t.proto = k->proto;
	t.vni = vni;
	if (!has_l4(k))
		return t;
	if (k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP) {
		t.sport = htons(k->sport);
		t.dport = htons(k->dport);
	} else if (k->proto == IPPROTO_ICMP && k->icmp_type == ICMP_ECHO) {
		t.sport = htons(k->sport);
	} else if (k->proto == IPPROTO_ICMP && k->icmp_type == ICMP_ECHOREPLY) {
		t.dport = htons(k->sport);
	}
	return t;
}

/* The NAT-invariant ident of dt_sample.h, computed the userspace way. */
static uint32_t pkt_ident(const struct pkt *k)
{
	const struct dt_pkt d = pkt_spec(k);
	uint32_t word = 0;

	if (!has_l4(k))
		return 0;
	switch (k->proto) {
	case IPPROTO_TCP:
		return k->seq;
	case IPPROTO_UDP:
		for (size_t i = 0; i < 4; i++)
			word = word << 8 | (i < k->payload ? dt_pkt_payload_byte(&d, i) : 0);
		return word ^ (uint32_t)(8 + k->payload) << 16;
	case IPPROTO_ICMP:
		if (k->icmp_type == ICMP_ECHO || k->icmp_type == ICMP_ECHOREPLY)
			return k->seq & 0xffff;
		return 0;
	default:
		return 0;
	}
}

static uint32_t pkt_ip_len(const struct pkt *k)
{
	const struct dt_pkt d = pkt_spec(k);

	return (uint32_t)dt_pkt_ip_len(&d);
}

/* --- the data plane -------------------------------------------------------------------- */

static int on_sample(void *ctx, void *data, size_t size)
{
	cr_assert_eq(size, sizeof(struct dt_sample), "record of %zu bytes", size);
	if (nsamples < MAX_SAMPLES)
		memcpy(&samples[nsamples], data, sizeof(struct dt_sample));
	nsamples++;
	return 0;
}

static void load(uint32_t ring_bytes)
{
	uint32_t ifindex = LO_IFINDEX;
	int rc;

	skel = dyetrace__open();
	cr_assert_not_null(skel, "open: %s", strerror(errno));
	if (ring_bytes)
		cr_assert_eq(bpf_map__set_max_entries(skel->maps.dt_events, ring_bytes), 0);
	rc = dyetrace__load(skel);
	cr_assert_eq(rc, 0, "load (verifier): %s", strerror(-rc));
	rb = ring_buffer__new(bpf_map__fd(skel->maps.dt_events), on_sample, NULL, NULL);
	cr_assert_not_null(rb, "ring_buffer__new: %s", strerror(errno));
	rc = dt_port_set(bpf_map__fd(skel->maps.dt_ports), bpf_map__fd(skel->maps.dt_port_slots),
			 ifindex, PORT_VNI);
	cr_assert_eq(rc, 0, "dt_ports: %s", strerror(-rc));
	nsamples = 0;
	n_armed = 0;
}

static void setup(void)
{
	load(0);
}

static void teardown(void)
{
	ring_buffer__free(rb);
	dyetrace__destroy(skel);
}

/* Writes the slot table of armed_keys[] with the agent's writer (dt_filter.h). */
static void slots_write(bool fallback_only)
{
	struct dt_armed_key copy[MAX_ARMED];
	int rc;

	memcpy(copy, armed_keys, sizeof(copy)); /* dt_slots_write() sorts what it is given */
	rc = dt_slots_write(bpf_map__fd(skel->maps.dt_task_slots), copy, n_armed, fallback_only);
	cr_assert_eq(rc, 0, "dt_slots_write: %s", strerror(-rc));
}

/* The slot of key as the data plane reads it. */
static struct dt_task_slot slot_read(const struct dt_tuple *key)
{
	struct dt_task_slot s;
	uint32_t i = dt_slot_of(key);

	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.dt_task_slots), &i, &s), 0);
	return s;
}

/* Disarms key as the agent does: its slot falls back to dt_tasks, the key goes, the table. */
static void disarm_key(const struct dt_tuple *key)
{
	unsigned i;

	for (i = 0; i < n_armed && memcmp(&armed_keys[i].key, key, sizeof(*key)); i++)
		;
	cr_assert_lt(i, n_armed, "disarming a key that is not armed");
	armed_keys[i] = armed_keys[--n_armed];
	slots_write(true);
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(skel->maps.dt_tasks), key), 0);
	slots_write(false);
	skel->bss->dt_armed_keys--;
}

/*
 * Arms a task for packets like k (ports left out when flags has DT_TASK_F_ANYPORT), the
 * way a complete agent does: key from dt_tuple_task_key(), the task with its limits, the
 * slot table, the wildcard count. Returns the key.
 */
static struct dt_tuple arm_limited(const struct pkt *k, uint32_t vni, uint32_t flags,
				   uint32_t task_id, uint32_t budget, uint32_t rate_pps)
{
	struct dt_tuple in = pkt_tuple(k, vni), key;
	struct dt_task_val val = {.task_id = task_id, .budget = budget, .rate_pps = rate_pps};
	int rc;

	if (flags & DT_TASK_F_ANYPORT)
		in.sport = in.dport = 0;
	rc = dt_tuple_task_key(&in, &flags, &key);
	cr_assert_eq(rc, 0, "dt_tuple_task_key(%s): %d", k->name, rc);
	val.flags = flags;
	rc = bpf_map_update_elem(bpf_map__fd(skel->maps.dt_tasks), &key, &val, BPF_NOEXIST);
	cr_assert_eq(rc, 0, "dt_tasks: %s", strerror(errno));
	cr_assert_lt(n_armed, MAX_ARMED);
	armed_keys[n_armed++] = (struct dt_armed_key){.key = key, .val = val};
	slots_write(false);
	skel->bss->dt_armed_keys++;
	if (flags & DT_TASK_F_ANYPORT)
		skel->bss->dt_anyport_tasks++;
	return key;
}

static struct dt_tuple arm(const struct pkt *k, uint32_t vni, uint32_t flags, uint32_t task_id)
{
	return arm_limited(k, vni, flags, task_id, 0, 0);
}

static void unport(void)
{
	uint32_t ifindex = LO_IFINDEX;

	cr_assert_eq(dt_port_clear(bpf_map__fd(skel->maps.dt_ports),
				   bpf_map__fd(skel->maps.dt_port_slots), ifindex),
		     0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The device a run's skb comes from: 0, the loopback (BPF_PROG_TEST_RUN's default), or
 * the ifindex of a device in the test's network namespace. */
static uint32_t run_ifindex;

/* Runs prog once on in[0..len) into out; returns the output length. */
static uint32_t run(struct bpf_program *prog, const uint8_t *in, size_t len, uint8_t *out)
{
	struct __sk_buff ctx = {.ifindex = run_ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = FRAME_MAX, .repeat = 1,
		    .ctx_in = run_ifindex ? &ctx : NULL,
		    .ctx_size_in = run_ifindex ? sizeof(ctx) : 0);
	int rc;

	rc = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	cr_assert_eq(rc, 0, "test_run %s: %s", bpf_program__name(prog), strerror(errno));
	cr_assert_eq(opts.retval, TC_ACT_UNSPEC, "%s returned %u", bpf_program__name(prog),
		     opts.retval);
	return opts.data_size_out;
}

/* Consumes everything in the ring into samples[0..nsamples). */
static void drain(void)
{
	int n;

	nsamples = 0;
	n = ring_buffer__consume(rb);
	cr_assert_geq(n, 0, "ring_buffer__consume: %d", n);
	cr_assert_eq(n, nsamples);
}

static uint64_t counter(enum dt_counter idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu], sum = 0;
	uint32_t key = idx;

	cr_assert_gt(ncpu, 0);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.dt_counters), &key, vals), 0);
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

/*
 * Every counter of a tc program's run: the ones named, and zero for the ring, the drop
 * counters and write failures.
 */
static void assert_counters_nat(uint64_t colored, uint64_t sampled, uint64_t uncolored,
				uint64_t foreign, uint64_t nat_no_ct)
{
	uint64_t c[DT_CNT_MAX];

	/* (Read first: a function that asserts must not run inside another assertion.) */
	for (int i = 0; i < DT_CNT_MAX; i++)
		c[i] = counter(i);
	cr_expect_eq(c[DT_CNT_COLORED], colored, "DT_CNT_COLORED %llu, want %llu",
		     (unsigned long long)c[DT_CNT_COLORED], (unsigned long long)colored);
	cr_expect_eq(c[DT_CNT_SAMPLED], sampled, "DT_CNT_SAMPLED %llu, want %llu",
		     (unsigned long long)c[DT_CNT_SAMPLED], (unsigned long long)sampled);
	cr_expect_eq(c[DT_CNT_RING_FULL], 0, "DT_CNT_RING_FULL %llu",
		     (unsigned long long)c[DT_CNT_RING_FULL]);
	cr_expect_eq(c[DT_CNT_UNCOLORED], uncolored, "DT_CNT_UNCOLORED %llu, want %llu",
		     (unsigned long long)c[DT_CNT_UNCOLORED], (unsigned long long)uncolored);
	cr_expect_eq(c[DT_CNT_FOREIGN_COLOR], foreign, "DT_CNT_FOREIGN_COLOR %llu, want %llu",
		     (unsigned long long)c[DT_CNT_FOREIGN_COLOR], (unsigned long long)foreign);
	cr_expect_eq(c[DT_CNT_NAT_NO_CT], nat_no_ct, "DT_CNT_NAT_NO_CT %llu, want %llu",
		     (unsigned long long)c[DT_CNT_NAT_NO_CT], (unsigned long long)nat_no_ct);
	cr_expect_eq(c[DT_CNT_DROPS], 0, "DT_CNT_DROPS %llu", (unsigned long long)c[DT_CNT_DROPS]);
	cr_expect_eq(c[DT_CNT_DROP_OTHER_NS], 0, "DT_CNT_DROP_OTHER_NS %llu",
		     (unsigned long long)c[DT_CNT_DROP_OTHER_NS]);
	cr_expect_eq(c[DT_CNT_WRITE_FAIL], 0, "DT_CNT_WRITE_FAIL %llu",
		     (unsigned long long)c[DT_CNT_WRITE_FAIL]);
	cr_expect_eq(c[DT_CNT_BUDGET_SPENT], 0, "DT_CNT_BUDGET_SPENT %llu",
		     (unsigned long long)c[DT_CNT_BUDGET_SPENT]);
	cr_expect_eq(c[DT_CNT_RATE_LIMITED], 0, "DT_CNT_RATE_LIMITED %llu",
		     (unsigned long long)c[DT_CNT_RATE_LIMITED]);
}

static void assert_counters(uint64_t colored, uint64_t sampled, uint64_t uncolored,
			    uint64_t foreign)
{
	assert_counters_nat(colored, sampled, uncolored, foreign, 0);
}

/*
 * out is in with, at most, the color changed: same length, every byte but the IPv4
 * flags and checksum equal, the flags as in with the color bit set or clear as asked,
 * and a valid header checksum.
 */
static void assert_recolored(const uint8_t *in, size_t len, const uint8_t *out, uint32_t out_len,
			     bool colored)
{
	const size_t l3 = ETH_LEN;
	uint16_t want = dt_pkt_get16(in + l3 + 6);

	want = colored ? want | DT_COLOR_BIT : want & ~DT_COLOR_BIT;
	cr_assert_eq(out_len, len, "length changed: %u -> %u", (unsigned)len, out_len);
	for (size_t i = 0; i < len; i++) {
		if (i == l3 + 6 || i == l3 + 7 || i == l3 + 10 || i == l3 + 11)
			continue;
		cr_assert_eq(out[i], in[i], "byte %zu changed: %#x -> %#x", i, in[i], out[i]);
	}
	cr_assert_eq(dt_pkt_get16(out + l3 + 6), want, "frag_off %#x, want %#x",
		     dt_pkt_get16(out + l3 + 6), want);
	cr_assert(dt_pkt_ip_csum_ok(out + l3), "IPv4 header checksum invalid: %#x",
		  dt_pkt_get16(out + l3 + 10));
}

static void assert_unchanged(const uint8_t *in, size_t len, const uint8_t *out, uint32_t out_len)
{
	cr_assert_eq(out_len, len, "length changed: %u -> %u", (unsigned)len, out_len);
	cr_assert_arr_eq(out, in, len, "packet modified");
}

static void assert_sample(const struct dt_sample *s, uint8_t hook, uint8_t flags,
			  const struct pkt *k, uint32_t vni, uint32_t task_id, uint32_t osaddr,
			  uint32_t odaddr, uint64_t t0, uint64_t t1)
{
	struct dt_tuple t = pkt_tuple(k, vni);

	cr_expect_eq(s->version, DT_SAMPLE_VERSION);
	cr_expect_eq(s->hook, hook, "hook %u, want %u", s->hook, hook);
	cr_expect_eq(s->flags, flags, "flags %#x, want %#x", s->flags, flags);
	cr_expect_eq(s->ifindex, LO_IFINDEX);
	cr_expect(s->ts_ns >= t0 && s->ts_ns <= t1, "ts_ns %llu outside [%llu, %llu]",
		  (unsigned long long)s->ts_ns, (unsigned long long)t0, (unsigned long long)t1);
	cr_expect_arr_eq(&s->tuple, &t, sizeof(t), "tuple %08x:%u -> %08x:%u p%u vni %u",
			 ntohl(s->tuple.saddr), ntohs(s->tuple.sport), ntohl(s->tuple.daddr),
			 ntohs(s->tuple.dport), s->tuple.proto, s->tuple.vni);
	cr_expect_eq(s->task_id, task_id, "task_id %u, want %u", s->task_id, task_id);
	cr_expect_eq(s->ip_id, k->ip_id, "ip_id %#x, want %#x", s->ip_id, k->ip_id);
	cr_expect_eq(s->ident, pkt_ident(k), "ident %#x, want %#x", s->ident, pkt_ident(k));
	cr_expect_eq(s->len, pkt_ip_len(k), "len %u, want %u", s->len, pkt_ip_len(k));
	cr_expect_eq(s->outer_saddr, htonl(osaddr));
	cr_expect_eq(s->outer_daddr, htonl(odaddr));
	cr_expect(s->pad0 == 0 && s->pad2 == 0, "padding not zero");
	cr_expect_eq(s->frag, k->frag & (DT_FRAG_MF | DT_FRAG_OFFSET), "frag %#x, want %#x",
		     s->frag, k->frag & (DT_FRAG_MF | DT_FRAG_OFFSET));
	cr_expect(s->drop_reason == 0 && s->drop_location == 0, "drop fields %u %#llx",
		  s->drop_reason, (unsigned long long)s->drop_location);
	if (!(flags & DT_SAMPLE_F_NAT)) {
		static const struct dt_tuple zero;

		cr_expect_arr_eq(&s->orig, &zero, sizeof(zero), "orig set without DT_SAMPLE_F_NAT");
	}
}

/* The orig tuple of a DT_SAMPLE_F_NAT sample. */
static void assert_orig(const struct dt_sample *s, const struct dt_tuple *want)
{
	const struct dt_tuple *o = &s->orig;

	cr_expect(s->flags & DT_SAMPLE_F_NAT, "flags %#x without DT_SAMPLE_F_NAT", s->flags);
	cr_expect_arr_eq(o, want, sizeof(*want),
			 "orig %08x:%u -> %08x:%u p%u vni %u, want %08x:%u -> %08x:%u p%u vni %u",
			 ntohl(o->saddr), ntohs(o->sport), ntohl(o->daddr), ntohs(o->dport),
			 o->proto, o->vni, ntohl(want->saddr), ntohs(want->sport),
			 ntohl(want->daddr), ntohs(want->dport), want->proto, want->vni);
}

/* One run of a program: the frame in and out, and the clock around the run. */
struct result {
	uint8_t in[FRAME_MAX], out[FRAME_MAX];
	size_t len;
	uint32_t out_len;
	uint64_t t0, t1;
};

static void run_pkt(struct bpf_program *prog, const struct pkt *k, struct result *r)
{
	r->len = pkt_frame(r->in, k);
	r->t0 = now_ns();
	r->out_len = run(prog, r->in, r->len, r->out);
	r->t1 = now_ns();
}

static void run_vxlan(struct bpf_program *prog, const struct outer *o, const struct pkt *k,
		      struct result *r)
{
	r->len = vxlan_frame(r->in, o, k);
	r->t0 = now_ns();
	r->out_len = run(prog, r->in, r->len, r->out);
	r->t1 = now_ns();
}

static struct pkt with_frag(struct pkt k, uint16_t frag)
{
	k.frag = frag;
	return k;
}

/* The builder itself: a frame the tests trust must be what they think it is. */
Test(frames, builder_is_sane)
{
	uint8_t f[FRAME_MAX];
	size_t len = pkt_frame(f, &tcp_ab);

	cr_assert_eq(len, ETH_LEN + IP_LEN + 20 + 100);
	cr_assert(dt_pkt_ip_csum_ok(f + ETH_LEN));
	cr_assert_eq(dt_pkt_get16(f + ETH_LEN + 2), IP_LEN + 20 + 100);
	cr_assert_eq(dt_pkt_get16(f + ETH_LEN + IP_LEN), 40000);
	len = vxlan_frame(f, &(struct outer){.saddr = HOST1, .daddr = HOST2, .vni = 7}, &udp_ab);
	cr_assert_eq(len, ETH_LEN + IP_LEN + 16 + ETH_LEN + IP_LEN + 8 + 32);
	cr_assert(dt_pkt_ip_csum_ok(f + ETH_LEN));
	cr_assert(dt_pkt_ip_csum_ok(f + ETH_LEN + IP_LEN + 16 + ETH_LEN));
}

/* --- port ingress: the first hop -------------------------------------------------------- */

TestSuite(port_in, .init = setup, .fini = teardown);

/* Packets of an armed flow, one per way a tuple is read. */
/* clang-format off */
static struct pkt match_cases[] = {
	{.name = "tcp", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP, .sport = 40000,
	 .dport = 80, .seq = 0xdeadbeef, .ip_id = 0x1234, .frag = IP_DF, .payload = 100},
	{.name = "tcp-syn-no-payload", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 1, .dport = 65535, .seq = 1, .ip_id = 0, .frag = IP_DF},
	{.name = "tcp-ip-options", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 40001, .dport = 443, .seq = 0x80000000, .ip_id = 0xffff, .frag = IP_DF,
	 .opt_words = 10, .payload = 20},
	{.name = "udp", .proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 5353,
	 .dport = 53, .udp_csum = 0xabcd, .ip_id = 0x0101, .payload = 32},
	{.name = "udp-first-fragment", .proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 7000, .dport = 7001, .udp_csum = 0x1111, .ip_id = 0x0202, .frag = IP_MF,
	 .payload = 1000},
	{.name = "icmp-echo", .proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 0x77, .icmp_type = ICMP_ECHO, .seq = 3, .ip_id = 0xbeef, .frag = IP_DF,
	 .payload = 56},
	{.name = "icmp-echo-reply", .proto = IPPROTO_ICMP, .saddr = B_IP, .daddr = A_IP,
	 .sport = 0x77, .icmp_type = ICMP_ECHOREPLY, .seq = 3, .ip_id = 0x0042,
	 .payload = 56},
};
/* clang-format on */

static void check_match(const struct pkt *k)
{
	struct result r;

	arm(k, PORT_VNI, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", k->name);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, k, PORT_VNI, 7, 0, 0,
		      r.t0, r.t1);
	/* The prefix is the frame as colored, cut at DT_CAP_MAX (capture_bytes' default). */
	cr_assert_eq(samples[0].cap_link, DT_CAP_ETH, "%s: cap_link", k->name);
	cr_assert_eq(samples[0].cap_len, r.out_len < DT_CAP_MAX ? r.out_len : DT_CAP_MAX,
		     "%s: cap_len %u of a %u-byte frame", k->name, samples[0].cap_len, r.out_len);
	cr_assert_arr_eq(samples[0].cap, r.out, samples[0].cap_len, "%s: cap", k->name);
	assert_counters(1, 1, 0, 0);
}

ParameterizedTestParameters(port_in, colors_and_samples_a_match)
{
	return cr_make_param_array(struct pkt, match_cases, ARRAY_LEN(match_cases));
}

ParameterizedTest(struct pkt *k, port_in, colors_and_samples_a_match)
{
	check_match(k);
}

/* Packets that differ from the armed task in one field of the six-tuple. */
/* clang-format off */
static struct pkt miss_cases[] = {
	{.name = "other-sport", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 40002, .dport = 80, .seq = 5, .frag = IP_DF},
	{.name = "other-dport", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 40000, .dport = 81, .seq = 5, .frag = IP_DF},
	{.name = "swapped-ports", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 80, .dport = 40000, .seq = 5, .frag = IP_DF},
	{.name = "other-saddr", .proto = IPPROTO_TCP, .saddr = C_IP, .daddr = B_IP,
	 .sport = 40000, .dport = 80, .seq = 5, .frag = IP_DF},
	{.name = "other-daddr", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = C_IP,
	 .sport = 40000, .dport = 80, .seq = 5, .frag = IP_DF},
	{.name = "reverse-direction", .proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP,
	 .sport = 80, .dport = 40000, .seq = 5, .frag = IP_DF},
	{.name = "udp-same-ports", .proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 40000, .dport = 80, .udp_csum = 1},
	{.name = "icmp", .proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP,
	 .sport = 40000, .icmp_type = ICMP_ECHO},
	{.name = "non-first-fragment", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
	 .frag = 185, .payload = 64},
};
/* clang-format on */

static void check_miss(const struct pkt *k)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, k, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0, "%s: samples", k->name);
	assert_counters(0, 0, 0, 0);
}

ParameterizedTestParameters(port_in, leaves_a_miss_alone)
{
	return cr_make_param_array(struct pkt, miss_cases, ARRAY_LEN(miss_cases));
}

ParameterizedTest(struct pkt *k, port_in, leaves_a_miss_alone)
{
	check_miss(k);
}

Test(port_in, vni_is_part_of_the_tuple)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI + 1, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

Test(port_in, unconfigured_port_colors_nothing)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	unport();
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/*
 * A port whose ifindex has no slot in dt_port_slots (a host that created many interfaces)
 * is found in the dt_ports hash; one with a slot is found there, and not in the hash.
 */
Test(port_in, a_port_above_the_slots_is_found_in_the_hash)
{
	const uint32_t big = DT_PORT_SLOTS + 904;
	int ports = bpf_map__fd(skel->maps.dt_ports), slots = bpf_map__fd(skel->maps.dt_port_slots);
	char cmd[128];
	struct result r;

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	snprintf(cmd, sizeof(cmd), "ip link add dtbig index %u type veth peer name dtbig1", big);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	arm(&tcp_ab, PORT_VNI, 0, 7);
	unport();
	cr_assert_eq(dt_port_set(ports, slots, big, PORT_VNI), 0);
	run_ifindex = big;
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	drain();
	cr_assert_eq(nsamples, 1, "a port through the hash colors and samples");
	cr_assert_eq(samples[0].ifindex, big);
	cr_assert_eq(samples[0].tuple.vni, PORT_VNI);

	/* the slot array alone (the hash entry gone) does not make a port of the big one */
	cr_assert_eq(bpf_map_delete_elem(ports, &big), 0);
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	drain();
	cr_assert_eq(nsamples, 0, "no port without its hash entry");

	/* below the slots, the slot decides: with the hash entry gone, it is still a port */
	run_ifindex = 0;
	cr_assert_eq(dt_port_set(ports, slots, LO_IFINDEX, PORT_VNI), 0);
	cr_assert_eq(bpf_map_delete_elem(ports, &(uint32_t){LO_IFINDEX}), 0);
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	drain();
	cr_assert_eq(nsamples, 1, "a port through its slot");
	cr_assert_eq(samples[0].tuple.vni, PORT_VNI);
}

Test(port_in, anyport_task_matches_every_port_pair)
{
	/* clang-format off */
	static const uint16_t ports[][2] = {{40000, 80}, {1, 2}, {65535, 65535}, {80, 40000}};
	/* clang-format on */
	struct pkt k = tcp_ab;
	struct result r;

	arm(&tcp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 9);
	cr_assert_eq(skel->bss->dt_anyport_tasks, 1);
	for (size_t i = 0; i < ARRAY_LEN(ports); i++) {
		k.sport = ports[i][0];
		k.dport = ports[i][1];
		run_pkt(skel->progs.dt_port_ingress, &k, &r);
		assert_recolored(r.in, r.len, r.out, r.out_len, true);
		drain();
		cr_assert_eq(nsamples, 1);
		assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &k, PORT_VNI, 9,
			      0, 0, r.t0, r.t1);
	}
	/* ...but only for its addresses and protocol. */
	k.proto = IPPROTO_UDP;
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(ARRAY_LEN(ports), ARRAY_LEN(ports), 0, 0);
}

Test(port_in, icmp_task_without_id_matches_every_echo)
{
	struct pkt k = icmp_ab;
	struct result r;

	arm(&icmp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 11);
	for (uint16_t id = 1; id < 4; id++) {
		k.sport = id;
		k.seq = id * 10;
		run_pkt(skel->progs.dt_port_ingress, &k, &r);
		assert_recolored(r.in, r.len, r.out, r.out_len, true);
		drain();
		cr_assert_eq(nsamples, 1);
		assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &k, PORT_VNI, 11,
			      0, 0, r.t0, r.t1);
	}
	/* ICMP that is not an echo has ports 0: it matches the wildcard with one lookup. */
	k.icmp_type = ICMP_DEST_UNREACH;
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_counters(4, 4, 0, 0);
}

/* The wildcard lookup costs a second hash lookup; it only runs while the agent says
 * wildcard tasks exist (dt_anyport_tasks). */
Test(port_in, wildcard_lookup_is_gated_by_dt_anyport_tasks)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 9);
	skel->bss->dt_anyport_tasks = 0;
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	skel->bss->dt_anyport_tasks = 1;
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
}

Test(port_in, exact_task_wins_over_wildcard)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 9);
	arm(&tcp_ab, PORT_VNI, 0, 10);
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	drain();
	cr_assert_eq(nsamples, 1);
	cr_assert_eq(samples[0].task_id, 10);
}

/* The second lookup accepts only a wildcard: an entry with ports 0 that is not flagged
 * DT_TASK_F_ANYPORT (dt_tuple_task_key() never makes one) matches port-less packets only. */
Test(port_in, portless_entry_without_wildcard_flag_is_exact)
{
	struct dt_tuple key = pkt_tuple(&tcp_ab, PORT_VNI);
	struct dt_task_val val = {.task_id = 5, .flags = 0};
	struct pkt frag = with_frag(tcp_ab, 185);
	struct result r;

	key.sport = key.dport = 0;
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.dt_tasks), &key, &val, BPF_ANY), 0);
	skel->bss->dt_anyport_tasks = 1;
	skel->bss->dt_armed_keys = 1;
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	/* A later fragment never matches a task by itself: only through its first fragment. */
	run_pkt(skel->progs.dt_port_ingress, &frag, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	cr_expect_eq(counter(DT_CNT_FRAG_ORPHAN), 1);
}

/* A first fragment or unfragmented packet whose L4 header is cut short matches nothing,
 * not even a wildcard: its ports are unknown, not 0. */
Test(port_in, truncated_l4_matches_nothing)
{
	struct pkt k = tcp_ab;
	struct result r;

	arm(&tcp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 9);
	k.l4_cut = 19;
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/* A non-first fragment has no L4 header: ports 0, so only a wildcard task colors it. */
/*
 * The later fragments of a traced datagram (no L4 header: no ports) are colored and
 * sampled through their first fragment, whatever task kind; a later fragment whose first
 * fragment was not traced (or has not come yet) is not, and is counted.
 */
Test(port_in, later_fragments_follow_their_first_fragment)
{
	struct pkt first = with_frag(tcp_ab, IP_MF), frag = with_frag(tcp_ab, IP_MF | 185);
	struct pkt last = with_frag(tcp_ab, 370), other = with_frag(tcp_ab, 185);
	struct result r;

	other.ip_id = 0x4321;
	arm(&tcp_ab, PORT_VNI, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, &frag, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	cr_expect_eq(counter(DT_CNT_FRAG_ORPHAN), 1, "before its first fragment: not traced");
	run_pkt(skel->progs.dt_port_ingress, &first, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_port_ingress, &frag, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_port_ingress, &last, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_port_ingress, &other, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 3);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &first, PORT_VNI, 7, 0,
		      0, r.t0 - 1000000000ull, r.t1);
	assert_sample(&samples[1], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &frag, PORT_VNI, 7, 0, 0,
		      r.t0 - 1000000000ull, r.t1);
	cr_expect_eq(samples[1].tuple.sport, 0);
	cr_expect_eq(samples[1].ident, 0);
	cr_expect_eq(samples[1].frag, DT_FRAG_MF | 185);
	cr_expect_eq(samples[2].frag, 370);
	cr_expect_eq(samples[2].task_id, 7);
	cr_expect_eq(counter(DT_CNT_COLORED), 1, "one datagram");
	cr_expect_eq(counter(DT_CNT_FRAG_COLORED), 2);
	cr_expect_eq(counter(DT_CNT_FRAG_ORPHAN), 2);
}

/* Budgets and rates count datagrams: the later fragments of an admitted one are colored. */
Test(port_in, a_budget_counts_datagrams_not_fragments)
{
	struct pkt first = with_frag(tcp_ab, IP_MF), last = with_frag(tcp_ab, 185);
	struct pkt first2 = first;
	struct result r;

	first2.ip_id = 0x5555;
	arm_limited(&tcp_ab, PORT_VNI, 0, 8, 1, 0);
	run_pkt(skel->progs.dt_port_ingress, &first, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_port_ingress, &last, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_port_ingress, &first2, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 2);
	cr_expect_eq(counter(DT_CNT_BUDGET_SPENT), 1);
}

/* A tenant cannot inject traced packets: a colored packet that matches nothing loses it. */
ParameterizedTestParameters(port_in, strips_a_foreign_color)
{
	/* clang-format off */
	static struct pkt cases[] = {
		{.name = "tcp", .proto = IPPROTO_TCP, .saddr = C_IP, .daddr = B_IP, .sport = 1,
		 .dport = 2, .seq = 9, .ip_id = 0x0909, .frag = IP_DF | DT_COLOR_BIT, .payload = 10},
		{.name = "udp-no-df", .proto = IPPROTO_UDP, .saddr = C_IP, .daddr = B_IP,
		 .sport = 3, .dport = 4, .frag = DT_COLOR_BIT},
		{.name = "icmp-ip-options", .proto = IPPROTO_ICMP, .saddr = C_IP, .daddr = A_IP,
		 .sport = 5, .icmp_type = ICMP_ECHO, .frag = DT_COLOR_BIT | IP_DF, .opt_words = 3},
		{.name = "fragment", .proto = IPPROTO_UDP, .saddr = C_IP, .daddr = B_IP,
		 .frag = DT_COLOR_BIT | IP_MF | 100, .payload = 200},
		{.name = "gre", .proto = 47, .saddr = C_IP, .daddr = B_IP,
		 .frag = DT_COLOR_BIT, .payload = 40},
		{.name = "tcp-truncated", .proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
		 .sport = 40000, .dport = 80, .frag = DT_COLOR_BIT, .l4_cut = 12},
		{.name = "tcp-other-dport", .proto = IPPROTO_TCP, .saddr = A_IP,
		 .daddr = B_IP, .sport = 40000, .dport = 81, .seq = 1,
		 .frag = IP_DF | DT_COLOR_BIT},
	};
	/* clang-format on */

	return cr_make_param_array(struct pkt, cases, ARRAY_LEN(cases));
}

ParameterizedTest(struct pkt *k, port_in, strips_a_foreign_color)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0, "%s: samples", k->name);
	assert_counters(0, 0, 0, 1);
}

Test(port_in, strips_a_foreign_color_on_an_unconfigured_port)
{
	struct pkt k = with_frag(tcp_ab, IP_DF | DT_COLOR_BIT);
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	unport();
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 1);
}

/* Colored by the instance and matching a task: the first hop keeps it and samples it. */
Test(port_in, keeps_a_color_that_matches)
{
	struct pkt k = with_frag(tcp_ab, IP_DF | DT_COLOR_BIT);
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &k, PORT_VNI, 7, 0, 0,
		      r.t0, r.t1);
	assert_counters(1, 1, 0, 0);
}

/* The other direction of k's flow, as the builder takes it (ICMP: the echo reply). */
static struct pkt reversed(const struct pkt *k)
{
	struct pkt r = *k;

	r.saddr = k->daddr;
	r.daddr = k->saddr;
	r.sport = k->dport;
	r.dport = k->sport;
	if (k->proto == IPPROTO_ICMP) {
		r.sport = k->sport; /* the identifier, in either type */
		r.icmp_type = k->icmp_type == ICMP_ECHO ? ICMP_ECHOREPLY : ICMP_ECHO;
	}
	return r;
}

/*
 * Reply keys: for a task that traces replies the analyzer arms the reversed tuple with
 * DT_TASK_F_REPLY. The reply's first hop colors it like any match and says so.
 */
/* clang-format off */
static struct pkt reply_cases[] = {
	{.name = "tcp", .proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP, .sport = 80,
	 .dport = 40000, .seq = 0x0badf00d, .ip_id = 0x2222, .frag = IP_DF, .payload = 10},
	{.name = "udp", .proto = IPPROTO_UDP, .saddr = B_IP, .daddr = A_IP, .sport = 53,
	 .dport = 5353, .udp_csum = 0x1234, .ip_id = 0x3333, .payload = 64},
	{.name = "icmp-echo-reply", .proto = IPPROTO_ICMP, .saddr = B_IP, .daddr = A_IP,
	 .sport = 0x77, .icmp_type = ICMP_ECHOREPLY, .seq = 9, .ip_id = 0x4444, .payload = 56},
};
/* clang-format on */

ParameterizedTestParameters(port_in, marks_a_reply_key)
{
	return cr_make_param_array(struct pkt, reply_cases, ARRAY_LEN(reply_cases));
}

ParameterizedTest(struct pkt *k, port_in, marks_a_reply_key)
{
	struct result r;

	arm(k, PORT_VNI, DT_TASK_F_REPLY, 12);
	run_pkt(skel->progs.dt_port_ingress, k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", k->name);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_REPLY, k,
		      PORT_VNI, 12, 0, 0, r.t0, r.t1);
	assert_counters(1, 1, 0, 0);
}

/* A task traced both ways has two keys; each direction's samples say which it is. */
Test(port_in, request_and_reply_keys_of_one_task)
{
	struct pkt reply = reversed(&tcp_ab);
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	arm(&reply, PORT_VNI, DT_TASK_F_REPLY, 7);
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &tcp_ab, PORT_VNI, 7, 0,
		      0, r.t0, r.t1);
	run_pkt(skel->progs.dt_port_ingress, &reply, &r);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_REPLY,
		      &reply, PORT_VNI, 7, 0, 0, r.t0, r.t1);
	assert_counters(2, 2, 0, 0);
}

Test(port_in, wildcard_reply_key)
{
	struct pkt reply = reversed(&icmp_ab);
	struct result r;

	arm(&reply, PORT_VNI, DT_TASK_F_ANYPORT | DT_TASK_F_REPLY, 8);
	reply.sport = 0x1234; /* any identifier */
	run_pkt(skel->progs.dt_port_ingress, &reply, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_REPLY,
		      &reply, PORT_VNI, 8, 0, 0, r.t0, r.t1);
}

/* Frames that are not IPv4, or not well-formed IPv4, pass untouched. */
Test(port_in, ignores_what_it_cannot_parse)
{
	uint8_t f[FRAME_MAX], out[FRAME_MAX];
	size_t len = pkt_frame(f, &tcp_ab);
	uint32_t out_len;

	arm(&tcp_ab, PORT_VNI, 0, 7);

	dt_pkt_put16(f + 12, 0x86dd); /* IPv6 EtherType */
	out_len = run(skel->progs.dt_port_ingress, f, len, out);
	assert_unchanged(f, len, out, out_len);

	len = pkt_frame(f, &tcp_ab);
	f[ETH_LEN] = 0x44; /* ihl 4 */
	out_len = run(skel->progs.dt_port_ingress, f, len, out);
	assert_unchanged(f, len, out, out_len);

	len = pkt_frame(f, &tcp_ab);
	f[ETH_LEN] = 0x65; /* version 6 */
	out_len = run(skel->progs.dt_port_ingress, f, len, out);
	assert_unchanged(f, len, out, out_len);

	len = pkt_frame(f, &tcp_ab);
	f[ETH_LEN] = 0x4f; /* ihl 15: options past the end of a short frame */
	out_len = run(skel->progs.dt_port_ingress, f, ETH_LEN + 40, out);
	assert_unchanged(f, ETH_LEN + 40, out, out_len);

	/* (Ethernet and half an IPv4 header: BPF_PROG_TEST_RUN refuses such a frame itself.) */
	len = pkt_frame(f, &tcp_ab); /* an IPv4 header and nothing after it */
	out_len = run(skel->progs.dt_port_ingress, f, ETH_LEN + IP_LEN, out);
	assert_unchanged(f, ETH_LEN + IP_LEN, out, out_len);

	drain();

	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/* --- the slot table (dt_filter.h): on, it changes no answer, only the cost ------------- */

static void setup_prefilter(void)
{
	load(0);
	skel->bss->dt_filter_on = 1;
}

TestSuite(prefilter, .init = setup_prefilter, .fini = teardown);

ParameterizedTestParameters(prefilter, colors_and_samples_a_match)
{
	return cr_make_param_array(struct pkt, match_cases, ARRAY_LEN(match_cases));
}

ParameterizedTest(struct pkt *k, prefilter, colors_and_samples_a_match)
{
	check_match(k);
}

ParameterizedTestParameters(prefilter, leaves_a_miss_alone)
{
	return cr_make_param_array(struct pkt, miss_cases, ARRAY_LEN(miss_cases));
}

ParameterizedTest(struct pkt *k, prefilter, leaves_a_miss_alone)
{
	check_miss(k);
}

Test(prefilter, wildcard_matches_through_its_portless_slot)
{
	struct pkt k = tcp_ab;
	struct result r;

	arm(&tcp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 9);
	k.sport = 1;
	k.dport = 2;
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &k, PORT_VNI, 9, 0, 0,
		      r.t0, r.t1);
}

/* An empty slot is proof enough: the task is not looked up, and a packet that arrives
 * colored for it is a foreign color. */
Test(prefilter, an_empty_slot_skips_the_lookup)
{
	struct pkt colored = with_frag(tcp_ab, IP_DF | DT_COLOR_BIT);
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	n_armed = 0; /* the table forgets it, dt_tasks keeps it */
	slots_write(false);
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	run_pkt(skel->progs.dt_port_ingress, &colored, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 1);
}

Test(prefilter, off_ignores_the_table)
{
	struct result r;

	arm(&tcp_ab, PORT_VNI, 0, 7);
	n_armed = 0;
	slots_write(false);
	skel->bss->dt_filter_on = 0;
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
}

Test(prefilter, slot_leaves_the_vni_out)
{
	struct dt_tuple a = pkt_tuple(&tcp_ab, 1), b = pkt_tuple(&tcp_ab, 0xffffff);

	cr_assert_eq(dt_slot_of(&a), dt_slot_of(&b));
	cr_assert_lt(dt_slot_of(&a), DT_SLOTS);
}

/* 10,000 flows of one subnet, one port apart: about n^2 / 2m = 381 collisions expected. */
Test(prefilter, slots_spread)
{
	static uint8_t seen[DT_SLOTS / 8];
	struct pkt k = tcp_ab;
	unsigned distinct = 0;

	for (unsigned i = 0; i < 10000; i++) {
		struct dt_tuple t;
		uint32_t slot;

		k.saddr = IP4(10, 1, i / 250, i % 250 + 1);
		k.sport = (uint16_t)(40000 + i % 7);
		t = pkt_tuple(&k, PORT_VNI);
		slot = dt_slot_of(&t);
		if (!(seen[slot / 8] & 1u << (slot % 8)))
			distinct++;
		seen[slot / 8] |= (uint8_t)(1u << (slot % 8));
	}
	cr_assert_gt(distinct, 9500, "%u distinct slots of 10000", distinct);
}

/* A TCP packet from A to B whose key shares the slot of k's (another destination port). */
static struct pkt colliding(const struct pkt *k, uint32_t vni)
{
	struct dt_tuple want = pkt_tuple(k, vni), t;
	struct pkt c = *k;

	for (uint32_t port = 1; port < 65536; port++) {
		for (uint32_t sport = 1000; sport < 1064; sport++) {
			c.sport = (uint16_t)sport;
			c.dport = (uint16_t)port;
			t = pkt_tuple(&c, vni);
			if (dt_slot_of(&t) == dt_slot_of(&want) && memcmp(&t, &want, sizeof(t)))
				return c;
		}
	}
	cr_assert_fail("no colliding tuple found");
	return c;
}

/* The one packet k through port ingress: colored and sampled for task_id (0: untouched). */
static void assert_traced(const struct pkt *k, uint32_t task_id)
{
	struct result r;

	nsamples = 0;
	run_pkt(skel->progs.dt_port_ingress, k, &r);
	drain();
	if (!task_id) {
		assert_unchanged(r.in, r.len, r.out, r.out_len);
		cr_assert_eq(nsamples, 0, "%u:%u: traced", k->sport, k->dport);
		return;
	}
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	cr_assert_eq(nsamples, 1, "%u:%u: not traced", k->sport, k->dport);
	cr_assert_eq(samples[0].task_id, task_id, "%u:%u: task %u, want %u", k->sport, k->dport,
		     samples[0].task_id, task_id);
}

/* A key alone in its slot is answered from the slot: dt_tasks is not even looked up. */
Test(prefilter, a_key_alone_is_found_in_its_slot)
{
	struct dt_tuple key = arm(&tcp_ab, PORT_VNI, 0, 7);
	struct dt_task_slot s = slot_read(&key);

	cr_assert_eq(s.state, DT_SLOT_ONE);
	cr_assert_arr_eq(&s.key, &key, sizeof(key));
	cr_assert_eq(s.val.task_id, 7);
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(skel->maps.dt_tasks), &key), 0);
	assert_traced(&tcp_ab, 7);
}

/* Two keys in one slot: the slot says so, and each is found in dt_tasks. */
Test(prefilter, colliding_keys_are_found_through_the_task_map)
{
	struct pkt other = colliding(&tcp_ab, PORT_VNI);
	struct dt_tuple key = arm(&tcp_ab, PORT_VNI, 0, 7);

	arm(&other, PORT_VNI, 0, 8);
	cr_assert_eq(slot_read(&key).state, DT_SLOT_MANY);
	assert_traced(&tcp_ab, 7);
	assert_traced(&other, 8);
}

/* A disarmed key is no longer traced, whether its slot held it alone or with another. */
Test(prefilter, a_disarmed_key_is_not_traced)
{
	struct pkt other = colliding(&tcp_ab, PORT_VNI);
	struct dt_tuple key = arm(&tcp_ab, PORT_VNI, 0, 7);
	struct dt_tuple okey = arm(&other, PORT_VNI, 0, 8);

	disarm_key(&key);
	cr_assert_eq(slot_read(&key).state, DT_SLOT_ONE);
	assert_traced(&tcp_ab, 0);
	assert_traced(&other, 8);
	disarm_key(&okey);
	cr_assert_eq(slot_read(&key).state, DT_SLOT_EMPTY);
	assert_traced(&other, 0);
}

/* A slot that holds one key traces nothing else: another tuple of its slot, nor its tuple
 * on a port of another VNI. */
Test(prefilter, an_untraced_key_of_a_held_slot_is_not_traced)
{
	struct pkt other = colliding(&tcp_ab, PORT_VNI);
	struct dt_tuple key = arm(&tcp_ab, PORT_VNI + 1, 0, 7);

	cr_assert_eq(slot_read(&key).state, DT_SLOT_ONE);
	assert_traced(&other, 0);
	assert_traced(&tcp_ab, 0); /* the port is of PORT_VNI */
	assert_counters(0, 0, 0, 0);
}

/* The step before dt_tasks changes: the slot falls back to the map and still finds the key;
 * a value rewritten then (a task re-armed on the key) is the one the table copies. */
Test(prefilter, a_key_changes_its_task_through_the_fallback)
{
	struct dt_tuple key = arm(&tcp_ab, PORT_VNI, 0, 7);
	struct dt_task_slot s;

	armed_keys[0].val.task_id = 9;
	slots_write(true);
	s = slot_read(&key);
	cr_assert_eq(s.state, DT_SLOT_MANY);
	cr_assert_eq(s.val.task_id, 7, "the fallback step rewrote the value");
	assert_traced(&tcp_ab, 7);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.dt_tasks), &key, &armed_keys[0].val,
					 BPF_ANY),
		     0);
	assert_traced(&tcp_ab, 9);
	slots_write(false);
	cr_assert_eq(slot_read(&key).state, DT_SLOT_ONE);
	assert_traced(&tcp_ab, 9);
}

/* --- port egress: the last hop ---------------------------------------------------------- */

TestSuite(port_out, .init = setup, .fini = teardown);

ParameterizedTestParameters(port_out, uncolors_and_samples)
{
	/* clang-format off */
	static struct pkt cases[] = {
		{.name = "tcp", .proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP, .sport = 80,
		 .dport = 40000, .seq = 0x01020304, .ip_id = 0x4444, .frag = IP_DF | DT_COLOR_BIT,
		 .payload = 1400},
		{.name = "udp", .proto = IPPROTO_UDP, .saddr = B_IP, .daddr = A_IP, .sport = 53,
		 .dport = 5353, .udp_csum = 0, .ip_id = 0x0001, .frag = DT_COLOR_BIT, .payload = 9},
		{.name = "icmp-echo", .proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP,
		 .sport = 0x1234, .icmp_type = ICMP_ECHO, .seq = 0xffff, .ip_id = 0x7777,
		 .frag = IP_DF | DT_COLOR_BIT, .payload = 56},
		{.name = "icmp-echo-reply-options", .proto = IPPROTO_ICMP, .saddr = B_IP,
		 .daddr = A_IP, .sport = 0x1234, .icmp_type = ICMP_ECHOREPLY, .seq = 1,
		 .ip_id = 0x7778, .frag = DT_COLOR_BIT, .opt_words = 2, .payload = 56},
		{.name = "non-first-fragment", .proto = IPPROTO_UDP, .saddr = B_IP, .daddr = A_IP,
		 .ip_id = 0x0303, .frag = DT_COLOR_BIT | 185, .payload = 100},
	};
	/* clang-format on */

	return cr_make_param_array(struct pkt, cases, ARRAY_LEN(cases));
}

ParameterizedTest(struct pkt *k, port_out, uncolors_and_samples)
{
	struct result r;

	run_pkt(skel->progs.dt_port_egress, k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", k->name);
	assert_sample(&samples[0], DT_HOOK_PORT_OUT, 0, k, PORT_VNI, 0, 0, 0, r.t0, r.t1);
	assert_counters(0, 1, 1, 0);
}

Test(port_out, ignores_uncolored)
{
	const struct pkt *cases[] = {&tcp_ab, &udp_ab, &icmp_ab};
	struct result r;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		run_pkt(skel->progs.dt_port_egress, cases[i], &r);
		assert_unchanged(r.in, r.len, r.out, r.out_len);
	}
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/* Whatever the port map says, the instance never sees the color. */
Test(port_out, uncolors_on_an_unconfigured_port)
{
	struct pkt k = with_frag(tcp_ab, IP_DF | DT_COLOR_BIT);
	struct result r;

	unport();
	run_pkt(skel->progs.dt_port_egress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_PORT_OUT, 0, &k, 0, 0, 0, 0, r.t0, r.t1);
	assert_counters(0, 1, 1, 0);
}

/* A colored packet too short to read ports from still loses its color, unsampled. */
Test(port_out, uncolors_a_truncated_packet)
{
	struct pkt k = with_frag(tcp_ab, IP_DF | DT_COLOR_BIT);
	struct result r;

	k.l4_cut = 10;
	run_pkt(skel->progs.dt_port_egress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 1, 0);
}

/* First hop then last hop: the packet the instance gets is the packet that was sent. */
/* Port egress tests the flags byte at its fixed offset first: an uncolored fragment must
 * still reach the lookup of its datagram (reassembled and fragmented anew on the way). */
Test(port_out, samples_a_refragmented_fragment_of_a_traced_datagram)
{
	struct pkt first = with_frag(tcp_ab, IP_MF), frag = with_frag(tcp_ab, 185);
	struct pkt other = with_frag(tcp_ab, 185);
	struct result r;

	other.ip_id = 0x4321;
	arm(&tcp_ab, PORT_VNI, 0, 7);
	run_pkt(skel->progs.dt_port_ingress, &first, &r);
	drain();
	nsamples = 0;
	run_pkt(skel->progs.dt_port_egress, &frag, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	run_pkt(skel->progs.dt_port_egress, &other, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 1, "the traced datagram's fragment only");
	cr_expect_eq(samples[0].hook, DT_HOOK_PORT_OUT);
	cr_expect_eq(samples[0].flags, DT_SAMPLE_F_REFRAG, "flags %#x", samples[0].flags);
	cr_expect_eq(samples[0].frag, 185);
}

Test(port_out, round_trip_restores_the_packet)
{
	struct result in, out;

	arm(&udp_ab, PORT_VNI, 0, 3);
	run_pkt(skel->progs.dt_port_ingress, &udp_ab, &in);
	out.len = in.out_len;
	memcpy(out.in, in.out, in.out_len);
	out.out_len = run(skel->progs.dt_port_egress, out.in, out.len, out.out);
	assert_unchanged(in.in, in.len, out.out, out.out_len);
	drain();
	cr_assert_eq(nsamples, 2);
	cr_assert_eq(samples[0].hook, DT_HOOK_PORT_IN);
	cr_assert_eq(samples[1].hook, DT_HOOK_PORT_OUT);
	cr_assert_eq(samples[0].ip_id, samples[1].ip_id);
	cr_assert_eq(samples[0].ident, samples[1].ident);
	cr_assert_arr_eq(&samples[0].tuple, &samples[1].tuple, sizeof(struct dt_tuple));
	cr_assert_leq(samples[0].ts_ns, samples[1].ts_ns);
	assert_counters(1, 2, 1, 0);
}

/* --- uplink: both directions, never a write ---------------------------------------------- */

TestSuite(uplink, .init = setup, .fini = teardown);

struct uplink_case {
	char name[32];
	bool egress;
	struct pkt inner;
	struct outer outer;
};

static struct bpf_program *uplink_prog(bool egress)
{
	return egress ? skel->progs.dt_uplink_egress : skel->progs.dt_uplink_ingress;
}

ParameterizedTestParameters(uplink, samples_a_colored_inner_packet)
{
	/* clang-format off */
	static struct uplink_case cases[] = {
		{"in-tcp", false,
		 {.proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP, .sport = 80, .dport = 40000,
		  .seq = 77, .ip_id = 0x0a0a, .frag = IP_DF | DT_COLOR_BIT, .payload = 1000},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI}},
		{"out-tcp", true,
		 {.proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP, .sport = 40000, .dport = 80,
		  .seq = 78, .ip_id = 0x0b0b, .frag = IP_DF | DT_COLOR_BIT, .payload = 1},
		 {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI}},
		{"in-udp", false,
		 {.proto = IPPROTO_UDP, .saddr = B_IP, .daddr = A_IP, .sport = 53, .dport = 5353,
		  .udp_csum = 0xfeed, .ip_id = 0x0c0c, .frag = DT_COLOR_BIT, .payload = 40},
		 {.saddr = HOST2, .daddr = HOST1, .vni = 1}},
		{"out-udp", true,
		 {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 5353, .dport = 53,
		  .udp_csum = 0xbeef, .ip_id = 0x0d0d, .frag = DT_COLOR_BIT, .payload = 40},
		 {.saddr = HOST1, .daddr = HOST2, .vni = 0xffffff}},
		{"in-icmp-reply", false,
		 {.proto = IPPROTO_ICMP, .saddr = B_IP, .daddr = A_IP, .sport = 0x99,
		  .icmp_type = ICMP_ECHOREPLY, .seq = 4, .ip_id = 0x0e0e,
		  .frag = DT_COLOR_BIT, .payload = 56},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI}},
		{"out-icmp-echo", true,
		 {.proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP, .sport = 0x99,
		  .icmp_type = ICMP_ECHO, .seq = 4, .ip_id = 0x0f0f,
		  .frag = IP_DF | DT_COLOR_BIT, .payload = 56},
		 {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI}},
		{"in-both-with-options", false,
		 {.proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP, .sport = 1, .dport = 2,
		  .seq = 3, .ip_id = 4, .frag = DT_COLOR_BIT, .opt_words = 1},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI, .opt_words = 2}},
		{"out-inner-non-first-fragment", true,
		 {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .ip_id = 5,
		  .frag = DT_COLOR_BIT | 185, .payload = 64},
		 {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI}},
	};
	/* clang-format on */

	return cr_make_param_array(struct uplink_case, cases, ARRAY_LEN(cases));
}

ParameterizedTest(struct uplink_case *c, uplink, samples_a_colored_inner_packet)
{
	struct result r;

	memcpy(c->inner.name, c->name, sizeof(c->name));
	run_vxlan(uplink_prog(c->egress), &c->outer, &c->inner, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", c->name);
	assert_sample(&samples[0], c->egress ? DT_HOOK_UPLINK_OUT : DT_HOOK_UPLINK_IN, 0, &c->inner,
		      c->outer.vni, 0, c->outer.saddr, c->outer.daddr, r.t0, r.t1);
	assert_counters(0, 1, 0, 0);
}

/* Encapsulated traffic the uplink must not sample: uncolored, or not VXLAN at all. */
ParameterizedTestParameters(uplink, ignores)
{
	/* clang-format off */
	static struct uplink_case cases[] = {
		{"uncolored-in", false, {.proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP,
		  .sport = 80, .dport = 40000, .frag = IP_DF},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI}},
		{"uncolored-out", true, {.proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP,
		  .sport = 1, .icmp_type = ICMP_ECHO},
		 {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI}},
		{"other-udp-port", true, {.proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
		  .sport = 1, .dport = 2, .frag = DT_COLOR_BIT},
		 {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI, .dport = 8472}},
		{"vxlan-i-flag-clear", false, {.proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP,
		  .sport = 1, .dport = 2, .frag = DT_COLOR_BIT},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI, .vx_flags = 0x80000000}},
		{"outer-not-udp", false, {.proto = IPPROTO_TCP, .saddr = B_IP, .daddr = A_IP,
		  .sport = 1, .dport = 2, .frag = DT_COLOR_BIT},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI, .proto = IPPROTO_TCP}},
		{"outer-non-first-fragment", false, {.proto = IPPROTO_TCP, .saddr = B_IP,
		  .daddr = A_IP, .sport = 1, .dport = 2, .frag = DT_COLOR_BIT},
		 {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI, .frag = 100}},
		{"inner-truncated", true, {.proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP,
		  .sport = 1, .dport = 2, .frag = DT_COLOR_BIT, .l4_cut = 4},
		 {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI}},
	};
	/* clang-format on */

	return cr_make_param_array(struct uplink_case, cases, ARRAY_LEN(cases));
}

ParameterizedTest(struct uplink_case *c, uplink, ignores)
{
	struct result r;

	memcpy(c->inner.name, c->name, sizeof(c->name));
	run_vxlan(uplink_prog(c->egress), &c->outer, &c->inner, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0, "%s: samples", c->name);
	assert_counters(0, 0, 0, 0);
}

/* The port programs take VXLAN for what it is to them: UDP between two hosts. */
Test(uplink, port_programs_do_not_look_inside_vxlan)
{
	struct outer o = {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI};
	struct pkt k = with_frag(tcp_ab, DT_COLOR_BIT);
	struct result r;

	run_vxlan(skel->progs.dt_port_egress, &o, &k, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
}

/* --- ident: NAT-invariant, the same at every hop ------------------------------------------ */

TestSuite(ident, .init = setup, .fini = teardown);

struct ident_case {
	char name[32];
	struct pkt k;
	uint32_t want;
};

/* The payload is the builder's: bytes 01 08 0f 16 ... (pkt_spec()). */
ParameterizedTestParameters(ident, follows_the_sample_contract)
{
	/* clang-format off */
	static struct ident_case cases[] = {
		{"tcp-seq", {.proto = IPPROTO_TCP, .saddr = A_IP, .daddr = B_IP, .sport = 1,
		  .dport = 2, .seq = 0xdeadbeef, .payload = 8}, 0xdeadbeef},
		/* 0x01080f16 ^ 40 << 16 */
		{"udp-payload-32", {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 1,
		  .dport = 2, .udp_csum = 0xffff, .payload = 32}, 0x01200f16},
		{"udp-payload-0", {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 1,
		  .dport = 2}, 0x00080000},
		/* 0x01000000 ^ 9 << 16: zero-padded */
		{"udp-payload-1", {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 1,
		  .dport = 2, .payload = 1}, 0x01090000},
		/* 0x01080f00 ^ 11 << 16 */
		{"udp-payload-3", {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP, .sport = 1,
		  .dport = 2, .payload = 3}, 0x01030f00},
		/* 0x01080f16 ^ 1008 << 16: the UDP length of the whole datagram */
		{"udp-first-fragment", {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP,
		  .sport = 1, .dport = 2, .frag = IP_MF, .payload = 1000}, 0x02f80f16},
		{"udp-non-first-fragment", {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = B_IP,
		  .frag = 185, .payload = 100}, 0},
		{"icmp-echo-seq-only", {.proto = IPPROTO_ICMP, .saddr = A_IP, .daddr = B_IP,
		  .sport = 0x77, .icmp_type = ICMP_ECHO, .seq = 3, .payload = 56}, 3},
		{"icmp-echo-reply-seq-only", {.proto = IPPROTO_ICMP, .saddr = B_IP, .daddr = A_IP,
		  .sport = 0xffff, .icmp_type = ICMP_ECHOREPLY, .seq = 0xfffe}, 0xfffe},
		{"icmp-unreachable", {.proto = IPPROTO_ICMP, .saddr = B_IP, .daddr = A_IP,
		  .icmp_type = ICMP_DEST_UNREACH, .seq = 5, .payload = 28}, 0},
		{"gre", {.proto = 47, .saddr = B_IP, .daddr = A_IP, .payload = 28}, 0},
	};
	/* clang-format on */

	return cr_make_param_array(struct ident_case, cases, ARRAY_LEN(cases));
}

/* Port egress reads it from the packet, the uplink from the inner packet: both agree. */
ParameterizedTest(struct ident_case *c, ident, follows_the_sample_contract)
{
	struct outer o = {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI};
	struct pkt k = c->k;
	struct result r;

	memcpy(k.name, c->name, sizeof(c->name));
	k.frag |= DT_COLOR_BIT;
	cr_assert_eq(pkt_ident(&k), c->want, "%s: test model %#x, want %#x", c->name, pkt_ident(&k),
		     c->want);
	run_pkt(skel->progs.dt_port_egress, &k, &r);
	run_vxlan(skel->progs.dt_uplink_ingress, &o, &k, &r);
	drain();
	cr_assert_eq(nsamples, 2, "%s: samples", c->name);
	cr_expect_eq(samples[0].ident, c->want, "%s: port ident %#x, want %#x", c->name,
		     samples[0].ident, c->want);
	cr_expect_eq(samples[1].ident, c->want, "%s: uplink ident %#x, want %#x", c->name,
		     samples[1].ident, c->want);
}

/* What a source NAT rewrites (source address and port, ICMP identifier, checksums) leaves
 * the ident alone. */
Test(ident, survives_source_nat)
{
	const struct pkt *cases[] = {&tcp_ab, &udp_ab, &icmp_ab};
	struct result r;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct pkt in = with_frag(*cases[i], cases[i]->frag | DT_COLOR_BIT), out = in;

		out.saddr = GW_IP;
		out.sport = (uint16_t)(in.sport + 1000);
		out.udp_csum = (uint16_t)(in.udp_csum + 1);
		run_pkt(skel->progs.dt_port_egress, &in, &r);
		run_pkt(skel->progs.dt_port_egress, &out, &r);
		drain();
		cr_assert_eq(nsamples, 2);
		cr_expect_eq(samples[0].ident, samples[1].ident, "%s: %#x before NAT, %#x after",
			     in.name, samples[0].ident, samples[1].ident);
		cr_expect_eq(samples[0].ident, pkt_ident(&in));
	}
}

/* The UDP ident needs the first payload bytes: a frame that ends before them is as
 * truncated as one that ends in the header. */
Test(ident, udp_without_its_payload_bytes_is_truncated)
{
	struct pkt k = udp_ab;
	struct result r;

	arm(&udp_ab, PORT_VNI, 0, 3);
	k.l4_cut = 8 + 2;
	run_pkt(skel->progs.dt_port_ingress, &k, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	k.frag |= DT_COLOR_BIT;
	run_pkt(skel->progs.dt_port_egress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 1, 0);
}

/* --- limits: budget and rate at the entries ---------------------------------------------- */

TestSuite(quota, .init = setup, .fini = teardown);

/* Runs prog on k's frame n times back to back in one BPF_PROG_TEST_RUN (.repeat): the
 * same skb every time, so a color written by one run is on the packet in the next. The
 * whole batch takes microseconds, far less than any token interval the tests use. */
static void run_repeat(struct bpf_program *prog, const struct pkt *k, uint32_t n)
{
	uint8_t in[FRAME_MAX], out[FRAME_MAX];
	size_t len = pkt_frame(in, k);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = n);

	cr_assert_eq(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0, "test_run: %s",
		     strerror(errno));
	cr_assert_eq(opts.retval, TC_ACT_UNSPEC);
}

/* Every counter the limit tests look at, read at once. */
struct quota_counts {
	uint64_t colored, sampled, foreign, budget_spent, rate_limited;
};

static void assert_quota_counts(struct quota_counts want)
{
	struct quota_counts c = {
		.colored = counter(DT_CNT_COLORED),
		.sampled = counter(DT_CNT_SAMPLED),
		.foreign = counter(DT_CNT_FOREIGN_COLOR),
		.budget_spent = counter(DT_CNT_BUDGET_SPENT),
		.rate_limited = counter(DT_CNT_RATE_LIMITED),
	};

	cr_expect_eq(c.colored, want.colored, "DT_CNT_COLORED %llu, want %llu",
		     (unsigned long long)c.colored, (unsigned long long)want.colored);
	cr_expect_eq(c.sampled, want.sampled, "DT_CNT_SAMPLED %llu, want %llu",
		     (unsigned long long)c.sampled, (unsigned long long)want.sampled);
	cr_expect_eq(c.foreign, want.foreign, "DT_CNT_FOREIGN_COLOR %llu, want %llu",
		     (unsigned long long)c.foreign, (unsigned long long)want.foreign);
	cr_expect_eq(c.budget_spent, want.budget_spent, "DT_CNT_BUDGET_SPENT %llu, want %llu",
		     (unsigned long long)c.budget_spent, (unsigned long long)want.budget_spent);
	cr_expect_eq(c.rate_limited, want.rate_limited, "DT_CNT_RATE_LIMITED %llu, want %llu",
		     (unsigned long long)c.rate_limited, (unsigned long long)want.rate_limited);
	cr_expect_eq(counter(DT_CNT_WRITE_FAIL), 0);
	cr_expect_eq(counter(DT_CNT_RING_FULL), 0);
}

/* How many entries dt_task_quota holds. */
static int quota_entries(void)
{
	int fd = bpf_map__fd(skel->maps.dt_task_quota);
	struct dt_tuple key, next;
	int n = 0;

	for (int rc = bpf_map_get_next_key(fd, NULL, &next); rc == 0;
	     rc = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		n++;
	}
	return n;
}

static bool quota_has(const struct dt_tuple *key)
{
	uint8_t val[256];

	cr_assert_leq(bpf_map__value_size(skel->maps.dt_task_quota), sizeof(val));
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.dt_task_quota), key, val) == 0;
}

/* The agent's disarm of a key's limit state. */
static void quota_delete(const struct dt_tuple *key)
{
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(skel->maps.dt_task_quota), key), 0,
		     "delete: %s", strerror(errno));
}

/* Runs k through prog once; returns whether it came out colored (and then sampled). */
static bool colored_once(struct bpf_program *prog, const struct pkt *k)
{
	struct result r;
	bool colored;

	run_pkt(prog, k, &r);
	colored = dt_pkt_get16(r.out + ETH_LEN + 6) & DT_COLOR_BIT;
	assert_recolored(r.in, r.len, r.out, r.out_len, colored);
	drain();
	cr_assert_eq(nsamples, colored ? 1 : 0, "%s: %d samples, colored %d", k->name, nsamples,
		     colored);
	return colored;
}

Test(quota, budget_colors_exactly_n)
{
	struct dt_tuple key = arm_limited(&tcp_ab, PORT_VNI, 0, 7, 3, 0);
	struct result r;

	cr_assert_eq(quota_entries(), 0, "created before the first match");
	for (int i = 0; i < 3; i++) {
		run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
		assert_recolored(r.in, r.len, r.out, r.out_len, true);
	}
	cr_assert(quota_has(&key), "no entry under the dt_tasks key");
	cr_assert_eq(quota_entries(), 1);
	for (int i = 0; i < 5; i++) {
		run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
		assert_unchanged(r.in, r.len, r.out, r.out_len);
	}
	drain();
	cr_assert_eq(nsamples, 3);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(samples[i].task_id, 7);
	assert_quota_counts((struct quota_counts){.colored = 3, .sampled = 3, .budget_spent = 5});
}

/* Back to back on one skb: the runs after the budget find our own color of the run before
 * and remove it, as any color on a packet that is not admitted. */
Test(quota, budget_back_to_back)
{
	arm_limited(&udp_ab, PORT_VNI, 0, 7, 5, 0);
	run_repeat(skel->progs.dt_port_ingress, &udp_ab, 20);
	drain();
	cr_assert_eq(nsamples, 5);
	assert_quota_counts((struct quota_counts){
		.colored = 5, .sampled = 5, .foreign = 1, .budget_spent = 15});
}

/* A packet the sender colored and that matches is ours (the bit stays), and it is paid for. */
Test(quota, sender_colored_matches_count_against_the_budget)
{
	struct pkt colored = with_frag(tcp_ab, IP_DF | DT_COLOR_BIT);
	struct result r;

	arm_limited(&tcp_ab, PORT_VNI, 0, 7, 2, 0);
	for (int i = 0; i < 2; i++) {
		run_pkt(skel->progs.dt_port_ingress, &colored, &r);
		assert_unchanged(r.in, r.len, r.out, r.out_len);
	}
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	run_pkt(skel->progs.dt_port_ingress, &colored, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 2);
	assert_quota_counts(
		(struct quota_counts){.colored = 2, .sampled = 2, .foreign = 1, .budget_spent = 2});
}

/* The agent re-applies its control set: it rewrites dt_tasks values, the budget stays spent. */
Test(quota, rewriting_the_task_keeps_the_budget)
{
	struct dt_tuple key = arm_limited(&tcp_ab, PORT_VNI, 0, 7, 2, 0);
	struct dt_task_val val = {.task_id = 7, .budget = 2};
	int fd = bpf_map__fd(skel->maps.dt_tasks);

	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_eq(bpf_map_update_elem(fd, &key, &val, BPF_ANY), 0);
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_eq(bpf_map_delete_elem(fd, &key), 0);
	cr_assert_eq(bpf_map_update_elem(fd, &key, &val, BPF_NOEXIST), 0);
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	/* A raised budget (the same task) admits the difference only. */
	val.budget = 3;
	cr_assert_eq(bpf_map_update_elem(fd, &key, &val, BPF_ANY), 0);
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	assert_quota_counts((struct quota_counts){.colored = 3, .sampled = 3, .budget_spent = 3});
}

/* Disarm deletes the entry: a key armed again starts with its whole budget. */
Test(quota, deleting_the_entry_resets_the_budget)
{
	struct dt_tuple key = arm_limited(&tcp_ab, PORT_VNI, 0, 7, 1, 0);

	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	quota_delete(&key);
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	assert_quota_counts((struct quota_counts){.colored = 2, .sampled = 2, .budget_spent = 2});
}

/* An entry left behind by another task on the same key (a disarm that raced a packet)
 * does not carry over. */
Test(quota, another_task_on_the_key_starts_over)
{
	struct dt_tuple key = arm_limited(&tcp_ab, PORT_VNI, 0, 7, 1, 0);
	struct dt_task_val val = {.task_id = 8, .budget = 1};

	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.dt_tasks), &key, &val, BPF_ANY), 0);
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_expect_eq(samples[0].task_id, 8);
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
}

/* Budget 0 and rate 0: no limit, and dt_task_quota is never touched. */
Test(quota, no_limits_are_unlimited)
{
	arm(&tcp_ab, PORT_VNI, 0, 7);
	run_repeat(skel->progs.dt_port_ingress, &tcp_ab, 200);
	drain();
	cr_assert_eq(nsamples, 200);
	assert_quota_counts((struct quota_counts){.colored = 200, .sampled = 200});
	cr_assert_eq(quota_entries(), 0);
}

/* A rate with budget 0: no budget, and the other way round. */
Test(quota, budget_without_rate_and_rate_without_budget)
{
	struct pkt other = udp_ab;

	other.sport = 5354;
	arm_limited(&tcp_ab, PORT_VNI, 0, 7, 0, 1000000); /* burst 100000 */
	arm_limited(&other, PORT_VNI, 0, 8, 1000000, 0);
	run_repeat(skel->progs.dt_port_ingress, &tcp_ab, 150);
	run_repeat(skel->progs.dt_port_ingress, &other, 150);
	drain();
	cr_assert_eq(nsamples, 300);
	assert_quota_counts((struct quota_counts){.colored = 300, .sampled = 300});
	cr_assert_eq(quota_entries(), 2);
}

struct rate_case {
	uint32_t rate_pps, burst;
};

ParameterizedTestParameters(quota, rate_colors_the_burst_back_to_back)
{
	/* burst = max(1, rate / 10); one token every 1/rate s, 10 ms at the most here. */
	static struct rate_case cases[] = {{1, 1}, {10, 1}, {19, 1}, {20, 2}, {100, 10}};

	return cr_make_param_array(struct rate_case, cases, ARRAY_LEN(cases));
}

ParameterizedTest(struct rate_case *c, quota, rate_colors_the_burst_back_to_back)
{
	const uint32_t n = 50;

	arm_limited(&tcp_ab, PORT_VNI, 0, 7, 0, c->rate_pps);
	run_repeat(skel->progs.dt_port_ingress, &tcp_ab, n);
	drain();
	cr_assert_eq(nsamples, (int)c->burst, "rate %u: %d samples", c->rate_pps, nsamples);
	assert_quota_counts((struct quota_counts){.colored = c->burst,
						  .sampled = c->burst,
						  .foreign = 1,
						  .rate_limited = n - c->burst});
}

/* The bucket refills with time, never above the burst. */
Test(quota, rate_refills_up_to_the_burst)
{
	struct timespec pause = {.tv_nsec = 250 * 1000000}; /* 2.5 tokens at 10 pps */

	arm_limited(&tcp_ab, PORT_VNI, 0, 7, 0, 10); /* burst 1 */
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	nanosleep(&pause, NULL);
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	assert_quota_counts((struct quota_counts){.colored = 2, .sampled = 2, .rate_limited = 2});
}

/* Budget and rate together: the budget is tested first, a refusal spends neither. */
Test(quota, budget_and_rate_together)
{
	struct timespec pause = {.tv_nsec = 150 * 1000000};

	arm_limited(&tcp_ab, PORT_VNI, 0, 7, 2, 10); /* burst 1 */
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab)); /* rate */
	nanosleep(&pause, NULL);
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	nanosleep(&pause, NULL);
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab)); /* budget */
	assert_quota_counts((struct quota_counts){
		.colored = 2, .sampled = 2, .budget_spent = 1, .rate_limited = 1});
}

/* A wildcard task's limits are its key's: every port pair draws from one budget, kept
 * under the portless dt_tasks key. Request and reply keys have one each. */
Test(quota, limits_are_per_dt_tasks_key)
{
	struct dt_tuple wild = arm_limited(&tcp_ab, PORT_VNI, DT_TASK_F_ANYPORT, 7, 2, 0);
	struct pkt rev = tcp_ab, k2 = tcp_ab;
	struct dt_tuple rkey;

	rev.saddr = tcp_ab.daddr;
	rev.daddr = tcp_ab.saddr;
	rev.sport = tcp_ab.dport;
	rev.dport = tcp_ab.sport;
	rkey = arm_limited(&rev, PORT_VNI, DT_TASK_F_REPLY, 7, 1, 0);
	k2.sport = 40002;
	cr_assert(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert(colored_once(skel->progs.dt_port_ingress, &k2));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &tcp_ab));
	cr_assert(colored_once(skel->progs.dt_port_ingress, &rev));
	cr_assert_not(colored_once(skel->progs.dt_port_ingress, &rev));
	cr_assert_eq(wild.sport, 0);
	cr_assert(quota_has(&wild), "no entry under the wildcard key");
	cr_assert(quota_has(&rkey), "no entry under the reply key");
	cr_assert_eq(quota_entries(), 2);
	assert_quota_counts((struct quota_counts){.colored = 3, .sampled = 3, .budget_spent = 2});
}

/* --- gateway: the outside interface, an exit and an entry ---------------------------------- */

/* A network namespace of the test's own: its conntrack table has what the test puts in. */
static void setup_gw(void)
{
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	load(0);
}

TestSuite(gw_out, .init = setup_gw, .fini = teardown);
TestSuite(gw_in, .init = setup_gw, .fini = teardown);
TestSuite(gw_ct, .init = setup_gw, .fini = teardown);

/* An instance's flow to a server, as it leaves the gateway after source NAT. */
/* clang-format off */
static struct pkt gw_out_cases[] = {
	{.name = "tcp", .proto = IPPROTO_TCP, .saddr = GW_IP, .daddr = SRV_IP, .sport = 61000,
	 .dport = 80, .seq = 0x11223344, .ip_id = 0x5151, .frag = IP_DF | DT_COLOR_BIT,
	 .payload = 100},
	{.name = "udp", .proto = IPPROTO_UDP, .saddr = GW_IP, .daddr = SRV_IP, .sport = 61001,
	 .dport = 53, .udp_csum = 0x4242, .ip_id = 0x5252, .frag = DT_COLOR_BIT, .payload = 30},
	{.name = "icmp-echo", .proto = IPPROTO_ICMP, .saddr = GW_IP, .daddr = SRV_IP,
	 .sport = 0x0700, .icmp_type = ICMP_ECHO, .seq = 1, .ip_id = 0x5353,
	 .frag = IP_DF | DT_COLOR_BIT, .payload = 56},
	{.name = "non-first-fragment", .proto = IPPROTO_UDP, .saddr = GW_IP, .daddr = SRV_IP,
	 .ip_id = 0x5454, .frag = DT_COLOR_BIT | 185, .payload = 100},
};
/* clang-format on */

ParameterizedTestParameters(gw_out, samples_and_uncolors_without_conntrack)
{
	return cr_make_param_array(struct pkt, gw_out_cases, ARRAY_LEN(gw_out_cases));
}

/* No conntrack entry: the exit still samples (no orig) and uncolors, and says so. */
ParameterizedTest(struct pkt *k, gw_out, samples_and_uncolors_without_conntrack)
{
	struct result r;

	run_pkt(skel->progs.dt_gw_egress, k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", k->name);
	assert_sample(&samples[0], DT_HOOK_GW_OUT, 0, k, PORT_VNI, 0, 0, 0, r.t0, r.t1);
	assert_counters_nat(0, 1, 1, 0, 1);
}

Test(gw_out, ignores_uncolored)
{
	struct dt_tuple key;
	struct result r;

	for (size_t i = 0; i < ARRAY_LEN(gw_out_cases); i++) {
		struct pkt k = with_frag(gw_out_cases[i], gw_out_cases[i].frag & ~DT_COLOR_BIT);

		run_pkt(skel->progs.dt_gw_egress, &k, &r);
		assert_unchanged(r.in, r.len, r.out, r.out_len);
	}
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
	/* An echo request without conntrack teaches the ingress nothing. */
	cr_assert_neq(bpf_map_get_next_key(bpf_map__fd(skel->maps.dt_gw_icmp), NULL, &key), 0);
}

/* Like a port's egress: whatever the map says, nothing outside sees the color. */
Test(gw_out, uncolors_a_truncated_packet)
{
	struct pkt k = gw_out_cases[0];
	struct result r;

	k.l4_cut = 10;
	run_pkt(skel->progs.dt_gw_egress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	unport();
	run_pkt(skel->progs.dt_gw_egress, &gw_out_cases[1], &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_GW_OUT, 0, &gw_out_cases[1], 0, 0, 0, 0, r.t0, r.t1);
	assert_counters_nat(0, 1, 2, 0, 1);
}

/* A server's reply arriving from outside. */
static const struct pkt srv_reply = {
	.name = "tcp-reply",
	.proto = IPPROTO_TCP,
	.saddr = SRV_IP,
	.daddr = GW_IP,
	.sport = 80,
	.dport = 61000,
	.seq = 0x55667788,
	.ip_id = 0x6161,
	.frag = IP_DF,
	.payload = 200,
};

/* A gateway without conntrack (no NAT): the tuple as seen is the inside tuple. */
Test(gw_in, colors_a_match_without_conntrack)
{
	struct result r;

	arm(&srv_reply, PORT_VNI, DT_TASK_F_REPLY, 21);
	run_pkt(skel->progs.dt_gw_ingress, &srv_reply, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_GW_IN, DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_REPLY,
		      &srv_reply, PORT_VNI, 21, 0, 0, r.t0, r.t1);
	assert_counters_nat(1, 1, 0, 0, 1);
}

Test(gw_in, leaves_a_miss_alone)
{
	struct pkt other = srv_reply;
	struct result r;

	arm(&srv_reply, PORT_VNI, DT_TASK_F_REPLY, 21);
	other.dport = 61001;
	run_pkt(skel->progs.dt_gw_ingress, &other, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/* The outside cannot inject traced packets either. */
Test(gw_in, strips_a_foreign_color)
{
	struct pkt k = with_frag(srv_reply, IP_DF | DT_COLOR_BIT);
	struct result r;

	run_pkt(skel->progs.dt_gw_ingress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	unport();
	run_pkt(skel->progs.dt_gw_ingress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 2);
}

Test(gw_in, unconfigured_interface_colors_nothing)
{
	struct result r;

	arm(&srv_reply, PORT_VNI, DT_TASK_F_REPLY, 21);
	unport();
	run_pkt(skel->progs.dt_gw_ingress, &srv_reply, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/* The gateway's entry obeys the same limits, keyed by the tuple inside the NAT. */
Test(gw_in, obeys_budget_and_rate)
{
	struct dt_tuple key = arm_limited(&srv_reply, PORT_VNI, DT_TASK_F_REPLY, 21, 3, 0);
	struct pkt other = srv_reply;

	for (int i = 0; i < 3; i++)
		cr_assert(colored_once(skel->progs.dt_gw_ingress, &srv_reply));
	cr_assert_not(colored_once(skel->progs.dt_gw_ingress, &srv_reply));
	cr_assert(quota_has(&key));
	quota_delete(&key);
	cr_assert(colored_once(skel->progs.dt_gw_ingress, &srv_reply));

	other.dport = 61001;
	arm_limited(&other, PORT_VNI, DT_TASK_F_REPLY, 22, 0, 20); /* burst 2 */
	run_repeat(skel->progs.dt_gw_ingress, &other, 30);
	drain();
	cr_assert_eq(nsamples, 2);
	assert_quota_counts((struct quota_counts){
		.colored = 6, .sampled = 6, .foreign = 1, .budget_spent = 1, .rate_limited = 28});
	cr_expect_eq(counter(DT_CNT_NAT_NO_CT), 6);
}

static struct dt_tuple tuple_of(const struct pkt *k, uint32_t vni)
{
	return pkt_tuple(k, vni);
}

/*
 * ICMP echo: conntrack's kfunc does not look ICMP up, so the ingress finds an echo reply's
 * inside tuple in dt_gw_icmp, which the egress fills from the request's conntrack entry
 * (that half needs an skb with conntrack: the lab tests). Here the entry is put by hand.
 */
Test(gw_in, colors_an_echo_reply_through_the_learned_nat)
{
	struct pkt req = {
		.name = "echo",
		.proto = IPPROTO_ICMP,
		.saddr = A_IP,
		.daddr = SRV_IP,
		.sport = 0x0042,
		.icmp_type = ICMP_ECHO,
		.seq = 7,
		.payload = 56,
	};
	struct pkt inside = reversed(&req), seen = inside;
	struct dt_tuple key, val, orig;
	struct result r;

	seen.daddr = GW_IP;
	seen.sport = 0x0700; /* the identifier the NAT chose */
	seen.ip_id = 0x7171;
	key = tuple_of(&seen, 0);
	val = tuple_of(&inside, 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.dt_gw_icmp), &key, &val, BPF_ANY),
		     0);
	arm(&inside, PORT_VNI, DT_TASK_F_REPLY, 31);
	run_pkt(skel->progs.dt_gw_ingress, &seen, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_GW_IN,
		      DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_NAT | DT_SAMPLE_F_REPLY, &seen, PORT_VNI,
		      31, 0, 0, r.t0, r.t1);
	orig = tuple_of(&inside, PORT_VNI);
	assert_orig(&samples[0], &orig);
	assert_counters(1, 1, 0, 0);
}

/* --- gateway with conntrack: entries made through ctnetlink --------------------------------- */

struct nlmsg {
	uint8_t buf[1024] __attribute__((aligned(4)));
	size_t len;
};

static void nl_put(struct nlmsg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(m->buf + m->len);

	cr_assert_leq(m->len + NLA_HDRLEN + NLA_ALIGN(len), sizeof(m->buf));
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN(a->nla_len);
}

static void nl_put_be16(struct nlmsg *m, uint16_t type, uint16_t v)
{
	uint16_t be = htons(v);

	nl_put(m, type, &be, sizeof(be));
}

static void nl_put_be32(struct nlmsg *m, uint16_t type, uint32_t v)
{
	uint32_t be = htonl(v);

	nl_put(m, type, &be, sizeof(be));
}

static size_t nl_nest(struct nlmsg *m, uint16_t type)
{
	size_t off = m->len;

	nl_put(m, type | NLA_F_NESTED, NULL, 0);
	return off;
}

static void nl_nest_end(struct nlmsg *m, size_t off)
{
	((struct nlattr *)(m->buf + off))->nla_len = (uint16_t)(m->len - off);
}

static void ct_put_tuple(struct nlmsg *m, uint16_t type, uint8_t proto, uint32_t saddr,
			 uint16_t sport, uint32_t daddr, uint16_t dport)
{
	size_t t = nl_nest(m, type), n;

	n = nl_nest(m, CTA_TUPLE_IP);
	nl_put_be32(m, CTA_IP_V4_SRC, saddr);
	nl_put_be32(m, CTA_IP_V4_DST, daddr);
	nl_nest_end(m, n);
	n = nl_nest(m, CTA_TUPLE_PROTO);
	nl_put(m, CTA_PROTO_NUM, &proto, sizeof(proto));
	nl_put_be16(m, CTA_PROTO_SRC_PORT, sport);
	nl_put_be16(m, CTA_PROTO_DST_PORT, dport);
	nl_nest_end(m, n);
	nl_nest_end(m, t);
}

/* A connection as conntrack first saw it (host order), and what the gateway's NAT does. */
struct ct_spec {
	uint8_t proto; /* TCP or UDP */
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint16_t nat;	   /* 0, CTA_NAT_SRC or CTA_NAT_DST */
	uint32_t nat_addr; /* ...to this address and port */
	uint16_t nat_port;
};

/* Creates the conntrack entry of c in the test's network namespace, as a NAT rule would. */
static void ct_create(const struct ct_spec *c)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct nlmsg m = {.len = 0};
	struct nlmsghdr *nh = (struct nlmsghdr *)m.buf;
	struct nfgenmsg *nf;
	uint8_t ack[512] __attribute__((aligned(4)));
	struct nlmsgerr *err;
	ssize_t n;
	int fd;

	nh->nlmsg_type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	nh->nlmsg_seq = 1;
	m.len = NLMSG_HDRLEN;
	nf = (struct nfgenmsg *)(m.buf + m.len);
	nf->nfgen_family = AF_INET;
	nf->version = NFNETLINK_V0;
	nf->res_id = 0;
	m.len += NLMSG_ALIGN(sizeof(*nf));
	ct_put_tuple(&m, CTA_TUPLE_ORIG, c->proto, c->saddr, c->sport, c->daddr, c->dport);
	ct_put_tuple(&m, CTA_TUPLE_REPLY, c->proto, c->daddr, c->dport, c->saddr, c->sport);
	nl_put_be32(&m, CTA_TIMEOUT, 300);
	if (c->nat) {
		size_t nat = nl_nest(&m, c->nat), proto;

		nl_put_be32(&m, CTA_NAT_V4_MINIP, c->nat_addr);
		nl_put_be32(&m, CTA_NAT_V4_MAXIP, c->nat_addr);
		proto = nl_nest(&m, CTA_NAT_PROTO);
		nl_put_be16(&m, CTA_PROTONAT_PORT_MIN, c->nat_port);
		nl_put_be16(&m, CTA_PROTONAT_PORT_MAX, c->nat_port);
		nl_nest_end(&m, proto);
		nl_nest_end(&m, nat);
	}
	nh->nlmsg_len = (uint32_t)m.len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	cr_assert_geq(fd, 0, "netlink socket: %s", strerror(errno));
	n = sendto(fd, m.buf, m.len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	cr_assert_eq(n, (ssize_t)m.len, "ctnetlink send: %s", strerror(errno));
	n = recv(fd, ack, sizeof(ack), 0);
	close(fd);
	cr_assert_geq(n, (ssize_t)(NLMSG_HDRLEN + sizeof(*err)), "ctnetlink ack: %s",
		      strerror(errno));
	nh = (struct nlmsghdr *)ack;
	cr_assert_eq(nh->nlmsg_type, NLMSG_ERROR);
	err = NLMSG_DATA(nh);
	cr_assert_eq(err->error, 0, "ctnetlink: creating the entry: %s", strerror(-err->error));
}

/* An instance's connection to a server, masqueraded to the gateway's address. */
struct nat_case {
	char name[32];
	struct ct_spec ct;
	struct pkt seen;   /* the packet at the gateway's outside interface */
	struct pkt inside; /* the same packet inside the NAT */
};

/* clang-format off */
static struct nat_case snat_cases[] = {
	{"tcp",
	 {IPPROTO_TCP, A_IP, SRV_IP, 40000, 80, CTA_NAT_SRC, GW_IP, 61000},
	 {.proto = IPPROTO_TCP, .saddr = GW_IP, .daddr = SRV_IP, .sport = 61000, .dport = 80,
	  .seq = 0x01010101, .ip_id = 0x0a01, .frag = IP_DF, .payload = 10},
	 {.proto = IPPROTO_TCP, .saddr = A_IP, .daddr = SRV_IP, .sport = 40000, .dport = 80}},
	{"udp",
	 {IPPROTO_UDP, A_IP, SRV_IP, 5353, 53, CTA_NAT_SRC, GW_IP, 61001},
	 {.proto = IPPROTO_UDP, .saddr = GW_IP, .daddr = SRV_IP, .sport = 61001, .dport = 53,
	  .udp_csum = 0x0bad, .ip_id = 0x0a02, .payload = 20},
	 {.proto = IPPROTO_UDP, .saddr = A_IP, .daddr = SRV_IP, .sport = 5353, .dport = 53}},
};
/* clang-format on */

ParameterizedTestParameters(gw_ct, egress_reports_the_tuple_before_snat)
{
	return cr_make_param_array(struct nat_case, snat_cases, ARRAY_LEN(snat_cases));
}

/* The request leaving after source NAT: sampled as seen, with the inside tuple as orig. */
ParameterizedTest(struct nat_case *c, gw_ct, egress_reports_the_tuple_before_snat)
{
	struct pkt k = with_frag(c->seen, c->seen.frag | DT_COLOR_BIT);
	struct dt_tuple orig = tuple_of(&c->inside, PORT_VNI);
	struct result r;

	memcpy(k.name, c->name, sizeof(c->name));
	ct_create(&c->ct);
	run_pkt(skel->progs.dt_gw_egress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", c->name);
	assert_sample(&samples[0], DT_HOOK_GW_OUT, DT_SAMPLE_F_NAT, &k, PORT_VNI, 0, 0, 0, r.t0,
		      r.t1);
	assert_orig(&samples[0], &orig);
	assert_counters(0, 1, 1, 0);
}

ParameterizedTestParameters(gw_ct, ingress_colors_a_reply_by_its_inside_tuple)
{
	return cr_make_param_array(struct nat_case, snat_cases, ARRAY_LEN(snat_cases));
}

/* The reply arriving before de-NAT: its inside tuple is armed as the task's reply key. */
ParameterizedTest(struct nat_case *c, gw_ct, ingress_colors_a_reply_by_its_inside_tuple)
{
	struct pkt seen = reversed(&c->seen), inside = reversed(&c->inside);
	struct dt_tuple orig = tuple_of(&inside, PORT_VNI);
	struct result r;

	memcpy(seen.name, c->name, sizeof(c->name));
	ct_create(&c->ct);
	arm(&inside, PORT_VNI, DT_TASK_F_REPLY, 21);
	run_pkt(skel->progs.dt_gw_ingress, &seen, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1, "%s: samples", c->name);
	assert_sample(&samples[0], DT_HOOK_GW_IN,
		      DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_NAT | DT_SAMPLE_F_REPLY, &seen, PORT_VNI,
		      21, 0, 0, r.t0, r.t1);
	assert_orig(&samples[0], &orig);
	assert_counters(1, 1, 0, 0);
}

/* The tuple as seen is not what the task names: with the entry, it does not match. */
Test(gw_ct, ingress_matches_the_inside_tuple_only)
{
	struct nat_case *c = &snat_cases[0];
	struct pkt seen = reversed(&c->seen);
	struct result r;

	ct_create(&c->ct);
	arm(&seen, PORT_VNI, DT_TASK_F_REPLY, 21);
	run_pkt(skel->progs.dt_gw_ingress, &seen, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 0);
}

/* A port forward (destination NAT only): a client outside opens a connection to the
 * gateway, which forwards it to an instance; the inside tuple is the one after DNAT. */
Test(gw_ct, ingress_reports_the_tuple_after_dnat)
{
	struct ct_spec ct = {IPPROTO_TCP, SRV_IP, GW_IP, 50000, 8080, CTA_NAT_DST, A_IP, 80};
	struct pkt seen = {
		.name = "dnat",
		.proto = IPPROTO_TCP,
		.saddr = SRV_IP,
		.daddr = GW_IP,
		.sport = 50000,
		.dport = 8080,
		.seq = 99,
		.ip_id = 0x0d0d,
		.frag = IP_DF,
	};
	struct pkt inside = seen;
	struct dt_tuple orig;
	struct result r;

	inside.daddr = A_IP;
	inside.dport = 80;
	orig = tuple_of(&inside, PORT_VNI);
	ct_create(&ct);
	arm(&inside, PORT_VNI, 0, 41);
	run_pkt(skel->progs.dt_gw_ingress, &seen, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_GW_IN, DT_SAMPLE_F_FIRST_HOP | DT_SAMPLE_F_NAT, &seen,
		      PORT_VNI, 41, 0, 0, r.t0, r.t1);
	assert_orig(&samples[0], &orig);
	assert_counters(1, 1, 0, 0);
}

/* An entry without translation: no orig, and not a missing entry either. */
Test(gw_ct, entry_without_nat_gives_no_orig)
{
	struct ct_spec ct = {IPPROTO_UDP, GW_IP, SRV_IP, 7000, 7001, 0, 0, 0};
	struct pkt k = {
		.name = "plain",
		.proto = IPPROTO_UDP,
		.saddr = GW_IP,
		.daddr = SRV_IP,
		.sport = 7000,
		.dport = 7001,
		.ip_id = 0x0e0e,
		.frag = DT_COLOR_BIT,
		.payload = 4,
	};
	struct result r;

	ct_create(&ct);
	run_pkt(skel->progs.dt_gw_egress, &k, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 1);
	assert_sample(&samples[0], DT_HOOK_GW_OUT, 0, &k, PORT_VNI, 0, 0, 0, r.t0, r.t1);
	assert_counters(0, 1, 1, 0);
}

/* --- ring buffer full: counted, not silent ------------------------------------------------ */

static void setup_small_ring(void)
{
	load(4096); /* one page: 39 records of 96 + 8 bytes */
}

TestSuite(ring, .init = setup_small_ring, .fini = teardown);

Test(ring, full_ring_is_counted)
{
	const uint32_t runs = 100;
	struct outer o = {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI};
	struct pkt k = with_frag(udp_ab, DT_COLOR_BIT);
	uint8_t f[FRAME_MAX], out[FRAME_MAX];
	size_t len = vxlan_frame(f, &o, &k);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = runs);
	uint64_t sampled, full, after;

	cr_assert_eq(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.dt_uplink_egress), &opts),
		     0, "test_run: %s", strerror(errno));
	sampled = counter(DT_CNT_SAMPLED);
	full = counter(DT_CNT_RING_FULL);
	cr_assert_eq(sampled + full, runs, "sampled %llu + full %llu != %u",
		     (unsigned long long)sampled, (unsigned long long)full, runs);
	cr_assert_gt(full, 0, "the ring never filled");
	cr_assert_lt(sampled, runs);
	drain();
	cr_assert_eq(nsamples, (int)sampled, "records in the ring != DT_CNT_SAMPLED");

	/* Drained, the ring takes records again. */
	cr_assert_eq(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.dt_uplink_ingress), &opts),
		     0);
	after = counter(DT_CNT_SAMPLED);
	cr_assert_gt(after, sampled);
}

/* With nothing armed, port ingress neither parses L4 nor looks up: it only strips a
 * tenant's own color. */
Test(port_in, nothing_armed_only_strips_foreign_color)
{
	struct pkt colored = tcp_ab;
	struct result r;

	skel->bss->dt_armed_keys = 0;
	run_pkt(skel->progs.dt_port_ingress, &tcp_ab, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	colored.frag |= DT_COLOR_BIT;
	run_pkt(skel->progs.dt_port_ingress, &colored, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, false);
	drain();
	cr_assert_eq(nsamples, 0);
	assert_counters(0, 0, 0, 1);
}

/* --- refragmentation: the VXLAN device's egress colors a traced datagram's new fragments -- */

TestSuite(refrag, .init = setup, .fini = teardown);

/*
 * h1 colored a datagram's fragments at its port; its bridge reassembled them and fragmented
 * the datagram anew for a smaller VXLAN MTU, which cleared the color. At the VXLAN device's
 * egress the new fragments are colored again, and the uplink's sample says so; fragments of
 * a datagram nobody traced are left alone.
 */
Test(refrag, new_fragments_of_a_traced_datagram_are_colored_again)
{
	struct pkt first = with_frag(udp_ab, IP_MF), again = with_frag(udp_ab, IP_MF | 178);
	struct pkt other = with_frag(udp_ab, IP_MF | 178), colored = again;
	struct outer o = {.saddr = HOST1, .daddr = HOST2, .vni = UPLINK_VNI};
	struct result r;

	other.ip_id = 0x7777;
	colored.frag |= DT_COLOR_BIT;
	arm(&udp_ab, PORT_VNI, 0, 11);
	run_pkt(skel->progs.dt_port_ingress, &first, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_overlay_egress, &again, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	run_pkt(skel->progs.dt_overlay_egress, &other, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	cr_expect_eq(counter(DT_CNT_RECOLORED), 1);
	drain();
	cr_assert_eq(nsamples, 1, "the overlay program never samples");

	run_vxlan(skel->progs.dt_uplink_egress, &o, &colored, &r);
	run_vxlan(skel->progs.dt_uplink_egress, &o, &colored, &r);
	drain();
	cr_assert_eq(nsamples, 2);
	cr_expect_eq(samples[0].flags, DT_SAMPLE_F_REFRAG, "flags %#x", samples[0].flags);
	cr_expect_eq(samples[0].frag, DT_FRAG_MF | 178);
	cr_expect_eq(samples[1].flags, 0, "flagged once: %#x", samples[1].flags);
}

/* A node that receives a traced datagram's fragments (a router with conntrack) and
 * fragments it anew colors the new fragments too. */
Test(refrag, a_node_that_received_the_fragments_colors_them_again)
{
	struct pkt in = with_frag(udp_ab, DT_COLOR_BIT | IP_MF | 185),
		   again = with_frag(udp_ab, 178);
	struct outer o = {.saddr = HOST2, .daddr = HOST1, .vni = UPLINK_VNI};
	struct result r;

	run_pkt(skel->progs.dt_overlay_egress, &again, &r);
	assert_unchanged(r.in, r.len, r.out, r.out_len);
	run_vxlan(skel->progs.dt_uplink_ingress, &o, &in, &r);
	run_pkt(skel->progs.dt_overlay_egress, &again, &r);
	assert_recolored(r.in, r.len, r.out, r.out_len, true);
	cr_expect_eq(counter(DT_CNT_RECOLORED), 1);
}
