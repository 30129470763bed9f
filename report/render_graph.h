/* SPDX-License-Identifier: MIT */
/*
 * render_graph.h - a report's path as a picture: a Graphviz digraph, and SVG drawn by
 * Graphviz's dot.
 *
 * The picture is built from the report's packets (struct dt_graph): a packet's hops form a
 * tree (struct dt_hop: parent, branch), and the picture follows it: one place per distinct
 * (node, ifname, hook) and kind of branch a packet was sampled at, one edge per pair of a
 * hop and its parent hop, direction and kind of branch, with how many packets took it.
 * Hops on bystander copies (branch DT_BRANCH_COPY) are drawn apart from the destination
 * branch: they have places of their own, even where a copy passed the same hook as the
 * packet (an uplink-out seen once per copy), so that the destination branch reads as it
 * would without copies. Places and edges are numbered in the order they first appear in
 * the report's packets, so the same report always gives the same picture, byte for byte.
 *
 * The dot text has one `subgraph "cluster_<node>"` per node holding that node's places
 * (labelled ifname and hook), and edges labelled with their packet count and, from the
 * report's hop latency statistics of the same kind of branch, the mean and maximum latency
 * in µs. Requests are solid black edges, replies dashed blue ones. A drop place is red and
 * says the drop reason and how many of the packets seen right before it it dropped (the
 * loss rate, from the per-hop loss table); a place after which packets vanished is orange
 * and says how many. Copies are grey and dashed, places and edges, whatever their
 * direction: a copy place says "(copies)" after its hook, how many copies passed it and how
 * those that ended there ended ("10 copies, 10 filtered"), and at a drop the reason. The
 * graph's label is the task's flow and the verdict (and, when there are copies, what grey
 * means). Every name is escaped for a DOT string: quotes and backslashes are escaped,
 * control characters and bytes that are not UTF-8 become U+FFFD, so that no name can end a
 * string or smuggle in an attribute.
 *
 * SVG: the dot text piped through `dot -Tsvg`, found through PATH. dyetrace never needs
 * Graphviz otherwise: without it, the dot text can be drawn elsewhere.
 */
#ifndef DT_RENDER_GRAPH_H
#define DT_RENDER_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"

#define DT_GRAPH_MAX_PLACES 1024
#define DT_GRAPH_MAX_EDGES 4096
#define DT_SVG_MAX (64u << 20)	/* bytes of SVG accepted from dot */
#define DT_DOT_TIMEOUT_MS 30000 /* dot that neither reads nor writes this long is killed */

/* A distinct (node, ifname, hook) and kind of branch of the report's packets. */
struct dt_graph_place {
	struct dt_hop_ref at;
	uint8_t branch;		    /* enum dt_branch: the destination branch, or copies */
	uint32_t host;		    /* index into dt_graph.hosts */
	uint64_t packets;	    /* packets (copies, on a copy place) sampled here */
	uint64_t dropped;	    /* a drop place: packets dropped here */
	uint64_t before;	    /* a drop place: packets seen at the places right before it */
	uint64_t vanished;	    /* packets last seen here, no drop seen */
	uint64_t ends[DT_COPY_MAX]; /* a copy place: copies that ended here, by enum dt_copy_end */
	char reason[DT_STR_MAX];    /* a drop place: the (most frequent) reason, "" unnamed */
};

/* A hop and its parent hop, of one direction and kind of branch (the child's), and their
 * latency statistics when the report has them (stat points into the report). */
struct dt_graph_edge {
	uint32_t from, to; /* indices into dt_graph.places */
	uint8_t direction; /* enum dt_direction */
	uint8_t branch;	   /* enum dt_branch */
	uint64_t packets;
	const struct dt_hop_stat *stat;
};

struct dt_graph {
	uint32_t n_hosts;
	char (*hosts)[DT_NAME_MAX]; /* n_hosts node names, malloc'd */
	uint32_t n_places;
	struct dt_graph_place *places; /* n_places, malloc'd */
	uint32_t n_edges;
	struct dt_graph_edge *edges; /* n_edges, malloc'd */
	uint32_t n_copy_places;	     /* places of copies */
	bool truncated;		     /* places or edges beyond the maxima were left out */
};

/*
 * Builds the picture of r into g (which then points into r: free g first). Returns 0,
 * or -ENOMEM (g is then empty). Places and edges beyond DT_GRAPH_MAX_* are left out and
 * g->truncated says so.
 */
int dt_graph_build(const struct dt_report *r, struct dt_graph *g);
void dt_graph_free(struct dt_graph *g);

/* "10 copies, 8 filtered, 2 dropped": how many copies passed a copy place pl and how those
 * that ended there ended, into buf (len bytes; at most DT_GRAPH_SUMMARY_MAX needed).
 * Returns what snprintf() returns. */
#define DT_GRAPH_SUMMARY_MAX 192
int dt_graph_copy_summary(const struct dt_graph_place *pl, char *buf, size_t len);

/* The dot text of r's picture. Returns 0, -ENOMEM, or -EIO when f reports an error. */
int dt_render_report_dot(FILE *f, const struct dt_report *r);

/*
 * Runs `dot -Tsvg` (through PATH) on the dot text dot (len bytes) and returns what it
 * wrote in *svg (malloc'd, NUL-terminated, *svg_len bytes before the NUL; the caller frees
 * it). dot's own messages go to stderr. Returns 0; -ENOENT when there is no dot to run
 * (or another errno of posix_spawnp); -EPROTO when dot failed (a status other than 0, or
 * no SVG); -ETIMEDOUT when it hung (it is killed); -EFBIG above DT_SVG_MAX; -ENOMEM.
 */
int dt_dot_to_svg(const char *dot, size_t len, char **svg, size_t *svg_len);

/* r's picture as SVG, into *svg as dt_dot_to_svg() does, and with its errors. */
int dt_render_report_svg_mem(const struct dt_report *r, char **svg, size_t *svg_len);

#endif /* DT_RENDER_GRAPH_H */
