/* SPDX-License-Identifier: MIT */
/*
 * The collector's store (collector/store.c): a batch leaves it once the analyzer
 * acknowledged it, and not before; local sequences and the senders' seqs (deduplication)
 * are the same after a reopen, also when every batch was deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "store.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/dt-store-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = mkdir_tmp, .fini = rm_tmp);

static struct dt_store *store_open(void)
{
	struct dt_store *st;

	cr_assert_eq(dt_store_open(dir, 8, &st), 0);
	return st;
}

static struct dt_store *store_reopen(struct dt_store *st)
{
	dt_store_close(st);
	return store_open();
}

/* A batch from sender with seq; its bytes name both. */
static void put(struct dt_store *st, const char *sender, uint64_t seq)
{
	char raw[32];
	int n = snprintf(raw, sizeof(raw), "%s#%llu", sender, (unsigned long long)seq);

	cr_assert_eq(dt_store_put(st, sender, seq, raw, (size_t)n), 0);
}

/* What dt_store_scan() handed over: the local sequences and the bytes. */
struct seen {
	unsigned n;
	uint64_t lseq[16];
	char raw[16][32];
};

static int collect(void *arg, uint64_t lseq, const void *raw, size_t len)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 16);
	cr_assert_lt(len, sizeof(s->raw[0]));
	s->lseq[s->n] = lseq;
	memcpy(s->raw[s->n], raw, len);
	s->raw[s->n++][len] = '\0';
	return 0;
}

/* Every batch in the store, from the first. */
static struct seen scan_all(struct dt_store *st)
{
	struct seen s = {0};

	dt_store_scan(st, 0, 64, collect, &s);
	return s;
}

/* The store holds batches 4 ("h2#2") and 5 ("h1#3") of five, and nothing else. */
static void expect_last_two(struct dt_store *st)
{
	struct seen s = scan_all(st);

	cr_expect_eq(dt_store_held(st), 2, "acknowledged batches deleted: %llu held",
		     (unsigned long long)dt_store_held(st));
	cr_assert_eq(s.n, 2, "the unacknowledged batches stay: %u found", s.n);
	cr_expect_eq(s.lseq[0], 4);
	cr_expect_str_eq(s.raw[0], "h2#2");
	cr_expect_eq(s.lseq[1], 5);
	cr_expect_str_eq(s.raw[1], "h1#3");
	cr_expect_eq(dt_store_forwarded(st), 3);
	cr_expect_eq(dt_store_last_lseq(st), 5, "batches stored in all");
}

Test(store, acknowledged_batches_leave_the_others_stay)
{
	struct dt_store *st = store_open();

	put(st, "h1", 1);
	put(st, "h2", 1);
	put(st, "h1", 2);
	put(st, "h2", 2);
	put(st, "h1", 3);
	cr_assert_eq(dt_store_held(st), 5);
	cr_assert_eq(dt_store_set_forwarded(st, 3), 0);
	expect_last_two(st);
	st = store_reopen(st); /* a restart resends exactly these */
	expect_last_two(st);
	cr_assert_eq(dt_store_set_forwarded(st, 3), 0, "again: nothing more leaves");
	expect_last_two(st);
	cr_assert_eq(dt_store_set_forwarded(st, 5), 0);
	cr_expect_eq(dt_store_held(st), 0);
	cr_expect_eq(scan_all(st).n, 0);
	dt_store_close(st);
}

/*
 * The collector forwards batch lseq under epoch << 32 | lseq, and the analyzer drops
 * what is not above the last it stored: a store that started again at 1 after every
 * batch left would have its next batches dropped as duplicates.
 */
Test(store, sequences_go_on_when_every_batch_left)
{
	struct dt_store *st = store_open();
	uint64_t epoch = dt_store_epoch(st);
	struct seen s;

	put(st, "h1", 1);
	put(st, "h1", 2);
	put(st, "h1", 3);
	cr_assert_eq(dt_store_set_forwarded(st, 3), 0);
	cr_assert_eq(dt_store_held(st), 0);
	st = store_reopen(st);
	cr_expect_eq(dt_store_epoch(st), epoch);
	cr_expect_eq(dt_store_last_lseq(st), 3, "lseq %llu after a reopen",
		     (unsigned long long)dt_store_last_lseq(st));
	cr_expect_eq(dt_store_forwarded(st), 3);
	put(st, "h1", 4);
	s = scan_all(st);
	cr_assert_eq(s.n, 1);
	cr_expect_eq(s.lseq[0], 4);
	cr_expect_str_eq(s.raw[0], "h1#4");
	dt_store_close(st);
}

Test(store, sender_seqs_are_the_stores)
{
	static char big[2 << 20]; /* larger than the map below: its commit fails */
	const struct dt_store_batch two[] = {{.sender = "h3", .seq = 40, .raw = "a", .len = 1},
					     {.sender = "h4", .seq = 41, .raw = "b", .len = 1}};
	struct dt_store *st;

	cr_assert_eq(dt_store_open(dir, 1, &st), 0);
	cr_expect_eq(dt_store_last_seq(st, "h1"), 0, "none stored");
	put(st, "h1", 7);
	put(st, "h2", 9);
	put(st, "h1", 8);
	cr_assert_eq(dt_store_put_many(st, two, 2), 0);
	cr_expect_eq(dt_store_last_seq(st, "h1"), 8);
	cr_expect_eq(dt_store_last_seq(st, "h2"), 9);
	cr_expect_eq(dt_store_last_seq(st, "h3"), 40);
	cr_expect_eq(dt_store_last_seq(st, "h4"), 41);
	/* Not stored, so not seen: a resend must be stored then. */
	cr_assert_neq(dt_store_put(st, "h1", 20, big, sizeof(big)), 0);
	cr_assert_neq(dt_store_put(st, "h5", 1, big, sizeof(big)), 0);
	cr_expect_eq(dt_store_last_seq(st, "h1"), 8, "a failed commit noted nothing");
	cr_expect_eq(dt_store_last_seq(st, "h5"), 0, "a failed commit noted nothing");
	cr_assert_eq(dt_store_set_forwarded(st, 5), 0, "deleting batches keeps the seqs");
	dt_store_close(st);
	cr_assert_eq(dt_store_open(dir, 1, &st), 0);
	cr_expect_eq(dt_store_last_seq(st, "h1"), 8);
	cr_expect_eq(dt_store_last_seq(st, "h2"), 9);
	cr_expect_eq(dt_store_last_seq(st, "h3"), 40);
	cr_expect_eq(dt_store_last_seq(st, "h4"), 41);
	cr_expect_eq(dt_store_last_seq(st, "h5"), 0);
	dt_store_close(st);
}

/*
 * A heartbeat kept for its news is stored with seq 0 and leaves the sender's last seq: a
 * link sends heartbeats between batches, so the heartbeat's own seq may be above batches
 * the sender still holds, which must not read as duplicates when they come.
 */
Test(store, a_heartbeat_leaves_the_senders_seq)
{
	struct dt_store *st = store_open();
	struct seen seen;

	put(st, "h1", 100);
	put(st, "h1", 0); /* the heartbeat that went out as seq 250, ahead of 101.. */
	cr_expect_eq(dt_store_last_seq(st, "h1"), 100);
	put(st, "h2", 0);
	cr_expect_eq(dt_store_last_seq(st, "h2"), 0, "a sender heard by heartbeat only");
	st = store_reopen(st);
	cr_expect_eq(dt_store_last_seq(st, "h1"), 100, "the same after a restart");
	seen = scan_all(st);
	cr_assert_eq(seen.n, 3, "the heartbeats are stored (and forwarded) all the same");
	cr_expect_str_eq(seen.raw[1], "h1#0");
	dt_store_close(st);
}

/* Many senders: the table grows and still finds each one, in memory and after a reopen. */
Test(store, many_senders)
{
	struct dt_store *st = store_open();
	struct dt_store_batch v[64];
	char names[64][16];

	for (unsigned r = 0; r < 16; r++) {
		for (unsigned i = 0; i < 64; i++) {
			snprintf(names[i], sizeof(names[i]), "node-%u", r * 64 + i);
			v[i] = (struct dt_store_batch){
				.sender = names[i], .seq = r * 64 + i + 1, .raw = "x", .len = 1};
		}
		cr_assert_eq(dt_store_put_many(st, v, 64), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < 1024; i++) {
			char name[16];

			snprintf(name, sizeof(name), "node-%u", i);
			cr_assert_eq(dt_store_last_seq(st, name), i + 1, "%s", name);
		}
		st = store_reopen(st);
	}
	dt_store_close(st);
}
