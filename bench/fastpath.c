/* SPDX-License-Identifier: MIT */
/*
 * fastpath.c - benchmark 1: the data plane's cost per packet.
 *
 * The real programs of the generated skeleton (dyetrace.skel.h) run on crafted frames
 * through BPF_PROG_TEST_RUN with a large repeat count; the same frame through an empty tc
 * program (r0 = 0; exit), loaded here with bpf_prog_load(), is the floor that every
 * figure is net of. Rounds alternate empty and real program, pinned to one CPU; each
 * figure is the fastest of ROUNDS rounds (the least disturbed: on a shared VM noise only
 * ever adds time), and net = fastest program - fastest empty program. The time is the
 * thread's CPU time around the one syscall (the program runs in our syscall, so other
 * processes that get the CPU meanwhile do not count; the repeat runs amortize the syscall
 * to well under 0.01 ns); the kernel's own duration is a whole number of ns.
 *
 * The setup is the agent's (agent/dataplane.c): the loopback device (the device
 * BPF_PROG_TEST_RUN gives the skb, ifindex 1) is a port of VNI 100; tasks are armed with
 * keys from dt_tuple_task_key(), the slot table dt_task_slots holds them, written by the
 * agent's own dt_slots_write() (bpf/dt_filter.h), and dt_filter_on is 1 once a control
 * set was applied. Nothing is attached to any interface.
 *
 * What repeat runs mean: the kernel runs the program `repeat` times on one skb, so a
 * write persists. At port ingress the first run colors a traced packet; the following
 * runs find it colored by us and matching its task, which costs the slot table's read and
 * compare, the port lookup, the counter and the sample, but not the color write again (two helper
 * calls, a few ns). "Color only" is measured with the ring buffer full: every run tries
 * to reserve a sample, fails, and counts DT_CNT_RING_FULL (what a traced packet costs
 * when the agent does not drain fast enough). "With its sample" drains the ring between
 * rounds so that every run writes its 232-byte record (with bpf_ktime_get_ns()) and the
 * frame's first 128 bytes (the traced frame is 128 bytes long).
 *
 * The floor of a traced packet (issue 16) is bpf/dt_floor.bpf.c: one clock read, one
 * reserve and submit of a sample's size, one copy of the same prefix, nothing else. The
 * traced port-in figure is judged as a ratio to it, measured in alternating rounds on the
 * same frame (absolute times, both with the test run's own overhead, as the issue's
 * "x of an empty program" was).
 *
 * Needs root (CAP_BPF, CAP_NET_ADMIN). Prints rows (common.h).
 */
#define _GNU_SOURCE /* sched_setaffinity() */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/types.h>

#include "common.h"
#include "dt_packet.h"
#include "dt_sample.h"
#include "dt_filter.h"
#include "dt_ports.h"
#include "dt_tuple.h"
#include "dyetrace.skel.h"
#include "dt_floor.skel.h"

#define LO_IFINDEX 1
#define PORT_VNI 100
#define FRAME_MAX 256
#define RING_BYTES (64u << 20)	/* holds ~279,000 samples of 240 bytes */
#define REPEAT_UNTRACED 400000u /* runs per round, untraced */
#define REPEAT_SAMPLE 200000u	/* runs per round with a sample: fits in the ring */
#define ROUNDS 25
#define SAMPLE_SLOT 240	  /* a 232-byte record and its 8-byte ring header */
#define TRACED_PAYLOAD 74 /* a 128-byte traced frame: the whole prefix is copied */

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

struct flow {
	uint32_t saddr, daddr; /* host order */
	uint16_t sport, dport;
};

static struct dyetrace *skel;
static struct dt_floor *floor_skel;
static struct ring_buffer *rb; /* both rings: the data plane's and the floor's */
static int empty_fd;

/* --- frames ------------------------------------------------------------------------------ */

/* A TCP frame of flow f at p: Ethernet, IPv4 (DF, colored when asked), TCP, payload bytes. */
static size_t flow_frame(uint8_t *p, const struct flow *f, bool colored, uint16_t payload)
{
	const struct dt_pkt k = {
		.saddr = f->saddr,
		.daddr = f->daddr,
		.ip_id = 0x1234,
		.frag = DT_PKT_IP_DF | (colored ? DT_COLOR_BIT : 0),
		.proto = IPPROTO_TCP,
		.sport = f->sport,
		.dport = f->dport,
		.seq = 0xdeadbeef,
		.payload = payload,
	};

	return dt_pkt_frame(p, &k);
}

/* The VXLAN frames' encapsulation (VNI 100) between two underlay hosts: 114 bytes around a
 * flow_frame(). */
static const struct dt_pkt_vxlan underlay = {
	.saddr = IP4(172, 31, 0, 1),
	.daddr = IP4(172, 31, 0, 2),
	.ip_id = 0x1234,
	.frag = DT_PKT_IP_DF,
	.proto = IPPROTO_UDP,
	.sport = 51234,
	.dport = DT_VXLAN_PORT,
	.vx_flags = DT_PKT_VXLAN_I,
	.vni = PORT_VNI,
};

/* --- the data plane, set up as the agent does ---------------------------------------------- */

static struct dt_tuple flow_tuple(const struct flow *f)
{
	struct dt_tuple t;

	memset(&t, 0, sizeof(t));
	t.saddr = htonl(f->saddr);
	t.daddr = htonl(f->daddr);
	t.sport = htons(f->sport);
	t.dport = htons(f->dport);
	t.proto = 6;
	t.vni = PORT_VNI;
	return t;
}

static struct dt_tuple flow_key(const struct flow *f)
{
	struct dt_tuple t = flow_tuple(f), key;
	uint32_t flags = 0;

	if (dt_tuple_task_key(&t, &flags, &key))
		dtb_die("dt_tuple_task_key refused a benchmark flow");
	return key;
}

static int drain_cb(void *ctx, void *data, size_t size)
{
	return 0;
}

static void load(void)
{
	uint32_t ifindex = LO_IFINDEX;
	struct bpf_insn empty[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	int rc;

	skel = dyetrace__open();
	if (!skel)
		dtb_die("open the skeleton: %s", strerror(errno));
	bpf_map__set_max_entries(skel->maps.dt_events, RING_BYTES);
	if ((rc = dyetrace__load(skel)))
		dtb_die("load the data plane: %s (root and a kernel with BTF needed)",
			strerror(-rc));
	floor_skel = dt_floor__open();
	if (!floor_skel)
		dtb_die("open the floor program: %s", strerror(errno));
	bpf_map__set_max_entries(floor_skel->maps.dt_floor_events, RING_BYTES);
	if ((rc = dt_floor__load(floor_skel)))
		dtb_die("load the floor program: %s", strerror(-rc));
	rb = ring_buffer__new(bpf_map__fd(skel->maps.dt_events), drain_cb, NULL, NULL);
	if (!rb ||
	    ring_buffer__add(rb, bpf_map__fd(floor_skel->maps.dt_floor_events), drain_cb, NULL))
		dtb_die("ring_buffer__new: %s", strerror(errno));
	if ((rc = dt_port_set(bpf_map__fd(skel->maps.dt_ports),
			      bpf_map__fd(skel->maps.dt_port_slots), ifindex, PORT_VNI)))
		dtb_die("dt_ports: %s", strerror(-rc));
	empty_fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "dtb_empty", "GPL", empty, 2, NULL);
	if (empty_fd < 0)
		dtb_die("load the empty program: %s", strerror(errno));
}

/* How many of keys[0..n) each slot of the slot table holds, to choose the untraced flows. */
static uint8_t *slot_counts(const struct dt_tuple *keys, unsigned n)
{
	uint8_t *count = calloc(DT_SLOTS, 1);

	if (!count)
		dtb_die("out of memory");
	for (unsigned i = 0; i < n; i++)
		if (count[dt_slot_of(&keys[i])] < 255)
			count[dt_slot_of(&keys[i])]++;
	return count;
}

static struct flow random_flow(uint64_t *rs)
{
	uint64_t r = dtb_rand(rs);
	struct flow f = {
		.saddr = IP4(10, 0, 0, 0) | (uint32_t)(r & 0xffffff),
		.daddr = IP4(10, 0, 0, 0) | (uint32_t)((r >> 24) & 0xffffff),
		.sport = (uint16_t)(1024 + (r >> 48) % 60000),
		.dport = (uint16_t)(1 + dtb_rand(rs) % 65535),
	};

	return f;
}

static bool task_armed(const struct dt_tuple *key)
{
	struct dt_task_val v;

	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.dt_tasks), key, &v) == 0;
}

/* Arms keys[from..to) (task ids from + 1 ...). */
static void arm(const struct dt_tuple *keys, unsigned from, unsigned to)
{
	int fd = bpf_map__fd(skel->maps.dt_tasks), rc;
	struct dt_armed_key *armed = calloc(to ? to : 1, sizeof(*armed));

	if (!armed)
		dtb_die("out of memory");
	for (unsigned i = 0; i < to; i++) {
		armed[i] = (struct dt_armed_key){.key = keys[i], .val = {.task_id = i + 1}};
		if (i >= from && bpf_map_update_elem(fd, &keys[i], &armed[i].val, BPF_ANY))
			dtb_die("arm task %u: %s", i + 1, strerror(errno));
	}
	if ((rc = dt_slots_write(bpf_map__fd(skel->maps.dt_task_slots), armed, to, false)))
		dtb_die("dt_task_slots: %s", strerror(-rc));
	free(armed);
	skel->bss->dt_armed_keys = to;
	skel->bss->dt_anyport_tasks = 0;
	skel->bss->dt_filter_on = 1;
}

static uint64_t counter(enum dt_counter idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu > 0 ? ncpu : 1], sum = 0;
	uint32_t key = idx;

	if (ncpu <= 0 || bpf_map_lookup_elem(bpf_map__fd(skel->maps.dt_counters), &key, vals))
		dtb_die("read counter %u", key);
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

/* The last CPU: runs never migrate between rounds. */
static void pin_cpu(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(ncpu > 1 ? (int)ncpu - 1 : 0, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		dtb_note("cannot pin to one CPU: %s", strerror(errno));
}

/* --- timing ------------------------------------------------------------------------------ */

/* One BPF_PROG_TEST_RUN of fd on frame, repeat times; ns per run. */
static double run_once(int fd, const uint8_t *frame, size_t len, uint32_t repeat)
{
	uint8_t out[FRAME_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);
	uint64_t t0, t1;

	t0 = dtb_thread_cpu_ns();
	if (bpf_prog_test_run_opts(fd, &o))
		dtb_die("BPF_PROG_TEST_RUN: %s", strerror(errno));
	t1 = dtb_thread_cpu_ns();
	if (o.retval != 0 && o.retval != (uint32_t)-1)
		dtb_die("a program returned %u, not TC_ACT_OK or TC_ACT_UNSPEC", o.retval);
	return (double)(t1 - t0) / repeat;
}

struct result {
	double prog, base; /* the fastest round of each, ns per packet */
};

/*
 * ROUNDS rounds of (baseline program base_fd, program) on the same frame; before_round (may
 * be NULL) runs before each of them, outside the timed calls.
 */
static struct result measure_vs(int base_fd, struct bpf_program *prog, const uint8_t *frame,
				size_t len, uint32_t repeat, void (*before_round)(void))
{
	double p[ROUNDS], e[ROUNDS];
	struct result r;

	/* A warm-up run of each, untimed. */
	if (before_round)
		before_round();
	run_once(base_fd, frame, len, repeat / 10 + 1);
	run_once(bpf_program__fd(prog), frame, len, repeat / 10 + 1);
	for (int i = 0; i < ROUNDS; i++) {
		if (before_round)
			before_round();
		e[i] = run_once(base_fd, frame, len, repeat);
		if (before_round)
			before_round();
		p[i] = run_once(bpf_program__fd(prog), frame, len, repeat);
	}
	r.prog = p[0];
	r.base = e[0];
	for (int i = 1; i < ROUNDS; i++) {
		r.prog = p[i] < r.prog ? p[i] : r.prog;
		r.base = e[i] < r.base ? e[i] : r.base;
	}
	return r;
}

/* measure_vs() against the empty program. */
static struct result measure(struct bpf_program *prog, const uint8_t *frame, size_t len,
			     uint32_t repeat, void (*before_round)(void))
{
	return measure_vs(empty_fd, prog, frame, len, repeat, before_round);
}

static void drain(void)
{
	if (ring_buffer__consume(rb) < 0)
		dtb_die("ring_buffer__consume failed");
}

/* Prints a row: absolute, the empty program, net, and the goal (max_net < 0: none). */
static void row(const char *figure, struct result r, double max_net)
{
	double net = r.prog - r.base;
	const char *goal = max_net < 0 ? "" : dtb_fmt("<= %.0f ns net", max_net);
	const char *status;

	if (max_net < 0)
		status = "info";
	else if (net <= max_net)
		status = "meets";
	else
		status = dtb_fmt("misses by %.1f ns", net - max_net);
	dtb_row(figure, dtb_fmt("%.1f ns/pkt", r.prog), dtb_fmt("empty prog %.1f ns", r.base),
		dtb_fmt("%+.1f ns net", net), goal, status);
}

/* Prints a row of a program against the floor: the ratio, goal max_ratio (stretch). */
static void floor_row(const char *figure, struct result r, double max_ratio, double stretch)
{
	double ratio = r.prog / r.base;
	const char *status;

	if (ratio <= stretch)
		status = "meets (and the stretch)";
	else if (ratio <= max_ratio)
		status = "meets";
	else
		status = dtb_fmt("misses by x%.2f", ratio - max_ratio);
	dtb_row(figure, dtb_fmt("%.1f ns/pkt", r.prog), dtb_fmt("floor %.1f ns", r.base),
		dtb_fmt("x%.2f of the floor", ratio),
		dtb_fmt("<= x%.2f of the floor (stretch x%.2f)", max_ratio, stretch), status);
}

int main(void)
{
	const unsigned ntasks = 10000;
	struct dt_tuple *keys = calloc(ntasks, sizeof(*keys)), ukey, ckey;
	const struct flow traced = {IP4(10, 1, 0, 2), IP4(10, 1, 0, 3), 40000, 80};
	struct flow untraced, collide;
	uint8_t *counts;
	unsigned fp = 0, one = 0;
	uint8_t f_untraced[FRAME_MAX], f_collide[FRAME_MAX], f_traced[FRAME_MAX];
	uint8_t f_inner[FRAME_MAX], f_vx_untraced[FRAME_MAX], f_vx_traced[FRAME_MAX];
	size_t l_untraced, l_collide, l_traced, l_inner, l_vx_untraced, l_vx_traced;
	uint64_t rs = 0x9e3779b97f4a7c15ull, full0;
	unsigned n = 0;
	struct result r;

	if (!keys)
		dtb_die("out of memory");
	pin_cpu();
	load();

	/* The tasks: the traced flow first, then random TCP flows, all distinct. */
	keys[n++] = flow_key(&traced);
	while (n < ntasks) {
		struct flow f = random_flow(&rs);
		bool dup = false;

		keys[n] = flow_key(&f);
		for (unsigned i = 0; i < n && !dup; i++)
			dup = memcmp(&keys[i], &keys[n], sizeof(keys[n])) == 0;
		if (!dup)
			n++;
	}
	/* An untraced flow whose slot is empty even with every task armed, and one whose slot
	 * holds a collision of task keys (looked up in dt_tasks: the slow untraced case). */
	counts = slot_counts(keys, ntasks);
	do {
		untraced = random_flow(&rs);
		ukey = flow_key(&untraced);
	} while (counts[dt_slot_of(&ukey)]);
	do {
		collide = random_flow(&rs);
		ckey = flow_key(&collide);
	} while (counts[dt_slot_of(&ckey)] < 2);
	for (int i = 0; i < 100000; i++) {
		struct flow f = random_flow(&rs);
		struct dt_tuple k = flow_key(&f);

		fp += counts[dt_slot_of(&k)] > 1;
		one += counts[dt_slot_of(&k)] == 1;
	}
	if (counts[dt_slot_of(&keys[0])] != 1)
		dtb_die("the traced flow's key shares its slot");
	free(counts);
	dtb_note("slot table with 10,000 tasks: of 100,000 random untraced flows, %.2f%% find "
		 "a slot of one other key (one compare), %.2f%% a collision (a dt_tasks lookup)",
		 one / 1000.0, fp / 1000.0);
	l_untraced = flow_frame(f_untraced, &untraced, false, 10);
	l_collide = flow_frame(f_collide, &collide, false, 10);
	l_traced = flow_frame(f_traced, &traced, false, TRACED_PAYLOAD);
	l_inner = flow_frame(f_inner, &traced, true, 10); /* colored, inside VXLAN */
	l_vx_untraced = dt_pkt_vxlan(f_vx_untraced, &underlay, f_untraced, l_untraced);
	l_vx_traced = dt_pkt_vxlan(f_vx_traced, &underlay, f_inner, l_inner);

	/* 0 tasks: nothing armed (dt_armed_keys 0), whether the prefilter is on or off. */
	skel->bss->dt_filter_on = 0;
	r = measure(skel->progs.dt_port_ingress, f_untraced, l_untraced, REPEAT_UNTRACED, NULL);
	row("port-in untraced, 0 tasks, prefilter off", r, -1);
	arm(keys, 0, 0);
	r = measure(skel->progs.dt_port_ingress, f_untraced, l_untraced, REPEAT_UNTRACED, NULL);
	row("port-in untraced, 0 tasks", r, 1);

	arm(keys, 0, 1000);
	r = measure(skel->progs.dt_port_ingress, f_untraced, l_untraced, REPEAT_UNTRACED, NULL);
	row("port-in untraced, 1,000 tasks", r, 8);

	arm(keys, 1000, ntasks);
	if (task_armed(&ukey) || task_armed(&ckey))
		dtb_die("an untraced flow is armed");
	r = measure(skel->progs.dt_port_ingress, f_untraced, l_untraced, REPEAT_UNTRACED, NULL);
	row("port-in untraced, 10,000 tasks", r, 8);
	r = measure(skel->progs.dt_port_ingress, f_collide, l_collide, REPEAT_UNTRACED, NULL);
	row(dtb_fmt("port-in untraced, 10,000 tasks, prefilter false positive: a collision "
		    "(~1 flow in %.0f)",
		    fp ? 100000.0 / fp : 0.0),
	    r, -1);
	skel->bss->dt_filter_on = 0;
	r = measure(skel->progs.dt_port_ingress, f_untraced, l_untraced, REPEAT_UNTRACED, NULL);
	row("port-in untraced, 10,000 tasks, prefilter off (exact lookups only)", r, -1);
	skel->bss->dt_filter_on = 1;

	r = measure(skel->progs.dt_port_egress, f_untraced, l_untraced, REPEAT_UNTRACED, NULL);
	row("port-out untraced", r, 8);
	r = measure(skel->progs.dt_uplink_ingress, f_vx_untraced, l_vx_untraced, REPEAT_UNTRACED,
		    NULL);
	row("uplink-in untraced (VXLAN)", r, 8);
	r = measure(skel->progs.dt_uplink_egress, f_vx_untraced, l_vx_untraced, REPEAT_UNTRACED,
		    NULL);
	row("uplink-out untraced (VXLAN)", r, 8);

	/* Traced, color only: fill the ring, then every run fails its reserve. */
	full0 = counter(DT_CNT_RING_FULL);
	for (int i = 0; i < 4 && counter(DT_CNT_RING_FULL) == full0; i++)
		run_once(bpf_program__fd(skel->progs.dt_port_ingress), f_traced, l_traced,
			 RING_BYTES / SAMPLE_SLOT + 1000);
	if (counter(DT_CNT_RING_FULL) == full0)
		dtb_die("the ring buffer did not fill up");
	r = measure(skel->progs.dt_port_ingress, f_traced, l_traced, REPEAT_UNTRACED, NULL);
	row("port-in traced, color only (ring full: reserve fails, counted)", r, -1);
	if (counter(DT_CNT_COLORED) < REPEAT_UNTRACED)
		dtb_die("the traced packet was not colored");

	/* Traced with its sample: the ring is drained before every round. */
	drain();
	full0 = counter(DT_CNT_RING_FULL);
	r = measure(skel->progs.dt_port_ingress, f_traced, l_traced, REPEAT_SAMPLE, drain);
	if (counter(DT_CNT_RING_FULL) != full0)
		dtb_die("the ring filled up during the sampled rounds");
	row("port-in traced, with its sample and 128-byte prefix", r, -1);
	r = measure(floor_skel->progs.dt_floor, f_traced, l_traced, REPEAT_SAMPLE, drain);
	row("traced floor: clock read, reserve+submit of a sample, 128-byte prefix copy", r, -1);
	r = measure_vs(bpf_program__fd(floor_skel->progs.dt_floor), skel->progs.dt_port_ingress,
		       f_traced, l_traced, REPEAT_SAMPLE, drain);
	if (counter(DT_CNT_RING_FULL) != full0)
		dtb_die("the ring filled up during the sampled rounds");
	floor_row("port-in traced, with its sample and 128-byte prefix, vs the floor", r, 1.2,
		  1.05);
	r = measure(skel->progs.dt_uplink_ingress, f_vx_traced, l_vx_traced, REPEAT_SAMPLE, drain);
	if (counter(DT_CNT_RING_FULL) != full0)
		dtb_die("the ring filled up during the sampled rounds");
	row("uplink-in traced, with its sample", r, 80);

	ring_buffer__free(rb);
	dt_floor__destroy(floor_skel);
	dyetrace__destroy(skel);
	free(keys);
	return 0;
}
