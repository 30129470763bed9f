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
	".place.copy{border:1px dashed #8a939c;background:#fafbfc;color:#57606a}\n"
	".pairs{margin:10px 0;padding-left:20px}\n"
	".pairs li.reply{color:#1f5fbf}\n"
	".pairs li.copy{color:#6e7781}\n"
	"tr.copy td{color:#6e7781}\n"
	".pkt{margin:10px 0;padding:6px 10px;border:1px solid #e3e6ea;border-left:5px solid "
	"#2e7d32;border-radius:6px}\n"
	".pkt.dropped{border-left-color:#c62828}\n"
	".pkt.vanished{border-left-color:#e67e00}\n"
	".pkt.in-flight{border-left-color:#8a939c}\n"
	".pkt.unobserved{border-left-color:#8a939c;border-left-style:dashed}\n"
	".fate{font-weight:600}\n"
	".hops td{white-space:nowrap}\n"
	".hops td.branch{white-space:normal;min-width:12em}\n"
	".bar{display:inline-block;height:8px;min-width:2px;border-radius:2px;background:#1f5fbf;"
	"vertical-align:middle}\n"
	".bar.copy{background:#b8bfc6}\n"
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
		", dropped %" PRIu64 ", vanished %" PRIu64,
		v->judged, v->delivered, v->dropped, v->vanished);
	if (v->unobserved) {
		fprintf(f, ", unobserved %" PRIu64, v->unobserved);
	}
	fprintf(f, "; in flight %" PRIu64 "</p>\n", v->in_flight);
	if (v->dest_unknown) {
		fprintf(f,
			"<p class=\"muted\" id=\"destination-unknown\">%" PRIu64 " of them had a "
			"destination no node reported hosting: their fate was judged from their "
			"branches alone</p>\n",
			v->dest_unknown);
	}
	fputs("</section>\n", f);
}

/* The windows in which a node was not observing, and the packets each explains. */
static void html_blind(FILE *f, const struct dt_report *r)
{
	char from[40], to[40], lost[24];
	uint32_t i;

	if (r->n_blind == 0) {
		return;
	}
	fputs("<section id=\"unobserved\">\n<h2>Unobserved</h2>\n<p class=\"muted\">nodes that "
	      "were not observing when these packets would have crossed them: the packets were "
	      "not seen there, and are not counted as lost</p>\n<table>\n<tr><th>node</th>"
	      "<th>from</th><th>to</th><th>cause</th><th class=\"n\">samples lost</th>"
	      "<th class=\"n\">packets</th></tr>\n",
	      f);
	for (i = 0; i < r->n_blind; i++) {
		const struct dt_blind *b = &r->blind[i];

		fputs("<tr><td>", f);
		html_str(f, b->node, sizeof(b->node));
		fprintf(f,
			"</td><td>%s</td><td>%s</td><td>%s</td><td class=\"n\">%s</td>"
			"<td class=\"n\">%" PRIu64 "</td></tr>\n",
			dt_render_time(b->gap.from_ns, from, sizeof(from)),
			dt_render_time(b->gap.to_ns, to, sizeof(to)),
			dt_gap_cause_words(b->gap.cause),
			dt_render_gap_lost(&b->gap, lost, sizeof(lost)), b->packets);
	}
	fputs("</table>\n</section>\n", f);
}

/* A copy's place, grey and dashed: "ul0 uplink-in (copies): 3 copies, 3 filtered". */
static void html_copy_place(FILE *f, const struct dt_graph_place *pl)
{
	char sum[DT_GRAPH_SUMMARY_MAX];

	dt_graph_copy_summary(pl, sum, sizeof(sum));
	fputs("<div class=\"place copy\">", f);
	html_str(f, pl->at.ifname, sizeof(pl->at.ifname));
	fprintf(f, " %s (copies)", dt_hook_name(pl->at.hook));
	if (pl->at.hook == DT_HOOK_DROP) {
		fputs(", reason ", f);
		html_str(f, pl->reason[0] ? pl->reason : "unnamed", sizeof(pl->reason));
	}
	fprintf(f, ": %s</div>\n", sum);
}

/* The path without Graphviz: the places by node (copies grey and dashed), then the hop
 * pairs. */
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
			if (pl->branch == DT_BRANCH_COPY) {
				html_copy_place(f, pl);
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
		bool copy = e->branch == DT_BRANCH_COPY;
		bool drop = !copy && g->places[e->to].at.hook == DT_HOOK_DROP;

		fprintf(f, "<li class=\"%s%s\">", dt_direction_name(e->direction),
			copy   ? " copy"
			: drop ? " drop"
			       : "");
		html_ref(f, &g->places[e->from].at);
		fputs(" &rarr; ", f);
		html_ref(f, &g->places[e->to].at);
		fprintf(f, ": %s, %" PRIu64 " %s", dt_direction_name(e->direction), e->packets,
			copy ? (e->packets == 1 ? "copy" : "copies")
			     : (e->packets == 1 ? "packet" : "packets"));
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

/* Where the bystanders' copies ended, as the text report's copies table. */
static void html_copies(FILE *f, const struct dt_report *r)
{
	uint32_t i;

	fputs("<section id=\"copies\">\n<h2>Copies for other hosts</h2>\n", f);
	if (r->n_copy_rows == 0) {
		fputs("<p>no copies: no packet reached a host it was not for</p>\n</section>\n", f);
		return;
	}
	fputs("<p class=\"muted\">copies the overlay made (head-end replication, flooding "
	      "bridges) that reached hosts the packets were not for, and how they ended; never "
	      "part of the verdict or the loss table</p>\n"
	      "<table>\n<tr><th>direction</th><th>ended at</th><th>how</th>"
	      "<th class=\"n\">copies</th><th>reason</th></tr>\n",
	      f);
	for (i = 0; i < r->n_copy_rows; i++) {
		const struct dt_copy_row *c = &r->copy_rows[i];

		fprintf(f, "<tr class=\"copy\"><td>%s</td><td>", dt_direction_name(c->direction));
		html_ref(f, &c->at);
		fprintf(f, "</td><td>%s</td><td class=\"n\">%" PRIu64 "</td><td>",
			dt_copy_end_name(c->end), c->count);
		html_str(f, c->reason, sizeof(c->reason));
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
	fputs("<table>\n<tr><th>branch</th><th>from</th><th>to</th><th class=\"n\">count</th>"
	      "<th class=\"n\">min</th><th class=\"n\">mean</th><th class=\"n\">max</th>"
	      "<th class=\"n\">stddev</th><th class=\"n\">variance, \u00b5s\u00b2</th></tr>\n",
	      f);
	for (i = 0; i < r->n_stats; i++) {
		const struct dt_hop_stat *s = &r->stats[i];
		double sd = s->stddev_ns / 1e3;

		if (s->branch == DT_BRANCH_COPY) {
			fputs("<tr class=\"copy\"><td>copy</td><td>", f);
		} else {
			fputs("<tr><td>destination</td><td>", f);
		}
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

/* The hops of p's destination branch: hops[0 .. n) (see struct dt_hop). */
static uint32_t dest_hops(const struct dt_packet_path *p)
{
	uint32_t n = 0;

	while (n < p->n_hops && p->hops[n].branch != DT_BRANCH_COPY) {
		n++;
	}
	return n;
}

/* True when hop k of p has a parent: an earlier hop (the first hop has none). */
static bool has_parent(const struct dt_packet_path *p, uint32_t k)
{
	return p->hops[k].parent < k;
}

/* A drop's reason and place: "reason NETFILTER_DROP (6) in nf_hook_slow+0x8c". */
static void html_drop(FILE *f, const char *name, size_t name_max, uint32_t reason,
		      const char *where, size_t where_max)
{
	fputs("reason ", f);
	html_str(f, name[0] ? name : "unnamed", name_max);
	fprintf(f, " (%" PRIu32 ")", reason);
	if (where[0]) {
		fputs(" in ", f);
		html_str(f, where, where_max);
	}
}

/* The fate of p, one sentence, decided by its destination branch. */
static void html_fate(FILE *f, const struct dt_packet_path *p)
{
	uint32_t n = dest_hops(p);
	const struct dt_hop_ref *last = n ? &p->hops[n - 1].at : NULL;

	fprintf(f, "<span class=\"fate %s\">%s", dt_fate_name(p->fate), dt_fate_name(p->fate));
	switch (p->fate) {
	case DT_FATE_DROPPED:
		fputs(": ", f);
		html_drop(f, p->drop_name, sizeof(p->drop_name), p->drop_reason, p->drop_where,
			  sizeof(p->drop_where));
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
	case DT_FATE_UNOBSERVED:
		if (last) {
			fputs(": last seen at ", f);
			html_ref(f, last);
			fputs(", its next hop's node was not observing (see Unobserved)", f);
		}
		break;
	default:
		break;
	}
	fputs("</span>", f);
}

/* The branch cell of hop h: "destination", "copy", or at a copy's end how it ended,
 * "copy, filtered: reason NOT_SPECIFIED (2) in br_handle_frame_finish+0x1a". */
static void html_branch(FILE *f, const struct dt_hop *h)
{
	if (h->branch != DT_BRANCH_COPY) {
		fputs("<td class=\"branch\">destination</td>", f);
		return;
	}
	fputs("<td class=\"branch\">copy", f);
	if (h->copy_end != DT_COPY_NONE) {
		fprintf(f, ", <b class=\"copy-fate\">%s</b>", dt_copy_end_name(h->copy_end));
		if (h->at.hook == DT_HOOK_DROP) {
			fputs(": ", f);
			html_drop(f, h->drop_name, sizeof(h->drop_name), h->drop_reason,
				  h->drop_where, sizeof(h->drop_where));
		}
	}
	fputs("</td>", f);
}

/*
 * One packet: its header, its fate, and its hops in the report's order, the destination
 * branch first, then each copy branch, its rows grey and indented by how far the copy is
 * from where it left the destination branch. Latency is from each hop's parent ("after").
 */
static void html_packet(FILE *f, uint32_t n, const struct dt_packet_path *p)
{
	char when[40], flow[DT_TUPLE_STR_MAX];
	uint64_t t0 = p->n_hops ? p->hops[0].ts_ns : 0, span = 0;
	uint8_t depth[DT_REPORT_MAX_HOPS];
	uint32_t i, n_hops = p->n_hops < DT_REPORT_MAX_HOPS ? p->n_hops : DT_REPORT_MAX_HOPS;

	for (i = 0; i < n_hops; i++) {
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
	if (p->n_copies) {
		fprintf(f, "; %" PRIu32 " cop%s for other hosts", p->n_copies,
			p->n_copies == 1 ? "y" : "ies");
	}
	if (!p->dest_known) {
		fputs(" (destination not known to any node)", f);
	}
	fputs("<br><span class=\"muted\">flow ", f);
	html_str(f, dt_tuple_str(&p->tuple, 0, flow, sizeof(flow)), sizeof(flow));
	fputs("</span></p>\n", f);
	if (n_hops == 0) {
		fputs("</div>\n", f);
		return;
	}
	fputs("<table class=\"hops\">\n<tr><th class=\"n\">#</th><th>hop</th>"
	      "<th class=\"n\">after</th><th>branch</th><th>time</th>"
	      "<th class=\"n\">latency, \u00b5s</th><th class=\"n\">since first, \u00b5s</th>"
	      "<th class=\"n\">captured, bytes</th><th>timeline</th></tr>\n",
	      f);
	for (i = 0; i < n_hops; i++) {
		const struct dt_hop *h = &p->hops[i];
		bool copy = h->branch == DT_BRANCH_COPY, parent = has_parent(p, i);
		int64_t lat = parent ? (int64_t)(h->ts_ns - p->hops[h->parent].ts_ns) : 0;
		int64_t since = (int64_t)(h->ts_ns - t0);
		unsigned int px = 0;

		/* How deep into its copy branch: 1 for the hop that left the destination one. */
		depth[i] = 0;
		if (copy) {
			depth[i] = parent ? depth[h->parent] + 1 : 1;
			depth[i] = depth[i] > 8 ? 8 : depth[i];
		}
		if (since > 0 && span > 0) {
			px = (unsigned int)((double)since / (double)span * TIMELINE_PX);
		}
		fprintf(f, "<tr%s><td class=\"n\">%" PRIu32 "</td>",
			copy			     ? " class=\"copy\""
			: h->at.hook == DT_HOOK_DROP ? " class=\"drop\""
						     : "",
			i + 1);
		if (copy) {
			fprintf(f, "<td style=\"padding-left:%upx\">", 10u + 16u * depth[i]);
		} else {
			fputs("<td>", f);
		}
		html_ref(f, &h->at);
		if (parent) {
			fprintf(f, "</td><td class=\"n\">%u</td>", h->parent + 1u);
		} else {
			fputs("</td><td class=\"n\">-</td>", f);
		}
		html_branch(f, h);
		fprintf(f, "<td>%s</td>", dt_render_time(h->ts_ns, when, sizeof(when)));
		if (!parent) {
			fputs("<td class=\"n\">-</td>", f);
		} else {
			fprintf(f, "<td class=\"n\">%+.1f%s</td>", (double)lat / 1e3,
				lat < 0 ? " (clock skew)" : "");
		}
		fprintf(f,
			"<td class=\"n\">%+.1f</td><td class=\"n\">%u</td>"
			"<td><span class=\"bar%s\" style=\"width:%upx\"></span></td></tr>\n",
			(double)since / 1e3, h->cap_link == DT_CAP_NONE ? 0u : h->cap_len,
			copy ? " copy" : "", px);
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
		"; samples that matched no task (any tenant): %" PRIu64 "; analysis window %" PRIu64
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
	html_blind(f, r);
	if (html_path(f, r, svg, svg_len) != 0) {
		return -ENOMEM;
	}
	html_rows(f, r);
	html_copies(f, r);
	html_stats(f, r);
	html_packets(f, r, max_packets);
	html_footer(f, r);
	return ferror(f) ? -EIO : 0;
}
