// Steering through nftables (netdev ingress on the front-end's client-facing interface).
// The model (which flow is where) lives here; the kernel sets are its projection.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NftSession } from './nft-session.ts';
import {
  addElement, closingSet, deleteElement, holdSet, liveSet, parseSetElements, tableScript, type NftConfig,
} from './nft-script.ts';
import { flowKeyString, type FlowKey, type SteerBackend, type SteerEntry, type Steering } from './types.ts';

const run = promisify(execFile);

export interface NftSteeringOptions {
  readonly table: string;
  readonly device: string;
  readonly vip: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly backends: readonly SteerBackend[];
  /** Seconds a held flow stays held if the front-end never decides (safety net). */
  readonly holdTimeoutS?: number;
  /** Seconds without a client packet after which a forwarded flow is forgotten. */
  readonly idleTimeoutS?: number;
  /** How long a released flow keeps being forwarded, for the last FIN/ACK packets. */
  readonly lingerMs?: number;
}

export class NftSteering implements Steering {
  readonly #cfg: NftConfig;
  readonly #index = new Map<string, number>();
  readonly #owner = new Map<string, string>();
  readonly #session: NftSession;

  private constructor(cfg: NftConfig, backends: readonly SteerBackend[]) {
    this.#cfg = cfg;
    backends.forEach((b, i) => this.#index.set(b.id, i));
    this.#session = new NftSession(cfg.table);
  }

  static async create(o: NftSteeringOptions): Promise<NftSteering> {
    const cfg: NftConfig = {
      table: o.table,
      device: o.device,
      family: o.family,
      vip: o.vip,
      port: o.port,
      backends: o.backends.map((b, index) => ({ index, address: b.address })),
      holdTimeoutS: o.holdTimeoutS ?? 30,
      idleTimeoutS: o.idleTimeoutS ?? 300,
      lingerMs: o.lingerMs ?? 2000,
    };
    await applyScript(tableScript(cfg));
    return new NftSteering(cfg, o.backends);
  }

  #backendIndex(id: string): number {
    const i = this.#index.get(id);
    if (i === undefined) throw new TypeError(`steering: unknown back-end ${id}`);
    return i;
  }

  hold(flow: FlowKey): Promise<void> {
    return this.#session.run([addElement(this.#cfg.table, holdSet(flow.family), flow)], `hold ${flowKeyString(flow)}`);
  }

  async forward(flow: FlowKey, backendId: string): Promise<void> {
    const b = this.#backendIndex(backendId);
    const t = this.#cfg.table;
    // Live first, then unhold: a packet in between is dropped (the client retransmits), never
    // delivered to the front-end's stack, which no longer has the socket.
    await this.#session.run(
      [addElement(t, liveSet(flow.family, b), flow), deleteElement(t, holdSet(flow.family), flow)],
      `forward ${flowKeyString(flow)} to ${backendId}`,
    );
    this.#owner.set(flowKeyString(flow), backendId);
  }

  unhold(flow: FlowKey): Promise<void> {
    return this.#session.run([deleteElement(this.#cfg.table, holdSet(flow.family), flow)], `unhold ${flowKeyString(flow)}`);
  }

  async release(flow: FlowKey): Promise<void> {
    const k = flowKeyString(flow);
    const owner = this.#owner.get(k);
    if (owner === undefined) return;
    this.#owner.delete(k);
    const b = this.#backendIndex(owner);
    const t = this.#cfg.table;
    await this.#session.run(
      [addElement(t, closingSet(flow.family, b), flow, this.#cfg.lingerMs), deleteElement(t, liveSet(flow.family, b), flow)],
      `release ${k}`,
    );
  }

  async list(): Promise<SteerEntry[]> {
    const { stdout } = await run('nft', ['-j', 'list', 'table', 'netdev', this.#cfg.table], { maxBuffer: 64 << 20 });
    const sets = parseSetElements(stdout);
    const out: SteerEntry[] = [];
    for (const f of [4, 6] as const) {
      for (const flow of sets.get(holdSet(f)) ?? []) out.push({ flow, verdict: 'hold' });
      for (const [id, i] of this.#index) {
        for (const flow of sets.get(liveSet(f, i)) ?? []) out.push({ flow, verdict: 'forward', backend: id });
        for (const flow of sets.get(closingSet(f, i)) ?? []) out.push({ flow, verdict: 'closing', backend: id });
      }
    }
    return out;
  }

  /** Flows the model believes are forwarded (the kernel may have idled some out). */
  get forwarded(): number {
    return this.#owner.size;
  }

  async close(): Promise<void> {
    await this.#session.close();
    await run('nft', ['delete', 'table', 'netdev', this.#cfg.table]).catch(() => undefined);
  }
}

async function applyScript(script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = execFile('nft', ['-f', '-'], (err, _out, stderr) =>
      err ? reject(new Error(`nft -f: ${stderr.trim() || err.message}`)) : resolve(),
    );
    p.stdin?.end(script);
  });
}
