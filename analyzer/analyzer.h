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

#include "dt_config.h"

struct dt_analyzer_cfg {
	char listen[256];      /* collectors connect here */
	char api[256];         /* the CLI connects here */
	uint64_t collector_window_ms; /* collectors not heard from for this long are not waited for */
	uint64_t stats_interval_s;
	uint64_t window_ms;    /* the analysis window (stitch.h): 10 to 600000 */
};

extern const struct dt_analyzer_cfg dt_analyzer_cfg_defaults;

int dt_analyzer_cfg_load(const char *path, struct dt_analyzer_cfg *cfg, char *err,
			 size_t errlen);
int dt_analyzer_run(const struct dt_analyzer_cfg *cfg, volatile int *stop);

#endif /* DT_ANALYZER_H */
