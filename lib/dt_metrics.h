/* SPDX-License-Identifier: MIT */
/*
 * dt_metrics.h - Prometheus metrics over HTTP for the daemons.
 *
 * A daemon whose configuration has
 *
 *     metrics = "http://127.0.0.1:9101";
 *
 * serves its counters in the Prometheus text format (version 0.0.4) at GET /metrics on
 * that address, with nng's HTTP server; any other path answers 404. The numbers are the
 * ones the daemon logs periodically and at exit: the same variables, read the same way.
 *
 * Each scrape calls the daemon's dt_metrics_fn on one of nng's threads, never two at a
 * time for one server. The callback must read the daemon's state as its stats log does:
 * under the daemon's own lock (or from atomics), so that one scrape is consistent. It
 * must not wait for anything that waits for the metrics server. Once dt_metrics_stop()
 * has returned, the callback is never called again and the daemon may free its state.
 *
 * The callback appends its samples with the small writer below. Each family (a metric
 * name with its HELP and TYPE) is written once, with all its samples together: calling a
 * writer with the name of the previous sample adds a sample to that family, a new name
 * starts a new family, and a name that appeared before another family is refused
 * (-EINVAL), like an invalid name, a counter name without the "_total" suffix, or a
 * label without a value. Label values are escaped. The first error sticks in the buffer
 * and the scrape then answers 500 instead of a partial page.
 *
 * Names follow dyetrace_<daemon>_<what>, counters end in _total, units are base units
 * (seconds, bytes) named in the metric.
 */
#ifndef DT_METRICS_H
#define DT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

#define DT_METRICS_NAME_MAX 128 /* a metric name, with its NUL */
#define DT_METRICS_URL_MAX 256
#define DT_METRICS_PATH "/metrics"
#define DT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

/* Labels of a sample: name, value, name, value, ..., NULL. */
#define DT_METRICS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

struct dt_metrics_buf {
	char *mb_data; /* the page so far, NUL-terminated (NULL while empty) */
	size_t mb_len;
	size_t mb_cap;
	int mb_err;	    /* the first error: -ENOMEM or -EINVAL; 0 while none */
	char **mb_families; /* the families written so far */
	int *mb_types;	    /* ... and their types */
	size_t mb_n_families;
	size_t mb_cap_families;
};

void dt_metrics_buf_init(struct dt_metrics_buf *b);
void dt_metrics_buf_free(struct dt_metrics_buf *b);

/*
 * Appends one sample of counter family name (which must end in "_total"), gauge family
 * name, or histogram family name (samples name_bucket{le=...}, name_sum, name_count).
 * help is the family's HELP text (used when the family starts). labels may be NULL.
 * Returns 0, or the buffer's error (set by this call or an earlier one).
 */
int dt_metrics_counter(struct dt_metrics_buf *b, const char *name, const char *help,
		       const char *const *labels, uint64_t value);
int dt_metrics_gauge(struct dt_metrics_buf *b, const char *name, const char *help,
		     const char *const *labels, double value);

#define DT_METRICS_BUCKETS_MAX 16

/* A histogram the daemon updates under its own lock and copies into a scrape. */
struct dt_metrics_hist {
	unsigned n_bounds; /* finite upper bounds, ascending */
	double bounds[DT_METRICS_BUCKETS_MAX];
	uint64_t counts[DT_METRICS_BUCKETS_MAX + 1]; /* per bucket, not cumulative; the last
						      * one is above every bound (+Inf) */
	uint64_t count;
	double sum;
};

/* Empties h with the n ascending bounds. Returns 0 or -EINVAL (too many, not ascending). */
int dt_metrics_hist_init(struct dt_metrics_hist *h, const double *bounds, unsigned n);
void dt_metrics_hist_observe(struct dt_metrics_hist *h, double v);
int dt_metrics_histogram(struct dt_metrics_buf *b, const char *name, const char *help,
			 const char *const *labels, const struct dt_metrics_hist *h);

/* Renders the page: appends the daemon's samples to b. See the header comment. */
typedef void (*dt_metrics_fn)(void *arg, struct dt_metrics_buf *b);

struct dt_metrics;

/*
 * Checks a metrics address: http://HOST:PORT, optionally ending in "/" (the page is
 * always at /metrics), PORT 0 to 65535 when allow_port0, else 1 to 65535. Returns 0, or
 * -EINVAL with why filled.
 */
int dt_metrics_check_url(const char *url, int allow_port0, char *why, size_t whylen);

/*
 * Reads the optional "metrics" setting of root into url (left as is when absent) and
 * checks it. Returns 0 (absent), 1 (read), or -EINVAL with err as "file:line: what".
 */
int dt_cfg_metrics(const config_setting_t *root, char *url, size_t urllen, char *err,
		   size_t errlen);

/*
 * Starts serving GET /metrics on url (port 0: any free port, see dt_metrics_port()).
 * Returns 0 with *out set, or a negative errno (-EADDRINUSE when the address is taken,
 * -EADDRNOTAVAIL when it is not local, -EINVAL for a bad URL) with err filled.
 */
int dt_metrics_start(const char *url, dt_metrics_fn fn, void *arg, struct dt_metrics **out,
		     char *err, size_t errlen);

/* The TCP port the server listens on. */
int dt_metrics_port(const struct dt_metrics *m);

/* Stops the server (m may be NULL). Once it returns, fn is never called again. */
void dt_metrics_stop(struct dt_metrics *m);

#endif /* DT_METRICS_H */
