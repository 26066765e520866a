// Typed access to the BPF data plane's maps. Every key/value codec here is built from the layouts the compiled
// object declares in its BTF (bpf/maps.h is the one declaration): offsets, sizes, byte order and enum values are
// read, not copied. What this file knows is what each field MEANS (that `client` is an address, `verdict` a
// verdict); if the C side renames, resizes or reorders a field, building the codecs fails instead of mis-encoding.
import { Btf, type FieldLayout, type StructLayout } from '../sys/btf.ts';
import { mapDelete, mapLookup, mapNextKey, mapUpdate, possibleCpus } from '../sys/libbpf.ts';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../wire/bytes.ts';
import { BatonError } from '../wire/errors.ts';
import type { FlowKey, FlowVerdict, ForwardMode, SteerCounters } from './types.ts';

export class BpfLayoutError extends BatonError {
  constructor(message: string) {
    super('BATON_ERR_BPF_LAYOUT', message);
  }
}

export class BpfValueError extends BatonError {
  constructor(message: string) {
    super('BATON_ERR_BPF_VALUE', message);
  }
}

/** The VIP side of a flow: the service address and port the client connected to. */
export interface Vip {
  readonly address: string;
  readonly port: number;
}

/** A `flows` entry (struct flow_state). Times are bpf_ktime_get_ns() (CLOCK_MONOTONIC) nanoseconds. */
export interface FlowState {
  readonly verdict: FlowVerdict;
  /** Back-end slot index (0..63). */
  readonly backend: number;
  readonly flowId: number;
  readonly handoffId: bigint;
  readonly lastSeenNs: bigint;
  /** hold: drop until; closing: forward until; 0n: none. */
  readonly deadlineNs: bigint;
}

export interface FlowEntry {
  readonly flow: FlowKey;
  readonly vip: Vip;
  readonly state: FlowState;
}

/** A `backends` slot (struct backend). */
export interface BackendSlot {
  readonly mode: ForwardMode | 'unused';
  readonly family: 4 | 6;
  /** Egress interface; 0: the ingress interface (l2) or a FIB lookup's choice (encap). */
  readonly ifindex: number;
  /** l2: next hop; encap: the back-end's address. */
  readonly address: string;
  /** encap: the front-end's source address. */
  readonly local?: string;
}

/** A `decap` entry at a back-end: the encapsulated flow (front-end, flow id) and the connection it restores. */
export interface DecapEntry {
  readonly family: 4 | 6;
  readonly frontend: string;
  readonly flowId: number;
  readonly client: string;
  readonly clientPort: number;
  readonly vip: string;
  readonly vipPort: number;
  /** Read only (the program refreshes it). */
  readonly lastSeenNs?: bigint;
}

export interface FrontendConfig {
  readonly refreshNs: bigint;
  readonly idleTimeoutNs: bigint;
  /** A closing flow's deadline is pushed to now + lingerNs by its packets (0n: fixed deadline). */
  readonly lingerNs?: bigint;
  /** Orphan capture: packets to this VIP with no entry and no local connection are recorded and dropped. */
  readonly orphans?: { readonly family: 4 | 6; readonly vip: Vip };
}

/** An `orphans` entry (struct orphan): a flow seen without an entry and without a local connection. */
export interface OrphanEntry {
  readonly flow: FlowKey;
  readonly vip: Vip;
  readonly firstSeenNs: bigint;
  readonly lastSeenNs: bigint;
  /** Packets dropped so far. */
  readonly packets: number;
  /** No back-end holds it: packets go up to the stack, which resets the client. */
  readonly pass?: boolean;
}

// --- field access over BTF layouts (exported for the other map files of this folder, e.g. bpf-guard-maps.ts) ---

type Expect = { readonly size: number; readonly bigEndian?: boolean; readonly kind?: FieldLayout['kind'] };

export function field(layout: StructLayout, name: string, want: Expect): FieldLayout {
  const f = layout.fields.get(name);
  if (!f) throw new BpfLayoutError(`bpf layout: struct ${layout.name} has no field ${name}`);
  if (f.size !== want.size || (want.bigEndian !== undefined && f.bigEndian !== want.bigEndian) || (want.kind && f.kind !== want.kind)) {
    throw new BpfLayoutError(
      `bpf layout: ${layout.name}.${name} is ${f.size} bytes ${f.bigEndian ? 'be' : 'host'} ${f.kind}, expected ${want.size} bytes${want.bigEndian === undefined ? '' : want.bigEndian ? ' be' : ' host'}`,
    );
  }
  return f;
}

export function writeUint(buf: Buffer, f: FieldLayout, v: number | bigint): void {
  const o = f.offset;
  switch (f.size) {
    case 1:
      return void buf.writeUInt8(Number(v), o);
    case 2:
      return void (f.bigEndian ? buf.writeUInt16BE(Number(v), o) : buf.writeUInt16LE(Number(v), o));
    case 4:
      return void (f.bigEndian ? buf.writeUInt32BE(Number(v), o) : buf.writeUInt32LE(Number(v), o));
    case 8:
      return void (f.bigEndian ? buf.writeBigUInt64BE(BigInt(v), o) : buf.writeBigUInt64LE(BigInt(v), o));
    default:
      throw new BpfLayoutError(`bpf layout: ${f.name} has no integer size (${f.size})`);
  }
}

export function readUint(buf: Buffer, f: FieldLayout): number {
  const o = f.offset;
  if (f.size === 1) return buf.readUInt8(o);
  if (f.size === 2) return f.bigEndian ? buf.readUInt16BE(o) : buf.readUInt16LE(o);
  if (f.size === 4) return f.bigEndian ? buf.readUInt32BE(o) : buf.readUInt32LE(o);
  throw new BpfLayoutError(`bpf layout: ${f.name} is not a small integer (${f.size})`);
}

export function readU64(buf: Buffer, f: FieldLayout): bigint {
  return f.bigEndian ? buf.readBigUInt64BE(f.offset) : buf.readBigUInt64LE(f.offset);
}

/** Parsed address text of the first few hundred addresses seen per family: the VIPs, back-ends and the front-end's
 * own address, which recur in every key and value (client addresses are too many to cache usefully). */
const addrCache = { 4: new Map<string, Uint8Array>(), 6: new Map<string, Uint8Array>() };

function parseAddr(family: 4 | 6, text: string): Uint8Array | undefined {
  const cache = addrCache[family];
  const hit = cache.get(text);
  if (hit) return hit;
  const bytes = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (bytes && cache.size < 256) cache.set(text, bytes);
  return bytes;
}

/** An address in a 16-byte network-order field: IPv4 in the first 4 bytes, the rest zero. */
export function writeAddr(buf: Buffer, f: FieldLayout, family: 4 | 6, text: string, what: string): void {
  const bytes = parseAddr(family, text);
  if (!bytes) throw new BpfValueError(`bpf: ${what} ${JSON.stringify(text)} is not an IPv${family} address`);
  buf.fill(0, f.offset, f.offset + f.size);
  buf.set(bytes, f.offset);
}

export function readAddr(buf: Buffer, f: FieldLayout, family: 4 | 6): string {
  return family === 4 ? formatIPv4(buf, f.offset) : formatIPv6(buf, f.offset);
}

/** Name <-> value of a BTF enum whose enumerators are PREFIX_NAME (e.g. VERDICT_HOLD <-> 'hold'). */
function enumCodec<T extends string>(btf: Btf, enumName: string, prefix: string, names: readonly T[]) {
  const values = btf.enumValues(enumName);
  const toValue = new Map<T, number>();
  const toName = new Map<number, T>();
  for (const n of names) {
    const v = values.get(`${prefix}${n.toUpperCase()}`);
    if (v === undefined) throw new BpfLayoutError(`bpf layout: enum ${enumName} has no ${prefix}${n.toUpperCase()}`);
    toValue.set(n, v);
    toName.set(v, n);
  }
  return {
    value(n: T): number {
      return toValue.get(n) as number;
    },
    name(v: number, what: string): T {
      const n = toName.get(v);
      if (n === undefined) throw new BpfValueError(`bpf: ${what} has unknown value ${v}`);
      return n;
    },
  };
}

export function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new BpfValueError(`bpf: ${what} ${port} is not a port`);
  return port;
}

// --- the front-end object's codecs ---

/** Codecs for the front-end object's maps, derived from its BTF. */
export class FrontendCodecs {
  readonly flowKeySize: number;
  readonly flowStateSize: number;
  readonly backendSize: number;
  readonly counterSize: number;
  readonly configSize: number;
  readonly orphanSize: number;
  readonly #k;
  readonly #o;
  readonly #s;
  readonly #b;
  readonly #c;
  readonly #cfg;
  readonly #family;
  readonly #verdict;
  readonly #mode;

  constructor(btf: Btf) {
    const key = btf.struct('flow_key');
    const st = btf.struct('flow_state');
    const be = btf.struct('backend');
    const ctr = btf.struct('counter');
    const cfg = btf.struct('frontend_config');
    const orph = btf.struct('orphan');
    this.orphanSize = orph.size;
    this.#o = {
      first: field(orph, 'first_seen_ns', { size: 8, bigEndian: false }),
      last: field(orph, 'last_seen_ns', { size: 8, bigEndian: false }),
      packets: field(orph, 'packets', { size: 4, bigEndian: false }),
      pass: field(orph, 'pass', { size: 4, bigEndian: false }),
    };
    this.flowKeySize = key.size;
    this.flowStateSize = st.size;
    this.backendSize = be.size;
    this.counterSize = ctr.size;
    this.configSize = cfg.size;
    this.#k = {
      client: field(key, 'client', { size: 16, bigEndian: true }),
      vip: field(key, 'vip', { size: 16, bigEndian: true }),
      clientPort: field(key, 'client_port', { size: 2, bigEndian: true }),
      vipPort: field(key, 'vip_port', { size: 2, bigEndian: true }),
      family: field(key, 'family', { size: 1, kind: 'enum' }),
    };
    this.#s = {
      verdict: field(st, 'verdict', { size: 1, kind: 'enum' }),
      backend: field(st, 'backend', { size: 2, bigEndian: false }),
      flowId: field(st, 'flow_id', { size: 4, bigEndian: false }),
      handoffId: field(st, 'handoff_id', { size: 8, bigEndian: false }),
      lastSeen: field(st, 'last_seen_ns', { size: 8, bigEndian: false }),
      deadline: field(st, 'deadline_ns', { size: 8, bigEndian: false }),
    };
    this.#b = {
      mode: field(be, 'mode', { size: 1, kind: 'enum' }),
      family: field(be, 'family', { size: 1, kind: 'enum' }),
      ifindex: field(be, 'ifindex', { size: 4, bigEndian: false }),
      addr: field(be, 'addr', { size: 16, bigEndian: true }),
      local: field(be, 'local', { size: 16, bigEndian: true }),
    };
    this.#c = {
      packets: field(ctr, 'packets', { size: 8, bigEndian: false }),
      bytes: field(ctr, 'bytes', { size: 8, bigEndian: false }),
    };
    this.#cfg = {
      refresh: field(cfg, 'refresh_ns', { size: 8, bigEndian: false }),
      idle: field(cfg, 'idle_timeout_ns', { size: 8, bigEndian: false }),
      vip: field(cfg, 'vip', { size: 16, bigEndian: true }),
      vipPort: field(cfg, 'vip_port', { size: 2, bigEndian: true }),
      vipFamily: field(cfg, 'vip_family', { size: 1 }),
      orphans: field(cfg, 'orphans', { size: 1 }),
      linger: field(cfg, 'linger_ns', { size: 8, bigEndian: false }),
    };
    this.#family = familyCodec(btf);
    this.#verdict = enumCodec(btf, 'flow_verdict', 'VERDICT_', ['hold', 'forward', 'closing'] as const);
    this.#mode = enumCodec(btf, 'backend_mode', 'MODE_', ['unused', 'l2', 'encap'] as const);
  }

  encodeFlowKey(flow: FlowKey, vip: Vip): Buffer {
    const b = Buffer.alloc(this.flowKeySize);
    writeAddr(b, this.#k.client, flow.family, flow.clientAddress, 'client address');
    writeAddr(b, this.#k.vip, flow.family, vip.address, 'vip address');
    writeUint(b, this.#k.clientPort, checkPort(flow.clientPort, 'client port'));
    writeUint(b, this.#k.vipPort, checkPort(vip.port, 'vip port'));
    writeUint(b, this.#k.family, this.#family.value(flow.family));
    return b;
  }

  decodeFlowKey(b: Buffer): { flow: FlowKey; vip: Vip } {
    const family = this.#family.name(readUint(b, this.#k.family), 'flow_key.family');
    return {
      flow: { family, clientAddress: readAddr(b, this.#k.client, family), clientPort: readUint(b, this.#k.clientPort) },
      vip: { address: readAddr(b, this.#k.vip, family), port: readUint(b, this.#k.vipPort) },
    };
  }

  encodeFlowState(s: FlowState): Buffer {
    if (!Number.isInteger(s.backend) || s.backend < 0 || s.backend > 0xffff) throw new BpfValueError(`bpf: backend index ${s.backend}`);
    if (!Number.isInteger(s.flowId) || s.flowId < 0 || s.flowId > 0xffffffff) throw new BpfValueError(`bpf: flow id ${s.flowId}`);
    const b = Buffer.alloc(this.flowStateSize);
    writeUint(b, this.#s.verdict, this.#verdict.value(s.verdict));
    writeUint(b, this.#s.backend, s.backend);
    writeUint(b, this.#s.flowId, s.flowId);
    writeUint(b, this.#s.handoffId, s.handoffId);
    writeUint(b, this.#s.lastSeen, s.lastSeenNs);
    writeUint(b, this.#s.deadline, s.deadlineNs);
    return b;
  }

  decodeFlowState(b: Buffer): FlowState {
    return {
      verdict: this.#verdict.name(readUint(b, this.#s.verdict), 'flow_state.verdict') as FlowVerdict,
      backend: readUint(b, this.#s.backend),
      flowId: readUint(b, this.#s.flowId),
      handoffId: readU64(b, this.#s.handoffId),
      lastSeenNs: readU64(b, this.#s.lastSeen),
      deadlineNs: readU64(b, this.#s.deadline),
    };
  }

  encodeBackend(s: BackendSlot): Buffer {
    const b = Buffer.alloc(this.backendSize);
    writeUint(b, this.#b.mode, this.#mode.value(s.mode));
    if (s.mode === 'unused') return b;
    writeUint(b, this.#b.family, this.#family.value(s.family));
    writeUint(b, this.#b.ifindex, s.ifindex);
    writeAddr(b, this.#b.addr, s.family, s.address, 'backend address');
    if (s.local !== undefined) writeAddr(b, this.#b.local, s.family, s.local, 'local address');
    else if (s.mode === 'encap') throw new BpfValueError('bpf: an encap back-end needs the local (source) address');
    return b;
  }

  decodeBackend(b: Buffer): BackendSlot {
    const mode = this.#mode.name(readUint(b, this.#b.mode), 'backend.mode');
    if (mode === 'unused') return { mode, family: 4, ifindex: 0, address: '0.0.0.0' };
    const family = this.#family.name(readUint(b, this.#b.family), 'backend.family');
    return {
      mode,
      family,
      ifindex: readUint(b, this.#b.ifindex),
      address: readAddr(b, this.#b.addr, family),
      ...(mode === 'encap' ? { local: readAddr(b, this.#b.local, family) } : {}),
    };
  }

  /** Sums a per-CPU counters value (one struct counter per possible CPU, each rounded up to 8 bytes). */
  decodeCounters(b: Buffer, cpus: number): SteerCounters {
    const stride = Math.ceil(this.counterSize / 8) * 8;
    let packets = 0n;
    let bytes = 0n;
    for (let cpu = 0; cpu < cpus; cpu++) {
      const one = b.subarray(cpu * stride, cpu * stride + this.counterSize);
      packets += readU64(one, this.#c.packets);
      bytes += readU64(one, this.#c.bytes);
    }
    return { packets, bytes };
  }

  encodeConfig(c: FrontendConfig): Buffer {
    const b = Buffer.alloc(this.configSize);
    writeUint(b, this.#cfg.refresh, c.refreshNs);
    writeUint(b, this.#cfg.idle, c.idleTimeoutNs);
    writeUint(b, this.#cfg.linger, c.lingerNs ?? 0n);
    if (c.orphans !== undefined) {
      writeAddr(b, this.#cfg.vip, c.orphans.family, c.orphans.vip.address, 'vip address');
      writeUint(b, this.#cfg.vipPort, checkPort(c.orphans.vip.port, 'vip port'));
      writeUint(b, this.#cfg.vipFamily, c.orphans.family);
      writeUint(b, this.#cfg.orphans, 1);
    }
    return b;
  }

  decodeConfig(b: Buffer): FrontendConfig {
    const base = { refreshNs: readU64(b, this.#cfg.refresh), idleTimeoutNs: readU64(b, this.#cfg.idle), lingerNs: readU64(b, this.#cfg.linger) };
    if (readUint(b, this.#cfg.orphans) === 0) return base;
    const family = readUint(b, this.#cfg.vipFamily) === 6 ? 6 : 4;
    return { ...base, orphans: { family, vip: { address: readAddr(b, this.#cfg.vip, family), port: readUint(b, this.#cfg.vipPort) } } };
  }

  decodeOrphan(key: Buffer, value: Buffer): OrphanEntry {
    return {
      ...this.decodeFlowKey(key),
      firstSeenNs: readU64(value, this.#o.first),
      lastSeenNs: readU64(value, this.#o.last),
      packets: readUint(value, this.#o.packets),
      pass: readUint(value, this.#o.pass) !== 0,
    };
  }

  encodeOrphan(o: Pick<OrphanEntry, 'firstSeenNs' | 'lastSeenNs' | 'packets' | 'pass'>): Buffer {
    const b = Buffer.alloc(this.orphanSize);
    writeUint(b, this.#o.first, o.firstSeenNs);
    writeUint(b, this.#o.last, o.lastSeenNs);
    writeUint(b, this.#o.packets, o.packets);
    writeUint(b, this.#o.pass, o.pass === true ? 1 : 0);
    return b;
  }
}

export function familyCodec(btf: Btf) {
  const c = enumCodec(btf, 'ip_family', 'FAMILY_', ['ipv4', 'ipv6'] as const);
  return {
    value: (f: 4 | 6): number => c.value(f === 4 ? 'ipv4' : 'ipv6'),
    name: (v: number, what: string): 4 | 6 => (c.name(v, what) === 'ipv4' ? 4 : 6),
  };
}

// --- the back-end object's codecs ---

/** Codecs for the back-end object's `decap` map, derived from its BTF. */
export class BackendCodecs {
  readonly keySize: number;
  readonly valueSize: number;
  readonly #k;
  readonly #v;
  readonly #family;

  constructor(btf: Btf) {
    const key = btf.struct('decap_key');
    const val = btf.struct('decap_value');
    this.keySize = key.size;
    this.valueSize = val.size;
    this.#k = {
      frontend: field(key, 'frontend', { size: 16, bigEndian: true }),
      flowId: field(key, 'flow_id', { size: 4, bigEndian: false }),
      family: field(key, 'family', { size: 1, kind: 'enum' }),
    };
    this.#v = {
      client: field(val, 'client', { size: 16, bigEndian: true }),
      vip: field(val, 'vip', { size: 16, bigEndian: true }),
      clientPort: field(val, 'client_port', { size: 2, bigEndian: true }),
      vipPort: field(val, 'vip_port', { size: 2, bigEndian: true }),
      lastSeen: field(val, 'last_seen_ns', { size: 8, bigEndian: false }),
    };
    this.#family = familyCodec(btf);
  }

  encodeKey(e: Pick<DecapEntry, 'family' | 'frontend' | 'flowId'>): Buffer {
    if (!Number.isInteger(e.flowId) || e.flowId < 1 || e.flowId > 0x7fffffff) throw new BpfValueError(`bpf: flow id ${e.flowId}`);
    const b = Buffer.alloc(this.keySize);
    writeAddr(b, this.#k.frontend, e.family, e.frontend, 'front-end address');
    writeUint(b, this.#k.flowId, e.flowId);
    writeUint(b, this.#k.family, this.#family.value(e.family));
    return b;
  }

  encodeValue(e: DecapEntry): Buffer {
    const b = Buffer.alloc(this.valueSize);
    writeAddr(b, this.#v.client, e.family, e.client, 'client address');
    writeAddr(b, this.#v.vip, e.family, e.vip, 'vip address');
    writeUint(b, this.#v.clientPort, checkPort(e.clientPort, 'client port'));
    writeUint(b, this.#v.vipPort, checkPort(e.vipPort, 'vip port'));
    writeUint(b, this.#v.lastSeen, e.lastSeenNs ?? 0n);
    return b;
  }

  decode(key: Buffer, value: Buffer): DecapEntry {
    const family = this.#family.name(readUint(key, this.#k.family), 'decap_key.family');
    return {
      family,
      frontend: readAddr(key, this.#k.frontend, family),
      flowId: readUint(key, this.#k.flowId),
      client: readAddr(value, this.#v.client, family),
      clientPort: readUint(value, this.#v.clientPort),
      vip: readAddr(value, this.#v.vip, family),
      vipPort: readUint(value, this.#v.vipPort),
      lastSeenNs: readU64(value, this.#v.lastSeen),
    };
  }
}

/** Codecs of a compiled object file, read from its BTF (no kernel, no privileges). */
export function frontendCodecsOf(objectPath: string): FrontendCodecs {
  const btf = Btf.parseFile(objectPath);
  try {
    return new FrontendCodecs(btf);
  } finally {
    btf.close();
  }
}

export function backendCodecsOf(objectPath: string): BackendCodecs {
  const btf = Btf.parseFile(objectPath);
  try {
    return new BackendCodecs(btf);
  } finally {
    btf.close();
  }
}

// --- typed operations over loaded maps ---

/** Map descriptors of a loaded front-end data plane (owned by the loader's handle). */
export interface FrontendMapFds {
  readonly flows: number;
  readonly backends: number;
  readonly counters: number;
  readonly config: number;
  /** -1 when the caller has no use for it (pinnedFlows). */
  readonly orphans: number;
}

export function u32Key(i: number): Buffer {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(i);
  return k;
}

/** The front-end's maps, typed. Each call is one bpf() syscall (a few µs), except iteration (two per entry). */
export class FrontendMaps {
  readonly codecs: FrontendCodecs;
  /** The raw descriptors (owned by the loader's handle), for callers that batch their own encoded keys. */
  readonly fds: FrontendMapFds;
  readonly #cpus: number;

  constructor(codecs: FrontendCodecs, fds: FrontendMapFds) {
    this.codecs = codecs;
    this.fds = fds;
    this.#cpus = possibleCpus();
  }

  putFlow(flow: FlowKey, vip: Vip, state: FlowState): void {
    mapUpdate(this.fds.flows, this.codecs.encodeFlowKey(flow, vip), this.codecs.encodeFlowState(state));
  }

  getFlow(flow: FlowKey, vip: Vip): FlowState | undefined {
    const v = Buffer.alloc(this.codecs.flowStateSize);
    return mapLookup(this.fds.flows, this.codecs.encodeFlowKey(flow, vip), v) ? this.codecs.decodeFlowState(v) : undefined;
  }

  /** False when there was no entry. */
  deleteFlow(flow: FlowKey, vip: Vip): boolean {
    return mapDelete(this.fds.flows, this.codecs.encodeFlowKey(flow, vip));
  }

  /** Every entry now in the map (entries deleted meanwhile are skipped). */
  *iterateFlows(): Generator<FlowEntry> {
    let prev: Buffer | null = null;
    const v = Buffer.alloc(this.codecs.flowStateSize);
    for (;;) {
      const next = Buffer.alloc(this.codecs.flowKeySize);
      if (!mapNextKey(this.fds.flows, prev, next)) return;
      if (mapLookup(this.fds.flows, next, v)) yield { ...this.codecs.decodeFlowKey(next), state: this.codecs.decodeFlowState(v) };
      prev = next;
    }
  }

  setBackend(index: number, slot: BackendSlot): void {
    mapUpdate(this.fds.backends, u32Key(index), this.codecs.encodeBackend(slot));
  }

  getBackend(index: number): BackendSlot {
    const v = Buffer.alloc(this.codecs.backendSize);
    mapLookup(this.fds.backends, u32Key(index), v);
    return this.codecs.decodeBackend(v);
  }

  clearBackend(index: number): void {
    this.setBackend(index, { mode: 'unused', family: 4, ifindex: 0, address: '0.0.0.0' });
  }

  /** Packets and bytes steered to back-end slot `index`, summed over CPUs. */
  readCounters(index: number): SteerCounters {
    const stride = Math.ceil(this.codecs.counterSize / 8) * 8;
    const v = Buffer.alloc(stride * this.#cpus);
    mapLookup(this.fds.counters, u32Key(index), v);
    return this.codecs.decodeCounters(v, this.#cpus);
  }

  /** Zeroes a slot's counters (when the slot is given to another back-end). */
  resetCounters(index: number): void {
    const stride = Math.ceil(this.codecs.counterSize / 8) * 8;
    mapUpdate(this.fds.counters, u32Key(index), Buffer.alloc(stride * this.#cpus));
  }

  setConfig(c: FrontendConfig): void {
    mapUpdate(this.fds.config, u32Key(0), this.codecs.encodeConfig(c));
  }

  /** Every orphan recorded now (two bpf() calls per entry; the map is small and usually empty). */
  *iterateOrphans(): Generator<OrphanEntry> {
    let prev: Buffer | null = null;
    const v = Buffer.alloc(this.codecs.orphanSize);
    for (;;) {
      const next = Buffer.alloc(this.codecs.flowKeySize);
      if (!mapNextKey(this.fds.orphans, prev, next)) return;
      if (mapLookup(this.fds.orphans, next, v)) yield this.codecs.decodeOrphan(next, v);
      prev = next;
    }
  }

  getOrphan(flow: FlowKey, vip: Vip): OrphanEntry | undefined {
    const k = this.codecs.encodeFlowKey(flow, vip);
    const v = Buffer.alloc(this.codecs.orphanSize);
    return mapLookup(this.fds.orphans, k, v) ? this.codecs.decodeOrphan(k, v) : undefined;
  }

  /** Writes an orphan record (tests, and `pass` on an existing one). */
  putOrphan(o: OrphanEntry): void {
    mapUpdate(this.fds.orphans, this.codecs.encodeFlowKey(o.flow, o.vip), this.codecs.encodeOrphan(o));
  }

  deleteOrphan(flow: FlowKey, vip: Vip): boolean {
    return mapDelete(this.fds.orphans, this.codecs.encodeFlowKey(flow, vip));
  }

  getConfig(): FrontendConfig {
    const v = Buffer.alloc(this.codecs.configSize);
    mapLookup(this.fds.config, u32Key(0), v);
    return this.codecs.decodeConfig(v);
  }
}

/** A back-end's `decap` map, typed. */
export class BackendMaps {
  readonly codecs: BackendCodecs;
  readonly #fd: number;

  constructor(codecs: BackendCodecs, decapFd: number) {
    this.codecs = codecs;
    this.#fd = decapFd;
  }

  putDecap(e: DecapEntry): void {
    mapUpdate(this.#fd, this.codecs.encodeKey(e), this.codecs.encodeValue(e));
  }

  getDecap(k: Pick<DecapEntry, 'family' | 'frontend' | 'flowId'>): DecapEntry | undefined {
    const key = this.codecs.encodeKey(k);
    const v = Buffer.alloc(this.codecs.valueSize);
    return mapLookup(this.#fd, key, v) ? this.codecs.decode(key, v) : undefined;
  }

  /** False when there was no entry. */
  deleteDecap(k: Pick<DecapEntry, 'family' | 'frontend' | 'flowId'>): boolean {
    return mapDelete(this.#fd, this.codecs.encodeKey(k));
  }

  *iterateDecap(): Generator<DecapEntry> {
    let prev: Buffer | null = null;
    const v = Buffer.alloc(this.codecs.valueSize);
    for (;;) {
      const next = Buffer.alloc(this.codecs.keySize);
      if (!mapNextKey(this.#fd, prev, next)) return;
      if (mapLookup(this.#fd, next, v)) yield this.codecs.decode(next, v);
      prev = next;
    }
  }
}
