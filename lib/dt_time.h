/* SPDX-License-Identifier: MIT */
/* dt_time.h - clocks, and a rate limiter for log lines. */
#ifndef DT_TIME_H
#define DT_TIME_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t dt_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t dt_mono_ms(void)
{
	return dt_clock_ns(CLOCK_MONOTONIC) / 1000000ull;
}

/* The CLOCK_REALTIME moment ms from now, for pthread_cond_timedwait(). */
static inline struct timespec dt_deadline_ms(uint64_t ms)
{
	uint64_t ns = dt_clock_ns(CLOCK_REALTIME) + ms * 1000000ull;

	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
				 .tv_nsec = (long)(ns % 1000000000ull)};
}

/* Allows one event per interval; counts the ones it refuses since the last allowed one. */
struct dt_ratelimit {
	uint64_t last_ms;
	uint64_t suppressed;
};

/* True when the caller may log now; *suppressed receives how many were refused since. */
static inline bool dt_ratelimit_ok(struct dt_ratelimit *rl, unsigned interval_ms,
				   uint64_t *suppressed)
{
	uint64_t now = dt_mono_ms();

	if (rl->last_ms && now - rl->last_ms < interval_ms) {
		rl->suppressed++;
		return false;
	}
	rl->last_ms = now ? now : 1;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

#endif /* DT_TIME_H */
