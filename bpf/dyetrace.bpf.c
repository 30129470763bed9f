// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * dyetrace.bpf.c - the data plane: color at the first hop, sample colored packets everywhere.
 *
 * Four tc (clsact) programs, one object; the agent attaches them by name. All of them
 * return TC_ACT_OK whatever happens: dyetrace observes traffic, it never drops or redirects.
 *
 *   dt_port_ingress   ingress of a host-side interface that faces an instance: the FIRST HOP.
 *                     Parses Ethernet/IPv4/L4, looks the six-tuple up in dt_tasks (VNI from
 *                     dt_ports); on a match sets the color (DT_COLOR_BIT, the IPv4 reserved
 *                     flag) with the header checksum fixed incrementally, and samples with
 *                     DT_SAMPLE_F_FIRST_HOP and the task id. A packet that arrives from the
 *                     instance already colored and matches no task has its color removed
 *                     (DT_CNT_FOREIGN_COLOR): a tenant cannot inject traced packets.
 *   dt_port_egress    egress of the same interface, towards the instance: the LAST HOP.
 *                     Colored packets are sampled, then their color is removed (and counted
 *                     in DT_CNT_UNCOLORED), so instances never see it. Uncolored: untouched.
 *   dt_uplink_ingress ingress and egress of the underlay NIC. Parse outer Ethernet/IPv4/UDP
 *   dt_uplink_egress  (destination port dt_vxlan_port)/VXLAN and the inner Ethernet/IPv4/L4;
 *                     a colored inner packet is sampled with the VNI and the outer addresses.
 *                     They never modify the packet.
 *
 * Maps (names are part of the agent's contract):
 *   dt_ports     hash, __u32 ifindex -> struct dt_port_val: the ports and their VNI. A port
 *                without an entry colors nothing; it still strips foreign colors.
 *   dt_tasks     hash, struct dt_tuple -> struct dt_task_val: the armed tasks, keyed as
 *                dt_tuple_task_key() builds them. Wildcard tasks (DT_TASK_F_ANYPORT) are
 *                stored with sport = dport = 0.
 *   dt_task_filter  array of DT_FILTER_WORDS __u64: the optional prefilter of dt_tasks, a
 *                bitmap that the agent maintains (protocol in dt_filter.h).
 *   dt_events    ring buffer of struct dt_sample. 4 MiB unless the agent sets another size
 *                (bpf_map__set_max_entries() before load).
 *   dt_counters  per-CPU array of __u64, indexed by enum dt_counter.
 * Globals:
 *   dt_anyport_tasks (.bss)  how many armed tasks are wildcards. The agent keeps it up to
 *                date; wildcards are only looked for while it is not 0.
 *   dt_filter_on (.bss)  0 (initially): no prefilter, every candidate is looked up;
 *                1: the agent keeps dt_task_filter complete and a clear bit skips lookups.
 *   dt_vxlan_port (.rodata)  the underlay's VXLAN UDP port, DT_VXLAN_PORT unless the agent
 *                sets it before load.
 *
 * Cost (NUMBERS.md): an untraced packet leaving an instance costs a header parse and, with
 * the prefilter on, one or two bitmap tests; without it, two hash lookups (port, task), and
 * a third while wildcard tasks exist. At a port's egress and at the uplink it costs a
 * header parse. Only traced packets reach the ring buffer, the clock and the writers.
 *
 * Headers that are not in the skb's linear area make the parse return DT_PARSE_SHORT
 * before any side effect; the program then pulls the headers in (bpf_skb_pull_data(),
 * only when data is really outside the linear area) and runs once more as the last try.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dt_sample.h"
#include "dt_filter.h"
#include "parse.h"

#define TC_ACT_OK 0

/* The port programs see untagged frames: IPv4 always starts right after Ethernet. */
#define DT_PORT_L3_OFF sizeof(struct ethhdr)

#define DT_EVENTS_DEFAULT_SIZE (4u << 20)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct dt_port_val);
} dt_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_TASKS);
	__type(key, struct dt_tuple);
	__type(value, struct dt_task_val);
} dt_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DT_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} dt_task_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DT_EVENTS_DEFAULT_SIZE);
} dt_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dt_counters SEC(".maps");

volatile __u32 dt_anyport_tasks;
volatile __u32 dt_filter_on;
const volatile __u16 dt_vxlan_port = DT_VXLAN_PORT;

static __always_inline void dt_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&dt_counters, &idx);

	if (v)
		*v += 1;
}

/*
 * The one writer of samples. Reserve failure (ring full: the agent is not draining fast
 * enough, or the ring is too small) is counted in DT_CNT_RING_FULL, never dropped silently.
 * Every byte of the record is written, padding included.
 */
static __always_inline void dt_emit(__u32 ifindex, __u8 hook, __u8 flags, const struct dt_pkt *pkt,
				    __u32 task_id, __u32 outer_saddr, __u32 outer_daddr)
{
	struct dt_sample *s;

	s = bpf_ringbuf_reserve(&dt_events, sizeof(*s), 0);
	if (!s) {
		dt_count(DT_CNT_RING_FULL);
		return;
	}
	s->version = DT_SAMPLE_VERSION;
	s->hook = hook;
	s->flags = flags;
	s->pad0 = 0;
	s->ifindex = ifindex;
	s->ts_ns = bpf_ktime_get_ns();
	s->tuple = pkt->tuple;
	s->task_id = task_id;
	s->ip_id = pkt->ip_id;
	s->pad1 = 0;
	s->ident = pkt->ident;
	s->len = pkt->len;
	s->outer_saddr = outer_saddr;
	s->outer_daddr = outer_daddr;
	s->pad2 = 0;
	bpf_ringbuf_submit(s, 0);
	dt_count(DT_CNT_SAMPLED);
}

/*
 * Sets (on) or clears the color of a port program's packet, fixing the IPv4 header
 * checksum incrementally. The header's one's-complement sum does not change, so an
 * skb->csum over the packet (CHECKSUM_COMPLETE) stays valid. Either both fields are
 * written or neither. Returns 0 or a negative errno from the helpers.
 */
static __always_inline int dt_color_write(struct __sk_buff *skb, struct dt_pkt *pkt, bool on)
{
	__u16 frag = on ? pkt->frag_off | DT_COLOR_BIT : pkt->frag_off & ~DT_COLOR_BIT;
	__be16 from = bpf_htons(pkt->frag_off);
	__be16 to = bpf_htons(frag);
	int rc;

	rc = bpf_l3_csum_replace(skb, DT_PORT_L3_OFF + offsetof(struct iphdr, check), from, to,
				 sizeof(to));
	if (rc)
		return rc;
	rc = bpf_skb_store_bytes(skb, DT_PORT_L3_OFF + offsetof(struct iphdr, frag_off), &to,
				 sizeof(to), 0);
	if (rc) {
		bpf_l3_csum_replace(skb, DT_PORT_L3_OFF + offsetof(struct iphdr, check), to, from,
				    sizeof(to));
		return rc;
	}
	pkt->frag_off = frag;
	return 0;
}

/* False when the prefilter proves that no task has this key (VNI aside); see dt_filter.h. */
static __always_inline bool dt_filter_test(const struct dt_tuple *t)
{
	__u32 bit, word;
	__u64 *w;

	if (!dt_filter_on)
		return true;
	bit = dt_filter_bit(t);
	word = bit / 64;
	w = bpf_map_lookup_elem(&dt_task_filter, &word);
	return w && ((*w >> (bit % 64)) & 1);
}

/*
 * The armed task of a packet arriving on port ifindex, or NULL; sets the tuple's VNI.
 * Candidates: the exact tuple, and, while wildcard tasks exist, the tuple with ports 0,
 * accepted only if that task is a wildcard (a tuple whose ports are 0 already has one
 * candidate). The prefilter drops candidates before any hash lookup; the port's VNI is
 * looked up only for a candidate that survives; the exact match wins.
 */
static __always_inline struct dt_task_val *dt_task_find(struct dt_pkt *pkt, __u32 ifindex)
{
	struct dt_task_val *task;
	struct dt_port_val *port;
	struct dt_tuple any;
	bool exact, wild;

	exact = dt_filter_test(&pkt->tuple);
	wild = dt_anyport_tasks && (pkt->tuple.sport || pkt->tuple.dport);
	if (wild) {
		any = pkt->tuple;
		any.sport = 0;
		any.dport = 0;
		wild = dt_filter_test(&any);
	}
	if (!exact && !wild)
		return NULL;

	port = bpf_map_lookup_elem(&dt_ports, &ifindex);
	if (!port)
		return NULL;
	pkt->tuple.vni = port->vni;
	if (exact) {
		task = bpf_map_lookup_elem(&dt_tasks, &pkt->tuple);
		if (task)
			return task;
	}
	if (wild) {
		any.vni = port->vni;
		task = bpf_map_lookup_elem(&dt_tasks, &any);
		if (task && (task->flags & DT_TASK_F_ANYPORT))
			return task;
	}
	return NULL;
}

/*
 * Makes up to @want bytes of the skb linear for a second parse. Pulls only when data lies
 * outside the linear area; bpf_skb_pull_data() also unclones, which is not free.
 */
static __always_inline void dt_pull(struct __sk_buff *skb, __u32 want)
{
	__u32 len = dt_skb_load(skb, len);

	if (len > want)
		len = want;
	if ((void *)(long)dt_skb_load(skb, data) + len <= (void *)(long)dt_skb_load(skb, data_end))
		return;
	bpf_skb_pull_data(skb, len);
}

/*
 * The bodies return DT_PARSE_SHORT, before any side effect, when headers are missing
 * from the linear data and this is not the last try; anything else means done.
 */

static __always_inline int port_ingress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_task_val *task = NULL;
	struct dt_pkt pkt = {};
	struct dt_cursor c;
	int rc;

	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc; /* not IPv4, or a malformed header: nothing to color or strip */
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;

	/* A truncated L4 header matches nothing (its color, if any, goes). */
	if (rc == 0)
		task = dt_task_find(&pkt, ifindex);

	if (!task) {
		if ((pkt.frag_off & DT_COLOR_BIT) && dt_color_write(skb, &pkt, false) == 0)
			dt_count(DT_CNT_FOREIGN_COLOR);
		return 0;
	}
	/* Colored already by the instance and matching: it is ours now, keep the bit. */
	if (!(pkt.frag_off & DT_COLOR_BIT) && dt_color_write(skb, &pkt, true) != 0)
		return 0;
	dt_count(DT_CNT_COLORED);
	dt_emit(ifindex, DT_HOOK_PORT_IN, DT_SAMPLE_F_FIRST_HOP, &pkt, task->task_id, 0, 0);
	return 0;
}

static __always_inline int port_egress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_pkt pkt = {};
	struct dt_port_val *port;
	struct dt_cursor c;
	int rc;

	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc;
	if (!(pkt.frag_off & DT_COLOR_BIT))
		return 0;
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;

	/* A truncated L4 header gives no tuple worth sampling; the color goes anyway. */
	if (rc == 0) {
		port = bpf_map_lookup_elem(&dt_ports, &ifindex);
		pkt.tuple.vni = port ? port->vni : 0;
		dt_emit(ifindex, DT_HOOK_PORT_OUT, 0, &pkt, 0, 0, 0);
	}
	if (dt_color_write(skb, &pkt, false) == 0)
		dt_count(DT_CNT_UNCOLORED);
	return 0;
}

/*
 * Outer IPv4 fragments other than the first carry no UDP/VXLAN header and are skipped;
 * a first fragment is parsed like any packet.
 */
static __always_inline int uplink(struct __sk_buff *skb, __u32 ifindex, __u8 hook)
{
	struct dt_vxlanhdr *vx;
	struct dt_pkt pkt = {};
	struct udphdr *udp;
	struct ethhdr *eth;
	struct iphdr *oip;
	struct dt_cursor c;
	__u32 osaddr, odaddr;
	int rc, vni;

	dt_cursor_init(&c, skb);
	rc = dt_parse_ethhdr(&c, &eth);
	if (rc != DT_ETH_P_IP)
		return rc < 0 ? rc : DT_PARSE_OTHER;
	rc = dt_parse_iphdr(&c, &oip);
	if (rc != IPPROTO_UDP)
		return rc < 0 ? rc : DT_PARSE_OTHER;
	if (bpf_ntohs(oip->frag_off) & DT_IP_OFFSET)
		return DT_PARSE_OTHER;
	osaddr = oip->saddr;
	odaddr = oip->daddr;
	rc = dt_parse_udphdr(&c, &udp);
	if (rc != dt_vxlan_port)
		return rc < 0 ? rc : DT_PARSE_OTHER;
	vni = dt_parse_vxlanhdr(&c, &vx);
	if (vni < 0)
		return vni;
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc;
	if (!(pkt.frag_off & DT_COLOR_BIT))
		return 0;
	rc = dt_parse_l4(&c, &pkt);
	if (rc < 0)
		return rc;
	pkt.tuple.vni = vni;
	dt_emit(ifindex, hook, 0, &pkt, 0, osaddr, odaddr);
	return 0;
}

/* skb->ifindex is read once, here, rather than in the bodies that are inlined twice. */
SEC("tc")
int dt_port_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	if (port_ingress(skb, ifindex, false) == DT_PARSE_SHORT) {
		dt_pull(skb, DT_PULL_INNER);
		port_ingress(skb, ifindex, true);
	}
	return TC_ACT_OK;
}

SEC("tc")
int dt_port_egress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	if (port_egress(skb, ifindex, false) == DT_PARSE_SHORT) {
		dt_pull(skb, DT_PULL_INNER);
		port_egress(skb, ifindex, true);
	}
	return TC_ACT_OK;
}

SEC("tc")
int dt_uplink_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	if (uplink(skb, ifindex, DT_HOOK_UPLINK_IN) == DT_PARSE_SHORT) {
		dt_pull(skb, DT_PULL_OUTER);
		uplink(skb, ifindex, DT_HOOK_UPLINK_IN);
	}
	return TC_ACT_OK;
}

SEC("tc")
int dt_uplink_egress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;

	if (uplink(skb, ifindex, DT_HOOK_UPLINK_OUT) == DT_PARSE_SHORT) {
		dt_pull(skb, DT_PULL_OUTER);
		uplink(skb, ifindex, DT_HOOK_UPLINK_OUT);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
