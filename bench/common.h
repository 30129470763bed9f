/* SPDX-License-Identifier: MIT */
/*
 * common.h - what the benchmark programs share: clocks, medians and the row format.
 *
 * Every benchmark program prints its own rows of the table on stdout, one per figure,
 * and nothing else there (progress and notes go to stderr):
 *
 *     row|FIGURE|VALUE|BASELINE|VS BASELINE|GOAL|STATUS
 *
 * VALUE is the absolute figure with its unit, BASELINE the baseline measured in the same
 * run, VS BASELINE the ratio or difference against it, GOAL the goal ("" when the
 * figure has none: it is there for information) and STATUS "meets", "misses (...)" or
 * "info". bench/run.sh only collects these lines. A status is a report, never a verdict:
 * no benchmark exits non-zero because of a timing.
 */
#ifndef DT_BENCH_COMMON_H
#define DT_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in ns. */
uint64_t dtb_now_ns(void);
/* CPU time of the whole process (every thread), in ns. */
uint64_t dtb_cpu_ns(void);
/* CPU time of the calling thread, in ns. */
uint64_t dtb_thread_cpu_ns(void);

/* Median of v[0..n) (sorts v). */
double dtb_median(double *v, size_t n);

/* Prints one row (see the top of the file). Any field may be NULL or "". */
void dtb_row(const char *figure, const char *value, const char *baseline, const char *vs,
	     const char *goal, const char *status);

/*
 * Prints one line of a growth curve's markdown section (bench/run.sh --scale), as
 * "md|LINE": the scale benchmarks print their own headings, tables and prose this way,
 * and run.sh writes them, in order, to bench/SCALE.md.
 */
void dtb_md(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* snprintf into a static ring of buffers, for building row fields inline. */
const char *dtb_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints to stderr, prefixed with the program name, and exits with status 1. */
void dtb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints a note to stderr. */
void dtb_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A small deterministic PRNG (xorshift64*), so that runs are comparable. */
uint64_t dtb_rand(uint64_t *state);

#endif /* DT_BENCH_COMMON_H */
