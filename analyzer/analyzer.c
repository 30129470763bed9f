/* SPDX-License-Identifier: MIT */
/*
 * analyzer.c - dyetrace-analyzer: the task service (tenants, limits, the lifecycle and its
 * handshake, the store) and the analysis (stitch.h, paths.h).
 *
 * Two threads touch the state, both under a->mu: the ingest server's (on_batch(), for
 * the collectors) and the main loop's (API requests, and every TICK_MS the stitcher's
 * window, the lifecycle step against the node states the collectors relay, and the
 * store). dt_ingest_* calls are made without a->mu held.
 *
 * Durability: a batch is acknowledged only after its observations, the samples it brought
 * that the stitcher holds, the names they refer to and its sender's seq are committed
 * together (persist()). A held sample's record is deleted in the commit that stores what
 * became of it (its observation, or the counter that counts it). A task is written as NEW
 * before it becomes READY and enters the control set. A task that ends is written with
 * its final report, in one transaction (finalize()); from then on the report is served
 * from the store, byte for byte.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "analyzer.h"
#include "dt_ingest.h"
#include "dt_log.h"
#include "dt_time.h"
#include "dt_tuple.h"
#include "paths.h"
#include "stitch.h"
#include "taskstore.h"
#include "strtab.h"
#include "tasks.h"

/* How often the main loop wakes up without API requests: windows, lifecycle, store. */
#define TICK_MS 100

/* What a node last reported as lost, cumulative since its agent started. */
struct node_loss {
	struct node_loss *next;
	char node[DT_NAME_MAX];
	uint64_t lost[DT_LOSS_MAX];
};

/* Highest batch seq stored per sender (collector), for deduplication. */
struct sender_seq {
	struct sender_seq *next;
	char name[DT_NAME_MAX];
	uint64_t seq;
};

struct analyzer {
	const struct dt_analyzer_cfg *cfg;
	pthread_mutex_t mu; /* guards everything below */
	struct dt_tasks tasks;
	struct dt_strtab strs;   /* names the observations refer to */
	uint32_t stored_strs;    /* strs[0..stored_strs) are in the store */
	struct dt_stitch stitch; /* attributes samples to tasks */
	uint64_t restored_held_upto; /* held ids up to it were restored after a restart */
	/* The stitcher's counters as last committed. */
	struct dt_stitch_counters stored_counters;
	struct dt_taskstore *store;
	struct node_loss *losses;
	struct sender_seq *seqs;
	/* The live nodes' states as of the last tick, and who hosts what among them (the
	 * handshake, and the destinations of the packets in reports). */
	struct dt_node_state *nodes;
	uint32_t n_nodes;
	struct dt_hosts hosts;
	struct dt_ingest *ingest;
	uint64_t sent_gen; /* the control generation given to the ingest server */
	nng_socket api;
	uint64_t samples, api_requests, api_malformed, api_refused_token, store_errors;
	uint64_t names_full; /* names not interned: the table is full (they read as "") */
	uint64_t api_by_status[DT_ST_MAX]; /* API replies by status (count_reply()) */
	struct dt_metrics *metrics;
	struct dt_ratelimit rl_api, rl_nomem, rl_auth, rl_store, rl_learn;
	/* on_batch's scratch: a batch's interface names and strings as string table indices */
	uint32_t batch_ifaces[DT_BATCH_MAX_IFACES];
	uint32_t batch_strs[DT_BATCH_MAX_STRINGS];
};

static struct sender_seq *seq_of(struct analyzer *a, const char *name)
{
	struct sender_seq *s;

	for (s = a->seqs; s; s = s->next) {
		if (strcmp(s->name, name) == 0) {
			return s;
		}
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		return NULL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->next = a->seqs;
	a->seqs = s;
	return s;
}

static uint64_t last_seq(void *arg, const char *sender)
{
	struct analyzer *a = arg;
	struct sender_seq *s;
	uint64_t r = 0;

	pthread_mutex_lock(&a->mu);
	for (s = a->seqs; s; s = s->next) {
		if (strcmp(s->name, sender) == 0) {
			r = s->seq;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return r;
}

static void note_loss(struct analyzer *a, const struct dt_batch *b)
{
	struct node_loss *n;

	for (n = a->losses; n; n = n->next) {
		if (strcmp(n->node, b->node) == 0) {
			break;
		}
	}
	if (!n) {
		if (!(n = calloc(1, sizeof(*n)))) {
			return;
		}
		snprintf(n->node, sizeof(n->node), "%s", b->node);
		n->next = a->losses;
		a->losses = n;
	}
	/* Cumulative counters: the latest report wins, unless it went backwards (restart). */
	for (int i = 0; i < DT_LOSS_MAX; i++) {
		if (b->lost[i] > n->lost[i]) {
			n->lost[i] = b->lost[i];
		}
	}
}

/* Heartbeats (and loss-only batches a collector forwards) carry nodes' loss counters. */
static void on_heartbeat(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	struct analyzer *a = arg;

	pthread_mutex_lock(&a->mu);
	note_loss(a, b);
	pthread_mutex_unlock(&a->mu);
}

/* Interns s into the analyzer's names. Returns 0 or -ENOMEM; a full table gives NONE. */
static int intern(struct analyzer *a, const char *s, size_t max, uint32_t *idx)
{
	int rv = dt_strtab_intern(&a->strs, s, max, idx);

	if (rv == -ENOSPC) {
		a->names_full++;
		return 0;
	}
	return rv;
}

/* Interns the names batch b refers to: its node, interfaces and strings. */
static int intern_batch(struct analyzer *a, const struct dt_batch *b, uint32_t *node,
			uint32_t *ifaces, uint32_t *strs)
{
	int rv;

	if ((rv = intern(a, b->node, sizeof(b->node), node))) {
		return rv;
	}
	for (uint32_t i = 0; i < b->n_ifaces && i < DT_BATCH_MAX_IFACES; i++) {
		if ((rv = intern(a, b->ifaces[i], sizeof(b->ifaces[i]), &ifaces[i]))) {
			return rv;
		}
	}
	for (uint32_t i = 0; i < b->n_strings && i < DT_BATCH_MAX_STRINGS; i++) {
		if ((rv = intern(a, b->strings[i], sizeof(b->strings[i]), &strs[i]))) {
			return rv;
		}
	}
	return 0;
}

static uint32_t batch_string(const struct dt_batch *b, const uint32_t *strs, uint16_t i)
{
	return i < b->n_strings && i < DT_BATCH_MAX_STRINGS ? strs[i] : DT_STRTAB_NONE;
}

static void store_failed(struct analyzer *a, const char *what, int rv)
{
	uint64_t suppressed;

	a->store_errors++;
	if (dt_ratelimit_ok(&a->rl_store, 1000, &suppressed)) {
		dt_err("DT-ANA-STORE", "cannot %s: %s (%llu more since the last report)", what,
		       strerror(-rv), (unsigned long long)suppressed);
	}
}

/* Takes back the observations of active tasks that are not in the store (a failed
 * commit), so that the batch's resend does not count them twice. Only for a batch: its
 * observations are the only ones not stored then (see on_batch()). */
static void unstore_obs(struct analyzer *a)
{
	for (size_t i = 0; i < a->tasks.n; i++) {
		struct dt_task *task = a->tasks.v[i];

		while (task->n_obs > task->n_stored) {
			const struct dt_obs *o = &task->obs[--task->n_obs];

			if (dt_obs_counts_colored(o) && task->colored[o->dir]) {
				task->colored[o->dir]--;
			}
		}
	}
}

/*
 * Within an open transaction: new names, new observations of active tasks, tasks marked
 * dirty, the stitcher's held samples not stored yet, the held records it released since
 * (in the same commit as the observations they became), its counters c when they moved,
 * and the meta record. persisted() follows a successful commit.
 */
static int persist_write(struct analyzer *a, const struct dt_stitch_counters *c)
{
	struct dt_taskstore *st = a->store;
	struct dt_stitch *sti = &a->stitch;
	int rv;

	for (uint32_t i = a->stored_strs; i < a->strs.n; i++) {
		if ((rv = dt_taskstore_put_string(st, i, dt_strtab_get(&a->strs, i))) != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < a->tasks.n; i++) {
		struct dt_task *task = a->tasks.v[i];

		if (task->n_obs > task->n_stored &&
		    (rv = dt_taskstore_put_obs(st, task->id, task->n_stored,
					       task->obs + task->n_stored,
					       task->n_obs - task->n_stored)) != 0) {
			return rv;
		}
		if (task->dirty && (rv = dt_taskstore_put_task(st, task)) != 0) {
			return rv;
		}
	}
	/* An ended task whose final report is not stored yet is out of the active list but
	 * may have gained observations (from held samples whose release this commit
	 * records): they are stored with it, until finalize() replaces them by the report. */
	for (size_t i = 0; i < a->tasks.n_all; i++) {
		struct dt_task *task = a->tasks.all[i];

		if (task->final_pending && task->n_obs > task->n_stored &&
		    (rv = dt_taskstore_put_obs(st, task->id, task->n_stored,
					       task->obs + task->n_stored,
					       task->n_obs - task->n_stored)) != 0) {
			return rv;
		}
	}
	for (size_t i = dt_stitch_unsaved(sti); i < sti->n_held; i++) {
		const struct dt_stitch_held *h = &sti->held[i];

		if ((rv = dt_taskstore_put_held(st, h->id, &h->in)) != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < sti->n_released; i++) {
		if ((rv = dt_taskstore_del_held(st, sti->released[i])) != 0) {
			return rv;
		}
	}
	if (memcmp(c, &a->stored_counters, sizeof(*c)) != 0 &&
	    (rv = dt_taskstore_put_counters(st, c)) != 0) {
		return rv;
	}
	return dt_taskstore_put_meta(st, a->tasks.next_id, a->tasks.gen);
}

/* What persist_write() wrote is committed: memory and store agree again. */
static void persisted(struct analyzer *a, const struct dt_stitch_counters *c)
{
	a->stored_strs = a->strs.n;
	for (size_t i = 0; i < a->tasks.n; i++) {
		a->tasks.v[i]->n_stored = a->tasks.v[i]->n_obs;
		a->tasks.v[i]->dirty = false;
	}
	for (size_t i = 0; i < a->tasks.n_all; i++) {
		if (a->tasks.all[i]->final_pending) {
			a->tasks.all[i]->n_stored = a->tasks.all[i]->n_obs;
		}
	}
	dt_stitch_saved(&a->stitch);
	a->stored_counters = *c;
}

/*
 * Writes what changed to the store in one transaction: new names, new observations of
 * active tasks, tasks marked dirty, the counters, the stitcher's held samples (new and
 * released) and its counters, and sender's seq when sender is not NULL. Returns 0 or a
 * negative errno: then nothing of it is stored and memory stays ahead of the store
 * until the next commit (on_batch() takes a failed batch back itself). Lock held.
 */
static int persist(struct analyzer *a, const char *sender, uint64_t seq)
{
	struct dt_taskstore *st = a->store;
	struct dt_stitch_counters c;
	bool changed = sender || a->stored_strs < a->strs.n;
	int rv;

	dt_stitch_counters_get(&a->stitch, &c);
	changed = changed || dt_stitch_unsaved(&a->stitch) < a->stitch.n_held ||
		  a->stitch.n_released > 0 || memcmp(&c, &a->stored_counters, sizeof(c)) != 0;
	for (size_t i = 0; i < a->tasks.n && !changed; i++) {
		changed = a->tasks.v[i]->dirty || a->tasks.v[i]->n_obs > a->tasks.v[i]->n_stored;
	}
	for (size_t i = 0; i < a->tasks.n_all && !changed; i++) {
		changed = a->tasks.all[i]->final_pending &&
			  a->tasks.all[i]->n_obs > a->tasks.all[i]->n_stored;
	}
	if (!changed) {
		return 0;
	}
	if ((rv = dt_taskstore_begin(st)) != 0) {
		goto fail;
	}
	if ((rv = persist_write(a, &c)) != 0 ||
	    (sender && (rv = dt_taskstore_put_seq(st, sender, seq)) != 0)) {
		goto abort;
	}
	if ((rv = dt_taskstore_commit(st)) != 0) {
		goto fail;
	}
	persisted(a, &c);
	return 0;
abort:
	dt_taskstore_abort(st);
fail:
	store_failed(a, "write to the store", rv);
	return rv;
}

/*
 * A batch's commit failed: takes back what it did in memory, since its sender resends
 * it. Its observations and the samples it left held go, and the stitcher's counters are
 * put back as they were before it (c), so that nothing is counted twice. What it taught
 * the stitcher stays: the resend teaches the same.
 */
static void unstore_batch(struct analyzer *a, const struct dt_stitch_counters *c)
{
	unstore_obs(a);
	dt_stitch_forget_unsaved(&a->stitch);
	dt_stitch_counters_set(&a->stitch, c);
}

/*
 * Feeds the batch's samples to the stitcher, with their names resolved into the
 * analyzer's string table, and commits what they became before the batch is
 * acknowledged. Names cannot be interned without memory, or the store fails: then the
 * sender is told to resend the batch.
 */
static int on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	struct analyzer *a = arg;
	const uint32_t *ifaces = a->batch_ifaces, *strs = a->batch_strs;
	struct dt_stitch_counters before;
	struct sender_seq *s;
	uint64_t now = dt_mono_ms(), suppressed;
	uint32_t node;

	pthread_mutex_lock(&a->mu);
	/*
	 * What a window closed since the last commit (observations, released held samples)
	 * is written first, so that a failure below takes back exactly this batch. When
	 * that fails the store is failing: the batch is refused and comes again.
	 */
	if (persist(a, NULL, 0) != 0) {
		pthread_mutex_unlock(&a->mu);
		return DT_ST_FAILED;
	}
	dt_stitch_counters_get(&a->stitch, &before);
	if (b->n_samples && intern_batch(a, b, &node, a->batch_ifaces, a->batch_strs) != 0) {
		bool log = dt_ratelimit_ok(&a->rl_nomem, 1000, &suppressed);

		pthread_mutex_unlock(&a->mu);
		if (log) {
			dt_warn("DT-ANA-NOMEM",
				"no memory for the names of a batch from %s; it will be resent "
				"(%llu more since the last report)",
				b->sender, (unsigned long long)suppressed);
		}
		return DT_ST_FAILED;
	}
	for (uint32_t i = 0; i < b->n_samples; i++) {
		const struct dt_wire_sample *w = &b->samples[i];
		struct dt_stitch_in in;

		dt_stitch_in_fill(&in, w, node,
				  w->iface < b->n_ifaces ? ifaces[w->iface] : DT_STRTAB_NONE,
				  batch_string(b, strs, w->drop_name),
				  batch_string(b, strs, w->drop_where), now);
		/* A failure is counted by the stitcher (nomem); the rest of the batch goes on. */
		dt_stitch_add(&a->stitch, &in, now);
	}
	if (persist(a, b->sender, b->seq) != 0) {
		unstore_batch(a, &before);
		pthread_mutex_unlock(&a->mu);
		return DT_ST_FAILED;
	}
	a->samples += b->n_samples;
	if (b->n_samples) {
		note_loss(a, b);
	}
	if ((s = seq_of(a, b->sender))) {
		s->seq = b->seq;
	}
	pthread_mutex_unlock(&a->mu);
	return DT_ST_OK;
}

/*
 * A packet whose samples never reached the analyzer (a full ring or spool, see lost) looks
 * vanished. When both happen, the verdict says so, so that nobody reads a lost sample as
 * a lost packet.
 */
static void note_lost_samples(struct dt_report *r)
{
	uint64_t lost = 0;
	size_t len = strlen(r->verdict.sentence);

	for (int i = 0; i < DT_LOSS_MAX; i++)
		lost += r->lost[i];
	if (!r->verdict.vanished || !lost || len >= sizeof(r->verdict.sentence) - 1)
		return;
	snprintf(r->verdict.sentence + len, sizeof(r->verdict.sentence) - len,
		 "; %llu samples were lost before analysis (see lost), so some of the vanished "
		 "packets may have been delivered", (unsigned long long)lost);
}

/* How many of the held samples were restored after a restart and still wait (held ids
 * ascend, so they come first). Lock held. */
static size_t restored_held(const struct analyzer *a)
{
	size_t n = 0;

	while (n < a->stitch.n_held && a->stitch.held[n].id <= a->restored_held_upto) {
		n++;
	}
	return n;
}

/*
 * A translation the stitcher learned (lock held: it runs under it). When it is the form a
 * task's replies take where they start, at an instance of the overlay (a backend behind a
 * load balancer's VIP, the target of a router's DNAT), that form is armed at its first hop,
 * so that the replies are colored there (dt_tasks_add_learned()); the stitcher attributes
 * them through the same translation. Replies that start outside the overlay are colored
 * by the gateway they enter through.
 */
static void on_learn(void *arg, struct dt_task *task, uint8_t dir, const struct dt_tuple *outside,
		     const struct dt_tuple *inside)
{
	struct analyzer *a = arg;
	char flow[DT_TUPLE_STR_MAX];
	uint64_t suppressed;
	int rv;

	(void)inside;
	if (dir != DT_DIR_REPLY || !(task->spec.flags & DT_TASK_DIR_REPLY) ||
	    !dt_hosts_node(&a->hosts, outside->vni, outside->saddr)) {
		return;
	}
	rv = dt_tasks_add_learned(&a->tasks, task, outside, DT_DIR_REPLY);
	if (rv == 0 || !dt_ratelimit_ok(&a->rl_learn, 1000, &suppressed)) {
		return;
	}
	dt_tuple_str(outside, 0, flow, sizeof(flow));
	dt_warn("DT-ANA-LEARN-KEY", "task %u: cannot arm its replies as %s where they start: %s "
		"(%llu more suppressed)", task->id, flow,
		rv == -EEXIST ? "another active task traces that flow"
		: rv == -ENOSPC ? "the task or the control set has no room for another key"
				: strerror(-rv),
		(unsigned long long)suppressed);
}

/* The node hosting (vni, addr) among the live ones, for the report's destinations. */
static const char *host_of(const void *arg, uint32_t vni, uint32_t addr)
{
	return dt_hosts_node(arg, vni, addr);
}

/* Builds the report of task (lock held), closing the analysis window first when due. */
static int build_report(struct analyzer *a, struct dt_task *task, struct dt_report *r)
{
	struct dt_paths_ctx ctx = {
		.strs = &a->strs,
		.now_ns = dt_clock_ns(CLOCK_REALTIME),
		.now_ms = dt_mono_ms(),
		.window_ms = a->cfg->window_ms,
		.host_of = host_of,
		.host_arg = &a->hosts,
	};
	struct node_loss *n;
	int rv;

	dt_stitch_tick(&a->stitch, ctx.now_ms);
	/* A final report judges what there is; a live one waits for samples held across a
	 * restart, which may be the next hops of its packets. */
	ctx.n_held_restored = dt_task_state_terminal(task->state) ? 0 : restored_held(a);
	memset(r, 0, sizeof(*r));
	dt_task_info_fill(task, &r->task);
	if ((rv = dt_paths_build(&ctx, task->obs, task->n_obs, r))) {
		return rv;
	}
	task->delivered = r->task.delivered;
	for (n = a->losses; n; n = n->next) {
		for (int i = 0; i < DT_LOSS_MAX; i++) {
			r->lost[i] += n->lost[i];
		}
	}
	note_lost_samples(r);
	r->unmatched = a->stitch.unmatched;
	r->window_ms = a->cfg->window_ms;
	return 0;
}

/*
 * Stores an ended task with its final report, and drops its observations. On failure
 * the task keeps them and final_pending, and the next tick tries again. Lock held.
 */
static int finalize(struct analyzer *a, struct dt_task *task)
{
	struct dt_stitch_counters c;
	msgpack_sbuffer sb;
	struct dt_report r;
	int rv;

	task->final_pending = true;
	msgpack_sbuffer_init(&sb);
	if ((rv = build_report(a, task, &r)) != 0) {
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
	dt_stitch_counters_get(&a->stitch, &c);
	if ((rv = persist_write(a, &c)) != 0 || (rv = dt_taskstore_put_task(a->store, task)) != 0 ||
	    (rv = dt_taskstore_put_report(a->store, task->id, sb.data, sb.size)) != 0 ||
	    (rv = dt_taskstore_del_obs(a->store, task->id)) != 0) {
		dt_taskstore_abort(a->store);
		goto out;
	}
	if ((rv = dt_taskstore_commit(a->store)) != 0) {
		goto out;
	}
	persisted(a, &c);
	task->final_pending = false;
	task->dirty = false;
	dt_task_drop_obs(task);
	dt_info("DT-ANA-TASK-END", "task %u (%s) %s: %s", task->id, task->tenant_name,
		dt_task_state_name(task->state), task->status_text);
out:
	msgpack_sbuffer_destroy(&sb);
	if (rv) {
		store_failed(a, "store a final report", rv);
	}
	return rv;
}

/* The lifecycle's ops (tasks.h). */
static bool lc_settled(void *arg, struct dt_task *task)
{
	struct analyzer *a = arg;
	uint64_t now = dt_mono_ms(), every = a->cfg->window_ms / 4;
	struct dt_report r;
	bool settled;

	if (every < TICK_MS) {
		every = TICK_MS;
	}
	if (task->judged_ms && now - task->judged_ms < every) {
		return false;
	}
	task->judged_ms = now;
	if (build_report(a, task, &r) != 0) {
		return false;
	}
	settled = r.verdict.in_flight == 0;
	dt_report_free(&r);
	return settled;
}

static void lc_ended(void *arg, struct dt_task *task)
{
	finalize(arg, task);
}

/* Hands the control set to the ingest server when its generation moved. Lock not held. */
static void publish_control(struct analyzer *a)
{
	struct dt_control ctl;
	int rv;

	pthread_mutex_lock(&a->mu);
	if (a->sent_gen == a->tasks.gen) {
		pthread_mutex_unlock(&a->mu);
		return;
	}
	rv = dt_tasks_control(&a->tasks, &ctl);
	pthread_mutex_unlock(&a->mu);
	if (rv != 0) {
		dt_err("DT-ANA-NOMEM", "no memory for the control set; trying again");
		return;
	}
	if ((rv = dt_ingest_set_control(a->ingest, &ctl)) == 0) {
		pthread_mutex_lock(&a->mu);
		if (ctl.gen > a->sent_gen) {
			a->sent_gen = ctl.gen;
		}
		pthread_mutex_unlock(&a->mu);
	}
	dt_control_free(&ctl);
}

/* Every tick: the stitcher's window, the lifecycle against the live node states, the
 * store, the control set. */
static void tick(struct analyzer *a)
{
	const struct dt_lifecycle_ops ops = {.settled = lc_settled, .ended = lc_ended, .arg = a};
	struct dt_node_state *nodes = NULL;
	struct dt_hosts hosts;
	uint32_t n_nodes = 0;
	bool have_hosts;

	if (dt_ingest_nodes(a->ingest, (unsigned)a->cfg->collector_window_ms, &nodes, &n_nodes) !=
	    0) {
		nodes = NULL;
		n_nodes = 0;
	}
	pthread_mutex_lock(&a->mu);
	dt_stitch_tick(&a->stitch, dt_mono_ms());
	have_hosts = dt_hosts_build(&hosts, nodes, n_nodes) == 0;
	if (have_hosts) {
		/* The new snapshot replaces the last one (which reports keep using otherwise). */
		dt_hosts_free(&a->hosts);
		dt_node_states_free(a->nodes, a->n_nodes);
		a->hosts = hosts;
		a->nodes = nodes;
		a->n_nodes = n_nodes;
		nodes = NULL;
		n_nodes = 0;
		dt_tasks_step(&a->tasks, &a->hosts, &a->cfg->lifecycle, &ops,
			      dt_clock_ns(CLOCK_REALTIME), dt_mono_ms());
	}
	/* Final reports that could not be stored yet. */
	for (size_t i = 0; i < a->tasks.n_all; i++) {
		if (a->tasks.all[i]->final_pending) {
			finalize(a, a->tasks.all[i]);
		}
	}
	persist(a, NULL, 0);
	pthread_mutex_unlock(&a->mu);
	dt_node_states_free(nodes, n_nodes);
	publish_control(a);
}

/* ------------------------------------------------------------------------------------ */
/* API */

static int reply_error(msgpack_sbuffer *out, enum dt_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reply_error(msgpack_sbuffer *out, enum dt_status st, const char *fmt, ...)
{
	struct dt_error e = {.status = st};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	msgpack_sbuffer_clear(out);
	return dt_error_encode(out, &e);
}

static const char *msg_word(enum dt_msg_type type)
{
	switch (type) {
	case DT_MSG_TASK_CREATE:
		return "task create";
	case DT_MSG_TASK_GET:
		return "task show";
	case DT_MSG_REPORT_GET:
		return "report";
	case DT_MSG_TASK_LIST:
		return "task list";
	case DT_MSG_TASK_CANCEL:
		return "task cancel";
	default:
		return "?";
	}
}

/*
 * The tenant of token, or -1 after the refusal was answered, counted and logged (rate
 * limited; never the token).
 */
static int authenticate(struct analyzer *a, const char *token, enum dt_msg_type type,
			msgpack_sbuffer *out)
{
	int tenant = dt_tenant_auth(a->cfg, token);
	uint64_t suppressed;

	if (tenant >= 0) {
		return tenant;
	}
	pthread_mutex_lock(&a->mu);
	a->api_refused_token++;
	if (dt_ratelimit_ok(&a->rl_auth, 1000, &suppressed)) {
		dt_warn("DT-ANA-AUTH",
			"refused a %s request: %s tenant token (%llu more since the last report)",
			msg_word(type), token[0] ? "unknown" : "no", (unsigned long long)suppressed);
	}
	pthread_mutex_unlock(&a->mu);
	reply_error(out, DT_ST_REFUSED, "unknown tenant token");
	return -1;
}

/* The task id names for tenant, or NULL: another tenant's task is not found either. */
static struct dt_task *tenant_task(struct analyzer *a, int tenant, uint32_t id)
{
	struct dt_task *task = dt_tasks_find(&a->tasks, id);

	return task && task->tenant == (uint32_t)tenant ? task : NULL;
}

static int api_create(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	char token[DT_TOKEN_MAX], err[DT_MSG_MAX];
	const struct dt_limits *lim = &a->cfg->limits;
	struct dt_task_spec spec;
	struct dt_task_info info;
	struct dt_task *task;
	int tenant, rv;

	if ((rv = dt_task_create_decode(buf, len, token, &spec))) {
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_CREATE, out)) < 0) {
		return 0;
	}
	if (dt_limits_apply(lim, &spec, err, sizeof(err)) != 0) {
		return reply_error(out, DT_ST_REFUSED, "%s", err);
	}
	pthread_mutex_lock(&a->mu);
	if (dt_tasks_count_tenant(&a->tasks, (uint32_t)tenant) >= lim->tasks_max_per_tenant) {
		pthread_mutex_unlock(&a->mu);
		return reply_error(out, DT_ST_REFUSED,
				   "tenant %s has %llu active tasks, the maximum; wait for one to "
				   "end or cancel one",
				   a->cfg->tenants[tenant].name,
				   (unsigned long long)lim->tasks_max_per_tenant);
	}
	rv = dt_tasks_create(&a->tasks, &spec, (uint32_t)tenant, a->cfg->tenants[tenant].name,
			     dt_clock_ns(CLOCK_REALTIME), &task, err, sizeof(err));
	if (rv == 0 && (rv = persist(a, NULL, 0)) != 0) {
		/* Not durable: it never existed as far as anyone was told. */
		dt_task_end(&a->tasks, task, DT_TASK_FAILED, DT_TS_OK, dt_clock_ns(CLOCK_REALTIME),
			    "failed: the analyzer could not write it to its store");
		snprintf(err, sizeof(err), "cannot store the task: %s", strerror(-rv));
		rv = -EIO;
	}
	if (rv == 0) {
		/* NEW is durable; the analysis state (keys, observations) exists: READY. */
		dt_task_ready(&a->tasks, task, dt_mono_ms());
		persist(a, NULL, 0); /* a failure is retried with the next tick */
		dt_task_info_fill(task, &info);
	}
	pthread_mutex_unlock(&a->mu);
	if (rv == -EINVAL) {
		return reply_error(out, DT_ST_INVALID, "%s", err);
	}
	if (rv == -EEXIST || rv == -ENOSPC) {
		return reply_error(out, DT_ST_REFUSED, "%s", err);
	}
	if (rv == -EIO) {
		return reply_error(out, DT_ST_FAILED, "%s", err);
	}
	if (rv) {
		return reply_error(out, DT_ST_FAILED, "cannot create the task: %s", strerror(-rv));
	}
	publish_control(a);
	dt_info("DT-ANA-TASK", "task %u of %s created, arming with control set %llu", info.id,
		info.tenant, (unsigned long long)task->arm_gen);
	return dt_task_encode(out, &info);
}

static int api_show(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	char token[DT_TOKEN_MAX];
	struct dt_task_info info;
	struct dt_report r;
	struct dt_task *task;
	uint32_t id;
	int tenant, rv = 0;

	if ((rv = dt_task_get_decode(buf, len, token, &id))) {
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_GET, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (!(task = tenant_task(a, tenant, id))) {
		rv = -ENOENT;
	} else if (task->obs && build_report(a, task, &r) == 0) {
		/* Live counts of an active task. */
		info = r.task;
		dt_report_free(&r);
	} else {
		dt_task_info_fill(task, &info);
	}
	pthread_mutex_unlock(&a->mu);
	if (rv == -ENOENT) {
		return reply_error(out, DT_ST_NOT_FOUND, "no task %u", id);
	}
	return dt_task_encode(out, &info);
}

static int api_report(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	char token[DT_TOKEN_MAX];
	struct dt_report r;
	struct dt_task *task;
	void *stored = NULL;
	size_t stored_len = 0;
	uint32_t id;
	int tenant, rv;

	if ((rv = dt_report_get_decode(buf, len, token, &id))) {
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_REPORT_GET, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (!(task = tenant_task(a, tenant, id))) {
		rv = -ENOENT;
	} else if (dt_task_state_terminal(task->state) && !task->final_pending) {
		/* The final report, exactly as stored when the task ended. */
		rv = dt_taskstore_get_report(a->store, id, &stored, &stored_len);
		if (rv == -ENOENT) {
			rv = -EIO;
		}
	} else {
		rv = build_report(a, task, &r);
	}
	pthread_mutex_unlock(&a->mu);
	if (rv == -ENOENT) {
		return reply_error(out, DT_ST_NOT_FOUND, "no task %u", id);
	}
	if (rv) {
		return reply_error(out, DT_ST_FAILED, "cannot read the report of task %u: %s", id,
				   strerror(-rv));
	}
	if (stored) {
		rv = msgpack_sbuffer_write(out, stored, stored_len);
		free(stored);
		return rv ? DT_PROTO_ENOMEM : 0;
	}
	rv = dt_report_encode(out, &r);
	dt_report_free(&r);
	return rv;
}

static int api_list(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	char token[DT_TOKEN_MAX];
	struct dt_task_list l = {0};
	size_t n = 0, first = 0;
	int tenant, rv;

	if ((rv = dt_task_list_decode(buf, len, token))) {
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_LIST, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->tasks.n_all; i++) {
		n += a->tasks.all[i]->tenant == (uint32_t)tenant;
	}
	/* The newest DT_LIST_MAX_TASKS at most, in ascending id order. */
	if (n > DT_LIST_MAX_TASKS) {
		first = n - DT_LIST_MAX_TASKS;
		n = DT_LIST_MAX_TASKS;
	}
	if (n && !(l.tasks = calloc(n, sizeof(*l.tasks)))) {
		pthread_mutex_unlock(&a->mu);
		return reply_error(out, DT_ST_FAILED, "no memory for the list");
	}
	for (size_t i = 0, seen = 0; i < a->tasks.n_all && l.n_tasks < n; i++) {
		const struct dt_task *task = a->tasks.all[i];

		if (task->tenant != (uint32_t)tenant || seen++ < first) {
			continue;
		}
		dt_task_info_fill(task, &l.tasks[l.n_tasks++]);
	}
	pthread_mutex_unlock(&a->mu);
	rv = dt_tasks_encode(out, &l);
	dt_task_list_free(&l);
	return rv;
}

static int api_cancel(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	char token[DT_TOKEN_MAX], state[32];
	struct dt_task_info info;
	struct dt_task *task;
	uint32_t id;
	int tenant, rv = 0;

	if ((rv = dt_task_cancel_decode(buf, len, token, &id))) {
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_CANCEL, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (!(task = tenant_task(a, tenant, id))) {
		rv = -ENOENT;
	} else if (task->state == DT_TASK_CANCELLED) {
		rv = 0; /* cancelling twice is harmless */
	} else if (dt_task_state_terminal(task->state)) {
		snprintf(state, sizeof(state), "%s", dt_task_state_name(task->state));
		rv = -EALREADY;
	} else {
		uint64_t colored = task->colored[DT_DIR_REQUEST] + task->colored[DT_DIR_REPLY];

		dt_task_end(&a->tasks, task, DT_TASK_CANCELLED, DT_TS_CANCELLED,
			    dt_clock_ns(CLOCK_REALTIME),
			    "cancelled by its tenant after %llu packets colored",
			    (unsigned long long)colored);
		finalize(a, task); /* a failure is retried with the next tick */
	}
	if (rv == 0) {
		dt_task_info_fill(task, &info);
	}
	pthread_mutex_unlock(&a->mu);
	if (rv == -ENOENT) {
		return reply_error(out, DT_ST_NOT_FOUND, "no task %u", id);
	}
	if (rv == -EALREADY) {
		return reply_error(out, DT_ST_REFUSED, "task %u has already ended: %s", id, state);
	}
	publish_control(a);
	return dt_task_encode(out, &info);
}

static void api_handle(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	enum dt_msg_type type;
	uint64_t suppressed;
	int rv;

	a->api_requests++;
	if ((rv = dt_msg_type(buf, len, &type)) == 0) {
		switch (type) {
		case DT_MSG_TASK_CREATE:
			rv = api_create(a, buf, len, out);
			break;
		case DT_MSG_TASK_GET:
			rv = api_show(a, buf, len, out);
			break;
		case DT_MSG_REPORT_GET:
			rv = api_report(a, buf, len, out);
			break;
		case DT_MSG_TASK_LIST:
			rv = api_list(a, buf, len, out);
			break;
		case DT_MSG_TASK_CANCEL:
			rv = api_cancel(a, buf, len, out);
			break;
		default:
			rv = DT_PROTO_EMSGTYPE;
			break;
		}
		if (rv == 0) {
			return;
		}
	}
	a->api_malformed++;
	if (dt_ratelimit_ok(&a->rl_api, 1000, &suppressed)) {
		dt_warn("DT-ANA-MALFORMED", "refused an API request: %s (%llu more since the last report)",
			dt_proto_strerror(rv), (unsigned long long)suppressed);
	}
	reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
}

/* ------------------------------------------------------------------------------------ */
/* Restart */

static int ld_meta(void *arg, uint32_t next_id, uint64_t gen)
{
	struct analyzer *a = arg;

	a->tasks.next_id = next_id ? next_id : 1;
	a->tasks.gen = gen;
	return 0;
}

static int ld_string(void *arg, uint32_t idx, const char *str)
{
	struct analyzer *a = arg;
	uint32_t got;
	int rv;

	if ((rv = dt_strtab_intern(&a->strs, str, strlen(str) + 1, &got)) != 0) {
		return rv;
	}
	return got == idx ? 0 : -EPROTO;
}

static int ld_seq(void *arg, const char *sender, uint64_t seq)
{
	struct sender_seq *s = seq_of(arg, sender);

	if (!s) {
		return -ENOMEM;
	}
	s->seq = seq;
	return 0;
}

static int ld_task(void *arg, struct dt_task *rec)
{
	struct analyzer *a = arg;
	int rv;

	/* A tenant no longer configured sees nothing: its tasks are nobody's. */
	rec->tenant = UINT32_MAX;
	for (uint32_t i = 0; i < a->cfg->n_tenants; i++) {
		if (strcmp(a->cfg->tenants[i].name, rec->tenant_name) == 0) {
			rec->tenant = i;
		}
	}
	if (!dt_task_state_terminal(rec->state)) {
		/* Counted again from the observations that follow. */
		memset(rec->colored, 0, sizeof(rec->colored));
	}
	if ((rv = dt_tasks_restore(&a->tasks, rec)) != 0) {
		free(rec);
	}
	return rv;
}

static int ld_obs(void *arg, uint32_t id, const struct dt_obs *o)
{
	struct analyzer *a = arg;
	struct dt_task *task = dt_tasks_find_active(&a->tasks, id);
	struct dt_obs copy = *o;

	int rv;

	if (!task) {
		return 0; /* left over from a task that ended: ignored */
	}
	/* Its arrival_ms is another boot's monotonic clock. As if it arrived now: a packet of
	 * a resumed task is in flight for a window, while the collectors resend what this
	 * analyzer did not acknowledge and its held samples are matched again. Not for a task
	 * whose duration ran out meanwhile: restore() ends it at once, judged as stored. */
	if (dt_clock_ns(CLOCK_REALTIME) <
	    task->created_ns + (uint64_t)task->spec.duration_s * 1000000000ull) {
		copy.arrival_ms = dt_mono_ms();
	} else {
		copy.arrival_ms = 0;
	}
	if ((rv = dt_task_add_obs(task, &copy)) == 0) {
		task->n_stored = task->n_obs;
	}
	return rv;
}

static int ld_counters(void *arg, const struct dt_stitch_counters *c)
{
	struct analyzer *a = arg;

	dt_stitch_counters_set(&a->stitch, c);
	a->stored_counters = *c;
	return 0;
}

/* A held sample, acknowledged before the restart: it waits a whole window again. */
static int ld_held(void *arg, uint64_t id, const struct dt_stitch_in *in)
{
	struct analyzer *a = arg;

	if (id > a->restored_held_upto) {
		a->restored_held_upto = id;
	}
	return dt_stitch_restore_held(&a->stitch, id, in, dt_mono_ms());
}

/*
 * Reads the store back: names, seqs, tasks. Ended tasks are served as they were. Active
 * tasks are resumed with their observations (and re-armed by the control set at the
 * next generation), unless their duration ran out meanwhile: then they end EXPIRED, with
 * what was stored. Lock held (nothing runs yet).
 */
static int restore(struct analyzer *a)
{
	const struct dt_taskstore_load_ops ops = {.meta = ld_meta,
						  .string = ld_string,
						  .seq = ld_seq,
						  .task = ld_task,
						  .obs = ld_obs,
						  .counters = ld_counters,
						  .held = ld_held,
						  .arg = a};
	uint64_t now_ns = dt_clock_ns(CLOCK_REALTIME), now_ms = dt_mono_ms();
	size_t resumed = 0, expired = 0;
	char when[32];
	time_t secs = (time_t)(now_ns / 1000000000ull);
	struct tm tm;
	int rv;

	if ((rv = dt_taskstore_load(a->store, &ops)) != 0) {
		return rv;
	}
	/* The translations the held samples may still need (stitch.c says why this way). */
	if ((rv = dt_stitch_relearn(&a->stitch)) != 0) {
		return rv;
	}
	a->stored_strs = a->strs.n;
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	a->tasks.gen++; /* a new control set, even with the same arms */
	for (size_t i = a->tasks.n; i-- > 0;) {
		struct dt_task *task = a->tasks.v[i];
		uint64_t deadline = task->created_ns + (uint64_t)task->spec.duration_s * 1000000000ull;

		task->n_stored = task->n_obs;
		if (now_ns >= deadline) {
			dt_task_end(&a->tasks, task, DT_TASK_EXPIRED, DT_TS_RESTARTED, now_ns,
				    "expired: its duration of %u s ran out while the analyzer was "
				    "stopped (restarted %s); the report holds the %zu samples stored "
				    "before",
				    task->spec.duration_s, when, task->n_obs);
			finalize(a, task);
			expired++;
			continue;
		}
		if (task->state == DT_TASK_NEW) {
			dt_task_ready(&a->tasks, task, now_ms);
		}
		task->ready_ms = now_ms;
		task->status = DT_TS_RESTARTED;
		task->dirty = true;
		snprintf(task->status_text, sizeof(task->status_text),
			 "%s: the analyzer restarted %s and resumed this task (%zu stored "
			 "samples reloaded, re-armed with control set %llu)",
			 dt_task_state_name(task->state), when, task->n_obs,
			 (unsigned long long)a->tasks.gen);
		resumed++;
	}
	if ((rv = persist(a, NULL, 0)) != 0) {
		return rv;
	}
	dt_info("DT-ANA-RESTORE",
		"store %s: %zu tasks (%zu resumed, %zu expired while stopped), %u names, %zu held "
		"samples, %llu translations, control set %llu",
		a->cfg->store, a->tasks.n_all, resumed, expired, a->strs.n, a->stitch.n_held,
		(unsigned long long)a->stitch.nat.n, (unsigned long long)a->tasks.gen);
	return 0;
}

/* ------------------------------------------------------------------------------------ */

/* Counts an API reply by its status (main loop; under a->mu for the metrics page). */
static void count_reply(struct analyzer *a, const msgpack_sbuffer *out)
{
	enum dt_status st = DT_ST_OK;
	enum dt_msg_type type;
	struct dt_error e;

	if (dt_msg_type(out->data, out->size, &type) != 0) {
		st = DT_ST_FAILED; /* no reply could be encoded */
	} else if (type == DT_MSG_ERROR) {
		st = dt_error_decode(out->data, out->size, &e) == 0 && e.status < DT_ST_MAX
			     ? (enum dt_status)e.status
			     : DT_ST_FAILED;
	}
	pthread_mutex_lock(&a->mu);
	a->api_by_status[st]++;
	pthread_mutex_unlock(&a->mu);
}

static void log_stats(struct analyzer *a, const char *id)
{
	struct dt_ingest_stats is;
	unsigned collectors;

	dt_ingest_stats(a->ingest, &is);
	dt_ingest_min_gen(a->ingest, (unsigned)a->cfg->collector_window_ms, &collectors);
	pthread_mutex_lock(&a->mu);
	dt_info(id,
		"collectors=%u tasks=%zu active=%zu arms=%zu batches=%llu samples=%llu "
		"attributed=%llu late=%llu held=%zu unmatched=%llu after_end=%llu windows=%llu "
		"nat_learned=%llu "
		"nat_full=%llu nomem=%llu names=%u names_full=%llu duplicates=%llu malformed=%llu "
		"api_requests=%llu api_malformed=%llu api_refused_token=%llu store_errors=%llu "
		"control_gen=%llu api_ok=%llu api_invalid=%llu api_not_found=%llu api_refused=%llu "
		"api_failed=%llu",
		collectors, a->tasks.n_all, a->tasks.n, a->tasks.n_arms,
		(unsigned long long)is.batches, (unsigned long long)a->samples,
		(unsigned long long)a->stitch.attributed, (unsigned long long)a->stitch.late,
		a->stitch.n_held, (unsigned long long)a->stitch.unmatched,
		(unsigned long long)a->stitch.after_end,
		(unsigned long long)a->stitch.windows, (unsigned long long)a->stitch.learned,
		(unsigned long long)a->stitch.nat_full, (unsigned long long)a->stitch.nomem,
		a->strs.n, (unsigned long long)a->names_full, (unsigned long long)is.duplicates,
		(unsigned long long)is.malformed, (unsigned long long)a->api_requests,
		(unsigned long long)a->api_malformed, (unsigned long long)a->api_refused_token,
		(unsigned long long)a->store_errors, (unsigned long long)a->tasks.gen,
		(unsigned long long)a->api_by_status[DT_ST_OK],
		(unsigned long long)a->api_by_status[DT_ST_INVALID],
		(unsigned long long)a->api_by_status[DT_ST_NOT_FOUND],
		(unsigned long long)a->api_by_status[DT_ST_REFUSED],
		(unsigned long long)a->api_by_status[DT_ST_FAILED]);
	pthread_mutex_unlock(&a->mu);
}

/*
 * The metrics page (dt_metrics.h), on an nng thread: the numbers of log_stats(), read the
 * same way (the ingest's counters without a->mu, the rest under it).
 */
static void render_metrics(void *arg, struct dt_metrics_buf *b)
{
	struct analyzer *a = arg;
	uint64_t states[DT_TASK_STATE_MAX] = {0}, lost[DT_LOSS_MAX] = {0};
	const struct dt_stitch *st = &a->stitch;
	struct dt_ingest_stats is;
	unsigned collectors;

	dt_ingest_stats(a->ingest, &is);
	dt_ingest_min_gen(a->ingest, (unsigned)a->cfg->collector_window_ms, &collectors);
	dt_metrics_counter(b, "dyetrace_analyzer_batches_received_total",
			   "Batches with samples received from collectors and stored.", NULL,
			   is.batches);
	dt_ingest_metrics(b, "dyetrace_analyzer", &is);
	dt_metrics_gauge(b, "dyetrace_analyzer_collectors",
			 "Collectors heard from within collector_window_ms.", NULL, collectors);
	pthread_mutex_lock(&a->mu);
	dt_metrics_counter(b, "dyetrace_analyzer_samples_received_total",
			   "Samples in the batches received from collectors.", NULL, a->samples);
	dt_metrics_counter(b, "dyetrace_analyzer_samples_attributed_total",
			   "Samples attributed to a task.", NULL, st->attributed);
	dt_metrics_counter(b, "dyetrace_analyzer_samples_late_total",
			   "Samples attributed after being held for a window.", NULL, st->late);
	dt_metrics_counter(b, "dyetrace_analyzer_samples_unmatched_total",
			   "Samples that matched no task.", NULL, st->unmatched);
	dt_metrics_counter(b, "dyetrace_analyzer_samples_after_end_total",
			   "Samples of tasks that had ended.", NULL, st->after_end);
	dt_metrics_gauge(b, "dyetrace_analyzer_samples_held",
			 "Samples held in the analysis window, not matched yet.", NULL,
			 (double)st->n_held);
	dt_metrics_counter(b, "dyetrace_analyzer_windows_total", "Analysis windows closed.", NULL,
			   st->windows);
	dt_metrics_counter(b, "dyetrace_analyzer_nat_learned_total",
			   "NAT translations learned from gateway samples.", NULL, st->learned);
	dt_metrics_counter(b, "dyetrace_analyzer_nat_full_total",
			   "NAT translations not learned: the table was full.", NULL, st->nat_full);
	dt_metrics_counter(b, "dyetrace_analyzer_stitch_nomem_total",
			   "Samples the stitcher could not keep for lack of memory.", NULL,
			   st->nomem);
	for (struct node_loss *n = a->losses; n; n = n->next)
		for (int i = 0; i < DT_LOSS_MAX; i++)
			lost[i] += n->lost[i];
	for (unsigned i = 0; i < DT_LOSS_MAX; i++)
		dt_metrics_counter(b, "dyetrace_analyzer_samples_lost_total",
				   "Samples lost before analysis, by reason, as the nodes report "
				   "them (the reports' lost).",
				   DT_METRICS_LABELS("reason", dt_loss_name(i)), lost[i]);
	for (size_t i = 0; i < a->tasks.n_all; i++)
		if (a->tasks.all[i]->state < DT_TASK_STATE_MAX)
			states[a->tasks.all[i]->state]++;
	for (unsigned i = 0; i < DT_TASK_STATE_MAX; i++)
		dt_metrics_gauge(b, "dyetrace_analyzer_tasks", "Tasks by state.",
				 DT_METRICS_LABELS("state", dt_task_state_name(i)),
				 (double)states[i]);
	dt_metrics_gauge(b, "dyetrace_analyzer_armed_keys",
			 "Keys of active tasks in the control set.", NULL, (double)a->tasks.n_arms);
	dt_metrics_gauge(b, "dyetrace_analyzer_control_generation",
			 "Generation of the control set.", NULL, (double)a->tasks.gen);
	dt_metrics_gauge(b, "dyetrace_analyzer_names", "Names in the string table.", NULL,
			 a->strs.n);
	dt_metrics_counter(b, "dyetrace_analyzer_names_full_total",
			   "Names not kept: the string table was full.", NULL, a->names_full);
	for (unsigned i = 0; i < DT_ST_MAX; i++)
		dt_metrics_counter(b, "dyetrace_analyzer_api_requests_total",
				   "API requests, by the status of the reply.",
				   DT_METRICS_LABELS("status", dt_status_name(i)),
				   a->api_by_status[i]);
	dt_metrics_counter(b, "dyetrace_analyzer_api_refused_token_total",
			   "API requests refused for an unknown or missing tenant token.", NULL,
			   a->api_refused_token);
	dt_metrics_counter(b, "dyetrace_analyzer_store_errors_total",
			   "Writes to the analyzer's store that failed.", NULL, a->store_errors);
	pthread_mutex_unlock(&a->mu);
}

int dt_analyzer_run(const struct dt_analyzer_cfg *cfg, volatile int *stop)
{
	struct dt_ingest_ops iops = {.on_batch = on_batch, .on_heartbeat = on_heartbeat,
				     .last_seq = last_seq};
	struct analyzer *a = calloc(1, sizeof(*a));
	uint64_t last_stats_ms, last_tick_ms = 0;
	msgpack_sbuffer out;
	char err[DT_ERRBUF_MAX];
	int rv;

	if (!a) {
		return -ENOMEM;
	}
	a->cfg = cfg;
	pthread_mutex_init(&a->mu, NULL);
	dt_tasks_init(&a->tasks);
	dt_stitch_init(&a->stitch, &a->tasks, cfg->window_ms);
	a->stitch.on_learn = on_learn;
	a->stitch.on_learn_arg = a;
	msgpack_sbuffer_init(&out);
	iops.arg = a;
	if ((rv = dt_strtab_init(&a->strs))) {
		goto out;
	}
	if ((rv = dt_taskstore_open(cfg->store, cfg->store_size_mb, &a->store, err, sizeof(err)))) {
		dt_err("DT-ANA-STORE", "%s", err);
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	rv = restore(a);
	pthread_mutex_unlock(&a->mu);
	if (rv) {
		dt_err("DT-ANA-STORE", "cannot read the store %s back: %s", cfg->store, strerror(-rv));
		goto out;
	}
	if ((rv = dt_ingest_start_tls(cfg->listen, &cfg->tls, &iops, &a->ingest))) {
		goto out;
	}
	publish_control(a);
	if ((rv = nng_rep0_open(&a->api)) != 0 ||
	    (rv = nng_socket_set_ms(a->api, NNG_OPT_RECVTIMEO, TICK_MS)) != 0 ||
	    (rv = nng_listen(a->api, cfg->api, NULL, 0)) != 0) {
		dt_err("DT-ANA-API", "cannot listen for the API on %s: %s", cfg->api, nng_strerror(rv));
		rv = -EINVAL;
		goto out;
	}
	if (cfg->metrics[0]) {
		if ((rv = dt_metrics_start(cfg->metrics, render_metrics, a, &a->metrics, err,
					   sizeof(err))) != 0) {
			dt_err("DT-ANA-METRICS", "%s", err);
			goto out;
		}
		dt_info("DT-ANA-METRICS", "metrics on %s (GET %s)", cfg->metrics, DT_METRICS_PATH);
	}
	dt_info("DT-ANA-READY", "analyzer: collectors on %s, API on %s, %u tenants", cfg->listen,
		cfg->api, cfg->n_tenants);
	last_stats_ms = dt_mono_ms();
	while (!*stop) {
		void *buf = NULL;
		size_t len = 0;

		rv = nng_recv(a->api, &buf, &len, NNG_FLAG_ALLOC);
		if (rv == 0) {
			msgpack_sbuffer_clear(&out);
			api_handle(a, buf, len, &out);
			count_reply(a, &out);
			nng_free(buf, len);
			nng_send(a->api, out.data, out.size, 0);
		} else if (rv != NNG_ETIMEDOUT) {
			dt_err("DT-ANA-API", "%s", nng_strerror(rv));
			break;
		}
		if (dt_mono_ms() - last_tick_ms >= TICK_MS) {
			tick(a);
			last_tick_ms = dt_mono_ms();
		}
		if (cfg->stats_interval_s && dt_mono_ms() - last_stats_ms >= cfg->stats_interval_s * 1000) {
			log_stats(a, "DT-ANA-STATS");
			last_stats_ms = dt_mono_ms();
		}
	}
	rv = 0;
	log_stats(a, "DT-ANA-EXIT");
out:
	dt_metrics_stop(a->metrics); /* its page reads what follows */
	nng_close(a->api);
	if (a->ingest) {
		dt_ingest_stop(a->ingest);
	}
	while (a->losses) {
		struct node_loss *n = a->losses;

		a->losses = n->next;
		free(n);
	}
	while (a->seqs) {
		struct sender_seq *s = a->seqs;

		a->seqs = s->next;
		free(s);
	}
	dt_taskstore_close(a->store);
	dt_stitch_free(&a->stitch);
	dt_hosts_free(&a->hosts);
	dt_node_states_free(a->nodes, a->n_nodes);
	dt_tasks_free(&a->tasks);
	dt_strtab_free(&a->strs);
	msgpack_sbuffer_destroy(&out);
	pthread_mutex_destroy(&a->mu);
	free(a);
	return rv;
}
