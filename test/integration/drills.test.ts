// Drills in the multi-host lab (network namespaces, root): every fault at
// 500 GET/s leaves zero failed GETs and the instance back in rotation; POSTs
// are reported honestly; bad requests inject nothing; an interrupted drill
// leaves no fault behind; the report renders in a real browser.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DrillError, runDrill, validateDrill, waitForFullRotation, type DrillOptions } from '../../drill/drill.ts';
import { FAULTS } from '../../drill/faults/index.ts';
import { renderReport } from '../../drill/report.ts';
import { BRIDGE, isAlive, labDown, labUp, type LabState } from '../../lab/netns-lab.ts';
import { launchChromium } from '../support/browser.ts';
import { recordFigure, RESULTS_DIR } from '../support/stack.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { waitFor } from '../../lab/processes.ts';

const root = process.getuid?.() === 0;
const skip = root ? false : 'the multi-host lab needs root (network namespaces, nftables)';
const quiet = () => undefined;
const never = new AbortController().signal;
let lab: LabState;
const base: Omit<DrillOptions, 'fault'> = { target: 'app1', atMs: 2000, forMs: 3000, rate: 500, durationMs: 8000, method: 'GET', path: '/' };
const results: Awaited<ReturnType<typeof runDrill>>[] = [];

function nftTables(host: string): string {
  return execFileSync('ip', ['netns', 'exec', `sempre-${host}`, 'nft', 'list', 'tables'], { encoding: 'utf8' });
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

before(async () => {
  if (root) lab = await labUp({ instances: 2, say: quiet });
}, { timeout: 120_000 });

after(() => {
  if (!root) return;
  labDown(quiet);
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.doesNotMatch(namespaces, /sempre-/, 'lab down leaves no namespace');
  assert.equal(spawnSync('ip', ['link', 'show', BRIDGE]).status !== 0, true, 'lab down leaves no bridge');
  for (const proc of Object.values(lab?.processes ?? {})) assert.equal(isAlive(proc.pid), false, `${proc.name} is gone`);
});

test('an unknown fault or target is refused with a clear error and injects nothing', { skip }, async () => {
  assert.throws(() => validateDrill({ ...base, fault: 'meteor' }, lab), (e: unknown) => e instanceof DrillError && /drill\.fault: unknown fault "meteor"; one of crash, hang/.test(e.message));
  assert.throws(() => validateDrill({ ...base, fault: 'crash', target: 'app9' }, lab), /drill\.target: no app host "app9" in the lab; one of app1, app2/);
  await assert.rejects(runDrill({ ...base, fault: 'crash', target: 'db1' }, lab, { say: quiet, interrupted: never }), DrillError);
  for (const proc of Object.values(lab.processes)) assert.equal(isAlive(proc.pid), true, `${proc.name} still running`);
  assert.doesNotMatch(nftTables('app1'), /sempre_fault/);
});

for (const fault of FAULTS) {
  test(`${fault.name}: zero failed GETs at 500/s, and the instance back in rotation after the fault`, { skip, timeout: 120_000 }, async () => {
    const result = await runDrill({ ...base, fault: fault.name }, lab, { say: quiet, interrupted: never });
    results.push(result);
    mkdirSync(join(RESULTS_DIR, 'drills'), { recursive: true });
    writeFileSync(join(RESULTS_DIR, 'drills', `${fault.name}.json`), JSON.stringify({ fault: result.fault, metrics: { ...result.metrics, perSecond: undefined }, timeline: result.timeline }, null, 2));
    const m = result.metrics;
    assert.ok(m.total >= 3900, `the load ran at its rate (${m.total} requests)`);
    assert.equal(m.failed, 0, `${fault.name}: ${JSON.stringify(m.failedByClass)}`);
    await waitForFullRotation(lab, 30_000);
    assert.doesNotMatch(nftTables('app1'), /sempre_fault/, 'no nftables rule left');
    const extra = fault.name === 'scale-out' ? `, first request to the new instance ${m.firstServedMs === null ? '–' : Math.round(m.firstServedMs)} ms` : '';
    recordFigure(`drill ${fault.name}: detect / recover / fault-window p99 / max`, `${m.detectMs ?? '–'} / ${m.recoverMs === null ? '–' : Math.round(m.recoverMs)} / ${m.faultLatency.p99} / ${m.faultLatency.max} ms${extra}`);
  });
}

test('POSTs sent to a hung instance are never sent again elsewhere: each waits for it or gets the balancer\'s 502', { skip, timeout: 120_000 }, async () => {
  const metricsBefore = await (await fetch(`${lab.adminUrl}/metrics`)).text();
  // Hung 6.5 s: shorter than the balancer's 60 s response timeout. The demo app, woken up, may
  // close keep-alive connections it thinks idle (5 s) with a request still unread: those POSTs
  // are reset, and a POST that may have reached the app is not sent again.
  const result = await runDrill({ ...base, fault: 'hang', method: 'POST', rate: 200, atMs: 1000, forMs: 6500, durationMs: 9000 }, lab, { say: quiet, interrupted: never });
  const metricsAfter = await (await fetch(`${lab.adminUrl}/metrics`)).text();
  const m = result.metrics;
  const delta = (name: string, labels: string) => metric(metricsAfter, name, labels) - metric(metricsBefore, name, labels);
  const failed = result.records.filter((r) => r.errorClass !== 'ok');
  assert.deepEqual([...new Set(failed.map((r) => r.status))].filter((s) => s !== 502), [], `only the balancer's 502s, never a hang or another answer: ${JSON.stringify(m.failedByClass)}`);
  // POSTs that reached the hung app1: held until it resumed, or answered 502. Without any, the
  // checks below would pass with nothing to check.
  const held = result.records.filter((r) => r.servedBy === 'app1' && r.latencyMs > 5000);
  const affected = [...failed, ...held];
  assert.ok(affected.length > 0, 'some POSTs reached the hung instance');
  // Only the POSTs already sent before the balancer took app1 out of rotation (its timeline is
  // polled every 100 ms; a request sent just before the fault may be caught too).
  assert.ok(m.detectMs !== null, 'the balancer took app1 out of rotation');
  const detectedAt = result.fault.startMs + m.detectMs;
  const late = affected.filter((r) => r.intendedMs < result.fault.startMs - 100 || r.intendedMs > detectedAt + 150);
  assert.deepEqual(late.map((r) => `sent at ${Math.round(r.intendedMs)} ms: ${r.status || r.errorClass}`), [], `only the POSTs sent between the fault (${result.fault.startMs} ms) and its detection (${detectedAt} ms) were affected`);
  assert.equal(delta('sempre_retries_total', 'reason="timeout"') + delta('sempre_retries_total', 'reason="reset"'), 0, 'no POST that may have reached the app was retried elsewhere');
  assert.equal(delta('sempre_upstream_attempts_total', 'instance="app1",outcome="reset"') + delta('sempre_upstream_attempts_total', 'instance="app1",outcome="timeout"'), m.failed, 'each failed POST is one attempt on app1, not sent again');
  await waitForFullRotation(lab, 30_000);
  recordFigure('drill hang with POST: 502 (not retried) / answered by app1 after it resumed', `${m.failed} / ${held.length}`);
});

test('Ctrl-C during a drill reverts its fault: no nftables rule left, the command exits non-zero', { skip, timeout: 60_000 }, async () => {
  const drill = spawn(process.execPath, [join(PROJECT_ROOT, 'drill/main.ts'), '--fault', 'partition', '--at', '2s', '--for', '6s', '--duration', '10s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  drill.stdout.on('data', (chunk) => { output += chunk; });
  drill.stderr.on('data', (chunk) => { output += chunk; });
  await waitFor('the fault to be injected', () => output.includes('injected'), 20_000);
  assert.match(nftTables('app1'), /sempre_fault/, 'the partition is in place');
  drill.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => drill.once('exit', resolve));
  assert.notEqual(code, 0);
  assert.match(output, /interrupted: reverting the fault/);
  assert.doesNotMatch(nftTables('app1'), /sempre_fault/, 'the rule is gone');
  await waitForFullRotation(lab, 30_000);
});

test('an interrupted hang leaves no stopped process', { skip, timeout: 60_000 }, async () => {
  const interrupt = new AbortController();
  const drill = runDrill({ ...base, fault: 'hang', forMs: 5000, durationMs: 10_000 }, lab, { say: (line) => { if (line.includes('injected')) setTimeout(() => interrupt.abort(), 500); }, interrupted: interrupt.signal });
  await assert.rejects(drill, /interrupted: the fault was reverted/);
  const state = execFileSync('ps', ['-o', 'stat=', '-p', String(lab.processes.app1!.pid)], { encoding: 'utf8' }).trim();
  assert.doesNotMatch(state, /T/, 'app1 is not left stopped');
  await waitForFullRotation(lab, 30_000);
});

test('the HTML report opens in headless Chromium with no network, and its charts render', { skip, timeout: 60_000 }, async () => {
  assert.ok(results.length >= 1, "the drills above produced results");
  const dir = join(RESULTS_DIR, 'drills');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'report.html');
  writeFileSync(file, renderReport(results, 'sempre drills: every fault'));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const requests: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${file}`);
    assert.equal(await page.locator('canvas').count(), results.length * 3, 'three charts per drill');
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [], 'the report loads nothing from the network');
    assert.match(await page.locator('h2').first().textContent() ?? '', /crash on app1/);
    await page.screenshot({ path: join(dir, 'report.png'), fullPage: false });
  } finally {
    await browser.close();
  }
});
