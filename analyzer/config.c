/* SPDX-License-Identifier: MIT */
#include "analyzer.h"
#include "stitch.h"

const struct dt_analyzer_cfg dt_analyzer_cfg_defaults = {
	.listen = "tcp://0.0.0.0:7401",
	.api = "ipc:///run/dyetrace/api.sock",
	.collector_window_ms = 3000,
	.stats_interval_s = 60,
	.window_ms = DT_STITCH_WINDOW_MS_DEFAULT,
};

int dt_analyzer_cfg_load(const char *path, struct dt_analyzer_cfg *out, char *err,
			 size_t errlen)
{
	static const char *const known[] = {"listen", "api", "collector_window_ms",
					    "stats_interval_s", "window_ms", NULL};
	struct dt_analyzer_cfg cfg = dt_analyzer_cfg_defaults;
	config_setting_t *root;
	config_t c;
	int rv;

	config_init(&c);
	if ((rv = dt_cfg_read(&c, path, err, errlen)) < 0)
		goto out;
	root = config_root_setting(&c);
	if ((rv = dt_cfg_known(root, known, err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "listen", cfg.listen, sizeof(cfg.listen), err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "api", cfg.api, sizeof(cfg.api), err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "collector_window_ms", 100, 3600000, &cfg.collector_window_ms,
			      err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "stats_interval_s", 0, 86400, &cfg.stats_interval_s, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "window_ms", DT_STITCH_WINDOW_MS_MIN, DT_STITCH_WINDOW_MS_MAX,
			      &cfg.window_ms, err, errlen)) < 0)
		goto out;
	*out = cfg;
	rv = 0;
out:
	config_destroy(&c);
	return rv;
}
