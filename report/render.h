/* SPDX-License-Identifier: MIT */
/*
 * render.h - tasks, reports and errors as human text or as JSON, for the dyetrace CLI.
 *
 * Text is for people: a header, the verdict, the per-hop loss table, the per-hop latency
 * table in microseconds, then each packet's path, one hop per line, with its fate. JSON is
 * for scripts (the lab tests read it with jq): one compact document followed by a
 * newline, with the names below, which are a stable interface — add keys, never rename or
 * remove them. The other formats of a report are in render_graph.h (Graphviz dot, SVG)
 * and render_html.h (one self-contained HTML page).
 *
 *   flow:   {"src":"10.100.0.1","dst":"10.100.0.2","sport":null|N,"dport":null|N,
 *            "proto":"icmp","vni":N}
 *   task:   {"id":N,"state":"running","flow":{flow members,"any_port":BOOL,
 *            "direction":"request|reply|both"},"created_ns":N,"colored":N,"delivered":N,
 *            "tenant":S,"limits":{"budget":N,"duration_s":N,"rate_pps":N},
 *            "status":"ok|no-host|arm-timeout|budget-spent|duration|cancelled|restarted|
 *                      arm-failed|tenant-removed",
 *            "status_text":S,"armed_ns":N|null,"ended_ns":N|null}
 *   list:   {"tasks":[{task},...]}
 *   ref:    {"node":S,"ifname":S,"hook":"port-in"}
 *   report: {"schema":"dyetrace.report","schema_version":2,"task":{task},
 *            "verdict":{"sentence":S,"judged":N,"delivered":N,"dropped":N,"vanished":N,
 *                       "in_flight":N,"at":{ref}|null,"reason":S},
 *            "packets":[{"ip_id":N,"ident":N,"len":N,"direction":"request|reply",
 *                        "fate":"delivered|dropped|vanished|in-flight|unobserved|...",
 *                        "flow":{flow},
 *                        "drop":{"reason":N,"name":S,"where":S}|null,
 *                        "hops":[{"node":S,"ifname":S,"hook":S,"ts_ns":N,
 *                                 "latency_ns":null|N,"cap_len":N[,"flow":{flow}]},...]},
 *                        ...],
 *            "hop_latency":[{"from":{ref},"to":{ref},"count":N,"min_ns":N,"max_ns":N,
 *                            "mean_ns":X,"stddev_ns":X,"variance_ns2":X},...],
 *            "hops":[{"node":S,"ifname":S,"hook":S,"direction":S,"seen":N,"dropped":N,
 *                     "vanished":N,"loss_rate":X,"top_reason":S},...],
 *            "lost":{"ring-full":N,"queue-full":N,"bad-version":N,"rejected":N,
 *                    "spool-full":N,"agent-crash":N},
 *            "unmatched":N,"window_ms":N,"clock_note":S,
 *            "unobserved":{"packets":N,"windows":[{"node":S,"from_ns":N,"to_ns":N,
 *                          "cause":"stopped|crashed|detached","samples_lost":N,
 *                          "samples_lost_unknown":BOOL,"packets":N},...]}}
 *   error:  {"error":{"status":"not-found","message":S}}
 *
 * A task's sport and dport are null when it traces any port; a packet's flow always has
 * its actual ports (for ICMP echo the identifier, see dt_sample.h). A packet's flow is
 * the one inside any NAT, in the packet's own direction; a hop has "flow" only where it
 * saw other addresses or ports (after a NAT), with the packet's proto and vni. "drop" is
 * set when the fate is dropped: the kernel's reason value, its name ("" when the kernel's
 * BTF had none) and where ("nf_hook_slow+0x8c", "" when unknown). The verdict's "at" is
 * null when nothing was lost. "hops" is the per-hop loss table (struct dt_hop_row), by
 * direction, then in path order; loss_rate is (dropped + vanished) / seen. A hop's
 * latency_ns is its timestamp minus the previous hop's, signed (negative across nodes
 * whose clocks disagree), and null for the first hop. variance_ns2 is stddev_ns squared.
 * "unobserved" counts the judged packets that were neither seen again nor lost: their next
 * hop was on a node that was not observing then (they are in the verdict's "judged", not
 * in "dropped" or "vanished"); "windows" are those windows (struct dt_blind).
 * "unmatched" counts samples of all tasks that matched none; window_ms is the analysis
 * window. Strings are escaped; bytes that are not UTF-8 become U+FFFD. Non-finite numbers
 * are written as null.
 *
 * A report names its format: "schema" is always "dyetrace.report" and "schema_version"
 * grows only when a key changes its meaning (adding keys keeps the version).
 * report/report.schema.json (JSON Schema draft 2020-12) describes the report and the
 * error document, with the unit of every number. A hop's cap_len is how many bytes of the
 * packet's prefix its sample captured (0 when none; at most DT_CAP_MAX): the bytes the
 * pcapng export writes for that hop.
 *
 * Every function writes to f and returns 0, or -EIO when f reports an error afterwards.
 * Nothing is allocated.
 */
#ifndef DT_RENDER_H
#define DT_RENDER_H

#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"

/* The report's "schema" and "schema_version" (see above and report.schema.json). */
#define DT_REPORT_SCHEMA "dyetrace.report"
#define DT_REPORT_SCHEMA_VERSION 2

/* How many packets the text report lists unless told otherwise. */
#define DT_RENDER_TEXT_PACKETS 20

/* The sentence every report carries about latency between nodes. */
extern const char dt_render_clock_note[];

int dt_render_task_text(FILE *f, const struct dt_task_info *t);
int dt_render_task_json(FILE *f, const struct dt_task_info *t);

/* A tenant's tasks: a table in text, {"tasks":[...]} in JSON. */
int dt_render_task_list_text(FILE *f, const struct dt_task_list *l);
int dt_render_task_list_json(FILE *f, const struct dt_task_list *l);

/* One line of `task watch`: "TIME task ID STATE (STATUS): SENTENCE; colored N". */
int dt_render_task_change_text(FILE *f, uint64_t now_ns, const struct dt_task_info *t);

/* Lists the first max_packets packets (0: all) and says how many were left out. */
int dt_render_report_text(FILE *f, const struct dt_report *r, uint32_t max_packets);
int dt_render_report_json(FILE *f, const struct dt_report *r);

/* status: a dt_status_name() or another short word ("unreachable"). */
int dt_render_error_json(FILE *f, const char *status, const char *message);

/* For the other renderers (render_graph.c, render_html.c). */

/* Length of the valid UTF-8 sequence at s (at most n bytes, n > 0), or 0 when it is not
 * one (overlong forms, surrogates and code points above U+10FFFF are not). */
size_t dt_utf8_len(const unsigned char *s, size_t n);

/* Wall-clock ns as "2026-11-22T10:00:00.123Z" in buf (40 bytes are enough), "-" for 0.
 * Returns buf. */
const char *dt_render_time(uint64_t ns, char *buf, size_t len);

/* The samples a window without observation lost, as text: "3", or "unknown" when some
 * were and their number is not known (24 bytes are enough). Returns buf. */
const char *dt_render_gap_lost(const struct dt_gap *g, char *buf, size_t len);

#endif /* DT_RENDER_H */
