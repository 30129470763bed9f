/* SPDX-License-Identifier: MIT */
/*
 * dt_spool.c - the agent's spool (see dt_spool.h), on dt_lmdb: one unnamed database,
 * big-endian seq -> u32 n_samples, then the message; and under seq 0 (a sender's seq
 * starts at the wall clock in microseconds, never 0) the ledger: u64 samples evicted over
 * the spool's life, then the owner's note.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dt_lmdb.h"
#include "dt_spool.h"

/* Each value: u32 n_samples, then the message. */
#define HDR sizeof(uint32_t)
/* The ledger's key: below every batch, so that the walks from seq 1 never meet it. */
#define LEDGER_SEQ 0
#define FIRST_SEQ 1

struct dt_spool {
	int lock_fd; /* flock on <dir>/owner: one agent per spool */
	struct dt_lmdb db;
	MDB_dbi dbi;
	uint64_t max_bytes;
	uint64_t bytes; /* sum of message sizes held */
	uint64_t count;
	uint64_t evicted; /* samples evicted over the spool's life, as committed */
	size_t note_len;
	unsigned char note[DT_SPOOL_NOTE_MAX]; /* the owner's note, as committed */
};

/* An entry as read; msg is valid until its transaction changes the spool or ends. */
struct entry {
	uint64_t seq;
	uint32_t n_samples;
	const char *msg;
	size_t len;
};

static void entry_of(const MDB_val *k, const MDB_val *v, struct entry *e)
{
	e->seq = dt_lmdb_get_be64(k->mv_data);
	memcpy(&e->n_samples, v->mv_data, HDR);
	e->msg = (const char *)v->mv_data + HDR;
	e->len = v->mv_size - HDR;
}

/* The oldest entry with a seq of at least from (NULL: the oldest). Returns LMDB's code. */
static int first_entry(struct dt_spool *sp, MDB_txn *txn, const MDB_val *from, struct entry *e)
{
	uint8_t kb[8];
	MDB_val k, v, first = dt_lmdb_key64(kb, FIRST_SEQ);
	int rc;

	if ((rc = dt_lmdb_first(txn, sp->dbi, from ? from : &first, &k, &v)) == 0)
		entry_of(&k, &v, e);
	return rc;
}

/* Hands entry e to the caller: its seq, its samples, its message appended to msg. */
static void hand_out(const struct entry *e, uint64_t *seq, uint32_t *n_samples,
		     msgpack_sbuffer *msg)
{
	*seq = e->seq;
	*n_samples = e->n_samples;
	msgpack_sbuffer_write(msg, e->msg, e->len);
}

/* Returns LMDB's code. */
static int del_entry(struct dt_spool *sp, MDB_txn *txn, uint64_t seq)
{
	uint8_t kb[8];
	MDB_val k = dt_lmdb_key64(kb, seq);

	return mdb_del(txn, sp->dbi, &k, NULL);
}

/* Two agents sharing a spool would replay each other's batches as their own. */
static int lock_dir(const char *dir, int *fd)
{
	char lock[600];
	int rc;

	snprintf(lock, sizeof(lock), "%s/owner", dir);
	*fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (*fd >= 0 && flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (*fd >= 0)
		close(*fd);
	return rc;
}

static int count_one(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct dt_spool *sp = ctx;

	if (dt_lmdb_get_be64(key->mv_data) == LEDGER_SEQ)
		return 0;
	sp->bytes += val->mv_size - HDR;
	sp->count++;
	return 0;
}

/* The ledger an earlier run committed, if any: its evictions and its owner's note. */
static int read_ledger(struct dt_spool *sp, MDB_txn *txn)
{
	uint8_t kb[8];
	MDB_val k = dt_lmdb_key64(kb, LEDGER_SEQ), v;
	int rc = mdb_get(txn, sp->dbi, &k, &v);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return dt_lmdb_err(&sp->db, rc, "spool ledger");
	if (v.mv_size < sizeof(uint64_t) || v.mv_size - sizeof(uint64_t) > DT_SPOOL_NOTE_MAX)
		return -EBADMSG;
	memcpy(&sp->evicted, v.mv_data, sizeof(uint64_t));
	sp->note_len = v.mv_size - sizeof(uint64_t);
	memcpy(sp->note, (const char *)v.mv_data + sizeof(uint64_t), sp->note_len);
	return 0;
}

/* What an earlier run left: the count and the bytes of its messages, and its ledger. */
static int count_entries(struct dt_spool *sp)
{
	MDB_txn *txn;
	int rc;

	if ((rc = dt_lmdb_begin(&sp->db, MDB_RDONLY, &txn)))
		return rc;
	if ((rc = read_ledger(sp, txn)) == 0)
		rc = dt_lmdb_walk(&sp->db, txn, sp->dbi, NULL, count_one, sp);
	mdb_txn_abort(txn);
	return rc;
}

int dt_spool_open(const char *dir, uint64_t max_bytes, struct dt_spool **out)
{
	const struct dt_lmdb_cfg cfg = {
		.log_id = "DT-SPOOL-LMDB",
		/* Pages, keys and free lists need room beyond the messages themselves. */
		.map_size = (size_t)(max_bytes * 2 + (16u << 20)),
		.env_flags = MDB_NOSYNC, /* written out at close, not at each batch */
		.n_dbs = 0,
	};
	struct dt_spool *sp;
	int rc;

	if ((rc = dt_lmdb_mkdirs(dir)))
		return rc;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	if ((rc = lock_dir(dir, &sp->lock_fd))) {
		free(sp);
		return rc;
	}
	sp->max_bytes = max_bytes;
	if ((rc = dt_lmdb_open(&sp->db, dir, &cfg, &sp->dbi))) {
		rc = dt_lmdb_err(&sp->db, rc, dir);
		goto fail;
	}
	if ((rc = count_entries(sp)))
		goto fail;
	*out = sp;
	return 0;
fail:
	dt_lmdb_close(&sp->db);
	close(sp->lock_fd);
	free(sp);
	return rc;
}

void dt_spool_close(struct dt_spool *sp)
{
	if (!sp)
		return;
	dt_lmdb_close(&sp->db);
	close(sp->lock_fd);
	free(sp);
}

/* Deletes the oldest entry above keep_upto inside txn, counting its samples. Returns
 * LMDB's code: MDB_NOTFOUND when there is none. */
static int evict_oldest(struct dt_spool *sp, MDB_txn *txn, uint64_t keep_upto,
			uint64_t *evicted_samples)
{
	uint8_t kb[8];
	MDB_val from = dt_lmdb_key64(kb, keep_upto + 1);
	struct entry e;
	int rc;

	if ((rc = first_entry(sp, txn, &from, &e)))
		return rc;
	*evicted_samples += e.n_samples;
	sp->bytes -= e.len;
	sp->count--;
	return del_entry(sp, txn, e.seq);
}

/* Evicts until len more bytes fit. Returns LMDB's code: MDB_NOTFOUND when what is left to
 * evict is being sent. */
static int make_room(struct dt_spool *sp, MDB_txn *txn, size_t len, uint64_t keep_upto,
		     uint64_t *evicted_samples)
{
	int rc = 0;

	while (rc == 0 && sp->bytes + len > sp->max_bytes && sp->count > 0)
		rc = evict_oldest(sp, txn, keep_upto, evicted_samples);
	return rc;
}

/* Returns LMDB's code. */
static int put_entry(struct dt_spool *sp, MDB_txn *txn, uint64_t seq, uint32_t n_samples,
		     const void *msg, size_t len)
{
	uint8_t kb[8];
	MDB_val k = dt_lmdb_key64(kb, seq), v = {len + HDR, NULL};
	int rc;

	if ((rc = mdb_put(txn, sp->dbi, &k, &v, MDB_RESERVE)))
		return rc;
	memcpy(v.mv_data, &n_samples, HDR);
	memcpy((char *)v.mv_data + HDR, msg, len);
	return 0;
}

/* Writes the ledger: evicted samples in all, and note (NULL: the note as it is). Returns
 * LMDB's code. */
static int put_ledger(struct dt_spool *sp, MDB_txn *txn, uint64_t evicted, const void *note,
		      size_t note_len)
{
	uint8_t kb[8];
	MDB_val k = dt_lmdb_key64(kb, LEDGER_SEQ), v;
	int rc;

	if (!note) {
		note = sp->note;
		note_len = sp->note_len;
	}
	v = (MDB_val){sizeof(evicted) + note_len, NULL};
	if ((rc = mdb_put(txn, sp->dbi, &k, &v, MDB_RESERVE)))
		return rc;
	memcpy(v.mv_data, &evicted, sizeof(evicted));
	memcpy((char *)v.mv_data + sizeof(evicted), note, note_len);
	return 0;
}

/* The ledger as committed: what the next run reads. */
static void ledger_committed(struct dt_spool *sp, uint64_t evicted, const void *note,
			     size_t note_len)
{
	sp->evicted = evicted;
	if (note && note != sp->note) {
		memcpy(sp->note, note, note_len);
		sp->note_len = note_len;
	}
}

/*
 * One transaction: the message under seq when stored (after making room), and the ledger
 * with what it evicted, or with the message itself when it did not fit. Returns LMDB's
 * code; MDB_NOTFOUND: everything held is being sent and the message does not fit.
 */
static int push_txn(struct dt_spool *sp, uint64_t seq, uint32_t n_samples, const void *msg,
		    size_t len, uint64_t keep_upto, bool store, const void *note, size_t note_len,
		    uint64_t *evicted)
{
	MDB_txn *txn;
	int rc;

	*evicted = store ? 0 : n_samples;
	if ((rc = mdb_txn_begin(sp->db.env, NULL, 0, &txn)))
		return rc;
	if (store && (rc = make_room(sp, txn, len, keep_upto, evicted)) == 0)
		rc = put_entry(sp, txn, seq, n_samples, msg, len);
	if (rc == 0)
		rc = put_ledger(sp, txn, sp->evicted + *evicted, note, note_len);
	if (rc == 0)
		return mdb_txn_commit(txn);
	mdb_txn_abort(txn);
	return rc;
}

int dt_spool_push(struct dt_spool *sp, uint64_t seq, uint32_t n_samples, const void *msg,
		  size_t len, uint64_t keep_upto, uint64_t *evicted_samples, const void *note,
		  size_t note_len)
{
	/* Evictions count once their transaction commits: an aborted one deleted nothing. */
	uint64_t bytes = sp->bytes, count = sp->count, evicted = 0;
	bool store = len <= sp->max_bytes;
	int rc;

	if (note_len > DT_SPOOL_NOTE_MAX)
		return -EMSGSIZE;
	rc = push_txn(sp, seq, n_samples, msg, len, keep_upto, store, note, note_len, &evicted);
	if (rc == MDB_NOTFOUND && store) {
		/* Everything held is being sent: this message is what does not fit. */
		sp->bytes = bytes;
		sp->count = count;
		store = false;
		rc = push_txn(sp, seq, n_samples, msg, len, keep_upto, store, note, note_len,
			      &evicted);
	}
	if (rc) {
		sp->bytes = bytes;
		sp->count = count;
		return dt_lmdb_err(&sp->db, rc, "spool");
	}
	ledger_committed(sp, sp->evicted + evicted, note, note_len);
	*evicted_samples += evicted;
	if (store) {
		sp->bytes += len;
		sp->count++;
	}
	return 0;
}

int dt_spool_note_put(struct dt_spool *sp, const void *note, size_t note_len)
{
	MDB_txn *txn;
	int rc;

	if (note_len > DT_SPOOL_NOTE_MAX)
		return -EMSGSIZE;
	if ((rc = dt_lmdb_begin(&sp->db, 0, &txn)))
		return rc;
	if ((rc = put_ledger(sp, txn, sp->evicted, note, note_len))) {
		mdb_txn_abort(txn);
		return dt_lmdb_err(&sp->db, rc, "spool ledger");
	}
	if ((rc = dt_lmdb_commit(&sp->db, txn, "spool ledger")))
		return rc;
	ledger_committed(sp, sp->evicted, note, note_len);
	return 0;
}

size_t dt_spool_note(const struct dt_spool *sp, void *buf, size_t cap)
{
	size_t n = sp->note_len < cap ? sp->note_len : cap;

	memcpy(buf, sp->note, n);
	return sp->note_len;
}

uint64_t dt_spool_evicted(const struct dt_spool *sp)
{
	return sp->evicted;
}

int dt_spool_pop(struct dt_spool *sp, uint64_t *seq, uint32_t *n_samples, msgpack_sbuffer *msg)
{
	struct entry e;
	MDB_txn *txn;
	int rc;

	if (sp->count == 0)
		return -ENOENT;
	if ((rc = dt_lmdb_begin(&sp->db, 0, &txn)))
		return rc;
	if ((rc = first_entry(sp, txn, NULL, &e)) == 0) {
		hand_out(&e, seq, n_samples, msg);
		rc = del_entry(sp, txn, e.seq);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc)
		return dt_lmdb_err(&sp->db, rc, "spool pop");
	sp->bytes -= e.len;
	sp->count--;
	return 0;
}

int dt_spool_read_after(struct dt_spool *sp, uint64_t after, uint64_t *seq, uint32_t *n_samples,
			msgpack_sbuffer *msg)
{
	uint8_t kb[8];
	MDB_val from = dt_lmdb_key64(kb, after + 1);
	struct entry e;
	MDB_txn *txn;
	int rc;

	if ((rc = dt_lmdb_begin(&sp->db, MDB_RDONLY, &txn)))
		return rc;
	if ((rc = first_entry(sp, txn, &from, &e)) == 0)
		hand_out(&e, seq, n_samples, msg);
	mdb_txn_abort(txn);
	return dt_lmdb_err(&sp->db, rc, "spool read");
}

int dt_spool_delete(struct dt_spool *sp, uint64_t seq)
{
	uint8_t kb[8];
	MDB_val k = dt_lmdb_key64(kb, seq), v;
	MDB_txn *txn;
	size_t len = 0;
	int rc;

	if ((rc = dt_lmdb_begin(&sp->db, 0, &txn)))
		return rc;
	if ((rc = mdb_get(txn, sp->dbi, &k, &v)) == 0) {
		len = v.mv_size - HDR;
		rc = mdb_del(txn, sp->dbi, &k, NULL);
	}
	if (rc) {
		mdb_txn_abort(txn);
		/* Already gone is what the caller wants. */
		return rc == MDB_NOTFOUND ? 0 : dt_lmdb_err(&sp->db, rc, "spool delete");
	}
	if ((rc = dt_lmdb_commit(&sp->db, txn, "spool delete")))
		return rc;
	sp->bytes -= len;
	sp->count--;
	return 0;
}

uint64_t dt_spool_count(const struct dt_spool *sp)
{
	return sp->count;
}

uint64_t dt_spool_bytes(const struct dt_spool *sp)
{
	return sp->bytes;
}

uint64_t dt_spool_last_seq(struct dt_spool *sp)
{
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t r = 0;

	if (mdb_txn_begin(sp->db.env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (dt_lmdb_last(txn, sp->dbi, &k, &v) == 0)
		r = dt_lmdb_get_be64(k.mv_data); /* LEDGER_SEQ alone: 0, as for none */
	mdb_txn_abort(txn);
	return r;
}
