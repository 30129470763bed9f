/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include <libconfig.h>

#include "collector.h"
#include "dt_config.h"
#include "dt_metrics.h"
#include "dt_tls.h"

const struct dt_collector_cfg dt_collector_cfg_defaults = {
	.name = "collector",
	.listen = "tcp://0.0.0.0:7400",
	.analyzer = "tcp://127.0.0.1:7401",
	.store = "/var/lib/dyetrace/collector",
	.store_max_mib = 1024,
	.heartbeat_ms = 200,
	.ack_timeout_ms = 2000,
	.queue_max = 256,
	.agent_window_ms = 3000,
	.stats_interval_s = 60,
};

const char *const dt_collector_cfg_keys[] = {
	"name",		"listen",	  "analyzer",  "store",		  "store_max_mib",
	"heartbeat_ms", "ack_timeout_ms", "queue_max", "agent_window_ms", "stats_interval_s",
	"tls",		"metrics",	  NULL};

int dt_collector_cfg_load(const char *path, struct dt_collector_cfg *out, char *err, size_t errlen)
{
	struct dt_collector_cfg cfg = dt_collector_cfg_defaults;
	config_setting_t *root;
	config_t c;
	int rv;

	config_init(&c);
	if ((rv = dt_cfg_read(&c, path, err, errlen)) < 0)
		goto out;
	root = config_root_setting(&c);
	if ((rv = dt_cfg_known(root, dt_collector_cfg_keys, err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "name", cfg.name, sizeof(cfg.name), err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "listen", cfg.listen, sizeof(cfg.listen), err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "analyzer", cfg.analyzer, sizeof(cfg.analyzer), err,
				errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "store", cfg.store, sizeof(cfg.store), err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "store_max_mib", 1, 1u << 24, &cfg.store_max_mib, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "heartbeat_ms", 10, 60000, &cfg.heartbeat_ms, err, errlen)) <
		    0 ||
	    (rv = dt_cfg_uint(root, "ack_timeout_ms", 10, 600000, &cfg.ack_timeout_ms, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "queue_max", 1, 1u << 20, &cfg.queue_max, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "agent_window_ms", 100, 3600000, &cfg.agent_window_ms, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "stats_interval_s", 0, 86400, &cfg.stats_interval_s, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_tls(root, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_tls_check_url(root, "listen", cfg.listen, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_tls_check_url(root, "analyzer", cfg.analyzer, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_cfg_metrics(root, cfg.metrics, sizeof(cfg.metrics), err, errlen)) < 0)
		goto out;
	*out = cfg;
	rv = 0;
out:
	config_destroy(&c);
	return rv;
}
