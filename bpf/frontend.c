/* The front-end's tc ingress program, on the client-facing interface: steers each handed-off flow per the `flows`
 * map (maps.h). No entry: untouched, except orphans when config.orphans is on (a non-SYN packet to the VIP with no
 * local connection: a flow another front-end handed off), recorded in `orphans` and dropped. Bare SYN on a known tuple: the client reuses the port, forget the old entry.
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
#define BPF_TCP_LISTEN_STATE 10 /* BPF_TCP_LISTEN */

/* True when this host has a connection (or a pending handshake, or a valid SYN cookie) for the packet's tuple:
 * the packet is the front-end's own. A lookup that finds only the listener (or nothing) means no connection here. */
static __always_inline int local_connection(struct __sk_buff *skb, struct parsed *p)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	int local;

	if (p->family == 4) {
		t.ipv4.saddr = p->saddr[0];
		t.ipv4.daddr = p->daddr[0];
		t.ipv4.sport = p->sport;
		t.ipv4.dport = p->dport;
		sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(t.ipv6.saddr, p->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, p->daddr, 16);
		t.ipv6.sport = p->sport;
		t.ipv6.dport = p->dport;
		sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return 0;
	local = sk->state != BPF_TCP_LISTEN_STATE;
	if (!local && p->ack && p->family == 4) {
		/* the handshake's last ACK under SYN cookies finds only the listener: let a valid cookie through */
		void *data = (void *)(long)skb->data;
		void *data_end = (void *)(long)skb->data_end;
		struct iphdr *ip = data + ETH_LEN;
		struct tcphdr *th = data + ETH_LEN + sizeof(struct iphdr);
		if ((void *)(ip + 1) <= data_end && ip->ihl == 5 && (void *)(th + 1) <= data_end)
			local = bpf_tcp_check_syncookie(sk, ip, sizeof(*ip), th, sizeof(*th)) == 0;
	} else if (!local && p->ack) {
		void *data = (void *)(long)skb->data;
		void *data_end = (void *)(long)skb->data_end;
		struct ipv6hdr *ip6 = data + ETH_LEN;
		struct tcphdr *th = data + ETH_LEN + IPV6_LEN;
		if ((void *)(ip6 + 1) <= data_end && (void *)(th + 1) <= data_end)
			local = bpf_tcp_check_syncookie(sk, ip6, sizeof(*ip6), th, sizeof(*th)) == 0;
	}
	bpf_sk_release(sk);
	return local;
}

/* A packet with no `flows` entry: pass it, unless it is a non-SYN packet to the VIP with no local connection (a flow
 * another front-end handed off), which is recorded in `orphans` and dropped until the daemon finds its owner. */
static __always_inline int unknown_flow(struct __sk_buff *skb, struct parsed *p, struct flow_key *key)
{
	__u32 zero = 0;
	struct frontend_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct orphan *o;
	__u64 now;

	if (!cfg || !cfg->orphans || p->syn)
		return TC_ACT_OK;
	if (cfg->vip_family != p->family || cfg->vip_port != p->dport)
		return TC_ACT_OK;
	if (cfg->vip[0] != p->daddr[0] || cfg->vip[1] != p->daddr[1] || cfg->vip[2] != p->daddr[2] || cfg->vip[3] != p->daddr[3])
		return TC_ACT_OK;
	if (local_connection(skb, p))
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();
	o = bpf_map_lookup_elem(&orphans, key);
	if (o && o->pass)
		return TC_ACT_OK; /* nobody holds it (e.g. this front-end's own connection, lost): let the stack reset it */
	if (o) {
		o->last_seen_ns = now;
		__sync_fetch_and_add(&o->packets, 1);
	} else {
		struct orphan fresh = { .first_seen_ns = now, .last_seen_ns = now, .packets = 1 };
		bpf_map_update_elem(&orphans, key, &fresh, BPF_NOEXIST);
	}
	return TC_ACT_SHOT;
}

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

static __always_inline __u64 linger_ns(void)
{
	__u32 zero = 0;
	struct frontend_config *cfg = bpf_map_lookup_elem(&config, &zero);
	return cfg ? cfg->linger_ns : 0;
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
		return unknown_flow(skb, &p, &key);

	if (p.syn && !p.ack) {
		bpf_map_delete_elem(&flows, &key);
		return TC_ACT_OK;
	}

	now = bpf_ktime_get_ns();
	switch (st->verdict) {
	case VERDICT_HOLD:
		if (st->deadline_ns && now > st->deadline_ns) {
			bpf_map_delete_elem(&flows, &key);
			return unknown_flow(skb, &p, &key);
		}
		return TC_ACT_SHOT;
	case VERDICT_FORWARD:
		if (now - st->last_seen_ns > refresh_ns())
			st->last_seen_ns = now;
		return steer(skb, &p, st);
	case VERDICT_CLOSING:
		if (now > st->deadline_ns) {
			/* past the linger: as if unknown (an orphan when capture is on: a slow client may still be draining
			 * the back-end's send queue, and passing it up would reset it) */
			bpf_map_delete_elem(&flows, &key);
			return unknown_flow(skb, &p, &key);
		}
		/* The back-end reports the end when its descriptor closes, but its kernel may still be sending the
		 * rest of the response to a slow client, whose ACKs must keep reaching it: a closing flow lasts until
		 * the client has been quiet for a linger. Written at most once per half linger. */
		{
			__u64 linger = linger_ns();
			if (linger && st->deadline_ns - now < linger / 2)
				st->deadline_ns = now + linger;
		}
		return steer(skb, &p, st);
	default:
		return TC_ACT_OK;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
