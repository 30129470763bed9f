/* SPDX-License-Identifier: MIT */
/*
 * The manual pages document the configuration loaders exactly. Each dyetrace-*.conf(5)
 * page is generated at build time from its daemon's --help (packaging/manpage.sh); here,
 * every setting the loader accepts (the same NULL-terminated lists the loader checks
 * names against) must appear as "name =" in the page's SETTINGS, and every "name =" there
 * must be a setting the loader accepts. A setting added to a loader without a line in the
 * help text, or a help line for a setting that does not exist, fails.
 *
 * The pages are read from ../man next to this executable (build/bin -> build/man), or
 * from $DT_MAN_DIR.
 */
#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent.h"
#include "analyzer.h"
#include "collector.h"
#include "dt_tls.h"

/* The text of page NAME (e.g. "dyetrace-agent.conf.5"); the caller frees it. */
static char *read_page(const char *name)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	const char *dir = getenv("DT_MAN_DIR");
	ssize_t n;
	char *buf;
	FILE *f;
	long len;

	if (!dir) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		cr_assert_gt(n, 0, "readlink /proc/self/exe");
		exe[n] = '\0';
		snprintf(path, sizeof(path), "%s/../man/%s", dirname(exe), name);
	} else {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	}
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: cannot open (the build makes it: cmake --build)", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* The SETTINGS section of a page (a pointer into it, cut at the next section). */
static char *settings(char *page, const char *name)
{
	char *s = strstr(page, "\n.SH SETTINGS\n"), *end;

	cr_assert_not_null(s, "%s has no SETTINGS section", name);
	s += strlen("\n.SH SETTINGS\n");
	end = strstr(s, "\n.SH ");
	if (end)
		*end = '\0';
	return s;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Whether text has key as a whole word followed by blanks and '=' ("key = ..."). */
static bool has_setting(const char *text, const char *key)
{
	size_t len = strlen(key);

	for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
		const char *q = p + len;

		if (p > text && word_char(p[-1]))
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '=' && q[1] != '=')
			return true;
	}
	return false;
}

static bool in_lists(const char *key, const char *const *const *lists)
{
	for (; *lists; lists++)
		for (const char *const *k = *lists; *k; k++)
			if (strcmp(*k, key) == 0)
				return true;
	return false;
}

/* Both directions for page name and the loader's lists (NULL-terminated). */
static void check_page(const char *name, const char *const *const *lists)
{
	char *page = read_page(name), *text = settings(page, name);
	int missing = 0, unknown = 0;

	for (const char *const *const *l = lists; *l; l++)
		for (const char *const *k = *l; *k; k++)
			if (!has_setting(text, *k)) {
				cr_log_error("%s: setting '%s' is accepted but not documented",
					     name, *k);
				missing++;
			}
	for (const char *p = text; *p; p++) {
		char key[64];
		size_t n = 0;
		const char *q;

		if (!(islower((unsigned char)*p) || *p == '_') || (p > text && word_char(p[-1])))
			continue;
		while (word_char(p[n]) && n < sizeof(key) - 1) {
			key[n] = p[n];
			n++;
		}
		key[n] = '\0';
		for (q = p + n; *q == ' '; q++)
			;
		if (*q == '=' && q[1] != '=' && !in_lists(key, lists)) {
			cr_log_error(
				"%s: '%s =' is documented but not a setting the loader accepts",
				name, key);
			unknown++;
		}
		p += n ? n - 1 : 0;
	}
	free(page);
	cr_expect_eq(missing, 0, "%s: %d accepted settings not documented (see the log)", name,
		     missing);
	cr_expect_eq(unknown, 0, "%s: %d documented settings not accepted (see the log)", name,
		     unknown);
}

Test(manpages, agent_conf_documents_every_setting)
{
	const char *const *const lists[] = {dt_agent_cfg_keys, dt_agent_iface_keys, dt_tls_cfg_keys,
					    NULL};

	check_page("dyetrace-agent.conf.5", lists);
}

Test(manpages, collector_conf_documents_every_setting)
{
	const char *const *const lists[] = {dt_collector_cfg_keys, dt_tls_cfg_keys, NULL};

	check_page("dyetrace-collector.conf.5", lists);
}

Test(manpages, analyzer_conf_documents_every_setting)
{
	const char *const *const lists[] = {dt_analyzer_cfg_keys, dt_analyzer_limits_keys,
					    dt_analyzer_tenant_keys, dt_tls_cfg_keys, NULL};

	check_page("dyetrace-analyzer.conf.5", lists);
}

/* The check itself: a key missing from a text, or one that is only a prefix, is caught. */
Test(manpages, has_setting_matches_whole_names)
{
	cr_assert(has_setting("  queue_max = 64;", "queue_max"));
	cr_assert(has_setting("x; queue_max=64;", "queue_max"));
	cr_assert_not(has_setting("  queue_max_x = 64;", "queue_max"));
	cr_assert_not(has_setting("  my_queue_max = 64;", "queue_max"));
	cr_assert_not(has_setting("  queue_max is 64", "queue_max"));
	cr_assert_not(has_setting("  queue_max == 64", "queue_max"));
}

/* Every page exists, names itself with a whatis line and points to its companions. */
Test(manpages, every_page_has_name_and_see_also)
{
	static const char *const pages[][2] = {
		{"dyetrace.1", "dyetrace \\- "},
		{"dyetrace-agent.8", "dyetrace\\-agent \\- "},
		{"dyetrace-collector.8", "dyetrace\\-collector \\- "},
		{"dyetrace-analyzer.8", "dyetrace\\-analyzer \\- "},
		{"dyetrace-agent.conf.5", "dyetrace\\-agent.conf \\- "},
		{"dyetrace-collector.conf.5", "dyetrace\\-collector.conf \\- "},
		{"dyetrace-analyzer.conf.5", "dyetrace\\-analyzer.conf \\- "},
	};

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		char *page = read_page(pages[i][0]), *name = strstr(page, "\n.SH NAME\n");

		cr_expect_not_null(name, "%s: no NAME section", pages[i][0]);
		if (name)
			cr_expect(strncmp(name + strlen("\n.SH NAME\n"), pages[i][1],
					  strlen(pages[i][1])) == 0,
				  "%s: NAME does not start with \"%s\"", pages[i][0], pages[i][1]);
		cr_expect_not_null(strstr(page, "\n.SH SEE ALSO\n"), "%s: no SEE ALSO",
				   pages[i][0]);
		free(page);
	}
}
