/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>

#include "dt_listen.h"
#include "dt_log.h"

/* The host part of a tcp URL ("[::1]:7400" -> "::1", ":7400" -> ""), into host. */
static void url_host(const char *hostport, char *host, size_t len)
{
	const char *end;

	if (*hostport == '[') {
		hostport++;
		end = strchr(hostport, ']');
	} else {
		end = strrchr(hostport, ':');
	}
	if (!end)
		end = hostport + strlen(hostport);
	snprintf(host, len, "%.*s", (int)(end - hostport), hostport);
}

static bool host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false; /* every interface ("", "*"), or a name that may resolve anywhere */
}

bool dt_listen_exposed(const char *url)
{
	static const char *const plain[] = {"tcp://", "tcp4://", "tcp6://"};
	char host[256];

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		size_t n = strlen(plain[i]);

		if (strncmp(url, plain[i], n) == 0) {
			url_host(url + n, host, sizeof(host));
			return !host_is_loopback(host);
		}
	}
	return false;
}

bool dt_listen_warn_exposed(const char *url, const char *risk)
{
	if (!dt_listen_exposed(url))
		return false;
	dt_warn("DT-LISTEN-PLAIN",
		"%s is plain TCP on an address other than loopback: %s; use tls+tcp:// with a "
		"tls group, or a loopback address",
		url, risk);
	return true;
}

int dt_group_gid(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	*gid = res->gr_gid;
	return 0;
}

int dt_listen_private(nng_socket s, const char *url, gid_t gid, char *err, size_t errlen)
{
	bool ipc = strncmp(url, "ipc://", 6) == 0;
	nng_listener l;
	int rv;

	if ((rv = nng_listener_create(&l, s, url)) != 0 ||
	    (ipc && (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, DT_IPC_MODE)) != 0) ||
	    (rv = nng_listener_start(l, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
		return rv;
	}
	/* nng made the file with mode DT_IPC_MODE (write access is what connecting needs). */
	if (ipc && gid != (gid_t)-1 && chown(url + 6, (uid_t)-1, gid) != 0) {
		snprintf(err, errlen, "cannot give %s to group %u: %s", url + 6, (unsigned)gid,
			 strerror(errno));
		nng_listener_close(l);
		return NNG_EPERM;
	}
	return 0;
}
