/* SPDX-License-Identifier: MIT */
/*
 * taskstore.c - the analyzer's LMDB store (see taskstore.h), on dt_lmdb.
 *
 * Databases (keys big-endian, so that LMDB's order is numeric order):
 *   meta     "meta" -> struct meta_rec; "stitch" -> struct dt_stitch_counters
 *   tasks    id (4) -> struct task_rec
 *   obs      id (4) | index (8) -> struct dt_obs, then its prefix (cap_len bytes)
 *   reports  id (4) -> the DT_MSG_REPORT message, as served
 *   strings  index (4) -> the string, without its NUL
 *   seqs     sender name -> uint64_t
 *   held     id (8) -> struct dt_stitch_in
 *   losses   node name -> uint64_t[DT_LOSS_MAX]: the node's lost samples, by reason
 *            (a shorter value, from a build with fewer reasons, reads as zeros after it)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_lmdb.h"
#include "taskstore.h"

enum { DB_META, DB_TASKS, DB_OBS, DB_REPORTS, DB_STRINGS, DB_SEQS, DB_HELD, DB_LOSSES, DB_MAX };

static const char *const db_names[DB_MAX] = {"meta",	"tasks", "obs",	 "reports",
					     "strings", "seqs",	 "held", "losses"};

struct dt_taskstore {
	struct dt_lmdb db;
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
	uint64_t lost_base[DT_LOSS_MAX];
	uint64_t unmatched_base;
};

/* Says in err why the store in dir cannot be opened (LMDB's code rc). */
static int open_failed(char *err, size_t errlen, const char *dir, int rc)
{
	snprintf(err, errlen, "cannot open the store %s: %s", dir, mdb_strerror(rc));
	return dt_lmdb_errno(rc);
}

/* Checks the layout of the store's meta record, writing one in a new store. Returns LMDB's
 * code, or -EPROTO (told in err) for a store of another layout. */
static int check_meta(MDB_txn *txn, MDB_dbi dbi, const char *dir, char *err, size_t errlen)
{
	struct meta_rec meta = {.layout = DT_TASKSTORE_LAYOUT, .next_id = 1, .gen = 0};
	MDB_val k = dt_lmdb_str("meta"), v;
	int rc;

	if ((rc = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND) {
		v = (MDB_val){sizeof(meta), &meta};
		return mdb_put(txn, dbi, &k, &v, 0);
	}
	if (rc != 0) {
		return rc;
	}
	memset(&meta, 0, sizeof(meta));
	memcpy(&meta, v.mv_data, v.mv_size < sizeof(meta) ? v.mv_size : sizeof(meta));
	if (v.mv_size == sizeof(meta) && meta.layout == DT_TASKSTORE_LAYOUT) {
		return 0;
	}
	snprintf(err, errlen,
		 "the store %s has layout %u, this analyzer reads layout %d; move it away to "
		 "start afresh",
		 dir, meta.layout, DT_TASKSTORE_LAYOUT);
	return -EPROTO;
}

/* check_meta() in a transaction of its own. Returns 0 or -errno, told in err. */
static int open_meta(struct dt_taskstore *s, const char *dir, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(s->db.env, NULL, 0, &txn)) != 0) {
		return open_failed(err, errlen, dir, rc);
	}
	if ((rc = check_meta(txn, s->dbi[DB_META], dir, err, errlen)) != 0) {
		mdb_txn_abort(txn);
		return rc == -EPROTO ? rc : open_failed(err, errlen, dir, rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		return open_failed(err, errlen, dir, rc);
	}
	return 0;
}

int dt_taskstore_open(const char *dir, uint64_t size_mb, struct dt_taskstore **out, char *err,
		      size_t errlen)
{
	const struct dt_lmdb_cfg cfg = {
		.log_id = "DT-ANA-STORE",
		.map_size = (size_t)size_mb << 20,
		.max_dbs = DB_MAX,
		.env_flags = 0, /* synchronous: a batch is durable before its ack */
		.dbs = db_names,
		.n_dbs = DB_MAX,
	};
	struct dt_taskstore *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		return -ENOMEM;
	}
	if ((rc = dt_lmdb_mkdirs(dir)) != 0) {
		snprintf(err, errlen, "cannot create the store directory %s: %s", dir,
			 strerror(-rc));
		free(s);
		return rc;
	}
	if ((rc = dt_lmdb_open(&s->db, dir, &cfg, s->dbi)) != 0) {
		rc = open_failed(err, errlen, dir, rc);
	} else if ((rc = open_meta(s, dir, err, errlen)) != 0) {
		dt_lmdb_close(&s->db);
	}
	if (rc != 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void dt_taskstore_close(struct dt_taskstore *s)
{
	if (!s) {
		return;
	}
	if (s->txn) {
		mdb_txn_abort(s->txn);
	}
	dt_lmdb_close(&s->db);
	free(s);
}

int dt_taskstore_begin(struct dt_taskstore *s)
{
	if (s->txn) {
		return -EBUSY;
	}
	return dt_lmdb_begin(&s->db, 0, &s->txn);
}

int dt_taskstore_commit(struct dt_taskstore *s)
{
	MDB_txn *txn = s->txn;

	s->txn = NULL;
	return dt_lmdb_commit(&s->db, txn, "commit");
}

void dt_taskstore_abort(struct dt_taskstore *s)
{
	if (s->txn) {
		mdb_txn_abort(s->txn);
		s->txn = NULL;
	}
}

static int put(struct dt_taskstore *s, int db, MDB_val k, const void *val, size_t vlen,
	       const char *what)
{
	MDB_val v = {vlen, (void *)val};

	if (!s->txn) {
		return -EINVAL;
	}
	return dt_lmdb_err(&s->db, mdb_put(s->txn, s->dbi[db], &k, &v, 0), what);
}

int dt_taskstore_put_meta(struct dt_taskstore *s, uint32_t next_id, uint64_t gen)
{
	struct meta_rec m = {.layout = DT_TASKSTORE_LAYOUT, .next_id = next_id, .gen = gen};

	return put(s, DB_META, dt_lmdb_str("meta"), &m, sizeof(m), "write meta");
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
	memcpy(r.lost_base, task->lost_base, sizeof(r.lost_base));
	r.unmatched_base = task->unmatched_base;
	return put(s, DB_TASKS, dt_lmdb_key32(key, task->id), &r, sizeof(r), "write a task");
}

int dt_taskstore_put_obs(struct dt_taskstore *s, const struct dt_task *task)
{
	uint8_t key[12], rec[sizeof(struct dt_obs) + DT_CAP_MAX];
	MDB_val k = {sizeof(key), key};
	int rv;

	dt_lmdb_put_be32(key, task->id);
	for (size_t i = task->n_stored; i < task->n_obs; i++) {
		const struct dt_obs *o = &task->obs[i];

		dt_lmdb_put_be64(key + 4, i);
		memcpy(rec, o, sizeof(*o));
		if (o->cap_len) {
			memcpy(rec + sizeof(*o), dt_prefix_of(&task->prefixes, o), o->cap_len);
		}
		if ((rv = put(s, DB_OBS, k, rec, sizeof(*o) + o->cap_len, "write observations")) !=
		    0) {
			return rv;
		}
	}
	return 0;
}

int dt_taskstore_del_obs(struct dt_taskstore *s, uint32_t id)
{
	uint8_t key[4];
	MDB_val prefix = dt_lmdb_key32(key, id);

	if (!s->txn) {
		return -EINVAL;
	}
	return dt_lmdb_err(&s->db, dt_lmdb_del_prefix(s->txn, s->dbi[DB_OBS], &prefix),
			   "delete observations");
}

int dt_taskstore_put_report(struct dt_taskstore *s, uint32_t id, const void *buf, size_t len)
{
	uint8_t key[4];

	return put(s, DB_REPORTS, dt_lmdb_key32(key, id), buf, len, "write a report");
}

int dt_taskstore_put_string(struct dt_taskstore *s, uint32_t idx, const char *str)
{
	uint8_t key[4];

	return put(s, DB_STRINGS, dt_lmdb_key32(key, idx), str, strlen(str), "write a name");
}

int dt_taskstore_put_seq(struct dt_taskstore *s, const char *sender, uint64_t seq)
{
	return put(s, DB_SEQS, dt_lmdb_str(sender), &seq, sizeof(seq), "write a seq");
}

int dt_taskstore_put_held(struct dt_taskstore *s, uint64_t id, const struct dt_stitch_in *in)
{
	uint8_t key[8];

	return put(s, DB_HELD, dt_lmdb_key64(key, id), in, sizeof(*in), "write a held sample");
}

int dt_taskstore_del_held(struct dt_taskstore *s, uint64_t id)
{
	uint8_t key[8];
	MDB_val k = dt_lmdb_key64(key, id);
	int rc;

	if (!s->txn) {
		return -EINVAL;
	}
	rc = mdb_del(s->txn, s->dbi[DB_HELD], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : dt_lmdb_err(&s->db, rc, "delete a held sample");
}

int dt_taskstore_put_counters(struct dt_taskstore *s, const struct dt_stitch_counters *c)
{
	return put(s, DB_META, dt_lmdb_str("stitch"), c, sizeof(*c), "write the counters");
}

/* Hands each record of database db to fn, in key order. */
static int walk(struct dt_taskstore *s, MDB_txn *txn, int db,
		int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v),
		const struct dt_taskstore_load_ops *ops)
{
	return dt_lmdb_walk(&s->db, txn, s->dbi[db], NULL, fn, (void *)ops);
}

static int load_string(void *ctx, const MDB_val *k, const MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	char buf[512];
	size_t len = v->mv_size < sizeof(buf) - 1 ? v->mv_size : sizeof(buf) - 1;

	if (k->mv_size != 4) {
		return -EPROTO;
	}
	memcpy(buf, v->mv_data, len);
	buf[len] = '\0';
	return ops->string ? ops->string(ops->arg, dt_lmdb_get_be32(k->mv_data), buf) : 0;
}

int dt_taskstore_put_loss(struct dt_taskstore *s, const char *node,
			  const uint64_t lost[DT_LOSS_MAX])
{
	return put(s, DB_LOSSES, dt_lmdb_str(node), lost, sizeof(lost[0]) * DT_LOSS_MAX,
		   "write a node's losses");
}

static int load_seq(void *ctx, const MDB_val *k, const MDB_val *v)
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

static int load_loss(void *ctx, const MDB_val *k, const MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	uint64_t lost[DT_LOSS_MAX] = {0};
	char name[DT_NAME_MAX];

	if (v->mv_size % sizeof(lost[0]) || k->mv_size >= sizeof(name)) {
		return -EPROTO;
	}
	memcpy(lost, v->mv_data, v->mv_size < sizeof(lost) ? v->mv_size : sizeof(lost));
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	return ops->loss(ops->arg, name, lost);
}

static int load_task(void *ctx, const MDB_val *k, const MDB_val *v)
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
	memcpy(t->lost_base, r.lost_base, sizeof(t->lost_base));
	t->unmatched_base = r.unmatched_base;
	t->active_idx = SIZE_MAX;
	if (!ops->task) {
		free(t);
		return 0;
	}
	return ops->task(ops->arg, t);
}

static int load_obs(void *ctx, const MDB_val *k, const MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	struct dt_obs o;

	if (k->mv_size != 12 || v->mv_size < sizeof(o)) {
		return -EPROTO;
	}
	memcpy(&o, v->mv_data, sizeof(o));
	if (o.cap_len > DT_CAP_MAX || v->mv_size != sizeof(o) + o.cap_len) {
		return -EPROTO;
	}
	return ops->obs ? ops->obs(ops->arg, dt_lmdb_get_be32(k->mv_data), &o,
				   (const uint8_t *)v->mv_data + sizeof(o))
			: 0;
}

static int load_held(void *ctx, const MDB_val *k, const MDB_val *v)
{
	const struct dt_taskstore_load_ops *ops = ctx;
	struct dt_stitch_in in;

	if (k->mv_size != 8 || v->mv_size != sizeof(in)) {
		return -EPROTO;
	}
	memcpy(&in, v->mv_data, sizeof(in));
	return ops->held(ops->arg, dt_lmdb_get_be64(k->mv_data), &in);
}

/* The stitcher's counters, when stored. */
static int load_counters(struct dt_taskstore *s, MDB_txn *txn,
			 const struct dt_taskstore_load_ops *ops)
{
	MDB_val k = dt_lmdb_str("stitch"), v;
	struct dt_stitch_counters c;
	int rc;

	if (!ops->counters) {
		return 0;
	}
	if ((rc = mdb_get(txn, s->dbi[DB_META], &k, &v)) == MDB_NOTFOUND) {
		return 0;
	}
	if (rc != 0) {
		return dt_lmdb_err(&s->db, rc, "load the counters");
	}
	if (v.mv_size != sizeof(c)) {
		return -EPROTO;
	}
	memcpy(&c, v.mv_data, sizeof(c));
	return ops->counters(ops->arg, &c);
}

int dt_taskstore_load(struct dt_taskstore *s, const struct dt_taskstore_load_ops *ops)
{
	MDB_val k = dt_lmdb_str("meta"), v;
	struct meta_rec m;
	MDB_txn *txn;
	int rc, rv;

	if ((rc = mdb_txn_begin(s->db.env, NULL, MDB_RDONLY, &txn)) != 0) {
		return dt_lmdb_err(&s->db, rc, "load");
	}
	if ((rc = mdb_get(txn, s->dbi[DB_META], &k, &v)) != 0 || v.mv_size != sizeof(m)) {
		rv = rc ? dt_lmdb_err(&s->db, rc, "load meta") : -EPROTO;
		goto out;
	}
	memcpy(&m, v.mv_data, sizeof(m));
	if (ops->meta && (rv = ops->meta(ops->arg, m.next_id, m.gen)) != 0) {
		goto out;
	}
	if ((rv = load_counters(s, txn, ops)) != 0 ||
	    (rv = walk(s, txn, DB_STRINGS, load_string, ops)) != 0 ||
	    (rv = walk(s, txn, DB_SEQS, load_seq, ops)) != 0 ||
	    (ops->loss && (rv = walk(s, txn, DB_LOSSES, load_loss, ops)) != 0) ||
	    (rv = walk(s, txn, DB_TASKS, load_task, ops)) != 0 ||
	    (rv = walk(s, txn, DB_OBS, load_obs, ops)) != 0 ||
	    (ops->held && (rv = walk(s, txn, DB_HELD, load_held, ops)) != 0)) {
		goto out;
	}
out:
	mdb_txn_abort(txn);
	return rv;
}

/* The ids of the ended tasks a purge takes (collected first: no delete under the cursor). */
struct purge {
	uint64_t before_ns;
	uint32_t *ids;
	size_t n, cap;
};

static int purge_pick(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct purge *p = ctx;
	struct task_rec r;

	if (v->mv_size != sizeof(r)) {
		return 0; /* not ours to judge: the load says what is wrong with it */
	}
	memcpy(&r, v->mv_data, sizeof(r));
	if (r.state >= DT_TASK_STATE_MAX || !dt_task_state_terminal(r.state) || !r.ended_ns ||
	    r.ended_ns >= p->before_ns) {
		return 0;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		uint32_t *ids = realloc(p->ids, cap * sizeof(*ids));

		if (!ids) {
			return -ENOMEM;
		}
		p->ids = ids;
		p->cap = cap;
	}
	p->ids[p->n++] = r.id;
	return 0;
}

int dt_taskstore_purge_ended(struct dt_taskstore *s, uint64_t ended_before_ns, size_t *n)
{
	struct purge p = {.before_ns = ended_before_ns};
	int rv;

	*n = 0;
	if (!s->txn) {
		return -EINVAL;
	}
	if ((rv = dt_lmdb_walk(&s->db, s->txn, s->dbi[DB_TASKS], NULL, purge_pick, &p)) != 0) {
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		uint8_t key[4];
		MDB_val k = dt_lmdb_key32(key, p.ids[i]);
		int rc;

		if ((rv = dt_taskstore_del_obs(s, p.ids[i])) != 0) {
			goto out;
		}
		for (int j = 0; j < 2; j++) {
			MDB_dbi dbi = s->dbi[j ? DB_REPORTS : DB_TASKS];

			if ((rc = mdb_del(s->txn, dbi, &k, NULL)) != 0 && rc != MDB_NOTFOUND) {
				rv = dt_lmdb_err(&s->db, rc, "purge a task");
				goto out;
			}
		}
	}
	*n = p.n;
out:
	free(p.ids);
	return rv;
}

int dt_taskstore_get_report(struct dt_taskstore *s, uint32_t id, void **buf, size_t *len)
{
	uint8_t key[4];
	MDB_val k = dt_lmdb_key32(key, id), v;
	MDB_txn *txn;
	int rv;

	if ((rv = mdb_txn_begin(s->db.env, NULL, MDB_RDONLY, &txn)) != 0) {
		return dt_lmdb_err(&s->db, rv, "read a report");
	}
	rv = dt_lmdb_err(&s->db, mdb_get(txn, s->dbi[DB_REPORTS], &k, &v), "read a report");
	if (rv == 0 && !(*buf = malloc(v.mv_size ? v.mv_size : 1))) {
		rv = -ENOMEM;
	} else if (rv == 0) {
		memcpy(*buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	return rv;
}
