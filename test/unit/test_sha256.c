/* SPDX-License-Identifier: MIT */
/*
 * SHA-256, the tag of the agent's BPF object in --version: the FIPS 180-4 examples, and
 * every length around the padding's block boundaries against a second computation that
 * feeds the same bytes from a different buffer.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dt_sha256.h"

static void check(const char *msg, size_t len, const char *want)
{
	char hex[2 * DT_SHA256_LEN + 1];

	dt_sha256_hex(msg, len, hex);
	cr_assert_str_eq(hex, want, "sha256 of %zu bytes", len);
}

Test(sha256, fips_180_examples)
{
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
	      "klmnopqrlmnopqrsmnopqrstnopqrstu",
	      112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

Test(sha256, one_million_a)
{
	size_t n = 1000000;
	char *m = malloc(n);

	cr_assert_not_null(m);
	memset(m, 'a', n);
	check(m, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(m);
}

/* 55, 56, 63, 64, 119, 120 ... bytes: the padding takes one block or two. The digest does
 * not depend on where the bytes are (an unaligned copy gives the same), and differs from
 * the digest of one byte fewer. */
Test(sha256, lengths_around_block_boundaries)
{
	static char buf[300], shifted[301];
	uint8_t a[DT_SHA256_LEN], b[DT_SHA256_LEN], prev[DT_SHA256_LEN];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 3);
	memcpy(shifted + 1, buf, sizeof(buf));
	for (size_t len = 0; len <= sizeof(buf); len++) {
		dt_sha256(buf, len, a);
		dt_sha256(shifted + 1, len, b);
		cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "length %zu: depends on alignment", len);
		if (len > 0)
			cr_assert_neq(memcmp(a, prev, sizeof(a)), 0, "length %zu: same as %zu", len,
				      len - 1);
		memcpy(prev, a, sizeof(a));
	}
}
