// Issue 26: the balancer's standard output goes to a reader that stops reading
// (a stuck journald, a log shipper behind a full disk, a pipe to a hung
// process). Under load for a minute its memory stays where it is with output
// to /dev/null, no request fails, the dropped lines are counted in the
// metrics and the status, and once the reader resumes the log goes on with one
// line saying how many were dropped. It also still stops on SIGTERM.
import { rssMiB } from '../../lab/process-tree.ts';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { startLoad, type RunningLoad } from '../../drill/load-generator.ts';
import type { RequestRecord } from '../../drill/records.ts';
import { waitFor, type ManagedProcess } from '../../lab/processes.ts';
import { recordFigure, testStack } from '../support/stack.ts';

const stack = testStack('log-backpressure', 34_000);
const RATE = 1000;
const RUN_MS = 60_000;
/** RSS is compared over the last seconds of each run (one sample a second, the median). */
const SAMPLE_LAST_MS = 20_000;
const RSS_TOLERANCE_MIB = 5;

before(async () => {
  await stack.startConsul();
  await stack.addInstance('app1');
  await stack.addInstance('app2');
}, { timeout: 90_000 });
after(async () => { await stack.stop(); });

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.ports.admin}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in /metrics`);
  return Number(match[1]);
}

interface LogOutputStatus { droppedLines: number; blocked: { since: string; seconds: number; droppedLines: number } | null }
async function logOutput(): Promise<LogOutputStatus> {
  return ((await stack.status()) as unknown as { logOutput: LogOutputStatus }).logOutput;
}

/** The load for RUN_MS, and the balancer's RSS each second of its last SAMPLE_LAST_MS. */
async function loadAndSample(balancer: ManagedProcess, onSecond: () => Promise<void> = async () => undefined): Promise<{ records: RequestRecord[]; rss: number }> {
  const load: RunningLoad = startLoad({ url: stack.url, rate: RATE, durationMs: RUN_MS });
  const samples: number[] = [];
  const sampler = setInterval(() => {
    if (Date.now() - load.startedAt >= RUN_MS - SAMPLE_LAST_MS) samples.push(rssMiB(stack.balancerWorkerPids()[0] ?? balancer.pid));
    void onSecond().catch(() => undefined);
  }, 1000);
  try {
    const records = await load.done;
    return { records, rss: median(samples) };
  } finally {
    clearInterval(sampler);
  }
}

function assertNoneFailed(records: RequestRecord[], what: string): void {
  const failed = records.filter((r) => r.errorClass !== 'ok');
  assert.equal(records.length, (RATE * RUN_MS) / 1000, `${what}: every scheduled request finished`);
  assert.equal(failed.length, 0, `${what}: no request failed (first: ${JSON.stringify(failed[0])})`);
}

let blockedBalancer: ManagedProcess | undefined;
let droppedWhileBlocked = 0;

test(`with stdout nobody reads, ${RATE} GET/s for ${RUN_MS / 1000} s: RSS within ${RSS_TOLERANCE_MIB} MiB of a run to /dev/null, no request fails, the dropped lines are counted`, { timeout: 4 * 60_000 }, async () => {
  // The same balancer, load and length twice: stdout to /dev/null, then to a pipe nobody reads.
  const devNull = openSync('/dev/null', 'w');
  const reference = await stack.startBalancer(devNull).finally(() => closeSync(devNull));
  const toDevNull = await loadAndSample(reference);
  await reference.stop();
  assertNoneFailed(toDevNull.records, 'stdout to /dev/null');
  const balancer = (blockedBalancer = await stack.startBalancer('pipe'));
  // Nothing reads the pipe: this process takes what its stream buffers, then the pipe fills.
  balancer.stdout!.pause();
  let seenBlocked: LogOutputStatus | undefined;
  const blocked = await loadAndSample(balancer, async () => {
    const now = await logOutput();
    if (now.blocked) seenBlocked = now;
  });
  assertNoneFailed(blocked.records, 'stdout not read');

  recordFigure('log backpressure: balancer RSS, stdout to /dev/null (median of the last 20 s)', toDevNull.rss, 'MiB');
  recordFigure('log backpressure: balancer RSS, stdout not read (median of the last 20 s)', blocked.rss, 'MiB');
  assert.ok(blocked.rss - toDevNull.rss <= RSS_TOLERANCE_MIB, `RSS with stdout not read ${blocked.rss.toFixed(1)} MiB, to /dev/null ${toDevNull.rss.toFixed(1)} MiB`);

  // While lines are being dropped, the status says since when and how many; the metric counts them.
  assert.ok(seenBlocked?.blocked, 'the status showed the output blocked during the run');
  const status = await logOutput();
  assert.ok(status.blocked && status.blocked.droppedLines > 0, `status.logOutput while blocked: ${JSON.stringify(status)}`);
  droppedWhileBlocked = await metric('sempre_log_lines_dropped_total');
  assert.equal(droppedWhileBlocked, status.droppedLines, 'the metric and the status agree');
  // Most of the minute's access lines: the rest fit in the pipe and the 1 MiB buffer.
  assert.ok(droppedWhileBlocked > (RATE * RUN_MS) / 1000 / 2, `dropped ${droppedWhileBlocked} of ${(RATE * RUN_MS) / 1000} access lines`);
  recordFigure(`log backpressure: lines dropped in ${RUN_MS / 1000} s at ${RATE} GET/s with stdout not read`, droppedWhileBlocked);
});

test('once the reader resumes, the log goes on, after one line saying how many were dropped and for how long', { timeout: 60_000 }, async () => {
  const balancer = blockedBalancer;
  assert.ok(balancer?.stdout, 'the blocked balancer of the test before');
  const lines: Array<{ level: number; msg: string; url?: string; droppedLines?: number; blockedSeconds?: number }> = [];
  createInterface({ input: balancer.stdout }).on('line', (line) => lines.push(JSON.parse(line) as (typeof lines)[number]));
  balancer.stdout.resume();
  const notice = await waitFor('the notice of dropped lines', () => lines.find((l) => l.msg.startsWith('dropped ')), 15_000);
  assert.match(notice.msg, /^dropped \d+ lines while stdout was blocked for \d+(\.\d)? s$/);
  assert.equal(notice.level, 40, 'a warning');
  assert.equal(notice.droppedLines, droppedWhileBlocked, 'the one episode: every line the metric counted');
  assert.ok(notice.blockedSeconds! > 30 && notice.blockedSeconds! < 120, `blocked for ${notice.blockedSeconds} s of a ${RUN_MS / 1000} s run`);
  recordFigure('log backpressure: notice', notice.msg);

  // Requests after it are logged again.
  const path = `/after-the-notice-${Date.now()}`;
  assert.equal((await fetch(`${stack.url.slice(0, -1)}${path}`)).status, 200);
  await waitFor('the access line of a request after the notice', () => lines.indexOf(notice) < lines.findIndex((l) => l.url === path) || undefined, 5000);
  const status = await logOutput();
  assert.deepEqual(status, { droppedLines: droppedWhileBlocked, blocked: null }, 'no longer blocked; the total stays');
  assert.equal(await metric('sempre_log_lines_dropped_total'), droppedWhileBlocked);
});

test('a balancer whose stdout is not read still stops on SIGTERM', { timeout: 60_000 }, async () => {
  const balancer = blockedBalancer;
  assert.ok(balancer?.stdout);
  balancer.stdout.pause();
  const load = startLoad({ url: stack.url, rate: RATE, durationMs: 30_000 });
  try {
    await waitFor('the output to be blocked again', async () => (await logOutput()).blocked !== null, 25_000);
  } finally {
    await load.stop();
  }
  const signalled = Date.now();
  balancer.signal('SIGTERM');
  const exit = await Promise.race([balancer.exited, new Promise<'still running'>((resolve) => setTimeout(resolve, 15_000, 'still running'))]);
  assert.deepEqual(exit, { code: 0, signal: null }, 'exited by itself within 15 s');
  recordFigure('log backpressure: SIGTERM to exit with stdout not read', Date.now() - signalled, 'ms');
});
