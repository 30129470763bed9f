// SPDX-License-Identifier: MIT
/*
 * render.c - tasks, reports and errors as text or JSON (see render.h for the formats).
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

const char dt_render_clock_note[] =
	"latency between hops on different nodes depends on their clocks being in sync; "
	"a negative one there means clock skew and counts as 0 in the hop latency statistics";

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

size_t dt_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] < 0x80) {
		return 1;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0) {
			lo = 0xa0; /* overlong */
		} else if (s[0] == 0xed) {
			hi = 0x9f; /* surrogates */
		}
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0) {
			lo = 0x90; /* overlong */
		} else if (s[0] == 0xf4) {
			hi = 0x8f; /* above U+10FFFF */
		}
	} else {
		return 0;
	}
	if (len > n || s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf) {
			return 0;
		}
	}
	return len;
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

static int finish(FILE *f)
{
	return ferror(f) ? -EIO : 0;
}

/* ------------------------------------------------------------------------------------ */
/* JSON documents */

/* "request", "reply" or "both": the directions a task traces (none given: request). */
static const char *task_direction(uint32_t flags)
{
	switch (flags & DT_TASK_DIR_BOTH) {
	case DT_TASK_DIR_BOTH:
		return "both";
	case DT_TASK_DIR_REPLY:
		return "reply";
	default:
		return "request";
	}
}

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
	jw_str(w, "direction", task_direction(t->spec.flags), SIZE_MAX);
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
	return finish(f);
}

int dt_render_task_json(FILE *f, const struct dt_task_info *t)
{
	struct jw w = {.f = f};

	json_task(&w, NULL, t);
	fputc('\n', f);
	return finish(f);
}

static void json_ref(struct jw *w, const char *key, const struct dt_hop_ref *ref)
{
	jw_obj(w, key);
	jw_str(w, "node", ref->node, sizeof(ref->node));
	jw_str(w, "ifname", ref->ifname, sizeof(ref->ifname));
	jw_str(w, "hook", dt_hook_name(ref->hook), SIZE_MAX);
	jw_close(w, '}');
}

/* True when a hop saw the packet under other addresses or ports (after a NAT). A later
 * fragment has no ports to compare (they are 0 at every hop). */
static bool hop_translated(const struct dt_packet_path *p, const struct dt_hop *h)
{
	bool ports = !(p->frag & DT_FRAG_OFFSET);

	return h->tuple.saddr != p->tuple.saddr || h->tuple.daddr != p->tuple.daddr ||
	       (ports && (h->tuple.sport != p->tuple.sport || h->tuple.dport != p->tuple.dport));
}

/* A hop's flow: its addresses and ports, the packet's protocol and VNI. */
static void hop_flow(const struct dt_packet_path *p, const struct dt_hop *h, struct dt_tuple *t)
{
	*t = p->tuple;
	t->saddr = h->tuple.saddr;
	t->daddr = h->tuple.daddr;
	t->sport = h->tuple.sport;
	t->dport = h->tuple.dport;
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
		if (hop_translated(p, h)) {
			hop_flow(p, h, &t);
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

/* (dropped + vanished) / seen, or 0 for a row that saw nothing. */
static double loss_rate(const struct dt_hop_row *r)
{
	return r->seen ? (double)(r->dropped + r->vanished) / (double)r->seen : 0.0;
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
	jw_double(w, "loss_rate", loss_rate(r));
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
	jw_close(&w, '}');
	fputc('\n', f);
	return finish(f);
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
	return finish(f);
}

/* ------------------------------------------------------------------------------------ */
/* Text */

const char *dt_render_time(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (ns == 0 || !gmtime_r(&sec, &tm)) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned int)(ns / 1000000ull % 1000));
	return buf;
}

static void text_task(FILE *f, const struct dt_task_info *t)
{
	char flow[DT_TUPLE_STR_MAX], when[40];

	dt_tuple_str(&t->spec.tuple, t->spec.flags, flow, sizeof(flow));
	fprintf(f, "task %" PRIu32 " (%s): %s%s, direction %s\n", t->id,
		dt_task_state_name(t->state), flow,
		t->spec.flags & DT_TASK_F_ANYPORT ? ", any port" : "",
		task_direction(t->spec.flags));
	fprintf(f, "status %s: %.*s\n", dt_task_status_name(t->status), (int)sizeof(t->status_text),
		t->status_text);
	fprintf(f,
		"tenant %.*s; limits: budget %" PRIu32 " packets per direction, duration %" PRIu32
		" s, rate %" PRIu32 " packets/s\n",
		(int)sizeof(t->tenant), t->tenant, t->spec.budget, t->spec.duration_s,
		t->spec.rate_pps);
	fprintf(f, "created %s", dt_render_time(t->created_ns, when, sizeof(when)));
	fprintf(f, ", armed %s", dt_render_time(t->armed_ns, when, sizeof(when)));
	fprintf(f, ", ended %s\n", dt_render_time(t->ended_ns, when, sizeof(when)));
	fprintf(f, "colored %" PRIu64 ", delivered %" PRIu64, t->colored, t->delivered);
	if (t->colored > 0) {
		fprintf(f, " (%.1f%%)\n", 100.0 * (double)t->delivered / (double)t->colored);
	} else {
		fputs(" (-)\n", f);
	}
}

int dt_render_task_list_text(FILE *f, const struct dt_task_list *l)
{
	char flow[DT_TUPLE_STR_MAX];

	if (l->n_tasks == 0) {
		fputs("no tasks\n", f);
		return finish(f);
	}
	fprintf(f, "%8s  %-9s  %-12s  %8s  %-7s  %s\n", "ID", "STATE", "STATUS", "COLORED", "DIR",
		"FLOW");
	for (uint32_t i = 0; i < l->n_tasks; i++) {
		const struct dt_task_info *t = &l->tasks[i];

		dt_tuple_str(&t->spec.tuple, t->spec.flags, flow, sizeof(flow));
		fprintf(f, "%8" PRIu32 "  %-9s  %-12s  %8" PRIu64 "  %-7s  %s%s\n", t->id,
			dt_task_state_name(t->state), dt_task_status_name(t->status), t->colored,
			task_direction(t->spec.flags), flow,
			t->spec.flags & DT_TASK_F_ANYPORT ? ", any port" : "");
	}
	return finish(f);
}

int dt_render_task_change_text(FILE *f, uint64_t now_ns, const struct dt_task_info *t)
{
	char when[40];

	fprintf(f, "%s task %" PRIu32 " %s (%s): %.*s; colored %" PRIu64 "\n",
		dt_render_time(now_ns, when, sizeof(when)), t->id, dt_task_state_name(t->state),
		dt_task_status_name(t->status), (int)sizeof(t->status_text), t->status_text,
		t->colored);
	return finish(f);
}

int dt_render_task_text(FILE *f, const struct dt_task_info *t)
{
	text_task(f, t);
	return finish(f);
}

/* "h1/pt1 port-in" */
static int ref_str(const struct dt_hop_ref *r, char *buf, size_t len)
{
	return snprintf(buf, len, "%.*s/%.*s %s", (int)sizeof(r->node), r->node,
			(int)sizeof(r->ifname), r->ifname, dt_hook_name(r->hook));
}

#define REF_STR_MAX (DT_NAME_MAX + DT_IFNAME_MAX + 16)

/* Hop pairs of replies and of copies are marked in the latency table. */
static const char *stat_mark(const struct dt_hop_stat *s)
{
	if (s->direction == DT_DIR_REPLY) {
		return s->branch == DT_BRANCH_COPY ? "(reply, copy) " : "(reply) ";
	}
	return s->branch == DT_BRANCH_COPY ? "(copy) " : "";
}

static void text_stats(FILE *f, const struct dt_report *r)
{
	char from[REF_STR_MAX], to[REF_STR_MAX], pair[2 * REF_STR_MAX + 32];
	int width = (int)strlen("from -> to");
	uint32_t i;

	if (r->n_stats == 0) {
		fputs("\nhop latency: no hop pairs seen\n", f);
		return;
	}
	for (i = 0; i < r->n_stats; i++) {
		int n;

		ref_str(&r->stats[i].from, from, sizeof(from));
		ref_str(&r->stats[i].to, to, sizeof(to));
		n = snprintf(pair, sizeof(pair), "%s%s -> %s", stat_mark(&r->stats[i]), from, to);
		if (n > width) {
			width = n;
		}
	}
	fprintf(f,
		"\nhop latency, \u00b5s (variance \u00b5s\u00b2):\n  %-*s %8s %10s %10s %10s %10s "
		"%12s\n",
		width, "from -> to", "count", "min", "mean", "max", "stddev", "variance");
	for (i = 0; i < r->n_stats; i++) {
		const struct dt_hop_stat *s = &r->stats[i];
		double sd = s->stddev_ns / 1e3;

		ref_str(&s->from, from, sizeof(from));
		ref_str(&s->to, to, sizeof(to));
		snprintf(pair, sizeof(pair), "%s%s -> %s", stat_mark(s), from, to);
		fprintf(f, "  %-*s %8" PRIu64 " %10.1f %10.1f %10.1f %10.1f %12.1f\n", width, pair,
			s->count, (double)s->min_ns / 1e3, s->mean_ns / 1e3,
			(double)s->max_ns / 1e3, sd, sd * sd);
	}
}

static void text_verdict(FILE *f, const struct dt_report *r)
{
	const struct dt_verdict *v = &r->verdict;

	fprintf(f, "\nverdict: %.*s\n", (int)sizeof(v->sentence), v->sentence);
	fprintf(f,
		"  judged %" PRIu64 ": delivered %" PRIu64 ", dropped %" PRIu64
		", vanished %" PRIu64 "; in flight %" PRIu64 "\n",
		v->judged, v->delivered, v->dropped, v->vanished, v->in_flight);
}

/* Where the bystanders' copies ended (never part of the verdict or the loss table). */
static void text_copies(FILE *f, const struct dt_report *r)
{
	char at[REF_STR_MAX];
	int width = (int)strlen("ended at");
	uint32_t i;

	if (r->n_copy_rows == 0) {
		return;
	}
	for (i = 0; i < r->n_copy_rows; i++) {
		int n = ref_str(&r->copy_rows[i].at, at, sizeof(at));

		width = n > width ? n : width;
	}
	fprintf(f,
		"\ncopies the overlay made for other hosts (not in the verdict):\n"
		"  %-9s %-*s %-9s %8s  %s\n",
		"direction", width, "ended at", "how", "copies", "reason");
	for (i = 0; i < r->n_copy_rows; i++) {
		const struct dt_copy_row *c = &r->copy_rows[i];

		ref_str(&c->at, at, sizeof(at));
		fprintf(f, "  %-9s %-*s %-9s %8" PRIu64 "  %.*s\n", dt_direction_name(c->direction),
			width, at, dt_copy_end_name(c->end), c->count, (int)sizeof(c->reason),
			c->reason);
	}
}

static void text_rows(FILE *f, const struct dt_report *r)
{
	char at[REF_STR_MAX];
	int width = (int)strlen("hop");
	uint32_t i;

	if (r->n_rows == 0) {
		fputs("\nper-hop loss: no hops seen\n", f);
		return;
	}
	for (i = 0; i < r->n_rows; i++) {
		int n = ref_str(&r->rows[i].at, at, sizeof(at));

		if (n > width) {
			width = n;
		}
	}
	fprintf(f, "\nper-hop loss:\n  %-9s %-*s %8s %8s %8s %7s  %s\n", "direction", width, "hop",
		"seen", "dropped", "vanished", "loss", "top reason");
	for (i = 0; i < r->n_rows; i++) {
		const struct dt_hop_row *row = &r->rows[i];

		ref_str(&row->at, at, sizeof(at));
		fprintf(f, "  %-9s %-*s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %6.1f%%  %.*s\n",
			dt_direction_name(row->direction), width, at, row->seen, row->dropped,
			row->vanished, 100.0 * loss_rate(row), (int)sizeof(row->top_reason),
			row->top_reason);
	}
}

/* A flow in text, its ports left out for protocols without them. */
static const char *flow_str(const struct dt_tuple *t, char *buf, size_t len)
{
	bool ports = t->proto == IPPROTO_TCP || t->proto == IPPROTO_UDP || t->proto == IPPROTO_ICMP;

	return dt_tuple_str(t, ports ? 0 : DT_TASK_F_ANYPORT, buf, len);
}

/* One side of a translation: "dst 10.99.0.100 becomes 10.100.0.13" (with ports). */
static void text_side(FILE *f, const char *what, uint32_t a0, uint16_t p0, uint32_t a1, uint16_t p1,
		      bool *first)
{
	char x[16], y[16];

	if (a0 == a1 && p0 == p1) {
		return;
	}
	fprintf(f, "%s%s ", *first ? " (" : ", ", what);
	if (a0 != a1) {
		fprintf(f, "%s becomes %s", dt_ipv4_str(a0, x, sizeof(x)),
			dt_ipv4_str(a1, y, sizeof(y)));
	}
	if (p0 != p1) {
		fprintf(f, "%sport %u becomes %u", a0 != a1 ? ", " : "", ntohs(p0), ntohs(p1));
	}
	*first = false;
}

/* What a translation between a hop and the one it followed changed, if anything. */
static void text_translation(FILE *f, const struct dt_tuple *from, const struct dt_tuple *to)
{
	bool first = true;

	text_side(f, "dst", from->daddr, from->dport, to->daddr, to->dport, &first);
	text_side(f, "src", from->saddr, from->sport, to->saddr, to->sport, &first);
	if (!first) {
		fputc(')', f);
	}
}

/* One hop line of a packet: "  -> h1/ul0  uplink-out  +39.5µs  as ..." */
static void text_hop(FILE *f, const struct dt_packet_path *p, const struct dt_hop *h,
		     const char *lead, int wa, int wh)
{
	char at[DT_NAME_MAX + DT_IFNAME_MAX + 2], flow[DT_TUPLE_STR_MAX];
	bool root = h->parent == DT_HOP_ROOT || h->parent >= p->n_hops;
	int64_t lat = root ? 0 : (int64_t)(h->ts_ns - p->hops[h->parent].ts_ns);

	snprintf(at, sizeof(at), "%.*s/%.*s", (int)sizeof(h->at.node), h->at.node,
		 (int)sizeof(h->at.ifname), h->at.ifname);
	fprintf(f, "%s %-*s %-*s %+10.1f\u00b5s%s", lead, wa, at, wh, dt_hook_name(h->at.hook),
		(double)lat / 1e3, lat < 0 ? "  (clock skew)" : "");
	if (hop_translated(p, h)) {
		struct dt_tuple t;

		hop_flow(p, h, &t);
		fprintf(f, "  as %s", flow_str(&t, flow, sizeof(flow)));
	}
	if (!root) {
		text_translation(f, &p->hops[h->parent].tuple, &h->tuple);
	}
	if (h->refrag) {
		fputs("  (refragmented here: colored again)", f);
	}
	fputc('\n', f);
}

/* A drop's reason and place: "reason NETFILTER_DROP (5) in nf_hook_slow+0x8c" */
static void text_drop(FILE *f, const char *name, size_t name_max, uint32_t reason,
		      const char *where, size_t where_max)
{
	fprintf(f, "reason %.*s (%" PRIu32 ")", (int)name_max, name[0] ? name : "unnamed", reason);
	if (where[0]) {
		fprintf(f, " in %.*s", (int)where_max, where);
	}
}

/*
 * The copy branches of a packet, one per end: the hops from where the copy left the
 * destination branch to where it ended, and how it ended.
 */
static void text_copy_branches(FILE *f, const struct dt_packet_path *p, int wa, int wh)
{
	char at[REF_STR_MAX];
	uint32_t i, k, n, chain[DT_REPORT_MAX_HOPS];

	if (p->n_copies == 0) {
		return;
	}
	fprintf(f, "   copies for other hosts (%" PRIu32 "):\n", p->n_copies);
	for (i = 0; i < p->n_hops; i++) {
		const struct dt_hop *end = &p->hops[i];

		if (end->copy_end == DT_COPY_NONE) {
			continue;
		}
		/* The copy's own hops, up to (not including) the destination branch. */
		n = 0;
		for (k = i; n < DT_REPORT_MAX_HOPS && p->hops[k].branch == DT_BRANCH_COPY;) {
			chain[n++] = k;
			if (p->hops[k].parent == DT_HOP_ROOT || p->hops[k].parent >= p->n_hops) {
				break;
			}
			k = p->hops[k].parent;
		}
		if (n > 0 && p->hops[chain[n - 1]].parent < p->n_hops) {
			ref_str(&p->hops[p->hops[chain[n - 1]].parent].at, at, sizeof(at));
			fprintf(f, "     from %s:\n", at);
		}
		while (n > 0) {
			text_hop(f, p, &p->hops[chain[--n]], "       ->", wa, wh);
		}
		fprintf(f, "       %s", dt_copy_end_name(end->copy_end));
		if (end->at.hook == DT_HOOK_DROP) {
			fputs(": ", f);
			text_drop(f, end->drop_name, sizeof(end->drop_name), end->drop_reason,
				  end->drop_where, sizeof(end->drop_where));
		}
		fputc('\n', f);
	}
}

/*
 * One packet: its destination branch as a chain (hops[0 .. k) in depth-first order,
 * see struct dt_hop), its fate, then every copy branch.
 */
static void text_packet(FILE *f, uint32_t n, const struct dt_packet_path *p)
{
	char when[80], at[DT_NAME_MAX + DT_IFNAME_MAX + 2], flow[DT_TUPLE_STR_MAX];
	const struct dt_hop *last = NULL;
	int wa = 0, wh = 0;
	uint32_t i;

	fprintf(f, "\n#%" PRIu32 " %s ip_id %u ident 0x%08" PRIx32 " len %" PRIu32 ", %s, %s", n,
		dt_direction_name(p->direction), p->ip_id, p->ident, p->len,
		p->n_hops ? dt_render_time(p->hops[0].ts_ns, when, sizeof(when)) : "no hops",
		dt_fate_name(p->fate));
	if (p->frag) {
		fprintf(f, ", fragment at byte %u%s (datagram %s)", (p->frag & DT_FRAG_OFFSET) * 8,
			p->frag & DT_FRAG_MF ? ", more follow" : ", the last",
			dt_fate_name(p->datagram_fate));
	} else if (p->datagram_fate != p->fate && p->n_hops > 0 &&
		   p->hops[0].at.hook != DT_HOOK_PORT_IN && p->hops[0].at.hook != DT_HOOK_GW_IN) {
		/* No first hop, and another fate: a segment cut from a packet after its first hop
		 */
		fprintf(f, ", a segment: its packet %s", dt_fate_name(p->datagram_fate));
	}
	if (p->n_copies) {
		fprintf(f, ", %" PRIu32 " cop%s for other hosts", p->n_copies,
			p->n_copies == 1 ? "y" : "ies");
	}
	fprintf(f, "%s\n", p->dest_known ? "" : " (destination not known to any node)");
	fprintf(f, "   flow %s\n", flow_str(&p->tuple, flow, sizeof(flow)));
	for (i = 0; i < p->n_hops; i++) {
		const struct dt_hop_ref *a = &p->hops[i].at;
		int l;

		l = snprintf(at, sizeof(at), "%.*s/%.*s", (int)sizeof(a->node), a->node,
			     (int)sizeof(a->ifname), a->ifname);
		wa = l > wa ? l : wa;
		l = (int)strlen(dt_hook_name(a->hook));
		wh = l > wh ? l : wh;
	}
	for (i = 0; i < p->n_hops && p->hops[i].branch == DT_BRANCH_DEST; i++) {
		last = &p->hops[i];
		text_hop(f, p, last, i ? "  ->" : "    ", wa, wh);
	}
	if (last) {
		ref_str(&last->at, at, sizeof(at));
	}
	switch (last ? p->fate : DT_FATE_MAX) {
	case DT_FATE_DROPPED:
		fputs("  dropped: ", f);
		text_drop(f, p->drop_name, sizeof(p->drop_name), p->drop_reason, p->drop_where,
			  sizeof(p->drop_where));
		fputc('\n', f);
		break;
	case DT_FATE_VANISHED:
		fprintf(f, "  vanished: last seen at %s, no drop seen\n", at);
		break;
	case DT_FATE_IN_FLIGHT:
		fprintf(f, "  in flight: last seen at %s, within the analysis window\n", at);
		break;
	case DT_FATE_REASSEMBLED:
		fprintf(f,
			"  reassembled: last seen at %s, where the kernel reassembled the datagram "
			"and fragmented it anew (not a loss)\n",
			at);
		break;
	case DT_FATE_SEGMENTED:
		fprintf(f,
			"  segmented: last seen whole at %s; the kernel cut it into segments after "
			"that hop, which carry it on (not a loss)\n",
			at);
		break;
	default:
		break;
	}
	text_copy_branches(f, p, wa, wh);
}

/* The clock note, one clause per line. */
static void text_note(FILE *f)
{
	const char *s;

	fputs("\nnote: ", f);
	for (s = dt_render_clock_note; *s; s++) {
		if (s[0] == ';' && s[1] == ' ') {
			fputs(";\n     ", f);
			continue;
		}
		fputc(*s, f);
	}
	fputs(".\n", f);
}

int dt_render_report_text(FILE *f, const struct dt_report *r, uint32_t max_packets)
{
	uint32_t shown = r->n_packets, i;

	text_task(f, &r->task);
	text_verdict(f, r);
	fputs("\nsamples lost before analysis:", f);
	for (i = 0; i < DT_LOSS_MAX; i++) {
		fprintf(f, "%s %s %" PRIu64, i ? "," : "", dt_loss_name(i), r->lost[i]);
	}
	fprintf(f,
		"\nsamples that matched no task (all tasks): %" PRIu64 "; analysis window %" PRIu64
		" ms\n",
		r->unmatched, r->window_ms);

	text_rows(f, r);
	text_copies(f, r);
	text_stats(f, r);

	if (max_packets > 0 && shown > max_packets) {
		shown = max_packets;
	}
	fprintf(f, "\npackets: %" PRIu32, r->n_packets);
	if (shown < r->n_packets) {
		fprintf(f, ", the first %" PRIu32 " listed, %" PRIu32 " omitted (--json lists all)",
			shown, r->n_packets - shown);
	}
	fputc('\n', f);
	for (i = 0; i < shown; i++) {
		text_packet(f, i + 1, &r->packets[i]);
	}

	text_note(f);
	return finish(f);
}
