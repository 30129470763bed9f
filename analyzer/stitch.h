/* SPDX-License-Identifier: MIT */
/*
 * stitch.h - windowed, NAT-aware attribution of samples to tasks (VTrace's
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
 *  4. A later fragment of a datagram (offset > 0: no ports, no ident) is attributed like
 *     its datagram's first fragment as seen at the same place (same addresses, protocol
 *     and IPv4 id), taking its canonical tuple and ident, so that the fragments of one
 *     datagram are one datagram to paths.h. Until that first fragment is attributed it
 *     is held like any other sample.
 *  5. What still matches nothing is held.
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
 *
 * Durability. A held sample was acknowledged to its sender, so the caller stores it with
 * the batch that brought it and deletes it with whatever releases it (attributed, or
 * counted unmatched or after_end). Each held sample has an id, monotonic, that names its
 * record in the store. The stitcher tells what changed since the caller last stored it
 * (dt_stitch_saved()): the held samples not saved yet (always the newest ones), and the
 * saved ids released since. A caller whose commit failed forgets the unsaved held samples
 * of a batch the sender will resend (dt_stitch_forget_unsaved()); released ids stay listed
 * until a commit succeeds. After a restart dt_stitch_restore_held() puts the stored held
 * samples back, and dt_stitch_relearn() learns the translations again from the restored
 * observations (stitch.c says, above it, why that loses nothing).
 */
#ifndef DT_STITCH_H
#define DT_STITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attribute.h"
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

/* A held sample, and the id of its record in the caller's store. */
struct dt_stitch_held {
	uint64_t id;
	struct dt_stitch_in in;
};

/* The cumulative counters, as one record (the analyzer stores them). */
struct dt_stitch_counters {
	uint64_t samples, attributed, late, unmatched, after_end, learned, nat_full, nomem, windows;
};

struct dt_stitch; /* stitch.c */

/* A new stitcher over tasks (which must outlive it), window_ms the window; NULL without
 * memory. */
struct dt_stitch *dt_stitch_new(struct dt_tasks *tasks, uint64_t window_ms);

/* Frees st (NULL: nothing) and every sample it holds. */
void dt_stitch_free(struct dt_stitch *st);

/* Tells fn(arg, ...) of every translation learned or relearned (fn NULL: nobody). */
void dt_stitch_on_learn(struct dt_stitch *st, dt_stitch_learn_fn fn, void *arg);

/* The held samples, in arrival order (ids ascend): i < dt_stitch_n_held(). */
size_t dt_stitch_n_held(const struct dt_stitch *st);
const struct dt_stitch_held *dt_stitch_held_at(const struct dt_stitch *st, size_t i);

/* The saved held ids released since dt_stitch_saved(): i < dt_stitch_n_released(). */
size_t dt_stitch_n_released(const struct dt_stitch *st);
uint64_t dt_stitch_released_at(const struct dt_stitch *st, size_t i);

/* How many translations the stitcher knows. */
size_t dt_stitch_n_nat(const struct dt_stitch *st);

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

/* Closes the window now, due or not (see the top of the file for what closing does).
 * Without memory to list what it releases, it closes nothing: the next close tries again. */
void dt_stitch_close(struct dt_stitch *st, uint64_t now_ms);

/* The held samples not saved yet: dt_stitch_unsaved(st) .. dt_stitch_n_held(st). */
size_t dt_stitch_unsaved(const struct dt_stitch *st);

/* The caller stored the unsaved held samples and deleted the released ids: both lists
 * start afresh. */
void dt_stitch_saved(struct dt_stitch *st);

/* Forgets the unsaved held samples (their batch was not stored and will be resent). The
 * counters are the caller's to put back (dt_stitch_counters_set()). */
void dt_stitch_forget_unsaved(struct dt_stitch *st);

/*
 * Puts back a held sample read from the store under id (ids ascending, before any new
 * sample). Its arrival is taken as now_ms: the analyzer's clock restarted, and the sample
 * waits a whole window again for the samples that can attribute it (its sender's
 * collectors resend what the analyzer had not acknowledged). It is saved already and not
 * counted again. Returns 0, -EINVAL (ids out of order) or -ENOMEM.
 */
int dt_stitch_restore_held(struct dt_stitch *st, uint64_t id, const struct dt_stitch_in *in,
			   uint64_t now_ms);

/*
 * Learns the translations (and the first fragments, stitch.h step 4) again from the
 * observations of the active tasks (after a restart, once they are restored), without
 * counting them again. Returns 0 or -ENOMEM.
 */
int dt_stitch_relearn(struct dt_stitch *st);

void dt_stitch_counters_get(const struct dt_stitch *st, struct dt_stitch_counters *c);
void dt_stitch_counters_set(struct dt_stitch *st, const struct dt_stitch_counters *c);

/* The counters, by value. */
static inline struct dt_stitch_counters dt_stitch_counters(const struct dt_stitch *st)
{
	struct dt_stitch_counters c;

	dt_stitch_counters_get(st, &c);
	return c;
}

#endif /* DT_STITCH_H */
