// SPDX-License-Identifier: MIT
/*
 * render_html.c - a report as one self-contained HTML page (see render_html.h).
 *
 * Plain HTML5 and one inline stylesheet; no script. Tables use the same numbers, units
 * and words as the text report (render.c), so that both read alike.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dt_tuple.h"
#include "render.h"
#include "render_graph.h"
#include "render_html.h"

#define TIMELINE_PX 240 /* width of a packet's timeline bar at its last hop */

static const char style[] =
	"body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
	"margin:24px auto;max-width:1200px;padding:0 16px;color:#1b1f24;background:#fff}\n"
	"h1{font-size:21px;margin:0 0 4px}\n"
	"h2{font-size:16px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}\n"
	".muted{color:#57606a}\n"
	".verdict{margin:14px 0;padding:12px 16px;border-radius:6px;border-left:6px solid #2e7d32;"
	"background:#edf7ee;font-size:16px}\n"
	".verdict.loss{border-left-color:#c62828;background:#fdecec}\n"
	".verdict p{margin:4px 0}\n"
	"table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0}\n"
	"th,td{padding:3px 10px;border-bottom:1px solid #e3e6ea;text-align:left;"
	"vertical-align:top}\n"
	"th{background:#f6f8fa;font-weight:600}\n"
	".n{text-align:right}\n"
	"tr.drop td,.drop{color:#c62828}\n"
	"tr.drop td{font-weight:600}\n"
	"tr.vanish td,.vanish{color:#b35f00}\n"
	".picture{overflow-x:auto}\n"
	".picture svg{max-width:100%;height:auto}\n"
	".hosts{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}\n"
	".host{border:1px solid #8a939c;border-radius:8px;background:#f4f6f8;padding:6px 10px;"
	"min-width:150px}\n"
	".host b{display:block;margin-bottom:4px}\n"
	".place{border:1px solid #57606a;border-radius:6px;background:#fff;padding:2px 8px;"
	"margin:4px 0}\n"
	".place.drop{border:2px solid #c62828;background:#fde4e4;font-weight:600}\n"
	".place.vanish{border:2px solid #e67e00}\n"
	".pairs{margin:10px 0;padding-left:20px}\n"
	".pairs li.reply{color:#1f5fbf}\n"
	".pkt{margin:10px 0;padding:6px 10px;border:1px solid #e3e6ea;border-left:5px solid "
	"#2e7d32;border-radius:6px}\n"
	".pkt.dropped{border-left-color:#c62828}\n"
	".pkt.vanished{border-left-color:#e67e00}\n"
	".pkt.in-flight{border-left-color:#8a939c}\n"
	".fate{font-weight:600}\n"
	".bar{display:inline-block;height:8px;min-width:2px;border-radius:2px;background:#1f5fbf;"
	"vertical-align:middle}\n"
	"footer{margin-top:28px;font-size:13px}\n";

/* ------------------------------------------------------------------------------------ */
/* Escaping */

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

/* Writes the first max bytes of s (up to its NUL) as HTML text or attribute value. */
static void html_str(FILE *f, const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, max), i = 0, len;

	while (i < n) {
		switch (s[i]) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f) {
				fputs(REPLACEMENT, f);
				break;
			}
			if ((len = dt_utf8_len(&s[i], n - i)) == 0) {
				fputs(REPLACEMENT, f);
				break;
			}
			fwrite(&s[i], 1, len, f);
			i += len;
			continue;
		}
		i++;
	}
}

/* "h1/pt1 port-in", escaped. */
static void html_ref(FILE *f, const struct dt_hop_ref *r)
{
	html_str(f, r->node, sizeof(r->node));
	fputc('/', f);
	html_str(f, r->ifname, sizeof(r->ifname));
	fprintf(f, " %s", dt_hook_name(r->hook));
}

static double pct(uint64_t n, uint64_t of)
{
	return of ? 100.0 * (double)n / (double)of : 0.0;
}

/* ------------------------------------------------------------------------------------ */
/* Sections */

static void html_head(FILE *f, const struct dt_report *r)
{
	const struct dt_task_info *t = &r->task;
	char flow[DT_TUPLE_STR_MAX], when[40];

	dt_tuple_str(&t->spec.tuple, t->spec.flags, flow, sizeof(flow));
	fprintf(f,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<title>dyetrace report: task %" PRIu32 "</title>\n<style>\n%s</style>\n"
		"</head>\n<body>\n<header>\n<h1>dyetrace report: task %" PRIu32 "</h1>\n",
		t->id, style, t->id);
	fputs("<p id=\"flow\">", f);
	html_str(f, flow, sizeof(flow));
	fprintf(f, "%s, direction %s</p>\n", t->spec.flags & DT_TASK_F_ANYPORT ? ", any port" : "",
		(t->spec.flags & DT_TASK_DIR_BOTH) == DT_TASK_DIR_BOTH ? "both"
		: t->spec.flags & DT_TASK_DIR_REPLY		       ? "reply"
								       : "request");
	fprintf(f, "<p class=\"muted\">state <b>%s</b>, status %s: ", dt_task_state_name(t->state),
		dt_task_status_name(t->status));
	html_str(f, t->status_text, sizeof(t->status_text));
	fputs("<br>tenant ", f);
	html_str(f, t->tenant, sizeof(t->tenant));
	fprintf(f, "; created %s", dt_render_time(t->created_ns, when, sizeof(when)));
	fprintf(f, ", armed %s", dt_render_time(t->armed_ns, when, sizeof(when)));
	fprintf(f, ", ended %s", dt_render_time(t->ended_ns, when, sizeof(when)));
	fprintf(f,
		"; colored %" PRIu64 ", delivered %" PRIu64 "; limits: budget %" PRIu32
		" packets per direction, duration %" PRIu32 " s, rate %" PRIu32
		" packets/s</p>\n</header>\n",
		t->colored, t->delivered, t->spec.budget, t->spec.duration_s, t->spec.rate_pps);
}

static void html_verdict(FILE *f, const struct dt_report *r)
{
	const struct dt_verdict *v = &r->verdict;

	fprintf(f, "<section id=\"verdict\" class=\"verdict%s\">\n<p><b>Verdict:</b> ",
		v->dropped + v->vanished ? " loss" : "");
	fputs("<span id=\"verdict-sentence\">", f);
	html_str(f, v->sentence, sizeof(v->sentence));
	fprintf(f,
		"</span></p>\n<p class=\"muted\">judged %" PRIu64 ": delivered %" PRIu64
		", dropped %" PRIu64 ", vanished %" PRIu64 "; in flight %" PRIu64 "</p>\n",
		v->judged, v->delivered, v->dropped, v->vanished, v->in_flight);
	fputs("</section>\n", f);
}

/* The path without Graphviz: the places by node, then the hop pairs. */
static void html_path_fallback(FILE *f, const struct dt_graph *g)
{
	uint32_t h, i;

	fputs("<p class=\"muted\">Graphviz's dot was not available when this page was made: "
	      "the path is drawn as boxes (install graphviz for the graph).</p>\n"
	      "<div class=\"hosts\">\n",
	      f);
	for (h = 0; h < g->n_hosts; h++) {
		fputs("<div class=\"host\"><b>", f);
		html_str(f, g->hosts[h], DT_NAME_MAX);
		fputs("</b>\n", f);
		for (i = 0; i < g->n_places; i++) {
			const struct dt_graph_place *pl = &g->places[i];

			if (pl->host != h) {
				continue;
			}
			if (pl->at.hook == DT_HOOK_DROP) {
				fputs("<div class=\"place drop\">DROP at ", f);
				html_str(f, pl->at.ifname, sizeof(pl->at.ifname));
				fputs(": reason ", f);
				html_str(f, pl->reason[0] ? pl->reason : "unnamed",
					 sizeof(pl->reason));
				fprintf(f, ", %" PRIu64 " packets dropped", pl->dropped);
				if (pl->before) {
					fprintf(f, " of %" PRIu64 " (loss %.1f%%)", pl->before,
						pct(pl->dropped, pl->before));
				}
				fputs("</div>\n", f);
				continue;
			}
			fprintf(f, "<div class=\"place%s\">", pl->vanished ? " vanish" : "");
			html_str(f, pl->at.ifname, sizeof(pl->at.ifname));
			fprintf(f, " %s: %" PRIu64 " packets", dt_hook_name(pl->at.hook),
				pl->packets);
			if (pl->vanished) {
				fprintf(f, ", %" PRIu64 " vanished after", pl->vanished);
			}
			fputs("</div>\n", f);
		}
		fputs("</div>\n", f);
	}
	fputs("</div>\n<ol class=\"pairs\">\n", f);
	for (i = 0; i < g->n_edges; i++) {
		const struct dt_graph_edge *e = &g->edges[i];
		bool drop = g->places[e->to].at.hook == DT_HOOK_DROP;

		fprintf(f, "<li class=\"%s%s\">", dt_direction_name(e->direction),
			drop ? " drop" : "");
		html_ref(f, &g->places[e->from].at);
		fputs(" &rarr; ", f);
		html_ref(f, &g->places[e->to].at);
		fprintf(f, ": %s, %" PRIu64 " packet%s", dt_direction_name(e->direction),
			e->packets, e->packets == 1 ? "" : "s");
		if (e->stat && e->stat->count) {
			fprintf(f, ", mean %.1f \u00b5s, max %.1f \u00b5s", e->stat->mean_ns / 1e3,
				(double)e->stat->max_ns / 1e3);
		}
		fputs("</li>\n", f);
	}
	fputs("</ol>\n", f);
}

static int html_path(FILE *f, const struct dt_report *r, const char *svg, size_t svg_len)
{
	const char *start = svg ? memmem(svg, svg_len, "<svg", 4) : NULL;
	struct dt_graph g;

	fputs("<section id=\"path\">\n<h2>Path</h2>\n<div class=\"picture\">\n", f);
	if (r->n_packets == 0) {
		fputs("<p>no packets traced yet</p>\n", f);
	} else if (start) {
		fwrite(start, 1, svg_len - (size_t)(start - svg), f);
	} else {
		if (dt_graph_build(r, &g) != 0) {
			return -ENOMEM;
		}
		html_path_fallback(f, &g);
		dt_graph_free(&g);
	}
	fputs("</div>\n</section>\n", f);
	return 0;
}

static void html_rows(FILE *f, const struct dt_report *r)
{
	uint32_t i;

	fputs("<section id=\"loss\">\n<h2>Per-hop loss</h2>\n", f);
	if (r->n_rows == 0) {
		fputs("<p>no hops seen</p>\n</section>\n", f);
		return;
	}
	fputs("<table>\n<tr><th>direction</th><th>hop</th><th class=\"n\">seen</th>"
	      "<th class=\"n\">dropped</th><th class=\"n\">vanished</th><th class=\"n\">loss</th>"
	      "<th>top reason</th></tr>\n",
	      f);
	for (i = 0; i < r->n_rows; i++) {
		const struct dt_hop_row *row = &r->rows[i];
		uint64_t lost = row->dropped + row->vanished;

		fprintf(f, "<tr%s><td>%s</td><td>",
			row->dropped	? " class=\"drop\""
			: row->vanished ? " class=\"vanish\""
					: "",
			dt_direction_name(row->direction));
		html_ref(f, &row->at);
		fprintf(f,
			"</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64
			"</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%.1f%%</td><td>",
			row->seen, row->dropped, row->vanished, pct(lost, row->seen));
		html_str(f, row->top_reason, sizeof(row->top_reason));
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n</section>\n", f);
}

static void html_stats(FILE *f, const struct dt_report *r)
{
	uint32_t i;

	fputs("<section id=\"latency\">\n<h2>Hop latency, \u00b5s</h2>\n", f);
	if (r->n_stats == 0) {
		fputs("<p>no hop pairs seen</p>\n</section>\n", f);
		return;
	}
	fputs("<table>\n<tr><th>from</th><th>to</th><th class=\"n\">count</th>"
	      "<th class=\"n\">min</th><th class=\"n\">mean</th><th class=\"n\">max</th>"
	      "<th class=\"n\">stddev</th><th class=\"n\">variance, \u00b5s\u00b2</th></tr>\n",
	      f);
	for (i = 0; i < r->n_stats; i++) {
		const struct dt_hop_stat *s = &r->stats[i];
		double sd = s->stddev_ns / 1e3;

		fputs("<tr><td>", f);
		html_ref(f, &s->from);
		fputs("</td><td>", f);
		html_ref(f, &s->to);
		fprintf(f,
			"</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%.1f</td>"
			"<td class=\"n\">%.1f</td><td class=\"n\">%.1f</td>"
			"<td class=\"n\">%.1f</td><td class=\"n\">%.1f</td></tr>\n",
			s->count, (double)s->min_ns / 1e3, s->mean_ns / 1e3,
			(double)s->max_ns / 1e3, sd, sd * sd);
	}
	fputs("</table>\n</section>\n", f);
}

/* The fate of p, one sentence. */
static void html_fate(FILE *f, const struct dt_packet_path *p)
{
	const struct dt_hop_ref *last = p->n_hops ? &p->hops[p->n_hops - 1].at : NULL;

	fprintf(f, "<span class=\"fate %s\">%s", dt_fate_name(p->fate), dt_fate_name(p->fate));
	switch (p->fate) {
	case DT_FATE_DROPPED:
		fputs(": reason ", f);
		html_str(f, p->drop_name[0] ? p->drop_name : "unnamed", sizeof(p->drop_name));
		fprintf(f, " (%" PRIu32 ")", p->drop_reason);
		if (p->drop_where[0]) {
			fputs(" in ", f);
			html_str(f, p->drop_where, sizeof(p->drop_where));
		}
		break;
	case DT_FATE_VANISHED:
		if (last) {
			fputs(": last seen at ", f);
			html_ref(f, last);
			fputs(", no drop seen", f);
		}
		break;
	case DT_FATE_IN_FLIGHT:
		if (last) {
			fputs(": last seen at ", f);
			html_ref(f, last);
			fputs(", within the analysis window", f);
		}
		break;
	default:
		break;
	}
	fputs("</span>", f);
}

static void html_packet(FILE *f, uint32_t n, const struct dt_packet_path *p)
{
	char when[40], flow[DT_TUPLE_STR_MAX];
	uint64_t t0 = p->n_hops ? p->hops[0].ts_ns : 0, span = 0;
	uint32_t i;

	for (i = 0; i < p->n_hops; i++) {
		if (p->hops[i].ts_ns > t0 && p->hops[i].ts_ns - t0 > span) {
			span = p->hops[i].ts_ns - t0;
		}
	}
	fprintf(f,
		"<div class=\"pkt %s\" id=\"pkt-%" PRIu32 "\">\n"
		"<p><b>#%" PRIu32 "</b> %s, ip_id %u, ident 0x%08" PRIx32 ", len %" PRIu32
		" bytes, first seen %s: ",
		dt_fate_name(p->fate), n, n, dt_direction_name(p->direction), p->ip_id, p->ident,
		p->len, dt_render_time(t0, when, sizeof(when)));
	html_fate(f, p);
	fputs("<br><span class=\"muted\">flow ", f);
	html_str(f, dt_tuple_str(&p->tuple, 0, flow, sizeof(flow)), sizeof(flow));
	fputs("</span></p>\n", f);
	if (p->n_hops == 0) {
		fputs("</div>\n", f);
		return;
	}
	fputs("<table class=\"hops\">\n<tr><th class=\"n\">#</th><th>hop</th><th>time</th>"
	      "<th class=\"n\">latency, \u00b5s</th><th class=\"n\">since first, \u00b5s</th>"
	      "<th class=\"n\">captured, bytes</th><th>timeline</th></tr>\n",
	      f);
	for (i = 0; i < p->n_hops; i++) {
		const struct dt_hop *h = &p->hops[i];
		int64_t lat = i ? (int64_t)(h->ts_ns - p->hops[i - 1].ts_ns) : 0;
		int64_t since = (int64_t)(h->ts_ns - t0);
		unsigned int px = 0;

		if (since > 0 && span > 0) {
			px = (unsigned int)((double)since / (double)span * TIMELINE_PX);
		}
		fprintf(f, "<tr%s><td class=\"n\">%" PRIu32 "</td><td>",
			h->at.hook == DT_HOOK_DROP ? " class=\"drop\"" : "", i + 1);
		html_ref(f, &h->at);
		fprintf(f, "</td><td>%s</td>", dt_render_time(h->ts_ns, when, sizeof(when)));
		if (i == 0) {
			fputs("<td class=\"n\">-</td>", f);
		} else {
			fprintf(f, "<td class=\"n\">%+.1f%s</td>", (double)lat / 1e3,
				lat < 0 ? " (clock skew)" : "");
		}
		fprintf(f,
			"<td class=\"n\">%+.1f</td><td class=\"n\">%u</td>"
			"<td><span class=\"bar\" style=\"width:%upx\"></span></td></tr>\n",
			(double)since / 1e3, h->cap_link == DT_CAP_NONE ? 0u : h->cap_len, px);
	}
	fputs("</table>\n</div>\n", f);
}

static void html_packets(FILE *f, const struct dt_report *r, uint32_t max_packets)
{
	uint32_t shown = r->n_packets, i;

	if (max_packets > 0 && shown > max_packets) {
		shown = max_packets;
	}
	fprintf(f, "<section id=\"packets\">\n<h2>Packets: %" PRIu32 "</h2>\n", r->n_packets);
	if (shown < r->n_packets) {
		fprintf(f, "<p class=\"muted\">the first %" PRIu32 " listed, %" PRIu32, shown,
			r->n_packets - shown);
		fputs(" omitted</p>\n", f);
	}
	for (i = 0; i < shown; i++) {
		html_packet(f, i + 1, &r->packets[i]);
	}
	fputs("</section>\n", f);
}

static void html_footer(FILE *f, const struct dt_report *r)
{
	uint32_t i;

	fputs("<footer class=\"muted\">\n<p>samples lost before analysis:", f);
	for (i = 0; i < DT_LOSS_MAX; i++) {
		fprintf(f, "%s %s %" PRIu64, i ? "," : "", dt_loss_name(i), r->lost[i]);
	}
	fprintf(f,
		"; samples that matched no task (all tasks): %" PRIu64 "; analysis window %" PRIu64
		" ms</p>\n<p>note: ",
		r->unmatched, r->window_ms);
	html_str(f, dt_render_clock_note, SIZE_MAX);
	fputs(".</p>\n</footer>\n</body>\n</html>\n", f);
}

int dt_render_report_html(FILE *f, const struct dt_report *r, const char *svg, size_t svg_len,
			  uint32_t max_packets)
{
	html_head(f, r);
	html_verdict(f, r);
	if (html_path(f, r, svg, svg_len) != 0) {
		return -ENOMEM;
	}
	html_rows(f, r);
	html_stats(f, r);
	html_packets(f, r, max_packets);
	html_footer(f, r);
	return ferror(f) ? -EIO : 0;
}
