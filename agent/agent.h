/* SPDX-License-Identifier: MIT */
/*
 * agent.h - dyetrace-agent: one per forwarding node.
 *
 * The agent loads the data plane (bpf/dyetrace.bpf.c), attaches it to the interfaces of
 * its configuration by role, keeps the armed-task map equal to the control set its
 * collector sends, drains the ring buffer into batches and ships them over a dt_link.
 */
#ifndef DT_AGENT_H
#define DT_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_tls.h"

#define DT_AGENT_MAX_INSTANCES 64 /* addresses behind one port */

struct dt_agent_iface {
	char name[DT_IFNAME_MAX];
	enum dt_role role;
	uint32_t vni; /* ports: the instance's VNI; gateways: the VNI behind the NAT */
	unsigned n_instances;
	uint32_t instances[DT_AGENT_MAX_INSTANCES]; /* ports: IPv4 addresses behind it */
};

#define DT_AGENT_MAX_IFACES 64

struct dt_agent_cfg {
	char node[DT_NAME_MAX];
	char collector[256];
	uint64_t heartbeat_ms;
	uint64_t ack_timeout_ms;
	uint64_t queue_max;	    /* batches waiting for the collector, at most */
	uint64_t batch_max_samples; /* a batch is sent when it holds this many samples */
	uint64_t batch_delay_ms;    /* ... or when its oldest sample is this old */
	uint64_t ring_kib;	    /* BPF ring buffer size, a power of two */
	uint64_t capture_bytes;	    /* packet prefix each sample carries, 0..DT_CAP_MAX */
	uint64_t stats_interval_s;  /* counters are logged this often (0: only at exit) */
	char spool_dir[512];	    /* LMDB spool for batches the collector did not take yet */
	char pin_dir[256];	    /* bpf file system directory for the maps (<pin_dir>/<node>) */
	uint64_t spool_max_mib;	    /* its cap; the oldest batches are evicted (and counted) */
	uint64_t task_map_entries;  /* keys the data plane's task map holds at most */
	enum dt_attach_mode attach; /* tcx, clsact, or auto: tcx where the kernel has it */
	struct dt_tls_files tls;    /* mutual TLS to the collector (collector = "tls+tcp://...") */
	char metrics[DT_METRICS_URL_MAX]; /* Prometheus metrics on http://HOST:PORT ("": none) */
	unsigned n_ifaces;
	struct dt_agent_iface ifaces[DT_AGENT_MAX_IFACES];
};

extern const struct dt_agent_cfg dt_agent_cfg_defaults;

/* Loads a libconfig file over the defaults. Errors: "file:line: what" in err, -EINVAL. */
/* The settings dt_agent_cfg_load() accepts (NULL-terminated): at the top level, and in
 * each member of interfaces (and tls: dt_tls_cfg_keys). Every one is in the manual page. */
extern const char *const dt_agent_cfg_keys[];
extern const char *const dt_agent_iface_keys[];

int dt_agent_cfg_load(const char *path, struct dt_agent_cfg *cfg, char *err, size_t errlen);

/* Runs the agent until *stop becomes non-zero: DT_STOP_HANDOVER (SIGUSR1) leaves the data
 * plane running and pinned for the next agent, any other value detaches it. */
int dt_agent_run(const struct dt_agent_cfg *cfg, volatile int *stop);

#endif /* DT_AGENT_H */
