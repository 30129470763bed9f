/* SPDX-License-Identifier: MIT */
/* The agent's ledger: what the next agent counts lost, and the window it reports. */
#include <string.h>

#include <criterion/criterion.h>

#include "ledger.h"

/* A ledger of an agent that spooled 90 of 100 drained records of data plane 7. */
static struct dt_ledger prev_of(enum dt_ledger_end end)
{
	struct dt_ledger p = {
		.version = DT_LEDGER_VERSION,
		.end = end,
		.dp_id = 7,
		.accounted = 90,
		.observed_ns = 1000,
		.stopped_ns = 2000,
	};

	p.lost[DT_LOSS_RING_FULL] = 3;
	p.lost[DT_LOSS_AGENT_CRASH] = 5;
	return p;
}

Test(ledger, a_crash_with_the_data_plane_pinned_counts_drained_minus_accounted)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_RUNNING), led;
	struct dt_ledger_start st = {
		.took_over = true, .dp_id = 7, .drained = 100, .attach_ns = 5000};
	struct dt_gap g;

	cr_assert(dt_ledger_resume(&prev, &st, &led, &g));
	cr_assert_eq(g.cause, DT_GAP_CRASHED);
	cr_assert_eq(g.flags, 0);
	cr_assert_eq(g.lost, 10);
	cr_assert_eq(g.from_ns, 1000);
	cr_assert_eq(g.to_ns, 5000);
	cr_assert_eq(led.lost[DT_LOSS_AGENT_CRASH], 15, "added to the earlier agents' loss");
	cr_assert_eq(led.lost[DT_LOSS_RING_FULL], 3);
	cr_assert_eq(led.ring_full_base, 0, "the same data plane still counts its ring-full");
	cr_assert_eq(led.accounted, 100, "the lost ones are accounted now");
	cr_assert_eq(led.end, DT_LEDGER_RUNNING);
	cr_assert_eq(led.n_gaps, 1);
	cr_assert_eq(memcmp(&led.gaps[0], &g, sizeof(g)), 0);
}

Test(ledger, a_crash_that_lost_nothing_is_no_gap)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_RUNNING), led;
	struct dt_ledger_start st = {.took_over = true, .dp_id = 7, .drained = 90};
	struct dt_gap g;

	cr_assert_not(dt_ledger_resume(&prev, &st, &led, &g));
	cr_assert_eq(led.lost[DT_LOSS_AGENT_CRASH], 5);
}

Test(ledger, a_crash_whose_data_plane_is_gone_is_lost_unknown)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_RUNNING), led;
	struct dt_ledger_start st = {
		.took_over = false, .dp_id = 8, .drained = 0, .attach_ns = 5000};
	struct dt_gap g;

	cr_assert(dt_ledger_resume(&prev, &st, &led, &g));
	cr_assert_eq(g.cause, DT_GAP_CRASHED);
	cr_assert_eq(g.flags, DT_GAP_F_LOST_UNKNOWN);
	cr_assert_eq(g.lost, 0);
	cr_assert_eq(g.from_ns, 1000);
	cr_assert_eq(led.lost[DT_LOSS_AGENT_CRASH], 5);
	cr_assert_eq(led.ring_full_base, 3, "the dead data plane's ring-full stays counted");
	cr_assert_eq(led.accounted, 0);
	cr_assert_eq(led.dp_id, 8);
}

Test(ledger, another_data_plane_pinned_is_not_counted)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_RUNNING), led;
	struct dt_ledger_start st = {.took_over = true, .dp_id = 9, .drained = 500};
	struct dt_gap g;

	cr_assert(dt_ledger_resume(&prev, &st, &led, &g));
	cr_assert_eq(g.flags, DT_GAP_F_LOST_UNKNOWN);
	cr_assert_eq(led.lost[DT_LOSS_AGENT_CRASH], 5);
}

Test(ledger, a_stop_is_a_window_from_the_detach_to_the_next_attach)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_STOPPED), led;
	struct dt_ledger_start st = {.took_over = false, .dp_id = 8, .attach_ns = 2500};
	struct dt_gap g;

	cr_assert(dt_ledger_resume(&prev, &st, &led, &g));
	cr_assert_eq(g.cause, DT_GAP_STOPPED);
	cr_assert_eq(g.flags, 0);
	cr_assert_eq(g.from_ns, 2000);
	cr_assert_eq(g.to_ns, 2500);
}

Test(ledger, a_handover_taken_over_is_no_gap_and_one_not_taken_is)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_HANDED_OVER), led;
	struct dt_ledger_start st = {.took_over = true, .dp_id = 7, .drained = 90};
	struct dt_gap g;

	cr_assert_not(dt_ledger_resume(&prev, &st, &led, &g));
	st = (struct dt_ledger_start){.took_over = false, .dp_id = 8, .attach_ns = 3000};
	cr_assert(dt_ledger_resume(&prev, &st, &led, &g));
	cr_assert_eq(g.cause, DT_GAP_STOPPED);
	cr_assert_eq(g.flags, DT_GAP_F_LOST_UNKNOWN);
}

Test(ledger, keeps_the_last_gaps_oldest_first)
{
	struct dt_ledger prev = prev_of(DT_LEDGER_STOPPED), led;
	struct dt_ledger_start st = {.dp_id = 8};
	struct dt_gap g;

	for (unsigned i = 0; i < DT_NODE_MAX_GAPS + 3; i++) {
		prev.stopped_ns = 100 * (i + 1);
		st.attach_ns = 100 * (i + 1) + 50;
		cr_assert(dt_ledger_resume(&prev, &st, &led, &g));
		prev = led;
		prev.end = DT_LEDGER_STOPPED;
	}
	cr_assert_eq(led.n_gaps, DT_NODE_MAX_GAPS);
	cr_assert_eq(led.gaps[0].from_ns, 400, "the three oldest were dropped");
	cr_assert_eq(led.gaps[DT_NODE_MAX_GAPS - 1].from_ns, 100 * (DT_NODE_MAX_GAPS + 3));
}

Test(ledger, a_first_start_has_no_gap)
{
	struct dt_ledger led;
	struct dt_ledger_start st = {.dp_id = 8, .attach_ns = 10};
	struct dt_gap g;

	cr_assert_not(dt_ledger_resume(NULL, &st, &led, &g));
	cr_assert_eq(led.version, DT_LEDGER_VERSION);
	cr_assert_eq(led.observed_ns, 10);
}

Test(ledger, decodes_only_its_own_version)
{
	struct dt_ledger l = prev_of(DT_LEDGER_RUNNING), out;

	cr_assert(dt_ledger_decode(&l, sizeof(l), &out));
	cr_assert_not(dt_ledger_decode(&l, sizeof(l) - 1, &out));
	l.version++;
	cr_assert_not(dt_ledger_decode(&l, sizeof(l), &out));
}
