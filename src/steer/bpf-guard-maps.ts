// Typed access to the back-end guard's maps (bpf/maps.h, "the back-end's guard"): the guarded VIPs, the tuples
// being injected (`parking`), the per-verdict counters, the program's config and the park mark. As in
// bpf-maps.ts, every layout and enum value is read from the object's BTF, never mirrored.
import { Btf } from '../sys/btf.ts';
import { mapDelete, mapLookup, mapNextKey, mapUpdate, possibleCpus } from '../sys/libbpf.ts';
import { BpfLayoutError, checkPort, familyCodec, field, readAddr, readUint, u32Key, writeAddr, writeUint } from './bpf-maps.ts';

/** A service the guard watches. */
export interface GuardVip {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

/** A connection as it travels client -> VIP (a `parking` key, struct flow_key). */
export interface GuardTuple {
  readonly family: 4 | 6;
  readonly client: { readonly address: string; readonly port: number };
  readonly vip: { readonly address: string; readonly port: number };
}

/** Packets counted by the guard, by what it did (enum guard_counter), summed over CPUs. */
export interface GuardCounters {
  /** SYN without ACK: passed to the stack. */
  readonly syn: bigint;
  /** A socket (not a listener) took it: passed. */
  readonly socket: bigint;
  /** Parked: no socket yet. */
  readonly noSocket: bigint;
  /** Parked: tuple in `parking` (being injected). */
  readonly begun: bigint;
  /** Of the parked ones, dropped (parking off). */
  readonly dropped: bigint;
  /** Parked: encapsulated by a known front-end under a flow id with no decap mapping yet (still encapsulated). */
  readonly encapEarly: bigint;
}

/** A front-end known to encapsulate to this back-end (an `encap_sources` key). */
export interface EncapSource {
  readonly family: 4 | 6;
  readonly address: string;
}

const COUNTERS = ['syn', 'socket', 'no_socket', 'begun', 'dropped', 'encap_early'] as const;
const COUNTER_KEYS = { syn: 'syn', socket: 'socket', no_socket: 'noSocket', begun: 'begun', dropped: 'dropped', encap_early: 'encapEarly' } as const;

/** Codecs of the guard's maps, derived from the back-end object's BTF. */
export class GuardCodecs {
  readonly vipSize: number;
  readonly tupleSize: number;
  readonly sourceSize: number;
  readonly configSize: number;
  /** The mark a parked packet carries and the mask to test it with (enum park_mark). */
  readonly mark: number;
  readonly markMask: number;
  /** Counter index of each verdict (enum guard_counter). */
  readonly counterIndex: Readonly<Record<(typeof COUNTERS)[number], number>>;
  readonly #v;
  readonly #s;
  readonly #t;
  readonly #c;
  readonly #family;

  constructor(btf: Btf) {
    const gv = btf.struct('guard_vip');
    const fk = btf.struct('flow_key');
    const cfg = btf.struct('backend_config');
    const es = btf.struct('encap_source');
    this.sourceSize = es.size;
    this.#s = {
      addr: field(es, 'addr', { size: 16, bigEndian: true }),
      family: field(es, 'family', { size: 1, kind: 'enum' }),
    };
    this.vipSize = gv.size;
    this.tupleSize = fk.size;
    this.configSize = cfg.size;
    this.#v = {
      vip: field(gv, 'vip', { size: 16, bigEndian: true }),
      port: field(gv, 'port', { size: 2, bigEndian: true }),
      family: field(gv, 'family', { size: 1, kind: 'enum' }),
    };
    this.#t = {
      client: field(fk, 'client', { size: 16, bigEndian: true }),
      vip: field(fk, 'vip', { size: 16, bigEndian: true }),
      clientPort: field(fk, 'client_port', { size: 2, bigEndian: true }),
      vipPort: field(fk, 'vip_port', { size: 2, bigEndian: true }),
      family: field(fk, 'family', { size: 1, kind: 'enum' }),
    };
    this.#c = { parkQueue: field(cfg, 'park_queue', { size: 1 }) };
    this.#family = familyCodec(btf);
    const marks = btf.enumValues('park_mark');
    const mark = marks.get('PARK_MARK');
    const mask = marks.get('PARK_MARK_MASK');
    if (mark === undefined || mask === undefined) throw new BpfLayoutError('bpf layout: enum park_mark lacks PARK_MARK or PARK_MARK_MASK');
    this.mark = mark >>> 0; // BTF stores enumerators as 32-bit words; the mask does not fit a signed one
    this.markMask = mask >>> 0;
    const idx = btf.enumValues('guard_counter');
    const index = {} as Record<(typeof COUNTERS)[number], number>;
    for (const c of COUNTERS) {
      const v = idx.get(`GUARD_${c.toUpperCase()}`);
      if (v === undefined) throw new BpfLayoutError(`bpf layout: enum guard_counter has no GUARD_${c.toUpperCase()}`);
      index[c] = v;
    }
    this.counterIndex = index;
  }

  encodeVip(v: GuardVip): Buffer {
    const b = Buffer.alloc(this.vipSize);
    writeAddr(b, this.#v.vip, v.family, v.address, 'vip address');
    writeUint(b, this.#v.port, checkPort(v.port, 'vip port'));
    writeUint(b, this.#v.family, this.#family.value(v.family));
    return b;
  }

  decodeVip(b: Buffer): GuardVip {
    const family = this.#family.name(readUint(b, this.#v.family), 'guard_vip.family');
    return { family, address: readAddr(b, this.#v.vip, family), port: readUint(b, this.#v.port) };
  }

  encodeSource(s: EncapSource): Buffer {
    const b = Buffer.alloc(this.sourceSize);
    writeAddr(b, this.#s.addr, s.family, s.address, 'encap source address');
    writeUint(b, this.#s.family, this.#family.value(s.family));
    return b;
  }

  decodeSource(b: Buffer): EncapSource {
    const family = this.#family.name(readUint(b, this.#s.family), 'encap_source.family');
    return { family, address: readAddr(b, this.#s.addr, family) };
  }

  encodeTuple(t: GuardTuple): Buffer {
    const b = Buffer.alloc(this.tupleSize);
    writeAddr(b, this.#t.client, t.family, t.client.address, 'client address');
    writeAddr(b, this.#t.vip, t.family, t.vip.address, 'vip address');
    writeUint(b, this.#t.clientPort, checkPort(t.client.port, 'client port'));
    writeUint(b, this.#t.vipPort, checkPort(t.vip.port, 'vip port'));
    writeUint(b, this.#t.family, this.#family.value(t.family));
    return b;
  }

  decodeTuple(b: Buffer): GuardTuple {
    const family = this.#family.name(readUint(b, this.#t.family), 'flow_key.family');
    return {
      family,
      client: { address: readAddr(b, this.#t.client, family), port: readUint(b, this.#t.clientPort) },
      vip: { address: readAddr(b, this.#t.vip, family), port: readUint(b, this.#t.vipPort) },
    };
  }

  encodeConfig(c: { readonly parkQueue: boolean }): Buffer {
    const b = Buffer.alloc(this.configSize);
    writeUint(b, this.#c.parkQueue, c.parkQueue ? 1 : 0);
    return b;
  }

  decodeConfig(b: Buffer): { parkQueue: boolean } {
    return { parkQueue: readUint(b, this.#c.parkQueue) !== 0 };
  }
}

/** Descriptors of the guard's maps (owned by the loader's handle). */
export interface GuardMapFds {
  readonly vips: number;
  readonly parking: number;
  readonly counters: number;
  readonly config: number;
  readonly sources: number;
  /** park_marked: packets the program queued per tuple. */
  readonly marked: number;
  /** park_settling: released tuples whose queued packets must reach the socket before later ones. */
  readonly settling: number;
}

/** The guard's maps, typed; each call is one bpf() syscall except iteration and counters. */
export class GuardMaps {
  readonly codecs: GuardCodecs;
  readonly #fds: GuardMapFds;
  readonly #cpus: number;
  readonly #one = Buffer.alloc(4);
  readonly #ns = Buffer.alloc(8);

  constructor(codecs: GuardCodecs, fds: GuardMapFds) {
    this.codecs = codecs;
    this.#fds = fds;
    this.#cpus = possibleCpus();
    this.#one.writeUInt32LE(1);
  }

  /** Every key of the map `fd`, in the kernel's order (each a fresh buffer of `size` bytes). */
  *#keys(fd: number, size: number): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(size);
      if (!mapNextKey(fd, prev, next)) return;
      yield next;
      prev = next;
    }
  }

  /** Makes the keys of the set-like map `fd` (values 1) exactly `want`: deletes the others, adds the missing. */
  #setExactly(fd: number, size: number, want: readonly Buffer[]): void {
    const missing = new Map(want.map((k) => [k.toString('hex'), k]));
    for (const k of [...this.#keys(fd, size)]) if (!missing.delete(k.toString('hex'))) mapDelete(fd, k);
    for (const k of missing.values()) mapUpdate(fd, k, this.#one);
  }

  /** Makes the guarded set exactly `vips`. */
  setVips(vips: readonly GuardVip[]): void {
    this.#setExactly(this.#fds.vips, this.codecs.vipSize, vips.map((v) => this.codecs.encodeVip(v)));
  }

  vips(): GuardVip[] {
    return [...this.#keys(this.#fds.vips, this.codecs.vipSize)].map((k) => this.codecs.decodeVip(k));
  }

  /** Makes the set of front-ends known to encapsulate here exactly `sources`. */
  setEncapSources(sources: readonly EncapSource[]): void {
    this.#setExactly(this.#fds.sources, this.codecs.sourceSize, sources.map((v) => this.codecs.encodeSource(v)));
  }

  encapSources(): EncapSource[] {
    return [...this.#keys(this.#fds.sources, this.codecs.sourceSize)].map((k) => this.codecs.decodeSource(k));
  }

  /** Parks the tuple's packets even once a socket exists (`sinceNs`: when, for the record). */
  beginParking(t: GuardTuple, sinceNs: bigint): void {
    this.#ns.writeBigUInt64LE(sinceNs);
    mapUpdate(this.#fds.parking, this.codecs.encodeTuple(t), this.#ns);
  }

  /** False when the tuple was not parking. */
  endParking(t: GuardTuple): boolean {
    return mapDelete(this.#fds.parking, this.codecs.encodeTuple(t));
  }

  /**
   * The tuple is released but `verdicted` of the packets the program queued for it have had their verdict: while the
   * program has queued more, it queues later packets behind them (park_settling).
   */
  settle(t: GuardTuple, verdicted: number): void {
    this.#ns.writeBigUInt64LE(BigInt(verdicted));
    mapUpdate(this.#fds.settling, this.codecs.encodeTuple(t), this.#ns);
  }

  /** How many of the tuple's packets the program has queued (undefined: no count kept, or evicted). */
  marked(t: GuardTuple): number | undefined {
    const v = Buffer.alloc(8);
    return mapLookup(this.#fds.marked, this.codecs.encodeTuple(t), v) ? Number(v.readBigUInt64LE(0)) : undefined;
  }

  /** Forgets the tuple's settling entry and its queued count. */
  endSettling(t: GuardTuple): void {
    const k = this.codecs.encodeTuple(t);
    mapDelete(this.#fds.settling, k);
    mapDelete(this.#fds.marked, k);
  }

  /** Forgets every settling entry and count (a starting agent: whatever an earlier one left is stale). */
  clearSettling(): void {
    for (const fd of [this.#fds.settling, this.#fds.marked]) {
      for (const k of [...this.#keys(fd, this.codecs.tupleSize)]) mapDelete(fd, k);
    }
  }

  isParking(t: GuardTuple): boolean {
    return mapLookup(this.#fds.parking, this.codecs.encodeTuple(t), Buffer.alloc(8));
  }

  *parkingTuples(): Generator<GuardTuple> {
    for (const k of this.#keys(this.#fds.parking, this.codecs.tupleSize)) yield this.codecs.decodeTuple(k);
  }

  setConfig(c: { readonly parkQueue: boolean }): void {
    mapUpdate(this.#fds.config, u32Key(0), this.codecs.encodeConfig(c));
  }

  getConfig(): { parkQueue: boolean } {
    const v = Buffer.alloc(this.codecs.configSize);
    mapLookup(this.#fds.config, u32Key(0), v);
    return this.codecs.decodeConfig(v);
  }

  counters(): GuardCounters {
    const out = { syn: 0n, socket: 0n, noSocket: 0n, begun: 0n, dropped: 0n, encapEarly: 0n };
    const v = Buffer.alloc(8 * this.#cpus);
    for (const c of COUNTERS) {
      v.fill(0);
      mapLookup(this.#fds.counters, u32Key(this.codecs.counterIndex[c]), v);
      let sum = 0n;
      for (let cpu = 0; cpu < this.#cpus; cpu++) sum += v.readBigUInt64LE(cpu * 8);
      out[COUNTER_KEYS[c]] = sum;
    }
    return out;
  }

  resetCounters(): void {
    for (const c of COUNTERS) mapUpdate(this.#fds.counters, u32Key(this.codecs.counterIndex[c]), Buffer.alloc(8 * this.#cpus));
  }
}

/** Guard codecs of a compiled object file (no kernel). */
export function guardCodecsOf(objectPath: string): GuardCodecs {
  const btf = Btf.parseFile(objectPath);
  try {
    return new GuardCodecs(btf);
  } finally {
    btf.close();
  }
}
