/* SPDX-License-Identifier: MIT */
/*
 * dt_sha256.h - SHA-256 (FIPS 180-4), for the tag of the embedded BPF object that
 * dyetrace-agent --version prints (the same digest as sha256sum of dyetrace.bpf.o).
 */
#ifndef DT_SHA256_H
#define DT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DT_SHA256_LEN 32

/* The digest of len bytes at data, into out. */
void dt_sha256(const void *data, size_t len, uint8_t out[DT_SHA256_LEN]);

/* The digest as 64 lowercase hex digits and a NUL, into hex. */
void dt_sha256_hex(const void *data, size_t len, char hex[2 * DT_SHA256_LEN + 1]);

#endif /* DT_SHA256_H */
