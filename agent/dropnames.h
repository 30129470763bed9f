/* SPDX-License-Identifier: MIT */
/*
 * dropnames.h - names of the kernel's drop reasons, from the running kernel's BTF.
 *
 * Reason values are not stable across kernel versions, so no table is compiled in: the
 * names come from `enum skb_drop_reason` in /sys/kernel/btf/vmlinux ("NETFILTER_DROP"
 * for SKB_DROP_REASON_NETFILTER_DROP). A subsystem reason (value >> 16 != 0, see
 * `enum skb_drop_reason_subsys`) is looked up in the BTF of the loaded modules (an enum
 * with a "drop_reason" name holding that exact value); failing that it is named
 * "<SUBSYSTEM>:<code>". An unknown value is named "UNKNOWN_<value>".
 */
#ifndef DT_DROPNAMES_H
#define DT_DROPNAMES_H

#include <stddef.h>
#include <stdint.h>

struct dt_dropnames;

/* Loads the names; returns 0 or -errno (then every name is "UNKNOWN_<value>"). */
int dt_dropnames_open(struct dt_dropnames **out);
void dt_dropnames_close(struct dt_dropnames *dn);

/* The name of reason into buf (at most len bytes with the NUL). Returns buf. */
const char *dt_dropname(struct dt_dropnames *dn, uint32_t reason, char *buf, size_t len);

#endif /* DT_DROPNAMES_H */
