import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Router } from './router.ts';
import type { RouterSpec } from './spec.ts';
import { tlsRequestInfo, type RequestInfo } from './types.ts';
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

describe('router: SNI and ALPN rules (TLS listeners)', () => {
  const tlsSpec: RouterSpec = {
    pools: [
      { name: 'api', policy: { name: 'lc' }, members: ['a1'] },
      { name: 'grpc', policy: { name: 'lc' }, members: ['g1'] },
      { name: 'tenants', policy: { name: 'maglev', options: { key: 'host' } }, members: ['t1', 't2'] },
      { name: 'h2', policy: { name: 'wrr' }, members: ['h1'] },
      { name: 'web', policy: { name: 'wrr' }, members: ['w1'] },
    ],
    rules: [
      { match: { sni: 'api.example.com' }, pool: 'api' },
      { match: { sni: '*.grpc.example.com', alpn: 'h2' }, pool: 'grpc' },
      { match: { sni: '*.Tenants.example.com' }, pool: 'tenants' },
      { match: { alpn: 'h2' }, pool: 'h2' },
      { match: { host: 'legacy.example.com' }, pool: 'api' },
    ],
    defaultPool: 'web',
  };
  const router = new Router(tlsSpec);
  const tls = (sni: string | undefined, alpn: string[] = []) => tlsRequestInfo({ sni, alpn });
  const table: { name: string; req: RequestInfo; pool: string }[] = [
    { name: 'exact SNI', req: tls('api.example.com'), pool: 'api' },
    { name: 'exact SNI is not a suffix match', req: tls('x.api.example.com'), pool: 'web' },
    { name: 'exact SNI with any ALPN', req: tls('api.example.com', ['h2']), pool: 'api' },
    { name: 'wildcard SNI and ALPN both match', req: tls('svc.grpc.example.com', ['http/1.1', 'h2']), pool: 'grpc' },
    { name: 'wildcard SNI without the ALPN falls through', req: tls('svc.grpc.example.com', ['http/1.1']), pool: 'web' },
    { name: 'wildcard does not match the apex', req: tls('grpc.example.com', ['h2']), pool: 'h2' },
    { name: 'wildcard pattern is case-insensitive, deep subdomain', req: tls('a.b.tenants.example.com'), pool: 'tenants' },
    { name: 'ALPN alone', req: tls('other.example.org', ['h2']), pool: 'h2' },
    { name: 'no SNI, no ALPN', req: tls(undefined), pool: 'web' },
    { name: 'host rules see the SNI on TLS listeners', req: tls('legacy.example.com'), pool: 'api' },
    { name: 'an HTTP request never matches an SNI rule', req: req('/', { host: 'api.example.com' }), pool: 'web' },
    { name: 'an HTTP request never matches an ALPN rule', req: req('/', { host: 'svc.grpc.example.com' }), pool: 'web' },
  ];
  for (const c of table) {
    it(`${c.name} -> ${c.pool}`, () => assert.equal(router.poolFor(c.req), c.pool));
  }

  it('a TLS connection has no HTTP fields; host is the SNI', () => {
    assert.deepEqual(tls('a.example.com', ['h2']), { method: '', target: '', path: '', host: 'a.example.com', headers: new Map(), sni: 'a.example.com', alpn: ['h2'] });
    assert.equal(tls(undefined).host, '');
  });

  it('a host-keyed policy in the pool spreads tenants by SNI', () => {
    const bes = [be('t1'), be('t2')];
    const picks = new Set(Array.from({ length: 40 }, (_, i) => pickedId(router.pick(tls(`t${i}.tenants.example.com`), bes, 0))));
    assert.deepEqual([...picks].sort(), ['t1', 't2']);
    const one = tls('t7.tenants.example.com');
    assert.equal(pickedId(router.pick(one, bes, 0)), pickedId(router.pick(one, bes, 1)));
  });

  for (const [name, match, error] of [
    ['SNI with a bad character', { sni: 'a b.com' }, /^rules\[0\]\.match\.sni: invalid server name pattern/],
    ['SNI wildcard in the middle', { sni: 'a.*.com' }, /^rules\[0\]\.match\.sni: invalid server name pattern/],
    ['bare wildcard SNI', { sni: '*' }, /^rules\[0\]\.match\.sni: invalid server name pattern/],
    ['SNI with a trailing dot', { sni: 'a.com.' }, /^rules\[0\]\.match\.sni: invalid server name pattern/],
    ['empty ALPN', { alpn: '' }, /^rules\[0\]\.match\.alpn:/],
  ] as const) {
    it(`rejects at construction: ${name}`, () => {
      assert.throws(() => new Router({ ...tlsSpec, rules: [{ match, pool: 'api' }] }), (e: Error) => {
        assert.match(e.message, error);
        return true;
      });
    });
  }

  it('property: an SNI rule matches exactly the names its pattern denotes', () => {
    const label = fc.constantFrom('a', 'b', 'API', 'x-1');
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.option(fc.array(label, { minLength: 1, maxLength: 3 }), { nil: undefined }), (base, wild, name) => {
        const pattern = `${wild ? '*.' : ''}${base.join('.')}`;
        const r = new Router({ ...tlsSpec, rules: [{ match: { sni: pattern }, pool: 'api' }] });
        const sni = name?.join('.').toLowerCase();
        const b = base.join('.').toLowerCase();
        const want = sni !== undefined && (wild ? sni.endsWith(`.${b}`) : sni === b);
        assert.equal(r.poolFor(tls(sni)), want ? 'api' : 'web');
      }),
    );
  });
});
