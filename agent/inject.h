/* SPDX-License-Identifier: MIT */
/*
 * inject.h - probes into the overlay as if an instance's port had received them (issue 21,
 * docs/design.md "Probes"). The frame goes through bpf/dt_injector.bpf.c by
 * BPF_PROG_TEST_RUN: it is marked as a probe (DT_PROBE_MARK) and cloned into the port's
 * receive path, so it takes the instance's real path while the bridge learns nothing it
 * would not learn from the instance itself.
 */
#ifndef DT_AGENT_INJECT_H
#define DT_AGENT_INJECT_H

#include <stddef.h>
#include <stdint.h>

struct dt_inject;

/* Loads the injector. Returns 0 or -errno. */
int dt_inject_open(struct dt_inject **out);
void dt_inject_close(struct dt_inject *inj);

/* Injects frame[0..len) (Ethernet first) at port port_ifindex, as received there.
 * Returns 0 or -errno (the redirect's or the run's). */
int dt_inject_frame(struct dt_inject *inj, unsigned port_ifindex, const void *frame, size_t len);

/* One probe: the instances' addresses and MACs (A sends, B answers), the VNI-less inner
 * packet's identity (dt_probe.h: slot, pair, round) and B's probe port. */
struct dt_probe_pkt {
	uint8_t src_mac[6], dst_mac[6];
	uint32_t saddr, daddr; /* host order */
	uint16_t probe_port;
	uint32_t slot, pair, round;
};

/* Frame size of a probe (Ethernet, IPv4, TCP without options or payload). */
#define DT_PROBE_FRAME_LEN 54

/* Writes the probe's frame at buf (DT_PROBE_FRAME_LEN bytes): a colored TCP SYN with valid
 * checksums. Returns its length. */
size_t dt_probe_frame(uint8_t *buf, const struct dt_probe_pkt *p);

#endif /* DT_AGENT_INJECT_H */
