/* SPDX-License-Identifier: MIT */
/*
 * tasks.h - the analyzer's task table: creation with limits and overlap checks, each
 * task's keys (one per traced direction), the lifecycle and its handshake, and the
 * control set that arms the active tasks.
 *
 * Not thread-safe; the analyzer serializes access with its own lock.
 *
 * Lifecycle (VTrace's three-way handshake, docs/design.md; README "Task lifecycle"):
 *
 *   NEW      created and written to the store; not in the control set
 *   READY    its analysis state exists (observations, stitcher keys): only now is it put
 *            into the control set, at generation arm_gen
 *   ARMED    every node hosting an entry of a traced direction applied a control
 *            generation >= arm_gen (node states relayed by the collectors). The entry of
 *            the request is the node hosting (vni, src); of the reply the node hosting
 *            (vni, dst), else a gateway of the vni (endpoint (vni, 0))
 *   RUNNING  its first sample was attributed to it
 *   DONE     (BUDGET_SPENT) every traced direction had budget packets colored, by the
 *            data planes' own count (node states) or by the first-hop samples that
 *            arrived, and every packet is accounted: no packet in flight, and a first-hop
 *            sample the data planes colored and the analyzer never got is counted lost
 *            (ring-full...) once settle_ms passed (see dt_tasks_step())
 *   EXPIRED  (DURATION) duration_s passed since it was created
 *   CANCELLED (CANCELLED) by its tenant
 *   FAILED   NO_HOST: no live node hosts an entry host_grace_ms after READY;
 *            ARM_TIMEOUT: a hosting node did not apply arm_gen within arm_timeout_ms;
 *            ARM_FAILED: a hosting node applied it but could not arm a key of it (its
 *            task map full, a map update error), from READY on
 *
 * NEW..RUNNING are active: their keys are indexed (overlap checks, attribution) and, from
 * READY on, armed. A task that ends leaves the active set at once (the control set's
 * generation moves, so it is disarmed everywhere); it stays in the table, found by id.
 *
 * Directions. A task names its flow as the source instance sees it (the request). It
 * traces the request direction, the reply direction or both (DT_TASK_DIR_*; none given
 * means request). Each traced direction is one key: the request key is the task's tuple,
 * the reply key the tuple reversed (dt_tuple_reverse()), flagged DT_TASK_F_REPLY in the
 * control set. The keys of active tasks never overlap: a packet belongs to one task and
 * one direction only.
 *
 * Lookups are hashes: tasks by id (all of them), active keys by their tuple without ports
 * (overlap checks). O(1) expected for 4096 active tasks and many more ended ones.
 */
#ifndef DT_TASKS_H
#define DT_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "paths.h"

/* One key of a task: what the data plane matches for one direction. */
struct dt_task_key {
	struct dt_tuple tuple; /* normalized (dt_tuple_task_key()), reversed for replies */
	uint32_t flags;	       /* DT_TASK_F_ANYPORT, DT_TASK_F_REPLY: as armed */
	uint8_t dir;	       /* enum dt_direction */
	bool learned;	       /* armed for a translation the analyzer learned (see
				* dt_tasks_add_learned()), not named by the task */
};

/* Keys of one task: its one or two directions, then learned ones. */
#define DT_TASK_MAX_LEARNED 14
#define DT_TASK_MAX_KEYS (DT_DIR_MAX + DT_TASK_MAX_LEARNED)

/* Limits of a task: defaults for a request that leaves one out (0), and maxima. */
struct dt_limits {
	uint64_t budget_default, budget_max;	     /* packets colored, per direction */
	uint64_t duration_default_s, duration_max_s; /* seconds from creation */
	uint64_t rate_default_pps, rate_max_pps;     /* colored packets per second, per key */
	uint64_t tasks_max_per_tenant;		     /* active tasks of one tenant */
};

extern const struct dt_limits dt_limits_defaults;

/* The handshake's clocks. */
struct dt_lifecycle_cfg {
	uint64_t host_grace_ms;	 /* READY with no live node hosting an entry: FAILED after */
	uint64_t arm_timeout_ms; /* READY with a host that did not apply arm_gen: FAILED after */
	uint64_t settle_ms;	 /* first-hop samples missing once the data planes colored the
				  * budget: how long they may still arrive (the window) */
};

struct dt_task {
	uint32_t id;
	uint32_t tenant; /* index into the analyzer's tenants */
	char tenant_name[DT_NAME_MAX];
	struct dt_task_spec spec; /* normalized: tuple by dt_tuple_task_key(); flags are
				   * DT_TASK_F_ANYPORT and DT_TASK_DIR_* (never no direction);
				   * limits filled in */
	unsigned int n_keys;	  /* its own (1 or 2), then learned ones */
	struct dt_task_key keys[DT_TASK_MAX_KEYS]; /* request key first when traced; the
						    * learned ones after its own */
	uint64_t learned_full; /* learned keys not armed: the task had DT_TASK_MAX_LEARNED */
	uint32_t state;	       /* enum dt_task_state */
	uint32_t status;       /* enum dt_task_status */
	char status_text[DT_MSG_MAX];
	uint64_t created_ns, armed_ns, ended_ns; /* wall clock, 0: not (yet) */
	uint64_t arm_gen;			 /* the control generation that first includes it */
	uint64_t ready_ms;	      /* monotonic: when it became READY (handshake clocks) */
	uint64_t colored[DT_DIR_MAX]; /* first-hop samples attributed, per direction */
	/* The data planes' own count of packets colored per direction (node states: summed
	 * over the live nodes, the highest sum seen), and when it first showed the budget
	 * colored in every traced direction (monotonic ms; 0: not yet). Not stored: the data
	 * planes tell them again after a restart. */
	uint64_t dp_colored[DT_DIR_MAX];
	uint64_t spent_ms;
	uint64_t delivered; /* as of the last report built */
	/* The deployment's lost and unmatched counters when it was created: its reports
	 * count what came after (reports.c). */
	uint64_t lost_base[DT_LOSS_MAX];
	uint64_t unmatched_base;
	size_t n_obs, cap_obs;
	struct dt_obs *obs;	     /* attributed observations, in arrival order */
	struct dt_prefixes prefixes; /* their packet prefixes (struct dt_obs.cap_at) */
	size_t n_stored;	     /* obs[0..n_stored) are in the store */
	bool dirty;		     /* changed since it was last written to the store */
	bool final_pending;	     /* ended, its final report not stored yet */
	uint64_t judged_ms;	     /* monotonic: when settled() was last asked */
	size_t active_idx;	     /* its index in dt_tasks.v while active */
};

struct dt_tasks; /* tasks.c */

/* A new, empty task table (ids from 1), or NULL without memory. */
struct dt_tasks *dt_tasks_new(void);

/* Frees t (NULL: nothing), every task and every observation. */
void dt_tasks_free(struct dt_tasks *t);

/* The active tasks (NEW..RUNNING), in no particular order: i < dt_tasks_n_active(). */
size_t dt_tasks_n_active(const struct dt_tasks *t);
struct dt_task *dt_tasks_active(const struct dt_tasks *t, size_t i);

/* Every task, in creation order (ids ascend): i < dt_tasks_n_all(). */
size_t dt_tasks_n_all(const struct dt_tasks *t);
struct dt_task *dt_tasks_nth(const struct dt_tasks *t, size_t i);

/* The id the next task gets, and the control generation (grows with every change of the
 * armed set). */
uint32_t dt_tasks_next_id(const struct dt_tasks *t);
uint64_t dt_tasks_gen(const struct dt_tasks *t);

/* Keys of active tasks at READY or later (armed), and keys of active tasks in all. */
size_t dt_tasks_n_arms(const struct dt_tasks *t);
size_t dt_tasks_n_keys(const struct dt_tasks *t);

/* After a restart: the next id and the generation as stored (next_id 0: 1). */
void dt_tasks_restore_meta(struct dt_tasks *t, uint32_t next_id, uint64_t gen);

/* A new control generation, with the same arms (after a restart). */
void dt_tasks_new_gen(struct dt_tasks *t);

/*
 * Fills spec's budget, duration_s and rate_pps from l's defaults where 0. Returns 0, or
 * -EINVAL when one is above its maximum (err names the maximum).
 */
int dt_limits_apply(const struct dt_limits *l, struct dt_task_spec *spec, char *err, size_t errlen);

/*
 * The form a task keeps of spec: flags default to the request direction, the tuple is a
 * key (dt_tuple_task_key()). Returns 0, or -EINVAL (err says why) when the flags have
 * unknown bits or the tuple cannot name a flow.
 */
int dt_task_spec_normalize(const struct dt_task_spec *spec, struct dt_task_spec *norm, char *err,
			   size_t errlen);

/*
 * Creates a task for spec (limits applied already) in state NEW. Returns 0 and *out,
 * -EINVAL (err says why) when the tuple cannot name a flow, the flags have unknown bits,
 * or both directions would be the same flow; -EEXIST when one of its keys overlaps a key
 * of an active task, whoever's (err names the direction and the tuple, never the other
 * task or its tenant); -ENOSPC when the control set would hold more than
 * DT_CONTROL_MAX_TASKS keys; -ENOMEM.
 */
int dt_tasks_create(struct dt_tasks *t, const struct dt_task_spec *spec, uint32_t tenant,
		    const char *tenant_name, uint64_t now_ns, struct dt_task **out, char *err,
		    size_t errlen);

/*
 * Puts back a task read from the store (restart): *rec as written, without
 * observations. An active one is indexed again (its keys and id). Returns 0, -EEXIST
 * (its id is taken, or an active key overlaps: the store is inconsistent) or -ENOMEM.
 * The table takes ownership of rec (malloc'd) on success.
 */
int dt_tasks_restore(struct dt_tasks *t, struct dt_task *rec);

/* The task with this id (any state), or NULL. O(1) expected. */
struct dt_task *dt_tasks_find(const struct dt_tasks *t, uint32_t id);

/* Frees the tasks that ended before ended_before_ns and whose final report is stored (its
 * store keeps them; retention_s). Returns how many left memory. */
size_t dt_tasks_evict_ended(struct dt_tasks *t, uint64_t ended_before_ns);

/* The same, active tasks only. */
struct dt_task *dt_tasks_find_active(const struct dt_tasks *t, uint32_t id);

/* Active tasks of tenant. O(active). */
size_t dt_tasks_count_tenant(const struct dt_tasks *t, uint32_t tenant);

/* True for DONE, EXPIRED, CANCELLED, FAILED. */
bool dt_task_state_terminal(uint32_t state);

/*
 * Fills keys[] from a normalized spec (see the top of the file) and returns how many:
 * the request key first when the spec traces requests.
 */
unsigned int dt_task_keys(const struct dt_task_spec *spec, struct dt_task_key keys[DT_DIR_MAX]);

/* True when two keys can match the same packet. */
bool dt_key_overlap(const struct dt_task_key *a, const struct dt_task_key *b);

/* True when a key of one normalized spec can match the same packet as a key of the other. */
bool dt_spec_overlap(const struct dt_task_spec *a, const struct dt_task_spec *b);

/* Appends a copy of o, and its prefix cap (o->cap_len bytes), to the task's observations
 * (a first hop counts as colored in its direction). Returns 0 or -ENOMEM. */
int dt_task_add_obs(struct dt_task *task, const struct dt_obs *o, const uint8_t *cap);

/* dt_task_add_obs() in two steps, filled in place: the slot of the next observation, with
 * room for a prefix of cap_len bytes (NULL without memory), then, once it is filled, kept
 * with its prefix cap (its cap_len bytes) and counted. */
struct dt_obs *dt_task_obs_next(struct dt_task *task, uint16_t cap_len);
void dt_task_obs_keep(struct dt_task *task, const uint8_t *cap);

/* Takes back the observations from index n on (not stored: a failed commit), with their
 * prefixes and their counts of colored packets. */
void dt_task_obs_truncate(struct dt_task *task, size_t n);

/*
 * The control set of generation t->gen: one arm per key of every task at READY or later,
 * with the task's budget and rate (arms malloc'd; free with dt_control_free). Returns 0
 * or -ENOMEM.
 */
int dt_tasks_control(const struct dt_tasks *t, struct dt_control *c);

/*
 * Arms one more key for an active task: the tuple a direction of it takes after a
 * translation the analyzer learned (a reply that starts as the translated request
 * reversed, at a backend behind a load balancer, say), so that the node where that packet
 * starts colors it. It is in the control set from the next generation until the task
 * ends, counts toward capacity, and never overlaps another task's key. It is not one of
 * the task's own keys: the stitcher attributes its samples through the translation.
 * Returns 0 (also when the task has the key already), -EEXIST (another active task has an
 * overlapping key), -ENOSPC (the task has DT_TASK_MAX_LEARNED learned keys: counted in
 * learned_full; or the control set is full), -EINVAL (not a flow) or -ENOMEM.
 */
int dt_tasks_add_learned(struct dt_tasks *t, struct dt_task *task, const struct dt_tuple *tuple,
			 uint8_t dir);

/*
 * True when observation o stands for one more packet its task colored: a first hop's
 * sample, but not a datagram's later fragment (budgets count datagrams, as the data plane
 * does).
 */
static inline bool dt_obs_counts_colored(const struct dt_obs *o)
{
	return (o->flags & DT_SAMPLE_F_FIRST_HOP) && o->dir < DT_DIR_MAX &&
	       !(o->frag & DT_FRAG_OFFSET);
}

/* Fills info from the task. */
void dt_task_info_fill(const struct dt_task *task, struct dt_task_info *info);

/* Sets the task's status sentence (printf), marking it dirty when it changed. */
void dt_task_set_text(struct dt_task *task, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------------------ */
/* Lifecycle */

/*
 * Which live nodes host which endpoints: built from the node states the collectors
 * relay (dt_ingest_nodes()), sorted for binary search.
 */
struct dt_hosts {
	const struct dt_node_state *nodes;
	uint32_t n_nodes;
	struct dt_host_ent *v; /* lifecycle.c */
	size_t n;
	struct dt_host_rec *fails; /* the nodes' arm failures by task id (lifecycle.c) */
	size_t n_fails;
	struct dt_host_rec *colored; /* the nodes' colored counts by task id (lifecycle.c) */
	size_t n_colored;
};

/* Indexes nodes (which must outlive h). Returns 0 or -ENOMEM. */
int dt_hosts_build(struct dt_hosts *h, const struct dt_node_state *nodes, uint32_t n);
void dt_hosts_free(struct dt_hosts *h);

/* The name of a node hosting (vni, addr) (the first by node order when several do), or
 * NULL when none does. addr 0: the outside of a NAT gateway for vni. */
const char *dt_hosts_node(const struct dt_hosts *h, uint32_t vni, uint32_t addr);

/*
 * Whether a task of spec (normalized: dt_task_spec_normalize()) fits: returns 0, or
 * -ENOSPC (err says which node and why) when a node hosting the first hop of one of its
 * directions would need more keys in its task map than it holds. Every node arms the keys
 * of every active task, so a node's map needs the active tasks' keys and the new ones.
 * Nodes that report no map size are not checked.
 */
int dt_tasks_check_room(const struct dt_tasks *t, const struct dt_hosts *h,
			const struct dt_task_spec *spec, char *err, size_t errlen);

/*
 * NEW -> READY: puts task into the control set (a new generation, task->arm_gen) and
 * starts the handshake clocks at now_ms.
 */
void dt_task_ready(struct dt_tasks *t, struct dt_task *task, uint64_t now_ms);

/*
 * Ends an active task: state (DONE, EXPIRED, CANCELLED or FAILED), status and sentence;
 * it leaves the active set and the control set (a new generation). Its observations stay
 * until the caller drops them (dt_task_drop_obs()).
 */
void dt_task_end(struct dt_tasks *t, struct dt_task *task, uint32_t state, uint32_t status,
		 uint64_t now_ns, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Frees a task's observations and their prefixes (after its final report was stored). */
void dt_task_drop_obs(struct dt_task *task);

struct dt_lifecycle_ops {
	/* True when none of task's packets is in flight (judged to the end) and the samples
	 * counted lost since task was created (its report's lost) are at least unsampled: the
	 * first hops the data planes colored whose samples never arrived. Asked only when
	 * every traced direction colored its budget. */
	bool (*settled)(void *arg, struct dt_task *task, uint64_t unsampled);
	/* Called for every task that ended in the step (final report, store). May be NULL. */
	void (*ended)(void *arg, struct dt_task *task);
	void *arg;
};

/*
 * Moves every active task along its lifecycle at (now_ns, now_ms): the handshake against
 * hosts (NULL: no node heard from), first samples, expiry, the budget. The budget is
 * spent when the data planes' colored counts in the hosts' node states (or, when higher,
 * the first-hop samples attributed) reached it in every traced direction. It is DONE when
 * ops->settled agrees, at once when every first-hop sample the data planes colored
 * arrived; otherwise (some were lost on the way: a full ring buffer...) only settle_ms
 * after the counts showed the budget colored, so that those still on their way arrive,
 * and when the missing ones are counted lost (else it ends EXPIRED). A task one of whose
 * keys a node hosting its first hop reports it could not arm ends FAILED (ARM_FAILED),
 * whatever its state: it is never ARMED without being armed. Every task that changed has
 * dirty set; each that ended is given to ops->ended. Returns how many ended.
 */
size_t dt_tasks_step(struct dt_tasks *t, const struct dt_hosts *hosts,
		     const struct dt_lifecycle_cfg *cfg, const struct dt_lifecycle_ops *ops,
		     uint64_t now_ns, uint64_t now_ms);

#endif /* DT_TASKS_H */
