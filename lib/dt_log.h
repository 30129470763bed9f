/* SPDX-License-Identifier: MIT */
/*
 * dt_log.h - logging for the dyetrace daemons and tools.
 *
 * Every line carries a level and a stable message id ("DT-AGENT-ATTACH"), so that tests
 * and runbooks can grep for an event without depending on its wording:
 *
 *     2026-11-22T10:00:00.123Z warn DT-COLL-MALFORMED: batch from host1: truncated message
 *
 * Lines go to stderr. Nothing on the per-packet path logs; per-packet events are counted
 * and the counters are logged periodically and at exit.
 */
#ifndef DT_LOG_H
#define DT_LOG_H

#include <stdarg.h>

enum dt_log_level {
	DT_LOG_ERROR = 0,
	DT_LOG_WARN = 1,
	DT_LOG_INFO = 2,
	DT_LOG_DEBUG = 3,
};

/* Lines above this level are suppressed. Default DT_LOG_INFO. */
void dt_log_set_level(enum dt_log_level level);
enum dt_log_level dt_log_get_level(void);

void dt_log(enum dt_log_level level, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void dt_vlog(enum dt_log_level level, const char *id, const char *fmt, va_list ap);

#define dt_err(id, ...) dt_log(DT_LOG_ERROR, id, __VA_ARGS__)
#define dt_warn(id, ...) dt_log(DT_LOG_WARN, id, __VA_ARGS__)
#define dt_info(id, ...) dt_log(DT_LOG_INFO, id, __VA_ARGS__)
#define dt_debug(id, ...) dt_log(DT_LOG_DEBUG, id, __VA_ARGS__)

/* Routes libbpf's own messages through dt_log, one level lower than libbpf gives them. */
void dt_log_libbpf(void);

#endif /* DT_LOG_H */
