/* SPDX-License-Identifier: MIT */
/*
 * ledger.c - the next agent's reading of the previous one's ledger (ledger.h).
 */
#include <string.h>

#include "ledger.h"

bool dt_ledger_decode(const void *note, size_t len, struct dt_ledger *led)
{
	if (len != sizeof(*led))
		return false;
	memcpy(led, note, sizeof(*led));
	return led->version == DT_LEDGER_VERSION && led->n_gaps <= DT_NODE_MAX_GAPS &&
	       led->end <= DT_LEDGER_HANDED_OVER;
}

/* Appends g, dropping the oldest when the list is full. */
static void add_gap(struct dt_ledger *led, const struct dt_gap *g)
{
	if (led->n_gaps == DT_NODE_MAX_GAPS) {
		memmove(led->gaps, led->gaps + 1, (DT_NODE_MAX_GAPS - 1) * sizeof(*g));
		led->n_gaps--;
	}
	led->gaps[led->n_gaps++] = *g;
}

/*
 * The window the previous agent's end leaves, and the samples it lost: false when there
 * is none (a handover taken over, or a crash whose data plane survived and whose drained
 * records were all spooled: the ring kept what was sampled meanwhile).
 */
static bool gap_of(const struct dt_ledger *prev, const struct dt_ledger_start *st, bool same_dp,
		   struct dt_gap *g)
{
	memset(g, 0, sizeof(*g));
	g->to_ns = st->attach_ns;
	switch (prev->end) {
	case DT_LEDGER_RUNNING:
		g->cause = DT_GAP_CRASHED;
		g->from_ns = prev->observed_ns;
		if (!same_dp)
			g->flags = DT_GAP_F_LOST_UNKNOWN;
		else if (st->drained > prev->accounted)
			g->lost = st->drained - prev->accounted;
		else
			return false;
		break;
	case DT_LEDGER_STOPPED:
		g->cause = DT_GAP_STOPPED;
		g->from_ns = prev->stopped_ns;
		break;
	default: /* handed over: a gap only when nobody could take the data plane over */
		if (st->took_over)
			return false;
		g->cause = DT_GAP_STOPPED;
		g->from_ns = prev->stopped_ns;
		g->flags = DT_GAP_F_LOST_UNKNOWN;
		break;
	}
	if (g->to_ns <= g->from_ns)
		g->to_ns = g->from_ns + 1;
	return true;
}

bool dt_ledger_resume(const struct dt_ledger *prev, const struct dt_ledger_start *st,
		      struct dt_ledger *led, struct dt_gap *gap)
{
	bool same_dp = prev && st->took_over && prev->dp_id == st->dp_id;
	bool has_gap = prev && gap_of(prev, st, same_dp, gap);

	memset(led, 0, sizeof(*led));
	if (prev)
		*led = *prev;
	led->version = DT_LEDGER_VERSION;
	led->end = DT_LEDGER_RUNNING;
	led->stopped_ns = 0;
	led->observed_ns = st->attach_ns;
	/* The data plane counts its own ring-full; those of one that is gone stay counted. */
	if (prev && !same_dp)
		led->ring_full_base = prev->lost[DT_LOSS_RING_FULL];
	led->rejected_base = led->lost[DT_LOSS_REJECTED];
	led->dp_id = st->dp_id;
	led->accounted = st->drained; /* what is not spooled of it is counted now */
	if (has_gap) {
		led->lost[DT_LOSS_AGENT_CRASH] += gap->lost;
		add_gap(led, gap);
	}
	return has_gap;
}
