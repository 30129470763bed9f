/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>

#include "dropnames.h"

#define SUBSYS_SHIFT 16

struct dt_dropnames {
	struct btf *vmlinux;
	const struct btf_type *core;   /* enum skb_drop_reason */
	const struct btf_type *subsys; /* enum skb_drop_reason_subsys */
};

static const struct btf_type *find_enum(const struct btf *btf, const char *name)
{
	int id = btf__find_by_name_kind(btf, name, BTF_KIND_ENUM);

	return id > 0 ? btf__type_by_id(btf, id) : NULL;
}

/* The name of the enumerator of t with value v, or NULL. */
static const char *enum_name(const struct btf *btf, const struct btf_type *t, uint32_t v)
{
	const struct btf_enum *e = btf_enum(t);

	for (int i = 0; i < btf_vlen(t); i++)
		if ((uint32_t)e[i].val == v)
			return btf__name_by_offset(btf, e[i].name_off);
	return NULL;
}

static const char *strip(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(name, prefix, n) == 0 ? name + n : name;
}

int dt_dropnames_open(struct dt_dropnames **out)
{
	struct dt_dropnames *dn = calloc(1, sizeof(*dn));

	if (!dn)
		return -ENOMEM;
	*out = dn;
	dn->vmlinux = btf__load_vmlinux_btf();
	if (!dn->vmlinux)
		return -errno;
	dn->core = find_enum(dn->vmlinux, "skb_drop_reason");
	dn->subsys = find_enum(dn->vmlinux, "skb_drop_reason_subsys");
	return dn->core ? 0 : -ENOENT;
}

void dt_dropnames_close(struct dt_dropnames *dn)
{
	if (!dn)
		return;
	btf__free(dn->vmlinux);
	free(dn);
}

/* Searches the BTF of loaded modules for a *drop_reason* enum holding value. */
static int module_name(struct dt_dropnames *dn, uint32_t value, char *buf, size_t len)
{
	DIR *d = opendir("/sys/kernel/btf");
	struct dirent *de;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char path[512];
		struct btf *btf;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "vmlinux") == 0)
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", de->d_name);
		btf = btf__parse_split(path, dn->vmlinux);
		if (!btf)
			continue;
		for (unsigned id = btf__type_cnt(dn->vmlinux); !found && id < btf__type_cnt(btf);
		     id++) {
			const struct btf_type *t = btf__type_by_id(btf, id);
			const char *tn, *n;

			if (!btf_is_enum(t))
				continue;
			tn = btf__name_by_offset(btf, t->name_off);
			if (!tn || !strstr(tn, "drop_reason"))
				continue;
			if ((n = enum_name(btf, t, value))) {
				snprintf(buf, len, "%s", n);
				found = 1;
			}
		}
		btf__free(btf);
	}
	closedir(d);
	return found;
}

const char *dt_dropname(struct dt_dropnames *dn, uint32_t reason, char *buf, size_t len)
{
	uint32_t subsys = reason >> SUBSYS_SHIFT;
	const char *n = NULL;

	if (dn && dn->core && subsys == 0)
		n = enum_name(dn->vmlinux, dn->core, reason);
	if (n) {
		snprintf(buf, len, "%s", strip(strip(n, "SKB_DROP_REASON_"), "SKB_"));
		return buf;
	}
	if (dn && subsys != 0) {
		const char *s = dn->subsys ? enum_name(dn->vmlinux, dn->subsys, subsys) : NULL;

		if (module_name(dn, reason, buf, len))
			return buf;
		if (s) {
			snprintf(buf, len, "%s:%u", strip(s, "SKB_DROP_REASON_SUBSYS_"),
				 reason & ((1u << SUBSYS_SHIFT) - 1));
			return buf;
		}
	}
	snprintf(buf, len, "UNKNOWN_%u", reason);
	return buf;
}
