/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "dt_config.h"
#include "dt_log.h"
#include "dt_metrics.h"
#include "dt_time.h"

enum family_type {
	FAMILY_COUNTER,
	FAMILY_GAUGE,
	FAMILY_HISTOGRAM,
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* ------------------------------------------------------------------------------------ */
/* The writer */

void dt_metrics_buf_init(struct dt_metrics_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void dt_metrics_buf_free(struct dt_metrics_buf *b)
{
	for (size_t i = 0; i < b->mb_n_families; i++)
		free(b->mb_families[i]);
	free(b->mb_families);
	free(b->mb_types);
	free(b->mb_data);
	memset(b, 0, sizeof(*b));
}

static int fail(struct dt_metrics_buf *b, int err)
{
	if (!b->mb_err)
		b->mb_err = err;
	return b->mb_err;
}

/* Makes room for need more bytes and the NUL. */
static int reserve(struct dt_metrics_buf *b, size_t need)
{
	size_t cap = b->mb_cap ? b->mb_cap : 4096;
	char *p;

	if (b->mb_len + need < b->mb_cap)
		return 0;
	while (cap <= b->mb_len + need)
		cap *= 2;
	if (!(p = realloc(b->mb_data, cap)))
		return fail(b, -ENOMEM);
	b->mb_data = p;
	b->mb_cap = cap;
	return 0;
}

static void put_mem(struct dt_metrics_buf *b, const char *s, size_t n)
{
	if (b->mb_err || reserve(b, n))
		return;
	memcpy(b->mb_data + b->mb_len, s, n);
	b->mb_len += n;
	b->mb_data[b->mb_len] = '\0';
}

static void put(struct dt_metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct dt_metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->mb_err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fail(b, -EINVAL);
		return;
	}
	if (reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->mb_data + b->mb_len, b->mb_cap - b->mb_len, fmt, ap);
	va_end(ap);
	b->mb_len += (size_t)n;
}

/*
 * Appends s escaped for a HELP line (backslash, newline) or, with quote, for a label value
 * (also the double quote).
 */
static void put_escaped(struct dt_metrics_buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (!esc)
			continue;
		put_mem(b, run, (size_t)(s - run));
		put_mem(b, esc, 2);
		run = s + 1;
	}
	put_mem(b, run, (size_t)(s - run));
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels: no colon, and no leading "__". */
static bool valid_name(const char *s, bool metric)
{
	size_t n = strlen(s);

	if (n == 0 || n >= DT_METRICS_NAME_MAX || (!metric && strncmp(s, "__", 2) == 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/*
 * Starts family name (HELP and TYPE) unless the previous sample belongs to it already.
 * Returns 0 or the buffer's error.
 */
static int family(struct dt_metrics_buf *b, const char *name, enum family_type type,
		  const char *help)
{
	size_t n = b->mb_n_families;
	char *dup;

	if (b->mb_err)
		return b->mb_err;
	if (!name || !valid_name(name, true) ||
	    (type == FAMILY_COUNTER && !ends_with(name, "_total")))
		return fail(b, -EINVAL);
	if (n && strcmp(b->mb_families[n - 1], name) == 0)
		return b->mb_types[n - 1] == (int)type ? 0 : fail(b, -EINVAL);
	for (size_t i = 0; i < n; i++)
		if (strcmp(b->mb_families[i], name) == 0)
			return fail(b, -EINVAL); /* its samples would be split */
	if (n == b->mb_cap_families) {
		size_t cap = n ? 2 * n : 32;
		char **f = realloc(b->mb_families, cap * sizeof(*f));
		int *t;

		if (!f)
			return fail(b, -ENOMEM);
		b->mb_families = f;
		if (!(t = realloc(b->mb_types, cap * sizeof(*t))))
			return fail(b, -ENOMEM);
		b->mb_types = t;
		b->mb_cap_families = cap;
	}
	if (!(dup = strdup(name)))
		return fail(b, -ENOMEM);
	b->mb_families[n] = dup;
	b->mb_types[n] = (int)type;
	b->mb_n_families++;
	put(b, "# HELP %s ", name);
	put_escaped(b, help ? help : "", false);
	put(b, "\n# TYPE %s %s\n", name, type_names[type]);
	return b->mb_err;
}

/* Checks labels: pairs of a valid name (not le for a histogram) and a value. */
static int check_labels(struct dt_metrics_buf *b, const char *const *labels, bool histogram)
{
	for (size_t i = 0; labels && labels[i]; i += 2) {
		if (!valid_name(labels[i], false) || !labels[i + 1] ||
		    (histogram && strcmp(labels[i], "le") == 0))
			return fail(b, -EINVAL);
	}
	return b->mb_err;
}

/* Writes name{labels[,le="le"]} (no braces without labels). */
static void put_series(struct dt_metrics_buf *b, const char *name, const char *suffix,
		       const char *const *labels, const char *le)
{
	const char *sep = "{";

	put(b, "%s%s", name, suffix);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		put(b, "%s%s=\"", sep, labels[i]);
		put_escaped(b, labels[i + 1], true);
		put_mem(b, "\"", 1);
		sep = ",";
	}
	if (le) {
		put(b, "%sle=\"%s\"", sep, le);
		sep = ",";
	}
	if (sep[0] == ',')
		put_mem(b, "}", 1);
}

/* A float as the text format writes it: NaN, +Inf, -Inf, or the shortest exact form. */
static void format_double(char *out, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(out, len, "NaN");
	} else if (isinf(v)) {
		snprintf(out, len, "%cInf", v > 0 ? '+' : '-');
	} else {
		snprintf(out, len, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, len, "%.17g", v);
	}
}

int dt_metrics_counter(struct dt_metrics_buf *b, const char *name, const char *help,
		       const char *const *labels, uint64_t value)
{
	if (family(b, name, FAMILY_COUNTER, help) || check_labels(b, labels, false))
		return b->mb_err;
	put_series(b, name, "", labels, NULL);
	put(b, " %llu\n", (unsigned long long)value);
	return b->mb_err;
}

int dt_metrics_gauge(struct dt_metrics_buf *b, const char *name, const char *help,
		     const char *const *labels, double value)
{
	char v[32];

	if (family(b, name, FAMILY_GAUGE, help) || check_labels(b, labels, false))
		return b->mb_err;
	format_double(v, sizeof(v), value);
	put_series(b, name, "", labels, NULL);
	put(b, " %s\n", v);
	return b->mb_err;
}

int dt_metrics_hist_init(struct dt_metrics_hist *h, const double *bounds, unsigned n)
{
	memset(h, 0, sizeof(*h));
	if (n > DT_METRICS_BUCKETS_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (isnan(bounds[i]) || isinf(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
		h->bounds[i] = bounds[i];
	}
	h->n_bounds = n;
	return 0;
}

void dt_metrics_hist_observe(struct dt_metrics_hist *h, double v)
{
	unsigned i = 0;

	while (i < h->n_bounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

int dt_metrics_histogram(struct dt_metrics_buf *b, const char *name, const char *help,
			 const char *const *labels, const struct dt_metrics_hist *h)
{
	uint64_t cum = 0;
	char v[32];

	if (family(b, name, FAMILY_HISTOGRAM, help) || check_labels(b, labels, true))
		return b->mb_err;
	if (h->n_bounds > DT_METRICS_BUCKETS_MAX)
		return fail(b, -EINVAL);
	for (unsigned i = 0; i < h->n_bounds; i++) {
		cum += h->counts[i];
		format_double(v, sizeof(v), h->bounds[i]);
		put_series(b, name, "_bucket", labels, v);
		put(b, " %llu\n", (unsigned long long)cum);
	}
	put_series(b, name, "_bucket", labels, "+Inf");
	put(b, " %llu\n", (unsigned long long)h->count);
	format_double(v, sizeof(v), h->sum);
	put_series(b, name, "_sum", labels, NULL);
	put(b, " %s\n", v);
	put_series(b, name, "_count", labels, NULL);
	put(b, " %llu\n", (unsigned long long)h->count);
	return b->mb_err;
}

/* ------------------------------------------------------------------------------------ */
/* The server */

/*
 * What the HTTP handler needs: it is the handler's data, freed by nng with the handler
 * (which may outlive dt_metrics_stop() while nng finishes a connection). fn is NULL once
 * the daemon stopped the server; mu serializes scrapes and guards fn.
 */
struct scrape {
	pthread_mutex_t mu;
	dt_metrics_fn fn;
	void *arg;
	struct dt_ratelimit rl;
};

struct dt_metrics {
	nng_http_server *server;
	struct scrape *sc;
	int port;
};

static void scrape_free(void *arg)
{
	struct scrape *sc = arg;

	pthread_mutex_destroy(&sc->mu);
	free(sc);
}

/* nng's error as a negative errno. */
static int nng_errno(int rv)
{
	if (rv & NNG_ESYSERR)
		return -(rv & ~NNG_ESYSERR);
	switch (rv) {
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EINVAL:
		return -EINVAL;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_EADDRINVAL:
		return -EADDRNOTAVAIL;
	case NNG_EPERM:
		return -EACCES;
	default:
		return -EIO;
	}
}

/* GET /metrics (HEAD too: nng sends the same head without the body). */
static void serve(nng_aio *aio)
{
	struct scrape *sc = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	uint16_t status = NNG_HTTP_STATUS_OK;
	struct dt_metrics_buf b;
	nng_http_res *res = NULL;
	uint64_t suppressed;
	bool log = false;
	int rv;

	dt_metrics_buf_init(&b);
	pthread_mutex_lock(&sc->mu);
	if (sc->fn)
		sc->fn(sc->arg, &b);
	else
		status = NNG_HTTP_STATUS_SERVICE_UNAVAILABLE;
	if (status == NNG_HTTP_STATUS_OK && b.mb_err) {
		status = NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
		log = dt_ratelimit_ok(&sc->rl, 60000, &suppressed);
	}
	pthread_mutex_unlock(&sc->mu);
	if (log)
		dt_err("DT-METRICS-PAGE",
		       "cannot render the metrics page: %s (%llu more since the "
		       "last report)",
		       b.mb_err == -ENOMEM ? "out of memory" : "invalid metric",
		       (unsigned long long)suppressed);
	if (status != NNG_HTTP_STATUS_OK) {
		rv = nng_http_res_alloc_error(&res, status);
	} else if ((rv = nng_http_res_alloc(&res)) == 0 &&
		   ((rv = nng_http_res_set_header(res, "Content-Type", DT_METRICS_CONTENT_TYPE)) !=
			    0 ||
		    (rv = nng_http_res_copy_data(res, b.mb_data ? b.mb_data : "", b.mb_len)) !=
			    0)) {
		nng_http_res_free(res);
		res = NULL;
	}
	dt_metrics_buf_free(&b);
	if (rv != 0) {
		nng_aio_finish(aio, rv); /* nng closes the connection */
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

int dt_metrics_check_url(const char *url, int allow_port0, char *why, size_t whylen)
{
	const char *colon, *bracket;
	unsigned long port;
	nng_url *u = NULL;
	char *end;
	int rv = -EINVAL;

	if (nng_url_parse(&u, url) != 0) {
		snprintf(why, whylen, "'%s' is not a URL", url);
		return -EINVAL;
	}
	colon = strrchr(u->u_host, ':');
	bracket = strrchr(u->u_host, ']');
	port = strtoul(u->u_port, &end, 10);
	if (strcmp(u->u_scheme, "http") != 0) {
		snprintf(why, whylen, "'%s': only http:// is served", url);
	} else if (u->u_userinfo || u->u_query || u->u_fragment ||
		   (u->u_path[0] && strcmp(u->u_path, "/") != 0)) {
		snprintf(why, whylen,
			 "'%s': give only the address, http://HOST:PORT (the page is "
			 "always at " DT_METRICS_PATH ")",
			 url);
	} else if (!u->u_hostname[0]) {
		snprintf(why, whylen,
			 "'%s': give the address to listen on, e.g. "
			 "http://127.0.0.1:9101 (0.0.0.0: every address)",
			 url);
	} else if (!colon || (bracket && colon < bracket) || !u->u_port[0] || *end ||
		   port > 65535 || (port == 0 && !allow_port0)) {
		snprintf(why, whylen, "'%s': needs a port, 1 to 65535 (http://HOST:PORT)", url);
	} else {
		rv = 0;
	}
	nng_url_free(u);
	return rv;
}

int dt_cfg_metrics(const config_setting_t *root, char *url, size_t urllen, char *err, size_t errlen)
{
	char why[DT_ERRBUF_MAX];
	int rv;

	if ((rv = dt_cfg_string(root, "metrics", url, urllen, err, errlen)) <= 0)
		return rv;
	if (dt_metrics_check_url(url, 0, why, sizeof(why)) != 0) {
		dt_cfg_error(config_setting_get_member(root, "metrics"), err, errlen,
			     "'metrics' %s", why);
		return -EINVAL;
	}
	return 1;
}

int dt_metrics_start(const char *url, dt_metrics_fn fn, void *arg, struct dt_metrics **out,
		     char *err, size_t errlen)
{
	nng_http_handler *h = NULL;
	struct dt_metrics *m;
	struct scrape *sc;
	nng_sockaddr sa;
	nng_url *u = NULL;
	bool added = false;
	int rv;

	if (dt_metrics_check_url(url, 1, err, errlen) != 0)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	sc = calloc(1, sizeof(*sc));
	if (!m || !sc) {
		free(m);
		free(sc);
		snprintf(err, errlen, "no memory for the metrics server");
		return -ENOMEM;
	}
	pthread_mutex_init(&sc->mu, NULL);
	sc->fn = fn;
	sc->arg = arg;
	m->sc = sc;
	if ((rv = nng_http_handler_alloc(&h, DT_METRICS_PATH, serve)) != 0) {
		scrape_free(sc);
		goto fail;
	}
	if ((rv = nng_http_handler_set_data(h, sc, scrape_free)) != 0) {
		scrape_free(sc);
		goto fail;
	}
	/* From here on the handler owns sc: nng frees it with the handler. */
	if ((rv = nng_http_handler_collect_body(h, false, 0)) != 0 ||
	    (rv = nng_url_parse(&u, url)) != 0 || (rv = nng_http_server_hold(&m->server, u)) != 0 ||
	    (rv = nng_http_server_add_handler(m->server, h)) != 0)
		goto fail;
	added = true;
	if ((rv = nng_http_server_start(m->server)) != 0)
		goto fail;
	nng_url_free(u);
	if (nng_http_server_get_addr(m->server, &sa) == 0)
		m->port = ntohs(sa.s_family == NNG_AF_INET6 ? sa.s_in6.sa_port : sa.s_in.sa_port);
	*out = m;
	return 0;
fail:
	snprintf(err, errlen, "cannot serve metrics on %s: %s", url, nng_strerror(rv));
	/* A handler the server has is freed with it; one it does not have is ours. */
	if (added && nng_http_server_del_handler(m->server, h) != 0)
		h = NULL;
	if (h)
		nng_http_handler_free(h);
	if (m->server)
		nng_http_server_release(m->server);
	if (u)
		nng_url_free(u);
	free(m);
	return nng_errno(rv);
}

int dt_metrics_port(const struct dt_metrics *m)
{
	return m->port;
}

void dt_metrics_stop(struct dt_metrics *m)
{
	if (!m)
		return;
	/* Waits for a scrape in progress; none calls fn afterwards. */
	pthread_mutex_lock(&m->sc->mu);
	m->sc->fn = NULL;
	pthread_mutex_unlock(&m->sc->mu);
	nng_http_server_stop(m->server);
	nng_http_server_release(m->server);
	free(m);
}
