/* SPDX-License-Identifier: MIT */
/*
 * paths.h - from attributed samples to per-packet paths, fates, the per-hop loss table,
 * the verdict and per-hop latency statistics.
 *
 * The analyzer keeps, per task, every sample attributed to it ("observation"; see
 * stitch.h for how samples are attributed). Building a report groups the observations by
 * packet identity (direction, canonical tuple, IPv4 id, ident), orders each packet's
 * hops, judges what became of each packet, and summarises loss and latency per hop.
 *
 * Ordering follows VTrace's path computation (docs/design.md): the first hop is known from its edge
 * role (port-in, or gw-in for a reply entering through a gateway); the hops inside one node are
 * ordered by timestamp (exact: one clock), a drop being the last hop of its visit; nodes are
 * chained by hand-off (an uplink-out sample of node A and an uplink-in sample of node B with the
 * same outer source and destination address mean the packet went from A to B), so clock
 * skew between nodes cannot reorder a path. Nodes that no hand-off reaches follow in order
 * of their earliest timestamp. It is a sort, independent of device types.
 *
 * Fate (enum dt_fate), in this order:
 *  - dropped:   the path ends with a drop sample (a drop is terminal), or it has a drop
 *               and never reached an exit;
 *  - delivered: the path reached an exit (port-out, or gw-out: out of our network);
 *  - in flight: not judged yet, the packet was seen recently: its newest observation
 *               arrived less than window_ms before the report, or its newest timestamp is
 *               less than window_ms before the report's wall-clock time (more samples may
 *               still be on their way);
 *  - vanished:  none of the above: lost after its last hop, with no drop seen;
 *  - unobserved: vanished, where the node of its next hop was not observing at the time
 *               (a window of ctx->gaps_of, paths_blind.c): not a loss, counted apart.
 */
#ifndef DT_PATHS_H
#define DT_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "strtab.h"

/*
 * One attributed sample: what a report needs of it, 112 bytes (a task keeps every one).
 * Its packet prefix (cap_len bytes) is kept apart, in its task's prefix store (struct
 * dt_prefixes): only a report that lists packets reads every one (a build reads a first
 * hop's, for its headers), and every pass over the observations reads half the bytes it
 * would with the prefix inside.
 * Names are indices into the analyzer's string table (strtab.h). The fields without a
 * comment are the wire sample's (struct dt_wire_sample).
 */
struct dt_obs {
	uint64_t ts_ns;
	uint64_t arrival_ms;   /* analyzer's monotonic clock when the sample arrived */
	struct dt_tuple tuple; /* as seen at this hop */
	struct dt_tuple canon; /* the packet's tuple in its task's terms: inside any NAT, in
				* the packet's own direction (a reply's is reversed) */
	uint32_t ident;
	uint32_t len;
	uint32_t outer_saddr;
	uint32_t outer_daddr;
	uint32_t drop_reason;
	uint32_t node;	     /* dt_strtab index */
	uint32_t ifname;     /* dt_strtab index */
	uint32_t drop_name;  /* dt_strtab index, DT_STRTAB_NONE without a drop */
	uint32_t drop_where; /* dt_strtab index, DT_STRTAB_NONE without a drop */
	uint32_t cap_at;     /* where its prefix starts in the prefix store, in 8-byte units */
	uint16_t ip_id;
	uint8_t hook;
	uint8_t flags;
	uint8_t dir;	  /* enum dt_direction */
	uint8_t cap_link; /* enum dt_cap_link */
	uint16_t cap_len;
	uint16_t frag; /* DT_FRAG_MF | offset (8-byte units); 0: not a fragment */
};

/*
 * The packet prefixes of a task's observations, one after the other, each at an 8-byte
 * boundary (so that a 32-bit struct dt_obs.cap_at reaches 32 GiB).
 */
struct dt_prefixes {
	uint8_t *bytes;
	size_t used, size;
};

/* Makes room for a prefix of len bytes more. Returns 0 or -ENOMEM. */
int dt_prefixes_reserve(struct dt_prefixes *p, uint16_t len);

/* Appends o's prefix, cap (o->cap_len bytes, room reserved), and sets o->cap_at. */
void dt_prefixes_append(struct dt_prefixes *p, struct dt_obs *o, const uint8_t *cap);

/* Forgets the prefixes from o's on (o's and the ones appended after it). */
void dt_prefixes_truncate(struct dt_prefixes *p, const struct dt_obs *o);

/* Frees p's bytes; p is empty after. */
void dt_prefixes_free(struct dt_prefixes *p);

/* o's prefix (o->cap_len bytes) in p; NULL while p holds none (then o->cap_len is 0). */
static inline const uint8_t *dt_prefix_of(const struct dt_prefixes *p, const struct dt_obs *o)
{
	return p->bytes ? p->bytes + (size_t)o->cap_at * 8 : NULL;
}

/* What a report is built against. */
struct dt_paths_ctx {
	const struct dt_strtab *strs; /* resolves the observations' names */
	uint64_t now_ns;	      /* the report's wall-clock time (CLOCK_REALTIME) */
	uint64_t now_ms;	      /* the same moment on the analyzer's monotonic clock */
	uint64_t window_ms;	      /* the analysis window (in-flight judgement) */
	size_t n_held_restored;	      /* samples held across a restart that still wait: while
				       * any do, a packet that reached neither an exit nor a
				       * drop is in flight, as one may be its next hop */
	/* The name of the node that hosts address addr in VNI vni (addr 0: the outside of a
	 * NAT gateway for that VNI), or NULL when no node reported it. May be NULL: then no
	 * destination is known. */
	const char *(*host_of)(const void *arg, uint32_t vni, uint32_t addr);
	const void *host_arg;
	/* The windows in which node did not observe (struct dt_gap), *n of them, or NULL (with
	 * host_arg). May be NULL: then every node observed throughout. */
	const struct dt_gap *(*gaps_of)(const void *arg, const char *node, uint32_t *n);
	bool no_packets; /* leave r->packets empty: the caller reads counts, tables and the
			  * verdict only, so no packet's hops, prefixes and names are copied */
	/* The observations' prefixes (struct dt_obs.cap_at). NULL: as if nothing was captured
	 * (listed hops carry none, segments are tied without their packet's headers) */
	const struct dt_prefixes *prefixes;
};

/*
 * Fills, from obs[0..n):
 *  r->packets / r->n_packets: ordered by the first hop's timestamp, at most
 *      DT_REPORT_MAX_PACKETS (the earliest); none with ctx->no_packets;
 *  r->stats / r->n_stats: hop pairs ordered by direction, then along the path;
 *  r->rows / r->n_rows: the per-hop loss table, by direction, then along the path;
 *  r->verdict;
 *  r->blind / r->n_blind: the windows without observation that explain unobserved packets;
 *  r->task.colored (packets with a first hop: port-in or gw-in) and r->task.delivered
 *      (packets whose fate is delivered).
 * Counts, rows and the verdict cover every packet, listed or not. r->task's other
 * fields, r->lost, r->unmatched and r->window_ms are left as the caller set them. obs is
 * not modified. Returns 0 or -ENOMEM (then r owns nothing new and is unchanged).
 * O(n) but for sorting the packets by time (O(p log p), p packets) and, per packet, its
 * hops (at most DT_REPORT_MAX_HOPS).
 */
int dt_paths_build(const struct dt_paths_ctx *ctx, const struct dt_obs *obs, size_t n,
		   struct dt_report *r);

#endif /* DT_PATHS_H */
