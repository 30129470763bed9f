/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "collector.h"
#include "dt_config.h"
#include "dt_ingest.h"
#include "dt_link.h"
#include "dt_log.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_time.h"
#include "store.h"

/* The loss counters last stored for a node, and the end of its newest window without
 * observation: a heartbeat that raises one is stored too. */
struct node_lost {
	struct node_lost *next;
	char node[DT_NAME_MAX];
	uint64_t lost[DT_LOSS_MAX];
	uint64_t gap_to_ns;
};

struct collector {
	const struct dt_collector_cfg *cfg;
	struct dt_store *store;
	struct dt_ingest *ingest;
	struct dt_link *link;
	uint64_t enqueued; /* local sequence of the last batch handed to the link */
	pthread_mutex_t mu;
	uint64_t acked;		 /* ... and of the last one the analyzer acknowledged */
	uint64_t stored_lseq;	 /* local sequence of the newest batch stored (under mu) */
	uint64_t forward_errors; /* stored batches that could not be re-read (corruption) */
	uint64_t relayed_gen;	 /* last control generation relayed (logged once each) */
	struct node_lost *losts; /* ingest thread only */
	struct dt_metrics *metrics;
};

/* The ingest thread stored a batch (it alone appends, so it may read the store's seq). */
static void note_stored(struct collector *c)
{
	pthread_mutex_lock(&c->mu);
	c->stored_lseq = dt_store_last_lseq(c->store);
	pthread_mutex_unlock(&c->mu);
}

/* The batches that arrived together: one durable commit for them all, before the ACKs. */
static int on_batches(void *arg, const struct dt_ingest_item *items, unsigned n)
{
	struct collector *c = arg;

	if (dt_store_put_items(c->store, items, n) != 0)
		return DT_ST_FAILED;
	note_stored(c);
	return DT_ST_OK;
}

/* The end of the newest window without observation the heartbeat's own node state
 * reports (0: none). */
static uint64_t newest_gap(const struct dt_batch *b)
{
	uint64_t to = 0;

	for (uint32_t i = 0; i < b->n_nodes; i++)
		for (uint32_t g = 0;
		     strcmp(b->nodes[i].node, b->node) == 0 && g < b->nodes[i].n_gaps; g++)
			if (b->nodes[i].gaps[g].to_ns > to)
				to = b->nodes[i].gaps[g].to_ns;
	return to;
}

/* Says once which windows without observation of its node a heartbeat reports first. */
static void log_new_gaps(const struct dt_batch *b, uint64_t known_to_ns)
{
	for (uint32_t i = 0; i < b->n_nodes; i++) {
		const struct dt_node_state *ns = &b->nodes[i];

		for (uint32_t g = 0; strcmp(ns->node, b->node) == 0 && g < ns->n_gaps; g++) {
			const struct dt_gap *gap = &ns->gaps[g];
			char lost[24] = "unknown";

			if (gap->to_ns <= known_to_ns)
				continue;
			if (!(gap->flags & DT_GAP_F_LOST_UNKNOWN))
				snprintf(lost, sizeof(lost), "%llu", (unsigned long long)gap->lost);
			dt_info("DT-COLL-GAP",
				"node %s did not observe from %llu to %llu ns (%s; samples lost: "
				"%s): stored and forwarded",
				ns->node, (unsigned long long)gap->from_ns,
				(unsigned long long)gap->to_ns, dt_gap_cause_name(gap->cause),
				lost);
		}
	}
}

/*
 * A heartbeat whose loss counters went up (say the spool evicted samples after the last
 * batch), or that reports a new window without observation (an agent restarted), is stored
 * and forwarded like a batch, so that the loss and the window reach the analyzer even when
 * no sample follows it, and even when it was away at the time.
 */
static void on_heartbeat(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	struct collector *c = arg;
	struct node_lost *n;
	bool news = false;

	for (n = c->losts; n && strcmp(n->node, b->node) != 0; n = n->next)
		;
	if (!n) {
		if (!(n = calloc(1, sizeof(*n))))
			return;
		snprintf(n->node, sizeof(n->node), "%s", b->node);
		n->next = c->losts;
		c->losts = n;
	}
	for (int i = 0; i < DT_LOSS_MAX; i++)
		news |= b->lost[i] > n->lost[i];
	news |= newest_gap(b) > n->gap_to_ns;
	/* seq 0: a heartbeat's seq does not order it among the sender's batches. */
	if (!news || dt_store_put(c->store, b->sender, 0, raw, len) != 0)
		return;
	note_stored(c);
	memcpy(n->lost, b->lost, sizeof(n->lost));
	log_new_gaps(b, n->gap_to_ns);
	n->gap_to_ns = newest_gap(b);
}

static uint64_t last_seq(void *arg, const char *sender)
{
	struct collector *c = arg;

	return dt_store_last_seq(c->store, sender);
}

/* The analyzer's control set: relay it to the agents. */
static uint64_t on_control(void *arg, const struct dt_control *ctl)
{
	struct collector *c = arg;

	if (dt_ingest_set_control(c->ingest, ctl))
		return 0;
	if (ctl->gen == c->relayed_gen)
		return ctl->gen;
	c->relayed_gen = ctl->gen;
	dt_info("DT-COLL-CONTROL", "control set %llu: %u tasks, relaying to agents",
		(unsigned long long)ctl->gen, ctl->n_arms);
	return ctl->gen;
}

/* Upstream heartbeats relay the states of the agents heard from recently. */
static void heartbeat_nodes(void *arg, struct dt_batch *hb)
{
	struct collector *c = arg;

	if (dt_ingest_nodes(c->ingest, (unsigned)c->cfg->agent_window_ms, &hb->nodes, &hb->n_nodes))
		hb->n_nodes = 0;
}

/* Upstream we advertise the generation every agent heard from has applied. */
static uint64_t advertise_gen(void *arg)
{
	struct collector *c = arg;
	unsigned agents;
	uint64_t gen = dt_ingest_min_gen(c->ingest, (unsigned)c->cfg->agent_window_ms, &agents);

	return agents ? gen : 0;
}

#define LSEQ_BITS 32

/* The analyzer acknowledged a forwarded batch: it need not be sent again. */
static void on_acked(void *arg, uint64_t seq)
{
	struct collector *c = arg;

	pthread_mutex_lock(&c->mu);
	c->acked = seq & ((1ull << LSEQ_BITS) - 1);
	pthread_mutex_unlock(&c->mu);
}

/* Local sequence of the last batch the analyzer acknowledged (on_acked()). */
static uint64_t acked_lseq(struct collector *c)
{
	uint64_t r;

	pthread_mutex_lock(&c->mu);
	r = c->acked;
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Notes in the store what the analyzer acknowledged since *persisted, which deletes those
 * batches (dt_store_set_forwarded()); on failure the next call tries again. */
static void persist_acked(struct collector *c, uint64_t *persisted)
{
	uint64_t acked = acked_lseq(c);

	if (acked != *persisted && dt_store_set_forwarded(c->store, acked) == 0)
		*persisted = acked;
}

/*
 * Forwards one stored batch under the seq epoch << 32 | lseq (see dt_store_epoch()), as
 * it was stored: only its sender, seq and ctl_gen are encoded anew.
 */
static int forward_one(void *arg, uint64_t lseq, const void *raw, size_t len)
{
	struct collector *c = arg;
	int rv = dt_link_send_encoded(c->link, raw, len,
				      dt_store_epoch(c->store) << LSEQ_BITS | lseq);

	if (rv == -EINVAL) {
		c->forward_errors++;
		dt_err("DT-COLL-CORRUPT", "stored batch %llu is not a batch any more; skipped",
		       (unsigned long long)lseq);
		return 0;
	}
	return rv == -ENOBUFS ? 1 : 0; /* queue full: try again later from here */
}

/* The counters of log_stats() and of the metrics page, read the same way. */
struct collector_stats {
	struct dt_ingest_stats is;
	struct dt_link_stats ls;
	unsigned agents;
	uint64_t stored_ever; /* batches the store took since it was created, over restarts */
	uint64_t held;	      /* batches in the store now (deleted once acknowledged) */
	uint64_t backlog;     /* stored batches the analyzer has not acknowledged yet */
};

static void collector_stats(struct collector *c, struct collector_stats *st)
{
	dt_ingest_stats(c->ingest, &st->is);
	dt_link_stats(c->link, &st->ls);
	dt_ingest_min_gen(c->ingest, (unsigned)c->cfg->agent_window_ms, &st->agents);
	st->held = dt_store_held(c->store);
	pthread_mutex_lock(&c->mu);
	st->stored_ever = c->stored_lseq; /* local sequences are dense: see store.h */
	st->backlog = c->stored_lseq > c->acked ? c->stored_lseq - c->acked : 0;
	pthread_mutex_unlock(&c->mu);
}

static void log_stats(struct collector *c, const char *id)
{
	struct collector_stats st;

	collector_stats(c, &st);
	dt_info(id,
		"agents=%u batches_stored=%llu samples_stored=%llu duplicates=%llu malformed=%llu "
		"store_errors=%llu batches_forwarded=%llu samples_forwarded=%llu queued=%llu "
		"resends=%llu stored_ever=%llu held=%llu heartbeats=%llu backlog=%llu",
		st.agents, (unsigned long long)st.is.batches, (unsigned long long)st.is.samples,
		(unsigned long long)st.is.duplicates, (unsigned long long)st.is.malformed,
		(unsigned long long)st.is.store_errors, (unsigned long long)st.ls.batches_sent,
		(unsigned long long)st.ls.samples_sent, (unsigned long long)st.ls.queue_depth,
		(unsigned long long)st.ls.resends, (unsigned long long)st.stored_ever,
		(unsigned long long)st.held, (unsigned long long)st.is.heartbeats,
		(unsigned long long)st.backlog);
}

/*
 * The metrics page (dt_metrics.h), on an nng thread: the numbers of log_stats(), read the
 * same way (collector_stats(): the ingest's and the link's locks, c->mu, a read
 * transaction of the store).
 */
static void render_metrics(void *arg, struct dt_metrics_buf *b)
{
	struct collector_stats st;

	collector_stats(arg, &st);
	dt_metrics_counter(b, "dyetrace_collector_batches_stored_total",
			   "Batches with samples received from agents and stored.", NULL,
			   st.is.batches);
	dt_metrics_counter(b, "dyetrace_collector_samples_stored_total",
			   "Samples in the batches received from agents and stored.", NULL,
			   st.is.samples);
	dt_ingest_metrics(b, "dyetrace_collector", &st.is);
	dt_metrics_counter(b, "dyetrace_collector_batches_forwarded_total",
			   "Stored batches the analyzer acknowledged.", NULL, st.ls.batches_sent);
	dt_metrics_counter(b, "dyetrace_collector_samples_forwarded_total",
			   "Samples in the batches the analyzer acknowledged.", NULL,
			   st.ls.samples_sent);
	dt_link_metrics(b, "dyetrace_collector", "analyzer", &st.ls);
	dt_metrics_gauge(b, "dyetrace_collector_agents",
			 "Agents heard from within agent_window_ms.", NULL, st.agents);
	dt_metrics_counter(b, "dyetrace_collector_batches_stored_ever_total",
			   "Batches the store took since it was created, over restarts (heartbeats "
			   "with new loss counts included).",
			   NULL, st.stored_ever);
	dt_metrics_gauge(b, "dyetrace_collector_store_held_batches",
			 "Batches held in the store (each is deleted once the analyzer "
			 "acknowledged it).",
			 NULL, (double)st.held);
	dt_metrics_gauge(b, "dyetrace_collector_backlog_batches",
			 "Stored batches the analyzer has not acknowledged yet.", NULL,
			 (double)st.backlog);
}

void dt_collector_keep_memory(void)
{
	/* Fixed thresholds (no more dynamic ones): allocations below 4 MiB come from the
	 * heaps, and up to 16 MiB freed at the top of a heap stays there. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

int dt_collector_run(const struct dt_collector_cfg *cfg, volatile int *stop)
{
	struct dt_ingest_ops iops = {.on_batches = on_batches,
				     .on_heartbeat = on_heartbeat,
				     .last_seq = last_seq,
				     .check_only = true};
	struct dt_link_ops lops = {.on_control = on_control,
				   .advertise_gen = advertise_gen,
				   .on_acked = on_acked,
				   .heartbeat_nodes = heartbeat_nodes};
	struct dt_link_cfg lc = {
		.url = cfg->analyzer,
		.sender = cfg->name,
		.heartbeat_ms = (unsigned)cfg->heartbeat_ms,
		.timeout_ms = (unsigned)cfg->ack_timeout_ms,
		.queue_max = (unsigned)cfg->queue_max,
		.tls = &cfg->tls,
	};
	struct collector c = {.cfg = cfg, .mu = PTHREAD_MUTEX_INITIALIZER};
	uint64_t last_stats_ms, persisted = 0;
	int rv;

	dt_collector_keep_memory();
	if ((rv = dt_store_open(cfg->store, cfg->store_max_mib, &c.store)))
		return rv;
	c.stored_lseq = dt_store_last_lseq(c.store);
	iops.arg = &c;
	lops.arg = &c;
	if ((rv = dt_ingest_start_tls(cfg->listen, &cfg->tls, &iops, &c.ingest)))
		goto out;
	if ((rv = dt_link_start(&lc, &lops, &c.link)))
		goto out;
	if (cfg->metrics[0]) {
		char err[DT_ERRBUF_MAX];

		if ((rv = dt_metrics_start(cfg->metrics, render_metrics, &c, &c.metrics, err,
					   sizeof(err)))) {
			dt_err("DT-COLL-METRICS", "%s", err);
			goto out;
		}
		dt_info("DT-COLL-METRICS", "metrics on %s (GET %s)", cfg->metrics, DT_METRICS_PATH);
	}
	/* Resend everything the analyzer did not acknowledge; it deduplicates. */
	c.enqueued = c.acked = persisted = dt_store_forwarded(c.store);
	dt_info("DT-COLL-READY",
		"collector %s: agents on %s, analyzer at %s, store %s (%llu batches stored in all, "
		"%llu held)",
		cfg->name, cfg->listen, cfg->analyzer, cfg->store,
		(unsigned long long)dt_store_last_lseq(c.store),
		(unsigned long long)dt_store_held(c.store));
	last_stats_ms = dt_mono_ms();
	while (!*stop) {
		c.enqueued = dt_store_scan(c.store, c.enqueued, 64, forward_one, &c);
		persist_acked(&c, &persisted);
		if (cfg->stats_interval_s &&
		    dt_mono_ms() - last_stats_ms >= cfg->stats_interval_s * 1000) {
			log_stats(&c, "DT-COLL-STATS");
			last_stats_ms = dt_mono_ms();
		}
		nng_msleep(10);
	}
	rv = 0;
	/* Forward what is stored, within reason, so that the exit counters are final: every
	 * batch acknowledged (and so deleted), unless the analyzer is not there (or refused
	 * the last batch, which is then never acknowledged: the 2 s run out). */
	for (uint64_t until = dt_mono_ms() + 2000; dt_mono_ms() < until;) {
		c.enqueued = dt_store_scan(c.store, c.enqueued, 64, forward_one, &c);
		if (dt_link_flush(c.link, 50) == 0 && c.enqueued == dt_store_last_lseq(c.store) &&
		    acked_lseq(&c) == c.enqueued)
			break;
	}
	persist_acked(&c, &persisted);
	log_stats(&c, "DT-COLL-EXIT");
out:
	dt_metrics_stop(c.metrics); /* its page reads the ingest, the link and the store */
	if (c.ingest)
		dt_ingest_stop(c.ingest);
	if (c.link) {
		unsigned left = dt_link_stop(c.link, 2000);

		if (left)
			dt_warn("DT-COLL-UNSENT",
				"%u stored batches not yet acknowledged by the analyzer; they stay in the store",
				left);
		persist_acked(&c, &persisted);
	}
	dt_store_close(c.store);
	while (c.losts) {
		struct node_lost *n = c.losts;

		c.losts = n->next;
		free(n);
	}
	return rv;
}
