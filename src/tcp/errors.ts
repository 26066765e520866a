// Errors of the capture/inject layer: a stable code and a lowercase context.
export class TcpStateError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TcpStateError';
    this.code = code;
  }
}
