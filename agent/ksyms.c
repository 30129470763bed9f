/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksyms.h"

struct ksym {
	uint64_t addr;
	char *name;
};

struct dt_ksyms {
	size_t n, cap;
	struct ksym *v;
};

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int dt_ksyms_load(const char *path, struct dt_ksyms **out)
{
	struct dt_ksyms *ks;
	char line[512];
	FILE *f;

	f = fopen(path ? path : "/proc/kallsyms", "r");
	if (!f)
		return -errno;
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		char type, name[256];
		uint64_t addr;

		if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, name) != 3)
			continue;
		if ((type != 't' && type != 'T') || addr == 0)
			continue;
		if (ks->n == ks->cap) {
			size_t cap = ks->cap ? ks->cap * 2 : 4096;
			struct ksym *v = realloc(ks->v, cap * sizeof(*v));

			if (!v)
				break;
			ks->v = v;
			ks->cap = cap;
		}
		ks->v[ks->n].addr = addr;
		ks->v[ks->n].name = strdup(name);
		if (ks->v[ks->n].name)
			ks->n++;
	}
	fclose(f);
	qsort(ks->v, ks->n, sizeof(*ks->v), ksym_cmp);
	*out = ks;
	return 0;
}

void dt_ksyms_free(struct dt_ksyms *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++)
		free(ks->v[i].name);
	free(ks->v);
	free(ks);
}

const char *dt_ksym(const struct dt_ksyms *ks, uint64_t addr, char *buf, size_t len)
{
	size_t lo = 0, hi = ks ? ks->n : 0;

	/* The last symbol at or below addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ks->v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		snprintf(buf, len, "0x%" PRIx64, addr);
	else
		snprintf(buf, len, "%s+0x%" PRIx64, ks->v[lo - 1].name, addr - ks->v[lo - 1].addr);
	return buf;
}
