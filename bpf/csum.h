/* Checksum maintenance for rewritten addresses and ports, incremental and through the kernel's helpers, which know
 * the skb's checksum state: with CHECKSUM_PARTIAL (veth, TSO) only the pseudo-header part of the TCP checksum is
 * stored and the ports are summed later by the device, so the helpers update exactly what must change. */
#ifndef BATON_CSUM_H
#define BATON_CSUM_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>

#define IPV4_CSUM_OFF(l3) ((l3) + __builtin_offsetof(struct iphdr, check))
#define TCP_CSUM_OFF(l4) ((l4) + __builtin_offsetof(struct tcphdr, check))

/* Rewrites a 4-byte IPv4 address at `off`, fixing the IP header checksum and the TCP pseudo-header checksum. */
static __always_inline int set_ipv4_addr(struct __sk_buff *skb, __u32 l3, __u32 l4, __u32 off, __be32 old, __be32 new)
{
	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, TCP_CSUM_OFF(l4), old, new, BPF_F_PSEUDO_HDR | sizeof(new)))
		return -1;
	if (bpf_l3_csum_replace(skb, IPV4_CSUM_OFF(l3), old, new, sizeof(new)))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0) ? -1 : 0;
}

/* Rewrites a 16-byte IPv6 address at `off`, fixing the TCP pseudo-header checksum (IPv6 has no header checksum). */
static __always_inline int set_ipv6_addr(struct __sk_buff *skb, __u32 l4, __u32 off, __be32 *old, __be32 *new)
{
	__s64 diff = bpf_csum_diff(old, 16, new, 16, 0);
	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, TCP_CSUM_OFF(l4), 0, (__u32)diff, BPF_F_PSEUDO_HDR))
		return -1;
	return bpf_skb_store_bytes(skb, off, new, 16, 0) ? -1 : 0;
}

/* Rewrites a TCP port at `off` (source or destination), fixing the TCP checksum. */
static __always_inline int set_tcp_port(struct __sk_buff *skb, __u32 l4, __u32 off, __be16 old, __be16 new)
{
	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, TCP_CSUM_OFF(l4), old, new, sizeof(new)))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0) ? -1 : 0;
}

#endif
