/* SPDX-License-Identifier: MIT */
/*
 * dt_lmdb.h - the one LMDB wrapper of the stores: the collector's store, the agent's
 * spool and the analyzer's task store.
 *
 * It opens an environment with a store's settings and its databases, translates LMDB's
 * codes into negative errno (logging LMDB's text under the store's message id), builds
 * big-endian keys (so that LMDB's byte order is numeric order) and walks cursors. The
 * stores still call mdb_get(), mdb_put() and mdb_del() themselves: those need no wrapper.
 *
 * Two conventions. dt_lmdb_open(), dt_lmdb_first(), dt_lmdb_last(), dt_lmdb_del_prefix()
 * and dt_lmdb_del_upto() return LMDB's code, like mdb_get(): 0, MDB_NOTFOUND or a failure,
 * for dt_lmdb_err() to translate where the store reports it (with its own words). The
 * others return 0 or a negative errno, and log what LMDB said.
 */
#ifndef DT_LMDB_H
#define DT_LMDB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lmdb.h>

struct dt_lmdb {
	MDB_env *env;
	const char *log_id; /* message id of the store's LMDB errors, "DT-STORE-LMDB" */
};

/* How a store opens its environment. */
struct dt_lmdb_cfg {
	const char *log_id;
	size_t map_size;	/* bytes */
	unsigned max_dbs;	/* mdb_env_set_maxdbs(); 0: LMDB's default (the main one) */
	unsigned env_flags;	/* mdb_env_open() flags: 0 (synchronous), MDB_NOSYNC */
	const char *const *dbs; /* named databases, created when missing */
	unsigned n_dbs;		/* 0: the main (unnamed) database alone */
};

/* mkdir -p dir (mode 0750). Returns 0 or -errno. */
int dt_lmdb_mkdirs(const char *dir);

/*
 * Opens the environment in the existing directory dir (its files mode 0640) and its
 * databases into dbis[] (cfg->n_dbs of them, or dbis[0] for the main one). Returns 0 or
 * LMDB's code; on failure db->env is NULL and db->log_id is set, so that dt_lmdb_err()
 * can report it (and dt_lmdb_close() does nothing).
 */
int dt_lmdb_open(struct dt_lmdb *db, const char *dir, const struct dt_lmdb_cfg *cfg, MDB_dbi *dbis);

/* Closes the environment, after writing out what an asynchronous one (MDB_NOSYNC) holds. */
void dt_lmdb_close(struct dt_lmdb *db);

/*
 * LMDB's code rc as a negative errno: 0, -ENOENT (MDB_NOTFOUND), -ENOSPC (MDB_MAP_FULL),
 * the system's -errno as it is, -EIO for LMDB's other codes.
 */
int dt_lmdb_errno(int rc);

/* dt_lmdb_errno(rc), logging "what: LMDB's text" under db->log_id unless rc is 0 or
 * MDB_NOTFOUND (an answer, not a failure). */
int dt_lmdb_err(const struct dt_lmdb *db, int rc, const char *what);

/* mdb_txn_begin() and mdb_txn_commit() with their failures translated and logged. After
 * dt_lmdb_commit() the transaction is gone, also on failure. */
int dt_lmdb_begin(const struct dt_lmdb *db, unsigned flags, MDB_txn **txn);
int dt_lmdb_commit(const struct dt_lmdb *db, MDB_txn *txn, const char *what);

/* The record with the lowest key at least *from (NULL: the first record). */
int dt_lmdb_first(MDB_txn *txn, MDB_dbi dbi, const MDB_val *from, MDB_val *key, MDB_val *val);
/* The record with the highest key. */
int dt_lmdb_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val);

/* Deletes every record whose key starts with prefix (none is not an error). */
int dt_lmdb_del_prefix(MDB_txn *txn, MDB_dbi dbi, const MDB_val *prefix);
/* Deletes every record whose key is at most last in LMDB's (byte) order (none is not an
 * error): with big-endian keys, the records up to a number. */
int dt_lmdb_del_upto(MDB_txn *txn, MDB_dbi dbi, const MDB_val *last);

/*
 * Calls fn for each record from the lowest key at least *from (NULL: the first) in key
 * order, until fn returns non-zero. Returns fn's non-zero value, 0 at the end, or -errno
 * (logged) when LMDB fails.
 */
int dt_lmdb_walk(const struct dt_lmdb *db, MDB_txn *txn, MDB_dbi dbi, const MDB_val *from,
		 int (*fn)(void *ctx, const MDB_val *key, const MDB_val *val), void *ctx);

/* A string as a key, without its NUL. */
static inline MDB_val dt_lmdb_str(const char *s)
{
	return (MDB_val){strlen(s), (void *)s};
}

/* Big-endian keys. */
static inline void dt_lmdb_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t dt_lmdb_get_be32(const void *key)
{
	const uint8_t *p = key;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void dt_lmdb_put_be64(uint8_t *p, uint64_t v)
{
	dt_lmdb_put_be32(p, (uint32_t)(v >> 32));
	dt_lmdb_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t dt_lmdb_get_be64(const void *key)
{
	const uint8_t *p = key;

	return (uint64_t)dt_lmdb_get_be32(p) << 32 | dt_lmdb_get_be32(p + 4);
}

/* v as a big-endian key in buf. */
static inline MDB_val dt_lmdb_key32(uint8_t buf[4], uint32_t v)
{
	dt_lmdb_put_be32(buf, v);
	return (MDB_val){4, buf};
}

static inline MDB_val dt_lmdb_key64(uint8_t buf[8], uint64_t v)
{
	dt_lmdb_put_be64(buf, v);
	return (MDB_val){8, buf};
}

#endif /* DT_LMDB_H */
