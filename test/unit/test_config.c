/* SPDX-License-Identifier: MIT */
/* Configuration loading: good files load, bad lines are named as file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>

#include "agent.h"
#include "analyzer.h"
#include "collector.h"

static char path[64];

static const char *write_cfg(const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/dt-test-cfg-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void cleanup(void)
{
	if (path[0])
		unlink(path);
}

TestSuite(config, .fini = cleanup);

Test(config, agent_good_file)
{
	struct dt_agent_cfg cfg;
	char err[DT_ERRBUF_MAX] = "";

	write_cfg("node = \"h1\";\ncollector = \"tcp://10.0.0.1:7400\";\n"
		  "interfaces = ( { name = \"pt1\"; role = \"port\"; vni = 100;\n"
		  "  instances = [ \"10.100.0.1\", \"10.100.0.9\" ]; },\n"
		  "  { name = \"ul0\"; role = \"uplink\"; } );\nbatch_max_samples = 512;\n");
	cr_assert_eq(dt_agent_cfg_load(path, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.node, "h1");
	cr_assert_eq(cfg.n_ifaces, 2);
	cr_assert_eq(cfg.ifaces[0].role, DT_ROLE_PORT);
	cr_assert_eq(cfg.ifaces[0].vni, 100);
	cr_assert_eq(cfg.ifaces[0].n_instances, 2);
	cr_assert_eq(cfg.ifaces[0].instances[1], htonl(0x0a640009));
	cr_assert_eq(cfg.ifaces[1].role, DT_ROLE_UPLINK);
	cr_assert_eq(cfg.batch_max_samples, 512);
	cr_assert_eq(cfg.heartbeat_ms, dt_agent_cfg_defaults.heartbeat_ms);
	cr_assert_eq(cfg.task_map_entries, DT_MAX_TASKS, "the task map's default size");
	write_cfg("node = \"h1\";\ntask_map_entries = 3;\n"
		  "interfaces = ( { name = \"ul0\"; role = \"uplink\"; } );\n");
	cr_assert_eq(dt_agent_cfg_load(path, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.task_map_entries, 3);
	cr_assert_eq(cfg.attach, DT_ATTACH_AUTO, "no 'attach': tcx where the kernel has it");
}

Test(config, agent_attach_modes)
{
	static const struct {
		const char *name;
		enum dt_attach_mode mode;
	} modes[] = {
		{"auto", DT_ATTACH_AUTO}, {"tcx", DT_ATTACH_TCX}, {"clsact", DT_ATTACH_CLSACT}};
	char text[256], err[DT_ERRBUF_MAX] = "";
	struct dt_agent_cfg cfg;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(text, sizeof(text),
			 "node = \"h1\";\nattach = \"%s\";\n"
			 "interfaces = ( { name = \"u\"; role = \"uplink\"; } );\n",
			 modes[i].name);
		write_cfg(text);
		cr_assert_eq(dt_agent_cfg_load(path, &cfg, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(cfg.attach, modes[i].mode, "attach = \"%s\"", modes[i].name);
		cr_assert_str_eq(dt_attach_mode_name(cfg.attach), modes[i].name);
	}
}

/* Each bad file must fail with "path:LINE: <needle>". */
static void expect_error(const char *text, int line, const char *needle)
{
	struct dt_agent_cfg cfg;
	char err[DT_ERRBUF_MAX] = "", prefix[128];

	write_cfg(text);
	cr_assert_lt(dt_agent_cfg_load(path, &cfg, err, sizeof(err)), 0);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "got '%s', want prefix '%s'", err,
		  prefix);
	cr_assert(strstr(err, needle), "got '%s', want '%s'", err, needle);
}

Test(config, agent_errors_name_file_and_line)
{
	expect_error("node = \"h1\";\ninterfaces = ( { name = \"pt1\"; role = \"port\"; } );\n", 2,
		     "needs a 'vni'");
	expect_error("node = \"h1\";\n\ninterfaces = ( { name = \"pt1\"; role = \"bridge\"; } );\n",
		     3, "role must be");
	expect_error(
		"node = \"h1\";\nheartbeat_ms = \"fast\";\ninterfaces = ( { name = \"u\"; role = \"uplink\"; } );\n",
		2, "must be an integer");
	expect_error("node = \"h1\";\nhartbeat_ms = 5;\n", 2, "unknown setting 'hartbeat_ms'");
	expect_error("node = \"h1\";\nbatch_delay_ms = = 5;\n", 2, "syntax error");
	expect_error("node = \"h1\";\ninterfaces = ( { name = \"a\"; role = \"uplink\"; },\n"
		     "{ name = \"a\"; role = \"uplink\"; } );\n",
		     3, "listed twice");
	expect_error("node = \"h1\";\ninterfaces = ( { name = \"u\"; role = \"uplink\";\n"
		     " instances = [ \"10.0.0.1\" ]; } );\n",
		     3, "only a port has 'instances'");
	expect_error("node = \"h1\";\ninterfaces = ( { name = \"p\"; role = \"port\"; vni = 1;\n"
		     " instances = [ \"10.0.0.300\" ]; } );\n",
		     3, "instance 1 is not an IPv4");
	expect_error(
		"node = \"h1\";\nring_kib = 3000;\ninterfaces = ( { name = \"u\"; role = \"uplink\"; } );\n",
		2, "power of two");
	expect_error("node = \"h1\";\ninterfaces = ( { name = \"u\"; role = \"uplink\"; } );\n"
		     "task_map_entries = 0;\n",
		     3, "task_map_entries");
	expect_error("node = \"h1\";\ntask_map_entries = 65537;\n"
		     "interfaces = ( { name = \"u\"; role = \"uplink\"; } );\n",
		     2, "65536");
	expect_error("node = \"h1\";\n\nattach = \"tc\";\n"
		     "interfaces = ( { name = \"u\"; role = \"uplink\"; } );\n",
		     3, "'attach' must be \"auto\", \"tcx\" or \"clsact\"");
}

Test(config, agent_missing_file_is_an_error)
{
	struct dt_agent_cfg cfg;
	char err[DT_ERRBUF_MAX] = "";

	cr_assert_lt(dt_agent_cfg_load("/nonexistent/agent.conf", &cfg, err, sizeof(err)), 0);
	cr_assert(strstr(err, "/nonexistent/agent.conf"), "%s", err);
}

Test(config, collector_and_analyzer)
{
	struct dt_collector_cfg cc;
	struct dt_analyzer_cfg ac;
	char err[DT_ERRBUF_MAX] = "";

	write_cfg("name = \"c1\";\nlisten = \"tcp://127.0.0.1:9\";\nstore = \"/tmp/x\";\n");
	cr_assert_eq(dt_collector_cfg_load(path, &cc, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cc.name, "c1");
	cr_assert_str_eq(cc.store, "/tmp/x");
	write_cfg("listen = \"tcp://127.0.0.1:9\";\napi = 5;\n");
	cr_assert_lt(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":2: 'api' must be a string"), "%s", err);
}

/*
 * libconfig reads an integer without the L suffix as 32 bits and wraps a bigger one
 * silently (4294967808 would be 512, a legal batch size): such a literal is refused with
 * its line and the fix, whatever setting it belongs to.
 */
Test(config, integers_that_would_wrap_are_refused_with_the_fix)
{
	expect_error(
		"node = \"h1\";\n# 9999999999 in a comment is fine\n"
		"batch_max_samples = 4294967808;\n",
		3, "4294967808 does not fit 32 bits and would be read wrapped; write 4294967808L");
	expect_error("node = \"h1\";\nheartbeat_ms = 0x100000200;\n", 2, "write 0x100000200L");
	expect_error("node = \"h1\";\n/* a\n b */ heartbeat_ms = -2147483649;\n", 3,
		     "write -2147483649L");
	expect_error("node = \"h1\";\nheartbeat_ms = 99999999999999999999999;\n", 2,
		     "write 99999999999999999999999L");
}

static const char *const tenant_line =
	"tenants = ( { name = \"t\"; token = \"0123456789abcdef-1234\"; } );\n";

Test(config, integers_with_the_L_suffix_are_read_as_64_bits)
{
	struct dt_analyzer_cfg ac;
	char err[DT_ERRBUF_MAX] = "", text[512];

	/* Near the bounds of 32 bits without the suffix, and in strings, nothing is refused. */
	snprintf(text, sizeof(text),
		 "%sapi = \"ipc:///tmp/x-5000000000.sock\";\n"
		 "limits = { budget_max = 4000000000L; rate_max_pps = 2147483647; };\n",
		 tenant_line);
	write_cfg(text);
	cr_assert_eq(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ac.limits.budget_max, 4000000000ull);
	cr_assert_eq(ac.limits.rate_max_pps, 2147483647ull);
	/* With the suffix, the value is exact, and its range is checked as usual. */
	snprintf(text, sizeof(text), "%slimits = {\n budget_max = 5000000000L; };\n", tenant_line);
	write_cfg(text);
	cr_assert_lt(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":3: 'budget_max' must be between 1 and 4294967295 (is 5000000000)"),
		  "%s", err);
	/* Without it, the fix is named before the range. */
	snprintf(text, sizeof(text), "%slimits = {\n budget_max = 5000000000; };\n", tenant_line);
	write_cfg(text);
	cr_assert_lt(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":3: 5000000000 does not fit 32 bits") &&
			  strstr(err, "write 5000000000L"),
		  "%s", err);
}

/* retention_s and report_retention_s: defaults, values, and a report kept no shorter than
 * its task in memory. */
Test(config, retention)
{
	struct dt_analyzer_cfg ac;
	char err[DT_ERRBUF_MAX] = "", text[512];

	write_cfg(tenant_line);
	cr_assert_eq(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ac.retention_s, 86400);
	cr_assert_eq(ac.report_retention_s, 2592000);
	snprintf(text, sizeof(text), "%sretention_s = 60;\nreport_retention_s = 120;\n",
		 tenant_line);
	write_cfg(text);
	cr_assert_eq(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ac.retention_s, 60);
	cr_assert_eq(ac.report_retention_s, 120);
	snprintf(text, sizeof(text), "%sretention_s = 600;\nreport_retention_s = 60;\n",
		 tenant_line);
	write_cfg(text);
	cr_assert_lt(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":3: report_retention_s (60) is below retention_s (600)"), "%s", err);
	snprintf(text, sizeof(text), "%sretention_s = 0;\n", tenant_line);
	write_cfg(text);
	cr_assert_lt(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":2: 'retention_s' must be between 1"), "%s", err);
}

Test(config, api_group_must_exist)
{
	struct dt_analyzer_cfg ac;
	char err[DT_ERRBUF_MAX] = "", text[512];

	snprintf(text, sizeof(text), "%s", tenant_line);
	write_cfg(text);
	cr_assert_eq(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ac.api_gid, (gid_t)-1, "no api_group: the analyzer's own group");
	snprintf(text, sizeof(text), "%sapi_group = \"root\";\n", tenant_line);
	write_cfg(text);
	cr_assert_eq(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(ac.api_group, "root");
	cr_assert_eq(ac.api_gid, 0);
	snprintf(text, sizeof(text), "%s\napi_group = \"dt-no-such-group\";\n", tenant_line);
	write_cfg(text);
	cr_assert_lt(dt_analyzer_cfg_load(path, &ac, err, sizeof(err)), 0);
	cr_assert(strstr(err, ":3: api_group: no group named 'dt-no-such-group'"), "%s", err);
}
