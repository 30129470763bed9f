/* SPDX-License-Identifier: MIT */
/*
 * dt_link_msg.h - the messages between agents, collectors and the analyzer: DT_MSG_BATCH
 * (samples and node states), DT_MSG_ACK and DT_MSG_CONTROL (the armed task set), and the
 * loss counters batches carry. Part of dt_proto.h, which consumers include.
 */
#ifndef DT_LINK_MSG_H
#define DT_LINK_MSG_H

#include "dt_wire.h"

/* Why samples were lost before they reached a store. Append, never renumber. */
enum dt_loss {
	DT_LOSS_RING_FULL = 0,	 /* BPF ring buffer full (data plane) */
	DT_LOSS_QUEUE_FULL = 1,	 /* sender's in-memory queue full */
	DT_LOSS_BAD_VERSION = 2, /* ring record of an unknown layout version */
	DT_LOSS_REJECTED = 3,	 /* in a batch the receiver refused as malformed */
	DT_LOSS_SPOOL_FULL = 4,	 /* evicted from the agent's spool, full while its collector
				  * was away */
	DT_LOSS_AGENT_CRASH = 5, /* drained by an agent that died before spooling them */
	DT_LOSS_MAX,
};

/*
 * One sample on the wire: [hook, flags, iface, ts_ns, saddr, daddr, sport, dport, proto,
 * vni, task_id, ip_id, ident, len, outer_saddr, outer_daddr, orig_saddr, orig_daddr,
 * orig_sport, orig_dport, drop_reason, drop_name, drop_where, cap_link, cap, frag]
 * Addresses and ports are carried as unsigned integers in network byte order, exactly as
 * in struct dt_tuple. hook is 1..DT_HOOK_MAX-1, iface < the batch's n_ifaces (a drop on
 * an interface the agent does not attach to still names it: the agent adds it to the
 * batch's interface list). ts_ns is wall-clock time (CLOCK_REALTIME, ns since the epoch).
 * orig (DT_SAMPLE_F_NAT) has the proto and vni of tuple. drop_name and drop_where are
 * indices into the batch's strings, or DT_STR_NONE: the reason's name from the kernel's
 * BTF ("NETFILTER_DROP") and the symbolized location ("nf_hook_slow+0x8c"). cap_link is
 * enum dt_cap_link and cap a bin of at most DT_CAP_MAX bytes: the packet's first bytes at
 * this hop (empty, with DT_CAP_NONE, when nothing was captured). frag: as in struct
 * dt_sample (DT_FRAG_MF | offset in 8-byte units; 0 for a packet that is not a fragment).
 */
struct dt_wire_sample {
	uint8_t hook;
	uint8_t flags; /* DT_SAMPLE_F_* */
	uint16_t iface;
	uint64_t ts_ns;
	struct dt_tuple tuple;
	uint32_t task_id;
	uint16_t ip_id;
	uint32_t ident;
	uint32_t len;
	uint32_t outer_saddr;
	uint32_t outer_daddr;
	struct dt_tuple orig;
	uint32_t drop_reason;
	uint16_t drop_name;
	uint16_t drop_where;
	uint8_t cap_link; /* enum dt_cap_link */
	uint16_t cap_len;
	uint8_t cap[DT_CAP_MAX];
	uint16_t frag;
};

/*
 * What a node hosts: an instance address in a VNI ([vni, addr]), or, with addr 0, the
 * outside of a NAT gateway for that VNI (the entry of replies from outside).
 */
struct dt_endpoint {
	uint32_t vni;
	uint32_t addr; /* network order, as in struct dt_tuple */
};

/*
 * A key of the control set that a node's data plane could not arm: [task_id, flags, saddr,
 * daddr, sport, dport, proto, vni, err]. task_id, flags and tuple are the arm's as the
 * control set carried them; err is the Linux errno of the failure (E2BIG: the task map is
 * full; EINVAL: the tuple cannot be a key).
 */
struct dt_arm_fail {
	uint32_t task_id;
	uint32_t flags;
	struct dt_tuple tuple;
	uint32_t err;
};

/* Why a node's data plane did not observe for a while (struct dt_gap). Append only. */
enum dt_gap_cause {
	DT_GAP_STOPPED = 1,  /* an agent stopped without handing over: nothing was attached */
	DT_GAP_CRASHED = 2,  /* an agent died without stopping: what it had drained and not
			      * spooled is lost (counted as DT_LOSS_AGENT_CRASH) */
	DT_GAP_DETACHED = 3, /* the programs were detached behind the agent's back */
	DT_GAP_SILENT = 4,   /* the analyzer's own, never in a node state: no collector has
			      * relayed the node's state for a while (its agent or its host is
			      * down, or cut off); the window is open until it is heard again */
	DT_GAP_CAUSE_MAX,
};

#define DT_GAP_F_LOST_UNKNOWN 0x1u /* samples were lost in the window; how many is unknown */

/*
 * A window in which a node's data plane did not observe, or observed and lost what it saw:
 * [from_ns, to_ns, cause, flags, lost]. from_ns < to_ns, wall clock (CLOCK_REALTIME, ns
 * since the epoch); a packet that crossed the node in [from_ns, to_ns] may have no sample
 * there without any fault of the network. lost: the samples known lost in the window
 * (already counted in the batch's lost[]); with DT_GAP_F_LOST_UNKNOWN, some were lost and
 * their number is not known (lost is then 0).
 */
struct dt_gap {
	uint64_t from_ns;
	uint64_t to_ns;
	uint32_t cause; /* enum dt_gap_cause */
	uint32_t flags; /* DT_GAP_F_* */
	uint64_t lost;
};

/*
 * The data plane's own count of packets one armed key colored (its budget and rate state,
 * dt_quota): [task_id, flags, colored]. task_id and flags are the arm's (DT_TASK_F_REPLY
 * tells the direction). Only keys with a budget or a rate have one.
 */
struct dt_key_colored {
	uint32_t task_id;
	uint32_t flags;
	uint64_t colored;
};

/*
 * A node's control state, as its agent reports it and its collector relays it:
 * [node, ctl_gen, [[vni, addr]...], task_map_max, task_map_used, [arm_fail...], [gap...],
 *  [key_colored...]]
 * ctl_gen: the control generation the node's agent has applied to its data plane.
 * task_map_max: how many keys its task map holds at most (0: not known); task_map_used:
 * how many it held after applying ctl_gen. arm_fails: the keys of ctl_gen it could not arm.
 * gaps: the node's most recent windows without observation (at most DT_NODE_MAX_GAPS,
 * oldest first). colored: the data plane's colored count of each armed key that has one.
 */
struct dt_node_state {
	char node[DT_NAME_MAX];
	uint64_t ctl_gen;
	uint32_t n_endpoints;
	struct dt_endpoint *endpoints; /* n_endpoints, malloc'd */
	uint32_t task_map_max;
	uint32_t task_map_used;
	uint32_t n_arm_fails;
	struct dt_arm_fail *arm_fails; /* n_arm_fails, malloc'd */
	uint32_t n_gaps;
	struct dt_gap gaps[DT_NODE_MAX_GAPS];
	uint32_t n_colored;
	struct dt_key_colored *colored; /* n_colored, malloc'd */
};

/* A deep copy of src into dst (0 or -ENOMEM: then dst owns nothing), and its release. */
int dt_node_state_copy(struct dt_node_state *dst, const struct dt_node_state *src);
void dt_node_state_free(struct dt_node_state *n);

/*
 * DT_MSG_BATCH: [4, 1, sender, seq, ctl_gen, node, [ifname...], [lost...], [string...],
 *                [sample...], [node_state...]]
 * sender:  who sent this message (the agent's node name, or the collector's name)
 * seq:     sender's message sequence, starting at 1 and growing by 1 per batch;
 *          a heartbeat is a batch with no samples (it still has a seq, which may be
 *          above batches the sender still holds: receivers never dedupe by it)
 * ctl_gen: generation of the control set the sender has applied (0: none yet)
 * node:    node whose data plane took the samples
 * lost:    exactly DT_LOSS_MAX counters, cumulative over the node's agents (kept in the
 *          agent's spool across restarts; an agent with a new spool starts again at 0)
 * strings: names the samples refer to (drop reasons, kernel symbols), each < DT_STR_MAX
 * node_states: an agent's heartbeats carry its own; a collector's heartbeats carry those
 *          of every agent it heard from recently; other batches carry none (empty list)
 */
struct dt_batch {
	char sender[DT_NAME_MAX];
	uint64_t seq;
	uint64_t ctl_gen;
	char node[DT_NAME_MAX];
	uint32_t n_ifaces;
	char ifaces[DT_BATCH_MAX_IFACES][DT_IFNAME_MAX];
	uint64_t lost[DT_LOSS_MAX];
	uint32_t n_strings;
	char (*strings)[DT_STR_MAX]; /* n_strings, malloc'd */
	uint32_t n_samples;
	struct dt_wire_sample *samples; /* n_samples, malloc'd */
	uint32_t n_nodes;
	struct dt_node_state *nodes; /* n_nodes, malloc'd (each with its endpoints) */
};

int dt_batch_encode(msgpack_sbuffer *out, const struct dt_batch *b);
int dt_batch_decode(const void *buf, size_t len, struct dt_batch *b);

/*
 * The collector's check of a batch it stores as it arrived and forwards: it accepts
 * exactly what dt_batch_decode() accepts, with the same checks (the same getters), but
 * reads the samples off the raw bytes one at a time instead of building the msgpack
 * object tree of the whole batch and an array of samples. Everything but the samples is
 * decoded into b; b->n_samples is their count and b->samples is NULL. For a message
 * broken in several ways the error may name another of them than dt_batch_decode()'s.
 * Errors and ownership as for the decoders (dt_proto.h).
 */
int dt_batch_check(const void *buf, size_t len, struct dt_batch *b);

/* Told of one sample of a batch (dt_batch_samples()). */
typedef void (*dt_batch_sample_fn)(void *arg, const struct dt_wire_sample *s);

/*
 * The samples of batch buf, whose head dt_batch_check() decoded into b, read off the raw
 * bytes one at a time by the same getters (no object tree, no array of samples) and
 * handed to fn in order. A sample is handed on only once it is read whole; a batch that
 * turns out malformed part way has handed on the samples before the fault, so a caller
 * that must take all or nothing checks the batch first. Returns 0 or a DT_PROTO_* code.
 */
int dt_batch_samples(const void *buf, size_t len, const struct dt_batch *b, dt_batch_sample_fn fn,
		     void *arg);

/*
 * Appends to out the batch buf (as dt_batch_check() accepted it earlier) under another
 * sender, seq and ctl_gen: those three are encoded anew, the rest of the message is
 * copied as it is. Only the envelope and the fields up to the samples' count are walked
 * (a stored batch is not checked again: the receiver decodes it). Stores the number of
 * samples. Returns 0 or a DT_PROTO_* code (out unchanged).
 */
int dt_batch_reframe(msgpack_sbuffer *out, const void *buf, size_t len, const char *sender,
		     uint64_t seq, uint64_t ctl_gen, uint32_t *n_samples);
void dt_batch_free(struct dt_batch *b);

/*
 * One armed key as carried by the control set: [task_id, flags, saddr, daddr, sport,
 * dport, proto, vni, budget, rate_pps]. flags: DT_TASK_F_* (bpf/dt_sample.h). A task
 * that traces both directions has two arms: its tuple, and the reverse with
 * DT_TASK_F_REPLY. budget and rate_pps are the data plane's limits for this key
 * (struct dt_task_val); 0: none.
 */
struct dt_arm {
	uint32_t task_id;
	uint32_t flags;
	struct dt_tuple tuple;
	uint32_t budget;
	uint32_t rate_pps;
};

/*
 * DT_MSG_CONTROL: [4, 3, gen, [arm...]]
 * The full set of tasks that must be armed, at generation gen (strictly increasing).
 * A receiver arms the tasks it does not hold yet and disarms those no longer listed.
 */
struct dt_control {
	uint64_t gen;
	uint32_t n_arms;
	struct dt_arm *arms; /* n_arms, malloc'd */
};

int dt_control_encode(msgpack_sbuffer *out, const struct dt_control *c);
int dt_control_decode(const void *buf, size_t len, struct dt_control *c);
void dt_control_free(struct dt_control *c);

/*
 * DT_MSG_ACK: [4, 2, seq, status, control]
 * seq:     the batch being acknowledged (stored durably when status is DT_ST_OK)
 * control: nil, or [gen, [arm...]] when the receiver's control generation differs from
 *          the batch's ctl_gen
 */
struct dt_ack {
	uint64_t seq;
	uint32_t status; /* enum dt_status */
	bool has_control;
	struct dt_control control;
};

int dt_ack_encode(msgpack_sbuffer *out, const struct dt_ack *a);
int dt_ack_decode(const void *buf, size_t len, struct dt_ack *a);
void dt_ack_free(struct dt_ack *a);

#endif /* DT_LINK_MSG_H */
