/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>

#include "dt_log.h"
#include "store.h"

struct dt_store {
	MDB_env *env;
	MDB_dbi batches, senders, meta;
	uint64_t next_lseq;
	uint64_t epoch;
};

/* LMDB's own codes are positive and outside errno's range: keep the text, map to EIO. */
static int lmdb_err(int rc, const char *what)
{
	if (rc == 0)
		return 0;
	dt_err("DT-STORE-LMDB", "%s: %s", what, mdb_strerror(rc));
	if (rc == MDB_MAP_FULL)
		return -ENOSPC;
	return rc > 0 && rc < 4096 ? -rc : -EIO;
}

static void be64_put(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t be64_get(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	uint64_t r = 0;

	if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof(r))
		memcpy(&r, v.mv_data, sizeof(r));
	return r;
}

int dt_store_open(const char *dir, uint64_t max_mib, struct dt_store **out)
{
	struct dt_store *st;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (mkdir(dir, 0750) && errno != EEXIST) {
		rc = -errno;
		dt_err("DT-STORE-OPEN", "%s: %s", dir, strerror(errno));
		return rc;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	if ((rc = mdb_env_create(&st->env)) ||
	    (rc = mdb_env_set_maxdbs(st->env, 4)) ||
	    (rc = mdb_env_set_mapsize(st->env, (size_t)max_mib << 20)) ||
	    (rc = mdb_env_open(st->env, dir, 0, 0640))) {
		rc = lmdb_err(rc, dir);
		goto fail;
	}
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn))) {
		rc = lmdb_err(rc, "begin");
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, "batches", MDB_CREATE, &st->batches)) ||
	    (rc = mdb_dbi_open(txn, "senders", MDB_CREATE, &st->senders)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta))) {
		mdb_txn_abort(txn);
		rc = lmdb_err(rc, "open databases");
		goto fail;
	}
	st->epoch = get_u64(txn, st->meta, "epoch");
	if (st->epoch == 0) {
		MDB_val ek = {strlen("epoch"), "epoch"}, ev;

		st->epoch = (uint64_t)time(NULL);
		ev.mv_size = sizeof(st->epoch);
		ev.mv_data = &st->epoch;
		if ((rc = mdb_put(txn, st->meta, &ek, &ev, 0))) {
			mdb_txn_abort(txn);
			rc = lmdb_err(rc, "store epoch");
			goto fail;
		}
	}
	st->next_lseq = 1;
	if (mdb_cursor_open(txn, st->batches, &cur) == 0) {
		if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
			st->next_lseq = be64_get(k.mv_data) + 1;
		mdb_cursor_close(cur);
	}
	if ((rc = mdb_txn_commit(txn))) {
		rc = lmdb_err(rc, "commit");
		goto fail;
	}
	*out = st;
	return 0;
fail:
	if (st->env)
		mdb_env_close(st->env);
	free(st);
	return rc;
}

void dt_store_close(struct dt_store *st)
{
	if (!st)
		return;
	mdb_env_close(st->env);
	free(st);
}

int dt_store_put(struct dt_store *st, const char *sender, uint64_t seq, const void *raw,
		 size_t len)
{
	unsigned char kb[8];
	MDB_val k = {sizeof(kb), kb}, v = {len, (void *)raw};
	MDB_val sk = {strlen(sender), (void *)sender}, sv = {sizeof(seq), &seq};
	MDB_txn *txn;
	int rc;

	be64_put(kb, st->next_lseq);
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)))
		return lmdb_err(rc, "begin");
	if ((rc = mdb_put(txn, st->batches, &k, &v, MDB_APPEND)) ||
	    (rc = mdb_put(txn, st->senders, &sk, &sv, 0))) {
		mdb_txn_abort(txn);
		return lmdb_err(rc, "store batch");
	}
	if ((rc = mdb_txn_commit(txn)))
		return lmdb_err(rc, "commit batch");
	st->next_lseq++;
	return 0;
}

uint64_t dt_store_last_seq(struct dt_store *st, const char *sender)
{
	MDB_txn *txn;
	uint64_t r;

	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))
		return 0;
	r = get_u64(txn, st->senders, sender);
	mdb_txn_abort(txn);
	return r;
}

uint64_t dt_store_scan(struct dt_store *st, uint64_t after, unsigned max,
		       int (*fn)(void *arg, uint64_t lseq, const void *raw, size_t len), void *arg)
{
	unsigned char kb[8];
	MDB_val k = {sizeof(kb), kb}, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	uint64_t last = after;
	unsigned n = 0;
	int rc;

	be64_put(kb, after + 1);
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))
		return after;
	if (mdb_cursor_open(txn, st->batches, &cur)) {
		mdb_txn_abort(txn);
		return after;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < max;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++) {
		uint64_t lseq = be64_get(k.mv_data);

		if (fn(arg, lseq, v.mv_data, v.mv_size))
			break;
		last = lseq;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return last;
}

int dt_store_set_forwarded(struct dt_store *st, uint64_t lseq)
{
	MDB_val k = {strlen("forwarded"), "forwarded"}, v = {sizeof(lseq), &lseq};
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)))
		return lmdb_err(rc, "begin");
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0))) {
		mdb_txn_abort(txn);
		return lmdb_err(rc, "store forwarded");
	}
	return lmdb_err(mdb_txn_commit(txn), "commit forwarded");
}

uint64_t dt_store_forwarded(struct dt_store *st)
{
	MDB_txn *txn;
	uint64_t r;

	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))
		return 0;
	r = get_u64(txn, st->meta, "forwarded");
	mdb_txn_abort(txn);
	return r;
}

uint64_t dt_store_last_lseq(struct dt_store *st)
{
	return st->next_lseq - 1;
}

uint64_t dt_store_epoch(struct dt_store *st)
{
	return st->epoch;
}

uint64_t dt_store_count(struct dt_store *st)
{
	MDB_txn *txn;
	MDB_stat ms;
	uint64_t r = 0;

	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (mdb_stat(txn, st->batches, &ms) == 0)
		r = ms.ms_entries;
	mdb_txn_abort(txn);
	return r;
}
