/* SPDX-License-Identifier: MIT */
/*
 * render.h - tasks, reports and errors as human text or as JSON, for the dyetrace CLI.
 *
 * Text is for people: a header, a per-hop latency table in microseconds, then each
 * packet's path, one hop per line. JSON is for scripts (the lab tests read it with jq):
 * one compact document followed by a newline, with the names below, which are a stable
 * interface — add keys, never rename or remove them.
 *
 *   task:   {"id":N,"state":"running","flow":{"src":"10.100.0.1","dst":"10.100.0.2",
 *            "sport":null|N,"dport":null|N,"proto":"icmp","vni":N,"any_port":BOOL},
 *            "created_ns":N,"colored":N,"delivered":N}
 *   report: {"task":{task},"packets":[{"ip_id":N,"ident":N,"len":N,"hops":[{"node":S,
 *            "ifname":S,"hook":"port-in","ts_ns":N,"latency_ns":null|N},...]},...],
 *            "hop_latency":[{"from":{"node":S,"ifname":S,"hook":S},"to":{...},"count":N,
 *            "min_ns":N,"max_ns":N,"mean_ns":X,"stddev_ns":X},...],
 *            "lost":{"ring-full":N,"queue-full":N,"bad-version":N},"clock_note":S}
 *   error:  {"error":{"status":"not-found","message":S}}
 *
 * sport and dport are null when the task traces any port. A hop's latency_ns is its
 * timestamp minus the previous hop's, signed (negative across nodes whose clocks
 * disagree), and null for the first hop. Strings are escaped; bytes that are not UTF-8
 * become U+FFFD. Non-finite numbers are written as null.
 *
 * Every function writes to f and returns 0, or -EIO when f reports an error afterwards.
 * Nothing is allocated.
 */
#ifndef DT_RENDER_H
#define DT_RENDER_H

#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"

/* How many packets the text report lists unless told otherwise. */
#define DT_RENDER_TEXT_PACKETS 20

/* The sentence every report carries about latency between nodes. */
extern const char dt_render_clock_note[];

int dt_render_task_text(FILE *f, const struct dt_task_info *t);
int dt_render_task_json(FILE *f, const struct dt_task_info *t);

/* Lists the first max_packets packets (0: all) and says how many were left out. */
int dt_render_report_text(FILE *f, const struct dt_report *r, uint32_t max_packets);
int dt_render_report_json(FILE *f, const struct dt_report *r);

/* status: a dt_status_name() or another short word ("unreachable"). */
int dt_render_error_json(FILE *f, const char *status, const char *message);

#endif /* DT_RENDER_H */
