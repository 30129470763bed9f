/* SPDX-License-Identifier: MIT */
/*
 * progstats.c - how often the dyetrace programs ran, and for how long, over a time span:
 * the live forwarding benchmark's view of the data plane on real traffic.
 *
 *     dt-bench-progstats MS [PROG_ID...]
 *
 * Turns the kernel's BPF run-time statistics on for this process's lifetime
 * (BPF_ENABLE_STATS: they go off again when its fd closes, at exit), reads run_cnt and
 * run_time_ns of the programs given by id (default: every loaded program whose name
 * starts with "dt_"), sleeps MS milliseconds, reads them again, and prints one line per
 * program that ran:
 *
 *     prog NAME ID RUNS NS
 *
 * Statistics cost two clock reads per run, so the traffic measured meanwhile is slower;
 * the live benchmark takes its rates from other rounds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "common.h"

#define MAX_PROGS 256

struct snap {
	__u32 id;
	char name[BPF_OBJ_NAME_LEN];
	__u64 cnt, ns;
};

static __u32 *want;
static int n_want;

static bool wanted(__u32 id, const char *name)
{
	if (n_want == 0)
		return strncmp(name, "dt_", 3) == 0;
	for (int i = 0; i < n_want; i++)
		if (want[i] == id)
			return true;
	return false;
}

static unsigned snapshot(struct snap *s)
{
	__u32 id = 0;
	unsigned n = 0;

	while (n < MAX_PROGS && bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && wanted(id, info.name)) {
			s[n].id = id;
			memcpy(s[n].name, info.name, sizeof(s[n].name));
			s[n].cnt = info.run_cnt;
			s[n].ns = info.run_time_ns;
			n++;
		}
		close(fd);
	}
	return n;
}

int main(int argc, char **argv)
{
	static struct snap a[MAX_PROGS], b[MAX_PROGS];
	unsigned na, nb;
	int fd;

	if (argc < 2)
		dtb_die("usage: dt-bench-progstats MS [PROG_ID...]");
	n_want = argc - 2;
	want = calloc(n_want ? (size_t)n_want : 1, sizeof(*want));
	if (!want)
		dtb_die("out of memory");
	for (int i = 0; i < n_want; i++)
		want[i] = (__u32)strtoul(argv[i + 2], NULL, 10);
	fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (fd < 0)
		dtb_die("BPF_ENABLE_STATS: %s", strerror(errno));
	na = snapshot(a);
	usleep((useconds_t)atol(argv[1]) * 1000);
	nb = snapshot(b);
	for (unsigned i = 0; i < nb; i++)
		for (unsigned j = 0; j < na; j++)
			if (a[j].id == b[i].id && b[i].cnt > a[j].cnt)
				printf("prog %s %u %llu %llu\n", b[i].name, b[i].id,
				       (unsigned long long)(b[i].cnt - a[j].cnt),
				       (unsigned long long)(b[i].ns - a[j].ns));
	close(fd);
	return 0;
}
