// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * dt_floor.bpf.c - the floor of a traced packet, for the fast-path benchmark (bench/fastpath.c):
 * what any program that samples a packet cannot avoid, and nothing else. One ring buffer
 * reserve and submit of a sample's size (struct dt_sample), one clock read, one copy of the
 * packet prefix (as many bytes as dt_port_ingress copies: the frame, at most DT_CAP_MAX).
 * The traced figure of port ingress is judged as a ratio to this program's time. Never
 * loaded by the agent.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "dt_sample.h"

#define TC_ACT_UNSPEC (-1)
#define DT_CAP_BOUND(n) ((((n)-1) & (DT_CAP_MAX - 1)) + 1) /* as in dyetrace.bpf.c */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* the benchmark sets its size before loading */
} dt_floor_events SEC(".maps");

SEC("tc")
int dt_floor(struct __sk_buff *skb)
{
	__u32 n = skb->len < DT_CAP_MAX ? skb->len : DT_CAP_MAX;
	struct dt_sample *s;

	s = bpf_ringbuf_reserve(&dt_floor_events, sizeof(*s), 0);
	if (!s)
		return TC_ACT_UNSPEC;
	s->ts_ns = bpf_ktime_get_ns();
	s->cap_len = 0;
	if (n > 0 && bpf_skb_load_bytes(skb, 0, s->cap, DT_CAP_BOUND(n)) == 0)
		s->cap_len = n;
	bpf_ringbuf_submit(s, 0);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
