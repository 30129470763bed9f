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
#define DT_TCP_MIN_HLEN 20 /* also covers UDP and the 4 payload bytes of its ident */
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
 * and dt_parse_l4() (or the drop program's readers in kparse.h, through the dt_pkt_*()
 * setters below); the VNI is the caller's (port map or VXLAN header).
 */
struct dt_pkt {
	struct dt_tuple tuple; /* network order, as the task map key wants it */
	__u32 ident;	       /* NAT-invariant, see struct dt_sample and dt_pkt_udp() */
	__u16 ip_id;	       /* host order */
	__u16 len;	       /* IPv4 total length, host order */
	__u16 frag_off;	       /* flags and offset, host order, color bit included */
	__u16 pad;
};

/*
 * The setters: the one place where header fields become tuple, ident and the rest, so that
 * every program, whether it reads the packet in place or copies it out of a kernel skb,
 * follows the conventions of dt_sample.h. They take headers already known to be readable.
 */

/* Addresses, protocol, ID, length and flags of an IPv4 header. */
static __always_inline void dt_pkt_ipv4(struct dt_pkt *pkt, const struct iphdr *iph)
{
	pkt->tuple.saddr = iph->saddr;
	pkt->tuple.daddr = iph->daddr;
	pkt->tuple.proto = iph->protocol;
	pkt->ip_id = bpf_ntohs(iph->id);
	pkt->len = bpf_ntohs(iph->tot_len);
	pkt->frag_off = bpf_ntohs(iph->frag_off);
}

/* TCP: ports; ident = sequence number. */
static __always_inline void dt_pkt_tcp(struct dt_pkt *pkt, const struct tcphdr *tcp)
{
	pkt->tuple.sport = tcp->source;
	pkt->tuple.dport = tcp->dest;
	pkt->ident = bpf_ntohl(tcp->seq);
}

/* How many payload bytes a UDP datagram contributes to its ident: up to 4. */
static __always_inline __u32 dt_udp_ident_bytes(const struct udphdr *udp)
{
	__u32 ulen = bpf_ntohs(udp->len);

	if (ulen <= sizeof(*udp))
		return 0;
	return ulen - sizeof(*udp) < 4 ? ulen - sizeof(*udp) : 4;
}

/*
 * UDP: ports; ident = the first 4 payload bytes as a big-endian word, zero-padded when
 * the payload is shorter (word, as read by the caller), XOR (UDP length << 16). Both
 * survive NAT, unlike the checksum and the source port.
 */
static __always_inline void dt_pkt_udp(struct dt_pkt *pkt, const struct udphdr *udp, __u32 word)
{
	pkt->tuple.sport = udp->source;
	pkt->tuple.dport = udp->dest;
	pkt->ident = word ^ (__u32)bpf_ntohs(udp->len) << 16;
}

/*
 * ICMP echo request: sport = identifier, dport = 0; echo reply: sport = 0, dport =
 * identifier (a reply's tuple is its request's reversed); ident = sequence number (a NAT
 * may rewrite the identifier). Other ICMP types: ports and ident 0.
 */
static __always_inline void dt_pkt_icmp(struct dt_pkt *pkt, const struct icmphdr *icmp)
{
	if (icmp->type == DT_ICMP_ECHO)
		pkt->tuple.sport = icmp->un.echo.id;
	else if (icmp->type == DT_ICMP_ECHOREPLY)
		pkt->tuple.dport = icmp->un.echo.id;
	else
		return;
	pkt->ident = bpf_ntohs(icmp->un.echo.sequence);
}

/* Turns t into the tuple of the other direction of its flow: addresses and ports swapped
 * (what dt_tuple_reverse() does in userspace, lib/dt_tuple.h). */
static __always_inline void dt_tuple_flip(struct dt_tuple *t)
{
	__u32 a = t->saddr;
	__u16 p = t->sport;

	t->saddr = t->daddr;
	t->daddr = a;
	t->sport = t->dport;
	t->dport = p;
}

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
	dt_pkt_ipv4(pkt, iph);
	return rc;
}

/*
 * The first n (at most 4) bytes at the cursor as a big-endian word, zero-padded; the
 * cursor does not move. One constant-offset check per byte keeps the verifier content.
 */
static __always_inline int dt_parse_word(const struct dt_cursor *c, __u32 n, __u32 *word)
{
	const __u8 *p = c->pos;
	__u32 w = 0;

	if (n > 0) {
		if ((void *)(p + 1) > c->end)
			return DT_PARSE_SHORT;
		w |= (__u32)p[0] << 24;
	}
	if (n > 1) {
		if ((void *)(p + 2) > c->end)
			return DT_PARSE_SHORT;
		w |= (__u32)p[1] << 16;
	}
	if (n > 2) {
		if ((void *)(p + 3) > c->end)
			return DT_PARSE_SHORT;
		w |= (__u32)p[2] << 8;
	}
	if (n > 3) {
		if ((void *)(p + 4) > c->end)
			return DT_PARSE_SHORT;
		w |= p[3];
	}
	*word = w;
	return 0;
}

/*
 * The L4 part of pkt, with the cursor at the L4 header of the IPv4 packet that
 * dt_parse_eth_ipv4() filled in. Sets the ports of the tuple and the ident as the
 * dt_pkt_*() setters say (TCP, UDP, which needs its first payload bytes too, and ICMP).
 * Other protocols, and every non-first fragment (it has no L4 header): ports and ident
 * stay 0 and the cursor does not move. Such packets can only match a task whose ports
 * are 0, i.e. a wildcard (DT_TASK_F_ANYPORT) task.
 * On failure the cursor, the ports and the ident stay as they were (0 from the caller's
 * zeroed pkt). Returns 0.
 */
static __always_inline int dt_parse_l4(struct dt_cursor *c, struct dt_pkt *pkt)
{
	struct dt_cursor save = *c;
	struct icmphdr *icmp;
	struct tcphdr *tcp;
	struct udphdr *udp;
	__u32 word;
	int rc;

	if (pkt->frag_off & DT_IP_OFFSET)
		return 0;

	switch (pkt->tuple.proto) {
	case IPPROTO_TCP:
		rc = dt_parse_tcphdr(c, &tcp);
		if (rc < 0)
			return rc;
		dt_pkt_tcp(pkt, tcp);
		return 0;
	case IPPROTO_UDP:
		rc = dt_parse_udphdr(c, &udp);
		if (rc < 0)
			return rc;
		rc = dt_parse_word(c, dt_udp_ident_bytes(udp), &word);
		if (rc < 0) {
			*c = save;
			return rc;
		}
		dt_pkt_udp(pkt, udp, word);
		return 0;
	case IPPROTO_ICMP:
		rc = dt_parse_icmphdr(c, &icmp);
		if (rc < 0)
			return rc;
		dt_pkt_icmp(pkt, icmp);
		return 0;
	default:
		return 0;
	}
}

#endif /* DT_PARSE_H */
