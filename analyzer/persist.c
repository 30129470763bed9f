/* SPDX-License-Identifier: MIT */
/*
 * persist.c - the store: what changed is written in one transaction (persist()), and read back
 * after a restart (restore()). See analyzer.c for the durability rules.
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

void ana_store_failed(struct analyzer *a, const char *what, int rv)
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
 * observations are the only ones not stored then (see ana_on_batch()). */
static void unstore_obs(struct analyzer *a)
{
	for (size_t i = 0; i < dt_tasks_n_active(a->tasks); i++) {
		struct dt_task *task = dt_tasks_active(a->tasks, i);

		dt_task_obs_truncate(task, task->n_stored);
	}
}

int ana_persist_write(struct analyzer *a, const struct dt_stitch_counters *c)
{
	struct dt_taskstore *st = a->store;
	struct dt_stitch *sti = a->stitch;
	int rv;

	for (uint32_t i = a->stored_strs; i < dt_strtab_count(a->strs); i++) {
		if ((rv = dt_taskstore_put_string(st, i, dt_strtab_get(a->strs, i))) != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < dt_tasks_n_active(a->tasks); i++) {
		struct dt_task *task = dt_tasks_active(a->tasks, i);

		if (task->n_obs > task->n_stored && (rv = dt_taskstore_put_obs(st, task)) != 0) {
			return rv;
		}
		if (task->dirty && (rv = dt_taskstore_put_task(st, task)) != 0) {
			return rv;
		}
	}
	/* An ended task whose final report is not stored yet is out of the active list but
	 * may have gained observations (from held samples whose release this commit
	 * records): they are stored with it, until ana_finalize() replaces them by the report. */
	for (size_t i = 0; i < dt_tasks_n_all(a->tasks); i++) {
		struct dt_task *task = dt_tasks_nth(a->tasks, i);

		if (task->final_pending && task->n_obs > task->n_stored &&
		    (rv = dt_taskstore_put_obs(st, task)) != 0) {
			return rv;
		}
	}
	for (size_t i = dt_stitch_unsaved(sti); i < dt_stitch_n_held(sti); i++) {
		const struct dt_stitch_held *h = &(*dt_stitch_held_at(sti, i));

		if ((rv = dt_taskstore_put_held(st, h->id, &h->in)) != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < dt_stitch_n_released(sti); i++) {
		if ((rv = dt_taskstore_del_held(st, dt_stitch_released_at(sti, i))) != 0) {
			return rv;
		}
	}
	for (const struct node_loss *n = a->losses; n; n = n->next) {
		if (n->dirty && (rv = dt_taskstore_put_loss(st, n->node, n->lost)) != 0) {
			return rv;
		}
	}
	if (memcmp(c, &a->stored_counters, sizeof(*c)) != 0 &&
	    (rv = dt_taskstore_put_counters(st, c)) != 0) {
		return rv;
	}
	return dt_taskstore_put_meta(st, dt_tasks_next_id(a->tasks), dt_tasks_gen(a->tasks));
}

void ana_persisted(struct analyzer *a, const struct dt_stitch_counters *c)
{
	a->stored_strs = dt_strtab_count(a->strs);
	for (size_t i = 0; i < dt_tasks_n_active(a->tasks); i++) {
		dt_tasks_active(a->tasks, i)->n_stored = dt_tasks_active(a->tasks, i)->n_obs;
		dt_tasks_active(a->tasks, i)->dirty = false;
	}
	for (size_t i = 0; i < dt_tasks_n_all(a->tasks); i++) {
		if (dt_tasks_nth(a->tasks, i)->final_pending) {
			dt_tasks_nth(a->tasks, i)->n_stored = dt_tasks_nth(a->tasks, i)->n_obs;
		}
	}
	for (struct node_loss *n = a->losses; n; n = n->next) {
		n->dirty = false;
	}
	dt_stitch_saved(a->stitch);
	a->stored_counters = *c;
}

int ana_persist(struct analyzer *a, const char *sender, uint64_t seq)
{
	struct dt_taskstore *st = a->store;
	struct dt_stitch_counters c;
	bool changed = sender || a->stored_strs < dt_strtab_count(a->strs);
	int rv;

	dt_stitch_counters_get(a->stitch, &c);
	changed = changed || dt_stitch_unsaved(a->stitch) < dt_stitch_n_held(a->stitch) ||
		  dt_stitch_n_released(a->stitch) > 0 ||
		  memcmp(&c, &a->stored_counters, sizeof(c)) != 0;
	for (const struct node_loss *n = a->losses; n && !changed; n = n->next) {
		changed = n->dirty;
	}
	for (size_t i = 0; i < dt_tasks_n_active(a->tasks) && !changed; i++) {
		changed = dt_tasks_active(a->tasks, i)->dirty ||
			  dt_tasks_active(a->tasks, i)->n_obs >
				  dt_tasks_active(a->tasks, i)->n_stored;
	}
	for (size_t i = 0; i < dt_tasks_n_all(a->tasks) && !changed; i++) {
		changed = dt_tasks_nth(a->tasks, i)->final_pending &&
			  dt_tasks_nth(a->tasks, i)->n_obs > dt_tasks_nth(a->tasks, i)->n_stored;
	}
	if (!changed) {
		return 0;
	}
	if ((rv = dt_taskstore_begin(st)) != 0) {
		goto fail;
	}
	if ((rv = ana_persist_write(a, &c)) != 0 ||
	    (sender && (rv = dt_taskstore_put_seq(st, sender, seq)) != 0)) {
		goto abort;
	}
	if ((rv = dt_taskstore_commit(st)) != 0) {
		goto fail;
	}
	ana_persisted(a, &c);
	return 0;
abort:
	dt_taskstore_abort(st);
fail:
	ana_store_failed(a, "write to the store", rv);
	return rv;
}

void ana_unstore_batch(struct analyzer *a, const struct dt_stitch_counters *c)
{
	unstore_obs(a);
	dt_stitch_forget_unsaved(a->stitch);
	dt_stitch_counters_set(a->stitch, c);
}

void ana_retain(struct analyzer *a, uint64_t now_ns, uint64_t now_ms)
{
	uint64_t keep_ns = a->cfg->retention_s * 1000000000ull;
	uint64_t report_ns = a->cfg->report_retention_s * 1000000000ull;
	uint64_t every_ms = a->cfg->report_retention_s * 500;
	size_t n = 0;
	int rv;

	if (now_ns > keep_ns) {
		a->evicted += dt_tasks_evict_ended(a->tasks, now_ns - keep_ns);
	}
	if (every_ms > 3600000) {
		every_ms = 3600000;
	}
	if (now_ns <= report_ns || (a->purged_ms && now_ms - a->purged_ms < every_ms)) {
		return;
	}
	a->purged_ms = now_ms;
	if ((rv = dt_taskstore_begin(a->store)) != 0) {
		ana_store_failed(a, "purge old reports from the store", rv);
		return;
	}
	if ((rv = dt_taskstore_purge_ended(a->store, now_ns - report_ns, &n)) != 0) {
		dt_taskstore_abort(a->store);
		ana_store_failed(a, "purge old reports from the store", rv);
		return;
	}
	if ((rv = dt_taskstore_commit(a->store)) != 0) {
		ana_store_failed(a, "purge old reports from the store", rv);
		return;
	}
	a->purged += n;
}

static int ld_meta(void *arg, uint32_t next_id, uint64_t gen)
{
	struct analyzer *a = arg;

	dt_tasks_restore_meta(a->tasks, next_id, gen);
	return 0;
}

static int ld_string(void *arg, uint32_t idx, const char *str)
{
	struct analyzer *a = arg;
	uint32_t got;
	int rv;

	if ((rv = dt_strtab_intern(a->strs, str, strlen(str) + 1, &got)) != 0) {
		return rv;
	}
	return got == idx ? 0 : -EPROTO;
}

static int ld_seq(void *arg, const char *sender, uint64_t seq)
{
	struct sender_seq *s = ana_seq_of(arg, sender);

	if (!s) {
		return -ENOMEM;
	}
	s->seq = seq;
	return 0;
}

static int ld_loss(void *arg, const char *node, const uint64_t lost[DT_LOSS_MAX])
{
	struct node_loss *n = ana_loss_of(arg, node);

	if (!n) {
		return -ENOMEM;
	}
	memcpy(n->lost, lost, sizeof(n->lost));
	return 0;
}

static int ld_task(void *arg, struct dt_task *rec)
{
	struct analyzer *a = arg;
	uint64_t keep_ns = a->cfg->retention_s * 1000000000ull,
		 now_ns = dt_clock_ns(CLOCK_REALTIME);
	int rv;

	/* Ended longer than retention_s ago: its report is served from the store. */
	if (dt_task_state_terminal(rec->state) && now_ns > keep_ns && rec->ended_ns &&
	    rec->ended_ns < now_ns - keep_ns) {
		free(rec);
		a->evicted++;
		return 0;
	}
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
	if ((rv = dt_tasks_restore(a->tasks, rec)) != 0) {
		free(rec);
	}
	return rv;
}

static int ld_obs(void *arg, uint32_t id, const struct dt_obs *o, const uint8_t *cap)
{
	struct analyzer *a = arg;
	struct dt_task *task = dt_tasks_find_active(a->tasks, id);
	struct dt_obs copy = *o;

	int rv;

	if (!task) {
		return 0; /* left over from a task that ended: ignored */
	}
	/* Its arrival_ms is another boot's monotonic clock. As if it arrived now: a packet of
	 * a resumed task is in flight for a window, while the collectors resend what this
	 * analyzer did not acknowledge and its held samples are matched again. Not for a task
	 * whose duration ran out meanwhile: ana_restore() ends it at once, judged as stored. */
	if (dt_clock_ns(CLOCK_REALTIME) <
	    task->created_ns + (uint64_t)task->spec.duration_s * 1000000000ull) {
		copy.arrival_ms = dt_mono_ms();
	} else {
		copy.arrival_ms = 0;
	}
	if ((rv = dt_task_add_obs(task, &copy, cap)) == 0) {
		task->n_stored = task->n_obs;
	}
	return rv;
}

static int ld_counters(void *arg, const struct dt_stitch_counters *c)
{
	struct analyzer *a = arg;

	dt_stitch_counters_set(a->stitch, c);
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
	return dt_stitch_restore_held(a->stitch, id, in, dt_mono_ms());
}

int ana_restore(struct analyzer *a)
{
	const struct dt_taskstore_load_ops ops = {.meta = ld_meta,
						  .string = ld_string,
						  .seq = ld_seq,
						  .loss = ld_loss,
						  .task = ld_task,
						  .obs = ld_obs,
						  .counters = ld_counters,
						  .held = ld_held,
						  .arg = a};
	uint64_t now_ns = dt_clock_ns(CLOCK_REALTIME), now_ms = dt_mono_ms();
	size_t resumed = 0, expired = 0, orphaned = 0;
	char when[32];
	time_t secs = (time_t)(now_ns / 1000000000ull);
	struct tm tm;
	int rv;

	if ((rv = dt_taskstore_load(a->store, &ops)) != 0) {
		return rv;
	}
	/* The translations the held samples may still need (stitch.c says why this way). */
	if ((rv = dt_stitch_relearn(a->stitch)) != 0) {
		return rv;
	}
	a->stored_strs = dt_strtab_count(a->strs);
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	dt_tasks_new_gen(a->tasks); /* a new control set, even with the same arms */
	for (size_t i = dt_tasks_n_active(a->tasks); i-- > 0;) {
		struct dt_task *task = dt_tasks_active(a->tasks, i);
		uint64_t deadline =
			task->created_ns + (uint64_t)task->spec.duration_s * 1000000000ull;

		task->n_stored = task->n_obs;
		if (task->tenant == UINT32_MAX) {
			/* Nobody could see it, cancel it or stop its coloring. */
			dt_task_end(a->tasks, task, DT_TASK_CANCELLED, DT_TS_TENANT_REMOVED, now_ns,
				    "cancelled: its tenant %s is no longer in the analyzer's "
				    "configuration (restarted %s); the report holds the %zu "
				    "samples stored before",
				    task->tenant_name, when, task->n_obs);
			ana_finalize(a, task);
			orphaned++;
			continue;
		}
		if (now_ns >= deadline) {
			dt_task_end(
				a->tasks, task, DT_TASK_EXPIRED, DT_TS_RESTARTED, now_ns,
				"expired: its duration of %u s ran out while the analyzer was "
				"stopped (restarted %s); the report holds the %zu samples stored "
				"before",
				task->spec.duration_s, when, task->n_obs);
			ana_finalize(a, task);
			expired++;
			continue;
		}
		if (task->state == DT_TASK_NEW) {
			dt_task_ready(a->tasks, task, now_ms);
		}
		task->ready_ms = now_ms;
		task->status = DT_TS_RESTARTED;
		task->dirty = true;
		snprintf(task->status_text, sizeof(task->status_text),
			 "%s: the analyzer restarted %s and resumed this task (%zu stored "
			 "samples reloaded, re-armed with control set %llu)",
			 dt_task_state_name(task->state), when, task->n_obs,
			 (unsigned long long)dt_tasks_gen(a->tasks));
		resumed++;
	}
	if ((rv = ana_persist(a, NULL, 0)) != 0) {
		return rv;
	}
	dt_info("DT-ANA-RESTORE",
		"store %s: %zu tasks (%zu resumed, %zu expired while stopped, %zu cancelled: tenant "
		"removed), %u names, %zu held samples, %llu translations, control set %llu",
		a->cfg->store, dt_tasks_n_all(a->tasks), resumed, expired, orphaned,
		dt_strtab_count(a->strs), dt_stitch_n_held(a->stitch),
		(unsigned long long)dt_stitch_n_nat(a->stitch),
		(unsigned long long)dt_tasks_gen(a->tasks));
	return 0;
}
