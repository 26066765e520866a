import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Router } from './router.ts';
import type { RouterSpec } from './spec.ts';
import { be, pickedId, req } from './testing.ts';

const spec: RouterSpec = {
  pools: [
    { name: 'static', policy: { name: 'maglev' }, members: ['s1', 's2'] },
    { name: 'api', policy: { name: 'lc' }, members: ['a1', 'a2'] },
    { name: 'beta', policy: { name: 'wrr' }, members: ['b1'] },
    { name: 'web', policy: { name: 'lard' }, members: ['w1', 'w2', 's1'] },
  ],
  rules: [
    { match: { header: { name: 'X-Beta', value: '1' } }, pool: 'beta' },
    { match: { host: 'api.example.com', pathPrefix: '/v1/' }, pool: 'api' },
    { match: { host: '*.cdn.example.com' }, pool: 'static' },
    { match: { pathRegex: '\\.(png|jpe?g|css)$' }, pool: 'static' },
    { match: { header: { name: 'user-agent', regex: '^curl/' } }, pool: 'api' },
  ],
  defaultPool: 'web',
};

const all = ['s1', 's2', 'a1', 'a2', 'b1', 'w1', 'w2'].map((id) => be(id));

describe('router', () => {
  const router = new Router(spec);
  const table: { req: ReturnType<typeof req>; pool: string }[] = [
    { req: req('/v1/users', { host: 'API.example.com' }), pool: 'api' },
    { req: req('/v2/users', { host: 'api.example.com' }), pool: 'web' },
    { req: req('/v1/users', { host: 'www.example.com' }), pool: 'web' },
    { req: req('/x', { host: 'img.cdn.example.com' }), pool: 'static' },
    { req: req('/x', { host: 'a.b.cdn.example.com' }), pool: 'static' },
    { req: req('/x', { host: 'cdn.example.com' }), pool: 'web' },
    { req: req('/logo.png?v=3'), pool: 'static' },
    { req: req('/logo.png.html'), pool: 'web' },
    { req: req('/v1/x', { host: 'api.example.com', headers: { 'x-beta': '1' } }), pool: 'beta' },
    { req: req('/', { headers: { 'x-beta': '2' } }), pool: 'web' },
    { req: req('/', { headers: { 'User-Agent': 'curl/8.0' } }), pool: 'api' },
    { req: req('/', { headers: { 'User-Agent': 'Mozilla curl/8.0' } }), pool: 'web' },
    { req: req('/'), pool: 'web' },
  ];
  for (const [i, c] of table.entries()) {
    it(`case ${i}: ${c.req.host || '-'} ${c.req.target} -> ${c.pool}`, () => {
      assert.equal(router.poolFor(c.req), c.pool);
    });
  }

  it("picks only among the pool's members, with the pool's policy", () => {
    for (let i = 0; i < 20; i++) {
      assert.ok(['s1', 's2'].includes(pickedId(router.pick(req(`/f${i}.css`), all, 0))));
      assert.ok(['w1', 'w2', 's1'].includes(pickedId(router.pick(req(`/page${i}`), all, 0))));
    }
    assert.equal(router.policyOf('web')?.name, 'lard');
  });

  it('answers none, naming the pool, when the pool has no eligible member', () => {
    const r = router.pick(req('/', { headers: { 'x-beta': '1' } }), all.filter((b) => b.id !== 'b1'), 0);
    assert.deepEqual(r, { kind: 'none', reason: 'pool "beta": no eligible back-end' });
  });

  it('does not test regexes against inputs longer than the bound', () => {
    const r = new Router(spec, { maxRegexInput: 16 });
    assert.equal(r.poolFor(req('/a.png')), 'static');
    assert.equal(r.poolFor(req(`/${'x'.repeat(20)}.png`)), 'web');
  });

  const invalid: { name: string; patch: (s: RouterSpec) => RouterSpec; error: RegExp }[] = [
    { name: 'bad regex', patch: (s) => ({ ...s, rules: [...s.rules, { match: { pathRegex: '(' }, pool: 'api' }] }), error: /^rules\[5\]\.match\.pathRegex: invalid regex$/ },
    { name: 'bad header regex', patch: (s) => ({ ...s, rules: [{ match: { header: { name: 'x', regex: '[' } }, pool: 'api' }] }), error: /^rules\[0\]\.match\.header\.regex: invalid regex$/ },
    { name: 'unknown rule pool', patch: (s) => ({ ...s, rules: [{ match: { host: 'x' }, pool: 'nope' }] }), error: /^rules\[0\]\.pool: unknown pool "nope"$/ },
    { name: 'unknown default pool', patch: (s) => ({ ...s, defaultPool: 'nope' }), error: /^defaultPool: unknown pool/ },
    { name: 'duplicate pool', patch: (s) => ({ ...s, pools: [...s.pools, s.pools[0]!] }), error: /^pools\[4\]\.name: duplicate pool/ },
    { name: 'empty match', patch: (s) => ({ ...s, rules: [{ match: {}, pool: 'api' }] }), error: /^rules\[0\]\.match: a rule needs/ },
    { name: 'bad policy', patch: (s) => ({ ...s, pools: [{ name: 'web', policy: { name: 'lard', options: { tHigh: 0 } }, members: [] }] }), error: /^pools\[0\]\.policy\.options\.tHigh/ },
  ];
  for (const c of invalid) {
    it(`rejects at construction: ${c.name}`, () => {
      assert.throws(() => new Router(c.patch(spec)), (e: Error & { code?: string }) => {
        assert.match(e.message, c.error);
        assert.equal(e.code, 'BATON_ERR_POLICY_CONFIG');
        return true;
      });
    });
  }

  it('property: a single-rule router routes exactly the requests its matcher accepts', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('a.com', 'b.a.com', 'A.COM', 'x.b.a.com', ''),
        fc.constantFrom('/', '/v1', '/v1/x', '/v2/x', '/V1/x'),
        (host, path) => {
          const r = new Router({
            pools: [
              { name: 'hit', policy: { name: 'wrr' }, members: ['h'] },
              { name: 'miss', policy: { name: 'wrr' }, members: ['m'] },
            ],
            rules: [{ match: { host: '*.a.com', pathPrefix: '/v1' }, pool: 'hit' }],
            defaultPool: 'miss',
          });
          const want = /^.+\.a\.com$/i.test(host) && path.startsWith('/v1');
          assert.equal(pickedId(r.pick(req(path, { host }), [be('h'), be('m')], 0)), want ? 'h' : 'm');
        },
      ),
    );
  });
});
