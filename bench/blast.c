/* SPDX-License-Identifier: MIT */
/*
 * blast.c - a bounded UDP packet generator and its sink, for the live forwarding
 * benchmark. Run each inside a lab instance namespace; it only ever sends to the address
 * it is given.
 *
 *     dt-bench-blast send DST_IP PORT MS MAX_PACKETS
 *         sends 18-byte UDP datagrams (60-byte frames) to DST_IP:PORT as fast as it can,
 *         64 per sendmmsg(), for MS milliseconds or MAX_PACKETS packets, whichever comes
 *         first; prints "sent PACKETS ELAPSED_NS CPU_NS" on stdout (CPU_NS: its thread's
 *         CPU time, which holds the forwarding its sends run in softirq on veth, on a
 *         kernel without IRQ time accounting)
 *     dt-bench-blast sink PORT
 *         binds UDP PORT on every address and reads every datagram (recvmmsg(), 64 MiB of
 *         socket buffer), so that packets are consumed, not dropped: a drop would wake
 *         the agent's drop tracer, which real traffic rarely does. It polls without ever
 *         sleeping (MSG_DONTWAIT), so that no packet has to wake it: a wake-up is an
 *         inter-processor interrupt on the sender's CPU, which on a VM costs more than
 *         the forwarding and makes rates noisy. Keep it on another CPU than the sender.
 *         Runs until SIGINT or SIGTERM, then prints "received PACKETS" on stdout
 */
#define _GNU_SOURCE /* sendmmsg(), recvmmsg() */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define BURST 64
#define PAYLOAD 18

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int do_send(const char *dst, int port, long ms, long max)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	static char payload[BURST][PAYLOAD];
	struct mmsghdr msgs[BURST];
	struct iovec iov[BURST];
	uint64_t t0, c0, deadline, now;
	long sent = 0;
	int fd;

	if (inet_pton(AF_INET, dst, &to.sin_addr) != 1)
		dtb_die("bad address %s", dst);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)))
		dtb_die("socket to %s:%d: %s", dst, port, strerror(errno));
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BURST; i++) {
		memset(payload[i], 'x', PAYLOAD);
		iov[i].iov_base = payload[i];
		iov[i].iov_len = PAYLOAD;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	c0 = dtb_thread_cpu_ns();
	t0 = now = dtb_now_ns();
	deadline = t0 + (uint64_t)ms * 1000000ull;
	while (now < deadline && sent < max) {
		unsigned n = max - sent < BURST ? (unsigned)(max - sent) : BURST;
		int rv = sendmmsg(fd, msgs, n, 0);

		if (rv > 0)
			sent += rv;
		else if (rv < 0 && errno != ENOBUFS && errno != ECONNREFUSED && errno != EAGAIN)
			dtb_die("sendmmsg: %s", strerror(errno));
		now = dtb_now_ns();
	}
	printf("sent %ld %llu %llu\n", sent, (unsigned long long)(now - t0),
	       (unsigned long long)(dtb_thread_cpu_ns() - c0));
	close(fd);
	return 0;
}

static int do_sink(int port)
{
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	static char bufs[BURST][256];
	struct mmsghdr msgs[BURST];
	struct iovec iov[BURST];
	struct sigaction sa;
	int fd, rcvbuf = 64 << 20;
	long received = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)))
		dtb_die("bind UDP port %d: %s", port, strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BURST; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	dtb_note("sink on UDP port %d", port);
	while (!stop) {
		int rv = recvmmsg(fd, msgs, BURST, MSG_DONTWAIT, NULL);

		if (rv > 0)
			received += rv;
		else if (rv < 0 && errno != EINTR && errno != EAGAIN)
			dtb_die("recvmmsg: %s", strerror(errno));
	}
	printf("received %ld\n", received);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]));
	if (argc == 3 && strcmp(argv[1], "sink") == 0)
		return do_sink(atoi(argv[2]));
	dtb_die("usage: dt-bench-blast send DST_IP PORT MS MAX_PACKETS | sink PORT");
}
