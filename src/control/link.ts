// One framed control connection: a socket, a FrameDecoder under a size limit, and exactly one
// close notification with a reason. Used by both ends; it knows nothing about the handshake.

import type { Socket } from 'node:net';
import { FrameDecoder, FrameError, decodeMessage, encodeMessageParts, type Message } from '../wire/frame.ts';

export interface LinkHandlers {
  /** A decoded message. Not called once the link is closed, even for frames already buffered. */
  onMessage(m: Message): void;
  /** Called once, after the socket has closed. `frameError` is set if bad input closed it. */
  onClose(reason: string, frameError: FrameError | undefined): void;
}

export class Link {
  readonly socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #handlers: LinkHandlers;
  #closing = false;
  #reason: string | undefined;
  #frameError: FrameError | undefined;
  /** The socket is corked by sendEncoded, and which flush is scheduled. */
  #corked = false;
  #flush: 'none' | 'tick' | 'immediate' = 'none';

  constructor(socket: Socket, maxFrameBytes: number, handlers: LinkHandlers) {
    this.socket = socket;
    this.#decoder = new FrameDecoder(maxFrameBytes);
    this.#handlers = handlers;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#reason ??= `socket: ${err.code ?? err.message}`;
    });
    socket.on('close', () => {
      this.#closing = true;
      this.#handlers.onClose(this.#reason ?? 'peer closed', this.#frameError);
    });
  }

  get closed(): boolean {
    return this.#closing;
  }

  /** Bytes accepted by send() and not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  set maxFrameBytes(n: number) {
    this.#decoder.maxFrameBytes = n;
  }

  /**
   * Encodes and writes; false if the link is closed. Throws FrameError for unencodable values.
   * `later`: the frame may wait for the end of this event-loop turn (reports, not handoff steps).
   */
  send(m: Message, later = false): boolean {
    return this.sendEncoded(encodeMessageParts(m), later);
  }

  /**
   * Frames written in one run of JavaScript go out in one write: a write on the control socket
   * runs the peer's whole receive path in this thread (veth), and was the front-end's largest
   * profile item. The socket is corked at the first frame and uncorked after the current
   * microtasks (process.nextTick), so an ACK that resolves several handoffs sends their COMMITs
   * together and nothing waits for a later turn; `later` frames wait until setImmediate, to share
   * the write with whatever else this turn sends. A frame in parts (encodeMessageParts) goes out in the same
   * vectored write, its blob not copied.
   */
  sendEncoded(frame: Uint8Array | readonly Uint8Array[], later = false): boolean {
    if (this.#closing) return false;
    if (!this.#corked) {
      this.socket.cork();
      this.#corked = true;
    }
    if (frame instanceof Uint8Array) this.socket.write(frame);
    else for (const part of frame) this.socket.write(part);
    if (!later) {
      if (this.#flush !== 'tick') {
        this.#flush = 'tick';
        process.nextTick(this.#uncork);
      }
    } else if (this.#flush === 'none') {
      this.#flush = 'immediate';
      setImmediate(this.#uncork);
    }
    return true;
  }

  readonly #uncork = (): void => {
    this.#flush = 'none';
    if (!this.#corked) return;
    this.#corked = false;
    this.socket.uncork();
  };

  close(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#reason ??= reason;
    this.#uncork(); // what was sent before the close still reaches the kernel, as before corking
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    this.#decoder.push(chunk);
    try {
      while (!this.#closing) {
        const f = this.#decoder.next();
        if (f === undefined) break;
        this.#handlers.onMessage(decodeMessage(f));
      }
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      this.#frameError = e;
      this.close(e.message);
    }
  }
}
