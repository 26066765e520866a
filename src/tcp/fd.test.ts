// OwnedFd: exactly one owner per descriptor. Uses an ordinary (unconnected) TCP socket; no root.
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { describe, it } from 'node:test';
import { socket } from '../sys/socket.ts';
import { OwnedFd, ReusableReads } from './fd.ts';

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

describe('OwnedFd', () => {
  it('close() closes once; later use throws and a second close is a no-op', () => {
    const fd = new OwnedFd(socket(4));
    const n = fd.fd;
    assert.ok(isOpen(n));
    fd.close();
    assert.equal(fd.owned, false);
    assert.equal(isOpen(n), false);
    assert.throws(() => fd.fd, { code: 'BATON_ERR_FD_CLOSED' });
    fd.close();
  });

  it('dropSilently() closes even a socket that cannot enter repair mode', () => {
    const fd = new OwnedFd(socket(4));
    const n = fd.fd;
    fd.dropSilently();
    assert.equal(isOpen(n), false);
    fd.dropSilently();
  });

  it('release() hands the number over and stops owning it', () => {
    const fd = new OwnedFd(socket(4));
    const n = fd.release();
    assert.ok(isOpen(n));
    fd.close();
    assert.ok(isOpen(n), 'close after release must not close the released descriptor');
    new OwnedFd(n).close();
  });

  it('toSocket() on a descriptor that is gone throws and leaves it owned, for the caller to close', () => {
    const n = socket(4);
    const fd = new OwnedFd(n);
    const other = new OwnedFd(n);
    other.close(); // the number is closed behind fd's back
    assert.throws(() => fd.toSocket(), /EBADF/);
    assert.equal(fd.owned, true);
    fd.close();
  });

  it('refuses an invalid descriptor', () => {
    assert.throws(() => new OwnedFd(-1), { code: 'BATON_ERR_FD_CLOSED' });
  });
});

describe('ReusableReads', () => {
  it('hands each read over as a view of its one buffer; before a consumer, keeps copies, and pauses after a buffer', () => {
    const r = new ReusableReads();
    const fill = (byte: number, n: number): number => (r.buffer.fill(byte, 0, n), n);
    const half = r.buffer.length / 2;
    assert.equal(r.onRead(fill(1, half)), true, 'keeps reading');
    assert.equal(r.onRead(fill(2, half)), false, 'one buffer kept: pause');
    const got: Buffer[] = [];
    r.consume((v) => got.push(Buffer.from(v)));
    assert.deepEqual(got.map((g) => [g.length, g[0], g.every((x) => x === g[0])]), [[half, 1, true], [half, 2, true]]);
    let view: Buffer | undefined;
    r.consume((v) => (view = v));
    assert.equal(r.onRead(fill(3, 10)), true);
    assert.equal(view!.length, 10);
    assert.equal(view!.buffer, r.buffer.buffer, 'a view, not a copy');
  });
});
