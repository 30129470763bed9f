/* SPDX-License-Identifier: MIT */
/*
 * Mutual TLS on a batch link: a sender whose certificate the CA signed is served; one
 * with a certificate from another CA is refused at the handshake, and nothing it sends
 * is stored. Certificates are made fresh by openssl for each run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "dt_ingest.h"
#include "dt_link.h"

static char dir[64];
static unsigned stored;

static int on_batch(void *arg, const struct dt_batch *b, const void *raw, size_t len)
{
	__atomic_add_fetch(&stored, 1, __ATOMIC_SEQ_CST);
	return DT_ST_OK;
}

static uint64_t last_seq(void *arg, const char *sender)
{
	return 0;
}

static void run(const char *cmd)
{
	char full[2048];

	snprintf(full, sizeof(full), "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
	cr_assert_eq(system(full), 0, "%s", cmd);
}

/* A CA, and a key and certificate it signs for name (another CA when rogue). */
static void make_certs(void)
{
	strcpy(dir, "/tmp/dt-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
	    "-subj /CN=dyetrace-test-ca");
	run("openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.pem "
	    "-days 1 -subj /CN=rogue-ca");
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = {"collector", "agent", "rogue"};
		char cmd[1024];

		snprintf(cmd, sizeof(cmd),
			 "openssl req -newkey rsa:2048 -nodes -keyout %1$s.key -out %1$s.csr "
			 "-subj /CN=%1$s && printf 'subjectAltName=DNS:%1$s\\n' > %1$s.ext && "
			 "openssl x509 -req -in %1$s.csr -CA %2$s.pem -CAkey %2$s.key "
			 "-CAcreateserial -out %1$s.pem -days 1 -extfile %1$s.ext",
			 names[i], i == 2 ? "rogue-ca" : "ca");
		run(cmd);
	}
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(tls, .init = make_certs, .fini = cleanup, .timeout = 60);

static void files(struct dt_tls_files *f, const char *name, const char *server_name)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", dir);
	snprintf(f->cert, sizeof(f->cert), "%s/%s.pem", dir, name);
	snprintf(f->key, sizeof(f->key), "%s/%s.key", dir, name);
	if (server_name)
		snprintf(f->server_name, sizeof(f->server_name), "%s", server_name);
}

static struct dt_link *send_one(const char *url, const struct dt_tls_files *tls)
{
	struct dt_wire_sample s = {.hook = DT_HOOK_PORT_IN,
				   .ts_ns = 1,
				   .tuple.proto = 1,
				   .drop_name = DT_STR_NONE,
				   .drop_where = DT_STR_NONE};
	struct dt_link_cfg lc = {.url = url,
				 .sender = "h1",
				 .heartbeat_ms = 50,
				 .timeout_ms = 300,
				 .queue_max = 4,
				 .tls = tls};
	struct dt_batch b;
	struct dt_link *l;

	memset(&b, 0, sizeof(b));
	strcpy(b.node, "h1");
	b.n_ifaces = 1;
	strcpy(b.ifaces[0], "pt1");
	b.n_samples = 1;
	b.samples = &s;
	cr_assert_eq(dt_link_start(&lc, NULL, &l), 0);
	cr_assert_eq(dt_link_send(l, &b), 0);
	return l;
}

Test(tls, a_certified_sender_is_served_a_rogue_one_refused)
{
	struct dt_ingest_ops ops = {.on_batch = on_batch, .last_seq = last_seq};
	const char *url = "tls+tcp://127.0.0.1:47411";
	struct dt_tls_files srv, good, rogue;
	struct dt_link_stats st;
	struct dt_ingest *in;
	struct dt_link *l;

	files(&srv, "collector", NULL);
	files(&good, "agent", "collector");
	files(&rogue, "rogue", "collector");
	cr_assert_eq(dt_ingest_start_tls(url, &srv, &ops, &in), 0);

	l = send_one(url, &rogue);
	nng_msleep(1500);
	dt_link_stats(l, &st);
	cr_assert_eq(st.batches_sent, 0, "a rogue certificate must not be served");
	cr_assert_eq(__atomic_load_n(&stored, __ATOMIC_SEQ_CST), 0);
	dt_link_stop(l, 0);

	l = send_one(url, &good);
	for (int i = 0; i < 500 && __atomic_load_n(&stored, __ATOMIC_SEQ_CST) == 0; i++)
		nng_msleep(10);
	cr_assert_eq(__atomic_load_n(&stored, __ATOMIC_SEQ_CST), 1);
	dt_link_stop(l, 1000);
	dt_ingest_stop(in);
}

Test(tls, url_and_configuration_must_agree)
{
	struct dt_tls_files f;
	config_setting_t *root;
	char err[256];
	config_t c;

	config_init(&c);
	cr_assert_eq(config_read_string(&c, "collector = \"tcp://h:1\";\n"), CONFIG_TRUE);
	config_set_auto_convert(&c, 0);
	root = config_root_setting(&c);
	files(&f, "agent", NULL);
	cr_assert_eq(dt_tls_check_url(root, "collector", "tls+tcp://h:1", &f, err, sizeof(err)), 0);
	cr_assert_lt(dt_tls_check_url(root, "collector", "tcp://h:1", &f, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":1: collector tcp://h:1 is not a tls+tcp:// URL"), "%s", err);
	memset(&f, 0, sizeof(f));
	cr_assert_lt(dt_tls_check_url(root, "collector", "tls+tcp://h:1", &f, err, sizeof(err)), 0);
	cr_assert_eq(dt_tls_check_url(root, "collector", "tcp://h:1", &f, err, sizeof(err)), 0);
	config_destroy(&c);
}
