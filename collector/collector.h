/* SPDX-License-Identifier: MIT */
/*
 * collector.h - dyetrace-collector: one per region.
 *
 * Agents send sample batches; the collector stores each one durably in LMDB before it
 * acknowledges it, forwards the stored batches in order to the analyzer, and relays
 * the analyzer's control set (the armed tasks) to its agents in their acknowledgements.
 */
#ifndef DT_COLLECTOR_H
#define DT_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_tls.h"

struct dt_collector_cfg {
	char name[DT_NAME_MAX];
	char listen[256];
	char analyzer[256];
	char store[512];
	uint64_t store_max_mib;
	uint64_t heartbeat_ms;
	uint64_t ack_timeout_ms;
	uint64_t queue_max;
	uint64_t agent_window_ms; /* an agent not heard from for this long no longer counts */
	uint64_t stats_interval_s;
	struct dt_tls_files tls;	  /* mutual TLS on both links (both URLs tls+tcp://) */
	char metrics[DT_METRICS_URL_MAX]; /* Prometheus metrics on http://HOST:PORT ("": none) */
};

extern const struct dt_collector_cfg dt_collector_cfg_defaults;

/* The settings dt_collector_cfg_load() accepts (NULL-terminated; tls: dt_tls_cfg_keys).
 * Every one is in the manual page. */
extern const char *const dt_collector_cfg_keys[];

int dt_collector_cfg_load(const char *path, struct dt_collector_cfg *cfg, char *err, size_t errlen);
int dt_collector_run(const struct dt_collector_cfg *cfg, volatile int *stop);

/*
 * Tells glibc to keep the memory the collector frees (process-wide; dt_collector_run()
 * calls it first). Every commit allocates and frees the bytes of its batches (NNG's
 * message of each request, LMDB's overflow pages: ~66 KiB for 1,024 samples); by default
 * glibc hands such memory back to the kernel when it is freed at the top of a heap
 * (madvise on a thread's arena, a TLB shootdown on every CPU) and the next commit faults
 * it back in page by page. That churn cost the ingest as much CPU as checking the batches.
 */
void dt_collector_keep_memory(void);

#endif /* DT_COLLECTOR_H */
