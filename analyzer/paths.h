/* SPDX-License-Identifier: MIT */
/*
 * paths.h - from samples to per-packet paths and per-hop latency statistics.
 *
 * The analyzer keeps, per task, every sample ("observation") of its packets. Building a
 * report groups the observations by packet identity (tuple, IPv4 id, ident), orders each
 * packet's hops, and summarises the latency between consecutive hops.
 *
 * Ordering follows the brief: the first hop is known from its edge role (port-in); the
 * hops inside one node are ordered by timestamp (exact: one clock); nodes are chained by
 * hand-off (an uplink-out sample of node A and an uplink-in sample of node B with the
 * same outer source and destination address mean the packet went from A to B), so
 * clock skew between nodes cannot reorder a path. Nodes that no hand-off reaches follow
 * in order of their earliest timestamp. It is a sort, independent of device types.
 */
#ifndef DT_PATHS_H
#define DT_PATHS_H

#include <stddef.h>

#include "dt_proto.h"

/* One sample, with the names the batch it came in resolved. */
struct dt_obs {
	char node[DT_NAME_MAX];
	char ifname[DT_IFNAME_MAX];
	struct dt_wire_sample s;
};

/*
 * Fills r->packets / r->n_packets (ordered by the first hop's timestamp),
 * r->stats / r->n_stats (ordered along the path), r->task.colored (packets with a
 * port-in hop) and r->task.delivered (packets with a port-out hop). r->task's other
 * fields and r->lost are left as the caller set them. obs is not modified.
 * Returns 0 or -ENOMEM (then r owns nothing new).
 */
int dt_paths_build(const struct dt_obs *obs, size_t n, struct dt_report *r);

#endif /* DT_PATHS_H */
