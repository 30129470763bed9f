/* SPDX-License-Identifier: MIT */
/* The agent's spool: order, the cap with exact eviction counts, persistence, replay. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "dt_ingest.h"
#include "dt_link.h"
#include "dt_spool.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/dt-spool-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(spool, .init = mkdir_tmp, .fini = rm_tmp);

static void push(struct dt_spool *sp, uint64_t seq, uint32_t n, size_t len, uint64_t *ev)
{
	char msg[4096];

	memset(msg, (int)seq, len);
	cr_assert_eq(dt_spool_push(sp, seq, n, msg, len, 0, ev, NULL, 0), 0);
}

Test(spool, pops_in_seq_order_whatever_the_push_order)
{
	struct dt_spool *sp;
	msgpack_sbuffer m;
	uint64_t ev = 0, seq;
	uint32_t n;

	cr_assert_eq(dt_spool_open(dir, 1 << 20, &sp), 0);
	push(sp, 30, 3, 100, &ev);
	push(sp, 10, 1, 100, &ev);
	push(sp, 20, 2, 100, &ev);
	cr_assert_eq(dt_spool_count(sp), 3);
	cr_assert_eq(dt_spool_last_seq(sp), 30);
	msgpack_sbuffer_init(&m);
	for (uint64_t want = 10; want <= 30; want += 10) {
		msgpack_sbuffer_clear(&m);
		cr_assert_eq(dt_spool_pop(sp, &seq, &n, &m), 0);
		cr_assert_eq(seq, want);
		cr_assert_eq(n, want / 10);
		cr_assert_eq(m.size, 100);
		cr_assert_eq((unsigned char)m.data[0], (unsigned char)want);
	}
	cr_assert_eq(dt_spool_pop(sp, &seq, &n, &m), -ENOENT);
	cr_assert_eq(ev, 0);
	msgpack_sbuffer_destroy(&m);
	dt_spool_close(sp);
}

Test(spool, cap_evicts_the_oldest_and_counts_their_samples)
{
	struct dt_spool *sp;
	uint64_t ev = 0;

	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	for (uint64_t s = 1; s <= 10; s++)
		push(sp, s, 7, 300, &ev); /* 3 fit in 1000 bytes */
	cr_assert_eq(dt_spool_count(sp), 3);
	cr_assert_eq(dt_spool_bytes(sp), 900);
	cr_assert_eq(ev, 7 * 7, "7 batches of 7 samples evicted, got %llu", (unsigned long long)ev);
	/* A message larger than the whole cap is not stored, and counted. */
	push(sp, 11, 5, 2000, &ev);
	cr_assert_eq(ev, 7 * 7 + 5);
	cr_assert_eq(dt_spool_count(sp), 3);
	dt_spool_close(sp);
}

Test(spool, one_owner_at_a_time_and_parents_are_created)
{
	struct dt_spool *a, *b;
	char sub[128];

	snprintf(sub, sizeof(sub), "%s/x/y", dir);
	cr_assert_eq(dt_spool_open(sub, 1 << 20, &a), 0);
	cr_assert_eq(dt_spool_open(sub, 1 << 20, &b), -EBUSY);
	dt_spool_close(a);
	cr_assert_eq(dt_spool_open(sub, 1 << 20, &b), 0);
	dt_spool_close(b);
}

Test(spool, survives_a_reopen)
{
	struct dt_spool *sp;
	msgpack_sbuffer m;
	uint64_t ev = 0, seq;
	uint32_t n;

	cr_assert_eq(dt_spool_open(dir, 1 << 20, &sp), 0);
	push(sp, 5, 1, 10, &ev);
	push(sp, 6, 2, 20, &ev);
	dt_spool_close(sp);
	cr_assert_eq(dt_spool_open(dir, 1 << 20, &sp), 0);
	cr_assert_eq(dt_spool_count(sp), 2);
	cr_assert_eq(dt_spool_bytes(sp), 30);
	msgpack_sbuffer_init(&m);
	cr_assert_eq(dt_spool_pop(sp, &seq, &n, &m), 0);
	cr_assert_eq(seq, 5);
	msgpack_sbuffer_destroy(&m);
	dt_spool_close(sp);
}

/* Stored batches, in arrival order, for the replay test. */
static uint64_t got_seq[64];
static uint32_t got_n;

static int on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	if (got_n < 64)
		got_seq[got_n++] = b->seq;
	return DT_ST_OK;
}

static uint64_t last_seq(void *arg, const char *sender)
{
	return got_n ? got_seq[got_n - 1] : 0;
}

Test(spool, link_spills_while_the_peer_is_away_and_replays_in_order_across_a_restart)
{
	struct dt_ingest_ops iops = {.on_batch = on_batch, .last_seq = last_seq};
	struct dt_wire_sample s = {.hook = DT_HOOK_PORT_IN,
				   .ts_ns = 1,
				   .drop_name = DT_STR_NONE,
				   .drop_where = DT_STR_NONE};
	struct dt_link_cfg lc = {.url = "inproc://spool-replay",
				 .sender = "h1",
				 .heartbeat_ms = 20,
				 .timeout_ms = 100,
				 .queue_max = 2};
	struct dt_link_stats st;
	struct dt_ingest *in;
	struct dt_spool *sp;
	struct dt_link *l;
	struct dt_batch b;

	memset(&b, 0, sizeof(b));
	strcpy(b.node, "h1");
	b.n_ifaces = 1;
	strcpy(b.ifaces[0], "pt1");
	s.tuple.proto = 1;
	b.n_samples = 1;
	b.samples = &s;

	/* Nobody listens: 2 batches wait in memory, 4 in the spool; then the agent stops. */
	cr_assert_eq(dt_spool_open(dir, 1 << 20, &sp), 0);
	lc.spool = sp;
	cr_assert_eq(dt_link_start(&lc, NULL, &l), 0);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(dt_link_send(l, &b), 0);
	dt_link_stats(l, &st);
	cr_assert_eq(st.queue_depth, 2);
	cr_assert_eq(st.spooled, 4);
	cr_assert_eq(dt_link_stop(l, 0), 0, "every unsent batch goes to the spool");
	cr_assert_eq(dt_spool_count(sp), 6);

	/* The collector is back and the agent restarts: all six arrive, in order, then new. */
	got_n = 0;
	cr_assert_eq(dt_ingest_start("inproc://spool-replay", &iops, &in), 0);
	cr_assert_eq(dt_link_start(&lc, NULL, &l), 0);
	cr_assert_eq(dt_link_send(l, &b), 0);
	for (int i = 0; i < 500 && got_n < 7; i++)
		nng_msleep(10);
	cr_assert_eq(got_n, 7);
	for (uint32_t i = 1; i < got_n; i++)
		cr_assert_lt(got_seq[i - 1], got_seq[i], "batch %u out of order", i);
	cr_assert_eq(dt_link_stop(l, 1000), 0);
	cr_assert_eq(dt_spool_count(sp), 0);
	dt_ingest_stop(in);
	dt_spool_close(sp);
}

Test(spool, read_after_keeps_entries_until_deleted_and_eviction_spares_them)
{
	struct dt_spool *sp;
	msgpack_sbuffer m;
	uint64_t ev = 0, seq;
	uint32_t n;
	char big[300] = {0};

	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	push(sp, 1, 1, 300, &ev);
	push(sp, 2, 2, 300, &ev);
	msgpack_sbuffer_init(&m);
	cr_assert_eq(dt_spool_read_after(sp, 0, &seq, &n, &m), 0);
	cr_assert_eq(seq, 1);
	cr_assert_eq(dt_spool_read_after(sp, 1, &seq, &n, &m), 0);
	cr_assert_eq(seq, 2);
	cr_assert_eq(dt_spool_read_after(sp, 2, &seq, &n, &m), -ENOENT);
	cr_assert_eq(dt_spool_count(sp), 2, "reading removes nothing");
	/* 1 and 2 are being sent: a third and fourth batch evict neither of them... */
	cr_assert_eq(dt_spool_push(sp, 3, 3, big, 300, 2, &ev, NULL, 0), 0);
	cr_assert_eq(dt_spool_push(sp, 4, 4, big, 300, 2, &ev, NULL, 0), 0);
	cr_assert_eq(ev, 3, "batch 3 gave way to batch 4, not 1 or 2");
	/* ...and when nothing else can go, the newcomer is what does not fit. */
	cr_assert_eq(dt_spool_push(sp, 5, 5, big, 300, 4, &ev, NULL, 0), 0);
	cr_assert_eq(ev, 3 + 5);
	cr_assert_eq(dt_spool_count(sp), 3);
	cr_assert_eq(dt_spool_delete(sp, 1), 0);
	cr_assert_eq(dt_spool_delete(sp, 1), 0, "deleting twice is harmless");
	cr_assert_eq(dt_spool_count(sp), 2);
	msgpack_sbuffer_destroy(&m);
	dt_spool_close(sp);
}

/*
 * A newcomer that would need more than the unprotected entries to fit: trying to evict
 * them happens in a transaction that is abandoned, so they stay, and only the newcomer
 * counts as lost (counting them too would say they were lost, and later send them).
 */
Test(spool, an_abandoned_eviction_counts_only_the_newcomer)
{
	struct dt_spool *sp;
	msgpack_sbuffer m;
	uint64_t ev = 0, seq;
	uint32_t n;
	char big[600] = {0};

	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	push(sp, 1, 1, 300, &ev); /* being sent (keep_upto 2) */
	push(sp, 2, 2, 300, &ev); /* being sent */
	push(sp, 3, 3, 300, &ev); /* waits */
	cr_assert_eq(ev, 0);
	/* 600 more bytes: evicting 3 frees 300, not enough with 1 and 2 kept. */
	cr_assert_eq(dt_spool_push(sp, 4, 4, big, 600, 2, &ev, NULL, 0), 0);
	cr_assert_eq(ev, 4, "only the newcomer is lost (%llu)", (unsigned long long)ev);
	cr_assert_eq(dt_spool_count(sp), 3);
	msgpack_sbuffer_init(&m);
	cr_assert_eq(dt_spool_read_after(sp, 2, &seq, &n, &m), 0);
	cr_assert_eq(seq, 3, "batch 3 is still there");
	cr_assert_eq(n, 3);
	msgpack_sbuffer_destroy(&m);
	dt_spool_close(sp);
}

/* The owner's note commits with the batch, and survives a restart with the evictions. */
Test(spool, ledger_commits_with_each_push_and_survives_a_restart)
{
	struct dt_spool *sp;
	char big[600] = {0}, note[16];
	uint64_t ev = 0, seq;
	uint32_t n;
	msgpack_sbuffer m;

	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	cr_assert_eq(dt_spool_note(sp, note, sizeof(note)), 0, "a new spool has no note");
	cr_assert_eq(dt_spool_push(sp, 10, 7, big, 600, 0, &ev, "first", 5), 0);
	cr_assert_eq(dt_spool_push(sp, 11, 9, big, 600, 0, &ev, "second", 6), 0);
	cr_assert_eq(ev, 7, "batch 10 was evicted to make room for 11");
	cr_assert_eq(dt_spool_push(sp, 12, 4, big, 2000, 0, &ev, NULL, 0), 0);
	cr_assert_eq(ev, 11, "a batch larger than the spool counts as evicted");
	cr_assert_eq(dt_spool_evicted(sp), 11);
	dt_spool_close(sp);

	/* What a SIGKILL after the last push leaves: the note of the last push that had one. */
	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	cr_assert_eq(dt_spool_evicted(sp), 11, "evictions count across restarts");
	cr_assert_eq(dt_spool_note(sp, note, sizeof(note)), 6);
	cr_assert_eq(memcmp(note, "second", 6), 0);
	cr_assert_eq(dt_spool_note_put(sp, "third", 5), 0);
	dt_spool_close(sp);

	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	cr_assert_eq(dt_spool_count(sp), 1, "the ledger is no batch");
	cr_assert_eq(dt_spool_evicted(sp), 11);
	cr_assert_eq(dt_spool_note(sp, note, sizeof(note)), 5);
	cr_assert_eq(memcmp(note, "third", 5), 0);
	msgpack_sbuffer_init(&m);
	cr_assert_eq(dt_spool_pop(sp, &seq, &n, &m), 0);
	cr_assert_eq(seq, 11, "the oldest batch, not the ledger");
	cr_assert_eq(n, 9);
	cr_assert_eq(dt_spool_pop(sp, &seq, &n, &m), -ENOENT);
	cr_assert_eq(dt_spool_last_seq(sp), 0, "the ledger alone: empty");
	msgpack_sbuffer_destroy(&m);
	cr_assert_eq(dt_spool_note(sp, note, sizeof(note)), 5, "popping leaves the ledger");
	dt_spool_close(sp);
}

/* A push that fails (here: a note too large) commits neither the batch nor the note. */
Test(spool, a_refused_push_changes_nothing)
{
	static char note[DT_SPOOL_NOTE_MAX + 1];
	struct dt_spool *sp;
	char msg[10] = {0}, got[8];
	uint64_t ev = 0;

	cr_assert_eq(dt_spool_open(dir, 1000, &sp), 0);
	cr_assert_eq(dt_spool_push(sp, 1, 1, msg, 10, 0, &ev, "ok", 2), 0);
	cr_assert_eq(dt_spool_push(sp, 2, 1, msg, 10, 0, &ev, note, sizeof(note)), -EMSGSIZE);
	cr_assert_eq(dt_spool_count(sp), 1);
	cr_assert_eq(dt_spool_note(sp, got, sizeof(got)), 2);
	dt_spool_close(sp);
}
