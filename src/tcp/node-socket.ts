// The one place that touches Node's TCP handle internals (`socket._handle`, the tcp_wrap binding). Node has no
// public way to stop its reader at once (pause() only stops emitting, libuv keeps reading into memory) or to get a
// connected socket's descriptor, which capture needs, nor to wrap a descriptor it knows is TCP without probing it.
// Keep every such access here.
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import * as C from '../sys/constants.ts';
import { peekInto, setsockoptInt } from '../sys/socket.ts';
import { setRepair } from './repair.ts';

interface NodeTcpHandle {
  readonly fd: number;
  /** Node's own flag: whether it believes the handle is reading (net.js tryReadStart). */
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

/** Node's TCP handle class (tcp_wrap), to open a socket on a descriptor without libuv guessing its type. */
interface TcpWrap {
  readonly TCP: new (type: number) => { open(fd: number): number };
  readonly constants: { readonly SOCKET: number };
}

const tcpWrap = ((): TcpWrap | undefined => {
  try {
    const b = (process as unknown as { binding(name: string): Partial<TcpWrap> }).binding('tcp_wrap');
    return typeof b.TCP === 'function' && typeof b.constants?.SOCKET === 'number' ? (b as TcpWrap) : undefined;
  } catch {
    return undefined;
  }
})();

export interface SocketOnFdOptions {
  readonly allowHalfOpen: boolean;
  /** Read into this one buffer and hand each chunk to `callback` instead of emitting 'data' (net.js). */
  readonly onread?: net.OnReadOpts;
}

/**
 * A net.Socket that owns the connected TCP descriptor `fd` from now on. Node's own `{ fd }` option has libuv guess
 * the descriptor's type first (isatty, fstat, getsockname, getsockopt SO_TYPE: four system calls); this opens a TCP
 * handle on it directly, which is what `{ fd }` ends up doing for a TCP socket. Wrapping took 9.5-14.0 µs against
 * 14.5-18.7 warm, and 117-122 against 137-155 µs right after a 20 ms sleep (.scratch/wrap.mts, 100-500 sockets
 * each). Falls back to `{ fd }` where the binding is missing. Throws (EEXIST, EBADF) like net.Socket.
 */
export function socketOnFd(fd: number, o: SocketOnFdOptions): net.Socket {
  const base = { readable: true, writable: true, allowHalfOpen: o.allowHalfOpen };
  // `onread` is a constructor option at run time (net.js) although @types/node lists it for connect() only.
  const reads: { onread?: net.OnReadOpts } = o.onread === undefined ? {} : { onread: o.onread };
  if (tcpWrap === undefined) return new net.Socket({ ...base, ...reads, fd });
  const handle = new tcpWrap.TCP(tcpWrap.constants.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) throw new Error(`open fd ${fd}: ${getSystemErrorName(err)}`);
  return new net.Socket({ ...base, ...reads, handle } as net.SocketConstructorOpts);
}

const handleOf = (s: net.Socket): NodeTcpHandle | undefined =>
  (s as unknown as { _handle: NodeTcpHandle | null })._handle ?? undefined;

/** The socket's descriptor, still owned by Node (do not close it); undefined once the socket is closed. */
export function fdOf(socket: net.Socket): number | undefined {
  const fd = handleOf(socket)?.fd;
  return fd !== undefined && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * Stops Node's reader now and for good: from here on the kernel keeps whatever arrives (the receive
 * queue that capture reads). False if the handle is already gone. `reading` is left true on purpose:
 * Node's Socket._read restarts the handle whenever that flag is false, and the stream machinery calls
 * _read on its own (read-ahead, even while paused). Seen with a pauseOnConnect socket: with the flag
 * false, one more 64 KiB chunk was read into Node's buffer after the head and was then missing from
 * the captured queue.
 */
export function stopReading(socket: net.Socket): boolean {
  socket.pause();
  const h = handleOf(socket);
  if (h === undefined) return false;
  h.readStop();
  h.reading = true;
  return true;
}

/** Undoes stopReading on a socket that stays (a move that did not happen): the handle reads again. */
export function resumeReading(socket: net.Socket): void {
  const h = handleOf(socket);
  if (h === undefined) return;
  h.readStart();
  h.reading = true;
  socket.resume();
}

/**
 * TCP_DEFER_ACCEPT on a listening server: the kernel completes accept() only once the client's first bytes have
 * arrived (waiting up to `seconds`, then accepting anyway), so a client that speaks first (an HTTP head, a TLS
 * hello) costs one wakeup of the process instead of two, and a connection that never speaks costs nothing in it
 * until then. False when the server has no descriptor (not listening).
 */
export function deferAccept(server: net.Server, seconds: number): boolean {
  const fd = (server as unknown as { _handle: { fd?: number } | null })._handle?.fd;
  if (fd === undefined || !Number.isInteger(fd) || fd < 0) return false;
  setsockoptInt(fd, C.IPPROTO_TCP, C.TCP_DEFER_ACCEPT, 'TCP_DEFER_ACCEPT', seconds);
  return true;
}

/**
 * Copies the first bytes queued on the socket's descriptor into `into` without taking them (MSG_PEEK): what the
 * application will read first. Returns the bytes copied (a view of `into`), or undefined when the socket has no
 * descriptor, nothing is queued, or Node already read from it (its buffer would come first).
 */
export function peekQueued(socket: net.Socket, into: Buffer): Buffer | undefined {
  const fd = fdOf(socket);
  if (fd === undefined || socket.readableLength > 0 || socket.bytesRead > 0) return undefined;
  return peekInto(fd, into);
}

/**
 * Ends a connection Node owns without a FIN or RST reaching the peer (repair mode, then destroy): for a delivered
 * connection that must not answer after all (its front-end gave it to another back-end). Never throws.
 */
export function destroySilently(socket: net.Socket): void {
  const fd = fdOf(socket);
  try {
    if (fd !== undefined) setRepair(fd, C.TCP_REPAIR_ON);
  } catch {
    // Not repairable any more (reset): destroying it is all that is left.
  }
  socket.destroy();
}
