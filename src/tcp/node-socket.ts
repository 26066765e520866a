// The one place that touches Node's TCP handle internals (`socket._handle`). Node has no public
// way to stop its reader at once (pause() only stops emitting, libuv keeps reading into memory) or
// to get a connected socket's descriptor; capture needs both. Keep every such access here.
import type net from 'node:net';
import * as C from '../sys/constants.ts';
import { setsockoptInt } from '../sys/socket.ts';
import { peekInto } from './fd.ts';
import { setRepair } from './repair.ts';

interface NodeTcpHandle {
  readonly fd: number;
  /** Node's own flag: whether it believes the handle is reading (net.js tryReadStart). */
  reading: boolean;
  readStop(): number;
  readStart(): number;
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
