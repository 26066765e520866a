// A plain TCP listener for a daemon that hands most connections on without reading them: each accepted
// connection arrives as an owned descriptor with its endpoints (sys/listener.ts accepts), and becomes a
// net.Socket only if its owner asks (OwnedFd.toSocket).
import * as C from '../sys/constants.ts';
import { TcpListener } from '../sys/listener.ts';
import { getsockname, setsockoptInt } from '../sys/socket.ts';
import type { Endpoint } from '../wire/tcp-state.ts';
import { OwnedFd } from './fd.ts';

export interface AcceptedConnection {
  readonly fd: OwnedFd;
  readonly family: 4 | 6;
  readonly client: Endpoint;
  /** The local end (the listening address, or for a wildcard listener the connection's own). */
  readonly local: Endpoint;
}

export interface ListenerOptions {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  readonly backlog: number;
  /**
   * TCP_DEFER_ACCEPT: the kernel completes accept() only once the client's first bytes are in (waiting up to this
   * many seconds, then accepting anyway), so a client that speaks first costs one wakeup, and usually arrives with
   * its whole request head queued.
   */
  readonly deferAcceptS?: number;
}

export class Listener {
  readonly #l: TcpListener;
  /** Where it is bound (the port the kernel chose for port 0). */
  readonly address: Endpoint & { readonly family: 4 | 6 };
  /** Set when TCP_DEFER_ACCEPT could not be set: connections are then accepted at the handshake. */
  readonly deferAcceptError: Error | undefined;
  readonly #wildcard: boolean;

  private constructor(l: TcpListener, deferAcceptError: Error | undefined) {
    this.#l = l;
    this.deferAcceptError = deferAcceptError;
    this.address = l.address();
    this.#wildcard = this.address.address === '0.0.0.0' || this.address.address === '::';
  }

  /** Binds and listens; throws SysError (EADDRINUSE, EADDRNOTAVAIL, ...). Accepts nothing before start(). */
  static open(o: ListenerOptions): Listener {
    const l = TcpListener.open(o);
    let deferError: Error | undefined;
    if (o.deferAcceptS !== undefined) {
      try {
        setsockoptInt(l.fd, C.IPPROTO_TCP, C.TCP_DEFER_ACCEPT, 'TCP_DEFER_ACCEPT', o.deferAcceptS);
      } catch (e) {
        deferError = e instanceof Error ? e : new Error(String(e));
      }
    }
    try {
      return new Listener(l, deferError);
    } catch (e) {
      l.close();
      throw e;
    }
  }

  /** `onAccept` owns each connection's descriptor. `onError`: accepting failed for want of descriptors or memory (it resumes by itself). */
  start(onAccept: (c: AcceptedConnection) => void, onError: (e: Error) => void): void {
    const local = this.#wildcard ? undefined : { address: this.address.address, port: this.address.port };
    this.#l.start((fd, peer) => {
      const owned = new OwnedFd(fd);
      let end: Endpoint;
      try {
        end = local ?? getsockname(fd);
      } catch {
        owned.close(); // gone already
        return;
      }
      onAccept({ fd: owned, family: peer.family, client: { address: peer.address, port: peer.port }, local: end });
    }, onError);
  }

  /** Stops accepting; connections already accepted are their owners'. Idempotent. */
  close(): void {
    this.#l.close();
  }
}
