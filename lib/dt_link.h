/* SPDX-License-Identifier: MIT */
/*
 * dt_link.h - the sending side of a batch link (agent -> collector, collector -> analyzer).
 *
 * A link owns an NNG req socket dialed to its peer and a bounded queue of encoded
 * batches. A thread sends the queue head, waits for its DT_MSG_ACK, and only then drops
 * it; on a timeout or an error reply it sends the same bytes again (same seq), so
 * delivery is at least once and the receiver deduplicates by (sender, seq). Every
 * heartbeat_ms it sends a heartbeat (a batch without samples, with the sender's node
 * states and loss counters), between batches when they flow, so that control changes
 * reach the sender even when no sample flows and the receiver keeps hearing of it when
 * they do.
 *
 * An ACK may carry a control set (the armed tasks); the link hands it to on_control on
 * its own thread and from then on advertises its generation in every batch.
 *
 * Replies are untrusted input like the requests of dt_ingest.h: one that does not decode
 * (truncated, a field of the wrong type, the wrong length, a newer version, another
 * message) is counted by DT_PROTO_* code, logged under DT-LINK-BADACK (at most once a
 * second) and the batch is sent again. A control set that decodes but cannot be right
 * (dt_link_control_check()) is refused, counted and logged under DT-LINK-BADCONTROL (at
 * most once a second): on_control is not called, so the sender keeps the set it applied
 * and goes on advertising its generation, while the batch the ACK acknowledges counts as
 * delivered.
 */
#ifndef DT_LINK_H
#define DT_LINK_H

#include <stdint.h>

#include "dt_proto.h"
#include "dt_tls.h"

struct dt_link;
struct dt_metrics_buf;
struct dt_spool;

struct dt_link_cfg {
	const char *url;		/* peer, e.g. "tcp://10.0.0.1:7400" */
	const char *sender;		/* our name, put in every batch */
	unsigned heartbeat_ms;		/* time between heartbeats */
	unsigned timeout_ms;		/* wait for an ACK before resending */
	unsigned queue_max;		/* batches held in memory at most */
	const struct dt_tls_files *tls; /* optional: mutual TLS (url must be tls+tcp://) */
	struct dt_spool *spool;		/* optional (caller owns it): every batch is written there
					 * first and removed once acknowledged; at most queue_max of
					 * them wait in memory; replayed in order after a restart */
};

struct dt_link_ops {
	/* Called on the link thread with each new control set; returns the generation it
	 * applied (normally c->gen), which the link then advertises. */
	uint64_t (*on_control)(void *arg, const struct dt_control *c);
	/* The control generation to advertise in each batch (may be NULL: the generation
	 * on_control last returned). A collector advertises what all its agents applied. */
	uint64_t (*advertise_gen)(void *arg);
	/* Called on the link thread, in order, when the peer acknowledged the batch with
	 * sequence seq (may be NULL). */
	void (*on_acked)(void *arg, uint64_t seq);
	/* Fills the loss counters of an outgoing heartbeat (may be NULL). */
	void (*heartbeat_lost)(void *arg, uint64_t lost[DT_LOSS_MAX]);
	/* Fills hb->nodes/n_nodes of an outgoing heartbeat with malloc'd node states (the
	 * link frees them with the heartbeat); may be NULL. */
	void (*heartbeat_nodes)(void *arg, struct dt_batch *hb);
	void *arg;
};

/*
 * The highest control generation a sender accepts. The analyzer counts one generation per
 * change of the armed set, so real ones stay far below (2^48 changes at a thousand a second
 * take 8900 years); a node that applied a forged huge one would advertise it, and the
 * analyzer would take it for having applied every set to come.
 */
#define DT_LINK_GEN_MAX (1ull << 48)

/* Why a control set was refused. */
enum dt_link_ctl_refusal {
	DT_LINK_CTL_OK = 0,
	DT_LINK_CTL_GENERATION, /* above DT_LINK_GEN_MAX */
	DT_LINK_CTL_REFUSALS,
};

/*
 * Checks a decoded control set against what a sender takes. Returns DT_LINK_CTL_OK or the
 * reason to refuse it. A set of more tasks than the agent's map holds is not refused here:
 * the agent arms what fits and reports each key it could not arm (arm-failed), so that the
 * analyzer fails those tasks by name; the codec already refuses more than
 * DT_CONTROL_MAX_TASKS.
 */
enum dt_link_ctl_refusal dt_link_control_check(const struct dt_control *c);

struct dt_link_stats {
	uint64_t batches_sent;	   /* batches acknowledged by the peer */
	uint64_t samples_sent;	   /* samples in those batches */
	uint64_t resends;	   /* sends repeated after a timeout or an error reply */
	uint64_t rejected;	   /* batches the peer refused as malformed (their samples lost) */
	uint64_t rejected_samples; /* samples in them */
	uint64_t bad_replies;	   /* replies we could not decode (counted, logged, batch resent) */
	uint64_t bad_replies_by[DT_PROTO_NCODES];	 /* the same by -DT_PROTO_* code */
	uint64_t controls_refused[DT_LINK_CTL_REFUSALS]; /* control sets refused, by reason
							  * (index 1..): the last good one stays */
	uint64_t queue_depth;				 /* batches waiting in memory now */
	uint64_t spooled;				 /* batches waiting in the spool now */
	uint64_t spool_evicted_samples; /* samples in batches the spool evicted when full */
	uint64_t ctl_gen;		/* generation of the last control set applied */
	int connected;			/* 1 once an ACK arrived and no send has timed out since */
	uint64_t tls_refused; /* TLS handshakes failed: the peer's certificate did not verify */
};

/* Control sets refused, all reasons. */
static inline uint64_t dt_link_controls_refused(const struct dt_link_stats *st)
{
	uint64_t n = 0;

	for (int i = 1; i < DT_LINK_CTL_REFUSALS; i++)
		n += st->controls_refused[i];
	return n;
}

/* Starts the link thread. Returns 0 or -errno; *out is set on success only. */
int dt_link_start(const struct dt_link_cfg *cfg, const struct dt_link_ops *ops,
		  struct dt_link **out);

/*
 * Queues b for sending: fills b->sender, b->seq and b->ctl_gen, encodes it, and leaves b
 * owned by the caller (samples are copied by the encoding). Returns 0, or -ENOBUFS when
 * the queue is full: then nothing is queued and the caller counts the samples as lost
 * (DT_LOSS_QUEUE_FULL); -EINVAL when b does not encode, -ENOMEM.
 */
int dt_link_send(struct dt_link *l, struct dt_batch *b);

/* dt_link_send(), committing the sender's note (dt_spool_push()) in the spool with the
 * batch: the note is true of the spool exactly when the batch is in it. Without a spool the
 * note is dropped. */
int dt_link_send_noted(struct dt_link *l, struct dt_batch *b, const void *note, size_t note_len);

/*
 * The same for a batch encoded already (raw, len: as a receiver stored it), with the
 * caller's sequence number: for a sender whose batches already have a durable order (the
 * collector forwards its store's), so that a batch resent after a restart of the sender
 * keeps its seq and the receiver stores it once. The batch goes out as it is, under our
 * sender, seq and ctl_gen (dt_batch_reframe(): its samples are neither decoded nor
 * encoded again). seq must grow from call to call; a link uses either this or
 * dt_link_send, not both. -EINVAL: raw is not a batch (its envelope or the fields before
 * its samples are broken).
 */
int dt_link_send_encoded(struct dt_link *l, const void *raw, size_t len, uint64_t seq);

void dt_link_stats(struct dt_link *l, struct dt_link_stats *st);

/*
 * Appends the sending side's state of an agent or a collector, whose peer ("collector",
 * "analyzer") acknowledges its batches, to a metrics page (dt_metrics.h):
 * <prefix>_resends_total, <prefix>_bad_replies_total, <prefix>_replies_malformed_total{reason},
 * <prefix>_controls_refused_total{reason}, <prefix>_link_queue_batches,
 * <prefix>_link_connected and <prefix>_link_tls_refused_total. Batches and samples sent are the
 * daemon's own (sent, forwarded). Returns 0 or the buffer's error.
 */
int dt_link_metrics(struct dt_metrics_buf *b, const char *prefix, const char *peer,
		    const struct dt_link_stats *ls);

/* Waits at most wait_ms for the memory queue to empty (delivered or refused). Returns the
 * batches still queued. */
unsigned dt_link_flush(struct dt_link *l, unsigned wait_ms);

/* Tries for at most drain_ms to send what is queued, then stops the thread, closes the
 * socket and frees the link. What is left goes to the spool when there is one. Returns
 * the number of batches left unsent and not spooled. */
unsigned dt_link_stop(struct dt_link *l, unsigned drain_ms);

#endif /* DT_LINK_H */
