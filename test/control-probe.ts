// A hostile control-channel client for test/faults-control.test.ts, run inside a lab namespace as a program:
//   control-probe.ts HOST PORT VIP CLIENT_ADDR BASE_PORT   (secret in env BATON_SECRET)
// It opens one connection per case against an agent's control port and prints one JSON line per case: whether the
// agent ever said AUTH_OK or ACKed a HANDOFF, and whether it closed the connection. Every HANDOFF it sends carries a
// well-formed blob for a made-up connection (client CLIENT_ADDR, port BASE_PORT + case index) so that an agent that
// wrongly accepted it would really inject a socket the test can see. The first case is the positive control: a
// correct handshake, whose HANDOFF must be ACKed ok (then ABORTed, so nothing stays).
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { PROTO_VERSION, Secret, newNonce } from '../src/control/auth.ts';
import { encodeBlob } from '../src/wire/blob.ts';
import { FrameDecoder, decodeMessage, encodeMessage, type Message } from '../src/wire/frame.ts';

export interface ProbeResult {
  readonly name: string;
  /** The client port of the made-up connection its HANDOFF named (0: none sent). */
  readonly port: number;
  readonly authOk: boolean;
  /** ACKs received with ok = true / false. */
  readonly acksOk: number;
  readonly acksFailed: number;
  /** The agent closed (or reset) the connection within the wait. */
  readonly closedByAgent: boolean;
  /** Other frames the agent sent (challenge, load, ...), by kind. */
  readonly frames: readonly string[];
}

class Conn {
  readonly socket: Socket;
  readonly #decoder = new FrameDecoder(1 << 20);
  readonly got: Message[] = [];
  closed = false;
  readonly #waiters: Array<() => void> = [];
  constructor(host: string, port: number) {
    this.socket = connect({ host, port });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (d: Buffer) => {
      this.#decoder.push(d);
      try {
        for (let f = this.#decoder.next(); f !== undefined; f = this.#decoder.next()) this.got.push(decodeMessage(f));
      } catch {
        this.got.push({ kind: 'pong', token: 0n }); // unparsable reply: recorded as a frame, never as AUTH_OK
      }
      this.#wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }
  write(b: Uint8Array): void {
    if (!this.closed) this.socket.write(b);
  }
  send(m: Message): void {
    this.write(encodeMessage(m));
  }
  /** Waits until pred holds or the connection closes or ms pass. */
  async until(pred: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!pred() && !this.closed && Date.now() < end) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, end - Date.now());
        this.#waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }
  find<K extends Message['kind']>(kind: K): Extract<Message, { kind: K }> | undefined {
    return this.got.find((m): m is Extract<Message, { kind: K }> => m.kind === kind);
  }
  result(name: string, port: number): ProbeResult {
    const acks = this.got.filter((m): m is Extract<Message, { kind: 'ack' }> => m.kind === 'ack');
    return {
      name, port,
      authOk: this.find('auth-ok') !== undefined,
      acksOk: acks.filter((a) => a.ok).length,
      acksFailed: acks.filter((a) => !a.ok).length,
      closedByAgent: this.closed,
      frames: this.got.map((m) => m.kind),
    };
  }
}

async function main(): Promise<void> {
  const [host, portS, vip, clientAddr, baseS] = process.argv.slice(2);
  const port = Number(portS);
  const base = Number(baseS);
  const secret = new Secret(process.env['BATON_SECRET'] ?? '');
  const WAIT = 3000;
  const blobFor = (id: bigint, clientPort: number): Uint8Array =>
    encodeBlob({
      handoffId: id,
      flowId: Number(id & 0xffffn),
      state: {
        family: 4,
        client: { address: clientAddr!, port: clientPort },
        vip: { address: vip!, port: 80 },
        sendSeq: 0x11223344,
        recvSeq: 0x55667788,
        window: { sndWl1: 0x55667700, sndWnd: 65535, maxWindow: 65535, rcvWnd: 64240, rcvWup: 0x55667788 },
        mss: 1460, sndWscale: 7, rcvWscale: 7, sackPermitted: true, timestamps: true, finReceived: false,
        tsVal: 1000,
        recvQueue: Buffer.from('GET /whoami HTTP/1.1\r\nHost: probe\r\n\r\n'),
        sendQueue: new Uint8Array(0),
      },
    });
  const handoff = (id: bigint, p: number): Message => ({ kind: 'handoff', id, blob: blobFor(id, p) });
  const open = async (): Promise<Conn> => {
    const c = new Conn(host!, port);
    await c.ready();
    return c;
  };
  const out = (r: ProbeResult): void => void process.stdout.write(`${JSON.stringify(r)}\n`);

  // 0. Positive control: a correct handshake, recorded for the replay below; its HANDOFF is ACKed ok, then ABORTed.
  const ctl = await open();
  const nonceC = newNonce();
  const hello = encodeMessage({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: nonceC, name: 'probe' });
  ctl.write(hello);
  await ctl.until(() => ctl.find('challenge') !== undefined, WAIT);
  const ch = ctl.find('challenge');
  const auth = encodeMessage({ kind: 'auth', proof: secret.clientProof(ch?.nonce ?? new Uint8Array(32), nonceC) });
  ctl.write(auth);
  await ctl.until(() => ctl.find('auth-ok') !== undefined, WAIT);
  ctl.send(handoff(1n, base));
  await ctl.until(() => ctl.find('ack') !== undefined, WAIT);
  ctl.send({ kind: 'abort', id: 1n });
  await new Promise((r) => setTimeout(r, 200));
  out(ctl.result('control', base));
  ctl.socket.end();

  const cases: Array<[string, (c: Conn, p: number) => Promise<void>]> = [
    ['garbage-http', async (c) => c.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))],
    ['garbage-random', async (c) => c.write(Buffer.concat([Buffer.from([0, 0, 0, 40]), randomBytes(200)]))],
    ['unknown-type', async (c) => c.write(Buffer.from([0, 0, 0, 5, 0x7f, 1, 2, 3, 4]))],
    ['oversized-u32', async (c) => c.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]), randomBytes(1000)]))],
    ['oversized-257', async (c) => c.write(Buffer.concat([Buffer.from([0, 0, 1, 1, 0x01]), Buffer.alloc(256)]))],
    ['handoff-before-auth', async (c, p) => c.send(handoff(2n, p))],
    ['wrong-version', async (c, p) => {
      c.send({ kind: 'hello', protoVersion: PROTO_VERSION + 1, nonce: newNonce(), name: 'probe' });
      c.send(handoff(3n, p));
    }],
    ['wrong-hmac', async (c, p) => {
      c.send({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: newNonce(), name: 'probe' });
      await c.until(() => c.find('challenge') !== undefined, WAIT);
      c.send({ kind: 'auth', proof: randomBytes(32) });
      c.send(handoff(4n, p));
    }],
    ['reflected-proof', async (c, p) => {
      // The server's own proof sent back as ours: the labels differ, so it must not verify.
      c.send({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: newNonce(), name: 'probe' });
      await c.until(() => c.find('challenge') !== undefined, WAIT);
      c.send({ kind: 'auth', proof: c.find('challenge')?.proof ?? new Uint8Array(32) });
      c.send(handoff(5n, p));
    }],
    ['replay-stepwise', async (c, p) => {
      c.write(hello);
      await c.until(() => c.find('challenge') !== undefined, WAIT);
      c.write(auth);
      c.send(handoff(6n, p));
    }],
    ['replay-burst', async (c, p) => c.write(Buffer.concat([hello, auth, encodeMessage(handoff(7n, p))]))],
  ];
  await Promise.all(
    cases.map(async ([name, run], i) => {
      const p = base + 1 + i;
      const c = await open();
      await run(c, p);
      await c.until(() => false, WAIT);
      out(c.result(name, name.startsWith('garbage') || name.startsWith('oversized') || name === 'unknown-type' ? 0 : p));
      c.socket.destroy();
    }),
  );
}

void main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`probe: ${String(e)}\n`);
    process.exit(1);
  },
);
