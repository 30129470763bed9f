/* SPDX-License-Identifier: MIT */
/*
 * dataplane.h - the agent's handle on the eBPF programs: load, attach by role, keep the
 * armed-task map in step with the control set, read the counters, drain the ring.
 */
#ifndef DT_DATAPLANE_H
#define DT_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "dt_sample.h"

struct dt_arm_fail;
struct dt_control;
struct dt_dataplane;
struct dt_key_colored;

enum dt_role {
	DT_ROLE_PORT = 1,    /* faces an instance: first and last hop */
	DT_ROLE_UPLINK = 2,  /* underlay NIC: VXLAN-encapsulated traffic */
	DT_ROLE_GATEWAY = 3, /* a NAT gateway's outside interface: exit and entry */
};

#define DT_DATAPLANE_MAX_IFACES 64
#define DT_DATAPLANE_MAX_OVERLAYS 16 /* VXLAN devices the data plane finds and attaches to */

/* An interface to attach to, by role. */
struct dt_dataplane_iface {
	const char *name;
	enum dt_role role;
	uint32_t vni; /* ports: the instance's VNI; gateways: the VNI behind the NAT */
};

/*
 * How the tc programs are attached. tcx (kernel 6.6 and later): a bpf_link per interface
 * and direction, no qdisc, no classifier. clsact: a cls_bpf filter on a clsact qdisc, the
 * only way before 6.6. auto: tcx, and clsact when the kernel refuses tcx.
 */
enum dt_attach_mode {
	DT_ATTACH_AUTO = 0,
	DT_ATTACH_TCX,
	DT_ATTACH_CLSACT,
};

/* What the data plane is told; the agent fills it from its configuration. */
struct dt_dataplane_cfg {
	const char *node;	   /* the maps are pinned in <pin_dir>/<node> */
	const char *pin_dir;	   /* bpf file system directory */
	uint64_t ring_kib;	   /* ring buffer size, a power of two */
	uint64_t capture_bytes;	   /* packet prefix each sample carries, 0..DT_CAP_MAX */
	uint32_t task_map_entries; /* keys the task map (and its quota map) hold at most */
	enum dt_attach_mode attach;
	unsigned n_ifaces;
	struct dt_dataplane_iface ifaces[DT_DATAPLANE_MAX_IFACES];
};

/* Called for every record drained from the ring buffer. */
typedef void (*dt_sample_fn)(void *arg, const struct dt_sample *s);

/*
 * Opens and loads the programs (ring buffer of ring_kib KiB) and attaches them to every
 * interface of cfg (dt_dataplane_ifindex() then tells the index each one had). Returns 0
 * or -errno with err filled; on failure nothing stays attached.
 */
int dt_dataplane_open(const struct dt_dataplane_cfg *cfg, dt_sample_fn fn, void *arg,
		      struct dt_dataplane **out, char *err, size_t errlen);

/* The interface index of cfg->ifaces[i], resolved when attaching. */
unsigned dt_dataplane_ifindex(const struct dt_dataplane *dp, unsigned i);

/*
 * Makes the armed-task map hold exactly the tasks of c, as far as it can: an arm that
 * cannot be armed (the map is full, an update fails) is left out and remembered until the
 * next apply (dt_dataplane_arm_fails()). Returns 0 or -errno (the last failure).
 */
int dt_dataplane_apply(struct dt_dataplane *dp, const struct dt_control *c);

/* The arms the last dt_dataplane_apply() could not arm: *n of them (valid until the next). */
const struct dt_arm_fail *dt_dataplane_arm_fails(const struct dt_dataplane *dp, uint32_t *n);

/*
 * The data plane's own count of packets each armed key with a budget or a rate colored
 * (dt_task_quota): *out (malloc'd, *n records; NULL when none), keys that colored nothing
 * yet left out (their count is 0). The analyzer decides DONE by these counts, not by the
 * samples that reached it. Returns 0 or -ENOMEM.
 */
int dt_dataplane_colored(struct dt_dataplane *dp, struct dt_key_colored **out, uint32_t *n);

/* How many keys the task map holds at most (as loaded: a pinned map keeps its size). */
uint32_t dt_dataplane_task_map_max(const struct dt_dataplane *dp);

/* Drains the ring buffer, waiting at most timeout_ms. Returns records read or -errno. */
int dt_dataplane_poll(struct dt_dataplane *dp, int timeout_ms);

/* Sums the per-CPU counters into out[DT_CNT_MAX]. */
void dt_dataplane_counters(struct dt_dataplane *dp, uint64_t out[DT_CNT_MAX]);

/* Number of tasks in the armed-task map. */
unsigned dt_dataplane_armed(struct dt_dataplane *dp);

/* The attach mode in use, TCX or CLSACT (never AUTO): for the ready line and metrics. */
enum dt_attach_mode dt_dataplane_attach_mode(const struct dt_dataplane *dp);

/* "auto", "tcx" or "clsact" (inline: the configuration's fuzzer links no data plane). */
static inline const char *dt_attach_mode_name(enum dt_attach_mode mode)
{
	return mode == DT_ATTACH_TCX ? "tcx" : mode == DT_ATTACH_CLSACT ? "clsact" : "auto";
}

/*
 * Whether a restart (SIGUSR1) can hand this data plane over: "available (...)" when its
 * maps are pinned where the next agent finds them, else "unavailable: why". For the ready line.
 */
const char *dt_dataplane_handover(const struct dt_dataplane *dp);

/*
 * The BPF object (ELF) embedded in the agent, as bpftool's skeleton holds it: the bytes of
 * dyetrace.bpf.o. Its SHA-256 is the object's tag in --version. Needs no privilege.
 */
const void *dt_dataplane_object(size_t *len);

/*
 * Detaches everything it attached (closes its tcx links, or removes its clsact filters and
 * the qdiscs it created) and unpins its maps. With handover, leaves the programs attached
 * (tcx links pinned) and the maps (tasks, quotas, task slots, ring buffer, counters) pinned,
 * so that armed tasks keep coloring and the next agent of this node takes over where this
 * one stopped.
 */
void dt_dataplane_close(struct dt_dataplane *dp, bool handover);

/* Detaches every program now (what dt_dataplane_close() does without handover), so that
 * a stopping agent drains a ring nothing writes to any more. The maps stay until close. */
void dt_dataplane_detach(struct dt_dataplane *dp);

/* Whether it took over a previous agent's pinned data plane (a handover, or the pins of an
 * agent that died), and whether the next agent can take it over from this one. */
bool dt_dataplane_took_over(const struct dt_dataplane *dp);
bool dt_dataplane_can_hand_over(const struct dt_dataplane *dp);

/* The ring records drained from this data plane by every agent that ran it (drained.h),
 * and into *id the data plane's identity. */
uint64_t dt_dataplane_drained(const struct dt_dataplane *dp, uint64_t *id);

#endif /* DT_DATAPLANE_H */
