import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { NlWriter, parseAcks } from '../sys/netlink.ts';
import { describeOp, elementKey, encodeBatch, type ElementOp } from './nft-netlink.ts';

const hex = (s: string): string => s.replace(/\s+/g, '');

describe('nft netlink encoding', () => {
  it('encodes a NEWSETELEM with a timeout inside a batch (golden bytes)', () => {
    const w = new NlWriter(16); // grows
    const op: ElementOp = { kind: 'add', table: 'bt', set: 'hold4', family: 4, address: '10.1.2.3', port: 4660, timeoutMs: 2000 };
    encodeBatch(w, [op], 100);
    const want = hex(`
      14000000 1000 0100 64000000 00000000  0000000a
      4c000000 0c0a 0504 65000000 00000000  05000000
        0700 0100 62740000
        0a00 0200 686f6c64 34000000
        2400 0380
          2000 0180
            1000 0180
              0c00 0100 0a010203 12340000
            0c00 0400 00000000 000007d0
      14000000 1100 0100 66000000 00000000  0000000a`);
    assert.equal(w.bytes.toString('hex'), want);
  });

  it('encodes deletes as DELSETELEM, or DESTROYSETELEM when missing is ok and supported', () => {
    const op: ElementOp = { kind: 'delete', table: 't', set: 's', family: 4, address: '1.2.3.4', port: 1, missingOk: true };
    const w = new NlWriter();
    const typeAt = 20 + 4; // second message's type
    encodeBatch(w, [op], 1);
    assert.equal(w.bytes.readUInt16LE(typeAt), 0x0a0e);
    assert.equal(w.bytes.readUInt16LE(typeAt + 2), 0x0005); // REQUEST | ACK, no CREATE
    encodeBatch(w, [op], 1, { destroy: true });
    assert.equal(w.bytes.readUInt16LE(typeAt), 0x0a1e);
    encodeBatch(w, [{ ...op, missingOk: false }], 1, { destroy: true });
    assert.equal(w.bytes.readUInt16LE(typeAt), 0x0a0e);
  });

  it('lays keys out as 4-byte registers in network order', () => {
    assert.equal(Buffer.from(elementKey(4, '192.168.255.1', 65535)).toString('hex'), 'c0a8ff01ffff0000');
    assert.equal(Buffer.from(elementKey(6, '2001:db8::abcd', 443)).toString('hex'), '20010db800000000000000000000abcd' + '01bb0000');
    assert.throws(() => elementKey(4, '2001:db8::1', 1), /not an IPv4 address/);
    assert.throws(() => elementKey(6, '10.0.0.1', 1), /not an IPv6 address/);
    assert.throws(() => elementKey(4, '10.0.0.1', 65536), /bad port/);
  });

  it('parses acks (errno sign flipped, other messages skipped)', () => {
    const b = Buffer.alloc(20 + 36);
    b.writeUInt32LE(20, 0); // NLMSG_DONE
    b.writeUInt16LE(3, 4);
    b.writeUInt32LE(36, 20); // NLMSG_ERROR, -ENOENT, original header (CAP_ACK)
    b.writeUInt16LE(2, 24);
    b.writeUInt32LE(7, 28);
    b.writeInt32LE(-2, 36);
    assert.deepEqual(parseAcks(b, b.length), [{ seq: 7, errno: 2 }]);
  });

  it('describes ops for error messages', () => {
    assert.equal(
      describeOp({ kind: 'add', table: 't', set: 'closing4_0', family: 4, address: '1.2.3.4', port: 5, timeoutMs: 1500 }),
      'add 1.2.3.4 . 5 to netdev t closing4_0 timeout 1500ms',
    );
  });
});

const root = process.getuid?.() === 0;
const haveTools = ['ip', 'nft'].every((t) => spawnSync(t, ['-V'], { stdio: 'ignore' }).error === undefined);
const skip = !root ? 'needs root (netns, nftables)' : !haveTools ? 'needs ip and nft' : false;

describe('NftSteering over netlink, in a network namespace', { skip }, () => {
  it('holds, forwards, unholds, releases and rolls back', (t) => {
    const ns = `bt-nl-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    t.after(() => spawnSync('ip', ['netns', 'del', ns]));
    execFileSync('ip', ['-n', ns, 'link', 'add', 'bt0', 'type', 'veth', 'peer', 'name', 'bt1']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'bt0', 'up']);
    const fixture = fileURLToPath(new URL('./nft-netlink.fixture.ts', import.meta.url));
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fixture, 'scenario', 'bt0'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;

    assert.deepEqual(r.held, ['hold 10.1.2.3 . 4660', 'hold 192.168.255.1 . 65535']);
    // What nft itself prints for the elements netlink added: the key layout is right.
    assert.match(String(r.hold4Text), /10\.1\.2\.3 \. 4660/);
    assert.match(String(r.hold4Text), /192\.168\.255\.1 \. 65535/);
    assert.deepEqual(r.forwarded, ['forward:b1 10.1.2.3 . 4660', 'hold 192.168.255.1 . 65535']);
    assert.deepEqual(r.unheld, ['forward:b0 172.16.0.9 . 1', 'forward:b1 10.1.2.3 . 4660']);
    assert.deepEqual(r.released, ['closing:b1 10.1.2.3 . 4660', 'forward:b0 172.16.0.9 . 1']);
    assert.match(String(r.closingText), /10\.1\.2\.3 \. 4660 timeout 1s500ms/);
    assert.doesNotMatch(String(r.afterNftAddNlDelete), /203\.0\.113\.7/);
    assert.deepEqual(r.error, {
      name: 'NftNetlinkError',
      code: 'BATON_ERR_NFT',
      errnoName: 'ENOENT',
      set: 'nosuchset',
      message: 'add 198.51.100.1 . 1000 to netdev btnl4 nosuchset: ENOENT (batch of 2 rolled back)',
    });
    assert.equal(r.strictDelete, 'ENOENT');
    assert.deepEqual(r.afterRollback, r.released); // 198.51.100.1 was not added to hold4
    assert.deepEqual(r.fallback, [...(r.released as string[]), 'forward:b0 198.51.100.3 . 3'].sort());
    assert.deepEqual(r.held6, ['hold 2001:db8:0:1::abcd . 50000']);
    assert.match(String(r.hold6Text), /2001:db8:0:1::abcd \. 50000/);
    assert.deepEqual(r.forwarded6, ['forward:b0 2001:db8:0:1::abcd . 50000']);
    assert.equal(r.tablesAfterClose, '');
  });
});
