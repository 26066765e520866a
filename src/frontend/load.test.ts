// Load accounting converges (issue 10.3): a model of one agent and its channel, driven by random
// mixes of handoffs, refusals, aborts, commit expiries, connection closes, channel losses and agent
// restarts, with frames in transit both ways. Whatever happened, once the traffic stops and one
// report arrives, the front-end's estimate equals what the agent holds, and 0 once all closed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BackendTable } from './backends.ts';
import { LoadLedger } from './load.ts';

type Op =
  | { kind: 'handoff'; accept: boolean; commit: boolean }
  | { kind: 'deliver-to-agent' }
  | { kind: 'deliver-to-frontend' }
  | { kind: 'expire' }
  | { kind: 'close' }
  | { kind: 'report' }
  | { kind: 'channel-lost' }
  | { kind: 'agent-restart' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('handoff' as const), accept: fc.boolean(), commit: fc.boolean() }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'deliver-to-agent' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'deliver-to-frontend' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'report' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'channel-lost' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'agent-restart' as const }) },
);

/** The agent side as control/server.ts and backend/receiver.ts behave. */
class AgentModel {
  active = 0;
  /** COMMIT frames received on the current session (any id). */
  commits = 0;
  readonly prepared = new Set<number>();
  lastSent: [number, number] | undefined;
  /** The server sends a LOAD when active or commits changed since its last one (coalesced: latest values). */
  load(): [number, number] | undefined {
    const now: [number, number] = [this.active, this.commits];
    if (this.lastSent !== undefined && this.lastSent[0] === now[0] && this.lastSent[1] === now[1]) return undefined;
    this.lastSent = now;
    return now;
  }
}

function simulate(ops: readonly Op[]): { table: BackendTable; agent: AgentModel; settle: () => void } {
  const table = new BackendTable([{ id: 'b', weight: 1 }], () => 'up');
  const agent = new AgentModel();
  let toAgent: Array<{ commit: number }> = [];
  let toFrontend: Array<[number, number]> = [];
  let nextId = 1;
  const newSession = (): void => {
    toAgent = [];
    toFrontend = [];
    agent.prepared.clear(); // the agent aborts what the lost peer had prepared
    agent.commits = 0;
    agent.lastSent = undefined;
    table.onSession('b');
    // The first LOAD of the new session follows AUTH_OK.
    const l = agent.load();
    if (l) toFrontend.push(l);
  };
  const deliverToAgent = (): void => {
    const f = toAgent.shift();
    if (f === undefined) return;
    agent.commits++;
    if (agent.prepared.delete(f.commit)) agent.active++;
    const l = agent.load();
    if (l) toFrontend.push(l);
  };
  const deliverToFrontend = (): void => {
    const l = toFrontend.shift();
    if (l) table.onLoad('b', l[0], l[1]);
  };
  for (const o of ops) {
    switch (o.kind) {
      case 'handoff': {
        const id = nextId++;
        table.handoffSent('b');
        // The agent answers at once here; ACKs travel on the same ordered channel, but nothing in
        // the accounting depends on when they arrive relative to LOADs.
        if (o.accept) agent.prepared.add(id);
        table.handoffAnswered('b');
        if (!o.accept) {
          table.failed('b');
          break;
        }
        if (o.commit) {
          toAgent.push({ commit: id });
          table.committed('b');
        } else agent.prepared.delete(id); // forward failed: ABORT
        break;
      }
      case 'deliver-to-agent':
        deliverToAgent();
        break;
      case 'deliver-to-frontend':
        deliverToFrontend();
        break;
      case 'expire': {
        const first = agent.prepared.values().next();
        if (first.done !== true) agent.prepared.delete(first.value); // commit timeout: dropped
        break;
      }
      case 'close':
        if (agent.active > 0) {
          agent.active--;
          const l = agent.load();
          if (l) toFrontend.push(l);
        }
        break;
      case 'report': {
        const l = agent.load();
        if (l) toFrontend.push(l);
        break;
      }
      case 'channel-lost':
        newSession();
        break;
      case 'agent-restart':
        agent.active = 0;
        newSession();
        break;
    }
  }
  const settle = (): void => {
    while (toAgent.length > 0) deliverToAgent();
    while (toFrontend.length > 0) deliverToFrontend();
  };
  return { table, agent, settle };
}

const estimate = (t: BackendTable): number => t.list()[0]!.active;

test('property: after the traffic stops and the reports arrive, the estimate equals what the agent holds', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const { table, agent, settle } = simulate(ops);
      settle();
      assert.equal(estimate(table), agent.active);
    }),
    { numRuns: 2000 },
  );
});

test('property: once every connection closed and one report arrived, the estimate is 0', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const drain = Array.from({ length: 300 }, () => ({ kind: 'deliver-to-agent' as const }));
      const closes = Array.from({ length: 300 }, () => ({ kind: 'close' as const }));
      const { table, agent, settle } = simulate([...ops, ...drain, ...closes]);
      settle();
      assert.equal(agent.active, 0);
      assert.equal(estimate(table), 0);
    }),
    { numRuns: 1000 },
  );
});

test('the drift the old scheme had: a connection opened and closed between two reports', () => {
  const { table, agent, settle } = simulate([
    { kind: 'report' },
    { kind: 'deliver-to-frontend' },
    { kind: 'handoff', accept: true, commit: true },
    // The agent applies the commit and the connection closes before its LOAD goes out: the
    // coalesced LOAD carries active 0 again, which the old agent skipped as unchanged.
    { kind: 'deliver-to-agent' },
    { kind: 'close' },
  ]);
  settle();
  assert.equal(agent.active, 0);
  assert.equal(estimate(table), 0);
});

test('a commit in transit counts until a report includes it', () => {
  const l = new LoadLedger();
  l.report(5, 0);
  l.commitSent();
  l.commitSent();
  assert.equal(l.active, 7);
  l.report(6, 1); // includes one of the two
  assert.equal(l.active, 7);
  l.report(4, 2); // both included; connections closed meanwhile
  assert.equal(l.active, 4);
});

test('a new session forgets the old one: commits lost with the channel do not count', () => {
  const l = new LoadLedger();
  l.report(2, 0);
  l.commitSent(); // written, then the channel dropped before the agent read it
  assert.equal(l.active, 3);
  l.newSession();
  assert.equal(l.active, 0);
  l.report(2, 0); // the first LOAD of the new session
  assert.equal(l.active, 2);
});
