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
	"    tasks (across NAT gateways), and builds per-packet paths with their fate, a\n"
	"    per-hop loss table, a verdict and per-hop latency statistics.\n\n"
	"CONFIGURATION\n"
	"    listen = \"tcp://0.0.0.0:7401\";          # collectors connect here\n"
	"    api = \"ipc:///run/dyetrace/api.sock\";   # the dyetrace CLI connects here\n"
	"    collector_window_ms = 3000;  # collectors not heard from for this long are not waited for\n"
	"    stats_interval_s = 60;       # counters logged this often (0: at exit only)\n"
	"    window_ms = 1000;            # the analysis window, 10 to 600000: samples that match\n"
	"                                 # no task yet (post-NAT tuples, out-of-order arrival)\n"
	"                                 # are held until no sample came for this long (or the\n"
	"                                 # oldest waited 4 windows), then matched again against\n"
	"                                 # the NAT translations learned meanwhile; the rest are\n"
	"                                 # counted as unmatched. A packet last seen within the\n"
	"                                 # window is reported in flight, not lost.\n",
};

int main(int argc, char **argv)
{
	return dt_daemon_main(argc, argv, &analyzer_daemon);
}
