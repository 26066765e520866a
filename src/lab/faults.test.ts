// The fault scripts as text and the drop counters read back (pure).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULT_TABLE, faultScript, NO_FAULT, parseFaultDrops, validLossPercent } from './faults.ts';

test('no fault: the script only deletes the table (declared first so the delete cannot fail)', () => {
  assert.equal(faultScript('eth0', NO_FAULT), `table netdev ${FAULT_TABLE}\ndelete table netdev ${FAULT_TABLE}\n`);
  assert.equal(faultScript('eth0', { ...NO_FAULT, lossPercent: 0, lossDirection: 'in' }), faultScript('eth0', NO_FAULT));
});

test('loss: numgen in ten-thousandths, at ingress, egress or both', () => {
  const both = faultScript('eth0', { lossPercent: 5, lossDirection: 'both', blackhole: false });
  assert.match(both, /chain fault_in \{\n {4}type filter hook ingress device "eth0" priority -500; policy accept;\n {4}numgen random mod 10000 < 500 counter drop\n {2}\}/);
  assert.match(both, /chain fault_out \{\n {4}type filter hook egress device "eth0" priority -500; policy accept;\n {4}numgen random mod 10000 < 500 counter drop\n {2}\}/);
  const inOnly = faultScript('eth0', { lossPercent: 0.25, lossDirection: 'in', blackhole: false });
  assert.equal(inOnly.match(/numgen random mod 10000 < 25 counter drop/g)?.length, 1);
  assert.match(inOnly, /hook ingress[^\n]*\n {4}numgen/);
  const all = faultScript('eth0', { lossPercent: 100, lossDirection: 'out', blackhole: false });
  assert.match(all, /hook egress[^\n]*\n {4}counter drop\n/);
  assert.doesNotMatch(all, /numgen/);
});

test('blackhole drops everything both ways, whatever the loss settings', () => {
  const s = faultScript('veth1', { lossPercent: 3, lossDirection: 'in', blackhole: true });
  assert.equal(s.match(/^ {4}counter drop$/gm)?.length, 2);
  assert.doesNotMatch(s, /numgen/);
});

test('loss percentages outside 0..100 are refused', () => {
  for (const p of [0, 0.01, 50, 100]) assert.ok(validLossPercent(p), String(p));
  for (const p of [-1, 100.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.ok(!validLossPercent(p), String(p));
});

test('parseFaultDrops sums the counters of each direction', () => {
  assert.deepEqual(parseFaultDrops(''), { in: 0, out: 0 });
  const doc = {
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'netdev', name: FAULT_TABLE } },
      { chain: { family: 'netdev', table: FAULT_TABLE, name: 'fault_in' } },
      { rule: { chain: 'fault_in', expr: [{ match: {} }, { counter: { packets: 7, bytes: 700 } }, { drop: null }] } },
      { rule: { chain: 'fault_out', expr: [{ counter: { packets: 3, bytes: 300 } }, { drop: null }] } },
    ],
  };
  assert.deepEqual(parseFaultDrops(JSON.stringify(doc)), { in: 7, out: 3 });
});
