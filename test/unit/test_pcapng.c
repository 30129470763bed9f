// SPDX-License-Identifier: MIT
/*
 * test_pcapng.c - a report's sampled packets as pcapng (report/export_pcapng.c).
 *
 * The fixture is a ping traced across two nodes: real Ethernet + IPv4 + ICMP echo frames
 * at the ports, the same frame inside outer Ethernet + IPv4 + UDP 4789 + VXLAN at the
 * uplinks (cut at DT_CAP_MAX bytes, as the agent cuts it), and the bare IPv4 packet at a
 * kernel drop. The exported file is checked twice: by a block walker below, which knows
 * the pcapng layout independently of the exporter, and by tshark, which must open it and
 * decode ICMP and VXLAN (packaging/setup.sh installs tshark; without it those tests fail).
 * A second fixture (make_copy_report) is a packet the overlay copied: its tree of hops, a
 * destination branch and a bystander's copy, every hop a packet of the file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dt_packet.h"
#include "export_pcapng.h"

#define T0 1700000001000000000ull
#define TASK_ID 7

/* ------------------------------------------------------------------------------------ */
/* Frames */

#define ICMP_IP_LEN 84			  /* IPv4 20 + ICMP 8 + 56 bytes of ping payload */
#define ICMP_FRAME_LEN (14 + ICMP_IP_LEN) /* 98 */
#define UPLINK_FRAME_LEN (14 + 20 + 8 + 8 + ICMP_FRAME_LEN) /* 148 */

/* The ping's frames: 10.100.0.1 -> 10.100.0.2, ICMP echo request id 7, sequence seq,
 * colored (the reserved bit set) with DF, and ping's 56 bytes of payload (08 09 0a ...);
 * 02:00:5e:10:00:01 -> 02:00:5e:10:00:02. */
static struct dt_pkt ping(uint16_t ip_id, uint16_t seq)
{
	struct dt_pkt k = {
		.dst_mac = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x02},
		.src_mac = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01},
		.saddr = 0x0a640001,
		.daddr = 0x0a640002,
		.ip_id = ip_id,
		.frag = DT_PKT_IP_RB | DT_PKT_IP_DF,
		.proto = IPPROTO_ICMP,
		.icmp_type = 8, /* echo request */
		.sport = 7,
		.seq = seq,
		.csum = true,
		.payload = ICMP_IP_LEN - 28,
		.fill_mul = 1,
		.fill_add = 8, /* byte i of the ICMP message is i */
	};

	return k;
}

/* The ping on the underlay: 192.168.1.1 -> 192.168.1.2 UDP 4789, VXLAN VNI 100. */
static const struct dt_pkt_vxlan underlay = {
	.dst_mac = {0x02, 0x00, 0x5e, 0x10, 0x00, 0xb2},
	.src_mac = {0x02, 0x00, 0x5e, 0x10, 0x00, 0xb1},
	.saddr = 0xc0a80101,
	.daddr = 0xc0a80102,
	.ip_id = 0x4242,
	.frag = DT_PKT_IP_DF,
	.proto = IPPROTO_UDP,
	.sport = 51000,
	.dport = 4789,
	.vx_flags = DT_PKT_VXLAN_I,
	.vni = 100,
};

/* ------------------------------------------------------------------------------------ */
/* The fixture report */

enum cap { CAP_NONE, CAP_PORT, CAP_UPLINK, CAP_DROP, CAP_ENCAP_DROP };

/* Hop h of p; on the destination branch, after the hop before it (a chain), unless the
 * caller says otherwise. */
static void set_hop(struct dt_hop *h, const char *node, const char *ifname, uint8_t hook,
		    uint64_t ts, enum cap cap, const struct dt_packet_path *p, uint16_t seq)
{
	uint32_t k = (uint32_t)(h - p->hops);
	const struct dt_pkt pk = ping(p->ip_id, seq);
	uint8_t buf[UPLINK_FRAME_LEN], inner[ICMP_FRAME_LEN];

	memset(h, 0, sizeof(*h));
	h->parent = k ? (uint16_t)(k - 1) : DT_HOP_ROOT;
	snprintf(h->at.node, sizeof(h->at.node), "%s", node);
	snprintf(h->at.ifname, sizeof(h->at.ifname), "%s", ifname);
	h->at.hook = hook;
	h->ts_ns = ts;
	h->tuple = p->tuple;
	switch (cap) {
	case CAP_NONE:
		break;
	case CAP_PORT:
		dt_pkt_frame(buf, &pk);
		h->cap_link = DT_CAP_ETH;
		h->cap_len = ICMP_FRAME_LEN;
		break;
	case CAP_UPLINK:
		dt_pkt_vxlan(buf, &underlay, inner, dt_pkt_frame(inner, &pk));
		h->cap_link = DT_CAP_ETH;
		h->cap_len = DT_CAP_MAX; /* cut, as the agent cuts it */
		break;
	case CAP_DROP:
		dt_pkt_ip(buf, &pk);
		h->cap_link = DT_CAP_IPV4;
		h->cap_len = ICMP_IP_LEN;
		break;
	case CAP_ENCAP_DROP: /* the VXLAN packet dropped: from its outer IPv4 header */
		dt_pkt_vxlan(buf, &underlay, inner, dt_pkt_frame(inner, &pk));
		memmove(buf, buf + DT_PKT_ETH_LEN, sizeof(buf) - DT_PKT_ETH_LEN);
		h->cap_link = DT_CAP_IPV4;
		h->cap_len = DT_CAP_MAX;
		break;
	}
	memcpy(h->cap, buf, h->cap_len);
}

static void set_packet(struct dt_packet_path *p, uint16_t ip_id, uint8_t fate, uint32_t n_hops)
{
	memset(p, 0, sizeof(*p));
	p->ip_id = ip_id;
	p->ident = ip_id;
	p->len = ICMP_IP_LEN;
	p->direction = DT_DIR_REQUEST;
	p->fate = fate;
	p->datagram_fate = fate;
	p->tuple.saddr = htonl(0x0a640001);
	p->tuple.daddr = htonl(0x0a640002);
	p->tuple.sport = htons(7);
	p->tuple.proto = 1;
	p->tuple.vni = 100;
	p->n_hops = n_hops;
	p->hops = calloc(n_hops ? n_hops : 1, sizeof(*p->hops));
	cr_assert_not_null(p->hops);
}

static void make_task(struct dt_report *r)
{
	memset(r, 0, sizeof(*r));
	r->task.id = TASK_ID;
	r->task.state = DT_TASK_RUNNING;
	r->task.spec.flags = DT_TASK_F_ANYPORT;
	r->task.spec.tuple.saddr = htonl(0x0a640001);
	r->task.spec.tuple.daddr = htonl(0x0a640002);
	r->task.spec.tuple.proto = 1;
	r->task.spec.tuple.vni = 100;
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "1 of 2 packets dropped at h2/vxlan0, reason NETFILTER_DROP");
}

/*
 * Three packets, h2's clock 4 us behind h1's (its hops come out earlier than h1's
 * uplink-out):
 *   #0 ip_id 0x1a2b delivered: h1/pt1 port-in, h1/ul0 uplink-out, h2/ul0 uplink-in,
 *      h2/pt2 port-out
 *   #1 ip_id 0x1a2c dropped:   the same up to h2/ul0 uplink-in, then h2/vxlan0 drop
 *   #2 ip_id 0x1a2d vanished:  h1/pt1 port-in (at the same time as #1's), h1/ul0
 *      uplink-out, nothing captured at either
 *   #3 ip_id 0x1a2e dropped:   h1/pt1 port-in, then dropped encapsulated at h1/ul0 by a
 *      reason without a name or a place
 */
static void make_report(struct dt_report *r)
{
	struct dt_packet_path *p;

	make_task(r);
	r->n_packets = 4;
	r->packets = calloc(4, sizeof(*r->packets));
	cr_assert_not_null(r->packets);

	p = &r->packets[0];
	set_packet(p, 0x1a2b, DT_FATE_DELIVERED, 4);
	set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, T0, CAP_PORT, p, 1);
	set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT, T0 + 10000, CAP_UPLINK, p, 1);
	set_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN, T0 + 6000, CAP_UPLINK, p, 1);
	set_hop(&p->hops[3], "h2", "pt2", DT_HOOK_PORT_OUT, T0 + 9000, CAP_PORT, p, 1);

	p = &r->packets[1];
	set_packet(p, 0x1a2c, DT_FATE_DROPPED, 4);
	p->drop_reason = 6;
	snprintf(p->drop_name, sizeof(p->drop_name), "NETFILTER_DROP");
	snprintf(p->drop_where, sizeof(p->drop_where), "nf_hook_slow+0x8c");
	set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, T0 + 5000, CAP_PORT, p, 2);
	set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT, T0 + 15000, CAP_UPLINK, p, 2);
	set_hop(&p->hops[2], "h2", "ul0", DT_HOOK_UPLINK_IN, T0 + 11000, CAP_UPLINK, p, 2);
	set_hop(&p->hops[3], "h2", "vxlan0", DT_HOOK_DROP, T0 + 11500, CAP_DROP, p, 2);

	p = &r->packets[2];
	set_packet(p, 0x1a2d, DT_FATE_VANISHED, 2);
	set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, T0 + 5000, CAP_NONE, p, 3);
	set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT, T0 + 20000, CAP_NONE, p, 3);

	p = &r->packets[3];
	set_packet(p, 0x1a2e, DT_FATE_DROPPED, 2);
	p->drop_reason = 2;
	set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, T0 + 30000, CAP_PORT, p, 4);
	set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_DROP, T0 + 30500, CAP_ENCAP_DROP, p, 4);
}

/*
 * A packet the overlay copied, on a flood lab of three hosts: i1 on h1 pings i3 on h3, and
 * h1's VXLAN device sends each request once per peer. Hops in the report's depth-first
 * order, the destination branch first:
 *   1 h1/pt1 port-in        T0
 *   2 h1/ul0 uplink-out     T0 + 20 us, after 1 (the copy to h3)
 *   3 h3/ul0 uplink-in      T0 + 50 us, after 2
 *   4 h3/pt1 port-out       T0 + 60 us, after 3: delivered
 *   5 h1/ul0 uplink-out     T0 + 25 us, after 1 (the copy to h2)
 *   6 h2/ul0 uplink-in      T0 + 55 us, after 5
 *   7 h2/br0 drop           T0 + 58 us, after 6: h2's bridge filtered the copy
 */
static void make_copy_report(struct dt_report *r)
{
	struct dt_packet_path *p;
	struct dt_hop *h;

	make_task(r);
	r->task.spec.tuple.daddr = htonl(0x0a640003);
	snprintf(r->verdict.sentence, sizeof(r->verdict.sentence),
		 "no loss: 1 of 1 packets delivered");
	r->n_packets = 1;
	r->packets = calloc(1, sizeof(*r->packets));
	cr_assert_not_null(r->packets);
	p = &r->packets[0];
	set_packet(p, 0x1a30, DT_FATE_DELIVERED, 7);
	p->tuple.daddr = htonl(0x0a640003);
	p->dest_known = 1;
	p->n_copies = 1;
	set_hop(&p->hops[0], "h1", "pt1", DT_HOOK_PORT_IN, T0, CAP_PORT, p, 1);
	set_hop(&p->hops[1], "h1", "ul0", DT_HOOK_UPLINK_OUT, T0 + 20000, CAP_UPLINK, p, 1);
	set_hop(&p->hops[2], "h3", "ul0", DT_HOOK_UPLINK_IN, T0 + 50000, CAP_UPLINK, p, 1);
	set_hop(&p->hops[3], "h3", "pt1", DT_HOOK_PORT_OUT, T0 + 60000, CAP_PORT, p, 1);
	set_hop(&p->hops[4], "h1", "ul0", DT_HOOK_UPLINK_OUT, T0 + 25000, CAP_UPLINK, p, 1);
	set_hop(&p->hops[5], "h2", "ul0", DT_HOOK_UPLINK_IN, T0 + 55000, CAP_UPLINK, p, 1);
	set_hop(&p->hops[6], "h2", "br0", DT_HOOK_DROP, T0 + 58000, CAP_DROP, p, 1);
	p->hops[4].parent = 0;
	for (uint32_t k = 4; k < 7; k++) {
		p->hops[k].branch = DT_BRANCH_COPY;
	}
	h = &p->hops[6];
	h->copy_end = DT_COPY_FILTERED;
	h->drop_reason = 2;
	snprintf(h->drop_name, sizeof(h->drop_name), "NOT_SPECIFIED");
	snprintf(h->drop_where, sizeof(h->drop_where), "br_handle_frame_finish+0x1c5");
}

/* The copy fixture's packets in file (time) order: hop index and comment. */
static const struct {
	uint32_t hop;
	const char *iface;
	const char *comment;
} want_copy_packets[] = {
	{0, "h1/pt1",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 1/7 h1/pt1 port-in, branch destination"},
	{1, "h1/ul0",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 2/7 h1/ul0 uplink-out, after hop 1, "
	 "branch destination"},
	{4, "h1/ul0",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 5/7 h1/ul0 uplink-out, after hop 1, "
	 "branch copy"},
	{2, "h3/ul0",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 3/7 h3/ul0 uplink-in, after hop 2, "
	 "branch destination"},
	{5, "h2/ul0",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 6/7 h2/ul0 uplink-in, after hop 5, "
	 "branch copy"},
	{6, "h2/br0",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 7/7 h2/br0 drop, after hop 6, branch "
	 "copy (filtered, NOT_SPECIFIED at br_handle_frame_finish+0x1c5)"},
	{3, "h3/pt1",
	 "dyetrace task 7 request packet ip_id 0x1a30 hop 4/7 h3/pt1 port-out, after hop 3, "
	 "branch destination; fate: delivered"},
};

#define N_WANT_COPY_PACKETS (sizeof(want_copy_packets) / sizeof(want_copy_packets[0]))

static void free_report(struct dt_report *r)
{
	uint32_t i;

	for (i = 0; i < r->n_packets; i++) {
		free(r->packets[i].hops);
	}
	free(r->packets);
	memset(r, 0, sizeof(*r));
}

/* What the file must hold, in file order. */
static const struct {
	const char *name;
	uint16_t linktype;
	const char *desc;
} want_ifaces[] = {
	{"h1/pt1", 1, "node h1, interface pt1, hook port-in, Ethernet"},
	{"h2/ul0", 1, "node h2, interface ul0, hook uplink-in, Ethernet"},
	{"h2/pt2", 1, "node h2, interface pt2, hook port-out, Ethernet"},
	{"h1/ul0", 1, "node h1, interface ul0, hook uplink-out, Ethernet"},
	{"h2/vxlan0", 101, "node h2, interface vxlan0, hook drop, raw IPv4"},
	{"h1/ul0", 101, "node h1, interface ul0, hook drop, raw IPv4"},
};

static const struct {
	uint32_t pkt, hop, iface;
	uint64_t ts;
	uint32_t caplen, origlen, flags;
	const char *comment;
} want_packets[] = {
	{0, 0, 0, T0, 98, 98, 1,
	 "dyetrace task 7 request packet ip_id 0x1a2b hop 1/4 h1/pt1 port-in, branch destination"},
	{1, 0, 0, T0 + 5000, 98, 98, 1,
	 "dyetrace task 7 request packet ip_id 0x1a2c hop 1/4 h1/pt1 port-in, branch destination"},
	{2, 0, 0, T0 + 5000, 0, 98, 1,
	 "dyetrace task 7 request packet ip_id 0x1a2d hop 1/2 h1/pt1 port-in, branch destination"},
	{0, 2, 1, T0 + 6000, 128, 148, 1,
	 "dyetrace task 7 request packet ip_id 0x1a2b hop 3/4 h2/ul0 uplink-in, after hop 2, "
	 "branch destination"},
	{0, 3, 2, T0 + 9000, 98, 98, 2,
	 "dyetrace task 7 request packet ip_id 0x1a2b hop 4/4 h2/pt2 port-out, after hop 3, "
	 "branch destination; fate: delivered"},
	{0, 1, 3, T0 + 10000, 128, 148, 2,
	 "dyetrace task 7 request packet ip_id 0x1a2b hop 2/4 h1/ul0 uplink-out, after hop 1, "
	 "branch destination"},
	{1, 2, 1, T0 + 11000, 128, 148, 1,
	 "dyetrace task 7 request packet ip_id 0x1a2c hop 3/4 h2/ul0 uplink-in, after hop 2, "
	 "branch destination"},
	{1, 3, 4, T0 + 11500, 84, 84, 0,
	 "dyetrace task 7 request packet ip_id 0x1a2c hop 4/4 h2/vxlan0 drop, after hop 3, "
	 "branch destination; dropped: NETFILTER_DROP at nf_hook_slow+0x8c"},
	{1, 1, 3, T0 + 15000, 128, 148, 2,
	 "dyetrace task 7 request packet ip_id 0x1a2c hop 2/4 h1/ul0 uplink-out, after hop 1, "
	 "branch destination"},
	{2, 1, 3, T0 + 20000, 0, 148, 2,
	 "dyetrace task 7 request packet ip_id 0x1a2d hop 2/2 h1/ul0 uplink-out, after hop 1, "
	 "branch destination; fate: vanished"},
	{3, 0, 0, T0 + 30000, 98, 98, 1,
	 "dyetrace task 7 request packet ip_id 0x1a2e hop 1/2 h1/pt1 port-in, branch destination"},
	/* Bytes on the wire from the outer IPv4 header, not the tenant packet's 84. */
	{3, 1, 5, T0 + 30500, 128, 134, 0,
	 "dyetrace task 7 request packet ip_id 0x1a2e hop 2/2 h1/ul0 drop, after hop 1, "
	 "branch destination; dropped: reason 2"},
};

#define N_WANT_IFACES (sizeof(want_ifaces) / sizeof(want_ifaces[0]))
#define N_WANT_PACKETS (sizeof(want_packets) / sizeof(want_packets[0]))

/* ------------------------------------------------------------------------------------ */
/* A pcapng reader (little-endian sections only, which is what the exporter writes) */

#define MAX_IFACES 8
#define MAX_PACKETS 2048

struct idb {
	uint16_t linktype;
	uint32_t snaplen;
	char name[256];
	char desc[256];
	int tsresol; /* -1: none */
};

struct epb {
	uint32_t iface;
	uint64_t ts;
	uint32_t caplen, origlen;
	uint8_t data[256];
	char comment[512];
	bool has_flags;
	uint32_t flags;
};

struct pcapng {
	char userappl[64];
	char shb_comment[512];
	uint32_t n_idb;
	struct idb idb[MAX_IFACES];
	uint32_t n_epb;
	struct epb *epb; /* MAX_PACKETS */
	uint32_t n_other;
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void opt_str(char *dst, size_t size, const uint8_t *v, uint16_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* Walks the options in [p, end): each padded to 4, the last one opt_endofopt. Calls back
 * with each option. Returns false when they do not fit or do not end properly. */
static bool walk_opts(const uint8_t *p, const uint8_t *end, void *ctx,
		      void (*cb)(void *ctx, uint16_t code, const uint8_t *v, uint16_t len))
{
	while (end - p >= 4) {
		uint16_t code = le16(p), len = le16(p + 2);
		size_t padded = (len + 3u) & ~3u;

		p += 4;
		if (code == 0) {
			return len == 0 && p == end;
		}
		if ((size_t)(end - p) < padded) {
			return false;
		}
		cb(ctx, code, p, len);
		p += padded;
	}
	return false;
}

static void shb_opt(void *ctx, uint16_t code, const uint8_t *v, uint16_t len)
{
	struct pcapng *c = ctx;

	if (code == 4) {
		opt_str(c->userappl, sizeof(c->userappl), v, len);
	} else if (code == 1) {
		opt_str(c->shb_comment, sizeof(c->shb_comment), v, len);
	}
}

static void idb_opt(void *ctx, uint16_t code, const uint8_t *v, uint16_t len)
{
	struct idb *i = ctx;

	if (code == 2) {
		opt_str(i->name, sizeof(i->name), v, len);
	} else if (code == 3) {
		opt_str(i->desc, sizeof(i->desc), v, len);
	} else if (code == 9 && len == 1) {
		i->tsresol = v[0];
	}
}

static void epb_opt(void *ctx, uint16_t code, const uint8_t *v, uint16_t len)
{
	struct epb *e = ctx;

	if (code == 1) {
		opt_str(e->comment, sizeof(e->comment), v, len);
	} else if (code == 2 && len == 4) {
		e->has_flags = true;
		e->flags = le32(v);
	}
}

/* Reads a whole file into c; false (with a message) when it is not well-formed pcapng. */
static bool parse(const char *path, struct pcapng *c)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n, off = 0;
	bool first = true;

	memset(c, 0, sizeof(*c));
	c->epb = calloc(MAX_PACKETS, sizeof(*c->epb));
	cr_assert_not_null(c->epb);
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	cr_assert(feof(f), "%s: too large for the test reader", path);
	fclose(f);
	if (n % 4 != 0) {
		cr_log_error("file length %zu is not a multiple of 4", n);
		return false;
	}
	while (off < n) {
		const uint8_t *b = buf + off;
		uint32_t type, len;

		if (n - off < 12) {
			cr_log_error("block at %zu: truncated", off);
			return false;
		}
		type = le32(b);
		len = le32(b + 4);
		if (len < 12 || len % 4 != 0 || len > n - off) {
			cr_log_error("block at %zu: bad length %u", off, len);
			return false;
		}
		if (le32(b + len - 4) != len) {
			cr_log_error("block at %zu: trailing length %u, not %u", off,
				     le32(b + len - 4), len);
			return false;
		}
		if (first != (type == 0x0a0d0d0a)) {
			cr_log_error("block at %zu: type %#x (a section header first, once)", off,
				     type);
			return false;
		}
		first = false;
		switch (type) {
		case 0x0a0d0d0a:
			if (len < 28 || memcmp(b + 8, "\x4d\x3c\x2b\x1a", 4) != 0 ||
			    le16(b + 12) != 1 || le16(b + 14) != 0) {
				cr_log_error("bad section header");
				return false;
			}
			if (!walk_opts(b + 24, b + len - 4, c, shb_opt)) {
				cr_log_error("bad section header options");
				return false;
			}
			break;
		case 1: {
			struct idb *i = &c->idb[c->n_idb];

			if (len < 20 || c->n_idb == MAX_IFACES) {
				cr_log_error("bad or too many interface blocks");
				return false;
			}
			i->linktype = le16(b + 8);
			i->snaplen = le32(b + 12);
			i->tsresol = -1;
			if (!walk_opts(b + 16, b + len - 4, i, idb_opt)) {
				cr_log_error("bad interface options");
				return false;
			}
			c->n_idb++;
			break;
		}
		case 6: {
			struct epb *e = &c->epb[c->n_epb];
			uint32_t data_end;

			if (len < 32 || c->n_epb == MAX_PACKETS) {
				cr_log_error("bad or too many packet blocks");
				return false;
			}
			e->iface = le32(b + 8);
			e->ts = (uint64_t)le32(b + 12) << 32 | le32(b + 16);
			e->caplen = le32(b + 20);
			e->origlen = le32(b + 24);
			data_end = 28 + ((e->caplen + 3) & ~3u);
			if (e->caplen > sizeof(e->data) || data_end > len - 4) {
				cr_log_error("packet %u: captured length %u does not fit", c->n_epb,
					     e->caplen);
				return false;
			}
			if (e->iface >= c->n_idb) {
				cr_log_error("packet %u: interface %u not described before it",
					     c->n_epb, e->iface);
				return false;
			}
			memcpy(e->data, b + 28, e->caplen);
			if (!walk_opts(b + data_end, b + len - 4, e, epb_opt)) {
				cr_log_error("packet %u: bad options", c->n_epb);
				return false;
			}
			c->n_epb++;
			break;
		}
		default:
			c->n_other++;
			break;
		}
		off += len;
	}
	if (first) {
		cr_log_error("empty file");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------------------ */
/* Helpers */

static void export_to(const char *path, const struct dt_report *r)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(dt_export_pcapng(f, r), 0);
	cr_assert_eq(fclose(f), 0);
}

/* The test's temporary file, removed by its .fini even when an assertion failed. */
static char temp[64];

static const char *temp_path(void)
{
	int fd;

	snprintf(temp, sizeof(temp), "/tmp/dt_pcapng_XXXXXX");
	fd = mkstemp(temp);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	close(fd);
	return temp;
}

static void remove_temp(void)
{
	char err[sizeof(temp) + 4];

	if (temp[0]) {
		snprintf(err, sizeof(err), "%s.err", temp);
		unlink(temp);
		unlink(err);
		temp[0] = '\0';
	}
}

static bool have_tshark(void)
{
	return system("command -v tshark >/dev/null 2>&1") == 0;
}

/* Runs tshark on path with args; its stdout into out (NUL-terminated). Returns its exit
 * status, or -1 when it did not exit or complained on stderr (shown in the log). */
static int tshark(const char *path, const char *args, char *out, size_t size)
{
	char cmd[1024], errpath[sizeof(temp) + 4], err[4096] = "";
	size_t n = 0, k;
	FILE *p, *e;
	int st;

	snprintf(errpath, sizeof(errpath), "%s.err", path);
	snprintf(cmd, sizeof(cmd), "tshark -n -r '%s' %s 2>'%s'", path, args, errpath);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen: %s", strerror(errno));
	while (n + 1 < size && (k = fread(out + n, 1, size - 1 - n, p)) > 0) {
		n += k;
	}
	out[n] = '\0';
	st = pclose(p);
	e = fopen(errpath, "r");
	if (e) {
		k = fread(err, 1, sizeof(err) - 1, e);
		err[k] = '\0';
		fclose(e);
	}
	unlink(errpath);
	/* Its only expected complaint: "Running as user "root" and group "root"..." */
	if (strstr(err, "corrupt") || strstr(err, "damaged") || strstr(err, "rror")) {
		cr_log_error("tshark %s: %s", args, err);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		n += *s == '\n';
	}
	return n;
}

/* ------------------------------------------------------------------------------------ */

Test(pcapng, blocks, .fini = remove_temp)
{
	struct dt_report r;
	struct pcapng c;
	const char *path;
	uint32_t i;

	make_report(&r);
	path = temp_path();
	export_to(path, &r);
	cr_assert(parse(path, &c), "%s is not well-formed pcapng", path);

	cr_expect_str_eq(c.userappl, "dyetrace");
	cr_expect_not_null(strstr(c.shb_comment, "dyetrace report of task 7 (10.100.0.1 -> "
						 "10.100.0.2 icmp vni 100): 1 of 2 packets"),
			   "%s", c.shb_comment);
	cr_expect_eq(c.n_other, 0);

	cr_assert_eq(c.n_idb, N_WANT_IFACES);
	for (i = 0; i < c.n_idb; i++) {
		cr_expect_str_eq(c.idb[i].name, want_ifaces[i].name, "interface %u", i);
		cr_expect_str_eq(c.idb[i].desc, want_ifaces[i].desc, "interface %u", i);
		cr_expect_eq(c.idb[i].linktype, want_ifaces[i].linktype, "interface %u", i);
		cr_expect_eq(c.idb[i].snaplen, DT_CAP_MAX);
		cr_expect_eq(c.idb[i].tsresol, 9, "interface %u: nanoseconds", i);
	}

	cr_assert_eq(c.n_epb, N_WANT_PACKETS);
	for (i = 0; i < c.n_epb; i++) {
		const struct epb *e = &c.epb[i];
		const struct dt_hop *h = &r.packets[want_packets[i].pkt].hops[want_packets[i].hop];

		cr_expect_eq(e->iface, want_packets[i].iface, "packet %u", i);
		cr_expect_eq(e->ts, want_packets[i].ts, "packet %u", i);
		cr_expect_eq(e->ts, h->ts_ns, "packet %u", i);
		cr_expect_eq(e->caplen, want_packets[i].caplen, "packet %u", i);
		cr_expect_eq(e->origlen, want_packets[i].origlen, "packet %u", i);
		cr_expect_geq(e->origlen, e->caplen, "packet %u", i);
		cr_expect_eq(e->caplen, h->cap_len, "packet %u", i);
		cr_expect_eq(memcmp(e->data, h->cap, e->caplen), 0, "packet %u: its bytes", i);
		cr_expect_str_eq(e->comment, want_packets[i].comment, "packet %u", i);
		cr_expect_eq(e->has_flags, want_packets[i].flags != 0, "packet %u", i);
		cr_expect_eq(e->flags, want_packets[i].flags, "packet %u", i);
		if (i > 0) {
			cr_expect_geq(e->ts, c.epb[i - 1].ts, "packet %u: in time order", i);
		}
	}
	free(c.epb);
	free_report(&r);
}

Test(pcapng, tshark_reads_it, .fini = remove_temp)
{
	static char out[65536];
	struct dt_report r;
	const char *path;
	char *line;
	size_t i, drops = 0;

	cr_assert(have_tshark(), "tshark is not installed (packaging/setup.sh deps installs it)");
	make_report(&r);
	path = temp_path();
	export_to(path, &r);

	cr_assert_eq(tshark(path, "-T fields -e frame.interface_name -e frame.comment", out,
			    sizeof(out)),
		     0);
	cr_assert_eq(count_lines(out), N_WANT_PACKETS, "%s", out);
	line = out;
	for (i = 0; i < N_WANT_PACKETS; i++) {
		char *nl = strchr(line, '\n'), *tab = strchr(line, '\t');

		cr_assert(nl && tab && tab < nl, "line %zu: %s", i, line);
		*nl = *tab = '\0';
		cr_expect_str_eq(line, want_ifaces[want_packets[i].iface].name, "packet %zu", i);
		cr_expect_str_eq(tab + 1, want_packets[i].comment, "packet %zu", i);
		drops += strstr(tab + 1, "dropped: NETFILTER_DROP at nf_hook_slow+0x8c") != NULL;
		line = nl + 1;
	}
	cr_expect_eq(drops, 1);

	/* Every frame that holds the ICMP header: all but the two with nothing captured. */
	cr_assert_eq(tshark(path, "-Y icmp -T fields -e icmp.type -e ip.id", out, sizeof(out)), 0);
	cr_expect_eq(count_lines(out), N_WANT_PACKETS - 2, "%s", out);
	cr_expect_not_null(strstr(out, "8\t0x1a2c\n"), "%s", out);

	/* The uplink frames and the encapsulated drop: VXLAN around the tenant's frame, outer
	 * and inner IPv4. */
	cr_assert_eq(tshark(path, "-Y vxlan -T fields -e vxlan.vni -e ip.src -e frame.len", out,
			    sizeof(out)),
		     0);
	cr_expect_eq(count_lines(out), 5, "%s", out);
	cr_expect_eq(strncmp(out, "100\t192.168.1.1,10.100.0.1\t148\n", 31), 0, "%s", out);
	cr_expect_not_null(strstr(out, "\n100\t192.168.1.1,10.100.0.1\t134\n"), "%s", out);

	/* Bytes on the wire and captured, and the drop's raw IPv4. */
	cr_assert_eq(
		tshark(path,
		       "-Y \"frame.interface_name == \\\"h2/vxlan0\\\"\" -T fields "
		       "-e frame.len -e frame.cap_len -e ip.dst -e frame.interface_description",
		       out, sizeof(out)),
		0);
	cr_expect_str_eq(out,
			 "84\t84\t10.100.0.2\tnode h2, interface vxlan0, hook drop, raw IPv4\n");

	free_report(&r);
}

Test(pcapng, empty_report, .fini = remove_temp)
{
	static char out[4096];
	struct dt_report r;
	struct pcapng c;
	const char *path;

	make_task(&r);
	path = temp_path();
	export_to(path, &r);
	cr_assert(parse(path, &c), "%s is not well-formed pcapng", path);
	cr_expect_eq(c.n_idb, 0);
	cr_expect_eq(c.n_epb, 0);
	cr_expect_str_eq(c.userappl, "dyetrace");
	free(c.epb);

	cr_assert(have_tshark(), "tshark is not installed (packaging/setup.sh deps installs it)");
	cr_expect_eq(tshark(path, "-T fields -e frame.number", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "");
}

/* Many packets whose hops are out of time order: the file has every hop once, in time
 * order, ties in report order. */
Test(pcapng, time_order, .fini = remove_temp)
{
	enum { N = 300, HOPS = 6 };
	struct dt_report r;
	struct pcapng c;
	const char *path;
	uint32_t seed = 12345, i, k, total = 0;
	static bool seen[N][HOPS];

	make_task(&r);
	r.n_packets = N;
	r.packets = calloc(N, sizeof(*r.packets));
	cr_assert_not_null(r.packets);
	for (i = 0; i < N; i++) {
		struct dt_packet_path *p = &r.packets[i];

		set_packet(p, (uint16_t)i, DT_FATE_DELIVERED, 1 + i % HOPS);
		for (k = 0; k < p->n_hops; k++) {
			char ifname[DT_IFNAME_MAX];

			seed = seed * 1103515245u + 12345u;
			snprintf(ifname, sizeof(ifname), "if%u", k);
			/* Few distinct times: many ties, across and within packets. */
			set_hop(&p->hops[k], k % 2 ? "h2" : "h1", ifname, DT_HOOK_PORT_IN,
				T0 + (seed >> 16) % 50, CAP_NONE, p, 0);
		}
		total += p->n_hops;
	}
	path = temp_path();
	export_to(path, &r);
	cr_assert(parse(path, &c));
	cr_assert_eq(c.n_epb, total);
	cr_expect_eq(c.n_idb, HOPS);
	for (i = 0; i < c.n_epb; i++) {
		unsigned int id, hop, n;

		cr_assert_eq(sscanf(c.epb[i].comment,
				    "dyetrace task 7 request packet ip_id %x hop %u/%u", &id, &hop,
				    &n),
			     3, "%s", c.epb[i].comment);
		cr_assert(id < N && hop >= 1 && hop <= HOPS);
		cr_expect_not(seen[id][hop - 1], "packet %u hop %u twice", id, hop);
		seen[id][hop - 1] = true;
		cr_expect_eq(c.epb[i].ts, r.packets[id].hops[hop - 1].ts_ns);
		if (i > 0 && c.epb[i].ts == c.epb[i - 1].ts) {
			unsigned int pid, phop;

			cr_assert_eq(sscanf(c.epb[i - 1].comment,
					    "dyetrace task 7 request packet ip_id %x hop %u", &pid,
					    &phop),
				     2);
			cr_expect(pid < id || (pid == id && phop < hop),
				  "a tie out of report order at %u", i);
		}
		if (i > 0) {
			cr_expect_geq(c.epb[i].ts, c.epb[i - 1].ts, "out of time order at %u", i);
		}
	}
	free(c.epb);
	free_report(&r);
}

Test(pcapng, write_failure)
{
	struct dt_report r;
	FILE *f;

	make_report(&r);
	/* Buffered: the error shows when the exporter flushes. */
	f = fopen("/dev/full", "w");
	cr_assert_not_null(f);
	cr_expect_eq(dt_export_pcapng(f, &r), -EIO);
	fclose(f);
	/* Unbuffered: the first fwrite fails. */
	f = fopen("/dev/full", "w");
	cr_assert_not_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	cr_expect_eq(dt_export_pcapng(f, &r), -EIO);
	fclose(f);
	free_report(&r);
}

static size_t export_len(const struct dt_report *r, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	*rc = dt_export_pcapng(f, r);
	cr_assert_eq(fclose(f), 0);
	free(buf);
	return len;
}

Test(pcapng, refuses_bad_reports)
{
	struct dt_report r;
	int rc;

	make_report(&r);
	r.packets[1].hops[2].cap_len = DT_CAP_MAX + 1;
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[1].hops[2].cap_len = 0; /* with a link type: not what the decoder gives */
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[1].hops[2].cap_len = 10;
	r.packets[1].hops[2].cap_link = 3;
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[1].hops[2].cap_link = DT_CAP_ETH;
	cr_expect_gt(export_len(&r, &rc), 0);
	cr_expect_eq(rc, 0);
	free_report(&r);
}

Test(pcapng, too_many_interfaces)
{
	enum { PER = DT_REPORT_MAX_HOPS };
	const uint32_t n = DT_PCAPNG_MAX_IFACES / PER + 1;
	struct dt_report r;
	uint32_t i, k;
	int rc;

	make_task(&r);
	r.n_packets = n;
	r.packets = calloc(n, sizeof(*r.packets));
	cr_assert_not_null(r.packets);
	for (i = 0; i < n; i++) {
		struct dt_packet_path *p = &r.packets[i];

		set_packet(p, (uint16_t)i, DT_FATE_DELIVERED, PER);
		for (k = 0; k < PER; k++) {
			char ifname[DT_IFNAME_MAX];

			snprintf(ifname, sizeof(ifname), "if%u", i * PER + k);
			set_hop(&p->hops[k], "h1", ifname, DT_HOOK_PORT_OUT, T0 + k, CAP_NONE, p,
				0);
		}
	}
	/* DT_PCAPNG_MAX_IFACES + 1 interfaces */
	r.packets[n - 1].n_hops = 1;
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -E2BIG);
	/* One interface fewer fits. */
	r.packets[n - 1].n_hops = 0;
	cr_expect_gt(export_len(&r, &rc), 0);
	cr_expect_eq(rc, 0);
	free_report(&r);
}

/* Every hop of every copy is a packet of the file, its comment naming its branch and parent;
 * the fate is on the destination branch's last hop, the copy's end on the copy's. */
Test(pcapng, copies, .fini = remove_temp)
{
	static char out[65536];
	struct dt_report r;
	struct pcapng c;
	const char *path;
	char *line;
	uint32_t i;

	make_copy_report(&r);
	path = temp_path();
	export_to(path, &r);
	cr_assert(parse(path, &c), "%s is not well-formed pcapng", path);
	cr_assert_eq(c.n_epb, N_WANT_COPY_PACKETS, "one packet per hop, copies too");
	/* h1/ul0 uplink-out is one interface for both copies; 6 places in all. */
	cr_expect_eq(c.n_idb, 6);
	for (i = 0; i < c.n_epb; i++) {
		const struct dt_hop *h = &r.packets[0].hops[want_copy_packets[i].hop];

		cr_expect_str_eq(c.epb[i].comment, want_copy_packets[i].comment, "packet %u", i);
		cr_expect_str_eq(c.idb[c.epb[i].iface].name, want_copy_packets[i].iface,
				 "packet %u", i);
		cr_expect_eq(c.epb[i].ts, h->ts_ns, "packet %u", i);
		cr_expect_eq(c.epb[i].caplen, h->cap_len, "packet %u", i);
	}
	free(c.epb);

	cr_assert(have_tshark(), "tshark is not installed (packaging/setup.sh deps installs it)");
	cr_assert_eq(tshark(path, "-T fields -e frame.interface_name -e frame.comment", out,
			    sizeof(out)),
		     0);
	cr_assert_eq(count_lines(out), N_WANT_COPY_PACKETS, "%s", out);
	line = out;
	for (i = 0; i < N_WANT_COPY_PACKETS; i++) {
		char *nl = strchr(line, '\n'), *tab = strchr(line, '\t');

		cr_assert(nl && tab && tab < nl, "line %u: %s", i, line);
		*nl = *tab = '\0';
		cr_expect_str_eq(line, want_copy_packets[i].iface, "packet %u", i);
		cr_expect_str_eq(tab + 1, want_copy_packets[i].comment, "packet %u", i);
		line = nl + 1;
	}
	/* The filters the header documents: the copies, and no drop of the packet's. */
	cr_assert_eq(tshark(path,
			    "-Y 'frame.comment contains \"branch copy\"' -T fields -e frame.number",
			    out, sizeof(out)),
		     0);
	cr_expect_str_eq(out, "3\n5\n6\n");
	cr_assert_eq(tshark(path,
			    "-Y 'frame.comment contains \"dropped:\"' -T fields -e frame.number",
			    out, sizeof(out)),
		     0);
	cr_expect_str_eq(out, "", "a copy's end is not the packet's drop");
	/* The copy's uplink frames decode as VXLAN like the destination branch's. */
	cr_assert_eq(tshark(path, "-Y vxlan -T fields -e frame.number", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "2\n3\n4\n5\n");
	free_report(&r);
}

/* A report whose hops are no tree is refused, as the decoder would refuse it. */
Test(pcapng, refuses_hops_that_are_no_tree)
{
	struct dt_report r;
	int rc;

	make_copy_report(&r);
	cr_expect_gt(export_len(&r, &rc), 0);
	cr_expect_eq(rc, 0);
	r.packets[0].hops[0].parent = 0; /* the first hop with a parent */
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[0].hops[0].parent = DT_HOP_ROOT;
	r.packets[0].hops[4].parent = 4; /* itself */
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[0].hops[4].parent = 5; /* a later hop */
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[0].hops[4].parent = DT_HOP_ROOT; /* a second root */
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[0].hops[4].parent = 0;
	r.packets[0].hops[4].branch = DT_BRANCH_MAX;
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	r.packets[0].hops[4].branch = DT_BRANCH_COPY;
	r.packets[0].hops[6].copy_end = DT_COPY_MAX;
	cr_expect_eq(export_len(&r, &rc), 0);
	cr_expect_eq(rc, -EINVAL);
	free_report(&r);
}
