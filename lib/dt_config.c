/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <libconfig.h>

#include "dt_config.h"

/*
 * libconfig 1.5 reads an integer literal without the L suffix as 32 bits and keeps only the
 * low 32 bits of a bigger one, without an error: 5000000000 becomes 705032704, a value that
 * may well pass a range check. So the text itself is scanned for such literals.
 */

/* Skips a string, a comment or a word at p; returns where the next token may start. */
static const char *skip_non_number(const char *p, unsigned *line)
{
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (*p == '\n')
				(*line)++;
		}
		return *p ? p + 1 : p;
	}
	if (*p == '#' || (p[0] == '/' && p[1] == '/'))
		return p + strcspn(p, "\n");
	if (p[0] == '/' && p[1] == '*') {
		for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
			if (*p == '\n')
				(*line)++;
		return *p ? p + 2 : p;
	}
	if (isalpha((unsigned char)*p) || *p == '*' || *p == '_' || *p == '@') {
		while (isalnum((unsigned char)*p) || strchr("*_-@", *p))
			p++;
		return p;
	}
	if (*p == '\n')
		(*line)++;
	return p + 1;
}

/*
 * Checks the integer literal at p (a digit, or a sign before one); *end is set past it.
 * Returns 0, or -EINVAL with err filled when it has no L suffix and does not fit 32 bits.
 */
static int check_literal(const char *file, unsigned line, const char *p, const char **end,
			 char *err, size_t errlen)
{
	const char *start = p;
	unsigned long long mag;
	bool neg = *p == '-';
	size_t len;

	if (*p == '-' || *p == '+')
		p++;
	errno = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		mag = strtoull(p, (char **)end, 16);
	else
		mag = strtoull(p, (char **)end, 10);
	if (**end == '.' || **end == 'e' || **end == 'E') { /* a float: not ours */
		strtod(start, (char **)end);
		return 0;
	}
	if (**end == 'L') {
		while (**end == 'L')
			(*end)++;
		return 0;
	}
	if (errno != ERANGE && (neg ? mag <= 2147483648ull : mag <= INT32_MAX))
		return 0;
	len = (size_t)(*end - start);
	snprintf(err, errlen,
		 "%s:%u: %.*s does not fit 32 bits and would be read wrapped; write %.*sL "
		 "(libconfig's 64-bit integer)",
		 file, line, (int)len, start, (int)len, start);
	return -EINVAL;
}

/* Refuses an integer literal of file that libconfig read wrapped. Returns 0 or -EINVAL. */
static int check_wrapped_literals(const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	char *text = NULL;
	size_t size = 0;
	unsigned line = 1;
	int rv = 0;

	if (!f)
		return 0; /* read a moment ago; gone now: nothing libconfig kept to check */
	if (getdelim(&text, &size, '\0', f) < 0) {
		free(text);
		fclose(f);
		return 0;
	}
	fclose(f);
	for (const char *p = text; *p && rv == 0;) {
		if (isdigit((unsigned char)*p) ||
		    ((*p == '-' || *p == '+') && isdigit((unsigned char)p[1])))
			rv = check_literal(file, line, p, &p, err, errlen);
		else
			p = skip_non_number(p, &line);
	}
	free(text);
	return rv;
}

/* Collects in files[*n] the distinct source files of s and its members (@include). */
static void source_files(const config_setting_t *s, const char **files, unsigned *n, unsigned max)
{
	const char *file = config_setting_source_file(s);
	unsigned i;

	for (i = 0; file && i < *n && files[i] != file; i++)
		;
	if (file && i == *n && *n < max)
		files[(*n)++] = file;
	for (i = 0; config_setting_is_aggregate(s) && i < (unsigned)config_setting_length(s); i++)
		source_files(config_setting_get_elem(s, i), files, n, max);
}

int dt_cfg_read(config_t *cfg, const char *path, char *err, size_t errlen)
{
	const char *files[16]; /* the file and what it includes */
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int rv;

	if (!f) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	fclose(f);
	if (config_read_file(cfg, path) == CONFIG_TRUE) {
		source_files(config_root_setting(cfg), files, &n, sizeof(files) / sizeof(files[0]));
		for (unsigned i = 0; i < n; i++)
			if (check_wrapped_literals(files[i], err, errlen))
				return -EINVAL;
		return 0;
	}
	snprintf(err, errlen, "%s:%d: %s", config_error_file(cfg) ? config_error_file(cfg) : path,
		 config_error_line(cfg), config_error_text(cfg));
	return -EINVAL;
}

void dt_cfg_error(const config_setting_t *s, char *err, size_t errlen, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	unsigned int line = config_setting_source_line(s);
	char what[DT_ERRBUF_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!file)
		file = "(config)";
	if (line)
		snprintf(err, errlen, "%s:%u: %s", file, line, what);
	else
		snprintf(err, errlen, "%s: %s", file, what);
}

int dt_cfg_string(const config_setting_t *g, const char *name, char *out, size_t outlen, char *err,
		  size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);
	const char *v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		dt_cfg_error(s, err, errlen, "'%s' must be a string", name);
		return -EINVAL;
	}
	v = config_setting_get_string(s);
	if (strlen(v) == 0 || strlen(v) >= outlen) {
		dt_cfg_error(s, err, errlen, "'%s' must be 1 to %zu characters long", name,
			     outlen - 1);
		return -EINVAL;
	}
	strcpy(out, v);
	return 1;
}

int dt_cfg_uint(const config_setting_t *g, const char *name, uint64_t min, uint64_t max,
		uint64_t *out, char *err, size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		dt_cfg_error(s, err, errlen, "'%s' must be an integer", name);
		return -EINVAL;
	}
	v = config_setting_get_int64(s);
	if (v < 0 || (uint64_t)v < min || (uint64_t)v > max) {
		/* Not wrapped: dt_cfg_read() refused the literals libconfig would wrap. */
		dt_cfg_error(s, err, errlen, "'%s' must be between %llu and %llu (is %lld)", name,
			     (unsigned long long)min, (unsigned long long)max, v);
		return -EINVAL;
	}
	*out = (uint64_t)v;
	return 1;
}

int dt_cfg_known(const config_setting_t *g, const char *const *known, char *err, size_t errlen)
{
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		const char *const *k;

		if (!name)
			continue;
		for (k = known; *k; k++)
			if (strcmp(*k, name) == 0)
				break;
		if (!*k) {
			dt_cfg_error(s, err, errlen, "unknown setting '%s'", name);
			return -EINVAL;
		}
	}
	return 0;
}
