/* SPDX-License-Identifier: MIT */
/*
 * dt_api_msg.c - the messages between the CLI and the analyzer: the requests, each with the
 * tenant's token (DT_MSG_TASK_CREATE, _GET, _CANCEL, _LIST, DT_MSG_REPORT_GET), and the
 * replies DT_MSG_TASK, DT_MSG_TASKS and DT_MSG_ERROR; also the task record a report
 * carries. The layouts are in dt_api_msg.h and proto/README.md; how a message is encoded
 * and decoded is in dt_wire.c.
 */
#include <stdlib.h>
#include <string.h>

#include "dt_codec_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* A tenant token: a string < DT_TOKEN_MAX (empty is allowed: the analyzer refuses it). */
static void put_token(struct dt_enc *e, const char *token)
{
	if (token == NULL) {
		dt_put_fail(e, DT_PROTO_ERANGE);
		return;
	}
	dt_put_str(e, token, DT_TOKEN_MAX);
}

/* flags, tuple, budget, duration_s, rate_pps (10 fields, inline) */
static void put_spec(struct dt_enc *e, const struct dt_task_spec *s)
{
	dt_put_uint(e, s->flags);
	dt_put_tuple(e, &s->tuple);
	dt_put_uint(e, s->budget);
	dt_put_uint(e, s->duration_s);
	dt_put_uint(e, s->rate_pps);
}

/*
 * id, state, spec, created_ns, colored, delivered, tenant, status, status_text, armed_ns,
 * ended_ns (20 fields, inline)
 */
static void put_task(struct dt_enc *e, const struct dt_task_info *t)
{
	dt_put_uint(e, t->id);
	dt_put_below(e, t->state, DT_TASK_STATE_MAX);
	put_spec(e, &t->spec);
	dt_put_uint(e, t->created_ns);
	dt_put_uint(e, t->colored);
	dt_put_uint(e, t->delivered);
	dt_put_str(e, t->tenant, sizeof(t->tenant));
	dt_put_below(e, t->status, DT_TS_MAX);
	dt_put_str(e, t->status_text, sizeof(t->status_text));
	dt_put_uint(e, t->armed_ns);
	dt_put_uint(e, t->ended_ns);
}

/* [id, state, ...]: the task fields in an array of their own (reports, task lists) */
void dt_put_task_record(struct dt_enc *e, const struct dt_task_info *t)
{
	dt_put_array(e, N_TASK);
	put_task(e, t);
}

int dt_task_create_encode(msgpack_sbuffer *out, const char *token, const struct dt_task_spec *s)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, DT_MSG_TASK_CREATE, N_CREATE);
	put_token(&e, token);
	put_spec(&e, s);
	return dt_enc_end(&e);
}

/* [2, type, token, task_id]: TASK_GET, REPORT_GET, TASK_CANCEL */
static int encode_token_id(msgpack_sbuffer *out, enum dt_msg_type type, const char *token,
			   uint32_t task_id)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, type, N_TOKEN_ID);
	put_token(&e, token);
	dt_put_uint(&e, task_id);
	return dt_enc_end(&e);
}

int dt_task_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id)
{
	return encode_token_id(out, DT_MSG_TASK_GET, token, task_id);
}

int dt_report_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id)
{
	return encode_token_id(out, DT_MSG_REPORT_GET, token, task_id);
}

int dt_task_cancel_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id)
{
	return encode_token_id(out, DT_MSG_TASK_CANCEL, token, task_id);
}

int dt_task_list_encode(msgpack_sbuffer *out, const char *token)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, DT_MSG_TASK_LIST, N_TOKEN);
	put_token(&e, token);
	return dt_enc_end(&e);
}

int dt_task_encode(msgpack_sbuffer *out, const struct dt_task_info *t)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, DT_MSG_TASK, N_TASK);
	put_task(&e, t);
	return dt_enc_end(&e);
}

int dt_tasks_encode(msgpack_sbuffer *out, const struct dt_task_list *l)
{
	struct dt_enc e;
	uint32_t i;

	dt_enc_begin(&e, out, DT_MSG_TASKS, N_TASKS);
	if (dt_put_list(&e, l->n_tasks, DT_LIST_MAX_TASKS, l->tasks)) {
		for (i = 0; i < l->n_tasks && e.err == 0; i++) {
			dt_put_task_record(&e, &l->tasks[i]);
		}
	}
	return dt_enc_end(&e);
}

int dt_error_encode(msgpack_sbuffer *out, const struct dt_error *err)
{
	struct dt_enc e;

	dt_enc_begin(&e, out, DT_MSG_ERROR, N_ERROR);
	if (err->status == DT_ST_OK) {
		dt_put_fail(&e, DT_PROTO_ERANGE);
	}
	dt_put_below(&e, err->status, DT_ST_MAX);
	dt_put_str(&e, err->message, sizeof(err->message));
	return dt_enc_end(&e);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* flags, tuple, budget, duration_s, rate_pps (10 fields, inline) */
static void get_spec(struct dt_dec *d, const msgpack_object *f, struct dt_task_spec *s)
{
	if (d->err != 0) {
		return;
	}
	s->flags = dt_get_uint(d, &f[0], UINT32_MAX);
	dt_get_tuple(d, &f[1], &s->tuple);
	s->budget = dt_get_uint(d, &f[7], UINT32_MAX);
	s->duration_s = dt_get_uint(d, &f[8], UINT32_MAX);
	s->rate_pps = dt_get_uint(d, &f[9], UINT32_MAX);
}

/* the 20 task fields, inline */
static void get_task(struct dt_dec *d, const msgpack_object *f, struct dt_task_info *t)
{
	if (d->err != 0) {
		return;
	}
	t->id = dt_get_uint(d, &f[0], UINT32_MAX);
	t->state = dt_get_below(d, &f[1], DT_TASK_STATE_MAX);
	get_spec(d, &f[2], &t->spec);
	t->created_ns = dt_get_uint(d, &f[12], UINT64_MAX);
	t->colored = dt_get_uint(d, &f[13], UINT64_MAX);
	t->delivered = dt_get_uint(d, &f[14], UINT64_MAX);
	dt_get_str(d, &f[15], t->tenant, sizeof(t->tenant));
	t->status = dt_get_below(d, &f[16], DT_TS_MAX);
	dt_get_str(d, &f[17], t->status_text, sizeof(t->status_text));
	t->armed_ns = dt_get_uint(d, &f[18], UINT64_MAX);
	t->ended_ns = dt_get_uint(d, &f[19], UINT64_MAX);
}

/* [id, state, ...]: the task fields in an array of their own */
void dt_get_task_record(struct dt_dec *d, const msgpack_object *o, struct dt_task_info *t)
{
	get_task(d, dt_get_record(d, o, N_TASK), t);
}

int dt_task_create_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX],
			  struct dt_task_spec *out)
{
	char tok[DT_TOKEN_MAX] = "";
	const msgpack_object *f;
	struct dt_task_spec s;
	struct dt_dec d;

	memset(&s, 0, sizeof(s));
	f = dt_dec_begin(&d, buf, len, DT_MSG_TASK_CREATE, N_CREATE);
	if (f != NULL) {
		dt_get_str(&d, &f[0], tok, sizeof(tok));
		get_spec(&d, &f[1], &s);
	}
	if (dt_dec_end(&d) != 0) {
		memset(tok, 0, sizeof(tok));
		memset(&s, 0, sizeof(s));
	}
	memcpy(token, tok, sizeof(tok));
	memcpy(out, &s, sizeof(s));
	return d.err;
}

/*
 * [2, type, token] or [2, type, token, task_id]: the requests that carry only the token
 * (task_id NULL) or the token and a task id. Both outputs are all zero on error.
 */
static int decode_token_id(const void *buf, size_t len, enum dt_msg_type type,
			   char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	char tok[DT_TOKEN_MAX] = "";
	const msgpack_object *f;
	uint32_t id = 0;
	struct dt_dec d;

	f = dt_dec_begin(&d, buf, len, type, task_id != NULL ? N_TOKEN_ID : N_TOKEN);
	if (f != NULL) {
		dt_get_str(&d, &f[0], tok, sizeof(tok));
		if (task_id != NULL) {
			id = dt_get_uint(&d, &f[1], UINT32_MAX);
		}
	}
	if (dt_dec_end(&d) != 0) {
		memset(tok, 0, sizeof(tok));
		id = 0;
	}
	memcpy(token, tok, sizeof(tok));
	if (task_id != NULL) {
		*task_id = id;
	}
	return d.err;
}

int dt_task_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	return decode_token_id(buf, len, DT_MSG_TASK_GET, token, task_id);
}

int dt_report_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	return decode_token_id(buf, len, DT_MSG_REPORT_GET, token, task_id);
}

int dt_task_cancel_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id)
{
	return decode_token_id(buf, len, DT_MSG_TASK_CANCEL, token, task_id);
}

int dt_task_list_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX])
{
	return decode_token_id(buf, len, DT_MSG_TASK_LIST, token, NULL);
}

int dt_task_decode(const void *buf, size_t len, struct dt_task_info *out)
{
	const msgpack_object *f;
	struct dt_task_info t;
	struct dt_dec d;

	memset(&t, 0, sizeof(t));
	f = dt_dec_begin(&d, buf, len, DT_MSG_TASK, N_TASK);
	get_task(&d, f, &t);
	if (dt_dec_end(&d) != 0) {
		memset(&t, 0, sizeof(t));
	}
	memcpy(out, &t, sizeof(t));
	return d.err;
}

int dt_tasks_decode(const void *buf, size_t len, struct dt_task_list *out)
{
	struct dt_task_list l = {0};
	const msgpack_object *f, *items;
	struct dt_dec d;
	uint32_t i;

	f = dt_dec_begin(&d, buf, len, DT_MSG_TASKS, N_TASKS);
	if (f != NULL) {
		items = dt_get_list(&d, &f[0], DT_LIST_MAX_TASKS, &l.n_tasks);
		l.tasks = dt_get_mem(&d, l.n_tasks, sizeof(*l.tasks));
		for (i = 0; i < l.n_tasks && d.err == 0; i++) {
			dt_get_task_record(&d, &items[i], &l.tasks[i]);
		}
	}
	if (dt_dec_end(&d) != 0) {
		dt_task_list_free(&l);
	}
	*out = l;
	return d.err;
}

void dt_task_list_free(struct dt_task_list *l)
{
	free(l->tasks);
	memset(l, 0, sizeof(*l));
}

int dt_error_decode(const void *buf, size_t len, struct dt_error *out)
{
	const msgpack_object *f;
	struct dt_error e;
	struct dt_dec d;

	memset(&e, 0, sizeof(e));
	f = dt_dec_begin(&d, buf, len, DT_MSG_ERROR, N_ERROR);
	if (f != NULL) {
		e.status = dt_get_below(&d, &f[0], DT_ST_MAX);
		if (d.err == 0 && e.status == DT_ST_OK) {
			dt_get_fail(&d, DT_PROTO_ERANGE);
		}
		dt_get_str(&d, &f[1], e.message, sizeof(e.message));
	}
	if (dt_dec_end(&d) != 0) {
		memset(&e, 0, sizeof(e));
	}
	memcpy(out, &e, sizeof(e));
	return d.err;
}
