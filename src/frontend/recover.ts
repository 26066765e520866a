// Any front-end forwards any handed-off flow (issue 11.3). With several front-ends behind ECMP, a client packet
// may reach a front-end that did not hand its flow off (its front-end died, or the router rehashed). The data path
// records such a packet (no steering entry, no local connection: an "orphan") and drops it — never passes it up,
// where the stack would reset the client. This module polls the orphans, asks every back-end over its control
// channel "who holds client:port -> VIP:port?" (OWNER_QUERY), and writes a `forward` entry to the one that does,
// so the client's next packet (a retransmission, or the next ACK of a download) flows. No state is shared between
// front-ends: the back-ends, which hold the sockets, are the directory; the answer is cached in the data plane.
//
// For an encapsulating back-end the query carries a flow id this front-end chose and this front-end's address:
// the owner maps (address, flow id) for decapsulation before it answers, so the first forwarded packet finds it.
// Recovered flow ids count downwards from FLOW_ID_MAX and are added to the handoff machine's in-use set, so they
// never meet the ids it allocates upwards from 1.
import type { OwnerReply } from '../control/client.ts';
import type { FlowIds, FlowKey, OrphanSource } from '../steer/types.ts';
import { FLOW_ID_MAX, flowKeyString } from '../steer/types.ts';
import type { FlowInfo } from '../wire/frame.ts';

/** A back-end as recovery sees it: whom to ask, and whether it needs a decap mapping. */
export interface RecoveryBackend {
  readonly id: string;
  /** This front-end's address toward it when it is reached by encapsulation; undefined for `l2`. */
  readonly encapSource?: string;
  ask(q: { readonly flow: FlowInfo; readonly flowId: number; readonly frontend: string }): Promise<OwnerReply>;
}

export interface RecoveryPorts {
  readonly orphans: OrphanSource;
  readonly vip: { readonly address: string; readonly port: number };
  /** Writes the steering entry (Steering.forward). */
  forward(flow: FlowKey, backendId: string, ids: FlowIds): Promise<void>;
  /** Back-ends whose channel is up now. */
  backends(): readonly RecoveryBackend[];
  /** How many back-ends are configured: a flow is declared nobody's only when all of them answered. */
  backendCount(): number;
  /** Shared with the handoff machine: ids given to recovered flows are added here. */
  readonly flowIdsInUse: Set<number>;
  readonly log: { warn(o: object, msg: string): void; info(o: object, msg: string): void };
  /** How often the orphans are read (ms). Default 5. */
  readonly pollMs?: number;
  /**
   * After no back-end claimed a flow, its packets stay dropped this long before it is asked about again. Default 2000.
   * A second refusal from every back-end (so never during a handoff still in progress elsewhere) lets the flow's
   * packets up to the stack, which resets the client instead of leaving it hanging (a connection that died with
   * the front-end that had it and had not handed it off).
   */
  readonly negativeTtlMs?: number;
  /** Most recoveries in flight. Default 256. */
  readonly maxInFlight?: number;
}

export interface RecoveredFlow {
  readonly flow: string;
  readonly backend: string;
  /** From the first dropped packet to the steering entry written. */
  readonly ms: number;
  /** Client packets dropped meanwhile. */
  readonly dropped: number;
  /** When (Date.now()) the flow was steered. */
  readonly at: number;
}

export interface RecoveryStats {
  readonly recovered: number;
  /** Orphans no back-end claimed (each counted once per negativeTtlMs). */
  readonly unclaimed: number;
  /** Orphans given up after repeated refusals: passed up to the stack, which resets them. */
  readonly reset: number;
  readonly inFlight: number;
  /** The latest recoveries (at most 1000), oldest first. */
  readonly flows: readonly RecoveredFlow[];
}

const KEEP = 1000;

export class OrphanRecovery {
  readonly #p: RecoveryPorts;
  readonly #inFlight = new Set<string>();
  /** flow -> until when (ms, monotonic) it is not asked about again, and how many times every back-end refused it. */
  readonly #unclaimed = new Map<string, { until: number; rounds: number }>();
  readonly #flows: RecoveredFlow[] = [];
  #recovered = 0;
  #unclaimedCount = 0;
  #reset = 0;
  #nextFlowId = FLOW_ID_MAX;
  #timer: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(p: RecoveryPorts) {
    this.#p = p;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.poll(), this.#p.pollMs ?? 5);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  stats(): RecoveryStats {
    return { recovered: this.#recovered, unclaimed: this.#unclaimedCount, reset: this.#reset, inFlight: this.#inFlight.size, flows: [...this.#flows] };
  }

  /** One pass: starts a recovery for every new orphan. Resolves when those recoveries end (for tests). */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    const started: Promise<void>[] = [];
    try {
      const now = performance.now();
      for (const o of this.#p.orphans.list()) {
        const k = flowKeyString(o.flow);
        if (this.#inFlight.has(k)) continue;
        const u = this.#unclaimed.get(k);
        if (u !== undefined && now < u.until) continue;
        if (u !== undefined && o.pass === true) {
          // Given up and passed for a while: forget it; a later packet starts over.
          this.#unclaimed.delete(k);
          this.#p.orphans.forget(o.flow);
          continue;
        }
        if (this.#inFlight.size >= (this.#p.maxInFlight ?? 256)) break;
        this.#inFlight.add(k);
        started.push(this.#recover(o.flow, k).finally(() => this.#inFlight.delete(k)));
      }
    } catch (e) {
      this.#p.log.warn({ err: e }, 'reading orphan flows failed');
    } finally {
      this.#polling = false;
    }
    await Promise.all(started);
  }

  #allocateFlowId(): number {
    for (;;) {
      const id = this.#nextFlowId;
      this.#nextFlowId = id <= 1 ? FLOW_ID_MAX : id - 1;
      if (!this.#p.flowIdsInUse.has(id)) {
        this.#p.flowIdsInUse.add(id);
        return id;
      }
    }
  }

  async #recover(flow: FlowKey, k: string): Promise<void> {
    const backends = this.#p.backends();
    const info: FlowInfo = {
      family: flow.family,
      client: { address: flow.clientAddress, port: flow.clientPort },
      vip: { address: this.#p.vip.address, port: this.#p.vip.port },
    };
    const flowId = this.#allocateFlowId();
    const unspecified = flow.family === 4 ? '0.0.0.0' : '::';
    const answers = await Promise.all(
      backends.map(async (b) => {
        const r = await b.ask({ flow: info, flowId: b.encapSource === undefined ? 0 : flowId, frontend: b.encapSource ?? unspecified });
        return { b, r };
      }),
    );
    const owner = answers.find((a) => a.r.found);
    if (owner === undefined || !owner.r.found) {
      this.#p.flowIdsInUse.delete(flowId);
      const everyone = backends.length > 0 && backends.length === this.#p.backendCount();
      const rounds = (this.#unclaimed.get(k)?.rounds ?? 0) + (everyone ? 1 : 0);
      this.#unclaimed.set(k, { until: performance.now() + (this.#p.negativeTtlMs ?? 2000), rounds });
      this.#unclaimedCount++;
      if (rounds >= 2) {
        this.#p.orphans.pass(flow);
        this.#reset++;
        this.#p.log.info({ flow: k, asked: backends.length }, 'no back-end holds an orphan flow: letting the stack reset it');
      } else if (backends.length > 0) {
        this.#p.log.info({ flow: k, asked: backends.length }, 'no back-end holds an orphan flow');
      }
      return;
    }
    this.#unclaimed.delete(k);
    try {
      await this.#p.forward(flow, owner.b.id, { handoffId: owner.r.handoffId, flowId });
    } catch (e) {
      this.#p.flowIdsInUse.delete(flowId);
      this.#p.log.warn({ err: e, flow: k }, 'steering a recovered flow failed');
      return;
    }
    const now = this.#p.orphans.nowNs();
    const rec = this.#p.orphans.get(flow);
    this.#p.orphans.forget(flow);
    const r: RecoveredFlow = {
      flow: k,
      backend: owner.b.id,
      ms: rec === undefined ? 0 : Number(now - rec.firstSeenNs) / 1e6,
      dropped: rec?.packets ?? 0,
      at: Date.now(),
    };
    this.#recovered++;
    this.#flows.push(r);
    if (this.#flows.length > KEEP) this.#flows.splice(0, this.#flows.length - KEEP);
    this.#p.log.info(r, 'recovered a flow handed off by another front-end');
  }
}
