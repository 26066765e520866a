// The published package: `npm pack` builds dist/ (prepack) and the tarball, installed into a temp
// prefix like on a fresh machine, runs `baton --help` (and, as root, `baton demo`) from compiled
// JavaScript with no TypeScript loader installed. Also holds deploy/ to the code: every metric the
// Grafana dashboard queries is one the stats server exports, and the example configs are valid.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { backendConfigSchema } from '../src/backend/config.ts';
import { frontendConfigSchema } from '../src/frontend/config.ts';

const ROOT = join(import.meta.dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
const run = promisify(execFile);
const npmWorks = spawnSync('npm', ['--version'], { stdio: 'ignore' }).status === 0;

test('the Grafana dashboard queries only metrics the stats server exports', async () => {
  const server = await readFile(join(ROOT, 'src/frontend/stats-server.ts'), 'utf8');
  const exported = new Set([...server.matchAll(/gauge\('([a-z0-9_]+)'/g)].map((m) => `baton_frontend_${m[1]}`));
  assert.ok(exported.size >= 10, `found ${exported.size} metrics in stats-server.ts: the pattern is stale`);
  const dash = JSON.parse(await readFile(join(DEPLOY, 'grafana-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  const used = new Set<string>();
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, `panel "${p.title}" has no query`);
    for (const t of p.targets) for (const m of t.expr.matchAll(/baton_[a-z0-9_]+/g)) used.add(m[0]);
  }
  for (const m of used) assert.ok(exported.has(m), `dashboard queries ${m}, which /metrics does not export`);
  const unused = [...exported].filter((m) => !used.has(m));
  assert.deepEqual(unused, [], 'every exported metric has a panel');
});

test('the example configs in deploy/ are valid', async () => {
  const fe = frontendConfigSchema.safeParse(JSON.parse(await readFile(join(DEPLOY, 'frontend.example.json'), 'utf8')));
  assert.ok(fe.success, fe.success ? '' : JSON.stringify(fe.error.issues));
  const be = backendConfigSchema.safeParse(JSON.parse(await readFile(join(DEPLOY, 'backend.example.json'), 'utf8')));
  assert.ok(be.success, be.success ? '' : JSON.stringify(be.error.issues));
});

test('the systemd units run the installed CLI with capabilities, not as root', async () => {
  const units = [
    ['baton-frontend.service', 'frontend', ['CAP_NET_ADMIN', 'CAP_BPF', 'CAP_PERFMON', 'CAP_NET_BIND_SERVICE']],
    ['baton-agent.service', 'backend', ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW']],
  ] as const;
  for (const [unit, cmd, needed] of units) {
    const text = await readFile(join(DEPLOY, unit), 'utf8');
    const key = (k: string): string[] => [...text.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1]!);
    assert.deepEqual(key('User'), ['baton'], unit);
    assert.match(key('ExecStart')[0] ?? '', new RegExp(`/baton ${cmd} --config /etc/baton/`), unit);
    const caps = (key('AmbientCapabilities')[0] ?? '').split(/\s+/);
    assert.deepEqual(caps, (key('CapabilityBoundingSet')[0] ?? '').split(/\s+/), `${unit}: ambient = bounding`);
    for (const c of needed) assert.ok(caps.includes(c), `${unit} lacks ${c}`);
    assert.ok(!caps.includes('CAP_SYS_ADMIN'), `${unit}: CAP_SYS_ADMIN is not needed on kernels with CAP_BPF`);
  }
  const fe = await readFile(join(DEPLOY, 'baton-frontend.service'), 'utf8');
  assert.match(fe, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(fe, /^RuntimeDirectory=baton$/m);
});

test('npm pack: the tarball installs and runs baton from compiled JavaScript', { skip: !npmWorks && 'npm is not on PATH' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-pack-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { ...process.env, npm_config_loglevel: 'error', npm_config_fund: 'false', npm_config_audit: 'false' };
  // prepack builds dist/ from src/ first.
  const packed = await run('npm', ['pack', '--pack-destination', dir, '--json'], { cwd: ROOT, env, maxBuffer: 16 << 20 });
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  assert.ok(info);
  const files = info.files.map((f) => f.path);
  for (const f of ['bin/baton.js', 'dist/cli/main.js', 'dist/lab/driver.js', 'bpf/build/frontend.o', 'bpf/build/backend.o',
    'deploy/baton-frontend.service', 'deploy/baton-agent.service', 'deploy/grafana-dashboard.json']) {
    assert.ok(files.includes(f), `the tarball lacks ${f}`);
  }
  assert.deepEqual(files.filter((f) => f.endsWith('.ts') || f.includes('.test.')), [], 'no TypeScript or tests in the package');

  const prefix = join(dir, 'prefix');
  await run('npm', ['install', '--global', '--prefix', prefix, join(dir, info.filename)], { cwd: dir, env, maxBuffer: 16 << 20 });
  const pkg = join(prefix, 'lib/node_modules/baton');
  const deps = await readdir(join(pkg, 'node_modules'));
  assert.ok(deps.includes('koffi') && deps.includes('commander'), `runtime dependencies installed: ${deps.join(' ')}`);
  assert.ok(!deps.includes('tsx') && !deps.includes('typescript'), 'no TypeScript loader or compiler installed');
  await stat(join(pkg, 'bpf/build/frontend.o')); // where dist/steer/bpf-loader.js looks for it: ../../bpf/build

  const baton = join(prefix, 'bin/baton');
  const help = await run(baton, ['--help'], { cwd: dir });
  for (const c of ['frontend', 'backend', 'demo', 'status', 'reload']) assert.match(help.stdout, new RegExp(`^  ${c}\\b`, 'm'));

  if (process.getuid?.() !== 0) {
    t.diagnostic('baton demo from the installed package skipped: needs root (network namespaces)');
    return;
  }
  // The whole product from the installed package: lab, agents, front-end (bpf steering), requests.
  const demo = await run(baton, ['demo', '--requests', '30', '--json'], { cwd: dir, maxBuffer: 16 << 20, timeout: 120_000 });
  const last = demo.stdout.trim().split('\n').pop() ?? '';
  const r = JSON.parse(last) as { requests: number; errors: number };
  assert.equal(r.requests, 30, last);
  assert.equal(r.errors, 0, last);
});
