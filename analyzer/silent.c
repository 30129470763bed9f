// SPDX-License-Identifier: MIT
/*
 * silent.c - the nodes the analyzer stopped hearing (silent.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dt_ingest.h"
#include "dt_log.h"
#include "silent.h"

static int cmp_name(const void *a, const void *b)
{
	return strncmp(*(const char *const *)a, *(const char *const *)b, DT_NAME_MAX);
}

/* The names of v[0..n), sorted for in_names(); NULL with n 0 or without memory. */
static const char **sorted_names(const struct dt_node_state *v, uint32_t n)
{
	const char **names = n ? malloc(n * sizeof(*names)) : NULL;

	for (uint32_t i = 0; names && i < n; i++) {
		names[i] = v[i].node;
	}
	if (names) {
		qsort(names, n, sizeof(*names), cmp_name);
	}
	return names;
}

static bool in_names(const char **names, uint32_t n, const char *node)
{
	return names && bsearch(&node, names, n, sizeof(*names), cmp_name) != NULL;
}

static long silent_index(const struct dt_silent *s, const char *node)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (strncmp(s->nodes[i].node, node, sizeof(s->nodes[i].node)) == 0) {
			return i;
		}
	}
	return -1;
}

/* Whether the update changes anything: a node fell silent, was heard again or expired. */
static bool changes(const struct dt_silent *s, const struct dt_node_state *prev, uint32_t n_prev,
		    const char **cur, uint32_t n_cur, uint64_t now_ms)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (in_names(cur, n_cur, s->nodes[i].node) ||
		    now_ms - s->heard_ms[i] > DT_SILENT_KEEP_MS) {
			return true;
		}
	}
	for (uint32_t i = 0; i < n_prev; i++) {
		if (!in_names(cur, n_cur, prev[i].node) && silent_index(s, prev[i].node) < 0) {
			return true;
		}
	}
	return false;
}

/* The arrays of a dt_silent of cap nodes; 0 or -ENOMEM (then nothing is held). */
static int alloc_arrays(struct dt_silent *s, uint32_t cap)
{
	s->nodes = calloc(cap ? cap : 1, sizeof(*s->nodes));
	s->heard_ns = calloc(cap ? cap : 1, sizeof(*s->heard_ns));
	s->heard_ms = calloc(cap ? cap : 1, sizeof(*s->heard_ms));
	s->cap = cap;
	if (!s->nodes || !s->heard_ns || !s->heard_ms) {
		free(s->nodes);
		free(s->heard_ns);
		free(s->heard_ms);
		return -ENOMEM;
	}
	return 0;
}

/* Into next: the silent nodes of s still silent (shallow copies: s owns their parts). */
static void keep_silent(struct dt_silent *next, const struct dt_silent *s, const char **cur,
			uint32_t n_cur, uint64_t now_ms, bool *kept)
{
	for (uint32_t i = 0; i < s->n; i++) {
		kept[i] = !in_names(cur, n_cur, s->nodes[i].node) &&
			  now_ms - s->heard_ms[i] <= DT_SILENT_KEEP_MS;
		if (kept[i]) {
			next->nodes[next->n] = s->nodes[i];
			next->heard_ns[next->n] = s->heard_ns[i];
			next->heard_ms[next->n++] = s->heard_ms[i];
		}
	}
}

/* Into next: deep copies of the nodes of prev that cur lacks and s does not hold yet. */
static int add_fallen(struct dt_silent *next, const struct dt_silent *s,
		      const struct dt_node_state *prev, uint32_t n_prev, const char **cur,
		      uint32_t n_cur, uint64_t then_ns, uint64_t then_ms)
{
	for (uint32_t i = 0; i < n_prev; i++) {
		if (in_names(cur, n_cur, prev[i].node) || silent_index(s, prev[i].node) >= 0) {
			continue;
		}
		if (next->n == DT_SILENT_MAX) {
			dt_warn("DT-ANA-SILENT",
				"node %.*s is no longer heard of, but %u silent "
				"nodes are remembered already: it is not",
				DT_NAME_MAX, prev[i].node, DT_SILENT_MAX);
			continue;
		}
		if (dt_node_state_copy(&next->nodes[next->n], &prev[i]) != 0) {
			return -ENOMEM;
		}
		next->heard_ns[next->n] = then_ns;
		next->heard_ms[next->n++] = then_ms;
	}
	return 0;
}

/* Says what changed, once each. */
static void log_changes(const struct dt_silent *s, const bool *kept, const struct dt_silent *next,
			uint32_t first_new, const char **cur, uint32_t n_cur)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (kept[i]) {
			continue;
		}
		dt_info("DT-ANA-SILENT", "node %.*s %s", DT_NAME_MAX, s->nodes[i].node,
			in_names(cur, n_cur, s->nodes[i].node)
				? "is heard again"
				: "has not been heard of for an hour: forgotten");
	}
	for (uint32_t i = first_new; i < next->n; i++) {
		dt_warn("DT-ANA-SILENT",
			"node %.*s is no longer heard of (no collector relays its state): until "
			"it is, packets on their way into it are unobserved there, not lost",
			DT_NAME_MAX, next->nodes[i].node);
	}
}

int dt_silent_update(struct dt_silent *s, const struct dt_node_state *prev, uint32_t n_prev,
		     uint64_t then_ns, uint64_t then_ms, const struct dt_node_state *cur,
		     uint32_t n_cur, uint64_t now_ms)
{
	const char **names = sorted_names(cur, n_cur);
	struct dt_silent next = {0};
	bool *kept = NULL;
	uint32_t first_new;
	int rv = -ENOMEM;

	if (n_cur && !names) {
		return -ENOMEM;
	}
	if (!changes(s, prev, n_prev, names, n_cur, now_ms)) {
		free(names);
		return 0;
	}
	if (!(kept = calloc(s->n ? s->n : 1, sizeof(*kept))) ||
	    alloc_arrays(&next, s->n + n_prev) != 0) {
		goto out;
	}
	keep_silent(&next, s, names, n_cur, now_ms, kept);
	first_new = next.n;
	if (add_fallen(&next, s, prev, n_prev, names, n_cur, then_ns, then_ms) != 0 ||
	    dt_hosts_build(&next.hosts, next.nodes, next.n) != 0) {
		for (uint32_t i = first_new; i < next.n; i++) {
			dt_node_state_free(&next.nodes[i]); /* the kept ones are s's */
		}
		free(next.nodes);
		free(next.heard_ns);
		free(next.heard_ms);
		goto out;
	}
	log_changes(s, kept, &next, first_new, names, n_cur);
	for (uint32_t i = 0; i < s->n; i++) {
		if (!kept[i]) {
			dt_node_state_free(&s->nodes[i]);
		}
	}
	free(s->nodes);
	free(s->heard_ns);
	free(s->heard_ms);
	dt_hosts_free(&s->hosts);
	s->nodes = next.nodes;
	s->heard_ns = next.heard_ns;
	s->heard_ms = next.heard_ms;
	s->n = next.n;
	s->cap = next.cap;
	s->hosts = next.hosts;
	rv = 0;
out:
	free(kept);
	free(names);
	return rv;
}

const char *dt_silent_host(const struct dt_silent *s, uint32_t vni, uint32_t addr)
{
	return s->n ? dt_hosts_node(&s->hosts, vni, addr) : NULL;
}

const struct dt_gap *dt_silent_gaps(struct dt_silent *s, const char *node, uint64_t now_ns,
				    uint32_t *n)
{
	long i = silent_index(s, node);
	const struct dt_node_state *ns;
	uint64_t from;

	*n = 0;
	if (i < 0) {
		return NULL;
	}
	ns = &s->nodes[i];
	from = s->heard_ns[i] > s->lookback_ns ? s->heard_ns[i] - s->lookback_ns : 0;
	memcpy(s->gaps, ns->gaps, ns->n_gaps * sizeof(ns->gaps[0]));
	s->gaps[ns->n_gaps] = (struct dt_gap){
		.from_ns = from,
		.to_ns = now_ns > from ? now_ns : from + 1,
		.cause = DT_GAP_SILENT,
		.flags = DT_GAP_F_LOST_UNKNOWN,
	};
	*n = ns->n_gaps + 1;
	return s->gaps;
}

void dt_silent_free(struct dt_silent *s)
{
	uint64_t lookback_ns = s->lookback_ns;

	dt_node_states_free(s->nodes, s->n);
	free(s->heard_ns);
	free(s->heard_ms);
	dt_hosts_free(&s->hosts);
	memset(s, 0, sizeof(*s));
	s->lookback_ns = lookback_ns;
}
