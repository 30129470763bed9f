// SPDX-License-Identifier: MIT
/*
 * test_inject.c - a probe put into the overlay as if instance A's port had received it
 * (agent/inject.c, bpf/dt_injector.bpf.c), on real interfaces: in a network namespace of
 * its own, the test builds a bridge with two veth ports whose peers are instances A and B
 * (namespaces of their own, with their own kernels' TCP). It injects a probe SYN from A to
 * B at A's port and checks what the kernel did with it:
 *  - B's kernel answered (RST, no listener on the probe port) and the answer reached A;
 *  - the port's own ingress saw the frame with DT_PROBE_MARK (an nftables netdev counter);
 *  - the bridge learned A's MAC on A's port, as from A itself, not on the bridge device;
 *  - a packet A marks with DT_PROBE_MARK itself reaches the port without the mark: a tenant
 *    cannot pass for a probe.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/types.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dt_packet.h"
#include "dt_probe.h"
#include "inject.h"

#define A_IP 0x0a4d0001u /* 10.77.0.1 */
#define B_IP 0x0a4d0002u /* 10.77.0.2 */
static const uint8_t a_mac[6] = {0x02, 0, 0, 0, 0x77, 0x01};
static const uint8_t b_mac[6] = {0x02, 0, 0, 0, 0x77, 0x02};

static char ns_a[32], ns_b[32];

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The first line of a command's output. */
static void sh_out(char *out, size_t len, const char *cmd)
{
	FILE *f = popen(cmd, "r");

	cr_assert_not_null(f, "%s", cmd);
	out[0] = '\0';
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	pclose(f);
}

/* The packets nftables counter name of table netdev dtinj has counted. */
static unsigned long counted(const char *name)
{
	char cmd[128], line[256];
	FILE *f;
	const char *p;
	unsigned long n = 0;

	snprintf(cmd, sizeof(cmd), "nft list counter netdev dtinj %s", name);
	cr_assert_not_null(f = popen(cmd, "r"));
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, "packets ")))
			n = strtoul(p + 8, NULL, 10);
	pclose(f);
	return n;
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", ns_a,
		 ns_b);
	if (ns_a[0] && system(cmd) != 0)
		fprintf(stderr, "could not delete %s, %s\n", ns_a, ns_b);
}

/* The bridge, its ports pA and pB, the instances A and B behind them; counters at pA. */
static void build_lab(void)
{
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	snprintf(ns_a, sizeof(ns_a), "dtinj-a-%d", (int)getpid());
	snprintf(ns_b, sizeof(ns_b), "dtinj-b-%d", (int)getpid());
	sh("ip link set lo up && ip link add br0 type bridge && ip link set br0 up");
	sh("ip netns add %s && ip netns add %s", ns_a, ns_b);
	sh("ip link add pA type veth peer name eth0 netns %s", ns_a);
	sh("ip link add pB type veth peer name eth0 netns %s", ns_b);
	sh("ip link set pA master br0 up && ip link set pB master br0 up");
	sh("ip -n %s link set eth0 address 02:00:00:00:77:01 up && "
	   "ip -n %s addr add 10.77.0.1/24 dev eth0 && ip -n %s link set lo up",
	   ns_a, ns_a, ns_a);
	sh("ip -n %s link set eth0 address 02:00:00:00:77:02 up && "
	   "ip -n %s addr add 10.77.0.2/24 dev eth0 && ip -n %s link set lo up",
	   ns_b, ns_b, ns_b);
	sh("nft add table netdev dtinj && nft add counter netdev dtinj probe && "
	   "nft add counter netdev dtinj pings && "
	   "nft add chain netdev dtinj in '{ type filter hook ingress device pA priority 0; }' && "
	   "nft add rule netdev dtinj in meta mark 0x%08x counter name probe && "
	   "nft add rule netdev dtinj in ip protocol icmp counter name pings",
	   DT_PROBE_MARK);
}

/* A packet socket on A's eth0, opened inside A's namespace. */
static int open_capture(void)
{
	char path[64];
	int self = open("/proc/self/ns/net", O_RDONLY), ns, fd;
	struct timeval tv = {.tv_sec = 3};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP)};

	snprintf(path, sizeof(path), "/run/netns/%s", ns_a);
	cr_assert((ns = open(path, O_RDONLY)) >= 0 && self >= 0);
	cr_assert_eq(setns(ns, CLONE_NEWNET), 0, "setns: %s", strerror(errno));
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	sll.sll_ifindex = (int)if_nametoindex("eth0");
	cr_assert(fd >= 0 && sll.sll_ifindex > 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(setns(self, CLONE_NEWNET), 0);
	close(ns);
	close(self);
	return fd;
}

/* Waits (3 s at most per packet) for B's answer to the probe: from B's probe port to
 * A's probe source port, RST or SYN-ACK, acknowledging seq + 1. Returns its TCP flags,
 * or 0 when none came. */
static uint8_t wait_answer(int fd, const struct dt_probe_pkt *p)
{
	uint8_t buf[2048];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		const uint8_t *tcp = buf + (buf[0] & 0x0f) * 4;

		if (n < 40 || buf[9] != IPPROTO_TCP || tcp + 20 > buf + n)
			continue;
		if (dt_pkt_get16(tcp) == p->probe_port &&
		    dt_pkt_get16(tcp + 2) == DT_PROBE_SPORT(p->slot) &&
		    ((uint32_t)dt_pkt_get16(tcp + 8) << 16 | dt_pkt_get16(tcp + 10)) ==
			    DT_PROBE_SEQ(p->pair, p->round) + 1)
			return tcp[13];
	}
	return 0;
}

TestSuite(inject, .fini = teardown);

Test(inject, a_probe_takes_the_instances_path_and_is_answered)
{
	struct dt_probe_pkt p = {.saddr = A_IP,
				 .daddr = B_IP,
				 .probe_port = DT_PROBE_PORT,
				 .slot = 17,
				 .pair = 70000,
				 .round = 5};
	uint8_t frame[DT_PROBE_FRAME_LEN];
	struct dt_inject *inj;
	char fdb[256];
	uint8_t flags;
	int cap;

	memcpy(p.src_mac, a_mac, 6);
	memcpy(p.dst_mac, b_mac, 6);
	build_lab();
	cap = open_capture();
	cr_assert_eq(dt_inject_open(&inj), 0);
	cr_assert_eq(dt_probe_frame(frame, &p), DT_PROBE_FRAME_LEN);
	cr_assert(dt_pkt_ip_csum_ok(frame + DT_PKT_ETH_LEN));

	cr_assert_eq(dt_inject_frame(inj, if_nametoindex("pA"), frame, sizeof(frame)), 0);
	flags = wait_answer(cap, &p);
	cr_assert_eq(flags & (DT_PKT_TCP_RST | DT_PKT_TCP_ACK), DT_PKT_TCP_RST | DT_PKT_TCP_ACK,
		     "B's kernel answered the probe with RST, ACK back to A (flags 0x%02x)", flags);
	cr_assert_eq(counted("probe"), 1, "pA's ingress saw the probe, marked");

	sh_out(fdb, sizeof(fdb), "bridge fdb show br br0 | grep -i '^02:00:00:00:77:01 '");
	cr_assert(strstr(fdb, " dev pA "), "A's MAC learned on A's port: %s", fdb);
	sh_out(fdb, sizeof(fdb), "bridge fdb show br br0 | grep -i '^02:00:00:00:77:01 dev br0'");
	cr_assert_str_empty(fdb, "A's MAC not on the bridge device: %s", fdb);

	/* A marks its own packets with the probe's mark: they arrive unmarked. */
	sh("ip netns exec %s nft add table ip t && ip netns exec %s nft add chain ip t o "
	   "'{ type route hook output priority 0; }' && "
	   "ip netns exec %s nft add rule ip t o meta mark set 0x%08x",
	   ns_a, ns_a, ns_a, DT_PROBE_MARK);
	sh("ip netns exec %s ping -c 3 -i 0.2 -W 1 -q 10.77.0.2 >/dev/null", ns_a);
	cr_assert_geq(counted("pings"), 3, "A's pings crossed pA");
	cr_assert_eq(counted("probe"), 1, "none of them with the probe's mark");

	close(cap);
	dt_inject_close(inj);
}

Test(inject, a_port_that_does_not_exist_is_an_error)
{
	struct dt_probe_pkt p = {.saddr = A_IP, .daddr = B_IP, .probe_port = DT_PROBE_PORT};
	uint8_t frame[DT_PROBE_FRAME_LEN];
	struct dt_inject *inj;
	int rv;

	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	cr_assert_eq(dt_inject_open(&inj), 0);
	dt_probe_frame(frame, &p);
	rv = dt_inject_frame(inj, 4000, frame, sizeof(frame));
	cr_assert(rv == -EINVAL || rv == -ENODEV, "no such port: %d", rv);
	dt_inject_close(inj);
}
