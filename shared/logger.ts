// pino JSON logs with stable field names (instance, reqId, status, durationMs);
// human-readable only when a person is watching a terminal.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  name: string;
  level: string;
  format: LogFormat;
  /**
   * JSON lines written asynchronously (pino's sonic-boom destination): lines
   * written while a write is in flight go out together, so a line per
   * request costs little. pino flushes what is left when the process exits.
   */
  async?: boolean;
}

export function createLogger({ name, level, format, async = false }: LoggerOptions): Logger {
  const wantPretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const base = { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!wantPretty) return async ? pino(base, pino.destination({ dest: 1, sync: false })) : pino(base);
  // Loaded only for a terminal: a service writing JSON never pays its memory.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino(base, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
