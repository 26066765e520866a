// The front-end daemon: accepts on VIP:port, reads the request head with limits, picks a
// back-end, and hands the live connection to it (DESIGN.md, "The handoff, step by step"):
//   hold -> capture (repair mode) -> prepare at the back-end -> forward -> commit -> close silently.
// Failures before forward never lose the client: another back-end is tried with the same
// state, and when none is left the socket leaves repair mode and is answered 503 here.
import { channel } from 'node:diagnostics_channel';
import net from 'node:net';
import type { Logger } from 'pino';
import type { BackendId, BackendView, PickResult, RequestInfo, Router } from '../policy/index.ts';
import { flowKeyString, FLOW_ID_MAX, type Steering, type FlowKey } from '../steer/types.ts';
import { captureState, repairOff } from '../tcp/capture.ts';
import { encodeBlob } from '../wire/blob.ts';
import { buildResponse, parseRequestHead, type RequestHead } from '../wire/http-head.ts';
import { LatencyRecorder } from '../util/histogram.ts';
import type { FrontendConfig } from './config.ts';
import type { HandoffChannel } from './channel.ts';

const chHandoff = channel('baton:handoff:done');
const chFailed = channel('baton:handoff:failed');

interface NodeTcpHandle {
  readonly fd: number;
  /** Node's own flag: whether it believes the handle is reading (net.js tryReadStart). */
  reading: boolean;
  readStop(): number;
}

const handleOf = (s: net.Socket): NodeTcpHandle => (s as unknown as { _handle: NodeTcpHandle })._handle;

export interface FrontendDeps {
  readonly config: FrontendConfig;
  readonly router: Router;
  readonly steering: Steering;
  readonly channels: ReadonlyMap<string, HandoffChannel>;
  readonly log: Logger;
  readonly now?: () => number;
}

interface BackendCounters {
  /** Active connections as the back-end last reported them. */
  reported: number;
  /** Commits since that report (the report does not include them yet). */
  sinceReport: number;
  inflight: number;
  handoffs: number;
  failures: number;
}

export interface FrontendStats {
  readonly accepted: number;
  readonly handedOff: number;
  readonly answeredLocally: Record<string, number>;
  readonly retries: number;
  readonly pending: number;
  readonly handoffUs: ReturnType<LatencyRecorder['summary']>;
  readonly phasesUs: Record<string, { p50: number; p99: number }>;
  readonly perBackend: Record<string, { handoffs: number; failures: number; active: number; up: boolean }>;
}

export class Frontend {
  readonly #d: FrontendDeps;
  readonly #server: net.Server;
  readonly #counters = new Map<string, BackendCounters>();
  readonly #latency = new LatencyRecorder();
  /** Where handoff time goes, per phase (us): hold, capture, prepare (send -> ack), forward. */
  readonly #phases = { hold: new LatencyRecorder(4096), capture: new LatencyRecorder(4096), prepare: new LatencyRecorder(4096), forward: new LatencyRecorder(4096) };
  readonly #local = new Map<number, number>();
  readonly #now: () => number;
  #accepted = 0;
  #handedOff = 0;
  #retries = 0;
  #pending = 0;
  #nextId = 1n;
  #nextFlowId = 1;
  /** The latest handoff of each forwarded tuple. */
  readonly #handoffOf = new Map<string, bigint>();

  constructor(d: FrontendDeps) {
    this.#d = d;
    this.#now = d.now ?? Date.now;
    for (const b of d.config.backends) this.#counters.set(b.id, { reported: 0, sinceReport: 0, inflight: 0, handoffs: 0, failures: 0 });
    this.#server = net.createServer({ noDelay: true }, (s) => this.#onConnection(s));
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#d.config.vip, port: this.#d.config.port, backlog: 4096 }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as net.AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()));
  }

  /** A back-end reported its active connection count. */
  onLoad(backend: string, active: number): void {
    const c = this.#counters.get(backend);
    if (!c) return;
    c.reported = active;
    c.sinceReport = 0;
  }

  /** A back-end reported a handed-off connection ended. */
  onFlowEnd(flow: FlowKey): void {
    // FLOW_END does not name its handoff yet: release the tuple's latest handoff.
    const k = flowKeyString(flow);
    const handoffId = this.#handoffOf.get(k);
    if (handoffId === undefined) return;
    this.#handoffOf.delete(k);
    this.#d.steering.release(flow, handoffId).catch((e: Error) => this.#d.log.warn({ err: e.message }, 'release failed'));
  }

  stats(): FrontendStats {
    const perBackend: FrontendStats['perBackend'] = {};
    for (const v of this.#views()) {
      const c = this.#counters.get(v.id)!;
      perBackend[v.id] = { handoffs: c.handoffs, failures: c.failures, active: v.active, up: v.up };
    }
    return {
      accepted: this.#accepted,
      handedOff: this.#handedOff,
      answeredLocally: Object.fromEntries([...this.#local].map(([k, v]) => [String(k), v])),
      retries: this.#retries,
      pending: this.#pending,
      handoffUs: this.#latency.summary(),
      phasesUs: Object.fromEntries(Object.entries(this.#phases).map(([k, r]) => {
        const { p50, p99 } = r.summary();
        return [k, { p50, p99 }];
      })),
      perBackend,
    };
  }

  #views(exclude?: ReadonlySet<string>): BackendView[] {
    return this.#d.config.backends.map((b) => {
      const c = this.#counters.get(b.id)!;
      const ch = this.#d.channels.get(b.id);
      return {
        id: b.id as BackendId,
        up: ch?.state === 'up' && !exclude?.has(b.id),
        weight: b.weight,
        active: c.reported + c.sinceReport + c.inflight,
      };
    });
  }

  #answer(sock: net.Socket, status: number): void {
    this.#local.set(status, (this.#local.get(status) ?? 0) + 1);
    sock.end(buildResponse(status));
    // Drain what the client still sends: closing with unread bytes would reset the connection
    // and could destroy the answer before the client reads it.
    sock.resume();
    // The client may never read; do not keep the socket forever.
    setTimeout(() => sock.destroy(), 5000).unref();
  }

  #onConnection(sock: net.Socket): void {
    this.#accepted++;
    sock.on('error', () => undefined);
    const limits = this.#d.config.limits;
    if (this.#pending >= limits.maxPending) return this.#answer(sock, 503);
    this.#pending++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#pending--;
      clearTimeout(timer);
      sock.off('data', onData);
    };
    const timer = setTimeout(() => {
      finish();
      this.#answer(sock, 408);
    }, limits.headTimeoutMs);
    sock.once('close', finish);
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const r = parseRequestHead(buf, { maxHeadBytes: limits.maxHeadBytes, maxHeaders: limits.maxHeaders });
      if (r.kind === 'incomplete') return;
      // Stop Node's reader at once: from here on the kernel keeps what arrives.
      const h = handleOf(sock);
      h.readStop();
      h.reading = false;
      sock.pause();
      finish();
      if (r.kind === 'error') return this.#answer(sock, r.status);
      const headAt = process.hrtime.bigint();
      this.#handoff(sock, buf, r.head, headAt).catch((e: Error) => {
        this.#d.log.error({ err: e.message }, 'handoff crashed');
        sock.destroy();
      });
    };
    sock.on('data', onData);
  }

  async #handoff(sock: net.Socket, consumed: Buffer, head: RequestHead, headAt: bigint): Promise<void> {
    const log = this.#d.log;
    const req: RequestInfo = { method: head.method, target: head.target, path: head.path, host: head.host, headers: head.headerMap };
    const first = this.#d.router.pick(req, this.#views(), this.#now());
    if (first.kind === 'none') return this.#answer(sock, 503);
    const family = sock.remoteFamily === 'IPv6' ? 6 : 4;
    const flow: FlowKey = { family, clientAddress: sock.remoteAddress!, clientPort: sock.remotePort! };
    const fd = handleOf(sock).fd;

    const since = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1000;
    let t = process.hrtime.bigint();
    try {
      await this.#d.steering.hold(flow);
      this.#phases.hold.record(since(t));
    } catch (e) {
      log.error({ err: (e as Error).message }, 'hold failed');
      return this.#answer(sock, 503);
    }
    let blob: Uint8Array;
    let flowId: number;
    const handoffId = this.#nextId++;
    t = process.hrtime.bigint();
    try {
      const state = captureState({
        fd, family,
        client: { address: flow.clientAddress, port: flow.clientPort },
        vip: { address: sock.localAddress!, port: sock.localPort! },
        consumed,
      });
      flowId = this.#nextFlowId;
      this.#nextFlowId = this.#nextFlowId >= FLOW_ID_MAX ? 1 : this.#nextFlowId + 1;
      blob = encodeBlob({ handoffId, flowId, state });
      this.#phases.capture.record(since(t));
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'capture failed; answering locally');
      return this.#giveBack(sock, fd, flow);
    }

    const tried = new Set<string>();
    let pick: PickResult = first;
    for (let attempt = 0; attempt < this.#d.config.limits.maxAttempts && pick.kind === 'backend'; attempt++) {
      const id = pick.id as string;
      const ch = this.#d.channels.get(id);
      const c = this.#counters.get(id)!;
      c.inflight++;
      t = process.hrtime.bigint();
      const ack = ch ? await ch.sendHandoff(handoffId, blob) : { ok: false as const, code: 'BATON_ERR_NO_CHANNEL', reason: id };
      c.inflight--;
      if (ack.ok) {
        this.#phases.prepare.record(since(t));
        t = process.hrtime.bigint();
        try {
          await this.#d.steering.forward(flow, id, { handoffId, flowId });
          this.#handoffOf.set(flowKeyString(flow), handoffId);
          this.#phases.forward.record(since(t));
        } catch (e) {
          ch!.abort(handoffId);
          log.error({ err: (e as Error).message }, 'forward failed; answering locally');
          return this.#giveBack(sock, fd, flow);
        }
        ch!.commit(handoffId);
        // Still in repair mode: closing sends neither FIN nor RST.
        sock.destroy();
        c.handoffs++;
        c.sinceReport++;
        this.#handedOff++;
        const us = Number(process.hrtime.bigint() - headAt) / 1000;
        this.#latency.record(us);
        if (chHandoff.hasSubscribers) chHandoff.publish({ backend: id, us, flow });
        return;
      }
      c.failures++;
      tried.add(id);
      log.warn({ backend: id, code: ack.code, reason: ack.reason }, 'handoff refused');
      if (chFailed.hasSubscribers) chFailed.publish({ backend: id, code: ack.code });
      this.#retries++;
      pick = this.#d.router.pick(req, this.#views(tried), this.#now());
    }
    return this.#giveBack(sock, fd, flow);
  }

  /** No back-end took the connection: it stays here and is answered 503. */
  async #giveBack(sock: net.Socket, fd: number, flow: FlowKey): Promise<void> {
    try {
      repairOff(fd);
    } catch (e) {
      this.#d.log.error({ err: (e as Error).message }, 'repair off failed');
    }
    await this.#d.steering.unhold(flow).catch((e: Error) => this.#d.log.error({ err: e.message }, 'unhold failed'));
    this.#answer(sock, 503);
  }
}
