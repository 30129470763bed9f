/* SPDX-License-Identifier: MIT */
/*
 * paths_fixture.h - what the report builder's tests (test_paths.c, test_paths_blind.c)
 * share: the string table and the context a report is built against, who hosts what in
 * the lab's overlay, and names interned. Included once by each test program.
 */
#ifndef DT_TEST_PATHS_FIXTURE_H
#define DT_TEST_PATHS_FIXTURE_H

#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>

#include "paths.h"

/* Names are interned; the report is built "much later" than the samples unless a test
 * says otherwise, so that nothing is in flight. */
static struct dt_strtab *strs;
static struct dt_paths_ctx ctx;

/* The node that is the NAT gateway of VNI 100 (a test may set another). */
static const char *fixture_gw = "gw";

/* Who hosts what, as the agents report it: i1 (10.100.0.1) behind h1, i2 (10.100.0.2)
 * behind h2, and fixture_gw is the NAT gateway of VNI 100 (address 0). */
static const char *lab_host_of(const void *arg, uint32_t vni, uint32_t addr)
{
	(void)arg;
	if (vni != 100) {
		return NULL;
	}
	switch (ntohl(addr)) {
	case 0x0a640001:
		return "h1";
	case 0x0a640002:
		return "h2";
	case 0:
		return fixture_gw;
	default:
		return NULL;
	}
}

/* A fresh string table and context, the report built at now_ns. */
static void fixture_setup(uint64_t now_ns)
{
	cr_assert_not_null(strs = dt_strtab_new());
	memset(&ctx, 0, sizeof(ctx));
	ctx.strs = strs;
	ctx.now_ns = now_ns;
	ctx.now_ms = 1ull << 40;
	ctx.window_ms = 1000;
	ctx.host_of = lab_host_of;
}

static void teardown(void)
{
	dt_strtab_free(strs);
}

static uint32_t name(const char *s)
{
	uint32_t idx;

	cr_assert_eq(dt_strtab_intern(strs, s, 96, &idx), 0);
	return idx;
}

#endif /* DT_TEST_PATHS_FIXTURE_H */
