/* Lab only (src/lab/rehash.ts): tc ingress on the router's client-facing interface. Clears the packet's flow hash so
 * the router's ECMP choice is computed from the headers with its hash seed. Without it, a TCP packet from a local
 * socket in the client namespace carries the socket's L4 hash across the veth, and fib_multipath_hash uses that hash
 * as is (skb->l4_hash short-circuit), so a new seed would never move an established TCP flow. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int baton_lab_rehash(struct __sk_buff *skb)
{
	bpf_set_hash_invalid(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
