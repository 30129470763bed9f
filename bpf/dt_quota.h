/* SPDX-License-Identifier: MIT */
/*
 * dt_quota.h - the value of dt_task_quota, a key's limit state (bpf/dyetrace.bpf.c,
 * "Limits"): written by the data plane, read by the agent for the node state's colored
 * counts (agent/dataplane.c). Compiled by clang after vmlinux.h and by gcc after
 * <linux/bpf.h>, which both define struct bpf_spin_lock.
 */
#ifndef DT_QUOTA_H
#define DT_QUOTA_H

/* tokens in nanopackets (1e9 per packet), so that refilling is elapsed_ns * rate_pps with
 * no division. */
struct dt_quota_val {
	struct bpf_spin_lock lock;
	__u32 task_id; /* the task whose key created the entry */
	__u64 colored; /* admitted matches, against dt_task_val.budget */
	__u64 tokens;  /* nanopackets, at most DT_QUOTA_BURST(rate) * DT_QUOTA_PKT */
	__u64 last_ns; /* bpf_ktime_get_ns() of the last refill; 0 for a key without rate */
};

#endif /* DT_QUOTA_H */
