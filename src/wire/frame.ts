// Control-channel frames and messages (front-end <-> back-end agent). Pure: no I/O, no clock.
//
// A frame on the wire is `[u32be length][u8 type][payload]`, where length counts the type byte
// and the payload. FrameDecoder cuts a byte stream into frames under a size limit that the
// channel lowers before authentication; decodeMessage/encodeMessage convert frames to a typed
// message union. Decoding is strict: exact payload lengths, bounded strings that must be valid
// UTF-8, unknown types and flag bits refused. Every failure is a FrameError naming the field,
// and a channel that sees one drops the connection.
//
// Addresses use wire/bytes.ts, so decoded text is exactly what Node's net module prints.
//
// Payloads, all integers big-endian:
//   HELLO     0x01  protoVersion u16, nonce [32], nameLen u8, name utf8 (<= 64 bytes)
//   CHALLENGE 0x02  nonce [32], proof [32]
//   AUTH      0x03  proof [32]
//   AUTH_OK   0x04  (empty)
//   HANDOFF   0x10  id u64, blob (the rest of the frame)
//   ACK       0x11  id u64, ok u8 (0|1), codeLen u8, code (<= 64), reasonLen u16, reason (<= 256)
//   LOAD      0x12  active u32, seq u32, commits u32, flags u8 (bit 0: capacity present), [capacity u32]
//                   (commits: COMMIT frames this peer's channel delivered before `active` was read, mod 2^32)
//   FLOW_END  0x13  id u64 (the handoff that placed the connection), family u8 (4|6),
//                   client addr [4|16], client port u16, vip addr [4|16], vip port u16
//   COMMIT    0x14  id u64
//   ABORT     0x15  id u64
//   (0x16, COMMIT_DATA of the lossless prototype, is retired: forwarded handoffs replaced it)
//   HANDOFF_FWD 0x17 id u64, blob (rest): the front-end already steers this flow here (it forwarded before it
//                   captured): inject and deliver at once, answer with ACK; no COMMIT follows (docs/handoff.md)
//   VIPS      0x18  FE -> agent: count u8 (<= 64), then per VIP: family u8 (4|6), addr [4|16], port u16
//   GUARD     0x19  agent -> FE, the answer to VIPS: flags u8 (bit 0: HANDOFF_FWD accepted, the VIPs are guarded
//                   against early packets; bit 1: early packets are parked and delivered, not dropped)
//   PARK      0x1A  FE -> agent: action u8 (0 expect, 1 discard), family u8 (4|6), client addr [4|16], client port u16,
//                   vip addr [4|16], vip port u16. expect: this tuple is being moved here, park its packets until its
//                   HANDOFF_FWD (never a reset); discard: it will not come, drop what is parked (docs/moves.md)
//   PING      0x20  token u64
//   PONG      0x21  token u64
//   Moves at request boundaries (issue 8, docs/moves.md):
//   ROUTES    0x30  FE -> agent: version u32, JSON of the routing snapshot (rest, <= 1 MiB)
//   MOVE      0x40  agent -> FE: id u64 (agent's), handoffId u64 and flowId u32 (what placed the flow), reason u8,
//                   family u8, client addr/port, vip addr/port (as FLOW_END), head (rest, <= 64 KiB; empty: idle move)
//   MOVE_REPLY 0x41 FE -> agent: id u64, verdict u8 (0 stay, 1 go, 2 refuse), codeLen u8, code (<= 64)
//   MOVE_BLOB 0x42  agent -> FE: id u64, ok u8; ok=1: blob (rest); ok=0: codeLen u8, code, reasonLen u16, reason
//   MOVE_DONE 0x43  FE -> agent: id u64, outcome u8 (0 moved, 1 returned to its owner, 2 lost)
//   DRAIN     0x44  FE -> agent: flags u8 (bit 0: draining)
//   STAYS     0x32  agent -> FE: requests, stays, moves, kept, moved, pinned u32 (totals since start), decideNs u64,
//                   captureNs u64 (totals)
//   OWNER_QUERY 0x50  id u32, flowId u32 (0: no encapsulation), family u8 (4|6), client addr [4|16],
//                     client port u16, vip addr [4|16], vip port u16, frontend addr [4|16] (encap source; zero if none)
//                     (front-end -> agent: "do you hold this connection?"; with a flow id the owner maps
//                     (frontend, flowId) for decapsulation before it answers)
//   OWNER_REPLY 0x51  id u32, found u8 (0|1), handoffId u64 (the handoff that placed it; 0 when not found)

import { concatBytes, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './bytes.ts';
import { WireError } from './errors.ts';
import type { AddressFamily, Endpoint } from './tcp-state.ts';

export const FRAME_HEADER_BYTES = 5;
/** Frame limit (length field) before authentication: the handshake frames are all < 100 bytes. */
export const PRE_AUTH_MAX_FRAME_BYTES = 256;
/** Default frame limit after authentication: blobs carry request bodies. */
export const DEFAULT_MAX_FRAME_BYTES = 72 * 1024 * 1024;

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const MAX_NAME_BYTES = 64;
export const MAX_CODE_BYTES = 64;
export const MAX_REASON_BYTES = 256;

export const FrameType = {
  hello: 0x01,
  challenge: 0x02,
  auth: 0x03,
  authOk: 0x04,
  handoff: 0x10,
  ack: 0x11,
  load: 0x12,
  flowEnd: 0x13,
  commit: 0x14,
  abort: 0x15,
  handoffFwd: 0x17,
  vips: 0x18,
  guard: 0x19,
  park: 0x1a,
  ping: 0x20,
  pong: 0x21,
  routes: 0x30,
  stays: 0x32,
  move: 0x40,
  moveReply: 0x41,
  moveBlob: 0x42,
  moveDone: 0x43,
  drain: 0x44,
  ownerQuery: 0x50,
  ownerReply: 0x51,
} as const;

/** Largest ROUTES JSON and MOVE head accepted. */
export const MAX_ROUTES_BYTES = 1024 * 1024;
export const MAX_MOVE_HEAD_BYTES = 64 * 1024;
/** Most VIPs one VIPS frame names. */
export const MAX_VIPS = 64;
export type MoveVerdict = 'stay' | 'go' | 'refuse';
export type MoveOutcomeCode = 'moved' | 'returned' | 'lost';
/** PARK: a tuple the front-end is moving to this agent (expect), or one that will not come after all (discard). */
export type ParkAction = 'expect' | 'discard';
const VERDICTS: readonly MoveVerdict[] = ['stay', 'go', 'refuse'];
const OUTCOMES: readonly MoveOutcomeCode[] = ['moved', 'returned', 'lost'];
const PARK_ACTIONS: readonly ParkAction[] = ['expect', 'discard'];


export const FRAME_ERR = {
  /** The length field is over the decoder's limit (or a frame would not fit a u32). */
  TOO_LARGE: 'BATON_ERR_FRAME_TOO_LARGE',
  /** Unknown frame type. */
  TYPE: 'BATON_ERR_FRAME_TYPE',
  /** Anything else: zero length, truncated or trailing bytes, bad string, flag, value. */
  MALFORMED: 'BATON_ERR_FRAME_MALFORMED',
} as const;

/** Thrown for any malformed, oversized or unencodable frame. `field` names the offending field. */
export class FrameError extends WireError {
  constructor(field: string, message: string, code: string = FRAME_ERR.MALFORMED) {
    super(code, field, `frame: ${field}: ${message}`);
  }
}

/** The flow a FLOW_END reports; addresses in the canonical text form Node's net module prints. */
export interface FlowInfo {
  readonly family: AddressFamily;
  readonly client: Endpoint;
  readonly vip: Endpoint;
}

export type Message =
  | { readonly kind: 'hello'; readonly protoVersion: number; readonly nonce: Uint8Array; readonly name: string }
  | { readonly kind: 'challenge'; readonly nonce: Uint8Array; readonly proof: Uint8Array }
  | { readonly kind: 'auth'; readonly proof: Uint8Array }
  | { readonly kind: 'auth-ok' }
  | { readonly kind: 'handoff'; readonly id: bigint; readonly blob: Uint8Array }
  | { readonly kind: 'handoff-fwd'; readonly id: bigint; readonly blob: Uint8Array }
  | { readonly kind: 'vips'; readonly vips: readonly VipAddress[] }
  | { readonly kind: 'guard'; readonly early: boolean; readonly lossless: boolean }
  | ({ readonly kind: 'park'; readonly action: ParkAction } & FlowInfo)
  | {
      readonly kind: 'ack';
      readonly id: bigint;
      readonly ok: boolean;
      readonly code: string;
      readonly reason: string;
    }
  | { readonly kind: 'load'; readonly active: number; readonly capacity?: number; readonly seq: number; readonly commits: number }
  | ({ readonly kind: 'flow-end'; readonly id: bigint } & FlowInfo)
  | { readonly kind: 'commit'; readonly id: bigint }
  | { readonly kind: 'abort'; readonly id: bigint }
  | ({ readonly kind: 'owner-query'; readonly id: number; readonly flowId: number; readonly frontend: string } & FlowInfo)
  | { readonly kind: 'owner-reply'; readonly id: number; readonly found: boolean; readonly handoffId: bigint }
  | { readonly kind: 'ping'; readonly token: bigint }
  | { readonly kind: 'pong'; readonly token: bigint }
  | { readonly kind: 'routes'; readonly version: number; readonly json: string }
  | ({ readonly kind: 'move'; readonly id: bigint; readonly handoffId: bigint; readonly flowId: number; readonly reason: number; readonly head: Uint8Array } & FlowInfo)
  | { readonly kind: 'move-reply'; readonly id: bigint; readonly verdict: MoveVerdict; readonly code: string }
  | { readonly kind: 'move-blob'; readonly id: bigint; readonly ok: true; readonly blob: Uint8Array }
  | { readonly kind: 'move-blob'; readonly id: bigint; readonly ok: false; readonly code: string; readonly reason: string }
  | { readonly kind: 'move-done'; readonly id: bigint; readonly outcome: MoveOutcomeCode }
  | { readonly kind: 'drain'; readonly draining: boolean }
  | { readonly kind: 'stays'; readonly counts: StaysCounts };

/** A virtual address and port a front-end accepts clients on (VIPS). */
export interface VipAddress {
  readonly family: AddressFamily;
  readonly address: string;
  readonly port: number;
}

/** The agent's request counters (STAYS), totals since it started. */
export interface StaysCounts {
  readonly requests: number;
  readonly stays: number;
  readonly moves: number;
  readonly kept: number;
  readonly moved: number;
  readonly pinned: number;
  /** Sum of decide() times, ns. */
  readonly decideNs: bigint;
  /** Sum of the owner's capture times for moves (stop reading, TCP_REPAIR capture, blob encoding), ns. */
  readonly captureNs: bigint;
}
const STAYS_FIELDS = ['requests', 'stays', 'moves', 'kept', 'moved', 'pinned'] as const;

export type MessageKind = Message['kind'];

export interface Frame {
  readonly type: number;
  readonly payload: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Streaming decoder

/**
 * Cuts a byte stream into frames. Pull-based so the limit can change between frames (the
 * channel raises it right after AUTH_OK, which may share a chunk with later frames).
 * After an error the decoder stays failed.
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #head = 0; // offset of the first unread byte in #chunks[0]
  #buffered = 0;
  #maxFrameBytes: number;
  #error: FrameError | undefined;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    this.#maxFrameBytes = checkLimit(maxFrameBytes);
  }

  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  set maxFrameBytes(n: number) {
    this.#maxFrameBytes = checkLimit(n);
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** The decoder keeps `chunk` (a frame's payload may be a view of it): do not reuse it afterwards. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next complete frame, or undefined if more bytes are needed. Throws FrameError. */
  next(): Frame | undefined {
    if (this.#error !== undefined) throw this.#error;
    if (this.#buffered < 4) return undefined;
    const header = this.#peek(4);
    const length = ((header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!) >>> 0;
    if (length < 1) return this.#fail('length', 'frame length 0 (no type byte)');
    if (length > this.#maxFrameBytes) {
      return this.#fail('length', `frame length ${length} exceeds limit ${this.#maxFrameBytes}`, FRAME_ERR.TOO_LARGE);
    }
    if (this.#buffered < 4 + length) return undefined;
    this.#take(4);
    const type = this.#take(1)[0]!;
    const payload = this.#take(length - 1);
    return { type, payload };
  }

  #fail(field: string, message: string, code?: string): never {
    this.#error = new FrameError(field, message, code);
    this.#chunks = [];
    this.#buffered = 0;
    throw this.#error;
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length - this.#head >= n) return first.subarray(this.#head, this.#head + n);
    return this.#gather(n, false);
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (n === 0 || first === undefined) return new Uint8Array(0);
    if (first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#advance(n);
      return out;
    }
    return this.#gather(n, true);
  }

  /** Copies n bytes that span chunks; consumes them if `consume`. */
  #gather(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let offset = this.#head;
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(offset, offset + (n - filled));
      out.set(part, filled);
      filled += part.length;
      offset = 0;
      if (filled === n) break;
    }
    if (consume) this.#advance(n);
    return out;
  }

  #advance(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0]!;
      const left = first.length - this.#head;
      if (n < left) {
        this.#head += n;
        return;
      }
      n -= left;
      this.#chunks.shift();
      this.#head = 0;
    }
  }
}

function checkLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 0xffff_ffff) {
    throw new FrameError('maxFrameBytes', `invalid limit ${n}`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Messages

const kindOfType = new Map<number, MessageKind>([
  [FrameType.hello, 'hello'],
  [FrameType.challenge, 'challenge'],
  [FrameType.auth, 'auth'],
  [FrameType.authOk, 'auth-ok'],
  [FrameType.handoff, 'handoff'],
  [FrameType.ack, 'ack'],
  [FrameType.load, 'load'],
  [FrameType.flowEnd, 'flow-end'],
  [FrameType.commit, 'commit'],
  [FrameType.abort, 'abort'],
  [FrameType.handoffFwd, 'handoff-fwd'],
  [FrameType.vips, 'vips'],
  [FrameType.guard, 'guard'],
  [FrameType.park, 'park'],
  [FrameType.ping, 'ping'],
  [FrameType.pong, 'pong'],
  [FrameType.routes, 'routes'],
  [FrameType.stays, 'stays'],
  [FrameType.move, 'move'],
  [FrameType.moveReply, 'move-reply'],
  [FrameType.moveBlob, 'move-blob'],
  [FrameType.moveDone, 'move-done'],
  [FrameType.drain, 'drain'],
  [FrameType.ownerQuery, 'owner-query'],
  [FrameType.ownerReply, 'owner-reply'],
]);

/**
 * Decodes one frame into a message. Byte fields are fresh copies, except a blob (HANDOFF, HANDOFF_FWD, MOVE_BLOB),
 * which is a view of the frame's payload: a blob carries an upload's first ~100-200 KiB, which its reader checks and
 * injects at once, while the client waits. Keep a copy of a blob that must outlive the frame's bytes.
 */
export function decodeMessage(frame: Frame): Message {
  const kind = kindOfType.get(frame.type);
  if (kind === undefined) {
    throw new FrameError('type', `unknown frame type 0x${frame.type.toString(16).padStart(2, '0')}`, FRAME_ERR.TYPE);
  }
  const r = new Reader(frame.payload, kind);
  let m: Message;
  switch (kind) {
    case 'hello':
      m = { kind, protoVersion: r.u16('protoVersion'), nonce: r.bytes(NONCE_BYTES, 'nonce'), name: r.str8(MAX_NAME_BYTES, 'name') };
      break;
    case 'challenge':
      m = { kind, nonce: r.bytes(NONCE_BYTES, 'nonce'), proof: r.bytes(PROOF_BYTES, 'proof') };
      break;
    case 'auth':
      m = { kind, proof: r.bytes(PROOF_BYTES, 'proof') };
      break;
    case 'auth-ok':
      m = { kind };
      break;
    case 'handoff':
    case 'handoff-fwd':
      m = { kind, id: r.u64('id'), blob: r.view(r.remaining, 'blob') };
      break;
    case 'vips': {
      const count = r.u8('count');
      if (count > MAX_VIPS) throw new FrameError('vips.count', `${count} exceeds ${MAX_VIPS}`);
      const vips: VipAddress[] = [];
      for (let i = 0; i < count; i++) {
        const family = r.u8('family');
        if (family !== 4 && family !== 6) throw new FrameError('vips.family', `invalid address family ${family}`);
        vips.push({ family, address: formatIp(r.bytes(family === 4 ? 4 : 16, 'address')), port: r.u16('port') });
      }
      m = { kind, vips };
      break;
    }
    case 'guard': {
      const flags = r.u8('flags');
      if ((flags & ~3) !== 0) throw new FrameError('guard.flags', `unknown flags 0x${flags.toString(16)}`);
      m = { kind, early: (flags & 1) === 1, lossless: (flags & 2) === 2 };
      break;
    }
    case 'park': {
      const action = PARK_ACTIONS[r.u8('action')];
      if (action === undefined) throw new FrameError('park.action', 'unknown action');
      m = { kind, action, ...readFlow(r, 'park') };
      break;
    }
    case 'ack': {
      const id = r.u64('id');
      const okByte = r.u8('ok');
      if (okByte > 1) throw new FrameError('ack.ok', `invalid boolean ${okByte}`);
      m = { kind, id, ok: okByte === 1, code: r.str8(MAX_CODE_BYTES, 'code'), reason: r.str16(MAX_REASON_BYTES, 'reason') };
      break;
    }
    case 'load': {
      const active = r.u32('active');
      const seq = r.u32('seq');
      const commits = r.u32('commits');
      const flags = r.u8('flags');
      if ((flags & ~1) !== 0) throw new FrameError('load.flags', `unknown flags 0x${flags.toString(16)}`);
      m = (flags & 1) === 1 ? { kind, active, capacity: r.u32('capacity'), seq, commits } : { kind, active, seq, commits };
      break;
    }
    case 'flow-end': {
      const id = r.u64('id');
      const fam = r.u8('family');
      if (fam !== 4 && fam !== 6) throw new FrameError('flow-end.family', `invalid address family ${fam}`);
      const n = fam === 4 ? 4 : 16;
      const client = { address: formatIp(r.bytes(n, 'client.address')), port: r.u16('client.port') };
      const vip = { address: formatIp(r.bytes(n, 'vip.address')), port: r.u16('vip.port') };
      m = { kind, id, family: fam, client, vip };
      break;
    }
    case 'commit':
    case 'abort':
      m = { kind, id: r.u64('id') };
      break;
    case 'owner-query': {
      const id = r.u32('id');
      const flowId = r.u32('flowId');
      if (flowId > 0x7fffffff) throw new FrameError('owner-query.flowId', `flow id ${flowId} is above 2^31-1`);
      const fam = r.u8('family');
      if (fam !== 4 && fam !== 6) throw new FrameError('owner-query.family', `invalid address family ${fam}`);
      const n = fam === 4 ? 4 : 16;
      const client = { address: formatIp(r.bytes(n, 'client.address')), port: r.u16('client.port') };
      const vip = { address: formatIp(r.bytes(n, 'vip.address')), port: r.u16('vip.port') };
      const frontend = formatIp(r.bytes(n, 'frontend'));
      m = { kind, id, flowId, family: fam, client, vip, frontend };
      break;
    }
    case 'owner-reply': {
      const id = r.u32('id');
      const f = r.u8('found');
      if (f > 1) throw new FrameError('owner-reply.found', `invalid boolean ${f}`);
      m = { kind, id, found: f === 1, handoffId: r.u64('handoffId') };
      break;
    }
    case 'ping':
    case 'pong':
      m = { kind, token: r.u64('token') };
      break;
    case 'routes': {
      const version = r.u32('version');
      if (r.remaining > MAX_ROUTES_BYTES) throw new FrameError('routes.json', `length ${r.remaining} exceeds ${MAX_ROUTES_BYTES}`);
      m = { kind, version, json: r.str(r.remaining, MAX_ROUTES_BYTES, 'json') };
      break;
    }
    case 'move': {
      const id = r.u64('id');
      const handoffId = r.u64('handoffId');
      const flowId = r.u32('flowId');
      const reason = r.u8('reason');
      const { family, client, vip } = readFlow(r, 'move');
      if (r.remaining > MAX_MOVE_HEAD_BYTES) throw new FrameError('move.head', `length ${r.remaining} exceeds ${MAX_MOVE_HEAD_BYTES}`);
      m = { kind, id, handoffId, flowId, reason, family, client, vip, head: r.bytes(r.remaining, 'head') };
      break;
    }
    case 'move-reply': {
      const id = r.u64('id');
      const v = VERDICTS[r.u8('verdict')];
      if (v === undefined) throw new FrameError('move-reply.verdict', 'unknown verdict');
      m = { kind, id, verdict: v, code: r.str8(MAX_CODE_BYTES, 'code') };
      break;
    }
    case 'move-blob': {
      const id = r.u64('id');
      const okByte = r.u8('ok');
      if (okByte > 1) throw new FrameError('move-blob.ok', `invalid boolean ${okByte}`);
      m = okByte === 1
        ? { kind, id, ok: true, blob: r.view(r.remaining, 'blob') }
        : { kind, id, ok: false, code: r.str8(MAX_CODE_BYTES, 'code'), reason: r.str16(MAX_REASON_BYTES, 'reason') };
      break;
    }
    case 'move-done': {
      const id = r.u64('id');
      const o = OUTCOMES[r.u8('outcome')];
      if (o === undefined) throw new FrameError('move-done.outcome', 'unknown outcome');
      m = { kind, id, outcome: o };
      break;
    }
    case 'drain': {
      const flags = r.u8('flags');
      if ((flags & ~1) !== 0) throw new FrameError('drain.flags', `unknown flags 0x${flags.toString(16)}`);
      m = { kind, draining: flags === 1 };
      break;
    }
    case 'stays': {
      const c: Record<string, number> = {};
      for (const f of STAYS_FIELDS) c[f] = r.u32(f);
      m = { kind, counts: { requests: c['requests']!, stays: c['stays']!, moves: c['moves']!, kept: c['kept']!, moved: c['moved']!, pinned: c['pinned']!, decideNs: r.u64('decideNs'), captureNs: r.u64('captureNs') } };
      break;
    }
  }
  r.end();
  return m;
}

/** Encodes a whole frame (header included). Throws FrameError for values that do not fit. */
export function encodeMessage(m: Message): Uint8Array {
  return writeMessage(m).frame();
}

/**
 * The same frame as encodeMessage, in parts for one vectored write: a blob of BY_REFERENCE bytes or more is its own
 * part, the caller's array itself (not copied: an upload's blob is ~100-200 KiB), and must not change until written.
 */
export function encodeMessageParts(m: Message): Uint8Array[] {
  return writeMessage(m).parts();
}

function writeMessage(m: Message): Writer {
  const w = new Writer(m.kind);
  switch (m.kind) {
    case 'hello':
      w.u16(m.protoVersion, 'protoVersion').fixed(m.nonce, NONCE_BYTES, 'nonce').str8(m.name, MAX_NAME_BYTES, 'name');
      return w.typed(FrameType.hello);
    case 'challenge':
      w.fixed(m.nonce, NONCE_BYTES, 'nonce').fixed(m.proof, PROOF_BYTES, 'proof');
      return w.typed(FrameType.challenge);
    case 'auth':
      w.fixed(m.proof, PROOF_BYTES, 'proof');
      return w.typed(FrameType.auth);
    case 'auth-ok':
      return w.typed(FrameType.authOk);
    case 'handoff':
    case 'handoff-fwd':
      w.u64(m.id, 'id').raw(m.blob);
      return w.typed(m.kind === 'handoff' ? FrameType.handoff : FrameType.handoffFwd);
    case 'vips':
      if (m.vips.length > MAX_VIPS) throw new FrameError('vips.count', `${m.vips.length} exceeds ${MAX_VIPS}`);
      w.u8(m.vips.length, 'count');
      for (const v of m.vips) {
        if (v.family !== 4 && v.family !== 6) throw new FrameError('vips.family', `invalid address family ${String(v.family)}`);
        w.u8(v.family, 'family').fixed(parseIp(v.address, v.family, 'address'), v.family === 4 ? 4 : 16, 'address').u16(v.port, 'port');
      }
      return w.typed(FrameType.vips);
    case 'guard':
      if (m.lossless && !m.early) throw new FrameError('guard.flags', 'lossless without early');
      w.u8((m.early ? 1 : 0) | (m.lossless ? 2 : 0), 'flags');
      return w.typed(FrameType.guard);
    case 'ack':
      w.u64(m.id, 'id').u8(m.ok ? 1 : 0, 'ok').str8(m.code, MAX_CODE_BYTES, 'code').str16(m.reason, MAX_REASON_BYTES, 'reason');
      return w.typed(FrameType.ack);
    case 'load':
      w.u32(m.active, 'active').u32(m.seq, 'seq').u32(m.commits, 'commits');
      if (m.capacity === undefined) w.u8(0, 'flags');
      else w.u8(1, 'flags').u32(m.capacity, 'capacity');
      return w.typed(FrameType.load);
    case 'flow-end': {
      if (m.family !== 4 && m.family !== 6) throw new FrameError('flow-end.family', `invalid address family ${String(m.family)}`);
      const n = m.family === 4 ? 4 : 16;
      w.u64(m.id, 'id')
        .u8(m.family, 'family')
        .fixed(parseIp(m.client.address, m.family, 'client.address'), n, 'client.address')
        .u16(m.client.port, 'client.port')
        .fixed(parseIp(m.vip.address, m.family, 'vip.address'), n, 'vip.address')
        .u16(m.vip.port, 'vip.port');
      return w.typed(FrameType.flowEnd);
    }
    case 'commit':
    case 'abort':
      w.u64(m.id, 'id');
      return w.typed(m.kind === 'commit' ? FrameType.commit : FrameType.abort);
    case 'ping':
    case 'pong':
      w.u64(m.token, 'token');
      return w.typed(m.kind === 'ping' ? FrameType.ping : FrameType.pong);
    case 'routes': {
      const b = utf8.encode(m.json);
      if (b.length > MAX_ROUTES_BYTES) throw new FrameError('routes.json', `${b.length} bytes exceeds ${MAX_ROUTES_BYTES}`);
      w.u32(m.version, 'version').raw(b);
      return w.typed(FrameType.routes);
    }
    case 'move':
      if (m.head.length > MAX_MOVE_HEAD_BYTES) throw new FrameError('move.head', `${m.head.length} bytes exceeds ${MAX_MOVE_HEAD_BYTES}`);
      w.u64(m.id, 'id').u64(m.handoffId, 'handoffId').u32(m.flowId, 'flowId').u8(m.reason, 'reason');
      writeFlow(w, m, 'move');
      w.raw(m.head);
      return w.typed(FrameType.move);
    case 'park': {
      const action = PARK_ACTIONS.indexOf(m.action);
      if (action < 0) throw new FrameError('park.action', `unknown action ${String(m.action)}`);
      w.u8(action, 'action');
      writeFlow(w, m, 'park');
      return w.typed(FrameType.park);
    }
    case 'move-reply':
      w.u64(m.id, 'id').u8(VERDICTS.indexOf(m.verdict), 'verdict').str8(m.code, MAX_CODE_BYTES, 'code');
      return w.typed(FrameType.moveReply);
    case 'move-blob':
      w.u64(m.id, 'id');
      if (m.ok) w.u8(1, 'ok').raw(m.blob);
      else w.u8(0, 'ok').str8(m.code, MAX_CODE_BYTES, 'code').str16(m.reason, MAX_REASON_BYTES, 'reason');
      return w.typed(FrameType.moveBlob);
    case 'move-done':
      w.u64(m.id, 'id').u8(OUTCOMES.indexOf(m.outcome), 'outcome');
      return w.typed(FrameType.moveDone);
    case 'drain':
      w.u8(m.draining ? 1 : 0, 'flags');
      return w.typed(FrameType.drain);
    case 'stays':
      for (const f of STAYS_FIELDS) w.u32(m.counts[f] >>> 0, f);
      w.u64(BigInt.asUintN(64, m.counts.decideNs), 'decideNs').u64(BigInt.asUintN(64, m.counts.captureNs), 'captureNs');
      return w.typed(FrameType.stays);
    case 'owner-query': {
      if (m.family !== 4 && m.family !== 6) throw new FrameError('owner-query.family', `invalid address family ${String(m.family)}`);
      if (!Number.isInteger(m.flowId) || m.flowId < 0 || m.flowId > 0x7fffffff) throw new FrameError('owner-query.flowId', `flow id ${m.flowId}`);
      const n = m.family === 4 ? 4 : 16;
      w.u32(m.id, 'id')
        .u32(m.flowId, 'flowId')
        .u8(m.family, 'family')
        .fixed(parseIp(m.client.address, m.family, 'client.address'), n, 'client.address')
        .u16(m.client.port, 'client.port')
        .fixed(parseIp(m.vip.address, m.family, 'vip.address'), n, 'vip.address')
        .u16(m.vip.port, 'vip.port')
        .fixed(parseIp(m.frontend, m.family, 'frontend'), n, 'frontend');
      return w.typed(FrameType.ownerQuery);
    }
    case 'owner-reply':
      w.u32(m.id, 'id').u8(m.found ? 1 : 0, 'found').u64(m.handoffId, 'handoffId');
      return w.typed(FrameType.ownerReply);
  }
}

function readFlow(r: Reader, kind: string): FlowInfo {
  const fam = r.u8('family');
  if (fam !== 4 && fam !== 6) throw new FrameError(`${kind}.family`, `invalid address family ${fam}`);
  const n = fam === 4 ? 4 : 16;
  const client = { address: formatIp(r.bytes(n, 'client.address')), port: r.u16('client.port') };
  const vip = { address: formatIp(r.bytes(n, 'vip.address')), port: r.u16('vip.port') };
  return { family: fam, client, vip };
}

function writeFlow(w: Writer, f: FlowInfo, kind: string): void {
  if (f.family !== 4 && f.family !== 6) throw new FrameError(`${kind}.family`, `invalid address family ${String(f.family)}`);
  const n = f.family === 4 ? 4 : 16;
  w.u8(f.family, 'family')
    .fixed(parseIp(f.client.address, f.family, 'client.address', kind), n, 'client.address')
    .u16(f.client.port, 'client.port')
    .fixed(parseIp(f.vip.address, f.family, 'vip.address', kind), n, 'vip.address')
    .u16(f.vip.port, 'vip.port');
}

/**
 * Cuts a string to at most maxBytes of UTF-8 without splitting a character, replacing lone
 * surrogates, so the result always encodes. For free-text fields (ACK reason) built from
 * error messages.
 */
export function truncateUtf8(s: string, maxBytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of s.replace(LONE_SURROGATE, '\ufffd')) {
    const n = utf8.encode(ch).length;
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/** A stable key for a flow (canonical addresses), for maps on both sides of the channel. */
export function flowKey(f: FlowInfo): string {
  const c = formatIp(parseIp(f.client.address, f.family, 'client.address'));
  const v = formatIp(parseIp(f.vip.address, f.family, 'vip.address'));
  return `${c}|${f.client.port}|${v}|${f.vip.port}`;
}

// ---------------------------------------------------------------------------------------------
// Bounded reader and writer

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/gu;

class Reader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #kind: string;
  #off = 0;

  constructor(buf: Uint8Array, kind: string) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#kind = kind;
  }

  get remaining(): number {
    return this.#buf.length - this.#off;
  }

  #need(n: number, field: string): number {
    if (this.remaining < n) {
      throw new FrameError(`${this.#kind}.${field}`, `truncated: need ${n} bytes, have ${this.remaining}`);
    }
    const at = this.#off;
    this.#off += n;
    return at;
  }

  u8(field: string): number {
    return this.#view.getUint8(this.#need(1, field));
  }
  u16(field: string): number {
    return this.#view.getUint16(this.#need(2, field));
  }
  u32(field: string): number {
    return this.#view.getUint32(this.#need(4, field));
  }
  u64(field: string): bigint {
    return this.#view.getBigUint64(this.#need(8, field));
  }
  bytes(n: number, field: string): Uint8Array {
    return new Uint8Array(this.view(n, field));
  }
  /** The next n bytes as a view of the frame, not a copy (a plain Uint8Array, even over a Buffer). */
  view(n: number, field: string): Uint8Array {
    const at = this.#need(n, field);
    return new Uint8Array(this.#buf.buffer, this.#buf.byteOffset + at, n);
  }
  str8(max: number, field: string): string {
    return this.#str(this.u8(`${field}.length`), max, field);
  }
  str16(max: number, field: string): string {
    return this.#str(this.u16(`${field}.length`), max, field);
  }
  str(n: number, max: number, field: string): string {
    return this.#str(n, max, field);
  }
  #str(n: number, max: number, field: string): string {
    if (n > max) throw new FrameError(`${this.#kind}.${field}`, `length ${n} exceeds ${max}`);
    const at = this.#need(n, field);
    try {
      return utf8Strict.decode(this.#buf.subarray(at, at + n));
    } catch {
      throw new FrameError(`${this.#kind}.${field}`, 'invalid UTF-8');
    }
  }
  end(): void {
    if (this.remaining !== 0) throw new FrameError(`${this.#kind}`, `${this.remaining} trailing bytes`);
  }
}

/** encodeMessageParts passes byte fields this long by reference instead of copying them into the frame. */
const BY_REFERENCE = 4096;

class Writer {
  readonly #parts: Uint8Array[] = [];
  readonly #kind: string;
  #length = 0;
  #type = 0;

  constructor(kind: string) {
    this.#kind = kind;
  }

  #int(v: number, bits: 8 | 16 | 32, field: string): this {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) {
      throw new FrameError(`${this.#kind}.${field}`, `${v} is not a u${bits}`);
    }
    const b = new Uint8Array(bits / 8);
    const dv = new DataView(b.buffer);
    if (bits === 8) dv.setUint8(0, v);
    else if (bits === 16) dv.setUint16(0, v);
    else dv.setUint32(0, v);
    return this.raw(b);
  }
  u8(v: number, field: string): this {
    return this.#int(v, 8, field);
  }
  u16(v: number, field: string): this {
    return this.#int(v, 16, field);
  }
  u32(v: number, field: string): this {
    return this.#int(v, 32, field);
  }
  u64(v: bigint, field: string): this {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffff_ffff_ffff_ffffn) {
      throw new FrameError(`${this.#kind}.${field}`, `${String(v)} is not a u64`);
    }
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    return this.raw(b);
  }
  fixed(b: Uint8Array, n: number, field: string): this {
    if (b.length !== n) throw new FrameError(`${this.#kind}.${field}`, `must be ${n} bytes, got ${b.length}`);
    return this.raw(b);
  }
  str8(s: string, max: number, field: string): this {
    const b = this.#utf8(s, max, field);
    return this.u8(b.length, `${field}.length`).raw(b);
  }
  str16(s: string, max: number, field: string): this {
    const b = this.#utf8(s, max, field);
    return this.u16(b.length, `${field}.length`).raw(b);
  }
  #utf8(s: string, max: number, field: string): Uint8Array {
    // A lone surrogate would be replaced by U+FFFD and not decode back to the same string.
    if (/\p{Cs}/u.test(s)) throw new FrameError(`${this.#kind}.${field}`, 'not well-formed Unicode');
    const b = utf8.encode(s);
    if (b.length > max) throw new FrameError(`${this.#kind}.${field}`, `${b.length} bytes exceeds ${max}`);
    return b;
  }
  raw(b: Uint8Array): this {
    this.#parts.push(b);
    this.#length += b.length;
    return this;
  }
  typed(type: number): this {
    this.#type = type;
    return this;
  }
  #header(): Uint8Array {
    const length = 1 + this.#length;
    if (length > 0xffff_ffff) throw new FrameError('length', `frame length ${length} does not fit a u32`, FRAME_ERR.TOO_LARGE);
    const h = new Uint8Array(FRAME_HEADER_BYTES);
    new DataView(h.buffer).setUint32(0, length);
    h[4] = this.#type;
    return h;
  }
  frame(): Uint8Array {
    return concatBytes([this.#header(), ...this.#parts], FRAME_HEADER_BYTES + this.#length);
  }
  parts(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let small: Uint8Array[] = [this.#header()];
    let smallLength = FRAME_HEADER_BYTES;
    for (const p of this.#parts) {
      if (p.length < BY_REFERENCE) {
        small.push(p);
        smallLength += p.length;
        continue;
      }
      out.push(concatBytes(small, smallLength), p);
      small = [];
      smallLength = 0;
    }
    if (smallLength > 0) out.push(concatBytes(small, smallLength));
    return out;
  }
}

function parseIp(text: string, family: AddressFamily, field: string, kind = 'flow-end'): Uint8Array {
  const b = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (b === undefined) throw new FrameError(`${kind}.${field}`, `not an IPv${family} address: ${JSON.stringify(text)}`);
  return b;
}

function formatIp(b: Uint8Array): string {
  return b.length === 4 ? formatIPv4(b) : formatIPv6(b);
}
