/* SPDX-License-Identifier: MIT */
/*
 * kparse.h - the parsers of parse.h for a struct sk_buff in kernel memory.
 *
 * Tracing programs (the drop program on tp_btf/kfree_skb) get a struct sk_buff, not a
 * context with packet pointers: they copy each header out of the skb's linear data with
 * bpf_probe_read_kernel() into the stack, and then fill struct dt_pkt with the same
 * dt_pkt_*() setters as the tc programs, so that a packet has the same tuple and ident
 * wherever it is seen.
 *
 * The contract mirrors parse.h: every dt_kparse_*() function takes a cursor (offsets from
 * skb->head: off, the next unread byte, and end, the end of the linear data, skb->tail),
 * checks that what it reads lies before end, moves the cursor past what it parsed and
 * returns a value >= 0 (the next protocol, or what its comment names); on failure it
 * leaves the cursor alone and returns a DT_PARSE_* code. DT_PARSE_SHORT here means that
 * the header is not in the linear data (a tracing program cannot pull it in) and
 * DT_PARSE_BAD that the kernel memory could not be read.
 *
 * Include after parse.h and bpf_core_read.h.
 */
#ifndef DT_KPARSE_H
#define DT_KPARSE_H

struct dt_kcursor {
	const __u8 *head; /* skb->head */
	__u32 off;	  /* offset of the next unread byte from head */
	__u32 end;	  /* skb->tail: the end of the linear data, offset from head */
};

/* A cursor at the skb's network header. */
static __always_inline void dt_kcursor_init(struct dt_kcursor *c, struct sk_buff *skb)
{
	c->head = BPF_CORE_READ(skb, head);
	c->off = BPF_CORE_READ(skb, network_header);
	c->end = BPF_CORE_READ(skb, tail);
}

/* Copies len bytes at the cursor into dst and moves past them. */
static __always_inline int dt_kread(struct dt_kcursor *c, void *dst, __u32 len)
{
	if (c->off + len > c->end || c->off + len < c->off)
		return DT_PARSE_SHORT;
	if (bpf_probe_read_kernel(dst, len, c->head + c->off))
		return DT_PARSE_BAD;
	c->off += len;
	return 0;
}

/* Ethernet. Returns the EtherType, host order. */
static __always_inline int dt_kparse_ethhdr(struct dt_kcursor *c)
{
	struct ethhdr eth;
	int rc;

	rc = dt_kread(c, &eth, sizeof(eth));
	if (rc < 0)
		return rc;
	return bpf_ntohs(eth.h_proto);
}

/* IPv4, options skipped, into pkt (dt_pkt_ipv4()). Returns the protocol. */
static __always_inline int dt_kparse_ipv4(struct dt_kcursor *c, struct dt_pkt *pkt)
{
	struct dt_kcursor save = *c;
	struct iphdr iph;
	__u32 hlen;
	int rc;

	rc = dt_kread(c, &iph, sizeof(iph));
	if (rc < 0)
		return rc;
	hlen = iph.ihl * 4;
	if (iph.version != 4 || hlen < sizeof(iph)) {
		*c = save;
		return DT_PARSE_BAD;
	}
	if (save.off + hlen > c->end) {
		*c = save;
		return DT_PARSE_SHORT;
	}
	c->off = save.off + hlen;
	dt_pkt_ipv4(pkt, &iph);
	return iph.protocol;
}

/* UDP. Returns the destination port, host order; *udp gets the header. */
static __always_inline int dt_kparse_udphdr(struct dt_kcursor *c, struct udphdr *udp)
{
	int rc;

	rc = dt_kread(c, udp, sizeof(*udp));
	if (rc < 0)
		return rc;
	return bpf_ntohs(udp->dest);
}

/* VXLAN. Returns the VNI (24 bits, host order); DT_PARSE_BAD when the I flag is clear. */
static __always_inline int dt_kparse_vxlanhdr(struct dt_kcursor *c)
{
	struct dt_kcursor save = *c;
	struct dt_vxlanhdr vx;
	int rc;

	rc = dt_kread(c, &vx, sizeof(vx));
	if (rc < 0)
		return rc;
	if (!(bpf_ntohl(vx.vx_flags) & DT_VXLAN_F_VNI)) {
		*c = save;
		return DT_PARSE_BAD;
	}
	return bpf_ntohl(vx.vx_vni) >> 8;
}

/* dt_parse_l4() for kernel memory: the same fields, the same rules, the same contract. */
static __always_inline int dt_kparse_l4(struct dt_kcursor *c, struct dt_pkt *pkt)
{
	struct dt_kcursor save = *c;
	struct icmphdr icmp;
	struct tcphdr tcp;
	struct udphdr udp;
	__u8 b[4] = {};
	__u32 n;
	int rc;

	if (pkt->frag_off & DT_IP_OFFSET)
		return 0;

	switch (pkt->tuple.proto) {
	case IPPROTO_TCP:
		rc = dt_kread(c, &tcp, sizeof(tcp));
		if (rc < 0)
			return rc;
		dt_pkt_tcp(pkt, &tcp);
		return 0;
	case IPPROTO_UDP:
		rc = dt_kparse_udphdr(c, &udp);
		if (rc < 0)
			return rc;
		n = dt_udp_ident_bytes(&udp);
		if (c->off + n > c->end) {
			*c = save;
			return DT_PARSE_SHORT;
		}
		if (n && bpf_probe_read_kernel(b, n, c->head + c->off)) {
			*c = save;
			return DT_PARSE_BAD;
		}
		dt_pkt_udp(pkt, &udp,
			   (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3]);
		return 0;
	case IPPROTO_ICMP:
		rc = dt_kread(c, &icmp, sizeof(icmp));
		if (rc < 0)
			return rc;
		dt_pkt_icmp(pkt, &icmp);
		return 0;
	default:
		return 0;
	}
}

#endif /* DT_KPARSE_H */
