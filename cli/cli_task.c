// SPDX-License-Identifier: MIT
/*
 * cli_task.c - the task commands: create, list, show, cancel, watch.
 */
#include "cli_int.h"

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
	if (cli_parse_uint(arg, 65535, &v) != 0 || v == 0) {
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
	if (cli_parse_uint(arg, UINT32_MAX, &v) != 0 || v == 0) {
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
	if (cli_parse_uint(a->vni, 0xffffff, &vni) != 0) {
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

int cli_do_task_create(struct cli *c, int argc, char **argv)
{
	struct create_args a = {0};
	struct dt_task_spec spec;
	struct dt_task_info t;
	msgpack_sbuffer req;
	int rc;

	if ((rc = cli_parse_cmd_opts(c, argc, argv, create_opt, &a)) != RC_CONTINUE) {
		return rc;
	}
	if (optind < argc) {
		return usage_error(c, "create: unexpected argument \"%s\"", argv[optind]);
	}
	if ((rc = build_spec(c, &a, &spec)) != RC_OK) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = cli_call_sb(c, &req, dt_task_create_encode(&req, c->token, &spec), DT_MSG_TASK,
			 cli_decode_task, &t);
	if (rc != RC_OK) {
		return rc;
	}
	return cli_printed(c, c->json ? dt_render_task_json(stdout, &t)
				      : dt_render_task_text(stdout, &t));
}

/* show and cancel: one request naming the task by id, the task back. */
static int task_by_id(struct cli *c, int argc, char **argv,
		      int (*encode)(msgpack_sbuffer *out, const char *token, uint32_t id))
{
	struct dt_task_info t;
	msgpack_sbuffer req;
	uint32_t id;
	int rc;

	if ((rc = cli_parse_cmd_opts(c, argc, argv, NULL, NULL)) != RC_CONTINUE ||
	    (rc = cli_parse_task_id(c, argc, argv, &id)) != RC_CONTINUE) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = cli_call_sb(c, &req, encode(&req, c->token, id), DT_MSG_TASK, cli_decode_task, &t);
	if (rc != RC_OK) {
		return rc;
	}
	return cli_printed(c, c->json ? dt_render_task_json(stdout, &t)
				      : dt_render_task_text(stdout, &t));
}

int cli_do_task_show(struct cli *c, int argc, char **argv)
{
	return task_by_id(c, argc, argv, dt_task_get_encode);
}

int cli_do_task_list(struct cli *c, int argc, char **argv)
{
	struct dt_task_list l;
	msgpack_sbuffer req;
	int rc;

	if ((rc = cli_parse_cmd_opts(c, argc, argv, NULL, NULL)) != RC_CONTINUE) {
		return rc;
	}
	if (optind < argc) {
		return usage_error(c, "list: unexpected argument \"%s\"", argv[optind]);
	}
	msgpack_sbuffer_init(&req);
	rc = cli_call_sb(c, &req, dt_task_list_encode(&req, c->token), DT_MSG_TASKS,
			 cli_decode_tasks, &l);
	if (rc != RC_OK) {
		return rc;
	}
	rc = cli_printed(c, c->json ? dt_render_task_list_json(stdout, &l)
				    : dt_render_task_list_text(stdout, &l));
	dt_task_list_free(&l);
	return rc;
}

int cli_do_task_cancel(struct cli *c, int argc, char **argv)
{
	return task_by_id(c, argc, argv, dt_task_cancel_encode);
}

static int watch_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	unsigned long v;

	if (opt != OPT_INTERVAL) {
		return RC_NOT_MINE;
	}
	if (cli_parse_uint(arg, 60000, &v) != 0 || v < 10) {
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

int cli_do_task_watch(struct cli *c, int argc, char **argv)
{
	struct dt_task_info t, last;
	struct timespec ts;
	msgpack_sbuffer req;
	bool first = true;
	uint32_t id;
	int rc;

	if ((rc = cli_parse_cmd_opts(c, argc, argv, watch_opt, NULL)) != RC_CONTINUE ||
	    (rc = cli_parse_task_id(c, argc, argv, &id)) != RC_CONTINUE) {
		return rc;
	}
	memset(&last, 0, sizeof(last));
	for (;;) {
		msgpack_sbuffer_init(&req);
		rc = cli_call_sb(c, &req, dt_task_get_encode(&req, c->token, id), DT_MSG_TASK,
				 cli_decode_task, &t);
		if (rc != RC_OK) {
			return rc;
		}
		if (first || t.state != last.state || t.status != last.status ||
		    strcmp(t.status_text, last.status_text) != 0) {
			clock_gettime(CLOCK_REALTIME, &ts);
			rc = cli_printed(c, c->json ? dt_render_task_json(stdout, &t)
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
