/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/reqrep0/req.h>

#include "dt_ingest.h" /* dt_node_states_free() */
#include "dt_link.h"
#include "dt_config.h"
#include "dt_log.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_spool.h"
#include "dt_time.h"
#include "dt_tls.h"

struct qitem {
	struct qitem *next;
	uint64_t seq;
	bool from_spool; /* still in the spool until acknowledged */
	uint32_t n_samples;
	msgpack_sbuffer msg;
};

struct dt_link {
	char url[256];
	char sender[DT_NAME_MAX];
	struct dt_link_cfg cfg;
	struct dt_link_ops ops;
	nng_socket sock;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct qitem *head, *tail; /* FIFO; the head is in flight until acknowledged */
	uint64_t spool_loaded;	   /* highest spooled seq loaded into the memory queue */
	uint64_t spool_in_memory;  /* spooled batches in the memory queue now */
	uint64_t next_seq;
	bool stopping;
	uint64_t drain_until_ms;
	uint64_t heartbeat_due_ms; /* monotonic: the next heartbeat, whether batches flow or not */
	struct dt_link_stats st;
	struct dt_ratelimit rl_down, rl_bad, rl_ctl;
	struct dt_tls_watch tls_watch; /* with TLS: failed handshakes (the link thread's) */
	bool tls;
};

static const char *const ctl_refusal_names[DT_LINK_CTL_REFUSALS] = {
	[DT_LINK_CTL_GENERATION] = "generation",
};

enum dt_link_ctl_refusal dt_link_control_check(const struct dt_control *c)
{
	return c->gen > DT_LINK_GEN_MAX ? DT_LINK_CTL_GENERATION : DT_LINK_CTL_OK;
}

/*
 * The next message of this link, with seq (0: the link's next one): b encoded, or, when b
 * is NULL, the encoded batch raw re-framed under our sender, seq and ctl_gen. Called with
 * l->mu held. Returns 0, -ENOMEM, or -EINVAL when the batch does not encode.
 */
static int link_encode(struct dt_link *l, struct dt_batch *b, const void *raw, size_t len,
		       uint64_t seq, struct qitem **out)
{
	struct qitem *q = calloc(1, sizeof(*q));
	uint64_t gen;
	int rv;

	if (!q)
		return -ENOMEM;
	if (seq == 0)
		seq = l->next_seq++;
	gen = l->ops.advertise_gen ? l->ops.advertise_gen(l->ops.arg) : l->st.ctl_gen;
	msgpack_sbuffer_init(&q->msg);
	if (b) {
		strcpy(b->sender, l->sender);
		b->seq = seq;
		b->ctl_gen = gen;
		q->n_samples = b->n_samples;
		rv = dt_batch_encode(&q->msg, b);
	} else {
		rv = dt_batch_reframe(&q->msg, raw, len, l->sender, seq, gen, &q->n_samples);
	}
	if (rv != 0) {
		msgpack_sbuffer_destroy(&q->msg);
		free(q);
		return rv == DT_PROTO_ENOMEM ? -ENOMEM : -EINVAL;
	}
	q->seq = seq;
	*out = q;
	return 0;
}

static void qitem_free(struct qitem *q)
{
	msgpack_sbuffer_destroy(&q->msg);
	free(q);
}

/* Appends q to the memory queue. Called with l->mu held. */
static void enqueue(struct dt_link *l, struct qitem *q)
{
	q->next = NULL;
	if (l->tail)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->st.queue_depth++;
}

/* Writes q to the spool (then frees it), with the sender's note (NULL: none). Called with
 * l->mu held. */
static int spool_put(struct dt_link *l, struct qitem *q, const void *note, size_t note_len)
{
	/* Entries loaded into memory are being sent: eviction leaves them alone. */
	int rv = dt_spool_push(l->cfg.spool, q->seq, q->n_samples, q->msg.data, q->msg.size,
			       l->spool_loaded, &l->st.spool_evicted_samples, note, note_len);

	l->st.spooled = dt_spool_count(l->cfg.spool) - l->spool_in_memory;
	qitem_free(q);
	return rv;
}

/*
 * Loads spooled batches, oldest first, into the memory queue while it has room. They stay
 * in the spool until acknowledged, so that a crash while replaying loses nothing.
 */
static void spool_refill(struct dt_link *l)
{
	while (l->cfg.spool && dt_spool_count(l->cfg.spool) > l->spool_in_memory &&
	       l->st.queue_depth < l->cfg.queue_max) {
		struct qitem *q = calloc(1, sizeof(*q));

		if (!q)
			return;
		msgpack_sbuffer_init(&q->msg);
		if (dt_spool_read_after(l->cfg.spool, l->spool_loaded, &q->seq, &q->n_samples,
					&q->msg)) {
			qitem_free(q);
			return;
		}
		q->from_spool = true;
		l->spool_loaded = q->seq;
		l->spool_in_memory++;
		enqueue(l, q);
	}
	if (l->cfg.spool)
		l->st.spooled = dt_spool_count(l->cfg.spool) - l->spool_in_memory;
}

/* A batch left the memory queue for good (acknowledged or refused). Called with l->mu. */
static void spool_done(struct dt_link *l, struct qitem *q)
{
	if (!q->from_spool)
		return;
	dt_spool_delete(l->cfg.spool, q->seq);
	l->spool_in_memory--;
}

/* Hands a control set that passes dt_link_control_check() to on_control; refuses (counts,
 * logs) another, keeping the generation applied. */
static void link_apply_control(struct dt_link *l, const struct dt_control *c)
{
	enum dt_link_ctl_refusal why = dt_link_control_check(c);
	uint64_t suppressed, gen;

	if (why != DT_LINK_CTL_OK) {
		pthread_mutex_lock(&l->mu);
		l->st.controls_refused[why]++;
		gen = l->st.ctl_gen;
		pthread_mutex_unlock(&l->mu);
		if (dt_ratelimit_ok(&l->rl_ctl, 1000, &suppressed))
			dt_warn("DT-LINK-BADCONTROL",
				"%s: refused control set %llu of %u tasks (%s above %llu); keeping "
				"generation %llu (%llu more since the last report)",
				l->url, (unsigned long long)c->gen, c->n_arms,
				ctl_refusal_names[why], (unsigned long long)DT_LINK_GEN_MAX,
				(unsigned long long)gen, (unsigned long long)suppressed);
		return;
	}
	if (!l->ops.on_control)
		return;
	gen = l->ops.on_control(l->ops.arg, c);
	pthread_mutex_lock(&l->mu);
	l->st.ctl_gen = gen;
	pthread_mutex_unlock(&l->mu);
}

enum send_result { SENT_ACKED, SENT_RETRY, SENT_REJECTED };

/* One request/reply exchange. Applies a control set carried by the ACK. */
static enum send_result link_exchange(struct dt_link *l, struct qitem *q)
{
	enum dt_msg_type type;
	struct dt_ack ack;
	void *reply = NULL;
	size_t len = 0;
	uint64_t suppressed;
	int rv;

	if ((rv = nng_send(l->sock, q->msg.data, q->msg.size, 0)) != 0 ||
	    (rv = nng_recv(l->sock, &reply, &len, NNG_FLAG_ALLOC)) != 0) {
		pthread_mutex_lock(&l->mu);
		l->st.connected = 0;
		pthread_mutex_unlock(&l->mu);
		if (dt_ratelimit_ok(&l->rl_down, 10000, &suppressed))
			dt_warn("DT-LINK-DOWN",
				"%s: no acknowledgement (%s); %llu batches queued, retrying",
				l->url, nng_strerror(rv), (unsigned long long)l->st.queue_depth);
		return SENT_RETRY;
	}
	if (dt_msg_type(reply, len, &type) == 0 && type == DT_MSG_ERROR) {
		struct dt_error e;

		if (dt_error_decode(reply, len, &e) == 0 && e.status == DT_ST_INVALID &&
		    q->n_samples > 0) {
			dt_err("DT-LINK-REJECTED", "%s refused batch %llu as malformed: %s", l->url,
			       (unsigned long long)q->seq, e.message);
			nng_free(reply, len);
			return SENT_REJECTED;
		}
		nng_free(reply, len);
		return SENT_RETRY;
	}
	if ((rv = dt_ack_decode(reply, len, &ack)) != 0) {
		pthread_mutex_lock(&l->mu);
		l->st.bad_replies++;
		if (-rv > 0 && -rv < DT_PROTO_NCODES)
			l->st.bad_replies_by[-rv]++;
		pthread_mutex_unlock(&l->mu);
		if (dt_ratelimit_ok(&l->rl_bad, 1000, &suppressed))
			dt_warn("DT-LINK-BADACK",
				"%s: unreadable acknowledgement: %s; resending (%llu more since the last report)",
				l->url, dt_proto_strerror(rv), (unsigned long long)suppressed);
		nng_free(reply, len);
		return SENT_RETRY;
	}
	nng_free(reply, len);
	if (ack.has_control)
		link_apply_control(l, &ack.control);
	rv = ack.seq == q->seq && ack.status == DT_ST_OK ? SENT_ACKED : SENT_RETRY;
	dt_ack_free(&ack);
	if (rv == SENT_ACKED) {
		pthread_mutex_lock(&l->mu);
		if (!l->st.connected)
			dt_info("DT-LINK-UP", "%s: connected", l->url);
		l->st.connected = 1;
		pthread_mutex_unlock(&l->mu);
	}
	return rv;
}

/* A heartbeat: a batch with no samples, sent when the queue has been idle. */
static struct qitem *link_heartbeat(struct dt_link *l)
{
	struct dt_batch hb;
	struct qitem *q;

	memset(&hb, 0, sizeof(hb));
	strcpy(hb.node, l->sender);
	if (l->ops.heartbeat_lost)
		l->ops.heartbeat_lost(l->ops.arg, hb.lost);
	if (l->ops.heartbeat_nodes)
		l->ops.heartbeat_nodes(l->ops.arg, &hb);
	if (link_encode(l, &hb, NULL, 0, 0, &q) != 0)
		q = NULL;
	dt_node_states_free(hb.nodes, hb.n_nodes);
	return q;
}

static void *link_thread(void *arg)
{
	struct dt_link *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct qitem *q;
		bool heartbeat = false;
		enum send_result res;

		if (l->stopping && (!l->head || dt_mono_ms() >= l->drain_until_ms))
			break;
		if (l->tls)
			l->st.tls_refused = dt_tls_watch_check(&l->tls_watch);
		if (!l->head)
			spool_refill(l);
		/*
		 * A heartbeat every heartbeat_ms, between batches too: it carries the node
		 * states and loss counters, which batches do not, and a receiver forgets a
		 * sender it has not heard a heartbeat from for its window however many
		 * batches it sent. Not while batches wait on a link that is down: their
		 * resends find the peer first.
		 */
		if (!l->stopping && dt_mono_ms() >= l->heartbeat_due_ms &&
		    (!l->head || l->st.connected)) {
			heartbeat = true;
		} else if (!l->head && !l->stopping) {
			uint64_t now = dt_mono_ms();
			struct timespec ts = dt_deadline_ms(
				(unsigned)(l->heartbeat_due_ms > now ? l->heartbeat_due_ms - now
								     : 0));

			pthread_cond_timedwait(&l->cv, &l->mu, &ts);
			continue;
		}
		if (heartbeat) {
			l->heartbeat_due_ms = dt_mono_ms() + l->cfg.heartbeat_ms;
			q = link_heartbeat(l);
			if (!q)
				continue;
		} else {
			q = l->head;
		}
		pthread_mutex_unlock(&l->mu);
		res = link_exchange(l, q);
		pthread_mutex_lock(&l->mu);
		if (heartbeat) {
			qitem_free(q); /* heartbeats are not retried: the next one follows */
			continue;
		}
		if (res == SENT_RETRY) {
			l->st.resends++;
			/* Back off a little so a dead peer does not turn into a busy loop. */
			pthread_mutex_unlock(&l->mu);
			nng_msleep(l->st.connected ? 10 : 100);
			pthread_mutex_lock(&l->mu);
			continue;
		}
		l->head = q->next;
		if (!l->head)
			l->tail = NULL;
		l->st.queue_depth--;
		spool_done(l, q);
		if (res == SENT_ACKED) {
			l->st.batches_sent++;
			l->st.samples_sent += q->n_samples;
			if (l->ops.on_acked) {
				pthread_mutex_unlock(&l->mu);
				l->ops.on_acked(l->ops.arg, q->seq);
				pthread_mutex_lock(&l->mu);
			}
		} else {
			l->st.rejected++;
			l->st.rejected_samples += q->n_samples;
		}
		qitem_free(q);
		spool_refill(l);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Dials the peer in the background (with TLS when configured). Returns 0 or an NNG error. */
static int link_dial(struct dt_link *l, const struct dt_link_cfg *cfg)
{
	char err[DT_ERRBUF_MAX];
	nng_tls_config *tls = NULL;
	nng_dialer d;
	int rv;

	if ((rv = nng_dialer_create(&d, l->sock, cfg->url)) != 0) {
		dt_err("DT-LINK-URL", "cannot dial %s: %s", cfg->url, nng_strerror(rv));
		return rv;
	}
	if (dt_tls_enabled(cfg->tls)) {
		if (dt_tls_config_new(cfg->tls, false, &tls, err, sizeof(err))) {
			dt_err("DT-LINK-TLS", "%s", err);
			return NNG_EINVAL;
		}
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
		nng_tls_config_free(tls); /* the dialer holds its own reference */
		if (rv != 0) {
			dt_err("DT-LINK-TLS", "%s: %s", cfg->url, nng_strerror(rv));
			return rv;
		}
		dt_tls_watch_dialer(&l->tls_watch, d, cfg->url);
		l->tls = true;
	}
	if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0)
		dt_err("DT-LINK-URL", "cannot dial %s: %s", cfg->url, nng_strerror(rv));
	return rv;
}

int dt_link_start(const struct dt_link_cfg *cfg, const struct dt_link_ops *ops,
		  struct dt_link **out)
{
	struct dt_link *l;
	int rv;

	if (strlen(cfg->url) >= sizeof(l->url) || strlen(cfg->sender) >= DT_NAME_MAX)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	strcpy(l->url, cfg->url);
	strcpy(l->sender, cfg->sender);
	l->cfg = *cfg;
	l->cfg.url = l->url;
	l->cfg.sender = l->sender;
	if (ops)
		l->ops = *ops;
	/*
	 * Sequence numbers start at the wall clock in microseconds, so that a restarted
	 * sender continues above what its receiver has already stored.
	 */
	l->next_seq = dt_clock_ns(CLOCK_REALTIME) / 1000;
	if (cfg->spool && dt_spool_last_seq(cfg->spool) >= l->next_seq)
		l->next_seq = dt_spool_last_seq(cfg->spool) + 1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_lock(&l->mu);
	spool_refill(l); /* what an earlier run left goes first */
	pthread_mutex_unlock(&l->mu);
	pthread_cond_init(&l->cv, NULL);
	if ((rv = nng_req0_open(&l->sock)) != 0)
		goto fail;
	nng_socket_set_ms(l->sock, NNG_OPT_RECVTIMEO, cfg->timeout_ms);
	nng_socket_set_ms(l->sock, NNG_OPT_SENDTIMEO, cfg->timeout_ms);
	nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 2000);
	nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, 0);
	if ((rv = link_dial(l, cfg)) != 0) {
		nng_close(l->sock);
		goto fail;
	}
	l->heartbeat_due_ms = dt_mono_ms() + cfg->heartbeat_ms;
	if ((rv = pthread_create(&l->thread, NULL, link_thread, l)) != 0) {
		nng_close(l->sock);
		rv = -rv;
		goto fail_errno;
	}
	*out = l;
	return 0;
fail:
	rv = -EINVAL;
fail_errno:
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return rv;
}

/* Queues b, or the encoded batch raw when b is NULL (see link_encode()), spooling it with
 * note. */
static int link_queue(struct dt_link *l, struct dt_batch *b, const void *raw, size_t len,
		      uint64_t seq, const void *note, size_t note_len)
{
	bool to_spool;
	struct qitem *q;
	int rv = 0;

	pthread_mutex_lock(&l->mu);
	/*
	 * With a spool, every batch is written there first (without fsync: it survives a
	 * crash of the process, not of the machine) and loaded into the memory queue from
	 * there, so that nothing unacknowledged is lost when the sender dies, and order is
	 * kept.
	 */
	to_spool = l->cfg.spool != NULL;
	if (!to_spool && l->st.queue_depth >= l->cfg.queue_max) {
		rv = -ENOBUFS;
	} else if ((rv = link_encode(l, b, raw, len, seq, &q)) != 0) {
		/* nothing queued */
	} else if (to_spool) {
		rv = spool_put(l, q, note, note_len);
		spool_refill(l);
		pthread_cond_signal(&l->cv);
	} else {
		enqueue(l, q);
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return rv;
}

int dt_link_send(struct dt_link *l, struct dt_batch *b)
{
	return link_queue(l, b, NULL, 0, 0, NULL, 0);
}

int dt_link_send_noted(struct dt_link *l, struct dt_batch *b, const void *note, size_t note_len)
{
	return link_queue(l, b, NULL, 0, 0, note, note_len);
}

int dt_link_send_encoded(struct dt_link *l, const void *raw, size_t len, uint64_t seq)
{
	return link_queue(l, NULL, raw, len, seq, NULL, 0);
}

void dt_link_stats(struct dt_link *l, struct dt_link_stats *st)
{
	pthread_mutex_lock(&l->mu);
	*st = l->st;
	pthread_mutex_unlock(&l->mu);
}

int dt_link_metrics(struct dt_metrics_buf *b, const char *prefix, const char *peer,
		    const struct dt_link_stats *ls)
{
	char name[DT_METRICS_NAME_MAX], help[160];

	snprintf(name, sizeof(name), "%s_resends_total", prefix);
	snprintf(help, sizeof(help),
		 "Batch sends to the %s repeated after a timeout or an error reply.", peer);
	dt_metrics_counter(b, name, help, NULL, ls->resends);
	snprintf(name, sizeof(name), "%s_bad_replies_total", prefix);
	snprintf(help, sizeof(help), "Replies of the %s that could not be decoded.", peer);
	dt_metrics_counter(b, name, help, NULL, ls->bad_replies);
	snprintf(name, sizeof(name), "%s_replies_malformed_total", prefix);
	snprintf(help, sizeof(help),
		 "Replies of the %s refused as malformed, by reason; the batch is resent.", peer);
	for (int i = 1; i < DT_PROTO_NCODES; i++)
		dt_metrics_counter(b, name, i == 1 ? help : NULL,
				   DT_METRICS_LABELS("reason", dt_proto_errname(-i)),
				   ls->bad_replies_by[i]);
	snprintf(name, sizeof(name), "%s_controls_refused_total", prefix);
	snprintf(help, sizeof(help),
		 "Control sets from the %s refused, by reason; the last good one stays applied.",
		 peer);
	for (int i = 1; i < DT_LINK_CTL_REFUSALS; i++)
		dt_metrics_counter(b, name, i == 1 ? help : NULL,
				   DT_METRICS_LABELS("reason", ctl_refusal_names[i]),
				   ls->controls_refused[i]);
	snprintf(name, sizeof(name), "%s_link_queue_batches", prefix);
	snprintf(help, sizeof(help), "Batches waiting in memory for the %s.", peer);
	dt_metrics_gauge(b, name, help, NULL, (double)ls->queue_depth);
	snprintf(name, sizeof(name), "%s_link_tls_refused_total", prefix);
	snprintf(help, sizeof(help),
		 "TLS handshakes with the %s that failed: its certificate did not verify, or it "
		 "refused ours (logged as DT-TLS-REFUSED).",
		 peer);
	dt_metrics_counter(b, name, help, NULL, ls->tls_refused);
	snprintf(name, sizeof(name), "%s_link_connected", prefix);
	snprintf(help, sizeof(help), "1 while the %s acknowledges, 0 after a timeout.", peer);
	return dt_metrics_gauge(b, name, help, NULL, ls->connected ? 1 : 0);
}

unsigned dt_link_flush(struct dt_link *l, unsigned wait_ms)
{
	uint64_t until = dt_mono_ms() + wait_ms;
	unsigned depth;

	for (;;) {
		pthread_mutex_lock(&l->mu);
		depth = (unsigned)l->st.queue_depth;
		pthread_mutex_unlock(&l->mu);
		if (depth == 0 || dt_mono_ms() >= until)
			return depth;
		nng_msleep(5);
	}
}

unsigned dt_link_stop(struct dt_link *l, unsigned drain_ms)
{
	unsigned left = 0;
	struct qitem *q;

	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	l->drain_until_ms = dt_mono_ms() + drain_ms;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	nng_close(l->sock);
	while ((q = l->head)) {
		l->head = q->next;
		if (q->from_spool) {
			qitem_free(q); /* still in the spool */
		} else if (!l->cfg.spool || spool_put(l, q, NULL, 0) != 0) {
			left++;
			if (!l->cfg.spool)
				qitem_free(q);
		}
	}
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return left;
}
