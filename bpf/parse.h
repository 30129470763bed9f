/* SPDX-License-Identifier: MIT */
/*
 * parse.h - bounds-checked packet parsers shared by every dyetrace BPF program.
 *
 * The contract of every dt_parse_*() function:
 *  - it takes a cursor over the skb's linear data (pos: the next unread byte, end: data_end);
 *  - it checks that every byte it reads lies before end, so callers need no check of their
 *    own and the verifier accepts the parser in any program, in any order;
 *  - on success it points *hdr at the header (where it has one), moves the cursor past it
 *    and returns a value >= 0: the next protocol, or what its comment names;
 *  - on failure it leaves the cursor alone and returns one of the DT_PARSE_* codes below.
 *    DT_PARSE_SHORT means "the header does not fit in the linear data": the caller may
 *    pull more of the skb into the linear area and parse again from the start.
 *
 * Parsing is the untraced fast path: nothing here writes the packet, reads the clock,
 * calls a helper or touches a map. The programs read headers in place (direct packet
 * access, reads only: a program that writes through packet pointers gets an unclone
 * prologue on every packet; dyetrace writes with helpers, and only on traced packets).
 *
 * Include after vmlinux.h, bpf_helpers.h, bpf_endian.h and dt_sample.h.
 */
#ifndef DT_PARSE_H
#define DT_PARSE_H

/* vmlinux.h carries types but no macros; IPPROTO_* are enum constants there. */
#define DT_ETH_P_IP 0x0800
#define DT_IP_MF 0x2000	    /* iph->frag_off, host order: more fragments */
#define DT_IP_OFFSET 0x1fff /* iph->frag_off, host order: fragment offset, 8-byte units */
#define DT_ICMP_ECHOREPLY 0
#define DT_ICMP_ECHO 8
#define DT_VXLAN_F_VNI 0x08000000 /* VXLAN flags word, host order: "I", the VNI is valid */

/* The longest run of headers each role parses; what a retry pulls into the linear area. */
#define DT_IPV4_MAX_HLEN 60
#define DT_TCP_MIN_HLEN 20
#define DT_PULL_INNER (sizeof(struct ethhdr) + DT_IPV4_MAX_HLEN + DT_TCP_MIN_HLEN)
#define DT_PULL_OUTER                                                                              \
	(sizeof(struct ethhdr) + DT_IPV4_MAX_HLEN + sizeof(struct udphdr) +                        \
	 sizeof(struct dt_vxlanhdr) + DT_PULL_INNER)

enum dt_parse_err {
	DT_PARSE_SHORT = -1, /* the header runs past the linear data (or past the packet) */
	DT_PARSE_BAD = -2,   /* the header is malformed; parsing again will not help */
	DT_PARSE_OTHER = -3, /* well formed, but not something dyetrace looks into */
};

/* RFC 7348. Defined here rather than taken from vmlinux.h, whose vxlan types depend on
 * the kernel configuration. */
struct dt_vxlanhdr {
	__be32 vx_flags;
	__be32 vx_vni;
};

struct dt_cursor {
	void *pos;
	void *end;
};

/*
 * What the programs learn about one IPv4 packet: enough to look its flow up and to tell
 * this packet apart from its neighbours at another hop. Filled by dt_parse_eth_ipv4()
 * and dt_parse_l4(); the VNI is the caller's (port map or VXLAN header).
 */
struct dt_pkt {
	struct dt_tuple tuple; /* network order, as the task map key wants it */
	__u32 ident;	       /* see struct dt_sample: TCP seq, ICMP id/seq, UDP sport/csum */
	__u16 ip_id;	       /* host order */
	__u16 len;	       /* IPv4 total length, host order */
	__u16 frag_off;	       /* flags and offset, host order, color bit included */
	__u16 pad;
};

/*
 * Reads a 32-bit field of the skb context with one fixed-offset load. Plain C reads are
 * fine until a program inlines the same parse twice (parse, pull, parse again): clang
 * then keeps the field offsets in registers and addresses the context as ctx + reg,
 * which the verifier refuses ("dereference of modified ctx ptr").
 */
#define dt_skb_load(skb, field)                                                                    \
	({                                                                                         \
		__u64 __v; /* a BPF 32-bit load zero-extends: no shifts on packet pointers */      \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                              \
			     : "=r"(__v)                                                           \
			     : "r"(skb), "i"(offsetof(struct __sk_buff, field)));                  \
		__v;                                                                               \
	})

static __always_inline void dt_cursor_init(struct dt_cursor *c, struct __sk_buff *skb)
{
	c->pos = (void *)(long)dt_skb_load(skb, data);
	c->end = (void *)(long)dt_skb_load(skb, data_end);
}

/* Ethernet. Returns the EtherType, host order. No VLAN: dyetrace's ports and uplinks
 * carry untagged frames. */
static __always_inline int dt_parse_ethhdr(struct dt_cursor *c, struct ethhdr **hdr)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return DT_PARSE_SHORT;
	c->pos = eth + 1;
	*hdr = eth;
	return bpf_ntohs(eth->h_proto);
}

/* IPv4, options included (the cursor moves ihl * 4 bytes). Returns the protocol. */
static __always_inline int dt_parse_iphdr(struct dt_cursor *c, struct iphdr **hdr)
{
	struct iphdr *iph = c->pos;
	__u32 hlen;

	if ((void *)(iph + 1) > c->end)
		return DT_PARSE_SHORT;
	if (iph->version != 4)
		return DT_PARSE_BAD;
	hlen = iph->ihl * 4;
	if (hlen < sizeof(*iph))
		return DT_PARSE_BAD;
	if (c->pos + hlen > c->end)
		return DT_PARSE_SHORT;
	c->pos += hlen;
	*hdr = iph;
	return iph->protocol;
}

/* UDP. Returns the destination port, host order. */
static __always_inline int dt_parse_udphdr(struct dt_cursor *c, struct udphdr **hdr)
{
	struct udphdr *udp = c->pos;

	if ((void *)(udp + 1) > c->end)
		return DT_PARSE_SHORT;
	c->pos = udp + 1;
	*hdr = udp;
	return bpf_ntohs(udp->dest);
}

/* TCP, the fixed 20-byte header (dyetrace needs nothing from the options). Returns 0. */
static __always_inline int dt_parse_tcphdr(struct dt_cursor *c, struct tcphdr **hdr)
{
	struct tcphdr *tcp = c->pos;

	if ((void *)(tcp + 1) > c->end)
		return DT_PARSE_SHORT;
	c->pos = tcp + 1;
	*hdr = tcp;
	return 0;
}

/* ICMP, the 8-byte header. Returns the ICMP type. */
static __always_inline int dt_parse_icmphdr(struct dt_cursor *c, struct icmphdr **hdr)
{
	struct icmphdr *icmp = c->pos;

	if ((void *)(icmp + 1) > c->end)
		return DT_PARSE_SHORT;
	c->pos = icmp + 1;
	*hdr = icmp;
	return icmp->type;
}

/* VXLAN. Returns the VNI (24 bits, host order); DT_PARSE_BAD when the I flag is clear. */
static __always_inline int dt_parse_vxlanhdr(struct dt_cursor *c, struct dt_vxlanhdr **hdr)
{
	struct dt_vxlanhdr *vx = c->pos;

	if ((void *)(vx + 1) > c->end)
		return DT_PARSE_SHORT;
	if (!(bpf_ntohl(vx->vx_flags) & DT_VXLAN_F_VNI))
		return DT_PARSE_BAD;
	c->pos = vx + 1;
	*hdr = vx;
	return bpf_ntohl(vx->vx_vni) >> 8;
}

/*
 * An Ethernet frame carrying IPv4: the port programs' packet, and the uplink's inner one.
 * Fills the IPv4 part of pkt (addresses, protocol, ID, length, flags) and leaves the
 * cursor at the L4 header. Returns the IPv4 protocol, or DT_PARSE_OTHER for another
 * EtherType.
 */
static __always_inline int dt_parse_eth_ipv4(struct dt_cursor *c, struct dt_pkt *pkt)
{
	struct dt_cursor save = *c;
	struct ethhdr *eth;
	struct iphdr *iph;
	int rc;

	rc = dt_parse_ethhdr(c, &eth);
	if (rc < 0)
		return rc;
	if (rc != DT_ETH_P_IP) {
		*c = save;
		return DT_PARSE_OTHER;
	}
	rc = dt_parse_iphdr(c, &iph);
	if (rc < 0) {
		*c = save;
		return rc;
	}
	pkt->tuple.saddr = iph->saddr;
	pkt->tuple.daddr = iph->daddr;
	pkt->tuple.proto = iph->protocol;
	pkt->ip_id = bpf_ntohs(iph->id);
	pkt->len = bpf_ntohs(iph->tot_len);
	pkt->frag_off = bpf_ntohs(iph->frag_off);
	return rc;
}

/*
 * The L4 part of pkt, with the cursor at the L4 header of the IPv4 packet that
 * dt_parse_eth_ipv4() filled in. Sets the ports of the tuple and the ident:
 *  - TCP: ports; ident = sequence number.
 *  - UDP: ports; ident = source port << 16 | checksum.
 *  - ICMP echo request: sport = identifier, dport = 0; echo reply: sport = 0,
 *    dport = identifier (a reply's tuple is its request's reversed); ident =
 *    identifier << 16 | sequence. Other ICMP types: ports and ident 0.
 *  - Other protocols, and every non-first fragment (it has no L4 header): ports and
 *    ident stay 0 and the cursor does not move. Such packets can only match a task
 *    whose ports are 0, i.e. a wildcard (DT_TASK_F_ANYPORT) task.
 * Ports and ident stay as they were (0 from the caller's zeroed pkt) on failure.
 * Returns 0.
 */
static __always_inline int dt_parse_l4(struct dt_cursor *c, struct dt_pkt *pkt)
{
	struct icmphdr *icmp;
	struct tcphdr *tcp;
	struct udphdr *udp;
	int rc;

	if (pkt->frag_off & DT_IP_OFFSET)
		return 0;

	switch (pkt->tuple.proto) {
	case IPPROTO_TCP:
		rc = dt_parse_tcphdr(c, &tcp);
		if (rc < 0)
			return rc;
		pkt->tuple.sport = tcp->source;
		pkt->tuple.dport = tcp->dest;
		pkt->ident = bpf_ntohl(tcp->seq);
		return 0;
	case IPPROTO_UDP:
		rc = dt_parse_udphdr(c, &udp);
		if (rc < 0)
			return rc;
		pkt->tuple.sport = udp->source;
		pkt->tuple.dport = udp->dest;
		pkt->ident = (__u32)bpf_ntohs(udp->source) << 16 | bpf_ntohs(udp->check);
		return 0;
	case IPPROTO_ICMP:
		rc = dt_parse_icmphdr(c, &icmp);
		if (rc < 0)
			return rc;
		if (rc == DT_ICMP_ECHO)
			pkt->tuple.sport = icmp->un.echo.id;
		else if (rc == DT_ICMP_ECHOREPLY)
			pkt->tuple.dport = icmp->un.echo.id;
		else
			return 0;
		pkt->ident = (__u32)bpf_ntohs(icmp->un.echo.id) << 16 |
			     bpf_ntohs(icmp->un.echo.sequence);
		return 0;
	default:
		return 0;
	}
}

#endif /* DT_PARSE_H */
