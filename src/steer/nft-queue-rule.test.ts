// The queue rule's netlink batch (pure): framing, both families, and the expressions in order with the mark and
// mask in host order and the NFQUEUE v3 target's queue number, without bypass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NlWriter } from '../sys/netlink.ts';
import { encodeQueueRuleBatch, queueTablesScript } from './nft-queue-rule.ts';
import { NftError } from './nft-session.ts';

test('batch: BEGIN, one NEWRULE per family (ip, ip6), END; acks asked for the rules only', () => {
  const w = new NlWriter();
  encodeQueueRuleBatch(w, { table: 'baton_park_1', queue: 2983, mark: 0x0ba70000, mask: 0xffff0000 }, 100);
  const b = Buffer.from(w.bytes);
  const msgs: { type: number; flags: number; seq: number; family: number; body: Buffer }[] = [];
  for (let off = 0; off < b.length; ) {
    const len = b.readUInt32LE(off);
    msgs.push({ type: b.readUInt16LE(off + 4), flags: b.readUInt16LE(off + 6), seq: b.readUInt32LE(off + 8), family: b[off + 16]!, body: b.subarray(off + 20, off + len) });
    off += (len + 3) & ~3;
  }
  assert.deepEqual(msgs.map((m) => [m.type.toString(16), m.flags.toString(16), m.seq, m.family]), [
    ['10', '1', 100, 0],
    ['a06', 'c05', 101, 2],
    ['a06', 'c05', 102, 10],
    ['11', '1', 103, 0],
  ]);
  const rule = msgs[1]!.body;
  const hex = rule.toString('hex');
  assert.ok(hex.startsWith(`1100` + '0100' + Buffer.from('baton_park_1\0').toString('hex')), 'table name');
  // expression names in order
  const names = ['meta', 'bitwise', 'cmp', 'target'].map((n) => hex.indexOf(Buffer.from(`${n}\0`).toString('hex')));
  assert.ok(names.every((i, k) => i > 0 && (k === 0 || i > names[k - 1]!)), `expressions in order: ${names}`);
  assert.ok(hex.includes('0000ffff'), 'mask in host order'); // 0xffff0000 little-endian
  assert.ok(hex.includes('0000a70b'), 'mark in host order');
  assert.ok(hex.includes(Buffer.from('NFQUEUE\0').toString('hex')), 'NFQUEUE target');
  assert.ok(hex.endsWith('0c000300' + 'a70b' + '0100' + '0000' + '0000'), 'xt_NFQ_info_v3: queue 2983, 1 queue, no flags (no bypass)');
  assert.equal(msgs[2]!.body.toString('hex'), hex, 'the same rule for ip6');
});

test('tables script: ip and ip6, recreated empty, prerouting at priority raw', () => {
  const s = queueTablesScript('t');
  assert.match(s, /table ip t\ndelete table ip t\ntable ip t \{\n  chain prerouting \{\n    type filter hook prerouting priority raw; policy accept;/);
  assert.match(s, /table ip6 t \{/);
});

test('a queue number out of range is refused', () => {
  assert.throws(() => encodeQueueRuleBatch(new NlWriter(), { table: 't', queue: 70000, mark: 1, mask: 1 }, 1), NftError);
});
