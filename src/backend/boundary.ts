// The thin layer between a handed-off socket and the application that finds request boundaries.
// It stands in for the socket: the application (a Node http.Server, or the upstream relay) gets
// a Duplex that carries the same bytes, while every byte in both directions goes through an
// Http1Stream tracker. At each later request head the layer holds the request back from the
// application and asks decide() (synchronous, from the routing snapshot): 'stay' passes it on
// at once; 'move' waits until every earlier response is complete and flushed to the kernel, then
// calls move() with the connection idle and the new request's bytes still held: that is where a
// TCP_REPAIR capture plugs in. Until moves exist the default move() keeps the connection.
//
// Decisions a caller relies on:
// - The first request is never decided: the front-end routed it before the handoff.
// - Bytes reach the application in order and unchanged; a request is held only from the end of
//   the previous request to the end of its own head (bounded by the head limit: a longer head
//   pins the tracker, which releases everything), or, on 'move', until the connection is idle.
// - Once the tracker pins (Upgrade, CONNECT, malformed framing) the layer is a plain relay.
// - Bodies are never buffered: client bytes are pushed as they come (the real socket pauses
//   when the application does not read); application writes go to the socket with its
//   backpressure.
// - With `reads` (the real socket reads into one reusable buffer, tcp/fd.ts ReusableReads), body
//   bytes that the application takes during the push are passed on without a copy; everything
//   else (heads, bytes held or buffered, pinned connections) is copied first. Only for an
//   application that copies what it keeps of a 'data' chunk before returning (Node's http.Server).
//   An 8 MiB upload costs the agent about 40% less CPU than with a fresh buffer per read.
// - Node's http.Server needs more than a Duplex: setTimeout (keep-alive timer), destroySoon,
//   setNoDelay/setKeepAlive and the address getters are forwarded to the real socket.
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { HeadLimits, RequestHead } from '../wire/http-head.ts';
import { Http1Stream, type StreamEvent } from '../wire/http1-stream.ts';
import type { ReusableReads } from '../tcp/fd.ts';
import { resumeReading, stopReading } from '../tcp/node-socket.ts';

export type Decision = 'stay' | 'move';
export type MoveOutcome = 'kept' | 'moved';

/** What move() gets: the connection at an idle request boundary. */
export interface MoveContext {
  /** The real, handed-off socket; nothing is being written to it (every earlier response is flushed). */
  readonly socket: net.Socket;
  /**
   * The request that should move, and its position on the connection (1 = second request);
   * head is undefined for an idle move (moveIdle, for a drain), index then the next request's.
   */
  readonly head: RequestHead | undefined;
  readonly index: number;
  /**
   * Client bytes read from the socket but not given to the application, from the first byte of
   * this request on (Node's read-ahead included). A capture must prepend them to the kernel's
   * receive queue (tcp/capture.ts `consumed`). The hook must stop the socket's reading before
   * it first awaits, so that no byte is read between this list and the capture.
   */
  readonly held: readonly Uint8Array[];
}

export interface BoundaryStats {
  /** Request heads seen after the first. */
  requests: number;
  stays: number;
  /** decide() said 'move'. */
  moves: number;
  /** move() kept the connection (or failed) and the request went to the application here. */
  kept: number;
  /** move() took the connection away. */
  moved: number;
  /** Connections whose tracking stopped (Upgrade, CONNECT, malformed). */
  pinned: number;
}

export const newBoundaryStats = (): BoundaryStats => ({ requests: 0, stays: 0, moves: 0, kept: 0, moved: 0, pinned: 0 });

export interface BoundaryOptions {
  readonly limits: HeadLimits;
  /** Called at each later request head, synchronously, before the application sees any of it. */
  readonly decide: (head: RequestHead, index: number) => Decision;
  /**
   * Called for a 'move' once the connection is idle. 'moved': the socket has been captured and
   * closed silently; the application side is torn down without a byte more to the client.
   * 'kept' (or a rejection): the held request is given to the application here. Default: 'kept'.
   */
  readonly move?: (ctx: MoveContext) => Promise<MoveOutcome>;
  /** Counters to add to (shared by all connections of an agent). */
  readonly stats?: BoundaryStats;
  /**
   * The real socket reads into this buffer (it was opened with it) instead of emitting 'data'. Only when the
   * application copies whatever it keeps of a chunk during its 'data' event (Node's http.Server does).
   */
  readonly reads?: ReusableReads;
}

type Item =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  /** The boundary before request `index`: blocks until its head is known and decided. */
  | { readonly kind: 'boundary'; readonly index: number; head: RequestHead | undefined; pass: boolean }
  | { readonly kind: 'eof' };

interface Moving {
  /** The held request's boundary; undefined for an idle move (drain). */
  readonly item: (Item & { kind: 'boundary' }) | undefined;
  readonly index: number;
  readonly head: RequestHead | undefined;
  started: boolean;
  /** Bytes Node had read ahead when the move started; tracked only if the connection stays. */
  unread: Buffer[];
  readonly settle?: (outcome: MoveOutcome) => void;
}

/**
 * Wraps a handed-off socket; give the returned Duplex to the application in its place
 * (`server.emit('connection', wrapConnection(socket, o))`, or pipe it to an upstream).
 */
export function wrapConnection(socket: net.Socket, o: BoundaryOptions): BoundarySocket {
  return new BoundarySocket(socket, o);
}

export class BoundarySocket extends Duplex {
  readonly #real: net.Socket;
  readonly #o: BoundaryOptions;
  readonly #stats: BoundaryStats;
  readonly #tracker: Http1Stream;
  /** Client bytes and boundaries not yet given to the application, in order. */
  readonly #queue: Item[] = [];
  /** A 'move' waiting for idle, or running. */
  #moving: Moving | undefined;
  /** Writes handed to the real socket whose callback has not run (bytes not yet in the kernel). */
  #unflushed = 0;
  #readPaused = false;
  #takingUnread = false;
  #gone = false;
  /** A chunk of the reusable read buffer sits in this stream's buffer: the real socket must not read over it. */
  #viewHeld = false;

  constructor(real: net.Socket, o: BoundaryOptions) {
    super({ allowHalfOpen: true, readableHighWaterMark: real.readableHighWaterMark, writableHighWaterMark: real.writableHighWaterMark });
    this.#real = real;
    this.#o = o;
    this.#stats = o.stats ?? newBoundaryStats();
    this.#tracker = new Http1Stream(o.limits);
    if (o.reads !== undefined) {
      o.reads.consume((view) => this.#fromReadBuffer(view));
      // (paused by ReusableReads when it had to keep reads for lack of a consumer)
      if (real.isPaused()) real.resume();
    } else {
      real.on('data', (chunk: Buffer) => {
        if (!this.#takingUnread) this.#fromClient(chunk);
      });
    }
    real.on('end', () => {
      // Nothing more will arrive: a boundary still waiting for its head can never be decided,
      // and a half-closed connection is not worth moving (capture refuses CLOSE_WAIT anyway).
      for (const it of this.#queue) if (it.kind === 'boundary' && it.head === undefined) it.pass = true;
      this.#queue.push({ kind: 'eof' });
      if (this.#moving !== undefined && !this.#moving.started) this.#finishMove('kept');
      else this.#drain();
    });
    real.on('error', (err) => this.destroy(err));
    real.on('close', () => {
      if (!this.#gone) this.destroy();
    });
    real.on('timeout', () => this.emit('timeout'));
    real.on('drain', () => this.#flushed());
  }

  // ---- what Node's http.Server and applications ask of a socket ----

  get remoteAddress(): string | undefined {
    return this.#real.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#real.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.#real.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.#real.localAddress;
  }
  get localPort(): number | undefined {
    return this.#real.localPort;
  }
  get bytesWritten(): number {
    return this.#real.bytesWritten;
  }
  address(): ReturnType<net.Socket['address']> {
    return this.#real.address();
  }
  setTimeout(ms: number, cb?: () => void): this {
    this.#real.setTimeout(ms);
    if (cb !== undefined) this.once('timeout', cb);
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.#real.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delayMs?: number): this {
    this.#real.setKeepAlive(enable, delayMs);
    return this;
  }
  /** End the writable side, then destroy once flushed (what net.Socket does). */
  destroySoon(): void {
    if (this.writableFinished) this.destroy();
    else {
      this.once('finish', () => this.destroy());
      this.end();
    }
  }

  /** The tracker's view, for tests and diagnostics. */
  get tracker(): Http1Stream {
    return this.#tracker;
  }

  // ---- client -> application ----

  #fromClient(chunk: Buffer): void {
    if (this.#gone) return;
    const base = this.#tracker.clientOffset;
    this.#enqueue(chunk, base, this.#tracker.fromClient(chunk));
  }

  /**
   * A chunk of the real socket's reusable read buffer, valid only during this call. Body bytes the application
   * takes now (nothing queued before them, its 'data' listener flowing on an empty buffer: Readable emits
   * synchronously) go as they are; anything else is copied first.
   */
  #fromReadBuffer(view: Buffer): void {
    if (this.#gone) return;
    const body = this.#tracker.inRequestBody;
    const base = this.#tracker.clientOffset;
    const events = this.#tracker.fromClient(view);
    if (body && events.length === 0 && this.#queue.length === 0 && this.#takesNow()) {
      const more = this.push(view);
      // Never expected (the conditions above are Readable's own for a synchronous 'data'); should the chunk stay
      // in this stream's buffer all the same, the real socket reads nothing over it until the buffer is empty.
      if (this.readableLength > 0) this.#holdView();
      if (!more) this.#pauseReal();
      return;
    }
    this.#enqueue(Buffer.from(view), base, events);
  }

  #takesNow(): boolean {
    return this.readableFlowing === true && this.readableLength === 0 && this.listenerCount('data') > 0 && this.#moving === undefined && !this.destroyed;
  }

  #holdView(): void {
    this.#viewHeld = true;
    stopReading(this.#real);
    const check = (): void => {
      if (this.readableLength > 0 && !this.destroyed) return void setImmediate(check);
      this.#viewHeld = false;
      if (!this.destroyed) resumeReading(this.#real);
      if (this.#readPaused) this.#real.pause();
    };
    setImmediate(check);
  }

  /**
   * A move waits for idle: the bytes after its boundary are held, not given to the application. Node reads ahead
   * into its own buffer while paused (and sees a FIN, which cancels the move); a socket reading into a reusable
   * buffer stops at once when paused, so it keeps reading into the held queue up to a stream's high-water mark.
   */
  #pauseWhileMoving(): void {
    if (this.#o.reads === undefined) return this.#pauseReal();
    let held = 0;
    for (const it of this.#queue) if (it.kind === 'bytes') held += it.bytes.length;
    if (held >= this.readableHighWaterMark) this.#pauseReal();
  }

  #enqueue(chunk: Buffer, base: number, events: readonly StreamEvent[]): void {
    let cursor = 0;
    const upTo = (offset: number): void => {
      const at = offset - base;
      if (at > cursor) this.#queue.push({ kind: 'bytes', bytes: chunk.subarray(cursor, at) });
      cursor = Math.max(cursor, at);
    };
    for (const ev of events) this.#onClientEvent(ev, upTo);
    if (cursor < chunk.length) this.#queue.push({ kind: 'bytes', bytes: cursor === 0 ? chunk : chunk.subarray(cursor) });
    if (this.#moving !== undefined && !this.#moving.started) this.#pauseWhileMoving();
    this.#drain();
  }

  #onClientEvent(ev: StreamEvent, upTo: (offset: number) => void): void {
    switch (ev.kind) {
      case 'requestComplete':
        upTo(ev.end);
        this.#queue.push({ kind: 'boundary', index: ev.index + 1, head: undefined, pass: false });
        return;
      case 'requestHead': {
        if (ev.index === 0) return;
        upTo(ev.end);
        const b = this.#queue.find((it) => it.kind === 'boundary' && it.index === ev.index);
        if (b !== undefined && b.kind === 'boundary') b.head = ev.head;
        return;
      }
      case 'pinned':
        this.#pinned();
        return;
      default:
        return;
    }
  }

  #pinned(): void {
    this.#stats.pinned++;
    for (const it of this.#queue) if (it.kind === 'boundary') it.pass = true;
    // A move cannot start on a connection that is no longer HTTP/1.x.
    if (this.#moving !== undefined && !this.#moving.started) this.#finishMove('kept');
  }

  /** Gives queued bytes to the application up to the first boundary that cannot pass yet. */
  #drain(): void {
    while (this.#queue.length > 0 && !this.#gone) {
      const it = this.#queue[0]!;
      if (it.kind === 'bytes') {
        this.#queue.shift();
        if (!this.push(it.bytes)) this.#pauseReal();
      } else if (it.kind === 'eof') {
        this.#queue.shift();
        this.push(null);
      } else if (it.pass) {
        this.#queue.shift();
      } else if (it.head === undefined) {
        return;
      } else if (this.#moving !== undefined) {
        // Nothing passes while a move is pending: it resumes the queue when it ends.
        if (this.#moving.item === it) this.#tryMove();
        return;
      } else {
        this.#stats.requests++;
        if (this.#decide(it.head, it.index) === 'stay') {
          this.#stats.stays++;
          this.#queue.shift();
        } else {
          this.#stats.moves++;
          this.#moving = { item: it, index: it.index, head: it.head, started: false, unread: [] };
          this.#pauseWhileMoving();
          this.#tryMove();
          return;
        }
      }
    }
  }

  #decide(head: RequestHead, index: number): Decision {
    try {
      return this.#o.decide(head, index);
    } catch {
      // A broken decide must not break the connection: the request stays.
      return 'stay';
    }
  }

  /** Starts the pending move once every earlier response is complete and in the kernel. */
  #tryMove(): void {
    const m = this.#moving;
    if (m === undefined || m.started) return;
    if (this.#tracker.answered < m.index || this.#unflushed > 0) return;
    m.started = true;
    const held: Uint8Array[] = [];
    for (const it of this.#queue) if (it.kind === 'bytes') held.push(it.bytes);
    // A paused net.Socket may still have read ahead into its buffer: those bytes are the
    // connection's too. They have not been tracked; if the connection stays they are fed later.
    // read() also emits 'data' for what it returns: #fromClient must not see these twice.
    // (A socket reading into a reusable buffer has no read-ahead: it hands every chunk over as it reads it.)
    const unread: Buffer[] = [];
    this.#takingUnread = true;
    if (this.#o.reads === undefined) {
      for (let b = this.#real.read() as Buffer | null; b !== null; b = this.#real.read() as Buffer | null) unread.push(b);
    }
    this.#takingUnread = false;
    m.unread = unread;
    const move = this.#o.move ?? (async (): Promise<MoveOutcome> => 'kept');
    move({ socket: this.#real, head: m.head, index: m.index, held: [...held, ...unread] }).then(
      (outcome) => this.#finishMove(outcome),
      () => this.#finishMove('kept'),
    );
  }

  #finishMove(outcome: MoveOutcome): void {
    const m = this.#moving;
    if (m === undefined) return;
    this.#moving = undefined;
    if (outcome === 'moved') {
      this.#stats.moved++;
      // The socket was captured and closed silently: the application must not answer anything.
      this.#gone = true;
      this.#queue.length = 0;
      this.destroy();
      m.settle?.(outcome);
      return;
    }
    this.#stats.kept++;
    if (m.item !== undefined) {
      const i = this.#queue.indexOf(m.item);
      if (i !== -1) this.#queue.splice(i, 1);
    }
    for (const b of m.unread) this.#fromClient(b);
    this.#resumeReal();
    this.#drain();
    m.settle?.(outcome);
  }

  /**
   * Moves the connection now if it is idle, for a drain: every request answered, no byte of
   * another held, not pinned or closing. move() is called with `head` undefined and `index` the
   * next request's. Resolves 'busy', doing nothing, when the connection is not idle.
   */
  moveIdle(): Promise<MoveOutcome | 'busy'> {
    const t = this.#tracker;
    if (this.#moving !== undefined || this.#gone || !t.idle || this.#queue.some((it) => it.kind !== 'boundary')) {
      return Promise.resolve('busy');
    }
    this.#stats.moves++;
    return new Promise((resolve) => {
      this.#moving = { item: undefined, index: t.requests, head: undefined, started: false, unread: [], settle: resolve };
      this.#pauseReal();
      this.#tryMove();
    });
  }

  #pauseReal(): void {
    if (!this.#readPaused) {
      this.#readPaused = true;
      this.#real.pause();
    }
  }

  #resumeReal(): void {
    if (this.#readPaused && this.#moving === undefined && !this.#viewHeld) {
      this.#readPaused = false;
      this.#real.resume();
    }
  }

  override _read(): void {
    this.#resumeReal();
  }

  // ---- application -> client ----

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#toClient(chunk);
    if (this.#real.write(chunk, this.#written)) cb();
    else this.#real.once('drain', () => cb());
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#real.cork();
    let ok = true;
    for (const { chunk } of chunks) {
      this.#toClient(chunk);
      ok = this.#real.write(chunk, this.#written);
    }
    this.#real.uncork();
    if (ok) cb();
    else this.#real.once('drain', () => cb());
  }

  readonly #written = (): void => {
    this.#unflushed--;
    this.#flushed();
  };

  #toClient(chunk: Buffer): void {
    this.#unflushed++;
    if (this.#tracker.pinned === undefined) {
      for (const ev of this.#tracker.fromServer(chunk)) if (ev.kind === 'pinned') this.#pinned();
    }
  }

  #flushed(): void {
    if (this.#moving !== undefined && this.#unflushed === 0) this.#tryMove();
  }

  override _final(cb: (err?: Error | null) => void): void {
    for (const ev of this.#tracker.serverEnd()) if (ev.kind === 'pinned') this.#pinned();
    this.#real.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#gone = true;
    if (!this.#real.destroyed) this.#real.destroy(err ?? undefined);
    cb(err);
  }
}
