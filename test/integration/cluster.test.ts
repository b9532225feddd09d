// The balancer in cluster mode (--workers 2): both workers share the public
// port, the page stays up through a crash, and SIGTERM stops every worker.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { inRotation, testStack, waitForRequests, waitUntilServing } from '../support/stack.ts';

const stack = testStack('cluster', 26_000, { balancerArgs: ['--workers', '2'] });

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

test('SIGTERM to the primary stops every worker', async () => {
  const workers = workerPids();
  const exit = await stack.balancer!.stop();
  assert.equal(exit.code, 0);
  await waitFor('every worker to exit', () => workers.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }), 10_000);
});
