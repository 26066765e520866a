// Fakes for the handoff machine's ports (tests only): steering that keeps the model a kernel
// projection would, channels answering from a script, a client connection that records what was
// done to it, and a log that keeps its lines.
import type { FlowIds, FlowKey, SteerCounters, SteerEntry, Steering } from '../steer/types.ts';
import { flowKeyString } from '../steer/types.ts';
import type { HandoffAck, HandoffChannel } from './channel.ts';
import type { ClientConnection, HandoffLog } from './handoff.ts';

export class FakeSteering implements Steering {
  readonly calls: string[] = [];
  readonly held = new Set<string>();
  /** tuple -> the forward in force. */
  readonly forwarded = new Map<string, { backend: string; handoffId: bigint }>();
  failHold = false;
  failForward = false;
  /** Runs inside hold(), before it resolves (to let the client vanish meanwhile). */
  duringHold: (() => Promise<void>) | undefined;

  async hold(flow: FlowKey): Promise<void> {
    this.calls.push(`hold ${flowKeyString(flow)}`);
    await this.duringHold?.();
    if (this.failHold) throw new Error('hold: EPERM');
    // One entry per tuple, as in the kernel: a hold replaces a forward.
    this.forwarded.delete(flowKeyString(flow));
    this.held.add(flowKeyString(flow));
  }
  async forward(flow: FlowKey, backendId: string, ids: FlowIds): Promise<void> {
    this.calls.push(`forward ${flowKeyString(flow)} ${backendId} #${ids.handoffId}`);
    if (this.failForward) throw new Error('forward: ENOBUFS');
    const k = flowKeyString(flow);
    this.held.delete(k);
    this.forwarded.set(k, { backend: backendId, handoffId: ids.handoffId });
  }
  async unhold(flow: FlowKey): Promise<void> {
    this.calls.push(`unhold ${flowKeyString(flow)}`);
    this.held.delete(flowKeyString(flow));
  }
  async release(flow: FlowKey, handoffId: bigint): Promise<void> {
    this.calls.push(`release ${flowKeyString(flow)} #${handoffId}`);
    const k = flowKeyString(flow);
    // The Steering contract: a release naming an older handoff than the current one does nothing.
    if (this.forwarded.get(k)?.handoffId === handoffId) this.forwarded.delete(k);
  }
  async releaseBackend(backendId: string): Promise<number> {
    this.calls.push(`releaseBackend ${backendId}`);
    let n = 0;
    for (const [k, f] of this.forwarded) {
      if (f.backend !== backendId) continue;
      this.forwarded.delete(k);
      n++;
    }
    return n;
  }
  async list(): Promise<SteerEntry[]> {
    return [];
  }
  async counters(): Promise<ReadonlyMap<string, SteerCounters>> {
    return new Map();
  }
  async close(): Promise<void> {}
}

export type Script = (handoffId: bigint, blob: Uint8Array) => HandoffAck | Promise<HandoffAck>;

export class FakeChannel implements HandoffChannel {
  state: HandoffChannel['state'] = 'up';
  readonly sent: Array<{ id: bigint; blob: Uint8Array; forwarded: boolean }> = [];
  /** The agent guards our VIPs (GUARD): handoffs to it may be forwarded first. */
  forwardFirst = false;
  readonly commits: bigint[] = [];
  readonly aborts: bigint[] = [];
  script: Script;
  /** Whether commit() finds the channel up (false: lost between the ACK and the COMMIT). */
  commitOk = true;

  constructor(script: Script = () => ({ ok: true })) {
    this.script = script;
  }
  async sendHandoff(id: bigint, blob: Uint8Array, forwarded = false): Promise<HandoffAck> {
    this.sent.push({ id, blob, forwarded });
    return this.script(id, blob);
  }
  commit(id: bigint): boolean {
    if (!this.commitOk) return false;
    this.commits.push(id);
    return true;
  }
  abort(id: bigint): boolean {
    this.aborts.push(id);
    return true;
  }
}

export class FakeConnection implements ClientConnection {
  readonly fd = 42;
  readonly vip = { address: '192.0.2.1', port: 80 };
  readonly consumed = new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  readonly headAt = 0n;
  readonly did: string[] = [];
  readonly flow: FlowKey;
  failRepairOff = false;
  open = true;

  constructor(clientPort = 40000, clientAddress = '198.51.100.7') {
    this.flow = { family: 4, clientAddress, clientPort };
  }
  isOpen(): boolean {
    return this.open;
  }
  repairOff(): void {
    this.did.push('repairOff');
    if (this.failRepairOff) throw new Error('repair off: EBADF');
  }
  closeSilently(): void {
    this.did.push('closeSilently');
  }
  answer(status: number): void {
    this.did.push(`answer ${status}`);
  }
  discard(): void {
    this.did.push('discard');
  }
}

export class MemoryLog implements HandoffLog {
  readonly lines: Array<{ level: 'warn' | 'error'; msg: string; obj: object }> = [];
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', msg, obj });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', msg, obj });
  }
}
