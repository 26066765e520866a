// Lossless parking of early client packets at a back-end (DESIGN.md "Lossless handoff"). The front-end points a flow
// at its new owner before the blob carrying the socket arrives, so client packets can reach this back-end before
// the socket exists, or while it is still in repair mode. The data plane's guard (bpf/backend.c) parks them below
// the stack; here they wait, by tuple, until the agent has injected the socket and releases them in arrival order.
//
// This file is the model: which tuple is begun, released or unclaimed, the packets each holds, the bounds and the
// counters. The kernel is reached only through the ports below (guard maps, the queue, a clock), so the policy is
// tested without root; park-bpf.ts projects it onto the guard's maps, an nfqueue and an nftables rule.
import { packetAck, packetTuple, NF_ACCEPT, NF_DROP, type QueuedPacket, type Verdict } from '../wire/nfqueue.ts';

export interface ParkedFlow {
  readonly family: 4 | 6;
  readonly client: { address: string; port: number };
  readonly vip: { address: string; port: number };
}

export interface ParkGate {
  /** The VIPs guarded (replaces the set): a TCP packet to one of them that no socket takes, not a SYN, is parked, never answered with RST. */
  guardVips(vips: readonly { readonly family: 4 | 6; readonly address: string; readonly port: number }[]): void;
  /** True when parked packets are kept (nfqueue) and let through later; false: they are dropped (the client retransmits). */
  readonly lossless: boolean;
  /** Before inject: park this tuple's packets even once its socket exists (it is in repair mode). */
  begin(flow: ParkedFlow): void;
  /** After inject (repair off): stop parking the tuple; let its parked packets through in arrival order. Returns how many. */
  release(flow: ParkedFlow): number;
  /**
   * The handoff failed: stop parking the tuple, drop what was parked and what still arrives for a while (the client
   * retransmits to the next owner). Never a reset: another back-end serves the client now.
   */
  discard(flow: ParkedFlow): void;
  /** `resets`: clients of tuples nobody claimed, answered with a RST when their packets expired. */
  stats(): { parked: number; released: number; dropped: number; expired: number; pending: number; resets: number };
  close(opts?: { readonly keep?: boolean }): void;
}

/** The guard's kernel state (bpf maps), as the model writes it. */
export interface GuardPort {
  setVips(vips: readonly { readonly family: 4 | 6; readonly address: string; readonly port: number }[]): void;
  begin(flow: ParkedFlow): void;
  end(flow: ParkedFlow): void;
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
}

interface Held {
  begun: boolean;
  readonly since: number;
  readonly ids: number[];
  /** The acknowledgment number of the latest parked packet (for a reset when nobody claims the tuple). */
  ack?: number;
}

const keyOf = (family: 4 | 6, client: string, cport: number, vip: string, vport: number): string => `${family}|${client}|${cport}|${vip}|${vport}`;
const flowKey = (f: ParkedFlow): string => keyOf(f.family, f.client.address, f.client.port, f.vip.address, f.vip.port);
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
    };
  }

  guardVips(vips: readonly { readonly family: 4 | 6; readonly address: string; readonly port: number }[]): void {
    this.#guard.setVips(vips);
  }

  /** Packets read from the queue, in arrival order. */
  onPackets(packets: readonly QueuedPacket[]): void {
    const out: Verdict[] = [];
    for (const p of packets) {
      const t = packetTuple(p.payload);
      // Not a TCP packet we can place: only the guard marks packets, so this is someone else's mark; let it go.
      if (t === undefined) {
        out.push({ id: p.id, verdict: NF_ACCEPT });
        continue;
      }
      const k = keyOf(t.family, t.src, t.sport, t.dst, t.dport);
      if (this.#released.has(k)) {
        this.#releasedCount++;
        out.push({ id: p.id, verdict: NF_ACCEPT });
        continue;
      }
      if (this.#discarded.has(k)) {
        this.#dropped++;
        out.push({ id: p.id, verdict: NF_DROP });
        continue;
      }
      let h = this.#held.get(k);
      if (h === undefined) {
        if (this.#held.size >= this.#l.maxTuples) {
          this.#dropped++;
          out.push({ id: p.id, verdict: NF_DROP });
          continue;
        }
        h = { begun: false, since: this.#now(), ids: [] };
        this.#held.set(k, h);
      }
      if (this.#pending >= this.#l.maxPackets) {
        this.#dropped++;
        out.push({ id: p.id, verdict: NF_DROP });
        continue;
      }
      h.ids.push(p.id);
      const ack = packetAck(p.payload);
      if (ack !== undefined) h.ack = ack;
      this.#pending++;
      this.#parked++;
    }
    this.#queue?.verdict(out);
  }

  begin(flow: ParkedFlow): void {
    const k = flowKey(flow);
    this.#released.delete(k); // the same tuple handed here again (a move back): park anew
    this.#discarded.delete(k);
    this.#guard.begin(flow);
    const h = this.#held.get(k);
    if (h) h.begun = true;
    else this.#held.set(k, { begun: true, since: this.#now(), ids: [] });
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
      const ids = h === undefined ? [] : h.ids.splice(0);
      if (round > 0 && ids.length === 0) break;
      this.#pending -= ids.length;
      this.#releasedCount += ids.length;
      n += ids.length;
      this.#queue?.verdict(ids.map((id) => ({ id, verdict: NF_ACCEPT })));
      if (this.#queue === undefined) break;
    }
    this.#take(k);
    this.#guard.end(flow);
    this.#remember(this.#released, k);
    // Packets parked just before the map update: accepted at once (the tuple is released now).
    const before = this.#releasedCount;
    this.#queue?.drain();
    return n + (this.#releasedCount - before);
  }

  discard(flow: ParkedFlow): void {
    const k = flowKey(flow);
    this.#guard.end(flow);
    this.#queue?.drain();
    this.#drop(this.#take(k));
    this.#released.delete(k);
    this.#remember(this.#discarded, k);
  }

  /** Drops what waited too long, and forgets old releases. */
  sweep(now = this.#now()): void {
    for (const [k, h] of this.#held) {
      if (now - h.since < (h.begun ? this.#l.begunMs : this.#l.unclaimedMs)) continue;
      this.#held.delete(k);
      this.#pending -= h.ids.length;
      this.#expired += h.ids.length;
      this.#queue?.verdict(h.ids.map((id) => ({ id, verdict: NF_DROP })));
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
      }
    }
    for (const remembered of [this.#released, this.#discarded]) {
      for (const [k, at] of remembered) {
        if (now - at < this.#l.releasedMs) break; // insertion order: the rest are younger
        remembered.delete(k);
      }
    }
  }

  stats(): { parked: number; released: number; dropped: number; expired: number; pending: number; resets: number } {
    return { parked: this.#parked, released: this.#releasedCount, dropped: this.#dropped, expired: this.#expired, pending: this.#pending, resets: this.#resets };
  }

  close(opts?: { readonly keep?: boolean }): void {
    if (this.#closed) return;
    this.#closed = true;
    // Nobody will inject these sockets now: drop (the client retransmits), never accept into a stack without them.
    for (const h of this.#held.values()) this.#drop(h);
    this.#held.clear();
    this.#pending = 0;
    // The guard first: it drops instead of marking before the queue and its rule go (a marked packet with no rule
    // would reach the stack and draw a reset).
    this.#guard.close({ keep: opts?.keep === true });
    this.#queue?.close();
  }

  #take(k: string): Held | undefined {
    const h = this.#held.get(k);
    if (h === undefined) return undefined;
    this.#held.delete(k);
    this.#pending -= h.ids.length;
    return h;
  }

  #drop(h: Held | undefined): void {
    if (h === undefined || h.ids.length === 0) return;
    this.#dropped += h.ids.length;
    this.#queue?.verdict(h.ids.map((id) => ({ id, verdict: NF_DROP })));
    h.ids.length = 0;
  }

  #remember(m: Map<string, number>, k: string): void {
    m.delete(k);
    m.set(k, this.#now());
    if (m.size > this.#l.maxTuples * 4) {
      const oldest = m.keys().next();
      if (!oldest.done) m.delete(oldest.value);
    }
  }
}
