// The receiver's refusals of a forwarded handoff, without root (they come before any inject): the client may already
// have packets parked here, and they must be dropped, never left to expire into a reset while another back-end
// serves the client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBlob } from '../wire/blob.ts';
import type { TcpState } from '../wire/tcp-state.ts';
import { HandoffReceiver } from './receiver.ts';

const STATE: TcpState = {
  family: 4, client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 },
  sendSeq: 1, recvSeq: 2, window: { sndWl1: 2, sndWnd: 65535, maxWindow: 65535, rcvWnd: 64240, rcvWup: 2 },
  mss: 1460, sndWscale: 7, rcvWscale: 7, sackPermitted: true, timestamps: true, finReceived: false, tsVal: 9,
  sendQueue: new Uint8Array(0), recvQueue: new Uint8Array([71, 69, 84]),
};

function rig(o: { maxConnections?: number; encap?: boolean }) {
  const calls: string[] = [];
  const park = {
    lossless: true,
    begin: () => calls.push('begin'),
    release: () => (calls.push('release'), 0),
    discard: (f: { client: { port: number } }) => calls.push(`discard ${f.client.port}`),
  };
  const r = new HandoffReceiver({ deliver: () => undefined, park, ...(o.maxConnections !== undefined && { maxConnections: o.maxConnections }) });
  const blob = encodeBlob({ handoffId: 1n, flowId: 7, state: STATE, ...(o.encap === true && { encap: { frontend: '192.0.2.1' } }) });
  return { r, calls, blob };
}

test('a forwarded handoff refused at capacity discards the tuple (its parked packets, and later ones)', () => {
  const { r, calls, blob } = rig({ maxConnections: 0 });
  const reply = r.prepare('fe|1', blob, { forwarded: true });
  assert.equal(reply.ok, false);
  assert.equal(reply.ok === false && reply.code, 'BATON_ERR_FULL');
  assert.deepEqual(calls, ['discard 51234']);
});

test('a forwarded handoff refused for want of a dataplane discards the tuple', () => {
  const { r, calls, blob } = rig({ encap: true });
  const reply = r.prepare('fe|1', blob, { forwarded: true });
  assert.equal(reply.ok === false && reply.code, 'BATON_ERR_NO_DATAPLANE');
  assert.deepEqual(calls, ['discard 51234']);
});

test('a classic handoff refused touches no parking (the front-end held the client)', () => {
  const { r, calls, blob } = rig({ maxConnections: 0 });
  assert.equal(r.prepare('fe|1', blob).ok, false);
  assert.deepEqual(calls, []);
});
