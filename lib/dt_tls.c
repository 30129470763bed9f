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
#include "dt_log.h"
#include "dt_time.h"
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

void dt_tls_watch_listener(struct dt_tls_watch *w, nng_listener l, const char *url)
{
	*w = (struct dt_tls_watch){.server = true, .listener = l};
	snprintf(w->url, sizeof(w->url), "%s", url);
}

void dt_tls_watch_dialer(struct dt_tls_watch *w, nng_dialer d, const char *url)
{
	*w = (struct dt_tls_watch){.server = false, .dialer = d};
	snprintf(w->url, sizeof(w->url), "%s", url);
}

/* NNG's "auth" statistic of the watched listener or dialer (0 when it has none). */
static uint64_t auth_errors(const struct dt_tls_watch *w)
{
	nng_stat *all, *mine, *auth;
	uint64_t v = 0;

	if (nng_stats_get(&all) != 0)
		return 0;
	mine = w->server ? nng_stat_find_listener(all, w->listener)
			 : nng_stat_find_dialer(all, w->dialer);
	if (mine && (auth = nng_stat_find(mine, "auth")))
		v = nng_stat_value(auth);
	nng_stats_free(all);
	return v;
}

uint64_t dt_tls_watch_check(struct dt_tls_watch *w)
{
	uint64_t now = dt_mono_ms(), n;

	if (w->checked_ms && now - w->checked_ms < 1000)
		return w->refused;
	w->checked_ms = now;
	if ((n = auth_errors(w)) > w->refused)
		w->refused = n;
	/* At most a line every 10 s, with the count since the last one. */
	if (w->refused > w->logged && (!w->logged_ms || now - w->logged_ms >= 10000)) {
		if (w->server)
			dt_warn("DT-TLS-REFUSED",
				"%s: %llu peer(s) refused at the TLS handshake (%llu in all): no "
				"certificate, one the CA did not sign, or an expired one",
				w->url, (unsigned long long)(w->refused - w->logged),
				(unsigned long long)w->refused);
		else
			dt_warn("DT-TLS-REFUSED",
				"%s: the TLS handshake failed %llu time(s) (%llu in all): the "
				"server's certificate does not verify against our CA or name, "
				"or it expired",
				w->url, (unsigned long long)(w->refused - w->logged),
				(unsigned long long)w->refused);
		w->logged = w->refused;
		w->logged_ms = now;
	}
	return w->refused;
}
