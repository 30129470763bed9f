/* SPDX-License-Identifier: MIT */
/*
 * silent.h - the nodes the analyzer stopped hearing: their last state, and since when.
 *
 * The collectors relay the states of the agents they heard recently (agent_window_ms);
 * the analyzer takes a snapshot of them at every tick. A node that leaves the snapshot is
 * not observing as far as anyone can tell: its agent or its host is down, or cut off from
 * its collector. Until it is heard again, the packets that vanished on their way into it
 * are unobserved there, not lost (paths_blind.c), and its instances are still where it
 * last said they were, for the destinations of the reports.
 */
#ifndef DT_ANALYZER_SILENT_H
#define DT_ANALYZER_SILENT_H

#include <stdint.h>

#include "dt_link_msg.h"
#include "tasks.h"

/*
 * How long before the last snapshot that had a node its window opens, by default: the
 * analyzer keeps a node's state collector_window_ms after a collector last relayed it; a
 * collector relays the agents it heard within its agent_window_ms (3 s by default) at each
 * of its heartbeats (200 ms); the analyzer takes a snapshot every window_ms / 4; and the
 * agent may have died any time after its last heartbeat, with what it had drained and not
 * yet sent (up to a batch delay before). dt_silent_lookback_ns() adds them up, with a
 * second of margin. Too wide costs little: only a packet that vanished on its way into
 * the node shortly before it fell silent reads unobserved instead of lost, and it may well
 * have been seen there.
 */
#define DT_SILENT_AGENT_WINDOW_MS 3000ull /* the collector's default agent_window_ms */
#define DT_SILENT_MARGIN_MS 1000ull

/* The lookback of an analyzer whose collector_window_ms is given. */
static inline uint64_t dt_silent_lookback_ns(unsigned collector_window_ms)
{
	return (collector_window_ms + DT_SILENT_AGENT_WINDOW_MS + DT_SILENT_MARGIN_MS) * 1000000ull;
}

/* How long a silent node is remembered; at most this many are. */
#define DT_SILENT_KEEP_MS (3600ull * 1000)
#define DT_SILENT_MAX 4096u

struct dt_silent {
	struct dt_node_state *nodes; /* their last states */
	uint64_t *heard_ns;	     /* per node: the last snapshot that had it (CLOCK_REALTIME) */
	uint64_t *heard_ms;	     /* the same on the monotonic clock */
	uint32_t n, cap;
	uint64_t lookback_ns;			  /* set by the owner: dt_silent_lookback_ns() */
	struct dt_hosts hosts;			  /* who hosts what among them */
	struct dt_gap gaps[DT_NODE_MAX_GAPS + 1]; /* dt_silent_gaps()'s answer */
};

/*
 * The snapshot taken at (then_ns, then_ms), prev[0..n_prev), is replaced by cur[0..n_cur)
 * at now_ms: the nodes of prev that cur lacks fall silent (then is the last time they
 * were heard of), those of cur are heard again, and those silent longer than
 * DT_SILENT_KEEP_MS are forgotten. Each change is logged once. 0, or -ENOMEM: then s is
 * as it was.
 */
int dt_silent_update(struct dt_silent *s, const struct dt_node_state *prev, uint32_t n_prev,
		     uint64_t then_ns, uint64_t then_ms, const struct dt_node_state *cur,
		     uint32_t n_cur, uint64_t now_ms);

/* The silent node hosting (vni, addr) (as dt_hosts_node()), or NULL. */
const char *dt_silent_host(const struct dt_silent *s, uint32_t vni, uint32_t addr);

/*
 * A silent node's windows without observation: those it reported last, then the window
 * from lookback_ns before the last snapshot that had it up to now_ns (DT_GAP_SILENT, its loss
 * unknown). NULL, *n 0 when node is not silent. Valid until the next call.
 */
const struct dt_gap *dt_silent_gaps(struct dt_silent *s, const char *node, uint64_t now_ns,
				    uint32_t *n);

void dt_silent_free(struct dt_silent *s);

#endif
