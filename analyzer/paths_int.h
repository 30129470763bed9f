/* SPDX-License-Identifier: MIT */
/*
 * paths_int.h - what the files of the report builder share (paths.c builds and judges
 * each packet, paths_tree.c links its hops into a tree, paths_datagram.c judges datagrams
 * of fragments, paths_segment.c packets segmented after their first hop, paths_blind.c packets
 * lost from sight where a node was not observing, paths_tables.c summarises latency, loss and
 * copies per hop, paths_verdict.c names the place that lost the most).
 * Not a public interface: paths.h is.
 */
#ifndef DT_PATHS_INT_H
#define DT_PATHS_INT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "paths.h"

/* Hops of one packet, and its visits: at most one per hop. */
#define MAX_HOPS DT_REPORT_MAX_HOPS
#define MAX_VISITS DT_REPORT_MAX_HOPS

/* A drop reason as told apart: by name, or by value when it has none. */
#define REASON_NONE UINT64_MAX
#define REASON_NAMED (1ull << 40)

/* One observation with its names resolved. */
struct item {
	const struct dt_obs *o;
	const char *node;
	const char *ifname;
	const struct dt_hop_ref *at; /* its place in the report's place table */
};

/* The distinct places (node, interface, hook) of a report's observations, named once. */
struct dt_paths_places {
	struct dt_hop_ref *refs;
	size_t n;
};

/*
 * One hop of a packet being built: a reference to its observation, not a copy. The
 * report's struct dt_hop, with its packet prefix and names, is filled only for the packets
 * a report lists (see dt_paths_ctx.no_packets); judging and the tables read the
 * observation and its place's names, resolved once a report (struct places in paths.c).
 */
struct hop {
	const struct dt_obs *o;
	const struct dt_hop_ref *at; /* its place, named */
	uint16_t parent;	     /* index into the packet's hops; DT_HOP_ROOT at the root */
	uint8_t branch;		     /* enum dt_branch */
	uint8_t copy_end;	     /* enum dt_copy_end */
};

/* A packet being built: p.hops stays NULL until the packet is listed, h holds its hops. */
struct pkt {
	struct dt_packet_path p;
	struct hop *h;		/* p.n_hops, in the order p.hops will have */
	size_t key;		/* rank in packet key order: a deterministic tie-break */
	uint32_t n_dest;	/* p.hops[0 .. n_dest) is the destination branch */
	const uint64_t *place;	/* place[j]: p.hops[j]'s node, interface and hook as one key */
	bool member;		/* counted through another packet: a fragment through its datagram's
				 * first, a segment through the packet it was cut from (paths_segment.c) */
	bool head;		/* a hop colored it (port-in, gw-in): the first hop saw it whole */
	uint32_t exit_len;	/* its IPv4 length where it was delivered (0: it was not) */
	uint16_t hdrs;		/* its IPv4 and TCP or UDP headers in bytes, from its first hop's
				 * packet prefix (0: not known) */
	int lost_hop;		/* where a datagram or a packet vanished whose every piece seen
				 * was delivered: the last hop that saw it whole (-1: its last) */
	const char *refrag_at;	/* its datagram was refragmented on this node (NULL: not) */
	uint32_t refrag_len;	/* the largest new fragment it was seen as (0: none) */
	bool refrag_smaller;	/* its datagram's new fragments are smaller than the old */
	const struct pkt *lost; /* for a datagram: the fragment whose loss decides its place */
	int drop_hop;		/* index of the fatal drop hop in p.hops, or -1 */
	uint64_t reason;	/* the fatal drop's reason key (see REASON_*) */
};

/* True when two packets are of the same flow and direction (in the task's terms). */
static inline bool same_flow(const struct pkt *a, const struct pkt *b)
{
	return a->p.direction == b->p.direction &&
	       memcmp(&a->p.tuple, &b->p.tuple, sizeof(a->p.tuple)) == 0;
}

#define CMP(a, b)                                                                                  \
	do {                                                                                       \
		if ((a) != (b)) {                                                                  \
			return (a) < (b) ? -1 : 1;                                                 \
		}                                                                                  \
	} while (0)

/* Ties between equal timestamps inside one node. */
static inline int hook_rank(unsigned int hook)
{
	switch (hook) {
	case DT_HOOK_PORT_IN:
		return 0;
	case DT_HOOK_GW_IN:
		return 1;
	case DT_HOOK_UPLINK_OUT:
		return 2;
	case DT_HOOK_UPLINK_IN:
		return 3;
	case DT_HOOK_PORT_OUT:
		return 4;
	case DT_HOOK_GW_OUT:
		return 5;
	case DT_HOOK_DROP:
		return 6;
	default:
		return 7;
	}
}

static inline bool is_first_hop(unsigned int hook)
{
	return hook == DT_HOOK_PORT_IN || hook == DT_HOOK_GW_IN;
}

static inline bool is_entry(unsigned int hook)
{
	return is_first_hop(hook) || hook == DT_HOOK_UPLINK_IN;
}

/* The end of a packet's journey in our network. */
static inline bool is_last_hop(unsigned int hook)
{
	return hook == DT_HOOK_PORT_OUT || hook == DT_HOOK_GW_OUT;
}

static inline bool leaves_node(unsigned int hook)
{
	return is_last_hop(hook) || hook == DT_HOOK_UPLINK_OUT || hook == DT_HOOK_DROP;
}

/* Names are interned: equal indices are equal names. */
static inline int cmp_name(uint32_t ia, const char *a, uint32_t ib, const char *b)
{
	return ia == ib ? 0 : strcmp(a, b);
}

/* snprintf(dst, size, "%s", src) without the formatting machinery (it runs per hop). */
static inline void copy_str(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* A hop's drop reason as its struct dt_hop holds it: only a drop hop has one. */
static inline const char *drop_name_of(const struct dt_strtab *strs, const struct dt_obs *o)
{
	return o->hook == DT_HOOK_DROP ? dt_strtab_get(strs, o->drop_name) : "";
}

static inline uint32_t drop_reason_of(const struct dt_obs *o)
{
	return o->hook == DT_HOOK_DROP ? o->drop_reason : 0;
}

static inline uint64_t reason_key(const struct dt_obs *o)
{
	if (o->drop_name != DT_STRTAB_NONE && o->drop_name != 0) {
		return REASON_NAMED | o->drop_name;
	}
	return o->drop_reason ? o->drop_reason : REASON_NONE; /* 0: the kernel said nothing */
}

/* The reason's name as an operator reads it: the kernel's name, else its value. */
static inline void reason_label(const struct dt_strtab *strs, uint64_t key, char *buf, size_t len)
{
	if (key == REASON_NONE) {
		buf[0] = '\0';
	} else if (key & REASON_NAMED) {
		copy_str(buf, dt_strtab_get(strs, (uint32_t)(key & ~REASON_NAMED)), len);
	} else {
		snprintf(buf, len, "%" PRIu64, key);
	}
}

static inline int cmp_ref(const struct dt_hop_ref *a, const struct dt_hop_ref *b)
{
	int c;

	if (a == b) {
		return 0; /* one place of the report's place table */
	}

	c = strncmp(a->node, b->node, sizeof(a->node));
	if (c != 0) {
		return c;
	}
	c = strncmp(a->ifname, b->ifname, sizeof(a->ifname));
	if (c != 0) {
		return c;
	}
	CMP(a->hook, b->hook);
	return 0;
}

/* paths_group.c */

/* Orders observations by packet identity (direction, canonical tuple, IPv4 id, ident,
 * fragment offset); 0 when they are of one packet. */
int dt_paths_cmp_packet_key(const struct dt_obs *a, const struct dt_obs *b);

/* A hop's place (node, interface, hook) as one integer; equal places, equal keys. */
uint64_t dt_paths_place_key(const struct dt_obs *o);

/*
 * Groups obs[0..n) by packet into v[0..n): packet p's items are v[(*starts)[p] ..
 * (*starts)[p + 1]), in input order, packets in the order of their first observation;
 * *n_pk packets; *starts is malloc'd (*n_pk + 1 entries). Names every distinct place in
 * pl (pl->refs malloc'd; each item's at points there). 0 or -ENOMEM (nothing allocated).
 */
int dt_paths_group(const struct dt_strtab *strs, const struct dt_obs *obs, size_t n, struct item *v,
		   size_t **starts, size_t *n_pk, struct dt_paths_places *pl);

/*
 * Orders one packet's run v[0..n) (by node, timestamp, hook rank, interface), drops
 * duplicate observations (same place and time), and cuts a run of more than
 * DT_REPORT_MAX_HOPS distinct hops down to its earliest ones. Returns the new length.
 */
size_t dt_paths_trim_packet(struct item *v, size_t n);

/*
 * An index of keys of three integers, numbered 0, 1, ... in the order they were first
 * found: the tables group their records with it instead of sorting them.
 */
struct dt_paths_index {
	uint64_t (*keys)[3];
	uint32_t *slots; /* open-addressed: 0 empty, else number + 1 */
	size_t mask, n, cap;
};

/* The number of key (added when new: then it is ix->n - 1), or -ENOMEM. */
long dt_paths_index_find(struct dt_paths_index *ix, const uint64_t key[3]);
void dt_paths_index_free(struct dt_paths_index *ix);

/* paths_tree.c */

/* True when hop o saw the packet as it came from the underlay (it carries outer addresses). */
bool dt_paths_from_underlay(const struct dt_obs *o);

/*
 * The parent of every hop of the run v[0..n) (index into v, -1 at the root), and the first
 * hop of its visit (entry), by which the root hop's index is returned. A visit's
 * first hop follows what linked the visit; a drop follows the latest hop of its visit that
 * sent out what it dropped; every other hop follows its visit's first hop: inside a node a
 * packet goes from where it entered to where it left, and each copy leaves on its own.
 */
int dt_paths_hop_parents(const struct item *v, size_t n, int *parent, int *entry);

/* The depth of hop i in the tree parent[] (the root's is 0). */
int dt_paths_hop_depth(const int *parent, int i);

/* The depth-first order of the tree: at each hop, its child on the destination branch
 * first, then the others by timestamp. Writes order[0..n). */
void dt_paths_dfs_order(const struct item *v, size_t n, const int *parent, const bool *on_dest,
			int root, int *order);

/* paths_datagram.c */

/* Groups the fragments among pk[0..n_pk) into datagrams and judges each. 0 or -ENOMEM. */
int dt_paths_judge_datagrams(struct pkt *pk, size_t n_pk);

/* paths_segment.c */

/* The length of the IPv4 and TCP or UDP headers in o's packet prefix c (o->cap_len bytes),
 * 0 when it does not hold them (capture off, a VLAN tag stack, another protocol). */
uint16_t dt_paths_l4_headers(const struct dt_obs *o, const uint8_t *c);

/* Ties the segments among pk[0..n_pk) that no first hop saw (the kernel segmented their
 * packet after it, GSO) to their packet, and judges each such packet. 0 or -ENOMEM. */
int dt_paths_judge_segments(struct pkt *pk, size_t n_pk);

/* paths_tables.c */

/* The most frequent of the keys v[0..n) (sorted in place; REASON_NONE ignored), the
 * smallest on a tie; REASON_NONE when there is none. */
uint64_t dt_paths_most_frequent(uint64_t *v, size_t n);

/* The latency statistics, the per-hop loss table and the copies table of pk[0..n_pk):
 * see paths.h. Each returns 0 or -ENOMEM. */
int dt_paths_stats(const struct pkt *pk, size_t n_pk, size_t n_pairs, struct dt_hop_stat **stats,
		   uint32_t *n_stats);
int dt_paths_rows(const struct dt_strtab *strs, const struct pkt *pk, size_t n_pk, size_t n_max,
		  struct dt_hop_row **rows, uint32_t *n_rows);
int dt_paths_copy_rows(const struct dt_strtab *strs, const struct pkt *pk, size_t n_pk,
		       struct dt_copy_row **rows, uint32_t *n_rows);

/* paths_blind.c */

/*
 * Judges again the packets among pk[0..n_pk) that vanished where the node of their next hop
 * was not observing (ctx->gaps_of): their fate, and their datagram_fate where the piece
 * that decides it is known (always for the packet counted), become unobserved. The windows that
 * explain them, with how many packets each, go to *blind (malloc'd, NULL when none; by node, then
 * time). 0 or -ENOMEM (then some packets may have changed: the report is not built).
 */
int dt_paths_judge_blind(const struct dt_paths_ctx *ctx, struct pkt *pk, size_t n_pk,
			 struct dt_blind **blind, uint32_t *n_blind);

/* Appends to vd's sentence how many packets were unobserved, where and when: the window
 * that explains the most, and how many more the others do. */
void dt_paths_note_blind(struct dt_verdict *vd, const struct dt_blind *blind, uint32_t n_blind);

/* paths_verdict.c */

/* The verdict over pk[0..n_pk). 0 or -ENOMEM. */
int dt_paths_verdict(const struct dt_paths_ctx *ctx, const struct pkt *pk, size_t n_pk,
		     struct dt_verdict *vd);

#endif /* DT_PATHS_INT_H */
