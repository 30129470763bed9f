/* SPDX-License-Identifier: MIT */
/*
 * taskstore.c - the analyzer's LMDB store (see taskstore.h).
 *
 * Databases (keys big-endian, so that LMDB's order is numeric order):
 *   meta     "meta" -> struct meta_rec; "stitch" -> struct dt_stitch_counters
 *   tasks    id (4) -> struct task_rec
 *   obs      id (4) | index (8) -> struct dt_obs
 *   reports  id (4) -> the DT_MSG_REPORT message, as served
 *   strings  index (4) -> the string, without its NUL
 *   seqs     sender name -> uint64_t
 *   held     id (8) -> struct dt_stitch_in
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "dt_log.h"
#include "taskstore.h"

enum { DB_META, DB_TASKS, DB_OBS, DB_REPORTS, DB_STRINGS, DB_SEQS, DB_HELD, DB_MAX };

static const char *const db_names[DB_MAX] = {"meta",	"tasks", "obs", "reports",
					     "strings", "seqs",	 "held"};

struct dt_taskstore {
	MDB_env *env;
	MDB_dbi dbi[DB_MAX];
	MDB_txn *txn; /* the write transaction, between begin and commit */
};

struct meta_rec {
	uint32_t layout; /* DT_TASKSTORE_LAYOUT */
	uint32_t next_id;
	uint64_t gen;
};

/* A task as stored: what survives a restart. */
struct task_rec {
	uint32_t layout;
	uint32_t id;
	char tenant[DT_NAME_MAX];
	struct dt_task_spec spec;
	uint32_t state;
	uint32_t status;
	char status_text[DT_MSG_MAX];
	uint64_t created_ns, armed_ns, ended_ns;
	uint64_t arm_gen;
	uint64_t colored[DT_DIR_MAX];
	uint64_t delivered;
};

/* Translates an LMDB code into -errno, logging LMDB's text. */
static int mdb_err(int rc, const char *what)
{
	if (rc == 0) {
		return 0;
	}
	dt_err("DT-ANA-STORE", "%s: %s", what, mdb_strerror(rc));
	switch (rc) {
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_NOTFOUND:
		return -ENOENT;
	case ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static int mkdirs(const char *dir)
{
	char buf[512];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf)) {
		return -ENAMETOOLONG;
	}
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
		return -errno;
	}
	return 0;
}

int dt_taskstore_open(const char *dir, uint64_t size_mb, struct dt_taskstore **out, char *err,
		  size_t errlen)
{
	struct dt_taskstore *s = calloc(1, sizeof(*s));
	struct meta_rec meta;
	MDB_txn *txn = NULL;
	MDB_val k = {4, "meta"}, v;
	int rc;

	if (!s) {
		return -ENOMEM;
	}
	if ((rc = mkdirs(dir)) != 0) {
		snprintf(err, errlen, "cannot create the store directory %s: %s", dir,
			 strerror(-rc));
		free(s);
		return rc;
	}
	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, DB_MAX)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, (size_t)size_mb << 20)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, 0, 0640)) != 0) {
		snprintf(err, errlen, "cannot open the store %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		snprintf(err, errlen, "cannot open the store %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	for (int i = 0; i < DB_MAX; i++) {
		if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i])) != 0) {
			snprintf(err, errlen, "cannot open the store %s: %s", dir,
				 mdb_strerror(rc));
			goto fail;
		}
	}
	rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		meta = (struct meta_rec){.layout = DT_TASKSTORE_LAYOUT, .next_id = 1, .gen = 0};
		v.mv_size = sizeof(meta);
		v.mv_data = &meta;
		rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
	} else if (rc == 0) {
		memset(&meta, 0, sizeof(meta));
		memcpy(&meta, v.mv_data, v.mv_size < sizeof(meta) ? v.mv_size : sizeof(meta));
		if (v.mv_size != sizeof(meta) || meta.layout != DT_TASKSTORE_LAYOUT) {
			snprintf(err, errlen,
				 "the store %s has layout %u, this analyzer reads layout %d; move "
				 "it away to start afresh",
				 dir, meta.layout, DT_TASKSTORE_LAYOUT);
			rc = -EPROTO;
			goto fail;
		}
	}
	if (rc != 0 || (rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		snprintf(err, errlen, "cannot open the store %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (txn) {
		mdb_txn_abort(txn);
	}
	mdb_env_close(s->env);
	free(s);
	return rc < 0 ? rc : -EIO;
}

void dt_taskstore_close(struct dt_taskstore *s)
{
	if (!s) {
		return;
	}
	if (s->txn) {
		mdb_txn_abort(s->txn);
	}
	mdb_env_close(s->env);
	free(s);
}

int dt_taskstore_begin(struct dt_taskstore *s)
{
	if (s->txn) {
		return -EBUSY;
	}
	return mdb_err(mdb_txn_begin(s->env, NULL, 0, &s->txn), "begin");
}

int dt_taskstore_commit(struct dt_taskstore *s)
{
	int rc = mdb_txn_commit(s->txn);

	s->txn = NULL;
	return mdb_err(rc, "commit");
}

void dt_taskstore_abort(struct dt_taskstore *s)
{
	if (s->txn) {
		mdb_txn_abort(s->txn);
		s->txn = NULL;
	}
}

static int put(struct dt_taskstore *s, int db, void *key, size_t klen, const void *val,
	       size_t vlen, const char *what)
{
	MDB_val k = {klen, key}, v = {vlen, (void *)val};

	if (!s->txn) {
		return -EINVAL;
	}
	return mdb_err(mdb_put(s->txn, s->dbi[db], &k, &v, 0), what);
}

int dt_taskstore_put_meta(struct dt_taskstore *s, uint32_t next_id, uint64_t gen)
{
	struct meta_rec m = {.layout = DT_TASKSTORE_LAYOUT, .next_id = next_id, .gen = gen};

	return put(s, DB_META, "meta", 4, &m, sizeof(m), "write meta");
}

int dt_taskstore_put_task(struct dt_taskstore *s, const struct dt_task *task)
{
	struct task_rec r;
	uint8_t key[4];

	memset(&r, 0, sizeof(r));
	r.layout = DT_TASKSTORE_LAYOUT;
	r.id = task->id;
	memcpy(r.tenant, task->tenant_name, sizeof(r.tenant));
	r.spec = task->spec;
	r.state = task->state;
	r.status = task->status;
	memcpy(r.status_text, task->status_text, sizeof(r.status_text));
	r.created_ns = task->created_ns;
	r.armed_ns = task->armed_ns;
	r.ended_ns = task->ended_ns;
	r.arm_gen = task->arm_gen;
	memcpy(r.colored, task->colored, sizeof(r.colored));
	r.delivered = task->delivered;
	be32(key, task->id);
	return put(s, DB_TASKS, key, sizeof(key), &r, sizeof(r), "write a task");
}

int dt_taskstore_put_obs(struct dt_taskstore *s, uint32_t id, uint64_t first, const struct dt_obs *o,
		     size_t n)
{
	uint8_t key[12];
	int rv;

	be32(key, id);
	for (size_t i = 0; i < n; i++) {
		be64(key + 4, first + i);
		if ((rv = put(s, DB_OBS, key, sizeof(key), &o[i], sizeof(o[i]),
			      "write observations")) != 0) {
			return rv;
		}
	}
	return 0;
}

int dt_taskstore_del_obs(struct dt_taskstore *s, uint32_t id)
{
	uint8_t key[12] = {0};
	MDB_cursor *cur;
	MDB_val k = {sizeof(key), key}, v;
	int rc;

	if (!s->txn) {
		return -EINVAL;
	}
	be32(key, id);
	if ((rc = mdb_cursor_open(s->txn, s->dbi[DB_OBS], &cur)) != 0) {
		return mdb_err(rc, "delete observations");
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == sizeof(key) && get_be32(k.mv_data) == id) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == 0 && (k.mv_size != sizeof(key) || get_be32(k.mv_data) != id)) {
			break;
		}
		if (rc == EINVAL) { /* deleted the last record */
			rc = MDB_NOTFOUND;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : mdb_err(rc, "delete observations");
}

int dt_taskstore_put_report(struct dt_taskstore *s, uint32_t id, const void *buf, size_t len)
{
	uint8_t key[4];

	be32(key, id);
	return put(s, DB_REPORTS, key, sizeof(key), buf, len, "write a report");
}

int dt_taskstore_put_string(struct dt_taskstore *s, uint32_t idx, const char *str)
{
	uint8_t key[4];

	be32(key, idx);
	return put(s, DB_STRINGS, key, sizeof(key), str, strlen(str), "write a name");
}

int dt_taskstore_put_seq(struct dt_taskstore *s, const char *sender, uint64_t seq)
{
	return put(s, DB_SEQS, (void *)sender, strlen(sender), &seq, sizeof(seq), "write a seq");
}

int dt_taskstore_put_held(struct dt_taskstore *s, uint64_t id, const struct dt_stitch_in *in)
{
	uint8_t key[8];

	be64(key, id);
	return put(s, DB_HELD, key, sizeof(key), in, sizeof(*in), "write a held sample");
}

int dt_taskstore_del_held(struct dt_taskstore *s, uint64_t id)
{
	uint8_t key[8];
	MDB_val k = {sizeof(key), key};
	int rc;

	if (!s->txn) {
		return -EINVAL;
	}
	be64(key, id);
	rc = mdb_del(s->txn, s->dbi[DB_HELD], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "delete a held sample");
}

int dt_taskstore_put_counters(struct dt_taskstore *s, const struct dt_stitch_counters *c)
{
	return put(s, DB_META, "stitch", 6, c, sizeof(*c), "write the counters");
}

/* Walks database db in key order, calling fn for each record. */
static int walk(MDB_txn *txn, MDB_dbi dbi, int (*fn)(void *ctx, MDB_val *k, MDB_val *v),
		void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, rv = 0;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		return mdb_err(rc, "read");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		rv = fn(ctx, &k, &v);
	}
	mdb_cursor_close(cur);
	if (rv) {
		return rv;
	}
	return rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "read");
}

static int load_string(void *ctx, MDB_val *k, MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	char buf[512];
	size_t len = v->mv_size < sizeof(buf) - 1 ? v->mv_size : sizeof(buf) - 1;

	if (k->mv_size != 4) {
		return -EPROTO;
	}
	memcpy(buf, v->mv_data, len);
	buf[len] = '\0';
	return ops->string ? ops->string(ops->arg, get_be32(k->mv_data), buf) : 0;
}

static int load_seq(void *ctx, MDB_val *k, MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	char name[DT_NAME_MAX];
	uint64_t seq;

	if (v->mv_size != sizeof(seq) || k->mv_size >= sizeof(name)) {
		return -EPROTO;
	}
	memcpy(&seq, v->mv_data, sizeof(seq));
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	return ops->seq ? ops->seq(ops->arg, name, seq) : 0;
}

static int load_task(void *ctx, MDB_val *k, MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	struct task_rec r;
	struct dt_task *t;

	if (v->mv_size != sizeof(r)) {
		return -EPROTO;
	}
	memcpy(&r, v->mv_data, sizeof(r));
	if (r.layout != DT_TASKSTORE_LAYOUT || r.state >= DT_TASK_STATE_MAX) {
		return -EPROTO;
	}
	if (!(t = calloc(1, sizeof(*t)))) {
		return -ENOMEM;
	}
	t->id = r.id;
	memcpy(t->tenant_name, r.tenant, sizeof(t->tenant_name));
	t->tenant_name[sizeof(t->tenant_name) - 1] = '\0';
	t->spec = r.spec;
	t->state = r.state;
	t->status = r.status;
	memcpy(t->status_text, r.status_text, sizeof(t->status_text));
	t->status_text[sizeof(t->status_text) - 1] = '\0';
	t->created_ns = r.created_ns;
	t->armed_ns = r.armed_ns;
	t->ended_ns = r.ended_ns;
	t->arm_gen = r.arm_gen;
	memcpy(t->colored, r.colored, sizeof(t->colored));
	t->delivered = r.delivered;
	t->active_idx = SIZE_MAX;
	if (!ops->task) {
		free(t);
		return 0;
	}
	return ops->task(ops->arg, t);
}

static int load_obs(void *ctx, MDB_val *k, MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	struct dt_obs o;

	if (k->mv_size != 12 || v->mv_size != sizeof(o)) {
		return -EPROTO;
	}
	memcpy(&o, v->mv_data, sizeof(o));
	return ops->obs ? ops->obs(ops->arg, get_be32(k->mv_data), &o) : 0;
}

static int load_held(void *ctx, MDB_val *k, MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	struct dt_stitch_in in;
	const uint8_t *p = k->mv_data;

	if (k->mv_size != 8 || v->mv_size != sizeof(in)) {
		return -EPROTO;
	}
	memcpy(&in, v->mv_data, sizeof(in));
	return ops->held(ops->arg, (uint64_t)get_be32(p) << 32 | get_be32(p + 4), &in);
}

/* The stitcher's counters, when stored. */
static int load_counters(MDB_txn *txn, MDB_dbi dbi, const struct dt_taskstore_load_ops *ops)
{
	MDB_val k = {6, "stitch"}, v;
	struct dt_stitch_counters c;
	int rc;

	if (!ops->counters) {
		return 0;
	}
	if ((rc = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND) {
		return 0;
	}
	if (rc != 0) {
		return mdb_err(rc, "load the counters");
	}
	if (v.mv_size != sizeof(c)) {
		return -EPROTO;
	}
	memcpy(&c, v.mv_data, sizeof(c));
	return ops->counters(ops->arg, &c);
}

int dt_taskstore_load(struct dt_taskstore *s, const struct dt_taskstore_load_ops *ops)
{
	MDB_val k = {4, "meta"}, v;
	struct meta_rec m;
	MDB_txn *txn;
	int rc, rv;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
		return mdb_err(rc, "load");
	}
	if ((rc = mdb_get(txn, s->dbi[DB_META], &k, &v)) != 0 || v.mv_size != sizeof(m)) {
		rv = rc ? mdb_err(rc, "load meta") : -EPROTO;
		goto out;
	}
	memcpy(&m, v.mv_data, sizeof(m));
	if (ops->meta && (rv = ops->meta(ops->arg, m.next_id, m.gen)) != 0) {
		goto out;
	}
	if ((rv = load_counters(txn, s->dbi[DB_META], ops)) != 0 ||
	    (rv = walk(txn, s->dbi[DB_STRINGS], load_string, (void *)ops)) != 0 ||
	    (rv = walk(txn, s->dbi[DB_SEQS], load_seq, (void *)ops)) != 0 ||
	    (rv = walk(txn, s->dbi[DB_TASKS], load_task, (void *)ops)) != 0 ||
	    (rv = walk(txn, s->dbi[DB_OBS], load_obs, (void *)ops)) != 0 ||
	    (ops->held && (rv = walk(txn, s->dbi[DB_HELD], load_held, (void *)ops)) != 0)) {
		goto out;
	}
out:
	mdb_txn_abort(txn);
	return rv;
}

int dt_taskstore_get_report(struct dt_taskstore *s, uint32_t id, void **buf, size_t *len)
{
	uint8_t key[4];
	MDB_val k = {sizeof(key), key}, v;
	MDB_txn *txn;
	int rc, rv = 0;

	be32(key, id);
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
		return mdb_err(rc, "read a report");
	}
	rc = mdb_get(txn, s->dbi[DB_REPORTS], &k, &v);
	if (rc == MDB_NOTFOUND) {
		rv = -ENOENT;
	} else if (rc != 0) {
		rv = mdb_err(rc, "read a report");
	} else if (!(*buf = malloc(v.mv_size ? v.mv_size : 1))) {
		rv = -ENOMEM;
	} else {
		memcpy(*buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	return rv;
}
