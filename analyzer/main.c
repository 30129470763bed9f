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
	.summary = "the dyetrace task service: stitches samples into paths, loss and latency",
	.default_config = "/etc/dyetrace/analyzer.conf",
	.cfg_size = sizeof(struct dt_analyzer_cfg),
	.load = load,
	.run = run,
	.help = "DESCRIPTION\n"
		"    The dyetrace analyzer: the task service and the analysis. Operators of several\n"
		"    tenants create trace tasks with the dyetrace CLI through its API endpoint, each\n"
		"    request proved by the tenant's token. It keeps tasks, their samples and final\n"
		"    reports in an LMDB store, arms tasks on the nodes through the collectors once\n"
		"    its analysis is ready (the three-way handshake: new, ready, armed), attributes\n"
		"    the samples the collectors forward to their tasks (across NAT gateways), and\n"
		"    builds per-packet paths with their fate, a per-hop loss table, a verdict and\n"
		"    per-hop latency statistics. A task ends done (its budget colored and judged),\n"
		"    expired, cancelled or failed (no node hosts its source: no-host; the node did\n"
		"    not apply it in time: arm-timeout).\n\n"
		"CONFIGURATION\n"
		"    listen = \"tcp://0.0.0.0:7401\";          # collectors connect here\n"
		"                                 # (plain tcp:// beyond loopback: anyone who reaches\n"
		"                                 # the port can inject samples or read the control\n"
		"                                 # set; warned at start, DT-LISTEN-PLAIN)\n"
		"    api = \"ipc:///run/dyetrace/api.sock\";   # the dyetrace CLI connects here\n"
		"    api_group = \"dyetrace\";     # an ipc:// API socket has mode 0660 and this group\n"
		"                                 # (it must exist); absent: the analyzer's own group\n"
		"    collector_window_ms = 3000;  # collectors (and the node states they relay) not\n"
		"                                 # heard from for this long are not counted\n"
		"    stats_interval_s = 60;       # counters logged this often (0: at exit only)\n"
		"    retention_s = 86400;         # an ended task leaves memory this long after it\n"
		"                                 # ended (then task list omits it; show and report\n"
		"                                 # read its final report from the store)\n"
		"    report_retention_s = 2592000;  # its final report leaves the store after this\n"
		"                                 # long (at least retention_s)\n"
		"    window_ms = 1000;            # the analysis window, 10 to 600000: samples that match\n"
		"                                 # no task yet (post-NAT tuples, out-of-order arrival)\n"
		"                                 # are held until no sample came for this long (or the\n"
		"                                 # oldest waited 4 windows), then matched again against\n"
		"                                 # the NAT translations learned meanwhile; the rest are\n"
		"                                 # counted as unmatched. A packet last seen within the\n"
		"                                 # window is reported in flight, not lost.\n"
		"    store = \"/var/lib/dyetrace/analyzer\"; # LMDB directory: tasks, samples, reports\n"
		"    tls = { ca = \"ca.pem\"; cert = \"analyzer.pem\"; key = \"analyzer.key\"; };\n"
		"                                 # mutual TLS for collectors (listen = \"tls+tcp://...\"):\n"
		"                                 # a collector without a certificate from the CA is refused\n"
		"                                 # (server_name = \"...\" is accepted and unused here: the\n"
		"                                 # analyzer only listens)\n"
		"    metrics = \"http://127.0.0.1:9103\"; # Prometheus metrics at GET /metrics on this\n"
		"                                 # address (optional; absent: no HTTP server)\n"
		"    store_size_mb = 4096;        # the store's map size; a full store refuses batches\n"
		"                                 # (collectors keep and resend them)\n"
		"    host_grace_ms = 2000;        # a ready task whose first hop no live node hosts\n"
		"                                 # fails (no-host) after this long\n"
		"    arm_timeout_ms = 5000;       # a ready task whose hosting node has not applied it\n"
		"                                 # fails (arm-timeout) after this long\n"
		"    limits = {                   # per task; 0 or absent in a request: the default\n"
		"        budget_default = 100;    # packets colored per direction\n"
		"        budget_max = 100000;\n"
		"        duration_default_s = 60; # seconds from creation\n"
		"        duration_max_s = 3600;\n"
		"        rate_default_pps = 100;  # packets colored per second, per direction\n"
		"        rate_max_pps = 10000;\n"
		"        tasks_max_per_tenant = 4096; # active tasks of one tenant\n"
		"    };\n"
		"    tenants = (                  # required; names and tokens unique, tokens at\n"
		"        { name = \"acme\"; token = \"...\"; },  # least 16 characters\n"
		"    );\n",
};

int main(int argc, char **argv)
{
	return dt_daemon_main(argc, argv, &analyzer_daemon);
}
