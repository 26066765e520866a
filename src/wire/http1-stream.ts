// An incremental tracker of one HTTP/1.x connection seen from the server side, fed with the
// bytes of both directions as they pass (client -> server requests, server -> client responses).
// It finds each request head (parsed with parseRequestHead), where each request body ends, and
// where each response ends, without buffering bodies, so a back-end agent knows the request
// boundaries at which a connection could move: `idle` means every request so far has been
// answered completely and no byte of a further request has arrived.
//
// Decisions a caller relies on:
// - Responses match requests in order (pipelining); framing per RFC 9112 §6.3: a response to
//   HEAD, a 1xx, 204 and 304 have no body; Transfer-Encoding ending in chunked is chunked, any
//   other Transfer-Encoding or no length at all is close-delimited; else Content-Length.
// - 1xx interim responses (100 Continue, 103) precede the final one and complete nothing.
// - 101 Switching Protocols and a CONNECT request pin the connection: it is no longer HTTP/1.x,
//   so the tracker stops (every later feed only counts bytes). A CONNECT pins at its head,
//   whatever the answer, because a tunnel may start before the tracker sees the 2xx.
// - Anything malformed or over the limits (request head, response head, chunk lines, trailers,
//   a response with no request, more than MAX_PIPELINED requests in flight) pins the connection with reason 'error': never a guess, never
//   a throw. The server may frame such bytes differently, so no boundary is trusted after it.
// - `Connection: close` on either side, an HTTP/1.0 exchange without keep-alive, and a
//   close-delimited response make the connection `closing`: it is never idle again.
// - Offsets are byte counts from the start of each direction (the first byte fed is 0).
// - Events are returned in the order the fed bytes produce them.

import { concatBytes } from './bytes.ts';
import { parseRequestHead, type HeadLimits, type RequestHead } from './http-head.ts';
import { BodyReader, parseResponseHead, type BodyFraming, type ResponseHead } from './http1-framing.ts';

export type PinReason = 'upgrade' | 'connect' | 'error';

/** Requests in flight (received, not yet answered) beyond which tracking stops. */
export const MAX_PIPELINED = 256;

export type StreamEvent =
  /** A request head is complete: bytes [start, end) of the client stream (leading empty lines included). */
  | { readonly kind: 'requestHead'; readonly index: number; readonly head: RequestHead; readonly start: number; readonly end: number }
  /** The request's body (if any) ended at client offset `end`. */
  | { readonly kind: 'requestComplete'; readonly index: number; readonly end: number }
  /** A response head (interim or final) for request `index` is complete at server offset `end`. */
  | { readonly kind: 'responseHead'; readonly index: number; readonly status: number; readonly interim: boolean; readonly end: number }
  /** The final response to request `index` ended at server offset `end`. */
  | { readonly kind: 'responseComplete'; readonly index: number; readonly end: number }
  /** Every request so far is answered and no byte of another has arrived. */
  | { readonly kind: 'idle'; readonly clientOffset: number; readonly serverOffset: number }
  /** The connection will end after the current exchange; it will not be idle again. */
  | { readonly kind: 'closing'; readonly side: 'client' | 'server'; readonly reason: string }
  /** Tracking stopped for good. */
  | { readonly kind: 'pinned'; readonly reason: PinReason; readonly detail: string };

interface Pending {
  readonly index: number;
  readonly method: string;
}

/**
 * Tracks one connection. Feed client bytes to fromClient() and server bytes to fromServer() in
 * the order each direction carries them; call serverEnd() when the server finishes its side
 * (ends a close-delimited response). Never throws on any bytes.
 */
export class Http1Stream {
  readonly #limits: HeadLimits;
  #pinned: PinReason | undefined;
  #closing = false;
  #idleReported = true;

  // client -> server
  #clientOffset = 0;
  #requests = 0;
  #head: Uint8Array[] = [];
  #headBytes = 0;
  #headStart = 0;
  #reqBody: BodyReader | undefined;
  #reqIndex = -1;
  /** The request being read asks for an Upgrade (its bytes may end up with something other than an HTTP parser). */
  #reqUpgrade = false;

  // server -> client
  #serverOffset = 0;
  #answered = 0;
  readonly #pending: Pending[] = [];
  #resHead: Uint8Array[] = [];
  #resHeadBytes = 0;
  #resBody: BodyReader | undefined;
  #resBodyClose = false;

  constructor(limits: HeadLimits) {
    this.#limits = limits;
  }

  /** Request heads seen so far. */
  get requests(): number {
    return this.#requests;
  }

  /** Requests answered completely so far. */
  get answered(): number {
    return this.#answered;
  }

  get pinned(): PinReason | undefined {
    return this.#pinned;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * True while the next client byte belongs to the body of a request that asks for no Upgrade: bytes an HTTP
   * server's parser takes as body, whatever their content.
   */
  get inRequestBody(): boolean {
    return this.#pinned === undefined && this.#reqBody !== undefined && !this.#reqUpgrade;
  }

  get clientOffset(): number {
    return this.#clientOffset;
  }

  get serverOffset(): number {
    return this.#serverOffset;
  }

  /** True when every request is answered and no byte of a further request has arrived. */
  get idle(): boolean {
    return (
      this.#pinned === undefined &&
      !this.#closing &&
      this.#answered === this.#requests &&
      this.#reqBody === undefined &&
      this.#headBytes === 0
    );
  }

  fromClient(chunk: Uint8Array): StreamEvent[] {
    const out: StreamEvent[] = [];
    if (this.#pinned !== undefined) {
      this.#clientOffset += chunk.length;
      return out;
    }
    let i = 0;
    while (i < chunk.length && this.#pinned === undefined) {
      if (this.#reqBody !== undefined) {
        const step = this.#reqBody.feed(chunk, i);
        i += step.consumed;
        this.#clientOffset += step.consumed;
        if (step.kind === 'error') this.#pin(out, 'error', `request body: ${step.reason}`);
        else if (step.kind === 'done') this.#requestDone(out);
        continue;
      }
      i = this.#requestHead(chunk, i, out);
    }
    if (this.#pinned !== undefined) this.#clientOffset += chunk.length - i;
    return out;
  }

  fromServer(chunk: Uint8Array): StreamEvent[] {
    const out: StreamEvent[] = [];
    if (this.#pinned !== undefined) {
      this.#serverOffset += chunk.length;
      return out;
    }
    let i = 0;
    while (i < chunk.length && this.#pinned === undefined) {
      if (this.#resBody !== undefined) {
        const step = this.#resBody.feed(chunk, i);
        i += step.consumed;
        this.#serverOffset += step.consumed;
        if (step.kind === 'error') this.#pin(out, 'error', `response body: ${step.reason}`);
        else if (step.kind === 'done') this.#responseDone(out);
        continue;
      }
      i = this.#responseHead(chunk, i, out);
    }
    if (this.#pinned !== undefined) this.#serverOffset += chunk.length - i;
    return out;
  }

  /** The server ended its side: a close-delimited response is complete. */
  serverEnd(): StreamEvent[] {
    const out: StreamEvent[] = [];
    if (this.#pinned === undefined && this.#resBody !== undefined && this.#resBodyClose) this.#responseDone(out);
    return out;
  }

  /** Consumes head bytes from chunk[from..]; returns the new position. */
  #requestHead(chunk: Uint8Array, from: number, out: StreamEvent[]): number {
    const max = this.#limits.maxHeadBytes;
    if (this.#headBytes === 0) {
      this.#headStart = this.#clientOffset;
      this.#idleReported = false;
    }
    // Look only as far as the head may reach; parse when a blank line may have ended it or the
    // chunk is used up (an error shows as early as the bytes allow).
    const take = Math.min(chunk.length - from, max - this.#headBytes);
    const slice = chunk.subarray(from, from + take);
    const buf = this.#head.length === 0 ? slice : concatBytes([...this.#head, slice], this.#headBytes + take);
    const r = parseRequestHead(buf, this.#limits);
    if (r.kind === 'incomplete') {
      // A copy, never a view: the caller may reuse its buffer (boundary.ts `reads`), and on a Buffer `slice()`
      // is a view too.
      this.#head = [buf === slice ? new Uint8Array(slice) : buf];
      this.#headBytes += take;
      this.#clientOffset += take;
      return from + take;
    }
    if (r.kind === 'error') {
      this.#pin(out, 'error', `request head: ${r.status} ${r.reason}`);
      return from;
    }
    const used = r.headBytes - this.#headBytes;
    this.#head = [];
    this.#headBytes = 0;
    this.#clientOffset += used;
    const head = r.head;
    const index = this.#requests++;
    this.#reqIndex = index;
    this.#reqUpgrade = head.headerMap.has('upgrade');
    out.push({ kind: 'requestHead', index, head, start: this.#headStart, end: this.#clientOffset });
    this.#pending.push({ index, method: head.method });
    if (this.#pending.length > MAX_PIPELINED) {
      this.#pin(out, 'error', `more than ${MAX_PIPELINED} requests in flight`);
      return from + used;
    }
    if (head.method === 'CONNECT') {
      this.#pin(out, 'connect', 'CONNECT request');
      return from + used;
    }
    if (!head.keepAlive) this.#close(out, 'client', head.version === '1.0' ? 'HTTP/1.0 request without keep-alive' : 'Connection: close');
    const framing: BodyFraming = head.chunked
      ? { kind: 'chunked' }
      : head.contentLength !== undefined && head.contentLength > 0
        ? { kind: 'length', length: head.contentLength }
        : { kind: 'none' };
    const body = new BodyReader(framing, max);
    if (body.empty) this.#requestDone(out);
    else this.#reqBody = body;
    return from + used;
  }

  #requestDone(out: StreamEvent[]): void {
    this.#reqBody = undefined;
    out.push({ kind: 'requestComplete', index: this.#reqIndex, end: this.#clientOffset });
    this.#checkIdle(out);
  }

  #responseHead(chunk: Uint8Array, from: number, out: StreamEvent[]): number {
    const req = this.#pending[0];
    if (req === undefined) {
      this.#pin(out, 'error', 'response without a request');
      return from;
    }
    const max = this.#limits.maxHeadBytes;
    const take = Math.min(chunk.length - from, max - this.#resHeadBytes);
    const slice = chunk.subarray(from, from + take);
    const buf = this.#resHead.length === 0 ? slice : concatBytes([...this.#resHead, slice], this.#resHeadBytes + take);
    const r = parseResponseHead(buf, max);
    if (r.kind === 'incomplete') {
      this.#resHead = [buf === slice ? new Uint8Array(slice) : buf];
      this.#resHeadBytes += take;
      this.#serverOffset += take;
      return from + take;
    }
    if (r.kind === 'error') {
      this.#pin(out, 'error', `response head: ${r.reason}`);
      return from;
    }
    const used = r.headBytes - this.#resHeadBytes;
    this.#resHead = [];
    this.#resHeadBytes = 0;
    this.#serverOffset += used;
    const head = r.head;
    const interim = head.status >= 100 && head.status < 200;
    out.push({ kind: 'responseHead', index: req.index, status: head.status, interim, end: this.#serverOffset });
    if (head.status === 101) {
      this.#pin(out, 'upgrade', '101 Switching Protocols');
      return from + used;
    }
    if (interim) return from + used;
    const framing = responseFraming(req.method, head);
    this.#resBodyClose = framing.kind === 'close';
    if (!head.keepAlive) this.#close(out, 'server', head.version === '1.0' ? 'HTTP/1.0 response without keep-alive' : 'Connection: close');
    else if (framing.kind === 'close') this.#close(out, 'server', 'close-delimited response');
    const body = new BodyReader(framing, max);
    if (body.empty) this.#responseDone(out);
    else this.#resBody = body;
    return from + used;
  }

  #responseDone(out: StreamEvent[]): void {
    this.#resBody = undefined;
    this.#resBodyClose = false;
    const req = this.#pending.shift();
    this.#answered++;
    out.push({ kind: 'responseComplete', index: req?.index ?? this.#answered - 1, end: this.#serverOffset });
    this.#checkIdle(out);
  }

  #checkIdle(out: StreamEvent[]): void {
    if (!this.#idleReported && this.idle) {
      this.#idleReported = true;
      out.push({ kind: 'idle', clientOffset: this.#clientOffset, serverOffset: this.#serverOffset });
    }
  }

  #close(out: StreamEvent[], side: 'client' | 'server', reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    out.push({ kind: 'closing', side, reason });
  }

  #pin(out: StreamEvent[], reason: PinReason, detail: string): void {
    this.#pinned = reason;
    this.#head = [];
    this.#resHead = [];
    this.#reqBody = undefined;
    this.#resBody = undefined;
    out.push({ kind: 'pinned', reason, detail });
  }
}

/** RFC 9112 §6.3, for a final (non-1xx) response to a request with this method. */
export function responseFraming(method: string, head: ResponseHead): BodyFraming {
  if (method === 'HEAD' || head.status === 204 || head.status === 304) return { kind: 'none' };
  if (head.transferEncoding) return head.chunked ? { kind: 'chunked' } : { kind: 'close' };
  if (head.contentLength !== undefined) return head.contentLength === 0 ? { kind: 'none' } : { kind: 'length', length: head.contentLength };
  return { kind: 'close' };
}
