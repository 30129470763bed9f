/* SPDX-License-Identifier: MIT */
/*
 * dt_tuple.h - six-tuples in userspace: building task keys, parsing, printing.
 *
 * The data plane looks packets up by struct dt_tuple (bpf/dt_sample.h). Every key that
 * userspace puts into the armed-task map is built by dt_tuple_task_key(), so that the
 * padding is zero and wildcard and ICMP conventions are applied in exactly one place.
 */
#ifndef DT_TUPLE_H
#define DT_TUPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "dt_sample.h"

#define DT_TUPLE_STR_MAX 96

/*
 * Normalizes a task's tuple into the key the data plane looks up: padding zeroed, VNI
 * masked to 24 bits, ports zeroed when flags has DT_TASK_F_ANYPORT. For ICMP a task
 * without ports always gets DT_TASK_F_ANYPORT (the echo identifier is not known in
 * advance). Returns 0, or -EINVAL when the tuple cannot name a flow (zero address,
 * protocol 0, VNI over 24 bits, ports given for a protocol without ports).
 */
int dt_tuple_task_key(const struct dt_tuple *in, uint32_t *flags, struct dt_tuple *key);

/* The same key with ports cleared: what an ANYPORT task is stored under. */
void dt_tuple_anyport(const struct dt_tuple *in, struct dt_tuple *out);

/* The tuple of the reply direction: addresses and ports swapped. */
void dt_tuple_reverse(const struct dt_tuple *in, struct dt_tuple *out);

/* True when a packet's tuple t belongs to a task (key, flags). */
bool dt_tuple_match(const struct dt_tuple *key, uint32_t flags, const struct dt_tuple *t);

/* "10.0.0.1:1234 -> 10.0.0.2:80 tcp vni 100"; ICMP as "icmp id 7". Returns buf. */
const char *dt_tuple_str(const struct dt_tuple *t, uint32_t flags, char *buf, size_t len);

/* Protocol names: "tcp", "udp", "icmp" or a number 1..255. Returns 0 or -EINVAL. */
int dt_proto_parse(const char *s, uint8_t *proto);
const char *dt_proto_name(uint8_t proto, char *buf, size_t len);

/* Dotted IPv4 into network order. Returns 0 or -EINVAL. */
int dt_ipv4_parse(const char *s, uint32_t *addr);
const char *dt_ipv4_str(uint32_t addr, char *buf, size_t len);

#endif /* DT_TUPLE_H */
