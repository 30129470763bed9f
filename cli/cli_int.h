/* SPDX-License-Identifier: MIT */
/*
 * cli_int.h - what the files of the dyetrace CLI share: cli.c (options, help, dispatch,
 * main), cli_api.c (one request, one reply), cli_task.c (the task commands) and
 * cli_report.c (the report command and its formats).
 */
#ifndef DT_CLI_INT_H
#define DT_CLI_INT_H

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "dt_proto.h"
#include "dt_tuple.h"
#include "render.h"
#include "render_graph.h"
#include "render_html.h"
#include "export_pcapng.h"
#include "dt_version.h"

#define DEFAULT_API "ipc:///run/dyetrace/api.sock"
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 3600000
#define DEFAULT_INTERVAL_MS 500

/* Exit status, documented in the help text. */
enum {
	RC_OK = 0,
	RC_FAILED = 1,	    /* the service failed (DT_ST_FAILED), or an internal error */
	RC_USAGE = 2,	    /* invalid input or usage (also DT_ST_INVALID) */
	RC_NOT_FOUND = 3,   /* DT_ST_NOT_FOUND */
	RC_REFUSED = 4,	    /* DT_ST_REFUSED */
	RC_UNREACHABLE = 5, /* the analyzer could not be reached or did not answer in time */
	RC_CANCELLED = 6,   /* watch: the task ended cancelled */
	RC_NO_TOOL = 7,	    /* report: the format needs a program that is not installed */
	RC_FULL = 8,	    /* DT_ST_FULL: no room for the task on a node (or anywhere) */
	/* Not exit statuses: what the option parsers return to go on. */
	RC_CONTINUE = -1, /* parsed, carry on */
	RC_NOT_MINE = -2, /* not an option this parser knows */
};

/* The word that --json errors carry for failures that are not the analyzer's. */
#define ST_UNREACHABLE "unreachable"

/* report --format */
enum report_format {
	FMT_UNSET = 0, /* text, or JSON with --json */
	FMT_TEXT,
	FMT_JSON,
	FMT_DOT,
	FMT_SVG,
	FMT_HTML,
	FMT_PCAPNG,
	FMT_MAX,
};

#define usage_error(c, ...) cli_fail(c, RC_USAGE, dt_status_name(DT_ST_INVALID), __VA_ARGS__)
#define internal_error(c, ...) cli_fail(c, RC_FAILED, dt_status_name(DT_ST_FAILED), __VA_ARGS__)

/* report --format names (cli_report.c) */
extern const char *const cli_format_names[FMT_MAX];

struct cli {
	const char *url;
	bool json;
	int timeout_ms;
	uint32_t max_packets; /* report: packets listed in text (and html when set), 0 for all */
	bool packets_set;     /* report: --packets was given */
	const char *output;   /* report: --output, NULL (or "-") for stdout */
	const char *token;    /* the tenant's token ("" when none was given) */
	int interval_ms;      /* watch: how often to ask */
	enum report_format format; /* report: --format */
	bool sock_open;
	nng_socket sock;
};

struct cmd {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
};

enum {
	OPT_VERSION = 256,
	OPT_SRC,
	OPT_DST,
	OPT_SPORT,
	OPT_DPORT,
	OPT_PROTO,
	OPT_VNI,
	OPT_DIRECTION,
	OPT_TOKEN,
	OPT_BUDGET,
	OPT_DURATION,
	OPT_RATE,
	OPT_INTERVAL,
	OPT_FORMAT,
};

typedef int (*decode_fn)(const void *buf, size_t len, void *out);

/* cli.c */

/*
 * Reports a failure: "dyetrace: MESSAGE" on stderr and, with --json, the error object on
 * stdout. Returns rc, so that callers can write "return cli_fail(...)".
 */
int cli_fail(const struct cli *c, int rc, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int cli_status_rc(uint32_t status);

/* Strict decimal: digits only, no sign, no spaces, at most max. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out);

/*
 * Parses a command's options (argv[0] is the command's name). Common options are handled
 * here; the command's own go to own(), which returns like common_opt(). Returns
 * RC_CONTINUE, with the positional arguments in argv[optind..argc), or an exit status.
 */
int cli_parse_cmd_opts(struct cli *c, int argc, char **argv,
		       int (*own)(struct cli *c, int opt, const char *arg, void *ctx), void *ctx);

/* Parses exactly one task id from the positional arguments. Returns like cli_parse_cmd_opts(). */
int cli_parse_task_id(struct cli *c, int argc, char **argv, uint32_t *id);

/* cli_api.c */

int cli_decode_task(const void *buf, size_t len, void *out);

int cli_decode_report(const void *buf, size_t len, void *out);

int cli_decode_tasks(const void *buf, size_t len, void *out);

/* call() with the request req, whose encoder returned err; frees req either way. */
int cli_call_sb(struct cli *c, msgpack_sbuffer *req, int err, enum dt_msg_type want, decode_fn dec,
		void *out);

/* Exit status after printing: a failed write to stdout (full disk, closed pipe) counts. */
int cli_printed(struct cli *c, int err);

/* cli_task.c */

int cli_do_task_create(struct cli *c, int argc, char **argv);

int cli_do_task_show(struct cli *c, int argc, char **argv);

int cli_do_task_list(struct cli *c, int argc, char **argv);

int cli_do_task_cancel(struct cli *c, int argc, char **argv);

int cli_do_task_watch(struct cli *c, int argc, char **argv);

/* cli_report.c */

int cli_do_report(struct cli *c, int argc, char **argv);

#endif /* DT_CLI_INT_H */
