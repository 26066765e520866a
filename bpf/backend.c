/* A back-end's tc ingress program, in two steps.
 *
 * 1. Decapsulation: a TCP packet whose (source address, flow id = sport << 16 | dport) is in `decap` (maps.h) gets
 *    back the client's address and port as source and the VIP and port as destination, checksums fixed.
 *    One whose flow id is not (yet) there, but whose source is a front-end known to encapsulate here
 *    (`encap_sources`), is an encapsulated client packet that overtook its blob (forward-first handoff): unless it is
 *    a bare SYN, is addressed to a guarded VIP or a socket takes it (this host's own connections to that front-end),
 *    it is parked like step 2's (GUARD_ENCAP_EARLY), still encapsulated: the agent restores it in userspace once the
 *    blob's mapping is known (src/backend/park.ts). Without a mapping nobody can tell its client, so nobody resets it.
 * 2. The guard (lossless handoff): a TCP packet, on its restored tuple, to a VIP in `guard_vips` that no socket would
 *    take is parked instead of reaching the stack, which would answer it with a RST and kill the client. Such packets
 *    arrive when the front-end forwards a flow before the blob carrying its socket has been injected here. "Parked"
 *    is a mark that netfilter's queue rule hands to the agent, which lets the packets through, in order, once the
 *    socket exists; with parking off (config) they are dropped and the client retransmits. Released, a tuple whose
 *    queued packets have not all had their verdict yet (`park_marked`, counted here, ahead of the agent's count in
 *    `park_settling`) keeps being parked, so no later packet overtakes one still in the queue.
 * Everything else passes untouched (ports of 32768 and up are never flow ids: outbound connections are not touched). */
#define BATON_BACKEND
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "parse.h"
#include "rewrite.h"

#define ONE_SECOND_NS 1000000000ull

/* Would the stack find a socket for this packet other than a listener? */
static __always_inline int has_socket(struct __sk_buff *skb, struct parsed *p)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 size;
	int found;

	if (p->family == FAMILY_IPV4) {
		t.ipv4.saddr = p->saddr[0];
		t.ipv4.daddr = p->daddr[0];
		t.ipv4.sport = p->sport;
		t.ipv4.dport = p->dport;
		size = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, p->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, p->daddr, 16);
		t.ipv6.sport = p->sport;
		t.ipv6.dport = p->dport;
		size = sizeof(t.ipv6);
	}
	sk = bpf_skc_lookup_tcp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	found = sk->state != BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return found;
}

/* An encapsulated packet from a known front-end whose flow id has no mapping yet (see the header). */
static __always_inline int encap_early(struct __sk_buff *skb, struct parsed *p)
{
	struct encap_source src = {};
	struct guard_vip gv = {};

	if (p->syn && !p->ack)
		return 0;
	__builtin_memcpy(src.addr, p->saddr, 16);
	src.family = p->family;
	if (!bpf_map_lookup_elem(&encap_sources, &src))
		return 0;
	__builtin_memcpy(gv.vip, p->daddr, 16);
	gv.port = p->dport;
	gv.family = p->family;
	if (bpf_map_lookup_elem(&guard_vips, &gv))
		return 0;
	return !has_socket(skb, p);
}

#define DECAP_PLAIN 0
#define DECAP_FAILED -1
#define DECAP_EARLY 1

/* Step 1. Returns DECAP_PLAIN (not encapsulated, or restored: *p now describes the restored tuple), DECAP_EARLY
 * (encapsulated, no mapping yet: park it as it is) or DECAP_FAILED (rewrite failed). */
static __always_inline int decapsulate(struct __sk_buff *skb, struct parsed *p)
{
	struct decap_key key = {};
	struct decap_value *v, orig;
	__u64 now;

	/* flow ids are below 2^31: a source port of 32768 or more is never an encapsulated packet */
	if (bpf_ntohs(p->sport) & 0x8000)
		return DECAP_PLAIN;
	__builtin_memcpy(key.frontend, p->saddr, 16);
	key.flow_id = ((__u32)bpf_ntohs(p->sport) << 16) | bpf_ntohs(p->dport);
	key.family = p->family;
	v = bpf_map_lookup_elem(&decap, &key);
	if (!v)
		return encap_early(skb, p) ? DECAP_EARLY : DECAP_PLAIN;
	now = bpf_ktime_get_ns();
	if (now - v->last_seen_ns > ONE_SECOND_NS)
		v->last_seen_ns = now;
	orig = *v;
	if (rewrite_tuple(skb, p, orig.client, orig.vip, orig.client_port, orig.vip_port))
		return DECAP_FAILED;
	__builtin_memcpy(p->saddr, orig.client, 16);
	__builtin_memcpy(p->daddr, orig.vip, 16);
	p->sport = orig.client_port;
	p->dport = orig.vip_port;
	return DECAP_PLAIN;
}

static __always_inline void count(enum guard_counter which)
{
	__u64 *c = bpf_map_lookup_elem(&guard_counters, &which);
	if (c)
		*c += 1;
}

static __always_inline int park(struct __sk_buff *skb, enum guard_counter why)
{
	__u32 zero = 0;
	struct backend_config *cfg = bpf_map_lookup_elem(&backend_config, &zero);

	count(why);
	if (cfg && cfg->park_queue) {
		__u32 mark = skb->mark;
		/* opaque to clang, which would otherwise store only the mark's upper half: a 2-byte context write the
		 * verifier refuses */
		asm volatile("" : "+r"(mark));
		skb->mark = (mark & ~(__u32)PARK_MARK_MASK) | PARK_MARK;
		return TC_ACT_OK;
	}
	count(GUARD_DROPPED);
	return TC_ACT_SHOT;
}

/* park() for a packet of a client tuple, counted in `park_marked` when it goes to the queue (the agent counts its
 * verdicts against it; see park_settling). */
static __always_inline int park_tuple(struct __sk_buff *skb, struct flow_key *fk, enum guard_counter why)
{
	__u32 zero = 0;
	struct backend_config *cfg = bpf_map_lookup_elem(&backend_config, &zero);
	__u64 *marked, one = 1;

	if (cfg && cfg->park_queue) {
		marked = bpf_map_lookup_elem(&park_marked, fk);
		if (!marked && bpf_map_update_elem(&park_marked, fk, &one, BPF_NOEXIST) == 0)
			return park(skb, why);
		if (!marked)
			marked = bpf_map_lookup_elem(&park_marked, fk); /* made meanwhile on another CPU */
		if (marked)
			__sync_fetch_and_add(marked, 1);
	}
	return park(skb, why);
}

/* Released lately, with packets of its still in the queue? */
static __always_inline int settling(struct flow_key *fk)
{
	__u64 *verdicted = bpf_map_lookup_elem(&park_settling, fk);
	__u64 *marked;

	if (!verdicted)
		return 0;
	marked = bpf_map_lookup_elem(&park_marked, fk);
	return marked && *marked > *verdicted;
}

/* Step 2. */
static __always_inline int guard(struct __sk_buff *skb, struct parsed *p)
{
	struct guard_vip gv = {};
	struct flow_key fk = {};

	__builtin_memcpy(gv.vip, p->daddr, 16);
	gv.port = p->dport;
	gv.family = p->family;
	if (!bpf_map_lookup_elem(&guard_vips, &gv))
		return TC_ACT_OK;
	if (p->syn && !p->ack) {
		count(GUARD_SYN);
		return TC_ACT_OK;
	}
	__builtin_memcpy(fk.client, p->saddr, 16);
	__builtin_memcpy(fk.vip, p->daddr, 16);
	fk.client_port = p->sport;
	fk.vip_port = p->dport;
	fk.family = p->family;
	if (bpf_map_lookup_elem(&parking, &fk) || settling(&fk))
		return park_tuple(skb, &fk, GUARD_BEGUN);
	if (has_socket(skb, p)) {
		count(GUARD_SOCKET);
		return TC_ACT_OK;
	}
	return park_tuple(skb, &fk, GUARD_NO_SOCKET);
}

SEC("tc")
int baton_backend(struct __sk_buff *skb)
{
	struct parsed p = {};

	pull_headers(skb);
	if (parse_tcp(skb, &p))
		return TC_ACT_OK;
	switch (decapsulate(skb, &p)) {
	case DECAP_PLAIN:
		return guard(skb, &p);
	case DECAP_EARLY:
		return park(skb, GUARD_ENCAP_EARLY);
	default:
		return TC_ACT_SHOT;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
