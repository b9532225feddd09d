// The balancer in cluster mode (--workers 2): both workers share the public
// port, the page stays up through a crash, and SIGTERM stops every worker.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { inRotation, recordFigure, testStack, waitForRequests, waitUntilServing } from '../support/stack.ts';

// Sticky on: the workers must read each other's cookies (one key for all).
// The agents probe every 3 s with a 2.5 s timeout: a frozen app1 is then
// ejected by a worker's stall detector (under a second) before its agent
// marks it failing in Consul, which the ejection test below is about (with
// the default 1 s / 800 ms, Consul sometimes dropped app1 first).
const stack = testStack('cluster', 26_000, {
  balancerArgs: ['--workers', '2', '--sticky', 'on'],
  agentArgs: ['--check-interval', '3s', '--probe-timeout', '2500ms', '--ttl', '9s'],
});

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => { await stack.stop(); });

const workerPids = () => stack.balancerWorkerPids();

test('two workers share the public port and keep every GET answered when app1 is killed', async () => {
  assert.equal(workerPids().length, 2, 'the primary runs two workers');
  const running = startLoad({ url: stack.url, rate: 500, durationMs: 60_000 });
  await waitForRequests(running, 500);
  stack.app('app1').signal('SIGKILL');
  // Worker 0 serves the status; every worker ejects on its own first refused connection.
  await stack.waitForStatus('app1 out of rotation', (s) => !inRotation(s, 'app1'), 10_000);
  // Consul sees the crash too (app1's agent marks it failing) before app1 starts
  // again; otherwise Consul drops app1 after this test, during the next ones.
  await waitFor('Consul to list app1 as failing', async () => !(await stack.isPassing('app1')) || undefined, 15_000);
  await stack.startApp('app1');
  // Its agent reported the failure just now and would not probe again for 3 s
  // (--check-interval), but a failing app is probed every 200 ms
  // (--recheck-interval): Consul lists it passing well before the 3 s are up.
  const restartedAt = Date.now();
  await waitFor('Consul to list app1 as passing again, before its next regular probe', async () => (await stack.isPassing('app1')) || undefined, 1500);
  recordFigure('app1 restarted → passing in Consul (agent --check-interval 3s)', Date.now() - restartedAt, 'ms');
  await waitUntilServing(running, 'app1', restartedAt, 20_000);
  await stack.waitForStatus('app1 in rotation', (s) => inRotation(s, 'app1'), 10_000);
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

/** Requests counted in status, over every instance. */
const total = (s: Awaited<ReturnType<typeof stack.status>>) => s.instances.reduce((n, i) => n + i.requests, 0);

/** The request count once two readings 600 ms apart agree (workers report twice a second). */
async function settledRequestCount(): Promise<number> {
  let before = -1;
  return waitFor('the request counts to settle', async () => {
    const now = total(await stack.status());
    const settled = now === before;
    before = now;
    if (!settled) await new Promise((resolve) => setTimeout(resolve, 600));
    return settled ? now : undefined;
  }, 10_000);
}

test("status counts both workers' requests", async () => {
  // Settled: the other worker's last report is in (it reports twice a second).
  const before = await settledRequestCount();
  for (let i = 0; i < 40; i += 1) assert.equal((await getOnNewConnection(stack.url, {})).status, 200);
  // Workers report to worker 0 (which serves status) twice a second.
  const after = await stack.waitForStatus('all 40 requests counted', (s) => total(s) - before >= 40, 5000);
  assert.equal(total(after) - before, 40, 'each request counted once');
  assert.equal((after as unknown as { workers: number }).workers, 2);
});

test('an ejection seen by one worker stops the other from routing to that instance within 50 ms', async () => {
  interface LogLine { time: string; worker: number; msg: string; instance?: string; seenBy?: string }
  const ejections = () => readFileSync(stack.balancer!.logFile, 'utf8').split('\n').filter((l) => l.includes('"instance":"app1"') && l.includes('ejected'))
    .map((l) => JSON.parse(l) as LogLine);
  const already = ejections().length;
  const app1 = stack.app('app1');
  app1.signal('SIGSTOP');
  try {
    // One request at a time, so only the worker whose request is stuck on the
    // frozen app1 can see it fail (its stall detector ejects it, the request is retried on app2).
    // Each answer is kept and checked after the wait: a wrong one is a failure, not "not yet".
    const answers: string[] = [];
    const seen = await waitFor('a worker to eject the frozen app1', async () => {
      const answer = await getOnNewConnection(stack.url, {}).then((a) => `${a.status}`, (error: unknown) => `no answer (${String(error)})`);
      answers.push(answer);
      return ejections().slice(already).find((l) => l.msg === 'instance ejected by passive health check');
    }, 15_000);
    assert.deepEqual(answers.filter((a) => a !== '200'), [], `every request during the freeze answered 200, the stuck one by app2 (${answers.length} requests)`);
    const learned = await waitFor('the other worker to apply the verdict', () => ejections().slice(already).find((l) => l.worker !== seen.worker), 5000);
    assert.equal(learned.msg, 'instance ejected: another worker saw it fail', 'the other worker did not wait to see app1 fail itself');
    assert.equal(learned.seenBy, `worker ${seen.worker}`);
    const lagMs = Date.parse(learned.time) - Date.parse(seen.time);
    recordFigure('--workers 2: ejection seen by one worker → applied by the other', lagMs, 'ms');
    assert.ok(lagMs <= 50, `applied ${lagMs} ms later`);
    // Neither worker sends to the frozen app1 now: every request is answered at once by app2.
    for (let i = 0; i < 20; i += 1) {
      const started = Date.now();
      const answer = await getOnNewConnection(stack.url, {});
      assert.deepEqual([answer.status, answer.servedBy], [200, 'app2']);
      assert.ok(Date.now() - started < 300, 'not held by the frozen instance');
    }
  } finally {
    app1.signal('SIGCONT');
  }
  await stack.waitForStatus('app1 back in rotation', (s) => inRotation(s, 'app1'), 15_000);
});

test('a worker killed and started again: the summed counts in status and metrics never go down', { timeout: 30_000 }, async () => {
  const metricsTotal = async () => {
    const text = await (await fetch(stack.statusUrl.replace('/_sempre/status', '/metrics'))).text();
    return [...text.matchAll(/^sempre_requests_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  for (let i = 0; i < 40; i += 1) assert.equal((await getOnNewConnection(stack.url, {})).status, 200);
  // Every request counted (worker 1 reports twice a second), then worker 1 is killed.
  const before = await settledRequestCount();
  const metricsBefore = await metricsTotal();
  const lines = readFileSync(stack.balancer!.logFile, 'utf8').split('\n').filter((l) => l.includes('"worker":1'));
  const worker1 = (JSON.parse(lines.at(-1)!) as { pid: number }).pid;
  assert.ok(workerPids().includes(worker1), `worker 1 (pid ${worker1}) is a child of the primary`);
  process.kill(worker1, 'SIGKILL');
  const seen: number[] = [];
  await waitFor('worker 1 started again and reporting', async () => {
    const status = await stack.status() as Awaited<ReturnType<typeof stack.status>> & { workersReporting: number };
    seen.push(total(status));
    const pids = workerPids();
    return pids.length === 2 && !pids.includes(worker1) && status.workersReporting === 2 ? true : undefined;
  }, 15_000, 100);
  assert.ok(seen.every((n) => n >= before), `status never counted fewer requests than before the kill (${before}): ${seen.join(', ')}`);
  assert.equal(total(await stack.status()), before, 'nothing counted twice');
  assert.equal(await metricsTotal(), metricsBefore, 'sempre_requests_total did not go down (Prometheus would read a reset)');
});

test('SIGTERM to the primary stops every worker', async () => {
  const workers = workerPids();
  const exit = await stack.balancer!.stop();
  assert.equal(exit.code, 0);
  await waitFor('every worker to exit', () => workers.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }), 10_000);
});
