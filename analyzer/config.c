/* SPDX-License-Identifier: MIT */
/*
 * config.c - the analyzer's configuration: endpoints, the analysis window, the store, the
 * handshake's clocks, task limits and tenants. Every error is "file:line: what".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analyzer.h"
#include "dt_listen.h"
#include "stitch.h"

const struct dt_analyzer_cfg dt_analyzer_cfg_defaults = {
	.listen = "tcp://0.0.0.0:7401",
	.api = "ipc:///run/dyetrace/api.sock",
	.api_gid = (gid_t)-1,
	.collector_window_ms = 3000,
	.stats_interval_s = 60,
	.retention_s = 86400,
	.report_retention_s = 2592000,
	.window_ms = DT_STITCH_WINDOW_MS_DEFAULT,
	.store = "/var/lib/dyetrace/analyzer",
	.store_size_mb = 4096,
	.lifecycle = {.host_grace_ms = 2000,
		      .arm_timeout_ms = 5000,
		      .settle_ms = DT_STITCH_WINDOW_MS_DEFAULT},
	.limits =
		{
			.budget_default = 100,
			.budget_max = 100000,
			.duration_default_s = 60,
			.duration_max_s = 3600,
			.rate_default_pps = 100,
			.rate_max_pps = 10000,
			.tasks_max_per_tenant = 4096,
		},
};

const char *const dt_analyzer_cfg_keys[] = {"listen",
					    "api",
					    "api_group",
					    "collector_window_ms",
					    "stats_interval_s",
					    "window_ms",
					    "store",
					    "store_size_mb",
					    "host_grace_ms",
					    "arm_timeout_ms",
					    "limits",
					    "tenants",
					    "tls",
					    "metrics",
					    "retention_s",
					    "report_retention_s",
					    NULL};
const char *const dt_analyzer_limits_keys[] = {
	"budget_default",   "budget_max",   "duration_default_s",   "duration_max_s",
	"rate_default_pps", "rate_max_pps", "tasks_max_per_tenant", NULL};
const char *const dt_analyzer_tenant_keys[] = {"name", "token", NULL};

static int load_limits(const config_setting_t *root, struct dt_limits *l, char *err, size_t errlen)
{
	const config_setting_t *g = config_setting_get_member(root, "limits");
	int rv;

	if (!g) {
		return 0;
	}
	if (!config_setting_is_group(g)) {
		dt_cfg_error(g, err, errlen, "'limits' must be a group: limits = { ... };");
		return -EINVAL;
	}
	/* The wire carries them as 32-bit counts. */
	if ((rv = dt_cfg_known(g, dt_analyzer_limits_keys, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(g, "budget_max", 1, UINT32_MAX, &l->budget_max, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(g, "budget_default", 1, UINT32_MAX, &l->budget_default, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(g, "duration_max_s", 1, 31536000, &l->duration_max_s, err, errlen)) <
		    0 ||
	    (rv = dt_cfg_uint(g, "duration_default_s", 1, 31536000, &l->duration_default_s, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(g, "rate_max_pps", 1, UINT32_MAX, &l->rate_max_pps, err, errlen)) <
		    0 ||
	    (rv = dt_cfg_uint(g, "rate_default_pps", 1, UINT32_MAX, &l->rate_default_pps, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(g, "tasks_max_per_tenant", 1, DT_CONTROL_MAX_TASKS / 2,
			      &l->tasks_max_per_tenant, err, errlen)) < 0) {
		return rv;
	}
	if (l->budget_default > l->budget_max) {
		dt_cfg_error(
			g, err, errlen, "limits: budget_default (%llu) is above budget_max (%llu)",
			(unsigned long long)l->budget_default, (unsigned long long)l->budget_max);
		return -EINVAL;
	}
	if (l->duration_default_s > l->duration_max_s) {
		dt_cfg_error(g, err, errlen,
			     "limits: duration_default_s (%llu) is above duration_max_s (%llu)",
			     (unsigned long long)l->duration_default_s,
			     (unsigned long long)l->duration_max_s);
		return -EINVAL;
	}
	if (l->rate_default_pps > l->rate_max_pps) {
		dt_cfg_error(g, err, errlen,
			     "limits: rate_default_pps (%llu) is above rate_max_pps (%llu)",
			     (unsigned long long)l->rate_default_pps,
			     (unsigned long long)l->rate_max_pps);
		return -EINVAL;
	}
	return 0;
}

static int load_tenants(const config_setting_t *root, struct dt_analyzer_cfg *cfg, char *err,
			size_t errlen)
{
	const config_setting_t *l = config_setting_get_member(root, "tenants");
	int n, rv;

	if (!l) {
		dt_cfg_error(root, err, errlen,
			     "'tenants' is required: tenants = ( { name = \"acme\"; token = "
			     "\"<at least %d characters>\"; } );",
			     DT_TOKEN_MIN);
		return -EINVAL;
	}
	if (!config_setting_is_list(l) || (n = config_setting_length(l)) == 0) {
		dt_cfg_error(l, err, errlen,
			     "'tenants' must be a non-empty list of groups: ( { name = ...; "
			     "token = ...; }, ... )");
		return -EINVAL;
	}
	if (n > DT_TENANTS_MAX) {
		dt_cfg_error(l, err, errlen, "'tenants' holds at most %d tenants", DT_TENANTS_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
		struct dt_tenant *t = &cfg->tenants[i];

		memset(t, 0, sizeof(*t));
		if (!config_setting_is_group(g)) {
			dt_cfg_error(g, err, errlen, "tenant %d must be a group { name; token; }",
				     i + 1);
			return -EINVAL;
		}
		if ((rv = dt_cfg_known(g, dt_analyzer_tenant_keys, err, errlen)) < 0 ||
		    (rv = dt_cfg_string(g, "name", t->name, sizeof(t->name), err, errlen)) < 0 ||
		    (rv = dt_cfg_string(g, "token", t->token, sizeof(t->token), err, errlen)) < 0) {
			return rv;
		}
		if (!t->name[0] || !t->token[0]) {
			dt_cfg_error(g, err, errlen, "tenant %d needs a name and a token", i + 1);
			return -EINVAL;
		}
		if (strlen(t->token) < DT_TOKEN_MIN) {
			/* Never print the token itself. */
			dt_cfg_error(
				g, err, errlen,
				"the token of tenant \"%s\" is too short: at least %d characters",
				t->name, DT_TOKEN_MIN);
			return -EINVAL;
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->tenants[j].name, t->name) == 0) {
				dt_cfg_error(g, err, errlen, "tenant name \"%s\" is given twice",
					     t->name);
				return -EINVAL;
			}
			if (strcmp(cfg->tenants[j].token, t->token) == 0) {
				dt_cfg_error(
					g, err, errlen,
					"tenants \"%s\" and \"%s\" have the same token; tokens "
					"must be unique",
					cfg->tenants[j].name, t->name);
				return -EINVAL;
			}
		}
	}
	cfg->n_tenants = (uint32_t)n;
	return 0;
}

/* The group that may connect to an ipc:// API socket: it must exist. */
static int load_api_group(const config_setting_t *root, struct dt_analyzer_cfg *cfg, char *err,
			  size_t errlen)
{
	int rv = dt_cfg_string(root, "api_group", cfg->api_group, sizeof(cfg->api_group), err,
			       errlen);

	if (rv <= 0) {
		return rv;
	}
	if (dt_group_gid(cfg->api_group, &cfg->api_gid) != 0) {
		dt_cfg_error(config_setting_get_member(root, "api_group"), err, errlen,
			     "api_group: no group named '%s' on this host (groupadd %s, or "
			     "leave api_group out: the analyzer's own group)",
			     cfg->api_group, cfg->api_group);
		return -EINVAL;
	}
	return 0;
}

int dt_analyzer_cfg_load(const char *path, struct dt_analyzer_cfg *out, char *err, size_t errlen)
{
	static struct dt_analyzer_cfg cfg; /* large (tenants): not on the stack */
	config_setting_t *root;
	config_t c;
	int rv;

	cfg = dt_analyzer_cfg_defaults;
	config_init(&c);
	if ((rv = dt_cfg_read(&c, path, err, errlen)) < 0) {
		goto out;
	}
	root = config_root_setting(&c);
	if ((rv = dt_cfg_known(root, dt_analyzer_cfg_keys, err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "listen", cfg.listen, sizeof(cfg.listen), err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "api", cfg.api, sizeof(cfg.api), err, errlen)) < 0 ||
	    (rv = load_api_group(root, &cfg, err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "collector_window_ms", 100, 3600000, &cfg.collector_window_ms,
			      err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "stats_interval_s", 0, 86400, &cfg.stats_interval_s, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "window_ms", DT_STITCH_WINDOW_MS_MIN, DT_STITCH_WINDOW_MS_MAX,
			      &cfg.window_ms, err, errlen)) < 0 ||
	    (rv = dt_cfg_string(root, "store", cfg.store, sizeof(cfg.store), err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "store_size_mb", 16, 1048576, &cfg.store_size_mb, err,
			      errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "host_grace_ms", 100, 3600000, &cfg.lifecycle.host_grace_ms,
			      err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "arm_timeout_ms", 100, 3600000, &cfg.lifecycle.arm_timeout_ms,
			      err, errlen)) < 0 ||
	    (rv = load_limits(root, &cfg.limits, err, errlen)) < 0 ||
	    (rv = load_tenants(root, &cfg, err, errlen)) < 0 ||
	    (rv = dt_cfg_tls(root, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_tls_check_url(root, "listen", cfg.listen, &cfg.tls, err, errlen)) < 0 ||
	    (rv = dt_cfg_metrics(root, cfg.metrics, sizeof(cfg.metrics), err, errlen)) < 0 ||
	    (rv = dt_cfg_uint(root, "retention_s", 1, 31536000, &cfg.retention_s, err, errlen)) <
		    0 ||
	    (rv = dt_cfg_uint(root, "report_retention_s", 1, 315360000, &cfg.report_retention_s,
			      err, errlen)) < 0) {
		goto out;
	}
	if (cfg.report_retention_s < cfg.retention_s) {
		dt_cfg_error(config_setting_get_member(root, "report_retention_s")
				     ?: config_setting_get_member(root, "retention_s"),
			     err, errlen,
			     "report_retention_s (%llu) is below retention_s (%llu): a report "
			     "is kept in the store at least as long as its task in memory",
			     (unsigned long long)cfg.report_retention_s,
			     (unsigned long long)cfg.retention_s);
		rv = -EINVAL;
		goto out;
	}
	/* First-hop samples still on their way arrive within the window, or never. */
	cfg.lifecycle.settle_ms = cfg.window_ms;
	*out = cfg;
	rv = 0;
out:
	config_destroy(&c);
	return rv;
}

int dt_tenant_auth(const struct dt_analyzer_cfg *cfg, const char *token)
{
	size_t len = strnlen(token, DT_TOKEN_MAX);
	int found = -1;

	if (len == 0 || len >= DT_TOKEN_MAX) {
		return -1;
	}
	for (uint32_t i = 0; i < cfg->n_tenants; i++) {
		const unsigned char *a = (const unsigned char *)cfg->tenants[i].token;
		const unsigned char *b = (const unsigned char *)token;
		unsigned char diff = 0;

		/* a has DT_TOKEN_MAX bytes and len < DT_TOKEN_MAX: token's NUL is compared
		 * too, so only the whole token matches. Time depends on len only. */
		for (size_t j = 0; j <= len; j++) {
			diff |= a[j] ^ b[j];
		}
		if (diff == 0 && found < 0) {
			found = (int)i;
		}
	}
	return found;
}
