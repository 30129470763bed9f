/* SPDX-License-Identifier: MIT */
/* The LMDB wrapper the stores share: opening, error translation, keys, cursor helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "dt_lmdb.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/dt-lmdb-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(lmdb, .init = mkdir_tmp, .fini = rm_tmp);

static const char *const names[] = {"one", "two"};

static void open_two(struct dt_lmdb *db, MDB_dbi *dbis, size_t map_size)
{
	const struct dt_lmdb_cfg cfg = {
		.log_id = "DT-TEST-LMDB",
		.map_size = map_size,
		.max_dbs = 2,
		.dbs = names,
		.n_dbs = 2,
	};

	cr_assert_eq(dt_lmdb_open(db, dir, &cfg, dbis), 0);
}

/* Puts key v (big-endian, 8 bytes) -> v in dbi, in a transaction of its own. */
static void put64(struct dt_lmdb *db, MDB_dbi dbi, const uint64_t *vs, size_t n)
{
	MDB_txn *txn;

	cr_assert_eq(dt_lmdb_begin(db, 0, &txn), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t kb[8];
		MDB_val k = dt_lmdb_key64(kb, vs[i]), v = {sizeof(vs[i]), (void *)&vs[i]};

		cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	cr_assert_eq(dt_lmdb_commit(db, txn, "commit"), 0);
}

Test(lmdb, errno_translation)
{
	struct dt_lmdb db = {.log_id = "DT-TEST-LMDB"};

	cr_assert_eq(dt_lmdb_errno(0), 0);
	cr_assert_eq(dt_lmdb_errno(MDB_NOTFOUND), -ENOENT);
	cr_assert_eq(dt_lmdb_errno(MDB_MAP_FULL), -ENOSPC);
	cr_assert_eq(dt_lmdb_errno(EACCES), -EACCES);
	cr_assert_eq(dt_lmdb_errno(MDB_CORRUPTED), -EIO);
	cr_assert_eq(dt_lmdb_errno(MDB_INVALID), -EIO);
	cr_assert_eq(dt_lmdb_err(&db, MDB_NOTFOUND, "get"), -ENOENT);
	cr_assert_eq(dt_lmdb_err(&db, MDB_MAP_FULL, "put"), -ENOSPC);
}

Test(lmdb, keys_sort_numerically)
{
	uint8_t a[8], b[8], c[4];

	dt_lmdb_key64(a, 0xff);
	dt_lmdb_key64(b, 0x100);
	cr_assert_lt(memcmp(a, b, 8), 0);
	cr_assert_eq(dt_lmdb_get_be64(b), 0x100);
	cr_assert_eq(dt_lmdb_key64(a, 0x0102030405060708ull).mv_size, 8);
	cr_assert_eq(a[0], 1);
	cr_assert_eq(a[7], 8);
	cr_assert_eq(dt_lmdb_key32(c, 0xa0b0c0d0).mv_size, 4);
	cr_assert_eq(c[0], 0xa0);
	cr_assert_eq(dt_lmdb_get_be32(c), 0xa0b0c0d0);
	cr_assert_eq(dt_lmdb_str("meta").mv_size, 4);
}

Test(lmdb, mkdirs_makes_parents)
{
	char sub[128];
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
	cr_assert_eq(dt_lmdb_mkdirs(sub), 0);
	cr_assert_eq(stat(sub, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(dt_lmdb_mkdirs(sub), 0, "an existing directory is fine");
}

Test(lmdb, open_fails_without_its_directory)
{
	const struct dt_lmdb_cfg cfg = {.log_id = "DT-TEST-LMDB", .map_size = 1 << 20};
	struct dt_lmdb db;
	char missing[128];
	MDB_dbi dbi;

	snprintf(missing, sizeof(missing), "%s/missing", dir);
	cr_assert_eq(dt_lmdb_errno(dt_lmdb_open(&db, missing, &cfg, &dbi)), -ENOENT);
	cr_assert_null(db.env);
	cr_assert_str_eq(db.log_id, "DT-TEST-LMDB");
	dt_lmdb_close(&db);
}

Test(lmdb, main_database_with_its_flags)
{
	const struct dt_lmdb_cfg cfg = {
		.log_id = "DT-TEST-LMDB", .map_size = 1 << 20, .env_flags = MDB_NOSYNC};
	static const uint64_t vs[] = {3, 1, 2};
	struct dt_lmdb db;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_val k, v;
	unsigned flags;

	cr_assert_eq(dt_lmdb_open(&db, dir, &cfg, &dbi), 0);
	cr_assert_eq(mdb_env_get_flags(db.env, &flags), 0);
	cr_assert(flags & MDB_NOSYNC);
	put64(&db, dbi, vs, 3);
	dt_lmdb_close(&db);
	cr_assert_null(db.env);

	cr_assert_eq(dt_lmdb_open(&db, dir, &cfg, &dbi), 0);
	cr_assert_eq(dt_lmdb_begin(&db, MDB_RDONLY, &txn), 0);
	cr_assert_eq(dt_lmdb_first(txn, dbi, NULL, &k, &v), 0);
	cr_assert_eq(dt_lmdb_get_be64(k.mv_data), 1, "written out at close");
	cr_assert_eq(dt_lmdb_last(txn, dbi, &k, &v), 0);
	cr_assert_eq(dt_lmdb_get_be64(k.mv_data), 3);
	mdb_txn_abort(txn);
	dt_lmdb_close(&db);
}

Test(lmdb, first_and_last_of_named_databases)
{
	static const uint64_t vs[] = {10, 20, 30};
	struct dt_lmdb db;
	MDB_dbi dbis[2];
	MDB_txn *txn;
	MDB_val k, v;
	uint8_t kb[8];
	MDB_val from;

	open_two(&db, dbis, 1 << 20);
	put64(&db, dbis[0], vs, 3);
	cr_assert_eq(dt_lmdb_begin(&db, MDB_RDONLY, &txn), 0);
	from = dt_lmdb_key64(kb, 11);
	cr_assert_eq(dt_lmdb_first(txn, dbis[0], &from, &k, &v), 0);
	cr_assert_eq(dt_lmdb_get_be64(k.mv_data), 20);
	from = dt_lmdb_key64(kb, 30);
	cr_assert_eq(dt_lmdb_first(txn, dbis[0], &from, &k, &v), 0);
	cr_assert_eq(dt_lmdb_get_be64(k.mv_data), 30);
	from = dt_lmdb_key64(kb, 31);
	cr_assert_eq(dt_lmdb_first(txn, dbis[0], &from, &k, &v), MDB_NOTFOUND);
	cr_assert_eq(dt_lmdb_last(txn, dbis[0], &k, &v), 0);
	cr_assert_eq(dt_lmdb_get_be64(k.mv_data), 30);
	cr_assert_eq(dt_lmdb_first(txn, dbis[1], NULL, &k, &v), MDB_NOTFOUND, "the other one");
	cr_assert_eq(dt_lmdb_last(txn, dbis[1], &k, &v), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	dt_lmdb_close(&db);
}

struct seen {
	uint64_t keys[8];
	unsigned n, stop_at;
};

static int collect(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct seen *s = ctx;

	s->keys[s->n++] = dt_lmdb_get_be64(key->mv_data);
	return s->n == s->stop_at ? 7 : 0;
}

Test(lmdb, walk_from_a_key_and_stop)
{
	static const uint64_t vs[] = {5, 1, 4, 2, 3};
	struct seen all = {0}, some = {.stop_at = 2};
	struct dt_lmdb db;
	MDB_dbi dbis[2];
	MDB_txn *txn;
	uint8_t kb[8];
	MDB_val from = dt_lmdb_key64(kb, 2);

	open_two(&db, dbis, 1 << 20);
	put64(&db, dbis[1], vs, 5);
	cr_assert_eq(dt_lmdb_begin(&db, MDB_RDONLY, &txn), 0);
	cr_assert_eq(dt_lmdb_walk(&db, txn, dbis[1], NULL, collect, &all), 0);
	cr_assert_eq(all.n, 5);
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(all.keys[i], i + 1);
	cr_assert_eq(dt_lmdb_walk(&db, txn, dbis[1], &from, collect, &some), 7);
	cr_assert_eq(some.n, 2);
	cr_assert_eq(some.keys[0], 2);
	cr_assert_eq(some.keys[1], 3);
	cr_assert_eq(dt_lmdb_walk(&db, txn, dbis[0], NULL, collect, &all), 0, "empty");
	mdb_txn_abort(txn);
	dt_lmdb_close(&db);
}

/* Keys id (4) | index (8), as the task store's observations. */
static void put_obs(struct dt_lmdb *db, MDB_dbi dbi, uint32_t id, unsigned n)
{
	MDB_txn *txn;

	cr_assert_eq(dt_lmdb_begin(db, 0, &txn), 0);
	for (unsigned i = 0; i < n; i++) {
		uint8_t kb[12];
		MDB_val k = {sizeof(kb), kb}, v = {sizeof(id), &id};

		dt_lmdb_put_be32(kb, id);
		dt_lmdb_put_be64(kb + 4, i);
		cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	cr_assert_eq(dt_lmdb_commit(db, txn, "commit"), 0);
}

static unsigned count_of(struct dt_lmdb *db, MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat ms;

	cr_assert_eq(dt_lmdb_begin(db, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &ms), 0);
	mdb_txn_abort(txn);
	return (unsigned)ms.ms_entries;
}

/* del (dt_lmdb_del_prefix or dt_lmdb_del_upto) of key, in a transaction of its own. */
static void del_in_txn(struct dt_lmdb *db, MDB_dbi dbi,
		       int (*del)(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key),
		       const MDB_val *key)
{
	MDB_txn *txn;

	cr_assert_eq(dt_lmdb_begin(db, 0, &txn), 0);
	cr_assert_eq(del(txn, dbi, key), 0);
	cr_assert_eq(dt_lmdb_commit(db, txn, "commit"), 0);
}

static void del_id(struct dt_lmdb *db, MDB_dbi dbi, uint32_t id)
{
	uint8_t kb[4];
	MDB_val prefix = dt_lmdb_key32(kb, id);

	del_in_txn(db, dbi, dt_lmdb_del_prefix, &prefix);
}

Test(lmdb, del_prefix_deletes_its_range_only)
{
	struct dt_lmdb db;
	MDB_dbi dbis[2];

	open_two(&db, dbis, 8 << 20);
	put_obs(&db, dbis[0], 1, 300);
	put_obs(&db, dbis[0], 2, 500);
	put_obs(&db, dbis[0], 3, 200);
	del_id(&db, dbis[0], 2); /* the middle: stops at the next id */
	cr_assert_eq(count_of(&db, dbis[0]), 500);
	del_id(&db, dbis[0], 3); /* the end: runs past the last record */
	cr_assert_eq(count_of(&db, dbis[0]), 300);
	del_id(&db, dbis[0], 9); /* none */
	cr_assert_eq(count_of(&db, dbis[0]), 300);
	del_id(&db, dbis[0], 1);
	cr_assert_eq(count_of(&db, dbis[0]), 0);
	dt_lmdb_close(&db);
}

static void del_upto(struct dt_lmdb *db, MDB_dbi dbi, uint64_t last)
{
	uint8_t kb[8];
	MDB_val k = dt_lmdb_key64(kb, last);

	del_in_txn(db, dbi, dt_lmdb_del_upto, &k);
}

Test(lmdb, del_upto_deletes_up_to_its_key_only)
{
	static const uint64_t vs[] = {3, 255, 256, 257, 1000};
	struct dt_lmdb db;
	MDB_dbi dbis[2];
	MDB_txn *txn;
	MDB_val k, v;

	open_two(&db, dbis, 8 << 20);
	put64(&db, dbis[0], vs, 5);
	del_upto(&db, dbis[0], 2); /* below the first: none */
	cr_assert_eq(count_of(&db, dbis[0]), 5);
	del_upto(&db, dbis[0], 256); /* numeric, not the low byte's order: 3, 255, 256 */
	cr_assert_eq(count_of(&db, dbis[0]), 2);
	cr_assert_eq(dt_lmdb_begin(&db, MDB_RDONLY, &txn), 0);
	cr_assert_eq(dt_lmdb_first(txn, dbis[0], NULL, &k, &v), 0);
	cr_assert_eq(dt_lmdb_get_be64(k.mv_data), 257, "the next one stays");
	mdb_txn_abort(txn);
	del_upto(&db, dbis[0], UINT64_MAX); /* runs past the last record */
	cr_assert_eq(count_of(&db, dbis[0]), 0);
	del_upto(&db, dbis[0], 5); /* an empty database */
	dt_lmdb_close(&db);
}

Test(lmdb, full_map_is_enospc)
{
	static char big[64 << 10];
	struct dt_lmdb db;
	MDB_dbi dbis[2];
	MDB_txn *txn;
	int rc = 0;

	open_two(&db, dbis, 1 << 20);
	cr_assert_eq(dt_lmdb_begin(&db, 0, &txn), 0);
	for (uint64_t i = 0; i < 64 && rc == 0; i++) {
		uint8_t kb[8];
		MDB_val k = dt_lmdb_key64(kb, i), v = {sizeof(big), big};

		rc = mdb_put(txn, dbis[0], &k, &v, 0);
	}
	cr_assert_eq(dt_lmdb_err(&db, rc, "put"), -ENOSPC);
	mdb_txn_abort(txn);
	dt_lmdb_close(&db);
}
