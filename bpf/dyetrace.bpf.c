// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * dyetrace.bpf.c - the data plane: color at the first hop, sample colored packets everywhere,
 * report the colored packets the kernel drops.
 *
 * Eight programs, one object; the agent attaches them by name. None of them ever drops,
 * redirects or delays a packet: the tc programs return TC_ACT_UNSPEC (tcx: TCX_NEXT) whatever
 * happens, so that what runs after them (other tcx programs, tc filters) still decides the
 * packet's fate, and write nothing but the color bit; the tracing program only reads.
 *
 *   dt_port_ingress   tc ingress of a host-side interface that faces an instance: the FIRST
 *                     HOP. Parses Ethernet/IPv4/L4, looks the six-tuple up in dt_tasks (VNI
 *                     from dt_ports; request keys and reply keys alike); on a match sets the
 *                     color (DT_COLOR_BIT, the IPv4 reserved flag) with the header checksum
 *                     fixed incrementally, and samples with DT_SAMPLE_F_FIRST_HOP, the task
 *                     id, and DT_SAMPLE_F_REPLY when the key is a reply key (DT_TASK_F_REPLY).
 *                     A packet that arrives from the instance already colored and matches no
 *                     task has its color removed (DT_CNT_FOREIGN_COLOR): a tenant cannot
 *                     inject traced packets. A match is first admitted by the key's limits
 *                     (see "Limits" below); a packet over them is treated like a miss.
 *   dt_port_egress    tc egress of the same interface, towards the instance: the LAST HOP.
 *                     Colored packets are sampled, then their color is removed (and counted
 *                     in DT_CNT_UNCOLORED), so instances never see it. Uncolored: untouched.
 *   dt_uplink_ingress tc ingress and egress of the underlay NIC. Parse outer Ethernet/IPv4/UDP
 *   dt_uplink_egress  (destination port dt_vxlan_port)/VXLAN and the inner Ethernet/IPv4/L4;
 *                     a colored inner packet is sampled with the VNI and the outer addresses.
 *                     They never modify the packet.
 *   dt_gw_egress      tc egress of a gateway's outside interface (after SNAT): an EXIT, like
 *                     a port's egress. A colored packet is sampled (DT_HOOK_GW_OUT) with its
 *                     tuple as it leaves and, from the conntrack entry the skb carries, the
 *                     tuple inside the NAT (orig, DT_SAMPLE_F_NAT), then uncolored. No
 *                     conntrack entry: sampled without orig, DT_CNT_NAT_NO_CT. It also
 *                     teaches dt_gw_icmp the NAT of ICMP echo flows whose replies are armed.
 *   dt_gw_ingress     tc ingress of the same interface (before conntrack and de-NAT): an
 *                     ENTRY, the first hop of replies. The packet's conntrack entry (kfunc
 *                     bpf_skb_ct_lookup(); ICMP echo: dt_gw_icmp) gives the tuple inside the
 *                     NAT; that tuple, with the interface's VNI from dt_ports, is looked up
 *                     in dt_tasks like at a port; on a match the packet is colored and
 *                     sampled (DT_HOOK_GW_IN, task id, orig, DT_SAMPLE_F_NAT). Without an
 *                     entry the tuple as seen is looked up, and a match counts
 *                     DT_CNT_NAT_NO_CT. Foreign colors are removed and limits enforced as
 *                     at a port.
 *   dt_overlay_egress tc egress of every VXLAN device of the node (the agent finds them):
 *                     before the encapsulation drops the packet's conntrack entry. A colored
 *                     packet that conntrack translated on this node (a router's DNAT, a load
 *                     balancer's full NAT, hairpin NAT) teaches dt_nat its tuple before any
 *                     translation (conntrack's ORIGINAL tuple, reversed for replies: the
 *                     form a task names). Never samples.
 *   The uplink's egress (and a drop of the encapsulated packet) gives a colored packet
 *   that this node translated orig = that tuple (DT_SAMPLE_F_NAT) from dt_nat; the port
 *   egress and the other drops read the conntrack entry the skb still carries. So the
 *   analyzer learns a translation where it happens, whatever the role of the hook that
 *   sees the packet next. dt_overlay_egress writes, or removes, the entry for every
 *   colored packet it sees: a lesson never outlives the translation it came from.
 *   dt_kfree_skb      tp_btf/kfree_skb: every skb the kernel frees with a drop reason (not
 *                     SKB_CONSUMED). A colored IPv4 packet, or a VXLAN packet whose inner
 *                     IPv4 packet is colored (DT_SAMPLE_F_ENCAP, outer addresses), is sampled
 *                     (DT_HOOK_DROP) with the raw reason, the freeing location, skb->dev's
 *                     ifindex (0 without a device) and, when the skb's conntrack entry
 *                     translates, orig (DT_SAMPLE_F_NAT). Only drops in the network namespace
 *                     dt_netns_ino are reported; others count DT_CNT_DROP_OTHER_NS.
 *
 * Maps (names are part of the agent's contract):
 *   dt_ports     hash, __u32 ifindex -> struct dt_port_val: the ports and gateway outside
 *                interfaces, and their VNI. A port without an entry colors nothing; it
 *                still strips foreign colors. Drops on an interface found here get its VNI.
 *   dt_port_slots  array of DT_PORT_SLOTS, ifindex -> struct dt_port_val: the same for
 *                ifindexes below DT_PORT_SLOTS, with DT_PORT_F_SET; read instead of the
 *                hash when the ifindex has a slot (dt_ports.h: dt_port_find()).
 *   dt_tasks     hash, struct dt_tuple -> struct dt_task_val: the armed tasks, keyed as
 *                dt_tuple_task_key() builds them. Wildcard tasks (DT_TASK_F_ANYPORT) are
 *                stored with sport = dport = 0; reply keys carry DT_TASK_F_REPLY.
 *   dt_task_quota  hash, struct dt_tuple -> struct dt_quota_val, DT_MAX_TASKS entries: the
 *                limit state of every key of dt_tasks that has a budget or a rate (the
 *                dt_tasks key that matched, byte for byte). The data plane creates an
 *                entry at the key's first admitted match; the agent deletes the entry
 *                when it disarms the key (after deleting the dt_tasks key), and never
 *                writes one. Re-applying a control set therefore never resets a budget.
 *                The agent reads colored (under the entry's lock) for its node state: the
 *                analyzer decides DONE by it.
 *   dt_task_slots  array of DT_SLOTS struct dt_task_slot: dt_tasks direct-mapped by a hash
 *                of the tuple without its VNI, each slot empty, one key with its value, or
 *                a collision (look dt_tasks up); the agent maintains it (dt_filter.h).
 *   dt_events    ring buffer of struct dt_sample. 4 MiB unless the agent sets another size
 *                (bpf_map__set_max_entries() before load).
 *   dt_counters  per-CPU array of __u64, indexed by enum dt_counter.
 *   dt_gw_icmp   LRU hash, struct dt_tuple -> struct dt_tuple, the data plane's own (the
 *                agent leaves it alone): an ICMP echo reply as it arrives at a gateway ->
 *                the same reply inside the NAT, VNI 0 in both. Conntrack's kfunc looks up
 *                TCP and UDP only.
 *   dt_nat       LRU hash, struct dt_tuple -> struct dt_tuple, the data plane's own: a
 *                colored packet as this node translated it -> the same packet before any
 *                translation, VNI 0 in both (dt_overlay_egress writes it).
 * Globals:
 *   dt_armed_keys (.bss)  how many keys dt_tasks holds. While 0 (initially), the entries
 *                (port and gateway ingress) only strip a foreign color and return: no
 *                L4 parse, no lookup, no conntrack.
 *   dt_anyport_tasks (.bss)  how many armed tasks are wildcards. The agent keeps it up to
 *                date; wildcards are only looked for while it is not 0.
 *   dt_filter_on (.bss)  0 (initially): no slot table, every candidate is looked up in
 *                dt_tasks; 1: the agent keeps dt_task_slots the table of dt_tasks.
 *   dt_netns_ino (.bss)  the inode number of the agent's network namespace
 *                (stat("/proc/self/ns/net").st_ino); dt_kfree_skb reports drops of that
 *                namespace only (skb->dev's, else skb->sk's). 0 (initially): every drop.
 *   dt_vxlan_port (.rodata)  the underlay's VXLAN UDP port, DT_VXLAN_PORT unless the agent
 *                sets it before load.
 *
 * Limits (dt_quota_admit()): a key with budget or rate_pps (struct dt_task_val; 0: none)
 * colors at most budget packets in all and at most rate_pps per second, as a token bucket
 * of DT_QUOTA_BURST(rate_pps) = max(1, rate_pps / 10) packets (a tenth of a second's worth)
 * that refills continuously at rate_pps and starts full. Every admitted match counts,
 * also one the sender colored already (its bit stays). A match over the budget counts
 * DT_CNT_BUDGET_SPENT, one over the rate DT_CNT_RATE_LIMITED (the budget is tested first;
 * a refused packet spends neither); either is left like a miss: uncolored, not sampled,
 * a color it came with removed (DT_CNT_FOREIGN_COLOR). The state is per key: a task's
 * request and reply keys each have the task's limits. An entry whose task_id is not the
 * matching task's (a key re-armed for another task before the agent deleted the entry)
 * starts over. An admitted packet whose color cannot be written (DT_CNT_WRITE_FAIL) has
 * spent its share. The clock is read only for keys with a rate; keys without limits never
 * touch dt_task_quota.
 *
 * Conntrack (conntrack.h): kfuncs declared __weak, so the object loads on a kernel without
 * them or with nf_conntrack as a module not loaded yet (the agent loads it first); then the
 * gateway programs find no entry and count DT_CNT_NAT_NO_CT.
 *
 * Cost (docs/design.md): an untraced packet leaving an instance costs a header parse and, with
 * the slot table on, one or two slot reads; without it, two hash lookups (port, task), and
 * a third while wildcard tasks exist; a traced one a slot read and the port's slot, a hash
 * lookup only when its key shares its slot. At a port's egress, at the overlay's and at the
 * uplink an untraced packet costs a test of its IPv4 flags byte at a fixed offset (the inner
 * one for VXLAN frames): one cache line, no map (dt_plainly_uncolored()). At a gateway's egress, a
 * header parse (ICMP echo requests: plus a conntrack read and a task lookup); at its ingress every
 * TCP and UDP packet costs a conntrack lookup (as much again as conntrack's own, moments later)
 * before the task lookups, ICMP a hash lookup. A drop costs a few reads of the skb, more only when
 * colored. Only traced packets reach the ring buffer, the clock and the writers; a traced key with
 * limits adds a hash lookup and a spin lock, and, with a rate, a clock read. A helper that fails
 * while writing the color is counted in DT_CNT_WRITE_FAIL and leaves the packet as it was.
 *
 * Headers that are not in the skb's linear area make the parse return DT_PARSE_SHORT
 * before any side effect; the tc program then pulls the headers in (bpf_skb_pull_data(),
 * only when data is really outside the linear area) and runs once more as the last try.
 * The drop program cannot pull: it reports a colored packet whose L4 header is not linear
 * with ports and ident 0, like a non-first fragment.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "dt_sample.h"
#include "dt_filter.h"
#include "dt_quota.h"
#include "parse.h"
#include "kparse.h"
#include "conntrack.h"

/* Not a verdict: the next tcx program or tc filter decides (the same value as TCX_NEXT). */
#define TC_ACT_UNSPEC (-1)

/* The port and gateway programs see untagged frames: IPv4 starts right after Ethernet. */
#define DT_PORT_L3_OFF sizeof(struct ethhdr)

#define DT_EVENTS_DEFAULT_SIZE (4u << 20)
#define DT_GW_ICMP_MAX 4096 /* ICMP echo flows through a gateway with an armed reply */
#define DT_NAT_MAX 16384    /* translations of colored packets this node made, remembered */
#define DT_FRAGS_MAX 4096   /* traced datagrams being fragmented at a first hop */
#define DT_REFRAG_MAX 4096  /* fragments colored again, until their uplink sample */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct dt_port_val);
} dt_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DT_PORT_SLOTS);
	__type(key, __u32);
	__type(value, struct dt_port_val);
} dt_port_slots SEC(".maps");

#include "dt_ports.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_TASKS);
	__type(key, struct dt_tuple);
	__type(value, struct dt_task_val);
} dt_tasks SEC(".maps");

/* Per-key limit state (struct dt_quota_val, dt_quota.h), see "Limits" above. */
#define DT_QUOTA_PKT 1000000000ull /* nanopackets per packet, and ns per second */
#define DT_QUOTA_BURST(rate) ((rate) / 10 ? (rate) / 10 : 1)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_TASKS);
	__type(key, struct dt_tuple);
	__type(value, struct dt_quota_val);
} dt_task_quota SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DT_SLOTS);
	__type(key, __u32);
	__type(value, struct dt_task_slot);
} dt_task_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DT_EVENTS_DEFAULT_SIZE);
} dt_events SEC(".maps");

/* Written by the agent alone, through mmap (struct dt_drained); pinned with the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_drained);
} dt_drained SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dt_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_GW_ICMP_MAX);
	__type(key, struct dt_tuple);
	__type(value, struct dt_tuple);
} dt_gw_icmp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_NAT_MAX);
	__type(key, struct dt_tuple);
	__type(value, struct dt_tuple);
} dt_nat SEC(".maps");

/* A traced datagram at its first hop: (saddr, daddr, proto, ip_id) -> its task's match. */
struct dt_frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 ip_id;
	__u8 proto;
	__u8 pad;
};

struct dt_frag_val {
	__u32 task_id;
	__u8 flags; /* the first fragment's sample flags (FIRST_HOP, REPLY) */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_FRAGS_MAX);
	__type(key, struct dt_frag_key);
	__type(value, struct dt_frag_val);
} dt_frags SEC(".maps");

/* Fragments dt_overlay_egress colored again: (datagram, frag) -> 1, for the uplink's flag. */
struct dt_refrag_key {
	struct dt_frag_key dg;
	__u16 frag;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_REFRAG_MAX);
	__type(key, struct dt_refrag_key);
	__type(value, __u8);
} dt_refrag SEC(".maps");

volatile __u32 dt_armed_keys;
volatile __u32 dt_anyport_tasks;
volatile __u32 dt_filter_on;
volatile __u32 dt_netns_ino;
const volatile __u16 dt_vxlan_port = DT_VXLAN_PORT;
const volatile __u32 dt_capture_bytes = DT_CAP_MAX;

static __always_inline void dt_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&dt_counters, &idx);

	if (v)
		*v += 1;
}

/*
 * The one writer of samples, in two steps: dt_sample_begin() reserves a record and fills
 * what every hook has (the other fields zero, padding included), the caller adds what its
 * hook knows (task id, outer addresses, orig, drop fields), dt_sample_submit_skb() (tc)
 * or dt_sample_submit_kskb() (drops) adds the packet prefix and sends it.
 * Reserve failure (ring full: the agent is not draining fast enough, or the ring is too
 * small) is counted in DT_CNT_RING_FULL, never dropped silently; begin returns NULL then.
 */
static __always_inline struct dt_sample *dt_sample_begin(__u32 ifindex, __u8 hook, __u8 flags,
							 const struct dt_pkt *pkt)
{
	struct dt_sample *s;

	s = bpf_ringbuf_reserve(&dt_events, sizeof(*s), 0);
	if (!s) {
		dt_count(DT_CNT_RING_FULL);
		return NULL;
	}
	s->version = DT_SAMPLE_VERSION;
	s->hook = hook;
	s->flags = flags;
	s->pad0 = 0;
	s->ifindex = ifindex;
	s->ts_ns = bpf_ktime_get_ns();
	s->tuple = pkt->tuple;
	s->task_id = 0;
	s->ip_id = pkt->ip_id;
	s->frag = pkt->frag_off & (DT_FRAG_MF | DT_FRAG_OFFSET);
	s->ident = pkt->ident;
	/* len and the rest of the header up to the prefix: zero (DT_CAP_NONE too) in seven
	 * 8-byte stores rather than a store a field, then len. */
	_Static_assert(__builtin_offsetof(struct dt_sample, len) % 8 == 0,
		       "len starts an 8-byte word");
	_Static_assert(DT_CAP_NONE == 0, "zero is DT_CAP_NONE");
	__builtin_memset(&s->len, 0,
			 offsetof(struct dt_sample, cap) - offsetof(struct dt_sample, len));
	s->len = pkt->len;
	return s;
}

static __always_inline void dt_sample_submit(struct dt_sample *s)
{
	bpf_ringbuf_submit(s, 0);
	dt_count(DT_CNT_SAMPLED);
}

/*
 * n (1..DT_CAP_MAX) in a form the verifier can bound whichever register the compiler
 * tested n > 0 in (DT_CAP_MAX is a power of two).
 */
#define DT_CAP_BOUND(n) ((((n)-1) & (DT_CAP_MAX - 1)) + 1)

/* The capture length for a packet of len bytes: at most dt_capture_bytes and DT_CAP_MAX. */
static __always_inline __u32 dt_cap_len(__u32 len)
{
	if (len > dt_capture_bytes)
		len = dt_capture_bytes;
	if (len > DT_CAP_MAX)
		len = DT_CAP_MAX;
	return len;
}

/* Submits a tc hook's sample with the first bytes of its frame (from the Ethernet header). */
static __always_inline void dt_sample_submit_skb(struct dt_sample *s, struct __sk_buff *skb)
{
	__u32 n = dt_cap_len(skb->len);

	if (n > 0 && bpf_skb_load_bytes(skb, 0, s->cap, DT_CAP_BOUND(n)) == 0) {
		s->cap_len = n;
		s->cap_link = DT_CAP_ETH;
	}
	dt_sample_submit(s);
}

/*
 * Submits a drop sample with the first bytes of the freed skb from its network header,
 * linear data only (where a tracepoint sees it, the MAC header may be gone already).
 */
static __always_inline void dt_sample_submit_kskb(struct dt_sample *s, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u32 off = BPF_CORE_READ(skb, network_header), end = BPF_CORE_READ(skb, tail);
	__u32 n = end > off ? dt_cap_len(end - off) : 0;

	if (n > 0 && bpf_probe_read_kernel(s->cap, DT_CAP_BOUND(n), head + off) == 0) {
		s->cap_len = n;
		s->cap_link = DT_CAP_IPV4;
	}
	dt_sample_submit(s);
}

/*
 * Sets (on) or clears the color of a port or gateway program's packet, fixing the IPv4
 * header checksum incrementally. The header's one's-complement sum does not change, so an
 * skb->csum over the packet (CHECKSUM_COMPLETE) stays valid. Either both fields are
 * written or neither; a helper failure is counted in DT_CNT_WRITE_FAIL. Returns 0 or a
 * negative errno from the helpers.
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
		goto fail;
	rc = bpf_skb_store_bytes(skb, DT_PORT_L3_OFF + offsetof(struct iphdr, frag_off), &to,
				 sizeof(to), 0);
	if (rc) {
		bpf_l3_csum_replace(skb, DT_PORT_L3_OFF + offsetof(struct iphdr, check), to, from,
				    sizeof(to));
		goto fail;
	}
	pkt->frag_off = frag;
	return 0;
fail:
	dt_count(DT_CNT_WRITE_FAIL);
	return rc;
}

/* True when slot key k names tuple t, VNI aside: four words, the VNI's skipped. */
static __always_inline bool dt_slot_names(const struct dt_tuple *k, const struct dt_tuple *t)
{
	const __u32 *a = (const __u32 *)k, *b = (const __u32 *)t;

	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[4] == b[4];
}

/*
 * Whether candidate t (its VNI not known yet) may be the key of a task (dt_filter.h):
 * false when the slot table proves it is not (its slot is empty, or holds another key).
 * *hit gets the slot that holds t (whose VNI the caller compares), or NULL: look t up in
 * dt_tasks (a collision, or the table is off).
 */
static __always_inline bool dt_slot_candidate(const struct dt_tuple *t, struct dt_task_slot **hit)
{
	struct dt_task_slot *s;
	__u32 i;

	*hit = NULL;
	if (!dt_filter_on)
		return true;
	i = dt_slot_of(t);
	s = bpf_map_lookup_elem(&dt_task_slots, &i);
	if (!s || s->state == DT_SLOT_EMPTY)
		return false;
	if (s->state != DT_SLOT_ONE)
		return true;
	if (!dt_slot_names(&s->key, t))
		return false;
	*hit = s;
	return true;
}

/* The task of key (its VNI set), from the slot that holds it, else from dt_tasks. */
static __always_inline struct dt_task_val *dt_key_task(const struct dt_tuple *key,
						       struct dt_task_slot *hit)
{
	if (!hit)
		return bpf_map_lookup_elem(&dt_tasks, key);
	return hit->key.vni == key->vni ? &hit->val : NULL;
}

/*
 * The armed task of tuple key arriving on port (or gateway interface) ifindex, or NULL;
 * sets the key's VNI when a candidate survives the slot table. Candidates: the exact tuple,
 * and, while wildcard tasks exist, the tuple with ports 0, accepted only if that task is a
 * wildcard (a tuple whose ports are 0 already has one candidate). The slot table drops
 * candidates before the port lookup and answers for those it holds alone; dt_tasks is
 * looked up for collisions only; the exact match wins. On a match, *matched (unless
 * NULL) gets the dt_tasks key that matched.
 */
static __always_inline struct dt_task_val *dt_task_find(struct dt_tuple *key, __u32 ifindex,
							struct dt_tuple *matched)
{
	struct dt_task_slot *exact_hit, *wild_hit = NULL;
	struct dt_task_val *task;
	struct dt_port_val *port;
	struct dt_tuple any;
	bool exact, wild;

	exact = dt_slot_candidate(key, &exact_hit);
	wild = dt_anyport_tasks && (key->sport || key->dport);
	if (wild) {
		any = *key;
		any.sport = 0;
		any.dport = 0;
		wild = dt_slot_candidate(&any, &wild_hit);
	}
	if (!exact && !wild)
		return NULL;

	port = dt_port_find(ifindex);
	if (!port)
		return NULL;
	key->vni = port->vni;
	if (exact) {
		task = dt_key_task(key, exact_hit);
		if (task) {
			if (matched)
				*matched = *key;
			return task;
		}
	}
	if (wild) {
		any.vni = port->vni;
		task = dt_key_task(&any, wild_hit);
		if (task && (task->flags & DT_TASK_F_ANYPORT)) {
			if (matched)
				*matched = any;
			return task;
		}
	}
	return NULL;
}

/*
 * Whether a packet that matched dt_tasks key key (task: its value) may be colored under the
 * key's limits; see "Limits" at the top. Counts a refusal. A key without limits is admitted
 * at no cost. The state entry is created at the first match (BPF_NOEXIST: another CPU may
 * win the race, then both use its entry); when it can be neither created nor found
 * (dt_task_quota full: the agent does not delete entries on disarm), the packet is
 * refused, counted under the key's limit: a limit is never exceeded silently.
 */
static __always_inline bool dt_quota_admit(const struct dt_tuple *key,
					   const struct dt_task_val *task)
{
	__u32 budget = task->budget, rate = task->rate_pps, task_id = task->task_id;
	__u64 now = 0, cap, elapsed;
	struct dt_quota_val *q;
	int refused = 0;

	if (!budget && !rate)
		return true;
	if (rate)
		now = bpf_ktime_get_ns();
	cap = (__u64)DT_QUOTA_BURST(rate) * DT_QUOTA_PKT;
	q = bpf_map_lookup_elem(&dt_task_quota, key);
	if (!q) {
		struct dt_quota_val init = {.task_id = task_id, .tokens = cap, .last_ns = now};

		bpf_map_update_elem(&dt_task_quota, key, &init, BPF_NOEXIST);
		q = bpf_map_lookup_elem(&dt_task_quota, key);
		if (!q) {
			dt_count(budget ? DT_CNT_BUDGET_SPENT : DT_CNT_RATE_LIMITED);
			return false;
		}
	}

	bpf_spin_lock(&q->lock);
	if (q->task_id != task_id) {
		q->task_id = task_id;
		q->colored = 0;
		q->tokens = cap;
		q->last_ns = now;
	}
	if (budget && q->colored >= budget) {
		refused = DT_CNT_BUDGET_SPENT + 1;
		goto unlock;
	}
	if (rate) {
		/* A second refills any burst (burst <= rate); below it, no overflow. */
		elapsed = now > q->last_ns ? now - q->last_ns : 0;
		if (elapsed >= DT_QUOTA_PKT || !q->last_ns)
			q->tokens = cap;
		else if (q->tokens + elapsed * rate < cap)
			q->tokens += elapsed * rate;
		else
			q->tokens = cap;
		q->last_ns = now;
		if (q->tokens < DT_QUOTA_PKT) {
			refused = DT_CNT_RATE_LIMITED + 1;
			goto unlock;
		}
		q->tokens -= DT_QUOTA_PKT;
	}
	q->colored++;
unlock:
	bpf_spin_unlock(&q->lock);
	if (refused)
		dt_count(refused - 1);
	return !refused;
}

/*
 * An entry's decision (port ingress, gateway ingress). With a task: color the packet,
 * unless the sender colored it already (it is ours now, the bit stays), count it and
 * return true; the caller samples. Without one: a color found on the packet is foreign and
 * goes (DT_CNT_FOREIGN_COLOR); false. False too when the color cannot be written.
 */
static __always_inline bool dt_entry_color(struct __sk_buff *skb, struct dt_pkt *pkt,
					   const struct dt_task_val *task)
{
	if (!task) {
		if ((pkt->frag_off & DT_COLOR_BIT) && dt_color_write(skb, pkt, false) == 0)
			dt_count(DT_CNT_FOREIGN_COLOR);
		return false;
	}
	if (!(pkt->frag_off & DT_COLOR_BIT) && dt_color_write(skb, pkt, true) != 0)
		return false;
	dt_count(DT_CNT_COLORED);
	return true;
}

/* The flags of a first hop's sample for a packet that matched task. */
static __always_inline __u8 dt_entry_flags(const struct dt_task_val *task)
{
	return DT_SAMPLE_F_FIRST_HOP | (task->flags & DT_TASK_F_REPLY ? DT_SAMPLE_F_REPLY : 0);
}

/* An exit's last act (port egress, gateway egress): the color goes. */
static __always_inline void dt_exit_uncolor(struct __sk_buff *skb, struct dt_pkt *pkt)
{
	if (dt_color_write(skb, pkt, false) == 0)
		dt_count(DT_CNT_UNCOLORED);
}

/* The VNI configured for interface ifindex, 0 when it has none. */
static __always_inline __u32 dt_port_vni(__u32 ifindex)
{
	struct dt_port_val *port = dt_port_find(ifindex);

	return port ? port->vni : 0;
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
 * The tc bodies return DT_PARSE_SHORT, before any side effect, when headers are missing
 * from the linear data and this is not the last try; anything else means done.
 */

/*
 * A colored packet this node translated (address or port, DNAT or SNAT, at a router, a load
 * balancer, a gateway) and then encapsulated: its tuple before the translation, in task
 * terms, as dt_overlay_egress recorded it moments before for this very packet (it writes
 * or removes the entry for every colored packet it sees, so an entry never outlives the
 * translation it was learned from). t: the packet as seen now (its VNI is copied to
 * *orig). Only for hooks after the VXLAN device (uplink egress, drops of the encapsulated
 * packet); only colored packets are looked up, so an untraced packet never pays for it.
 */
static __always_inline bool dt_nat_orig(const struct dt_tuple *t, struct dt_tuple *orig)
{
	struct dt_tuple key = *t, *known;

	key.vni = 0;
	known = bpf_map_lookup_elem(&dt_nat, &key);
	if (!known)
		return false;
	*orig = *known;
	orig->vni = t->vni;
	return true;
}

/* True when two tuples have the same addresses and ports (VNI and protocol aside). */
static __always_inline bool dt_same_flow(const struct dt_tuple *a, const struct dt_tuple *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport &&
	       a->dport == b->dport;
}

/*
 * The tuple before any translation of a colored packet whose skb carries its conntrack
 * entry (kskb: the kernel's skb; port egress and drops of a packet that is not
 * encapsulated), when this node translated it: into *orig with t's VNI.
 */
static __always_inline bool dt_ct_orig_kskb(struct sk_buff *kskb, const struct dt_tuple *t,
					    struct dt_tuple *orig)
{
	if (dt_ct_before_kskb(kskb, orig) != DT_CT_NAT || dt_same_flow(orig, t))
		return false;
	orig->vni = t->vni;
	return true;
}

/* The datagram a fragment belongs to. */
static __always_inline void dt_frag_key_of(const struct dt_pkt *pkt, struct dt_frag_key *k)
{
	k->saddr = pkt->tuple.saddr;
	k->daddr = pkt->tuple.daddr;
	k->ip_id = pkt->ip_id;
	k->proto = pkt->tuple.proto;
	k->pad = 0;
}

/*
 * A later fragment (offset > 0: no L4 header, so no ports to match a task by) at a first
 * hop: colored and sampled like its datagram's first fragment when that one was (dt_frags,
 * filled below in port_ingress), without spending the task's budget or rate again (they
 * count datagrams). Otherwise it stays uncolored (a color it came with goes) and counts in
 * DT_CNT_FRAG_ORPHAN: a fragment that overtook its first fragment is not traced.
 */
static __always_inline int port_ingress_later_frag(struct __sk_buff *skb, __u32 ifindex,
						   struct dt_pkt *pkt)
{
	struct dt_frag_key key;
	struct dt_frag_val *dg;
	struct dt_sample *s;

	dt_frag_key_of(pkt, &key);
	dg = bpf_map_lookup_elem(&dt_frags, &key);
	if (!dg) {
		dt_count(DT_CNT_FRAG_ORPHAN);
		dt_entry_color(skb, pkt, NULL);
		return 0;
	}
	if (!(pkt->frag_off & DT_COLOR_BIT) && dt_color_write(skb, pkt, true) != 0)
		return 0;
	dt_count(DT_CNT_FRAG_COLORED);
	pkt->tuple.vni = dt_port_vni(ifindex);
	s = dt_sample_begin(ifindex, DT_HOOK_PORT_IN, dg->flags, pkt);
	if (s) {
		s->task_id = dg->task_id;
		dt_sample_submit_skb(s, skb);
	}
	return 0;
}

/*
 * True when the frame plainly needs nothing from a hook: not IPv4, or IPv4 with none of
 * the flags of mask (in host order: the color, and at hooks that follow fragments, MF and
 * the offset). One test of the flags byte at its fixed offset, before any parse, touching
 * the frame's first cache line and no map; a short frame (headers past the linear data)
 * takes the generic path.
 */
static __always_inline bool dt_plainly_uncolored(struct __sk_buff *skb, __u16 mask)
{
	void *data = (void *)(long)dt_skb_load(skb, data);
	void *end = (void *)(long)dt_skb_load(skb, data_end);
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);

	if ((void *)(iph + 1) > end)
		return false;
	return eth->h_proto != bpf_htons(DT_ETH_P_IP) || !(iph->frag_off & bpf_htons(mask));
}

/*
 * The uplinks' form: true when an underlay frame plainly carries no colored packet. A frame
 * that is not IPv4 and UDP needs nothing; a VXLAN frame (outer header without options, to
 * dt_vxlan_port) whose inner frame is not IPv4, or is IPv4 without the color, neither: the
 * inner flags byte sits at 14 + 20 + 8 + 8 + 14 + 6 bytes. Anything else (outer options, a
 * short frame) takes the generic parse.
 */
static __always_inline bool dt_plainly_uncolored_vxlan(struct __sk_buff *skb)
{
	struct vxlan_frame {
		struct ethhdr eth;
		struct iphdr ip;
		struct udphdr udp;
		struct dt_vxlanhdr vx;
		struct ethhdr in_eth;
		struct iphdr in_ip;
	} *f = (void *)(long)dt_skb_load(skb, data);
	void *end = (void *)(long)dt_skb_load(skb, data_end);

	if ((void *)(&f->ip + 1) > end)
		return false;
	if (f->eth.h_proto != bpf_htons(DT_ETH_P_IP))
		return true;
	if (f->ip.version != 4 || f->ip.ihl != 5)
		return false;
	if (f->ip.protocol != IPPROTO_UDP)
		return true;
	if ((void *)(f + 1) > end)
		return false;
	if (f->udp.dest != bpf_htons(dt_vxlan_port))
		return true;
	return f->in_eth.h_proto != bpf_htons(DT_ETH_P_IP) ||
	       !(f->in_ip.frag_off & bpf_htons(DT_COLOR_BIT));
}

static __always_inline int port_ingress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_task_val *task = NULL;
	struct dt_tuple matched;
	struct dt_pkt pkt = {};
	struct dt_sample *s;
	struct dt_cursor c;
	int rc;

	if (!dt_armed_keys && dt_plainly_uncolored(skb, DT_COLOR_BIT))
		return 0;
	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc; /* not IPv4, or a malformed header: nothing to color or strip */
	if (!dt_armed_keys) {
		/* Nothing armed: the common case costs a flags test; a tenant's color goes. */
		dt_entry_color(skb, &pkt, NULL);
		return 0;
	}
	if (pkt.frag_off & DT_IP_OFFSET)
		return port_ingress_later_frag(skb, ifindex, &pkt);
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;

	/* A truncated L4 header matches nothing (its color, if any, goes). */
	if (rc == 0)
		task = dt_task_find(&pkt.tuple, ifindex, &matched);
	/* Over a limit: like a miss. */
	if (task && !dt_quota_admit(&matched, task))
		task = NULL;
	if (!dt_entry_color(skb, &pkt, task) || !task) /* (!task: for the verifier) */
		return 0;
	s = dt_sample_begin(ifindex, DT_HOOK_PORT_IN, dt_entry_flags(task), &pkt);
	if (s) {
		s->task_id = task->task_id;
		dt_sample_submit_skb(s, skb);
	}
	/* The first fragment of a datagram: its later fragments follow it. */
	if (pkt.frag_off & DT_IP_MF) {
		struct dt_frag_val dg = {.task_id = task->task_id, .flags = dt_entry_flags(task)};
		struct dt_frag_key key;

		dt_frag_key_of(&pkt, &key);
		bpf_map_update_elem(&dt_frags, &key, &dg, BPF_ANY);
	}
	return 0;
}

static __always_inline int port_egress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_tuple orig;
	struct dt_pkt pkt = {};
	struct dt_sample *s;
	struct dt_cursor c;
	__u8 flags = 0;
	bool nat;
	int rc;

	if (dt_plainly_uncolored(skb, DT_COLOR_BIT | DT_IP_MF | DT_IP_OFFSET))
		return 0;
	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc;
	if (!(pkt.frag_off & DT_COLOR_BIT)) {
		/* A fragment of a traced datagram that this node reassembled and fragmented
		 * anew on its way to the instance (conntrack on its bridge): the reassembly
		 * cleared the color. Sampled as the exit it is (and left uncolored). */
		struct dt_frag_key key;

		if (!(pkt.frag_off & (DT_IP_MF | DT_IP_OFFSET)))
			return 0;
		dt_frag_key_of(&pkt, &key);
		if (!bpf_map_lookup_elem(&dt_frags, &key))
			return 0;
		flags = DT_SAMPLE_F_REFRAG;
	}
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;

	/* A truncated L4 header gives no tuple worth sampling; the color goes anyway. */
	if (rc == 0) {
		pkt.tuple.vni = dt_port_vni(ifindex);
		nat = bpf_cast_to_kern_ctx &&
		      dt_ct_orig_kskb(bpf_cast_to_kern_ctx(skb), &pkt.tuple, &orig);
		flags |= nat ? DT_SAMPLE_F_NAT : 0;
		if (flags & DT_SAMPLE_F_REFRAG)
			dt_count(DT_CNT_RECOLORED);
		s = dt_sample_begin(ifindex, DT_HOOK_PORT_OUT, flags, &pkt);
		if (s) {
			if (nat)
				s->orig = orig;
			dt_sample_submit_skb(s, skb);
		}
	}
	if (pkt.frag_off & DT_COLOR_BIT)
		dt_exit_uncolor(skb, &pkt);
	return 0;
}

/*
 * Outer IPv4 fragments other than the first carry no UDP/VXLAN header and are skipped;
 * a first fragment is parsed like any packet.
 */
static __always_inline int uplink(struct __sk_buff *skb, __u32 ifindex, __u8 hook)
{
	struct dt_tuple orig;
	struct dt_vxlanhdr *vx;
	struct dt_pkt pkt = {};
	struct dt_sample *s;
	struct udphdr *udp;
	struct ethhdr *eth;
	struct iphdr *oip;
	struct dt_cursor c;
	__u32 osaddr, odaddr;
	int rc, vni;
	__u8 flags;
	bool nat;

	if (dt_plainly_uncolored_vxlan(skb))
		return 0;
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
	/* Only a packet leaving was translated here (and not at ingress: it has not met this
	 * node's conntrack yet, and an entry of another flow's could only mislead). */
	nat = hook == DT_HOOK_UPLINK_OUT && !(pkt.frag_off & DT_IP_OFFSET) &&
	      dt_nat_orig(&pkt.tuple, &orig);
	flags = nat ? DT_SAMPLE_F_NAT : 0;
	if (hook == DT_HOOK_UPLINK_OUT && (pkt.frag_off & (DT_IP_MF | DT_IP_OFFSET))) {
		struct dt_refrag_key rk = {};

		dt_frag_key_of(&pkt, &rk.dg);
		rk.frag = pkt.frag_off & (DT_FRAG_MF | DT_FRAG_OFFSET);
		if (bpf_map_lookup_elem(&dt_refrag, &rk)) {
			flags |= DT_SAMPLE_F_REFRAG;
			bpf_map_delete_elem(&dt_refrag, &rk);
		}
	} else if (pkt.frag_off & (DT_IP_MF | DT_IP_OFFSET)) {
		/* A traced datagram's fragment arriving: should this node (a router with
		 * conntrack) reassemble and fragment it anew, dt_overlay_egress colors the new
		 * fragments again, as on its first hop. */
		struct dt_frag_val dg = {};
		struct dt_frag_key key;

		dt_frag_key_of(&pkt, &key);
		bpf_map_update_elem(&dt_frags, &key, &dg, BPF_NOEXIST);
	}
	s = dt_sample_begin(ifindex, hook, flags, &pkt);
	if (s) {
		s->outer_saddr = osaddr;
		s->outer_daddr = odaddr;
		if (nat)
			s->orig = orig;
		dt_sample_submit_skb(s, skb);
	}
	return 0;
}

/*
 * The tuple inside the NAT of a packet leaving through a gateway (t: as it leaves): from
 * the conntrack entry the skb carries. A packet without one (it lost it; a test run) is
 * looked up in the table: after source NAT it is the reverse of its entry's REPLY tuple,
 * so the lookup is by t reversed. Returns enum dt_ct_res.
 */
static __always_inline int gw_egress_inside(struct __sk_buff *skb, const struct dt_tuple *t,
					    struct dt_tuple *inside)
{
	int res;

	res = dt_ct_inside_skb(skb, inside);
	if (res != DT_CT_NONE)
		return res;
	return dt_ct_lookup_inside(skb, t, true, inside);
}

/*
 * ICMP echo through a NAT: bpf_skb_ct_lookup() looks up TCP and UDP only, so gateway
 * ingress cannot find where an echo reply goes on its own. Gateway egress tells it: for
 * an echo request t whose reply is armed (the reply's inside tuple is a task key), it
 * records the reply as it will arrive -> the reply inside the NAT in dt_gw_icmp (VNI 0
 * in both), writing only when the entry is missing or has changed.
 */
static __always_inline void gw_icmp_learn(const struct dt_tuple *t, const struct dt_tuple *inside,
					  __u32 ifindex)
{
	struct dt_tuple out = *t, in = *inside, *known;

	if (t->proto != IPPROTO_ICMP || !t->sport)
		return; /* not an echo request */
	dt_tuple_flip(&in);
	if (!dt_task_find(&in, ifindex, NULL))
		return;
	in.vni = 0;
	dt_tuple_flip(&out);
	out.vni = 0;
	known = bpf_map_lookup_elem(&dt_gw_icmp, &out);
	if (known && known->saddr == in.saddr && known->daddr == in.daddr &&
	    known->sport == in.sport && known->dport == in.dport && known->proto == in.proto)
		return;
	bpf_map_update_elem(&dt_gw_icmp, &out, &in, BPF_ANY);
}

/*
 * The tuple inside the NAT of a packet arriving at a gateway from outside (t: as it
 * arrives, VNI 0), before conntrack has seen it: TCP and UDP from the conntrack table,
 * ICMP echo from what gateway egress learned. Returns enum dt_ct_res.
 */
static __always_inline int gw_ingress_inside(struct __sk_buff *skb, const struct dt_tuple *t,
					     struct dt_tuple *inside)
{
	struct dt_tuple *known;

	if (t->proto == IPPROTO_ICMP) {
		known = bpf_map_lookup_elem(&dt_gw_icmp, t);
		if (!known)
			return DT_CT_NONE;
		*inside = *known;
		return DT_CT_NAT;
	}
	return dt_ct_lookup_inside(skb, t, false, inside);
}

static __always_inline int gw_egress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_tuple inside = {};
	struct dt_pkt pkt = {};
	struct dt_sample *s;
	struct dt_cursor c;
	bool colored;
	int rc, ct;

	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc;
	colored = pkt.frag_off & DT_COLOR_BIT;
	if (!colored && rc != IPPROTO_ICMP)
		return 0;
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;
	/* Uncolored, only ICMP echo requests (sport: the identifier) go on, for gw_icmp_learn(). */
	if (rc == 0 && (colored || pkt.tuple.sport)) {
		pkt.tuple.vni = dt_port_vni(ifindex);
		ct = gw_egress_inside(skb, &pkt.tuple, &inside);
		if (ct == DT_CT_NAT)
			gw_icmp_learn(&pkt.tuple, &inside, ifindex);
		if (colored) {
			if (ct == DT_CT_NONE)
				dt_count(DT_CNT_NAT_NO_CT);
			s = dt_sample_begin(ifindex, DT_HOOK_GW_OUT,
					    ct == DT_CT_NAT ? DT_SAMPLE_F_NAT : 0, &pkt);
			if (s) {
				if (ct == DT_CT_NAT) {
					inside.vni = pkt.tuple.vni;
					s->orig = inside;
				}
				dt_sample_submit_skb(s, skb);
			}
		}
	}
	if (colored)
		dt_exit_uncolor(skb, &pkt);
	return 0;
}

static __always_inline int gw_ingress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_task_val *task = NULL;
	struct dt_tuple key = {}, matched;
	struct dt_pkt pkt = {};
	struct dt_sample *s;
	struct dt_cursor c;
	int rc, ct = DT_CT_NONE;
	__u8 flags;

	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc;
	if (!dt_armed_keys) {
		/* Nothing armed: no conntrack lookup; a color from outside goes. */
		dt_entry_color(skb, &pkt, NULL);
		return 0;
	}
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;

	if (rc == 0) {
		ct = gw_ingress_inside(skb, &pkt.tuple, &key);
		if (ct != DT_CT_NAT)
			key = pkt.tuple;
		task = dt_task_find(&key, ifindex, &matched);
	}
	/* Over a limit: like a miss. */
	if (task && !dt_quota_admit(&matched, task))
		task = NULL;
	if (!dt_entry_color(skb, &pkt, task) || !task) /* (!task: for the verifier) */
		return 0;
	if (ct == DT_CT_NONE)
		dt_count(DT_CNT_NAT_NO_CT);
	pkt.tuple.vni = key.vni;
	flags = dt_entry_flags(task) | (ct == DT_CT_NAT ? DT_SAMPLE_F_NAT : 0);
	s = dt_sample_begin(ifindex, DT_HOOK_GW_IN, flags, &pkt);
	if (s) {
		s->task_id = task->task_id;
		if (ct == DT_CT_NAT)
			s->orig = key;
		dt_sample_submit_skb(s, skb);
	}
	return 0;
}

/* Records in dt_nat that colored packet now was before, writing only what changed. */
static __always_inline void dt_nat_learn(const struct dt_tuple *now, const struct dt_tuple *before)
{
	struct dt_tuple key = *now, val = *before, *known;

	key.vni = 0;
	val.vni = 0;
	known = bpf_map_lookup_elem(&dt_nat, &key);
	if (known && dt_same_flow(known, &val) && known->proto == val.proto)
		return;
	bpf_map_update_elem(&dt_nat, &key, &val, BPF_ANY);
}

/*
 * tc egress of a node's VXLAN device: where a packet the node routed or translated is still
 * the tenant's packet with its conntrack entry, before the encapsulation drops the entry.
 * A colored packet that conntrack translated on this node (any NAT: a router's DNAT, a load
 * balancer, hairpin NAT) teaches dt_nat what it was before (dt_ct_before()); the uplink's
 * sample of the same packet moments later carries it as orig. Never samples, never writes
 * the packet. An untraced packet costs a header parse.
 */
/*
 * An uncolored fragment leaving through a VXLAN device, of a datagram this node traced at
 * its first hop (dt_frags): the kernel reassembled the colored fragments (conntrack's
 * defragmentation, br_netfilter on a bridge) and fragmented the datagram anew to fit the
 * device, which rewrote the flags and lost the color. It is colored again, counted in
 * DT_CNT_RECOLORED, and remembered in dt_refrag so that the uplink's sample says so.
 */
static __always_inline bool overlay_recolor(struct __sk_buff *skb, struct dt_pkt *pkt)
{
	struct dt_refrag_key rk = {};
	struct dt_tuple before;
	__u8 one = 1;

	dt_frag_key_of(pkt, &rk.dg);
	if (!bpf_map_lookup_elem(&dt_frags, &rk.dg)) {
		/* Translated after its reassembly (DNAT on a router): the datagram was
		 * remembered as it arrived, before the translation (NAT keeps the IPv4 id). */
		struct dt_frag_key was;

		if (dt_ct_before_skb(skb, &before) != DT_CT_NAT)
			return false;
		was.saddr = before.saddr;
		was.daddr = before.daddr;
		was.ip_id = pkt->ip_id;
		was.proto = before.proto;
		was.pad = 0;
		if (!bpf_map_lookup_elem(&dt_frags, &was))
			return false;
	}
	if (dt_color_write(skb, pkt, true) != 0)
		return false;
	dt_count(DT_CNT_RECOLORED);
	rk.frag = pkt->frag_off & (DT_FRAG_MF | DT_FRAG_OFFSET);
	bpf_map_update_elem(&dt_refrag, &rk, &one, BPF_ANY);
	return true;
}

static __always_inline int overlay_egress(struct __sk_buff *skb, __u32 ifindex, bool last_try)
{
	struct dt_tuple before;
	struct dt_pkt pkt = {};
	struct dt_cursor c;
	int rc;

	if (dt_plainly_uncolored(skb, DT_COLOR_BIT | DT_IP_MF | DT_IP_OFFSET))
		return 0;
	dt_cursor_init(&c, skb);
	rc = dt_parse_eth_ipv4(&c, &pkt);
	if (rc < 0)
		return rc;
	if (!(pkt.frag_off & DT_COLOR_BIT)) {
		if (!(pkt.frag_off & (DT_IP_MF | DT_IP_OFFSET)) || !overlay_recolor(skb, &pkt))
			return 0;
		/* Writing the color moved the packet's data: parse it again, colored now. */
		__builtin_memset(&pkt, 0, sizeof(pkt));
		dt_cursor_init(&c, skb);
		rc = dt_parse_eth_ipv4(&c, &pkt);
		if (rc < 0)
			return 0;
	}
	rc = dt_parse_l4(&c, &pkt);
	if (rc == DT_PARSE_SHORT && !last_try)
		return rc;
	/* A later fragment has no ports to learn a translation by: it is attributed through
	 * its datagram's first fragment, which teaches the translation. */
	if (rc != 0 || (pkt.frag_off & DT_IP_OFFSET))
		return 0;
	if (dt_ct_before_skb(skb, &before) == DT_CT_NAT && !dt_same_flow(&before, &pkt.tuple)) {
		dt_nat_learn(&pkt.tuple, &before);
	} else {
		/* Not translated (any more): a lesson of an earlier flow with this tuple goes. */
		struct dt_tuple key = pkt.tuple;

		key.vni = 0;
		bpf_map_delete_elem(&dt_nat, &key);
	}
	return 0;
}

/*
 * The packet of a dropped skb, from its network header: a colored IPv4 packet, or a VXLAN
 * packet (UDP to dt_vxlan_port) whose inner IPv4 packet is colored: then pkt is the inner
 * packet with the VNI, *flags gets DT_SAMPLE_F_ENCAP and *osaddr, *odaddr the outer
 * addresses. Returns 0 when there is such a packet.
 */
static __always_inline int drop_read(struct sk_buff *skb, struct dt_pkt *pkt, __u8 *flags,
				     __u32 *osaddr, __u32 *odaddr)
{
	struct dt_kcursor c;
	struct udphdr udp;
	int rc, vni;

	if (BPF_CORE_READ(skb, protocol) != bpf_htons(DT_ETH_P_IP))
		return DT_PARSE_OTHER;
	dt_kcursor_init(&c, skb);
	rc = dt_kparse_ipv4(&c, pkt);
	if (rc < 0)
		return rc;
	if (!(pkt->frag_off & DT_COLOR_BIT)) {
		if (rc != IPPROTO_UDP || (pkt->frag_off & DT_IP_OFFSET))
			return DT_PARSE_OTHER;
		rc = dt_kparse_udphdr(&c, &udp);
		if (rc != dt_vxlan_port)
			return rc < 0 ? rc : DT_PARSE_OTHER;
		vni = dt_kparse_vxlanhdr(&c);
		if (vni < 0)
			return vni;
		rc = dt_kparse_ethhdr(&c);
		if (rc != DT_ETH_P_IP)
			return rc < 0 ? rc : DT_PARSE_OTHER;
		*osaddr = pkt->tuple.saddr;
		*odaddr = pkt->tuple.daddr;
		__builtin_memset(pkt, 0, sizeof(*pkt));
		rc = dt_kparse_ipv4(&c, pkt);
		if (rc < 0)
			return rc;
		if (!(pkt->frag_off & DT_COLOR_BIT))
			return DT_PARSE_OTHER;
		pkt->tuple.vni = vni;
		*flags |= DT_SAMPLE_F_ENCAP;
	}
	/* An L4 header outside the linear data leaves ports and ident 0. */
	dt_kparse_l4(&c, pkt);
	return 0;
}

/* The inode of the skb's network namespace: its device's, else its socket's; 0 if none. */
static __always_inline __u32 drop_netns(struct sk_buff *skb, struct net_device *dev)
{
	struct sock *sk;

	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

static __always_inline void drop(struct sk_buff *skb, __u64 location, __u32 reason)
{
	__u32 osaddr = 0, odaddr = 0, ifindex = 0;
	struct dt_tuple inside = {};
	struct net_device *dev;
	struct dt_pkt pkt = {};
	struct dt_sample *s;
	__u8 flags = 0;

	if (drop_read(skb, &pkt, &flags, &osaddr, &odaddr) < 0)
		return;
	dev = BPF_CORE_READ(skb, dev);
	if (dt_netns_ino && drop_netns(skb, dev) != dt_netns_ino) {
		dt_count(DT_CNT_DROP_OTHER_NS);
		return;
	}
	if (dev)
		ifindex = BPF_CORE_READ(dev, ifindex);
	if (!(flags & DT_SAMPLE_F_ENCAP))
		pkt.tuple.vni = ifindex ? dt_port_vni(ifindex) : 0;
	/* A translation this node made (an encapsulated skb's conntrack entry, if any, is the
	 * outer packet's: then dt_nat only). */
	if ((flags & DT_SAMPLE_F_ENCAP) ? dt_nat_orig(&pkt.tuple, &inside)
					: dt_ct_orig_kskb(skb, &pkt.tuple, &inside))
		flags |= DT_SAMPLE_F_NAT;
	dt_count(DT_CNT_DROPS);
	s = dt_sample_begin(ifindex, DT_HOOK_DROP, flags, &pkt);
	if (!s)
		return;
	s->outer_saddr = osaddr;
	s->outer_daddr = odaddr;
	s->drop_reason = reason;
	s->drop_location = location;
	if (flags & DT_SAMPLE_F_NAT)
		s->orig = inside;
	dt_sample_submit_kskb(s, skb);
}

/*
 * The tc entry points. Each runs its body on the linear part of the skb; when the headers
 * reach past it (DT_PARSE_SHORT), it pulls them in and runs the body once more with the
 * second argument. skb->ifindex is read once, here, rather than in bodies inlined twice.
 */
#define DT_TC_PROG(name, body, pull, first, again)                                                 \
	SEC("tc")                                                                                  \
	int name(struct __sk_buff *skb)                                                            \
	{                                                                                          \
		__u32 ifindex = skb->ifindex;                                                      \
                                                                                                   \
		if (body(skb, ifindex, first) == DT_PARSE_SHORT) {                                 \
			dt_pull(skb, pull);                                                        \
			body(skb, ifindex, again);                                                 \
		}                                                                                  \
		return TC_ACT_UNSPEC;                                                              \
	}

DT_TC_PROG(dt_port_ingress, port_ingress, DT_PULL_INNER, false, true)
DT_TC_PROG(dt_port_egress, port_egress, DT_PULL_INNER, false, true)
DT_TC_PROG(dt_uplink_ingress, uplink, DT_PULL_OUTER, DT_HOOK_UPLINK_IN, DT_HOOK_UPLINK_IN)
DT_TC_PROG(dt_uplink_egress, uplink, DT_PULL_OUTER, DT_HOOK_UPLINK_OUT, DT_HOOK_UPLINK_OUT)
DT_TC_PROG(dt_gw_egress, gw_egress, DT_PULL_INNER, false, true)
DT_TC_PROG(dt_gw_ingress, gw_ingress, DT_PULL_INNER, false, true)
DT_TC_PROG(dt_overlay_egress, overlay_egress, DT_PULL_INNER, false, true)

/* Freed without a drop: SKB_CONSUMED (and SKB_NOT_DROPPED_YET), where the kernel has them. */
static __always_inline bool drop_reason_is_drop(__u32 reason)
{
	if (reason == 0) /* SKB_NOT_DROPPED_YET */
		return false;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return false;
	return true;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	if (drop_reason_is_drop(reason))
		drop(skb, (__u64)location, reason);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
