/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <net/if.h>
#include <stdio.h>

#include "agent.h"
#include "dataplane.h"
#include "dropnames.h"
#include "ksyms.h"
#include "ledger.h"
#include "dt_config.h"
#include "dt_daemon.h"
#include "dt_link.h"
#include "dt_log.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_sample.h"
#include "dt_spool.h"
#include "dt_time.h"

_Static_assert(DT_AGENT_MAX_IFACES <= DT_DATAPLANE_MAX_IFACES,
	       "the data plane takes every interface");

/* The agent's state shared by the ring-draining main thread and the link thread. */
struct agent {
	const struct dt_agent_cfg *cfg;
	struct dt_dataplane *dp;
	struct dt_link *link;
	pthread_mutex_t mu;	    /* guards lost[] and the data plane's task map */
	uint64_t lost[DT_LOSS_MAX]; /* cumulative over the node's agents, as counted now */
	struct dt_ledger led;	    /* the ledger being kept (main thread; ledger.h) */
	struct dt_ledger committed; /* ... as last committed, what is shipped (under mu) */
	bool ledger_open;	    /* led is in the spool, and its end not yet */
	uint64_t poll_start_ns;	    /* wall clock at the start of the last completed poll */
	uint64_t gaps_found[DT_GAP_CAUSE_MAX]; /* gaps this agent found at its start */
	struct dt_batch batch;		       /* being filled by the main thread */
	uint64_t batch_started_ms;
	uint64_t mono_to_real_ns;		     /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	unsigned batch_ifindex[DT_BATCH_MAX_IFACES]; /* ifindex of each batch interface */
	struct dt_dropnames *dropnames;
	struct dt_spool *spool;
	uint64_t applied_gen;	/* control generation applied to the data plane (under mu) */
	struct dt_ksyms *ksyms; /* loaded at the first drop */
	bool ksyms_tried;
	uint64_t samples_read;		    /* records drained from the ring buffer (under mu) */
	struct dt_metrics_hist batch_sizes; /* samples per batch closed (under mu) */
	struct dt_metrics *metrics;
};

/*
 * The batch's index of an interface. The configured interfaces come first in every
 * batch; a drop elsewhere in the namespace adds the interface by name ("?" for none).
 */
static int iface_slot(struct agent *a, unsigned ifindex)
{
	struct dt_batch *b = &a->batch;
	char name[IF_NAMESIZE];
	unsigned i;

	for (i = 0; i < b->n_ifaces; i++)
		if (a->batch_ifindex[i] == ifindex)
			return (int)i;
	if (b->n_ifaces == DT_BATCH_MAX_IFACES)
		return -1;
	if (!ifindex || !if_indextoname(ifindex, name))
		snprintf(name, sizeof(name), "?");
	snprintf(b->ifaces[b->n_ifaces], DT_IFNAME_MAX, "%s", name);
	a->batch_ifindex[b->n_ifaces] = ifindex;
	return (int)b->n_ifaces++;
}

/*
 * What a port-out sample's port says of its destination daddr: DT_SAMPLE_F_HOSTED when the
 * port lists it among its instances (the packet reached its destination), DT_SAMPLE_F_STRANGER
 * when the port lists instances and daddr is none of them (a copy the bridge flooded), 0
 * when the port lists none.
 */
static uint8_t port_knows(const struct agent *a, unsigned ifindex, uint32_t daddr)
{
	for (unsigned i = 0; i < a->cfg->n_ifaces; i++) {
		const struct dt_agent_iface *p = &a->cfg->ifaces[i];

		/* The configured interfaces come first in the batch, with their indices. */
		if (a->batch_ifindex[i] != ifindex || p->role != DT_ROLE_PORT ||
		    p->n_instances == 0)
			continue;
		for (unsigned k = 0; k < p->n_instances; k++)
			if (p->instances[k] == daddr)
				return DT_SAMPLE_F_HOSTED;
		return DT_SAMPLE_F_STRANGER;
	}
	return 0;
}

/* The batch's index of a string, added when new; DT_STR_NONE when the table is full. */
static uint16_t string_slot(struct agent *a, const char *s)
{
	struct dt_batch *b = &a->batch;
	uint32_t i;

	for (i = 0; i < b->n_strings; i++)
		if (strcmp(b->strings[i], s) == 0)
			return (uint16_t)i;
	if (b->n_strings == DT_BATCH_MAX_STRINGS)
		return DT_STR_NONE;
	snprintf(b->strings[b->n_strings], DT_STR_MAX, "%s", s);
	return (uint16_t)b->n_strings++;
}

/* Names a drop: its reason from the kernel's BTF, its location from kallsyms. */
static void name_drop(struct agent *a, const struct dt_sample *s, struct dt_wire_sample *w)
{
	char buf[DT_STR_MAX];

	if (!a->ksyms_tried) {
		int rv = dt_ksyms_load(NULL, &a->ksyms);

		a->ksyms_tried = true;
		if (rv)
			dt_warn("DT-AGENT-KSYMS",
				"cannot read /proc/kallsyms (%s): drop locations "
				"are shown as addresses",
				strerror(-rv));
	}
	w->drop_name = string_slot(a, dt_dropname(a->dropnames, s->drop_reason, buf, sizeof(buf)));
	w->drop_where = string_slot(a, dt_ksym(a->ksyms, s->drop_location, buf, sizeof(buf)));
}

/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC, which turns the data plane's timestamps into wall clock.
 * The two clocks cannot be read at once: a read preempted between them (a busy host, a VM
 * exit) would shift every sample of the next batch by microseconds, so that two agents of
 * one kernel disagree and a packet seems to arrive before it left (a negative hop latency
 * between nodes). The wall clock is read between two monotonic reads, a few times, and
 * the pair bracketed most tightly is kept, against the middle of its bracket.
 */
static void refresh_clock(struct agent *a)
{
	uint64_t best = UINT64_MAX, m1, r, m2;

	for (int i = 0; i < 5; i++) {
		m1 = dt_clock_ns(CLOCK_MONOTONIC);
		r = dt_clock_ns(CLOCK_REALTIME);
		m2 = dt_clock_ns(CLOCK_MONOTONIC);
		if (m2 - m1 < best) {
			best = m2 - m1;
			a->mono_to_real_ns = r - (m1 + (m2 - m1) / 2);
		}
	}
}

/*
 * The counters the agent does not count itself, into lost[]: ring-full (the data plane's,
 * on top of earlier data planes'), rejected (the link's, on top of earlier agents'), and
 * spool-full (the spool's, over its life). Main thread.
 */
static void refresh_lost(struct agent *a)
{
	uint64_t cnt[DT_CNT_MAX];
	struct dt_link_stats ls;

	dt_dataplane_counters(a->dp, cnt);
	memset(&ls, 0, sizeof(ls));
	if (a->link) /* not yet when the ledger starts */
		dt_link_stats(a->link, &ls);
	pthread_mutex_lock(&a->mu);
	a->lost[DT_LOSS_RING_FULL] = a->led.ring_full_base + cnt[DT_CNT_RING_FULL];
	a->lost[DT_LOSS_REJECTED] = a->led.rejected_base + ls.rejected_samples;
	a->lost[DT_LOSS_SPOOL_FULL] = dt_spool_evicted(a->spool);
	pthread_mutex_unlock(&a->mu);
}

/* Samples' timestamps are taken a little before their record is reserved, on any CPU. */
#define DT_LEDGER_SKEW_NS 1000000ull

/*
 * The ledger's observed_ns: a record drained after this moment was still in the ring at
 * the start of the last completed poll (which drained all it found), so its sample dates
 * from about then or later; a sample in the batch (unless spooled with this ledger) dates
 * from its own timestamp.
 */
static uint64_t observed_mark(const struct agent *a, bool batch_spooled)
{
	uint64_t mark = a->poll_start_ns;

	if (!batch_spooled && a->batch.n_samples && a->batch.samples[0].ts_ns < mark)
		mark = a->batch.samples[0].ts_ns;
	return mark > DT_LEDGER_SKEW_NS ? mark - DT_LEDGER_SKEW_NS : 0;
}

/* The ledger as of now (led.accounted is kept as records are drained). Main thread. */
static void ledger_compose(struct agent *a, bool batch_spooled)
{
	refresh_lost(a);
	pthread_mutex_lock(&a->mu);
	memcpy(a->led.lost, a->lost, sizeof(a->lost));
	pthread_mutex_unlock(&a->mu);
	a->led.observed_ns = observed_mark(a, batch_spooled);
}

/* The ledger is in the spool: heartbeats may ship its counters and gaps now. */
static void ledger_committed(struct agent *a)
{
	pthread_mutex_lock(&a->mu);
	a->committed = a->led;
	pthread_mutex_unlock(&a->mu);
}

/* Commits the ledger alone (no batch to spool it with). Main thread. */
static void ledger_commit(struct agent *a)
{
	ledger_compose(a, false);
	if (dt_spool_note_put(a->spool, &a->led, sizeof(a->led)) == 0)
		ledger_committed(a);
}

/*
 * Spools the batch with the ledger that accounts for its samples, in one transaction: a
 * SIGKILL leaves either both or neither. A batch that cannot be queued is counted lost
 * (queue-full), and accounted in a ledger of its own.
 */
static void flush(struct agent *a)
{
	uint32_t n = a->batch.n_samples;
	int rv;

	if (n == 0)
		return;
	a->led.accounted += n;
	ledger_compose(a, true);
	memcpy(a->batch.lost, a->led.lost, sizeof(a->led.lost));
	pthread_mutex_lock(&a->mu);
	dt_metrics_hist_observe(&a->batch_sizes, n);
	pthread_mutex_unlock(&a->mu);
	rv = dt_link_send_noted(a->link, &a->batch, &a->led, sizeof(a->led));
	if (rv) {
		pthread_mutex_lock(&a->mu);
		a->lost[DT_LOSS_QUEUE_FULL] += n;
		pthread_mutex_unlock(&a->mu);
		dt_debug("DT-AGENT-QUEUE-FULL", "dropped a batch of %u samples: %s", n,
			 strerror(-rv));
	} else {
		ledger_committed(a);
	}
	/* A failed send, or older batches the spool evicted for this one: the counters say so
	 * now, for the heartbeats and the stats, not only with the next batch. */
	if (rv || dt_spool_evicted(a->spool) != a->led.lost[DT_LOSS_SPOOL_FULL])
		ledger_commit(a);
	a->batch.n_samples = 0;
	a->batch.n_strings = 0;
	a->batch.n_ifaces = a->cfg->n_ifaces;
	refresh_clock(a);
}

/*
 * The one conversion from the kernel's record (bpf/dt_sample.h) to the wire sample
 * (proto/dt_link_msg.h): clock turned into wall-clock time, the interface into its slot in
 * the batch, drop reasons and locations named, the port-out flags the agent adds.
 */
static void wire_from_sample(struct agent *a, const struct dt_sample *s, int slot,
			     struct dt_wire_sample *w)
{
	w->hook = s->hook;
	w->flags = s->flags;
	if (s->hook == DT_HOOK_PORT_OUT)
		w->flags |= port_knows(a, s->ifindex, s->tuple.daddr);
	w->iface = (uint16_t)slot;
	w->ts_ns = s->ts_ns + a->mono_to_real_ns;
	w->tuple = s->tuple;
	w->task_id = s->task_id;
	w->ip_id = s->ip_id;
	w->frag = s->frag;
	w->ident = s->ident;
	w->len = s->len;
	w->outer_saddr = s->outer_saddr;
	w->outer_daddr = s->outer_daddr;
	w->orig = s->orig;
	w->drop_reason = s->drop_reason;
	w->drop_name = DT_STR_NONE;
	w->drop_where = DT_STR_NONE;
	/* The programs write only valid prefixes; a bad one would make the batch unencodable. */
	if (s->cap_len > 0 && s->cap_len <= DT_CAP_MAX &&
	    (s->cap_link == DT_CAP_ETH || s->cap_link == DT_CAP_IPV4)) {
		w->cap_link = s->cap_link;
		w->cap_len = s->cap_len;
		memcpy(w->cap, s->cap, w->cap_len);
	} else {
		w->cap_link = DT_CAP_NONE;
		w->cap_len = 0;
	}
	if (s->hook == DT_HOOK_DROP)
		name_drop(a, s, w);
}

static void on_sample(void *arg, const struct dt_sample *s)
{
	struct agent *a = arg;
	struct dt_wire_sample *w;
	int slot;

	if (s->version != DT_SAMPLE_VERSION || (slot = iface_slot(a, s->ifindex)) < 0) {
		pthread_mutex_lock(&a->mu);
		a->lost[DT_LOSS_BAD_VERSION]++;
		pthread_mutex_unlock(&a->mu);
		a->led.accounted++; /* drained, and counted lost */
		return;
	}
	if (a->batch.n_samples == 0)
		a->batch_started_ms = dt_mono_ms();
	w = &a->batch.samples[a->batch.n_samples++];
	wire_from_sample(a, s, slot, w);
	if (a->batch.n_samples >= a->cfg->batch_max_samples)
		flush(a);
}

static uint64_t on_control(void *arg, const struct dt_control *c)
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->mu);
	dt_dataplane_apply(a->dp, c);
	a->applied_gen = c->gen;
	pthread_mutex_unlock(&a->mu);
	return c->gen;
}

/*
 * The task map's share of the node state (under a->mu, with the generation it belongs
 * to): its size, the keys armed, and the arms the data plane could not arm, so that the
 * analyzer fails their tasks instead of calling them armed, and refuses tasks that would
 * not fit. Returns 0 or -ENOMEM.
 */
static int node_task_map(struct agent *a, struct dt_node_state *ns)
{
	const struct dt_arm_fail *fails = dt_dataplane_arm_fails(a->dp, &ns->n_arm_fails);

	ns->task_map_max = dt_dataplane_task_map_max(a->dp);
	ns->task_map_used = dt_dataplane_armed(a->dp);
	if (!ns->n_arm_fails)
		return 0;
	if (ns->n_arm_fails > DT_NODE_MAX_ARM_FAILS)
		ns->n_arm_fails = DT_NODE_MAX_ARM_FAILS;
	if (!(ns->arm_fails = calloc(ns->n_arm_fails, sizeof(*ns->arm_fails)))) {
		ns->n_arm_fails = 0;
		return -ENOMEM;
	}
	memcpy(ns->arm_fails, fails, ns->n_arm_fails * sizeof(*fails));
	return 0;
}

/* The node's windows without observation, as committed to the spool (under a->mu). */
static void node_gaps(const struct agent *a, struct dt_node_state *ns)
{
	ns->n_gaps = a->committed.n_gaps;
	memcpy(ns->gaps, a->committed.gaps, ns->n_gaps * sizeof(ns->gaps[0]));
}

/*
 * The data plane's colored count of each armed key with a budget or a rate (under a->mu),
 * by which the analyzer decides DONE. Without memory the node state goes without them: the
 * analyzer then counts the samples that arrived, as before.
 */
static void node_colored(struct agent *a, struct dt_node_state *ns)
{
	if (dt_dataplane_colored(a->dp, &ns->colored, &ns->n_colored))
		dt_warn("DT-AGENT-NOMEM", "no memory for the colored counts of the node state");
}

/*
 * Our node state for the analyzer: the generation applied, and what this node hosts
 * (each port's instances in its VNI; a gateway's outside, address 0, for its VNI), so
 * that a task is armed once the node hosting its entry has applied it, with the task
 * map's size and failures (node_task_map()).
 */
static void heartbeat_nodes(void *arg, struct dt_batch *hb)
{
	struct agent *a = arg;
	const struct dt_agent_cfg *cfg = a->cfg;
	struct dt_node_state *ns = calloc(1, sizeof(*ns));
	uint32_t n = 0;
	int rv;

	if (!ns)
		return;
	for (unsigned i = 0; i < cfg->n_ifaces; i++)
		n += cfg->ifaces[i].role == DT_ROLE_PORT ? cfg->ifaces[i].n_instances
							 : cfg->ifaces[i].role == DT_ROLE_GATEWAY;
	if (n && !(ns->endpoints = calloc(n, sizeof(*ns->endpoints)))) {
		free(ns);
		return;
	}
	for (unsigned i = 0; i < cfg->n_ifaces; i++) {
		const struct dt_agent_iface *ifc = &cfg->ifaces[i];

		if (ifc->role == DT_ROLE_GATEWAY)
			ns->endpoints[ns->n_endpoints++] = (struct dt_endpoint){.vni = ifc->vni};
		for (unsigned j = 0; ifc->role == DT_ROLE_PORT && j < ifc->n_instances; j++)
			ns->endpoints[ns->n_endpoints++] =
				(struct dt_endpoint){.vni = ifc->vni, .addr = ifc->instances[j]};
	}
	snprintf(ns->node, sizeof(ns->node), "%s", cfg->node);
	pthread_mutex_lock(&a->mu);
	ns->ctl_gen = a->applied_gen;
	rv = node_task_map(a, ns);
	node_gaps(a, ns);
	node_colored(a, ns);
	pthread_mutex_unlock(&a->mu);
	if (rv) {
		/* Without its failures the state would claim keys armed that are not. */
		dt_node_state_free(ns);
		free(ns);
		return;
	}
	hb->nodes = ns;
	hb->n_nodes = 1;
}

/* The counters as committed to the spool: never more than the next agent would report. */
static void heartbeat_lost(void *arg, uint64_t lost[DT_LOSS_MAX])
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->mu);
	memcpy(lost, a->committed.lost, sizeof(a->committed.lost));
	pthread_mutex_unlock(&a->mu);
}

/* Drains the ring buffer (waiting at most timeout_ms) and counts the records read. */
static int poll_ring(struct agent *a, int timeout_ms)
{
	uint64_t start = dt_clock_ns(CLOCK_REALTIME);
	int rv = dt_dataplane_poll(a->dp, timeout_ms);

	a->poll_start_ns = start;
	if (rv > 0) {
		pthread_mutex_lock(&a->mu);
		a->samples_read += (uint64_t)rv;
		pthread_mutex_unlock(&a->mu);
	}
	return rv;
}

/* The counters of log_stats() and of the metrics page, read the same way. */
struct agent_stats {
	uint64_t cnt[DT_CNT_MAX];
	uint64_t lost[DT_LOSS_MAX]; /* as shipped in the last batch or heartbeat */
	struct dt_link_stats ls;
	uint64_t samples_read;
	uint64_t drained; /* by every agent of this data plane (drained.h) */
	uint64_t gaps_found[DT_GAP_CAUSE_MAX];
	uint64_t applied_gen;
	unsigned armed;
	uint32_t task_map_max;
	struct dt_metrics_hist batch_sizes;
};

static void agent_stats(struct agent *a, struct agent_stats *st)
{
	uint64_t id;

	dt_dataplane_counters(a->dp, st->cnt);
	dt_link_stats(a->link, &st->ls);
	st->drained = dt_dataplane_drained(a->dp, &id);
	pthread_mutex_lock(&a->mu);
	memcpy(st->lost, a->committed.lost, sizeof(a->committed.lost));
	memcpy(st->gaps_found, a->gaps_found, sizeof(a->gaps_found));
	st->samples_read = a->samples_read;
	st->applied_gen = a->applied_gen;
	st->armed = dt_dataplane_armed(a->dp);
	st->task_map_max = dt_dataplane_task_map_max(a->dp);
	st->batch_sizes = a->batch_sizes;
	pthread_mutex_unlock(&a->mu);
}

static void log_stats(struct agent *a, const char *id)
{
	struct agent_stats st;
	const uint64_t *cnt = st.cnt, *lost = st.lost;

	agent_stats(a, &st);
	dt_info(id,
		"colored=%llu sampled=%llu uncolored=%llu foreign_color=%llu drops=%llu "
		"drops_other_netns=%llu nat_no_conntrack=%llu write_fail=%llu batches_sent=%llu "
		"samples_sent=%llu resends=%llu bad_replies=%llu controls_refused=%llu queued=%llu lost_ring_full=%llu "
		"lost_queue_full=%llu lost_bad_record=%llu lost_rejected=%llu lost_spool_full=%llu "
		"lost_agent_crash=%llu drained=%llu spooled=%llu armed=%u samples_read=%llu batches_built=%llu budget_spent=%llu "
		"rate_limited=%llu frag_colored=%llu frag_orphan=%llu recolored=%llu",
		(unsigned long long)cnt[DT_CNT_COLORED], (unsigned long long)cnt[DT_CNT_SAMPLED],
		(unsigned long long)cnt[DT_CNT_UNCOLORED],
		(unsigned long long)cnt[DT_CNT_FOREIGN_COLOR],
		(unsigned long long)cnt[DT_CNT_DROPS],
		(unsigned long long)cnt[DT_CNT_DROP_OTHER_NS],
		(unsigned long long)cnt[DT_CNT_NAT_NO_CT],
		(unsigned long long)cnt[DT_CNT_WRITE_FAIL], (unsigned long long)st.ls.batches_sent,
		(unsigned long long)st.ls.samples_sent, (unsigned long long)st.ls.resends,
		(unsigned long long)st.ls.bad_replies,
		(unsigned long long)dt_link_controls_refused(&st.ls),
		(unsigned long long)st.ls.queue_depth, (unsigned long long)lost[DT_LOSS_RING_FULL],
		(unsigned long long)lost[DT_LOSS_QUEUE_FULL],
		(unsigned long long)lost[DT_LOSS_BAD_VERSION],
		(unsigned long long)lost[DT_LOSS_REJECTED],
		(unsigned long long)lost[DT_LOSS_SPOOL_FULL],
		(unsigned long long)lost[DT_LOSS_AGENT_CRASH], (unsigned long long)st.drained,
		(unsigned long long)st.ls.spooled, st.armed, (unsigned long long)st.samples_read,
		(unsigned long long)st.batch_sizes.count,
		(unsigned long long)cnt[DT_CNT_BUDGET_SPENT],
		(unsigned long long)cnt[DT_CNT_RATE_LIMITED],
		(unsigned long long)cnt[DT_CNT_FRAG_COLORED],
		(unsigned long long)cnt[DT_CNT_FRAG_ORPHAN],
		(unsigned long long)cnt[DT_CNT_RECOLORED]);
}

/*
 * The metrics page (dt_metrics.h), on an nng thread: the numbers of log_stats(), read the
 * same way (agent_stats(): a->mu, the link's lock, the per-CPU counters).
 */
static void render_metrics(void *arg, struct dt_metrics_buf *b)
{
	static const struct {
		const char *name, *help;
		enum dt_counter cnt;
	} bpf[] = {
		{"dyetrace_agent_packets_colored_total", "Packets colored at a first hop.",
		 DT_CNT_COLORED},
		{"dyetrace_agent_samples_written_total",
		 "Samples the data plane wrote to the ring buffer.", DT_CNT_SAMPLED},
		{"dyetrace_agent_packets_uncolored_total",
		 "Colored packets whose color was removed at an exit.", DT_CNT_UNCOLORED},
		{"dyetrace_agent_packets_foreign_color_total",
		 "Packets that arrived from an instance already colored (color removed).",
		 DT_CNT_FOREIGN_COLOR},
		{"dyetrace_agent_drops_total",
		 "Colored packets the kernel dropped in this namespace, sampled.", DT_CNT_DROPS},
		{"dyetrace_agent_drops_other_netns_total",
		 "Colored packets dropped in another network namespace (not reported).",
		 DT_CNT_DROP_OTHER_NS},
		{"dyetrace_agent_nat_no_conntrack_total",
		 "Colored packets at a gateway without a conntrack entry.", DT_CNT_NAT_NO_CT},
		{"dyetrace_agent_color_write_failures_total",
		 "Packets whose color could not be written or removed.", DT_CNT_WRITE_FAIL},
		{"dyetrace_agent_fragments_colored_total",
		 "Later fragments colored at a first hop after their datagram's first.",
		 DT_CNT_FRAG_COLORED},
		{"dyetrace_agent_fragments_orphan_total",
		 "Later fragments seen at a port with no traced first fragment (left uncolored).",
		 DT_CNT_FRAG_ORPHAN},
		{"dyetrace_agent_fragments_recolored_total",
		 "Fragments of a traced datagram colored again after the kernel refragmented it.",
		 DT_CNT_RECOLORED},
	};
	struct agent *a = arg;
	struct agent_stats st;
	unsigned ports = 0;

	agent_stats(a, &st);
	for (size_t i = 0; i < sizeof(bpf) / sizeof(bpf[0]); i++)
		dt_metrics_counter(b, bpf[i].name, bpf[i].help, NULL, st.cnt[bpf[i].cnt]);
	dt_metrics_counter(b, "dyetrace_agent_packets_not_colored_total",
			   "Packets of an armed task left uncolored by its limits, by reason.",
			   DT_METRICS_LABELS("reason", "budget-spent"),
			   st.cnt[DT_CNT_BUDGET_SPENT]);
	dt_metrics_counter(b, "dyetrace_agent_packets_not_colored_total", NULL,
			   DT_METRICS_LABELS("reason", "rate-limited"),
			   st.cnt[DT_CNT_RATE_LIMITED]);
	dt_metrics_counter(b, "dyetrace_agent_samples_read_total",
			   "Samples drained from the ring buffer.", NULL, st.samples_read);
	dt_metrics_counter(b, "dyetrace_agent_samples_drained_total",
			   "Ring records drained from this data plane, by every agent that ran it "
			   "(the pinned dt_drained count).",
			   NULL, st.drained);
	for (unsigned c = DT_GAP_STOPPED; c < DT_GAP_SILENT; c++) /* the causes an agent finds */
		dt_metrics_counter(b, "dyetrace_agent_gaps_total",
				   c == DT_GAP_STOPPED ? "Windows without observation this agent "
							 "found at its start, by cause."
						       : NULL,
				   DT_METRICS_LABELS("cause", dt_gap_cause_name(c)),
				   st.gaps_found[c]);
	dt_metrics_counter(b, "dyetrace_agent_samples_sent_total",
			   "Samples in batches the collector acknowledged.", NULL,
			   st.ls.samples_sent);
	dt_metrics_counter(b, "dyetrace_agent_batches_sent_total",
			   "Batches the collector acknowledged.", NULL, st.ls.batches_sent);
	for (unsigned i = 0; i < DT_LOSS_MAX; i++)
		dt_metrics_counter(b, "dyetrace_agent_samples_lost_total",
				   "Samples lost before the collector, by reason, as last shipped "
				   "to it (cumulative).",
				   DT_METRICS_LABELS("reason", dt_loss_name(i)), st.lost[i]);
	dt_link_metrics(b, "dyetrace_agent", "collector", &st.ls);
	dt_metrics_histogram(b, "dyetrace_agent_batch_samples",
			     "Samples per batch the agent closed (sent or lost as queue-full).",
			     NULL, &st.batch_sizes);
	dt_metrics_gauge(b, "dyetrace_agent_spool_batches",
			 "Batches waiting in the spool for the collector.", NULL,
			 (double)st.ls.spooled);
	for (enum dt_attach_mode m = DT_ATTACH_TCX; m <= DT_ATTACH_CLSACT; m++)
		dt_metrics_gauge(b, "dyetrace_agent_attach_mode",
				 m == DT_ATTACH_TCX
					 ? "How the tc programs are attached (1: in use): "
					   "tcx links or clsact filters."
					 : NULL,
				 DT_METRICS_LABELS("mode", dt_attach_mode_name(m)),
				 dt_dataplane_attach_mode(a->dp) == m);
	dt_metrics_gauge(b, "dyetrace_agent_control_generation",
			 "Control set generation applied to the data plane.", NULL,
			 (double)st.applied_gen);
	for (unsigned i = 0; i < a->cfg->n_ifaces; i++)
		ports += a->cfg->ifaces[i].role != DT_ROLE_UPLINK;
	dt_metrics_gauge(b, "dyetrace_agent_bpf_map_entries", "Entries in a BPF map.",
			 DT_METRICS_LABELS("map", "dt_tasks"), st.armed);
	dt_metrics_gauge(b, "dyetrace_agent_bpf_map_entries", NULL,
			 DT_METRICS_LABELS("map", "dt_ports"), ports);
	dt_metrics_gauge(b, "dyetrace_agent_bpf_map_max_entries", "Capacity of a BPF map.",
			 DT_METRICS_LABELS("map", "dt_tasks"), st.task_map_max);
	dt_metrics_gauge(b, "dyetrace_agent_bpf_map_max_entries", NULL,
			 DT_METRICS_LABELS("map", "dt_ports"), DT_MAX_PORTS);
}

/* A wall-clock time for the logs: seconds since the epoch, to the nanosecond. */
#define TS_FMT "%llu.%09llu"
#define TS_ARG(ns)                                                                                 \
	(unsigned long long)((ns) / 1000000000ull), (unsigned long long)((ns) % 1000000000ull)

/* Says once, at start, what window the previous agent's end left on this node. */
static void log_gap(const char *node, const struct dt_gap *g)
{
	double secs = (double)(g->to_ns - g->from_ns) / 1e9;

	if (g->cause == DT_GAP_CRASHED && !(g->flags & DT_GAP_F_LOST_UNKNOWN))
		dt_warn("DT-AGENT-CRASHED",
			"node %s: the previous agent died without stopping; the %llu samples it "
			"had drained and not spooled are counted lost (agent-crash), from " TS_FMT
			" to " TS_FMT " (%.3f s)",
			node, (unsigned long long)g->lost, TS_ARG(g->from_ns), TS_ARG(g->to_ns),
			secs);
	else if (g->cause == DT_GAP_CRASHED)
		dt_warn("DT-AGENT-CRASHED",
			"node %s: the previous agent died without stopping, and its data plane "
			"with it: the node did not observe from " TS_FMT " to " TS_FMT
			" (%.3f s), and how many samples were lost then is not known",
			node, TS_ARG(g->from_ns), TS_ARG(g->to_ns), secs);
	else
		dt_warn("DT-AGENT-GAP",
			"node %s did not observe from " TS_FMT " to " TS_FMT
			" (%.3f s): the previous agent stopped without handing over%s",
			node, TS_ARG(g->from_ns), TS_ARG(g->to_ns), secs,
			g->flags & DT_GAP_F_LOST_UNKNOWN
				? ", and what its data plane held for the next one is lost"
				: "");
}

/*
 * Reads the previous agent's ledger from the spool, counts what it lost and the window its
 * end left, and commits this agent's ledger (running) before anything is drained or sent.
 * attach_ns: when this agent's programs were attached.
 */
static void ledger_start(struct agent *a, uint64_t attach_ns)
{
	unsigned char note[DT_SPOOL_NOTE_MAX];
	size_t len = dt_spool_note(a->spool, note, sizeof(note));
	struct dt_ledger_start st = {.took_over = dt_dataplane_took_over(a->dp),
				     .attach_ns = attach_ns};
	struct dt_ledger prev;
	bool has_prev = len && dt_ledger_decode(note, len, &prev);
	struct dt_gap gap;

	if (len && !has_prev)
		dt_warn("DT-AGENT-LEDGER",
			"the spool's ledger is not one this agent reads: its loss counters and "
			"windows without observation start again");
	st.drained = dt_dataplane_drained(a->dp, &st.dp_id);
	if (dt_ledger_resume(has_prev ? &prev : NULL, &st, &a->led, &gap)) {
		a->gaps_found[gap.cause]++;
		log_gap(a->cfg->node, &gap);
	}
	memcpy(a->lost, a->led.lost, sizeof(a->lost));
	a->poll_start_ns = attach_ns;
	ledger_commit(a);
	a->ledger_open = true;
}

/*
 * The agent stops observing: the ledger says how (handed over, or stopped) and when. A
 * stop detaches the programs first, so that the drain that follows leaves nothing written
 * in the ring: nothing sampled before stopped_ns (taken just before the detach) is lost.
 */
static void ledger_stop(struct agent *a, bool handover)
{
	a->led.stopped_ns = dt_clock_ns(CLOCK_REALTIME);
	if (handover && dt_dataplane_can_hand_over(a->dp)) {
		a->led.end = DT_LEDGER_HANDED_OVER;
	} else {
		a->led.end = DT_LEDGER_STOPPED;
		dt_dataplane_detach(a->dp);
	}
}

/* The data plane's share of the configuration. */
static void dataplane_cfg(const struct dt_agent_cfg *cfg, struct dt_dataplane_cfg *dc)
{
	memset(dc, 0, sizeof(*dc));
	dc->node = cfg->node;
	dc->pin_dir = cfg->pin_dir;
	dc->ring_kib = cfg->ring_kib;
	dc->capture_bytes = cfg->capture_bytes;
	dc->task_map_entries = (uint32_t)cfg->task_map_entries;
	dc->attach = cfg->attach;
	dc->n_ifaces = cfg->n_ifaces;
	for (unsigned i = 0; i < cfg->n_ifaces; i++)
		dc->ifaces[i] = (struct dt_dataplane_iface){
			.name = cfg->ifaces[i].name,
			.role = cfg->ifaces[i].role,
			.vni = cfg->ifaces[i].vni,
		};
}

int dt_agent_run(const struct dt_agent_cfg *cfg_in, volatile int *stop)
{
	struct dt_agent_cfg cfg = *cfg_in;
	struct dt_link_cfg lc = {
		.url = cfg.collector,
		.sender = cfg.node,
		.heartbeat_ms = (unsigned)cfg.heartbeat_ms,
		.timeout_ms = (unsigned)cfg.ack_timeout_ms,
		.queue_max = (unsigned)cfg.queue_max,
	};
	struct dt_link_ops ops = {.on_control = on_control,
				  .heartbeat_lost = heartbeat_lost,
				  .heartbeat_nodes = heartbeat_nodes};
	static const double batch_bounds[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};
	char err[DT_ERRBUF_MAX];
	struct dt_dataplane_cfg dc;
	struct agent a;
	uint64_t last_stats_ms, last_commit_ms, attach_ns;
	unsigned i, left;
	int rv;

	memset(&a, 0, sizeof(a));
	a.cfg = &cfg;
	pthread_mutex_init(&a.mu, NULL);
	dt_metrics_hist_init(&a.batch_sizes, batch_bounds,
			     sizeof(batch_bounds) / sizeof(batch_bounds[0]));
	strcpy(a.batch.node, cfg.node);
	a.batch.samples = calloc(cfg.batch_max_samples, sizeof(*a.batch.samples));
	a.batch.strings = calloc(DT_BATCH_MAX_STRINGS, sizeof(*a.batch.strings));
	if (!a.batch.samples || !a.batch.strings) {
		free(a.batch.samples);
		free(a.batch.strings);
		return -ENOMEM;
	}
	if ((rv = dt_dropnames_open(&a.dropnames)))
		dt_warn("DT-AGENT-BTF",
			"cannot read drop reason names from the kernel's BTF (%s); "
			"reasons are shown as numbers",
			strerror(-rv));
	refresh_clock(&a);
	dt_log_libbpf();
	dataplane_cfg(&cfg, &dc);
	if ((rv = dt_dataplane_open(&dc, on_sample, &a, &a.dp, err, sizeof(err)))) {
		dt_err("DT-AGENT-LOAD", "%s", err);
		goto out;
	}
	attach_ns = dt_clock_ns(CLOCK_REALTIME);
	/* Interface indices are known once attached: the batch lists them first. */
	a.batch.n_ifaces = cfg.n_ifaces;
	for (i = 0; i < cfg.n_ifaces; i++) {
		strcpy(a.batch.ifaces[i], cfg.ifaces[i].name);
		a.batch_ifindex[i] = dt_dataplane_ifindex(a.dp, i);
	}
	if ((rv = dt_spool_open(cfg.spool_dir, cfg.spool_max_mib << 20, &a.spool))) {
		dt_err("DT-AGENT-SPOOL", "cannot open the spool %s: %s", cfg.spool_dir,
		       rv == -EBUSY ? "another agent uses it (give each agent its own spool_dir)"
				    : strerror(-rv));
		goto out;
	}
	if (dt_spool_count(a.spool))
		dt_info("DT-AGENT-SPOOL",
			"%llu batches spooled by an earlier run will be sent first",
			(unsigned long long)dt_spool_count(a.spool));
	ledger_start(&a, attach_ns);
	lc.spool = a.spool;
	lc.tls = &cfg.tls;
	ops.arg = &a;
	if ((rv = dt_link_start(&lc, &ops, &a.link))) {
		dt_err("DT-AGENT-LINK", "cannot start the link to %s", cfg.collector);
		goto out;
	}
	if (cfg.metrics[0]) {
		if ((rv = dt_metrics_start(cfg.metrics, render_metrics, &a, &a.metrics, err,
					   sizeof(err)))) {
			dt_err("DT-AGENT-METRICS", "%s", err);
			goto out;
		}
		dt_info("DT-AGENT-METRICS", "metrics on %s (GET %s)", cfg.metrics, DT_METRICS_PATH);
	}
	dt_info("DT-AGENT-READY",
		"node %s: %u interfaces attached with %s, shipping to %s, handover %s", cfg.node,
		cfg.n_ifaces, dt_attach_mode_name(dt_dataplane_attach_mode(a.dp)), cfg.collector,
		dt_dataplane_handover(a.dp));
	last_stats_ms = last_commit_ms = dt_mono_ms();
	while (!*stop) {
		rv = poll_ring(&a, (int)cfg.batch_delay_ms);
		if (rv < 0 && rv != -EINTR) {
			dt_err("DT-AGENT-RING", "ring buffer: %s", strerror(-rv));
			break;
		}
		if (a.batch.n_samples && dt_mono_ms() - a.batch_started_ms >= cfg.batch_delay_ms)
			flush(&a);
		/* What a SIGKILL would leave: the counters, and when the node last observed. */
		if (dt_mono_ms() - last_commit_ms >= cfg.heartbeat_ms) {
			ledger_commit(&a);
			last_commit_ms = dt_mono_ms();
		}
		if (cfg.stats_interval_s &&
		    dt_mono_ms() - last_stats_ms >= cfg.stats_interval_s * 1000) {
			log_stats(&a, "DT-AGENT-STATS");
			last_stats_ms = dt_mono_ms();
		}
	}
	rv = 0;
	/* Drain what the ring still holds, then give the link a moment to deliver it. */
	ledger_stop(&a, *stop == DT_STOP_HANDOVER);
	poll_ring(&a, 0);
	flush(&a);
	dt_link_flush(a.link, 2000);
	ledger_commit(&a); /* the end, for the next agent */
	a.ledger_open = false;
	log_stats(&a, "DT-AGENT-EXIT"); /* after the drain: the counters are final */
	dt_metrics_stop(a.metrics);	/* its page reads the link */
	a.metrics = NULL;
	left = dt_link_stop(a.link, 0);
	a.link = NULL;
	if (left)
		dt_warn("DT-AGENT-UNSENT", "%u batches could neither be delivered nor spooled",
			left);
	if (dt_spool_count(a.spool))
		dt_info("DT-AGENT-SPOOL", "%llu batches stay spooled for the next run",
			(unsigned long long)dt_spool_count(a.spool));
out:
	dt_metrics_stop(a.metrics);
	if (a.link)
		dt_link_stop(a.link, 0);
	a.link = NULL;
	if (a.ledger_open) { /* a start that failed is a stop, not a crash */
		ledger_stop(&a, false);
		ledger_commit(&a);
	}
	dt_dataplane_close(a.dp, *stop == DT_STOP_HANDOVER);
	dt_dropnames_close(a.dropnames);
	dt_spool_close(a.spool);
	dt_ksyms_free(a.ksyms);
	free(a.batch.samples);
	free(a.batch.strings);
	pthread_mutex_destroy(&a.mu);
	return rv;
}
