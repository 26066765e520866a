/* A back-end's tc ingress program: undoes the front-end's flow-identifier encapsulation. A TCP packet whose (source
 * address, flow id = sport << 16 | dport) is in `decap` (maps.h) gets back the client's address and port as source
 * and the VIP and port as destination, checksums fixed, and goes up to the stack, where the injected socket bound
 * to the VIP takes it. Everything else passes untouched. */
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

SEC("tc")
int baton_backend(struct __sk_buff *skb)
{
	struct parsed p = {};
	struct decap_key key = {};
	struct decap_value *v, orig;
	__u64 now;

	pull_headers(skb);
	if (parse_tcp(skb, &p))
		return TC_ACT_OK;
	/* flow ids are below 2^31: a source port of 32768 or more is never an encapsulated packet */
	if (bpf_ntohs(p.sport) & 0x8000)
		return TC_ACT_OK;

	__builtin_memcpy(key.frontend, p.saddr, 16);
	key.flow_id = ((__u32)bpf_ntohs(p.sport) << 16) | bpf_ntohs(p.dport);
	key.family = p.family;
	v = bpf_map_lookup_elem(&decap, &key);
	if (!v)
		return TC_ACT_OK;

	now = bpf_ktime_get_ns();
	if (now - v->last_seen_ns > ONE_SECOND_NS)
		v->last_seen_ns = now;
	orig = *v;
	if (rewrite_tuple(skb, &p, orig.client, orig.vip, orig.client_port, orig.vip_port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
