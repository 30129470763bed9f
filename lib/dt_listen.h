/* SPDX-License-Identifier: MIT */
/*
 * dt_listen.h - the doors of the daemons: who may reach what they listen on.
 *
 * A batch endpoint on plain tcp:// lets anyone who reaches its port inject samples or read
 * the control set: on an address other than loopback, the daemon says so at start
 * (DT-LISTEN-PLAIN). The analyzer's API socket (ipc://) is created with mode 0660 and the
 * group of the configuration, so that only its members (and the daemon's user) may
 * connect; tokens stay required on top.
 */
#ifndef DT_LISTEN_H
#define DT_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <nng/nng.h>

/* The mode of an ipc:// socket the daemons create. */
#define DT_IPC_MODE 0660

/* True when url is plain TCP (tcp://, tcp4://, tcp6://) on an address other than
 * loopback (127.0.0.0/8, ::1, localhost): every interface, a host name, any other
 * address. TLS (tls+tcp://), ipc:// and inproc:// are not exposed. */
bool dt_listen_exposed(const char *url);

/* Logs the DT-LISTEN-PLAIN warning naming risk when url is exposed. Returns whether it
 * was. */
bool dt_listen_warn_exposed(const char *url, const char *risk);

/* Resolves a group name. Returns 0, or -ENOENT when no such group exists. */
int dt_group_gid(const char *name, gid_t *gid);

/*
 * Listens on url with socket s. An ipc:// socket file gets mode DT_IPC_MODE and group gid
 * ((gid_t)-1: the process's own). Returns 0 or an NNG error, err filled with the why.
 */
int dt_listen_private(nng_socket s, const char *url, gid_t gid, char *err, size_t errlen);

#endif /* DT_LISTEN_H */
