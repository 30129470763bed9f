/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the analyzer's counters: the periodic log line and the Prometheus page.
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

void ana_count_reply(struct analyzer *a, const msgpack_sbuffer *out)
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

void ana_log_stats(struct analyzer *a, const char *id)
{
	struct dt_stitch_counters sc;
	struct dt_ingest_stats is;
	unsigned collectors;

	dt_ingest_stats(a->ingest, &is);
	dt_ingest_min_gen(a->ingest, (unsigned)a->cfg->collector_window_ms, &collectors);
	pthread_mutex_lock(&a->mu);
	dt_stitch_counters_get(a->stitch, &sc);
	dt_info(id,
		"collectors=%u tasks=%zu active=%zu arms=%zu batches=%llu samples=%llu "
		"attributed=%llu late=%llu held=%zu unmatched=%llu after_end=%llu windows=%llu "
		"nat_learned=%llu "
		"nat_full=%llu nomem=%llu names=%u names_full=%llu duplicates=%llu malformed=%llu "
		"api_requests=%llu api_malformed=%llu api_refused_token=%llu store_errors=%llu "
		"control_gen=%llu api_ok=%llu api_invalid=%llu api_not_found=%llu api_refused=%llu "
		"api_failed=%llu api_full=%llu",
		collectors, dt_tasks_n_all(a->tasks), dt_tasks_n_active(a->tasks),
		dt_tasks_n_arms(a->tasks), (unsigned long long)is.batches,
		(unsigned long long)a->samples, (unsigned long long)sc.attributed,
		(unsigned long long)sc.late, dt_stitch_n_held(a->stitch),
		(unsigned long long)sc.unmatched, (unsigned long long)sc.after_end,
		(unsigned long long)sc.windows, (unsigned long long)sc.learned,
		(unsigned long long)sc.nat_full, (unsigned long long)sc.nomem,
		dt_strtab_count(a->strs), (unsigned long long)a->names_full,
		(unsigned long long)is.duplicates, (unsigned long long)is.malformed,
		(unsigned long long)a->api_requests, (unsigned long long)a->api_malformed,
		(unsigned long long)a->api_refused_token, (unsigned long long)a->store_errors,
		(unsigned long long)dt_tasks_gen(a->tasks),
		(unsigned long long)a->api_by_status[DT_ST_OK],
		(unsigned long long)a->api_by_status[DT_ST_INVALID],
		(unsigned long long)a->api_by_status[DT_ST_NOT_FOUND],
		(unsigned long long)a->api_by_status[DT_ST_REFUSED],
		(unsigned long long)a->api_by_status[DT_ST_FAILED],
		(unsigned long long)a->api_by_status[DT_ST_FULL]);
	pthread_mutex_unlock(&a->mu);
}

void ana_render_metrics(void *arg, struct dt_metrics_buf *b)
{
	struct analyzer *a = arg;
	uint64_t states[DT_TASK_STATE_MAX] = {0}, lost[DT_LOSS_MAX] = {0};
	struct dt_stitch_counters sc, *st = &sc;
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
	dt_metrics_gauge(b, "dyetrace_analyzer_nodes",
			 "Nodes whose state the collectors relay (the last snapshot).", NULL,
			 a->n_nodes);
	dt_metrics_gauge(b, "dyetrace_analyzer_nodes_silent",
			 "Nodes no collector relays any more, remembered for an hour (silent.h).",
			 NULL, a->silent.n);
	dt_stitch_counters_get(a->stitch, &sc);
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
			 (double)dt_stitch_n_held(a->stitch));
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
	for (size_t i = 0; i < dt_tasks_n_all(a->tasks); i++)
		if (dt_tasks_nth(a->tasks, i)->state < DT_TASK_STATE_MAX)
			states[dt_tasks_nth(a->tasks, i)->state]++;
	for (unsigned i = 0; i < DT_TASK_STATE_MAX; i++)
		dt_metrics_gauge(b, "dyetrace_analyzer_tasks", "Tasks by state.",
				 DT_METRICS_LABELS("state", dt_task_state_name(i)),
				 (double)states[i]);
	dt_metrics_gauge(b, "dyetrace_analyzer_armed_keys",
			 "Keys of active tasks in the control set.", NULL,
			 (double)dt_tasks_n_arms(a->tasks));
	dt_metrics_gauge(b, "dyetrace_analyzer_control_generation",
			 "Generation of the control set.", NULL, (double)dt_tasks_gen(a->tasks));
	dt_metrics_gauge(b, "dyetrace_analyzer_names", "Names in the string table.", NULL,
			 dt_strtab_count(a->strs));
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
