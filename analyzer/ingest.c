/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - the collectors' batches: deduplication by sender seq, names interned, samples
 * given to the stitcher, and the commit that comes before the acknowledgement.
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

struct sender_seq *ana_seq_of(struct analyzer *a, const char *name)
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

uint64_t ana_last_seq(void *arg, const char *sender)
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

struct node_loss *ana_loss_of(struct analyzer *a, const char *node)
{
	struct node_loss *n;

	for (n = a->losses; n; n = n->next) {
		if (strcmp(n->node, node) == 0) {
			return n;
		}
	}
	if (!(n = calloc(1, sizeof(*n)))) {
		return NULL;
	}
	snprintf(n->node, sizeof(n->node), "%s", node);
	n->next = a->losses;
	a->losses = n;
	return n;
}

/* Takes the loss counters of b's node; true when one rose (the node is then dirty: the
 * next commit stores its counters). */
static bool note_loss(struct analyzer *a, const struct dt_batch *b)
{
	struct node_loss *n = ana_loss_of(a, b->node);
	bool rose = false;

	if (!n) {
		return false;
	}
	/* Cumulative counters: the latest report wins, unless it went backwards (restart). */
	for (int i = 0; i < DT_LOSS_MAX; i++) {
		if (b->lost[i] > n->lost[i]) {
			n->lost[i] = b->lost[i];
			rose = true;
		}
	}
	n->dirty |= rose;
	return rose;
}

void ana_on_heartbeat(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	struct analyzer *a = arg;

	pthread_mutex_lock(&a->mu);
	/* Stored before the acknowledgement: the collector does not send this one again. */
	if (note_loss(a, b)) {
		ana_persist(a, NULL, 0); /* a failure is retried with the next commit */
	}
	pthread_mutex_unlock(&a->mu);
}

/* Interns s into the analyzer's names. Returns 0 or -ENOMEM; a full table gives NONE. */
static int intern(struct analyzer *a, const char *s, size_t max, uint32_t *idx)
{
	int rv = dt_strtab_intern(a->strs, s, max, idx);

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

/* A batch's samples on their way to the stitcher (dt_batch_samples()). */
struct batch_walk {
	struct analyzer *a;
	const struct dt_batch *b; /* its head: names interned into a->batch_* */
	uint32_t node;
	uint64_t now;
};

static void add_sample(void *arg, const struct dt_wire_sample *w)
{
	const struct batch_walk *bw = arg;
	const struct dt_batch *b = bw->b;
	struct analyzer *a = bw->a;
	struct dt_stitch_in in;

	dt_stitch_in_fill(&in, w, bw->node,
			  w->iface < b->n_ifaces ? a->batch_ifaces[w->iface] : DT_STRTAB_NONE,
			  batch_string(b, a->batch_strs, w->drop_name),
			  batch_string(b, a->batch_strs, w->drop_where), bw->now);
	/* A failure is counted by the stitcher (nomem); the rest of the batch goes on. */
	dt_stitch_add(a->stitch, &in, bw->now);
}

int ana_on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	struct analyzer *a = arg;
	struct batch_walk walk;
	struct dt_stitch_counters before;
	struct sender_seq *s;
	uint64_t now = dt_mono_ms(), suppressed;
	uint32_t node = DT_STRTAB_NONE;
	int rv;

	pthread_mutex_lock(&a->mu);
	/*
	 * What a window closed since the last commit (observations, released held samples)
	 * is written first, so that a failure below takes back exactly this batch. When
	 * that fails the store is failing: the batch is refused and comes again.
	 */
	if (ana_persist(a, NULL, 0) != 0) {
		pthread_mutex_unlock(&a->mu);
		return DT_ST_FAILED;
	}
	dt_stitch_counters_get(a->stitch, &before);
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
	walk.a = a;
	walk.b = b;
	walk.node = node;
	walk.now = now;
	/* Checked whole on arrival (dt_ingest's check_only): read, it cannot fail part way but
	 * for memory, and then the batch is taken back as below. */
	rv = dt_batch_samples(raw, len, b, add_sample, &walk);
	note_loss(a, b); /* committed with the batch */
	if (rv != 0 || ana_persist(a, b->sender, b->seq) != 0) {
		ana_unstore_batch(a, &before);
		pthread_mutex_unlock(&a->mu);
		return DT_ST_FAILED;
	}
	a->samples += b->n_samples;
	if ((s = ana_seq_of(a, b->sender))) {
		s->seq = b->seq;
	}
	pthread_mutex_unlock(&a->mu);
	return DT_ST_OK;
}
