// Pure text generation for the nftables projection of steering state. Kept apart from the
// process that applies it so the exact rules are unit-tested without root.
//
// Per front-end, one netdev table on the client-facing interface:
//   set hold{4,6}:           flows being captured; dropped at ingress (timeout: safety net).
//   set live{4,6}_<b>:       flows owned by back-end b; forwarded (L2 direct routing, IP header
//                            untouched), the element's idle timeout refreshed by every packet.
//   set closing{4,6}_<b>:    flows whose connection ended; still forwarded for a short linger
//                            so the last FIN/ACKs reach the owner, never refreshed.
// Every set is keyed by client address . client port; the VIP and port are in the rules.
// A new SYN on a tuple clears that tuple from every live and closing set first (port reuse).
import type { FlowKey } from './types.ts';

export interface NftConfig {
  readonly table: string;
  readonly device: string;
  readonly family: 4 | 6;
  readonly vip: string;
  readonly port: number;
  readonly backends: readonly { readonly index: number; readonly address: string }[];
  readonly holdTimeoutS: number;
  readonly idleTimeoutS: number;
  readonly lingerMs: number;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,30}$/;
const DEVICE = /^[A-Za-z0-9_.:-]{1,15}$/;

export function validateNftConfig(c: NftConfig): void {
  if (!NAME.test(c.table)) throw new TypeError(`steering.table: invalid nftables name "${c.table}"`);
  if (!DEVICE.test(c.device)) throw new TypeError(`interface: invalid device name "${c.device}"`);
}

const fam = (f: 4 | 6) => (f === 4 ? { ip: 'ip', addr: 'ipv4_addr', sfx: '4' } : { ip: 'ip6', addr: 'ipv6_addr', sfx: '6' });

export const holdSet = (f: 4 | 6): string => `hold${fam(f).sfx}`;
export const liveSet = (f: 4 | 6, b: number): string => `live${fam(f).sfx}_${b}`;
export const closingSet = (f: 4 | 6, b: number): string => `closing${fam(f).sfx}_${b}`;
/** An always-empty set listed after each request: its output marks the request as applied. */
export const ACK_SET = 'ack';

function setDecl(name: string, addrType: string, timeoutS: number): string {
  // One keyword per line: the one-line form fails to parse on nft 1.0.6 (KERNEL-NOTES.md).
  return [`  set ${name} {`, `    type ${addrType} . inet_service`, `    flags timeout`, `    timeout ${timeoutS}s`, `  }`].join('\n');
}

/** The whole table, for `nft -f`. Deletes a stale table of the same name first. */
export function tableScript(c: NftConfig): string {
  validateNftConfig(c);
  const f = fam(c.family);
  const { match, key } = matchOf(c);
  const lingerS = Math.max(1, Math.ceil(c.lingerMs / 1000));
  const sets = [
    [`  set ${ACK_SET} {`, `    type ${f.addr} . inet_service`, `  }`].join('\n'),
    setDecl(holdSet(c.family), f.addr, c.holdTimeoutS),
    ...c.backends.flatMap((b) => [
      setDecl(liveSet(c.family, b.index), f.addr, c.idleTimeoutS),
      setDecl(closingSet(c.family, b.index), f.addr, lingerS),
    ]),
  ];
  // A bare SYN means the client has no connection on this tuple any more (it reused a port):
  // whatever was steered for it is stale. Forget it in the data path and let the front-end's
  // stack take the new connection; otherwise the handshake would go to the old owner.
  const forget = c.backends.map((b) => forgetStale(c, b)).join(' ');
  const rules = [
    `    ${match} tcp flags & (syn | ack) == syn ${forget}${forget ? ' ' : ''}accept`,
    `    ${match} ${key} @${holdSet(c.family)} drop`,
    ...c.backends.flatMap((b) => forwardRules(c, b).map((r) => `    ${r}`)),
  ];
  return [
    `table netdev ${c.table}`,
    `delete table netdev ${c.table}`,
    `table netdev ${c.table} {`,
    ...sets,
    `  chain ingress {`,
    // Before everything else on the device, so held packets never reach the stack.
    `    type filter hook ingress device "${c.device}" priority -500; policy accept;`,
    ...rules,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

const matchOf = (c: NftConfig): { match: string; key: string } => {
  const f = fam(c.family);
  return { match: `${f.ip} daddr ${c.vip} tcp dport ${c.port}`, key: `${f.ip} saddr . tcp sport` };
};

/** The statements that forget a tuple's steering to back-end `b` (part of the SYN rule). */
function forgetStale(c: NftConfig, b: NftConfig['backends'][number]): string {
  const { key } = matchOf(c);
  return `delete @${liveSet(c.family, b.index)} { ${key} } delete @${closingSet(c.family, b.index)} { ${key} }`;
}

/**
 * Back-end b's two rules, each refreshing its element's timeout: live flows stay until idle for the idle
 * timeout; closing flows until quiet for the linger (the back-end reports the end when its descriptor closes,
 * but its kernel may still be sending to a slow client, whose ACKs must keep reaching it).
 */
function forwardRules(c: NftConfig, b: NftConfig['backends'][number]): string[] {
  const { match, key } = matchOf(c);
  const ip = fam(c.family).ip;
  const lingerS = Math.max(1, Math.ceil(c.lingerMs / 1000));
  return [
    `${match} ${key} @${closingSet(c.family, b.index)} update @${closingSet(c.family, b.index)} { ${key} timeout ${lingerS}s } fwd ${ip} to ${b.address} device "${c.device}"`,
    `${match} ${key} @${liveSet(c.family, b.index)} update @${liveSet(c.family, b.index)} { ${key} timeout ${c.idleTimeoutS}s } fwd ${ip} to ${b.address} device "${c.device}"`,
  ];
}

/**
 * Adds back-end `b` to a running table (configuration reload) without touching existing flows:
 * its sets, a SYN rule inserted at the head of the chain that forgets its stale tuples (it does
 * not accept, so the table's own SYN rule still follows), and its forwarding rules appended.
 */
export function addBackendScript(c: NftConfig, b: NftConfig['backends'][number]): string {
  validateNftConfig(c);
  const f = fam(c.family);
  const { match } = matchOf(c);
  const lingerS = Math.max(1, Math.ceil(c.lingerMs / 1000));
  return [
    `table netdev ${c.table} {`,
    setDecl(liveSet(c.family, b.index), f.addr, c.idleTimeoutS),
    setDecl(closingSet(c.family, b.index), f.addr, lingerS),
    `}`,
    `insert rule netdev ${c.table} ingress ${match} tcp flags & (syn | ack) == syn ${forgetStale(c, b)}`,
    ...forwardRules(c, b).map((r) => `add rule netdev ${c.table} ingress ${r}`),
    '',
  ].join('\n');
}

export function elementKey(f: FlowKey): string {
  return `${f.clientAddress} . ${f.clientPort}`;
}

export function addElement(table: string, set: string, f: FlowKey, timeoutMs?: number): string {
  const t = timeoutMs === undefined ? '' : ` timeout ${Math.max(1, Math.ceil(timeoutMs / 1000))}s`;
  return `add element netdev ${table} ${set} { ${elementKey(f)}${t} }`;
}

export function deleteElement(table: string, set: string, f: FlowKey): string {
  return `delete element netdev ${table} ${set} { ${elementKey(f)} }`;
}

export const ackCommand = (table: string): string => `list set netdev ${table} ${ACK_SET}`;

/** Parses `nft -j list table` output into set name -> element keys. */
export function parseSetElements(json: string): Map<string, FlowKey[]> {
  const out = new Map<string, FlowKey[]>();
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  for (const item of doc.nftables ?? []) {
    const set = (item as { set?: { name?: string; type?: unknown; elem?: unknown[] } }).set;
    if (!set?.name) continue;
    const keys: FlowKey[] = [];
    for (const e of set.elem ?? []) {
      const concat = findConcat(e);
      if (!concat) continue;
      const [addr, port] = concat;
      if (typeof addr === 'string' && typeof port === 'number') {
        keys.push({ family: addr.includes(':') ? 6 : 4, clientAddress: addr, clientPort: port });
      }
    }
    out.set(set.name, keys);
  }
  return out;
}

// An element is either {concat:[a,p]} or {elem:{val:{concat:[a,p]}, timeout, expires}}.
function findConcat(e: unknown): unknown[] | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const o = e as { concat?: unknown; elem?: { val?: unknown } };
  if (Array.isArray(o.concat)) return o.concat;
  if (o.elem?.val) return findConcat(o.elem.val);
  return undefined;
}
