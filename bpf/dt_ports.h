/* SPDX-License-Identifier: MIT */
/*
 * dt_ports.h - where the data plane finds a port's VNI, shared by the data plane and the
 * programs that configure it (the agent, the BPF tests, the fast-path benchmark).
 *
 * A port (or a gateway's outside interface) is configured in two maps: dt_ports, a hash
 * keyed by ifindex that holds every one, and dt_port_slots, an array of DT_PORT_SLOTS
 * entries (dt_sample.h) indexed by ifindex that mirrors those whose ifindex is below DT_PORT_SLOTS
 * with DT_PORT_F_SET. The data plane reads the slot when there is one: an array lookup is an
 * address computation the verifier inlines, a hash lookup hashes the key and walks a
 * bucket (about 6 ns of a traced packet's 25 over its floor, bench/README.md). Interfaces
 * with larger indexes (a host that made many) still work, through the hash.
 *
 * Compiled by clang for BPF (the maps are declared in dyetrace.bpf.c before this header)
 * and by gcc for userspace (<bpf/bpf.h> included before it): include after dt_sample.h.
 */
#ifndef DT_PORTS_H
#define DT_PORTS_H

#ifdef __bpf__
/* The configuration of interface ifindex, NULL when it is no port. */
static __always_inline struct dt_port_val *dt_port_find(__u32 ifindex)
{
	struct dt_port_val *port;

	if (ifindex < DT_PORT_SLOTS) {
		port = bpf_map_lookup_elem(&dt_port_slots, &ifindex);
		return port && (port->flags & DT_PORT_F_SET) ? port : NULL;
	}
	return bpf_map_lookup_elem(&dt_ports, &ifindex);
}
#else
/* Configures interface ifindex as a port of VNI vni in both maps (their fds): 0 or -errno. */
static inline int dt_port_set(int ports_fd, int slots_fd, __u32 ifindex, __u32 vni)
{
	struct dt_port_val pv = {.vni = vni, .flags = DT_PORT_F_SET};

	if (bpf_map_update_elem(ports_fd, &ifindex, &pv, BPF_ANY))
		return -errno;
	if (ifindex < DT_PORT_SLOTS && bpf_map_update_elem(slots_fd, &ifindex, &pv, BPF_ANY))
		return -errno;
	return 0;
}

/* Makes interface ifindex no port again (in both maps): 0 or -errno. */
static inline int dt_port_clear(int ports_fd, int slots_fd, __u32 ifindex)
{
	struct dt_port_val none = {0};

	if (bpf_map_delete_elem(ports_fd, &ifindex) && errno != ENOENT)
		return -errno;
	if (ifindex < DT_PORT_SLOTS && bpf_map_update_elem(slots_fd, &ifindex, &none, BPF_ANY))
		return -errno;
	return 0;
}
#endif

#endif /* DT_PORTS_H */
