// pino JSON logs with stable field names (instance, reqId, status, durationMs);
// human-readable only when a person is watching a terminal.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { BoundedLogOutput } from './log-output.ts';

export type { Logger };
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  name: string;
  level: string;
  format: LogFormat;
  /**
   * Where JSON lines go: a bounded buffer in front of stdout (log-output.ts),
   * for services that must outlive a stuck log reader. Without it, lines are
   * written synchronously as they come.
   */
  output?: BoundedLogOutput;
}

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

export function createLogger({ name, level, format, output }: LoggerOptions): Logger {
  const wantPretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const base = { name, level, base: { pid: process.pid }, timestamp: isoTimeOncePerMs() };
  if (!wantPretty && output) {
    const logger = pino(base, output);
    output.onCaughtUp = ({ droppedLines, blockedMs }) => {
      const blockedSeconds = Math.round(blockedMs / 100) / 10;
      logger.warn({ droppedLines, blockedSeconds }, `dropped ${droppedLines} lines while stdout was blocked for ${blockedSeconds} s`);
    };
    return logger;
  }
  if (!wantPretty) return pino(base);
  // Loaded only for a terminal: a service writing JSON never pays its memory.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino(base, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
