/* SPDX-License-Identifier: MIT */
/*
 * The drained count (agent/drained.c) against libbpf's window: a record whose callback was
 * entered and not released is still in the ring, so it is not counted drained. Two memfds
 * stand in for the pinned dt_drained map and the ring's consumer page.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/types.h>

#include <criterion/criterion.h>

#include "drained.h"
#include "dt_sample.h"

static int map_fd, ring_fd;
static struct dt_drained *rec; /* the map's value, as the kernel would hold it */
static uint64_t *consumer;     /* the ring's consumer position, as libbpf moves it */

static void setup(void)
{
	long page = sysconf(_SC_PAGESIZE);

	map_fd = memfd_create("dt_drained", 0);
	ring_fd = memfd_create("dt_events", 0);
	cr_assert(map_fd >= 0 && ring_fd >= 0);
	cr_assert_eq(ftruncate(map_fd, page), 0);
	cr_assert_eq(ftruncate(ring_fd, page), 0);
	rec = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	consumer = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
	cr_assert(rec != MAP_FAILED && consumer != MAP_FAILED);
}

static void teardown(void)
{
	close(map_fd);
	close(ring_fd);
}

TestSuite(drained, .init = setup, .fini = teardown);

#define REC_LEN 240 /* a record and its header, as the ring lays them out */

/* libbpf's loop for one record: the callback (which notes it), then the release. */
static void drain_one(struct dt_drained_map *d, bool release)
{
	dt_drained_note(d);
	if (release)
		*consumer += REC_LEN;
}

Test(drained, a_new_data_plane_starts_at_zero_under_a_new_identity)
{
	struct dt_drained_map *d;

	rec->count = 42;
	cr_assert_eq(dt_drained_open(map_fd, ring_fd, true, &d), 0);
	cr_assert_eq(dt_drained_count(d), 0);
	cr_assert_neq(dt_drained_id(d), 0);
	dt_drained_close(d);
}

Test(drained, released_records_count_and_an_unreleased_one_does_not)
{
	struct dt_drained_map *d;
	uint64_t id;

	cr_assert_eq(dt_drained_open(map_fd, ring_fd, true, &d), 0);
	id = dt_drained_id(d);
	for (int i = 0; i < 5; i++)
		drain_one(d, true);
	drain_one(d, false); /* SIGKILL in the callback: libbpf never released it */
	cr_assert_eq(dt_drained_count(d), 6);
	dt_drained_close(d);

	cr_assert_eq(dt_drained_open(map_fd, ring_fd, false, &d), 0);
	cr_assert_eq(dt_drained_id(d), id, "the same data plane");
	cr_assert_eq(dt_drained_count(d), 5, "the sixth is still in the ring");
	drain_one(d, true); /* the next agent drains it again */
	cr_assert_eq(dt_drained_count(d), 6);
	dt_drained_close(d);

	cr_assert_eq(dt_drained_open(map_fd, ring_fd, false, &d), 0);
	cr_assert_eq(dt_drained_count(d), 6, "all released: nothing settled");
	dt_drained_close(d);
}

Test(drained, a_death_between_the_slot_and_the_count_counts_nothing_twice)
{
	struct dt_drained_map *d;

	cr_assert_eq(dt_drained_open(map_fd, ring_fd, true, &d), 0);
	for (int i = 0; i < 3; i++)
		drain_one(d, true);
	dt_drained_close(d);
	/* The fourth record's slot written, its count not yet. */
	rec->pos[(rec->count + 1) & 1] = *consumer;
	cr_assert_eq(dt_drained_open(map_fd, ring_fd, false, &d), 0);
	cr_assert_eq(dt_drained_count(d), 3);
	dt_drained_close(d);
}
