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
 *
 * One sample, four forms, each converted in one place:
 *   struct dt_sample (here, written by bpf/dyetrace.bpf.c)
 *     -> struct dt_wire_sample (proto/dt_link_msg.h), by wire_from_sample() in agent/agent.c
 *     -> struct dt_obs (analyzer/paths.h), by dt_stitch_in_fill() in analyzer/attribute.c
 *     -> struct dt_hop (proto/dt_report.h), by fill_hop() in analyzer/paths.c, for reports.
 * A new field touches this struct and the program that fills it, the wire sample and its
 * codec (proto/dt_link_msg.c, proto/README.md, the fuzz corpus), the two conversions, and
 * the consumers that use it; a hop shows it only if reports need it.
 */
#ifndef DT_SAMPLE_H
#define DT_SAMPLE_H

#define DT_SAMPLE_VERSION 4

/* The in-band color: the IPv4 header's reserved flag bit (RFC 791, "evil bit"),
 * host byte order, as found in iph->frag_off after bpf_ntohs(). Coloring it keeps
 * the packet length unchanged; the header checksum is fixed incrementally. */
#define DT_COLOR_BIT 0x8000

/* VXLAN's IANA UDP port. */
#define DT_VXLAN_PORT 4789

/* Sizing of the data plane maps. */
#define DT_MAX_TASKS 16384
#define DT_MAX_PORTS 1024
#define DT_PORT_SLOTS 4096 /* ifindexes below it have a slot in dt_port_slots (dt_ports.h) */

/*
 * Where a sample was taken. The numbering is part of the wire format (proto/):
 * append, never renumber.
 */
enum dt_hook {
	DT_HOOK_NONE = 0,
	DT_HOOK_PORT_IN = 1,	/* port ingress: packet leaves an instance, first hop */
	DT_HOOK_PORT_OUT = 2,	/* port egress: packet enters an instance, last hop */
	DT_HOOK_UPLINK_IN = 3,	/* uplink ingress: encapsulated packet arrives from the underlay */
	DT_HOOK_UPLINK_OUT = 4, /* uplink egress: encapsulated packet leaves to the underlay */
	DT_HOOK_GW_OUT = 5,	/* gateway outside egress: leaves our network after NAT; an exit */
	DT_HOOK_GW_IN = 6,	/* gateway outside ingress: enters our network before de-NAT;
				 * an entry, the first hop of replies */
	DT_HOOK_DROP = 7,	/* the kernel freed the packet with a drop reason (kfree_skb) */
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
#define DT_TASK_F_REPLY 0x2 /* this key is the reply direction of its task (tuple reversed) */

/* Value of the armed-task map. */
struct dt_task_val {
	__u32 task_id;
	__u32 flags;
	__u32 budget;	/* packets this key may color in all, 0: no limit */
	__u32 rate_pps; /* packets per second it may color at most (token bucket), 0: no limit */
};

/* Value of the port maps: how an interface that faces an instance, or a gateway's outside
 * interface, is configured (for a gateway: the VNI of the tenant network behind its NAT).
 * In dt_port_slots, flags has DT_PORT_F_SET for a configured interface (dt_ports.h). */
struct dt_port_val {
	__u32 vni;
	__u32 flags;
};

#define DT_PORT_F_SET 0x1u

/*
 * The packet prefix a sample carries (for pcapng export): at most DT_CAP_MAX bytes, fewer
 * when the agent's capture_bytes says so or the packet (its linear data, for drops) is
 * shorter. The numbering of dt_cap_link is part of the wire format: append only.
 */
#define DT_CAP_MAX 128

enum dt_cap_link {
	DT_CAP_NONE = 0, /* nothing captured */
	DT_CAP_ETH = 1,	 /* from the Ethernet header (tc hooks: the frame on the interface) */
	DT_CAP_IPV4 = 2, /* from the IPv4 header (drops: the skb's network header) */
};

/*
 * One observation of a colored packet, written to the ring buffer. 232 bytes.
 *
 * tuple is the inner (tenant) packet as seen at that hop. At a gateway (DT_SAMPLE_F_NAT)
 * orig is the same packet's tuple on the inside of the NAT, from conntrack: for a request
 * leaving through the gateway, the tuple before SNAT; for a reply entering, the tuple
 * after de-NAT. A drop sample carries orig too when the dropped skb has a conntrack entry
 * with a translation.
 *
 * ident is NAT-invariant, so that the analyzer can follow one packet through a NAT:
 * TCP: the sequence number; ICMP echo: the sequence number (the identifier is in the
 * tuple's ports and a NAT may rewrite it); UDP: the first 4 payload bytes (big-endian,
 * zero-padded) XOR (UDP length << 16); anything else: 0.
 */
struct dt_sample {
	__u8 version; /* DT_SAMPLE_VERSION */
	__u8 hook;    /* enum dt_hook */
	__u8 flags;   /* DT_SAMPLE_F_* */
	__u8 pad0;
	__u32 ifindex; /* interface the program is attached to; for drops skb->dev (or 0) */
	__u64 ts_ns;   /* bpf_ktime_get_ns(); the agent turns it into wall-clock time */
	struct dt_tuple tuple;
	__u32 task_id;	   /* known at the first hop only, else 0 */
	__u16 ip_id;	   /* inner IPv4 identification */
	__u16 frag;	   /* inner IPv4 fragment: DT_FRAG_MF | offset in 8-byte units (host
			    * order, as iph->frag_off without DF and the color); 0: not one */
	__u32 ident;	   /* see above */
	__u32 len;	   /* inner IPv4 total length */
	__u32 outer_saddr; /* uplink hooks, encapsulated drops: outer IPv4 source, network order */
	__u32 outer_daddr; /* ... and destination */
	__u32 drop_reason; /* DT_HOOK_DROP: the kernel's enum skb_drop_reason value */
	struct dt_tuple orig; /* DT_SAMPLE_F_NAT: the tuple inside the NAT (see above) */
	__u32 pad2;
	__u64 drop_location; /* DT_HOOK_DROP: kernel text address that freed the skb */
	__u16 cap_len;	     /* bytes of cap that hold the packet (0: nothing captured) */
	__u8 cap_link;	     /* enum dt_cap_link: where cap starts */
	__u8 pad3;
	__u32 pad4;
	__u8 cap[DT_CAP_MAX]; /* the first cap_len bytes of the packet as it was at this hop */
};

#define DT_SAMPLE_F_FIRST_HOP 0x1 /* this hop colored the packet */
#define DT_SAMPLE_F_NAT 0x2	  /* orig holds the tuple inside the NAT */
#define DT_SAMPLE_F_ENCAP 0x4	  /* drop: the skb was the VXLAN-encapsulated packet */
#define DT_SAMPLE_F_REPLY 0x8	  /* first hop: the key that matched is a reply key */
/* Set by the agent, never by the programs: a port-out sample whose destination address is
 * none of the instances the port lists (a flooded copy the instance will discard). */
#define DT_SAMPLE_F_STRANGER 0x10
/* Set by the agent: a port-out whose destination address is one of the instances the port
 * lists (the packet reached its destination, whatever the analyzer has heard of hosts). */
#define DT_SAMPLE_F_HOSTED 0x40
/* The first hop colored this fragment again: the kernel reassembled the datagram and
 * fragmented it anew (which clears the color), see dt_overlay_egress. */
#define DT_SAMPLE_F_REFRAG 0x20

/* dt_sample.frag: more fragments follow; the rest is the offset in 8-byte units. */
#define DT_FRAG_MF 0x2000
#define DT_FRAG_OFFSET 0x1fff

/*
 * The agent's count of the ring records it drained, in the pinned BPF_F_MMAPABLE array
 * dt_drained (one entry, which no program touches): the agent writes it through a shared
 * mapping in its ring buffer callback, so that it outlives an agent that dies, and the
 * next agent of the node computes what the dead one drained and never spooled
 * (agent/drained.c).
 */
struct dt_drained {
	__u64 id;     /* the data plane's identity, drawn by the agent that created it */
	__u64 count;  /* ring records drained: the callback was entered for them */
	__u64 pos[2]; /* pos[count & 1]: the ring's consumer position when record count was
		       * entered (libbpf releases a record only after its callback returns) */
};

/* Per-CPU counters exported by the data plane (index of the counters array). */
enum dt_counter {
	DT_CNT_COLORED = 0,   /* packets colored at a first hop */
	DT_CNT_SAMPLED,	      /* samples written to the ring buffer */
	DT_CNT_RING_FULL,     /* samples that could not be written: ring buffer full */
	DT_CNT_UNCOLORED,     /* colored packets whose color was removed at an exit */
	DT_CNT_FOREIGN_COLOR, /* packets that arrived from an instance already colored */
	DT_CNT_DROPS,	      /* colored packets seen freed with a drop reason, sampled */
	DT_CNT_DROP_OTHER_NS, /* colored drops in another network namespace: not ours, skipped */
	DT_CNT_NAT_NO_CT,     /* colored packets at a gateway without a conntrack entry */
	DT_CNT_WRITE_FAIL,    /* a helper failed while writing or removing the color */
	DT_CNT_BUDGET_SPENT,  /* matching packets left uncolored: the task's budget is spent */
	DT_CNT_RATE_LIMITED,  /* matching packets left uncolored: over the task's rate */
	DT_CNT_FRAG_COLORED,  /* later fragments colored after their datagram's first */
	DT_CNT_FRAG_ORPHAN,   /* later fragments seen at a port with no first fragment known
			       * (it came later, or the datagram is not traced): uncolored */
	DT_CNT_RECOLORED,     /* fragments of a traced datagram colored again after the
			       * kernel reassembled and refragmented it */
	DT_CNT_MAX,
};

#endif /* DT_SAMPLE_H */
