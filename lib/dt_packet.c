/* SPDX-License-Identifier: MIT */
/*
 * dt_packet.c - test packets, byte by byte (dt_packet.h). Numbers come in host order and
 * are written in network order by dt_pkt_put16() and dt_pkt_put32() only.
 */
#include <netinet/in.h>
#include <string.h>

#include "dt_packet.h"

#define TCP_HDR_LEN 20 /* no options */
#define ICMP_HDR_LEN 8 /* type, code, checksum, and the echo identifier and sequence */

void dt_pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

void dt_pkt_put32(uint8_t *p, uint32_t v)
{
	dt_pkt_put16(p, v >> 16);
	dt_pkt_put16(p + 2, v & 0xffff);
}

uint16_t dt_pkt_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The one's-complement sum of p[0..n), folded to 16 bits; an odd last byte is padded. */
static uint16_t sum16(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += dt_pkt_get16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t dt_pkt_csum(const uint8_t *p, size_t n)
{
	return (uint16_t)~sum16(p, n);
}

/* A header with its checksum in place sums to 0xffff. */
bool dt_pkt_ip_csum_ok(const uint8_t *ip)
{
	return sum16(ip, (size_t)(ip[0] & 0x0f) * 4) == 0xffff;
}

size_t dt_pkt_l4_hdr_len(const struct dt_pkt *k)
{
	if (k->frag & DT_PKT_IP_OFFSET)
		return 0; /* a non-first fragment: payload only */
	switch (k->proto) {
	case IPPROTO_TCP:
		return TCP_HDR_LEN;
	case IPPROTO_UDP:
		return DT_PKT_UDP_LEN;
	case IPPROTO_ICMP:
		return ICMP_HDR_LEN;
	default:
		return 0;
	}
}

size_t dt_pkt_ip_len(const struct dt_pkt *k)
{
	return DT_PKT_IP_LEN + 4 * (size_t)k->opt_words + dt_pkt_l4_hdr_len(k) + k->payload;
}

uint8_t dt_pkt_payload_byte(const struct dt_pkt *k, size_t i)
{
	return (uint8_t)(i * k->fill_mul + k->fill_add);
}

/* Ethernet: destination, source (the defaults when all zero), EtherType IPv4. */
static size_t put_eth(uint8_t *p, const uint8_t dst[6], const uint8_t src[6])
{
	static const uint8_t zero[6], def_dst[6] = {0x02, 0, 0, 0, 0, 0x02},
				      def_src[6] = {0x02, 0, 0, 0, 0, 0x01};
	bool unset = !memcmp(dst, zero, 6) && !memcmp(src, zero, 6);

	memcpy(p, unset ? def_dst : dst, 6);
	memcpy(p + 6, unset ? def_src : src, 6);
	dt_pkt_put16(p + 12, 0x0800);
	return DT_PKT_ETH_LEN;
}

/*
 * IPv4 header: version 4, IHL with opt_words of NOP options, TOS 0, total length (header
 * and l4_len), id, flags and fragment offset, TTL 64, protocol, addresses, and the header
 * checksum over all of it. Returns the header's length.
 */
static size_t put_ip(uint8_t *p, uint8_t proto, uint32_t saddr, uint32_t daddr, uint16_t id,
		     uint16_t frag, uint8_t opt_words, size_t l4_len)
{
	size_t hlen = DT_PKT_IP_LEN + 4 * (size_t)opt_words;

	p[0] = 0x40 | (uint8_t)(hlen / 4);
	p[1] = 0;
	dt_pkt_put16(p + 2, (uint16_t)(hlen + l4_len));
	dt_pkt_put16(p + 4, id);
	dt_pkt_put16(p + 6, frag);
	p[8] = 64;
	p[9] = proto;
	dt_pkt_put16(p + 10, 0);
	dt_pkt_put32(p + 12, saddr);
	dt_pkt_put32(p + 16, daddr);
	memset(p + DT_PKT_IP_LEN, 1, hlen - DT_PKT_IP_LEN); /* NOP options */
	dt_pkt_put16(p + 10, dt_pkt_csum(p, hlen));
	return hlen;
}

/* k's L4 header at h (l4 bytes: 0 writes none); total is the L4 header and payload. */
static void put_l4(uint8_t *h, const struct dt_pkt *k, size_t l4, size_t total)
{
	memset(h, 0, l4);
	if (!l4)
		return;
	switch (k->proto) {
	case IPPROTO_TCP:
		dt_pkt_put16(h, k->sport);
		dt_pkt_put16(h + 2, k->dport);
		dt_pkt_put32(h + 4, k->seq);
		dt_pkt_put32(h + 8, k->ack);
		h[12] = 5 << 4; /* data offset: no options */
		h[13] = k->tcp_flags ? k->tcp_flags : DT_PKT_TCP_PSH | DT_PKT_TCP_ACK;
		dt_pkt_put16(h + 14, 64240); /* window */
		dt_pkt_put16(h + 16, k->l4_csum);
		break;
	case IPPROTO_UDP:
		dt_pkt_put16(h, k->sport);
		dt_pkt_put16(h + 2, k->dport);
		dt_pkt_put16(h + 4, (uint16_t)total);
		dt_pkt_put16(h + 6, k->l4_csum);
		break;
	case IPPROTO_ICMP:
		h[0] = k->icmp_type;
		dt_pkt_put16(h + 2, k->l4_csum);
		dt_pkt_put16(h + 4, k->sport);
		dt_pkt_put16(h + 6, (uint16_t)k->seq);
		break;
	}
}

/* The real checksum of the L4 header h and payload (total bytes) of k, in its field. */
static void put_l4_csum(uint8_t *h, const struct dt_pkt *k, size_t total)
{
	uint8_t pseudo[12];
	uint32_t sum;

	if (k->proto == IPPROTO_ICMP) {
		dt_pkt_put16(h + 2, dt_pkt_csum(h, total)); /* over header and payload */
		return;
	}
	if (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP)
		return;
	/* RFC 793/768: the pseudo header (addresses, zero, protocol, length), then the
	 * segment; one's complement sums of even-length parts add up. */
	dt_pkt_put32(pseudo, k->saddr);
	dt_pkt_put32(pseudo + 4, k->daddr);
	pseudo[8] = 0;
	pseudo[9] = k->proto;
	dt_pkt_put16(pseudo + 10, (uint16_t)total);
	sum = (uint32_t)sum16(pseudo, sizeof(pseudo)) + sum16(h, total);
	sum = (sum & 0xffff) + (sum >> 16);
	dt_pkt_put16(h + (k->proto == IPPROTO_TCP ? 16 : 6), (uint16_t)~sum);
}

size_t dt_pkt_ip(uint8_t *p, const struct dt_pkt *k)
{
	size_t l4 = dt_pkt_l4_hdr_len(k), total = l4 + k->payload, off;
	uint8_t *h;

	off = put_ip(p, k->proto, k->saddr, k->daddr, k->ip_id, k->frag, k->opt_words, total);
	h = p + off;
	put_l4(h, k, l4, total);
	for (size_t i = 0; i < k->payload; i++)
		h[l4 + i] = dt_pkt_payload_byte(k, i);
	if (l4 && k->csum)
		put_l4_csum(h, k, total);
	off += total;
	if (k->l4_cut)
		off -= total - k->l4_cut;
	return off;
}

size_t dt_pkt_frame(uint8_t *p, const struct dt_pkt *k)
{
	size_t off = put_eth(p, k->dst_mac, k->src_mac);

	return off + dt_pkt_ip(p + off, k);
}

size_t dt_pkt_vxlan(uint8_t *p, const struct dt_pkt_vxlan *o, const uint8_t *inner, size_t len)
{
	size_t udp_len = DT_PKT_UDP_LEN + DT_PKT_VXLAN_LEN + len, off;
	uint8_t *u;

	off = put_eth(p, o->dst_mac, o->src_mac);
	off += put_ip(p + off, o->proto, o->saddr, o->daddr, o->ip_id, o->frag, o->opt_words,
		      udp_len);
	u = p + off;
	dt_pkt_put16(u, o->sport);
	dt_pkt_put16(u + 2, o->dport);
	dt_pkt_put16(u + 4, (uint16_t)udp_len);
	dt_pkt_put16(u + 6, 0); /* no UDP checksum, as the kernel's VXLAN sends it */
	dt_pkt_put32(u + 8, o->vx_flags);
	dt_pkt_put32(u + 12, o->vni << 8); /* VNI, then a reserved byte */
	memcpy(u + DT_PKT_UDP_LEN + DT_PKT_VXLAN_LEN, inner, len);
	return off + udp_len;
}
