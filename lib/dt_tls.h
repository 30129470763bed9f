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

/*
 * Refused handshakes. NNG counts, per listener and per dialer, the connections that failed
 * authentication: at a listener a peer without a certificate, with one from another CA or
 * an expired one; at a dialer a server whose certificate does not verify. A watch samples
 * that counter (at most once a second, since NNG's statistics are a snapshot of every
 * socket), keeps the total for the metrics and logs DT-TLS-REFUSED when it grew, rate
 * limited, naming the URL and how many were refused since the last line.
 */
struct dt_tls_watch {
	char url[256];
	bool server;	  /* a listener (peers are clients), else a dialer */
	uint64_t refused; /* handshakes refused so far */
	uint64_t logged;  /* the total at the last log line */
	uint64_t checked_ms, logged_ms;
	nng_listener listener;
	nng_dialer dialer;
};

void dt_tls_watch_listener(struct dt_tls_watch *w, nng_listener l, const char *url);
void dt_tls_watch_dialer(struct dt_tls_watch *w, nng_dialer d, const char *url);

/* Samples the counter when a second has passed since the last time, logs growth. Returns
 * the total refused so far. Not thread-safe: call it from one thread. */
uint64_t dt_tls_watch_check(struct dt_tls_watch *w);

#endif /* DT_TLS_H */
