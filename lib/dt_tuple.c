/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/types.h>

#include "dt_sample.h"
#include "dt_tuple.h"

static bool proto_has_ports(uint8_t proto)
{
	/* ICMP carries the echo identifier in the port fields (see dt_sample.h). */
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_ICMP;
}

int dt_tuple_task_key(const struct dt_tuple *in, uint32_t *flags, struct dt_tuple *key)
{
	struct dt_tuple k;

	if (in->saddr == 0 || in->daddr == 0 || in->proto == 0 || in->vni > 0xFFFFFF)
		return -EINVAL;
	memset(&k, 0, sizeof(k));
	k.saddr = in->saddr;
	k.daddr = in->daddr;
	k.proto = in->proto;
	k.vni = in->vni;
	if (!proto_has_ports(in->proto) && (in->sport || in->dport))
		return -EINVAL;
	if (in->sport == 0 && in->dport == 0)
		*flags |= DT_TASK_F_ANYPORT;
	if (!(*flags & DT_TASK_F_ANYPORT)) {
		/* A half-given port pair cannot be looked up exactly: one key, all fields.
		 * ICMP echo is the exception: its identifier sits in sport (request) or
		 * dport (reply), and the other is 0 by construction. */
		if (in->proto == IPPROTO_ICMP ? (in->sport != 0) == (in->dport != 0)
					      : (in->sport == 0 || in->dport == 0))
			return -EINVAL;
		k.sport = in->sport;
		k.dport = in->dport;
	}
	*key = k;
	return 0;
}

void dt_tuple_anyport(const struct dt_tuple *in, struct dt_tuple *out)
{
	struct dt_tuple k = *in;

	k.sport = 0;
	k.dport = 0;
	memset(k.pad, 0, sizeof(k.pad));
	*out = k;
}

void dt_tuple_reverse(const struct dt_tuple *in, struct dt_tuple *out)
{
	struct dt_tuple r = *in;

	r.saddr = in->daddr;
	r.daddr = in->saddr;
	r.sport = in->dport;
	r.dport = in->sport;
	*out = r;
}

bool dt_tuple_match(const struct dt_tuple *key, uint32_t flags, const struct dt_tuple *t)
{
	if (key->saddr != t->saddr || key->daddr != t->daddr || key->proto != t->proto ||
	    key->vni != t->vni)
		return false;
	if (flags & DT_TASK_F_ANYPORT)
		return true;
	return key->sport == t->sport && key->dport == t->dport;
}

const char *dt_proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	default:
		snprintf(buf, len, "%u", proto);
		return buf;
	}
}

int dt_proto_parse(const char *s, uint8_t *proto)
{
	char *end;
	unsigned long v;

	if (strcasecmp(s, "tcp") == 0) {
		*proto = IPPROTO_TCP;
		return 0;
	}
	if (strcasecmp(s, "udp") == 0) {
		*proto = IPPROTO_UDP;
		return 0;
	}
	if (strcasecmp(s, "icmp") == 0) {
		*proto = IPPROTO_ICMP;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 255)
		return -EINVAL;
	*proto = (uint8_t)v;
	return 0;
}

int dt_ipv4_parse(const char *s, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*addr = a.s_addr;
	return 0;
}

const char *dt_ipv4_str(uint32_t addr, char *buf, size_t len)
{
	struct in_addr a = {.s_addr = addr};

	if (!inet_ntop(AF_INET, &a, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

const char *dt_tuple_str(const struct dt_tuple *t, uint32_t flags, char *buf, size_t len)
{
	char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN], p[8];
	const char *pn = dt_proto_name(t->proto, p, sizeof(p));

	dt_ipv4_str(t->saddr, s, sizeof(s));
	dt_ipv4_str(t->daddr, d, sizeof(d));
	if (flags & DT_TASK_F_ANYPORT)
		snprintf(buf, len, "%s -> %s %s vni %u", s, d, pn, t->vni);
	else if (t->proto == IPPROTO_ICMP)
		snprintf(buf, len, "%s -> %s icmp id %u vni %u", s, d,
			 ntohs(t->sport ? t->sport : t->dport), t->vni);
	else
		snprintf(buf, len, "%s:%u -> %s:%u %s vni %u", s, ntohs(t->sport), d,
			 ntohs(t->dport), pn, t->vni);
	return buf;
}
