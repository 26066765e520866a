/* The front-end's tc ingress program, on the client-facing interface: steers each handed-off flow per the `flows`
 * map (maps.h). No entry: untouched. Bare SYN on a known tuple: the client reuses the port, forget the old entry.
 * hold: drop (until deadline_ns). forward: count and send to the back-end (L2 redirect or encapsulation).
 * closing: the same until deadline_ns, then forget. */
#define BATON_FRONTEND
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "parse.h"
#include "rewrite.h"

#define ONE_SECOND_NS 1000000000ull

static __always_inline void count(__u32 backend, __u32 len)
{
	struct counter *c = bpf_map_lookup_elem(&counters, &backend);
	if (c) {
		c->packets += 1;
		c->bytes += len;
	}
}

static __always_inline __u64 refresh_ns(void)
{
	__u32 zero = 0;
	struct frontend_config *cfg = bpf_map_lookup_elem(&config, &zero);
	return cfg && cfg->refresh_ns ? cfg->refresh_ns : ONE_SECOND_NS;
}

/* Sends the packet to back-end `index`; drops it when the slot is unusable (the flow cannot go anywhere else: the
 * front-end no longer has its socket). */
static __always_inline int steer(struct __sk_buff *skb, struct parsed *p, struct flow_state *st)
{
	__u32 index = st->backend;
	__u32 len = skb->len;
	__u32 flow_id = st->flow_id;
	struct backend *b = bpf_map_lookup_elem(&backends, &index);

	if (!b)
		return TC_ACT_SHOT;
	if (b->mode == MODE_L2) {
		count(index, len);
		return redirect_l2(skb, b);
	}
	if (b->mode == MODE_ENCAP) {
		if (b->family != p->family)
			return TC_ACT_SHOT;
		/* copy: the map value may change under us while the helpers run */
		struct backend copy = *b;
		if (encap(skb, p, &copy, flow_id))
			return TC_ACT_SHOT;
		count(index, len);
		return route_out(skb, &copy);
	}
	return TC_ACT_SHOT;
}

SEC("tc")
int baton_frontend(struct __sk_buff *skb)
{
	struct parsed p = {};
	struct flow_key key = {};
	struct flow_state *st;
	__u64 now;

	pull_headers(skb);
	if (parse_tcp(skb, &p))
		return TC_ACT_OK;

	__builtin_memcpy(key.client, p.saddr, 16);
	__builtin_memcpy(key.vip, p.daddr, 16);
	key.client_port = p.sport;
	key.vip_port = p.dport;
	key.family = p.family;

	st = bpf_map_lookup_elem(&flows, &key);
	if (!st)
		return TC_ACT_OK;

	if (p.syn && !p.ack) {
		bpf_map_delete_elem(&flows, &key);
		return TC_ACT_OK;
	}

	now = bpf_ktime_get_ns();
	switch (st->verdict) {
	case VERDICT_HOLD:
		if (st->deadline_ns && now > st->deadline_ns) {
			bpf_map_delete_elem(&flows, &key);
			return TC_ACT_OK;
		}
		return TC_ACT_SHOT;
	case VERDICT_FORWARD:
		if (now - st->last_seen_ns > refresh_ns())
			st->last_seen_ns = now;
		return steer(skb, &p, st);
	case VERDICT_CLOSING:
		if (now > st->deadline_ns) {
			bpf_map_delete_elem(&flows, &key);
			return TC_ACT_OK;
		}
		return steer(skb, &p, st);
	default:
		return TC_ACT_OK;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
