/* SPDX-License-Identifier: MIT */
/*
 * dt_probe.h - what names a probe in its packet (issue 21, docs/design.md "Probes"): the
 * data plane (bpf/), the agent that injects probes (agent/inject.c) and the analyzer that
 * reads them back all use these. A probe is a colored TCP SYN from instance A to instance
 * B's probe port; its source port names the probe task's slot, its sequence number the
 * pair and the round. B's kernel answers with the ports swapped and ack = seq + 1, so a
 * reply names them too. Userspace includes it after <linux/types.h> (for __u16, __u32).
 */
#ifndef DT_PROBE_H
#define DT_PROBE_H

/* The skb mark of an injected probe: set by dt_injector.bpf.c in the host namespace, where a
 * tenant's packets never carry a mark (their veth scrubs it when they leave the instance's
 * namespace), so a packet from an instance can never pass for a probe. */
#define DT_PROBE_MARK 0x44540001u

#define DT_PROBE_PORT 7u	   /* the default probe port (B's side) */
#define DT_PROBE_SPORT_BASE 49152u /* source port of slot 0 */
#define DT_PROBE_SLOTS 4096u	   /* probe tasks at once */
#define DT_PROBE_ROUND_BITS 12u
#define DT_PROBE_ROUNDS (1u << DT_PROBE_ROUND_BITS)
#define DT_PROBE_PAIRS (1u << (32u - DT_PROBE_ROUND_BITS)) /* ordered pairs in a task */

/* The source port of slot; whether a port is one, and its slot. */
#define DT_PROBE_SPORT(slot) ((__u16)(DT_PROBE_SPORT_BASE + (slot)))
#define DT_PROBE_IS_SPORT(port)                                                                    \
	((port) >= DT_PROBE_SPORT_BASE && (port) < DT_PROBE_SPORT_BASE + DT_PROBE_SLOTS)
#define DT_PROBE_SLOT(port) ((port)-DT_PROBE_SPORT_BASE)

/* The sequence number of (pair, round), and back. A reply's ack is seq + 1. */
#define DT_PROBE_SEQ(pair, round)                                                                  \
	((__u32)(pair) << DT_PROBE_ROUND_BITS | ((round) & (DT_PROBE_ROUNDS - 1)))
#define DT_PROBE_PAIR(seq) ((__u32)(seq) >> DT_PROBE_ROUND_BITS)
#define DT_PROBE_ROUND(seq) ((__u32)(seq) & (DT_PROBE_ROUNDS - 1))

#endif /* DT_PROBE_H */
