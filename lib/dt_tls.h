/* SPDX-License-Identifier: MIT */
/*
 * dt_tls.h - mutual TLS for the links between agents, collectors and the analyzer.
 *
 * A link is encrypted and authenticated when its URL uses NNG's TLS transport
 * (tls+tcp://host:port) and the component has a `tls` group in its configuration:
 *
 *     tls = { ca = "/etc/dyetrace/ca.pem"; cert = "/etc/dyetrace/node.pem";
 *             key = "/etc/dyetrace/node.key"; server_name = "collector-1"; };
 *
 * Both sides present a certificate and verify the peer's against the CA: a server
 * (collector for agents, analyzer for collectors) refuses a client without a valid
 * certificate, and a client refuses a server whose certificate does not verify (and,
 * with server_name, does not name it).
 */
#ifndef DT_TLS_H
#define DT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <libconfig.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

struct dt_tls_files {
	char ca[256];	       /* PEM CA bundle that signs the peers' certificates */
	char cert[256];	       /* our PEM certificate (chain) */
	char key[256];	       /* our PEM private key */
	char server_name[128]; /* clients: the name the server's certificate must carry */
};

static inline bool dt_tls_enabled(const struct dt_tls_files *f)
{
	return f && f->cert[0];
}

/* Reads the optional `tls` group of root into f ("file:line: what" errors). Returns 0
 * (absent or read) or -EINVAL. */
/* The settings of a tls group (NULL-terminated): what dt_cfg_tls() accepts. */
extern const char *const dt_tls_cfg_keys[];

int dt_cfg_tls(const config_setting_t *root, struct dt_tls_files *f, char *err, size_t errlen);

/* Checks that the URL setting `what` of root (url, its value or default) and f agree: a
 * tls+tcp:// URL needs a tls group and the other way round. Returns 0 or -EINVAL with err
 * filled ("file:line: what"). */
int dt_tls_check_url(const config_setting_t *root, const char *what, const char *url,
		     const struct dt_tls_files *f, char *err, size_t errlen);

/* Builds an NNG TLS configuration (server: client certificates required). Returns 0 or
 * -EINVAL with err filled. */
int dt_tls_config_new(const struct dt_tls_files *f, bool server, nng_tls_config **out, char *err,
		      size_t errlen);

#endif /* DT_TLS_H */
