// SPDX-License-Identifier: MIT
/* strtab.c - interned strings (see strtab.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strtab.h"

struct dt_strtab {
	char **v; /* v[i]: the string of index i, malloc'd */
	uint32_t n, cap;
	uint32_t *slots;  /* hash slots: index + 1, 0 when empty */
	uint32_t n_slots; /* a power of two, at least 2 * n */
};

static uint32_t hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The slot that holds s, or the empty slot where it would go. */
static uint32_t *find_slot(const struct dt_strtab *t, const char *s, size_t len)
{
	uint32_t mask = t->n_slots - 1;
	uint32_t i = hash(s, len) & mask;

	for (;;) {
		uint32_t *slot = &t->slots[i];

		if (*slot == 0) {
			return slot;
		}
		if (strncmp(t->v[*slot - 1], s, len) == 0 && t->v[*slot - 1][len] == '\0') {
			return slot;
		}
		i = (i + 1) & mask;
	}
}

static int grow_slots(struct dt_strtab *t)
{
	uint32_t n_slots = t->n_slots ? t->n_slots * 2 : 64;
	uint32_t *old = t->slots, old_n = t->n_slots;
	uint32_t i;

	t->slots = calloc(n_slots, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->n_slots = n_slots;
	for (i = 0; i < old_n; i++) {
		if (old[i] != 0) {
			const char *s = t->v[old[i] - 1];

			*find_slot(t, s, strlen(s)) = old[i];
		}
	}
	free(old);
	return 0;
}

struct dt_strtab *dt_strtab_new(void)
{
	struct dt_strtab *t = calloc(1, sizeof(*t));
	uint32_t idx;

	if (t && dt_strtab_intern(t, "", 1, &idx) != 0) {
		dt_strtab_free(t);
		return NULL;
	}
	return t;
}

void dt_strtab_free(struct dt_strtab *t)
{
	if (!t) {
		return;
	}
	for (uint32_t i = 0; i < t->n; i++) {
		free(t->v[i]);
	}
	free(t->v);
	free(t->slots);
	free(t);
}

uint32_t dt_strtab_count(const struct dt_strtab *t)
{
	return t->n;
}

int dt_strtab_intern(struct dt_strtab *t, const char *s, size_t max, uint32_t *idx)
{
	size_t len = strnlen(s, max);
	uint32_t *slot;
	char *copy;
	int rv;

	*idx = DT_STRTAB_NONE;
	if ((uint64_t)(t->n + 1) * 2 > t->n_slots && (rv = grow_slots(t)) != 0) {
		return rv;
	}
	slot = find_slot(t, s, len);
	if (*slot != 0) {
		*idx = *slot - 1;
		return 0;
	}
	if (t->n >= DT_STRTAB_MAX) {
		return -ENOSPC;
	}
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		char **v = realloc(t->v, cap * sizeof(*v));

		if (!v) {
			return -ENOMEM;
		}
		t->v = v;
		t->cap = cap;
	}
	copy = malloc(len + 1);
	if (!copy) {
		return -ENOMEM;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	t->v[t->n] = copy;
	*slot = ++t->n;
	*idx = t->n - 1;
	return 0;
}

const char *dt_strtab_get(const struct dt_strtab *t, uint32_t idx)
{
	return idx < t->n ? t->v[idx] : "";
}
