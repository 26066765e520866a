// Parsing the client namespace's /proc/net counters (pure functions of tcpstat.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { diff, ipSegments, parseProcNet } from './tcpstat.ts';

const SAMPLE = `If: rx_packets tx_packets
If: 120 80
Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 1000
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 10 3 0 1 2 900 800 7 0 4 0
TcpExt: SyncookiesSent TCPLostRetransmit TCPWinProbe
TcpExt: 0 2 5
IpExt: InNoMaxPkts InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts
IpExt: 0 950 1 3 2
`;

test('parseProcNet pairs each header line with its value line', () => {
  const c = parseProcNet(SAMPLE);
  assert.equal(c['Tcp.RetransSegs'], 7);
  assert.equal(c['Tcp.MaxConn'], -1);
  assert.equal(c['TcpExt.TCPWinProbe'], 5);
  assert.equal(c['If.rx_packets'], 120);
  assert.equal(c['Ip.InReceives'], 1000);
  assert.equal(c['IpExt.InNoMaxPkts'], 0);
});

test('ipSegments sums the four ECN classes and nothing else', () => {
  assert.equal(ipSegments(parseProcNet(SAMPLE)), 950 + 1 + 3 + 2);
});

test('diff subtracts counters present on both sides', () => {
  assert.deepEqual(diff({ a: 1, b: 5 }, { a: 4, b: 5, c: 9 }), { a: 3, b: 0 });
});

test('parseProcNet reads the real files of this machine', () => {
  // /proc/net exists on every Linux; the test fails if the format changed under us.
  const c = parseProcNet(readFileSync('/proc/net/snmp', 'utf8') + readFileSync('/proc/net/netstat', 'utf8'));
  assert.equal(typeof c['Tcp.RetransSegs'], 'number');
  assert.equal(typeof c['TcpExt.TCPWinProbe'], 'number');
  assert.ok(ipSegments(c) >= 0);
});
