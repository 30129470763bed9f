/* SPDX-License-Identifier: MIT */
/*
 * ledger.h - what an agent keeps in its spool so that the next agent of its node counts
 * what it lost and knows when the node did not observe.
 *
 * The ledger is the spool's note (dt_spool.h): committed with every batch spooled, and on
 * its own at each heartbeat interval and at exit. It holds the loss counters (cumulative
 * over the node's agents), how many of the records drained from the data plane were
 * accounted for (spooled in a batch, or counted lost after draining), from when a sample
 * drained later could date, how the agent ended, and the node's last DT_NODE_MAX_GAPS
 * windows without observation.
 *
 * The next agent compares it with the data plane it finds (dt_ledger_resume()):
 * - the previous agent died (the ledger says it was running) and its data plane is still
 *   pinned: the records it drained (drained.h) minus those it accounted for were drained and
 *   never spooled. They are counted as agent-crash, with a CRASHED gap from observed_ns to
 *   this agent's start, lost = their number;
 * - it died and its data plane went with it (pins in a mount namespace that ended): a
 *   CRASHED gap with DT_GAP_F_LOST_UNKNOWN, from observed_ns to this agent's attach;
 * - it stopped (SIGTERM: detached, unpinned): a STOPPED gap from the moment it detached to
 *   this agent's attach;
 * - it handed over (SIGUSR1) and this agent took the data plane over: no gap. (Handed over
 *   but the pins are gone: a STOPPED gap with DT_GAP_F_LOST_UNKNOWN, what the ring held is
 *   lost.)
 */
#ifndef DT_LEDGER_H
#define DT_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "dt_proto.h"

#define DT_LEDGER_VERSION 1

/* How the agent that wrote a ledger ended. */
enum dt_ledger_end {
	DT_LEDGER_RUNNING = 0,	   /* it had not: if a ledger says so, its agent died */
	DT_LEDGER_STOPPED = 1,	   /* it detached its data plane (stopped_ns) */
	DT_LEDGER_HANDED_OVER = 2, /* it left its data plane running for the next agent */
};

/* The spool's note (host byte order: the spool is local to its machine). */
struct dt_ledger {
	uint32_t version;	    /* DT_LEDGER_VERSION */
	uint32_t end;		    /* enum dt_ledger_end */
	uint64_t dp_id;		    /* the data plane the drained records are counted in */
	uint64_t accounted;	    /* records drained from it that were spooled or counted lost */
	uint64_t lost[DT_LOSS_MAX]; /* as shipped: cumulative over the node's agents */
	uint64_t ring_full_base;    /* ring-full counted by earlier data planes of the node */
	uint64_t rejected_base;	    /* rejected counted by earlier agents */
	/* Wall clock (ns): every sample drained after this ledger was committed, and every one
	 * drained and not yet spooled then, has a timestamp at or after it. */
	uint64_t observed_ns;
	uint64_t stopped_ns; /* end STOPPED or HANDED_OVER: when it stopped observing */
	uint32_t n_gaps;
	uint32_t pad;
	struct dt_gap gaps[DT_NODE_MAX_GAPS]; /* oldest first */
};

/* What the starting agent found. */
struct dt_ledger_start {
	bool took_over;	    /* a previous agent's pinned data plane */
	uint64_t dp_id;	    /* its identity (drained.h) */
	uint64_t drained;   /* records drained from it so far, by every agent */
	uint64_t attach_ns; /* wall clock when this agent's programs were attached */
};

/*
 * The ledger of the starting agent (*led) from the previous one's (prev: NULL when the
 * spool has none), and the gap this start closes: returns true and fills *gap (also
 * appended to led->gaps), or false when there is none. led->lost[DT_LOSS_AGENT_CRASH] then
 * includes gap->lost.
 */
bool dt_ledger_resume(const struct dt_ledger *prev, const struct dt_ledger_start *st,
		      struct dt_ledger *led, struct dt_gap *gap);

/* Reads the ledger of a spool note of len bytes into *led: false when it is none. */
bool dt_ledger_decode(const void *note, size_t len, struct dt_ledger *led);

#endif /* DT_LEDGER_H */
