// SPDX-License-Identifier: MIT
/*
 * render_graph.c - a report's path as a Graphviz digraph, and as SVG drawn by dot (see
 * render_graph.h).
 *
 * dot runs as a child (posix_spawnp, so that a missing dot is an error code, not a child
 * that exits 127). Its stdin is one end of a socket pair rather than a pipe: send() with
 * MSG_NOSIGNAL then reports a dot that exited early as EPIPE instead of killing us with
 * SIGPIPE, without touching the process's signal dispositions. Input and output are
 * interleaved with poll(), so that neither side can block the other whatever the sizes.
 */
#define _GNU_SOURCE /* pipe2, memmem */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/wait.h>

#include "dt_tuple.h"
#include "render.h"
#include "render_graph.h"

extern char **environ;

/* ------------------------------------------------------------------------------------ */
/* The picture */

static bool ref_eq(const struct dt_hop_ref *a, const struct dt_hop_ref *b)
{
	return a->hook == b->hook && strncmp(a->node, b->node, sizeof(a->node)) == 0 &&
	       strncmp(a->ifname, b->ifname, sizeof(a->ifname)) == 0;
}

/* Makes room for one more element in *arr (n in use, *cap allocated). Returns 0 or
 * -ENOMEM. */
static int grow(void **arr, uint32_t n, uint32_t *cap, size_t size)
{
	uint32_t want = *cap ? *cap * 2 : 16;
	void *p;

	if (n < *cap) {
		return 0;
	}
	p = realloc(*arr, (size_t)want * size);
	if (!p) {
		return -ENOMEM;
	}
	*arr = p;
	*cap = want;
	return 0;
}

struct builder {
	struct dt_graph *g;
	uint32_t cap_hosts, cap_places, cap_edges;
};

static int host_index(struct builder *b, const char *node, uint32_t *idx)
{
	struct dt_graph *g = b->g;
	uint32_t i;

	for (i = 0; i < g->n_hosts; i++) {
		if (strncmp(g->hosts[i], node, DT_NAME_MAX) == 0) {
			*idx = i;
			return 0;
		}
	}
	if (grow((void **)&g->hosts, g->n_hosts, &b->cap_hosts, sizeof(*g->hosts)) != 0) {
		return -ENOMEM;
	}
	memcpy(g->hosts[g->n_hosts], node, DT_NAME_MAX);
	*idx = g->n_hosts++;
	return 0;
}

/* A hop's kind of branch, an unknown value read as the destination branch. */
static uint8_t branch_of(const struct dt_hop *h)
{
	return h->branch == DT_BRANCH_COPY ? DT_BRANCH_COPY : DT_BRANCH_DEST;
}

/* The place of at on the kind of branch br, added when new. *idx is -1 when it would exceed
 * the maximum. */
static int place_index(struct builder *b, const struct dt_hop_ref *at, uint8_t br, int64_t *idx)
{
	struct dt_graph *g = b->g;
	struct dt_graph_place *pl;
	uint32_t i, host;

	for (i = 0; i < g->n_places; i++) {
		if (g->places[i].branch == br && ref_eq(&g->places[i].at, at)) {
			*idx = i;
			return 0;
		}
	}
	if (g->n_places >= DT_GRAPH_MAX_PLACES) {
		g->truncated = true;
		*idx = -1;
		return 0;
	}
	if (host_index(b, at->node, &host) != 0 ||
	    grow((void **)&g->places, g->n_places, &b->cap_places, sizeof(*g->places)) != 0) {
		return -ENOMEM;
	}
	pl = &g->places[g->n_places];
	memset(pl, 0, sizeof(*pl));
	pl->at = *at;
	pl->branch = br;
	pl->host = host;
	g->n_copy_places += br == DT_BRANCH_COPY;
	*idx = g->n_places++;
	return 0;
}

/* The latency statistics of the pair from -> to on the kind of branch br, or NULL. */
static const struct dt_hop_stat *find_stat(const struct dt_report *r, const struct dt_hop_ref *from,
					   const struct dt_hop_ref *to, uint8_t br)
{
	for (uint32_t i = 0; i < r->n_stats; i++) {
		uint8_t sb = r->stats[i].branch == DT_BRANCH_COPY ? DT_BRANCH_COPY : DT_BRANCH_DEST;

		if (sb == br && ref_eq(&r->stats[i].from, from) && ref_eq(&r->stats[i].to, to)) {
			return &r->stats[i];
		}
	}
	return NULL;
}

/* Counts one packet on the edge from -> to of direction dir and kind of branch br, added
 * when new. */
static int edge_count(struct builder *b, const struct dt_report *r, uint32_t from, uint32_t to,
		      uint8_t dir, uint8_t br)
{
	struct dt_graph *g = b->g;
	struct dt_graph_edge *e;
	uint32_t i;

	for (i = 0; i < g->n_edges; i++) {
		e = &g->edges[i];
		if (e->from == from && e->to == to && e->direction == dir && e->branch == br) {
			e->packets++;
			return 0;
		}
	}
	if (g->n_edges >= DT_GRAPH_MAX_EDGES) {
		g->truncated = true;
		return 0;
	}
	if (grow((void **)&g->edges, g->n_edges, &b->cap_edges, sizeof(*g->edges)) != 0) {
		return -ENOMEM;
	}
	e = &g->edges[g->n_edges++];
	e->from = from;
	e->to = to;
	e->direction = dir;
	e->branch = br;
	e->packets = 1;
	e->stat = find_stat(r, &g->places[from].at, &g->places[to].at, br);
	return 0;
}

/* Counts the end of a copy at its place pl (the last hop h of a copy branch). */
static void copy_end_count(struct dt_graph_place *pl, const struct dt_hop *h)
{
	if (h->copy_end == DT_COPY_NONE || h->copy_end >= DT_COPY_MAX) {
		return;
	}
	pl->ends[h->copy_end]++;
	if (!pl->reason[0] && h->at.hook == DT_HOOK_DROP && h->drop_name[0]) {
		snprintf(pl->reason, sizeof(pl->reason), "%.*s", (int)sizeof(h->drop_name),
			 h->drop_name);
	}
}

/*
 * Adds one packet: a place per hop, an edge from each hop's parent to it (a hop whose parent
 * is not an earlier hop is a root, as the first one is), and the fate at the end of the
 * destination branch, hops[0 .. n_dest) (see struct dt_hop).
 */
static int add_packet(struct builder *b, const struct dt_report *r, const struct dt_packet_path *p)
{
	struct dt_graph *g = b->g;
	int64_t idx[DT_REPORT_MAX_HOPS], last = -1;
	uint32_t j, n = p->n_hops, n_dest = 0;

	if (n > DT_REPORT_MAX_HOPS) {
		n = DT_REPORT_MAX_HOPS;
		g->truncated = true;
	}
	for (j = 0; j < n; j++) {
		const struct dt_hop *h = &p->hops[j];
		uint8_t br = branch_of(h);

		if (place_index(b, &h->at, br, &idx[j]) != 0) {
			return -ENOMEM;
		}
		if (idx[j] < 0) {
			continue;
		}
		g->places[idx[j]].packets++;
		if (br == DT_BRANCH_COPY) {
			copy_end_count(&g->places[idx[j]], h);
		}
		if (h->parent < j && idx[h->parent] >= 0 &&
		    edge_count(b, r, (uint32_t)idx[h->parent], (uint32_t)idx[j], p->direction,
			       br) != 0) {
			return -ENOMEM;
		}
	}
	while (n_dest < n && branch_of(&p->hops[n_dest]) == DT_BRANCH_DEST) {
		n_dest++;
	}
	if (n_dest == 0 || (last = idx[n_dest - 1]) < 0) {
		return 0;
	}
	if (p->fate == DT_FATE_DROPPED && p->hops[n_dest - 1].at.hook == DT_HOOK_DROP) {
		struct dt_graph_place *pl = &g->places[last];

		pl->dropped++;
		if (!pl->reason[0] && p->drop_name[0]) {
			snprintf(pl->reason, sizeof(pl->reason), "%.*s", (int)sizeof(p->drop_name),
				 p->drop_name);
		}
	} else if (p->fate == DT_FATE_VANISHED) {
		g->places[last].vanished++;
	}
	return 0;
}

/* The row of the loss table for at and dir, or NULL. */
static const struct dt_hop_row *find_row(const struct dt_report *r, const struct dt_hop_ref *at,
					 uint8_t dir)
{
	for (uint32_t i = 0; i < r->n_rows; i++) {
		if (r->rows[i].direction == dir && ref_eq(&r->rows[i].at, at)) {
			return &r->rows[i];
		}
	}
	return NULL;
}

/*
 * A copy place's reason, when the report's copies table has one for its place: the reason
 * of its row with the most copies (else the first its copies gave, from add_packet()).
 */
static void finish_copy(const struct dt_report *r, struct dt_graph_place *pl)
{
	const struct dt_copy_row *best = NULL;

	for (uint32_t i = 0; i < r->n_copy_rows; i++) {
		const struct dt_copy_row *c = &r->copy_rows[i];

		if (c->reason[0] && ref_eq(&c->at, &pl->at) && (!best || c->count > best->count)) {
			best = c;
		}
	}
	if (best) {
		snprintf(pl->reason, sizeof(pl->reason), "%.*s", (int)sizeof(best->reason),
			 best->reason);
	}
}

/*
 * A drop place's reason (the verdict's when the verdict names it, else its loss table
 * row's top reason, else the first one its packets gave) and the packets seen right before
 * it: the loss table's "seen" of the places its edges come from (their packet counts
 * when the table has no such row).
 */
static void finish_drop(const struct dt_report *r, struct dt_graph *g, uint32_t d)
{
	struct dt_graph_place *pl = &g->places[d];
	const struct dt_hop_row *row;
	uint32_t i, k;

	if (ref_eq(&r->verdict.at, &pl->at) && r->verdict.reason[0]) {
		snprintf(pl->reason, sizeof(pl->reason), "%.*s", (int)sizeof(r->verdict.reason),
			 r->verdict.reason);
	} else {
		for (i = 0; i < DT_DIR_MAX; i++) {
			row = find_row(r, &pl->at, (uint8_t)i);
			if (row && row->top_reason[0]) {
				snprintf(pl->reason, sizeof(pl->reason), "%.*s",
					 (int)sizeof(row->top_reason), row->top_reason);
				break;
			}
		}
	}
	for (i = 0; i < g->n_edges; i++) {
		const struct dt_graph_edge *e = &g->edges[i];
		bool seen = false;

		if (e->to != d) {
			continue;
		}
		row = find_row(r, &g->places[e->from].at, e->direction);
		if (row) {
			pl->before += row->seen;
			continue;
		}
		for (k = 0; k < i; k++) {
			seen = seen || (g->edges[k].to == d && g->edges[k].from == e->from);
		}
		if (!seen) {
			pl->before += g->places[e->from].packets;
		}
	}
}

int dt_graph_build(const struct dt_report *r, struct dt_graph *g)
{
	struct builder b = {.g = g};
	uint32_t i;

	memset(g, 0, sizeof(*g));
	for (i = 0; i < r->n_packets; i++) {
		if (add_packet(&b, r, &r->packets[i]) != 0) {
			dt_graph_free(g);
			return -ENOMEM;
		}
	}
	for (i = 0; i < g->n_places; i++) {
		if (g->places[i].branch == DT_BRANCH_COPY) {
			finish_copy(r, &g->places[i]);
		} else if (g->places[i].at.hook == DT_HOOK_DROP) {
			finish_drop(r, g, i);
		}
	}
	return 0;
}

void dt_graph_free(struct dt_graph *g)
{
	free(g->hosts);
	free(g->places);
	free(g->edges);
	memset(g, 0, sizeof(*g));
}

/* ------------------------------------------------------------------------------------ */
/* Dot */

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD in UTF-8 */
#define RED "#c62828"
#define ORANGE "#e67e00"
#define BLUE "#1f5fbf"
#define GREY "#8a939c"	    /* copies: lines */
#define GREY_TEXT "#57606a" /* copies: labels */

/*
 * Writes the first max bytes of s (up to its NUL) for the inside of a DOT string: quote
 * and backslash escaped, control characters and bytes that are not UTF-8 as U+FFFD. In
 * a label (label true) '&' is written "&amp;" too, since Graphviz reads entities there.
 */
static void dot_str(FILE *f, const char *str, size_t max, bool label)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, max), i = 0, len;

	while (i < n) {
		if (s[i] == '"' || s[i] == '\\') {
			fputc('\\', f);
			fputc(s[i++], f);
		} else if (s[i] == '&' && label) {
			fputs("&amp;", f);
			i++;
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			fputs(REPLACEMENT, f);
			i++;
		} else if ((len = dt_utf8_len(&s[i], n - i)) == 0) {
			fputs(REPLACEMENT, f);
			i++;
		} else {
			fwrite(&s[i], 1, len, f);
			i += len;
		}
	}
}

/* The graph's label: the task, its flow and the verdict (one DOT string's inside). */
static void dot_title(FILE *f, const struct dt_report *r)
{
	const struct dt_task_info *t = &r->task;
	char flow[DT_TUPLE_STR_MAX];

	dt_tuple_str(&t->spec.tuple, t->spec.flags, flow, sizeof(flow));
	fprintf(f, "task %" PRIu32 " (%s): ", t->id, dt_task_state_name(t->state));
	dot_str(f, flow, sizeof(flow), true);
	if (t->spec.flags & DT_TASK_F_ANYPORT) {
		fputs(", any port", f);
	}
	fputs("\\n", f);
	dot_str(f, r->verdict.sentence, sizeof(r->verdict.sentence), true);
}

static double loss_pct(uint64_t n, uint64_t of)
{
	return of ? 100.0 * (double)n / (double)of : 0.0;
}

/* "10 copies, 10 filtered": the copies that passed a copy place, then how those that ended
 * there ended, in enum dt_copy_end order (see render_graph.h). */
int dt_graph_copy_summary(const struct dt_graph_place *pl, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%" PRIu64 " cop%s", pl->packets,
			 pl->packets == 1 ? "y" : "ies");

	for (uint32_t e = DT_COPY_NONE + 1; e < DT_COPY_MAX; e++) {
		if (pl->ends[e] && n >= 0 && (size_t)n < len) {
			n += snprintf(buf + n, len - (size_t)n, ", %" PRIu64 " %s", pl->ends[e],
				      dt_copy_end_name(e));
		}
	}
	return n;
}

/* A copy's place: grey and dashed, "vx200\ndrop (copies)\nreason R\n3 copies, 3 filtered". */
static void dot_copy_place(FILE *f, const struct dt_graph_place *pl)
{
	char sum[DT_GRAPH_SUMMARY_MAX];

	dt_graph_copy_summary(pl, sum, sizeof(sum));
	dot_str(f, pl->at.ifname, sizeof(pl->at.ifname), true);
	fprintf(f, "\\n%s (copies)", dt_hook_name(pl->at.hook));
	if (pl->at.hook == DT_HOOK_DROP) {
		fputs("\\nreason ", f);
		dot_str(f, pl->reason[0] ? pl->reason : "unnamed", sizeof(pl->reason), true);
	}
	fprintf(f,
		"\\n%s\", color=\"" GREY "\", fontcolor=\"" GREY_TEXT
		"\", style=\"rounded,dashed\"];\n",
		sum);
}

static void dot_place(FILE *f, uint32_t i, const struct dt_graph_place *pl)
{
	fprintf(f, "\t\tp%" PRIu32 " [label=\"", i);
	if (pl->branch == DT_BRANCH_COPY) {
		dot_copy_place(f, pl);
		return;
	}
	if (pl->at.hook == DT_HOOK_DROP) {
		fputs("DROP at ", f);
		dot_str(f, pl->at.ifname, sizeof(pl->at.ifname), true);
		fputs("\\nreason ", f);
		dot_str(f, pl->reason[0] ? pl->reason : "unnamed", sizeof(pl->reason), true);
		fprintf(f, "\\n%" PRIu64 " packets dropped", pl->dropped);
		if (pl->before) {
			fprintf(f, " of %" PRIu64 " (loss %.1f%%)", pl->before,
				loss_pct(pl->dropped, pl->before));
		}
		fputs("\", color=\"" RED "\", fontcolor=\"" RED "\", fillcolor=\"#fde4e4\", "
		      "style=\"rounded,filled,bold\", penwidth=2.5];\n",
		      f);
		return;
	}
	dot_str(f, pl->at.ifname, sizeof(pl->at.ifname), true);
	fprintf(f, "\\n%s\\n%" PRIu64 " packets", dt_hook_name(pl->at.hook), pl->packets);
	if (pl->vanished) {
		fprintf(f,
			"\\n%" PRIu64 " vanished after (loss %.1f%%)\", color=\"" ORANGE
			"\", fontcolor=\"" ORANGE "\", style=\"rounded,bold\", penwidth=2];\n",
			pl->vanished, loss_pct(pl->vanished, pl->packets));
		return;
	}
	fputs("\"];\n", f);
}

/* An edge from a hop's parent to it: requests black, replies dashed blue, the way into a
 * drop red, copies dashed grey whatever their direction. */
static void dot_edge(FILE *f, const struct dt_graph *g, const struct dt_graph_edge *e)
{
	bool copy = e->branch == DT_BRANCH_COPY;
	bool to_drop = !copy && g->places[e->to].at.hook == DT_HOOK_DROP;

	fprintf(f, "\tp%" PRIu32 " -> p%" PRIu32 " [label=\"%s: %" PRIu64 " %s", e->from, e->to,
		dt_direction_name(e->direction), e->packets,
		copy ? (e->packets == 1 ? "copy" : "copies")
		     : (e->packets == 1 ? "packet" : "packets"));
	if (e->stat && e->stat->count) {
		fprintf(f, "\\nmean %.1f \u00b5s, max %.1f \u00b5s", e->stat->mean_ns / 1e3,
			(double)e->stat->max_ns / 1e3);
	}
	fputc('"', f);
	if (copy) {
		fputs(", color=\"" GREY "\", fontcolor=\"" GREY_TEXT "\", style=dashed];\n", f);
		return;
	}
	if (to_drop) {
		fputs(", color=\"" RED "\", fontcolor=\"" RED "\", penwidth=2", f);
	} else if (e->direction == DT_DIR_REPLY) {
		fputs(", color=\"" BLUE "\", fontcolor=\"" BLUE "\"", f);
	}
	if (e->direction == DT_DIR_REPLY) {
		fputs(", style=dashed", f);
	}
	fputs("];\n", f);
}

int dt_render_report_dot(FILE *f, const struct dt_report *r)
{
	struct dt_graph g;
	uint32_t h, i;

	if (dt_graph_build(r, &g) != 0) {
		return -ENOMEM;
	}
	fputs("digraph dyetrace {\n"
	      "\tgraph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", fontsize=12, label=\"",
	      f);
	dot_title(f, r);
	if (g.n_copy_places) {
		fputs("\\ngrey, dashed: copies for other hosts (not in the verdict)", f);
	}
	if (g.truncated) {
		fprintf(f, "\\n(more than %d places or %d hop pairs: the rest is left out)",
			DT_GRAPH_MAX_PLACES, DT_GRAPH_MAX_EDGES);
	}
	fputs("\"];\n"
	      "\tnode [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n"
	      "\tedge [fontname=\"Helvetica\", fontsize=9];\n",
	      f);
	if (r->n_packets == 0) {
		fputs("\tnone [label=\"no packets traced yet\", shape=plaintext];\n", f);
	}
	for (h = 0; h < g.n_hosts; h++) {
		fputs("\tsubgraph \"cluster_", f);
		dot_str(f, g.hosts[h], DT_NAME_MAX, false);
		fputs("\" {\n\t\tlabel=\"", f);
		dot_str(f, g.hosts[h], DT_NAME_MAX, true);
		fputs("\";\n\t\tstyle=\"rounded,filled\";\n\t\tfillcolor=\"#f4f6f8\";\n"
		      "\t\tcolor=\"#8a939c\";\n",
		      f);
		for (i = 0; i < g.n_places; i++) {
			if (g.places[i].host == h) {
				dot_place(f, i, &g.places[i]);
			}
		}
		fputs("\t}\n", f);
	}
	for (i = 0; i < g.n_edges; i++) {
		dot_edge(f, &g, &g.edges[i]);
	}
	fputs("}\n", f);
	dt_graph_free(&g);
	return ferror(f) ? -EIO : 0;
}

/* ------------------------------------------------------------------------------------ */
/* SVG through dot */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		return -errno;
	}
	return 0;
}

/* Feeds dot (in: its stdin, closed here) and collects what it writes (out). Returns 0 or
 * a negative errno; *buf and *len hold what was read either way. */
static int pump(int in, int out, const char *dot, size_t dot_len, char **buf, size_t *len)
{
	size_t off = 0, cap = 0;
	int err = 0;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = out, .events = POLLIN},
					{.fd = in, .events = POLLOUT}};
		int n = poll(pfd, in >= 0 ? 2 : 1, DT_DOT_TIMEOUT_MS);
		ssize_t k;

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			err = n == 0 ? -ETIMEDOUT : -errno;
			break;
		}
		if (in >= 0 && pfd[1].revents) {
			k = send(in, dot + off, dot_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k > 0) {
				off += (size_t)k;
			}
			/* Done, or dot stopped reading (it says why on stderr and exits). */
			if (off == dot_len || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				close(in);
				in = -1;
			}
		}
		if (!pfd[0].revents) {
			continue;
		}
		if (*len + 4096 + 1 > cap) {
			size_t want = cap ? cap * 2 : 65536;
			char *p;

			if (want > DT_SVG_MAX + 1) {
				err = -EFBIG;
				break;
			}
			if (!(p = realloc(*buf, want))) {
				err = -ENOMEM;
				break;
			}
			*buf = p;
			cap = want;
		}
		k = read(out, *buf + *len, cap - *len - 1);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			err = -errno;
			break;
		}
		if (k == 0) {
			break; /* dot closed its stdout: it is done */
		}
		if (k > 0) {
			*len += (size_t)k;
			(*buf)[*len] = '\0';
		}
	}
	if (in >= 0) {
		close(in);
	}
	return err;
}

int dt_dot_to_svg(const char *dot, size_t len, char **svg, size_t *svg_len)
{
	static char arg0[] = "dot", arg1[] = "-Tsvg";
	char *const argv[] = {arg0, arg1, NULL};
	posix_spawn_file_actions_t fa;
	int in[2], out[2], err, status;
	char *buf = NULL;
	size_t n = 0;
	pid_t pid;

	*svg = NULL;
	*svg_len = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
		return -errno;
	}
	if (pipe2(out, O_CLOEXEC) != 0) {
		err = -errno;
		close(in[0]);
		close(in[1]);
		return err;
	}
	/* The child's copies (dup2 clears close-on-exec on them); ours close at its exec. */
	if ((err = posix_spawn_file_actions_init(&fa)) == 0) {
		if ((err = posix_spawn_file_actions_adddup2(&fa, in[1], STDIN_FILENO)) == 0 &&
		    (err = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO)) == 0) {
			err = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	close(in[1]);
	close(out[1]);
	if (err != 0) {
		close(in[0]);
		close(out[0]);
		return -err;
	}
	if ((err = set_nonblock(in[0])) == 0) {
		err = pump(in[0], out[0], dot, len, &buf, &n);
	} else {
		close(in[0]);
	}
	close(out[0]);
	if (err != 0) {
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			err = err ? err : -errno;
			break;
		}
	}
	if (err == 0 &&
	    (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !buf || !strstr(buf, "<svg"))) {
		err = -EPROTO;
	}
	if (err != 0) {
		free(buf);
		return err;
	}
	*svg = buf;
	*svg_len = n;
	return 0;
}

int dt_render_report_svg_mem(const struct dt_report *r, char **svg, size_t *svg_len)
{
	char *dot = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	*svg = NULL;
	*svg_len = 0;
	if (!(f = open_memstream(&dot, &len))) {
		return -errno;
	}
	err = dt_render_report_dot(f, r);
	if (fclose(f) != 0 && err == 0) {
		err = -EIO;
	}
	if (err == 0) {
		err = dt_dot_to_svg(dot, len, svg, svg_len);
	}
	free(dot);
	return err;
}
