/* SPDX-License-Identifier: MIT */
/*
 * dt_spool.h - a bounded, durable FIFO of encoded batches in LMDB (the agent's spool).
 *
 * While its peer is unreachable a link keeps only queue_max batches in memory; the rest
 * go here, keyed by their sequence number, so they replay in order when the peer comes
 * back, and they survive a restart of the agent. The spool holds at most max_bytes of
 * messages: to make room it evicts the oldest entries and reports how many samples they
 * carried, so that the loss is counted exactly, never silent.
 *
 * The spool also keeps a ledger, committed in the same transaction as each push: the
 * samples it evicted over its life (across restarts of its owner), and a note of its
 * owner's (at most DT_SPOOL_NOTE_MAX bytes; the agent's accounting, agent/ledger.h), so
 * that what the note says is true of exactly the batches the spool holds or sent.
 */
#ifndef DT_SPOOL_H
#define DT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

struct dt_spool;

#define DT_SPOOL_NOTE_MAX 2048

/* Opens (creating, with its parents) the spool in directory dir and locks it: -EBUSY
 * when another process holds it. Returns 0 or -errno. */
int dt_spool_open(const char *dir, uint64_t max_bytes, struct dt_spool **out);
void dt_spool_close(struct dt_spool *sp);

/*
 * Stores one message under seq (never 0). Evicts the oldest entries above keep_upto (those
 * up to it are being sent) while the spool would exceed its cap, and adds the samples they
 * carried to *evicted_samples. A message that does not fit even so is not stored: it
 * counts as evicted. The ledger (its evictions, and note when not NULL) is committed in
 * the same transaction. Returns 0 or -errno (then nothing changed).
 */
int dt_spool_push(struct dt_spool *sp, uint64_t seq, uint32_t n_samples, const void *msg,
		  size_t len, uint64_t keep_upto, uint64_t *evicted_samples, const void *note,
		  size_t note_len);

/* Commits the owner's note alone. Returns 0 or -errno. */
int dt_spool_note_put(struct dt_spool *sp, const void *note, size_t note_len);

/* Copies at most cap bytes of the note last committed (by this run or an earlier one) into
 * buf; returns its length (0: none). */
size_t dt_spool_note(const struct dt_spool *sp, void *buf, size_t cap);

/* Samples evicted over the spool's life, across restarts (as committed). */
uint64_t dt_spool_evicted(const struct dt_spool *sp);

/* Reads, without removing it, the oldest entry whose seq is above after. Returns 0,
 * -ENOENT when there is none, or -errno. */
int dt_spool_read_after(struct dt_spool *sp, uint64_t after, uint64_t *seq, uint32_t *n_samples,
			msgpack_sbuffer *msg);

/* Removes the entry seq (once its peer acknowledged it). Returns 0 or -errno. */
int dt_spool_delete(struct dt_spool *sp, uint64_t seq);

/* Removes the oldest entry into *seq, *n_samples and msg (appended). Returns 0, -ENOENT
 * when the spool is empty, or -errno. */
int dt_spool_pop(struct dt_spool *sp, uint64_t *seq, uint32_t *n_samples, msgpack_sbuffer *msg);

uint64_t dt_spool_count(const struct dt_spool *sp);
uint64_t dt_spool_bytes(const struct dt_spool *sp);
/* Highest seq stored (0: empty). */
uint64_t dt_spool_last_seq(struct dt_spool *sp);

#endif /* DT_SPOOL_H */
