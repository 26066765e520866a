import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseClf } from './clf.ts';

const LOG = [
  '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
  'h2.example.com - - [10/Oct/2000:13:55:37 -0700] "GET /index.html HTTP/1.1" 200 1043',
  'h3 - - [10/Oct/2000:13:55:38 -0700] "GET /apache_pb.gif HTTP/1.0" 304 -',
  'garbage line',
  'h4 - - [10/Oct/2000:13:55:39 -0700] "GET /index.html HTTP/1.1" 200 5000 "-" "curl/8"',
  'h5 - - [10/Oct/2000:13:55:40 -0700] "GET /old" 200 10',
  'h6 - - [10/Oct/2000:13:55:41 -0700] "-" 400 0',
  '',
].join('\r\n');

describe('Common Log Format', () => {
  it('parses requests, sizes each target by its largest reply, and counts bad lines', () => {
    const t = parseClf(LOG);
    assert.deepEqual(t.targets, ['/apache_pb.gif', '/index.html', '/old']);
    assert.deepEqual([...t.sizes], [2326, 5000, 10]);
    assert.deepEqual([...t.requests], [0, 1, 0, 1, 2]);
    assert.equal(t.badLines, 2);
  });

  it('property: arbitrary text never throws, and every request names a known target', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom(...LOG.split('\r\n')))), (lines) => {
        const t = parseClf(lines.join('\n'));
        for (const r of t.requests) assert.ok(r < t.targets.length);
        assert.equal(t.sizes.length, t.targets.length);
      }),
    );
  });
});
