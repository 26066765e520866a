// A scriptable TCP peer for the namespace tests in test/tcp-handoff.test.ts: run inside a network
// namespace (`ip netns exec NS node --import tsx test/tcp-peer.ts`), it reads one JSON command per
// line on stdin and answers one JSON line on stdout ({ seq, ok, ... } or { seq, ok: false, error }).
// It plays the client, the front-end (accept, read a head, capture) and the back-end (inject through
// HandoffReceiver, answer), so tests can put each role in its own namespace.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { HandoffReceiver, type FlowInfo } from '../src/backend/receiver.ts';
import { captureState } from '../src/tcp/capture.ts';
import type { Liveness } from '../src/tcp/liveness.ts';
import { fdOf as maybeFdOf, stopReading } from '../src/tcp/node-socket.ts';
import { getTcpInfo } from '../src/tcp/repair.ts';
import { SIOCINQ } from '../src/sys/constants.ts';
import { ioctlInt } from '../src/sys/socket.ts';
import { decodeBlob, encodeBlob } from '../src/wire/blob.ts';
import { patternBytes } from '../src/wire/pattern.ts';

interface Conn {
  readonly socket: net.Socket;
  /** Bytes received and not yet returned by a read command. */
  chunks: Buffer[];
  eof: boolean;
  closed: boolean;
  error: string | undefined;
  /** Callbacks waiting for any change. */
  waiters: (() => void)[];
}

function fdOf(s: net.Socket): number {
  const fd = maybeFdOf(s);
  if (fd === undefined) throw new Error('socket has no descriptor (closed)');
  return fd;
}

const conns = new Map<number, Conn>();
let nextId = 1;
let server: net.Server | undefined;
const accepted: net.Socket[] = [];
const acceptWaiters: ((s: net.Socket) => void)[] = [];
const delivered: net.Socket[] = [];

function track(socket: net.Socket, reading: boolean): number {
  const id = nextId++;
  const c: Conn = { socket, chunks: [], eof: false, closed: false, error: undefined, waiters: [] };
  conns.set(id, c);
  const wake = (): void => {
    for (const w of c.waiters.splice(0)) w();
  };
  socket.on('error', (e: NodeJS.ErrnoException) => {
    c.error = e.code ?? e.message;
    wake();
  });
  socket.on('end', () => {
    c.eof = true;
    wake();
  });
  socket.on('close', () => {
    c.closed = true;
    wake();
  });
  if (reading) {
    socket.on('data', (d: Buffer) => {
      c.chunks.push(d);
      wake();
    });
  }
  return id;
}

function conn(id: unknown): Conn {
  const c = conns.get(Number(id));
  if (!c) throw new Error(`no connection ${String(id)}`);
  return c;
}

async function until(c: Conn, done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timeout waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(left, 50));
      c.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

const received = (c: Conn): Buffer => Buffer.concat(c.chunks);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** One receiver per liveness setting (JSON of it), as an agent has one per configuration. */
const receivers = new Map<string, HandoffReceiver>();
/** Flow ends the receivers reported (onFlowEnd). */
let flowEnds = 0;

type Cmd = Record<string, unknown> & { cmd: string };

const commands: Record<string, (c: Cmd) => Promise<Record<string, unknown>> | Record<string, unknown>> = {
  async listen(c) {
    server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
      const w = acceptWaiters.shift();
      if (w) w(s);
      else accepted.push(s);
    });
    await new Promise<void>((resolve) => server!.listen(Number(c.port), String(c.host), resolve));
    return {};
  },

  /** Accepts the next connection, reads until `until` (text) has arrived, then stops Node's reader. */
  async accept(c) {
    const s = accepted.shift() ?? (await new Promise<net.Socket>((resolve) => acceptWaiters.push(resolve)));
    const marker = Buffer.from(String(c.until ?? '\r\n\r\n'));
    let buf = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        if (buf.includes(marker)) {
          if (!stopReading(s)) return reject(new Error('socket closed before the head'));
          s.off('data', onData);
          resolve();
        }
      };
      s.on('data', onData);
      s.once('error', reject);
      s.resume();
    });
    const id = track(s, false);
    return { id, consumed: buf.toString('base64') };
  },

  async connect(c) {
    const s = net.connect({ host: String(c.host), port: Number(c.port), allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return { id: track(s, true) };
  },

  info(c) {
    const fd = fdOf(conn(c.id).socket);
    return { info: getTcpInfo(fd), inq: ioctlInt(fd, SIOCINQ, 'SIOCINQ') };
  },

  /** Waits until the socket's TCP state is `state` (a number). */
  async state(c) {
    const x = conn(c.id);
    const fd = fdOf(x.socket);
    const want = Number(c.state);
    const deadline = Date.now() + Number(c.timeoutMs ?? 5000);
    while (getTcpInfo(fd).state !== want) {
      if (Date.now() > deadline) throw new Error(`state ${getTcpInfo(fd).state}, want ${want}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return {};
  },

  /** Captures the held connection (`consumed`: what accept read) and closes it silently. */
  capture(c) {
    const x = conn(c.id);
    const socket = x.socket;
    const state = captureState({
      fd: fdOf(socket),
      family: socket.remoteFamily === 'IPv6' ? 6 : 4,
      client: { address: socket.remoteAddress!, port: socket.remotePort! },
      vip: { address: socket.localAddress!, port: socket.localPort! },
      consumed: Buffer.from(String(c.consumed), 'base64'),
    });
    const blob = encodeBlob({ handoffId: 1n, flowId: 1, state });
    socket.destroy(); // in repair mode: neither FIN nor RST
    const { recvQueue, sendQueue, ...rest } = state;
    return { blob: Buffer.from(blob).toString('base64'), state: { ...rest, recvQueue: recvQueue.length, sendQueue: sendQueue.length } };
  },

  /** Injects a blob through a HandoffReceiver (prepare + commit) and tracks the delivered socket. */
  inject(c) {
    const which = JSON.stringify(c.liveness ?? null);
    let receiver = receivers.get(which);
    if (!receiver) {
      receiver = new HandoffReceiver({
        deliver: (s: net.Socket, _flow: FlowInfo) => void delivered.push(s),
        onFlowEnd: () => void flowEnds++,
        ...(c.liveness !== undefined && { liveness: c.liveness as Liveness }),
      });
      receivers.set(which, receiver);
    }
    const key = `h${nextId}`;
    // forwarded: a HANDOFF_FWD (delivered by prepare itself, no commit); abort: the front-end's late ABORT follows.
    const forwarded = c.forwarded === true;
    const r = receiver.prepare(key, Buffer.from(String(c.blob), 'base64'), { forwarded });
    if (!r.ok) throw new Error(`prepare refused: ${r.code}: ${r.reason}`);
    if (!forwarded && !receiver.commit(key)) throw new Error('commit: unknown id');
    const s = delivered.pop()!;
    if (c.abort === true) {
      receiver.abort(key);
      return { destroyed: s.destroyed, active: receiver.active };
    }
    const info = getTcpInfo(fdOf(s));
    return { id: track(s, c.read !== false), info };
  },

  /** Writes `text` or `size` pattern bytes; `end` half-closes (FIN) afterwards. */
  async write(c) {
    const x = conn(c.id);
    const data = c.text !== undefined ? Buffer.from(String(c.text)) : Buffer.from(patternBytes(Number(c.size)));
    const flushed = new Promise<void>((resolve, reject) => x.socket.write(data, (e) => (e ? reject(e) : resolve())));
    // noWait: a peer that never acknowledges would keep the write pending forever.
    if (c.noWait) flushed.catch(() => undefined);
    else await flushed;
    if (c.end) x.socket.end();
    return {};
  },

  /** Waits for end-of-input (or `bytes` received) and returns what arrived. */
  async read(c) {
    const x = conn(c.id);
    if (c.resume) x.socket.resume();
    const bytes = c.bytes === undefined ? undefined : Number(c.bytes);
    await until(x, () => (bytes === undefined ? x.eof : received(x).length >= bytes) || x.closed, Number(c.timeoutMs ?? 10_000), 'data');
    const all = received(x);
    x.chunks = [];
    return { length: all.length, sha256: sha(all), text: all.subarray(0, 4096).toString('latin1'), eof: x.eof };
  },

  end(c) {
    conn(c.id).socket.end();
    return {};
  },

  /** Waits for the socket to close; returns the error code that ended it, if any. */
  async closed(c) {
    const x = conn(c.id);
    await until(x, () => x.closed, Number(c.timeoutMs ?? 10_000), 'close');
    return { error: x.error ?? null };
  },

  active() {
    let active = 0;
    for (const r of receivers.values()) active += r.active;
    return { active, flowEnds };
  },
};

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const c = JSON.parse(line) as Cmd & { seq: number };
  const run = async (): Promise<Record<string, unknown>> => {
    const f = commands[c.cmd];
    if (!f) throw new Error(`unknown command ${c.cmd}`);
    return f(c);
  };
  run().then(
    (r) => process.stdout.write(`${JSON.stringify({ seq: c.seq, ok: true, ...r })}\n`),
    (e: unknown) => process.stdout.write(`${JSON.stringify({ seq: c.seq, ok: false, error: e instanceof Error ? e.message : String(e) })}\n`),
  );
});
rl.on('close', () => process.exit(0));
