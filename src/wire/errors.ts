// Error base for every baton layer, and the error the pure codecs in wire/ throw for
// untrusted input they refuse. Codes are stable strings (BATON_ERR_*) that callers and
// tests match on; messages are lowercase context for humans and may change.

/** Base class for baton's errors: a stable `code` plus optional `cause` chaining. */
export class BatonError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * A wire-format value was refused (while decoding untrusted bytes, or while encoding a
 * value the decoder would refuse). `field` names the offending field in dotted form,
 * e.g. 'recvQueue.length', 'client.address', 'header'.
 */
export class WireError extends BatonError {
  readonly field: string;

  constructor(code: string, field: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.field = field;
  }
}
