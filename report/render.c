// SPDX-License-Identifier: MIT
/*
 * render.c - what the text and JSON renderers share (see render.h for the formats):
 * render_json.c writes JSON, render_text.c text.
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

const char dt_render_clock_note[] =
	"latency between hops on different nodes depends on their clocks being in sync; "
	"a negative one there means clock skew and counts as 0 in the hop latency statistics";

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

int dt_render_finish(FILE *f)
{
	return ferror(f) ? -EIO : 0;
}

/* "request", "reply" or "both": the directions a task traces (none given: request). */
const char *dt_render_task_direction(uint32_t flags)
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

/* True when a hop saw the packet under other addresses or ports (after a NAT). A later
 * fragment has no ports to compare (they are 0 at every hop). */
bool dt_render_hop_translated(const struct dt_packet_path *p, const struct dt_hop *h)
{
	bool ports = !(p->frag & DT_FRAG_OFFSET);

	return h->tuple.saddr != p->tuple.saddr || h->tuple.daddr != p->tuple.daddr ||
	       (ports && (h->tuple.sport != p->tuple.sport || h->tuple.dport != p->tuple.dport));
}

/* A hop's flow: its addresses and ports, the packet's protocol and VNI. */
void dt_render_hop_flow(const struct dt_packet_path *p, const struct dt_hop *h, struct dt_tuple *t)
{
	*t = p->tuple;
	t->saddr = h->tuple.saddr;
	t->daddr = h->tuple.daddr;
	t->sport = h->tuple.sport;
	t->dport = h->tuple.dport;
}

/* (dropped + vanished) / seen, or 0 for a row that saw nothing. */
double dt_render_loss_rate(const struct dt_hop_row *r)
{
	return r->seen ? (double)(r->dropped + r->vanished) / (double)r->seen : 0.0;
}

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

const char *dt_render_gap_lost(const struct dt_gap *g, char *buf, size_t len)
{
	if (g->flags & DT_GAP_F_LOST_UNKNOWN) {
		snprintf(buf, len, "unknown");
	} else {
		snprintf(buf, len, "%" PRIu64, g->lost);
	}
	return buf;
}
