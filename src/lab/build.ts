// Projects a lab plan (topology.ts) onto the kernel: namespaces, sysctls, bridges, veth pairs, addresses and
// routes. Every command runs inside the lab's namespaces; nothing touches the root namespace.

import { LabError, runOk } from './run.ts';
import { LAB_PREFIX_LEN, LAB_PREFIX_LEN6, onSegment, type LabHost, type LabPlan } from './topology.ts';

/** Sysctls every host namespace gets. Kernel defaults mostly, but made explicit so TCP options are known. */
const COMMON_SYSCTLS = [
  // TCP options the handoff blob carries; all on so capture/restore exercises them.
  'net.ipv4.tcp_timestamps=1',
  'net.ipv4.tcp_sack=1',
  'net.ipv4.tcp_window_scaling=1',
  // Source validation would drop direct-routing traffic (VIP-sourced replies, MAC-forwarded requests). 'default'
  // is set before the veth exists, so eth0 inherits it; the effective value is the max of 'all' and the interface.
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
];

/** Without IPv6: keeps neighbour discovery and MLD chatter out of interface packet counts. */
const NO_IPV6 = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];

/**
 * With IPv6: no duplicate address detection. A tentative address cannot be bound or used as a source for about a
 * second after it is added, which would make tests race; every lab address is unique by construction. Set before
 * interfaces exist so their link-local addresses are not tentative either (explicit addresses also get `nodad`).
 */
const IPV6 = [
  'net.ipv6.conf.all.disable_ipv6=0',
  'net.ipv6.conf.default.disable_ipv6=0',
  'net.ipv6.conf.all.accept_dad=0',
  'net.ipv6.conf.default.accept_dad=0',
  // No router advertisements are sent in a lab; do not let a stray one add routes.
  'net.ipv6.conf.default.accept_ra=0',
];

const CLIENT_SYSCTLS = [
  // Load-generator settings. When the client closes first (wrk often beats a slow server's FIN) it keeps the
  // TIME_WAIT; after ~30k connections connect() then spins searching for a free port (100 % CPU, a few hundred
  // connections/s). A wide range and reuse of TIME_WAIT ports older than a second (timestamps make it safe) avoid it.
  'net.ipv4.ip_local_port_range=10000 65000',
  'net.ipv4.tcp_tw_reuse=1',
];

/**
 * LVS direct-routing real server: accept the VIP (on lo) but never answer ARP for it or use it as ARP source. The
 * IPv6 equivalent needs no setting: Linux answers a neighbour solicitation only for an address on the interface it
 * arrived on (ndisc_recv_ns looks the target up strictly on that device), so a VIP on lo is never advertised.
 */
const BACKEND_SYSCTLS = [
  'net.ipv4.conf.all.arp_ignore=1',
  'net.ipv4.conf.all.arp_announce=2',
  'net.ipv4.conf.eth0.arp_ignore=1',
  'net.ipv4.conf.eth0.arp_announce=2',
  'net.ipv4.conf.eth0.rp_filter=0',
  'net.ipv4.conf.lo.rp_filter=0',
];

const ROUTER_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  // Reverse-path filtering off on the router, explicitly: back-ends reply straight to the client (direct server
  // return) with the VIP as source, arriving on the back-end segment, while the router's route to the VIP points at
  // the front-end segment: strict rp_filter would drop every reply, and loose mode would too whenever the VIP route
  // is withdrawn (no route at all). Front-end -> back-end packets (encapsulated, source = the front-end's address)
  // would pass either way.
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
  // No ICMP redirects: hosts must keep sending through the router, which is what the lab is there to show.
  'net.ipv4.conf.all.send_redirects=0',
  'net.ipv4.conf.default.send_redirects=0',
  // ECMP by L4 hash (addresses and ports), so one client's connections spread over the front-ends.
  'net.ipv4.fib_multipath_hash_policy=1',
];

const ROUTER_SYSCTLS6 = ['net.ipv6.conf.all.forwarding=1', 'net.ipv6.fib_multipath_hash_policy=1'];

/** The switch (one bridge, no address) or the router (a bridge and an address per segment, forwarding on). */
export async function buildHub(p: LabPlan): Promise<void> {
  const ns = p.hubNetns;
  const v6 = p.vip6 !== undefined;
  await sysctl(ns, v6 ? IPV6 : NO_IPV6);
  if (p.router !== undefined) await sysctl(ns, [...ROUTER_SYSCTLS, ...(v6 ? ROUTER_SYSCTLS6 : [])]);
  await ip(ns, ['link', 'set', 'lo', 'up']);
  for (const s of p.segments) {
    // STP is off by default, so ports forward at once; ageing stays default.
    await ip(ns, ['link', 'add', s.bridge, 'type', 'bridge']);
    if (p.router !== undefined) {
      await ip(ns, ['addr', 'add', `${p.router.addresses[s.name]}/${LAB_PREFIX_LEN}`, 'dev', s.bridge]);
      if (v6) await ip(ns, ['-6', 'addr', 'add', `${p.router.addresses6[s.name]}/${LAB_PREFIX_LEN6}`, 'dev', s.bridge, 'nodad']);
    }
    await ip(ns, ['link', 'set', s.bridge, 'up']);
  }
}

export async function plugHost(p: LabPlan, h: LabHost): Promise<void> {
  const v6 = p.vip6 !== undefined;
  const seg = p.segments.find((s) => s.hosts.includes(h));
  if (seg === undefined) throw new LabError(`labUp: host ${h.name} is on no segment`);
  await runOk(['ip', 'netns', 'add', h.netns]);
  // Before the veth exists, so 'default' sysctls (rp_filter, IPv6, DAD) apply to eth0 when it is created.
  await sysctl(h.netns, [...COMMON_SYSCTLS, ...(v6 ? IPV6 : NO_IPV6)]);
  const port = `${p.id}${h.name}`;
  await ip(p.hubNetns, [
    'link', 'add', port, 'type', 'veth',
    'peer', 'name', h.ifname, 'address', h.mac, 'netns', h.netns,
  ]);
  await ip(p.hubNetns, ['link', 'set', port, 'master', seg.bridge, 'up']);
  await ip(h.netns, ['link', 'set', 'lo', 'up']);
  await ip(h.netns, ['addr', 'add', `${h.address}/${LAB_PREFIX_LEN}`, 'dev', h.ifname]);
  if (h.address6 !== undefined) {
    await ip(h.netns, ['-6', 'addr', 'add', `${h.address6}/${LAB_PREFIX_LEN6}`, 'dev', h.ifname, 'nodad']);
  }
  await ip(h.netns, ['link', 'set', h.ifname, 'up']);
  if (h.gateway !== undefined) await ip(h.netns, ['route', 'add', 'default', 'via', h.gateway]);
  if (h.gateway6 !== undefined) await ip(h.netns, ['-6', 'route', 'add', 'default', 'via', h.gateway6]);
  switch (h.role) {
    case 'client':
      await sysctl(h.netns, CLIENT_SYSCTLS);
      // L2 lab: in the segment the VIP is on-link already; outside it, make it on-link so the client ARPs for it.
      // A router lab's client reaches the VIP through its default route.
      if (p.router === undefined) {
        if (!onSegment(seg, p.vip)) await ip(h.netns, ['route', 'add', `${p.vip}/32`, 'dev', h.ifname]);
        if (p.vip6 !== undefined && !onSegment(seg, p.vip6)) {
          await ip(h.netns, ['-6', 'route', 'add', `${p.vip6}/128`, 'dev', h.ifname]);
        }
      }
      break;
    case 'frontend':
      // The front-end owns the VIP: with the default arp_ignore=0 it answers ARP (and NDP) for it on eth0. In a
      // router lab nobody asks (the router routes the VIP to the front-end's own address), but it is local all the
      // same.
      await ip(h.netns, ['addr', 'add', `${p.vip}/32`, 'dev', h.ifname]);
      if (p.vip6 !== undefined) await ip(h.netns, ['-6', 'addr', 'add', `${p.vip6}/128`, 'dev', h.ifname, 'nodad']);
      break;
    case 'backend':
      await sysctl(h.netns, BACKEND_SYSCTLS);
      await ip(h.netns, ['addr', 'add', `${p.vip}/32`, 'dev', 'lo']);
      if (p.vip6 !== undefined) await ip(h.netns, ['-6', 'addr', 'add', `${p.vip6}/128`, 'dev', 'lo', 'nodad']);
      break;
  }
}

export function ip(ns: string, args: readonly string[]): Promise<string> {
  return runOk(['ip', '-n', ns, ...args]);
}

async function sysctl(ns: string, settings: readonly string[]): Promise<void> {
  if (settings.length === 0) return;
  await runOk(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...settings]);
}
