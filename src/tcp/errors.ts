// Errors of the capture/inject layer: a stable code and a lowercase context.
import { BatonError } from '../wire/errors.ts';

export class TcpStateError extends BatonError {}
