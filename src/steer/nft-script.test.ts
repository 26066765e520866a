import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addBackendScript, addElement, deleteElement, parseSetElements, tableScript, type NftConfig } from './nft-script.ts';

const cfg: NftConfig = {
  table: 'baton_t', device: 'eth0', family: 4, vip: '10.77.0.100', port: 80,
  backends: [{ index: 0, address: '10.77.0.11' }, { index: 1, address: '10.77.0.12' }],
  holdTimeoutS: 30, idleTimeoutS: 300, lingerMs: 1500,
};

test('a new SYN forgets stale steering; the table holds before it forwards; closing flows last until quiet for the linger', () => {
  const s = tableScript(cfg);
  const rules = s.split('\n').filter((l) => l.includes('daddr 10.77.0.100 tcp dport 80'));
  assert.equal(rules.length, 2 + 2 * 2);
  assert.equal(
    rules[0]!.trim(),
    'ip daddr 10.77.0.100 tcp dport 80 tcp flags & (syn | ack) == syn ' +
      'delete @live4_0 { ip saddr . tcp sport } delete @closing4_0 { ip saddr . tcp sport } ' +
      'delete @live4_1 { ip saddr . tcp sport } delete @closing4_1 { ip saddr . tcp sport } accept',
  );
  assert.match(rules[1]!, /@hold4 drop$/);
  assert.match(rules[2]!, /@closing4_0 update @closing4_0 \{ ip saddr \. tcp sport timeout 2s \} fwd ip to 10\.77\.0\.11 device "eth0"$/);
  assert.match(rules[3]!, /@live4_0 update @live4_0 \{ ip saddr \. tcp sport timeout 300s \} fwd ip to 10\.77\.0\.11/);
  assert.match(s, /hook ingress device "eth0" priority -500/);
  // Linger rounds up to whole seconds.
  assert.match(s, /set closing4_1 \{\n {4}type ipv4_addr \. inet_service\n {4}flags timeout\n {4}timeout 2s/);
  // A stale table of the same name is replaced.
  assert.ok(s.startsWith('table netdev baton_t\ndelete table netdev baton_t\n'));
});

test('IPv6 uses ip6 matches and ipv6 keys', () => {
  const s = tableScript({ ...cfg, family: 6, vip: '2001:db8::100', backends: [{ index: 0, address: '2001:db8::11' }] });
  assert.match(s, /ip6 daddr 2001:db8::100 tcp dport 80 ip6 saddr \. tcp sport @live6_0 .* fwd ip6 to 2001:db8::11/);
  assert.match(s, /type ipv6_addr \. inet_service/);
});

test('names that could inject nft syntax are refused', () => {
  assert.throws(() => tableScript({ ...cfg, table: 'x; flush ruleset' }), /steering\.table/);
  assert.throws(() => tableScript({ ...cfg, device: 'eth0" ; drop' }), /interface/);
});

test('element commands', () => {
  const f = { family: 4 as const, clientAddress: '10.77.0.2', clientPort: 40000 };
  assert.equal(addElement('t', 'hold4', f), 'add element netdev t hold4 { 10.77.0.2 . 40000 }');
  assert.equal(addElement('t', 'closing4_0', f, 1500), 'add element netdev t closing4_0 { 10.77.0.2 . 40000 timeout 2s }');
  assert.equal(deleteElement('t', 'live4_0', f), 'delete element netdev t live4_0 { 10.77.0.2 . 40000 }');
});

test('parses nft -j set elements, with and without timeouts', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { set: { name: 'hold4', elem: [{ concat: ['10.77.0.2', 40000] }] } },
      { set: { name: 'live4_0', elem: [{ elem: { val: { concat: ['10.77.0.3', 1] }, timeout: 300, expires: 299 } }] } },
      { set: { name: 'ack' } },
    ],
  });
  const m = parseSetElements(json);
  assert.deepEqual(m.get('hold4'), [{ family: 4, clientAddress: '10.77.0.2', clientPort: 40000 }]);
  assert.deepEqual(m.get('live4_0'), [{ family: 4, clientAddress: '10.77.0.3', clientPort: 1 }]);
  assert.deepEqual(m.get('ack'), []);
});

test('a back-end added to a running table: its sets, a non-accepting SYN rule at the head, its forwarding rules', () => {
  const s = addBackendScript(cfg, { index: 2, address: '10.77.0.13' });
  assert.equal(s, [
    'table netdev baton_t {',
    '  set live4_2 {', '    type ipv4_addr . inet_service', '    flags timeout', '    timeout 300s', '  }',
    '  set closing4_2 {', '    type ipv4_addr . inet_service', '    flags timeout', '    timeout 2s', '  }',
    '}',
    'insert rule netdev baton_t ingress ip daddr 10.77.0.100 tcp dport 80 tcp flags & (syn | ack) == syn ' +
      'delete @live4_2 { ip saddr . tcp sport } delete @closing4_2 { ip saddr . tcp sport }',
    'add rule netdev baton_t ingress ip daddr 10.77.0.100 tcp dport 80 ip saddr . tcp sport @closing4_2 update @closing4_2 { ip saddr . tcp sport timeout 2s } fwd ip to 10.77.0.13 device "eth0"',
    'add rule netdev baton_t ingress ip daddr 10.77.0.100 tcp dport 80 ip saddr . tcp sport @live4_2 ' +
      'update @live4_2 { ip saddr . tcp sport timeout 300s } fwd ip to 10.77.0.13 device "eth0"',
    '',
  ].join('\n'));
  // The same rule text as the table's own rules for that back-end.
  const whole = tableScript({ ...cfg, backends: [...cfg.backends, { index: 2, address: '10.77.0.13' }] });
  for (const r of s.split('\n').filter((l) => l.startsWith('add rule'))) {
    assert.ok(whole.includes(r.replace('add rule netdev baton_t ingress ', '    ')), r);
  }
});
