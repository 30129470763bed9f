// SPDX-License-Identifier: MIT
/*
 * test_silent.c - the nodes the analyzer stopped hearing (analyzer/silent.c): who falls
 * silent, since when, who is heard again, what a report learns of them (their window and
 * their instances), and what is forgotten.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "silent.h"

#define MS 1000000ull
#define T0 (1700000000000ull * MS) /* realtime of the first snapshot */
#define M0 5000ull		   /* its monotonic time, ms */
#define VNI 100u
#define I2 0x0a000002u /* h2's instance, 10.0.0.2 */

static struct dt_endpoint ep_h2 = {.vni = VNI, .addr = I2};
static struct dt_node_state h1 = {.node = "h1"};
static struct dt_node_state h2 = {
	.node = "h2",
	.n_endpoints = 1,
	.endpoints = &ep_h2,
	.n_gaps = 1,
	.gaps = {{.from_ns = T0 - 60000 * MS, .to_ns = T0 - 59000 * MS, .cause = DT_GAP_STOPPED}},
};
static struct dt_silent s = {.lookback_ns = 7000 * MS};

static void snap(const struct dt_node_state *prev, uint32_t n_prev, uint64_t then_ms,
		 const struct dt_node_state *cur, uint32_t n_cur, uint64_t now_ms)
{
	const uint64_t then_ns = T0 + (then_ms - M0) * MS;

	cr_assert_eq(dt_silent_update(&s, prev, n_prev, then_ns, then_ms, cur, n_cur, now_ms), 0);
}

static void teardown(void)
{
	dt_silent_free(&s);
}

TestSuite(silent, .fini = teardown);

Test(silent, a_node_that_leaves_the_snapshot_is_silent_since_it_was_last_there)
{
	const struct dt_node_state both[] = {h1, h2};
	const struct dt_gap *g;
	uint32_t n;

	snap(both, 2, M0, both, 2, M0 + 250);
	cr_assert_null(dt_silent_gaps(&s, "h2", T0 + 250 * MS, &n), "h2 is heard");
	snap(both, 2, M0 + 250, &h1, 1, M0 + 500);

	cr_assert_null(dt_silent_gaps(&s, "h1", T0 + 9000 * MS, &n), "h1 is still heard");
	cr_assert_eq(n, 0);
	g = dt_silent_gaps(&s, "h2", T0 + 9000 * MS, &n);
	cr_assert_not_null(g);
	cr_assert_eq(n, 2, "its own last window, then the silent one");
	cr_assert_eq(g[0].cause, DT_GAP_STOPPED);
	cr_assert_eq(g[1].cause, DT_GAP_SILENT);
	cr_assert_eq(g[1].flags, DT_GAP_F_LOST_UNKNOWN);
	cr_assert_eq(g[1].from_ns, T0 + 250 * MS - 7000 * MS,
		     "opens the lookback before it was last there");
	cr_assert_eq(g[1].to_ns, T0 + 9000 * MS, "open until the report's time");
	cr_assert_str_eq(dt_silent_host(&s, VNI, I2), "h2", "its instance is where it was");
	cr_assert_null(dt_silent_host(&s, VNI + 1, I2));
}

Test(silent, a_silent_node_keeps_the_time_it_was_last_heard_of)
{
	const struct dt_node_state both[] = {h1, h2};
	const struct dt_gap *g;
	uint32_t n;

	snap(both, 2, M0, &h1, 1, M0 + 250);
	snap(&h1, 1, M0 + 250, &h1, 1, M0 + 500);
	snap(&h1, 1, M0 + 500, &h1, 1, M0 + 750);
	g = dt_silent_gaps(&s, "h2", T0 + 1000 * MS, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(g[1].from_ns, T0 - 7000 * MS);
}

Test(silent, a_node_heard_again_is_no_longer_silent)
{
	const struct dt_node_state both[] = {h1, h2};
	uint32_t n;

	snap(both, 2, M0, &h1, 1, M0 + 250);
	cr_assert_not_null(dt_silent_gaps(&s, "h2", T0 + 300 * MS, &n));
	snap(&h1, 1, M0 + 250, both, 2, M0 + 500);
	cr_assert_null(dt_silent_gaps(&s, "h2", T0 + 600 * MS, &n));
	cr_assert_eq(n, 0);
	cr_assert_null(dt_silent_host(&s, VNI, I2), "the live hosts answer for it again");
}

Test(silent, a_node_silent_for_longer_than_it_is_kept_is_forgotten)
{
	const struct dt_node_state both[] = {h1, h2};
	uint32_t n;

	snap(both, 2, M0, &h1, 1, M0 + 250);
	snap(&h1, 1, M0 + 250, &h1, 1, M0 + DT_SILENT_KEEP_MS);
	cr_assert_not_null(dt_silent_gaps(&s, "h2", T0, &n), "kept for DT_SILENT_KEEP_MS");
	snap(&h1, 1, M0 + DT_SILENT_KEEP_MS, &h1, 1, M0 + DT_SILENT_KEEP_MS + 1);
	cr_assert_null(dt_silent_gaps(&s, "h2", T0, &n), "then forgotten");
}

Test(silent, every_node_of_an_empty_snapshot_falls_silent)
{
	const struct dt_node_state both[] = {h1, h2};
	uint32_t n;

	/* A collector that stopped relaying: all of its nodes at once. */
	snap(both, 2, M0, NULL, 0, M0 + 250);
	cr_assert_not_null(dt_silent_gaps(&s, "h1", T0, &n));
	cr_assert_eq(n, 1, "h1 reported no window of its own");
	cr_assert_not_null(dt_silent_gaps(&s, "h2", T0, &n));
	cr_assert_eq(n, 2);
}
