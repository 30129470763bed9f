/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer target for the configuration loaders of the three daemons.
 *
 * Each input is written to a file of this process (in /dev/shm, memory-backed) and loaded
 * with dt_agent_cfg_load(), dt_collector_cfg_load() and dt_analyzer_cfg_load(): the same
 * text is tried as each daemon's configuration, so one seed of each kind (the example
 * configurations, test/fuzz/corpus/config/) teaches the fuzzer all three. Beyond "no crash,
 * no leak, no undefined behaviour" (the sanitizers) it checks and aborts when one does not
 * hold:
 *
 *  - a loader returns 0 or a negative errno;
 *  - when loading fails the error message is non-empty and NUL-terminated in its buffer
 *    (the daemon prints it and exits: an empty message would leave the operator blind);
 *  - when loading succeeds the configuration keeps the invariants the daemons rely on
 *    (terminated strings, counts within their arrays, a power-of-two ring, unique
 *    interfaces, tenants whose tokens are long enough and each authenticate as
 *    themselves, defaults not above maxima, TLS URLs only with a tls group).
 *
 * Inputs with an @include directive are skipped: libconfig would read another file (the
 * fuzzer could find /dev/zero), which is the operator's own doing, not bad input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent.h"
#include "analyzer.h"
#include "collector.h"

#define FZ_FAIL(...)                                                                               \
	do {                                                                                       \
		fprintf(stderr, "fuzz_config: " __VA_ARGS__);                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

/* Each string of a struct must end inside its array. */
#define FZ_TERMINATED(what, s)                                                                     \
	do {                                                                                       \
		if (strnlen((s), sizeof(s)) == sizeof(s)) {                                        \
			FZ_FAIL("%s: '%s' is not terminated", (what), #s);                         \
		}                                                                                  \
	} while (0)

static char cfg_path[4096];

static void remove_cfg(void)
{
	if (cfg_path[0] != '\0') {
		unlink(cfg_path);
	}
}

/* The file goes to $DT_FUZZ_TMPDIR (run_fuzzer.sh makes one in /dev/shm and removes it: a
 * crash skips atexit), else /dev/shm, else /tmp. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("DT_FUZZ_TMPDIR");

	if (dir == NULL || dir[0] == '\0') {
		dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	}

	snprintf(cfg_path, sizeof(cfg_path), "%s/dt-fuzz-config-%d.conf", dir, (int)getpid());
	atexit(remove_cfg);
	return 0;
}

static void write_cfg(const uint8_t *data, size_t size)
{
	int fd = open(cfg_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t off = 0;
	ssize_t n;

	if (fd < 0) {
		FZ_FAIL("%s: %s", cfg_path, strerror(errno));
	}
	while (off < size) {
		if ((n = write(fd, data + off, size - off)) < 0) {
			FZ_FAIL("%s: %s", cfg_path, strerror(errno));
		}
		off += (size_t)n;
	}
	close(fd);
}

static bool has_include(const uint8_t *data, size_t size)
{
	static const char dir[] = "@include";
	size_t i;

	for (i = 0; i + sizeof(dir) - 1 <= size; i++) {
		if (data[i] == '@' &&
		    strncasecmp((const char *)data + i, dir, sizeof(dir) - 1) == 0) {
			return true;
		}
	}
	return false;
}

/* The error contract: a failed load explains itself, inside the buffer. */
/* What dt_tls_check_url() enforces at load: a tls+tcp:// URL exactly when TLS is set up. */
static bool tls_agrees(const char *url, const struct dt_tls_files *f)
{
	return (strncmp(url, "tls+tcp", 7) == 0) == dt_tls_enabled(f);
}

static void check_result(const char *who, int rv, const char *err, size_t errlen)
{
	if (rv > 0) {
		FZ_FAIL("%s: returned %d, not 0 or -errno", who, rv);
	}
	if (memchr(err, '\0', errlen) == NULL) {
		FZ_FAIL("%s: error message not terminated", who);
	}
	if (rv < 0 && err[0] == '\0') {
		FZ_FAIL("%s: failed (%s) with an empty error message", who, strerror(-rv));
	}
}

static void check_tls(const char *who, const struct dt_tls_files *t)
{
	FZ_TERMINATED(who, t->ca);
	FZ_TERMINATED(who, t->cert);
	FZ_TERMINATED(who, t->key);
	FZ_TERMINATED(who, t->server_name);
}

static void check_agent(const struct dt_agent_cfg *c)
{
	unsigned i, j;

	FZ_TERMINATED("agent", c->node);
	FZ_TERMINATED("agent", c->collector);
	FZ_TERMINATED("agent", c->spool_dir);
	FZ_TERMINATED("agent", c->pin_dir);
	check_tls("agent", &c->tls);
	if (c->node[0] == '\0') {
		FZ_FAIL("agent: loaded without a node name");
	}
	if (c->n_ifaces == 0 || c->n_ifaces > DT_AGENT_MAX_IFACES) {
		FZ_FAIL("agent: loaded with %u interfaces", c->n_ifaces);
	}
	if (c->ring_kib == 0 || (c->ring_kib & (c->ring_kib - 1)) != 0) {
		FZ_FAIL("agent: ring_kib %llu is not a power of two",
			(unsigned long long)c->ring_kib);
	}
	if (!tls_agrees(c->collector, &c->tls)) {
		FZ_FAIL("agent: loaded, but collector %s and the tls group disagree", c->collector);
	}
	for (i = 0; i < c->n_ifaces; i++) {
		const struct dt_agent_iface *f = &c->ifaces[i];

		FZ_TERMINATED("agent", f->name);
		if (f->name[0] == '\0') {
			FZ_FAIL("agent: interface %u without a name", i);
		}
		if (f->role != DT_ROLE_PORT && f->role != DT_ROLE_UPLINK &&
		    f->role != DT_ROLE_GATEWAY) {
			FZ_FAIL("agent: interface %s with role %d", f->name, (int)f->role);
		}
		if (f->n_instances > DT_AGENT_MAX_INSTANCES) {
			FZ_FAIL("agent: interface %s with %u instances", f->name, f->n_instances);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(c->ifaces[j].name, f->name) == 0) {
				FZ_FAIL("agent: interface %s listed twice", f->name);
			}
		}
	}
}

static void check_collector(const struct dt_collector_cfg *c)
{
	FZ_TERMINATED("collector", c->name);
	FZ_TERMINATED("collector", c->listen);
	FZ_TERMINATED("collector", c->analyzer);
	FZ_TERMINATED("collector", c->store);
	check_tls("collector", &c->tls);
	if (!tls_agrees(c->listen, &c->tls) || !tls_agrees(c->analyzer, &c->tls)) {
		FZ_FAIL("collector: loaded, but its URLs and the tls group disagree");
	}
}

static void check_analyzer(const struct dt_analyzer_cfg *c)
{
	const struct dt_limits *l = &c->limits;
	uint32_t i;
	int who;

	FZ_TERMINATED("analyzer", c->listen);
	FZ_TERMINATED("analyzer", c->api);
	FZ_TERMINATED("analyzer", c->store);
	check_tls("analyzer", &c->tls);
	if (!tls_agrees(c->listen, &c->tls)) {
		FZ_FAIL("analyzer: loaded, but listen %s and the tls group disagree", c->listen);
	}
	if (l->budget_default > l->budget_max || l->duration_default_s > l->duration_max_s ||
	    l->rate_default_pps > l->rate_max_pps) {
		FZ_FAIL("analyzer: a default limit is above its maximum");
	}
	if (c->n_tenants == 0 || c->n_tenants > DT_TENANTS_MAX) {
		FZ_FAIL("analyzer: loaded with %u tenants", c->n_tenants);
	}
	for (i = 0; i < c->n_tenants; i++) {
		const struct dt_tenant *t = &c->tenants[i];

		FZ_TERMINATED("analyzer", t->name);
		FZ_TERMINATED("analyzer", t->token);
		if (t->name[0] == '\0' || strlen(t->token) < DT_TOKEN_MIN) {
			FZ_FAIL("analyzer: tenant %u without a name or with a short token", i);
		}
		/* Unique tokens: each authenticates as its own tenant and no other. */
		if ((who = dt_tenant_auth(c, t->token)) != (int)i) {
			FZ_FAIL("analyzer: the token of tenant %u authenticates as %d", i, who);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* large (interfaces, tenants): not on the stack */
	static struct dt_agent_cfg agent;
	static struct dt_collector_cfg collector;
	static struct dt_analyzer_cfg analyzer;
	char *err;
	int rv;

	if (has_include(data, size)) {
		return -1; /* not added to the corpus */
	}
	write_cfg(data, size);
	/* Exactly DT_ERRBUF_MAX bytes on the heap: ASan sees a write past its end. */
	if ((err = malloc(DT_ERRBUF_MAX)) == NULL) {
		FZ_FAIL("out of memory");
	}

	memset(err, 0, DT_ERRBUF_MAX);
	rv = dt_agent_cfg_load(cfg_path, &agent, err, DT_ERRBUF_MAX);
	check_result("agent", rv, err, DT_ERRBUF_MAX);
	if (rv == 0) {
		check_agent(&agent);
	}

	memset(err, 0, DT_ERRBUF_MAX);
	rv = dt_collector_cfg_load(cfg_path, &collector, err, DT_ERRBUF_MAX);
	check_result("collector", rv, err, DT_ERRBUF_MAX);
	if (rv == 0) {
		check_collector(&collector);
	}

	memset(err, 0, DT_ERRBUF_MAX);
	rv = dt_analyzer_cfg_load(cfg_path, &analyzer, err, DT_ERRBUF_MAX);
	check_result("analyzer", rv, err, DT_ERRBUF_MAX);
	if (rv == 0) {
		check_analyzer(&analyzer);
	}

	free(err);
	return 0;
}
