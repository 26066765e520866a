// Typed socket syscalls. Each wrapper checks the return value and throws SysError naming the
// call (and the option, for socket options).
import * as C from './constants.ts';
import { SysError } from './errors.ts';
import { lastErrno, raw } from './libc.ts';
import { decodeSockaddr, encodeSockaddr, type SockAddr } from './sockaddr.ts';

export type { SockAddr } from './sockaddr.ts';

function check(call: string, rc: number): number {
  if (rc < 0) throw new SysError(call, lastErrno());
  return rc;
}

export function socket(family: 4 | 6): number {
  const domain = family === 4 ? C.AF_INET : C.AF_INET6;
  return check('socket', raw.socket(domain, C.SOCK_STREAM | C.SOCK_CLOEXEC, C.IPPROTO_TCP));
}

/** A send-only raw IP socket: the caller writes the IP header too (IPPROTO_RAW implies IP_HDRINCL). */
export function rawSocket(family: 4 | 6): number {
  const domain = family === 4 ? C.AF_INET : C.AF_INET6;
  return check('socket(SOCK_RAW)', raw.socket(domain, C.SOCK_RAW | C.SOCK_CLOEXEC, C.IPPROTO_RAW));
}

export function bind(fd: number, addr: SockAddr): void {
  const sa = encodeSockaddr(addr);
  check('bind', raw.bind(fd, sa, sa.length));
}

export function connect(fd: number, addr: SockAddr): void {
  const sa = encodeSockaddr(addr);
  check('connect', raw.connect(fd, sa, sa.length));
}

export function close(fd: number): void {
  check('close', raw.close(fd));
}

// Scratch buffers for the fixed-size arguments of the per-handoff calls: the calls are synchronous, so one of
// each serves every call, and a handoff's dozen socket-option calls allocate nothing. Error labels are built
// only on failure.
const INT_ARG = Buffer.alloc(4);
const LEN_ARG = Buffer.alloc(4);
const U32_OUT = Buffer.alloc(4);

export function setsockoptBuf(fd: number, level: number, name: number, label: string, val: Buffer): void {
  if (raw.setsockopt(fd, level, name, val, val.length) < 0) throw new SysError(`setsockopt(${label})`, lastErrno());
}

export function setsockoptInt(fd: number, level: number, name: number, label: string, value: number): void {
  if (value < 0) INT_ARG.writeInt32LE(value);
  else INT_ARG.writeUInt32LE(value);
  setsockoptBuf(fd, level, name, label, INT_ARG);
}

/** getsockopt into `into` (a buffer the caller may reuse); returns the byte count the kernel filled. */
export function getsockoptInto(fd: number, level: number, name: number, label: string, into: Buffer): number {
  LEN_ARG.writeUInt32LE(into.length);
  if (raw.getsockopt(fd, level, name, into, LEN_ARG) < 0) throw new SysError(`getsockopt(${label})`, lastErrno());
  return LEN_ARG.readUInt32LE();
}

/** getsockopt into a new buffer of `size` bytes; returns the bytes the kernel filled. */
export function getsockoptBuf(fd: number, level: number, name: number, label: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  return b.subarray(0, getsockoptInto(fd, level, name, label, b));
}

export function getsockoptU32(fd: number, level: number, name: number, label: string): number {
  getsockoptInto(fd, level, name, label, U32_OUT);
  return U32_OUT.readUInt32LE();
}

export function ioctlInt(fd: number, req: number, label: string): number {
  if (raw.ioctl(fd, req, U32_OUT) < 0) throw new SysError(`ioctl(${label})`, lastErrno());
  return U32_OUT.readInt32LE();
}

/** recv(2) with flags; returns the bytes received (possibly fewer than len). */
export function recv(fd: number, len: number, flags: number, label = 'recv'): Buffer {
  const b = Buffer.alloc(len);
  const n = check(label, raw.recv(fd, b, len, flags));
  return b.subarray(0, n);
}

/**
 * recv(2) into a buffer the caller owns (a reused scratch buffer: no allocation per call); returns the
 * byte count, or -1 with MSG_DONTWAIT and nothing queued (EAGAIN). Other errors throw.
 */
export function recvInto(fd: number, buf: Buffer, flags: number, label = 'recv'): number {
  const n = raw.recv(fd, buf, buf.length, flags);
  if (n < 0) {
    const errno = lastErrno();
    if (errno === C.EAGAIN) return -1;
    throw new SysError(label, errno);
  }
  return n;
}

/**
 * Copies the first bytes queued on socket `fd` into `into` without taking them (MSG_PEEK, non-blocking). Returns
 * the bytes copied (a view of `into`), or undefined when nothing is queued.
 */
export function peekInto(fd: number, into: Buffer): Buffer | undefined {
  const n = recvInto(fd, into, C.MSG_PEEK | C.MSG_DONTWAIT, 'recv(MSG_PEEK)');
  return n <= 0 ? undefined : into.subarray(0, n);
}

/** send(2); returns the number of bytes the kernel took. */
export function send(fd: number, data: Buffer, flags: number, label = 'send'): number {
  return check(label, raw.send(fd, data, data.length, flags));
}

function nameOf(call: 'getsockname' | 'getpeername', fd: number): SockAddr {
  const b = Buffer.alloc(128);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  check(call, raw[call](fd, b, len));
  return decodeSockaddr(b.subarray(0, len.readUInt32LE()));
}

export const getsockname = (fd: number): SockAddr => nameOf('getsockname', fd);
export const getpeername = (fd: number): SockAddr => nameOf('getpeername', fd);
