/* SPDX-License-Identifier: MIT */
#include "analyzer.h"
#include "dt_daemon.h"

static int load(const char *path, void *cfg, char *err, size_t errlen)
{
	return dt_analyzer_cfg_load(path, cfg, err, errlen);
}

static int run(const void *cfg, volatile int *stop)
{
	return dt_analyzer_run(cfg, stop);
}

static const struct dt_daemon analyzer_daemon = {
	.name = "dyetrace-analyzer",
	.default_config = "/etc/dyetrace/analyzer.conf",
	.cfg_size = sizeof(struct dt_analyzer_cfg),
	.load = load,
	.run = run,
	.help =
	"DESCRIPTION\n"
	"    The dyetrace analyzer: the task service and the analysis. Operators create trace\n"
	"    tasks with the dyetrace CLI through its API endpoint; it arms them on every node\n"
	"    through the collectors, attributes the samples the collectors forward to their\n"
	"    tasks, and builds per-packet paths with per-hop latency.\n\n"
	"CONFIGURATION\n"
	"    listen = \"tcp://0.0.0.0:7401\";          # collectors connect here\n"
	"    api = \"ipc:///run/dyetrace/api.sock\";   # the dyetrace CLI connects here\n"
	"    collector_window_ms = 3000;  # collectors not heard from for this long are not waited for\n"
	"    stats_interval_s = 60;       # counters logged this often (0: at exit only)\n",
};

int main(int argc, char **argv)
{
	return dt_daemon_main(argc, argv, &analyzer_daemon);
}
