/* SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdio.h>

#include "agent.h"
#include "dataplane.h"
#include "dt_daemon.h"
#include "dt_sha256.h"

static int load(const char *path, void *cfg, char *err, size_t errlen)
{
	return dt_agent_cfg_load(path, cfg, err, errlen);
}

static int run(const void *cfg, volatile int *stop)
{
	return dt_agent_run(cfg, stop);
}

/* --version: the tag of the embedded BPF object, the sha256sum of dyetrace.bpf.o. */
static void version(FILE *f)
{
	char hex[2 * DT_SHA256_LEN + 1];
	const void *obj;
	size_t len;

	obj = dt_dataplane_object(&len);
	dt_sha256_hex(obj, len, hex);
	fprintf(f, "bpf object: sha256 %s (%zu bytes)\n", hex, len);
}

static const struct dt_daemon agent_daemon = {
	.name = "dyetrace-agent",
	.summary = "samples colored packets on a forwarding node (eBPF) for dyetrace",
	.version = version,
	.default_config = "/etc/dyetrace/agent.conf",
	.cfg_size = sizeof(struct dt_agent_cfg),
	.load = load,
	.run = run,
	.help = "DESCRIPTION\n"
		"    The dyetrace agent runs on every forwarding node. It attaches the dyetrace eBPF\n"
		"    programs (tc: tcx links, or clsact) to the node's interfaces by role, arms the\n"
		"    trace tasks its collector sends (only a port's ingress colors packets: it is the\n"
		"    first hop), samples every colored packet at every hook, and ships the samples in\n"
		"    batches to its collector. A gateway's outside interface is an exit (samples the\n"
		"    translated packet with its inside tuple from conntrack, then removes the color)\n"
		"    and an entry (colors replies of traced flows). Wherever the kernel drops a colored\n"
		"    packet in this node's network namespace, the agent reports the drop reason (named\n"
		"    from the running kernel's BTF) and the kernel function that dropped it. It\n"
		"    detaches everything it attached on SIGINT/SIGTERM. On SIGUSR1 it exits for a\n"
		"    restart instead: its programs stay attached and their maps pinned (pin_dir), so\n"
		"    armed tasks keep coloring within their budgets, and the next agent of this node\n"
		"    takes the data plane over and drains what was sampled meanwhile.\n\n"
		"CONFIGURATION\n"
		"    node = \"host1\";                      # this node's name in reports (required)\n"
		"    collector = \"tcp://10.0.0.1:7400\";   # NNG URL of the regional collector\n"
		"    interfaces = (                        # required, at most 64\n"
		"      { name = \"tap1\"; role = \"port\"; vni = 100;    # faces an instance;\n"
		"        instances = [ \"10.100.0.1\" ]; },   # the addresses behind it (required\n"
		"                                           # for tasks that start there to arm)\n"
		"      { name = \"eth0\"; role = \"uplink\"; },           # underlay NIC (VXLAN)\n"
		"      { name = \"ext0\"; role = \"gateway\"; vni = 100; } # NAT gateway's outside NIC\n"
		"    );\n"
		"    heartbeat_ms = 200;       # link heartbeat, between batches too; control changes\n"
		"                              # arrive with it\n"
		"    ack_timeout_ms = 2000;    # resend a batch not acknowledged by then\n"
		"    batch_max_samples = 1024; # samples per batch (about 60 KiB)\n"
		"    batch_delay_ms = 50;      # a batch leaves at the latest this long after its first sample\n"
		"    ring_kib = 4096;          # BPF ring buffer size, a power of two\n"
		"    capture_bytes = 128;      # packet prefix each sample carries (0-128), for pcapng\n"
		"    stats_interval_s = 60;    # counters logged this often (0: at exit only)\n"
		"    queue_max = 64;           # batches held in memory for the collector\n"
		"    spool_dir = \"/var/lib/dyetrace/agent-spool\"; # LMDB spool: batches beyond the\n"
		"                              # memory queue, kept across restarts, replayed in order\n"
		"    spool_max_mib = 256;      # spool cap; past it the oldest batches are evicted and\n"
		"                              # their samples counted as lost (spool-full)\n"
		"    pin_dir = \"/sys/fs/bpf/dyetrace\"; # bpf file system dir for the maps (per node)\n"
		"    task_map_entries = 16384; # task keys armed at once, at most (1-65536; every\n"
		"                              # node arms every task's keys). The analyzer refuses\n"
		"                              # a task that would not fit where it starts; a key\n"
		"                              # that cannot be armed fails its task (arm-failed)\n"
		"    attach = \"auto\";          # tc attachment: \"tcx\" (kernel >= 6.6), \"clsact\", or\n"
		"                              # \"auto\": tcx, clsact where the kernel refuses tcx\n"
		"    tls = { ca = \"ca.pem\"; cert = \"node.pem\"; key = \"node.key\";\n"
		"            server_name = \"collector-1\"; };  # mutual TLS; collector = \"tls+tcp://...\"\n"
		"    metrics = \"http://127.0.0.1:9101\"; # Prometheus metrics at GET /metrics on this\n"
		"                              # address (optional; absent: no HTTP server)\n",
};

int main(int argc, char **argv)
{
	return dt_daemon_main(argc, argv, &agent_daemon);
}
