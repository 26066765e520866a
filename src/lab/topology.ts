// The lab's topology as data: which namespaces, segments, addresses and routes a lab has. Pure (no I/O), so every
// shape is unit-tested without root; lab.ts turns a plan into namespaces.
//
// Two shapes:
// - **L2** (default): one segment (a bridge in `${id}-sw`); client, front-end and back-ends share 10.77.0.0/24 and
//   fd77::/64. The front-end owns the VIP on the segment (answers ARP/NDP for it); back-ends carry it on lo.
// - **Router**: a router namespace `${id}-rt` (ip_forward on) holds one bridge per segment and an address on each:
//   client 10.77.1.0/24, front-ends 10.77.2.0/24, back-ends 10.77.3.0/24 (`routed`), or the back-ends on the
//   front-ends' segment (`frontends: N` without `routed`: L2 direct routing from every front-end, client behind the
//   router). The router routes the VIP to the front-end (a static route, or ECMP routes learnt over BGP from every
//   front-end when `bgp`); back-ends send their direct-server-return replies to the router, never to a front-end.
//
//   client 10.77.1.2 ── br1 ─┐
//                            ├ router `${id}-rt` 10.77.{1,2,3}.1 ── br2 ── fe 10.77.2.10 (fe2 .11, ...) + VIP
//   b1 10.77.3.11, ... ─ br3 ─┘
//
// IPv6 (`ipv6`) mirrors IPv4: segment 10.77.S.0/24 gets fd77:S::/64 (the L2 segment fd77::/64), the host
// with IPv4 octet N gets fd77:S::N (N written as-is, so 10.77.3.11 <-> fd77:3::11), the router fd77:S::1.

import { LabError } from './run.ts';

export type LabRole = 'client' | 'frontend' | 'backend';

export interface LabHost {
  readonly role: LabRole;
  /** Short name: 'c', 'fe' (then 'fe2', 'fe3', ...), 'b1', 'b2', ... */
  readonly name: string;
  readonly netns: string;
  /** The interface inside the namespace that is plugged into the segment. */
  readonly ifname: string;
  /** IPv4 address on ifname (prefix length: Lab.prefixLen). What every other host of the lab sees as this host. */
  readonly address: string;
  readonly mac: string;
  /** IPv6 address on ifname (/64), when the lab has IPv6. */
  readonly address6?: string;
  /** The router's address on this host's segment (its default route), in a router lab. */
  readonly gateway?: string;
  readonly gateway6?: string;
}

/** A router lab's router: one namespace with a bridge and an address per segment. */
export interface LabRouter {
  readonly name: 'rt';
  readonly netns: string;
  /** The router's address on each segment, by segment name. */
  readonly addresses: Readonly<Record<string, string>>;
  readonly addresses6: Readonly<Record<string, string>>;
}

export interface LabSegment {
  /** 'lan' (the L2 lab's one segment), 'client', 'frontend', 'backend'. */
  readonly name: string;
  /** Bridge name in the hub namespace. */
  readonly bridge: string;
  /** IPv4 /24 as its first three octets ('10.77.1'). */
  readonly net4: string;
  /** IPv6 /64 prefix with the trailing '::' ('fd77:1::'). */
  readonly net6: string;
  readonly hosts: readonly LabHost[];
}

export interface LabPlanOptions {
  readonly id: string;
  readonly backends: number;
  /** Front-ends behind the router (implies a router); default: one front-end, no router unless `routed`. */
  readonly frontends?: number;
  /** Client, front-ends and back-ends each in their own subnet, joined by a router. */
  readonly routed?: boolean;
  readonly ipv6?: boolean;
  /** The router learns the VIP over BGP from the front-ends (default: when `frontends` is given). */
  readonly bgp?: boolean;
  readonly vip?: string;
  readonly vip6?: string;
}

export interface LabPlan {
  readonly id: string;
  readonly vip: string;
  readonly vip6: string | undefined;
  readonly client: LabHost;
  readonly frontends: readonly LabHost[];
  readonly backends: readonly LabHost[];
  /** Present in a router lab. */
  readonly router: LabRouter | undefined;
  /** The namespace holding the bridges: `${id}-sw` (L2) or the router `${id}-rt`. */
  readonly hubNetns: string;
  readonly segments: readonly LabSegment[];
  readonly bgp: boolean;
  /** Back-ends are on another subnet than the front-ends (they need encapsulation, not L2 direct routing). */
  readonly routed: boolean;
}

export const LAB_PREFIX_LEN = 24;
export const LAB_PREFIX_LEN6 = 64;
export const LAB_DEFAULT_VIP = '10.77.0.100';
export const LAB_DEFAULT_VIP6 = 'fd77::100';
export const MAX_BACKENDS = 50;
export const MAX_FRONTENDS = 8;

/** The plan for a lab, or a LabError saying which option is wrong. */
export function planLab(o: LabPlanOptions): LabPlan {
  const n = o.backends;
  if (!Number.isInteger(n) || n < 1 || n > MAX_BACKENDS) {
    throw new LabError(`labUp: backends must be an integer in 1..${MAX_BACKENDS}, got ${n}`);
  }
  const nf = o.frontends ?? 1;
  if (!Number.isInteger(nf) || nf < 1 || nf > MAX_FRONTENDS) {
    throw new LabError(`labUp: frontends must be an integer in 1..${MAX_FRONTENDS}, got ${nf}`);
  }
  const routerLab = o.routed === true || o.frontends !== undefined;
  const bgp = o.bgp ?? o.frontends !== undefined;
  if (bgp && !routerLab) throw new LabError('labUp: bgp needs a router (routed or frontends)');
  validateId(o.id, n, nf);
  const vip = o.vip ?? LAB_DEFAULT_VIP;
  if (!isIPv4(vip)) throw new LabError(`labUp: invalid vip ${vip}`);
  const ipv6 = o.ipv6 === true || o.vip6 !== undefined;
  const vip6 = ipv6 ? (o.vip6 ?? LAB_DEFAULT_VIP6) : undefined;
  if (vip6 !== undefined && !isIPv6(vip6)) throw new LabError(`labUp: invalid vip6 ${vip6}`);

  const mk = (seg: { num: number; net4: string; net6: string; router: boolean }, role: LabRole, name: string, octet: number): LabHost => ({
    role,
    name,
    netns: `${o.id}-${name}`,
    ifname: 'eth0',
    address: `${seg.net4}.${octet}`,
    mac: `02:00:0a:4d:${hex2(seg.num)}:${hex2(octet)}`,
    ...(ipv6 ? { address6: `${seg.net6}${octet}` } : {}),
    ...(seg.router ? { gateway: `${seg.net4}.1`, ...(ipv6 ? { gateway6: `${seg.net6}1` } : {}) } : {}),
  });
  const feName = (i: number): string => (i === 0 ? 'fe' : `fe${i + 1}`);

  let plan: Omit<LabPlan, 'vip' | 'vip6' | 'id' | 'bgp'>;
  if (!routerLab) {
    const lan = { num: 0, net4: '10.77.0', net6: 'fd77::', router: false };
    const client = mk(lan, 'client', 'c', 2);
    const frontends = [mk(lan, 'frontend', 'fe', 10)];
    const backends = Array.from({ length: n }, (_, i) => mk(lan, 'backend', `b${i + 1}`, 11 + i));
    plan = {
      client, frontends, backends, router: undefined, hubNetns: `${o.id}-sw`, routed: false,
      segments: [{ name: 'lan', bridge: 'br0', net4: lan.net4, net6: lan.net6, hosts: [client, ...frontends, ...backends] }],
    };
  } else {
    const seg = (num: number) => ({ num, net4: `10.77.${num}`, net6: `fd77:${num}::`, router: true });
    const [cs, fs, bs] = [seg(1), seg(2), seg(3)];
    const client = mk(cs, 'client', 'c', 2);
    const frontends = Array.from({ length: nf }, (_, i) => mk(fs, 'frontend', feName(i), 10 + i));
    const routed = o.routed === true;
    // Sharing the front-ends' segment, back-ends start above the last possible front-end (.10 + MAX_FRONTENDS).
    const backends = Array.from({ length: n }, (_, i) =>
      routed ? mk(bs, 'backend', `b${i + 1}`, 11 + i) : mk(fs, 'backend', `b${i + 1}`, 20 + i),
    );
    const segments: LabSegment[] = [
      { name: 'client', bridge: 'br1', net4: cs.net4, net6: cs.net6, hosts: [client] },
      { name: 'frontend', bridge: 'br2', net4: fs.net4, net6: fs.net6, hosts: routed ? frontends : [...frontends, ...backends] },
      ...(routed ? [{ name: 'backend', bridge: 'br3', net4: bs.net4, net6: bs.net6, hosts: backends }] : []),
    ];
    const router: LabRouter = {
      name: 'rt',
      netns: `${o.id}-rt`,
      addresses: Object.fromEntries(segments.map((s) => [s.name, `${s.net4}.1`])),
      addresses6: ipv6 ? Object.fromEntries(segments.map((s) => [s.name, `${s.net6}1`])) : {},
    };
    plan = { client, frontends, backends, router, hubNetns: router.netns, segments, routed };
  }

  const taken = [plan.client, ...plan.frontends, ...plan.backends].flatMap((h) => [h.address, h.address6]);
  if (plan.router) taken.push(...Object.values(plan.router.addresses), ...Object.values(plan.router.addresses6));
  if (taken.includes(vip)) throw new LabError(`labUp: vip ${vip} collides with a host address`);
  if (vip6 !== undefined && taken.includes(vip6)) throw new LabError(`labUp: vip6 ${vip6} collides with a host address`);
  return { ...plan, id: o.id, vip, vip6, bgp };
}

/** True when addr lies in the segment's IPv4 /24 (or, for an IPv6 address, its /64). */
export function onSegment(seg: LabSegment, addr: string): boolean {
  if (isIPv4(addr)) return addr.startsWith(`${seg.net4}.`);
  return addr.toLowerCase().startsWith(seg.net6) && !addr.slice(seg.net6.length).includes(':');
}

/** Every namespace of the plan, hosts first and the hub last (delete order: veths go with their host end). */
export function planNamespaces(p: LabPlan): string[] {
  return [p.client, ...p.frontends, ...p.backends].map((h) => h.netns).concat(p.hubNetns);
}

function validateId(id: string, backends: number, frontends: number): void {
  // The longest interface name is the hub-side veth `${id}${host}`; Linux allows 15 characters.
  const longest = Math.max(`b${backends}`.length, frontends > 1 ? `fe${frontends}`.length : 2);
  if (!/^[a-z][a-z0-9]*$/.test(id) || id.length + longest > 15) {
    throw new LabError(`labUp: invalid lab id ${JSON.stringify(id)} (lower-case alphanumeric, short)`);
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/** A loose check (hex groups and one '::' at most); the kernel has the last word when the address is added. */
export function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:]+$/.test(s) || s.split('::').length > 2) return false;
  const groups = s.split(':');
  return groups.length >= 3 && groups.length <= 8 && groups.every((g) => g.length <= 4);
}
