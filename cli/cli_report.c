// SPDX-License-Identifier: MIT
/*
 * cli_report.c - the report command: a task's report in the chosen format, to stdout
 * or a file.
 */
#include "cli_int.h"

const char *const cli_format_names[FMT_MAX] = {
	[FMT_TEXT] = "text", [FMT_JSON] = "json", [FMT_DOT] = "dot",
	[FMT_SVG] = "svg",   [FMT_HTML] = "html", [FMT_PCAPNG] = "pcapng",
};

static int report_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	unsigned long v;
	int i;

	switch (opt) {
	case 'n':
		if (cli_parse_uint(arg, UINT32_MAX, &v) != 0) {
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
			if (strcmp(arg, cli_format_names[i]) == 0) {
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
				   cli_format_names[c->format]);
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
		return cli_fail(
			c, RC_NO_TOOL, dt_status_name(DT_ST_FAILED),
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
		return cli_printed(c, fwrite(buf, 1, len, stdout) == len ? 0 : -EIO);
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
				      cli_format_names[c->format], strerror(-err));
	}
	rc = emit(c, buf, len);
	free(buf);
	return rc;
}

int cli_do_report(struct cli *c, int argc, char **argv)
{
	struct dt_report r;
	msgpack_sbuffer req;
	uint32_t id;
	int rc;

	if ((rc = cli_parse_cmd_opts(c, argc, argv, report_opt, NULL)) != RC_CONTINUE ||
	    (rc = cli_parse_task_id(c, argc, argv, &id)) != RC_CONTINUE ||
	    (rc = report_format(c)) != RC_CONTINUE) {
		return rc;
	}
	msgpack_sbuffer_init(&req);
	rc = cli_call_sb(c, &req, dt_report_get_encode(&req, c->token, id), DT_MSG_REPORT,
			 cli_decode_report, &r);
	if (rc != RC_OK) {
		return rc;
	}
	rc = write_report(c, &r);
	dt_report_free(&r);
	return rc;
}
