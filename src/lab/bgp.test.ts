// Reading the router's routes for the VIP back (pure): `ip -j route` output with one next hop or several.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNextHops } from './bgp.ts';

test('parseNextHops reads single and multipath routes', () => {
  assert.deepEqual(parseNextHops(''), []);
  assert.deepEqual(parseNextHops('[]'), []);
  assert.deepEqual(parseNextHops('[{"dst":"10.77.0.100","gateway":"10.77.2.10","dev":"br2","flags":[]}]'), ['10.77.2.10']);
  const multi = JSON.stringify([{
    dst: '10.77.0.100', protocol: 'bird', metric: 32, flags: [],
    nexthops: [{ gateway: '10.77.2.12', dev: 'br2', weight: 1 }, { gateway: '10.77.2.10', dev: 'br2', weight: 1 }],
  }]);
  assert.deepEqual(parseNextHops(multi), ['10.77.2.10', '10.77.2.12']);
});
