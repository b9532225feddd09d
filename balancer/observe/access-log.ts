// The access log: one JSON line per proxied request, the very line pino
// writes for logger.info({ reqId, method, … }, 'request'), built here
// directly. At full rate pino's generic path (its loop over the object's keys
// with a type switch per value, its level and hook checks) is a cost paid
// for every request; this is one template string. The logger's own bindings
// (name, pid, worker, service…) and its timestamp come from pino itself, so
// the line cannot drift from the other lines of the same logger.
import { pino } from 'pino';
import type { Logger } from '../../shared/logger.ts';
import { BoundedLogOutput } from '../../shared/log-output.ts';

/** What one access line says about a request. */
export interface AccessEntry {
  reqId: string;
  method: string;
  url: string | undefined;
  status: number;
  durationMs: number;
  instance: string | undefined;
  attempts: number;
  /** Left out when every attempt went well. */
  failures: readonly string[] | undefined;
  refused: string | undefined;
}

export type AccessLog = (entry: AccessEntry) => void;

const INFO = 30;
const LEVEL_PREFIX = `{"level":${INFO}`;
const MESSAGE_END = ',"msg":"request"}\n';

/** pino's internals this needs, by its exported symbols. */
interface PinoInternals {
  [key: symbol]: unknown;
}

/**
 * The access log of `logger`: the fast line when the logger writes JSON to a
 * BoundedLogOutput (every service), pino itself otherwise (pretty output for
 * a person, tests with their own destination).
 */
export function createAccessLog(logger: Logger): AccessLog {
  const internals = logger as unknown as PinoInternals;
  const stream = internals[pino.symbols.streamSym];
  const bindings = internals[pino.symbols.chindingsSym];
  const time = internals[pino.symbols.timeSym];
  if (!(stream instanceof BoundedLogOutput) || typeof bindings !== 'string' || typeof time !== 'function') {
    return (entry) => logger.info({ ...entry }, 'request');
  }
  const timestamp = time as () => string;
  return (entry) => {
    if (logger.levelVal > INFO) return;
    // JSON.stringify for every string a client or an instance chose: the URL, the method, the request ID, the instance's ID.
    const line = `${LEVEL_PREFIX}${timestamp()}${bindings},"reqId":${JSON.stringify(entry.reqId)},"method":${JSON.stringify(entry.method)}${entry.url === undefined ? '' : `,"url":${JSON.stringify(entry.url)}`},"status":${entry.status},"durationMs":${entry.durationMs}${entry.instance === undefined ? '' : `,"instance":${JSON.stringify(entry.instance)}`},"attempts":${entry.attempts}${entry.failures === undefined ? '' : `,"failures":${JSON.stringify(entry.failures)}`}${entry.refused === undefined ? '' : `,"refused":${JSON.stringify(entry.refused)}`}${MESSAGE_END}`;
    stream.lastLevel = INFO;
    stream.write(line);
  };
}
