/* SPDX-License-Identifier: MIT */
/*
 * bpffs.c - make the agent's pin directory usable, the way iproute2 does for tc: when it
 * is not on a bpf file system, mount one (at /sys/fs/bpf for a pin_dir below it, else at
 * pin_dir itself) in this process's mount namespace, and tell whether pins made there can
 * outlive the agent, which is what a handover across a restart needs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bpffs.h"

#define SYS_BPFFS "/sys/fs/bpf"

bool dt_bpffs_holds(const char *dir)
{
	char path[DT_BPFFS_PATH_MAX];
	struct statfs st;
	char *slash;

	snprintf(path, sizeof(path), "%s", dir);
	while (statfs(path, &st) != 0) {
		if (errno != ENOENT || !(slash = strrchr(path, '/')) || slash == path)
			return false;
		*slash = '\0';
	}
	return st.f_type == BPF_FS_MAGIC;
}

int dt_bpffs_mkdirs(const char *dir, mode_t mode)
{
	char path[DT_BPFFS_PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(path, mode) && errno != EEXIST ? -errno : 0;
}

/* The directory to mount a bpf file system on for pin_dir. */
static void mount_point(const char *pin_dir, char *out, size_t outlen)
{
	size_t n = strlen(SYS_BPFFS);

	if (strncmp(pin_dir, SYS_BPFFS, n) == 0 && (pin_dir[n] == '/' || pin_dir[n] == '\0'))
		snprintf(out, outlen, "%s", SYS_BPFFS);
	else
		snprintf(out, outlen, "%s", pin_dir);
}

/*
 * True when another process shares this process's mount namespace. When none does (the
 * agent was started by "ip netns exec", which gives each command a namespace of its own),
 * a file system mounted here is gone when the agent exits, and its pins with it.
 */
static bool mount_ns_shared(void)
{
	struct stat self, other;
	struct dirent *de;
	char path[64];
	bool shared = false;
	pid_t me = getpid();
	DIR *d;

	if (stat("/proc/self/ns/mnt", &self) != 0 || !(d = opendir("/proc")))
		return true; /* cannot tell: do not claim more than we know */
	while (!shared && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == me)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
		shared = stat(path, &other) == 0 && other.st_ino == self.st_ino &&
			 other.st_dev == self.st_dev;
	}
	closedir(d);
	return shared;
}

int dt_bpffs_ensure(const char *pin_dir, struct dt_bpffs *out)
{
	memset(out, 0, sizeof(*out));
	if (pin_dir[0] != '/') {
		snprintf(out->why, sizeof(out->why), "pin_dir %s is not an absolute path", pin_dir);
		return -EINVAL;
	}
	if (dt_bpffs_holds(pin_dir)) {
		out->durable = true;
		return 0;
	}
	mount_point(pin_dir, out->mounted_at, sizeof(out->mounted_at));
	if (dt_bpffs_mkdirs(out->mounted_at, 0700) && !dt_bpffs_holds(out->mounted_at)) {
		int rv = -errno;

		snprintf(out->why, sizeof(out->why),
			 "cannot create %s: %s; mount a bpf file system there first: "
			 "mount -t bpf bpf %s",
			 out->mounted_at, strerror(errno), out->mounted_at);
		out->mounted_at[0] = '\0';
		return rv;
	}
	if (mount("bpf", out->mounted_at, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700")) {
		int rv = -errno;

		snprintf(out->why, sizeof(out->why),
			 "cannot mount a bpf file system at %s: %s; mount one first: "
			 "mount -t bpf bpf %s",
			 out->mounted_at, strerror(errno), out->mounted_at);
		out->mounted_at[0] = '\0';
		return rv;
	}
	if (!dt_bpffs_holds(pin_dir)) {
		snprintf(out->why, sizeof(out->why),
			 "%s is still not on a bpf file system after mounting one at %s", pin_dir,
			 out->mounted_at);
		return -ENOTDIR;
	}
	out->durable = mount_ns_shared();
	if (!out->durable)
		snprintf(
			out->why, sizeof(out->why),
			"the bpf file system at %s lives in a mount namespace of this agent's "
			"own (\"ip netns exec\"?), so its pins end with the agent; start the agent "
			"in the host's mount namespace (nsenter --net=...) for a handover",
			out->mounted_at);
	return 0;
}
