/* SPDX-License-Identifier: MIT */
/*
 * dt_packet.h - packets, byte by byte: the one packet builder of the BPF tests
 * (test/bpf/test_dataplane.c, test_inject.c), the pcapng tests (test/unit/test_pcapng.c),
 * the fast-path benchmark (bench/fastpath.c) and the probes the agent injects
 * (agent/inject.c).
 *
 * A packet is described by a struct with every number in host order; the builder writes
 * the bytes in network order. What it builds: Ethernet (IPv4 EtherType), IPv4 (options as
 * NOPs, a valid header checksum), then TCP, UDP or ICMP (echo layout) and a payload from a
 * simple pattern; and VXLAN, an outer Ethernet/IPv4/UDP/VXLAN around an inner frame. No
 * VLAN tags: no user needs one (the data plane does not parse them). Nothing here
 * allocates; the caller's buffer must hold the whole frame, even when l4_cut shortens it
 * (DT_PKT_ETH_LEN + dt_pkt_ip_len()).
 */
#ifndef DT_PACKET_H
#define DT_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_PKT_ETH_LEN 14 /* Ethernet header, no VLAN tag */
#define DT_PKT_IP_LEN 20  /* IPv4 header without options */
#define DT_PKT_UDP_LEN 8
#define DT_PKT_VXLAN_LEN 8 /* the VXLAN header after the outer UDP header */

/* IPv4 flags in the 16-bit flags and fragment offset field (host order). */
#define DT_PKT_IP_RB 0x8000 /* the reserved bit: dyetrace's color (DT_COLOR_BIT) */
#define DT_PKT_IP_DF 0x4000
#define DT_PKT_IP_MF 0x2000
#define DT_PKT_IP_OFFSET 0x1fff /* the fragment offset, in 8-byte units */

/* TCP flags. */
#define DT_PKT_TCP_SYN 0x02
#define DT_PKT_TCP_RST 0x04
#define DT_PKT_TCP_PSH 0x08
#define DT_PKT_TCP_ACK 0x10

#define DT_PKT_VXLAN_I 0x08000000 /* the first VXLAN word with the I flag (VNI valid) */

/*
 * One packet: Ethernet, IPv4, an L4 header and a payload. A non-first fragment (an offset
 * in frag) has no L4 header, only the payload.
 */
struct dt_pkt {
	uint8_t dst_mac[6], src_mac[6]; /* all zero: 02:00:00:00:00:02 and 02:00:00:00:00:01 */
	uint32_t saddr, daddr;		/* IPv4 addresses */
	uint16_t ip_id;
	uint16_t frag;	       /* flags and offset: DT_PKT_IP_DF, _MF, _RB (the color), offset */
	uint8_t opt_words;     /* IPv4 options: this many 32-bit words of NOPs */
	uint8_t proto;	       /* IPPROTO_TCP, _UDP or _ICMP; any other: no L4 header */
	uint16_t sport, dport; /* TCP, UDP; ICMP: the echo identifier in sport */
	uint32_t seq;	       /* TCP sequence number; ICMP: the echo sequence (low 16 bits) */
	uint32_t ack;	       /* TCP acknowledgment number */
	uint8_t icmp_type;     /* ICMP type (code 0) */
	uint16_t l4_csum;      /* the L4 checksum field as written (the data plane ignores it) */
	bool csum;	       /* write the real L4 checksum instead of l4_csum: TCP and UDP
				* with the IPv4 pseudo header, ICMP over header and payload */
	uint8_t tcp_flags;     /* TCP flags byte; 0: PSH ACK (DT_PKT_TCP_*) */
	uint16_t payload;      /* payload bytes after the L4 header */
	uint8_t fill_mul, fill_add; /* payload byte i is (uint8_t)(i * fill_mul + fill_add) */
	uint8_t l4_cut;		    /* nonzero: the frame ends this many bytes into the L4 header */
};

/* The encapsulation of a frame on the underlay: Ethernet, IPv4, UDP (checksum 0), VXLAN. */
struct dt_pkt_vxlan {
	uint8_t dst_mac[6], src_mac[6]; /* all zero: as in struct dt_pkt */
	uint32_t saddr, daddr;
	uint16_t ip_id;
	uint16_t frag;
	uint8_t opt_words;
	uint8_t proto; /* the outer IPv4 protocol: IPPROTO_UDP, or another to test a refusal */
	uint16_t sport, dport; /* UDP ports: DT_VXLAN_PORT (4789) is VXLAN's */
	uint32_t vx_flags;     /* the first VXLAN word: DT_PKT_VXLAN_I */
	uint32_t vni;	       /* 24 bits */
};

/* Big-endian (network order) stores and load. */
void dt_pkt_put16(uint8_t *p, uint16_t v);
void dt_pkt_put32(uint8_t *p, uint32_t v);
uint16_t dt_pkt_get16(const uint8_t *p);

/* The Internet checksum of p[0..n) (RFC 1071): the value to store in a zeroed field. */
uint16_t dt_pkt_csum(const uint8_t *p, size_t n);

/* Whether the IPv4 header at ip (its length from IHL) has a valid checksum. */
bool dt_pkt_ip_csum_ok(const uint8_t *ip);

/* The L4 header's length in k: 20 (TCP), 8 (UDP, ICMP), 0 (a non-first fragment, other). */
size_t dt_pkt_l4_hdr_len(const struct dt_pkt *k);

/* The IPv4 total length of k, as its header says (l4_cut does not shorten it). */
size_t dt_pkt_ip_len(const struct dt_pkt *k);

/* Payload byte i of k. */
uint8_t dt_pkt_payload_byte(const struct dt_pkt *k, size_t i);

/*
 * The IPv4 packet of k at p, without Ethernet: header (TTL 64, checksum), L4 header and
 * payload. TCP: data offset 5, tcp_flags (PSH ACK by default), window 64240. UDP: its length. ICMP:
 * type, code 0, identifier, sequence. Cut at l4_cut. Returns its length.
 */
size_t dt_pkt_ip(uint8_t *p, const struct dt_pkt *k);

/* Ethernet (IPv4 EtherType) and dt_pkt_ip() of k at p. Returns the frame's length. */
size_t dt_pkt_frame(uint8_t *p, const struct dt_pkt *k);

/*
 * Outer Ethernet, IPv4, UDP and VXLAN of o around the frame inner[0..len) at p (p and inner
 * must not overlap). Returns the frame's length: 50 bytes + options + len.
 */
size_t dt_pkt_vxlan(uint8_t *p, const struct dt_pkt_vxlan *o, const uint8_t *inner, size_t len);

#endif /* DT_PACKET_H */
