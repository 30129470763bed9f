/* SPDX-License-Identifier: MIT */
/*
 * stitch.h - windowed, NAT-aware attribution of samples to tasks (the brief's VTrace
 * "NAT-aware windowed reordering").
 *
 * Samples arrive from several collectors, in any order. Each is attributed to a task and
 * a direction, and given its canonical tuple: the packet's tuple inside any NAT, in the
 * packet's own direction (paths.h groups packets by it). In this order:
 *
 *  1. A sample with DT_SAMPLE_F_NAT (a gateway, or a drop whose conntrack entry has a
 *     translation) is matched by orig, the tuple inside the NAT; a first-hop sample's
 *     task_id is tried first. When orig belongs to a task, the sample also teaches the
 *     translation: its own tuple (the outside form) maps to orig, and, when the task
 *     traces the other direction too, the reversed outside tuple maps to the reversed
 *     orig. (orig may itself be an outside form learned from another gateway: chains of
 *     NATs resolve.)
 *  2. Otherwise the sample's tuple is matched against the task keys (tasks.h: the
 *     request tuple, the reversed tuple for replies; task_id first when set), then
 *     against the translations learned so far.
 *  3. A drop sample with VNI 0 (the kernel does not know the VNI of every skb it frees) is
 *     matched as in 2 under each VNI some task uses; exactly one answer wins, several are
 *     ambiguous.
 *  4. What still matches nothing is held.
 *
 * The window closes when window_ms passed with no new sample, or, under a stream that
 * never pauses, when the oldest held sample has waited DT_STITCH_MAX_WAIT_WINDOWS windows.
 * The caller checks with dt_stitch_tick() (the analyzer does from its main loop, and right
 * before it builds a report). Closing matches every held sample again against the
 * extended sets (repeating while a pass attributes something, so that a held gateway
 * sample can teach a held sample behind it); samples that still match nothing and have
 * waited at least window_ms are counted in unmatched and let go: never silently dropped.
 *
 * Attributing costs O(1) expected per sample: the task keys and the translations are
 * hash tables over the tuple. Not thread-safe; the analyzer serializes access.
 */
#ifndef DT_STITCH_H
#define DT_STITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paths.h"
#include "tasks.h"

#define DT_STITCH_WINDOW_MS_DEFAULT 1000
#define DT_STITCH_WINDOW_MS_MIN 10
#define DT_STITCH_WINDOW_MS_MAX 600000

/* A window closes at the latest when its oldest held sample has waited this many windows. */
#define DT_STITCH_MAX_WAIT_WINDOWS 4

/* Bounds against unbounded memory: beyond them a sample is counted unmatched at once, and
 * a translation is not learned (counted in nat_full). */
#define DT_STITCH_MAX_HELD (1u << 20)
#define DT_STITCH_MAX_NAT (1u << 20)

/*
 * A sample as the stitcher takes it: the observation it becomes, and what attributing it
 * needs besides (kept while it is held, not afterwards).
 */
struct dt_stitch_in {
	struct dt_obs o;      /* dir and canon are filled by the stitcher */
	struct dt_tuple orig; /* DT_SAMPLE_F_NAT: the tuple inside the NAT */
	uint32_t task_id;     /* a first hop's task, else 0 */
};

/*
 * Fills in from the wire sample w, whose names were interned as node, ifname, drop_name
 * and drop_where (DT_STRTAB_NONE for none), arrived at arrival_ms.
 */
void dt_stitch_in_fill(struct dt_stitch_in *in, const struct dt_wire_sample *w, uint32_t node,
		       uint32_t ifname, uint32_t drop_name, uint32_t drop_where,
		       uint64_t arrival_ms);

/* A hash table of tuples (stitch.c). */
struct dt_tmap {
	struct dt_tmap_slot *slots;
	uint32_t n_slots; /* a power of two */
	uint32_t n;
};

struct dt_stitch {
	struct dt_tasks *tasks;
	uint64_t window_ms;

	uint64_t keys_gen;   /* tasks->gen the key index was built for */
	struct dt_tmap keys; /* task keys: exact and any-port */
	uint32_t *vnis;	     /* the distinct VNIs of the task keys */
	size_t n_vnis;
	struct dt_tmap nat; /* learned translations: outside tuple -> inside */

	struct dt_stitch_in *held; /* in arrival order */
	size_t n_held, cap_held;
	uint64_t last_sample_ms; /* arrival of the newest sample */

	/* Counters, cumulative. */
	uint64_t samples;    /* samples given to dt_stitch_add() */
	uint64_t attributed; /* samples attributed to a task (at once or after a window) */
	uint64_t late;	     /* of those, attributed when a window closed */
	uint64_t unmatched;  /* samples attributed to no task (held, then let go; or no room) */
	uint64_t after_end;  /* samples of a task that had just ended (its keys were still being
			      * disarmed): let go and counted here, not as unmatched */
	uint64_t learned;    /* translations learned or changed */
	uint64_t nat_full;   /* translations not learned: the table is full */
	uint64_t nomem;	     /* samples lost to an allocation failure (counted here only) */
	uint64_t windows;    /* windows closed */
};

/* Starts a stitcher over tasks (which must outlive it). window_ms: the window. */
void dt_stitch_init(struct dt_stitch *st, struct dt_tasks *tasks, uint64_t window_ms);
void dt_stitch_free(struct dt_stitch *st);

/*
 * Attributes one sample (see dt_stitch_in_fill()), arrived at now_ms (the caller's
 * monotonic clock, normally in->o.arrival_ms), or holds it. Returns 0, or -ENOMEM (the
 * sample is lost, counted in nomem).
 */
int dt_stitch_add(struct dt_stitch *st, const struct dt_stitch_in *in, uint64_t now_ms);

/* True when the window is due to close at now_ms (see the top of the file). */
bool dt_stitch_due(const struct dt_stitch *st, uint64_t now_ms);

/* Closes the window when due. Returns true when it closed. */
bool dt_stitch_tick(struct dt_stitch *st, uint64_t now_ms);

/* Closes the window now, due or not (see the top of the file for what closing does). */
void dt_stitch_close(struct dt_stitch *st, uint64_t now_ms);

#endif /* DT_STITCH_H */
