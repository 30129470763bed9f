// SPDX-License-Identifier: MIT
/*
 * render_text.c - tasks, reports and errors as text for people (see render.h).
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
/* Text */

static void text_task(FILE *f, const struct dt_task_info *t)
{
	char flow[DT_TUPLE_STR_MAX], when[40];

	dt_tuple_str(&t->spec.tuple, t->spec.flags, flow, sizeof(flow));
	fprintf(f, "task %" PRIu32 " (%s): %s%s, direction %s\n", t->id,
		dt_task_state_name(t->state), flow,
		t->spec.flags & DT_TASK_F_ANYPORT ? ", any port" : "",
		dt_render_task_direction(t->spec.flags));
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
		return dt_render_finish(f);
	}
	fprintf(f, "%8s  %-9s  %-12s  %8s  %-7s  %s\n", "ID", "STATE", "STATUS", "COLORED", "DIR",
		"FLOW");
	for (uint32_t i = 0; i < l->n_tasks; i++) {
		const struct dt_task_info *t = &l->tasks[i];

		dt_tuple_str(&t->spec.tuple, t->spec.flags, flow, sizeof(flow));
		fprintf(f, "%8" PRIu32 "  %-9s  %-12s  %8" PRIu64 "  %-7s  %s%s\n", t->id,
			dt_task_state_name(t->state), dt_task_status_name(t->status), t->colored,
			dt_render_task_direction(t->spec.flags), flow,
			t->spec.flags & DT_TASK_F_ANYPORT ? ", any port" : "");
	}
	return dt_render_finish(f);
}

int dt_render_task_change_text(FILE *f, uint64_t now_ns, const struct dt_task_info *t)
{
	char when[40];

	fprintf(f, "%s task %" PRIu32 " %s (%s): %.*s; colored %" PRIu64 "\n",
		dt_render_time(now_ns, when, sizeof(when)), t->id, dt_task_state_name(t->state),
		dt_task_status_name(t->status), (int)sizeof(t->status_text), t->status_text,
		t->colored);
	return dt_render_finish(f);
}

int dt_render_task_text(FILE *f, const struct dt_task_info *t)
{
	text_task(f, t);
	return dt_render_finish(f);
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
		", vanished %" PRIu64,
		v->judged, v->delivered, v->dropped, v->vanished);
	if (v->unobserved) {
		fprintf(f, ", unobserved %" PRIu64, v->unobserved);
	}
	fprintf(f, "; in flight %" PRIu64 "\n", v->in_flight);
}

/* The windows in which a node was not observing, and the packets each explains. */
static void text_blind(FILE *f, const struct dt_report *r)
{
	char from[40], to[40], lost[24];
	int width = (int)strlen("node");
	uint32_t i;

	if (r->n_blind == 0) {
		return;
	}
	for (i = 0; i < r->n_blind; i++) {
		int n = (int)strnlen(r->blind[i].node, sizeof(r->blind[i].node));

		width = n > width ? n : width;
	}
	fprintf(f,
		"\nunobserved: nodes not observing when these packets would have crossed them (no "
		"loss):\n  %-*s %-24s %-24s %-17s %12s %8s\n",
		width, "node", "from", "to", "cause", "samples lost", "packets");
	for (i = 0; i < r->n_blind; i++) {
		const struct dt_blind *b = &r->blind[i];

		fprintf(f, "  %-*.*s %-24s %-24s %-17s %12s %8" PRIu64 "\n", width,
			(int)sizeof(b->node), b->node,
			dt_render_time(b->gap.from_ns, from, sizeof(from)),
			dt_render_time(b->gap.to_ns, to, sizeof(to)),
			dt_gap_cause_words(b->gap.cause),
			dt_render_gap_lost(&b->gap, lost, sizeof(lost)), b->packets);
	}
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
			row->vanished, 100.0 * dt_render_loss_rate(row),
			(int)sizeof(row->top_reason), row->top_reason);
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
	if (dt_render_hop_translated(p, h)) {
		struct dt_tuple t;

		dt_render_hop_flow(p, h, &t);
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
	case DT_FATE_UNOBSERVED:
		fprintf(f,
			"  unobserved: last seen at %s; its next hop's node was not observing (see "
			"unobserved)\n",
			at);
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
	text_blind(f, r);
	fputs("\nsamples lost before analysis:", f);
	for (i = 0; i < DT_LOSS_MAX; i++) {
		fprintf(f, "%s %s %" PRIu64, i ? "," : "", dt_loss_name(i), r->lost[i]);
	}
	fprintf(f,
		"\nsamples that matched no task (any tenant): %" PRIu64 "; analysis window %" PRIu64
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
	return dt_render_finish(f);
}
