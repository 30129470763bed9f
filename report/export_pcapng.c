// SPDX-License-Identifier: MIT
/*
 * export_pcapng.c - a report's sampled packets as pcapng (see export_pcapng.h for what an
 * operator sees).
 *
 * The format is the IETF draft "PCAP Next Generation (pcapng) Capture File Format"
 * (draft-ietf-opsawg-pcapng): blocks of [type, total length, body, options, total length],
 * every field little-endian here (the section header's byte-order magic says so), every
 * option [code, length, value padded to 32 bits], options ended by opt_endofopt.
 *
 * Each block is built in a fixed buffer and written with one fwrite. Packets are taken in
 * timestamp order by merging the packets' hops with a binary heap of one cursor per
 * packet: the export needs 8 bytes per packet, not per hop, and the report's hops need not
 * be in time order within a packet (clock skew between nodes).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "export_pcapng.h"

#define PCAPNG_SHB 0x0a0d0d0au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_BOM 0x1a2b3c4du

#define OPT_ENDOFOPT 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_DESCRIPTION 3
#define IF_TSRESOL 9
#define EPB_FLAGS 2

#define EPB_F_INBOUND 0x1u
#define EPB_F_OUTBOUND 0x2u

#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW 101 /* starts at the IPv4 (or IPv6) header */

#define ETH_LEN 14
#define ETH_P_IPV4 0x0800
#define ENCAP_LEN (14 + 20 + 8 + 8) /* outer Ethernet, IPv4, UDP and VXLAN headers */

/* The largest block: an EPB with DT_CAP_MAX bytes and a COMMENT_MAX comment (~700). */
#define BLK_MAX 2048
#define COMMENT_MAX 512

/* Open addressing for the interface table: twice as many slots as entries, a power of 2. */
#define IFACE_SLOTS (2 * DT_PCAPNG_MAX_IFACES)

/* ------------------------------------------------------------------------------------ */
/* Blocks */

struct blk {
	uint8_t b[BLK_MAX];
	size_t len;
	bool overflow; /* an append did not fit: a bug, the block is not written */
};

static void blk_bytes(struct blk *k, const void *p, size_t n)
{
	if (n > sizeof(k->b) - k->len) {
		k->overflow = true;
		return;
	}
	memcpy(k->b + k->len, p, n);
	k->len += n;
}

static void blk_u16(struct blk *k, uint16_t v)
{
	uint8_t b[2] = {v & 0xff, v >> 8};

	blk_bytes(k, b, sizeof(b));
}

static void blk_u32(struct blk *k, uint32_t v)
{
	uint8_t b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};

	blk_bytes(k, b, sizeof(b));
}

static void blk_pad(struct blk *k)
{
	static const uint8_t zero[4];

	blk_bytes(k, zero, (4 - k->len % 4) % 4);
}

/* Starts a block; its total length is filled in by blk_write(). */
static void blk_start(struct blk *k, uint32_t type)
{
	k->len = 0;
	k->overflow = false;
	blk_u32(k, type);
	blk_u32(k, 0);
}

/* An option: [code, length, value, padding]. Empty values are left out. */
static void blk_opt(struct blk *k, uint16_t code, const void *p, size_t n)
{
	if (n == 0) {
		return;
	}
	if (n > UINT16_MAX) {
		k->overflow = true;
		return;
	}
	blk_u16(k, code);
	blk_u16(k, (uint16_t)n);
	blk_bytes(k, p, n);
	blk_pad(k);
}

static void blk_opt_str(struct blk *k, uint16_t code, const char *s)
{
	blk_opt(k, code, s, strlen(s));
}

/* Ends the options and the block, and writes it. */
static int blk_write(FILE *f, struct blk *k)
{
	uint32_t total;

	blk_u16(k, OPT_ENDOFOPT);
	blk_u16(k, 0);
	blk_u32(k, 0); /* the trailing total length */
	if (k->overflow) {
		return -EOVERFLOW;
	}
	total = (uint32_t)k->len;
	k->len = 4;
	blk_u32(k, total);
	k->len = total - 4;
	blk_u32(k, total);
	if (fwrite(k->b, 1, k->len, f) != k->len) {
		return -EIO;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Names */

/* Copies at most max bytes of src, up to its NUL; bytes that are not printable ASCII
 * become '?' (option strings must be UTF-8, and a name is never worth a broken file). */
static void clean(char *dst, size_t size, const char *src, size_t max)
{
	size_t i, n = strnlen(src, max);

	if (n >= size) {
		n = size - 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* A place and link type, as one interface of the file. Zeroed before it is filled, so that
 * two of them compare and hash as bytes. */
struct iface {
	char node[DT_NAME_MAX];
	char ifname[DT_IFNAME_MAX];
	uint16_t linktype;
	uint8_t hook;
	uint8_t pad;
};

static uint16_t hop_linktype(const struct dt_hop *h)
{
	switch (h->cap_link) {
	case DT_CAP_ETH:
		return LINKTYPE_ETHERNET;
	case DT_CAP_IPV4:
		return LINKTYPE_RAW;
	default:
		/* Nothing captured: where its hook would have captured from. */
		return h->at.hook == DT_HOOK_DROP ? LINKTYPE_RAW : LINKTYPE_ETHERNET;
	}
}

static void iface_of(struct iface *i, const struct dt_hop *h)
{
	memset(i, 0, sizeof(*i));
	clean(i->node, sizeof(i->node), h->at.node, sizeof(h->at.node));
	clean(i->ifname, sizeof(i->ifname), h->at.ifname, sizeof(h->at.ifname));
	i->hook = h->at.hook;
	i->linktype = hop_linktype(h);
}

struct ifaces {
	uint32_t n;
	uint32_t slot[IFACE_SLOTS]; /* index + 1 into tab, 0: free */
	struct iface tab[DT_PCAPNG_MAX_IFACES];
};

/* FNV-1a */
static uint32_t iface_hash(const struct iface *i)
{
	const uint8_t *p = (const uint8_t *)i;
	uint32_t h = 2166136261u;
	size_t k;

	for (k = 0; k < sizeof(*i); k++) {
		h = (h ^ p[k]) * 16777619u;
	}
	return h;
}

/* The index of interface i, added when add says so and it is new. Returns the index,
 * -ENOENT or -E2BIG. */
static int64_t ifaces_find(struct ifaces *t, const struct iface *i, bool add)
{
	uint32_t s = iface_hash(i) & (IFACE_SLOTS - 1);

	for (; t->slot[s] != 0; s = (s + 1) & (IFACE_SLOTS - 1)) {
		if (memcmp(&t->tab[t->slot[s] - 1], i, sizeof(*i)) == 0) {
			return t->slot[s] - 1;
		}
	}
	if (!add) {
		return -ENOENT;
	}
	if (t->n == DT_PCAPNG_MAX_IFACES) {
		return -E2BIG;
	}
	t->tab[t->n] = *i;
	t->slot[s] = ++t->n;
	return t->n - 1;
}

/* ------------------------------------------------------------------------------------ */
/* Hops in timestamp order */

struct cursor {
	uint32_t pkt;
	uint32_t hop;
};

struct merge {
	const struct dt_report *r;
	struct cursor *heap; /* r->n_packets entries */
	uint32_t n;
};

static bool hop_before(const struct dt_report *r, uint32_t pa, uint32_t ha, uint32_t pb,
		       uint32_t hb)
{
	uint64_t ta = r->packets[pa].hops[ha].ts_ns, tb = r->packets[pb].hops[hb].ts_ns;

	if (ta != tb) {
		return ta < tb;
	}
	if (pa != pb) {
		return pa < pb;
	}
	return ha < hb;
}

static bool cursor_before(const struct dt_report *r, const struct cursor *a, const struct cursor *b)
{
	return hop_before(r, a->pkt, a->hop, b->pkt, b->hop);
}

/* The hop of packet p that comes right after its hop h in (time, index) order, or with
 * h == n_hops its first one; n_hops when there is none. A scan: at most
 * DT_REPORT_MAX_HOPS steps, where sorting each packet's hops would need memory per hop. */
static uint32_t next_hop(const struct dt_report *r, uint32_t p, uint32_t h)
{
	uint32_t n = r->packets[p].n_hops, best = n, k;

	for (k = 0; k < n; k++) {
		if (h < n && !hop_before(r, p, h, p, k)) {
			continue;
		}
		if (best == n || hop_before(r, p, k, p, best)) {
			best = k;
		}
	}
	return best;
}

static void sift_down(struct merge *m, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, min = i;
		struct cursor c;

		if (l < m->n && cursor_before(m->r, &m->heap[l], &m->heap[min])) {
			min = l;
		}
		if (l + 1 < m->n && cursor_before(m->r, &m->heap[l + 1], &m->heap[min])) {
			min = l + 1;
		}
		if (min == i) {
			return;
		}
		c = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = c;
		i = min;
	}
}

static void merge_init(struct merge *m)
{
	uint32_t p, i;

	m->n = 0;
	for (p = 0; p < m->r->n_packets; p++) {
		uint32_t n = m->r->packets[p].n_hops;

		if (n > 0) {
			m->heap[m->n].pkt = p;
			m->heap[m->n].hop = next_hop(m->r, p, n);
			m->n++;
		}
	}
	for (i = m->n / 2; i-- > 0;) {
		sift_down(m, i);
	}
}

/* The next hop of all in timestamp order (ties: packet, then hop order); false at the end. */
static bool merge_next(struct merge *m, struct cursor *out)
{
	struct cursor *top = &m->heap[0];
	uint32_t next;

	if (m->n == 0) {
		return false;
	}
	*out = *top;
	next = next_hop(m->r, top->pkt, top->hop);
	if (next < m->r->packets[top->pkt].n_hops) {
		top->hop = next;
	} else {
		*top = m->heap[--m->n];
	}
	sift_down(m, 0);
	return true;
}

/* ------------------------------------------------------------------------------------ */
/* Blocks of the file */

static int write_shb(FILE *f, struct blk *k, const struct dt_report *r)
{
	char flow[DT_TUPLE_STR_MAX], sentence[DT_MSG_MAX];
	char comment[sizeof(flow) + sizeof(sentence) + 64];

	dt_tuple_str(&r->task.spec.tuple, r->task.spec.flags, flow, sizeof(flow));
	clean(sentence, sizeof(sentence), r->verdict.sentence, sizeof(r->verdict.sentence));
	snprintf(comment, sizeof(comment), "dyetrace report of task %u (%s)%s%s", r->task.id, flow,
		 sentence[0] ? ": " : "", sentence);

	blk_start(k, PCAPNG_SHB);
	blk_u32(k, PCAPNG_BOM);
	blk_u16(k, 1); /* version 1.0 */
	blk_u16(k, 0);
	blk_u32(k, UINT32_MAX); /* section length: unknown (-1) */
	blk_u32(k, UINT32_MAX);
	blk_opt_str(k, OPT_COMMENT, comment);
	blk_opt_str(k, SHB_USERAPPL, "dyetrace");
	return blk_write(f, k);
}

static int write_idb(FILE *f, struct blk *k, const struct iface *i)
{
	char name[DT_NAME_MAX + DT_IFNAME_MAX + 1];
	char desc[sizeof(name) + 64];
	const uint8_t tsresol = 9; /* 10^-9 s */

	snprintf(name, sizeof(name), "%s/%s", i->node, i->ifname);
	snprintf(desc, sizeof(desc), "node %s, interface %s, hook %s, %s", i->node, i->ifname,
		 dt_hook_name(i->hook), i->linktype == LINKTYPE_ETHERNET ? "Ethernet" : "raw IPv4");

	blk_start(k, PCAPNG_IDB);
	blk_u16(k, i->linktype);
	blk_u16(k, 0);
	blk_u32(k, DT_CAP_MAX);
	blk_opt_str(k, IF_NAME, name);
	blk_opt_str(k, IF_DESCRIPTION, desc);
	blk_opt(k, IF_TSRESOL, &tsresol, sizeof(tsresol));
	return blk_write(f, k);
}

/* The packet's length on the link of hop h (see export_pcapng.h). */
static uint32_t wire_len(const struct dt_packet_path *p, const struct dt_hop *h, uint16_t linktype)
{
	uint64_t len = p->len;
	size_t ip = 0;
	bool has_ip = true;

	if (linktype == LINKTYPE_ETHERNET) {
		len += ETH_LEN;
		if (h->at.hook == DT_HOOK_UPLINK_IN || h->at.hook == DT_HOOK_UPLINK_OUT) {
			len += ENCAP_LEN;
		}
		ip = ETH_LEN;
		has_ip = h->cap_len >= ETH_LEN && (h->cap[12] << 8 | h->cap[13]) == ETH_P_IPV4;
	}
	if (has_ip && h->cap_len >= ip + 4 && h->cap[ip] >> 4 == 4) {
		uint32_t tot = h->cap[ip + 2] << 8 | h->cap[ip + 3];

		if (tot >= 20) {
			len = ip + tot;
		}
	}
	if (len < h->cap_len) {
		len = h->cap_len;
	}
	return len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
}

static uint32_t hook_direction(uint8_t hook)
{
	switch (hook) {
	case DT_HOOK_PORT_IN:
	case DT_HOOK_UPLINK_IN:
	case DT_HOOK_GW_IN:
		return EPB_F_INBOUND;
	case DT_HOOK_PORT_OUT:
	case DT_HOOK_UPLINK_OUT:
	case DT_HOOK_GW_OUT:
		return EPB_F_OUTBOUND;
	default:
		return 0;
	}
}

/* The hops of p's destination branch: hops[0 .. n) (see struct dt_hop). */
static uint32_t dest_hops(const struct dt_packet_path *p)
{
	uint32_t n = 0;

	while (n < p->n_hops && p->hops[n].branch != DT_BRANCH_COPY) {
		n++;
	}
	return n;
}

/* A drop's reason and place, "NETFILTER_DROP at nf_hook_slow+0x8c" ("reason 2" when it has
 * no name, "at ..." only when known), into buf. */
static void drop_str(char *buf, size_t size, const char *drop_name, uint32_t reason,
		     const char *drop_where)
{
	char name[DT_STR_MAX], where[DT_STR_MAX];
	int n;

	clean(name, sizeof(name), drop_name, DT_STR_MAX);
	clean(where, sizeof(where), drop_where, DT_STR_MAX);
	if (name[0]) {
		n = snprintf(buf, size, "%s", name);
	} else {
		n = snprintf(buf, size, "reason %u", reason);
	}
	if (where[0] && n >= 0 && (size_t)n < size) {
		snprintf(buf + n, size - (size_t)n, " at %s", where);
	}
}

/*
 * The comment of hop k of p: which hop, its parent, its branch, and at the end of a branch
 * how it ended (the packet's fate on the destination branch, the copy's end on a copy).
 */
static void hop_comment(char *buf, size_t size, const struct dt_report *r,
			const struct dt_packet_path *p, uint32_t k, const struct iface *i)
{
	const struct dt_hop *h = &p->hops[k];
	char drop[2 * DT_STR_MAX + 16], parent[32], branch[sizeof(drop) + 32];
	char fate[sizeof(drop) + 32];

	parent[0] = fate[0] = '\0';
	if (h->parent < k) {
		snprintf(parent, sizeof(parent), ", after hop %u", h->parent + 1u);
	}
	if (h->branch == DT_BRANCH_COPY) {
		if (h->copy_end == DT_COPY_NONE) {
			snprintf(branch, sizeof(branch), "copy");
		} else if (h->at.hook == DT_HOOK_DROP) {
			drop_str(drop, sizeof(drop), h->drop_name, h->drop_reason, h->drop_where);
			snprintf(branch, sizeof(branch), "copy (%s, %s)",
				 dt_copy_end_name(h->copy_end), drop);
		} else {
			snprintf(branch, sizeof(branch), "copy (%s)",
				 dt_copy_end_name(h->copy_end));
		}
	} else {
		snprintf(branch, sizeof(branch), "destination");
		if (k + 1 == dest_hops(p) && p->fate == DT_FATE_DROPPED) {
			drop_str(drop, sizeof(drop), p->drop_name, p->drop_reason, p->drop_where);
			snprintf(fate, sizeof(fate), "; dropped: %s", drop);
		} else if (k + 1 == dest_hops(p)) {
			snprintf(fate, sizeof(fate), "; fate: %s", dt_fate_name(p->fate));
		}
	}
	snprintf(buf, size,
		 "dyetrace task %u %s packet ip_id 0x%04x hop %u/%u %s/%s %s%s, branch %s%s",
		 r->task.id, dt_direction_name(p->direction), p->ip_id, k + 1, p->n_hops, i->node,
		 i->ifname, dt_hook_name(i->hook), parent, branch, fate);
}

static int write_epb(FILE *f, struct blk *k, const struct dt_report *r, const struct cursor *c,
		     uint32_t iface_id, const struct iface *i)
{
	const struct dt_packet_path *p = &r->packets[c->pkt];
	const struct dt_hop *h = &p->hops[c->hop];
	char comment[COMMENT_MAX];
	uint32_t flags = hook_direction(h->at.hook);

	hop_comment(comment, sizeof(comment), r, p, c->hop, i);
	blk_start(k, PCAPNG_EPB);
	blk_u32(k, iface_id);
	blk_u32(k, (uint32_t)(h->ts_ns >> 32));
	blk_u32(k, (uint32_t)h->ts_ns);
	blk_u32(k, h->cap_len);
	blk_u32(k, wire_len(p, h, i->linktype));
	blk_bytes(k, h->cap, h->cap_len);
	blk_pad(k);
	blk_opt_str(k, OPT_COMMENT, comment);
	if (flags) {
		uint8_t le[4] = {flags & 0xff, (flags >> 8) & 0xff, (flags >> 16) & 0xff,
				 flags >> 24};

		blk_opt(k, EPB_FLAGS, le, sizeof(le));
	}
	return blk_write(f, k);
}

/* ------------------------------------------------------------------------------------ */

/* Refuses what the report decoder would have refused, before anything is written. */
static int check_report(const struct dt_report *r)
{
	uint32_t p, k;

	if (r->n_packets > DT_REPORT_MAX_PACKETS || (r->n_packets > 0 && !r->packets)) {
		return -EINVAL;
	}
	for (p = 0; p < r->n_packets; p++) {
		const struct dt_packet_path *pp = &r->packets[p];

		if (pp->n_hops > DT_REPORT_MAX_HOPS || (pp->n_hops > 0 && !pp->hops)) {
			return -EINVAL;
		}
		for (k = 0; k < pp->n_hops; k++) {
			const struct dt_hop *h = &pp->hops[k];

			if (h->cap_len > DT_CAP_MAX || h->cap_link > DT_CAP_IPV4 ||
			    (h->cap_link == DT_CAP_NONE) != (h->cap_len == 0)) {
				return -EINVAL;
			}
			/* A tree: the first hop is the root, every other follows an earlier one. */
			if (k == 0 ? h->parent != DT_HOP_ROOT : h->parent >= k) {
				return -EINVAL;
			}
			if (h->branch >= DT_BRANCH_MAX || h->copy_end >= DT_COPY_MAX) {
				return -EINVAL;
			}
		}
	}
	return 0;
}

int dt_export_pcapng(FILE *f, const struct dt_report *r)
{
	struct ifaces *t = NULL;
	struct merge m = {.r = r};
	struct blk *k = NULL;
	struct cursor c;
	struct iface i;
	int64_t id;
	uint32_t n;
	int err;

	if ((err = check_report(r)) != 0) {
		return err;
	}
	t = calloc(1, sizeof(*t));
	k = malloc(sizeof(*k));
	m.heap = calloc(r->n_packets ? r->n_packets : 1, sizeof(*m.heap));
	if (!t || !k || !m.heap) {
		err = -ENOMEM;
		goto out;
	}

	/* Pass 1: the interfaces, in the order they first appear. */
	merge_init(&m);
	while (merge_next(&m, &c)) {
		iface_of(&i, &r->packets[c.pkt].hops[c.hop]);
		if ((id = ifaces_find(t, &i, true)) < 0) {
			err = (int)id;
			goto out;
		}
	}

	if ((err = write_shb(f, k, r)) != 0) {
		goto out;
	}
	for (n = 0; n < t->n; n++) {
		if ((err = write_idb(f, k, &t->tab[n])) != 0) {
			goto out;
		}
	}

	/* Pass 2: the packets. */
	merge_init(&m);
	while (merge_next(&m, &c)) {
		iface_of(&i, &r->packets[c.pkt].hops[c.hop]);
		if ((id = ifaces_find(t, &i, false)) < 0) {
			err = (int)id;
			goto out;
		}
		if ((err = write_epb(f, k, r, &c, (uint32_t)id, &i)) != 0) {
			goto out;
		}
	}
	if (fflush(f) != 0 || ferror(f)) {
		err = -EIO;
	}
out:
	free(m.heap);
	free(k);
	free(t);
	return err;
}
