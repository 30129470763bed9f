/* SPDX-License-Identifier: MIT */
/*
 * dt_config.h - small helpers over libconfig shared by the daemons' config loaders.
 *
 * Every error is reported as "file:line: what" (libconfig knows the line of each
 * setting), written into the caller's buffer so that the daemon prints it and exits.
 */
#ifndef DT_CONFIG_H
#define DT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

#define DT_ERRBUF_MAX 512

/* Reads path into cfg. On a syntax or I/O error fills err with "file:line: what" and
 * returns -EINVAL (or -errno when the file cannot be read). */
int dt_cfg_read(config_t *cfg, const char *path, char *err, size_t errlen);

/* Formats "file:line: what" for setting s (the root's file when s has no line). */
void dt_cfg_error(const config_setting_t *s, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Typed look-ups of a member of group g. Each returns 0 when the member is absent (the
 * output keeps its default), 1 when it was read, and -EINVAL with err filled when it is
 * present but of the wrong type or out of range.
 */
int dt_cfg_string(const config_setting_t *g, const char *name, char *out, size_t outlen, char *err,
		  size_t errlen);
int dt_cfg_uint(const config_setting_t *g, const char *name, uint64_t min, uint64_t max,
		uint64_t *out, char *err, size_t errlen);

/* Refuses members of g not in the NULL-terminated list known (catches typos). */
int dt_cfg_known(const config_setting_t *g, const char *const *known, char *err, size_t errlen);

#endif /* DT_CONFIG_H */
