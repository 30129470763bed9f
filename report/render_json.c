// SPDX-License-Identifier: MIT
/*
 * render_json.c - tasks, reports and errors as JSON (see render.h for the format).
 *
 * The JSON writer is a few functions over a FILE *: it tracks nesting only to place the
 * commas, so a caller that opens something must close it. Output is compact; use jq to
 * pretty-print.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "dt_tuple.h"
#include "render.h"
#include "render_int.h"

/* ------------------------------------------------------------------------------------ */
/* JSON writer */

#define JW_DEPTH 16

struct jw {
	FILE *f;
	int depth;
	bool comma[JW_DEPTH]; /* a value was written at this level: the next needs a comma */
};

static void jw_sep(struct jw *w)
{
	if (w->comma[w->depth]) {
		fputc(',', w->f);
	}
	w->comma[w->depth] = true;
}

/* Writes the first max bytes of s (up to its NUL) as a JSON string. */
static void json_string(FILE *f, const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, max), i = 0;

	fputc('"', f);
	while (i < n) {
		unsigned char c = s[i];
		size_t len;

		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fprintf(f, "\\u%04x", c);
				break;
			}
			len = dt_utf8_len(&s[i], n - i);
			if (len == 0) {
				fputs("\\ufffd", f);
				break;
			}
			fwrite(&s[i], 1, len, f);
			i += len;
			continue;
		}
		i++;
	}
	fputc('"', f);
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	fputc(c, w->f);
	if (w->depth < JW_DEPTH - 1) {
		w->depth++;
	}
	w->comma[w->depth] = false;
}

static void jw_close(struct jw *w, char c)
{
	fputc(c, w->f);
	if (w->depth > 0) {
		w->depth--;
	}
}

static void jw_key(struct jw *w, const char *key)
{
	jw_sep(w);
	json_string(w->f, key, SIZE_MAX);
	fputc(':', w->f);
	w->comma[w->depth] = false; /* the value follows without a comma */
}

static void jw_obj(struct jw *w, const char *key)
{
	if (key) {
		jw_key(w, key);
	}
	jw_open(w, '{');
}

static void jw_arr(struct jw *w, const char *key)
{
	if (key) {
		jw_key(w, key);
	}
	jw_open(w, '[');
}

static void jw_str(struct jw *w, const char *key, const char *val, size_t max)
{
	jw_key(w, key);
	jw_sep(w);
	json_string(w->f, val, max);
}

static void jw_u64(struct jw *w, const char *key, uint64_t val)
{
	jw_key(w, key);
	jw_sep(w);
	fprintf(w->f, "%" PRIu64, val);
}

static void jw_i64(struct jw *w, const char *key, int64_t val)
{
	jw_key(w, key);
	jw_sep(w);
	fprintf(w->f, "%" PRId64, val);
}

static void jw_double(struct jw *w, const char *key, double val)
{
	jw_key(w, key);
	jw_sep(w);
	if (isfinite(val)) {
		fprintf(w->f, "%.3f", val);
	} else {
		fputs("null", w->f);
	}
}

static void jw_null(struct jw *w, const char *key)
{
	jw_key(w, key);
	jw_sep(w);
	fputs("null", w->f);
}

static void jw_bool(struct jw *w, const char *key, bool val)
{
	jw_key(w, key);
	jw_sep(w);
	fputs(val ? "true" : "false", w->f);
}

/* ------------------------------------------------------------------------------------ */
/* JSON documents */

/* The members of a flow object: src, dst, sport, dport (null when any), proto, vni. */
static void json_flow_members(struct jw *w, const struct dt_tuple *tu, bool any)
{
	char a[INET_ADDRSTRLEN], p[8];

	jw_str(w, "src", dt_ipv4_str(tu->saddr, a, sizeof(a)), sizeof(a));
	jw_str(w, "dst", dt_ipv4_str(tu->daddr, a, sizeof(a)), sizeof(a));
	if (any) {
		jw_null(w, "sport");
		jw_null(w, "dport");
	} else {
		jw_u64(w, "sport", ntohs(tu->sport));
		jw_u64(w, "dport", ntohs(tu->dport));
	}
	jw_str(w, "proto", dt_proto_name(tu->proto, p, sizeof(p)), sizeof(p));
	jw_u64(w, "vni", tu->vni);
}

static void json_task(struct jw *w, const char *key, const struct dt_task_info *t)
{
	bool any = t->spec.flags & DT_TASK_F_ANYPORT;

	jw_obj(w, key);
	jw_u64(w, "id", t->id);
	jw_str(w, "state", dt_task_state_name(t->state), SIZE_MAX);
	jw_obj(w, "flow");
	json_flow_members(w, &t->spec.tuple, any);
	jw_bool(w, "any_port", any);
	jw_str(w, "direction", dt_render_task_direction(t->spec.flags), SIZE_MAX);
	jw_close(w, '}');
	jw_u64(w, "created_ns", t->created_ns);
	jw_u64(w, "colored", t->colored);
	jw_u64(w, "delivered", t->delivered);
	jw_str(w, "tenant", t->tenant, sizeof(t->tenant));
	jw_obj(w, "limits");
	jw_u64(w, "budget", t->spec.budget);
	jw_u64(w, "duration_s", t->spec.duration_s);
	jw_u64(w, "rate_pps", t->spec.rate_pps);
	jw_close(w, '}');
	jw_str(w, "status", dt_task_status_name(t->status), SIZE_MAX);
	jw_str(w, "status_text", t->status_text, sizeof(t->status_text));
	if (t->armed_ns) {
		jw_u64(w, "armed_ns", t->armed_ns);
	} else {
		jw_null(w, "armed_ns");
	}
	if (t->ended_ns) {
		jw_u64(w, "ended_ns", t->ended_ns);
	} else {
		jw_null(w, "ended_ns");
	}
	jw_close(w, '}');
}

int dt_render_task_list_json(FILE *f, const struct dt_task_list *l)
{
	struct jw w = {.f = f};

	jw_obj(&w, NULL);
	jw_arr(&w, "tasks");
	for (uint32_t i = 0; i < l->n_tasks; i++) {
		json_task(&w, NULL, &l->tasks[i]);
	}
	jw_close(&w, ']');
	jw_close(&w, '}');
	fputc('\n', f);
	return dt_render_finish(f);
}

int dt_render_task_json(FILE *f, const struct dt_task_info *t)
{
	struct jw w = {.f = f};

	json_task(&w, NULL, t);
	fputc('\n', f);
	return dt_render_finish(f);
}

static void json_ref(struct jw *w, const char *key, const struct dt_hop_ref *ref)
{
	jw_obj(w, key);
	jw_str(w, "node", ref->node, sizeof(ref->node));
	jw_str(w, "ifname", ref->ifname, sizeof(ref->ifname));
	jw_str(w, "hook", dt_hook_name(ref->hook), SIZE_MAX);
	jw_close(w, '}');
}

static void json_packet(struct jw *w, const struct dt_packet_path *p)
{
	struct dt_tuple t;
	uint32_t i;

	jw_obj(w, NULL);
	jw_u64(w, "ip_id", p->ip_id);
	jw_u64(w, "ident", p->ident);
	jw_u64(w, "len", p->len);
	jw_str(w, "direction", dt_direction_name(p->direction), SIZE_MAX);
	jw_str(w, "fate", dt_fate_name(p->fate), SIZE_MAX);
	jw_obj(w, "flow");
	json_flow_members(w, &p->tuple, false);
	jw_close(w, '}');
	if (p->fate == DT_FATE_DROPPED) {
		jw_obj(w, "drop");
		jw_u64(w, "reason", p->drop_reason);
		jw_str(w, "name", p->drop_name, sizeof(p->drop_name));
		jw_str(w, "where", p->drop_where, sizeof(p->drop_where));
		jw_close(w, '}');
	} else {
		jw_null(w, "drop");
	}
	jw_bool(w, "destination_known", p->dest_known);
	jw_u64(w, "copies", p->n_copies);
	if (p->frag) {
		jw_obj(w, "fragment");
		jw_u64(w, "offset_bytes", (uint64_t)(p->frag & DT_FRAG_OFFSET) * 8);
		jw_bool(w, "more", p->frag & DT_FRAG_MF);
		jw_close(w, '}');
	} else {
		jw_null(w, "fragment");
	}
	jw_str(w, "datagram_fate", dt_fate_name(p->datagram_fate), SIZE_MAX);
	jw_arr(w, "hops");
	for (i = 0; i < p->n_hops; i++) {
		const struct dt_hop *h = &p->hops[i];

		jw_obj(w, NULL);
		jw_str(w, "node", h->at.node, sizeof(h->at.node));
		jw_str(w, "ifname", h->at.ifname, sizeof(h->at.ifname));
		jw_str(w, "hook", dt_hook_name(h->at.hook), SIZE_MAX);
		jw_u64(w, "ts_ns", h->ts_ns);
		if (h->parent == DT_HOP_ROOT || h->parent >= p->n_hops) {
			jw_null(w, "parent");
			jw_null(w, "latency_ns");
		} else {
			jw_u64(w, "parent", h->parent);
			jw_i64(w, "latency_ns", (int64_t)(h->ts_ns - p->hops[h->parent].ts_ns));
		}
		jw_str(w, "branch", dt_branch_name(h->branch), SIZE_MAX);
		jw_bool(w, "refragmented", h->refrag);
		if (h->copy_end != DT_COPY_NONE) {
			jw_str(w, "copy_fate", dt_copy_end_name(h->copy_end), SIZE_MAX);
		}
		if (h->at.hook == DT_HOOK_DROP) {
			jw_obj(w, "drop");
			jw_u64(w, "reason", h->drop_reason);
			jw_str(w, "name", h->drop_name, sizeof(h->drop_name));
			jw_str(w, "where", h->drop_where, sizeof(h->drop_where));
			jw_close(w, '}');
		}
		jw_u64(w, "cap_len", h->cap_link == DT_CAP_NONE ? 0 : h->cap_len);
		if (dt_render_hop_translated(p, h)) {
			dt_render_hop_flow(p, h, &t);
			jw_obj(w, "flow");
			json_flow_members(w, &t, false);
			jw_close(w, '}');
		}
		jw_close(w, '}');
	}
	jw_close(w, ']');
	jw_close(w, '}');
}

static void json_stat(struct jw *w, const struct dt_hop_stat *s)
{
	jw_obj(w, NULL);
	json_ref(w, "from", &s->from);
	json_ref(w, "to", &s->to);
	jw_u64(w, "count", s->count);
	jw_u64(w, "min_ns", s->min_ns);
	jw_u64(w, "max_ns", s->max_ns);
	jw_double(w, "mean_ns", s->mean_ns);
	jw_double(w, "stddev_ns", s->stddev_ns);
	jw_double(w, "variance_ns2", s->stddev_ns * s->stddev_ns);
	jw_str(w, "branch", dt_branch_name(s->branch), SIZE_MAX);
	jw_str(w, "direction", dt_direction_name(s->direction), SIZE_MAX);
	jw_close(w, '}');
}

static void json_copy_row(struct jw *w, const struct dt_copy_row *c)
{
	jw_obj(w, NULL);
	jw_str(w, "node", c->at.node, sizeof(c->at.node));
	jw_str(w, "ifname", c->at.ifname, sizeof(c->at.ifname));
	jw_str(w, "hook", dt_hook_name(c->at.hook), SIZE_MAX);
	jw_str(w, "direction", dt_direction_name(c->direction), SIZE_MAX);
	jw_str(w, "fate", dt_copy_end_name(c->end), SIZE_MAX);
	jw_str(w, "reason", c->reason, sizeof(c->reason));
	jw_u64(w, "count", c->count);
	jw_close(w, '}');
}

static void json_row(struct jw *w, const struct dt_hop_row *r)
{
	jw_obj(w, NULL);
	jw_str(w, "node", r->at.node, sizeof(r->at.node));
	jw_str(w, "ifname", r->at.ifname, sizeof(r->at.ifname));
	jw_str(w, "hook", dt_hook_name(r->at.hook), SIZE_MAX);
	jw_str(w, "direction", dt_direction_name(r->direction), SIZE_MAX);
	jw_u64(w, "seen", r->seen);
	jw_u64(w, "dropped", r->dropped);
	jw_u64(w, "vanished", r->vanished);
	jw_double(w, "loss_rate", dt_render_loss_rate(r));
	jw_str(w, "top_reason", r->top_reason, sizeof(r->top_reason));
	jw_close(w, '}');
}

static void json_verdict(struct jw *w, const struct dt_verdict *v)
{
	jw_obj(w, "verdict");
	jw_str(w, "sentence", v->sentence, sizeof(v->sentence));
	jw_u64(w, "judged", v->judged);
	jw_u64(w, "delivered", v->delivered);
	jw_u64(w, "dropped", v->dropped);
	jw_u64(w, "vanished", v->vanished);
	jw_u64(w, "in_flight", v->in_flight);
	if (v->at.hook == DT_HOOK_NONE) {
		jw_null(w, "at");
	} else {
		json_ref(w, "at", &v->at);
	}
	jw_str(w, "reason", v->reason, sizeof(v->reason));
	jw_u64(w, "destination_unknown", v->dest_unknown);
	jw_close(w, '}');
}

static void json_blind(struct jw *w, const struct dt_blind *b)
{
	jw_obj(w, NULL);
	jw_str(w, "node", b->node, sizeof(b->node));
	jw_u64(w, "from_ns", b->gap.from_ns);
	jw_u64(w, "to_ns", b->gap.to_ns);
	jw_str(w, "cause", dt_gap_cause_name(b->gap.cause), SIZE_MAX);
	jw_u64(w, "samples_lost", b->gap.lost);
	jw_bool(w, "samples_lost_unknown", (b->gap.flags & DT_GAP_F_LOST_UNKNOWN) != 0);
	jw_u64(w, "packets", b->packets);
	jw_close(w, '}');
}

int dt_render_report_json(FILE *f, const struct dt_report *r)
{
	struct jw w = {.f = f};
	uint32_t i;

	jw_obj(&w, NULL);
	jw_str(&w, "schema", DT_REPORT_SCHEMA, SIZE_MAX);
	jw_u64(&w, "schema_version", DT_REPORT_SCHEMA_VERSION);
	json_task(&w, "task", &r->task);
	json_verdict(&w, &r->verdict);
	jw_arr(&w, "packets");
	for (i = 0; i < r->n_packets; i++) {
		json_packet(&w, &r->packets[i]);
	}
	jw_close(&w, ']');
	jw_arr(&w, "hop_latency");
	for (i = 0; i < r->n_stats; i++) {
		json_stat(&w, &r->stats[i]);
	}
	jw_close(&w, ']');
	jw_arr(&w, "hops");
	for (i = 0; i < r->n_rows; i++) {
		json_row(&w, &r->rows[i]);
	}
	jw_close(&w, ']');
	jw_arr(&w, "copies");
	for (i = 0; i < r->n_copy_rows; i++) {
		json_copy_row(&w, &r->copy_rows[i]);
	}
	jw_close(&w, ']');
	jw_obj(&w, "lost");
	for (i = 0; i < DT_LOSS_MAX; i++) {
		jw_u64(&w, dt_loss_name(i), r->lost[i]);
	}
	jw_close(&w, '}');
	jw_u64(&w, "unmatched", r->unmatched);
	jw_u64(&w, "window_ms", r->window_ms);
	jw_str(&w, "clock_note", dt_render_clock_note, SIZE_MAX);
	jw_obj(&w, "unobserved");
	jw_u64(&w, "packets", r->verdict.unobserved);
	jw_arr(&w, "windows");
	for (i = 0; i < r->n_blind; i++) {
		json_blind(&w, &r->blind[i]);
	}
	jw_close(&w, ']');
	jw_close(&w, '}');
	jw_close(&w, '}');
	fputc('\n', f);
	return dt_render_finish(f);
}

int dt_render_error_json(FILE *f, const char *status, const char *message)
{
	struct jw w = {.f = f};

	jw_obj(&w, NULL);
	jw_obj(&w, "error");
	jw_str(&w, "status", status, SIZE_MAX);
	jw_str(&w, "message", message, SIZE_MAX);
	jw_close(&w, '}');
	jw_close(&w, '}');
	fputc('\n', f);
	return dt_render_finish(f);
}
