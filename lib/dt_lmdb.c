/* SPDX-License-Identifier: MIT */
/*
 * dt_lmdb.c - the one LMDB wrapper of the stores (see dt_lmdb.h): environment, errors,
 * cursors.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "dt_lmdb.h"
#include "dt_log.h"

int dt_lmdb_mkdirs(const char *dir)
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

static int env_open(struct dt_lmdb *db, const char *dir, const struct dt_lmdb_cfg *cfg)
{
	int rc;

	if ((rc = mdb_env_create(&db->env)))
		return rc;
	if (cfg->max_dbs && (rc = mdb_env_set_maxdbs(db->env, cfg->max_dbs)))
		return rc;
	if ((rc = mdb_env_set_mapsize(db->env, cfg->map_size)))
		return rc;
	return mdb_env_open(db->env, dir, cfg->env_flags, 0640);
}

/* Opens (creating the named ones) the databases of cfg in one committed transaction. */
static int dbs_open(struct dt_lmdb *db, const struct dt_lmdb_cfg *cfg, MDB_dbi *dbis)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(db->env, NULL, 0, &txn)))
		return rc;
	if (cfg->n_dbs == 0)
		rc = mdb_dbi_open(txn, NULL, 0, &dbis[0]);
	for (unsigned i = 0; i < cfg->n_dbs && rc == 0; i++)
		rc = mdb_dbi_open(txn, cfg->dbs[i], MDB_CREATE, &dbis[i]);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

int dt_lmdb_open(struct dt_lmdb *db, const char *dir, const struct dt_lmdb_cfg *cfg, MDB_dbi *dbis)
{
	int rc;

	db->env = NULL;
	db->log_id = cfg->log_id;
	rc = env_open(db, dir, cfg);
	if (rc == 0)
		rc = dbs_open(db, cfg, dbis);
	if (rc && db->env) {
		mdb_env_close(db->env);
		db->env = NULL;
	}
	return rc;
}

void dt_lmdb_close(struct dt_lmdb *db)
{
	unsigned flags = 0;

	if (!db->env)
		return;
	mdb_env_get_flags(db->env, &flags);
	if (flags & MDB_NOSYNC)
		mdb_env_sync(db->env, 1);
	mdb_env_close(db->env);
	db->env = NULL;
}

int dt_lmdb_errno(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc == MDB_MAP_FULL)
		return -ENOSPC;
	return rc > 0 && rc < 4096 ? -rc : -EIO;
}

int dt_lmdb_err(const struct dt_lmdb *db, int rc, const char *what)
{
	if (rc != 0 && rc != MDB_NOTFOUND)
		dt_err(db->log_id, "%s: %s", what, mdb_strerror(rc));
	return dt_lmdb_errno(rc);
}

int dt_lmdb_begin(const struct dt_lmdb *db, unsigned flags, MDB_txn **txn)
{
	return dt_lmdb_err(db, mdb_txn_begin(db->env, NULL, flags, txn), "begin");
}

int dt_lmdb_commit(const struct dt_lmdb *db, MDB_txn *txn, const char *what)
{
	return dt_lmdb_err(db, mdb_txn_commit(txn), what);
}

/* One cursor operation on dbi: from positions it (MDB_SET_RANGE), else op does. */
static int cursor_get_once(MDB_txn *txn, MDB_dbi dbi, const MDB_val *from, MDB_val *key,
			   MDB_val *val, MDB_cursor_op op)
{
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return rc;
	if (from) {
		*key = *from;
		op = MDB_SET_RANGE;
	}
	rc = mdb_cursor_get(cur, key, val, op);
	mdb_cursor_close(cur);
	return rc;
}

int dt_lmdb_first(MDB_txn *txn, MDB_dbi dbi, const MDB_val *from, MDB_val *key, MDB_val *val)
{
	return cursor_get_once(txn, dbi, from, key, val, MDB_FIRST);
}

int dt_lmdb_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val)
{
	return cursor_get_once(txn, dbi, NULL, key, val, MDB_LAST);
}

/* The ranges of del_while(): the keys that start with a prefix, the keys up to a last one. */
static bool has_prefix(const MDB_val *key, const MDB_val *prefix)
{
	return key->mv_size >= prefix->mv_size &&
	       memcmp(key->mv_data, prefix->mv_data, prefix->mv_size) == 0;
}

static bool at_most(const MDB_val *key, const MDB_val *last)
{
	size_t n = key->mv_size < last->mv_size ? key->mv_size : last->mv_size;
	int c = memcmp(key->mv_data, last->mv_data, n);

	return c < 0 || (c == 0 && key->mv_size <= last->mv_size);
}

/* Deletes the records from *from (NULL: the first) on, in key order, while in(key, bound). */
static int del_while(MDB_txn *txn, MDB_dbi dbi, const MDB_val *from,
		     bool (*in)(const MDB_val *key, const MDB_val *bound), const MDB_val *bound)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return rc;
	if (from)
		k = *from;
	rc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0 && in(&k, bound)) {
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		/* After a delete the cursor sits on the next record, if any. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL) /* deleted the last record */
			rc = MDB_NOTFOUND;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int dt_lmdb_del_prefix(MDB_txn *txn, MDB_dbi dbi, const MDB_val *prefix)
{
	return del_while(txn, dbi, prefix, has_prefix, prefix);
}

int dt_lmdb_del_upto(MDB_txn *txn, MDB_dbi dbi, const MDB_val *last)
{
	return del_while(txn, dbi, NULL, at_most, last);
}

int dt_lmdb_walk(const struct dt_lmdb *db, MDB_txn *txn, MDB_dbi dbi, const MDB_val *from,
		 int (*fn)(void *ctx, const MDB_val *key, const MDB_val *val), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, rv = 0;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return dt_lmdb_err(db, rc, "read");
	if (from)
		k = *from;
	for (rc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		rv = fn(ctx, &k, &v);
	mdb_cursor_close(cur);
	if (rv)
		return rv;
	return rc == MDB_NOTFOUND ? 0 : dt_lmdb_err(db, rc, "read");
}
