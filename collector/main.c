/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "collector.h"
#include "dt_daemon.h"

static int load(const char *path, void *cfg, char *err, size_t errlen)
{
	return dt_collector_cfg_load(path, cfg, err, errlen);
}

static int run(const void *cfg, volatile int *stop)
{
	return dt_collector_run(cfg, stop);
}

static const struct dt_daemon collector_daemon = {
	.name = "dyetrace-collector",
	.summary = "stores and forwards the samples of a region's dyetrace agents",
	.default_config = "/etc/dyetrace/collector.conf",
	.cfg_size = sizeof(struct dt_collector_cfg),
	.load = load,
	.run = run,
	.help = "DESCRIPTION\n"
		"    The regional dyetrace collector. Agents send it batches of samples; it stores\n"
		"    each batch in LMDB before acknowledging it (a resent batch is stored once),\n"
		"    forwards stored batches in order to the analyzer, deletes each once the\n"
		"    analyzer acknowledged it, and relays the analyzer's armed-task set to its\n"
		"    agents.\n\n"
		"CONFIGURATION\n"
		"    name = \"region-1\";                    # this collector's name\n"
		"    listen = \"tcp://0.0.0.0:7400\";        # agents connect here\n"
		"                                 # (plain tcp:// beyond loopback: anyone who reaches\n"
		"                                 # the port can inject samples or read the control\n"
		"                                 # set; warned at start, DT-LISTEN-PLAIN)\n"
		"    analyzer = \"tcp://10.0.0.1:7401\";     # the analyzer's collector endpoint\n"
		"    store = \"/var/lib/dyetrace/collector\"; # LMDB directory\n"
		"    store_max_mib = 1024;                 # LMDB map size: room for the batches the\n"
		"                                          # analyzer has not acknowledged yet\n"
		"    heartbeat_ms = 200; ack_timeout_ms = 2000; queue_max = 256;\n"
		"    agent_window_ms = 3000;   # agents not heard from for this long are not waited for\n"
		"    stats_interval_s = 60;    # counters logged this often (0: at exit only)\n"
		"    tls = { ca = \"ca.pem\"; cert = \"c1.pem\"; key = \"c1.key\"; server_name = \"analyzer\"; };\n"
		"                              # mutual TLS towards agents and the analyzer: both\n"
		"                              # URLs must then be tls+tcp:// and agents without a\n"
		"                              # certificate signed by the CA are refused\n"
		"    metrics = \"http://127.0.0.1:9102\"; # Prometheus metrics at GET /metrics on this\n"
		"                              # address (optional; absent: no HTTP server)\n",
};

int main(int argc, char **argv)
{
	return dt_daemon_main(argc, argv, &collector_daemon);
}
