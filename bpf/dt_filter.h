/* SPDX-License-Identifier: MIT */
/*
 * dt_filter.h - the armed-task prefilter, shared by the data plane and the agent.
 *
 * Every packet that leaves an instance is looked up: the port's VNI (dt_ports), then the
 * six-tuple (dt_tasks), then maybe the wildcard. Those hash lookups cost 20-25 ns together
 * (docs/design.md), on untraced traffic, which is nearly all of it. The prefilter is a bitmap
 * of 2^DT_FILTER_BITS_LOG2 bits (the array map dt_task_filter, DT_FILTER_WORDS __u64
 * words) with one bit per key of dt_tasks, hashed from the tuple WITHOUT its VNI (so that
 * a clear bit also saves the port lookup). A clear bit proves that no task matches and
 * costs 4-5 ns; a set bit (a task, or a collision) falls through to the exact lookups.
 *
 * Protocol with the agent:
 *  - The filter is off, and every packet is looked up, while dt_filter_on (.bss) is 0,
 *    its initial value. The agent sets it to 1 once dt_task_filter has the bit of every
 *    key in dt_tasks, and must then keep that true.
 *  - The bit of a key is dt_filter_bit(&key), the key exactly as stored in dt_tasks
 *    (a wildcard task's key has ports 0; the data plane tests that bit too).
 *  - Arming: insert the task, then set its bit. Disarming: delete the task, then rebuild
 *    the bitmap from the keys that remain (bits are shared between keys). A stale set bit
 *    costs a lookup, never a wrong answer; a missing bit loses the task's packets.
 *
 * Compiled by clang for BPF and by gcc for userspace: include after the __u32/__u64
 * types and dt_sample.h.
 */
#ifndef DT_FILTER_H
#define DT_FILTER_H

#define DT_FILTER_BITS_LOG2 20 /* 1 Mbit, 128 KiB */
#define DT_FILTER_WORDS ((1u << DT_FILTER_BITS_LOG2) / 64)

/*
 * The bit of a tuple: addresses, ports and protocol (the bytes as stored, network order)
 * packed into two 64-bit words, combined, and mixed by the splitmix64 finalizer, whose
 * every output bit depends on every input bit (a plain multiply chain does not: tenant
 * addresses vary in their last bytes, which land in the high bits on a little-endian
 * load). The top DT_FILTER_BITS_LOG2 bits are the bit number. The VNI is left out on
 * purpose (see above).
 */
static inline __attribute__((always_inline)) __u32 dt_filter_bit(const struct dt_tuple *t)
{
	__u64 a = (__u64)t->saddr << 32 | t->daddr;
	__u64 b = (__u64)((__u32)t->sport << 16 | t->dport) << 8 | t->proto;
	__u64 x = a ^ (b * 0x9e3779b97f4a7c15ull);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (__u32)(x >> (64 - DT_FILTER_BITS_LOG2));
}

#endif /* DT_FILTER_H */
