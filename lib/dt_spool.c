/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "dt_log.h"
#include "dt_spool.h"

/* Each value: u32 n_samples, then the message. */
#define HDR sizeof(uint32_t)

struct dt_spool {
	int lock_fd; /* flock on <dir>/owner: one agent per spool */
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t max_bytes;
	uint64_t bytes; /* sum of message sizes held */
	uint64_t count;
};

static int lmdb_err(int rc, const char *what)
{
	if (rc == 0)
		return 0;
	dt_err("DT-SPOOL-LMDB", "%s: %s", what, mdb_strerror(rc));
	return rc == MDB_MAP_FULL ? -ENOSPC : rc > 0 && rc < 4096 ? -rc : -EIO;
}

static void key_of(uint64_t seq, unsigned char k[8])
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		k[i] = (unsigned char)seq;
}

static uint64_t seq_of(const MDB_val *k)
{
	const unsigned char *p = k->mv_data;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
	char path[512];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0750) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

int dt_spool_open(const char *dir, uint64_t max_bytes, struct dt_spool **out)
{
	char lock[600];
	struct dt_spool *sp;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if ((rc = make_dirs(dir)))
		return rc;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	/* Two agents sharing a spool would replay each other's batches as their own. */
	snprintf(lock, sizeof(lock), "%s/owner", dir);
	sp->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (sp->lock_fd < 0 || flock(sp->lock_fd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (sp->lock_fd >= 0)
			close(sp->lock_fd);
		free(sp);
		return rc;
	}
	sp->max_bytes = max_bytes;
	/* Pages, keys and free lists need room beyond the messages themselves. */
	if ((rc = mdb_env_create(&sp->env)) ||
	    (rc = mdb_env_set_mapsize(sp->env, (size_t)(max_bytes * 2 + (16u << 20)))) ||
	    (rc = mdb_env_open(sp->env, dir, MDB_NOSYNC, 0640)) ||
	    (rc = mdb_txn_begin(sp->env, NULL, 0, &txn))) {
		rc = lmdb_err(rc, dir);
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, NULL, 0, &sp->dbi)) || (rc = mdb_cursor_open(txn, sp->dbi, &cur))) {
		mdb_txn_abort(txn);
		rc = lmdb_err(rc, "open spool");
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		sp->bytes += v.mv_size - HDR;
		sp->count++;
	}
	mdb_cursor_close(cur);
	if ((rc = mdb_txn_commit(txn))) {
		rc = lmdb_err(rc, "open spool");
		goto fail;
	}
	*out = sp;
	return 0;
fail:
	if (sp->env)
		mdb_env_close(sp->env);
	close(sp->lock_fd);
	free(sp);
	return rc;
}

void dt_spool_close(struct dt_spool *sp)
{
	if (!sp)
		return;
	mdb_env_sync(sp->env, 1);
	mdb_env_close(sp->env);
	close(sp->lock_fd);
	free(sp);
}

/* Deletes the oldest entry above keep_upto inside txn, counting its samples. */
static int evict_oldest(struct dt_spool *sp, MDB_txn *txn, uint64_t keep_upto,
			uint64_t *evicted_samples)
{
	unsigned char kb[8];
	MDB_val k = {sizeof(kb), kb}, v;
	MDB_cursor *cur;
	uint32_t n;
	int rc;

	key_of(keep_upto + 1, kb);
	if ((rc = mdb_cursor_open(txn, sp->dbi, &cur)))
		return rc;
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) == 0) {
		memcpy(&n, v.mv_data, HDR);
		*evicted_samples += n;
		sp->bytes -= v.mv_size - HDR;
		sp->count--;
		rc = mdb_cursor_del(cur, 0);
	}
	mdb_cursor_close(cur);
	return rc;
}

int dt_spool_push(struct dt_spool *sp, uint64_t seq, uint32_t n_samples, const void *msg,
		  size_t len, uint64_t keep_upto, uint64_t *evicted_samples)
{
	/* Evictions count once their transaction commits: an aborted one deleted nothing. */
	uint64_t bytes = sp->bytes, count = sp->count, evicted = 0;
	unsigned char kb[8];
	MDB_val k = {sizeof(kb), kb}, v = {len + HDR, NULL};
	MDB_txn *txn;
	int rc;

	if (len > sp->max_bytes) {
		*evicted_samples += n_samples;
		return 0;
	}
	key_of(seq, kb);
	if ((rc = mdb_txn_begin(sp->env, NULL, 0, &txn)))
		return lmdb_err(rc, "spool");
	while (sp->bytes + len > sp->max_bytes && sp->count > 0) {
		rc = evict_oldest(sp, txn, keep_upto, &evicted);
		if (rc == MDB_NOTFOUND) {
			/* Everything held is being sent: this message is what does not fit. */
			mdb_txn_abort(txn);
			sp->bytes = bytes;
			sp->count = count;
			*evicted_samples += n_samples;
			return 0;
		}
		if (rc)
			goto abort;
	}
	if ((rc = mdb_put(txn, sp->dbi, &k, &v, MDB_RESERVE)))
		goto abort;
	memcpy(v.mv_data, &n_samples, HDR);
	memcpy((char *)v.mv_data + HDR, msg, len);
	if ((rc = mdb_txn_commit(txn))) {
		sp->bytes = bytes;
		sp->count = count;
		return lmdb_err(rc, "spool commit");
	}
	*evicted_samples += evicted;
	sp->bytes += len;
	sp->count++;
	return 0;
abort:
	mdb_txn_abort(txn);
	sp->bytes = bytes;
	sp->count = count;
	return lmdb_err(rc, "spool");
}

int dt_spool_pop(struct dt_spool *sp, uint64_t *seq, uint32_t *n_samples, msgpack_sbuffer *msg)
{
	size_t len = 0;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if (sp->count == 0)
		return -ENOENT;
	if ((rc = mdb_txn_begin(sp->env, NULL, 0, &txn)))
		return lmdb_err(rc, "spool");
	if ((rc = mdb_cursor_open(txn, sp->dbi, &cur))) {
		mdb_txn_abort(txn);
		return lmdb_err(rc, "spool");
	}
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		*seq = seq_of(&k);
		memcpy(n_samples, v.mv_data, HDR);
		len = v.mv_size - HDR;
		msgpack_sbuffer_write(msg, (const char *)v.mv_data + HDR, len);
		rc = mdb_cursor_del(cur, 0);
	}
	mdb_cursor_close(cur);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc)
		return rc == MDB_NOTFOUND ? -ENOENT : lmdb_err(rc, "spool pop");
	sp->bytes -= len;
	sp->count--;
	return 0;
}

int dt_spool_read_after(struct dt_spool *sp, uint64_t after, uint64_t *seq, uint32_t *n_samples,
			msgpack_sbuffer *msg)
{
	unsigned char kb[8];
	MDB_val k = {sizeof(kb), kb}, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc;

	key_of(after + 1, kb);
	if ((rc = mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn)))
		return lmdb_err(rc, "spool");
	if ((rc = mdb_cursor_open(txn, sp->dbi, &cur)) == 0) {
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) == 0) {
			*seq = seq_of(&k);
			memcpy(n_samples, v.mv_data, HDR);
			msgpack_sbuffer_write(msg, (const char *)v.mv_data + HDR, v.mv_size - HDR);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? -ENOENT : rc ? lmdb_err(rc, "spool read") : 0;
}

int dt_spool_delete(struct dt_spool *sp, uint64_t seq)
{
	unsigned char kb[8];
	MDB_val k = {sizeof(kb), kb}, v;
	MDB_txn *txn;
	int rc;

	key_of(seq, kb);
	if ((rc = mdb_txn_begin(sp->env, NULL, 0, &txn)))
		return lmdb_err(rc, "spool");
	if ((rc = mdb_get(txn, sp->dbi, &k, &v)) == 0) {
		size_t len = v.mv_size - HDR;

		if ((rc = mdb_del(txn, sp->dbi, &k, NULL)) == 0) {
			if ((rc = mdb_txn_commit(txn)))
				return lmdb_err(rc, "spool delete");
			sp->bytes -= len;
			sp->count--;
			return 0;
		}
	}
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "spool delete");
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
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t r = 0;

	if (mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (mdb_cursor_open(txn, sp->dbi, &cur) == 0) {
		if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0)
			r = seq_of(&k);
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return r;
}
