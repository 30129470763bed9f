/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpffs.h"
#include "dataplane.h"
#include "drained.h"
#include "dt_filter.h"
#include "dt_log.h"
#include "dt_proto.h"
#include "dt_ports.h"
#include "dt_quota.h"
#include "dt_sample.h"
#include "dt_tuple.h"
#include "dyetrace.skel.h"

/*
 * tcx (kernel 6.6): Debian 12's headers (6.1) and libbpf 1.1.2 predate it. The values are
 * the kernel's UAPI (enum bpf_attach_type, the mprog flags); bpf_link_create() passes the
 * attach type and the flags through to BPF_LINK_CREATE.
 */
#ifndef BPF_F_BEFORE
#define BPF_F_BEFORE (1U << 3)
#endif
#define DT_BPF_TCX_INGRESS 46
#define DT_BPF_TCX_EGRESS 47

/* One tc attachment we made, so that we undo exactly what we did. */
struct attachment {
	unsigned ifindex;
	enum bpf_tc_attach_point where; /* BPF_TC_INGRESS or BPF_TC_EGRESS */
	int link_fd;			/* tcx: our link; clsact: -1 */
	struct bpf_tc_hook hook;	/* clsact: our filter */
	struct bpf_tc_opts opts;
	bool created_qdisc;
};

struct dt_dataplane {
	struct dyetrace *skel;
	struct ring_buffer *rb;
	dt_sample_fn fn;
	void *fn_arg;
	enum dt_attach_mode mode; /* TCX or CLSACT once the first attachment decided */
	bool mode_forced;	  /* from the configuration: no fallback */
	unsigned n_att;
	struct attachment att[2 * DT_DATAPLANE_MAX_IFACES + DT_DATAPLANE_MAX_OVERLAYS];
	unsigned n_ifaces;
	unsigned ifindex[DT_DATAPLANE_MAX_IFACES]; /* of each configured interface */
	struct bpf_link *drop_link;		   /* tp_btf/kfree_skb */
	unsigned armed;
	uint32_t task_map_max;	  /* max_entries of dt_tasks and dt_task_quota */
	struct dt_tuple *applied; /* the keys the last apply armed, sorted */
	unsigned n_applied;
	struct dt_arm_fail *fails; /* the arms the last apply could not arm */
	uint32_t n_fails;
	char pin_dir[600];		/* where maps and the drop link are pinned */
	char handover[700];		/* "available (...)" or "unavailable: why" */
	bool can_hand_over;		/* pinned where the next agent finds the maps */
	bool took_over;			/* a previous agent's data plane was running */
	struct dt_drained_map *drained; /* the records drained, in the pinned dt_drained */
};

_Static_assert(sizeof(struct dt_sample) == 232, "dt_sample layout");
_Static_assert(sizeof(struct dt_tuple) == 20, "dt_tuple layout");

static int ring_cb(void *ctx, void *data, size_t size)
{
	struct dt_dataplane *dp = ctx;

	dt_drained_note(dp->drained);
	if (size < sizeof(struct dt_sample)) {
		/* A record of another layout (a pinned ring of an older agent): version 0 makes
		 * the callback count it as bad-version rather than lose it silently. */
		static const struct dt_sample other_layout;

		dp->fn(dp->fn_arg, &other_layout);
		return 0;
	}
	dp->fn(dp->fn_arg, data);
	return 0;
}

/* Where a tcx link of ours is pinned: <pin_dir>/tcx_<ifindex>_<in|eg>. */
static void tcx_pin_path(const struct dt_dataplane *dp, unsigned ifindex,
			 enum bpf_tc_attach_point where, char *path, size_t len)
{
	snprintf(path, len, "%s/tcx_%u_%s", dp->pin_dir, ifindex,
		 where == BPF_TC_INGRESS ? "in" : "eg");
}

/* Our clsact filter (handle, priority) at one direction of ifindex, as a detach names it. */
static void clsact_filter(struct attachment *a)
{
	memset(&a->hook, 0, sizeof(a->hook));
	a->hook.sz = sizeof(a->hook);
	a->hook.ifindex = (int)a->ifindex;
	a->hook.attach_point = a->where;
	memset(&a->opts, 0, sizeof(a->opts));
	a->opts.sz = sizeof(a->opts);
	a->opts.handle = 0xd7e;
	a->opts.priority = 1;
}

/*
 * Removes what a previous agent of the other mode left at a's interface and direction (a
 * handover across a change of mode), once ours runs: its clsact filter, or its pinned tcx
 * link. A packet in between may be sampled twice, never missed.
 */
static void drop_other_mode(struct dt_dataplane *dp, const struct attachment *a)
{
	struct attachment old = {.ifindex = a->ifindex, .where = a->where};
	char path[700];
	int fd;

	/* Only where a previous agent may have left one: no netlink round trip otherwise. */
	if (!dp->took_over)
		return;
	if (a->link_fd >= 0) {
		clsact_filter(&old);
		bpf_tc_detach(&old.hook, &old.opts); /* ENOENT (no qdisc, no filter): fine */
		return;
	}
	if (!dp->pin_dir[0])
		return;
	tcx_pin_path(dp, a->ifindex, a->where, path, sizeof(path));
	if ((fd = bpf_obj_get(path)) >= 0) {
		unlink(path);
		close(fd); /* its last reference: the link detaches */
	}
}

/*
 * Attaches prog with a tcx link, first among the interface's tcx programs (where a clsact
 * filter at priority 1 was first among filters). After a handover the previous agent's
 * pinned link gets our program in one atomic step; a fresh link is pinned for the next.
 */
static int attach_tcx(struct dt_dataplane *dp, struct attachment *a, struct bpf_program *prog)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = BPF_F_BEFORE);
	int type = a->where == BPF_TC_INGRESS ? DT_BPF_TCX_INGRESS : DT_BPF_TCX_EGRESS;
	char path[700];
	int fd;

	if (dp->pin_dir[0]) {
		tcx_pin_path(dp, a->ifindex, a->where, path, sizeof(path));
		if ((fd = bpf_obj_get(path)) >= 0) {
			if (bpf_link_update(fd, bpf_program__fd(prog), NULL) == 0) {
				a->link_fd = fd;
				return 0;
			}
			/* Its interface went away (the link is defunct): start afresh. */
			unlink(path);
			close(fd);
		}
	}
	fd = bpf_link_create(bpf_program__fd(prog), (int)a->ifindex, (enum bpf_attach_type)type,
			     &lo);
	if (fd < 0)
		return -errno;
	a->link_fd = fd;
	if (dp->pin_dir[0] && bpf_obj_pin(fd, path))
		dt_warn("DT-AGENT-PIN", "cannot pin the tcx link at %s: %s", path, strerror(errno));
	return 0;
}

/* Creates the clsact qdisc (unless present) and attaches prog as our filter. */
static int attach_clsact(struct attachment *a, struct bpf_program *prog)
{
	int rv;

	clsact_filter(a);
	/* The clsact qdisc serves both directions: the first attachment creates it. */
	rv = bpf_tc_hook_create(&a->hook);
	if (rv && rv != -EEXIST)
		return rv;
	a->created_qdisc = rv == 0;
	a->opts.prog_fd = bpf_program__fd(prog);
	/* Replace: a previous agent's filter (restart handover) gives way to ours. */
	a->opts.flags = BPF_TC_F_REPLACE;
	rv = bpf_tc_attach(&a->hook, &a->opts);
	if (rv && a->created_qdisc) {
		a->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&a->hook);
	}
	return rv;
}

/* A kernel without tcx refuses its attach type: EINVAL (before 6.6), or EOPNOTSUPP. */
static bool tcx_unsupported(int rv)
{
	return rv == -EINVAL || rv == -EOPNOTSUPP;
}

/*
 * Attaches prog at one direction of ifindex in the data plane's mode. In auto mode the
 * first attachment decides: tcx, or clsact from then on when the kernel refuses tcx.
 */
static int attach_one(struct dt_dataplane *dp, unsigned ifindex, enum bpf_tc_attach_point where,
		      struct bpf_program *prog, const char *ifname, char *err, size_t errlen)
{
	struct attachment *a = &dp->att[dp->n_att];
	int rv = 0;

	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	a->where = where;
	a->link_fd = -1;
	if (dp->mode == DT_ATTACH_TCX) {
		rv = attach_tcx(dp, a, prog);
		if (rv && tcx_unsupported(rv) && !dp->mode_forced && dp->n_att == 0) {
			dt_info("DT-AGENT-ATTACH",
				"%s: the kernel refuses tcx (%s): attaching with clsact instead",
				ifname, strerror(-rv));
			dp->mode = DT_ATTACH_CLSACT;
		}
	}
	if (dp->mode == DT_ATTACH_CLSACT)
		rv = attach_clsact(a, prog);
	if (rv) {
		snprintf(err, errlen, "%s: cannot attach %s with %s: %s", ifname,
			 bpf_program__name(prog), dt_attach_mode_name(dp->mode), strerror(-rv));
		return rv;
	}
	drop_other_mode(dp, a);
	dp->n_att++;
	return 0;
}

/* Detaches a (closes our link, or removes our filter and the qdisc if we created it). */
static void detach_one(struct dt_dataplane *dp, struct attachment *a)
{
	char path[700];

	if (a->link_fd >= 0) {
		if (dp->pin_dir[0]) {
			tcx_pin_path(dp, a->ifindex, a->where, path, sizeof(path));
			unlink(path);
		}
		close(a->link_fd);
		return;
	}
	a->opts.prog_fd = 0;
	a->opts.prog_id = 0;
	a->opts.flags = 0;
	bpf_tc_detach(&a->hook, &a->opts);
	if (a->created_qdisc) {
		a->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&a->hook);
	}
}

/*
 * Unpins the tcx links a previous agent left on interfaces this one no longer attaches
 * (its configuration changed across a handover): they detach, and the pin directory can
 * go when this agent stops.
 */
static void drop_stale_links(struct dt_dataplane *dp)
{
	char found[900], path[700];
	struct dirent *e;
	DIR *d;

	if (!dp->pin_dir[0] || !(d = opendir(dp->pin_dir)))
		return;
	while ((e = readdir(d))) {
		bool ours = false;

		if (strncmp(e->d_name, "tcx_", 4) != 0)
			continue;
		snprintf(found, sizeof(found), "%s/%s", dp->pin_dir, e->d_name);
		for (unsigned i = 0; i < dp->n_att && !ours; i++) {
			tcx_pin_path(dp, dp->att[i].ifindex, dp->att[i].where, path, sizeof(path));
			ours = dp->att[i].link_fd >= 0 && strcmp(path, found) == 0;
		}
		if (ours)
			continue;
		unlink(found);
		dt_info("DT-AGENT-ATTACH", "removed a previous agent's tcx link %s", found);
	}
	closedir(d);
}

/* The programs of each role, at ingress and egress. */
static void role_progs(struct dyetrace *s, enum dt_role role, struct bpf_program **in,
		       struct bpf_program **out)
{
	switch (role) {
	case DT_ROLE_PORT:
		*in = s->progs.dt_port_ingress;
		*out = s->progs.dt_port_egress;
		break;
	case DT_ROLE_GATEWAY:
		*in = s->progs.dt_gw_ingress;
		*out = s->progs.dt_gw_egress;
		break;
	case DT_ROLE_UPLINK:
	default:
		*in = s->progs.dt_uplink_ingress;
		*out = s->progs.dt_uplink_egress;
		break;
	}
}

static const char *role_name(enum dt_role role)
{
	return role == DT_ROLE_PORT ? "port" : role == DT_ROLE_GATEWAY ? "gateway" : "uplink";
}

/* Attaches the programs of ifc's role to it; fills *ifindex with its index. */
static int attach_iface(struct dt_dataplane *dp, const struct dt_dataplane_iface *ifc,
			unsigned *ifindex, char *err, size_t errlen)
{
	struct dyetrace *s = dp->skel;
	struct bpf_program *in, *out;
	int rv;

	*ifindex = if_nametoindex(ifc->name);
	if (!*ifindex) {
		snprintf(err, errlen, "interface '%s': %s", ifc->name, strerror(errno));
		return -ENODEV;
	}
	/* Ports and gateways carry the tenant's VNI: the data plane keys tasks with it. */
	if (ifc->role != DT_ROLE_UPLINK &&
	    (rv = dt_port_set(bpf_map__fd(s->maps.dt_ports), bpf_map__fd(s->maps.dt_port_slots),
			      *ifindex, ifc->vni))) {
		snprintf(err, errlen, "%s '%s': cannot configure: %s", role_name(ifc->role),
			 ifc->name, strerror(-rv));
		return rv;
	}
	role_progs(s, ifc->role, &in, &out);
	if ((rv = attach_one(dp, *ifindex, BPF_TC_INGRESS, in, ifc->name, err, errlen)) ||
	    (rv = attach_one(dp, *ifindex, BPF_TC_EGRESS, out, ifc->name, err, errlen)))
		return rv;
	dt_info("DT-AGENT-ATTACH", "%s: attached as %s", ifc->name, role_name(ifc->role));
	return 0;
}

/* The inode of our network namespace: drops elsewhere belong to other agents. */
static int netns_ino(__u32 *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return -errno;
	*ino = (__u32)st.st_ino;
	return 0;
}

/* True when interface name is a VXLAN device (its driver says so). */
static bool is_vxlan(int fd, const char *name)
{
	struct ethtool_drvinfo info = {.cmd = ETHTOOL_GDRVINFO};
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = (void *)&info;
	return ioctl(fd, SIOCETHTOOL, &ifr) == 0 && strcmp(info.driver, "vxlan") == 0;
}

/*
 * Every VXLAN device of the node gets dt_overlay_egress at its egress: there a packet the
 * node routed or translated still carries its conntrack entry, which the encapsulation
 * drops, so translations made on this node are learned (see bpf/dyetrace.bpf.c). Found,
 * not configured: an operator does not have to list them. A node with none has nothing to
 * learn there.
 */
static int attach_overlays(struct dt_dataplane *dp, char *err, size_t errlen)
{
	struct if_nameindex *ifs, *i;
	unsigned n = 0;
	int fd, rv = 0;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 || !(ifs = if_nameindex())) {
		dt_warn("DT-AGENT-OVERLAY",
			"cannot list the interfaces: %s; translations made on "
			"this node are learned from conntrack at its ports and drops only",
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	for (i = ifs; i->if_index && !rv; i++) {
		if (!is_vxlan(fd, i->if_name))
			continue;
		if (n == DT_DATAPLANE_MAX_OVERLAYS) {
			dt_warn("DT-AGENT-OVERLAY",
				"more than %d VXLAN devices: %s and later ones "
				"are left alone",
				DT_DATAPLANE_MAX_OVERLAYS, i->if_name);
			break;
		}
		rv = attach_one(dp, i->if_index, BPF_TC_EGRESS, dp->skel->progs.dt_overlay_egress,
				i->if_name, err, errlen);
		if (rv == 0) {
			dt_info("DT-AGENT-ATTACH",
				"%s: attached as overlay (VXLAN device: "
				"translations of colored packets are learned here)",
				i->if_name);
			n++;
		}
	}
	if_freenameindex(ifs);
	close(fd);
	return rv;
}

/* Drops are observed at the global kfree_skb tracepoint, filtered to our namespace. */
static int attach_drops(struct dt_dataplane *dp, char *err, size_t errlen)
{
	__u32 ino = 0;
	int rv;

	if ((rv = netns_ino(&ino))) {
		snprintf(err, errlen, "cannot read our network namespace: %s", strerror(-rv));
		return rv;
	}
	char path[700];
	struct bpf_link *old;

	dp->skel->bss->dt_netns_ino = ino;
	dp->drop_link = bpf_program__attach(dp->skel->progs.dt_kfree_skb);
	if (!dp->drop_link) {
		rv = -errno;
		snprintf(err, errlen, "cannot attach the drop tracer (tp_btf/kfree_skb): %s",
			 strerror(errno));
		return rv;
	}
	/* A previous agent's tracer gives way once ours runs (a drop in between may be seen
	 * twice; the analyzer counts a packet's drop once). */
	snprintf(path, sizeof(path), "%s/drop_link", dp->pin_dir);
	if (dp->pin_dir[0] && (old = bpf_link__open(path))) {
		bpf_link__unpin(old);
		bpf_link__destroy(old);
	}
	if (dp->pin_dir[0] && bpf_link__pin(dp->drop_link, path))
		dt_warn("DT-AGENT-PIN", "cannot pin the drop tracer at %s: %s", path,
			strerror(errno));
	dt_info("DT-AGENT-ATTACH", "drop tracer attached (tp_btf/kfree_skb, netns %u)", ino);
	return 0;
}

/*
 * The maps that outlive an agent are pinned by name: all but the internal .bss/.rodata
 * (a new agent sets its globals from the pinned task map, see restore_armed()).
 */
static int pin_maps(struct dt_dataplane *dp, const char *dir, char *err, size_t errlen)
{
	struct bpf_map *m;
	char path[700];

	bpf_object__for_each_map (m, dp->skel->obj) {
		if (strchr(bpf_map__name(m), '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(m));
		if (access(path, F_OK) == 0)
			dp->took_over = true;
		if (bpf_map__set_pin_path(m, path)) {
			snprintf(err, errlen, "cannot pin map %s at %s: %s", bpf_map__name(m), path,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/*
 * The task map and its quota map hold entries keys (0: DT_MAX_TASKS). A pinned task map of
 * a previous agent (handover) keeps its size: libbpf reuses a pinned map only when it
 * matches, and the keys armed in it go on coloring. The new size applies after a restart
 * without handover.
 */
static void size_task_maps(struct dt_dataplane *dp, uint32_t entries)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	char path[700];
	int fd;

	if (!entries)
		entries = DT_MAX_TASKS;
	snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, bpf_map__name(dp->skel->maps.dt_tasks));
	memset(&info, 0, sizeof(info));
	if (dp->pin_dir[0] && (fd = bpf_obj_get(path)) >= 0) {
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.max_entries != entries) {
			dt_warn("DT-AGENT-TASKMAP",
				"the running data plane's task map holds %u keys, not %u "
				"(task_map_entries): kept until the agent restarts without handover",
				info.max_entries, entries);
			entries = info.max_entries;
		}
		close(fd);
	}
	bpf_map__set_max_entries(dp->skel->maps.dt_tasks, entries);
	bpf_map__set_max_entries(dp->skel->maps.dt_task_quota, entries);
	dp->task_map_max = entries;
}

/* dt_slots_write() on our table (bpf/dt_filter.h), logging a failure: 0 or -errno. */
static int slots_write(struct dt_dataplane *dp, struct dt_armed_key *armed, unsigned n,
		       bool fallback_only)
{
	int rv = dt_slots_write(bpf_map__fd(dp->skel->maps.dt_task_slots), armed, n, fallback_only);

	if (rv)
		dt_err("DT-AGENT-FILTER",
		       "cannot write the task slot table: %s; looking every "
		       "packet up",
		       strerror(-rv));
	return rv;
}

/*
 * After a handover the new programs find the armed keys in the pinned maps: restore the
 * counters the programs read, before they replace the old ones, so coloring never stops.
 */
static void restore_armed(struct dt_dataplane *dp)
{
	int fd = bpf_map__fd(dp->skel->maps.dt_tasks);
	struct dt_armed_key *armed = calloc(dp->task_map_max, sizeof(*armed));
	struct dt_tuple key, next;
	struct dt_task_val v;
	unsigned keys = 0, anyport = 0;
	bool more = bpf_map_get_next_key(fd, NULL, &key) == 0;
	int rv;

	while (more && armed && keys < dp->task_map_max) {
		if (bpf_map_lookup_elem(fd, &key, &v) == 0) {
			armed[keys++] = (struct dt_armed_key){.key = key, .val = v};
			anyport += (v.flags & DT_TASK_F_ANYPORT) != 0;
		}
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		key = next;
	}
	dp->skel->bss->dt_anyport_tasks = anyport;
	dp->skel->bss->dt_armed_keys = keys;
	/* The slot table as the pinned task map says (the previous agent's may be older, or
	 * half written when it died), before our programs read it. */
	rv = armed ? slots_write(dp, armed, keys, false) : -ENOMEM;
	dp->skel->bss->dt_filter_on = rv == 0;
	free(armed);
	dp->armed = keys;
	dt_info("DT-AGENT-HANDOVER",
		"took over a running data plane: %u keys armed, draining "
		"the samples it kept",
		keys);
}

int dt_dataplane_open(const struct dt_dataplane_cfg *cfg, dt_sample_fn fn, void *arg,
		      struct dt_dataplane **out, char *err, size_t errlen)
{
	struct dt_dataplane *dp;
	struct dt_bpffs fs;
	unsigned i;
	int rv;

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->fn = fn;
	dp->fn_arg = arg;
	dp->mode = cfg->attach == DT_ATTACH_CLSACT ? DT_ATTACH_CLSACT : DT_ATTACH_TCX;
	dp->mode_forced = cfg->attach != DT_ATTACH_AUTO;
	dp->skel = dyetrace__open();
	if (!dp->skel) {
		rv = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	bpf_map__set_max_entries(dp->skel->maps.dt_events, (uint32_t)cfg->ring_kib * 1024);
	dp->skel->rodata->dt_capture_bytes = (__u32)cfg->capture_bytes;
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s/%s", cfg->pin_dir, cfg->node);
	if (dt_bpffs_ensure(cfg->pin_dir, &fs)) {
		dt_warn("DT-AGENT-PIN",
			"%s: maps are not pinned, and a restart of the agent "
			"pauses tracing on this node",
			fs.why);
		snprintf(dp->handover, sizeof(dp->handover),
			 "unavailable: %s is not on a bpf "
			 "file system",
			 cfg->pin_dir);
		dp->pin_dir[0] = '\0';
	} else if ((rv = dt_bpffs_mkdirs(dp->pin_dir, 0700))) {
		snprintf(err, errlen, "cannot create %s: %s", dp->pin_dir, strerror(-rv));
		goto fail;
	} else if ((rv = pin_maps(dp, dp->pin_dir, err, errlen))) {
		goto fail;
	} else {
		if (fs.mounted_at[0])
			dt_info("DT-AGENT-BPFFS", "no bpf file system under %s: mounted one at %s",
				cfg->pin_dir, fs.mounted_at);
		if (!fs.durable)
			dt_warn("DT-AGENT-PIN", "%s", fs.why);
		dp->can_hand_over = fs.durable;
		snprintf(dp->handover, sizeof(dp->handover),
			 fs.durable ? "available (maps pinned in %s)"
				    : "unavailable: pins in %s end with "
				      "this agent's mount namespace",
			 dp->pin_dir);
	}
	/*
	 * The gateway programs read conntrack through kfuncs of the nf_conntrack module:
	 * load them only where a gateway is configured (the module is loaded there anyway,
	 * since that node translates addresses).
	 */
	for (i = 0; i < cfg->n_ifaces && cfg->ifaces[i].role != DT_ROLE_GATEWAY; i++)
		;
	if (i == cfg->n_ifaces) {
		bpf_program__set_autoload(dp->skel->progs.dt_gw_ingress, false);
		bpf_program__set_autoload(dp->skel->progs.dt_gw_egress, false);
	} else if (access("/sys/module/nf_conntrack", F_OK) != 0) {
		/* The conntrack kfuncs are weak: without them gateway samples lack orig. */
		dt_warn("DT-AGENT-CONNTRACK",
			"nf_conntrack is not loaded: gateway samples will not carry the tuple "
			"inside the NAT (load it before the agent: modprobe nf_conntrack)");
	}
	size_task_maps(dp, cfg->task_map_entries);
	if ((rv = dyetrace__load(dp->skel))) {
		snprintf(err, errlen,
			 "cannot load the BPF programs: %s (run as root on a kernel with BTF; "
			 "-v shows the verifier log)",
			 strerror(-rv));
		goto fail;
	}
	if (dp->took_over)
		restore_armed(dp);
	/* Before anything drains the ring: the count settles against its consumer position. */
	if ((rv = dt_drained_open(bpf_map__fd(dp->skel->maps.dt_drained),
				  bpf_map__fd(dp->skel->maps.dt_events), !dp->took_over,
				  &dp->drained))) {
		snprintf(err, errlen, "cannot map the drained counter: %s", strerror(-rv));
		goto fail;
	}
	dp->rb = ring_buffer__new(bpf_map__fd(dp->skel->maps.dt_events), ring_cb, dp, NULL);
	if (!dp->rb) {
		rv = -errno;
		snprintf(err, errlen, "cannot open the ring buffer: %s", strerror(errno));
		goto fail;
	}
	dp->n_ifaces = cfg->n_ifaces;
	for (i = 0; i < cfg->n_ifaces; i++)
		if ((rv = attach_iface(dp, &cfg->ifaces[i], &dp->ifindex[i], err, errlen)))
			goto fail;
	if ((rv = attach_overlays(dp, err, errlen)) || (rv = attach_drops(dp, err, errlen)))
		goto fail;
	drop_stale_links(dp);
	*out = dp;
	return 0;
fail:
	/* Never tear down a data plane we were taking over from a previous agent. */
	dt_dataplane_close(dp, dp->took_over);
	return rv;
}

static int tuple_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct dt_tuple));
}

/* The key of arm a and its value in the task map: 0, or -EINVAL (dt_tuple_task_key()). */
static int arm_key(const struct dt_arm *a, struct dt_armed_key *out)
{
	out->val = (struct dt_task_val){.task_id = a->task_id,
					.flags = a->flags,
					.budget = a->budget,
					.rate_pps = a->rate_pps};
	return dt_tuple_task_key(&a->tuple, &out->val.flags, &out->key);
}

/* Deletes keys from the task map, and their quotas: a task armed again later starts afresh. */
static void disarm(struct dt_dataplane *dp, const struct dt_tuple *keys, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.dt_tasks), &keys[i]);
		bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.dt_task_quota), &keys[i]);
	}
}

/*
 * Disarms what the last apply armed and keys (sorted, n) no longer hold, before anything
 * is armed: a full map makes room for the new keys first.
 */
static void disarm_applied(struct dt_dataplane *dp, const struct dt_armed_key *keys, unsigned n)
{
	unsigned i, n_stale = 0;

	for (i = 0; i < dp->n_applied; i++)
		if (!bsearch(&dp->applied[i], keys, n, sizeof(*keys), tuple_cmp))
			dp->applied[n_stale++] = dp->applied[i];
	disarm(dp, dp->applied, n_stale);
	dp->n_applied = 0;
}

/*
 * Disarms every key of the map that keys (sorted, n) does not hold: those of a previous
 * agent (handover), and any written behind our back. Collected first: deleting while
 * iterating skips keys. Returns how many, or -ENOMEM.
 */
static int disarm_unknown(struct dt_dataplane *dp, const struct dt_tuple *keys, unsigned n)
{
	int fd = bpf_map__fd(dp->skel->maps.dt_tasks);
	struct dt_tuple *stale = calloc(dp->task_map_max, sizeof(*stale)), key, next;
	unsigned n_stale = 0;
	bool more = bpf_map_get_next_key(fd, NULL, &key) == 0;

	if (!stale)
		return -ENOMEM;
	while (more && n_stale < dp->task_map_max) {
		if (!bsearch(&key, keys, n, sizeof(*keys), tuple_cmp))
			stale[n_stale++] = key;
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		key = next;
	}
	disarm(dp, stale, n_stale);
	free(stale);
	return (int)n_stale;
}

/* Remembers that arm a could not be armed (errno err), for the node state. */
static void arm_failed(struct dt_dataplane *dp, const struct dt_arm *a, int err)
{
	dp->fails[dp->n_fails++] = (struct dt_arm_fail){
		.task_id = a->task_id, .flags = a->flags, .tuple = a->tuple, .err = (uint32_t)err};
}

/* Logs the failures of an apply once: the first, and how many more. */
static void log_arm_fails(const struct dt_dataplane *dp, uint64_t gen)
{
	const struct dt_arm_fail *f = dp->fails;

	if (!dp->n_fails)
		return;
	dt_err("DT-AGENT-ARM",
	       "control set %llu: task %u cannot be armed: %s%s (%u keys not armed in all; "
	       "reported to the analyzer)",
	       (unsigned long long)gen, f->task_id, strerror((int)f->err),
	       f->err == E2BIG ? " (the task map is full: task_map_entries)" : "", dp->n_fails);
}

int dt_dataplane_apply(struct dt_dataplane *dp, const struct dt_control *c)
{
	int fd = bpf_map__fd(dp->skel->maps.dt_tasks);
	struct dt_armed_key *want, *armed;
	struct dt_tuple *keys;
	unsigned i, n_want = 0, n_keys = 0, anyport = 0;
	size_t n_max = c->n_arms ? c->n_arms : 1;
	int rv = 0, frv, unknown;

	want = calloc(n_max, sizeof(*want));
	armed = calloc(n_max, sizeof(*armed));
	keys = calloc(n_max, sizeof(*keys));
	free(dp->fails);
	dp->fails = calloc(n_max, sizeof(*dp->fails));
	dp->n_fails = 0;
	if (!want || !armed || !keys || !dp->fails) {
		free(want);
		free(armed);
		free(keys);
		return -ENOMEM;
	}
	for (i = 0; i < c->n_arms; i++)
		if (arm_key(&c->arms[i], &want[n_want]) == 0)
			n_want++;
	/* Every slot that changes falls back to the task map before the map changes. */
	if (slots_write(dp, want, n_want, true))
		dp->skel->bss->dt_filter_on = 0;
	qsort(want, n_want, sizeof(*want), tuple_cmp);
	disarm_applied(dp, want, n_want);
	/* Arm what is listed. */
	for (i = 0; i < c->n_arms; i++) {
		struct dt_armed_key *k = &armed[n_keys];

		if (arm_key(&c->arms[i], k)) {
			arm_failed(dp, &c->arms[i], EINVAL);
			continue;
		}
		if (bpf_map_update_elem(fd, &k->key, &k->val, BPF_ANY)) {
			rv = -errno;
			arm_failed(dp, &c->arms[i], errno);
			continue;
		}
		if (k->val.flags & DT_TASK_F_ANYPORT)
			anyport++;
		keys[n_keys++] = k->key;
	}
	log_arm_fails(dp, c->gen);
	qsort(keys, n_keys, sizeof(*keys), tuple_cmp);
	/* The slot table holds exactly the new set before anything stale is deleted. */
	frv = slots_write(dp, armed, n_keys, false);
	/* Only now, once the new keys had their chance at the room they hold. */
	unknown = disarm_unknown(dp, keys, n_keys);
	free(want);
	free(armed);
	free(dp->applied);
	dp->applied = keys;
	dp->n_applied = n_keys;
	dp->skel->bss->dt_anyport_tasks = anyport;
	dp->skel->bss->dt_armed_keys = n_keys;
	dp->skel->bss->dt_filter_on = frv == 0;
	dp->armed = n_keys;
	dt_info("DT-AGENT-ARMED",
		"control set %llu applied: %u tasks armed, %u not armed, %d unknown keys disarmed",
		(unsigned long long)c->gen, n_keys, dp->n_fails, unknown);
	return unknown < 0 ? unknown : rv;
}

const struct dt_arm_fail *dt_dataplane_arm_fails(const struct dt_dataplane *dp, uint32_t *n)
{
	*n = dp->n_fails;
	return dp->fails;
}

/*
 * The count of key (a quota entry, q) as its node state shows it: *c filled and true when
 * the key is armed with a budget or a rate for the task that made the entry. An entry of
 * another task (the key re-armed before the agent deleted it) starts over at its next
 * match: no count yet.
 */
static bool key_colored(struct dt_dataplane *dp, const struct dt_tuple *key,
			const struct dt_quota_val *q, struct dt_key_colored *c)
{
	struct dt_task_val v;

	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.dt_tasks), key, &v) ||
	    v.task_id != q->task_id || (!v.budget && !v.rate_pps))
		return false;
	*c = (struct dt_key_colored){.task_id = v.task_id, .flags = v.flags, .colored = q->colored};
	return true;
}

int dt_dataplane_colored(struct dt_dataplane *dp, struct dt_key_colored **out, uint32_t *n)
{
	int fd = bpf_map__fd(dp->skel->maps.dt_task_quota);
	struct dt_tuple key, next;
	struct dt_quota_val q;
	struct dt_key_colored *v = NULL;
	uint32_t cap =
		dp->task_map_max < DT_NODE_MAX_COLORED ? dp->task_map_max : DT_NODE_MAX_COLORED;
	bool more = bpf_map_get_next_key(fd, NULL, &key) == 0;

	*out = NULL;
	*n = 0;
	if (!more)
		return 0;
	if (!(v = calloc(cap, sizeof(*v))))
		return -ENOMEM;
	while (more && *n < cap) {
		/* Under the entry's lock: the programs update colored under it. */
		if (bpf_map_lookup_elem_flags(fd, &key, &q, BPF_F_LOCK) == 0 &&
		    key_colored(dp, &key, &q, &v[*n]))
			(*n)++;
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		key = next;
	}
	if (*n)
		*out = v;
	else
		free(v);
	return 0;
}

uint32_t dt_dataplane_task_map_max(const struct dt_dataplane *dp)
{
	return dp->task_map_max;
}

int dt_dataplane_poll(struct dt_dataplane *dp, int timeout_ms)
{
	return ring_buffer__poll(dp->rb, timeout_ms);
}

void dt_dataplane_counters(struct dt_dataplane *dp, uint64_t out[DT_CNT_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(dp->skel->maps.dt_counters);
	uint64_t vals[ncpu > 0 ? ncpu : 1];
	uint32_t k;

	for (k = 0; k < DT_CNT_MAX; k++) {
		out[k] = 0;
		if (ncpu <= 0 || bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
}

unsigned dt_dataplane_ifindex(const struct dt_dataplane *dp, unsigned i)
{
	return i < dp->n_ifaces ? dp->ifindex[i] : 0;
}

unsigned dt_dataplane_armed(struct dt_dataplane *dp)
{
	return dp->armed;
}

const char *dt_dataplane_handover(const struct dt_dataplane *dp)
{
	return dp->handover;
}

enum dt_attach_mode dt_dataplane_attach_mode(const struct dt_dataplane *dp)
{
	return dp->mode;
}

void dt_dataplane_close(struct dt_dataplane *dp, bool handover)
{
	struct bpf_map *m;

	if (!dp)
		return;
	if (handover && !dp->can_hand_over)
		dt_warn("DT-AGENT-HANDOVER",
			"cannot leave the data plane running for the next "
			"agent (handover %s): detaching instead",
			dp->handover);
	if (handover && dp->skel && dp->can_hand_over) {
		/* Leave programs attached and maps pinned: the next agent takes over. */
		dt_info("DT-AGENT-HANDOVER",
			"leaving the data plane running for the next agent "
			"(pinned in %s)",
			dp->pin_dir);
		bpf_link__disconnect(dp->drop_link);
		bpf_link__destroy(dp->drop_link);
		for (unsigned i = 0; i < dp->n_att; i++)
			if (dp->att[i].link_fd >= 0)
				close(dp->att[i].link_fd); /* pinned: it stays */
		ring_buffer__free(dp->rb);
		dt_drained_close(dp->drained);
		dyetrace__destroy(dp->skel);
		free(dp->applied);
		free(dp->fails);
		free(dp);
		return;
	}
	dt_dataplane_detach(dp);
	if (dp->skel && dp->pin_dir[0]) {
		bpf_object__for_each_map (m, dp->skel->obj)
			bpf_map__unpin(m, NULL);
		rmdir(dp->pin_dir);
	}
	ring_buffer__free(dp->rb);
	dt_drained_close(dp->drained);
	dyetrace__destroy(dp->skel);
	free(dp->applied);
	free(dp->fails);
	free(dp);
}

void dt_dataplane_detach(struct dt_dataplane *dp)
{
	if (dp->drop_link)
		bpf_link__unpin(dp->drop_link);
	bpf_link__destroy(dp->drop_link);
	dp->drop_link = NULL;
	while (dp->n_att > 0)
		detach_one(dp, &dp->att[--dp->n_att]);
}

bool dt_dataplane_took_over(const struct dt_dataplane *dp)
{
	return dp->took_over;
}

bool dt_dataplane_can_hand_over(const struct dt_dataplane *dp)
{
	return dp->can_hand_over;
}

uint64_t dt_dataplane_drained(const struct dt_dataplane *dp, uint64_t *id)
{
	*id = dt_drained_id(dp->drained);
	return dt_drained_count(dp->drained);
}

const void *dt_dataplane_object(size_t *len)
{
	return dyetrace__elf_bytes(len);
}
