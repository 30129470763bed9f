/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "dt_log.h"

static enum dt_log_level log_level = DT_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void dt_log_set_level(enum dt_log_level level)
{
	log_level = level;
}

enum dt_log_level dt_log_get_level(void)
{
	return log_level;
}

void dt_vlog(enum dt_log_level level, const char *id, const char *fmt, va_list ap)
{
	char stamp[32], line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	/* One fprintf per line, so that threads do not interleave within a line. */
	fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, ts.tv_nsec / 1000000, level_names[level],
		id, line);
}

void dt_log(enum dt_log_level level, const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dt_vlog(level, id, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum dt_log_level ours;

	/* Demoted one level: libbpf's warnings are mostly feature probes. */
	switch (level) {
	case LIBBPF_WARN:
		ours = DT_LOG_INFO;
		break;
	case LIBBPF_INFO:
	case LIBBPF_DEBUG:
	default:
		ours = DT_LOG_DEBUG;
		break;
	}
	dt_vlog(ours, "DT-LIBBPF", fmt, ap);
	return 0;
}

void dt_log_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
