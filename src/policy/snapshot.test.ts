import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PolicyConfigError } from './errors.ts';
import { Router } from './router.ts';
import { RoutingTable, type RoutingSnapshot } from './snapshot.ts';
import { be, req } from './testing.ts';

const snapshot = (o: Partial<RoutingSnapshot> = {}): RoutingSnapshot => ({
  version: 7,
  router: {
    pools: [
      { name: 'api', policy: { name: 'lc' }, members: ['a1', 'a2'] },
      { name: 'static', policy: { name: 'maglev' }, members: ['s1', 's2', 's3'] },
      { name: 'web', policy: { name: 'lard' }, members: ['w1', 'w2'] },
      { name: 'rep', policy: { name: 'lardr', options: { key: 'host' } }, members: ['w1', 'w2', 'a1'] },
    ],
    rules: [
      { match: { pathPrefix: '/api/' }, pool: 'api' },
      { match: { pathRegex: '\\.png$' }, pool: 'static' },
      { match: { host: 'rep.example' }, pool: 'rep' },
    ],
    defaultPool: 'web',
  },
  backends: ['a1', 'a2', 's1', 's2', 's3', 'w1', 'w2'].map((id) => ({ id, weight: 1, up: true })),
  assignments: [
    { pool: 'web', target: '/index.html', backends: ['w1'] },
    { pool: 'web', target: '/about', backends: ['w2'] },
    { pool: 'rep', target: 'rep.example', backends: ['w2', 'a1'] },
  ],
  ...o,
});

/** null: no snapshot loaded. */
const table = (self: string, s: RoutingSnapshot | null = snapshot()): RoutingTable => {
  const t = new RoutingTable(self);
  if (s !== null) t.load(s);
  return t;
};

/** Maglev's own answer for a path, computed by the front-end's policy code. */
const frontRouter = new Router(snapshot().router);
const maglevOwner = (path: string): string => {
  const r = frontRouter.pick(req(path), ['a1', 'a2', 's1', 's2', 's3', 'w1', 'w2'].map((id) => be(id)), 0);
  assert.ok(r.kind === 'backend');
  return r.id;
};

describe('RoutingTable.decide', () => {
  const rows: { self: string; req: ReturnType<typeof req>; want: string; snap?: RoutingSnapshot | null }[] = [
    { self: 'a1', req: req('/api/x'), want: 'stay api member' },
    { self: 'a2', req: req('/api/x?y'), want: 'stay api member' },
    { self: 'w1', req: req('/api/x'), want: 'move api not-in-pool' },
    { self: 'a1', req: req('/index.html'), want: 'move web not-in-pool' },
    { self: 'w1', req: req('/index.html'), want: 'stay web assigned' },
    { self: 'w2', req: req('/index.html'), want: 'move web assigned-elsewhere' },
    { self: 'w2', req: req('/about'), want: 'stay web assigned' },
    { self: 'w1', req: req('/new'), want: 'move web unassigned' },
    { self: 'w2', req: req('/x', { host: 'rep.example' }), want: 'stay rep assigned' },
    { self: 'a1', req: req('/x', { host: 'rep.example' }), want: 'stay rep assigned' },
    { self: 'w1', req: req('/x', { host: 'rep.example' }), want: 'move rep assigned-elsewhere' },
    { self: 'w1', req: req('/index.html'), want: 'stay - no-snapshot', snap: null },
    {
      self: 'w1',
      req: req('/index.html'),
      want: 'move web unavailable',
      snap: snapshot({ backends: [{ id: 'w1', weight: 1, up: false }] }),
    },
    {
      self: 'a1',
      req: req('/api/'),
      want: 'move api unavailable',
      snap: snapshot({ backends: [{ id: 'a1', weight: 0, up: true }] }),
    },
    { self: 'zz', req: req('/api/'), want: 'move api unavailable' },
  ];
  for (const row of rows) {
    it(`${row.self} ${row.req.target} ${row.req.host} -> ${row.want}`, () => {
      const d = table(row.self, row.snap === undefined ? snapshot() : row.snap).decide(row.req);
      assert.equal(`${d.kind} ${d.pool ?? '-'} ${d.reason}`, row.want);
    });
  }

  it('maglev pools stay exactly where the front-end policy would send the request', () => {
    const tables = new Map(['s1', 's2', 's3'].map((id) => [id, table(id)]));
    fc.assert(
      fc.property(fc.stringMatching(/^\/[a-z]{1,12}\.png$/), (path) => {
        const owner = maglevOwner(path);
        for (const [self, t] of tables) {
          const d = t.decide(req(path));
          assert.equal(d.kind, self === owner ? 'stay' : 'move', `${self} ${path} owner ${owner}`);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('assign() adds, moves and forgets targets and raises the version', () => {
    const t = table('w2');
    t.assign(8, 'web', '/new', ['w2']);
    assert.equal(t.decide(req('/new')).kind, 'stay');
    t.assign(9, 'web', '/new', ['w1']);
    assert.deepEqual(t.decide(req('/new')), { kind: 'move', pool: 'web', reason: 'assigned-elsewhere' });
    t.assign(10, 'web', '/new', undefined);
    assert.deepEqual(t.decide(req('/new')), { kind: 'move', pool: 'web', reason: 'unassigned' });
    assert.equal(t.version, 10);
    t.assign(3, 'nope', '/x', ['w2']);
    assert.equal(t.version, 10);
  });

  it('targetOf gives the key the pool counts requests under', () => {
    const t = table('w1');
    assert.equal(t.targetOf('web', req('/a?b')), '/a');
    assert.equal(t.targetOf('rep', req('/a', { host: 'rep.example' })), 'rep.example');
    assert.equal(t.targetOf('api', req('/a')), '');
  });
});

describe('RoutingTable.load', () => {
  it('refuses an invalid snapshot, names the field and keeps the previous one', () => {
    const t = table('w1');
    assert.throws(
      () => t.load(snapshot({ router: { ...snapshot().router, defaultPool: 'nope' } })),
      (e: unknown) => e instanceof PolicyConfigError && /router\.defaultPool/.test(e.message),
    );
    assert.throws(
      () => t.load(snapshot({ assignments: [{ pool: 'api', target: '/', backends: ['a1'] }] })),
      (e: unknown) => e instanceof PolicyConfigError && /assignments\[0\]\.pool/.test(e.message),
    );
    assert.throws(() => t.load(snapshot({ version: -1 })), PolicyConfigError);
    assert.equal(t.version, 7);
    assert.equal(t.decide(req('/index.html')).kind, 'stay');
  });
});
