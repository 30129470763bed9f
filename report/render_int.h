/* SPDX-License-Identifier: MIT */
/*
 * render_int.h - what render.c, render_json.c and render_text.c share. Not a public
 * interface: render.h is.
 */
#ifndef DT_RENDER_INT_H
#define DT_RENDER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"

/* Ends a document: 0, or -EIO when writing to f failed. */
int dt_render_finish(FILE *f);

/* "request", "reply" or "both": the directions a task traces (none given: request). */
const char *dt_render_task_direction(uint32_t flags);

/* True when a hop saw the packet under other addresses or ports (after a NAT). A later
 * fragment has no ports to compare (they are 0 at every hop). */
bool dt_render_hop_translated(const struct dt_packet_path *p, const struct dt_hop *h);

/* A hop's flow: its addresses and ports, the packet's protocol and VNI. */
void dt_render_hop_flow(const struct dt_packet_path *p, const struct dt_hop *h, struct dt_tuple *t);

/* (dropped + vanished) / seen, or 0 for a row that saw nothing. */
double dt_render_loss_rate(const struct dt_hop_row *r);

#endif /* DT_RENDER_INT_H */
