// SPDX-License-Identifier: MIT
/*
 * cli_api.c - one request to the analyzer's API and its one reply (NNG req).
 */
#include "cli_int.h"

/* Local transports connect at once or cli_fail at once: dial them synchronously, so that a
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
		return cli_fail(c, RC_UNREACHABLE, ST_UNREACHABLE,
				"cannot reach the analyzer at %s: %s", c->url, nng_strerror(rv));
	}
}

int cli_decode_task(const void *buf, size_t len, void *out)
{
	return dt_task_decode(buf, len, out);
}

int cli_decode_report(const void *buf, size_t len, void *out)
{
	return dt_report_decode(buf, len, out);
}

int cli_decode_tasks(const void *buf, size_t len, void *out)
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
 * reply, a malformed reply, and transport failures are reported here (see cli_fail()).
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
			return cli_fail(
				c, RC_UNREACHABLE, ST_UNREACHABLE,
				"no answer from the analyzer at %s within %d ms (is it running "
				"and reachable?)",
				c->url, c->timeout_ms);
		}
		return cli_fail(c, RC_UNREACHABLE, ST_UNREACHABLE,
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
			rc = cli_fail(c, cli_status_rc(e.status), dt_status_name(e.status), "%s%s",
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
int cli_call_sb(struct cli *c, msgpack_sbuffer *req, int err, enum dt_msg_type want, decode_fn dec,
		void *out)
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
int cli_printed(struct cli *c, int err)
{
	if (err == 0 && fflush(stdout) == 0 && !ferror(stdout)) {
		return RC_OK;
	}
	c->json = false; /* stdout is what failed */
	return internal_error(c, "cannot write the output: %s", strerror(errno ? errno : EIO));
}
