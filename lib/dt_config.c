/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <libconfig.h>

#include "dt_config.h"

int dt_cfg_read(config_t *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	int rv;

	if (!f) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	fclose(f);
	if (config_read_file(cfg, path) == CONFIG_TRUE)
		return 0;
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
		/* libconfig 1.5 reads an integer without the L suffix as 32 bits. */
		dt_cfg_error(s, err, errlen, "'%s' must be between %llu and %llu (is %lld)%s", name,
			     (unsigned long long)min, (unsigned long long)max, v,
			     max > INT32_MAX && config_setting_type(s) == CONFIG_TYPE_INT
				     ? "; write values above 2147483647 with an L suffix"
				     : "");
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
