// Runs lab/driver.ts in the lab's client namespace and relays its progress.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriverJob, DriverSummary } from './driver.ts';
import type { Lab } from './lab.ts';

const HERE = fileURLToPath(import.meta.url);
// Compiled (the installed package, dist/): run driver.js with no TypeScript loader.
const DRIVER_ARGV = HERE.endsWith('.js')
  ? [process.execPath, join(dirname(HERE), 'driver.js')]
  : [process.execPath, '--import', 'tsx', join(dirname(HERE), 'driver.ts')];

export async function runDriver(lab: Lab, job: DriverJob, onProgress?: (done: number, total: number) => void): Promise<DriverSummary> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-job-'));
  const file = join(dir, 'job.json');
  await writeFile(file, JSON.stringify(job));
  const child = lab.spawn(lab.client, [...DRIVER_ARGV, file]);
  return new Promise<DriverSummary>((resolvePromise, reject) => {
    let buf = '';
    let summary: DriverSummary | undefined;
    let stderr = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = JSON.parse(line) as { type: string; done?: number; total?: number };
        if (m.type === 'progress') onProgress?.(m.done ?? 0, m.total ?? 0);
        else if (m.type === 'summary') summary = m as DriverSummary;
      }
    });
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.once('exit', (code) =>
      summary ? resolvePromise(summary) : reject(new Error(`driver exited ${code} without a summary: ${stderr}`)),
    );
  }).finally(() => rm(dir, { recursive: true, force: true }));
}
