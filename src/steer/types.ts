// Steering: what happens to a client's packets at the front-end's ingress, per flow.
// One interface (DESIGN.md "Steering"), two implementations: eBPF (steer/bpf.ts, the default)
// and nftables (steer/nft.ts, the fallback for hosts where BPF cannot be loaded).

export interface FlowKey {
  readonly family: 4 | 6;
  readonly clientAddress: string;
  readonly clientPort: number;
}

export type FlowVerdict = 'hold' | 'forward' | 'closing';

/** How packets of a forwarded flow reach a back-end. */
export type ForwardMode =
  /** L2 direct routing (LVS-DR): IP header untouched, sent to the back-end's MAC on a shared segment. */
  | 'l2'
  /**
   * The seeds' flow-identifier encapsulation: destination becomes the back-end's address, source the
   * front-end's, the 32-bit flow id is written into the TCP source (high 16 bits) and destination (low
   * 16 bits) ports; routed across L3, zero bytes added. The back-end's decap program restores the rest.
   */
  | 'encap';

/** Which connection a steering entry belongs to: several connections may use one tuple over time. */
export interface FlowIds {
  /** The handoff that placed the flow (u64); a later release names it, so it never touches a newer connection. */
  readonly handoffId: bigint;
  /** The flow identifier carried in the blob and, in `encap` mode, in the TCP ports (1 .. 2^31-1). */
  readonly flowId: number;
}

export interface SteerEntry {
  readonly flow: FlowKey;
  readonly verdict: FlowVerdict;
  /** The back-end the flow is forwarded to (absent while held). */
  readonly backend?: string;
  /** The handoff that placed the flow, when the implementation keeps it. */
  readonly handoffId?: bigint;
  /** The flow id, when the implementation keeps it. */
  readonly flowId?: number;
  /** Milliseconds since the last client packet of this flow, when the implementation keeps it. */
  readonly idleMs?: number;
}

export interface SteerBackend {
  readonly id: string;
  /** The back-end's address: the L2 next hop (`l2`) or the encapsulation destination (`encap`). */
  readonly address: string;
  /** Default `l2`. */
  readonly mode?: ForwardMode;
}

/** Per back-end data-path counters (packets and bytes steered to it), when the implementation keeps them. */
export interface SteerCounters {
  readonly packets: bigint;
  readonly bytes: bigint;
}

/** A flow seen at ingress with no steering entry and no local connection: another front-end handed it off
 * (several front-ends behind ECMP, issue 11). Its packets are dropped until its owner is found. */
export interface OrphanFlow {
  readonly flow: FlowKey;
  /** Data-path clock (see OrphanSource.nowNs) of the first dropped packet. */
  readonly firstSeenNs: bigint;
  /** Packets dropped so far. */
  readonly packets: number;
  /** Passed up to the stack (nobody holds it). */
  readonly pass?: boolean;
}

/** Orphans recorded by the data path (bpf steering with orphan capture on). */
export interface OrphanSource {
  list(): OrphanFlow[];
  get(flow: FlowKey): OrphanFlow | undefined;
  /** Deletes the record (its owner was found, or it is given up). */
  forget(flow: FlowKey): void;
  /** No back-end holds the flow: let its packets up to the stack, which resets the client (no-op without a record). */
  pass(flow: FlowKey): void;
  nowNs(): bigint;
}

export interface Steering {
  /** Orphan capture, when the implementation has it and it is on. */
  readonly orphans?: OrphanSource;
  /** Drop the flow's packets at ingress. Resolves once the kernel applies it. */
  hold(flow: FlowKey): Promise<void>;
  /** Send the flow's packets to a back-end in the kernel, then stop holding it. Resolves once applied. */
  forward(flow: FlowKey, backendId: string, ids: FlowIds): Promise<void>;
  /** Stop holding a flow that stays on the front-end (handoff failed, answered locally). */
  unhold(flow: FlowKey): Promise<void>;
  /**
   * The connection placed by `handoffId` ended: keep forwarding for a short linger (late FIN/ACKs), then
   * forget it. A release naming an older handoff than the tuple's current one does nothing.
   */
  release(flow: FlowKey, handoffId: bigint): Promise<void>;
  /** A back-end is gone (its channel was declared lost): release every flow steered to it. Returns how many. */
  releaseBackend(backendId: string): Promise<number>;
  /**
   * A back-end added while running (configuration reload); flows already steered are untouched.
   * Absent when the implementation cannot (then adding a back-end needs a restart).
   */
  addBackend?(b: SteerBackend): Promise<void>;
  /** What the kernel holds now. */
  list(): Promise<SteerEntry[]>;
  /** Data-path counters per back-end id (empty when the implementation has none). */
  counters(): Promise<ReadonlyMap<string, SteerCounters>>;
  /**
   * Stop steering from this process. `keep: true` leaves the kernel state in place (pinned maps, attached
   * program) so handed-off connections keep flowing until a new process adopts it; otherwise remove every
   * rule and entry this instance made.
   */
  close(opts?: { readonly keep?: boolean }): Promise<void>;
}

export const flowKeyString = (f: FlowKey): string =>
  f.family === 6 ? `[${f.clientAddress}]:${f.clientPort}` : `${f.clientAddress}:${f.clientPort}`;

/** Flow ids stay below 2^31 so the encapsulated source port (high 16 bits) is below 32768, the start of
 * Linux's ephemeral range: an encapsulated packet can never be taken for one of the front-end's own
 * connections to the back-end (its control channel), whose source ports are ephemeral. */
export const FLOW_ID_MAX = 0x7fffffff;
