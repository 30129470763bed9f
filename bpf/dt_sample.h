/* SPDX-License-Identifier: MIT */
/*
 * dt_sample.h - the records shared by the eBPF programs and the agent.
 *
 * This header is compiled twice: by clang for the BPF target (after vmlinux.h, which
 * provides the __u8..__u64 types) and by gcc for userspace (after <linux/types.h>).
 * It therefore contains only plain structs, enums and macros.
 *
 * Layouts are fixed-size and padded explicitly so that kernel and userspace agree
 * byte for byte; every struct has a size check in the agent (see agent/bpf_loader.c).
 *
 * Bump DT_SAMPLE_VERSION whenever struct dt_sample changes its layout or the meaning
 * of a field. The agent refuses records of another version and counts them.
 */
#ifndef DT_SAMPLE_H
#define DT_SAMPLE_H

#define DT_SAMPLE_VERSION 1

/* The in-band color: the IPv4 header's reserved flag bit (RFC 791, "evil bit"),
 * host byte order, as found in iph->frag_off after bpf_ntohs(). Coloring it keeps
 * the packet length unchanged; the header checksum is fixed incrementally. */
#define DT_COLOR_BIT 0x8000

/* VXLAN's IANA UDP port. */
#define DT_VXLAN_PORT 4789

/* Sizing of the data plane maps. */
#define DT_MAX_TASKS 16384
#define DT_MAX_PORTS 1024

/*
 * Where a sample was taken. The numbering is part of the wire format (proto/):
 * append, never renumber.
 */
enum dt_hook {
	DT_HOOK_NONE = 0,
	DT_HOOK_PORT_IN = 1,    /* port ingress: packet leaves an instance, first hop */
	DT_HOOK_PORT_OUT = 2,   /* port egress: packet enters an instance, last hop */
	DT_HOOK_UPLINK_IN = 3,  /* uplink ingress: encapsulated packet arrives from the underlay */
	DT_HOOK_UPLINK_OUT = 4, /* uplink egress: encapsulated packet leaves to the underlay */
	DT_HOOK_MAX,
};

/*
 * The six-tuple that names a flow, and the key of the armed-task map.
 * Addresses and ports in network byte order, VNI in host order (24 bits used),
 * protocol as in the IPv4 header. 20 bytes, a multiple of 4 (it hashes faster).
 *
 * ICMP echo has no ports: an echo request carries its identifier as sport and 0 as
 * dport; an echo reply carries 0 as sport and its identifier as dport, so the reply's
 * tuple is exactly the request's tuple reversed.
 *
 * A task that leaves the ports out is stored with sport = dport = 0 and matches every
 * port pair with the same remaining fields (DT_TASK_F_ANYPORT in its value).
 */
struct dt_tuple {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 vni;
	__u8 proto;
	__u8 pad[3];
};

#define DT_TASK_F_ANYPORT 0x1

/* Value of the armed-task map. */
struct dt_task_val {
	__u32 task_id;
	__u32 flags;
};

/* Value of the port map: how an interface that faces an instance is configured. */
struct dt_port_val {
	__u32 vni;
	__u32 pad;
};

/*
 * One observation of a colored packet, written to the ring buffer.
 * 64 bytes. The tuple is the inner (tenant) packet as seen at that hop.
 */
struct dt_sample {
	__u8 version; /* DT_SAMPLE_VERSION */
	__u8 hook;    /* enum dt_hook */
	__u8 flags;   /* DT_SAMPLE_F_* */
	__u8 pad0;
	__u32 ifindex;    /* interface the program is attached to */
	__u64 ts_ns;      /* bpf_ktime_get_ns(); the agent turns it into wall-clock time */
	struct dt_tuple tuple;
	__u32 task_id;    /* known at the first hop only, else 0 */
	__u16 ip_id;      /* inner IPv4 identification */
	__u16 pad1;
	__u32 ident;      /* TCP sequence, ICMP (id << 16 | seq), or UDP (sport << 16 | csum) */
	__u32 len;        /* inner IPv4 total length */
	__u32 outer_saddr; /* uplink hooks: outer IPv4 source, network order; else 0 */
	__u32 outer_daddr; /* uplink hooks: outer IPv4 destination, network order; else 0 */
	__u32 pad2;
};

#define DT_SAMPLE_F_FIRST_HOP 0x1 /* this hop colored the packet */

/* Per-CPU counters exported by the data plane (index of the counters array). */
enum dt_counter {
	DT_CNT_COLORED = 0,     /* packets colored at a first hop */
	DT_CNT_SAMPLED,         /* samples written to the ring buffer */
	DT_CNT_RING_FULL,       /* samples that could not be written: ring buffer full */
	DT_CNT_UNCOLORED,       /* colored packets whose color was removed at an exit */
	DT_CNT_FOREIGN_COLOR,   /* packets that arrived from an instance already colored */
	DT_CNT_MAX,
};

#endif /* DT_SAMPLE_H */
