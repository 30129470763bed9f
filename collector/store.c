/* SPDX-License-Identifier: MIT */
/*
 * store.c - the collector's durable sample store (see store.h), on dt_lmdb.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dt_ingest.h"
#include "dt_lmdb.h"
#include "dt_log.h"
#include "store.h"

enum { DB_BATCHES, DB_SENDERS, DB_META, DB_MAX };

static const char *const db_names[DB_MAX] = {"batches", "senders", "meta"};

/* A sender's highest seq stored: DB_SENDERS in memory (see dt_store_last_seq()). */
struct sender_seq {
	struct sender_seq *next;
	uint64_t seq;
	char name[];
};

struct dt_store {
	struct dt_lmdb db;
	MDB_dbi dbi[DB_MAX];
	uint64_t next_lseq;
	uint64_t epoch;
	struct sender_seq **seqs; /* hash table of n_buckets chains (a power of two) */
	size_t n_buckets, n_seqs;
};

/* FNV-1a of a sender's name. */
static size_t name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ull;
	return (size_t)h;
}

/* Twice as many chains. A failed allocation leaves the table as it is, only slower. */
static void seqs_grow(struct dt_store *st)
{
	size_t n = st->n_buckets ? st->n_buckets * 2 : 64;
	struct sender_seq **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < st->n_buckets; i++) {
		while (st->seqs[i]) {
			struct sender_seq *s = st->seqs[i];

			st->seqs[i] = s->next;
			s->next = b[name_hash(s->name) & (n - 1)];
			b[name_hash(s->name) & (n - 1)] = s;
		}
	}
	free(st->seqs);
	st->seqs = b;
	st->n_buckets = n;
}

/* The sender's entry; when it has none, a new one (seq 0: nothing stored) when create,
 * else NULL. NULL when memory runs out too. */
static struct sender_seq *seq_of(struct dt_store *st, const char *name, bool create)
{
	struct sender_seq *s;
	size_t h = name_hash(name), len;

	for (s = st->n_buckets ? st->seqs[h & (st->n_buckets - 1)] : NULL; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	if (!create)
		return NULL;
	if (st->n_seqs >= st->n_buckets)
		seqs_grow(st);
	len = strlen(name);
	if (!st->n_buckets || !(s = calloc(1, sizeof(*s) + len + 1)))
		return NULL;
	memcpy(s->name, name, len);
	s->next = st->seqs[h & (st->n_buckets - 1)];
	st->seqs[h & (st->n_buckets - 1)] = s;
	st->n_seqs++;
	return s;
}

static void seqs_free(struct dt_store *st)
{
	for (size_t i = 0; i < st->n_buckets; i++) {
		while (st->seqs[i]) {
			struct sender_seq *s = st->seqs[i];

			st->seqs[i] = s->next;
			free(s);
		}
	}
	free(st->seqs);
}

/* DB_SENDERS into the table, at open. */
static int load_seq(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct dt_store *st = ctx;
	struct sender_seq *s;
	char *name;

	if (val->mv_size != sizeof(s->seq))
		return 0; /* not written by dt_store_put_many() */
	if (!(name = strndup(key->mv_data, key->mv_size)))
		return -ENOMEM;
	s = seq_of(st, name, true);
	free(name);
	if (!s)
		return -ENOMEM;
	memcpy(&s->seq, val->mv_data, sizeof(s->seq));
	return 0;
}

/* The u64 (host order) stored under the name key, 0 when there is none. */
static uint64_t get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key)
{
	MDB_val k = dt_lmdb_str(key), v;
	uint64_t r = 0;

	if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof(r))
		memcpy(&r, v.mv_data, sizeof(r));
	return r;
}

/* get_u64() in a read transaction of its own (0 when that fails). */
static uint64_t read_u64(struct dt_store *st, int db, const char *key)
{
	MDB_txn *txn;
	uint64_t r;

	if (mdb_txn_begin(st->db.env, NULL, MDB_RDONLY, &txn))
		return 0;
	r = get_u64(txn, st->dbi[db], key);
	mdb_txn_abort(txn);
	return r;
}

/* Returns LMDB's code. */
static int put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t val)
{
	MDB_val k = dt_lmdb_str(key), v = {sizeof(val), &val};

	return mdb_put(txn, dbi, &k, &v, 0);
}

/*
 * The store's epoch (set at its first open), the local sequence of the next batch (after
 * the newest stored, or the newest forwarded when every batch was deleted) and the
 * senders' seqs.
 */
static int load_state(struct dt_store *st)
{
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t last;
	int rc;

	if ((rc = dt_lmdb_begin(&st->db, 0, &txn)))
		return rc;
	st->epoch = get_u64(txn, st->dbi[DB_META], "epoch");
	if (st->epoch == 0) {
		st->epoch = (uint64_t)time(NULL);
		if ((rc = put_u64(txn, st->dbi[DB_META], "epoch", st->epoch))) {
			mdb_txn_abort(txn);
			return dt_lmdb_err(&st->db, rc, "store epoch");
		}
	}
	last = get_u64(txn, st->dbi[DB_META], "forwarded");
	if (dt_lmdb_last(txn, st->dbi[DB_BATCHES], &k, &v) == 0 && k.mv_size == 8 &&
	    dt_lmdb_get_be64(k.mv_data) > last)
		last = dt_lmdb_get_be64(k.mv_data);
	st->next_lseq = last + 1;
	if ((rc = dt_lmdb_walk(&st->db, txn, st->dbi[DB_SENDERS], NULL, load_seq, st))) {
		mdb_txn_abort(txn);
		return rc;
	}
	return dt_lmdb_commit(&st->db, txn, "commit");
}

int dt_store_open(const char *dir, uint64_t max_mib, struct dt_store **out)
{
	const struct dt_lmdb_cfg cfg = {
		.log_id = "DT-STORE-LMDB",
		.map_size = (size_t)max_mib << 20,
		.max_dbs = 4,
		.env_flags = 0, /* synchronous: a batch is durable before its ack */
		.dbs = db_names,
		.n_dbs = DB_MAX,
	};
	struct dt_store *st;
	int rc;

	if (mkdir(dir, 0750) && errno != EEXIST) {
		rc = -errno;
		dt_err("DT-STORE-OPEN", "%s: %s", dir, strerror(errno));
		return rc;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	if ((rc = dt_lmdb_open(&st->db, dir, &cfg, st->dbi))) {
		rc = dt_lmdb_err(&st->db, rc, dir);
		goto fail;
	}
	if ((rc = load_state(st)))
		goto fail;
	*out = st;
	return 0;
fail:
	dt_store_close(st);
	return rc;
}

void dt_store_close(struct dt_store *st)
{
	if (!st)
		return;
	dt_lmdb_close(&st->db);
	seqs_free(st);
	free(st);
}

int dt_store_put_many(struct dt_store *st, const struct dt_store_batch *v, unsigned n)
{
	struct sender_seq *seq[DT_INGEST_GROUP_MAX];
	MDB_txn *txn;
	unsigned i;
	int rc;

	if (n > DT_INGEST_GROUP_MAX)
		return -EINVAL;
	/* Their entries first: once the commit is done, nothing may fail any more. */
	for (i = 0; i < n; i++)
		if (!(seq[i] = seq_of(st, v[i].sender, true)))
			return -ENOMEM;
	if ((rc = dt_lmdb_begin(&st->db, 0, &txn)))
		return rc;
	for (i = 0; i < n; i++) {
		uint8_t kb[8];
		MDB_val k = {sizeof(kb), kb}, val = {v[i].len, (void *)v[i].raw};
		MDB_val sk = dt_lmdb_str(v[i].sender), sv = {sizeof(v[i].seq), (void *)&v[i].seq};

		dt_lmdb_put_be64(kb, st->next_lseq + i);
		if ((rc = mdb_put(txn, st->dbi[DB_BATCHES], &k, &val, MDB_APPEND)) ||
		    (v[i].seq && (rc = mdb_put(txn, st->dbi[DB_SENDERS], &sk, &sv, 0)))) {
			mdb_txn_abort(txn);
			return dt_lmdb_err(&st->db, rc, "store batch");
		}
	}
	if ((rc = dt_lmdb_commit(&st->db, txn, "commit batch")))
		return rc;
	st->next_lseq += n;
	for (i = 0; i < n; i++)
		if (v[i].seq)
			seq[i]->seq = v[i].seq; /* as DB_SENDERS now says */
	return 0;
}

int dt_store_put(struct dt_store *st, const char *sender, uint64_t seq, const void *raw, size_t len)
{
	const struct dt_store_batch b = {.sender = sender, .seq = seq, .raw = raw, .len = len};

	return dt_store_put_many(st, &b, 1);
}

uint64_t dt_store_last_seq(struct dt_store *st, const char *sender)
{
	const struct sender_seq *s = seq_of(st, sender, false);

	return s ? s->seq : 0;
}

/* dt_store_scan() in progress: at most max batches to fn, the last one it took. */
struct scan {
	int (*fn)(void *arg, uint64_t lseq, const void *raw, size_t len);
	void *arg;
	unsigned n, max;
	uint64_t last;
};

static int scan_one(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct scan *s = ctx;
	uint64_t lseq = dt_lmdb_get_be64(key->mv_data);

	if (s->n++ == s->max || s->fn(s->arg, lseq, val->mv_data, val->mv_size))
		return 1;
	s->last = lseq;
	return 0;
}

uint64_t dt_store_scan(struct dt_store *st, uint64_t after, unsigned max,
		       int (*fn)(void *arg, uint64_t lseq, const void *raw, size_t len), void *arg)
{
	struct scan s = {.fn = fn, .arg = arg, .max = max, .last = after};
	uint8_t kb[8];
	MDB_val from = {sizeof(kb), kb};
	MDB_txn *txn;

	dt_lmdb_put_be64(kb, after + 1);
	if (mdb_txn_begin(st->db.env, NULL, MDB_RDONLY, &txn))
		return after;
	dt_lmdb_walk(&st->db, txn, st->dbi[DB_BATCHES], &from, scan_one, &s);
	mdb_txn_abort(txn);
	return s.last;
}

int dt_store_set_forwarded(struct dt_store *st, uint64_t lseq)
{
	uint8_t kb[8];
	MDB_val last = dt_lmdb_key64(kb, lseq);
	MDB_txn *txn;
	int rc;

	if ((rc = dt_lmdb_begin(&st->db, 0, &txn)))
		return rc;
	if ((rc = put_u64(txn, st->dbi[DB_META], "forwarded", lseq)) ||
	    (rc = dt_lmdb_del_upto(txn, st->dbi[DB_BATCHES], &last))) {
		mdb_txn_abort(txn);
		return dt_lmdb_err(&st->db, rc, "store forwarded");
	}
	return dt_lmdb_commit(&st->db, txn, "commit forwarded");
}

uint64_t dt_store_forwarded(struct dt_store *st)
{
	return read_u64(st, DB_META, "forwarded");
}

uint64_t dt_store_last_lseq(struct dt_store *st)
{
	return st->next_lseq - 1;
}

uint64_t dt_store_epoch(struct dt_store *st)
{
	return st->epoch;
}

uint64_t dt_store_held(struct dt_store *st)
{
	MDB_txn *txn;
	MDB_stat ms;
	uint64_t r = 0;

	if (mdb_txn_begin(st->db.env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (mdb_stat(txn, st->dbi[DB_BATCHES], &ms) == 0)
		r = ms.ms_entries;
	mdb_txn_abort(txn);
	return r;
}

int dt_store_put_items(struct dt_store *st, const struct dt_ingest_item *items, unsigned n)
{
	struct dt_store_batch v[DT_INGEST_GROUP_MAX];

	if (n > DT_INGEST_GROUP_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		v[i] = (struct dt_store_batch){.sender = items[i].b->sender,
					       .seq = items[i].b->seq,
					       .raw = items[i].raw,
					       .len = items[i].len};
	return dt_store_put_many(st, v, n);
}
