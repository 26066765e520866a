/* Moving packets: the L2 redirect (LVS-DR style: IP header untouched), the flow-identifier encapsulation and its
 * inverse (a 4-tuple rewrite with checksums fixed, zero bytes added), and routing an encapsulated packet out. */
#ifndef BATON_REWRITE_H
#define BATON_REWRITE_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "parse.h"
#include "csum.h"

#define AF_INET 2
#define AF_INET6 10

#define IPV4_SADDR_OFF(l3) ((l3) + __builtin_offsetof(struct iphdr, saddr))
#define IPV4_DADDR_OFF(l3) ((l3) + __builtin_offsetof(struct iphdr, daddr))
#define IPV6_SADDR_OFF(l3) ((l3) + __builtin_offsetof(struct ipv6hdr, saddr))
#define IPV6_DADDR_OFF(l3) ((l3) + __builtin_offsetof(struct ipv6hdr, daddr))
#define TCP_SPORT_OFF(l4) ((l4) + __builtin_offsetof(struct tcphdr, source))
#define TCP_DPORT_OFF(l4) ((l4) + __builtin_offsetof(struct tcphdr, dest))

/* Neighbour-resolved L2 forward to the back-end's address (as nftables' `fwd ip to ADDR device DEV`). */
static __always_inline long redirect_l2(struct __sk_buff *skb, const struct backend *b)
{
	struct bpf_redir_neigh nh = {};
	__u32 ifindex = b->ifindex ? b->ifindex : skb->ifindex;

	if (b->family == FAMILY_IPV6) {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, b->addr, 16);
	} else {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = b->addr[0];
	}
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

/* Rewrites the packet's 4-tuple to (saddr, daddr, sport, dport), fixing the checksums. Returns 0 or -1. */
static __always_inline int rewrite_tuple(struct __sk_buff *skb, struct parsed *p, __be32 *saddr, __be32 *daddr,
					 __be16 sport, __be16 dport)
{
	if (p->family == FAMILY_IPV4) {
		if (set_ipv4_addr(skb, p->l3, p->l4, IPV4_SADDR_OFF(p->l3), p->saddr[0], saddr[0]))
			return -1;
		if (set_ipv4_addr(skb, p->l3, p->l4, IPV4_DADDR_OFF(p->l3), p->daddr[0], daddr[0]))
			return -1;
	} else {
		if (set_ipv6_addr(skb, p->l4, IPV6_SADDR_OFF(p->l3), p->saddr, saddr))
			return -1;
		if (set_ipv6_addr(skb, p->l4, IPV6_DADDR_OFF(p->l3), p->daddr, daddr))
			return -1;
	}
	if (set_tcp_port(skb, p->l4, TCP_SPORT_OFF(p->l4), p->sport, sport))
		return -1;
	return set_tcp_port(skb, p->l4, TCP_DPORT_OFF(p->l4), p->dport, dport);
}

/* The seeds' encapsulation: destination := back-end, source := front-end, ports := the flow id (high 16 bits in the
 * source port, low 16 in the destination port). */
static __always_inline int encap(struct __sk_buff *skb, struct parsed *p, struct backend *b, __u32 flow_id)
{
	return rewrite_tuple(skb, p, b->local, b->addr, bpf_htons(flow_id >> 16), bpf_htons(flow_id & 0xffff));
}

/* Sends an encapsulated packet out like a routed one: the table's egress interface, else the one a FIB lookup for
 * the back-end's address chooses (this needs forwarding enabled on the ingress interface), else the ingress
 * interface; the kernel's route and neighbour tables pick the next hop's MAC. */
static __always_inline long route_out(struct __sk_buff *skb, const struct backend *b)
{
	__u32 ifindex = b->ifindex;

	if (!ifindex) {
		struct bpf_fib_lookup fib = {};
		long rc;

		fib.l4_protocol = IPPROTO_TCP;
		fib.ifindex = skb->ingress_ifindex;
		if (b->family == FAMILY_IPV6) {
			fib.family = AF_INET6;
			__builtin_memcpy(fib.ipv6_src, b->local, 16);
			__builtin_memcpy(fib.ipv6_dst, b->addr, 16);
		} else {
			fib.family = AF_INET;
			fib.ipv4_src = b->local[0];
			fib.ipv4_dst = b->addr[0];
		}
		rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			ifindex = fib.ifindex;
		else
			ifindex = skb->ifindex;
	}
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

#endif
