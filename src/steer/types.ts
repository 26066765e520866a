// Steering: what happens to a client's packets at the front-end's ingress, per flow.
// One interface (DESIGN.md "Steering"); nftables implements it now, eBPF later.

export interface FlowKey {
  readonly family: 4 | 6;
  readonly clientAddress: string;
  readonly clientPort: number;
}

export type FlowVerdict = 'hold' | 'forward' | 'closing';

export interface SteerEntry {
  readonly flow: FlowKey;
  readonly verdict: FlowVerdict;
  /** The back-end the flow is forwarded to (absent while held). */
  readonly backend?: string;
}

export interface SteerBackend {
  readonly id: string;
  /** The back-end's address on the front-end's segment (the L2 next hop for direct routing). */
  readonly address: string;
}

export interface Steering {
  /** Drop the flow's packets at ingress. Resolves once the kernel applies it. */
  hold(flow: FlowKey): Promise<void>;
  /** Send the flow's packets to a back-end in the kernel, then stop holding it. Resolves once applied. */
  forward(flow: FlowKey, backendId: string): Promise<void>;
  /** Stop holding a flow that stays on the front-end (handoff failed, answered locally). */
  unhold(flow: FlowKey): Promise<void>;
  /** The connection ended: keep forwarding for a short linger (late FIN/ACKs), then forget it. */
  release(flow: FlowKey): Promise<void>;
  /** What the kernel holds now. */
  list(): Promise<SteerEntry[]>;
  /** Remove every rule and entry this instance made. */
  close(): Promise<void>;
}

export const flowKeyString = (f: FlowKey): string =>
  f.family === 6 ? `[${f.clientAddress}]:${f.clientPort}` : `${f.clientAddress}:${f.clientPort}`;
