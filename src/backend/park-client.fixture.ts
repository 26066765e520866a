// The client half of park.netns.test.ts, run in the client's namespace: connects, prints `connected <port>`, and on
// `send <bytes>` (stdin) writes that many bytes of a counting pattern; prints `reply <text>` for what the server
// answers and `error <code>` if the connection fails (a RST is ECONNRESET). Exits when stdin closes (its parent is
// gone) or after 20 s, so it can never outlive the test.
//   node --import tsx src/backend/park-client.fixture.ts <host> <port>
import net from 'node:net';
import { createInterface } from 'node:readline';

const [host = '', port = '0'] = process.argv.slice(2);
const out = (line: string): void => void process.stdout.write(`${line}\n`);
const s = net.connect(Number(port), host, () => out(`connected ${s.localPort}`));
s.on('data', (d) => out(`reply ${d.toString('utf8').trim()}`));
s.on('error', (e: NodeJS.ErrnoException) => out(`error ${e.code ?? e.message}`));
s.on('close', () => out('closed'));
createInterface({ input: process.stdin }).on('line', (l) => {
  const [cmd, arg] = l.split(' ');
  if (cmd === 'send') {
    const n = Number(arg);
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
    s.write(b, () => out(`sent ${n}`));
  } else if (cmd === 'small') {
    // `small <count>`: that many 100-byte segments, one per event-loop turn (Nagle off), for per-packet costs
    s.setNoDelay(true);
    let left = Number(arg);
    const one = (): void => {
      if (left-- <= 0) return void out('sent small');
      s.write(Buffer.alloc(100, 0x61));
      setImmediate(one);
    };
    one();
  } else if (cmd === 'end') {
    s.destroy();
    process.exit(0);
  }
}).on('close', () => process.exit(0));
setTimeout(() => process.exit(3), 20_000).unref();
