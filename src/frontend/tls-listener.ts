// The read/refuse path of a `tls: true` listener: read the client's first flight up to the end of
// its ClientHello (bounded in bytes, records and time), then either give the connection to the
// handoff machine with the SNI/ALPN as its request, or refuse it the only way TLS allows before a
// handshake: a plaintext fatal alert, or a bare close when the peer does not speak TLS at all.
// The front-end never terminates TLS and never holds a key; the back-end completes the handshake
// on the handed-off socket, whose receive queue starts with the ClientHello (docs/tls.md).
import type net from 'node:net';
import type { FlowKey } from '../steer/types.ts';
import { tlsRequestInfo, type RequestInfo } from '../policy/index.ts';
import { TLS_ALERT, alertFor, buildAlert, parseClientHello } from '../wire/tls-hello.ts';
import type { Endpoint } from '../wire/tcp-state.ts';
import { socketConnection, stopReading } from './client-conn.ts';
import type { WaitingClients } from './waiting.ts';
import type { ClientConnection, HandoffLog } from './handoff.ts';

export interface TlsLimits {
  readonly maxHelloBytes: number;
  readonly maxHelloRecords: number;
  readonly helloTimeoutMs: number;
  readonly maxPending: number;
}

/** What the acceptor needs from the front-end it serves (read per connection: reloadable). */
export interface TlsAcceptorDeps {
  readonly limits: () => TlsLimits;
  /** Connections still sending their first bytes, under limits.maxPending (shared with HTTP; waiting.ts). */
  readonly waiting: WaitingClients;
  readonly run: (conn: ClientConnection, req: RequestInfo) => Promise<unknown>;
  readonly hrtime: () => bigint;
  readonly log: HandoffLog;
}

/** Why a connection was refused, beyond the parser's BATON_ERR_TLS_* codes. */
export const TLS_REFUSAL = {
  /** The whole ClientHello did not arrive within helloTimeoutMs. */
  timeout: 'hello-timeout',
  /** maxPending connections waiting for their hello or head, none of which could be shed. */
  overload: 'overload',
  /** The hello waiting longest, closed to make room for a new connection at maxPending (waiting.ts). */
  shed: 'shed',
  /** The handoff machine could not place it (no back-end up, all refused, capture failed...). */
  unavailable: 'unavailable',
} as const;

/** How long a refused client may take to read its alert before the socket is dropped. */
const REFUSE_LINGER_MS = 5000;

export class TlsAcceptor {
  readonly #d: TlsAcceptorDeps;
  readonly #refused = new Map<string, number>();

  constructor(d: TlsAcceptorDeps) {
    this.#d = d;
  }

  /** Refusals so far, by BATON_ERR_TLS_* code or TLS_REFUSAL reason. */
  refused(): Record<string, number> {
    return Object.fromEntries(this.#refused);
  }

  /** Serves one accepted connection of a TLS listener; `ends` as read at accept. */
  accept(sock: net.Socket, ends: { readonly flow: FlowKey; readonly vip: Endpoint }): void {
    const limits = this.#d.limits();
    if (!this.#d.waiting.admit(limits.maxPending)) return this.#refuse(sock, TLS_REFUSAL.overload, TLS_ALERT.internalError);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#d.waiting.done(shed);
      clearTimeout(timer);
      sock.off('data', onData);
    };
    // A stalled client is not reading either: no alert, just close.
    const close = (why: string): void => {
      finish();
      this.#count(why);
      sock.destroy();
    };
    const shed = (): void => close(TLS_REFUSAL.shed);
    const timer = setTimeout(() => close(TLS_REFUSAL.timeout), limits.helloTimeoutMs);
    this.#d.waiting.add(shed);
    sock.once('close', finish);
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      // Bounded: while incomplete, buf is at most maxHelloBytes + 5 x maxHelloRecords bytes (parser property).
      const r = parseClientHello(buf, { maxHelloBytes: limits.maxHelloBytes, maxRecords: limits.maxHelloRecords });
      if (r.kind === 'incomplete') return;
      if (r.kind === 'error') {
        // Node's reader stays on here, so the refusal drains what the client still sends.
        finish();
        return this.#refuse(sock, r.code, alertFor(r.code));
      }
      const reading = stopReading(sock);
      finish();
      if (!reading) return void sock.destroy();
      // `consumed` is every byte read, not just the hello: anything after it (TLS 1.3 early data)
      // goes to the back-end too, ahead of what is still in the kernel queue.
      const conn = socketConnection({
        socket: sock, flow: ends.flow, vip: ends.vip, consumed: buf, headAt: this.#d.hrtime(),
        answer: (s) => this.#refuse(s, TLS_REFUSAL.unavailable, TLS_ALERT.internalError),
      });
      if (conn === undefined) return void sock.destroy();
      this.#d.run(conn, tlsRequestInfo(r.hello)).catch((e: unknown) => {
        this.#d.log.error({ err: e }, 'handoff crashed');
        sock.destroy();
      });
    };
    sock.on('data', onData);
  }

  /** Counts the refusal; sends a fatal alert and closes, or just closes when there is no alert to send. */
  #refuse(sock: net.Socket, why: string, alert: number | undefined): void {
    this.#count(why);
    if (alert === undefined) return void sock.destroy();
    sock.end(buildAlert(alert));
    // Drain what the client still sends: closing with unread bytes would reset the connection
    // and could destroy the alert before the client reads it.
    sock.resume();
    setTimeout(() => sock.destroy(), REFUSE_LINGER_MS).unref();
  }

  #count(why: string): void {
    this.#refused.set(why, (this.#refused.get(why) ?? 0) + 1);
  }
}
