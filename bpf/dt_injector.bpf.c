// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * dt_injector.bpf.c - puts a probe into the overlay as if instance A's port had received it
 * from A (issue 21; agent/inject.c runs it). The agent hands the frame to
 * BPF_PROG_TEST_RUN with the port's ifindex in cb[0]; the program marks it as a probe and
 * clones it into the port's receive path (bpf_clone_redirect with BPF_F_INGRESS), so the
 * port's own programs, the bridge and the rest of A's path see it as they would see A's
 * packet. Why this way and not XDP live frames: docs/design.md "Probe injection".
 *
 * The run's return value is 0, or the redirect's error as a positive errno.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "dt_probe.h"

SEC("tc")
int dt_inject(struct __sk_buff *skb)
{
	long err;

	skb->mark = DT_PROBE_MARK;
	err = bpf_clone_redirect(skb, skb->cb[0], BPF_F_INGRESS);
	return err < 0 ? (int)-err : 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
