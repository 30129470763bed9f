// SPDX-License-Identifier: MIT
/*
 * inject.c - probes into the overlay (inject.h).
 */
#include <errno.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dt_injector.skel.h"
#include "dt_packet.h"
#include "inject.h"

#include "dt_probe.h"

struct dt_inject {
	struct dt_injector *skel;
	int prog_fd;
};

int dt_inject_open(struct dt_inject **out)
{
	struct dt_inject *inj = calloc(1, sizeof(*inj));
	int rv;

	if (!inj)
		return -ENOMEM;
	if (!(inj->skel = dt_injector__open_and_load())) {
		rv = -errno;
		free(inj);
		return rv ? rv : -EINVAL;
	}
	inj->prog_fd = bpf_program__fd(inj->skel->progs.dt_inject);
	*out = inj;
	return 0;
}

void dt_inject_close(struct dt_inject *inj)
{
	if (!inj)
		return;
	dt_injector__destroy(inj->skel);
	free(inj);
}

int dt_inject_frame(struct dt_inject *inj, unsigned port_ifindex, const void *frame, size_t len)
{
	struct __sk_buff ctx = {.cb = {port_ifindex}};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
	int rv = bpf_prog_test_run_opts(inj->prog_fd, &opts);

	if (rv < 0)
		return -errno;
	return opts.retval ? -(int)opts.retval : 0;
}

size_t dt_probe_frame(uint8_t *buf, const struct dt_probe_pkt *p)
{
	struct dt_pkt k = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.frag = DT_PKT_IP_DF | DT_PKT_IP_RB, /* the color: the probe is ours */
		.proto = IPPROTO_TCP,
		.sport = DT_PROBE_SPORT(p->slot),
		.dport = p->probe_port,
		.seq = DT_PROBE_SEQ(p->pair, p->round),
		.tcp_flags = DT_PKT_TCP_SYN,
		.csum = true,
	};

	memcpy(k.src_mac, p->src_mac, sizeof(k.src_mac));
	memcpy(k.dst_mac, p->dst_mac, sizeof(k.dst_mac));
	return dt_pkt_frame(buf, &k);
}
