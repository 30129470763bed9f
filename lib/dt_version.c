/* SPDX-License-Identifier: MIT */
#include <bpf/libbpf.h>
#include <libconfig.h>
#include <lmdb.h>
#include <msgpack.h>
#include <nng/nng.h>

#include "dt_gitrev.h" /* generated at build time: DT_GIT_REV */
#include "dt_version.h"

#ifndef DT_VERSION
#define DT_VERSION "0.0.0"
#endif

const char *dt_git_revision(void)
{
	return DT_GIT_REV;
}

void dt_version_print(FILE *f, const char *name)
{
	int maj, min, patch;

	mdb_version(&maj, &min, &patch);
	fprintf(f, "%s %s\n", name, DT_VERSION);
	fprintf(f, "git revision: %s\n", dt_git_revision());
	fprintf(f,
		"libraries: libbpf %u.%u, nng %s, lmdb %d.%d.%d, msgpack %s, libconfig %d.%d.%d\n",
		libbpf_major_version(), libbpf_minor_version(), nng_version(), maj, min, patch,
		msgpack_version(), LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
		LIBCONFIG_VER_REVISION);
}
