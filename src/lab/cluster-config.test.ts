// The configs the cluster lab writes for its daemons (no root: a Lab built from a plan, nothing brought up).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentConfig } from './cluster.ts';
import type { Lab } from './lab.ts';
import { planLab, type LabPlan } from './topology.ts';

/** What the config writers read of a lab, from a plan (nothing brought up). */
const labOf = (p: LabPlan): Lab =>
  ({ id: p.id, vip: p.vip, vip6: p.vip6, frontend: p.frontends[0], frontends: p.frontends, backends: p.backends, routed: p.routed }) as unknown as Lab;

const dataplaneOf = (c: Record<string, unknown>): Record<string, unknown> => c['dataplane'] as Record<string, unknown>;

test('an encapsulating IPv6 lab names the front-ends\' IPv6 addresses as encapsulation sources; other labs none', () => {
  const routed = labOf(planLab({ id: 'bt0002', backends: 2, routed: true, ipv6: true, frontends: 2 }));
  const b1 = routed.backends[0]!;
  const v6 = dataplaneOf(agentConfig(routed, b1, { secret: 's', family: 6, forwarding: 'encap' }));
  assert.deepEqual(v6['encapSources'], routed.frontends.map((f) => f.address6));
  assert.equal(v6['encapSources'] !== undefined && (v6['encapSources'] as string[]).length, 2);
  // IPv4 encapsulation comes from the control channel's own address, which the agent learns from its peers.
  assert.equal(dataplaneOf(agentConfig(routed, b1, { secret: 's', family: 4, forwarding: 'encap' }))['encapSources'], undefined);
  assert.equal(dataplaneOf(agentConfig(routed, b1, { secret: 's', family: 6, forwarding: 'l2' }))['encapSources'], undefined);
});
