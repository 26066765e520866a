// One logger for the daemons: JSON lines on stderr, level from BATON_LOG (default info).
// Secrets are never passed to it; `redact` is a second line of defence.
import pino, { type Logger } from 'pino';

export function createLogger(name: string): Logger {
  return pino(
    { name, level: process.env.BATON_LOG ?? 'info', redact: ['secret', '*.secret'] },
    pino.destination(2),
  );
}
