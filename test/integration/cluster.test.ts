// The balancer in cluster mode (--workers 2): both workers share the public
// port, the page stays up through a crash, and SIGTERM stops every worker.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { inRotation, testStack, waitForRequests, waitUntilServing } from '../support/stack.ts';

// Sticky on: the workers must read each other's cookies (one key for all).
const stack = testStack('cluster', 26_000, { balancerArgs: ['--workers', '2', '--sticky', 'on'] });

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => { await stack.stop(); });

function workerPids(): number[] {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(stack.balancer!.pid)], { encoding: 'utf8' });
  return out.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}

test('two workers share the public port and keep every GET answered when app1 is killed', async () => {
  assert.equal(workerPids().length, 2, 'the primary runs two workers');
  const running = startLoad({ url: stack.url, rate: 500, durationMs: 60_000 });
  await waitForRequests(running, 500);
  stack.app('app1').signal('SIGKILL');
  // Worker 0 serves the status; every worker ejects on its own first refused connection.
  await stack.waitForStatus('app1 out of rotation', (s) => !inRotation(s, 'app1'), 10_000);
  await stack.startApp('app1');
  await waitUntilServing(running, 'app1', Date.now(), 20_000);
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
});

/** One GET on a new connection (so the primary may hand it to either worker). */
function getOnNewConnection(url: string, headers: Record<string, string>): Promise<{ status: number; servedBy: string; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by']), setCookie: res.headers['set-cookie'] ?? [] }));
    }).on('error', reject);
  });
}

test('a sticky client stays on its instance whichever worker takes its connection', async () => {
  const first = await getOnNewConnection(stack.url, {});
  const cookie = first.setCookie.find((c) => c.startsWith('sempre_sticky='))?.split(';')[0];
  assert.ok(cookie, `the first answer binds the client: ${JSON.stringify(first.setCookie)}`);
  const tag = `sticky-${Date.now().toString(36)}`;
  const answers = [];
  for (let i = 0; i < 20; i += 1) answers.push(await getOnNewConnection(stack.url, { cookie, 'x-request-id': `${tag}-${i}` }));
  assert.deepEqual(new Set(answers.map((a) => a.servedBy)), new Set([first.servedBy]), 'every request served by the bound instance');
  assert.ok(answers.every((a) => a.status === 200 && a.setCookie.length === 0), 'no rebinding while the instance serves');
  // The access log names the worker of each request: both took some of them.
  const workers = await waitFor('the access log lines of the 20 requests', () => {
    const lines = readFileSync(stack.balancer!.logFile, 'utf8').split('\n').filter((l) => l.includes(tag));
    return lines.length >= 20 ? new Set(lines.map((l) => (JSON.parse(l) as { worker: number }).worker)) : undefined;
  }, 5000);
  assert.equal(workers.size, 2, `requests on new connections reached both workers (${[...workers].join(', ')})`);
});

test('SIGTERM to the primary stops every worker', async () => {
  const workers = workerPids();
  const exit = await stack.balancer!.stop();
  assert.equal(exit.code, 0);
  await waitFor('every worker to exit', () => workers.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }), 10_000);
});
