// Pure parts of inject: where the refilled receive queue starts, and the window restored for a
// half-closed client (CRIU's rule: rcv_wup may not be past rcv_nxt before the FIN is re-created).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TcpState } from '../wire/tcp-state.ts';
import { recvQueueStart, windowToRestore } from './inject.ts';

const BASE: TcpState = {
  family: 4,
  client: { address: '10.0.0.2', port: 1 },
  vip: { address: '10.0.0.1', port: 80 },
  sendSeq: 1000,
  recvSeq: 5000,
  window: { sndWl1: 4000, sndWnd: 65535, maxWindow: 65535, rcvWnd: 64000, rcvWup: 5000 },
  mss: 1460,
  sndWscale: 7,
  rcvWscale: 7,
  sackPermitted: true,
  timestamps: true,
  finReceived: false,
  tsVal: 0,
  recvQueue: new Uint8Array(100),
  sendQueue: new Uint8Array(0),
};

describe('inject arithmetic', () => {
  it('the receive queue starts recvQueue.length before recvSeq, one more when the FIN is counted', () => {
    assert.equal(recvQueueStart(BASE), 4900);
    assert.equal(recvQueueStart({ ...BASE, finReceived: true }), 4899);
    assert.equal(recvQueueStart({ ...BASE, recvSeq: 50, finReceived: true }), 0xffffffff - 50);
  });

  it('restores the window unchanged for an open connection', () => {
    assert.deepEqual(windowToRestore(BASE), BASE.window);
  });

  it('moves rcv_wup back to the last data byte and widens rcv_wnd by as much when the FIN was acknowledged', () => {
    const w = windowToRestore({ ...BASE, finReceived: true });
    assert.equal(w.rcvWup, 4999);
    assert.equal(w.rcvWnd, 64001);
    // Right edge of the window (rcv_wup + rcv_wnd) unchanged.
    assert.equal(w.rcvWup + w.rcvWnd, BASE.window.rcvWup + BASE.window.rcvWnd);
    // An rcv_wup already at or before the data's end stays.
    const early = { ...BASE, finReceived: true, window: { ...BASE.window, rcvWup: 4900 } };
    assert.deepEqual(windowToRestore(early), early.window);
  });

  it('works across sequence wrap-around', () => {
    const s = { ...BASE, finReceived: true, recvSeq: 0, window: { ...BASE.window, rcvWup: 0 } };
    const w = windowToRestore(s);
    assert.equal(w.rcvWup, 0xffffffff);
    assert.equal(w.rcvWnd, 64001);
  });
});
