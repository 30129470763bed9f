/* SPDX-License-Identifier: MIT */
/*
 * reports.c - reports: a task's report built from its observations, and the final report
 * stored when a task ends.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer_int.h"
#include "dt_time.h"
#include "dt_tuple.h"

uint64_t ana_report_lost(const struct dt_report *r)
{
	uint64_t n = 0;

	for (int i = 0; i < DT_LOSS_MAX; i++) {
		n += r->lost[i];
	}
	return n;
}

/*
 * A packet whose samples never reached the analyzer (a full ring or spool, see lost) looks
 * vanished. When both happen, the verdict says so, so that nobody reads a lost sample as
 * a lost packet.
 */
static void note_lost_samples(struct dt_report *r)
{
	uint64_t lost = ana_report_lost(r);
	size_t len = strlen(r->verdict.sentence);

	if (!r->verdict.vanished || !lost || len >= sizeof(r->verdict.sentence) - 1)
		return;
	snprintf(r->verdict.sentence + len, sizeof(r->verdict.sentence) - len,
		 "; %llu samples were lost before analysis (see lost), so some of the vanished "
		 "packets may have been delivered",
		 (unsigned long long)lost);
}

/* How many of the held samples were restored after a restart and still wait (held ids
 * ascend, so they come first). Lock held. */
static size_t restored_held(const struct analyzer *a)
{
	size_t n = 0;

	while (n < dt_stitch_n_held(a->stitch) &&
	       dt_stitch_held_at(a->stitch, n)->id <= a->restored_held_upto) {
		n++;
	}
	return n;
}

void ana_loss_totals(const struct analyzer *a, uint64_t lost[DT_LOSS_MAX], uint64_t *unmatched)
{
	struct dt_stitch_counters sc;

	memset(lost, 0, sizeof(lost[0]) * DT_LOSS_MAX);
	for (const struct node_loss *n = a->losses; n; n = n->next) {
		for (int i = 0; i < DT_LOSS_MAX; i++) {
			lost[i] += n->lost[i];
		}
	}
	dt_stitch_counters_get(a->stitch, &sc);
	*unmatched = sc.unmatched;
}

/* now - base, never below zero (a node first heard after the task was created counts
 * whole; a counter never goes down). */
static uint64_t since(uint64_t now, uint64_t base)
{
	return now > base ? now - base : 0;
}

/* What a report knows of the nodes: the live ones and the silent ones, at its time. */
struct report_nodes {
	const struct dt_hosts *live;
	struct dt_silent *silent;
	uint64_t now_ns;
};

/* The node hosting (vni, addr) among the live ones, else among the silent ones (where it
 * was when last heard of), for the report's destinations. */
static const char *host_of(const void *arg, uint32_t vni, uint32_t addr)
{
	const struct report_nodes *rn = arg;
	const char *node = dt_hosts_node(rn->live, vni, addr);

	return node ? node : dt_silent_host(rn->silent, vni, addr);
}

/*
 * The windows in which node's data plane did not observe: as a live node's latest state
 * says (its last DT_NODE_MAX_GAPS), or a silent node's last state says plus the window
 * since it was last heard of (silent.c); NULL when there are none. A report asks once per
 * node it needs (paths_blind.c), so a scan of the nodes does.
 *
 * Only the live nodes' states, not a record of their own: every agent heartbeat (200 ms by
 * default) carries its node's last DT_NODE_MAX_GAPS windows, so a restarted analyzer knows
 * them again within a heartbeat, before it judges a resumed task (whose packets stay in
 * flight a window after the restart). Persisting them would add nothing a node can still
 * tell, and could not add what it did not: a dead agent reports no window until an agent
 * runs again (until then the analyzer knows only that it is silent), and a task that ended
 * while the analyzer was stopped is judged at its restart without any node's state, its
 * destinations included.
 */
static const struct dt_gap *gaps_of(const void *arg, const char *node, uint32_t *n)
{
	const struct report_nodes *rn = arg;
	const struct dt_hosts *h = rn->live;

	for (uint32_t i = 0; i < h->n_nodes; i++) {
		if (strncmp(h->nodes[i].node, node, sizeof(h->nodes[i].node)) == 0) {
			*n = h->nodes[i].n_gaps;
			return *n ? h->nodes[i].gaps : NULL;
		}
	}
	return dt_silent_gaps(rn->silent, node, rn->now_ns, n);
}

int ana_build_report(struct analyzer *a, struct dt_task *task, bool packets, struct dt_report *r)
{
	const uint64_t now_ns = dt_clock_ns(CLOCK_REALTIME);
	const struct report_nodes nodes = {
		.live = &a->hosts, .silent = &a->silent, .now_ns = now_ns};
	struct dt_paths_ctx ctx = {
		.strs = a->strs,
		.prefixes = &task->prefixes,
		.now_ns = now_ns,
		.now_ms = dt_mono_ms(),
		.window_ms = a->cfg->window_ms,
		.host_of = host_of,
		.host_arg = &nodes,
		.gaps_of = gaps_of,
		.no_packets = !packets,
	};
	uint64_t lost[DT_LOSS_MAX], unmatched;
	int rv;

	dt_stitch_tick(a->stitch, ctx.now_ms);
	/* A final report judges what there is; a live one waits for samples held across a
	 * restart, which may be the next hops of its packets. */
	ctx.n_held_restored = dt_task_state_terminal(task->state) ? 0 : restored_held(a);
	memset(r, 0, sizeof(*r));
	dt_task_info_fill(task, &r->task);
	if ((rv = dt_paths_build(&ctx, task->obs, task->n_obs, r))) {
		return rv;
	}
	task->delivered = r->task.delivered;
	/* What the deployment lost and could not match while the task existed. */
	ana_loss_totals(a, lost, &unmatched);
	for (int i = 0; i < DT_LOSS_MAX; i++) {
		r->lost[i] = since(lost[i], task->lost_base[i]);
	}
	note_lost_samples(r);
	r->unmatched = since(unmatched, task->unmatched_base);
	r->window_ms = a->cfg->window_ms;
	return 0;
}

int ana_finalize(struct analyzer *a, struct dt_task *task)
{
	struct dt_stitch_counters c;
	msgpack_sbuffer sb;
	struct dt_report r;
	int rv;

	task->final_pending = true;
	msgpack_sbuffer_init(&sb);
	if ((rv = ana_build_report(a, task, true, &r)) != 0) {
		goto out;
	}
	r.task.delivered = task->delivered;
	if ((rv = dt_report_encode(&sb, &r)) != 0) {
		dt_report_free(&r);
		rv = -EINVAL;
		goto out;
	}
	dt_report_free(&r);
	if ((rv = dt_taskstore_begin(a->store)) != 0) {
		goto out;
	}
	/*
	 * With everything else that changed: the report may hold observations a window
	 * released from held samples just now, and their held records must go in this
	 * commit, or a restart would find them held again and count them a second time.
	 */
	dt_stitch_counters_get(a->stitch, &c);
	if ((rv = ana_persist_write(a, &c)) != 0 ||
	    (rv = dt_taskstore_put_task(a->store, task)) != 0 ||
	    (rv = dt_taskstore_put_report(a->store, task->id, sb.data, sb.size)) != 0 ||
	    (rv = dt_taskstore_del_obs(a->store, task->id)) != 0) {
		dt_taskstore_abort(a->store);
		goto out;
	}
	if ((rv = dt_taskstore_commit(a->store)) != 0) {
		goto out;
	}
	ana_persisted(a, &c);
	task->final_pending = false;
	task->dirty = false;
	dt_task_drop_obs(task);
	dt_info("DT-ANA-TASK-END", "task %u (%s) %s: %s", task->id, task->tenant_name,
		dt_task_state_name(task->state), task->status_text);
out:
	msgpack_sbuffer_destroy(&sb);
	if (rv) {
		ana_store_failed(a, "store a final report", rv);
	}
	return rv;
}
