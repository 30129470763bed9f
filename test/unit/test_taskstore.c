// SPDX-License-Identifier: MIT
/*
 * test_taskstore.c - the stitcher's state in the analyzer's store (analyzer/taskstore.c,
 * analyzer/stitch.c): held samples and their counters survive a crash, and the NAT
 * translations are learned again from the stored observations.
 *
 * A crash is a child process killed with SIGKILL after its last commit, its LMDB
 * environment never closed; the parent opens the same directory and restores from it, as
 * the analyzer does at start (ld_* in analyzer.c): tasks, observations, held samples,
 * counters, then dt_stitch_relearn().
 *
 * The flows are the gateway lab's: i1 (10.100.0.1) to the internet (203.0.113.10) behind
 * gw's masquerade (203.0.113.1).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dt_tuple.h"
#include "paths.h"
#include "stitch.h"
#include "tasks.h"
#include "taskstore.h"

#define WIN 1000 /* ms */

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/dt-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(taskstore, .init = setup, .fini = teardown, .timeout = 30);

static struct dt_tuple tuple(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct dt_tuple t;

	memset(&t, 0, sizeof(t));
	/* Also called in the crashing child, where criterion's asserts do not report. */
	if (dt_ipv4_parse(src, &t.saddr) != 0 || dt_ipv4_parse(dst, &t.daddr) != 0) {
		abort();
	}
	t.sport = htons(sport);
	t.dport = htons(dport);
	t.proto = IPPROTO_UDP;
	t.vni = 100;
	return t;
}

/* Task T: its sample behind the NAT is held before the crash. Task U: its translation is
 * learned before the crash, and used after it. */
#define T_IN tuple("10.100.0.1", 40300, "203.0.113.10", 9)
#define T_OUT tuple("203.0.113.1", 40300, "203.0.113.10", 9)
#define U_IN tuple("10.100.0.1", 40301, "203.0.113.10", 9)
#define U_OUT tuple("203.0.113.1", 61001, "203.0.113.10", 9)

static struct dt_stitch_in sample(uint8_t hook, struct dt_tuple t, uint16_t ip_id, uint64_t ts)
{
	struct dt_wire_sample w;
	struct dt_stitch_in in;

	memset(&w, 0, sizeof(w));
	w.hook = hook;
	w.ts_ns = ts;
	w.tuple = t;
	w.ip_id = ip_id;
	w.ident = 0x2000 + ip_id;
	w.len = 60;
	w.cap_link = DT_CAP_ETH;
	w.cap_len = (uint16_t)(13 + 11 * ip_id); /* odd lengths: the store's alignment */
	memset(w.cap, 0x40 + ip_id, w.cap_len);
	dt_stitch_in_fill(&in, &w, 1, 2, DT_STRTAB_NONE, DT_STRTAB_NONE, 0);
	return in;
}

/* True when observation i of task has the prefix sample() gave it. */
static bool prefix_kept(const struct dt_task *task, size_t i)
{
	const struct dt_obs *o = &task->obs[i];
	const uint8_t *cap = dt_prefix_of(&task->prefixes, o);

	if (o->cap_len != 13 + 11 * o->ip_id) {
		return false;
	}
	for (uint16_t k = 0; k < o->cap_len; k++) {
		if (cap[k] != 0x40 + o->ip_id) {
			return false;
		}
	}
	return true;
}

/* gw's gw-out sample: the outside tuple seen, the inside one from conntrack. */
static struct dt_stitch_in gw_out(struct dt_tuple seen, struct dt_tuple inside, uint16_t ip_id,
				  uint64_t ts)
{
	struct dt_stitch_in in = sample(DT_HOOK_GW_OUT, seen, ip_id, ts);

	in.o.flags |= DT_SAMPLE_F_NAT;
	in.orig = inside;
	return in;
}

/* The analyzer's state, as much of it as the stitcher needs. */
struct state {
	struct dt_taskstore *store;
	struct dt_tasks *tasks;
	struct dt_stitch *st;
	struct dt_stitch_counters stored;
};

static int open_state(struct state *s)
{
	char err[256];
	int rv;

	memset(s, 0, sizeof(*s));
	s->tasks = dt_tasks_new();
	s->st = dt_stitch_new(s->tasks, WIN);
	if ((rv = dt_taskstore_open(dir, 16, &s->store, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
	}
	return rv;
}

static void free_state(struct state *s)
{
	dt_taskstore_close(s->store);
	dt_stitch_free(s->st);
	dt_tasks_free(s->tasks);
}

/* What persist() commits in analyzer.c: new observations, held samples new and
 * released, counters. Returns 0 or a negative errno. */
static int commit(struct state *s)
{
	struct dt_stitch_counters c;
	int rv;

	dt_stitch_counters_get(s->st, &c);
	if ((rv = dt_taskstore_begin(s->store)) != 0) {
		return rv;
	}
	for (size_t i = 0; i < dt_tasks_n_active(s->tasks); i++) {
		struct dt_task *t = dt_tasks_active(s->tasks, i);

		if ((t->dirty && (rv = dt_taskstore_put_task(s->store, t)) != 0) ||
		    (t->n_obs > t->n_stored && (rv = dt_taskstore_put_obs(s->store, t)) != 0)) {
			goto abort;
		}
	}
	for (size_t i = dt_stitch_unsaved(s->st); i < dt_stitch_n_held(s->st); i++) {
		if ((rv = dt_taskstore_put_held(s->store, dt_stitch_held_at(s->st, i)->id,
						&dt_stitch_held_at(s->st, i)->in)) != 0) {
			goto abort;
		}
	}
	for (size_t i = 0; i < dt_stitch_n_released(s->st); i++) {
		if ((rv = dt_taskstore_del_held(s->store, dt_stitch_released_at(s->st, i))) != 0) {
			goto abort;
		}
	}
	if ((rv = dt_taskstore_put_counters(s->store, &c)) != 0) {
		goto abort;
	}
	if ((rv = dt_taskstore_commit(s->store)) != 0) {
		return rv;
	}
	for (size_t i = 0; i < dt_tasks_n_active(s->tasks); i++) {
		dt_tasks_active(s->tasks, i)->n_stored = dt_tasks_active(s->tasks, i)->n_obs;
		dt_tasks_active(s->tasks, i)->dirty = false;
	}
	dt_stitch_saved(s->st);
	s->stored = c;
	return 0;
abort:
	dt_taskstore_abort(s->store);
	return rv;
}

/* The restore callbacks (as ld_* in analyzer.c). */
static uint64_t restore_now_ms;
static size_t n_held_loaded;

static int ld_task(void *arg, struct dt_task *rec)
{
	struct state *s = arg;
	int rv;

	if ((rv = dt_tasks_restore(s->tasks, rec)) != 0) {
		free(rec);
	}
	return rv;
}

static int ld_obs(void *arg, uint32_t id, const struct dt_obs *o, const uint8_t *cap)
{
	struct state *s = arg;
	struct dt_task *t = dt_tasks_find_active(s->tasks, id);
	struct dt_obs copy = *o;
	int rv;

	if (!t) {
		return 0;
	}
	copy.arrival_ms = 0;
	if ((rv = dt_task_add_obs(t, &copy, cap)) == 0) {
		t->n_stored = t->n_obs;
	}
	return rv;
}

static int ld_counters(void *arg, const struct dt_stitch_counters *c)
{
	struct state *s = arg;

	dt_stitch_counters_set(s->st, c);
	s->stored = *c;
	return 0;
}

static int ld_held(void *arg, uint64_t id, const struct dt_stitch_in *in)
{
	struct state *s = arg;

	n_held_loaded++;
	return dt_stitch_restore_held(s->st, id, in, restore_now_ms);
}

static void restore(struct state *s, uint64_t now_ms)
{
	const struct dt_taskstore_load_ops ops = {
		.task = ld_task, .obs = ld_obs, .counters = ld_counters, .held = ld_held, .arg = s};

	restore_now_ms = now_ms;
	n_held_loaded = 0;
	cr_assert_eq(open_state(s), 0);
	cr_assert_eq(dt_taskstore_load(s->store, &ops), 0);
	cr_assert_eq(dt_stitch_relearn(s->st), 0);
}

static struct dt_task *create(struct state *s, struct dt_tuple t)
{
	struct dt_task_spec spec = {.tuple = t};
	struct dt_task *task;
	char err[256];

	if (dt_tasks_create(s->tasks, &spec, 0, "acme", 1, &task, err, sizeof(err)) != 0) {
		return NULL;
	}
	dt_task_ready(s->tasks, task, 0);
	task->dirty = true;
	return task;
}

/*
 * The child: T's gw-out sample from the stateless path (outside tuple, no orig) is held;
 * U's gw-out sample teaches U's translation. Both committed, then SIGKILL. Exits with a
 * status (1..) instead when a step fails.
 */
static void child(void)
{
	struct dt_stitch_in t_held = sample(DT_HOOK_GW_OUT, T_OUT, 1, 1000);
	struct dt_stitch_in u_teach = gw_out(U_OUT, U_IN, 2, 1100);
	struct state s;

	if (open_state(&s) != 0) {
		_exit(1);
	}
	if (!create(&s, T_IN) || !create(&s, U_IN)) {
		_exit(2);
	}
	if (dt_stitch_add(s.st, &t_held, 10) != 0 || dt_stitch_add(s.st, &u_teach, 10) != 0) {
		_exit(3);
	}
	if (dt_stitch_n_held(s.st) != 1 || dt_stitch_held_at(s.st, 0)->id != 1 ||
	    dt_stitch_unsaved(s.st) != 0) {
		_exit(4);
	}
	if (commit(&s) != 0) {
		_exit(5);
	}
	if (dt_stitch_unsaved(s.st) != 1) {
		_exit(6);
	}
	/* The crash: nothing is closed or freed. */
	raise(SIGKILL);
	_exit(7);
}

static void crash(void)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		child();
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "the child did not get to its crash: status %d", status);
}

static bool tuple_eq(const struct dt_tuple *a, const struct dt_tuple *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto && a->vni == b->vni;
}

Test(taskstore, held_samples_and_translations_survive_a_crash)
{
	struct dt_tuple t_in = T_IN, u_in = U_IN, t_out = T_OUT;
	struct dt_task *t, *u;
	struct state s;

	crash();
	restore(&s, 5000);
	cr_assert_eq(dt_tasks_n_active(s.tasks), 2);
	t = dt_tasks_find_active(s.tasks, 1);
	u = dt_tasks_find_active(s.tasks, 2);
	cr_assert(t && u);
	cr_expect_eq(t->n_obs, 0);
	cr_expect_eq(u->n_obs, 1);
	cr_expect(prefix_kept(u, 0), "an observation's prefix comes back from the store");
	cr_assert_eq(n_held_loaded, 1);
	cr_assert_eq(dt_stitch_n_held(s.st), 1);
	cr_expect_eq(dt_stitch_held_at(s.st, 0)->id, 1);
	cr_expect_eq(dt_stitch_held_at(s.st, 0)->in.o.arrival_ms, 5000,
		     "it waits a window from the restart");
	cr_expect(tuple_eq(&dt_stitch_held_at(s.st, 0)->in.o.tuple, &t_out));
	cr_expect_eq(dt_stitch_unsaved(s.st), 1, "restored: saved already");
	cr_expect_eq(dt_stitch_counters(s.st).samples, 2, "the counters came back");
	cr_expect_eq(dt_stitch_counters(s.st).attributed, 1);
	cr_expect_eq(dt_stitch_counters(s.st).learned, 1, "learning again is not counted again");
	cr_expect_eq(dt_stitch_n_nat(s.st), 1);

	/* U's translation was learned again: a drop of U after the NAT, without conntrack,
	 * is attributed at once. */
	struct dt_stitch_in u_drop = sample(DT_HOOK_DROP, U_OUT, 3, 1200);

	cr_assert_eq(dt_stitch_add(s.st, &u_drop, 5000), 0);
	cr_assert_eq(u->n_obs, 2);
	cr_expect(tuple_eq(&u->obs[1].canon, &u_in));
	cr_expect_eq(dt_stitch_n_held(s.st), 1);

	/* Nothing closes the window early: the held sample waits a whole window from the
	 * restart (its collectors resend what was not acknowledged). */
	cr_expect_not(dt_stitch_tick(s.st, 5000 + WIN - 1));

	/* T's gateway sample teaches; the window closes: the held sample is T's, once. */
	struct dt_stitch_in t_teach = gw_out(T_OUT, T_IN, 4, 1300);

	cr_assert_eq(dt_stitch_add(s.st, &t_teach, 5500), 0);
	cr_assert_eq(t->n_obs, 1);
	cr_assert(dt_stitch_tick(s.st, 5500 + WIN));
	cr_expect_eq(dt_stitch_n_held(s.st), 0);
	cr_assert_eq(t->n_obs, 2);
	cr_expect_eq(t->obs[1].ip_id, 1);
	cr_expect(prefix_kept(t, 0));
	cr_expect(prefix_kept(t, 1), "a held sample's prefix comes back from the store");
	cr_expect(tuple_eq(&t->obs[1].canon, &t_in));
	cr_expect_eq(dt_stitch_counters(s.st).late, 1);
	cr_expect_eq(dt_stitch_counters(s.st).unmatched, 0);
	cr_assert_eq(dt_stitch_n_released(s.st), 1);
	cr_expect_eq(dt_stitch_released_at(s.st, 0), 1);

	/* Committed: the held record goes with the observation it became. Read back, T has
	 * its 2 observations and nothing is held: attributed exactly once. */
	cr_assert_eq(commit(&s), 0);
	cr_expect_eq(dt_stitch_n_released(s.st), 0);
	free_state(&s);
	restore(&s, 9000);
	t = dt_tasks_find_active(s.tasks, 1);
	cr_assert_not_null(t);
	cr_expect_eq(t->n_obs, 2);
	cr_expect(prefix_kept(t, 0) && prefix_kept(t, 1));
	cr_expect_eq(n_held_loaded, 0);
	cr_expect_eq(dt_stitch_n_held(s.st), 0);
	cr_expect_eq(dt_stitch_counters(s.st).late, 1);
	cr_expect_eq(dt_stitch_counters(s.st).samples, 4);
	free_state(&s);
}

/* A batch whose commit failed is forgotten: its held samples go, their ids are given
 * again, and nothing of it is in the store. */
Test(taskstore, a_failed_batch_leaves_nothing_held)
{
	struct dt_stitch_in a = sample(DT_HOOK_GW_OUT, T_OUT, 1, 1000);
	struct dt_stitch_in b = sample(DT_HOOK_GW_OUT, U_OUT, 2, 1000);
	struct dt_stitch_counters before;
	struct state s;

	cr_assert_eq(open_state(&s), 0);
	cr_assert_not_null(create(&s, T_IN));
	cr_assert_eq(dt_stitch_add(s.st, &a, 10), 0);
	cr_assert_eq(commit(&s), 0);
	dt_stitch_counters_get(s.st, &before);
	cr_assert_eq(dt_stitch_add(s.st, &b, 20), 0);
	cr_assert_eq(dt_stitch_n_held(s.st), 2);
	cr_expect_eq(dt_stitch_unsaved(s.st), 1);
	/* The commit fails (not tried here): the analyzer takes the batch back. */
	dt_stitch_forget_unsaved(s.st);
	dt_stitch_counters_set(s.st, &before);
	cr_expect_eq(dt_stitch_n_held(s.st), 1);
	cr_expect_eq(dt_stitch_counters(s.st).samples, 1);
	/* The resend holds it again, under the same id. */
	cr_assert_eq(dt_stitch_add(s.st, &b, 30), 0);
	cr_expect_eq(dt_stitch_held_at(s.st, 1)->id, 2);
	cr_assert_eq(commit(&s), 0);
	free_state(&s);
	restore(&s, 100);
	cr_expect_eq(n_held_loaded, 2);
	cr_expect_eq(dt_stitch_counters(s.st).samples, 2);
	free_state(&s);
}
