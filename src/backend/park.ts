// Lossless parking of early client packets at a back-end (DESIGN.md "Lossless handoff"). The front-end points a flow
// at its new owner before the blob carrying the socket arrives, so client packets can reach this back-end before
// the socket exists, or while it is still in repair mode. The data plane's guard (bpf/backend.c) parks them below
// the stack; here they wait, by tuple, until the agent has injected the socket and releases them in arrival order.
//
// Across L3 (flow-id encapsulation), a client packet can even arrive before the blob's decap mapping: the guard then
// parks it still encapsulated, from its front-end's address and with the flow id for ports (GUARD_ENCAP_EARLY). Here
// it waits under that encapsulated key (front-end, flow id) until `begin(flow, encap)` says whose it is: it then joins
// the tuple's packets in arrival order, and on release goes back to the kernel restored (wire/decap-packet.ts, an
// nfqueue verdict with a new payload). An encapsulated key nobody claims expires silently: nobody knows its client.
//
// This file is the model: which tuple is begun, released or unclaimed, the packets each holds, the bounds and the
// counters. The kernel is reached only through the ports below (guard maps, the queue, a clock), so the policy is
// tested without root; park-bpf.ts projects it onto the guard's maps, an nfqueue and an nftables rule.
import { decapsulatePacket } from '../wire/decap-packet.ts';
import { packetAck, packetTuple, NF_ACCEPT, NF_DROP, NFQA_SKB_CSUMNOTREADY, type QueuedPacket, type Verdict } from '../wire/nfqueue.ts';

export interface ParkedFlow {
  readonly family: 4 | 6;
  readonly client: { address: string; port: number };
  readonly vip: { address: string; port: number };
}

/** Who encapsulated a flow and under which flow id (the blob's ENCAP extension and flow id). */
export interface EncapFlow {
  readonly frontend: string;
  readonly flowId: number;
}

/** A front-end that encapsulates to this back-end: the source address of its encapsulated packets. */
export interface EncapSource {
  readonly family: 4 | 6;
  readonly address: string;
}

export interface ParkGate {
  /** The VIPs guarded (replaces the set): a TCP packet to one of them that no socket takes, not a SYN, is parked, never answered with RST. */
  guardVips(vips: readonly { readonly family: 4 | 6; readonly address: string; readonly port: number }[]): void;
  /** True when parked packets are kept (nfqueue) and let through later; false: they are dropped (the client retransmits). */
  readonly lossless: boolean;
  /**
   * A front-end encapsulating to this back-end (counted: a control channel from it, the config): its encapsulated
   * packets that overtake their blob are parked, not lost. `removeEncapSource` undoes one `addEncapSource`.
   */
  addEncapSource(src: EncapSource): void;
  removeEncapSource(src: EncapSource): void;
  /**
   * Before inject: park this tuple's packets even once its socket exists (it is in repair mode). `encap`: the flow
   * arrives encapsulated; what was parked under (front-end, flow id) before the mapping existed joins the tuple.
   */
  begin(flow: ParkedFlow, encap?: EncapFlow): void;
  /** After inject (repair off): stop parking the tuple; let its parked packets through in arrival order. Returns how many. */
  release(flow: ParkedFlow): number;
  /**
   * The handoff failed: stop parking the tuple, drop what was parked and what still arrives for a while (the client
   * retransmits to the next owner). Never a reset: another back-end serves the client now.
   */
  discard(flow: ParkedFlow, encap?: EncapFlow): void;
  /**
   * The tuple's connection ended (its socket closed here): from now on its packets are a new connection's on the
   * same tuple (clients reuse ports at once) or late ones of the old, never let in as released: let in, a new
   * connection's early packets would meet no socket and draw a RST. They park as unclaimed, for a blob to claim.
   */
  ended(flow: ParkedFlow): void;
  /** `resets`: clients of tuples nobody claimed, answered with a RST when their packets expired. `restored`: of the
   * released, packets parked encapsulated and let through decapsulated. */
  stats(): ParkStats;
  close(opts?: { readonly keep?: boolean }): void;
}

export interface ParkStats {
  readonly parked: number;
  readonly released: number;
  readonly dropped: number;
  readonly expired: number;
  readonly pending: number;
  readonly resets: number;
  readonly restored: number;
}

/** The guard's kernel state (bpf maps), as the model writes it. */
export interface GuardPort {
  setVips(vips: readonly { readonly family: 4 | 6; readonly address: string; readonly port: number }[]): void;
  /** Makes the set of encapsulating front-ends exactly `sources` (bpf `encap_sources`). */
  setEncapSources?(sources: readonly EncapSource[]): void;
  begin(flow: ParkedFlow): void;
  end(flow: ParkedFlow): void;
  /**
   * The tuple is released, and `verdicted` of the packets the guard queued for it have had their verdict: while the
   * guard has queued more than that, it queues later packets behind them (bpf `park_settling`), so none overtakes a
   * packet still in the queue on its way to the socket. Without these three the release un-parks at once.
   */
  settle?(flow: ParkedFlow, verdicted: number): void;
  /** How many of the tuple's packets the guard has queued (bpf `park_marked`; undefined: no count). */
  marked?(flow: ParkedFlow): number | undefined;
  /** Forgets the tuple's settling entry and its count. */
  endSettling?(flow: ParkedFlow): void;
  /** Stop parking (keep: the guard stays on, dropping; else it is cleared) and release kernel resources. */
  close(opts: { readonly keep: boolean }): void;
}

/** Where parked packets wait (an nfqueue): read what is queued now (delivered through `onPackets`), give verdicts. */
export interface QueuePort {
  drain(): void;
  verdict(vs: readonly Verdict[]): void;
  close(): void;
}

export interface ParkLimits {
  /** A tuple nobody began within this time has its packets dropped (ms; default 3000). */
  readonly unclaimedMs?: number;
  /** A begun tuple never released nor discarded within this time is discarded (ms; default 30000). */
  readonly begunMs?: number;
  /** Packets held at most, all tuples together (default 8192, the queue's length). */
  readonly maxPackets?: number;
  /** Tuples held at most (default 4096). */
  readonly maxTuples?: number;
  /** How long a released tuple's late packets are accepted at once, and a discarded one's dropped (ms; default 10000). */
  readonly releasedMs?: number;
  /**
   * Most drain-and-verdict rounds a release makes before it un-parks the tuple anyway (default 2). Each round's
   * ACKs draw the next round from a client that is still streaming, so rounds do not shrink: with 64, a whole
   * 8 MB upload went through the queue (agent CPU/request 26 -> 74 ms, p50 29 -> 52 ms); with 2, p99 60 ms
   * against 67 ms for a classic handoff in the same run (npm run bench -- --paths direct,baton,baton-classic
   * --sizes 8MB --modes post-seq).
   */
  readonly releaseRounds?: number;
  /**
   * Longest a released tuple keeps queueing behind its packets still in the queue (ms; default 100). The packets at
   * risk of being overtaken are those of the first moments after the release; a client fast enough that its packets
   * always meet one of theirs in the queue would otherwise send everything through it.
   */
  readonly settleMaxMs?: number;
  /** Bytes of encapsulated packets kept (copies, to restore on release) at most (default 32 MiB). */
  readonly maxEncapBytes?: number;
  /** Front-ends learned from blobs (`begin` with `encap`) remembered at most (default 64). */
  readonly maxLearnedSources?: number;
  /**
   * How long after a release or discard encapsulated packets read late (queued before the mapping existed) still
   * follow their tuple (ms; default 1000). Short: a front-end that restarted numbers its flows from 1 again, and a
   * reused flow id must not send a new client's packets to an old tuple.
   */
  readonly encapLinkMs?: number;
}

interface HeldPacket {
  readonly id: number;
  /** Arrival order across keys (an encapsulated key's packets merge into their tuple's). */
  readonly seq: number;
  /** Parked encapsulated: a copy of the packet, restored on release. */
  readonly encap?: { readonly bytes: Uint8Array; readonly partial: boolean };
}

interface Held {
  begun: boolean;
  readonly since: number;
  packets: HeldPacket[];
  /** The acknowledgment number of the latest parked packet (for a reset when nobody claims the tuple). */
  ack?: number;
}

/** A released tuple the guard still queues behind its packets in the queue (see GuardPort.settle). */
interface Settling {
  readonly flow: ParkedFlow;
  readonly since: number;
  /** The guard's count and ours at the last sweep, to tell a settled tuple (equal twice) from a stuck one. */
  lastMarked: number;
  lastVerdicts: number;
}

/** An encapsulated key claimed by `begin`/`discard`: the tuple its packets belong to. */
interface Link {
  readonly tuple: string;
  readonly flow: ParkedFlow;
  /** Once the tuple is released or discarded: until when late encapsulated packets still follow it. */
  until?: number;
}

const keyOf = (family: 4 | 6, client: string, cport: number, vip: string, vport: number): string => `${family}|${client}|${cport}|${vip}|${vport}`;
const flowKey = (f: ParkedFlow): string => keyOf(f.family, f.client.address, f.client.port, f.vip.address, f.vip.port);
const encapKeyOf = (family: 4 | 6, frontend: string, flowId: number): string => `e|${family}|${frontend}|${flowId >>> 0}`;
const sourceKey = (s: EncapSource): string => `${s.family}|${s.address}`;
const familyOf = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4);
const tupleOf = (k: string): ParkedFlow => {
  const [family, client, cport, vip, vport] = k.split('|');
  return { family: family === '6' ? 6 : 4, client: { address: client ?? '', port: Number(cport) }, vip: { address: vip ?? '', port: Number(vport) } };
};

/**
 * The parking policy. Packets come in through `onPackets` (the queue port calls it, from its drain); verdicts go out
 * through the queue port, in arrival order per tuple. `sweep(now)` expires what waited too long (the kernel gate
 * calls it from a timer; tests call it with their clock).
 */
export class ParkModel implements ParkGate {
  readonly lossless: boolean;
  readonly #guard: GuardPort;
  readonly #queue: QueuePort | undefined;
  readonly #now: () => number;
  readonly #l: Required<ParkLimits>;
  readonly #held = new Map<string, Held>();
  /** Released tuples -> when (insertion order = age order, for eviction). */
  readonly #released = new Map<string, number>();
  /**
   * Discarded tuples -> when. Their late packets (sent before the front-end steered the client elsewhere) are
   * dropped: left unclaimed they would expire into a RST that kills the client at its new owner.
   */
  readonly #discarded = new Map<string, number>();
  /** Encapsulated keys claimed by a tuple, and the reverse (forgotten with the tuple). */
  readonly #links = new Map<string, Link>();
  /**
   * Verdicts given per tuple to packets the guard queued under that tuple (not the encapsulated ones, which it
   * queues under their front-end's address): what GuardPort.settle reports against the guard's own count.
   */
  readonly #verdicts = new Map<string, number>();
  readonly #settling = new Map<string, Settling>();
  readonly #linkOfTuple = new Map<string, string>();
  /** Guarded VIPs ("family|address|port"): a packet to one is parked under its tuple, never as encapsulated. */
  #vips = new Set<string>();
  /** Encapsulating front-ends: counted (channels, config) and learned from blobs (bounded, oldest forgotten). */
  readonly #sources = new Map<string, { readonly src: EncapSource; count: number }>();
  readonly #learned = new Map<string, EncapSource>();
  #sourcesWritten = '';
  #seq = 0;
  #encapBytes = 0;
  #restored = 0;
  #pending = 0;
  #parked = 0;
  #releasedCount = 0;
  #dropped = 0;
  #expired = 0;
  #resets = 0;
  #closed = false;
  readonly #reset: ((flow: ParkedFlow, seq: number) => void) | undefined;

  /** `queue` undefined: parking is not lossless (the guard drops parked packets itself). */
  /** `reset`: sends the client of an unclaimed tuple a RST with sequence number `seq` (from the VIP). */
  constructor(o: { readonly guard: GuardPort; readonly queue?: QueuePort; readonly now: () => number; readonly limits?: ParkLimits; readonly reset?: (flow: ParkedFlow, seq: number) => void }) {
    this.#guard = o.guard;
    this.#reset = o.reset;
    this.#queue = o.queue;
    this.lossless = o.queue !== undefined;
    this.#now = o.now;
    this.#l = {
      unclaimedMs: o.limits?.unclaimedMs ?? 3000,
      begunMs: o.limits?.begunMs ?? 30_000,
      maxPackets: o.limits?.maxPackets ?? 8192,
      maxTuples: o.limits?.maxTuples ?? 4096,
      releasedMs: o.limits?.releasedMs ?? 10_000,
      releaseRounds: o.limits?.releaseRounds ?? 2,
      settleMaxMs: o.limits?.settleMaxMs ?? 100,
      maxEncapBytes: o.limits?.maxEncapBytes ?? 32 << 20,
      maxLearnedSources: o.limits?.maxLearnedSources ?? 64,
      encapLinkMs: o.limits?.encapLinkMs ?? 1000,
    };
  }

  guardVips(vips: readonly { readonly family: 4 | 6; readonly address: string; readonly port: number }[]): void {
    this.#vips = new Set(vips.map((v) => `${v.family}|${v.address}|${v.port}`));
    this.#guard.setVips(vips);
  }

  addEncapSource(src: EncapSource): void {
    const k = sourceKey(src);
    const cur = this.#sources.get(k);
    if (cur) cur.count++;
    else this.#sources.set(k, { src, count: 1 });
    this.#writeSources();
  }

  removeEncapSource(src: EncapSource): void {
    const k = sourceKey(src);
    const cur = this.#sources.get(k);
    if (cur === undefined) return;
    if (--cur.count <= 0) this.#sources.delete(k);
    this.#writeSources();
  }

  /** The encapsulating front-ends known now (counted and learned). */
  encapSources(): EncapSource[] {
    const all = new Map<string, EncapSource>(this.#learned);
    for (const [k, v] of this.#sources) all.set(k, v.src);
    return [...all.values()];
  }

  #learn(src: EncapSource): void {
    const k = sourceKey(src);
    if (this.#sources.has(k)) return;
    this.#learned.delete(k);
    this.#learned.set(k, src);
    if (this.#learned.size > this.#l.maxLearnedSources) {
      const oldest = this.#learned.keys().next();
      if (!oldest.done) this.#learned.delete(oldest.value);
    }
    this.#writeSources();
  }

  #writeSources(): void {
    if (this.#closed) return;
    const all = this.encapSources();
    const key = all.map(sourceKey).sort().join(',');
    if (key === this.#sourcesWritten) return;
    this.#sourcesWritten = key;
    this.#guard.setEncapSources?.(all);
  }

  #isEncapSource(family: 4 | 6, address: string): boolean {
    const k = `${family}|${address}`;
    return this.#sources.has(k) || this.#learned.has(k);
  }

  /** Packets read from the queue, in arrival order. */
  onPackets(packets: readonly QueuedPacket[]): void {
    const out: Verdict[] = [];
    /** Settling tuples with packets in this batch: their counts catch up after the verdicts. */
    let settled: Set<string> | undefined;
    for (const p of packets) {
      const t = packetTuple(p.payload);
      // Not a TCP packet we can place: only the guard marks packets, so this is someone else's mark; let it go.
      if (t === undefined) {
        out.push({ id: p.id, verdict: NF_ACCEPT });
        continue;
      }
      // As the guard classifies (bpf/backend.c): to a guarded VIP, its own tuple; else from an encapsulating
      // front-end with a flow id for ports, encapsulated; else not ours.
      let k = keyOf(t.family, t.src, t.sport, t.dst, t.dport);
      let encap: HeldPacket['encap'];
      let link: Link | undefined;
      if (t.sport < 0x8000 && !this.#vips.has(`${t.family}|${t.dst}|${t.dport}`) && this.#isEncapSource(t.family, t.src)) {
        const ek = encapKeyOf(t.family, t.src, ((t.sport << 16) | t.dport) >>> 0);
        link = this.#links.get(ek);
        if (link?.until !== undefined && this.#now() > link.until) {
          // an old claim: this flow id may be someone else's now
          this.#links.delete(ek);
          this.#linkOfTuple.delete(link.tuple);
          link = undefined;
        }
        k = link?.tuple ?? ek;
        if (p.length > p.payload.length) {
          // cut short by the copy range (a GSO packet beyond 64 KiB): it cannot be restored; the client retransmits
          this.#dropped++;
          out.push({ id: p.id, verdict: NF_DROP });
          continue;
        }
        encap = { bytes: Uint8Array.from(p.payload), partial: ((p.skbInfo ?? 0) & NFQA_SKB_CSUMNOTREADY) !== 0 };
      }
      if (this.#released.has(k) || this.#settling.has(k)) {
        const v: Verdict = link && encap ? this.#restore(p.id, encap, link.flow) : { id: p.id, verdict: NF_ACCEPT };
        if (v.verdict === NF_ACCEPT) this.#releasedCount++;
        out.push(v);
        if (encap === undefined) {
          this.#count(k, 1);
          if (this.#settling.has(k)) (settled ??= new Set()).add(k);
        }
        continue;
      }
      if (this.#discarded.has(k)) {
        this.#dropped++;
        out.push({ id: p.id, verdict: NF_DROP });
        if (encap === undefined) this.#count(k, 1);
        continue;
      }
      let h = this.#held.get(k);
      if (h === undefined) {
        if (this.#held.size >= this.#l.maxTuples) {
          this.#dropped++;
          out.push({ id: p.id, verdict: NF_DROP });
          if (encap === undefined) this.#count(k, 1);
          continue;
        }
        h = { begun: false, since: this.#now(), packets: [] };
        this.#held.set(k, h);
      }
      if (this.#pending >= this.#l.maxPackets || (encap && this.#encapBytes + encap.bytes.length > this.#l.maxEncapBytes)) {
        this.#dropped++;
        out.push({ id: p.id, verdict: NF_DROP });
        if (encap === undefined) this.#count(k, 1);
        continue;
      }
      h.packets.push({ id: p.id, seq: this.#seq++, ...(encap && { encap }) });
      if (encap) {
        this.#encapBytes += encap.bytes.length;
      } else {
        // encapsulated packets' acks would name the right sequence number, but never a client to reset
        const ack = packetAck(p.payload);
        if (ack !== undefined) h.ack = ack;
      }
      this.#pending++;
      this.#parked++;
    }
    this.#queue?.verdict(out);
    // After the verdicts (the accepted ones are in the socket now): the counts of settling tuples among them catch up.
    if (settled === undefined) return;
    const now = this.#now();
    for (const k of settled) {
      const st = this.#settling.get(k);
      if (st === undefined) continue;
      if (now - st.since >= this.#l.settleMaxMs) this.#endSettling(k);
      else this.#guard.settle?.(st.flow, this.#verdicts.get(k) ?? 0);
    }
  }

  #count(k: string, n: number): void {
    if (n > 0) this.#verdicts.set(k, (this.#verdicts.get(k) ?? 0) + n);
  }

  /** Packets of a tuple's own (not encapsulated ones) among `ps`. */
  static #own(ps: readonly HeldPacket[]): number {
    let n = 0;
    for (const p of ps) if (p.encap === undefined) n++;
    return n;
  }

  /** An encapsulated packet's verdict: accepted restored, or dropped when it cannot be (the client retransmits). */
  #restore(id: number, e: NonNullable<HeldPacket['encap']>, flow: ParkedFlow): Verdict {
    try {
      const payload = decapsulatePacket(e.bytes, flow, { checksumPartial: e.partial });
      this.#restored++;
      return { id, verdict: NF_ACCEPT, payload };
    } catch {
      this.#dropped++;
      return { id, verdict: NF_DROP };
    }
  }

  /** Claims an encapsulated key for a tuple: its packets parked so far join the tuple's, in arrival order. */
  #link(k: string, flow: ParkedFlow, encap: EncapFlow): void {
    const ek = encapKeyOf(flow.family, encap.frontend, encap.flowId);
    const prev = this.#linkOfTuple.get(k);
    if (prev !== undefined && prev !== ek) this.#links.delete(prev);
    const old = this.#links.get(ek);
    if (old !== undefined && old.tuple !== k) this.#linkOfTuple.delete(old.tuple);
    this.#links.set(ek, { tuple: k, flow });
    this.#linkOfTuple.set(k, ek);
    this.#released.delete(ek);
    this.#discarded.delete(ek);
    const eh = this.#held.get(ek);
    if (eh === undefined) return;
    this.#held.delete(ek);
    const h = this.#held.get(k);
    if (h === undefined) {
      this.#held.set(k, { begun: false, since: eh.since, packets: eh.packets });
      return;
    }
    h.packets = [...eh.packets, ...h.packets].sort((a, b) => a.seq - b.seq);
  }

  begin(flow: ParkedFlow, encap?: EncapFlow): void {
    const k = flowKey(flow);
    this.#released.delete(k); // the same tuple handed here again (a move back): park anew
    this.#discarded.delete(k);
    this.#guard.begin(flow);
    if (encap !== undefined) {
      this.#learn({ family: familyOf(encap.frontend), address: encap.frontend });
      this.#link(k, flow, encap);
    }
    const h = this.#held.get(k);
    if (h) h.begun = true;
    else this.#held.set(k, { begun: true, since: this.#now(), packets: [] });
  }

  release(flow: ParkedFlow): number {
    const k = flowKey(flow);
    // Each released packet is delivered inside the verdict call, and its ACK reaches the client and draws new
    // segments from it at once, on the same CPU, before the next verdict of the batch is applied. Were the tuple
    // un-parked first, those would overtake the rest of the batch (out of order at the socket: the client's SACK
    // recovery retransmits). So the tuple stays parked while its queue drains, round by round, each round's
    // packets (those the previous one drew) queued behind it; it is un-parked once a round finds none.
    let n = 0;
    for (let round = 0; round < this.#l.releaseRounds; round++) {
      this.#queue?.drain();
      const h = this.#held.get(k);
      const ps = h === undefined ? [] : h.packets.splice(0);
      if (ps.length === 0) break; // nothing released, so nothing drawn: no next round
      this.#pending -= ps.length;
      const vs = ps.map((p) => this.#verdictOf(p, flow));
      const ok = vs.filter((v) => v.verdict === NF_ACCEPT).length;
      this.#releasedCount += ok;
      n += ok;
      this.#queue?.verdict(vs);
      this.#count(k, ParkModel.#own(ps));
      if (this.#queue === undefined) break;
    }
    this.#take(k);
    // Packets were parked: some may still be queued (marked after the last drain). The guard keeps queueing this
    // tuple's packets behind them until our verdicts catch up with its count, written before the un-park so that
    // there is no moment with neither. With nothing parked (a GET waits for its answer) the tuple un-parks at once.
    const verdicts = this.#verdicts.get(k) ?? 0;
    if (verdicts > 0 && this.#queue !== undefined && this.#guard.settle !== undefined) {
      this.#guard.settle(flow, verdicts);
      this.#settling.set(k, { flow, since: this.#now(), lastMarked: -1, lastVerdicts: -1 });
    }
    this.#guard.end(flow);
    this.#remember(this.#released, k);
    this.#expireLink(k);
    // Packets parked just before the map update: accepted at once (the tuple is released now).
    const before = this.#releasedCount;
    this.#queue?.drain();
    return n + (this.#releasedCount - before);
  }

  ended(flow: ParkedFlow): void {
    const k = flowKey(flow);
    this.#released.delete(k);
    this.#endSettling(k);
  }

  discard(flow: ParkedFlow, encap?: EncapFlow): void {
    const k = flowKey(flow);
    if (encap !== undefined) this.#link(k, flow, encap); // its encapsulated packets go with it, now and later
    this.#guard.end(flow);
    this.#endSettling(k);
    this.#queue?.drain();
    this.#drop(this.#take(k), k);
    this.#released.delete(k);
    this.#remember(this.#discarded, k);
    this.#expireLink(k);
  }

  #endSettling(k: string): void {
    const st = this.#settling.get(k);
    if (st === undefined) return;
    this.#settling.delete(k);
    this.#verdicts.delete(k); // with the guard's count: both start again from 0
    this.#guard.endSettling?.(st.flow);
  }

  /**
   * Settling tuples: done once the guard's count and ours are equal at two sweeps in a row (quiet; the entries go).
   * Stuck when the guard's count stays ahead with nothing of the tuple's held here (a packet the queue dropped, or
   * a count from before): ours is raised to the guard's, so the tuple stops going through the queue.
   */
  #sweepSettling(): void {
    const now = this.#now();
    for (const [k, st] of this.#settling) {
      if (this.#held.has(k)) continue; // begun again (a move back): the next release settles it anew
      // A client streaming so fast that its packets always meet one of theirs in the queue would never settle, and
      // all of it would go through the queue: after settleMaxMs the tuple un-parks anyway (what is still queued
      // then may be overtaken, as before settling existed).
      if (now - st.since >= this.#l.settleMaxMs) {
        this.#endSettling(k);
        continue;
      }
      const marked = this.#guard.marked?.(st.flow) ?? 0;
      const verdicts = this.#verdicts.get(k) ?? 0;
      const unchanged = marked === st.lastMarked && verdicts === st.lastVerdicts;
      st.lastMarked = marked;
      st.lastVerdicts = verdicts;
      if (!unchanged) continue;
      if (marked > verdicts) {
        this.#verdicts.set(k, marked);
        st.lastVerdicts = marked;
        this.#guard.settle?.(st.flow, marked);
        continue;
      }
      this.#endSettling(k);
    }
  }

  /** Drops what waited too long, and forgets old releases. */
  sweep(now = this.#now()): void {
    for (const [k, h] of this.#held) {
      if (now - h.since < (h.begun ? this.#l.begunMs : this.#l.unclaimedMs)) continue;
      this.#held.delete(k);
      this.#pending -= h.packets.length;
      this.#expired += h.packets.length;
      this.#freeEncap(h.packets);
      this.#queue?.verdict(h.packets.map((p) => ({ id: p.id, verdict: NF_DROP })));
      this.#count(k, ParkModel.#own(h.packets));
      // An encapsulated key nobody claimed names no client (ack undefined): it expires silently.
      // Nobody claimed it: no socket is on its way (a handoff takes milliseconds), so the client gets the reset its
      // stray packets would have drawn from the stack, not a silence it waits out until its own timeout.
      if (!h.begun && h.ack !== undefined && this.#reset !== undefined) {
        this.#resets++;
        try {
          this.#reset(tupleOf(k), h.ack);
        } catch {
          // A reset that cannot be sent leaves the client to its own timeout, as before.
        }
      }
      if (h.begun) {
        this.#guard.end(tupleOf(k));
        this.#unlink(k);
      }
    }
    for (const remembered of [this.#released, this.#discarded]) {
      for (const [k, at] of remembered) {
        if (now - at < this.#l.releasedMs) break; // insertion order: the rest are younger
        remembered.delete(k);
        this.#unlink(k);
      }
    }
    this.#sweepSettling();
    for (const k of this.#verdicts.keys()) {
      if (!this.#held.has(k) && !this.#settling.has(k) && !this.#released.has(k) && !this.#discarded.has(k)) this.#verdicts.delete(k);
    }
  }

  #expireLink(k: string): void {
    const ek = this.#linkOfTuple.get(k);
    const l = ek === undefined ? undefined : this.#links.get(ek);
    if (l !== undefined) l.until = this.#now() + Math.min(this.#l.encapLinkMs, this.#l.releasedMs);
  }

  #unlink(k: string): void {
    if (this.#held.has(k) || this.#released.has(k) || this.#discarded.has(k)) return;
    const ek = this.#linkOfTuple.get(k);
    if (ek === undefined) return;
    this.#linkOfTuple.delete(k);
    if (this.#links.get(ek)?.tuple === k) this.#links.delete(ek);
  }

  #verdictOf(p: HeldPacket, flow: ParkedFlow): Verdict {
    if (p.encap === undefined) return { id: p.id, verdict: NF_ACCEPT };
    this.#encapBytes -= p.encap.bytes.length;
    return this.#restore(p.id, p.encap, flow);
  }

  #freeEncap(ps: readonly HeldPacket[]): void {
    for (const p of ps) if (p.encap) this.#encapBytes -= p.encap.bytes.length;
  }

  stats(): ParkStats {
    return {
      parked: this.#parked, released: this.#releasedCount, dropped: this.#dropped, expired: this.#expired, pending: this.#pending,
      resets: this.#resets, restored: this.#restored,
    };
  }

  close(opts?: { readonly keep?: boolean }): void {
    if (this.#closed) return;
    this.#closed = true;
    // Nobody will inject these sockets now: drop (the client retransmits), never accept into a stack without them.
    for (const [k, h] of this.#held) this.#drop(h, k);
    this.#held.clear();
    // Always: with nobody reading the queue, a settling tuple's packets would be dropped for good.
    for (const k of [...this.#settling.keys()]) this.#endSettling(k);
    this.#pending = 0;
    this.#encapBytes = 0;
    // The guard first: it drops instead of marking before the queue and its rule go (a marked packet with no rule
    // would reach the stack and draw a reset).
    this.#guard.close({ keep: opts?.keep === true });
    this.#queue?.close();
  }

  #take(k: string): Held | undefined {
    const h = this.#held.get(k);
    if (h === undefined) return undefined;
    this.#held.delete(k);
    this.#pending -= h.packets.length;
    return h;
  }

  #drop(h: Held | undefined, k: string): void {
    if (h === undefined || h.packets.length === 0) return;
    this.#dropped += h.packets.length;
    this.#freeEncap(h.packets);
    this.#queue?.verdict(h.packets.map((p) => ({ id: p.id, verdict: NF_DROP })));
    this.#count(k, ParkModel.#own(h.packets));
    h.packets.length = 0;
  }

  #remember(m: Map<string, number>, k: string): void {
    m.delete(k);
    m.set(k, this.#now());
    if (m.size > this.#l.maxTuples * 4) {
      const oldest = m.keys().next();
      if (!oldest.done) {
        m.delete(oldest.value);
        this.#unlink(oldest.value);
      }
    }
  }
}
