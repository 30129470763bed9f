/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "dt_ingest.h"
#include "dt_listen.h"
#include "dt_config.h"
#include "dt_log.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_time.h"
#include "dt_tls.h"

/* What we know of one sender: the control generation it applied, and when. */
struct sender {
	struct sender *next;
	char name[DT_NAME_MAX];
	uint64_t gen;
	uint64_t heard_ms;
};

/* The latest state a node reported (directly or relayed), and when. */
struct node_entry {
	struct node_entry *next;
	struct dt_node_state st; /* owns its endpoints and arm_fails */
	uint64_t heard_ms;
};

/* One context of the rep socket and the request it holds. */
struct req {
	struct dt_ingest *in;
	nng_ctx ctx;
	nng_aio *aio;	   /* the receive: req_done() */
	nng_aio *saio;	   /* the reply: no callback (see req_reply()) */
	nng_msg *msg;	   /* the request, from its arrival to its reply */
	struct req *next;  /* in the ready list */
	struct dt_batch b; /* the request decoded, while the ingest thread handles it */
};

struct dt_ingest {
	char url[256];
	struct dt_ingest_ops ops;
	nng_socket sock;
	pthread_t thread;
	pthread_mutex_t mu; /* guards ctl, senders and st */
	struct dt_control ctl;
	struct sender *senders;
	struct node_entry *nodes;
	struct dt_ingest_stats st;
	struct dt_ratelimit rl_malformed;
	struct req *reqs;		/* DT_INGEST_GROUP_MAX */
	pthread_mutex_t qmu;		/* guards ready, ready_tail, stopping */
	pthread_cond_t qcv;		/* a request is ready, or stopping */
	struct req *ready, *ready_tail; /* received, in arrival order, for the ingest thread */
	bool stopping;
	bool running;		       /* the ingest thread was started */
	struct dt_tls_watch tls_watch; /* with TLS: refused handshakes (the ingest thread's) */
	bool tls;
};

static struct sender *sender_find(struct dt_ingest *in, const char *name)
{
	struct sender *s;

	for (s = in->senders; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	strcpy(s->name, name);
	s->next = in->senders;
	in->senders = s;
	return s;
}

/* Records the node states a batch carries. Called with in->mu held. */
static void note_nodes(struct dt_ingest *in, const struct dt_batch *b)
{
	uint64_t now = dt_mono_ms();

	for (uint32_t i = 0; i < b->n_nodes; i++) {
		const struct dt_node_state *ns = &b->nodes[i];
		struct node_entry *e;
		struct dt_node_state copy;

		if (dt_node_state_copy(&copy, ns))
			continue;
		for (e = in->nodes; e; e = e->next)
			if (strcmp(e->st.node, ns->node) == 0)
				break;
		if (!e) {
			if (!(e = calloc(1, sizeof(*e)))) {
				dt_node_state_free(&copy);
				continue;
			}
			e->next = in->nodes;
			in->nodes = e;
		}
		dt_node_state_free(&e->st);
		e->st = copy;
		e->heard_ms = now;
	}
}

/* Waits for r's previous reply to be handed to its pipe, and frees it if that failed. */
static void reply_reap(struct req *r)
{
	nng_msg *m;

	nng_aio_wait(r->saio);
	if (nng_aio_result(r->saio) != 0 && (m = nng_aio_get_msg(r->saio)))
		nng_msg_free(m); /* not sent: still ours */
	nng_aio_set_msg(r->saio, NULL);
}

/*
 * Sends out (encoded by the caller) as the reply to r's request, reusing its message, then
 * takes the next request on r. Without a reply (nothing encoded, no memory) the sender
 * times out and resends.
 *
 * The reply's aio has no callback: the REP context hands the message to its pipe within
 * nng_ctx_send() (or queues it there when the pipe is still sending), and an aio without a
 * callback completes without waking an NNG thread, one thread switch less per batch. The
 * context is free for the next receive as soon as nng_ctx_send() returns.
 */
static void req_reply(struct req *r, const msgpack_sbuffer *out)
{
	nng_msg *m = r->msg;

	r->msg = NULL;
	nng_msg_clear(m);
	reply_reap(r);
	if (out->size && nng_msg_append(m, out->data, out->size) == 0) {
		nng_aio_set_msg(r->saio, m);
		nng_ctx_send(r->ctx, r->saio);
	} else {
		nng_msg_free(m);
	}
	nng_ctx_recv(r->ctx, r->aio);
}

/* The completion of r's receive, on an NNG thread. */
static void req_done(void *arg)
{
	struct req *r = arg;
	struct dt_ingest *in = r->in;
	int rv = nng_aio_result(r->aio);

	pthread_mutex_lock(&in->qmu);
	if (rv == 0) {
		r->msg = nng_aio_get_msg(r->aio);
		r->next = NULL;
		if (in->ready_tail)
			in->ready_tail->next = r;
		else
			in->ready = r;
		in->ready_tail = r;
		pthread_cond_signal(&in->qcv);
	} else if (!in->stopping && rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
		nng_ctx_recv(r->ctx, r->aio); /* the peer went away: the next request */
	}
	pthread_mutex_unlock(&in->qmu);
}

static void reply_error(struct dt_ingest *in, struct req *r, enum dt_status status,
			const char *text)
{
	struct dt_error e = {.status = status};
	msgpack_sbuffer out;

	snprintf(e.message, sizeof(e.message), "%s", text);
	msgpack_sbuffer_init(&out);
	dt_error_encode(&out, &e);
	req_reply(r, &out);
	msgpack_sbuffer_destroy(&out);
}

static void reply_ack(struct dt_ingest *in, struct req *r, uint64_t seq, enum dt_status status,
		      uint64_t sender_gen)
{
	struct dt_ack ack = {.seq = seq, .status = status};
	msgpack_sbuffer out;

	msgpack_sbuffer_init(&out);
	pthread_mutex_lock(&in->mu);
	if (in->ctl.gen != 0 && in->ctl.gen != sender_gen) {
		ack.has_control = true;
		ack.control = in->ctl; /* shallow: encoded under the lock */
	}
	if (dt_ack_encode(&out, &ack) != 0)
		msgpack_sbuffer_clear(&out);
	pthread_mutex_unlock(&in->mu);
	if (out.size)
		req_reply(r, &out);
	else
		reply_error(in, r, DT_ST_FAILED, "cannot encode acknowledgement");
	msgpack_sbuffer_destroy(&out);
}

static void count_malformed(struct dt_ingest *in, int err, const char *what)
{
	uint64_t suppressed;

	pthread_mutex_lock(&in->mu);
	in->st.malformed++;
	if (-err > 0 && -err < (int)(sizeof(in->st.malformed_by) / sizeof(in->st.malformed_by[0])))
		in->st.malformed_by[-err]++;
	pthread_mutex_unlock(&in->mu);
	if (dt_ratelimit_ok(&in->rl_malformed, 1000, &suppressed))
		dt_warn("DT-INGEST-MALFORMED",
			"%s: refused a %s: %s (%llu more refused since the last report)", in->url,
			what, dt_proto_strerror(err), (unsigned long long)suppressed);
}

/* Decodes (or checks) r's request into r->b. A malformed one is counted, refused, false. */
static bool req_take(struct dt_ingest *in, struct req *r)
{
	const void *buf = nng_msg_body(r->msg);
	size_t len = nng_msg_len(r->msg);
	enum dt_msg_type type;
	int rv;

	if ((rv = dt_msg_type(buf, len, &type)) == 0 && type != DT_MSG_BATCH)
		rv = DT_PROTO_EMSGTYPE;
	if (rv == 0)
		rv = in->ops.check_only ? dt_batch_check(buf, len, &r->b)
					: dt_batch_decode(buf, len, &r->b);
	if (rv == 0)
		return true;
	count_malformed(in, rv, "message");
	reply_error(in, r, DT_ST_INVALID, dt_proto_strerror(rv));
	return false;
}

/* Notes what r's batch says of its sender and nodes, acknowledges it with status. */
static void req_finish(struct dt_ingest *in, struct req *r, int status)
{
	struct sender *s;

	pthread_mutex_lock(&in->mu);
	if ((s = sender_find(in, r->b.sender))) {
		s->gen = r->b.ctl_gen;
		s->heard_ms = dt_mono_ms();
	}
	note_nodes(in, &r->b);
	pthread_mutex_unlock(&in->mu);
	reply_ack(in, r, r->b.seq, status, r->b.ctl_gen);
	dt_batch_free(&r->b);
}

/* A batch without samples: nothing to deduplicate; it carries ctl_gen and loss counters. */
static void handle_heartbeat(struct dt_ingest *in, struct req *r)
{
	pthread_mutex_lock(&in->mu);
	in->st.heartbeats++;
	pthread_mutex_unlock(&in->mu);
	if (in->ops.on_heartbeat)
		in->ops.on_heartbeat(in->ops.arg, &r->b, nng_msg_body(r->msg), nng_msg_len(r->msg));
	req_finish(in, r, DT_ST_OK);
}

/*
 * Stores the batches of seg (from distinct senders, none stored yet) and only then
 * acknowledges them: with on_batches in one go, else one by one.
 */
static void store_group(struct dt_ingest *in, struct req **seg, unsigned n)
{
	struct dt_ingest_item items[DT_INGEST_GROUP_MAX];
	int status[DT_INGEST_GROUP_MAX];
	unsigned i;

	for (i = 0; i < n; i++) {
		items[i].b = &seg[i]->b;
		items[i].raw = nng_msg_body(seg[i]->msg);
		items[i].len = nng_msg_len(seg[i]->msg);
	}
	if (n && in->ops.on_batches) {
		status[0] = in->ops.on_batches(in->ops.arg, items, n);
		for (i = 1; i < n; i++)
			status[i] = status[0];
	} else {
		for (i = 0; i < n; i++)
			status[i] = in->ops.on_batch(in->ops.arg, items[i].b, items[i].raw,
						     items[i].len);
	}
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&in->mu);
		if (status[i] == DT_ST_OK) {
			in->st.batches++;
			in->st.samples += seg[i]->b.n_samples;
		} else {
			in->st.store_errors++;
		}
		pthread_mutex_unlock(&in->mu);
		req_finish(in, seg[i], status[i]);
	}
}

static bool group_has(struct req *const *seg, unsigned n, const char *sender)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(seg[i]->b.sender, sender) == 0)
			return true;
	return false;
}

/*
 * The requests that arrived together, in their order. Heartbeats and batches stored
 * already are acknowledged at once; the others are stored as one group. A second request
 * of a sender (a resend, say) stores the group first, so that deduplication and the order
 * of each sender's batches stay as if they came one by one.
 */
static void handle_group(struct dt_ingest *in, struct req **reqs, unsigned n)
{
	struct req *seg[DT_INGEST_GROUP_MAX];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct req *r = reqs[i];

		if (!req_take(in, r))
			continue;
		if (group_has(seg, k, r->b.sender)) {
			store_group(in, seg, k);
			k = 0;
		}
		if (r->b.n_samples == 0) {
			handle_heartbeat(in, r);
		} else if (r->b.seq <= in->ops.last_seq(in->ops.arg, r->b.sender)) {
			pthread_mutex_lock(&in->mu);
			in->st.duplicates++;
			pthread_mutex_unlock(&in->mu);
			req_finish(in, r, DT_ST_OK);
		} else {
			seg[k++] = r;
		}
	}
	store_group(in, seg, k);
}

static void *ingest_thread(void *arg)
{
	struct dt_ingest *in = arg;
	struct req *reqs[DT_INGEST_GROUP_MAX];

	for (;;) {
		unsigned n = 0;

		if (in->tls) {
			uint64_t refused = dt_tls_watch_check(&in->tls_watch);

			pthread_mutex_lock(&in->mu);
			in->st.tls_refused = refused;
			pthread_mutex_unlock(&in->mu);
		}
		pthread_mutex_lock(&in->qmu);
		if (!in->stopping && !in->ready) {
			/* At least once a second, for the TLS watch. */
			struct timespec ts = dt_deadline_ms(1000);

			pthread_cond_timedwait(&in->qcv, &in->qmu, &ts);
		}
		if (!in->stopping && !in->ready) {
			pthread_mutex_unlock(&in->qmu);
			continue;
		}
		if (in->stopping) {
			pthread_mutex_unlock(&in->qmu);
			break;
		}
		for (struct req *r = in->ready; r; r = r->next)
			reqs[n++] = r;
		in->ready = in->ready_tail = NULL;
		pthread_mutex_unlock(&in->qmu);
		handle_group(in, reqs, n);
	}
	return NULL;
}

int dt_ingest_start(const char *url, const struct dt_ingest_ops *ops, struct dt_ingest **out)
{
	return dt_ingest_start_tls(url, NULL, ops, out);
}

/* Listens on url, with TLS when configured. Returns 0 or an NNG error (logged). */
static int ingest_listen(struct dt_ingest *in, const char *url, const struct dt_tls_files *tls)
{
	char err[DT_ERRBUF_MAX];
	nng_tls_config *tc = NULL;
	nng_listener lst;
	int rv;

	if ((rv = nng_listener_create(&lst, in->sock, url)) != 0)
		goto fail;
	if (dt_tls_enabled(tls)) {
		if (dt_tls_config_new(tls, true, &tc, err, sizeof(err))) {
			dt_err("DT-INGEST-TLS", "%s", err);
			return NNG_EINVAL;
		}
		rv = nng_listener_set_ptr(lst, NNG_OPT_TLS_CONFIG, tc);
		nng_tls_config_free(tc);
		if (rv != 0)
			goto fail;
		dt_tls_watch_listener(&in->tls_watch, lst, url);
		in->tls = true;
	}
	if ((rv = nng_listener_start(lst, 0)) == 0) {
		if (!dt_tls_enabled(tls))
			dt_listen_warn_exposed(url, "anyone who reaches the port can inject "
						    "samples or read the control set");
		return 0;
	}
fail:
	dt_err("DT-INGEST-LISTEN", "cannot listen on %s: %s", url, nng_strerror(rv));
	return rv;
}

/* Opens the contexts and their aios (not receiving yet). Returns 0 or an NNG error. */
static int reqs_open(struct dt_ingest *in)
{
	int rv;

	in->reqs = calloc(DT_INGEST_GROUP_MAX, sizeof(*in->reqs));
	if (!in->reqs)
		return NNG_ENOMEM;
	for (int i = 0; i < DT_INGEST_GROUP_MAX; i++) {
		struct req *r = &in->reqs[i];

		r->in = in;
		if ((rv = nng_aio_alloc(&r->aio, req_done, r)) != 0 ||
		    (rv = nng_aio_alloc(&r->saio, NULL, NULL)) != 0 ||
		    (rv = nng_ctx_open(&r->ctx, in->sock)) != 0)
			return rv;
		nng_ctx_set_ms(r->ctx, NNG_OPT_RECVTIMEO, NNG_DURATION_INFINITE);
		nng_ctx_set_ms(r->ctx, NNG_OPT_SENDTIMEO, 1000);
	}
	return 0;
}

static void ingest_free(struct dt_ingest *in, bool sock_open);

int dt_ingest_start_tls(const char *url, const struct dt_tls_files *tls,
			const struct dt_ingest_ops *ops, struct dt_ingest **out)
{
	struct dt_ingest *in;

	if (strlen(url) >= sizeof(in->url))
		return -EINVAL;
	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	strcpy(in->url, url);
	in->ops = *ops;
	pthread_mutex_init(&in->mu, NULL);
	pthread_mutex_init(&in->qmu, NULL);
	pthread_cond_init(&in->qcv, NULL);
	if (nng_rep0_open(&in->sock) != 0) {
		ingest_free(in, false);
		return -EINVAL;
	}
	nng_socket_set_size(in->sock, NNG_OPT_RECVMAXSZ, 64u << 20);
	if (reqs_open(in) != 0 || ingest_listen(in, url, tls) != 0 ||
	    pthread_create(&in->thread, NULL, ingest_thread, in) != 0) {
		ingest_free(in, true);
		return -EINVAL;
	}
	in->running = true;
	for (int i = 0; i < DT_INGEST_GROUP_MAX; i++)
		nng_ctx_recv(in->reqs[i].ctx, in->reqs[i].aio);
	dt_info("DT-INGEST-LISTEN", "listening for batches on %s%s", url,
		dt_tls_enabled(tls) ? " (mutual TLS)" : "");
	*out = in;
	return 0;
}

int dt_ingest_set_control(struct dt_ingest *in, const struct dt_control *c)
{
	struct dt_arm *arms = NULL;

	if (c->n_arms) {
		arms = malloc(sizeof(*arms) * c->n_arms);
		if (!arms)
			return -ENOMEM;
		memcpy(arms, c->arms, sizeof(*arms) * c->n_arms);
	}
	pthread_mutex_lock(&in->mu);
	dt_control_free(&in->ctl);
	in->ctl.gen = c->gen;
	in->ctl.n_arms = c->n_arms;
	in->ctl.arms = arms;
	pthread_mutex_unlock(&in->mu);
	return 0;
}

uint64_t dt_ingest_min_gen(struct dt_ingest *in, unsigned window_ms, unsigned *senders)
{
	uint64_t now = dt_mono_ms(), min = 0;
	unsigned n = 0;
	struct sender *s;

	pthread_mutex_lock(&in->mu);
	for (s = in->senders; s; s = s->next) {
		if (now - s->heard_ms > window_ms)
			continue;
		if (n == 0 || s->gen < min)
			min = s->gen;
		n++;
	}
	pthread_mutex_unlock(&in->mu);
	if (senders)
		*senders = n;
	return min;
}

void dt_node_states_free(struct dt_node_state *v, uint32_t n)
{
	for (uint32_t i = 0; v && i < n; i++)
		dt_node_state_free(&v[i]);
	free(v);
}

int dt_ingest_nodes(struct dt_ingest *in, unsigned window_ms, struct dt_node_state **out,
		    uint32_t *n)
{
	uint64_t now = dt_mono_ms();
	struct dt_node_state *v = NULL;
	struct node_entry *e;
	uint32_t cnt = 0, i = 0;
	int rv = 0;

	pthread_mutex_lock(&in->mu);
	for (e = in->nodes; e; e = e->next)
		cnt += now - e->heard_ms <= window_ms;
	if (cnt && !(v = calloc(cnt, sizeof(*v))))
		rv = -ENOMEM;
	for (e = in->nodes; e && rv == 0; e = e->next) {
		if (now - e->heard_ms > window_ms)
			continue;
		if ((rv = dt_node_state_copy(&v[i], &e->st)) == 0)
			i++;
	}
	pthread_mutex_unlock(&in->mu);
	if (rv) {
		dt_node_states_free(v, i);
		return rv;
	}
	*out = v;
	*n = i;
	return 0;
}

void dt_ingest_stats(struct dt_ingest *in, struct dt_ingest_stats *st)
{
	pthread_mutex_lock(&in->mu);
	*st = in->st;
	pthread_mutex_unlock(&in->mu);
}

int dt_ingest_metrics(struct dt_metrics_buf *b, const char *prefix,
		      const struct dt_ingest_stats *is)
{
	const size_t n = sizeof(is->malformed_by) / sizeof(is->malformed_by[0]);
	char name[DT_METRICS_NAME_MAX];

	_Static_assert(sizeof(is->malformed_by) / sizeof(is->malformed_by[0]) == DT_PROTO_NCODES,
		       "a counter for every DT_PROTO_* code");
	snprintf(name, sizeof(name), "%s_heartbeats_total", prefix);
	dt_metrics_counter(b, name, "Batches without samples (heartbeats) received.", NULL,
			   is->heartbeats);
	snprintf(name, sizeof(name), "%s_batches_duplicate_total", prefix);
	dt_metrics_counter(b, name, "Resent batches acknowledged again without storing them.", NULL,
			   is->duplicates);
	snprintf(name, sizeof(name), "%s_requests_malformed_total", prefix);
	for (size_t i = 1; i < n; i++)
		dt_metrics_counter(b, name,
				   "Requests refused as malformed, by reason; their "
				   "samples count as lost (rejected) at the sender.",
				   DT_METRICS_LABELS("reason", dt_proto_errname(-(int)i)),
				   is->malformed_by[i]);
	snprintf(name, sizeof(name), "%s_tls_refused_total", prefix);
	dt_metrics_counter(b, name,
			   "Senders refused at the TLS handshake: no certificate, one the CA did "
			   "not sign, or an expired one (logged as DT-TLS-REFUSED).",
			   NULL, is->tls_refused);
	snprintf(name, sizeof(name), "%s_batches_failed_total", prefix);
	return dt_metrics_counter(b, name,
				  "Batches with samples that could not be taken (not "
				  "stored); the sender resends them.",
				  NULL, is->store_errors);
}

/* How long dt_ingest_stop() waits for nng_close() (see close_bounded()). */
#define CLOSE_WAIT_MS 3000

struct closer {
	nng_socket sock;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned;
};

static void *closer_run(void *arg)
{
	struct closer *c = arg;
	bool free_it;

	nng_close(c->sock);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	free_it = c->abandoned;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (free_it) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(c);
	}
	return NULL;
}

/*
 * Closes sock, waiting at most CLOSE_WAIT_MS. nng 1.5.2's nng_close() can block for good
 * when a peer's pipe is being set up at that moment (seen in the lab: a collector
 * reconnecting right as the analyzer stops, every nng thread waiting). Nothing of ours is
 * used by nng once the receiving thread is joined, so a close that does not return is left
 * to finish (or to the process's exit) on a thread of its own, and said in the log.
 */
static void close_bounded(nng_socket sock, const char *url)
{
	struct closer *c = calloc(1, sizeof(*c));
	struct timespec ts = dt_deadline_ms(CLOSE_WAIT_MS);
	pthread_t t;
	bool done;
	int rv = 0;

	if (!c) {
		nng_close(sock);
		return;
	}
	c->sock = sock;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&t, NULL, closer_run, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(c);
		nng_close(sock);
		return;
	}
	pthread_detach(t);
	pthread_mutex_lock(&c->mu);
	while (!c->done && rv != ETIMEDOUT) {
		rv = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	done = c->done;
	c->abandoned = !done;
	pthread_mutex_unlock(&c->mu);
	if (done) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(c);
	} else {
		dt_warn("DT-INGEST-CLOSE",
			"%s: the socket did not close within %d ms (an nng shutdown stall); "
			"going on without waiting for it",
			url, CLOSE_WAIT_MS);
	}
}

/*
 * Stops the ingest thread and every context (a completion that comes now takes no next
 * request), closes the socket and frees everything.
 */
static void ingest_free(struct dt_ingest *in, bool sock_open)
{
	struct sender *s;

	pthread_mutex_lock(&in->qmu);
	in->stopping = true;
	pthread_cond_signal(&in->qcv);
	pthread_mutex_unlock(&in->qmu);
	if (in->running)
		pthread_join(in->thread, NULL);
	for (int i = 0; in->reqs && i < DT_INGEST_GROUP_MAX; i++) {
		if (in->reqs[i].aio)
			nng_aio_stop(in->reqs[i].aio);
		if (in->reqs[i].saio) {
			nng_aio_stop(in->reqs[i].saio);
			reply_reap(&in->reqs[i]);
		}
	}
	if (sock_open)
		close_bounded(in->sock, in->url);
	for (int i = 0; in->reqs && i < DT_INGEST_GROUP_MAX; i++) {
		struct req *r = &in->reqs[i];

		if (r->msg)
			nng_msg_free(r->msg);
		if (r->aio)
			nng_aio_free(r->aio);
		if (r->saio)
			nng_aio_free(r->saio);
		dt_batch_free(&r->b);
	}
	free(in->reqs);
	while ((s = in->senders)) {
		in->senders = s->next;
		free(s);
	}
	while (in->nodes) {
		struct node_entry *e = in->nodes;

		in->nodes = e->next;
		dt_node_state_free(&e->st);
		free(e);
	}
	dt_control_free(&in->ctl);
	pthread_cond_destroy(&in->qcv);
	pthread_mutex_destroy(&in->qmu);
	pthread_mutex_destroy(&in->mu);
	free(in);
}

void dt_ingest_stop(struct dt_ingest *in)
{
	ingest_free(in, true);
}
