/* SPDX-License-Identifier: MIT */
/*
 * dt_ingest.h - the receiving side of a batch link (collector for agents, analyzer for
 * collectors).
 *
 * An ingest server listens with an NNG rep socket. For each request it decodes a batch
 * strictly; a malformed request is counted by error code, logged (rate limited) under
 * DT-INGEST-MALFORMED and answered with DT_MSG_ERROR, and the server goes on. A heartbeat
 * (no samples) is only acknowledged. A batch whose seq is not above the last one stored
 * from its sender was stored already: it is acknowledged again without storing it twice.
 * Otherwise on_batch stores it; its result decides the ACK status. The ACK carries the
 * current control set when the sender's ctl_gen differs from it.
 */
#ifndef DT_INGEST_H
#define DT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "dt_tls.h"

struct dt_ingest;
struct dt_metrics_buf;

struct dt_ingest_ops {
	/* Stores a valid batch with samples; returns DT_ST_OK once it is durable (and
	 * last_seq answers its seq from then on), another dt_status to make the sender
	 * retry. raw/rawlen is the message as received. */
	int (*on_batch)(void *arg, const struct dt_batch *b, const void *raw, size_t rawlen);
	/* Called for each heartbeat (a batch without samples; may be NULL): heartbeats carry
	 * the sender's cumulative loss counters, the only news when no sample flows. */
	void (*on_heartbeat)(void *arg, const struct dt_batch *b, const void *raw, size_t rawlen);
	/* Returns the highest seq already stored for sender (0: none), for deduplication. */
	uint64_t (*last_seq)(void *arg, const char *sender);
	void *arg;
};

struct dt_ingest_stats {
	uint64_t batches;	  /* batches with samples stored */
	uint64_t heartbeats;	  /* batches without samples (heartbeats) */
	uint64_t samples;	  /* samples in them */
	uint64_t duplicates;	  /* batches acknowledged again without storing */
	uint64_t malformed;	  /* requests refused, all codes */
	uint64_t malformed_by[9]; /* by -DT_PROTO_* code (index 1..8) */
	uint64_t store_errors;	  /* on_batch did not return DT_ST_OK */
	uint64_t tls_refused;	  /* senders refused at the TLS handshake (dt_tls_watch) */
};

int dt_ingest_start(const char *url, const struct dt_ingest_ops *ops, struct dt_ingest **out);

/* The same over mutual TLS (tls may be NULL: plain): senders without a certificate that
 * verifies against tls->ca are refused at the handshake. */
int dt_ingest_start_tls(const char *url, const struct dt_tls_files *tls,
			const struct dt_ingest_ops *ops, struct dt_ingest **out);

/* Replaces the control set sent to senders (deep copy). */
int dt_ingest_set_control(struct dt_ingest *in, const struct dt_control *c);

/*
 * The lowest control generation applied by the senders heard from within the last
 * window_ms, and how many they are (0 senders: returns 0). The collector reports it
 * upstream as its own ctl_gen, so that the analyzer knows when every agent has applied
 * a set.
 */
uint64_t dt_ingest_min_gen(struct dt_ingest *in, unsigned window_ms, unsigned *senders);

/*
 * The node states (struct dt_node_state) heard within the last window_ms, from batches'
 * node_states (agents report their own; collectors relay their agents'), latest per
 * node. *out is a malloc'd array of *n deep copies; free with dt_node_states_free().
 * Returns 0 or -ENOMEM.
 */
int dt_ingest_nodes(struct dt_ingest *in, unsigned window_ms, struct dt_node_state **out,
		    uint32_t *n);
void dt_node_states_free(struct dt_node_state *v, uint32_t n);

void dt_ingest_stats(struct dt_ingest *in, struct dt_ingest_stats *st);

/*
 * Appends the receiving side's counters of a collector or the analyzer (prefix
 * "dyetrace_collector" or "dyetrace_analyzer") to a metrics page (dt_metrics.h):
 * <prefix>_heartbeats_total, <prefix>_batches_duplicate_total,
 * <prefix>_requests_malformed_total{reason}, <prefix>_batches_failed_total and
 * <prefix>_tls_refused_total. Batches and
 * samples are the daemon's own (stored, received). Returns 0 or the buffer's error.
 */
int dt_ingest_metrics(struct dt_metrics_buf *b, const char *prefix,
		      const struct dt_ingest_stats *is);

void dt_ingest_stop(struct dt_ingest *in);

#endif /* DT_INGEST_H */
