// SPDX-License-Identifier: MIT
/*
 * cli.c - dyetrace, the command line client of the analyzer's API.
 *
 *     dyetrace [options] task create --src IP --dst IP [--sport N] [--dport N] --proto P --vni N
 *                                    [--direction request|reply|both] [--budget N]
 *                                    [--duration S] [--rate PPS]
 *     dyetrace [options] task list
 *     dyetrace [options] task show|cancel|watch ID
 *     dyetrace [options] report [--format text|json|dot|svg|html|pcapng] [-o FILE] ID
 *
 * Every request carries the tenant's token (--token, else $DYETRACE_TOKEN).
 *
 * Every command sends one request over an NNG req socket and waits for one reply (see
 * call()). Commands are looked up in tables, bpftool style: do_<verb>() per subcommand,
 * and any unambiguous prefix of a command name works ("dyetrace t c ...").
 *
 * The exit status tells scripts what happened without parsing text (see the help text):
 * it is the one contract of this program besides the JSON of render.h.
 */
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

static const char *const format_names[FMT_MAX] = {
	[FMT_TEXT] = "text", [FMT_JSON] = "json", [FMT_DOT] = "dot",
	[FMT_SVG] = "svg",   [FMT_HTML] = "html", [FMT_PCAPNG] = "pcapng",
};

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

static const char help_text[] =
	"NAME\n"
	"    dyetrace - trace a tenant flow through the overlay network\n"
	"\n"
	"SYNOPSIS\n"
	"    dyetrace [OPTIONS] task create --src IP --dst IP [--sport PORT --dport PORT]\n"
	"                                   --proto tcp|udp|icmp|NUMBER --vni VNI\n"
	"                                   [--direction request|reply|both]\n"
	"                                   [--budget N] [--duration S] [--rate PPS]\n"
	"    dyetrace [OPTIONS] task list\n"
	"    dyetrace [OPTIONS] task show ID\n"
	"    dyetrace [OPTIONS] task cancel ID\n"
	"    dyetrace [OPTIONS] task watch [--interval MS] ID\n"
	"    dyetrace [OPTIONS] report [--packets N] [--format FORMAT] [-o FILE] ID\n"
	"    dyetrace --help | --version\n"
	"\n"
	"DESCRIPTION\n"
	"    dyetrace talks to dyetrace-analyzer. A trace task names a flow by its six-tuple;\n"
	"    the first forwarding node that sees a packet of that flow colors it, every node\n"
	"    samples colored packets (and the kernel's reason when it drops one), and the\n"
	"    analyzer stitches the samples, across NAT gateways, into per-packet paths: where\n"
	"    each packet went, where it was lost and why, and the latency between hops.\n"
	"\n"
	"    Every request carries the token of a tenant configured in the analyzer\n"
	"    (--token, else $DYETRACE_TOKEN). A tenant sees, watches and cancels only its own\n"
	"    tasks: another tenant's task answers exactly like one that does not exist.\n"
	"\n"
	"COMMANDS\n"
	"    task create   Create a trace task and print it. --src, --dst, --proto and --vni\n"
	"                  are required. Leave both ports out to trace every port pair of\n"
	"                  the flow (any port). For icmp, ports are the echo identifier:\n"
	"                  --sport for requests or --dport for replies, or neither.\n"
	"                  Name the flow as its source instance sees it (before any NAT);\n"
	"                  --direction says whether to trace those packets (request, the\n"
	"                  default), the replies to them (reply), or both. The six-tuples of\n"
	"                  active tasks, all tenants together, never overlap: an overlapping\n"
	"                  request is refused (exit 4) without naming the other task.\n"
	"    task list     List the tenant's tasks, oldest first: id, state, status, packets\n"
	"                  colored, directions and flow.\n"
	"    task show ID  Print a task: its state and status with a sentence saying why,\n"
	"                  its limits, when it was created, armed and ended, and how many\n"
	"                  packets were colored at a first hop and delivered.\n"
	"    task cancel ID\n"
	"                  End a task now: it is disarmed everywhere and its report is\n"
	"                  final. Cancelling a cancelled task again is harmless; cancelling\n"
	"                  a task that ended otherwise is refused (exit 4).\n"
	"    task watch ID Ask for the task every --interval ms and print it each time its\n"
	"                  state or status changes (text: one line per change; --json: one\n"
	"                  task object per line), until it ends. Its exit status says how it\n"
	"                  ended (see EXIT STATUS).\n"
	"    report ID     Print a task's report: the verdict (how many packets were lost,\n"
	"                  where and why), the per-hop loss table, per-hop latency\n"
	"                  statistics and the path and fate of each traced packet. Text lists\n"
	"                  the first 20 packets (see --packets); JSON lists all of them. The\n"
	"                  report of an ended task is final and survives analyzer restarts.\n"
	"                  --format chooses the output (default text):\n"
	"                    text    for people, as above.\n"
	"                    json    for scripts (the same as --json): one document with\n"
	"                            \"schema\":\"dyetrace.report\" and \"schema_version\":1,\n"
	"                            described by report/report.schema.json (JSON Schema\n"
	"                            2020-12, with the unit of every number). Keys are\n"
	"                            added, never renamed or removed.\n"
	"                    dot     the path as a Graphviz digraph: one cluster per node\n"
	"                            holding its hooks, edges with packet counts and latency\n"
	"                            (mean, max in \u00b5s), replies dashed, the drop in red\n"
	"                            with its reason and loss rate. Draw it with\n"
	"                            \"dot -Tpng\" or any Graphviz viewer.\n"
	"                    svg     that graph drawn by Graphviz's dot, which must be on\n"
	"                            PATH (exit 7 without it).\n"
	"                    html    one self-contained page (no network, no script): the\n"
	"                            verdict, the path (drawn by dot when it is installed,\n"
	"                            else with HTML boxes), the loss and latency tables and\n"
	"                            every packet's timeline. Open it in any browser.\n"
	"                    pcapng  every hop of every packet as one captured packet (the\n"
	"                            bytes of prefix sampled there), one interface per\n"
	"                            node/ifname/hook, comments naming the task and the drop\n"
	"                            reason: open it in Wireshark or tshark. Binary: never\n"
	"                            written to a terminal (exit 2); use -o or a redirection.\n"
	"\n"
	"    Any unambiguous prefix of a command works: \"dyetrace t s 1\".\n"
	"\n"
	"TASK LIFECYCLE\n"
	"    new        written to the analyzer's store\n"
	"    ready      its analysis is prepared; only now is it armed (sent to the nodes)\n"
	"    armed      the node hosting its first hop applied the control set holding it\n"
	"    running    its first colored packet was sampled\n"
	"    done       its budget was colored in every traced direction, all packets judged\n"
	"    expired    its duration ran out\n"
	"    cancelled  its tenant cancelled it\n"
	"    failed     status no-host: no live node hosts the source instance (nothing to\n"
	"               arm); status arm-timeout: the hosting node did not apply it in time\n"
	"    Status restarted: the analyzer restarted and resumed the task, or ended it when\n"
	"    its duration ran out meanwhile; the sentence says which.\n"
	"\n"
	"OPTIONS\n"
	"    Options may come before or after the command.\n"
	"    -a, --analyzer URL   The analyzer's API address (NNG URL). Default: $DYETRACE_API,\n"
	"                         else " DEFAULT_API ".\n"
	"        --token TOKEN    The tenant's token. Default: $DYETRACE_TOKEN. Prefer the\n"
	"                         environment: command lines are visible to other users.\n"
	"    -j, --json           Print JSON for scripts instead of text. Errors are then also\n"
	"                         printed on stdout as {\"error\":{\"status\":S,\"message\":M}}.\n"
	"                         For report, the same as --format json.\n"
	"    -t, --timeout MS     How long to wait for each answer of the analyzer, in\n"
	"                         milliseconds. Default: 5000.\n"
	"    -n, --packets N      report: packets to list in text, 0 for all. Default: 20.\n"
	"                         html lists them all unless --packets is given.\n"
	"        --format FORMAT  report: text (default), json, dot, svg, html or pcapng\n"
	"                         (see report above). --json with another format is an\n"
	"                         error.\n"
	"    -o, --output FILE    report: write the report to FILE (created or truncated)\n"
	"                         instead of stdout; \"-\" is stdout. Nothing is written when\n"
	"                         the report cannot be had. Errors still go to stderr (and\n"
	"                         with --json, their JSON to stdout).\n"
	"        --src IP         task create: source IPv4 address of the flow.\n"
	"        --dst IP         task create: destination IPv4 address of the flow.\n"
	"        --sport PORT     task create: source port (icmp: echo identifier).\n"
	"        --dport PORT     task create: destination port (icmp: echo identifier).\n"
	"        --proto PROTO    task create: tcp, udp, icmp or an IP protocol number.\n"
	"        --vni VNI        task create: VXLAN network identifier of the tenant network.\n"
	"        --direction DIR  task create: request (default), reply or both.\n"
	"        --budget N       task create: packets to color per direction; the first hop\n"
	"                         stops coloring there. Default and maximum: the analyzer's\n"
	"                         configuration (100 and 100000 unless changed).\n"
	"        --duration S     task create: seconds the task runs at most, from its\n"
	"                         creation (default 60, maximum 3600 unless changed).\n"
	"        --rate PPS       task create: packets colored per second at most, per\n"
	"                         direction (default 100, maximum 10000 unless changed).\n"
	"                         A value above a maximum is refused (exit 4).\n"
	"        --interval MS    task watch: how often to ask, 10 to 60000. Default: 500.\n"
	"    -h, --help           Print this help and exit.\n"
	"        --version        Print the version, the git revision it was built from and\n"
	"                         the versions of the libraries in use, and exit.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  Success. task watch: the task ended done or expired.\n"
	"    1  The analyzer failed to do it (status \"failed\"), its reply was malformed, or\n"
	"       an internal error occurred. task watch: the task ended failed.\n"
	"    2  Invalid input or usage, here or as judged by the analyzer (status \"invalid\").\n"
	"    3  No such task (status \"not-found\"); also another tenant's task.\n"
	"    4  The analyzer refused the request (status \"refused\"): a missing or unknown\n"
	"       token, a task that overlaps an active one, a limit above its maximum, too\n"
	"       many active tasks for the tenant.\n"
	"    5  The analyzer could not be reached or did not answer in time (status\n"
	"       \"unreachable\").\n"
	"    6  task watch: the task ended cancelled.\n"
	"    7  report: the format needs a program that is not installed (--format svg:\n"
	"       Graphviz's dot, found through PATH).\n"
	"    Errors are printed on stderr as \"dyetrace: MESSAGE\".\n"
	"\n"
	"ENVIRONMENT\n"
	"    DYETRACE_API     The analyzer's API address when --analyzer is not given.\n"
	"    DYETRACE_TOKEN   The tenant's token when --token is not given.\n"
	"\n"
	"EXAMPLES\n"
	"    Trace pings between two instances of VNI 100, wait for the end, read the result:\n"
	"        export DYETRACE_TOKEN=...\n"
	"        dyetrace task create --src 10.100.0.1 --dst 10.100.0.2 --proto icmp --vni 100\n"
	"        dyetrace task watch 1 && dyetrace report 1\n"
	"\n"
	"    Trace one TCP connection, 500 packets at most 50 per second, for 2 minutes, and\n"
	"    get its report as JSON:\n"
	"        dyetrace task create --src 10.100.0.1 --sport 40000 --dst 10.100.0.2 \\\n"
	"            --dport 5201 --proto tcp --vni 100 --budget 500 --rate 50 --duration 120\n"
	"        dyetrace report 2 --json | jq '.hop_latency'\n"
	"\n"
	"    Trace a connection to the internet through a NAT gateway, both ways, and read\n"
	"    the verdict:\n"
	"        dyetrace task create --src 10.100.0.1 --dst 203.0.113.10 --proto icmp \\\n"
	"            --vni 100 --direction both\n"
	"        dyetrace report 3 --json | jq -r '.verdict.sentence'\n"
	"\n"
	"    Save a report as a page to open in a browser, as a graph, and as packets for\n"
	"    Wireshark:\n"
	"        dyetrace report 3 --format html -o report-3.html\n"
	"        dyetrace report 3 --format svg -o report-3.svg\n"
	"        dyetrace report 3 --format dot | dot -Tpng -o report-3.png\n"
	"        dyetrace report 3 --format pcapng -o report-3.pcapng\n"
	"        wireshark report-3.pcapng\n"
	"\n"
	"    List the running tasks, and cancel one:\n"
	"        dyetrace task list --json | jq '.tasks[] | select(.state == \"running\") | .id'\n"
	"        dyetrace task cancel 4\n"
	"\n"
	"    Ask another analyzer, waiting at most 2 seconds:\n"
	"        dyetrace -a tcp://10.0.0.5:7400 -t 2000 task show 2\n";

/* ------------------------------------------------------------------------------------ */
/* Errors */

/*
 * Reports a failure: "dyetrace: MESSAGE" on stderr and, with --json, the error object on
 * stdout. Returns rc, so that callers can write "return fail(...)".
 */
static int fail(const struct cli *c, int rc, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(const struct cli *c, int rc, const char *status, const char *fmt, ...)
{
	char msg[DT_MSG_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dyetrace: %s\n", msg);
	if (c->json) {
		dt_render_error_json(stdout, status, msg);
		fflush(stdout);
	}
	return rc;
}

#define usage_error(c, ...) fail(c, RC_USAGE, dt_status_name(DT_ST_INVALID), __VA_ARGS__)
#define internal_error(c, ...) fail(c, RC_FAILED, dt_status_name(DT_ST_FAILED), __VA_ARGS__)

static int status_rc(uint32_t status)
{
	switch (status) {
	case DT_ST_INVALID:
		return RC_USAGE;
	case DT_ST_NOT_FOUND:
		return RC_NOT_FOUND;
	case DT_ST_REFUSED:
		return RC_REFUSED;
	default:
		return RC_FAILED;
	}
}

/* ------------------------------------------------------------------------------------ */
/* Talking to the analyzer */

/* Local transports connect at once or fail at once: dial them synchronously, so that a
 * missing analyzer is reported as such. Others (tcp) could hang in connect() far beyond
 * the timeout: dial them in the background and let the timeout decide. */
static bool dial_now(const char *url)
{
	return strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0 ||
	       strncmp(url, "abstract://", 11) == 0;
}

static int connect_api(struct cli *c)
{
	int rv;

	if (c->sock_open) {
		return RC_OK;
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		return internal_error(c, "cannot open a socket: %s", nng_strerror(rv));
	}
	c->sock_open = true;
	/* No automatic resend: creating a task twice is not harmless. */
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, c->timeout_ms)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, c->timeout_ms)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0) {
		return internal_error(c, "cannot set socket options: %s", nng_strerror(rv));
	}
	rv = nng_dial(c->sock, c->url, NULL, dial_now(c->url) ? 0 : NNG_FLAG_NONBLOCK);
	switch (rv) {
	case 0:
		return RC_OK;
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
		return usage_error(c, "invalid analyzer address \"%s\": %s", c->url,
				   nng_strerror(rv));
	default:
		return fail(c, RC_UNREACHABLE, ST_UNREACHABLE,
			    "cannot reach the analyzer at %s: %s", c->url, nng_strerror(rv));
	}
}

typedef int (*decode_fn)(const void *buf, size_t len, void *out);

static int decode_task(const void *buf, size_t len, void *out)
{
	return dt_task_decode(buf, len, out);
}

static int decode_report(const void *buf, size_t len, void *out)
{
	return dt_report_decode(buf, len, out);
}

static int decode_tasks(const void *buf, size_t len, void *out)
{
	return dt_tasks_decode(buf, len, out);
}

static const char *msg_name(enum dt_msg_type type)
{
	return type == DT_MSG_TASK     ? "task"
	       : type == DT_MSG_REPORT ? "report"
	       : type == DT_MSG_TASKS  ? "task list"
				       : "?";
}

/*
 * Sends the request req to the analyzer and waits for its reply. A reply of type want is
 * decoded into out with dec (the caller then owns what out points to). A DT_MSG_ERROR
 * reply, a malformed reply, and transport failures are reported here (see fail()).
 * Returns the exit status: RC_OK when out was filled.
 */
static int call(struct cli *c, const msgpack_sbuffer *req, enum dt_msg_type want, decode_fn dec,
		void *out)
{
	enum dt_msg_type type;
	struct dt_error e;
	void *buf = NULL;
	size_t len = 0;
	int rv, rc;

	if ((rc = connect_api(c)) != RC_OK) {
		return rc;
	}
	if ((rv = nng_send(c->sock, req->data, req->size, 0)) != 0 ||
	    (rv = nng_recv(c->sock, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
		if (rv == NNG_ETIMEDOUT) {
			return fail(c, RC_UNREACHABLE, ST_UNREACHABLE,
				    "no answer from the analyzer at %s within %d ms (is it running "
				    "and reachable?)",
				    c->url, c->timeout_ms);
		}
		return fail(c, RC_UNREACHABLE, ST_UNREACHABLE,
			    "cannot talk to the analyzer at %s: %s", c->url, nng_strerror(rv));
	}

	if ((rv = dt_msg_type(buf, len, &type)) != 0) {
		rc = internal_error(c, "malformed reply from the analyzer: %s",
				    dt_proto_strerror(rv));
	} else if (type == DT_MSG_ERROR) {
		if ((rv = dt_error_decode(buf, len, &e)) != 0) {
			rc = internal_error(c, "malformed error reply from the analyzer: %s",
					    dt_proto_strerror(rv));
		} else {
			rc = fail(c, status_rc(e.status), dt_status_name(e.status), "%s%s",
				  e.message[0] ? e.message : dt_status_name(e.status),
				  e.status == DT_ST_REFUSED && !c->token[0]
					  ? " (no token given: use --token or DYETRACE_TOKEN)"
					  : "");
		}
	} else if (type != want) {
		rc = internal_error(c, "malformed reply from the analyzer: %s (%d, wanted a %s)",
				    dt_proto_strerror(DT_PROTO_EMSGTYPE), (int)type,
				    msg_name(want));
	} else if ((rv = dec(buf, len, out)) != 0) {
		rc = internal_error(c, "malformed %s reply from the analyzer: %s", msg_name(want),
				    dt_proto_strerror(rv));
	} else {
		rc = RC_OK;
	}
	nng_free(buf, len);
	return rc;
}

/* call() with the request req, whose encoder returned err; frees req either way. */
static int call_sb(struct cli *c, msgpack_sbuffer *req, int err, enum dt_msg_type want,
		   decode_fn dec, void *out)
{
	int rc;

	if (err != 0) {
		rc = internal_error(c, "cannot encode the request: %s", dt_proto_strerror(err));
	} else {
		rc = call(c, req, want, dec, out);
	}
	msgpack_sbuffer_destroy(req);
	return rc;
}

/* Exit status after printing: a failed write to stdout (full disk, closed pipe) counts. */
static int printed(struct cli *c, int err)
{
	if (err == 0 && fflush(stdout) == 0 && !ferror(stdout)) {
		return RC_OK;
	}
	c->json = false; /* stdout is what failed */
	return internal_error(c, "cannot write the output: %s", strerror(errno ? errno : EIO));
}

/* ------------------------------------------------------------------------------------ */
/* Options */

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

static const struct option long_opts[] = {
	{"analyzer", required_argument, NULL, 'a'},
	{"json", no_argument, NULL, 'j'},
	{"timeout", required_argument, NULL, 't'},
	{"packets", required_argument, NULL, 'n'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, OPT_VERSION},
	{"src", required_argument, NULL, OPT_SRC},
	{"dst", required_argument, NULL, OPT_DST},
	{"sport", required_argument, NULL, OPT_SPORT},
	{"dport", required_argument, NULL, OPT_DPORT},
	{"proto", required_argument, NULL, OPT_PROTO},
	{"vni", required_argument, NULL, OPT_VNI},
	{"direction", required_argument, NULL, OPT_DIRECTION},
	{"token", required_argument, NULL, OPT_TOKEN},
	{"budget", required_argument, NULL, OPT_BUDGET},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"rate", required_argument, NULL, OPT_RATE},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"output", required_argument, NULL, 'o'},
	{NULL, 0, NULL, 0},
};

/* Strict decimal: digits only, no sign, no spaces, at most max. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9') {
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* The name of the option getopt_long() just returned, for messages. */
static const char *opt_name(int opt, char *buf, size_t len)
{
	const struct option *o;

	for (o = long_opts; o->name; o++) {
		if (o->val == opt) {
			snprintf(buf, len, "--%s", o->name);
			return buf;
		}
	}
	snprintf(buf, len, "-%c", opt);
	return buf;
}

/*
 * Handles the options every command accepts. Returns RC_CONTINUE when opt was one of
 * them, RC_NOT_MINE when it is not, or the exit status when the program must stop (help,
 * version, a bad value).
 */
static int common_opt(struct cli *c, int opt, const char *arg, char **argv)
{
	unsigned long v;

	switch (opt) {
	case 'a':
		if (*arg == '\0') {
			return usage_error(c, "--analyzer needs a URL");
		}
		c->url = arg;
		return RC_CONTINUE;
	case 'j':
		c->json = true;
		return RC_CONTINUE;
	case OPT_TOKEN:
		c->token = arg;
		return RC_CONTINUE;
	case 't':
		if (parse_uint(arg, MAX_TIMEOUT_MS, &v) != 0 || v == 0) {
			return usage_error(c, "--timeout wants milliseconds, 1 to %d: \"%s\"",
					   MAX_TIMEOUT_MS, arg);
		}
		c->timeout_ms = (int)v;
		return RC_CONTINUE;
	case 'h':
		fputs(help_text, stdout);
		return RC_OK;
	case OPT_VERSION:
		dt_version_print(stdout, "dyetrace");
		return printed(c, 0);
	case '?':
		if (optopt != 0) {
			return usage_error(c, "unknown option -%c (see dyetrace --help)", optopt);
		}
		return usage_error(c, "unknown option %s (see dyetrace --help)", argv[optind - 1]);
	case ':': {
		char name[32];

		return usage_error(c, "%s needs a value", opt_name(optopt, name, sizeof(name)));
	}
	default:
		return RC_NOT_MINE;
	}
}

/*
 * Parses a command's options (argv[0] is the command's name). Common options are handled
 * here; the command's own go to own(), which returns like common_opt(). Returns
 * RC_CONTINUE, with the positional arguments in argv[optind..argc), or an exit status.
 */
static int parse_cmd_opts(struct cli *c, int argc, char **argv,
			  int (*own)(struct cli *c, int opt, const char *arg, void *ctx), void *ctx)
{
	int opt, rv;

	optind = 0; /* glibc: start over, at argv[1] */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":a:jt:n:o:h", long_opts, NULL)) != -1) {
		rv = common_opt(c, opt, optarg, argv);
		if (rv == RC_NOT_MINE && own) {
			rv = own(c, opt, optarg, ctx);
		}
		if (rv == RC_NOT_MINE) {
			char name[32];

			rv = usage_error(c, "option %s does not apply to \"%s\"",
					 opt_name(opt, name, sizeof(name)), argv[0]);
		}
		if (rv != RC_CONTINUE) {
			return rv;
		}
	}
	return RC_CONTINUE;
}

/* Parses exactly one task id from the positional arguments. Returns like parse_cmd_opts(). */
static int parse_task_id(struct cli *c, int argc, char **argv, uint32_t *id)
{
	unsigned long v;

	if (optind >= argc) {
		return usage_error(c, "%s: missing task ID", argv[0]);
	}
	if (optind + 1 < argc) {
		return usage_error(c, "%s: unexpected argument \"%s\"", argv[0], argv[optind + 1]);
	}
	if (parse_uint(argv[optind], UINT32_MAX, &v) != 0 || v == 0) {
		return usage_error(c, "%s: not a task ID: \"%s\"", argv[0], argv[optind]);
	}
	*id = (uint32_t)v;
	return RC_CONTINUE;
}

/* ------------------------------------------------------------------------------------ */
/* Commands */

struct create_args {
	const char *src, *dst, *sport, *dport, *proto, *vni, *direction;
	const char *budget, *duration, *rate;
};

static int create_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct create_args *a = ctx;

	switch (opt) {
	case OPT_SRC:
		a->src = arg;
		return RC_CONTINUE;
	case OPT_DST:
		a->dst = arg;
		return RC_CONTINUE;
	case OPT_SPORT:
		a->sport = arg;
		return RC_CONTINUE;
	case OPT_DPORT:
		a->dport = arg;
		return RC_CONTINUE;
	case OPT_PROTO:
		a->proto = arg;
		return RC_CONTINUE;
	case OPT_VNI:
		a->vni = arg;
		return RC_CONTINUE;
	case OPT_DIRECTION:
		a->direction = arg;
		return RC_CONTINUE;
	case OPT_BUDGET:
		a->budget = arg;
		return RC_CONTINUE;
	case OPT_DURATION:
		a->duration = arg;
		return RC_CONTINUE;
	case OPT_RATE:
		a->rate = arg;
		return RC_CONTINUE;
	default:
		return RC_NOT_MINE;
	}
}

static int parse_port(struct cli *c, const char *name, const char *arg, uint16_t *port)
{
	unsigned long v;

	if (!arg) {
		*port = 0;
		return 0;
	}
	if (parse_uint(arg, 65535, &v) != 0 || v == 0) {
		return usage_error(c, "%s wants a port, 1 to 65535: \"%s\"", name, arg);
	}
	*port = htons((uint16_t)v);
	return 0;
}

/* --direction into DT_TASK_DIR_* flags (none given: request). Returns an exit status. */
static int parse_direction(struct cli *c, const char *arg, uint32_t *flags)
{
	static const struct {
		const char *name;
		uint32_t flags;
	} dirs[] = {
		{"request", DT_TASK_DIR_REQUEST},
		{"reply", DT_TASK_DIR_REPLY},
		{"both", DT_TASK_DIR_BOTH},
	};
	size_t i;

	if (!arg) {
		*flags |= DT_TASK_DIR_REQUEST;
		return RC_OK;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (strcmp(arg, dirs[i].name) == 0) {
			*flags |= dirs[i].flags;
			return RC_OK;
		}
	}
	return usage_error(c, "--direction wants request, reply or both: \"%s\"", arg);
}

/* A limit: absent is 0 (the analyzer's default). Returns an exit status. */
static int parse_limit(struct cli *c, const char *name, const char *what, const char *arg,
		       uint32_t *out)
{
	unsigned long v;

	*out = 0;
	if (!arg) {
		return RC_OK;
	}
	if (parse_uint(arg, UINT32_MAX, &v) != 0 || v == 0) {
		return usage_error(c, "%s wants %s, 1 to %u: \"%s\"", name, what, UINT32_MAX, arg);
	}
	*out = (uint32_t)v;
	return RC_OK;
}

/* Builds the task spec from the arguments. Returns an exit status. */
static int build_spec(struct cli *c, const struct create_args *a, struct dt_task_spec *spec)
{
	struct dt_tuple t;
	unsigned long vni;
	char buf[DT_TUPLE_STR_MAX];
	int rc;

	memset(&t, 0, sizeof(t));
	if (!a->src || !a->dst || !a->proto || !a->vni) {
		return usage_error(c, "create: missing%s%s%s%s (see dyetrace --help)",
				   a->src ? "" : " --src", a->dst ? "" : " --dst",
				   a->proto ? "" : " --proto", a->vni ? "" : " --vni");
	}
	if (dt_ipv4_parse(a->src, &t.saddr) != 0) {
		return usage_error(c, "--src wants an IPv4 address: \"%s\"", a->src);
	}
	if (dt_ipv4_parse(a->dst, &t.daddr) != 0) {
		return usage_error(c, "--dst wants an IPv4 address: \"%s\"", a->dst);
	}
	if (dt_proto_parse(a->proto, &t.proto) != 0) {
		return usage_error(c, "--proto wants tcp, udp, icmp or 1 to 255: \"%s\"", a->proto);
	}
	if (parse_uint(a->vni, 0xffffff, &vni) != 0) {
		return usage_error(c, "--vni wants a VNI, 0 to 16777215: \"%s\"", a->vni);
	}
	t.vni = (uint32_t)vni;
	if ((rc = parse_port(c, "--sport", a->sport, &t.sport)) != 0 ||
	    (rc = parse_port(c, "--dport", a->dport, &t.dport)) != 0) {
		return rc;
	}

	memset(spec, 0, sizeof(*spec));
	if ((rc = parse_limit(c, "--budget", "a packet count", a->budget, &spec->budget)) != 0 ||
	    (rc = parse_limit(c, "--duration", "seconds", a->duration, &spec->duration_s)) != 0 ||
	    (rc = parse_limit(c, "--rate", "packets per second", a->rate, &spec->rate_pps)) != 0) {
		return rc;
	}
	if ((rc = parse_direction(c, a->direction, &spec->flags)) != 0) {
		return rc;
	}
	if (dt_tuple_task_key(&t, &spec->flags, &spec->tuple) != 0) {
		dt_tuple_str(&t, 0, buf, sizeof(buf));
		if (t.saddr == 0 || t.daddr == 0) {
			return usage_error(c, "cannot trace %s: the addresses must not be 0.0.0.0",
					   buf);
		}
		if (t.proto == IPPROTO_ICMP) {
			return usage_error(c,
					   "cannot trace %s: icmp takes the echo identifier as "
					   "--sport or --dport, not both",
					   buf);
		}
		if (t.proto == IPPROTO_TCP || t.proto == IPPROTO_UDP) {
			return usage_error(c,
					   "cannot trace %s: give both --sport and --dport, or "
					   "neither to trace any port",
					   buf);
		}
		return usage_error(c,
				   "cannot trace %s: protocol %u has no ports, leave "
				   "--sport and --dport out",
				   buf, t.proto);
	}
	return RC_OK;
}

static int do_task_create(struct cli *c, int argc, char **argv)
{
	struct create_args a = {0};
	struct dt_task_spec spec;
	struct dt_task_info t;
	msgpack_sbuffer req;
	int rc;

	if ((rc = parse_cmd_opts(c, argc, argv, create_opt, &a)) != RC_CONTINUE) {
		return rc;
	}
	if (optind < argc) {
		return usage_error(c, "create: unexpected argument \"%s\"", argv[optind]);
	}
	if ((rc = build_spec(c, &a, &spec)) != RC_OK) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = call_sb(c, &req, dt_task_create_encode(&req, c->token, &spec), DT_MSG_TASK,
		     decode_task, &t);
	if (rc != RC_OK) {
		return rc;
	}
	return printed(c,
		       c->json ? dt_render_task_json(stdout, &t) : dt_render_task_text(stdout, &t));
}

static int do_task_show(struct cli *c, int argc, char **argv)
{
	struct dt_task_info t;
	msgpack_sbuffer req;
	uint32_t id;
	int rc;

	if ((rc = parse_cmd_opts(c, argc, argv, NULL, NULL)) != RC_CONTINUE ||
	    (rc = parse_task_id(c, argc, argv, &id)) != RC_CONTINUE) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = call_sb(c, &req, dt_task_get_encode(&req, c->token, id), DT_MSG_TASK, decode_task, &t);
	if (rc != RC_OK) {
		return rc;
	}
	return printed(c,
		       c->json ? dt_render_task_json(stdout, &t) : dt_render_task_text(stdout, &t));
}

static int do_task_list(struct cli *c, int argc, char **argv)
{
	struct dt_task_list l;
	msgpack_sbuffer req;
	int rc;

	if ((rc = parse_cmd_opts(c, argc, argv, NULL, NULL)) != RC_CONTINUE) {
		return rc;
	}
	if (optind < argc) {
		return usage_error(c, "list: unexpected argument \"%s\"", argv[optind]);
	}
	msgpack_sbuffer_init(&req);
	rc = call_sb(c, &req, dt_task_list_encode(&req, c->token), DT_MSG_TASKS, decode_tasks, &l);
	if (rc != RC_OK) {
		return rc;
	}
	rc = printed(c, c->json ? dt_render_task_list_json(stdout, &l)
				: dt_render_task_list_text(stdout, &l));
	dt_task_list_free(&l);
	return rc;
}

static int do_task_cancel(struct cli *c, int argc, char **argv)
{
	struct dt_task_info t;
	msgpack_sbuffer req;
	uint32_t id;
	int rc;

	if ((rc = parse_cmd_opts(c, argc, argv, NULL, NULL)) != RC_CONTINUE ||
	    (rc = parse_task_id(c, argc, argv, &id)) != RC_CONTINUE) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = call_sb(c, &req, dt_task_cancel_encode(&req, c->token, id), DT_MSG_TASK, decode_task,
		     &t);
	if (rc != RC_OK) {
		return rc;
	}
	return printed(c,
		       c->json ? dt_render_task_json(stdout, &t) : dt_render_task_text(stdout, &t));
}

static int watch_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	unsigned long v;

	if (opt != OPT_INTERVAL) {
		return RC_NOT_MINE;
	}
	if (parse_uint(arg, 60000, &v) != 0 || v < 10) {
		return usage_error(c, "--interval wants milliseconds, 10 to 60000: \"%s\"", arg);
	}
	c->interval_ms = (int)v;
	return RC_CONTINUE;
}

/* watch's exit status for a task that reached a terminal state. */
static int final_rc(uint32_t state)
{
	switch (state) {
	case DT_TASK_DONE:
	case DT_TASK_EXPIRED:
		return RC_OK;
	case DT_TASK_CANCELLED:
		return RC_CANCELLED;
	default:
		return RC_FAILED;
	}
}

static bool state_terminal(uint32_t state)
{
	return state == DT_TASK_DONE || state == DT_TASK_EXPIRED || state == DT_TASK_CANCELLED ||
	       state == DT_TASK_FAILED;
}

static int do_task_watch(struct cli *c, int argc, char **argv)
{
	struct dt_task_info t, last;
	struct timespec ts;
	msgpack_sbuffer req;
	bool first = true;
	uint32_t id;
	int rc;

	if ((rc = parse_cmd_opts(c, argc, argv, watch_opt, NULL)) != RC_CONTINUE ||
	    (rc = parse_task_id(c, argc, argv, &id)) != RC_CONTINUE) {
		return rc;
	}
	memset(&last, 0, sizeof(last));
	for (;;) {
		msgpack_sbuffer_init(&req);
		rc = call_sb(c, &req, dt_task_get_encode(&req, c->token, id), DT_MSG_TASK,
			     decode_task, &t);
		if (rc != RC_OK) {
			return rc;
		}
		if (first || t.state != last.state || t.status != last.status ||
		    strcmp(t.status_text, last.status_text) != 0) {
			clock_gettime(CLOCK_REALTIME, &ts);
			rc = printed(c, c->json ? dt_render_task_json(stdout, &t)
						: dt_render_task_change_text(
							  stdout,
							  (uint64_t)ts.tv_sec * 1000000000ull +
								  (uint64_t)ts.tv_nsec,
							  &t));
			if (rc != RC_OK) {
				return rc;
			}
		}
		if (state_terminal(t.state)) {
			return final_rc(t.state);
		}
		last = t;
		first = false;
		ts.tv_sec = c->interval_ms / 1000;
		ts.tv_nsec = (long)(c->interval_ms % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

static int report_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	unsigned long v;
	int i;

	switch (opt) {
	case 'n':
		if (parse_uint(arg, UINT32_MAX, &v) != 0) {
			return usage_error(c, "--packets wants a count, 0 for all: \"%s\"", arg);
		}
		c->max_packets = (uint32_t)v;
		c->packets_set = true;
		return RC_CONTINUE;
	case 'o':
		if (*arg == '\0') {
			return usage_error(c, "--output needs a file name (\"-\" for stdout)");
		}
		c->output = strcmp(arg, "-") == 0 ? NULL : arg;
		return RC_CONTINUE;
	case OPT_FORMAT:
		for (i = FMT_TEXT; i < FMT_MAX; i++) {
			if (strcmp(arg, format_names[i]) == 0) {
				c->format = (enum report_format)i;
				return RC_CONTINUE;
			}
		}
		return usage_error(c, "--format wants text, json, dot, svg, html or pcapng: \"%s\"",
				   arg);
	default:
		return RC_NOT_MINE;
	}
}

/* Settles the report's format before asking for the report. Returns RC_CONTINUE or an
 * exit status. */
static int report_format(struct cli *c)
{
	if (c->format == FMT_UNSET) {
		c->format = c->json ? FMT_JSON : FMT_TEXT;
	}
	if (c->json && c->format != FMT_JSON) {
		return usage_error(c, "--json and --format %s disagree (--json is --format json)",
				   format_names[c->format]);
	}
	c->json = c->format == FMT_JSON; /* an alias: errors as JSON too */
	if (c->format == FMT_PCAPNG && !c->output && isatty(STDOUT_FILENO)) {
		return usage_error(c, "pcapng is binary: refusing to write it to a terminal; use "
				      "-o FILE or redirect stdout");
	}
	return RC_CONTINUE;
}

/* The SVG of r for svg and html: *svg stays NULL when html has to do without. Returns
 * RC_OK or an exit status. */
static int report_svg(struct cli *c, const struct dt_report *r, char **svg, size_t *len)
{
	int err = dt_render_report_svg_mem(r, svg, len);

	if (err == 0 || c->format != FMT_SVG) {
		if (err != 0 && err != -ENOENT) {
			fprintf(stderr,
				"dyetrace: note: dot could not draw the path (%s); the html page "
				"draws it without Graphviz\n",
				err == -EPROTO ? "dot failed" : strerror(-err));
		}
		return RC_OK;
	}
	if (err == -ENOENT) {
		return fail(c, RC_NO_TOOL, dt_status_name(DT_ST_FAILED),
			    "svg needs Graphviz's dot (apt-get install graphviz); use --format dot "
			    "and render it elsewhere");
	}
	return internal_error(c, "dot could not draw the report: %s",
			      err == -EPROTO ? "dot failed (see its message above)"
					     : strerror(-err));
}

/* Renders r in the chosen format into f. Returns 0 or a negative errno. */
static int render_report(struct cli *c, FILE *f, const struct dt_report *r, const char *svg,
			 size_t svg_len)
{
	switch (c->format) {
	case FMT_JSON:
		return dt_render_report_json(f, r);
	case FMT_DOT:
		return dt_render_report_dot(f, r);
	case FMT_SVG:
		return fwrite(svg, 1, svg_len, f) == svg_len ? 0 : -EIO;
	case FMT_HTML:
		return dt_render_report_html(f, r, svg, svg_len,
					     c->packets_set ? c->max_packets : 0);
	case FMT_PCAPNG:
		return dt_export_pcapng(f, r);
	default:
		return dt_render_report_text(f, r, c->max_packets);
	}
}

/* Writes len bytes of buf to --output, or to stdout. Returns an exit status. */
static int emit(struct cli *c, const char *buf, size_t len)
{
	FILE *f;
	int err = 0;

	if (!c->output) {
		return printed(c, fwrite(buf, 1, len, stdout) == len ? 0 : -EIO);
	}
	if (!(f = fopen(c->output, "w"))) {
		return internal_error(c, "cannot write %s: %s", c->output, strerror(errno));
	}
	if (fwrite(buf, 1, len, f) != len || fflush(f) != 0) {
		err = errno ? errno : EIO;
	}
	if (fclose(f) != 0 && err == 0) {
		err = errno ? errno : EIO;
	}
	if (err != 0) {
		return internal_error(c, "cannot write %s: %s", c->output, strerror(err));
	}
	return RC_OK;
}

/*
 * Renders the report into memory first, then writes it out: a report that cannot be had
 * or rendered leaves no half-written file behind, and a missing dot is found before
 * anything is written.
 */
static int write_report(struct cli *c, const struct dt_report *r)
{
	char *buf = NULL, *svg = NULL;
	size_t len = 0, svg_len = 0;
	FILE *f;
	int rc, err;

	if (c->format == FMT_SVG || c->format == FMT_HTML) {
		if ((rc = report_svg(c, r, &svg, &svg_len)) != RC_OK) {
			return rc;
		}
	}
	if (!(f = open_memstream(&buf, &len))) {
		free(svg);
		return internal_error(c, "cannot render the report: %s", strerror(errno));
	}
	err = render_report(c, f, r, svg, svg_len);
	if (fclose(f) != 0 && err == 0) {
		err = -ENOMEM;
	}
	free(svg);
	if (err != 0) {
		free(buf);
		return internal_error(c, "cannot render the report as %s: %s",
				      format_names[c->format], strerror(-err));
	}
	rc = emit(c, buf, len);
	free(buf);
	return rc;
}

static int do_report(struct cli *c, int argc, char **argv)
{
	struct dt_report r;
	msgpack_sbuffer req;
	uint32_t id;
	int rc;

	if ((rc = parse_cmd_opts(c, argc, argv, report_opt, NULL)) != RC_CONTINUE ||
	    (rc = parse_task_id(c, argc, argv, &id)) != RC_CONTINUE ||
	    (rc = report_format(c)) != RC_CONTINUE) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = call_sb(c, &req, dt_report_get_encode(&req, c->token, id), DT_MSG_REPORT,
		     decode_report, &r);
	if (rc != RC_OK) {
		return rc;
	}
	rc = write_report(c, &r);
	dt_report_free(&r);
	return rc;
}

static int do_help(struct cli *c, int argc, char **argv)
{
	fputs(help_text, stdout);
	return RC_OK;
}

/*
 * Runs the command argv[0] names in cmds: an exact name, or a prefix of exactly one.
 * what names the level for messages ("command", "task command").
 */
static int dispatch(struct cli *c, const struct cmd *cmds, const char *what, int argc, char **argv)
{
	const struct cmd *found = NULL, *cmd;
	size_t len;

	if (argc < 1) {
		return usage_error(c, "missing %s (see dyetrace --help)", what);
	}
	len = strlen(argv[0]);
	for (cmd = cmds; cmd->name; cmd++) {
		if (strcmp(cmd->name, argv[0]) == 0) {
			found = cmd;
			break;
		}
		if (len > 0 && strncmp(cmd->name, argv[0], len) == 0) {
			if (found) {
				return usage_error(c, "ambiguous %s \"%s\": %s or %s?", what,
						   argv[0], found->name, cmd->name);
			}
			found = cmd;
		}
	}
	if (!found) {
		return usage_error(c, "unknown %s \"%s\" (see dyetrace --help)", what, argv[0]);
	}
	return found->fn(c, argc, argv);
}

static const struct cmd task_cmds[] = {
	{"create", do_task_create},
	{"list", do_task_list},
	{"show", do_task_show},
	{"cancel", do_task_cancel},
	{"watch", do_task_watch},
	{"help", do_help},
	{NULL, NULL},
};

static int do_task(struct cli *c, int argc, char **argv)
{
	return dispatch(c, task_cmds, "task command", argc - 1, argv + 1);
}

static const struct cmd cmds[] = {
	{"task", do_task},
	{"report", do_report},
	{"help", do_help},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	struct cli c = {
		.url = DEFAULT_API,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
		.max_packets = DT_RENDER_TEXT_PACKETS,
		.interval_ms = DEFAULT_INTERVAL_MS,
	};
	const char *env = getenv("DYETRACE_API");
	const char *token = getenv("DYETRACE_TOKEN");
	int opt, rc;

	if (env && *env) {
		c.url = env;
	}
	c.token = token ? token : "";
	/* Options before the command; '+' stops at the first word, the command. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:a:jt:n:o:h", long_opts, NULL)) != -1) {
		rc = common_opt(&c, opt, optarg, argv);
		if (rc == RC_NOT_MINE) {
			char name[32];

			rc = usage_error(&c, "option %s goes after the command",
					 opt_name(opt, name, sizeof(name)));
		}
		if (rc != RC_CONTINUE) {
			return rc;
		}
	}
	rc = dispatch(&c, cmds, "command", argc - optind, argv + optind);
	if (c.sock_open) {
		nng_close(c.sock);
	}
	nng_fini(); /* joins nng's threads: nothing left for valgrind to report */
	return rc;
}
