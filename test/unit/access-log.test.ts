// The access log's hand-built line is the line pino would write for the same
// request: same keys in the same order, the logger's bindings and time, every
// string a client or an instance chose escaped, nothing when info is off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAccessLog, type AccessEntry } from '../../balancer/observe/access-log.ts';
import { BoundedLogOutput, type LogSink } from '../../shared/log-output.ts';
import { createLogger } from '../../shared/logger.ts';

/** A stdout that takes everything at once. */
function capture(): { sink: LogSink; lines: () => string[] } {
  let text = '';
  const take = (chunk: Buffer) => {
    text += chunk.toString();
    return chunk.length;
  };
  return {
    sink: { write: (chunk, done) => done(null, take(chunk)), writeNow: take },
    lines: () => text.split('\n').filter(Boolean),
  };
}

function loggers(level = 'info') {
  const stdout = capture();
  const output = new BoundedLogOutput({ capacity: 1 << 20, sink: stdout.sink, flushEveryMs: 60_000 });
  const logger = createLogger({ name: 'sempre-balancer', level, format: 'json', output }).child({ worker: 0, generation: 3 }).child({ service: 'web', component: 'proxy' });
  return { logger, output, lines: stdout.lines };
}

const ENTRIES: AccessEntry[] = [
  { reqId: 'abc-1', method: 'GET', url: '/', status: 200, durationMs: 1.3, instance: 'app1', attempts: 1, failures: undefined, refused: undefined },
  { reqId: 'client "chosen" \\ id', method: 'PO\u0001ST', url: '/a?q="x"&b=\\n\u0000é\ud800', status: 502, durationMs: 30000, instance: 'in"st', attempts: 2, failures: ['app1: connect ECONNREFUSED', 'app2: "timeout"'], refused: undefined },
  { reqId: 'r', method: 'GET', url: undefined, status: 431, durationMs: 0, instance: undefined, attempts: 0, failures: undefined, refused: 'headers-too-large' },
];

test('access log: each line is, key by key and in order, what pino writes for the same request', () => {
  const fast = loggers();
  const slow = loggers();
  const write = createAccessLog(fast.logger);
  for (const entry of ENTRIES) {
    write(entry);
    slow.logger.info({ ...entry }, 'request');
  }
  fast.output.flush();
  slow.output.flush();
  const [fastLines, slowLines] = [fast.lines(), slow.lines()];
  assert.equal(fastLines.length, ENTRIES.length);
  fastLines.forEach((line, i) => {
    const [mine, pinos] = [JSON.parse(line) as Record<string, unknown>, JSON.parse(slowLines[i]!) as Record<string, unknown>];
    assert.match(String(mine.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The time is the only field allowed to differ (the two lines may fall in different milliseconds).
    mine.time = pinos.time;
    assert.deepEqual(Object.entries(mine), Object.entries(pinos), `line ${i}: ${line}`);
  });
  assert.equal(JSON.parse(fastLines[1]!).url, ENTRIES[1]!.url, 'control characters, quotes, backslashes and a lone surrogate come back as they were');
  assert.ok(!('failures' in JSON.parse(fastLines[0]!)) && !('url' in JSON.parse(fastLines[2]!)) && !('instance' in JSON.parse(fastLines[2]!)), 'fields that are not there are left out, as pino leaves out undefined');
});

test('access log: nothing is written when the log level is above info', () => {
  const quiet = loggers('warn');
  createAccessLog(quiet.logger)(ENTRIES[0]!);
  quiet.output.flush();
  assert.deepEqual(quiet.lines(), []);
});

test('access log: a logger that does not write JSON to the bounded output goes through pino itself', () => {
  const lines: string[] = [];
  const logger = createLogger({ name: 'sempre-balancer', level: 'info', format: 'json' });
  // Without a bounded output the logger writes to its own destination; the access log must still reach it.
  const write = createAccessLog(Object.assign(Object.create(logger) as typeof logger, { info: (obj: object, msg: string) => lines.push(JSON.stringify({ ...obj, msg })) }));
  write(ENTRIES[0]!);
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!), JSON.parse(JSON.stringify({ ...ENTRIES[0], msg: 'request' })));
});
