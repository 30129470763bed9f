/* SPDX-License-Identifier: MIT */
/*
 * ksyms.h - kernel text addresses to "symbol+0xoffset", from /proc/kallsyms.
 *
 * Loaded on first use (drops are rare; most agents never need it). Addresses read as 0
 * when kptr_restrict hides them, and every lookup then answers "0x<address>".
 */
#ifndef DT_KSYMS_H
#define DT_KSYMS_H

#include <stddef.h>
#include <stdint.h>

struct dt_ksyms;

/* Parses a kallsyms-format file (path NULL: /proc/kallsyms). Returns 0 or -errno. */
int dt_ksyms_load(const char *path, struct dt_ksyms **out);
void dt_ksyms_free(struct dt_ksyms *ks);

/* "nf_hook_slow+0x8c" (or "0xffff..." when no symbol covers addr) into buf. Returns buf. */
const char *dt_ksym(const struct dt_ksyms *ks, uint64_t addr, char *buf, size_t len);

#endif /* DT_KSYMS_H */
