/* SPDX-License-Identifier: MIT */
/*
 * fakecoll.c - a collector stand-in for the memory benchmark: it listens like a collector
 * (dt_ingest), acknowledges every batch and heartbeat without storing anything, and
 * hands every agent a control set of NTASKS distinct TCP tasks (generation 1).
 *
 *     dt-bench-fakecoll URL NTASKS
 *
 * Runs until SIGINT or SIGTERM. Prints "ready" on stderr once it listens.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "dt_ingest.h"
#include "dt_log.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	return DT_ST_OK;
}

static uint64_t last_seq(void *arg, const char *sender)
{
	return 0;
}

int main(int argc, char **argv)
{
	struct dt_ingest_ops ops = {.on_batch = on_batch, .last_seq = last_seq};
	struct dt_control c = {.gen = 1};
	struct dt_ingest *in;
	struct sigaction sa;
	long n;

	if (argc != 3 || (n = strtol(argv[2], NULL, 10)) < 0 || n > DT_CONTROL_MAX_TASKS)
		dtb_die("usage: dt-bench-fakecoll URL NTASKS (0..%d)", DT_CONTROL_MAX_TASKS);
	dt_log_set_level(DT_LOG_WARN);
	c.n_arms = (uint32_t)n;
	c.arms = calloc(n ? (size_t)n : 1, sizeof(*c.arms));
	if (!c.arms)
		dtb_die("out of memory");
	for (uint32_t i = 0; i < c.n_arms; i++) {
		struct dt_arm *a = &c.arms[i];

		/* 10.100.(i/250).(i%250+1) -> 10.101.0.1, ports 10000 + i -> 80: all distinct. */
		a->task_id = i + 1;
		a->tuple.saddr = htonl(0x0a640000u | (i / 250) << 8 | (i % 250 + 1));
		a->tuple.daddr = htonl(0x0a650001u);
		a->tuple.sport = htons((uint16_t)(10000 + i % 50000));
		a->tuple.dport = htons(80);
		a->tuple.proto = 6;
		a->tuple.vni = 100;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (dt_ingest_start(argv[1], &ops, &in))
		dtb_die("cannot listen on %s", argv[1]);
	if (dt_ingest_set_control(in, &c))
		dtb_die("dt_ingest_set_control failed");
	dtb_note("ready: %s, control set 1 with %u tasks", argv[1], c.n_arms);
	while (!stop)
		usleep(50000);
	dt_ingest_stop(in);
	dt_control_free(&c);
	return 0;
}
