/* SPDX-License-Identifier: MIT */
/*
 * conntrack.h - what a packet looked like on the other side of a NAT, from conntrack.
 *
 * A gateway that translates addresses keeps one nf_conn per connection with two tuples:
 * tuplehash[IP_CT_DIR_ORIGINAL], the first packet as conntrack first saw it, and
 * tuplehash[IP_CT_DIR_REPLY], the reply it expects after translation. dyetrace wants,
 * for a packet seen at the gateway, its tuple "inside the NAT" (dt_sample.orig): on the
 * side of the connection that nobody translated. dt_ct_inside() derives it from either
 * direction and either kind of NAT:
 *  - source NAT (masquerade: an instance inside opens a connection to the outside):
 *    inside = the ORIGINAL tuple, reversed for packets of the reply direction;
 *  - destination NAT only (a port forward to an instance inside):
 *    inside = the REPLY tuple, reversed for packets of the original direction.
 * Tuples follow dt_sample.h: ICMP echo request (sport = identifier, dport = 0), echo reply
 * (sport = 0, dport = identifier); conntrack keeps the identifier in src.u.icmp.id and
 * the type in dst.u.icmp.type of each direction's tuple.
 *
 * Where the nf_conn comes from:
 *  - an skb that went through conntrack carries it: skb->_nfct without its low
 *    NFCT_INFOMASK bits (the ctinfo, which gives the direction). The drop program reads
 *    it from its struct sk_buff; tc programs reach the struct sk_buff through the kfunc
 *    bpf_cast_to_kern_ctx() (dt_ct_of_skb());
 *  - an skb that has not met conntrack yet (tc ingress runs before PREROUTING) is looked
 *    up by its tuple with the kfunc bpf_skb_ct_lookup(), TCP and UDP only (the kernel
 *    refuses other protocols with -EPROTO); the reference must go back with
 *    bpf_ct_release().
 * The kfuncs are declared __weak: an object whose kernel lacks them (nf_conntrack built as
 * a module and not loaded, or a kernel without them) still loads, and the ct_*() wrappers
 * report "no conntrack". With nf_conntrack as a module, the agent loads it first.
 *
 * nf_conn fields are read with CO-RE (BPF_CORE_READ), never through a struct copy.
 * Include after vmlinux.h, bpf_helpers.h, bpf_core_read.h, dt_sample.h and parse.h.
 */
#ifndef DT_CONNTRACK_H
#define DT_CONNTRACK_H

#define DT_NFCT_INFOMASK 7UL  /* include/linux/skbuff.h: NFCT_INFOMASK, the ctinfo bits */
#define DT_CURRENT_NETNS (-1) /* BPF_F_CURRENT_NETNS: the netns of the skb's device */

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
					 __u32 tuple__sz, struct bpf_ct_opts *opts,
					 __u32 opts__sz) __ksym __weak;
extern void bpf_ct_release(struct nf_conn *ct) __ksym __weak;
extern void *bpf_cast_to_kern_ctx(void *ctx) __ksym __weak;

/* What dt_ct_inside() and the lookups found. */
enum dt_ct_res {
	DT_CT_NONE = 0, /* no conntrack entry */
	DT_CT_PLAIN,	/* an entry without translation: inside and outside tuples are equal */
	DT_CT_NAT,	/* an entry with translation: the inside tuple was written */
};

/* ctinfo -> direction: IP_CT_IS_REPLY and above are the reply direction (CTINFO2DIR). */
static __always_inline __u32 dt_ctinfo_dir(unsigned long ctinfo)
{
	return ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
}

/* One conntrack tuple in dyetrace's form (VNI 0). */
static __always_inline void dt_ct_tuple(const struct nf_conntrack_tuple *ct, struct dt_tuple *t)
{
	__be16 id;
	__u8 type;

	__builtin_memset(t, 0, sizeof(*t));
	t->saddr = BPF_CORE_READ(ct, src.u3.ip);
	t->daddr = BPF_CORE_READ(ct, dst.u3.ip);
	t->proto = BPF_CORE_READ(ct, dst.protonum);
	switch (t->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		t->sport = BPF_CORE_READ(ct, src.u.all);
		t->dport = BPF_CORE_READ(ct, dst.u.all);
		break;
	case IPPROTO_ICMP:
		id = BPF_CORE_READ(ct, src.u.icmp.id);
		type = BPF_CORE_READ(ct, dst.u.icmp.type);
		if (type == DT_ICMP_ECHO)
			t->sport = id;
		else if (type == DT_ICMP_ECHOREPLY)
			t->dport = id;
		break;
	default:
		break;
	}
}

/*
 * The tuple inside the NAT of a packet of direction dir (enum ip_conntrack_dir) of ct,
 * into *inside (VNI 0). Returns DT_CT_NAT, or DT_CT_PLAIN (and leaves *inside alone)
 * when ct translates nothing.
 */
static __always_inline int dt_ct_inside(struct nf_conn *ct, __u32 dir, struct dt_tuple *inside)
{
	unsigned long status = BPF_CORE_READ(ct, status);
	bool flip;

	if (!(status & IPS_NAT_MASK))
		return DT_CT_PLAIN;
	if (status & IPS_SRC_NAT) {
		dt_ct_tuple(&ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple, inside);
		flip = dir != IP_CT_DIR_ORIGINAL;
	} else {
		dt_ct_tuple(&ct->tuplehash[IP_CT_DIR_REPLY].tuple, inside);
		flip = dir != IP_CT_DIR_REPLY;
	}
	if (flip)
		dt_tuple_flip(inside);
	return DT_CT_NAT;
}

/*
 * A packet of direction dir of ct as the connection's initiator sent it, before any
 * translation: the ORIGINAL tuple, reversed for the reply direction, into *before (VNI 0).
 * This is the form a task names (a task names its flow as its source instance sees it),
 * wherever the translation happened: a router's DNAT, a load balancer's full NAT, a
 * gateway's masquerade. Returns DT_CT_NAT, or DT_CT_PLAIN (and leaves *before alone) when
 * ct translates nothing.
 */
static __always_inline int dt_ct_before(struct nf_conn *ct, __u32 dir, struct dt_tuple *before)
{
	if (!(BPF_CORE_READ(ct, status) & IPS_NAT_MASK))
		return DT_CT_PLAIN;
	dt_ct_tuple(&ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple, before);
	if (dir != IP_CT_DIR_ORIGINAL)
		dt_tuple_flip(before);
	return DT_CT_NAT;
}

/* The conntrack entry a kernel skb carries (skb->_nfct) and the packet's direction in it;
 * NULL when none (or IP_CT_UNTRACKED). */
static __always_inline struct nf_conn *dt_ct_of_kskb(struct sk_buff *skb, __u32 *dir)
{
	unsigned long nfct = BPF_CORE_READ(skb, _nfct);

	*dir = dt_ctinfo_dir(nfct & DT_NFCT_INFOMASK);
	return (struct nf_conn *)(nfct & ~DT_NFCT_INFOMASK);
}

/* The inside tuple of a kernel skb from the conntrack entry it carries (skb->_nfct). */
static __always_inline int dt_ct_inside_kskb(struct sk_buff *skb, struct dt_tuple *inside)
{
	__u32 dir;
	struct nf_conn *ct = dt_ct_of_kskb(skb, &dir);

	if (!ct)
		return DT_CT_NONE;
	return dt_ct_inside(ct, dir, inside);
}

/* The tuple before any translation of a kernel skb (dt_ct_before()) from its entry. */
static __always_inline int dt_ct_before_kskb(struct sk_buff *skb, struct dt_tuple *before)
{
	__u32 dir;
	struct nf_conn *ct = dt_ct_of_kskb(skb, &dir);

	if (!ct)
		return DT_CT_NONE;
	return dt_ct_before(ct, dir, before);
}

/* The same for a tc program's skb; DT_CT_NONE when the kernel cannot hand it over. */
static __always_inline int dt_ct_before_skb(struct __sk_buff *ctx, struct dt_tuple *before)
{
	if (!bpf_cast_to_kern_ctx)
		return DT_CT_NONE;
	return dt_ct_before_kskb(bpf_cast_to_kern_ctx(ctx), before);
}

/* The same for a tc program's skb; DT_CT_NONE when the kernel cannot hand it over. */
static __always_inline int dt_ct_inside_skb(struct __sk_buff *ctx, struct dt_tuple *inside)
{
	struct sk_buff *skb;

	if (!bpf_cast_to_kern_ctx)
		return DT_CT_NONE;
	skb = bpf_cast_to_kern_ctx(ctx);
	return dt_ct_inside_kskb(skb, inside);
}

/*
 * Looks a packet of tuple t up in the conntrack table of the skb's network namespace and
 * writes its inside tuple; TCP and UDP only. The table holds the tuples of both
 * directions as conntrack first met them, so a packet that has not met conntrack yet is
 * looked up as it is (reversed = false); a packet translated already (after source NAT,
 * say) is the reverse of its entry's other tuple and is looked up reversed (reversed =
 * true). Returns enum dt_ct_res.
 */
static __always_inline int dt_ct_lookup_inside(struct __sk_buff *skb, const struct dt_tuple *t,
					       bool reversed, struct dt_tuple *inside)
{
	struct bpf_ct_opts opts = {.netns_id = DT_CURRENT_NETNS};
	struct bpf_sock_tuple bt = {};
	struct nf_conn *ct;
	__u32 dir;
	int res;

	if (!bpf_skb_ct_lookup || !bpf_ct_release)
		return DT_CT_NONE;
	if (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP)
		return DT_CT_NONE;
	opts.l4proto = t->proto;
	bt.ipv4.saddr = reversed ? t->daddr : t->saddr;
	bt.ipv4.daddr = reversed ? t->saddr : t->daddr;
	bt.ipv4.sport = reversed ? t->dport : t->sport;
	bt.ipv4.dport = reversed ? t->sport : t->dport;
	ct = bpf_skb_ct_lookup(skb, &bt, sizeof(bt.ipv4), &opts, sizeof(opts));
	if (!ct)
		return DT_CT_NONE;
	dir = reversed ? !opts.dir : opts.dir;
	res = dt_ct_inside(ct, dir, inside);
	bpf_ct_release(ct);
	return res;
}

#endif /* DT_CONNTRACK_H */
