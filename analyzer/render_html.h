/* SPDX-License-Identifier: MIT */
/*
 * render_html.h - a report as one self-contained HTML page, for people.
 *
 * The page needs nothing but a browser: no server, no network (no external stylesheet,
 * script, font or image), no script at all. It shows, in this order:
 *
 *   - the task (flow, state, status, tenant, times) and the verdict sentence, in a box
 *     that is red when packets were lost and green otherwise (id "verdict");
 *   - the path picture (id "path"): the SVG that Graphviz's dot drew of the report
 *     (render_graph.h), inline; without it, the same picture in HTML and CSS: one box per
 *     node with its places, the drop place in red, then every hop pair with its packets
 *     and latency;
 *   - the per-hop loss table (id "loss") and the hop latency table in µs (id "latency");
 *   - every packet (id "packets", each "pkt-N"): its header (direction, IPv4 id, ident,
 *     length, first seen), its fate with the drop reason and location, and its hops with
 *     their time, latency since the previous hop, time since the first hop as a bar, and
 *     the bytes of prefix captured there;
 *   - the samples lost before analysis, the unmatched samples, the analysis window, and
 *     the note about clocks.
 *
 * Every string from the report is HTML-escaped (& < > " '), control characters and bytes
 * that are not UTF-8 become U+FFFD. The SVG is trusted (dot escapes what it draws) and
 * inlined from its <svg> element on (the XML prolog and doctype are left out).
 */
#ifndef DT_RENDER_HTML_H
#define DT_RENDER_HTML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"

/*
 * Writes r as an HTML page to f. svg (svg_len bytes): what dt_render_report_svg_mem()
 * returned for r, or NULL to draw the path with HTML instead. Lists the first
 * max_packets packets (0: all) and says how many were left out. Returns 0, -ENOMEM, or
 * -EIO when f reports an error.
 */
int dt_render_report_html(FILE *f, const struct dt_report *r, const char *svg, size_t svg_len,
			  uint32_t max_packets);

#endif /* DT_RENDER_HTML_H */
