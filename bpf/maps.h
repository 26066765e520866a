/* baton's BPF maps: THE one declaration of every map and of its key and value layouts.
 *
 * The TypeScript side (src/steer/bpf-maps.ts) reads these structs' offsets, sizes, byte orders and the
 * enums' values from the compiled object's BTF; nothing is mirrored by hand. Rules for editing:
 *  - byte order is in the type: __be16/__be32 fields are network order, __u* fields are host order;
 *  - IPv4 addresses sit in word [0] of a 16-byte address, words [1..3] zero;
 *  - explicit pad fields, zeroed by the writer, so hash keys have no holes with undefined bytes.
 *
 * A program includes this header after defining BATON_FRONTEND or BATON_BACKEND, which selects the maps its
 * object carries (each object has only its own maps).
 */
#ifndef BATON_MAPS_H
#define BATON_MAPS_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* Enums have a fixed 1-byte underlying type (a clang extension in C) so that they can be struct fields of the
 * exact size while their values reach BTF, where the TypeScript side reads them. */
#pragma clang diagnostic ignored "-Wfixed-enum-extension"

/* What the front-end program does with a flow's packets. */
enum flow_verdict : __u8 {
	VERDICT_NONE = 0,
	/* Drop (the connection is being captured), until deadline_ns if set; then the entry is deleted. */
	VERDICT_HOLD = 1,
	/* Steer to the back-end, refreshing last_seen_ns. */
	VERDICT_FORWARD = 2,
	/* Steer to the back-end until deadline_ns (late FIN/ACKs after the connection ended), then delete. */
	VERDICT_CLOSING = 3,
};

/* How a back-end is reached. */
enum backend_mode : __u8 {
	MODE_UNUSED = 0,
	/* L2 direct routing: IP header untouched, neighbour-resolved redirect to addr (the next hop). */
	MODE_L2 = 1,
	/* Flow-identifier encapsulation: daddr := addr, saddr := local, TCP ports := flow id, routed. */
	MODE_ENCAP = 2,
};

/* Address family tag used in keys and values (not AF_*: the IP version). */
enum ip_family : __u8 {
	FAMILY_IPV4 = 4,
	FAMILY_IPV6 = 6,
};

#define MAX_BACKENDS 64
#define DEFAULT_MAX_FLOWS 262144
/* Flow ids are below 2^31, so the encapsulated source port is below 32768 (see FLOW_ID_MAX in steer/types.ts). */
#define FLOW_ID_MAX 0x7fffffffu

/* A client's TCP connection to a VIP, as seen at the front-end's ingress (client -> VIP direction). */
struct flow_key {
	__be32 client[4];       /* client address, network order */
	__be32 vip[4];          /* virtual service address, network order */
	__be16 client_port;     /* network order */
	__be16 vip_port;        /* network order */
	enum ip_family family;  /* 4 | 6 */
	__u8 pad[3];            /* zero */
};

/* What to do with a flow. Written by the daemon; last_seen_ns refreshed and expired entries deleted by the program. */
struct flow_state {
	enum flow_verdict verdict;
	__u8 pad;
	__u16 backend;          /* index into `backends`, host order */
	__u32 flow_id;          /* the connection's flow id (1 .. 2^31-1), host order */
	__u64 handoff_id;       /* the handoff that placed the flow, host order (the daemon's, unused by the program) */
	__u64 last_seen_ns;     /* bpf_ktime_get_ns() of a recent packet (refreshed at most every refresh_ns) */
	__u64 deadline_ns;      /* closing: forward until; hold: drop until; 0: none (bpf_ktime_get_ns clock) */
};

/* A back-end slot. */
struct backend {
	enum backend_mode mode;
	enum ip_family family;  /* family of addr and local */
	__u16 pad;
	__u32 ifindex;          /* egress interface, host order; 0: same as ingress (l2) or chosen by a FIB lookup (encap) */
	__be32 addr[4];         /* l2: next hop; encap: destination (the back-end's address); network order */
	__be32 local[4];        /* encap: source (the front-end's address); network order */
};

/* Packets and bytes steered to one back-end (per CPU; readers sum the CPUs). */
struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Knobs for the front-end program. */
struct frontend_config {
	__u64 refresh_ns;       /* last_seen_ns is rewritten only when older than this (0: 1 s); avoids a write per packet */
	__u64 idle_timeout_ns;  /* for the daemon's aging sweep; the program does not read it */
	/* Orphan capture (several front-ends): a non-SYN packet to vip:vip_port with no `flows` entry and no local
	 * connection belongs to a flow another front-end handed off; it is recorded in `orphans` and dropped (never
	 * passed up, where the stack would reset the client) until the daemon finds the owner. */
	__be32 vip[4];          /* network order */
	__be16 vip_port;        /* network order */
	__u8 vip_family;        /* 4 | 6 */
	__u8 orphans;           /* 1: capture orphans; 0: off (packets without an entry pass, as before) */
	__u32 pad;              /* zero */
	__u64 linger_ns;        /* closing: each packet pushes deadline_ns to at least now + linger_ns / 2 .. now + linger_ns,
	                         * so a slow client still draining the back-end's send queue stays steered until it has
	                         * been quiet for a linger (0: fixed deadline) */
};

/* A packet of a flow the front-end does not know, waiting for its owner to be found (key: struct flow_key). */
struct orphan {
	__u64 first_seen_ns;    /* bpf_ktime_get_ns() of the first dropped packet */
	__u64 last_seen_ns;     /* of the latest */
	__u32 packets;          /* dropped so far */
	__u32 pass;             /* set by the daemon when no back-end holds the flow: pass it up (the stack resets it) */
};

#define MAX_ORPHANS 4096

/* Key of an encapsulated flow at a back-end: who encapsulated it and the flow id it carries in its ports. */
struct decap_key {
	__be32 frontend[4];     /* the front-end's address (the encapsulated packet's source), network order */
	__u32 flow_id;          /* sport << 16 | dport of the encapsulated packet, host order */
	enum ip_family family;
	__u8 pad[3];            /* zero */
};

/* The original connection to restore on an encapsulated packet. */
struct decap_value {
	__be32 client[4];       /* network order */
	__be32 vip[4];          /* network order */
	__be16 client_port;     /* network order */
	__be16 vip_port;        /* network order */
	__u32 pad;
	__u64 last_seen_ns;     /* bpf_ktime_get_ns() of a recent packet (refreshed at most every second) */
};


/* --- the back-end's guard (lossless handoff, DESIGN.md "Lossless handoff") --- */

/* The mark a parked packet carries up to netfilter, where the agent's nftables rule (prerouting, priority raw)
 * queues `meta mark & PARK_MARK_MASK == PARK_MARK` to the agent's nfqueue. The mask leaves the low 16 bits to
 * other users of the mark. (An enum so the values reach BTF: the agent's nft rule reads them from there.) */
enum park_mark : __u32 {
	PARK_MARK = 0x0ba70000,
	PARK_MARK_MASK = 0xffff0000,
};

/* What the guard did with a packet: the index of its per-CPU counter in `guard_counters`. */
enum guard_counter : __u32 {
	/* A SYN without ACK: a new connection, the stack's business. */
	GUARD_SYN = 0,
	/* A socket that is not a listener took it (established, time-wait, request). */
	GUARD_SOCKET = 1,
	/* Parked: no socket, or only a listener (the blob is still on its way). */
	GUARD_NO_SOCKET = 2,
	/* Parked: its tuple is in `parking` (the socket is being injected, in repair mode), or in `park_settling` with
	 * packets the guard queued still waiting for their verdict (they must reach the socket first). */
	GUARD_BEGUN = 3,
	/* Of the parked ones, dropped because parking is off (config.park_queue 0): the client retransmits. */
	GUARD_DROPPED = 4,
	/* Parked: encapsulated by a front-end in `encap_sources` under a flow id with no `decap` entry yet (its blob,
	 * which carries the mapping, is still on its way). The agent rewrites it in userspace once the mapping exists. */
	GUARD_ENCAP_EARLY = 5,
	GUARD_COUNTERS = 6,
};

/* A service the guard watches (key of `guard_vips`). */
struct guard_vip {
	__be32 vip[4];          /* network order */
	__be16 port;            /* network order */
	enum ip_family family;
	__u8 pad;               /* zero */
};

/* Knobs for the back-end program. */
struct backend_config {
	__u8 park_queue;        /* 1: a parked packet is marked (enum park_mark) and passed to netfilter's queue; 0: dropped */
	__u8 pad[3];            /* zero */
	enum park_mark mark;    /* the mark it gets (the program writes PARK_MARK; here so the enum reaches BTF) */
};

/* A front-end that encapsulates to this back-end (key of `encap_sources`): the source address of its encapsulated
 * packets (the `frontend` of struct decap_key). */
struct encap_source {
	__be32 addr[4];         /* network order */
	enum ip_family family;
	__u8 pad[3];            /* zero */
};

#define MAX_GUARD_VIPS 64
#define MAX_PARKING 65536
#define MAX_ENCAP_SOURCES 256

#ifdef BATON_FRONTEND
/* flows: every flow the front-end steers. Key struct flow_key, value struct flow_state. max_entries is set by the
 * loader before load. Pinned: it is the state that must survive a restart of the front-end process. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} flows SEC(".maps");

/* backends: back-end slots by index (host-order __u32 key 0..63), value struct backend. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

/* counters: per-CPU struct counter by back-end index (host-order __u32 key). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

/* orphans: flows seen without an entry and without a local socket (struct flow_key -> struct orphan). LRU: a
 * flood of unknown tuples evicts old ones instead of failing. The daemon reads and deletes them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_ORPHANS);
	__type(key, struct flow_key);
	__type(value, struct orphan);
} orphans SEC(".maps");

/* config: one struct frontend_config at key 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct frontend_config);
} config SEC(".maps");
#endif

#ifdef BATON_BACKEND
/* decap: encapsulated flows this back-end accepts. Key struct decap_key, value struct decap_value. Filled by the
 * agent from the handoff blob before it injects the socket; entries removed when the connection ends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_FLOWS);
	__type(key, struct decap_key);
	__type(value, struct decap_value);
} decap SEC(".maps");
/* guard_vips: services (struct guard_vip) whose TCP packets the guard checks; value __u32, 1 (unused). The agent
 * replaces the set as its VIPs change. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_GUARD_VIPS);
	__type(key, struct guard_vip);
	__type(value, __u32);
} guard_vips SEC(".maps");

/* parking: connections being injected right now (struct flow_key, client -> VIP as the packet travels) -> __u64
 * bpf_ktime_get_ns()-clock time the agent began (host order). Their packets are parked even once a socket exists,
 * since that socket is still in repair mode. The agent adds an entry before inject and deletes it after. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PARKING);
	__type(key, struct flow_key);
	__type(value, __u64);
} parking SEC(".maps");

/* park_marked: packets the guard queued per tuple (struct flow_key, client -> VIP) since the entry was made, __u64
 * (host order), added to atomically by the program only; an LRU, since strays make entries too. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_PARKING * 2);
	__type(key, struct flow_key);
	__type(value, __u64);
} park_marked SEC(".maps");

/* park_settling: tuples released lately after packets were parked (struct flow_key) -> __u64 how many of the packets
 * the guard queued for them the agent has given a verdict to (host order; written by the agent only). While
 * `park_marked` is ahead of it, some of the tuple's packets are still in the queue: later ones are queued behind them
 * instead of overtaking them to the socket (out of order there: spurious fast retransmits, PAWS drops). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PARKING);
	__type(key, struct flow_key);
	__type(value, __u64);
} park_settling SEC(".maps");

/* encap_sources: front-ends known to encapsulate to this back-end (struct encap_source) -> __u32 1 (unused). A
 * non-SYN TCP packet from one of them with a source port below 32768 (a flow id), no `decap` entry, not to a
 * guarded VIP and taken by no socket is an encapsulated packet that overtook its blob: parked (GUARD_ENCAP_EARLY).
 * Written by the agent (control-channel peers, config, blobs' ENCAP extension). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENCAP_SOURCES);
	__type(key, struct encap_source);
	__type(value, __u32);
} encap_sources SEC(".maps");

/* guard_counters: per-CPU __u64 packet counts by enum guard_counter (a host-order 4-byte key). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GUARD_COUNTERS);
	__type(key, enum guard_counter);
	__type(value, __u64);
} guard_counters SEC(".maps");

/* backend_config: one struct backend_config at key 0 (all zero: parked packets are dropped). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct backend_config);
} backend_config SEC(".maps");
#endif

#endif
