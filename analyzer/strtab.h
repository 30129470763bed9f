/* SPDX-License-Identifier: MIT */
/*
 * strtab.h - the analyzer's interned strings: node names, interface names, drop reason
 * names and kernel locations.
 *
 * Observations are kept for the life of a task, millions of them; each used to carry its
 * node and interface names inline (80 bytes). A handful of distinct names covers them
 * all, so an observation now stores 32-bit indices into one table owned by the analyzer,
 * and names are resolved only when a report is built.
 *
 * Interning the same string twice gives the same index; indices never change and strings
 * are never removed, so an index stays valid until dt_strtab_free(). Index 0 is the empty
 * string. Lookup is a hash (FNV-1a, open addressing), O(1) expected.
 *
 * Not thread-safe; the analyzer serializes access with its own lock.
 */
#ifndef DT_STRTAB_H
#define DT_STRTAB_H

#include <stddef.h>
#include <stdint.h>

/* An index that names no string; dt_strtab_get() resolves it to "". */
#define DT_STRTAB_NONE UINT32_MAX

/* At most this many distinct strings (a bound against a peer that invents names). */
#define DT_STRTAB_MAX (1u << 22)

struct dt_strtab; /* strtab.c */

/* A new table holding "" at index 0, or NULL without memory. */
struct dt_strtab *dt_strtab_new(void);

/* Frees t (NULL: nothing) and every string it holds. */
void dt_strtab_free(struct dt_strtab *t);

/* How many strings t holds: indices 0 .. count-1. */
uint32_t dt_strtab_count(const struct dt_strtab *t);

/*
 * Interns the first max bytes of s (up to its NUL) and stores its index in *idx.
 * Returns 0, -ENOMEM, or -ENOSPC when the table holds DT_STRTAB_MAX strings already
 * (then *idx is DT_STRTAB_NONE).
 */
int dt_strtab_intern(struct dt_strtab *t, const char *s, size_t max, uint32_t *idx);

/* The string of idx; "" for DT_STRTAB_NONE or an index the table does not hold. Valid
 * until dt_strtab_free(). */
const char *dt_strtab_get(const struct dt_strtab *t, uint32_t idx);

#endif /* DT_STRTAB_H */
