/* SPDX-License-Identifier: MIT */
/*
 * lifecycle.c - who hosts what among the live nodes, and every active task moved along
 * its lifecycle: the handshake, first samples, expiry, the budget (see tasks.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_tuple.h"
#include "tasks.h"

#define NS_PER_S 1000000000ull

struct dt_host_ent {
	uint32_t vni;
	uint32_t addr;
	uint32_t node; /* index into dt_hosts.nodes */
};

/*
 * A node's record about a task, indexed by the task's id: a key it could not arm (struct
 * dt_arm_fail) or a key's colored count (struct dt_key_colored). Both start with task_id.
 */
struct dt_host_rec {
	uint32_t task_id;
	uint32_t node; /* index into dt_hosts.nodes */
	const void *rec;
};

_Static_assert(offsetof(struct dt_arm_fail, task_id) == 0, "task_id first");
_Static_assert(offsetof(struct dt_key_colored, task_id) == 0, "task_id first");

/* One kind of a node's records about tasks: n of them from first, stride bytes apart. */
struct node_recs {
	const void *first;
	uint32_t n;
	size_t stride;
};

static struct node_recs node_fails(const struct dt_node_state *ns)
{
	return (struct node_recs){ns->arm_fails, ns->n_arm_fails, sizeof(*ns->arm_fails)};
}

static struct node_recs node_colored(const struct dt_node_state *ns)
{
	return (struct node_recs){ns->colored, ns->n_colored, sizeof(*ns->colored)};
}

static int rec_cmp(const void *a, const void *b)
{
	const struct dt_host_rec *x = a, *y = b;

	if (x->task_id != y->task_id) {
		return x->task_id < y->task_id ? -1 : 1;
	}
	return x->node < y->node ? -1 : x->node > y->node;
}

/* Indexes one kind of the nodes' records by task id into *out (*n). Returns 0 or -ENOMEM. */
static int recs_build(const struct dt_hosts *h,
		      struct node_recs (*kind)(const struct dt_node_state *),
		      struct dt_host_rec **out, size_t *n)
{
	size_t total = 0, k = 0;

	for (uint32_t i = 0; i < h->n_nodes; i++) {
		total += kind(&h->nodes[i]).n;
	}
	if (total == 0) {
		return 0;
	}
	if (!(*out = calloc(total, sizeof(**out)))) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < h->n_nodes; i++) {
		struct node_recs r = kind(&h->nodes[i]);

		for (uint32_t j = 0; j < r.n; j++) {
			const void *rec = (const char *)r.first + j * r.stride;

			(*out)[k++] = (struct dt_host_rec){
				.task_id = *(const uint32_t *)rec, .node = i, .rec = rec};
		}
	}
	*n = k;
	qsort(*out, *n, sizeof(**out), rec_cmp);
	return 0;
}

/* The first record of v (n, sorted) not below (task_id, node): its index, n when none. */
static size_t recs_find(const struct dt_host_rec *v, size_t n, uint32_t task_id, uint32_t node)
{
	struct dt_host_rec want = {.task_id = task_id, .node = node};
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rec_cmp(&v[mid], &want) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

/* What node reports of key of task when it could not arm it, or NULL. */
static const struct dt_arm_fail *node_fail(const struct dt_hosts *h, uint32_t node,
					   const struct dt_task *task,
					   const struct dt_task_key *key)
{
	size_t i = h ? recs_find(h->fails, h->n_fails, task->id, node) : 0;

	for (; h && i < h->n_fails && h->fails[i].task_id == task->id && h->fails[i].node == node;
	     i++) {
		const struct dt_arm_fail *f = h->fails[i].rec;

		if (f->flags == key->flags &&
		    memcmp(&f->tuple, &key->tuple, sizeof(f->tuple)) == 0) {
			return f;
		}
	}
	return NULL;
}

/*
 * The data planes' colored counts of task's keys, summed over the live nodes per direction
 * (only the nodes where a key's packets enter color them; the others have no count).
 */
static void hosts_colored(const struct dt_hosts *h, const struct dt_task *task,
			  uint64_t out[DT_DIR_MAX])
{
	size_t i = h ? recs_find(h->colored, h->n_colored, task->id, 0) : 0;

	memset(out, 0, sizeof(out[0]) * DT_DIR_MAX);
	for (; h && i < h->n_colored && h->colored[i].task_id == task->id; i++) {
		const struct dt_key_colored *c = h->colored[i].rec;

		out[c->flags & DT_TASK_F_REPLY ? DT_DIR_REPLY : DT_DIR_REQUEST] += c->colored;
	}
}

static int host_cmp(const void *a, const void *b)
{
	const struct dt_host_ent *x = a, *y = b;

	if (x->vni != y->vni) {
		return x->vni < y->vni ? -1 : 1;
	}
	if (x->addr != y->addr) {
		return x->addr < y->addr ? -1 : 1;
	}
	return x->node < y->node ? -1 : x->node > y->node;
}

int dt_hosts_build(struct dt_hosts *h, const struct dt_node_state *nodes, uint32_t n)
{
	size_t total = 0, k = 0;

	memset(h, 0, sizeof(*h));
	h->nodes = nodes;
	h->n_nodes = n;
	if (recs_build(h, node_fails, &h->fails, &h->n_fails) != 0 ||
	    recs_build(h, node_colored, &h->colored, &h->n_colored) != 0) {
		dt_hosts_free(h);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		total += nodes[i].n_endpoints;
	}
	if (total == 0) {
		return 0;
	}
	if (!(h->v = calloc(total, sizeof(*h->v)))) {
		dt_hosts_free(h);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < nodes[i].n_endpoints; j++) {
			h->v[k].vni = nodes[i].endpoints[j].vni & 0xffffff;
			h->v[k].addr = nodes[i].endpoints[j].addr;
			h->v[k].node = i;
			k++;
		}
	}
	h->n = k;
	qsort(h->v, h->n, sizeof(*h->v), host_cmp);
	return 0;
}

void dt_hosts_free(struct dt_hosts *h)
{
	free(h->v);
	free(h->fails);
	free(h->colored);
	memset(h, 0, sizeof(*h));
}

/* The entries hosting (vni, addr): *first and how many. */
static size_t hosts_find(const struct dt_hosts *h, uint32_t vni, uint32_t addr,
			 const struct dt_host_ent **first)
{
	size_t lo = 0, hi = h ? h->n : 0, n = 0;
	struct dt_host_ent key = {.vni = vni, .addr = addr, .node = 0};

	while (lo < hi) { /* the first entry not below (vni, addr, 0) */
		size_t mid = lo + (hi - lo) / 2;

		if (host_cmp(&h->v[mid], &key) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*first = h && lo < h->n ? &h->v[lo] : NULL;
	while (h && lo + n < h->n && h->v[lo + n].vni == vni && h->v[lo + n].addr == addr) {
		n++;
	}
	return n;
}

const char *dt_hosts_node(const struct dt_hosts *h, uint32_t vni, uint32_t addr)
{
	const struct dt_host_ent *first;

	return hosts_find(h, vni & 0xffffff, addr, &first) ? h->nodes[first->node].node : NULL;
}

/* How one direction's entry stands in the handshake. */
struct entry {
	size_t n_hosts;
	const char *host;		/* a hosting node: the first failed, else lagging, one */
	bool lagging;			/* a hosting node has not applied arm_gen */
	uint64_t lag_gen;		/* what that node applied */
	uint32_t addr;			/* the address looked up (0: a gateway) */
	const struct dt_arm_fail *fail; /* a hosting node could not arm the key */
	uint32_t map_max;		/* that node's task map size */
};

/* The nodes hosting the entry of key: *first and how many (a gateway when none hosts its
 * source); *addr gets the address looked up. */
static size_t entry_hosts(const struct dt_hosts *h, const struct dt_task_key *key,
			  const struct dt_host_ent **first, uint32_t *addr)
{
	size_t n;

	/* A key's tuple is in its own direction: its source is where it enters. */
	*addr = key->tuple.saddr;
	if ((n = hosts_find(h, key->tuple.vni, *addr, first)) == 0) {
		*addr = 0;
		n = hosts_find(h, key->tuple.vni, 0, first);
	}
	return n;
}

static void entry_check(const struct dt_hosts *h, const struct dt_task *task,
			const struct dt_task_key *key, struct entry *e)
{
	const struct dt_host_ent *first;

	memset(e, 0, sizeof(*e));
	e->n_hosts = entry_hosts(h, key, &first, &e->addr);
	for (size_t i = 0; i < e->n_hosts && !e->fail; i++) {
		const struct dt_node_state *ns = &h->nodes[first[i].node];

		if ((e->fail = node_fail(h, first[i].node, task, key))) {
			e->host = ns->node;
			e->map_max = ns->task_map_max;
		}
	}
	for (size_t i = 0; i < e->n_hosts && !e->fail; i++) {
		const struct dt_node_state *ns = &h->nodes[first[i].node];

		if (!e->host) {
			e->host = ns->node;
		}
		if (ns->ctl_gen < task->arm_gen) {
			e->host = ns->node;
			e->lagging = true;
			e->lag_gen = ns->ctl_gen;
			break;
		}
	}
}

static const char *dir_word(uint8_t dir)
{
	return dir == DT_DIR_REPLY ? "replies" : "requests";
}

static void entry_name(const struct dt_task_key *key, char *buf, size_t len)
{
	char a[16];

	snprintf(buf, len, "%s in VNI %u", dt_ipv4_str(key->tuple.saddr, a, sizeof(a)),
		 key->tuple.vni);
}

/*
 * True when key k of task is its reply key, that no node hosts, while its request key is
 * hosted: the request goes to an address nobody hosts (a load balancer's VIP, a router's
 * DNAT), and the reply starts where the translation sends the request. That first hop is
 * armed once the analyzer learns the translation (dt_tasks_add_learned()).
 */
static bool reply_learnable(const struct dt_task *task, unsigned int k, const struct entry *e)
{
	return task->keys[k].dir == DT_DIR_REPLY && k == 1 && e[0].n_hosts > 0 &&
	       task->keys[0].dir == DT_DIR_REQUEST;
}

/* How many of task's keys are its own (they come first; the learned ones follow). */
static unsigned int own_keys(const struct dt_task *task)
{
	unsigned int n = 0;

	while (n < task->n_keys && n < DT_DIR_MAX && !task->keys[n].learned) {
		n++;
	}
	return n;
}

/* Why a node could not arm a key, for a sentence. */
static void arm_fail_reason(const struct entry *e, char *buf, size_t len)
{
	if (e->fail->err == E2BIG) {
		snprintf(buf, len,
			 "its task map is full (%u keys: task_map_entries in its agent's "
			 "configuration)",
			 e->map_max);
	} else if (e->fail->err == EINVAL) {
		snprintf(buf, len, "its data plane refused the key");
	} else {
		snprintf(buf, len, "the task map update failed: %s", strerror((int)e->fail->err));
	}
}

/*
 * A key of task that a node hosting its first hop could not arm ends the task FAILED
 * (ARM_FAILED), from READY on: it is never ARMED, nor goes on RUNNING, without being
 * armed there. Returns true when it ended.
 */
static bool arm_failed(struct dt_tasks *t, struct dt_task *task, const struct entry *e,
		       uint64_t now_ns)
{
	unsigned int k, n_own = own_keys(task);
	char why[128];

	for (k = 0; k < n_own && !e[k].fail; k++) {
	}
	if (k == n_own) {
		return false;
	}
	arm_fail_reason(&e[k], why, sizeof(why));
	dt_task_end(t, task, DT_TASK_FAILED, DT_TS_ARM_FAILED, now_ns,
		    "failed: node %s, the first hop of the %s, could not arm it: %s", e[k].host,
		    dir_word(task->keys[k].dir), why);
	return true;
}

/* READY: the handshake, on the entries e of task's own keys. Returns true when it ended. */
static bool handshake(struct dt_tasks *t, struct dt_task *task, const struct entry *e,
		      const struct dt_lifecycle_cfg *cfg, uint64_t now_ns, uint64_t now_ms)
{
	uint64_t waited = now_ms - task->ready_ms;
	unsigned int k, n_own = own_keys(task);
	char where[64];

	for (k = 0; k < n_own; k++) {
		if (e[k].n_hosts || reply_learnable(task, k, e)) {
			continue;
		}
		entry_name(&task->keys[k], where, sizeof(where));
		if (waited >= cfg->host_grace_ms) {
			dt_task_end(t, task, DT_TASK_FAILED, DT_TS_NO_HOST, now_ns,
				    "failed: no live node hosts %s, nor a gateway of VNI %u: the "
				    "%s have no first hop to arm (waited %llu ms)",
				    where, task->keys[k].tuple.vni, dir_word(task->keys[k].dir),
				    (unsigned long long)waited);
			return true;
		}
		if (task->status != DT_TS_RESTARTED) {
			dt_task_set_text(task, "ready: waiting for a node that hosts %s to report",
					 where);
		}
		return false;
	}
	for (k = 0; k < n_own; k++) {
		if (!e[k].lagging) {
			continue;
		}
		if (waited >= cfg->arm_timeout_ms) {
			dt_task_end(
				t, task, DT_TASK_FAILED, DT_TS_ARM_TIMEOUT, now_ns,
				"failed: node %s, the first hop of the %s, did not apply control "
				"set %llu within %llu ms (it applied %llu)",
				e[k].host, dir_word(task->keys[k].dir),
				(unsigned long long)task->arm_gen,
				(unsigned long long)cfg->arm_timeout_ms,
				(unsigned long long)e[k].lag_gen);
			return true;
		}
		if (task->status != DT_TS_RESTARTED) {
			dt_task_set_text(task,
					 "ready: waiting for node %s to apply control set %llu",
					 e[k].host, (unsigned long long)task->arm_gen);
		}
		return false;
	}
	task->state = DT_TASK_ARMED;
	task->status = DT_TS_OK;
	task->armed_ns = now_ns;
	task->dirty = true;
	if (n_own == 2 && !e[1].n_hosts) {
		dt_task_set_text(task,
				 "armed at %s (requests); replies start where a translation on the "
				 "way sends the requests: armed there once it is learned",
				 e[0].host);
	} else if (n_own == 2) {
		dt_task_set_text(task,
				 "armed at %s (requests) and %s (replies); waiting for its first "
				 "colored packet",
				 e[0].host, e[1].host);
	} else {
		dt_task_set_text(task, "armed at %s; waiting for its first colored packet",
				 e[0].host);
	}
	return false;
}

/* Packets of direction dir colored: the data planes' count, or the first-hop samples
 * attributed when more (a data plane that restarted without handover counts anew). */
static uint64_t dir_colored(const struct dt_task *task, uint8_t dir)
{
	return task->dp_colored[dir] > task->colored[dir] ? task->dp_colored[dir]
							  : task->colored[dir];
}

static bool budget_spent(const struct dt_task *task)
{
	for (unsigned int k = 0; k < task->n_keys; k++) {
		if (dir_colored(task, task->keys[k].dir) < task->spec.budget) {
			return false;
		}
	}
	return true;
}

static uint64_t colored(const struct dt_task *task)
{
	return dir_colored(task, DT_DIR_REQUEST) + dir_colored(task, DT_DIR_REPLY);
}

/* Packets the data planes colored whose first-hop sample has not arrived (or never will). */
static uint64_t unsampled(const struct dt_task *task)
{
	return colored(task) - task->colored[DT_DIR_REQUEST] - task->colored[DT_DIR_REPLY];
}

/*
 * Takes the data planes' colored counts of task from the node states (the highest sum
 * seen: a node whose state lapsed for a while does not take its packets back) and notes
 * when they first showed its budget spent.
 */
static void note_colored(struct dt_task *task, const struct dt_hosts *hosts, uint64_t now_ms)
{
	uint64_t now[DT_DIR_MAX];

	hosts_colored(hosts, task, now);
	for (unsigned int d = 0; d < DT_DIR_MAX; d++) {
		if (now[d] > task->dp_colored[d]) {
			task->dp_colored[d] = now[d];
		}
	}
	if (!task->spent_ms && budget_spent(task)) {
		task->spent_ms = now_ms;
	}
}

/*
 * Whether task, its budget spent, is accounted for: every first-hop sample the data
 * planes colored arrived, or settle_ms passed since the budget was seen spent (what the
 * agents drained by then has arrived) and the missing ones are counted lost; and no
 * packet is in flight (ops->settled).
 */
static bool accounted(struct dt_task *task, const struct dt_lifecycle_cfg *cfg,
		      const struct dt_lifecycle_ops *ops, uint64_t now_ms)
{
	uint64_t missing = unsampled(task);

	if (missing && now_ms - task->spent_ms < cfg->settle_ms) {
		return false;
	}
	return !ops || !ops->settled || ops->settled(ops->arg, task, missing);
}

/*
 * How many packets were colored, for a status sentence: " (N colored by the data plane,
 * all sampled)" or "..., M of them sampled at their first hop: K samples did not reach the
 * analyzer, see lost)"; "" when no data plane reported a count.
 */
static void colored_text(const struct dt_task *task, char *buf, size_t len)
{
	uint64_t dp = task->dp_colored[DT_DIR_REQUEST] + task->dp_colored[DT_DIR_REPLY];
	uint64_t missing = unsampled(task);

	if (!dp) {
		buf[0] = '\0';
	} else if (!missing) {
		snprintf(buf, len, " (%llu colored by the data plane, all sampled)",
			 (unsigned long long)colored(task));
	} else {
		snprintf(buf, len,
			 " (%llu colored by the data plane, %llu of them sampled at their first "
			 "hop: %llu samples did not reach the analyzer, see lost)",
			 (unsigned long long)colored(task),
			 (unsigned long long)(colored(task) - missing),
			 (unsigned long long)missing);
	}
}

size_t dt_tasks_step(struct dt_tasks *t, const struct dt_hosts *hosts,
		     const struct dt_lifecycle_cfg *cfg, const struct dt_lifecycle_ops *ops,
		     uint64_t now_ns, uint64_t now_ms)
{
	size_t ended = 0;

	/* Backwards: ending a task moves the last one into its place, already visited. */
	for (size_t i = dt_tasks_n_active(t); i-- > 0;) {
		struct dt_task *task = dt_tasks_active(t, i);
		uint64_t deadline = task->created_ns + (uint64_t)task->spec.duration_s * NS_PER_S;
		struct entry e[DT_DIR_MAX];
		char how[160];

		if (task->state == DT_TASK_NEW) {
			continue;
		}
		for (unsigned int k = 0; k < own_keys(task); k++) {
			entry_check(hosts, task, &task->keys[k], &e[k]);
		}
		note_colored(task, hosts, now_ms);
		if (now_ns >= deadline) {
			colored_text(task, how, sizeof(how));
			dt_task_end(t, task, DT_TASK_EXPIRED, DT_TS_DURATION, now_ns,
				    "expired: its duration of %u s ran out (%llu packets colored "
				    "of a budget of %u per direction)%s",
				    task->spec.duration_s, (unsigned long long)colored(task),
				    task->spec.budget, how);
		} else if (arm_failed(t, task, e, now_ns)) {
			/* ended */
		} else if (task->state == DT_TASK_READY && task->n_obs == 0) {
			handshake(t, task, e, cfg, now_ns, now_ms);
		} else if (task->state <= DT_TASK_ARMED && (task->n_obs > 0 || colored(task) > 0)) {
			/* A sample proves the arming even before the node's state is relayed; so
			 * does a data plane's count (its samples may all have been lost). */
			if (!task->armed_ns) {
				task->armed_ns = now_ns;
			}
			task->state = DT_TASK_RUNNING;
			task->status = DT_TS_OK;
			task->dirty = true;
			dt_task_set_text(task, "running: colored packets are being sampled");
		}
		if (task->state == DT_TASK_RUNNING && budget_spent(task) &&
		    accounted(task, cfg, ops, now_ms)) {
			colored_text(task, how, sizeof(how));
			dt_task_end(t, task, DT_TASK_DONE, DT_TS_BUDGET_SPENT, now_ns,
				    "done: its budget of %u packets per direction was colored and "
				    "every packet judged%s",
				    task->spec.budget, how);
		}
		if (dt_task_state_terminal(task->state)) {
			ended++;
			if (ops && ops->ended) {
				ops->ended(ops->arg, task);
			}
		}
	}
	return ended;
}

int dt_tasks_check_room(const struct dt_tasks *t, const struct dt_hosts *h,
			const struct dt_task_spec *spec, char *err, size_t errlen)
{
	struct dt_task_key keys[DT_DIR_MAX];
	unsigned int n_keys = dt_task_keys(spec, keys);
	size_t used = dt_tasks_n_keys(t);

	for (unsigned int k = 0; k < n_keys; k++) {
		const struct dt_host_ent *first;
		uint32_t addr;
		size_t n = entry_hosts(h, &keys[k], &first, &addr);

		for (size_t i = 0; i < n; i++) {
			const struct dt_node_state *ns = &h->nodes[first[i].node];

			if (ns->task_map_max == 0 || used + n_keys <= ns->task_map_max) {
				continue;
			}
			snprintf(err, errlen,
				 "no room on node %s, the first hop of the %s: its task map holds "
				 "%u keys, active tasks use %zu and this task needs %u (raise "
				 "task_map_entries there, or end a task)",
				 ns->node, dir_word(keys[k].dir), ns->task_map_max, used, n_keys);
			return -ENOSPC;
		}
	}
	return 0;
}
