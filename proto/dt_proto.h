/* SPDX-License-Identifier: MIT */
/*
 * dt_proto.h - the dyetrace wire format (msgpack) and its codec.
 *
 * Every message is one msgpack array whose first two elements are the protocol version
 * and the message type:
 *
 *     [version, type, field, field, ...]
 *
 * Fields are positional (arrays, not maps): a sample record costs ~45 bytes this way.
 * The layout of every message is documented next to its struct below and in
 * proto/README.md. Decoders are strict: the whole buffer must be exactly one message,
 * every field must have the documented msgpack type and range, and arrays must have
 * exactly the documented length. A message of any other version than
 * DT_PROTO_VERSION is refused with DT_PROTO_EVERSION (components of different versions
 * cannot talk; the error says so instead of a confusing layout error).
 *
 * Decoders never leave a partially filled struct: on error the output struct is all
 * zero and owns nothing. On success, the caller owns what the struct points to and
 * releases it with the matching *_free() function (which also zeroes the struct and is
 * safe to call on a zeroed struct).
 *
 * Encoders append one message to a msgpack_sbuffer the caller initialised; they return
 * 0 or a negative DT_PROTO_* code (only for values that cannot be represented).
 *
 * Bump DT_PROTO_VERSION whenever a message changes its layout or the meaning of a field.
 */
#ifndef DT_PROTO_H
#define DT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include <msgpack.h>

#include "dt_sample.h"

#define DT_PROTO_VERSION 4

#define DT_NAME_MAX 64            /* node, collector and region names, with the NUL */
#define DT_IFNAME_MAX 16          /* interface names, with the NUL (IFNAMSIZ) */
#define DT_MSG_MAX 256            /* error and status sentences, with the NUL */
#define DT_BATCH_MAX_IFACES 256   /* interface names one batch may carry */
#define DT_BATCH_MAX_SAMPLES 65536
#define DT_CONTROL_MAX_TASKS 65536
#define DT_REPORT_MAX_PACKETS 1048576
#define DT_REPORT_MAX_HOPS 64     /* hops of one packet */
#define DT_REPORT_MAX_STATS 4096
#define DT_REPORT_MAX_ROWS 4096   /* rows of the per-hop loss table */
#define DT_REPORT_MAX_COPY_ROWS 4096 /* rows of the bystander-copies table */
#define DT_HOP_ROOT 0xFFFF        /* dt_hop.parent of a packet's first hop */
#define DT_STR_MAX 96             /* drop reason names and kernel symbols, with the NUL */
#define DT_BATCH_MAX_STRINGS 1024 /* strings one batch may carry */
#define DT_STR_NONE 0xFFFF        /* a string index that names no string */
#define DT_TOKEN_MAX 128          /* tenant tokens, with the NUL */
#define DT_BATCH_MAX_NODES 4096   /* node states one batch may carry */
#define DT_NODE_MAX_ENDPOINTS 4096 /* endpoints one node may host */
#define DT_LIST_MAX_TASKS 65536

enum dt_msg_type {
	DT_MSG_BATCH = 1,       /* samples; agent -> collector -> analyzer */
	DT_MSG_ACK = 2,         /* reply to a batch, may carry the control set */
	DT_MSG_CONTROL = 3,     /* the armed task set; analyzer -> collector -> agents */
	DT_MSG_TASK_CREATE = 4, /* CLI -> analyzer */
	DT_MSG_TASK_GET = 5,    /* CLI -> analyzer */
	DT_MSG_TASK = 6,        /* analyzer -> CLI: one task */
	DT_MSG_REPORT_GET = 7,  /* CLI -> analyzer */
	DT_MSG_REPORT = 8,      /* analyzer -> CLI: a task's report */
	DT_MSG_ERROR = 9,       /* any reply that failed */
	DT_MSG_TASK_LIST = 10,  /* CLI -> analyzer */
	DT_MSG_TASKS = 11,      /* analyzer -> CLI: a list of tasks */
	DT_MSG_TASK_CANCEL = 12, /* CLI -> analyzer; reply DT_MSG_TASK */
	DT_MSG_TYPE_MAX,
};

/* Codec errors: 0 or one of these negative values. */
enum dt_proto_err {
	DT_PROTO_OK = 0,
	DT_PROTO_ETRUNC = -1,   /* buffer ends inside a message, or is not msgpack at all */
	DT_PROTO_ETYPE = -2,    /* a field has the wrong msgpack type */
	DT_PROTO_ELENGTH = -3,  /* an array has more or fewer elements than its layout */
	DT_PROTO_EVERSION = -4, /* a version other than DT_PROTO_VERSION */
	DT_PROTO_EMSGTYPE = -5, /* unknown message type, or not the type the decoder expects */
	DT_PROTO_ERANGE = -6,   /* a value is out of range (too long string, unknown hook...) */
	DT_PROTO_ETRAILING = -7, /* bytes after the end of the message */
	DT_PROTO_ENOMEM = -8,
};

/* Short English text for a DT_PROTO_* code ("truncated message", ...). Never NULL. */
const char *dt_proto_strerror(int err);

/*
 * Status of an API reply (DT_MSG_ERROR carries one). The CLI maps them to exit codes.
 * Append, never renumber.
 */
enum dt_status {
	DT_ST_OK = 0,
	DT_ST_INVALID = 1,   /* the request is malformed or names an impossible flow */
	DT_ST_NOT_FOUND = 2, /* no such task */
	DT_ST_REFUSED = 3,   /* well-formed but refused (overlap, limits, permissions) */
	DT_ST_FAILED = 4,    /* the service could not do it */
	DT_ST_MAX,
};

/* Task lifecycle. Append, never renumber. */
enum dt_task_state {
	DT_TASK_NEW = 0,
	DT_TASK_READY = 1,
	DT_TASK_ARMED = 2,
	DT_TASK_RUNNING = 3,
	DT_TASK_DONE = 4,
	DT_TASK_EXPIRED = 5,
	DT_TASK_CANCELLED = 6,
	DT_TASK_FAILED = 7,
	DT_TASK_STATE_MAX,
};

/*
 * Why a task is in its state: with DT_TASK_FAILED/EXPIRED/CANCELLED/DONE, and while
 * waiting. The task also carries a sentence an operator understands. Append, never
 * renumber.
 */
enum dt_task_status {
	DT_TS_OK = 0,             /* nothing to say */
	DT_TS_NO_HOST = 1,        /* no node hosts the source instance: nothing to arm */
	DT_TS_ARM_TIMEOUT = 2,    /* the node that hosts it did not acknowledge in time */
	DT_TS_BUDGET_SPENT = 3,   /* done: the packet budget was colored and judged */
	DT_TS_DURATION = 4,       /* expired: its duration ran out */
	DT_TS_CANCELLED = 5,      /* cancelled by its tenant */
	DT_TS_RESTARTED = 6,      /* the analyzer restarted; see the sentence for what followed */
	DT_TS_MAX,
};

/* Direction of a packet relative to its task's six-tuple. */
enum dt_direction {
	DT_DIR_REQUEST = 0, /* the six-tuple as the task names it */
	DT_DIR_REPLY = 1,   /* the six-tuple reversed */
	DT_DIR_MAX,
};

/* What became of a traced packet. Append, never renumber. */
enum dt_fate {
	DT_FATE_DELIVERED = 0, /* reached its last hop (port-out, or a gateway exit) */
	DT_FATE_DROPPED = 1,   /* the kernel dropped it, with a reason: the last hop */
	DT_FATE_VANISHED = 2,  /* not seen again after its last hop, no drop seen */
	DT_FATE_IN_FLIGHT = 3, /* last seen within the analysis window: not judged yet */
	DT_FATE_REASSEMBLED = 4, /* a fragment the kernel reassembled into its datagram (and
				  * fragmented anew) where it was last seen: not a loss */
	DT_FATE_SEGMENTED = 5,	 /* a packet the kernel cut into segments after the hop where
				  * it was last seen whole (GSO): its segments carry it on */
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

/* Why samples were lost before they reached a store. Append, never renumber. */
enum dt_loss {
	DT_LOSS_RING_FULL = 0,  /* BPF ring buffer full (data plane) */
	DT_LOSS_QUEUE_FULL = 1, /* sender's in-memory queue full */
	DT_LOSS_BAD_VERSION = 2, /* ring record of an unknown layout version */
	DT_LOSS_REJECTED = 3,   /* in a batch the receiver refused as malformed */
	DT_LOSS_SPOOL_FULL = 4, /* evicted from the agent's spool, full while its collector was away */
	DT_LOSS_MAX,
};

/* Peek at the header of a message: checks that buf starts with an array whose first two
 * elements are a supported version and a known type. Does not validate the rest. */
int dt_msg_type(const void *buf, size_t len, enum dt_msg_type *type);

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
 * A node's control state, as its agent reports it and its collector relays it:
 * [node, ctl_gen, [[vni, addr]...]]
 * ctl_gen: the control generation the node's agent has applied to its data plane.
 */
struct dt_node_state {
	char node[DT_NAME_MAX];
	uint64_t ctl_gen;
	uint32_t n_endpoints;
	struct dt_endpoint *endpoints; /* n_endpoints, malloc'd */
};

/*
 * DT_MSG_BATCH: [4, 1, sender, seq, ctl_gen, node, [ifname...], [lost...], [string...],
 *                [sample...], [node_state...]]
 * sender:  who sent this message (the agent's node name, or the collector's name)
 * seq:     sender's message sequence, starting at 1 and growing by 1 per batch;
 *          a heartbeat is a batch with no samples (it still has a seq)
 * ctl_gen: generation of the control set the sender has applied (0: none yet)
 * node:    node whose data plane took the samples
 * lost:    exactly DT_LOSS_MAX counters, cumulative since the node's agent started
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
	char (*strings)[DT_STR_MAX];    /* n_strings, malloc'd */
	uint32_t n_samples;
	struct dt_wire_sample *samples; /* n_samples, malloc'd */
	uint32_t n_nodes;
	struct dt_node_state *nodes;    /* n_nodes, malloc'd (each with its endpoints) */
};

int dt_batch_encode(msgpack_sbuffer *out, const struct dt_batch *b);
int dt_batch_decode(const void *buf, size_t len, struct dt_batch *b);
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

/*
 * DT_MSG_TASK_CREATE: [4, 4, token, flags, saddr, daddr, sport, dport, proto, vni,
 *                      budget, duration_s, rate_pps]
 * token: the tenant's secret (every API request starts with it; < DT_TOKEN_MAX)
 * tuple names the request direction as its source instance sees it (before any NAT).
 * budget (packets to color, per direction), duration_s and rate_pps (colored packets per
 * second at most): 0 asks for the analyzer's defaults; above its maxima is refused.
 */
struct dt_task_spec {
	uint32_t flags; /* DT_TASK_F_ANYPORT | DT_TASK_DIR_* */
	struct dt_tuple tuple;
	uint32_t budget;
	uint32_t duration_s;
	uint32_t rate_pps;
};

/* Which directions a task traces (in dt_task_spec.flags; none given means request). */
#define DT_TASK_DIR_REQUEST 0x10
#define DT_TASK_DIR_REPLY 0x20
#define DT_TASK_DIR_BOTH (DT_TASK_DIR_REQUEST | DT_TASK_DIR_REPLY)

int dt_task_create_encode(msgpack_sbuffer *out, const char *token, const struct dt_task_spec *s);
int dt_task_create_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX],
			  struct dt_task_spec *s);

/*
 * DT_MSG_TASK_GET: [4, 5, token, task_id], DT_MSG_REPORT_GET: [4, 7, token, task_id],
 * DT_MSG_TASK_CANCEL: [4, 12, token, task_id], DT_MSG_TASK_LIST: [4, 10, token]
 */
int dt_task_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id);
int dt_task_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id);
int dt_report_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id);
int dt_report_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX],
			 uint32_t *task_id);
int dt_task_cancel_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id);
int dt_task_cancel_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX],
			  uint32_t *task_id);
int dt_task_list_encode(msgpack_sbuffer *out, const char *token);
int dt_task_list_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX]);

/*
 * DT_MSG_TASK: [4, 6, id, state, flags, saddr, daddr, sport, dport, proto, vni, budget,
 *               duration_s, rate_pps, created_ns, colored, delivered, tenant, status,
 *               status_text, armed_ns, ended_ns]
 * spec:      as created, with the analyzer's defaults filled in
 * colored:   packets colored at a first hop (port-in or gw-in)
 * delivered: packets whose fate is delivered
 * tenant:    the tenant's name (never another tenant's)
 * status:    enum dt_task_status, and status_text a sentence (< DT_MSG_MAX)
 * armed_ns, ended_ns: wall-clock times, 0 when not (yet)
 */
struct dt_task_info {
	uint32_t id;
	uint32_t state; /* enum dt_task_state */
	struct dt_task_spec spec;
	uint64_t created_ns;
	uint64_t colored;
	uint64_t delivered;
	char tenant[DT_NAME_MAX];
	uint32_t status; /* enum dt_task_status */
	char status_text[DT_MSG_MAX];
	uint64_t armed_ns;
	uint64_t ended_ns;
};

int dt_task_encode(msgpack_sbuffer *out, const struct dt_task_info *t);
int dt_task_decode(const void *buf, size_t len, struct dt_task_info *t);

/* DT_MSG_TASKS: [4, 11, [[task fields as in DT_MSG_TASK after the type]...]] */
struct dt_task_list {
	uint32_t n_tasks;
	struct dt_task_info *tasks; /* n_tasks, malloc'd */
};

int dt_tasks_encode(msgpack_sbuffer *out, const struct dt_task_list *l);
int dt_tasks_decode(const void *buf, size_t len, struct dt_task_list *l);
void dt_task_list_free(struct dt_task_list *l);

/* DT_MSG_ERROR: [4, 9, status, message] */
struct dt_error {
	uint32_t status; /* enum dt_status, never DT_ST_OK */
	char message[DT_MSG_MAX];
};

int dt_error_encode(msgpack_sbuffer *out, const struct dt_error *e);
int dt_error_decode(const void *buf, size_t len, struct dt_error *e);

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
	uint16_t parent;   /* index into the packet's hops; DT_HOP_ROOT for hop 0 */
	uint8_t branch;    /* enum dt_branch */
	uint8_t copy_end;  /* enum dt_copy_end */
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
	uint8_t fate;      /* enum dt_fate */
	struct dt_tuple tuple;
	uint32_t drop_reason;
	char drop_name[DT_STR_MAX];
	char drop_where[DT_STR_MAX];
	uint32_t n_hops;
	struct dt_hop *hops; /* n_hops, malloc'd */
	uint8_t dest_known;
	uint32_t n_copies;
	uint16_t frag;         /* DT_FRAG_MF | offset (8-byte units) at its first hop; 0: the
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
	uint8_t branch;    /* enum dt_branch */
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
 * The verdict an operator reads first: [judged, delivered, dropped, vanished, in_flight,
 * [node, ifname, hook], reason, sentence, dest_unknown]
 * judged = delivered + dropped + vanished (in-flight packets are not judged yet).
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
};

/*
 * DT_MSG_REPORT: [4, 8, [task fields as in DT_MSG_TASK after the type], [packet...],
 *                 [stat...], [lost...], [row...], verdict, unmatched, window_ms,
 *                 [copy_row...]]
 * lost:      exactly DT_LOSS_MAX counters, summed over the nodes that reported samples.
 * unmatched: samples the analyzer could attribute to no task, even after its window
 *            (all tasks; counted, never silently dropped)
 * window_ms: the analysis window (samples are held this long for NAT stitching, and a
 *            packet last seen this recently is in flight)
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
};

int dt_report_encode(msgpack_sbuffer *out, const struct dt_report *r);
int dt_report_decode(const void *buf, size_t len, struct dt_report *r);
void dt_report_free(struct dt_report *r);

/* Names used in text and JSON output. Never NULL ("?" for out-of-range values). */
const char *dt_hook_name(unsigned int hook);        /* "port-in", "uplink-out", "gw-out",
						     * "gw-in", "drop" */
const char *dt_direction_name(unsigned int dir);    /* "request", "reply" */
const char *dt_fate_name(unsigned int fate);        /* "delivered", "dropped", "vanished",
						     * "in-flight" */
const char *dt_branch_name(unsigned int branch);    /* "destination", "copy" */
const char *dt_copy_end_name(unsigned int end);     /* "filtered", "dropped", "vanished",
						     * "in-flight", "delivered" ("" for none) */
const char *dt_task_state_name(unsigned int state); /* "running", ... */
const char *dt_status_name(unsigned int status);    /* "not-found", ... */
const char *dt_task_status_name(unsigned int ts);   /* "ok", "no-host", "arm-timeout",
						     * "budget-spent", "duration",
						     * "cancelled", "restarted" */
const char *dt_loss_name(unsigned int loss);        /* "ring-full", ... */

#endif /* DT_PROTO_H */
