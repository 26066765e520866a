// Preloaded into the daemons bench/profile.ts starts (`node --import <this>`): SIGUSR2 starts V8's sampling
// profiler, the next SIGUSR2 stops it and writes `<pid>.cpuprofile` into $BATON_PROF_DIR (via a rename, so a
// reader never sees half a file). Not `--cpu-prof`: its SIGPROF ticks interrupt the kernel's BPF verifier, which
// then fails the program load with EAGAIN; started on demand, the profile also leaves start-up (tsx compiling
// every module) out.

import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env['BATON_PROF_DIR'];
if (dir !== undefined && dir !== '') {
  let session: Session | undefined;
  process.on('SIGUSR2', () => {
    if (session === undefined) {
      const s = new Session();
      s.connect();
      s.post('Profiler.enable');
      s.post('Profiler.setSamplingInterval', { interval: 500 });
      s.post('Profiler.start');
      session = s;
      return;
    }
    const s = session;
    session = undefined;
    s.post('Profiler.stop', (err, res) => {
      const file = join(dir, `${process.pid}.cpuprofile`);
      writeFileSync(`${file}.part`, JSON.stringify(err === null ? res.profile : { error: err.message }));
      renameSync(`${file}.part`, file);
      s.disconnect();
    });
  });
}
