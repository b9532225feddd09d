// The bounded log output: lines pass in order while stdout reads; when it
// stops, memory stays within --log-buffer, access (info) lines are dropped
// before warnings and errors, every dropped line is counted, and the logger
// says how many once the reader has caught up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../lab/processes.ts';
import { BoundedLogOutput, combineLogOutput, isNonBlocking, stdoutSink, type LogSink } from '../../shared/log-output.ts';
import { createLogger } from '../../shared/logger.ts';

/** A stdout whose reader the test stops and resumes; answers at once while it reads. */
class FakeStdout implements LogSink {
  text = '';
  writes: number[] = [];
  reading = true;
  private waiting: Array<() => void> = [];
  write(chunk: Buffer, done: (error: NodeJS.ErrnoException | null, written: number) => void): void {
    const take = () => {
      this.text += chunk.toString();
      this.writes.push(chunk.length);
      done(null, chunk.length);
    };
    if (this.reading) take();
    else this.waiting.push(take);
  }
  writeNow(chunk: Buffer): number {
    if (!this.reading) return 0;
    this.text += chunk.toString();
    return chunk.length;
  }
  resume(): void {
    this.reading = true;
    for (const take of this.waiting.splice(0)) take();
  }
  lines(): string[] {
    return this.text.split('\n').filter(Boolean);
  }
}

const line = (n: number, size = 100) => `${String(n).padStart(6, '0')} ${'x'.repeat(size - 8)}\n`;
const INFO = 30;
const WARN = 40;

function output(sink: LogSink, capacity: number, clock = { t: 0 }) {
  return new BoundedLogOutput({ capacity, sink, now: () => clock.t, minBatch: 300, maxWrite: 1000, flushEveryMs: 60_000 });
}

function writeAt(out: BoundedLogOutput, level: number, text: string): boolean {
  out.lastLevel = level;
  return out.write(text);
}

test('log output: lines reach stdout in order, in writes of whole lines no larger than maxWrite', () => {
  const stdout = new FakeStdout();
  const out = output(stdout, 10_000);
  for (let i = 0; i < 50; i += 1) writeAt(out, INFO, line(i));
  out.flush();
  assert.deepEqual(stdout.lines().map((l) => Number(l.slice(0, 6))), [...Array(50).keys()]);
  assert.ok(stdout.writes.every((n) => n <= 1000 && n % 100 === 0), `writes of whole 100-byte lines, at most 1000 bytes: ${stdout.writes.join(',')}`);
  assert.ok(stdout.writes.length < 50, 'lines are batched');
  assert.deepEqual(out.stats(), { droppedLines: 0, blocked: null });
});

test('log output: a stdout nobody reads holds at most the capacity; the lines past it are dropped and counted', () => {
  const stdout = new FakeStdout();
  stdout.reading = false;
  const clock = { t: 1000 };
  const out = output(stdout, 10_000, clock);
  let accepted = 0;
  for (let i = 0; i < 1000; i += 1) if (writeAt(out, INFO, line(i))) accepted += 1;
  assert.ok(out.buffered() <= 10_000, `held ${out.buffered()} bytes`);
  // Info lines may fill all but the last eighth (8,750 bytes: 87 lines of 100).
  assert.equal(accepted, 87);
  assert.deepEqual(out.stats(), { droppedLines: 1000 - 87, blocked: { since: 1000, droppedLines: 1000 - 87 } });
});

test('log output: warnings and errors still fit when access lines no longer do, until the buffer is full', () => {
  const stdout = new FakeStdout();
  stdout.reading = false;
  const out = output(stdout, 10_000);
  for (let i = 0; i < 200; i += 1) writeAt(out, INFO, line(i));
  assert.equal(writeAt(out, INFO, line(1000)), false, 'an access line is dropped');
  assert.equal(writeAt(out, WARN, line(2000)), true, 'a warning still fits');
  assert.equal(writeAt(out, 50, line(3000)), true, 'so does an error');
  let warnings = 2;
  while (writeAt(out, WARN, line(4000 + warnings))) warnings += 1;
  assert.equal(warnings, 13, 'warnings fill what the 8,700 bytes of access lines left, 13 lines of 100 bytes, and no more');
  assert.ok(out.buffered() <= 10_000);
  stdout.resume();
  out.flush();
  const seen = stdout.lines().map((l) => Number(l.slice(0, 6)));
  assert.deepEqual(seen.filter((n) => n >= 2000), [2000, 3000, ...Array.from({ length: 11 }, (_, i) => 4002 + i)], 'the warnings and the error came out, in order');
  assert.ok(!seen.includes(1000));
});

test('log output: once the reader catches up, the lines held come out and the episode is told once', () => {
  const stdout = new FakeStdout();
  stdout.reading = false;
  const clock = { t: 5000 };
  const out = output(stdout, 10_000, clock);
  const told: Array<{ droppedLines: number; blockedMs: number }> = [];
  out.onCaughtUp = (episode) => told.push(episode);
  for (let i = 0; i < 300; i += 1) writeAt(out, INFO, line(i));
  clock.t = 17_500;
  assert.deepEqual(told, [], 'nothing told while blocked');
  stdout.resume();
  out.flush();
  assert.deepEqual(told, [{ droppedLines: 300 - 87, blockedMs: 12_500 }]);
  assert.deepEqual(out.stats(), { droppedLines: 213, blocked: null }, 'the total stays; the episode is over');
  assert.deepEqual(stdout.lines().map((l) => Number(l.slice(0, 6))), [...Array(87).keys()], 'the lines held, in order');
  for (let i = 0; i < 10; i += 1) writeAt(out, INFO, line(500 + i));
  out.flush();
  assert.equal(told.length, 1, 'told once');
  assert.equal(stdout.lines().length, 97, 'later lines are written');
});

test('log output: a full pipe (EAGAIN) is tried again until it takes the batch', async () => {
  let refusals = 3;
  const taken: string[] = [];
  const sink: LogSink = {
    write: (chunk, done) => {
      if (refusals > 0) {
        refusals -= 1;
        done(Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' }), 0);
        return;
      }
      // A socket may take part of a write: the rest follows.
      const half = Math.ceil(chunk.length / 2);
      taken.push(chunk.subarray(0, half).toString());
      done(null, half);
    },
    writeNow: () => 0,
  };
  const out = new BoundedLogOutput({ capacity: 10_000, sink, retryMs: 1, minBatch: 300, flushEveryMs: 60_000 });
  for (let i = 0; i < 3; i += 1) writeAt(out, INFO, line(i));
  const deadline = Date.now() + 2000;
  while (out.buffered() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(taken.join(''), line(0) + line(1) + line(2));
  assert.equal(refusals, 0);
});

test('log output: a stdout that is gone (EPIPE) drops and counts every line without throwing', () => {
  let calls = 0;
  const sink: LogSink = { write: (_chunk, done) => { calls += 1; done(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }), 0); }, writeNow: () => 0 };
  const out = new BoundedLogOutput({ capacity: 10_000, sink, minBatch: 300, flushEveryMs: 60_000 });
  for (let i = 0; i < 10; i += 1) writeAt(out, INFO, line(i));
  assert.equal(calls, 1, 'no write after the failure');
  assert.equal(out.stats().droppedLines, 10, 'the 3 lines of the failed batch and the 7 after it');
  assert.equal(out.buffered(), 0);
});

test('log output: at exit, what is held is written as far as stdout takes it without waiting', () => {
  const stdout = new FakeStdout();
  const out = output(stdout, 10_000);
  writeAt(out, INFO, line(1));
  writeAt(out, INFO, line(2));
  assert.equal(stdout.text, '', 'below a batch: still held');
  out.flushAtExit();
  assert.equal(stdout.text, line(1) + line(2));
  const stuck = new FakeStdout();
  stuck.reading = false;
  const held = output(stuck, 10_000);
  writeAt(held, INFO, line(1));
  held.flushAtExit();
  assert.equal(stuck.text, '', 'a stdout nobody reads is not waited for');
});

test('logger: after a blocked stdout reads again, one warning says how many lines were dropped and for how long', () => {
  const stdout = new FakeStdout();
  stdout.reading = false;
  const clock = { t: 0 };
  const out = new BoundedLogOutput({ capacity: 16_384, sink: stdout, now: () => clock.t, flushEveryMs: 60_000 });
  const logger = createLogger({ name: 'test', level: 'info', format: 'json', output: out });
  for (let i = 0; i < 500; i += 1) logger.info({ reqId: i, status: 200 }, 'request');
  const { droppedLines } = out.stats();
  assert.ok(droppedLines > 0);
  clock.t = 4_321;
  stdout.resume();
  logger.flush();
  const lines = stdout.lines().map((l) => JSON.parse(l) as { level: number; msg: string; droppedLines?: number; blockedSeconds?: number });
  const notices = lines.filter((l) => l.msg.startsWith('dropped '));
  assert.equal(notices.length, 1);
  assert.equal(notices[0]!.msg, `dropped ${droppedLines} lines while stdout was blocked for 4.3 s`);
  assert.equal(notices[0]!.level, 40);
  assert.deepEqual([notices[0]!.droppedLines, notices[0]!.blockedSeconds], [droppedLines, 4.3]);
  assert.equal(lines.filter((l) => l.msg === 'request').length + droppedLines, 500, 'every line either written or counted');
});

test('log output with --workers: dropped lines added up, blocked since the earliest worker', () => {
  assert.deepEqual(combineLogOutput([
    { droppedLines: 5, blocked: null },
    undefined, // a worker that has not reported yet
    { droppedLines: 7, blocked: { since: 2000, droppedLines: 3 } },
    { droppedLines: 1, blocked: { since: 1500, droppedLines: 1 } },
  ]), { droppedLines: 13, blocked: { since: 1500, droppedLines: 4 } });
  assert.deepEqual(combineLogOutput([{ droppedLines: 2, blocked: null }]), { droppedLines: 2, blocked: null });
});

/** A FIFO opened read-write (so opening it never waits for a reader), blocking or not, with nobody reading it. */
function unreadFifo(nonBlocking: boolean): { fd: number; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-log-'));
  const path = join(dir, 'stdout');
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, constants.O_RDWR | (nonBlocking ? constants.O_NONBLOCK : 0));
  return { fd, [Symbol.dispose]: () => { closeSync(fd); rmSync(dir, { recursive: true, force: true }); } };
}

test('stdout sink: a non-blocking pipe is written on the spot, and a full one answers EAGAIN without waiting', () => {
  using fifo = unreadFifo(true);
  assert.equal(isNonBlocking(fifo.fd), true);
  const sink = stdoutSink(fifo.fd);
  assert.equal(sink.regularFile, false, 'a pipe: batches of at most PIPE_BUF, so workers sharing it never interleave mid-line');
  const answers: Array<string | number> = [];
  const chunk = Buffer.alloc(4096, 'x');
  // A pipe holds 64 KiB: the 17th write of 4 KiB finds it full.
  for (let i = 0; i < 17; i += 1) sink.write(chunk, (error, written) => answers.push(error ? error.code! : written));
  assert.deepEqual(answers, [...Array(16).fill(4096), 'EAGAIN'], 'every answer came before write() returned');
});

test('stdout sink: a blocking pipe nobody reads holds a thread-pool thread, never the event loop', async () => {
  using fifo = unreadFifo(false);
  assert.equal(isNonBlocking(fifo.fd), false);
  const sink = stdoutSink(fifo.fd);
  let answered = 0;
  const chunk = Buffer.alloc(4096, 'x');
  for (let i = 0; i < 17; i += 1) sink.write(chunk, () => { answered += 1; });
  assert.equal(answered, 0, 'no answer on the spot: the writes went to the thread pool');
  // The 17th write waits in the kernel for a reader; the loop still turns and the first 16 are answered.
  await waitFor('the writes that fit to be answered', () => answered === 16, 5000);
  const drain = Buffer.alloc(65536);
  readSync(fifo.fd, drain, 0, drain.length, null); // the reader comes back: the 17th is taken, its pool thread freed
  await waitFor('the waiting write to finish once the pipe was read', () => answered === 17, 5000);
});

test('stdout sink: a regular file is written on the spot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-log-'));
  const fd = openSync(join(dir, 'out.log'), 'w');
  try {
    const written: number[] = [];
    const sink = stdoutSink(fd);
    assert.equal(sink.regularFile, true, 'a regular file: batches of up to 64 KiB (boundedStdout)');
    sink.write(Buffer.from('{"msg":"a"}\n'), (_error, n) => written.push(n));
    assert.deepEqual(written, [12]);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
