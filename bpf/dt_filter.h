/* SPDX-License-Identifier: MIT */
/*
 * dt_filter.h - the armed-task slot table, shared by the data plane and the programs that
 * configure it (the agent, the BPF tests, the fast-path benchmark).
 *
 * Every packet that leaves an instance is looked up: the port's VNI (dt_ports), then the
 * six-tuple (dt_tasks), then maybe the wildcard. Those hash lookups cost 20-25 ns together
 * (docs/design.md), on untraced traffic, which is nearly all of it. The slot table is a
 * direct-mapped copy of dt_tasks: the array map dt_task_slots of DT_SLOTS entries (struct
 * dt_task_slot), indexed by a hash of the tuple WITHOUT its VNI (dt_slot_of(), so that a
 * miss also saves the port lookup). A slot is
 *   DT_SLOT_EMPTY  no key of dt_tasks hashes here: no task matches (one array access);
 *   DT_SLOT_ONE    exactly one key does, and the slot holds it and its value: the packet
 *                  matches when its tuple and its port's VNI equal the key (one 20-byte
 *                  compare), and the task is the slot's copy, with no hash lookup at all;
 *   DT_SLOT_MANY   two or more keys do (a collision): look the key up in dt_tasks.
 * A traced packet pays one array access and one compare instead of a bitmap test and a
 * hash lookup (bench/README.md).
 *
 * Protocol with the agent:
 *  - The table is ignored, and every packet is looked up, while dt_filter_on (.bss) is 0,
 *    its initial value. The agent sets it to 1 once the table is that of the keys of
 *    dt_tasks with their values, and must then keep that true: dt_slots_write() below,
 *    the one writer (agent, tests and benchmark alike).
 *  - A slot changes in three writes, each of which a reader on another CPU may see half
 *    done without a wrong answer: its state to MANY (the key and value bytes as they were),
 *    then its new key and value (state still MANY: readers look dt_tasks up and ignore
 *    them), then its new state. So a slot is never read as ONE with a mix of two keys.
 *    (The states differ in their lowest byte only: even a state word copied byte by byte
 *    reads as the old state or the new one.)
 *  - Arming: insert the keys in dt_tasks, then write the table. Disarming or changing a
 *    key's value: first the affected slots to MANY (dt_slots_write(..., true)), then
 *    dt_tasks, then the table. A MANY slot costs a lookup, never a wrong answer; a slot
 *    that lacks an armed key loses its packets, one that holds a key no longer armed
 *    colors them.
 *
 * Compiled by clang for BPF and by gcc for userspace (<bpf/bpf.h>, <stdlib.h>, <string.h>
 * and <errno.h> before it): include after the __u32/__u64 types and dt_sample.h.
 */
#ifndef DT_FILTER_H
#define DT_FILTER_H

#define DT_SLOTS_LOG2 17 /* 131,072 slots of 40 bytes: 5 MiB */
#define DT_SLOTS (1u << DT_SLOTS_LOG2)

enum dt_slot_state {
	DT_SLOT_EMPTY = 0,
	DT_SLOT_ONE = 1,
	DT_SLOT_MANY = 2,
};

/* A slot of dt_task_slots. 40 bytes, no padding (written and compared whole). */
struct dt_task_slot {
	struct dt_tuple key;	/* DT_SLOT_ONE: the dt_tasks key, VNI included */
	__u32 state;		/* enum dt_slot_state */
	struct dt_task_val val; /* DT_SLOT_ONE: its value in dt_tasks */
};

/*
 * The slot of a tuple: addresses, ports and protocol (the bytes as stored, network order)
 * packed into two 64-bit words, combined, and mixed by the splitmix64 finalizer, whose
 * every output bit depends on every input bit (a plain multiply chain does not: tenant
 * addresses vary in their last bytes, which land in the high bits on a little-endian
 * load). The top DT_SLOTS_LOG2 bits are the slot. The VNI is left out on purpose (see
 * above).
 */
static inline __attribute__((always_inline)) __u32 dt_slot_of(const struct dt_tuple *t)
{
	__u64 a = (__u64)t->saddr << 32 | t->daddr;
	__u64 b = (__u64)((__u32)t->sport << 16 | t->dport) << 8 | t->proto;
	__u64 x = a ^ (b * 0x9e3779b97f4a7c15ull);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (__u32)(x >> (64 - DT_SLOTS_LOG2));
}

#ifndef __bpf__
/* An armed key of dt_tasks and its value, as the table is written from. */
struct dt_armed_key {
	struct dt_tuple key;
	struct dt_task_val val;
};

/* Slots read and written per batch call. */
#define DT_SLOTS_CHUNK 4096u

static int dt_slots_cmp_slot(const void *a, const void *b)
{
	__u32 x = dt_slot_of(&((const struct dt_armed_key *)a)->key);
	__u32 y = dt_slot_of(&((const struct dt_armed_key *)b)->key);

	return x < y ? -1 : x > y;
}

/* A slot that must change: its index, its state now, what it must hold. */
struct dt_slot_change {
	__u32 idx;
	__u32 was;
	struct dt_task_slot want;
};

/* The slot i of the table of sorted[0..n) (sorted by slot); *pos walks sorted. */
static inline void dt_slots_want(__u32 i, const struct dt_armed_key *sorted, unsigned n,
				 unsigned *pos, struct dt_task_slot *s)
{
	unsigned from;

	memset(s, 0, sizeof(*s));
	while (*pos < n && dt_slot_of(&sorted[*pos].key) < i)
		(*pos)++;
	from = *pos;
	while (*pos < n && dt_slot_of(&sorted[*pos].key) == i)
		(*pos)++;
	if (*pos - from == 1) {
		s->key = sorted[from].key;
		s->val = sorted[from].val;
		s->state = DT_SLOT_ONE;
	} else if (*pos > from) {
		s->state = DT_SLOT_MANY;
	}
}

/*
 * One of the three writes of the changes ch[0..n) (see the protocol above): step 0 the
 * state of the ONE slots to MANY (bytes as read in was_slot), 1 the new contents as MANY,
 * 2 the new state of the slots that are not to be MANY. Returns 0 or -errno.
 */
static inline int dt_slots_step(int fd, const struct dt_slot_change *ch, unsigned n,
				const struct dt_task_slot *was_slot, int step)
{
	__u32 *idx = calloc(DT_SLOTS_CHUNK, sizeof(*idx)), count;
	struct dt_task_slot *val = calloc(DT_SLOTS_CHUNK, sizeof(*val));
	unsigned i, m = 0;
	int rv = 0;

	if (!idx || !val) {
		rv = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && !rv; i++) {
		if (step == 0 && ch[i].was != DT_SLOT_ONE)
			continue;
		if (step == 2 && ch[i].want.state == DT_SLOT_MANY)
			continue;
		idx[m] = ch[i].idx;
		val[m] = step == 0 ? was_slot[i] : ch[i].want;
		if (step < 2)
			val[m].state = DT_SLOT_MANY;
		if (++m == DT_SLOTS_CHUNK) {
			count = m;
			if (bpf_map_update_batch(fd, idx, val, &count, NULL))
				rv = -errno;
			m = 0;
		}
	}
	if (m && !rv) {
		count = m;
		if (bpf_map_update_batch(fd, idx, val, &count, NULL))
			rv = -errno;
	}
out:
	free(idx);
	free(val);
	return rv;
}

/*
 * Makes dt_task_slots (fd) the table of armed[0..n) (dt_tasks keys with their values,
 * any order; armed is sorted in place), writing only the slots that differ from what the
 * map holds, read back in batches (the whole map: 10-16 ms on a 2-vCPU VM, a cost of
 * every control set the agent applies, twice). fallback_only: only turns the slots that would
 * change from ONE to MANY, the step before dt_tasks loses or changes a key. Returns 0 or -errno; on
 * failure the caller turns the table off (dt_filter_on = 0).
 */
static inline int dt_slots_write(int fd, struct dt_armed_key *armed, unsigned n, bool fallback_only)
{
	struct dt_task_slot *have = calloc(DT_SLOTS_CHUNK, sizeof(*have)), *was = NULL, want;
	__u32 *keys = calloc(DT_SLOTS_CHUNK, sizeof(*keys)), count, next = 0;
	struct dt_slot_change *ch = NULL;
	unsigned i, pos = 0, n_ch = 0, cap = 0;
	void *in = NULL;
	int rv = 0;

	if (!have || !keys) {
		rv = -ENOMEM;
		goto out;
	}
	qsort(armed, n, sizeof(*armed), dt_slots_cmp_slot);
	for (__u32 base = 0; base < DT_SLOTS && !rv; base += count) {
		count = DT_SLOTS_CHUNK;
		if (bpf_map_lookup_batch(fd, in, &next, keys, have, &count, NULL) &&
		    errno != ENOENT) {
			rv = -errno;
			break;
		}
		in = &next;
		if (!count) {
			rv = -EIO;
			break;
		}
		for (i = 0; i < count; i++) {
			dt_slots_want(base + i, armed, n, &pos, &want);
			if (!memcmp(&want, &have[i], sizeof(want)))
				continue;
			if (n_ch == cap) {
				void *p = realloc(ch, (cap = cap ? 2 * cap : 256) * sizeof(*ch));
				void *q = realloc(was, cap * sizeof(*was));

				if (p)
					ch = p;
				if (q)
					was = q;
				if (!p || !q) {
					rv = -ENOMEM;
					break;
				}
			}
			ch[n_ch] = (struct dt_slot_change){
				.idx = base + i, .was = have[i].state, .want = want};
			was[n_ch++] = have[i];
		}
	}
	for (int step = 0; step < (fallback_only ? 1 : 3) && !rv; step++)
		rv = dt_slots_step(fd, ch, n_ch, was, step);
out:
	free(have);
	free(keys);
	free(ch);
	free(was);
	return rv;
}
#endif

#endif /* DT_FILTER_H */
