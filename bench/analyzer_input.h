/* SPDX-License-Identifier: MIT */
/*
 * analyzer_input.h - what the analyzer benchmark (analyzer.c) and its growth curves
 * (analyzer_scale.c) share: the input batches and the analyzer's path over them.
 */
#ifndef DT_BENCH_ANALYZER_H
#define DT_BENCH_ANALYZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "paths.h"
#include "stitch.h"
#include "strtab.h"
#include "tasks.h"

#define SAMPLES 1024
#define WINDOW_MS 1000
#define T0_NS 1790000000000000000ull

/*
 * Encodes the batches of PACKETS packets (see fill_batch() in analyzer.c: four hops a
 * packet, ten with copies), packet p of task p % n_tasks, and hands each to put().
 */
void bench_batches(uint32_t packets, bool copies, uint32_t n_tasks,
		   void (*put)(void *arg, const char *sender, uint64_t seq, const void *buf,
			       size_t len),
		   void *arg);

/* An analyzer's state: tasks 1..n_tasks armed (task[t] has id t + 1), names, the window. */
struct ana {
	struct dt_strtab *strs;
	struct dt_tasks *tasks;
	struct dt_stitch *stitch;
	struct dt_task **task;
	uint32_t n_tasks;
	uint64_t now_ms;
	uint64_t records;
};

void ana_init(struct ana *a, uint32_t n_tasks);
void ana_free(struct ana *a);

/* analyzer.c's on_batch for one encoded batch: check, intern, read, attribute. */
int on_stored(void *arg, uint64_t lseq, const void *raw, size_t len);

/* A report context after the window, as the tick builds it (no packet list). */
void ana_ctx(const struct ana *a, uint32_t packets, struct dt_paths_ctx *ctx);

/* Dies unless rep judged all PACKETS packets delivered with the expected tables. */
void ana_check(const struct dt_report *rep, uint32_t packets, bool copies);

/* The growth curves (--scale): markdown on stdout. */
int analyzer_scale(uint64_t max_records);

#endif /* DT_BENCH_ANALYZER_H */
