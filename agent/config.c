/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libconfig.h>

#include "agent.h"
#include "dataplane.h"
#include "dt_config.h"
#include "dt_metrics.h"
#include "dt_proto.h"
#include "dt_sample.h"
#include "dt_tls.h"
#include "dt_tuple.h"

const struct dt_agent_cfg dt_agent_cfg_defaults = {
	.collector = "tcp://127.0.0.1:7400",
	.heartbeat_ms = 200,
	.ack_timeout_ms = 2000,
	.queue_max = 64,
	.batch_max_samples = 1024,
	.batch_delay_ms = 50,
	.ring_kib = 4096,
	.capture_bytes = DT_CAP_MAX,
	.stats_interval_s = 60,
	.spool_dir = "/var/lib/dyetrace/agent-spool",
	.spool_max_mib = 256,
	.pin_dir = "/sys/fs/bpf/dyetrace",
	.task_map_entries = DT_MAX_TASKS,
};

const char *const dt_agent_cfg_keys[] = {"node",
					 "collector",
					 "heartbeat_ms",
					 "ack_timeout_ms",
					 "queue_max",
					 "batch_max_samples",
					 "batch_delay_ms",
					 "ring_kib",
					 "capture_bytes",
					 "stats_interval_s",
					 "interfaces",
					 "spool_dir",
					 "spool_max_mib",
					 "tls",
					 "pin_dir",
					 "metrics",
					 "task_map_entries",
					 "attach",
					 NULL};
const char *const dt_agent_iface_keys[] = {"name", "role", "vni", "instances", NULL};

static int load_iface(const config_setting_t *s, struct dt_agent_iface *ifc, char *err,
		      size_t errlen)
{
	config_setting_t *inst;
	char role[16] = "";
	uint64_t vni = 0;
	int rv, have_vni;

	if (!config_setting_is_group(s)) {
		dt_cfg_error(s, err, errlen,
			     "each interface must be a group { name = ...; role = ...; }");
		return -EINVAL;
	}
	if ((rv = dt_cfg_known(s, dt_agent_iface_keys, err, errlen)) < 0)
		return rv;
	if ((rv = dt_cfg_string(s, "name", ifc->name, sizeof(ifc->name), err, errlen)) < 0)
		return rv;
	if (rv == 0) {
		dt_cfg_error(s, err, errlen, "interface without 'name'");
		return -EINVAL;
	}
	if ((rv = dt_cfg_string(s, "role", role, sizeof(role), err, errlen)) < 0)
		return rv;
	if (strcmp(role, "port") == 0) {
		ifc->role = DT_ROLE_PORT;
	} else if (strcmp(role, "uplink") == 0) {
		ifc->role = DT_ROLE_UPLINK;
	} else if (strcmp(role, "gateway") == 0) {
		ifc->role = DT_ROLE_GATEWAY;
	} else {
		dt_cfg_error(s, err, errlen,
			     "interface '%s': role must be \"port\", \"uplink\" or \"gateway\"",
			     ifc->name);
		return -EINVAL;
	}
	if ((have_vni = dt_cfg_uint(s, "vni", 1, 0xFFFFFF, &vni, err, errlen)) < 0)
		return have_vni;
	if (ifc->role != DT_ROLE_UPLINK && !have_vni) {
		dt_cfg_error(s, err, errlen, "%s '%s' needs a 'vni' (1..16777215)",
			     ifc->role == DT_ROLE_PORT ? "port" : "gateway", ifc->name);
		return -EINVAL;
	}
	if (ifc->role == DT_ROLE_UPLINK && have_vni) {
		dt_cfg_error(s, err, errlen,
			     "uplink '%s' takes no 'vni' (it reads the VNI from each packet)",
			     ifc->name);
		return -EINVAL;
	}
	ifc->vni = (uint32_t)vni;
	inst = config_setting_get_member(s, "instances");
	if (inst && ifc->role != DT_ROLE_PORT) {
		dt_cfg_error(inst, err, errlen, "only a port has 'instances'");
		return -EINVAL;
	}
	if (inst && (!config_setting_is_array(inst) ||
		     config_setting_length(inst) > DT_AGENT_MAX_INSTANCES)) {
		dt_cfg_error(
			inst, err, errlen,
			"'instances' must be a list of at most %d IPv4 addresses [ \"10.0.0.1\", ... ]",
			DT_AGENT_MAX_INSTANCES);
		return -EINVAL;
	}
	for (int i = 0; inst && i < config_setting_length(inst); i++) {
		config_setting_t *e = config_setting_get_elem(inst, i);
		const char *a = config_setting_get_string(e);

		if (!a || dt_ipv4_parse(a, &ifc->instances[i]) || ifc->instances[i] == 0) {
			dt_cfg_error(inst, err, errlen,
				     "port '%s': instance %d is not an IPv4 address", ifc->name,
				     i + 1);
			return -EINVAL;
		}
		ifc->n_instances = (unsigned)i + 1;
	}
	return 0;
}

/* attach = "auto" | "tcx" | "clsact" (absent: auto). */
static int load_attach(const config_setting_t *root, enum dt_attach_mode *mode, char *err,
		       size_t errlen)
{
	static const enum dt_attach_mode modes[] = {DT_ATTACH_AUTO, DT_ATTACH_TCX,
						    DT_ATTACH_CLSACT};
	char name[16] = "";
	int rv;

	if ((rv = dt_cfg_string(root, "attach", name, sizeof(name), err, errlen)) <= 0)
		return rv;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(name, dt_attach_mode_name(modes[i])) == 0) {
			*mode = modes[i];
			return 0;
		}
	}
	dt_cfg_error(config_setting_get_member(root, "attach"), err, errlen,
		     "'attach' must be \"auto\", \"tcx\" or \"clsact\"");
	return -EINVAL;
}

int dt_agent_cfg_load(const char *path, struct dt_agent_cfg *out, char *err, size_t errlen)
{
	struct dt_agent_cfg cfg = dt_agent_cfg_defaults;
	config_setting_t *root, *list;
	config_t c;
	int rv, i, n;

	config_init(&c);
	if ((rv = dt_cfg_read(&c, path, err, errlen)) < 0)
		goto out;
	root = config_root_setting(&c);
	if ((rv = dt_cfg_known(root, dt_agent_cfg_keys, err, errlen)) < 0)
		goto out;
	if ((rv = dt_cfg_string(root, "node", cfg.node, sizeof(cfg.node), err, errlen)) < 0)
		goto out;
	if (rv == 0) {
		snprintf(err, errlen, "%s: 'node' is required (this node's name)", path);
		rv = -EINVAL;
		goto out;
	}
	if ((rv = dt_cfg_string(root, "collector", cfg.collector, sizeof(cfg.collector), err,
				errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "heartbeat_ms", 10, 60000, &cfg.heartbeat_ms, err, errlen)) <
		    0 ||
	    (rv = dt_cfg_uint(root, "ack_timeout_ms", 10, 600000, &cfg.ack_timeout_ms, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "queue_max", 1, 1u << 20, &cfg.queue_max, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "batch_max_samples", 1, DT_BATCH_MAX_SAMPLES,
			      &cfg.batch_max_samples, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "batch_delay_ms", 1, 60000, &cfg.batch_delay_ms, err, errlen)) <
		    0 ||
	    (rv = dt_cfg_uint(root, "ring_kib", 4, 1u << 20, &cfg.ring_kib, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "capture_bytes", 0, DT_CAP_MAX, &cfg.capture_bytes, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "stats_interval_s", 0, 86400, &cfg.stats_interval_s, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "spool_dir", cfg.spool_dir, sizeof(cfg.spool_dir), err,
				errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "spool_max_mib", 1, 1u << 20, &cfg.spool_max_mib, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "task_map_entries", 1, DT_CONTROL_MAX_TASKS,
			      &cfg.task_map_entries, err, errlen)) < 0)
		goto out;
	if ((rv = dt_cfg_string(root, "pin_dir", cfg.pin_dir, sizeof(cfg.pin_dir), err, errlen)) <
		    0 ||
	    (rv = dt_cfg_tls(root, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_tls_check_url(root, "collector", cfg.collector, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_cfg_metrics(root, cfg.metrics, sizeof(cfg.metrics), err, errlen)) < 0)
		goto out;
	if ((rv = load_attach(root, &cfg.attach, err, errlen)) < 0)
		goto out;
	if (cfg.ring_kib & (cfg.ring_kib - 1)) {
		dt_cfg_error(config_setting_get_member(root, "ring_kib"), err, errlen,
			     "'ring_kib' must be a power of two");
		rv = -EINVAL;
		goto out;
	}
	list = config_setting_get_member(root, "interfaces");
	if (!list || !config_setting_is_list(list) || config_setting_length(list) == 0) {
		if (list)
			dt_cfg_error(list, err, errlen,
				     "'interfaces' must be a non-empty list ( { ... }, { ... } )");
		else
			snprintf(err, errlen, "%s: 'interfaces' is required", path);
		rv = -EINVAL;
		goto out;
	}
	n = config_setting_length(list);
	if (n > DT_AGENT_MAX_IFACES) {
		dt_cfg_error(list, err, errlen, "at most %d interfaces", DT_AGENT_MAX_IFACES);
		rv = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(list, i);
		int j;

		if ((rv = load_iface(s, &cfg.ifaces[i], err, errlen)) < 0)
			goto out;
		for (j = 0; j < i; j++) {
			if (strcmp(cfg.ifaces[j].name, cfg.ifaces[i].name) == 0) {
				dt_cfg_error(s, err, errlen, "interface '%s' is listed twice",
					     cfg.ifaces[i].name);
				rv = -EINVAL;
				goto out;
			}
		}
	}
	cfg.n_ifaces = (unsigned)n;
	*out = cfg;
	rv = 0;
out:
	config_destroy(&c);
	return rv;
}
