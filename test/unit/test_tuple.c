/* SPDX-License-Identifier: MIT */
/* Task-map key construction: the one place userspace builds data-plane keys. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dt_tuple.h"

static struct dt_tuple tup(const char *s, const char *d, uint16_t sp, uint16_t dp, uint8_t proto,
			   uint32_t vni)
{
	struct dt_tuple t;

	memset(&t, 0xA5, sizeof(t)); /* garbage in the padding must not reach the key */
	cr_assert_eq(dt_ipv4_parse(s, &t.saddr), 0);
	cr_assert_eq(dt_ipv4_parse(d, &t.daddr), 0);
	t.sport = htons(sp);
	t.dport = htons(dp);
	t.proto = proto;
	t.vni = vni;
	return t;
}

Test(task_key, exact_tcp_key_keeps_ports_and_zeroes_padding)
{
	struct dt_tuple in = tup("10.0.0.1", "10.0.0.2", 1234, 80, IPPROTO_TCP, 100), key;
	uint32_t flags = 0;

	cr_assert_eq(dt_tuple_task_key(&in, &flags, &key), 0);
	cr_assert_eq(flags, 0);
	cr_assert_eq(key.sport, htons(1234));
	cr_assert_eq(key.dport, htons(80));
	cr_assert_eq(key.vni, 100);
	cr_assert_eq(key.pad[0] | key.pad[1] | key.pad[2], 0);
}

Test(task_key, no_ports_means_anyport_with_zero_ports)
{
	struct dt_tuple in = tup("10.0.0.1", "10.0.0.2", 0, 0, IPPROTO_UDP, 7), key;
	uint32_t flags = 0;

	cr_assert_eq(dt_tuple_task_key(&in, &flags, &key), 0);
	cr_assert(flags & DT_TASK_F_ANYPORT);
	cr_assert_eq(key.sport, 0);
	cr_assert_eq(key.dport, 0);
}

Test(task_key, anyport_flag_clears_given_ports)
{
	struct dt_tuple in = tup("10.0.0.1", "10.0.0.2", 5, 6, IPPROTO_TCP, 7), key;
	uint32_t flags = DT_TASK_F_ANYPORT;

	cr_assert_eq(dt_tuple_task_key(&in, &flags, &key), 0);
	cr_assert_eq(key.sport | key.dport, 0);
}

Test(task_key, icmp_echo_identifier_in_one_port)
{
	struct dt_tuple req = tup("10.0.0.1", "10.0.0.2", 77, 0, IPPROTO_ICMP, 1), key;
	struct dt_tuple both = tup("10.0.0.1", "10.0.0.2", 77, 77, IPPROTO_ICMP, 1);
	uint32_t flags = 0;

	cr_assert_eq(dt_tuple_task_key(&req, &flags, &key), 0);
	cr_assert_eq(flags, 0);
	cr_assert_eq(key.sport, htons(77));
	flags = 0;
	cr_assert_eq(dt_tuple_task_key(&both, &flags, &key), -EINVAL);
}

Test(task_key, impossible_flows_are_refused)
{
	struct dt_tuple key, t;
	uint32_t flags;

	t = tup("10.0.0.1", "10.0.0.2", 1, 0, IPPROTO_TCP, 1); /* half a port pair */
	flags = 0;
	cr_assert_eq(dt_tuple_task_key(&t, &flags, &key), -EINVAL);
	t = tup("10.0.0.1", "10.0.0.2", 1, 2, IPPROTO_TCP, 1 << 24); /* VNI over 24 bits */
	flags = 0;
	cr_assert_eq(dt_tuple_task_key(&t, &flags, &key), -EINVAL);
	t = tup("0.0.0.0", "10.0.0.2", 1, 2, IPPROTO_TCP, 1);
	flags = 0;
	cr_assert_eq(dt_tuple_task_key(&t, &flags, &key), -EINVAL);
	t = tup("10.0.0.1", "10.0.0.2", 1, 2, 47 /* GRE: no ports */, 1);
	flags = 0;
	cr_assert_eq(dt_tuple_task_key(&t, &flags, &key), -EINVAL);
	t = tup("10.0.0.1", "10.0.0.2", 0, 0, 0, 1);
	flags = 0;
	cr_assert_eq(dt_tuple_task_key(&t, &flags, &key), -EINVAL);
}

Test(task_key, equal_flows_give_identical_bytes)
{
	struct dt_tuple a = tup("10.0.0.1", "10.0.0.2", 1, 2, IPPROTO_TCP, 9), b = a, ka, kb;
	uint32_t fa = 0, fb = 0;

	memset(b.pad, 0x11, sizeof(b.pad));
	cr_assert_eq(dt_tuple_task_key(&a, &fa, &ka), 0);
	cr_assert_eq(dt_tuple_task_key(&b, &fb, &kb), 0);
	cr_assert_eq(memcmp(&ka, &kb, sizeof(ka)), 0);
}

Test(tuple, reverse_swaps_addresses_and_ports)
{
	struct dt_tuple t = tup("10.0.0.1", "10.0.0.2", 77, 0, IPPROTO_ICMP, 1), r;

	dt_tuple_reverse(&t, &r);
	cr_assert_eq(r.saddr, t.daddr);
	cr_assert_eq(r.daddr, t.saddr);
	cr_assert_eq(r.sport, 0);
	cr_assert_eq(r.dport, htons(77));
}

Test(tuple, match_respects_anyport)
{
	struct dt_tuple key = tup("10.0.0.1", "10.0.0.2", 0, 0, IPPROTO_TCP, 3);
	struct dt_tuple pkt = tup("10.0.0.1", "10.0.0.2", 4000, 80, IPPROTO_TCP, 3);
	struct dt_tuple other_vni = tup("10.0.0.1", "10.0.0.2", 4000, 80, IPPROTO_TCP, 4);

	cr_assert(dt_tuple_match(&key, DT_TASK_F_ANYPORT, &pkt));
	cr_assert_not(dt_tuple_match(&key, 0, &pkt));
	cr_assert_not(dt_tuple_match(&key, DT_TASK_F_ANYPORT, &other_vni));
}

Test(tuple, parse_and_print)
{
	char buf[DT_TUPLE_STR_MAX];
	struct dt_tuple t = tup("10.0.0.1", "10.0.0.2", 1234, 80, IPPROTO_TCP, 100);
	uint8_t p;
	uint32_t a;

	cr_assert_str_eq(dt_tuple_str(&t, 0, buf, sizeof(buf)),
			 "10.0.0.1:1234 -> 10.0.0.2:80 tcp vni 100");
	cr_assert_eq(dt_proto_parse("icmp", &p), 0);
	cr_assert_eq(p, IPPROTO_ICMP);
	cr_assert_eq(dt_proto_parse("17", &p), 0);
	cr_assert_eq(p, 17);
	cr_assert_eq(dt_proto_parse("256", &p), -EINVAL);
	cr_assert_eq(dt_proto_parse("tcpx", &p), -EINVAL);
	cr_assert_eq(dt_ipv4_parse("10.0.0.256", &a), -EINVAL);
}
