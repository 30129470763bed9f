/* SPDX-License-Identifier: MIT */
/*
 * api.c - the API the CLI talks to: authentication by tenant token, and the task and
 * report requests.
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

static int reply_error(msgpack_sbuffer *out, enum dt_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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
			msg_word(type), token[0] ? "unknown" : "no",
			(unsigned long long)suppressed);
	}
	pthread_mutex_unlock(&a->mu);
	reply_error(out, DT_ST_REFUSED, "unknown tenant token");
	return -1;
}

/* The task id names for tenant, or NULL: another tenant's task is not found either. */
static struct dt_task *tenant_task(struct analyzer *a, int tenant, uint32_t id)
{
	struct dt_task *task = dt_tasks_find(a->tasks, id);

	return task && task->tenant == (uint32_t)tenant ? task : NULL;
}

/*
 * An ended task that left memory (retention_s) is read from the store: its final report
 * (*buf, malloc'd; info filled when not NULL) when the task is tenant's. Returns 0 or
 * -ENOENT (purged, never was, or another tenant's). Lock held.
 */
static int stored_task(struct analyzer *a, int tenant, uint32_t id, void **buf, size_t *len,
		       struct dt_task_info *info)
{
	struct dt_report r;
	bool mine;

	if (dt_taskstore_get_report(a->store, id, buf, len) != 0) {
		return -ENOENT;
	}
	if (dt_report_decode(*buf, *len, &r) != 0) {
		free(*buf);
		return -ENOENT;
	}
	mine = strcmp(r.task.tenant, a->cfg->tenants[tenant].name) == 0;
	if (mine && info) {
		*info = r.task;
	}
	dt_report_free(&r);
	if (!mine) {
		free(*buf);
		return -ENOENT;
	}
	return 0;
}

/*
 * Whether a task of spec fits in the task maps of the nodes hosting its first hops, as
 * their last node states tell (lock held). Returns 0, -ENOSPC or -EINVAL (err says why).
 */
static int room_for(struct analyzer *a, const struct dt_task_spec *spec, char *err, size_t errlen)
{
	struct dt_task_spec norm;
	int rv;

	if ((rv = dt_task_spec_normalize(spec, &norm, err, errlen)) != 0) {
		return rv;
	}
	return dt_tasks_check_room(a->tasks, &a->hosts, &norm, err, errlen);
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
		return reply_error(out, DT_ST_INVALID, "malformed request: %s",
				   dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_CREATE, out)) < 0) {
		return 0;
	}
	if (dt_limits_apply(lim, &spec, err, sizeof(err)) != 0) {
		return reply_error(out, DT_ST_REFUSED, "%s", err);
	}
	pthread_mutex_lock(&a->mu);
	if (dt_tasks_count_tenant(a->tasks, (uint32_t)tenant) >= lim->tasks_max_per_tenant) {
		pthread_mutex_unlock(&a->mu);
		return reply_error(out, DT_ST_REFUSED,
				   "tenant %s has %llu active tasks, the maximum; wait for one to "
				   "end or cancel one",
				   a->cfg->tenants[tenant].name,
				   (unsigned long long)lim->tasks_max_per_tenant);
	}
	rv = room_for(a, &spec, err, sizeof(err));
	if (rv == 0) {
		rv = dt_tasks_create(a->tasks, &spec, (uint32_t)tenant,
				     a->cfg->tenants[tenant].name, dt_clock_ns(CLOCK_REALTIME),
				     &task, err, sizeof(err));
	}
	if (rv == 0) {
		ana_loss_totals(a, task->lost_base, &task->unmatched_base);
	}
	if (rv == 0 && (rv = ana_persist(a, NULL, 0)) != 0) {
		/* Not durable: it never existed as far as anyone was told. */
		dt_task_end(a->tasks, task, DT_TASK_FAILED, DT_TS_OK, dt_clock_ns(CLOCK_REALTIME),
			    "failed: the analyzer could not write it to its store");
		snprintf(err, sizeof(err), "cannot store the task: %s", strerror(-rv));
		rv = -EIO;
	}
	if (rv == 0) {
		/* NEW is durable; the analysis state (keys, observations) exists: READY. */
		dt_task_ready(a->tasks, task, dt_mono_ms());
		ana_persist(a, NULL, 0); /* a failure is retried with the next ana_tick */
		dt_task_info_fill(task, &info);
	}
	pthread_mutex_unlock(&a->mu);
	if (rv == -EINVAL) {
		return reply_error(out, DT_ST_INVALID, "%s", err);
	}
	if (rv == -EEXIST) {
		return reply_error(out, DT_ST_REFUSED, "%s", err);
	}
	if (rv == -ENOSPC) {
		return reply_error(out, DT_ST_FULL, "%s", err);
	}
	if (rv == -EIO) {
		return reply_error(out, DT_ST_FAILED, "%s", err);
	}
	if (rv) {
		return reply_error(out, DT_ST_FAILED, "cannot create the task: %s", strerror(-rv));
	}
	ana_publish_control(a);
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
		return reply_error(out, DT_ST_INVALID, "malformed request: %s",
				   dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_GET, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (!(task = tenant_task(a, tenant, id))) {
		void *stored;
		size_t stored_len;

		if ((rv = stored_task(a, tenant, id, &stored, &stored_len, &info)) == 0) {
			free(stored);
		}
	} else if (task->obs && ana_build_report(a, task, false, &r) == 0) {
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
		return reply_error(out, DT_ST_INVALID, "malformed request: %s",
				   dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_REPORT_GET, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (!(task = tenant_task(a, tenant, id))) {
		rv = stored_task(a, tenant, id, &stored, &stored_len, NULL);
	} else if (dt_task_state_terminal(task->state) && !task->final_pending) {
		/* The final report, exactly as stored when the task ended. */
		rv = dt_taskstore_get_report(a->store, id, &stored, &stored_len);
		if (rv == -ENOENT) {
			rv = -EIO;
		}
	} else {
		rv = ana_build_report(a, task, true, &r);
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
		return reply_error(out, DT_ST_INVALID, "malformed request: %s",
				   dt_proto_strerror(rv));
	}
	if ((tenant = authenticate(a, token, DT_MSG_TASK_LIST, out)) < 0) {
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < dt_tasks_n_all(a->tasks); i++) {
		n += dt_tasks_nth(a->tasks, i)->tenant == (uint32_t)tenant;
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
	for (size_t i = 0, seen = 0; i < dt_tasks_n_all(a->tasks) && l.n_tasks < n; i++) {
		const struct dt_task *task = dt_tasks_nth(a->tasks, i);

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
		return reply_error(out, DT_ST_INVALID, "malformed request: %s",
				   dt_proto_strerror(rv));
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

		dt_task_end(a->tasks, task, DT_TASK_CANCELLED, DT_TS_CANCELLED,
			    dt_clock_ns(CLOCK_REALTIME),
			    "cancelled by its tenant after %llu packets colored",
			    (unsigned long long)colored);
		ana_finalize(a, task); /* a failure is retried with the next ana_tick */
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
	ana_publish_control(a);
	return dt_task_encode(out, &info);
}

void ana_api_handle(struct analyzer *a, const void *buf, size_t len, msgpack_sbuffer *out)
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
		dt_warn("DT-ANA-MALFORMED",
			"refused an API request: %s (%llu more since the last report)",
			dt_proto_strerror(rv), (unsigned long long)suppressed);
	}
	reply_error(out, DT_ST_INVALID, "malformed request: %s", dt_proto_strerror(rv));
}
