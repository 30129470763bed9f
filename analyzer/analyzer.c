/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "analyzer.h"
#include "dt_ingest.h"
#include "dt_log.h"
#include "dt_time.h"
#include "paths.h"
#include "stitch.h"
#include "strtab.h"
#include "tasks.h"

/* How often the main loop wakes up without API requests, to close the analysis window. */
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
	struct dt_strtab strs;    /* names the observations refer to */
	struct dt_stitch stitch;  /* attributes samples to tasks */
	struct node_loss *losses;
	struct sender_seq *seqs;
	struct dt_ingest *ingest;
	nng_socket api;
	uint64_t samples, api_requests, api_malformed;
	uint64_t names_full; /* names not interned: the table is full (they read as "") */
	struct dt_ratelimit rl_api, rl_nomem;
	/* on_batch's scratch: a batch's interface names and strings as string table indices */
	uint32_t batch_ifaces[DT_BATCH_MAX_IFACES];
	uint32_t batch_strs[DT_BATCH_MAX_STRINGS];
};

static struct sender_seq *seq_of(struct analyzer *a, const char *name)
{
	struct sender_seq *s;

	for (s = a->seqs; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
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
	for (s = a->seqs; s; s = s->next)
		if (strcmp(s->name, sender) == 0)
			r = s->seq;
	pthread_mutex_unlock(&a->mu);
	return r;
}

static void note_loss(struct analyzer *a, const struct dt_batch *b)
{
	struct node_loss *n;

	for (n = a->losses; n; n = n->next)
		if (strcmp(n->node, b->node) == 0)
			break;
	if (!n) {
		if (!(n = calloc(1, sizeof(*n))))
			return;
		snprintf(n->node, sizeof(n->node), "%s", b->node);
		n->next = a->losses;
		a->losses = n;
	}
	/* Cumulative counters: the latest report wins, unless it went backwards (restart). */
	for (int i = 0; i < DT_LOSS_MAX; i++)
		if (b->lost[i] > n->lost[i])
			n->lost[i] = b->lost[i];
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

	if ((rv = intern(a, b->node, sizeof(b->node), node)))
		return rv;
	for (uint32_t i = 0; i < b->n_ifaces && i < DT_BATCH_MAX_IFACES; i++)
		if ((rv = intern(a, b->ifaces[i], sizeof(b->ifaces[i]), &ifaces[i])))
			return rv;
	for (uint32_t i = 0; i < b->n_strings && i < DT_BATCH_MAX_STRINGS; i++)
		if ((rv = intern(a, b->strings[i], sizeof(b->strings[i]), &strs[i])))
			return rv;
	return 0;
}

static uint32_t batch_string(const struct dt_batch *b, const uint32_t *strs, uint16_t i)
{
	return i < b->n_strings && i < DT_BATCH_MAX_STRINGS ? strs[i] : DT_STRTAB_NONE;
}

/*
 * Feeds the batch's samples to the stitcher, with their names resolved into the
 * analyzer's string table. Names cannot be interned without memory: then nothing of the
 * batch is taken and the sender is told to resend it.
 */
static int on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	struct analyzer *a = arg;
	const uint32_t *ifaces = a->batch_ifaces, *strs = a->batch_strs;
	struct sender_seq *s;
	uint64_t now = dt_mono_ms(), suppressed;
	uint32_t node;

	pthread_mutex_lock(&a->mu);
	if (b->n_samples && intern_batch(a, b, &node, a->batch_ifaces, a->batch_strs) != 0) {
		bool log = dt_ratelimit_ok(&a->rl_nomem, 1000, &suppressed);

		pthread_mutex_unlock(&a->mu);
		if (log)
			dt_warn("DT-ANA-NOMEM",
				"no memory for the names of a batch from %s; it will be resent "
				"(%llu more since the last report)",
				b->sender, (unsigned long long)suppressed);
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
	a->samples += b->n_samples;
	if (b->n_samples)
		note_loss(a, b);
	if ((s = seq_of(a, b->sender)))
		s->seq = b->seq;
	pthread_mutex_unlock(&a->mu);
	return DT_ST_OK;
}

static uint64_t applied_gen(struct analyzer *a)
{
	unsigned collectors;
	uint64_t gen = dt_ingest_min_gen(a->ingest, (unsigned)a->cfg->collector_window_ms,
					 &collectors);

	return collectors ? gen : 0;
}

/* Builds the report of task (lock held), closing the analysis window first when due. */
static int build_report(struct analyzer *a, struct dt_task *task, struct dt_report *r)
{
	struct dt_paths_ctx ctx = {
		.strs = &a->strs,
		.now_ns = dt_clock_ns(CLOCK_REALTIME),
		.now_ms = dt_mono_ms(),
		.window_ms = a->cfg->window_ms,
	};
	struct node_loss *n;
	int rv;

	dt_stitch_tick(&a->stitch, ctx.now_ms);
	memset(r, 0, sizeof(*r));
	dt_task_info_fill(task, applied_gen(a), &r->task);
	if ((rv = dt_paths_build(&ctx, task->obs, task->n_obs, r)))
		return rv;
	for (n = a->losses; n; n = n->next)
		for (int i = 0; i < DT_LOSS_MAX; i++)
			r->lost[i] += n->lost[i];
	r->unmatched = a->stitch.unmatched;
	r->window_ms = a->cfg->window_ms;
	return 0;
}

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

static int api_create(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
{
	struct dt_task_spec spec;
	struct dt_task_info info;
	struct dt_control ctl;
	struct dt_task *task;
	char err[DT_MSG_MAX];
	int rv;

	if ((rv = dt_task_create_decode(buf, len, &spec)))
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	pthread_mutex_lock(&a->mu);
	rv = dt_tasks_create(&a->tasks, &spec, dt_clock_ns(CLOCK_REALTIME), &task, err,
			     sizeof(err));
	if (rv == 0 && (rv = dt_tasks_control(&a->tasks, &ctl)) == 0) {
		rv = dt_ingest_set_control(a->ingest, &ctl);
		dt_control_free(&ctl);
	}
	if (rv == 0)
		dt_task_info_fill(task, applied_gen(a), &info);
	pthread_mutex_unlock(&a->mu);
	if (rv == -EINVAL)
		return reply_error(out, DT_ST_INVALID, "%s", err);
	if (rv == -EEXIST || rv == -ENOSPC)
		return reply_error(out, DT_ST_REFUSED, "%s", err);
	if (rv)
		return reply_error(out, DT_ST_FAILED, "cannot create the task: %s", strerror(-rv));
	dt_info("DT-ANA-TASK", "task %u created, arming with control set %llu", info.id,
		(unsigned long long)task->arm_gen);
	return dt_task_encode(out, &info);
}

static int api_get(struct analyzer *a, const void *buf, size_t len, bool report,
		   msgpack_sbuffer *out)
{
	struct dt_report r;
	struct dt_task *task;
	uint32_t id;
	int rv;

	rv = report ? dt_report_get_decode(buf, len, &id) : dt_task_get_decode(buf, len, &id);
	if (rv)
		return reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
	pthread_mutex_lock(&a->mu);
	task = dt_tasks_find(&a->tasks, id);
	rv = task ? build_report(a, task, &r) : -ENOENT;
	pthread_mutex_unlock(&a->mu);
	if (rv == -ENOENT)
		return reply_error(out, DT_ST_NOT_FOUND, "no task %u", id);
	if (rv)
		return reply_error(out, DT_ST_FAILED, "cannot build the report: %s", strerror(-rv));
	rv = report ? dt_report_encode(out, &r) : dt_task_encode(out, &r.task);
	dt_report_free(&r);
	return rv;
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
			rv = api_get(a, buf, len, false, out);
			break;
		case DT_MSG_REPORT_GET:
			rv = api_get(a, buf, len, true, out);
			break;
		default:
			rv = DT_PROTO_EMSGTYPE;
			break;
		}
		if (rv == 0)
			return;
	}
	a->api_malformed++;
	if (dt_ratelimit_ok(&a->rl_api, 1000, &suppressed))
		dt_warn("DT-ANA-MALFORMED", "refused an API request: %s (%llu more since the last report)",
			dt_proto_strerror(rv), (unsigned long long)suppressed);
	reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
}

static void log_stats(struct analyzer *a, const char *id)
{
	struct dt_ingest_stats is;
	unsigned collectors;

	dt_ingest_stats(a->ingest, &is);
	dt_ingest_min_gen(a->ingest, (unsigned)a->cfg->collector_window_ms, &collectors);
	pthread_mutex_lock(&a->mu);
	dt_info(id,
		"collectors=%u tasks=%zu batches=%llu samples=%llu attributed=%llu late=%llu "
		"held=%zu unmatched=%llu windows=%llu nat_learned=%llu nat_full=%llu nomem=%llu "
		"names=%u names_full=%llu duplicates=%llu malformed=%llu api_requests=%llu "
		"api_malformed=%llu control_gen=%llu",
		collectors, a->tasks.n, (unsigned long long)is.batches,
		(unsigned long long)a->samples, (unsigned long long)a->stitch.attributed,
		(unsigned long long)a->stitch.late, a->stitch.n_held,
		(unsigned long long)a->stitch.unmatched, (unsigned long long)a->stitch.windows,
		(unsigned long long)a->stitch.learned, (unsigned long long)a->stitch.nat_full,
		(unsigned long long)a->stitch.nomem, a->strs.n,
		(unsigned long long)a->names_full, (unsigned long long)is.duplicates,
		(unsigned long long)is.malformed, (unsigned long long)a->api_requests,
		(unsigned long long)a->api_malformed, (unsigned long long)a->tasks.gen);
	pthread_mutex_unlock(&a->mu);
}

int dt_analyzer_run(const struct dt_analyzer_cfg *cfg, volatile int *stop)
{
	struct dt_ingest_ops iops = {.on_batch = on_batch, .last_seq = last_seq};
	struct analyzer a;
	uint64_t last_stats_ms;
	msgpack_sbuffer out;
	int rv;

	memset(&a, 0, sizeof(a));
	a.cfg = cfg;
	pthread_mutex_init(&a.mu, NULL);
	dt_tasks_init(&a.tasks);
	dt_stitch_init(&a.stitch, &a.tasks, cfg->window_ms);
	msgpack_sbuffer_init(&out);
	iops.arg = &a;
	if ((rv = dt_strtab_init(&a.strs)))
		goto out;
	if ((rv = dt_ingest_start(cfg->listen, &iops, &a.ingest)))
		goto out;
	if ((rv = nng_rep0_open(&a.api)) != 0 ||
	    (rv = nng_socket_set_ms(a.api, NNG_OPT_RECVTIMEO, TICK_MS)) != 0 ||
	    (rv = nng_listen(a.api, cfg->api, NULL, 0)) != 0) {
		dt_err("DT-ANA-API", "cannot listen for the API on %s: %s", cfg->api, nng_strerror(rv));
		rv = -EINVAL;
		goto out;
	}
	dt_info("DT-ANA-READY", "analyzer: collectors on %s, API on %s", cfg->listen, cfg->api);
	last_stats_ms = dt_mono_ms();
	while (!*stop) {
		void *buf = NULL;
		size_t len = 0;

		rv = nng_recv(a.api, &buf, &len, NNG_FLAG_ALLOC);
		if (rv == 0) {
			msgpack_sbuffer_clear(&out);
			api_handle(&a, buf, len, &out);
			nng_free(buf, len);
			nng_send(a.api, out.data, out.size, 0);
		} else if (rv != NNG_ETIMEDOUT) {
			dt_err("DT-ANA-API", "%s", nng_strerror(rv));
			break;
		}
		pthread_mutex_lock(&a.mu);
		dt_stitch_tick(&a.stitch, dt_mono_ms());
		pthread_mutex_unlock(&a.mu);
		if (cfg->stats_interval_s && dt_mono_ms() - last_stats_ms >= cfg->stats_interval_s * 1000) {
			log_stats(&a, "DT-ANA-STATS");
			last_stats_ms = dt_mono_ms();
		}
	}
	rv = 0;
	log_stats(&a, "DT-ANA-EXIT");
out:
	nng_close(a.api);
	if (a.ingest)
		dt_ingest_stop(a.ingest);
	while (a.losses) {
		struct node_loss *n = a.losses;

		a.losses = n->next;
		free(n);
	}
	while (a.seqs) {
		struct sender_seq *s = a.seqs;

		a.seqs = s->next;
		free(s);
	}
	dt_stitch_free(&a.stitch);
	dt_tasks_free(&a.tasks);
	dt_strtab_free(&a.strs);
	msgpack_sbuffer_destroy(&out);
	pthread_mutex_destroy(&a.mu);
	return rv;
}
