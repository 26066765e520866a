// A listening TCP socket whose connections baton accepts itself (accept4), not through Node's net.Server: libuv
// watches the descriptor (koffi.node.poll, one epoll registration) and each readiness accepts the backlog. An
// accepted connection is a bare descriptor and its peer's address: no net.Socket, no stream, no epoll registration
// of its own. The front-end hands most connections off at accept (their whole request head is queued), and for
// those Node's socket was pure cost (docs/handoff.md, "Accept"). Whoever wants a socket after all wraps the
// descriptor (tcp/fd.ts OwnedFd.toSocket).
import koffi from 'koffi';
import * as C from './constants.ts';
import { SysError } from './errors.ts';
import { lastErrno, raw } from './libc.ts';
import { decodeSockaddr, encodeSockaddr, type SockAddr } from './sockaddr.ts';
import { getsockname, setsockoptInt } from './socket.ts';

/** accept(2): errors of one pending connection (it is gone; the next may be fine). Numbers, as Node's errno table lacks EHOSTDOWN and ENONET. */
const CONNECTION_ERRORS = new Set([103 /* ECONNABORTED */, 71 /* EPROTO */, 100 /* ENETDOWN */, 92 /* ENOPROTOOPT */, 112 /* EHOSTDOWN */, 64 /* ENONET */, 113 /* EHOSTUNREACH */, 95 /* EOPNOTSUPP */, 101 /* ENETUNREACH */, 110 /* ETIMEDOUT */]);
/** Connections accepted per turn of the event loop (see start). */
export const BATCH = 32;
/** How long accepting pauses after running out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). */
const PAUSE_MS = 100;

export interface ListenOptions {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly backlog: number;
}

/** An accepted connection: its descriptor (the callee owns it) and the client's address. */
export type OnAccept = (fd: number, peer: SockAddr) => void;

export class TcpListener {
  readonly #fd: number;
  readonly #addr = Buffer.alloc(128);
  readonly #len = Buffer.alloc(4);
  #poll: ReturnType<typeof koffi.node.poll> | undefined;
  /** The poll callback (start sets it): schedules the accepts. */
  #ready: () => void = () => undefined;
  #pause: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** socket, SO_REUSEADDR, bind, listen; non-blocking. Throws SysError (EADDRINUSE, EADDRNOTAVAIL, ...). */
  static open(o: ListenOptions): TcpListener {
    const fd = raw.socket(o.family === 4 ? C.AF_INET : C.AF_INET6, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, C.IPPROTO_TCP);
    if (fd < 0) throw new SysError('socket', lastErrno());
    try {
      setsockoptInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 'SO_REUSEADDR', 1);
      const sa = encodeSockaddr({ family: o.family, address: o.address, port: o.port });
      if (raw.bind(fd, sa, sa.length) < 0) throw new SysError(`bind ${o.address}:${o.port}`, lastErrno());
      if (raw.listen(fd, o.backlog) < 0) throw new SysError('listen', lastErrno());
    } catch (e) {
      raw.close(fd);
      throw e;
    }
    return new TcpListener(fd);
  }

  /** The listening descriptor, for socket options (TCP_DEFER_ACCEPT). */
  get fd(): number {
    return this.#fd;
  }

  address(): SockAddr {
    return getsockname(this.#fd);
  }

  /**
   * Accepts from now on. `onError` hears of a shortage (descriptors, memory): accepting pauses 100 ms, the
   * pending connections wait in the backlog meanwhile. Call once.
   *
   * Accepts run in a setImmediate (the check phase, right after this iteration's poll phase), up to BATCH at a
   * time, and another immediate takes the rest. Node drains process.nextTick callbacks and promise continuations at
   * the end of each immediate, so whatever `onAccept` started for a batch goes on before the next batch, without
   * depending on how koffi calls JavaScript from libuv. Within a batch, each connection's synchronous part runs
   * first and the continuations after: a front-end's handoffs of one batch then write their blobs in one write
   * (corked until the end of the turn), and the agent reads and answers them together: fewer packets and less CPU
   * per request than one connection per immediate, and a lower client p50 (docs/handoff.md, "Accept"). The price is
   * in the phase timers: a handoff's first `await` waits for the rest of its batch.
   */
  start(onAccept: OnAccept, onError: (e: SysError) => void): void {
    if (this.#closed || this.#poll !== undefined) return;
    let scheduled = false;
    const batch = (): void => {
      scheduled = false;
      let more = false;
      try {
        let n = 0;
        while (n < BATCH && (more = this.#acceptOne(onAccept, onError))) n++;
      } catch (e) {
        onError(e instanceof SysError ? e : new SysError(`accept: ${String(e)}`, 0));
      }
      if (more) this.#ready();
    };
    this.#ready = (): void => {
      if (scheduled || this.#closed) return;
      scheduled = true;
      setImmediate(batch);
    };
    this.#poll = koffi.node.poll(this.#fd, { readable: true }, this.#ready);
  }

  /** Accepts one connection; true when there may be more (false: the backlog is empty, or accepting paused). */
  #acceptOne(onAccept: OnAccept, onError: (e: SysError) => void): boolean {
    for (;;) {
      if (this.#closed) return false;
      this.#len.writeUInt32LE(this.#addr.length);
      const fd = raw.accept4(this.#fd, this.#addr, this.#len, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
      if (fd < 0) {
        const errno = lastErrno();
        if (errno === C.EAGAIN) return false;
        if (errno === C.EINTR || CONNECTION_ERRORS.has(errno)) continue;
        // Out of descriptors or memory: the listening socket stays readable, so waiting for the next readiness
        // would spin. Pause instead.
        this.#poll?.stop();
        this.#pause = setTimeout(() => {
          this.#pause = undefined;
          if (!this.#closed) this.#poll?.start({ readable: true }, this.#ready);
        }, PAUSE_MS);
        onError(new SysError('accept4', errno));
        return false;
      }
      let peer: SockAddr;
      try {
        peer = decodeSockaddr(this.#addr.subarray(0, this.#len.readUInt32LE()));
      } catch {
        raw.close(fd);
        continue;
      }
      onAccept(fd, peer);
      return true;
    }
  }

  /** Stops accepting and closes the listening socket (connections already accepted are not touched). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#pause);
    this.#poll?.stop();
    this.#poll?.close();
    raw.close(this.#fd);
  }
}
