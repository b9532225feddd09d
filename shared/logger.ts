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
   * JSON lines written asynchronously in batches (pino's sonic-boom
   * destination): a write once 3 KB have gathered or every 250 ms, so a line
   * per request costs little (one write per ~15 lines instead of per line).
   * pino flushes what is left when the process exits.
   */
  async?: boolean;
}

// Batching of the asynchronous destination: enough lines per write() to take
// the per-call cost off the request path, and never more than 250 ms late for
// a person or a test reading the log. Each write is whole lines and at most
// 4096 bytes (PIPE_BUF): --workers share one stdout, and a pipe keeps writes
// that small in one piece, so two workers' lines never interleave mid-line.
// (sonic-boom also measures its last chunk for every line, so smaller chunks
// cost less per line.)
const BATCH_BYTES = 3072;
const BATCH_MAX_WRITE = 4096;
const BATCH_MAX_DELAY_MS = 250;

/**
 * pino's isoTime, computed once per millisecond: under load most lines share
 * their millisecond, and formatting a Date for each was 2% of the balancer's
 * CPU at full rate.
 */
function isoTimeOncePerMs(): () => string {
  let lastMs = -1;
  let last = '';
  return () => {
    const ms = Date.now();
    if (ms !== lastMs) {
      lastMs = ms;
      last = `,"time":"${new Date(ms).toISOString()}"`;
    }
    return last;
  };
}

export function createLogger({ name, level, format, async = false }: LoggerOptions): Logger {
  const wantPretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const base = { name, level, base: { pid: process.pid }, timestamp: isoTimeOncePerMs() };
  if (!wantPretty) return async ? pino(base, pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES, maxWrite: BATCH_MAX_WRITE, periodicFlush: BATCH_MAX_DELAY_MS })) : pino(base);
  // Loaded only for a terminal: a service writing JSON never pays its memory.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino(base, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
