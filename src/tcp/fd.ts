// Owned descriptors: a socket descriptor has exactly one owner, and the owner's type says how it
// ends. OwnedFd closes it, drops it silently (repair mode first, so the peer sees neither FIN nor
// RST), or gives it up to a net.Socket, which then owns it. Every path of inject and of the
// receiver holds raw descriptors only through this type, so an error path cannot leak one.
import type net from 'node:net';
import * as C from '../sys/constants.ts';
import { close, peekInto } from '../sys/socket.ts';
import { TCP_ERR, TcpStateError } from './errors.ts';
import { socketOnFd } from './node-socket.ts';
import { setRepair } from './repair.ts';

export class OwnedFd {
  #fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new TcpStateError(TCP_ERR.FD_CLOSED, `fd: invalid descriptor ${fd}`);
    this.#fd = fd;
  }

  /** The descriptor number, for system calls; throws once the descriptor is closed or given up. */
  get fd(): number {
    if (this.#fd < 0) throw new TcpStateError(TCP_ERR.FD_CLOSED, 'fd: descriptor already closed or given up');
    return this.#fd;
  }

  /** False once closed, dropped or given up. */
  get owned(): boolean {
    return this.#fd >= 0;
  }

  /**
   * Closes the descriptor. Idempotent; never throws: Linux releases the descriptor even when
   * close(2) reports an error, and a cleanup path must not hide the error that led to it.
   */
  close(): void {
    const fd = this.#take();
    if (fd < 0) return;
    try {
      close(fd);
    } catch {
      // The descriptor is gone either way (close(2) on Linux).
    }
  }

  /**
   * Copies the first bytes queued on the socket into `into` without taking them (MSG_PEEK): what its reader will
   * read first. Returns the bytes copied (a view of `into`), or undefined when nothing is queued.
   */
  peek(into: Buffer): Buffer | undefined {
    return peekInto(this.fd, into);
  }

  /** Closes a TCP socket without a FIN or RST reaching the peer. Idempotent; never throws. */
  dropSilently(): void {
    if (this.#fd < 0) return;
    try {
      setRepair(this.#fd, C.TCP_REPAIR_ON);
    } catch {
      // Not repairable (e.g. already reset): closing is all that is left to do.
    }
    this.close();
  }

  /**
   * Gives the descriptor up to a new net.Socket, which owns (and closes) it from now on. With `reads`, the socket
   * reads into that one reusable buffer and hands each chunk to its consumer instead of emitting 'data'.
   */
  toSocket(opts: { readonly allowHalfOpen?: boolean; readonly reads?: ReusableReads } = {}): net.Socket {
    const socket = socketOnFd(this.fd, { allowHalfOpen: opts.allowHalfOpen ?? false, ...(opts.reads !== undefined && { onread: { buffer: opts.reads.buffer, callback: opts.reads.onRead } }) });
    this.#take();
    return socket;
  }

  /** Gives up ownership; the caller now owns the returned descriptor. */
  release(): number {
    const fd = this.fd;
    this.#take();
    return fd;
  }

  #take(): number {
    const fd = this.#fd;
    this.#fd = -1;
    return fd;
  }
}

/** Read size of a ReusableReads buffer: what Node reads at once for its own sockets. */
const READ_BYTES = 64 * 1024;

/**
 * A socket's reads into one buffer of its own, reused for every read (net.Socket's `onread`): no allocation per
 * read. Each chunk the consumer gets is a view of that buffer, valid only until the consumer returns: anything it
 * keeps, it must copy. For an 8 MiB upload through the request-boundary layer this halves the buffers allocated
 * per byte (Node's http parser copies the body once more in any case), and with them the garbage collections.
 */
export class ReusableReads {
  readonly buffer: Buffer = Buffer.allocUnsafe(READ_BYTES);
  #consumer: ((view: Buffer) => void) | undefined;
  /** Chunks read before a consumer was attached, copied (none in practice: attach happens in the same tick). */
  #early: Buffer[] = [];
  #earlyBytes = 0;

  /**
   * net.Socket's `onread` callback; true: keep reading (the consumer pauses the socket itself). Without a consumer
   * the socket pauses once one buffer's worth is kept: nothing else would ever stop it.
   */
  readonly onRead = (n: number): boolean => {
    const view = this.buffer.subarray(0, n);
    if (this.#consumer !== undefined) {
      this.#consumer(view);
      return true;
    }
    this.#early.push(Buffer.from(view));
    this.#earlyBytes += n;
    return this.#earlyBytes < READ_BYTES;
  };

  /** Sends every chunk, from now on, to `consumer`. */
  consume(consumer: (view: Buffer) => void): void {
    this.#consumer = consumer;
    this.#earlyBytes = 0;
    for (const b of this.#early.splice(0)) consumer(b);
  }
}
