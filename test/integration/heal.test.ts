// Issue 20: a hung app heals itself, one instance at a time, with the evidence
// of why it hung. Real Consul, real demo apps and agents (--heal true, the
// local stack restarting an app that exits, as systemd does on the servers),
// real signals and sockets, 500 GET/s through the balancer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { HealReport } from '../../shared/heal-report.ts';
import { startLoad, type RunningLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import type { LocalStack } from '../../lab/local-stack.ts';
import { launchChromium } from '../support/browser.ts';
import { recordFigure, testStack, waitForRequests, waitUntilServing } from '../support/stack.ts';

const HEAL_AFTER_MS = 4000;
// One stack for the hang kinds (a small accept queue so that a blocked app fills it).
const stack = testStack('heal', 37_000, {
  lab: true, heal: true, appArgs: ['--backlog', '16'],
  agentArgs: ['--heal-after', `${HEAL_AFTER_MS / 1000}s`, '--heal-grace', '20s', '--heal-budget', '20'],
});
// An app that hangs 5 s after every start: healed up to the budget, then left to a person.
const relapsing = testStack('heal-budget', 37_500, {
  lab: true, heal: true, instances: 1, appEnv: { SEMPRE_HANG_ON_START: 'deadlock' },
  agentArgs: ['--heal-after', '2s', '--heal-grace', '15s', '--heal-budget', '2', '--heal-window', '10m'],
});
// An app that takes 8 s to listen after each start: not restarted again during its grace.
const slowStarter = testStack('heal-slow-start', 37_700, {
  lab: true, heal: true, instances: 1, appArgs: ['--start-delay', '8000'],
  agentArgs: ['--heal-after', '2s', '--heal-grace', '20s'],
});
const stacks = [stack, relapsing, slowStarter];
const suiteStartedAt = Date.now();
const loads = new Set<RunningLoad>();

before(async () => { await Promise.all(stacks.map((s) => s.start())); }, { timeout: 120_000 });
after(async () => {
  await Promise.all([...loads].map((load) => load.stop()));
  for (const s of stacks) for (const app of s.apps.values()) app.signal('SIGCONT');
  for (const s of stacks) for (const agent of s.agents.values()) agent.signal('SIGCONT');
  await Promise.all(stacks.map((s) => s.stop()));
});

function load(durationMs: number): RunningLoad {
  const running = startLoad({ url: stack.url, rate: 500, durationMs });
  loads.add(running);
  return running;
}

async function heals(s: LocalStack): Promise<HealReport[]> {
  return ((await s.status()) as unknown as { heals: HealReport[] }).heals;
}

/** Waits for the agent's report of a heal of `id` with this outcome, after `since` (ISO times compare as strings). */
function report(s: LocalStack, id: string, outcome: HealReport['outcome'], since: number, timeoutMs: number): Promise<HealReport> {
  return waitFor(`${id}'s heal report "${outcome}"`, async () => (await heals(s)).find((r) => r.instance === id && r.outcome === outcome && Date.parse(r.at) >= since), timeoutMs);
}

async function setAppFault(s: LocalStack, id: string, mode: string): Promise<void> {
  const response = await fetch(`http://${s.addressOf(id)}:${s.ports.app}/_fault?mode=${mode}`, { method: 'PUT' });
  assert.equal(response.status, 200);
  await response.arrayBuffer();
}

/**
 * Opens `count` connections (more than the backlog) to a listener that no
 * longer accepts: the kernel queues them until the queue is full, and the
 * rest wait for a place (the probes' connections may already hold some).
 */
async function fillAcceptQueue(host: string, port: number, count: number): Promise<Socket[]> {
  const sockets = Array.from({ length: count }, () => connect({ host, port }).on('error', () => undefined));
  await waitFor('the accept queue to be full (some connections queued, some waiting for a place)', () => (sockets.some((s) => s.readyState === 'open') && sockets.some((s) => s.readyState === 'opening')) || undefined, 5000);
  return sockets;
}

/** The agent's log lines about heals since `since` (its log is written in batches). */
function healLog(s: LocalStack, since: number): Array<{ time: string; msg: string; holders?: string[] }> {
  return readFileSync(s.agent('app1').logFile, 'utf8').split('\n').filter((l) => l.includes('"component":"heal"')).map((l) => JSON.parse(l) as { time: string; msg: string; holders?: string[] }).filter((l) => Date.parse(l.time) >= since);
}

async function bothServing(s: LocalStack): Promise<void> {
  await s.waitForStatus('both instances serving', (st) => st.instances.length === 2 && st.instances.every((i) => i.state === 'healthy' || i.state === 'slow-start'), 40_000);
}

/** The evidence file the agent wrote, as it is on the app host. */
function evidence(r: HealReport): { diagnosis: string; process: { state: string } | null; probes: unknown[] } {
  assert.ok(r.evidenceFile, 'an evidence file');
  return JSON.parse(readFileSync(r.evidenceFile, 'utf8')) as { diagnosis: string; process: { state: string } | null; probes: unknown[] };
}

test('kill -STOP of app1 at 500 GET/s: zero failed GETs; its agent restarts it after --heal-after with the evidence that it was stopped; full redundancy again', { timeout: 120_000 }, async () => {
  const running = load(30_000);
  await waitForRequests(running, 500);
  const oldPid = stack.app('app1').pid;
  const hungAt = Date.now();
  stack.app('app1').signal('SIGSTOP');
  const restarting = await report(stack, 'app1', 'restarting', hungAt, 20_000);
  assert.match(restarting.diagnosis, /^stopped/);
  assert.ok(Date.parse(restarting.at) - hungAt >= HEAL_AFTER_MS, `not before --heal-after (${Date.parse(restarting.at) - hungAt} ms)`);
  const record = evidence(restarting);
  assert.equal(record.process?.state, 'T');
  assert.ok(record.probes.length > 0, 'the last probes are in the evidence');
  const healed = await report(stack, 'app1', 'healed', hungAt, 30_000);
  assert.notEqual(stack.app('app1').pid, oldPid, 'a new app1 process');
  const servingAt = await waitUntilServing(running, 'app1', Date.parse(healed.at), 20_000);
  const summary = summarize(await running.done);
  assert.equal(summary.failed, 0, describeSummary(summary));
  await bothServing(stack);
  const metrics = await (await fetch(`http://127.0.0.1:${stack.ports.admin}/metrics`)).text();
  assert.match(metrics, /sempre_heals_total\{service="web",instance="app1",outcome="healed"\} 1/);
  // The dashboard a person opens: the heal on app1's card, the evidence one click away, the diagnosis in the incident.
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(stack.dashboardUrl);
    const heal = page.locator('article[data-instance="app1"] dd.heal[data-heal-outcome="healed"]');
    await heal.waitFor({ timeout: 10_000 });
    assert.match(await heal.textContent() ?? '', /stopped \(SIGSTOP or a debugger\)/);
    await heal.locator('summary').click();
    assert.match(await heal.locator('pre').textContent() ?? '', /"state": "T"/);
    assert.match(await page.locator('[data-incidents="app1"]').textContent() ?? '', /hung/);
    await page.screenshot({ path: `${stack.options.logDir}/dashboard-heal.png`, fullPage: true });
  } finally {
    await browser.close();
  }
  recordFigure('SIGSTOP of app1: time to full redundancy (fault → app1 serving again)', servingAt - hungAt, 'ms');
  recordFigure('SIGSTOP of app1 at 500 GET/s: failed GETs during the heal', `${summary.failed} of ${summary.total}`);
});

for (const [mode, diagnosis] of [['busy', /^busy/], ['deadlock', /accept queue full/]] as const) {
  test(`an app in a ${mode === 'busy' ? 'busy loop' : 'deadlock that fills its accept queue'} is healed with its own diagnosis`, { timeout: 120_000 }, async () => {
  await bothServing(stack);
    const running = load(25_000);
    await waitForRequests(running, 300);
    const hungAt = Date.now();
    await setAppFault(stack, 'app2', mode);
    // Clients keep connecting to a blocked app (as under real traffic): its accept queue (--backlog 16) fills.
    if (mode === 'deadlock') await waitFor('app2 to stop answering', async () => !(await fetch(`http://${stack.addressOf('app2')}:${stack.ports.app}/healthz`, { signal: AbortSignal.timeout(300) }).then(() => true, () => false)) || undefined, 5000);
    const waiting = mode === 'deadlock' ? await fillAcceptQueue(stack.addressOf('app2'), stack.ports.app, 24) : [];
    const restarting = await report(stack, 'app2', 'restarting', hungAt, 25_000).finally(() => { for (const socket of waiting) socket.destroy(); });
    assert.match(restarting.diagnosis, diagnosis);
    assert.match(evidence(restarting).diagnosis, diagnosis);
    await report(stack, 'app2', 'healed', hungAt, 30_000);
    const servingAt = await waitUntilServing(running, 'app2', hungAt + HEAL_AFTER_MS, 30_000);
    await running.stop();
    const summary = summarize(running.records);
    assert.equal(summary.failed, 0, describeSummary(summary));
    await bothServing(stack);
    recordFigure(`${mode} app2: diagnosis / time to full redundancy`, `${restarting.diagnosis} / ${servingAt - hungAt} ms`);
  });
}

test('both health endpoints answering 503 ("database down"): nothing is restarted, and the reason is shown', { timeout: 60_000 }, async () => {
  await bothServing(stack);
  const pids = ['app1', 'app2'].map((id) => stack.app(id).pid);
  const since = Date.now();
  for (const id of ['app1', 'app2']) await setAppFault(stack, id, 'unhealthy');
  try {
    for (const id of ['app1', 'app2']) {
      const reported = await report(stack, id, 'not-fixable', since, 10_000);
      assert.match(reported.diagnosis, /error: not restarted/);
    }
    // Longer than --heal-after and a probe: a restart would have happened by now.
    await waitFor('--heal-after and two seconds to pass', () => Date.now() - since > HEAL_AFTER_MS + 2000 || undefined, 10_000);
    assert.deepEqual(['app1', 'app2'].map((id) => stack.app(id).pid), pids, 'no app was restarted');
  } finally {
    for (const id of ['app1', 'app2']) await setAppFault(stack, id, 'none');
  }
  await bothServing(stack);
});

test('both apps hung at once: healed one at a time (Consul\'s lock: never two restarting), the page back as soon as the first is', { timeout: 150_000 }, async () => {
  await bothServing(stack);
  const since = Date.now();
  for (const id of ['app1', 'app2']) stack.app(id).signal('SIGSTOP');
  const healing = ['app1', 'app2'].map((id) => report(stack, id, 'healed', since, 90_000));
  // The page is back as soon as the first is healed: the balancer readmits it on its health probe.
  const first = await Promise.race(healing);
  const backAt = await waitFor('the page to answer 200 again', async () => {
    const page = await fetch(stack.url, { signal: AbortSignal.timeout(1000) });
    await page.arrayBuffer();
    return page.status === 200 ? Date.now() : undefined;
  }, 5000);
  const [r1, r2] = await Promise.all(healing);
  // From the agents' own logs (written in batches: waited for): each heal
  // from "restarting" to "passes again"; the two windows never overlap.
  const windows = (await Promise.all(['app1', 'app2'].map((id) => waitFor(`${id}'s agent to log its heal`, () => {
    const lines = readFileSync(stack.agent(id).logFile, 'utf8').split('\n').filter((l) => l.includes('"component":"heal"')).map((l) => JSON.parse(l) as { time: string; msg: string; holders?: string[] }).filter((l) => Date.parse(l.time) >= since);
    const start = lines.find((l) => /: restarting it$/.test(l.msg));
    const end = lines.find((l) => /passes again after the restart/.test(l.msg));
    return start && end ? { id, holders: start.holders, from: Date.parse(start.time), to: Date.parse(end.time) } : undefined;
  }, 5000)))).sort((a, b) => a.from - b.from);
  for (const w of windows) assert.deepEqual(w.holders, [w.id], `${w.id} alone held the heal lock`);
  assert.ok(windows[1]!.from >= windows[0]!.to, `one at a time: ${JSON.stringify(windows)}`);
  assert.ok(backAt - Date.parse(first.at) < 3000, `the page answered ${backAt - Date.parse(first.at)} ms after ${first.instance} was healed`);
  await bothServing(stack);
  recordFigure('both apps hung: first healed / page back / second healed, after the hang', `${windows[0]!.to - since} / ${backAt - since} / ${windows[1]!.to - since} ms (${r1!.diagnosis}; ${r2!.diagnosis})`);
});

test('the agent killed while it holds the heal lock: Consul releases it (session), and another instance can be healed', { timeout: 150_000 }, async () => {
  await bothServing(stack);
  const since = Date.now();
  stack.app('app1').signal('SIGSTOP');
  await report(stack, 'app1', 'restarting', since, 20_000);
  // app1's agent dies holding the lock (before its app passes again).
  stack.agent('app1').signal('SIGKILL');
  const lockUrl = `${stack.consulUrl}/v1/kv/sempre/heal-lock/web/app1`;
  const held = (await (await fetch(lockUrl)).json()) as Array<{ Session?: string }>;
  assert.ok(held[0]?.Session, 'the lock is held by app1\'s session');
  const releasedAt = await waitFor('Consul to release the dead agent\'s lock', async () => {
    const entries = await fetch(lockUrl);
    if (entries.status === 404) return Date.now();
    return ((await entries.json()) as Array<{ Session?: string }>)[0]?.Session ? undefined : Date.now();
  }, 40_000);
  const hung2 = Date.now();
  stack.app('app2').signal('SIGSTOP');
  const healed = await report(stack, 'app2', 'healed', hung2, 40_000);
  assert.ok(healed);
  await stack.startAgent('app1');
  await bothServing(stack);
  recordFigure('agent killed holding the heal lock: lock released after', releasedAt - since, 'ms');
});

test('without Consul the agent does not heal (it cannot take the lock); once Consul is back, it does', { timeout: 120_000 }, async () => {
  await bothServing(stack);
  const pid = stack.app('app1').pid;
  stack.consul!.signal('SIGSTOP');
  const since = Date.now();
  try {
    stack.app('app1').signal('SIGSTOP');
    await waitFor('the agent to say it cannot take the lock', () => readFileSync(stack.agent('app1').logFile, 'utf8').split('\n').some((l) => l.includes('Consul cannot be reached to take the heal lock') && Date.parse((JSON.parse(l) as { time: string }).time) >= since) || undefined, 25_000);
    assert.equal(stack.app('app1').pid, pid, 'not restarted without the lock');
  } finally {
    stack.consul!.signal('SIGCONT');
  }
  await report(stack, 'app1', 'healed', since, 60_000);
  assert.notEqual(stack.app('app1').pid, pid);
  await bothServing(stack);
});

test('an app that hangs again after every restart is healed up to the budget, then left to a person (needs-person)', { timeout: 150_000 }, async () => {
  const since = suiteStartedAt;
  const needsPerson = await report(relapsing, 'app1', 'needs-person', since, 120_000);
  assert.match(needsPerson.diagnosis, /still hung after 2 restart\(s\).*a person is needed/);
  const restarts = healLog(relapsing, since).filter((l) => /: restarting it$/.test(l.msg)).length;
  assert.equal(restarts, 2, 'exactly the budget');
  const pid = relapsing.app('app1').pid;
  await waitFor('another --heal-after and more', () => Date.now() - Date.parse(needsPerson.at) > 5000 || undefined, 10_000);
  assert.equal(relapsing.app('app1').pid, pid, 'left alone after the budget');
});

test('a slow-starting app (8 s to listen) is not restarted again during its grace', { timeout: 120_000 }, async () => {
  const since = Date.now();
  slowStarter.app('app1').signal('SIGSTOP');
  await report(slowStarter, 'app1', 'healed', since, 60_000);
  const restarts = healLog(slowStarter, since).filter((l) => /: restarting it$/.test(l.msg)).length;
  assert.equal(restarts, 1, 'one restart, however long it took to listen');
});
