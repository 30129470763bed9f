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
#include <malloc.h>
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
#include "dt_listen.h"
#include "dt_log.h"
#include "dt_time.h"
#include "dt_tuple.h"
#include "paths.h"
#include "stitch.h"
#include "taskstore.h"
#include "strtab.h"
#include "tasks.h"
#include "analyzer_int.h"

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
	rv = dt_tasks_add_learned(a->tasks, task, outside, DT_DIR_REPLY);
	if (rv == 0 || !dt_ratelimit_ok(&a->rl_learn, 1000, &suppressed)) {
		return;
	}
	dt_tuple_str(outside, 0, flow, sizeof(flow));
	dt_warn("DT-ANA-LEARN-KEY",
		"task %u: cannot arm its replies as %s where they start: %s "
		"(%llu more suppressed)",
		task->id, flow,
		rv == -EEXIST	? "another active task traces that flow"
		: rv == -ENOSPC ? "the task or the control set has no room for another key"
				: strerror(-rv),
		(unsigned long long)suppressed);
}

/* The lifecycle's ops (tasks.h). */
static bool lc_settled(void *arg, struct dt_task *task, uint64_t unsampled)
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
	if (ana_build_report(a, task, false, &r) != 0) {
		return false;
	}
	settled = r.verdict.in_flight == 0 && ana_report_lost(&r) >= unsampled;
	dt_report_free(&r);
	return settled;
}

static void lc_ended(void *arg, struct dt_task *task)
{
	ana_finalize(arg, task);
}

void ana_publish_control(struct analyzer *a)
{
	struct dt_control ctl;
	int rv;

	pthread_mutex_lock(&a->mu);
	if (a->sent_gen == dt_tasks_gen(a->tasks)) {
		pthread_mutex_unlock(&a->mu);
		return;
	}
	rv = dt_tasks_control(a->tasks, &ctl);
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

void ana_tick(struct analyzer *a)
{
	const struct dt_lifecycle_ops ops = {.settled = lc_settled, .ended = lc_ended, .arg = a};
	struct dt_node_state *nodes = NULL;
	struct dt_hosts hosts;
	uint32_t n_nodes = 0;
	bool have_nodes, have_hosts;
	uint64_t now_ns, now_ms;

	have_nodes = dt_ingest_nodes(a->ingest, (unsigned)a->cfg->collector_window_ms, &nodes,
				     &n_nodes) == 0;
	if (!have_nodes) {
		nodes = NULL;
		n_nodes = 0;
	}
	pthread_mutex_lock(&a->mu);
	now_ns = dt_clock_ns(CLOCK_REALTIME);
	now_ms = dt_mono_ms();
	dt_stitch_tick(a->stitch, now_ms);
	have_hosts = dt_hosts_build(&hosts, nodes, n_nodes) == 0;
	if (have_hosts) {
		/* Who left the snapshot and who came back: a failed update (no memory) is
		 * tried again at the next tick, against the snapshot kept then. */
		if (have_nodes && dt_silent_update(&a->silent, a->nodes, a->n_nodes, a->nodes_ns,
						   a->nodes_ms, nodes, n_nodes, now_ms) != 0) {
			dt_hosts_free(&hosts);
			have_hosts = false;
		}
	}
	if (have_hosts) {
		/* The new snapshot replaces the last one (which reports keep using otherwise). */
		dt_hosts_free(&a->hosts);
		dt_node_states_free(a->nodes, a->n_nodes);
		a->hosts = hosts;
		a->nodes = nodes;
		a->n_nodes = n_nodes;
		a->nodes_ns = now_ns;
		a->nodes_ms = now_ms;
		nodes = NULL;
		n_nodes = 0;
		dt_tasks_step(a->tasks, &a->hosts, &a->cfg->lifecycle, &ops,
			      dt_clock_ns(CLOCK_REALTIME), dt_mono_ms());
	}
	/* Final reports that could not be stored yet. */
	for (size_t i = 0; i < dt_tasks_n_all(a->tasks); i++) {
		if (dt_tasks_nth(a->tasks, i)->final_pending) {
			ana_finalize(a, dt_tasks_nth(a->tasks, i));
		}
	}
	ana_persist(a, NULL, 0);
	ana_retain(a, dt_clock_ns(CLOCK_REALTIME), dt_mono_ms());
	pthread_mutex_unlock(&a->mu);
	dt_node_states_free(nodes, n_nodes);
	ana_publish_control(a);
}

void dt_analyzer_keep_memory(void)
{
	/*
	 * Fixed thresholds (no more dynamic ones): up to 32 MiB an allocation comes from the
	 * heap, and up to 1 GiB freed at the top of the heap stays there. What the analyzer
	 * allocates comes back in the same sizes: a task's observations (the next task's
	 * take their place), a report's scratch (the tick rebuilds each active task's report
	 * every window/4). Given back to the kernel, every page of it would be faulted in
	 * afresh, zeroed, at the next use, which on a paravirtualized guest costs 20-40 us
	 * a page (bench/README.md).
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

int dt_analyzer_run(const struct dt_analyzer_cfg *cfg, volatile int *stop)
{
	struct dt_ingest_ops iops = {.on_batch = ana_on_batch,
				     .on_heartbeat = ana_on_heartbeat,
				     .last_seq = ana_last_seq,
				     /* on_batch reads the samples off the raw bytes */
				     .check_only = true};
	struct analyzer *a = calloc(1, sizeof(*a));
	uint64_t last_stats_ms, last_tick_ms = 0;
	msgpack_sbuffer out;
	char err[DT_ERRBUF_MAX];
	int rv;

	dt_analyzer_keep_memory();
	if (!a) {
		return -ENOMEM;
	}
	a->cfg = cfg;
	a->silent.lookback_ns = dt_silent_lookback_ns((unsigned)cfg->collector_window_ms);
	pthread_mutex_init(&a->mu, NULL);
	msgpack_sbuffer_init(&out);
	iops.arg = a;
	a->tasks = dt_tasks_new();
	a->stitch = a->tasks ? dt_stitch_new(a->tasks, cfg->window_ms) : NULL;
	a->strs = dt_strtab_new();
	if (!a->tasks || !a->stitch || !a->strs) {
		rv = -ENOMEM;
		goto out;
	}
	dt_stitch_on_learn(a->stitch, on_learn, a);
	if ((rv = dt_taskstore_open(cfg->store, cfg->store_size_mb, &a->store, err, sizeof(err)))) {
		dt_err("DT-ANA-STORE", "%s", err);
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	rv = ana_restore(a);
	pthread_mutex_unlock(&a->mu);
	if (rv) {
		dt_err("DT-ANA-STORE", "cannot read the store %s back: %s", cfg->store,
		       strerror(-rv));
		goto out;
	}
	if ((rv = dt_ingest_start_tls(cfg->listen, &cfg->tls, &iops, &a->ingest))) {
		goto out;
	}
	ana_publish_control(a);
	if ((rv = nng_rep0_open(&a->api)) != 0 ||
	    (rv = nng_socket_set_ms(a->api, NNG_OPT_RECVTIMEO, TICK_MS)) != 0) {
		dt_err("DT-ANA-API", "cannot open the API socket: %s", nng_strerror(rv));
		rv = -EINVAL;
		goto out;
	}
	if (dt_listen_private(a->api, cfg->api, cfg->api_gid, err, sizeof(err)) != 0) {
		dt_err("DT-ANA-API", "API: %s", err);
		rv = -EINVAL;
		goto out;
	}
	dt_listen_warn_exposed(cfg->api, "anyone who reaches the port can read the tokens and "
					 "reports in transit");
	if (cfg->metrics[0]) {
		if ((rv = dt_metrics_start(cfg->metrics, ana_render_metrics, a, &a->metrics, err,
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
			ana_api_handle(a, buf, len, &out);
			ana_count_reply(a, &out);
			nng_free(buf, len);
			nng_send(a->api, out.data, out.size, 0);
		} else if (rv != NNG_ETIMEDOUT) {
			dt_err("DT-ANA-API", "%s", nng_strerror(rv));
			break;
		}
		if (dt_mono_ms() - last_tick_ms >= TICK_MS) {
			ana_tick(a);
			last_tick_ms = dt_mono_ms();
		}
		if (cfg->stats_interval_s &&
		    dt_mono_ms() - last_stats_ms >= cfg->stats_interval_s * 1000) {
			ana_log_stats(a, "DT-ANA-STATS");
			last_stats_ms = dt_mono_ms();
		}
	}
	rv = 0;
	ana_log_stats(a, "DT-ANA-EXIT");
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
	dt_stitch_free(a->stitch);
	dt_hosts_free(&a->hosts);
	dt_node_states_free(a->nodes, a->n_nodes);
	dt_silent_free(&a->silent);
	dt_tasks_free(a->tasks);
	dt_strtab_free(a->strs);
	msgpack_sbuffer_destroy(&out);
	pthread_mutex_destroy(&a->mu);
	free(a);
	return rv;
}
