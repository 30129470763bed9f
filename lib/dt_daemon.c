/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_config.h"
#include "dt_daemon.h"
#include "dt_log.h"
#include "dt_version.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	stop_flag = sig == SIGUSR1 ? DT_STOP_HANDOVER : DT_STOP;
}

static void usage(FILE *f, const struct dt_daemon *d)
{
	fprintf(f,
		"NAME\n"
		"    %s - %s\n\n"
		"SYNOPSIS\n"
		"    %s [-c FILE] [-v]... [--check]\n"
		"    %s -h | --version\n\n"
		"OPTIONS\n"
		"    -c, --config FILE  configuration file (libconfig syntax; default %s)\n"
		"    -v, --verbose      more log output; twice for debug (libbpf and per-batch)\n"
		"    -q, --quiet        warnings and errors only\n"
		"    --check            load and validate the configuration, then exit\n"
		"    -h, --help         this text\n"
		"    --version          print the version, the git revision, the versions of the\n"
		"                       libraries in use%s\n\n"
		"%s\n"
		"EXIT STATUS\n"
		"    0  stopped by SIGINT or SIGTERM after a clean shutdown (or --check passed);\n"
		"       SIGUSR1 stops too (the agent then leaves its data plane running for the next)\n"
		"    1  a runtime failure (see the log line with its DT-* message id)\n"
		"    2  bad usage or an invalid configuration (\"file:line: what\")\n\n"
		"LOGS\n"
		"    One line per event on stderr: time, level, a stable message id (DT-...), text.\n"
		"    Per-packet events are never logged; counters are logged periodically and at exit.\n",
		d->name, d->summary, d->name, d->name, d->default_config,
		d->version ? " and the tag of the BPF object" : "", d->help);
}

int dt_daemon_main(int argc, char **argv, const struct dt_daemon *d)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"check", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *path = d->default_config;
	int level = DT_LOG_INFO, check = 0, c, rv;
	char err[DT_ERRBUF_MAX];
	struct sigaction sa;
	void *cfg;

	while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'v':
			level++;
			break;
		case 'q':
			level = DT_LOG_WARN;
			break;
		case 'C':
			check = 1;
			break;
		case 'h':
			usage(stdout, d);
			return EXIT_SUCCESS;
		case 'V':
			dt_version_print(stdout, d->name);
			if (d->version)
				d->version(stdout);
			return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_SUCCESS : EXIT_FAILURE;
		default:
			fprintf(stderr, "Try '%s --help'.\n", d->name);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", d->name,
			argv[optind], d->name);
		return 2;
	}
	dt_log_set_level(level > DT_LOG_DEBUG ? DT_LOG_DEBUG : (enum dt_log_level)level);
	cfg = calloc(1, d->cfg_size);
	if (!cfg)
		return EXIT_FAILURE;
	if (d->load(path, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", d->name, err);
		free(cfg);
		return 2;
	}
	if (check) {
		printf("%s: configuration OK\n", path);
		free(cfg);
		return EXIT_SUCCESS;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rv = d->run(cfg, &stop_flag);
	free(cfg);
	return rv == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
