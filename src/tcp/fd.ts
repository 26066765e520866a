// Owned descriptors: a socket descriptor has exactly one owner, and the owner's type says how it
// ends. OwnedFd closes it, drops it silently (repair mode first, so the peer sees neither FIN nor
// RST), or gives it up to a net.Socket, which then owns it. Every path of inject and of the
// receiver holds raw descriptors only through this type, so an error path cannot leak one.
import net from 'node:net';
import * as C from '../sys/constants.ts';
import { close } from '../sys/socket.ts';
import { TCP_ERR, TcpStateError } from './errors.ts';
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

  /** Gives the descriptor up to a new net.Socket, which owns (and closes) it from now on. */
  toSocket(opts: { readonly allowHalfOpen?: boolean } = {}): net.Socket {
    const socket = new net.Socket({ fd: this.fd, readable: true, writable: true, allowHalfOpen: opts.allowHalfOpen ?? false });
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
