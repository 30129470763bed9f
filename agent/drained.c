/* SPDX-License-Identifier: MIT */
/*
 * drained.c - the count of drained ring records, in the pinned dt_drained map (drained.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "drained.h"
#include "dt_sample.h"
#include "dt_time.h"

struct dt_drained_map {
	struct dt_drained *rec;	      /* the map's one value, shared with the kernel */
	const uint64_t *consumer_pos; /* the ring's consumer page, read only */
	size_t rec_len, page_len;
};

/* A new data plane's identity: random, so that a spool never takes another's count. */
static uint64_t new_id(void)
{
	uint64_t id = 0;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id) || id == 0)
		id = dt_clock_ns(CLOCK_REALTIME) | 1;
	return id;
}

/*
 * The previous agent entered its last counted record (count) at pos[count & 1]; if the
 * ring's consumer position is still there, libbpf never released it: it is still in the
 * ring and this agent drains it again, so it was not drained yet.
 */
static void settle_unreleased(struct dt_drained *r, uint64_t consumer)
{
	if (r->count > 0 && r->pos[r->count & 1] == consumer)
		r->count--;
}

int dt_drained_open(int map_fd, int ring_fd, bool fresh, struct dt_drained_map **out)
{
	struct dt_drained_map *d = calloc(1, sizeof(*d));
	long page = sysconf(_SC_PAGESIZE);
	void *rec, *cons;

	if (!d)
		return -ENOMEM;
	d->page_len = (size_t)page;
	d->rec_len = (sizeof(struct dt_drained) + d->page_len - 1) / d->page_len * d->page_len;
	rec = mmap(NULL, d->rec_len, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	cons = mmap(NULL, d->page_len, PROT_READ, MAP_SHARED, ring_fd, 0);
	if (rec == MAP_FAILED || cons == MAP_FAILED) {
		int rv = -errno;

		if (rec != MAP_FAILED)
			munmap(rec, d->rec_len);
		if (cons != MAP_FAILED)
			munmap(cons, d->page_len);
		free(d);
		return rv;
	}
	d->rec = rec;
	d->consumer_pos = cons;
	if (fresh || d->rec->id == 0)
		*d->rec = (struct dt_drained){.id = new_id()};
	else
		settle_unreleased(d->rec, __atomic_load_n(d->consumer_pos, __ATOMIC_ACQUIRE));
	*out = d;
	return 0;
}

void dt_drained_close(struct dt_drained_map *d)
{
	if (!d)
		return;
	munmap(d->rec, d->rec_len);
	munmap((void *)d->consumer_pos, d->page_len);
	free(d);
}

void dt_drained_note(struct dt_drained_map *d)
{
	struct dt_drained *r = d->rec;
	uint64_t next = r->count + 1;

	/* The slot next selects first, then the count: it alone commits the note. */
	__atomic_store_n(&r->pos[next & 1], __atomic_load_n(d->consumer_pos, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&r->count, next, __ATOMIC_RELEASE);
}

uint64_t dt_drained_count(const struct dt_drained_map *d)
{
	return d ? __atomic_load_n(&d->rec->count, __ATOMIC_ACQUIRE) : 0;
}

uint64_t dt_drained_id(const struct dt_drained_map *d)
{
	return d ? d->rec->id : 0;
}
