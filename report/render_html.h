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
 *     node with its places, the drop place in red, the places of bystander copies grey and
 *     dashed, then every hop pair with its packets (or copies) and latency;
 *   - the per-hop loss table over destination branches (id "loss"), the copies table (id
 *     "copies": where the bystanders' copies ended, how and why, with how many) and the hop
 *     latency table in µs (id "latency"), each pair of a hop and its parent on its kind of
 *     branch, the copies' rows marked "copy";
 *   - every packet (id "packets", each "pkt-N"): its header (direction, IPv4 id, ident,
 *     length, first seen, copies for other hosts, a destination no node knows), its fate
 *     with the drop reason and location, and its hops in the report's order (the
 *     destination branch, then each copy branch, grey and indented) with the hop each
 *     followed, its branch (at a copy's end how the copy ended and why), their time,
 *     latency since that parent hop, time since the first hop as a bar, and the bytes of
 *     prefix captured there;
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
