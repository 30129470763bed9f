/* SPDX-License-Identifier: MIT */
/*
 * store.h - the collector's durable sample store (LMDB).
 *
 * Databases in one environment:
 *   batches  u64 big-endian local sequence -> the batch as received (msgpack), appended
 *            with MDB_APPEND in arrival order; deleted once the analyzer acknowledged it
 *   senders  sender name -> u64 highest batch seq stored from it (deduplication)
 *   meta     "forwarded" -> u64 local sequence of the last batch the analyzer acknowledged
 *            "epoch" -> u64 creation time of the store (seconds), see dt_store_epoch()
 * A batch and its sender's seq are written in one transaction, so a batch is either
 * stored and deduplicable, or not stored at all. "forwarded" and the deletion of the
 * batches up to it are one transaction too: a batch leaves the store only once the
 * analyzer holds it durably (it acknowledges after its own commit), and after any crash
 * the store still holds every batch above "forwarded", the ones to forward again.
 *
 * Local sequences are dense (1, 2, 3, ... in the order of the commits) and never reused,
 * also when every batch was deleted: the newest one is how many batches the store ever
 * took (dt_store_last_lseq()).
 *
 * Threads: dt_store_put*() and dt_store_last_seq() from one thread (the collector's
 * ingest thread); the others from any one thread besides.
 */
#ifndef DT_COLLECTOR_STORE_H
#define DT_COLLECTOR_STORE_H

#include <stddef.h>
#include <stdint.h>

struct dt_store;

int dt_store_open(const char *dir, uint64_t max_mib, struct dt_store **out);
void dt_store_close(struct dt_store *st);

/*
 * Appends one batch from sender with its seq. Returns 0 or -errno. seq 0: a heartbeat kept
 * for its news (loss counters, windows), which leaves the sender's last seq as it is: a
 * link sends heartbeats between batches, so a heartbeat's own seq may be above those of
 * batches the sender still holds, and taking it as the last would make them duplicates.
 */
int dt_store_put(struct dt_store *st, const char *sender, uint64_t seq, const void *raw,
		 size_t len);

/* One batch for dt_store_put_many(). */
struct dt_store_batch {
	const char *sender;
	uint64_t seq; /* 0: a heartbeat, as for dt_store_put() */
	const void *raw;
	size_t len;
};

/*
 * Appends n (<= DT_INGEST_GROUP_MAX) batches, in order, and their senders' seqs in one
 * transaction: one durable commit for them all (a group commit), or nothing stored. A
 * sender appears once at most. Returns 0 or -errno.
 */
int dt_store_put_many(struct dt_store *st, const struct dt_store_batch *v, unsigned n);

/* dt_store_put_many() of what an ingest hands over together (on_batches, dt_ingest.h):
 * items[0..n), n <= DT_INGEST_GROUP_MAX. */
struct dt_ingest_item;
int dt_store_put_items(struct dt_store *st, const struct dt_ingest_item *items, unsigned n);

/*
 * Highest seq stored from sender (0: none). From memory: the senders database is read
 * once at open, and a seq is noted only after the commit that stored its batch, so the
 * answer is the store's, across restarts too.
 */
uint64_t dt_store_last_seq(struct dt_store *st, const char *sender);

/*
 * Calls fn for each stored batch with a local sequence greater than after, in order,
 * at most max of them; stops early when fn returns non-zero. Returns the local
 * sequence of the last batch passed to fn that returned 0 (after, when none).
 */
uint64_t dt_store_scan(struct dt_store *st, uint64_t after, unsigned max,
		       int (*fn)(void *arg, uint64_t lseq, const void *raw, size_t len), void *arg);

/*
 * The analyzer acknowledged the batches up to lseq (it stored them durably): notes it and
 * deletes them, in one transaction. Returns 0 or -errno (then nothing changed).
 */
int dt_store_set_forwarded(struct dt_store *st, uint64_t lseq);
uint64_t dt_store_forwarded(struct dt_store *st);

/*
 * The store's creation time in seconds. The collector forwards batch lseq under the seq
 * epoch << 32 | lseq, which grows even when a store is replaced by a new one, so that
 * the analyzer's deduplication never mistakes a new batch for an old one.
 */
uint64_t dt_store_epoch(struct dt_store *st);

/* Local sequence of the newest batch stored (0: none): how many batches the store took
 * since it was created, over restarts. */
uint64_t dt_store_last_lseq(struct dt_store *st);

/* Number of batches held now: not acknowledged by the analyzer yet (or acknowledged and
 * not yet noted by dt_store_set_forwarded()). */
uint64_t dt_store_held(struct dt_store *st);

#endif /* DT_COLLECTOR_STORE_H */
