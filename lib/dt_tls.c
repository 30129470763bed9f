/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "dt_config.h"
#include "dt_tls.h"

const char *const dt_tls_cfg_keys[] = {"ca", "cert", "key", "server_name", NULL};

int dt_cfg_tls(const config_setting_t *root, struct dt_tls_files *f, char *err, size_t errlen)
{
	config_setting_t *g = config_setting_get_member(root, "tls");
	int a, b, c;

	memset(f, 0, sizeof(*f));
	if (!g)
		return 0;
	if (!config_setting_is_group(g)) {
		dt_cfg_error(g, err, errlen,
			     "'tls' must be a group { ca = ...; cert = ...; key = ...; }");
		return -EINVAL;
	}
	if (dt_cfg_known(g, dt_tls_cfg_keys, err, errlen) < 0 ||
	    (a = dt_cfg_string(g, "ca", f->ca, sizeof(f->ca), err, errlen)) < 0 ||
	    (b = dt_cfg_string(g, "cert", f->cert, sizeof(f->cert), err, errlen)) < 0 ||
	    (c = dt_cfg_string(g, "key", f->key, sizeof(f->key), err, errlen)) < 0 ||
	    dt_cfg_string(g, "server_name", f->server_name, sizeof(f->server_name), err, errlen) <
		    0)
		return -EINVAL;
	if (!a || !b || !c) {
		dt_cfg_error(g, err, errlen, "'tls' needs 'ca', 'cert' and 'key' (mutual TLS)");
		return -EINVAL;
	}
	return 0;
}

int dt_tls_check_url(const config_setting_t *root, const char *what, const char *url,
		     const struct dt_tls_files *f, char *err, size_t errlen)
{
	const config_setting_t *at = config_setting_get_member(root, what);
	bool tls_url = strncmp(url, "tls+tcp", 7) == 0;

	if (!at)
		at = root; /* the default URL: name the file */
	if (tls_url && !dt_tls_enabled(f)) {
		dt_cfg_error(at, err, errlen, "%s %s uses TLS but there is no 'tls' group", what,
			     url);
		return -EINVAL;
	}
	if (!tls_url && dt_tls_enabled(f)) {
		dt_cfg_error(at, err, errlen,
			     "%s %s is not a tls+tcp:// URL but a 'tls' group is given", what, url);
		return -EINVAL;
	}
	return 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!fp)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && n < (1 << 20) &&
	    fseek(fp, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

int dt_tls_config_new(const struct dt_tls_files *f, bool server, nng_tls_config **out, char *err,
		      size_t errlen)
{
	nng_tls_config *cfg = NULL;
	char *cert = NULL, *key = NULL;
	int rv;

	if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT))) {
		snprintf(err, errlen, "TLS: %s", nng_strerror(rv));
		return -EINVAL;
	}
	if (!(cert = slurp(f->cert)) || !(key = slurp(f->key))) {
		snprintf(err, errlen, "TLS: cannot read %s: %s", cert ? f->key : f->cert,
			 strerror(errno));
		goto fail;
	}
	if ((rv = nng_tls_config_ca_file(cfg, f->ca))) {
		snprintf(err, errlen, "TLS: CA %s: %s", f->ca, nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL))) {
		snprintf(err, errlen, "TLS: certificate %s with key %s: %s", f->cert, f->key,
			 nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) ||
	    (!server && f->server_name[0] &&
	     (rv = nng_tls_config_server_name(cfg, f->server_name)))) {
		snprintf(err, errlen, "TLS: %s", nng_strerror(rv));
		goto fail;
	}
	free(cert);
	free(key);
	*out = cfg;
	return 0;
fail:
	free(cert);
	free(key);
	nng_tls_config_free(cfg);
	return -EINVAL;
}
