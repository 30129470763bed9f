/* SPDX-License-Identifier: MIT */
/*
 * analyzer.h - dyetrace-analyzer: the task service and the analysis.
 *
 * Collectors send it stored sample batches (an ingest endpoint); the CLI sends it task
 * requests (the API endpoint, NNG rep). It keeps the tasks, arms them through the
 * collectors' acknowledgements, attributes samples to tasks and builds reports.
 */
#ifndef DT_ANALYZER_H
#define DT_ANALYZER_H

#include <stdint.h>
#include <sys/types.h>

#include "dt_config.h"
#include "dt_metrics.h"
#include "dt_tls.h"
#include "dt_proto.h"
#include "tasks.h"

#define DT_TENANTS_MAX 256
#define DT_TOKEN_MIN 16 /* characters a tenant token has at least */

/* A tenant: its name (shown on its tasks) and the secret that proves it. */
struct dt_tenant {
	char name[DT_NAME_MAX];
	char token[DT_TOKEN_MAX];
};

struct dt_analyzer_cfg {
	char listen[256];	      /* collectors connect here */
	char api[256];		      /* the CLI connects here */
	char api_group[64];	      /* group of an ipc:// API socket ("": the analyzer's own) */
	gid_t api_gid;		      /* api_group resolved at load, (gid_t)-1 for "" */
	uint64_t collector_window_ms; /* collectors not heard from for this long are not waited for
				       */
	uint64_t stats_interval_s;
	uint64_t window_ms;		   /* the analysis window (stitch.h): 10 to 600000 */
	char store[256];		   /* LMDB directory: tasks, observations, final reports */
	uint64_t store_size_mb;		   /* the store's map size */
	struct dt_lifecycle_cfg lifecycle; /* host_grace_ms, arm_timeout_ms; settle_ms: window_ms */
	struct dt_limits limits;
	struct dt_tls_files tls;	  /* mutual TLS for collectors (listen = "tls+tcp://...") */
	char metrics[DT_METRICS_URL_MAX]; /* Prometheus metrics on http://HOST:PORT ("": none) */
	uint64_t retention_s;		  /* an ended task leaves memory this long after it ended */
	uint64_t report_retention_s;	  /* its final report leaves the store after this long */
	uint32_t n_tenants;		  /* at least 1 */
	struct dt_tenant tenants[DT_TENANTS_MAX];
};

extern const struct dt_analyzer_cfg dt_analyzer_cfg_defaults;

/* The settings dt_analyzer_cfg_load() accepts (NULL-terminated): at the top level, in limits
 * and in each tenant (tls: dt_tls_cfg_keys). Every one is in the manual page. */
extern const char *const dt_analyzer_cfg_keys[];
extern const char *const dt_analyzer_limits_keys[];
extern const char *const dt_analyzer_tenant_keys[];

int dt_analyzer_cfg_load(const char *path, struct dt_analyzer_cfg *cfg, char *err, size_t errlen);
/*
 * The tenant whose token this is: its index, or -1 for none (an empty or unknown
 * token). Compares every tenant's token in constant time, whatever matches.
 */
int dt_tenant_auth(const struct dt_analyzer_cfg *cfg, const char *token);

int dt_analyzer_run(const struct dt_analyzer_cfg *cfg, volatile int *stop);

#endif /* DT_ANALYZER_H */
