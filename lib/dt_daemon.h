/* SPDX-License-Identifier: MIT */
/*
 * dt_daemon.h - the common command line of the three daemons.
 *
 *     dyetrace-<name> -c FILE [-v]... [--check] | -h | --version
 *
 * Parses the options, prints --help (the text the manual pages are made of, see
 * packaging/manpage.sh) or --version (dt_version.h), loads the configuration through the daemon's
 * loader (errors as "file:line: what", exit 2), installs SIGINT/SIGTERM handlers that set the stop
 * flag, and runs the daemon. Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or
 * configuration.
 */
#ifndef DT_DAEMON_H
#define DT_DAEMON_H

#include <stddef.h>
#include <stdio.h>

/* Values of the stop flag: SIGINT/SIGTERM stop; SIGUSR1 stops for a handover (a daemon
 * that supports it leaves its work running for its successor). */
#define DT_STOP 1
#define DT_STOP_HANDOVER 2

struct dt_daemon {
	const char *name;	    /* "dyetrace-agent" */
	const char *summary;	    /* one line for NAME in --help and the manual page */
	const char *help;	    /* the manual text printed by -h, after the common synopsis */
	const char *default_config; /* used when -c is not given */
	size_t cfg_size;	    /* size of the daemon's configuration struct */
	int (*load)(const char *path, void *cfg, char *err, size_t errlen);
	int (*run)(const void *cfg, volatile int *stop);
	/* --version: more lines after the common ones (dt_version.h); may be NULL. */
	void (*version)(FILE *f);
};

int dt_daemon_main(int argc, char **argv, const struct dt_daemon *d);

#endif /* DT_DAEMON_H */
