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
 * cli_api.c; the task commands are in cli_task.c, the report command in cli_report.c). Commands are
 * looked up in tables, bpftool style: do_<verb>() per subcommand, and any unambiguous prefix of a
 * command name works ("dyetrace t c ...").
 *
 * The exit status tells scripts what happened without parsing text (see the help text):
 * it is the one contract of this program besides the JSON of render.h.
 */
#include "cli_int.h"

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
	"                            \"schema\":\"dyetrace.report\" and \"schema_version\":2,\n"
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
	"    done       its budget was colored in every traced direction (the data plane's\n"
	"               count), all packets judged, samples that never came counted lost\n"
	"    expired    its duration ran out\n"
	"    cancelled  its tenant cancelled it (status cancelled), or its tenant is no longer in\n"
	"               the analyzer's configuration (status tenant-removed, at its start)\n"
	"    failed     status no-host: no live node hosts the source instance (nothing to\n"
	"               arm); status arm-timeout: the hosting node did not apply it in time;\n"
	"               status arm-failed: the hosting node could not arm it (its task map\n"
	"               is full, a map update failed; the sentence names the node and why).\n"
	"               A task is armed only when it is: never shown armed before that.\n"
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
	"    8  task create: no room for the task (status \"full\"): the task map of a node\n"
	"       hosting its first hop (the agent's task_map_entries), or the control set,\n"
	"       holds no more keys. The message names the node. Retry once a task ended.\n"
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

/*
 * Reports a failure: "dyetrace: MESSAGE" on stderr and, with --json, the error object on
 * stdout. Returns rc, so that callers can write "return cli_fail(...)".
 */
int cli_fail(const struct cli *c, int rc, const char *status, const char *fmt, ...)
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

int cli_status_rc(uint32_t status)
{
	switch (status) {
	case DT_ST_INVALID:
		return RC_USAGE;
	case DT_ST_NOT_FOUND:
		return RC_NOT_FOUND;
	case DT_ST_REFUSED:
		return RC_REFUSED;
	case DT_ST_FULL:
		return RC_FULL;
	default:
		return RC_FAILED;
	}
}

/* Strict decimal: digits only, no sign, no spaces, at most max. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
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
		if (cli_parse_uint(arg, MAX_TIMEOUT_MS, &v) != 0 || v == 0) {
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
		return cli_printed(c, 0);
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
int cli_parse_cmd_opts(struct cli *c, int argc, char **argv,
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

/* Parses exactly one task id from the positional arguments. Returns like cli_parse_cmd_opts(). */
int cli_parse_task_id(struct cli *c, int argc, char **argv, uint32_t *id)
{
	unsigned long v;

	if (optind >= argc) {
		return usage_error(c, "%s: missing task ID", argv[0]);
	}
	if (optind + 1 < argc) {
		return usage_error(c, "%s: unexpected argument \"%s\"", argv[0], argv[optind + 1]);
	}
	if (cli_parse_uint(argv[optind], UINT32_MAX, &v) != 0 || v == 0) {
		return usage_error(c, "%s: not a task ID: \"%s\"", argv[0], argv[optind]);
	}
	*id = (uint32_t)v;
	return RC_CONTINUE;
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
	{"create", cli_do_task_create},
	{"list", cli_do_task_list},
	{"show", cli_do_task_show},
	{"cancel", cli_do_task_cancel},
	{"watch", cli_do_task_watch},
	{"help", do_help},
	{NULL, NULL},
};

static int do_task(struct cli *c, int argc, char **argv)
{
	return dispatch(c, task_cmds, "task command", argc - 1, argv + 1);
}

static const struct cmd cmds[] = {
	{"task", do_task},
	{"report", cli_do_report},
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
