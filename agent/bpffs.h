/* SPDX-License-Identifier: MIT */
/*
 * bpffs.h - the bpf file system under the agent's pin directory. A fresh machine (a
 * container, a CI runner, a VM that did not boot through systemd) has none mounted, and
 * without one the agent cannot pin its maps, so a restart could not take the data plane
 * over. dt_bpffs_ensure() mounts one where it is missing, as iproute2 does for tc.
 */
#ifndef DT_BPFFS_H
#define DT_BPFFS_H

#include <stdbool.h>
#include <sys/types.h>

#define DT_BPFFS_PATH_MAX 600

struct dt_bpffs {
	char mounted_at[DT_BPFFS_PATH_MAX]; /* where this call mounted one; "" if it did not */
	bool durable;			    /* pins can outlive this agent (handover works) */
	char why[2048];			    /* why not, when not durable or on failure */
};

/* True when dir (or, while it does not exist yet, its nearest ancestor) is on a bpf fs. */
bool dt_bpffs_holds(const char *dir);

/* mkdir -p dir with mode. Returns 0 or -errno. */
int dt_bpffs_mkdirs(const char *dir, mode_t mode);

/*
 * Makes pin_dir lie on a bpf file system: when it does not, mounts one at /sys/fs/bpf (for
 * a pin_dir below it) or at pin_dir itself, in this process's mount namespace. Fills out:
 * mounted_at when it mounted, durable when pins there outlive the agent (not so in a mount
 * namespace no other process shares), why when not durable. Returns 0, or -errno with
 * out->why saying what failed and what to run instead.
 */
int dt_bpffs_ensure(const char *pin_dir, struct dt_bpffs *out);

#endif /* DT_BPFFS_H */
