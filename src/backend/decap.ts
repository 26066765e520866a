// The back-end half of flow-identifier encapsulation (DESIGN.md "Steering", the seeds' claims 87/90): the
// mapping a handoff blob carries — (front-end address, flow id) -> (client address and port, VIP and port) —
// is written into the decap program's map *before* the connection is injected, so the first encapsulated
// packet already finds its socket; it is removed when the connection ends or the handoff is abandoned.
import type { BackendMaps, DecapEntry } from '../steer/bpf-maps.ts';
import { loadBackendDataplane, type BackendDataplane } from '../steer/bpf-loader.ts';

export interface DecapMapping {
  readonly frontend: string;
  readonly flowId: number;
  readonly family: 4 | 6;
  readonly client: { readonly address: string; readonly port: number };
  readonly vip: { readonly address: string; readonly port: number };
}

/** Where mappings go. The agent admits a mapping before inject and calls the returned function to remove it. */
export interface DecapGate {
  admit(m: DecapMapping): () => void;
  /** Mappings installed now. */
  readonly size: number;
  close(opts?: { readonly keep?: boolean }): void;
}

export interface DecapOptions {
  /** The interface encapsulated packets arrive on. */
  readonly interface: string;
  /** bpffs directory for the pinned map and link. */
  readonly pinDir: string;
  /** Keep mappings of connections that outlived an earlier agent process (default true). */
  readonly adopt?: boolean;
}

export class BpfDecapGate implements DecapGate {
  readonly #dp: BackendDataplane;
  readonly #maps: BackendMaps;

  private constructor(dp: BackendDataplane) {
    this.#dp = dp;
    this.#maps = dp.maps;
  }

  static open(o: DecapOptions): BpfDecapGate {
    return new BpfDecapGate(loadBackendDataplane({ ifname: o.interface, pinDir: o.pinDir, adopt: o.adopt ?? true }));
  }

  /** A gate over a data plane loaded already (shared with the park gate); closing the gate closes it. */
  static of(dp: BackendDataplane): BpfDecapGate {
    return new BpfDecapGate(dp);
  }

  admit(m: DecapMapping): () => void {
    const e: DecapEntry = {
      family: m.family, frontend: m.frontend, flowId: m.flowId,
      client: m.client.address, clientPort: m.client.port, vip: m.vip.address, vipPort: m.vip.port,
    };
    this.#maps.putDecap(e);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      // Only if it is still ours: a newer handoff may have reused the flow id after a front-end restart.
      const cur = this.#maps.getDecap(e);
      if (cur && cur.client === e.client && cur.clientPort === e.clientPort) this.#maps.deleteDecap(e);
    };
  }

  get size(): number {
    let n = 0;
    for (const _ of this.#maps.iterateDecap()) n++;
    return n;
  }

  close(opts?: { readonly keep?: boolean }): void {
    this.#dp.close(opts);
  }
}
