// The lab plans as tables: addresses, segments, gateways and the options planLab refuses. Pure, no root.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onSegment, planLab, planNamespaces } from './topology.ts';

const addrs = (hs: readonly { name: string; address: string; address6?: string; gateway?: string }[]): string[][] =>
  hs.map((h) => [h.name, h.address, h.address6 ?? '-', h.gateway ?? '-']);

test('the default plan is the L2 lab of before: one segment, no router, no IPv6', () => {
  const p = planLab({ id: 'bt0001', backends: 2 });
  assert.equal(p.hubNetns, 'bt0001-sw');
  assert.equal(p.router, undefined);
  assert.equal(p.routed, false);
  assert.equal(p.bgp, false);
  assert.equal(p.vip, '10.77.0.100');
  assert.equal(p.vip6, undefined);
  assert.deepEqual(addrs([p.client, ...p.frontends, ...p.backends]), [
    ['c', '10.77.0.2', '-', '-'],
    ['fe', '10.77.0.10', '-', '-'],
    ['b1', '10.77.0.11', '-', '-'],
    ['b2', '10.77.0.12', '-', '-'],
  ]);
  assert.deepEqual(p.frontends.map((h) => h.mac), ['02:00:0a:4d:00:0a']);
  assert.deepEqual(p.segments.map((s) => [s.name, s.bridge, s.hosts.length]), [['lan', 'br0', 4]]);
  assert.deepEqual(planNamespaces(p), ['bt0001-c', 'bt0001-fe', 'bt0001-b1', 'bt0001-b2', 'bt0001-sw']);
});

test('ipv6 adds fd77::/64 addresses mirroring the IPv4 octets and an IPv6 VIP', () => {
  const p = planLab({ id: 'bt0001', backends: 1, ipv6: true });
  assert.equal(p.vip6, 'fd77::100');
  assert.deepEqual(addrs([p.client, ...p.frontends, ...p.backends]), [
    ['c', '10.77.0.2', 'fd77::2', '-'],
    ['fe', '10.77.0.10', 'fd77::10', '-'],
    ['b1', '10.77.0.11', 'fd77::11', '-'],
  ]);
  const lan = p.segments[0]!;
  assert.ok(onSegment(lan, 'fd77::100'));
  assert.ok(!onSegment(lan, 'fd77:1::100'));
  assert.ok(onSegment(lan, '10.77.0.100'));
  assert.ok(!onSegment(lan, '10.77.1.100'));
});

test('routed: client, front-end and back-ends in three subnets, each host routed through the router', () => {
  const p = planLab({ id: 'bt0001', backends: 2, routed: true, ipv6: true });
  assert.equal(p.hubNetns, 'bt0001-rt');
  assert.equal(p.routed, true);
  assert.equal(p.bgp, false);
  assert.deepEqual(addrs([p.client, ...p.frontends, ...p.backends]), [
    ['c', '10.77.1.2', 'fd77:1::2', '10.77.1.1'],
    ['fe', '10.77.2.10', 'fd77:2::10', '10.77.2.1'],
    ['b1', '10.77.3.11', 'fd77:3::11', '10.77.3.1'],
    ['b2', '10.77.3.12', 'fd77:3::12', '10.77.3.1'],
  ]);
  assert.deepEqual(p.router?.addresses, { client: '10.77.1.1', frontend: '10.77.2.1', backend: '10.77.3.1' });
  assert.deepEqual(p.router?.addresses6, { client: 'fd77:1::1', frontend: 'fd77:2::1', backend: 'fd77:3::1' });
  assert.deepEqual(p.segments.map((s) => [s.bridge, s.hosts.map((h) => h.name)]), [
    ['br1', ['c']], ['br2', ['fe']], ['br3', ['b1', 'b2']],
  ]);
  // No two hosts share a MAC, even across segments.
  const macs = [p.client, ...p.frontends, ...p.backends].map((h) => h.mac);
  assert.equal(new Set(macs).size, macs.length);
});

test('frontends: N front-ends behind a BGP router; back-ends share their segment unless routed', () => {
  const p = planLab({ id: 'bt0001', backends: 2, frontends: 3 });
  assert.equal(p.bgp, true);
  assert.equal(p.routed, false);
  assert.deepEqual(addrs([...p.frontends, ...p.backends]), [
    ['fe', '10.77.2.10', '-', '10.77.2.1'],
    ['fe2', '10.77.2.11', '-', '10.77.2.1'],
    ['fe3', '10.77.2.12', '-', '10.77.2.1'],
    ['b1', '10.77.2.20', '-', '10.77.2.1'],
    ['b2', '10.77.2.21', '-', '10.77.2.1'],
  ]);
  assert.deepEqual(p.segments.map((s) => [s.bridge, s.hosts.length]), [['br1', 1], ['br2', 5]]);

  const r = planLab({ id: 'bt0001', backends: 1, frontends: 2, routed: true });
  assert.deepEqual(r.segments.map((s) => [s.bridge, s.hosts.map((h) => h.name)]), [
    ['br1', ['c']], ['br2', ['fe', 'fe2']], ['br3', ['b1']],
  ]);
});

test('planLab refuses bad options', () => {
  const bad: [object, RegExp][] = [
    [{ backends: 0 }, /backends must be/],
    [{ backends: 51 }, /backends must be/],
    [{ backends: 1, frontends: 0 }, /frontends must be/],
    [{ backends: 1, frontends: 9 }, /frontends must be/],
    [{ backends: 1, vip: '10.77.0.300' }, /invalid vip/],
    [{ backends: 1, vip: '10.77.0.11' }, /collides/],
    [{ backends: 1, routed: true, vip: '10.77.3.1' }, /collides/],
    [{ backends: 1, vip6: 'fd77::11' }, /collides/],
    [{ backends: 1, vip6: 'not:an:address:x' }, /invalid vip6/],
    [{ backends: 1, bgp: true }, /needs a router/],
    [{ backends: 1, id: 'Bad' }, /invalid lab id/],
    [{ backends: 10, id: 'abcdefghijklm' }, /invalid lab id/],
  ];
  for (const [o, re] of bad) assert.throws(() => planLab({ id: 'bt0001', ...o } as never), re, JSON.stringify(o));
  // The longest hub-side veth name is exactly 15 characters here.
  assert.doesNotThrow(() => planLab({ id: 'abcdefghijkl', backends: 10 }));
});
