// The handoff machine's kernel-facing ports for a real accepted socket: the ClientConnection
// adapter over a net.Socket and the capture function (repair-mode capture + blob encoding).
// Node's TCP handle is reached only through tcp/node-socket.ts.
import type net from 'node:net';
import { captureState, repairOff } from '../tcp/capture.ts';
import type { OwnedFd } from '../tcp/fd.ts';
import { fdOf, stopReading } from '../tcp/node-socket.ts';
import { getInfoOptions } from '../tcp/repair.ts';
import { encodeBlob } from '../wire/blob.ts';
import type { Endpoint } from '../wire/tcp-state.ts';
import type { FlowKey } from '../steer/types.ts';
import type { CaptureInput, CaptureResult, ClientConnection } from './handoff.ts';

/** Linux TCP_CLOSE (include/net/tcp_states.h): what a socket is once the peer reset it. */
const TCP_CLOSE = 7;

/** The endpoints of an accepted socket, read once at accept: after a reset Node no longer knows them. */
export function endpointsOf(s: net.Socket): { flow: FlowKey; vip: Endpoint } | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = s;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return undefined;
  const family = s.remoteFamily === 'IPv6' ? 6 : 4;
  return { flow: { family, clientAddress: remoteAddress, clientPort: remotePort }, vip: { address: localAddress, port: localPort } };
}

export { stopReading };

export interface SocketConnectionInit {
  readonly socket: net.Socket;
  readonly flow: FlowKey;
  readonly vip: Endpoint;
  readonly consumed: Uint8Array;
  readonly headAt: bigint;
  /** Answers on the socket (counting the status) and closes it. */
  readonly answer: (socket: net.Socket, status: number) => void;
}

/** Undefined when the socket has no descriptor any more (closed under us). */
export function socketConnection(o: SocketConnectionInit): ClientConnection | undefined {
  const fd = fdOf(o.socket);
  return fd === undefined ? undefined : new SocketConnection(o, fd);
}

/** One object per connection with methods, rather than a literal of eight closures. */
class SocketConnection implements ClientConnection {
  readonly fd: number;
  readonly flow: FlowKey;
  readonly vip: Endpoint;
  readonly consumed: Uint8Array;
  readonly headAt: bigint;
  readonly #socket: net.Socket;
  readonly #answer: (socket: net.Socket, status: number) => void;

  constructor(o: SocketConnectionInit, fd: number) {
    this.fd = fd;
    this.flow = o.flow;
    this.vip = o.vip;
    this.consumed = o.consumed;
    this.headAt = o.headAt;
    this.#socket = o.socket;
    this.#answer = o.answer;
  }

  isOpen(): boolean {
    return !this.#socket.destroyed && fdOf(this.#socket) === this.fd;
  }

  repairOff(): void {
    repairOff(this.fd);
  }

  closeSilently(): void {
    this.#socket.destroy();
  }

  answer(status: number): void {
    this.#answer(this.#socket, status);
  }

  discard(): void {
    this.#socket.destroy();
  }
}

export interface FdConnectionInit {
  /** The accepted descriptor; this connection owns it from now on. */
  readonly owned: OwnedFd;
  readonly flow: FlowKey;
  readonly vip: Endpoint;
  readonly headAt: bigint;
  /** Answers on the socket (counting the status) and closes it. */
  readonly answer: (socket: net.Socket, status: number) => void;
}

/**
 * A connection accepted as a bare descriptor (sys/listener.ts) whose whole head was queued: nothing was read, and
 * nobody else holds the descriptor, so it cannot close under us. Only an answer given here makes a net.Socket of it.
 */
export class FdConnection implements ClientConnection {
  readonly fd: number;
  readonly flow: FlowKey;
  readonly vip: Endpoint;
  readonly consumed: Uint8Array = NOTHING;
  readonly headAt: bigint;
  readonly #owned: OwnedFd;
  readonly #answer: (socket: net.Socket, status: number) => void;

  constructor(o: FdConnectionInit) {
    this.fd = o.owned.fd;
    this.flow = o.flow;
    this.vip = o.vip;
    this.headAt = o.headAt;
    this.#owned = o.owned;
    this.#answer = o.answer;
  }

  isOpen(): boolean {
    return this.#owned.owned;
  }

  repairOff(): void {
    repairOff(this.fd);
  }

  closeSilently(): void {
    this.#owned.close();
  }

  answer(status: number): void {
    if (!this.#owned.owned) return;
    const socket = this.#owned.toSocket();
    socket.on('error', ignore);
    socket.setNoDelay(true);
    this.#answer(socket, status);
  }

  discard(): void {
    this.#owned.close();
  }
}

const NOTHING = new Uint8Array(0);
const ignore = (): void => undefined;

/** Captures the held connection's state and encodes the blob. */
export function kernelCapture(i: CaptureInput): CaptureResult {
  try {
    const state = captureState({
      fd: i.fd,
      family: i.flow.family,
      client: { address: i.flow.clientAddress, port: i.flow.clientPort },
      vip: i.vip,
      consumed: i.consumed,
      consumedIsAll: true, // a front-end's connection: what it read is all anyone read
    });
    const encode = (encap: { readonly frontend: string } | undefined): Uint8Array =>
      encodeBlob({ handoffId: i.handoffId, flowId: i.flowId, state, ...(encap && { encap }) });
    return { ok: true, blob: encode(i.encap), reencode: encode };
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return { ok: false, gone: isClosed(i.fd), error };
  }
}

function isClosed(fd: number): boolean {
  try {
    return getInfoOptions(fd).state === TCP_CLOSE;
  } catch {
    return false;
  }
}
