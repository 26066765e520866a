// The map codecs derived from the committed objects' BTF: golden bytes for each layout (so a change in bpf/maps.h
// shows up here), round trips (property-based), and refusals for values the C side cannot hold.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { BtfError } from '../sys/btf.ts';
import { BACKEND_OBJECT, FRONTEND_OBJECT } from './bpf-loader.ts';
import { BpfValueError, backendCodecsOf, frontendCodecsOf, type FlowState } from './bpf-maps.ts';
import type { FlowKey } from './types.ts';

const skip = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0 ? false : 'needs libbpf1';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('flow key and state: golden bytes from the BTF layout', { skip }, () => {
  const c = frontendCodecsOf(FRONTEND_OBJECT);
  assert.equal(c.flowKeySize, 40);
  const k4 = c.encodeFlowKey({ family: 4, clientAddress: '10.1.2.3', clientPort: 40000 }, { address: '10.0.0.100', port: 80 });
  assert.deepEqual(k4, hex(`0a010203 ${'00'.repeat(12)} 0a000064 ${'00'.repeat(12)} 9c40 0050 04 000000`));
  const k6 = c.encodeFlowKey({ family: 6, clientAddress: '2001:db8::7', clientPort: 1 }, { address: '2001:db8::100', port: 443 });
  assert.deepEqual(k6, hex('20010db8000000000000000000000007 20010db8000000000000000000000100 0001 01bb 06 000000'));
  const st: FlowState = { verdict: 'closing', backend: 63, flowId: 0x7fffffff, handoffId: 0x0102030405060708n, lastSeenNs: 9n, deadlineNs: 1n << 63n };
  assert.deepEqual(
    c.encodeFlowState(st),
    hex('03 00 3f00 ffffff7f 0807060504030201 0900000000000000 0000000000000080'),
  );
  assert.deepEqual(c.decodeFlowState(c.encodeFlowState(st)), st);
  assert.deepEqual(c.decodeFlowKey(k6), { flow: { family: 6, clientAddress: '2001:db8::7', clientPort: 1 }, vip: { address: '2001:db8::100', port: 443 } });
});

test('back-end slot and counters: golden bytes', { skip }, () => {
  const c = frontendCodecsOf(FRONTEND_OBJECT);
  const encap = { mode: 'encap', family: 4, ifindex: 7, address: '192.0.2.9', local: '198.51.100.1' } as const;
  assert.deepEqual(c.encodeBackend(encap), hex(`02 04 0000 07000000 c0000209 ${'00'.repeat(12)} c6336401 ${'00'.repeat(12)}`));
  assert.deepEqual(c.decodeBackend(c.encodeBackend(encap)), encap);
  const l2 = { mode: 'l2', family: 6, ifindex: 0, address: 'fe80::1' } as const;
  assert.deepEqual(c.decodeBackend(c.encodeBackend(l2)), l2);
  assert.deepEqual(c.decodeBackend(c.encodeBackend({ mode: 'unused', family: 4, ifindex: 0, address: '0.0.0.0' })).mode, 'unused');
  // two CPUs' worth of struct counter, summed
  const per = hex('0100000000000000 0a00000000000000 0200000000000000 1400000000000000');
  assert.deepEqual(c.decodeCounters(per, 2), { packets: 3n, bytes: 30n });
  assert.deepEqual(c.decodeConfig(c.encodeConfig({ refreshNs: 5n, idleTimeoutNs: 6n })), { refreshNs: 5n, idleTimeoutNs: 6n, lingerNs: 0n });
  assert.deepEqual(c.decodeConfig(c.encodeConfig({ refreshNs: 5n, idleTimeoutNs: 6n, lingerNs: 7n })).lingerNs, 7n);
});

test('decap key and value: golden bytes', { skip }, () => {
  const c = backendCodecsOf(BACKEND_OBJECT);
  const e = { family: 4, frontend: '10.0.0.1', flowId: 0x12345678, client: '10.1.2.3', clientPort: 40000, vip: '10.0.0.100', vipPort: 80, lastSeenNs: 0n } as const;
  const key = c.encodeKey(e);
  assert.deepEqual(key, hex(`0a000001 ${'00'.repeat(12)} 78563412 04 000000`));
  const value = c.encodeValue(e);
  assert.deepEqual(value, hex(`0a010203 ${'00'.repeat(12)} 0a000064 ${'00'.repeat(12)} 9c40 0050 00000000 0000000000000000`));
  assert.deepEqual(c.decode(key, value), e);
});

test('codecs refuse what the maps cannot hold', { skip }, () => {
  const f = frontendCodecsOf(FRONTEND_OBJECT);
  const b = backendCodecsOf(BACKEND_OBJECT);
  const vip = { address: '10.0.0.1', port: 80 };
  assert.throws(() => f.encodeFlowKey({ family: 4, clientAddress: '2001:db8::1', clientPort: 1 }, vip), BpfValueError);
  assert.throws(() => f.encodeFlowKey({ family: 4, clientAddress: '10.0.0.2', clientPort: 65536 }, vip), BpfValueError);
  assert.throws(() => f.encodeBackend({ mode: 'encap', family: 4, ifindex: 0, address: '10.0.0.2' }), BpfValueError);
  assert.throws(() => b.encodeKey({ family: 4, frontend: '10.0.0.1', flowId: 0x80000000 }), BpfValueError);
  assert.throws(() => f.decodeFlowState(Buffer.alloc(32, 9)), BpfValueError);
  // the back-end object does not declare the front-end's structs
  assert.throws(() => frontendCodecsOf(BACKEND_OBJECT), BtfError);
});

const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const ipv6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
const port = fc.integer({ min: 0, max: 0xffff });

test('flow keys round-trip (property)', { skip }, () => {
  const c = frontendCodecsOf(FRONTEND_OBJECT);
  fc.assert(
    fc.property(fc.boolean(), ipv4, ipv4, ipv6, ipv6, port, port, (v6, a4, b4, a6, b6, p, q) => {
      const flow: FlowKey = { family: v6 ? 6 : 4, clientAddress: v6 ? a6 : a4, clientPort: p };
      const vip = { address: v6 ? b6 : b4, port: q };
      const back = c.decodeFlowKey(c.encodeFlowKey(flow, vip));
      // re-encoding the decoded (canonical) text gives the same bytes
      assert.deepEqual(c.encodeFlowKey(back.flow, back.vip), c.encodeFlowKey(flow, vip));
      assert.equal(back.flow.clientPort, p);
      assert.equal(back.vip.port, q);
    }),
  );
});
