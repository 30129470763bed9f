/* SPDX-License-Identifier: MIT */
/*
 * dt_report.h - the report model and DT_MSG_REPORT: a task's packets with their hops (a
 * tree, with directions, fates and branches), latency statistics, the loss and copies tables
 * and the verdict. Part of dt_proto.h, which consumers include.
 */
#ifndef DT_REPORT_H
#define DT_REPORT_H

#include "dt_api_msg.h"
#include "dt_link_msg.h"

/* Direction of a packet relative to its task's six-tuple. */
enum dt_direction {
	DT_DIR_REQUEST = 0, /* the six-tuple as the task names it */
	DT_DIR_REPLY = 1,   /* the six-tuple reversed */
	DT_DIR_MAX,
};

/* What became of a traced packet. Append, never renumber. */
enum dt_fate {
	DT_FATE_DELIVERED = 0,	 /* reached its last hop (port-out, or a gateway exit) */
	DT_FATE_DROPPED = 1,	 /* the kernel dropped it, with a reason: the last hop */
	DT_FATE_VANISHED = 2,	 /* not seen again after its last hop, no drop seen */
	DT_FATE_IN_FLIGHT = 3,	 /* last seen within the analysis window: not judged yet */
	DT_FATE_REASSEMBLED = 4, /* a fragment the kernel reassembled into its datagram (and
				  * fragmented anew) where it was last seen: not a loss */
	DT_FATE_SEGMENTED = 5,	 /* a packet the kernel cut into segments after the hop where
				  * it was last seen whole (GSO): its segments carry it on */
	DT_FATE_UNOBSERVED = 6,	 /* not seen again after its last hop, where its next hop's
				  * node was not observing (a window of struct dt_blind): not
				  * a loss, and not known to be delivered */
	DT_FATE_MAX,
};

/*
 * Which branch of a packet's path a hop is on. A packet the overlay copies (head-end
 * replication, flooding bridges) has a tree of hops; the branch towards its destination
 * decides its fate, every other branch is a bystander's copy. Append, never renumber.
 */
enum dt_branch {
	DT_BRANCH_DEST = 0, /* towards the packet's destination (or the only branch) */
	DT_BRANCH_COPY = 1, /* a copy that reached a host the packet was not for */
	DT_BRANCH_MAX,
};

/* How a bystander's copy ended (the last hop of a copy branch). Append, never renumber. */
enum dt_copy_end {
	DT_COPY_NONE = 0,      /* not the end of a copy branch */
	DT_COPY_FILTERED = 1,  /* discarded as not for this host: a bridge or VXLAN device freed
				* it without a specific reason, or a port whose instance is not
				* the destination received it */
	DT_COPY_DROPPED = 2,   /* a rule dropped it, with a specific reason */
	DT_COPY_VANISHED = 3,  /* not seen again, no drop seen */
	DT_COPY_IN_FLIGHT = 4, /* seen within the analysis window: not judged yet */
	DT_COPY_DELIVERED = 5, /* another port took it too (a broadcast or multicast destination,
				* or no node reported where the destination lives) */
	DT_COPY_MAX,
};

/* A place where samples are taken: [node, ifname, hook]. */
struct dt_hop_ref {
	char node[DT_NAME_MAX];
	char ifname[DT_IFNAME_MAX];
	uint8_t hook; /* enum dt_hook */
};

/*
 * One hop of one packet: [node, ifname, hook, ts_ns, saddr, daddr, sport, dport,
 * cap_link, cap, parent, branch, copy_end, drop_reason, drop_name, drop_where, refrag]
 * The addresses and ports are the packet's as seen at this hop (they differ from the
 * packet's tuple after a NAT); proto and vni are the packet's. cap_link and cap are the
 * sample's packet prefix, as in struct dt_wire_sample.
 * A packet's hops form a tree (the overlay may copy a packet): parent is the index of the
 * hop this one followed, DT_HOP_ROOT for hop 0 only, and below the hop's own index for
 * every other (hops are in depth-first order, the destination branch first, so that
 * hops[0..k] is the destination branch when it is a chain). branch: enum dt_branch.
 * copy_end: enum dt_copy_end, set on the last hop of a copy branch only. drop_*: a drop
 * hop's reason, as in struct dt_packet_path (0 and "" on other hops). refrag: 1 when this
 * hop saw a fragment its node colored again after the kernel refragmented the datagram.
 */
struct dt_hop {
	struct dt_hop_ref at;
	uint64_t ts_ns;
	struct dt_tuple tuple;
	uint8_t cap_link; /* enum dt_cap_link */
	uint16_t cap_len;
	uint8_t cap[DT_CAP_MAX];
	uint16_t parent;  /* index into the packet's hops; DT_HOP_ROOT for hop 0 */
	uint8_t branch;	  /* enum dt_branch */
	uint8_t copy_end; /* enum dt_copy_end */
	uint32_t drop_reason;
	char drop_name[DT_STR_MAX];
	char drop_where[DT_STR_MAX];
	uint8_t refrag;
};

/*
 * One traced packet: [ip_id, ident, len, direction, fate, saddr, daddr, sport, dport,
 * proto, vni, drop_reason, drop_name, drop_where, [hop...], dest_known, n_copies, frag,
 * datagram_fate], hops as a tree (see struct dt_hop).
 * tuple: the packet's flow in the task's terms (inside any NAT; for a reply, the task's
 * tuple reversed, with the actual ports of an any-port task). fate is decided by the
 * destination branch alone. When fate is DT_FATE_DROPPED the destination branch ends with
 * the drop (hook DT_HOOK_DROP) and drop_* say why; otherwise drop_reason is 0 and the
 * names are empty strings. dest_known: a node reported hosting the packet's destination
 * (else the destination branch was chosen from the branches alone). n_copies: bystander
 * branches (copies that reached a host the packet was not for).
 */
struct dt_packet_path {
	uint16_t ip_id;
	uint32_t ident;
	uint32_t len;
	uint8_t direction; /* enum dt_direction */
	uint8_t fate;	   /* enum dt_fate */
	struct dt_tuple tuple;
	uint32_t drop_reason;
	char drop_name[DT_STR_MAX];
	char drop_where[DT_STR_MAX];
	uint32_t n_hops;
	struct dt_hop *hops; /* n_hops, malloc'd */
	uint8_t dest_known;
	uint32_t n_copies;
	uint16_t frag;	       /* DT_FRAG_MF | offset (8-byte units) at its first hop; 0: the
				* packet is not a fragment */
	uint8_t datagram_fate; /* enum dt_fate of its datagram: its own fate unless it is a
				* fragment, see paths.h */
};

/*
 * Latency between a hop and the hop it followed (its parent), over all packets of one
 * direction that took both on the same kind of branch:
 * [[from...], [to...], count, min_ns, max_ns, mean_ns, stddev_ns, branch, direction]
 * mean_ns and stddev_ns are msgpack floats (double). branch (enum dt_branch): the pair is
 * on destination branches, or on copies (a pair whose to hop is on a copy branch).
 * direction: enum dt_direction.
 */
struct dt_hop_stat {
	struct dt_hop_ref from;
	struct dt_hop_ref to;
	uint64_t count;
	uint64_t min_ns;
	uint64_t max_ns;
	double mean_ns;
	double stddev_ns;
	uint8_t branch;	   /* enum dt_branch */
	uint8_t direction; /* enum dt_direction */
};

/*
 * Where bystander copies ended, counted: [[node, ifname, hook], direction, end, count,
 * reason]. end: enum dt_copy_end (never DT_COPY_NONE); reason: the most frequent drop
 * reason name of those copies ("" when none). Copies never count in the verdict or the
 * loss table.
 */
struct dt_copy_row {
	struct dt_hop_ref at;
	uint8_t direction;
	uint8_t end;
	uint64_t count;
	char reason[DT_STR_MAX];
};

/*
 * One row of the per-hop loss table, over the packets' destination branches:
 * [[node, ifname, hook], direction, seen, dropped, vanished, top_reason]
 * seen:       packets of that direction sampled at this hop
 * dropped:    of those, packets the kernel dropped right after it (their drop sample is
 *             on the same node); the drop rows themselves have hook DT_HOOK_DROP
 * vanished:   packets for which this was the last hop seen, neither delivered nor dropped
 * top_reason: the most frequent drop reason name at this hop ("" when none)
 * Rows are in path order, per direction.
 */
struct dt_hop_row {
	struct dt_hop_ref at;
	uint8_t direction;
	uint64_t seen;
	uint64_t dropped;
	uint64_t vanished;
	char top_reason[DT_STR_MAX];
};

/*
 * A window in which a node did not observe and the packets of this report it explains:
 * [node, [gap], packets], gap as in struct dt_gap. packets: packets judged unobserved
 * because their next hop was on node inside the window (at least 1).
 */
struct dt_blind {
	char node[DT_NAME_MAX];
	struct dt_gap gap;
	uint64_t packets;
};

/*
 * The verdict an operator reads first: [judged, delivered, dropped, vanished, in_flight,
 * [node, ifname, hook], reason, sentence, dest_unknown, unobserved]
 * judged = delivered + dropped + vanished + unobserved (in-flight packets are not judged
 * yet). unobserved: packets lost from sight where a node was not observing (the report's
 * blind windows); they are not losses: a verdict whose only missing packets are
 * unobserved says "no loss" and names the node and the window.
 * dest_unknown: judged packets whose destination no node reported hosting (their fate
 * was judged from their branches alone; the sentence says so).
 * at/reason: where most lost packets were lost (dropped at, or vanished after) and the
 * most frequent drop reason there ("" when none, or no loss). With no loss, at is
 * ["", "", 0]: hook DT_HOOK_NONE is valid here only.
 * sentence, for example: "94 of 100 packets dropped at h2/vxlan0 (after h2/ul0
 * uplink-in), reason NETFILTER_DROP" or "no loss: 100 of 100 packets delivered".
 */
struct dt_verdict {
	uint64_t judged;
	uint64_t delivered;
	uint64_t dropped;
	uint64_t vanished;
	uint64_t in_flight;
	struct dt_hop_ref at;
	char reason[DT_STR_MAX];
	char sentence[DT_MSG_MAX];
	uint64_t dest_unknown;
	uint64_t unobserved;
};

/*
 * DT_MSG_REPORT: [4, 8, [task fields as in DT_MSG_TASK after the type], [packet...],
 *                 [stat...], [lost...], [row...], verdict, unmatched, window_ms,
 *                 [copy_row...], [blind...]]
 * lost:      exactly DT_LOSS_MAX counters, summed over the nodes that reported samples.
 * unmatched: samples the analyzer could attribute to no task, even after its window
 *            (all tasks; counted, never silently dropped)
 * window_ms: the analysis window (samples are held this long for NAT stitching, and a
 *            packet last seen this recently is in flight)
 * blind:     the windows without observation that explain the unobserved packets, by
 *            node, then time (at most DT_REPORT_MAX_BLIND)
 */
struct dt_report {
	struct dt_task_info task;
	uint32_t n_packets;
	struct dt_packet_path *packets; /* n_packets, malloc'd */
	uint32_t n_stats;
	struct dt_hop_stat *stats; /* n_stats, malloc'd */
	uint64_t lost[DT_LOSS_MAX];
	uint32_t n_rows;
	struct dt_hop_row *rows; /* n_rows, malloc'd */
	struct dt_verdict verdict;
	uint64_t unmatched;
	uint64_t window_ms;
	uint32_t n_copy_rows;
	struct dt_copy_row *copy_rows; /* n_copy_rows, malloc'd */
	uint32_t n_blind;
	struct dt_blind *blind; /* n_blind, malloc'd */
};

int dt_report_encode(msgpack_sbuffer *out, const struct dt_report *r);
int dt_report_decode(const void *buf, size_t len, struct dt_report *r);
void dt_report_free(struct dt_report *r);

#endif /* DT_REPORT_H */
