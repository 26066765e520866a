/* Packet parsing for baton's tc programs: Ethernet, then IPv4 or IPv6, then TCP, every access bounds-checked
 * against data_end as the verifier requires. Anything not plainly TCP (IP options are fine; IPv4 fragments and IPv6
 * extension headers are not) is reported as not parsed, and the programs let it pass untouched. */
#ifndef BATON_PARSE_H
#define BATON_PARSE_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Where the headers of a parsed TCP packet sit, as offsets from skb->data. */
struct parsed {
	__u32 l3;       /* IP header */
	__u32 l4;       /* TCP header */
	__u8 family;    /* 4 | 6 */
	__u8 syn;       /* SYN set */
	__u8 ack;       /* ACK set */
	__u8 pad;
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
};

#define ETH_LEN 14
#define IPV6_LEN 40
#define TCP_MIN_LEN 20
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Headers must be in the linear part of the skb for direct access: pull them there when they are not. */
static __always_inline void pull_headers(struct __sk_buff *skb)
{
	__u32 want = ETH_LEN + IPV6_LEN + TCP_MIN_LEN;
	if (want > skb->len)
		want = skb->len;
	if ((long)skb->data + want > (long)skb->data_end)
		bpf_skb_pull_data(skb, want);
}

/* Parses eth/IP/TCP into *p. Returns 0 on success, -1 when the packet is not one baton steers. */
static __always_inline int parse_tcp(struct __sk_buff *skb, struct parsed *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > data_end)
		return -1;
	p->l3 = ETH_LEN;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return -1;
		if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
			return -1;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return -1;
		p->family = 4;
		p->l4 = ETH_LEN + ip->ihl * 4;
		p->saddr[0] = ip->saddr;
		p->daddr[0] = ip->daddr;
		p->saddr[1] = p->saddr[2] = p->saddr[3] = 0;
		p->daddr[1] = p->daddr[2] = p->daddr[3] = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		if (ip6->version != 6 || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		p->family = 6;
		p->l4 = ETH_LEN + IPV6_LEN;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	} else {
		return -1;
	}
	if (p->l4 > ETH_LEN + 60)
		return -1;
	tcp = data + p->l4;
	if ((void *)(tcp + 1) > data_end)
		return -1;
	p->sport = tcp->source;
	p->dport = tcp->dest;
	p->syn = tcp->syn;
	p->ack = tcp->ack;
	return 0;
}

#endif
