/* SPDX-License-Identifier: MIT */
/*
 * The metrics module: the writer's text format (HELP and TYPE once per family, label
 * escaping, refused names and split families), the "metrics" setting, and a live server
 * on 127.0.0.1 answering GET /metrics, 404 elsewhere, 500 for a broken page, and
 * refusing an address in use.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <criterion/criterion.h>

#include "dt_config.h"
#include "dt_metrics.h"

/* ------------------------------------------------------------------------------------ */
/* The writer */

Test(metrics_writer, families_once_and_escaped_labels)
{
	struct dt_metrics_buf b;

	dt_metrics_buf_init(&b);
	cr_assert_eq(dt_metrics_counter(&b, "dyetrace_test_lost_total", "Lost.\nBy reason \\ why",
					DT_METRICS_LABELS("reason", "ring_full"), 3),
		     0);
	cr_assert_eq(dt_metrics_counter(&b, "dyetrace_test_lost_total", "ignored",
					DT_METRICS_LABELS("reason", "a\"b\\c\nd"),
					18446744073709551615ull),
		     0);
	cr_assert_eq(dt_metrics_gauge(&b, "dyetrace_test_depth", "Depth.", NULL, 2), 0);
	cr_assert_eq(dt_metrics_gauge(&b, "dyetrace_test_ratio", "Ratio.",
				      DT_METRICS_LABELS("map", "tasks", "node", "h1"), 0.25),
		     0);
	cr_assert_str_eq(
		b.mb_data,
		"# HELP dyetrace_test_lost_total Lost.\\nBy reason \\\\ why\n"
		"# TYPE dyetrace_test_lost_total counter\n"
		"dyetrace_test_lost_total{reason=\"ring_full\"} 3\n"
		"dyetrace_test_lost_total{reason=\"a\\\"b\\\\c\\nd\"} 18446744073709551615\n"
		"# HELP dyetrace_test_depth Depth.\n"
		"# TYPE dyetrace_test_depth gauge\n"
		"dyetrace_test_depth 2\n"
		"# HELP dyetrace_test_ratio Ratio.\n"
		"# TYPE dyetrace_test_ratio gauge\n"
		"dyetrace_test_ratio{map=\"tasks\",node=\"h1\"} 0.25\n");
	cr_assert_eq(b.mb_len, strlen(b.mb_data));
	dt_metrics_buf_free(&b);
}

Test(metrics_writer, gauge_values)
{
	struct dt_metrics_buf b;

	dt_metrics_buf_init(&b);
	dt_metrics_gauge(&b, "g", "", DT_METRICS_LABELS("v", "nan"), NAN);
	dt_metrics_gauge(&b, "g", "", DT_METRICS_LABELS("v", "inf"), INFINITY);
	dt_metrics_gauge(&b, "g", "", DT_METRICS_LABELS("v", "-inf"), -INFINITY);
	dt_metrics_gauge(&b, "g", "", DT_METRICS_LABELS("v", "tenth"), 0.1);
	dt_metrics_gauge(&b, "g", "", DT_METRICS_LABELS("v", "big"), 16384);
	cr_assert_eq(b.mb_err, 0);
	cr_assert_str_eq(b.mb_data, "# HELP g \n# TYPE g gauge\n"
				    "g{v=\"nan\"} NaN\ng{v=\"inf\"} +Inf\ng{v=\"-inf\"} -Inf\n"
				    "g{v=\"tenth\"} 0.1\ng{v=\"big\"} 16384\n");
	dt_metrics_buf_free(&b);
}

Test(metrics_writer, histogram)
{
	static const double bounds[] = {1, 16, 256};
	struct dt_metrics_hist h;
	struct dt_metrics_buf b;

	cr_assert_eq(dt_metrics_hist_init(&h, bounds, 3), 0);
	dt_metrics_hist_observe(&h, 1);
	dt_metrics_hist_observe(&h, 2);
	dt_metrics_hist_observe(&h, 16);
	dt_metrics_hist_observe(&h, 1000);
	dt_metrics_buf_init(&b);
	cr_assert_eq(dt_metrics_histogram(&b, "dyetrace_test_batch_samples", "Samples per batch.",
					  DT_METRICS_LABELS("node", "h1"), &h),
		     0);
	cr_assert_str_eq(b.mb_data,
			 "# HELP dyetrace_test_batch_samples Samples per batch.\n"
			 "# TYPE dyetrace_test_batch_samples histogram\n"
			 "dyetrace_test_batch_samples_bucket{node=\"h1\",le=\"1\"} 1\n"
			 "dyetrace_test_batch_samples_bucket{node=\"h1\",le=\"16\"} 3\n"
			 "dyetrace_test_batch_samples_bucket{node=\"h1\",le=\"256\"} 3\n"
			 "dyetrace_test_batch_samples_bucket{node=\"h1\",le=\"+Inf\"} 4\n"
			 "dyetrace_test_batch_samples_sum{node=\"h1\"} 1019\n"
			 "dyetrace_test_batch_samples_count{node=\"h1\"} 4\n");
	dt_metrics_buf_free(&b);

	/* Without labels; an empty histogram. */
	dt_metrics_hist_init(&h, bounds, 1);
	dt_metrics_buf_init(&b);
	cr_assert_eq(dt_metrics_histogram(&b, "h", "H.", NULL, &h), 0);
	cr_assert_str_eq(b.mb_data, "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\n"
				    "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
	dt_metrics_buf_free(&b);

	cr_assert_eq(dt_metrics_hist_init(&h, (const double[]){2, 1}, 2), -EINVAL);
	cr_assert_eq(dt_metrics_hist_init(&h, bounds, DT_METRICS_BUCKETS_MAX + 1), -EINVAL);
}

/* Each misuse sets the sticky error and writes nothing more. */
static void refused(void (*write)(struct dt_metrics_buf *b))
{
	struct dt_metrics_buf b;
	size_t len;

	dt_metrics_buf_init(&b);
	write(&b);
	cr_assert_eq(b.mb_err, -EINVAL);
	len = b.mb_len;
	cr_assert_eq(dt_metrics_gauge(&b, "later", "", NULL, 1), -EINVAL);
	cr_assert_eq(b.mb_len, len, "nothing is written after an error");
	dt_metrics_buf_free(&b);
}

static void w_split(struct dt_metrics_buf *b)
{
	dt_metrics_counter(b, "a_total", "", NULL, 1);
	dt_metrics_gauge(b, "b", "", NULL, 1);
	dt_metrics_counter(b, "a_total", "", NULL, 2);
}

static void w_no_total(struct dt_metrics_buf *b)
{
	dt_metrics_counter(b, "dyetrace_x_samples", "", NULL, 1);
}

static void w_bad_name(struct dt_metrics_buf *b)
{
	dt_metrics_gauge(b, "1abc", "", NULL, 1);
}

static void w_bad_label(struct dt_metrics_buf *b)
{
	dt_metrics_gauge(b, "g", "", DT_METRICS_LABELS("re-ason", "x"), 1);
}

static void w_reserved_label(struct dt_metrics_buf *b)
{
	dt_metrics_gauge(b, "g", "", DT_METRICS_LABELS("__name__", "x"), 1);
}

static void w_missing_value(struct dt_metrics_buf *b)
{
	dt_metrics_gauge(b, "g", "", (const char *const[]){"state", NULL}, 1);
}

static void w_le(struct dt_metrics_buf *b)
{
	struct dt_metrics_hist h;

	dt_metrics_hist_init(&h, NULL, 0);
	dt_metrics_histogram(b, "h", "", DT_METRICS_LABELS("le", "1"), &h);
}

static void w_type_change(struct dt_metrics_buf *b)
{
	dt_metrics_gauge(b, "x_total", "", NULL, 1);
	dt_metrics_counter(b, "x_total", "", NULL, 1);
}

Test(metrics_writer, misuse_is_refused)
{
	refused(w_split);
	refused(w_no_total);
	refused(w_bad_name);
	refused(w_bad_label);
	refused(w_reserved_label);
	refused(w_missing_value);
	refused(w_le);
	refused(w_type_change);
}

Test(metrics_writer, large_page)
{
	struct dt_metrics_buf b;
	char v[16];

	dt_metrics_buf_init(&b);
	for (int i = 0; i < 5000; i++) {
		snprintf(v, sizeof(v), "%d", i);
		cr_assert_eq(dt_metrics_counter(&b, "many_total", "Many.",
						DT_METRICS_LABELS("i", v), (uint64_t)i),
			     0);
	}
	cr_assert_eq(strlen(b.mb_data), b.mb_len);
	cr_assert(strstr(b.mb_data, "many_total{i=\"4999\"} 4999\n"));
	dt_metrics_buf_free(&b);
}

/* ------------------------------------------------------------------------------------ */
/* The address and the setting */

Test(metrics_config, urls)
{
	static const char *const good[] = {"http://127.0.0.1:9101", "http://127.0.0.1:9101/",
					   "http://0.0.0.0:1", "http://[::1]:65535",
					   "http://localhost:9101"};
	static const char *const bad[] = {"127.0.0.1:9101",
					  "tcp://127.0.0.1:9101",
					  "https://127.0.0.1:9101",
					  "http://127.0.0.1",
					  "http://127.0.0.1:0",
					  "http://127.0.0.1:65536",
					  "http://127.0.0.1:9x",
					  "http://:9101",
					  "http://127.0.0.1:9101/metrics",
					  "http://127.0.0.1:9101/?a",
					  "http://u@127.0.0.1:9101",
					  "http://[::1]"};
	char why[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect_eq(dt_metrics_check_url(good[i], 0, why, sizeof(why)), 0, "%s: %s",
			     good[i], why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(dt_metrics_check_url(bad[i], 0, why, sizeof(why)), -EINVAL, "%s",
			     bad[i]);
	cr_expect_eq(dt_metrics_check_url("http://127.0.0.1:0", 1, why, sizeof(why)), 0);
}

/* Loads "metrics" from a file holding text; returns dt_cfg_metrics's result. */
static int load_setting(const char *text, char *url, size_t urllen, char *err, size_t errlen)
{
	char path[] = "/tmp/dt-metrics-cfg-XXXXXX";
	int fd = mkstemp(path), rv;
	config_t c;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	config_init(&c);
	cr_assert_eq(dt_cfg_read(&c, path, err, errlen), 0, "%s", err);
	rv = dt_cfg_metrics(config_root_setting(&c), url, urllen, err, errlen);
	config_destroy(&c);
	unlink(path);
	return rv;
}

Test(metrics_config, setting)
{
	char url[DT_METRICS_URL_MAX] = "", err[DT_ERRBUF_MAX] = "";

	cr_assert_eq(load_setting("name = \"x\";\n", url, sizeof(url), err, sizeof(err)), 0);
	cr_assert_str_eq(url, "", "absent: no server");
	cr_assert_eq(load_setting("name = \"x\";\nmetrics = \"http://127.0.0.1:9101\";\n", url,
				  sizeof(url), err, sizeof(err)),
		     1);
	cr_assert_str_eq(url, "http://127.0.0.1:9101");
	cr_assert_eq(load_setting("name = \"x\";\n\nmetrics = \"tcp://127.0.0.1:9101\";\n", url,
				  sizeof(url), err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, ":3: 'metrics' 'tcp://127.0.0.1:9101': only http:// is served"), "%s",
		  err);
	cr_assert_eq(load_setting("metrics = 9101;\n", url, sizeof(url), err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, ":1: 'metrics' must be a string"), "%s", err);
}

/* ------------------------------------------------------------------------------------ */
/* The server */

static unsigned calls;

static void page(void *arg, struct dt_metrics_buf *b)
{
	const char *node = arg;

	calls++;
	dt_metrics_counter(b, "dyetrace_test_scrapes_total", "Scrapes.",
			   DT_METRICS_LABELS("node", node), calls);
	dt_metrics_gauge(b, "dyetrace_test_up", "Up.", NULL, 1);
}

static void broken_page(void *arg, struct dt_metrics_buf *b)
{
	dt_metrics_counter(b, "no_suffix", "", NULL, 1);
}

/* One HTTP/1.1 request to 127.0.0.1:port; returns the whole answer (malloc'd). */
static char *http(int port, const char *method, const char *path)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 10};
	size_t len = 0, cap = 65536;
	char *out = calloc(1, cap), req[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	cr_assert_not_null(out);
	cr_assert_geq(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A safety net against a hang, not a timing assertion. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
		 method, path);
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	while ((n = recv(fd, out + len, cap - len - 1, 0)) > 0) {
		len += (size_t)n;
		cr_assert_lt(len, cap - 1, "answer too long");
	}
	cr_assert_eq(n, 0, "recv: %s", strerror(errno));
	close(fd);
	return out;
}

static const char *body_of(const char *answer)
{
	const char *p = strstr(answer, "\r\n\r\n");

	cr_assert_not_null(p, "no end of head in: %s", answer);
	return p + 4;
}

Test(metrics_server, serves_metrics_and_404)
{
	char err[DT_ERRBUF_MAX];
	struct dt_metrics *m;
	char *a;
	int port;

	calls = 0;
	cr_assert_eq(dt_metrics_start("http://127.0.0.1:0", page, "h1", &m, err, sizeof(err)), 0,
		     "%s", err);
	port = dt_metrics_port(m);
	cr_assert_gt(port, 0);

	a = http(port, "GET", "/metrics");
	cr_assert_eq(strncmp(a, "HTTP/1.1 200 ", 13), 0, "%s", a);
	cr_assert(strstr(a, "\r\nContent-Type: text/plain; version=0.0.4\r\n"), "%s", a);
	cr_assert_str_eq(body_of(a), "# HELP dyetrace_test_scrapes_total Scrapes.\n"
				     "# TYPE dyetrace_test_scrapes_total counter\n"
				     "dyetrace_test_scrapes_total{node=\"h1\"} 1\n"
				     "# HELP dyetrace_test_up Up.\n"
				     "# TYPE dyetrace_test_up gauge\n"
				     "dyetrace_test_up 1\n");
	free(a);
	/* A query string is not part of the path. */
	a = http(port, "GET", "/metrics?x=1");
	cr_assert_eq(strncmp(a, "HTTP/1.1 200 ", 13), 0, "%s", a);
	cr_assert(strstr(body_of(a), "dyetrace_test_scrapes_total{node=\"h1\"} 2\n"), "%s", a);
	free(a);

	static const char *const elsewhere[] = {"/", "/metricsx", "/metrics/x", "/other"};
	for (size_t i = 0; i < sizeof(elsewhere) / sizeof(elsewhere[0]); i++) {
		a = http(port, "GET", elsewhere[i]);
		cr_expect_eq(strncmp(a, "HTTP/1.1 404 ", 13), 0, "%s: %s", elsewhere[i], a);
		free(a);
	}
	a = http(port, "POST", "/metrics");
	cr_expect_eq(strncmp(a, "HTTP/1.1 405 ", 13), 0, "%s", a);
	free(a);
	cr_assert_eq(calls, 2, "only GET /metrics renders the page");

	dt_metrics_stop(m);
	/* Stopped: nothing listens any more. */
	{
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_neq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	cr_assert_eq(calls, 2);
}

Test(metrics_server, broken_page_is_500)
{
	char err[DT_ERRBUF_MAX];
	struct dt_metrics *m;
	char *a;

	cr_assert_eq(
		dt_metrics_start("http://127.0.0.1:0", broken_page, NULL, &m, err, sizeof(err)), 0,
		"%s", err);
	a = http(dt_metrics_port(m), "GET", "/metrics");
	cr_assert_eq(strncmp(a, "HTTP/1.1 500 ", 13), 0, "%s", a);
	cr_assert_null(strstr(a, "no_suffix"), "no partial page: %s", a);
	free(a);
	dt_metrics_stop(m);
}

Test(metrics_server, address_in_use)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	char err[DT_ERRBUF_MAX], url[64];
	struct dt_metrics *m = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port taken by a plain listening socket. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	cr_assert_eq(dt_metrics_start(url, page, "h1", &m, err, sizeof(err)), -EADDRINUSE, "%s",
		     err);
	cr_assert_null(m);
	cr_assert(strstr(err, "cannot serve metrics on http://127.0.0.1:"), "%s", err);
	close(fd);

	/* The port is free again: served. */
	cr_assert_eq(dt_metrics_start(url, page, "h1", &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(dt_metrics_port(m), ntohs(sa.sin_port));
	dt_metrics_stop(m);
	cr_assert_eq(dt_metrics_start("ftp://x", page, "h1", &m, err, sizeof(err)), -EINVAL);
}
