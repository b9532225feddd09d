// `sempre deploy` in the multi-host lab (root), run as a person runs it, under
// 500 GET/s from the client host: every instance ends on the new version
// with zero failed requests; a release that never turns healthy stops the
// deploy at the first instance while the page keeps being served.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startLabLoad, waitForFullRotation } from '../../drill/drill.ts';
import { computeMetrics } from '../../drill/metrics.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { type LabState } from '../../lab/netns-lab.ts';
import type { DeployResult } from '../../ops/rolling-deploy.ts';
import { labForThisFile, skipUnlessRoot } from '../support/lab.ts';
import { recordFigure } from '../support/stack.ts';

const skip = skipUnlessRoot;
let lab: LabState;
labForThisFile({ instances: 2 }, (l) => { lab = l; });


function deploy(version: string, extra: string[] = []): Promise<{ code: number; result: DeployResult; stderr: string }> {
  const restart = `${process.execPath} ${join(PROJECT_ROOT, 'lab/lab-cli.ts')} restart-app {id} --version {version}${extra.includes('--broken') ? ' --unhealthy' : ''}`;
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'ops/deploy-cli.ts'), '--version', version, '--admin', lab.adminUrl, '--restart', restart,
    '--expect', '{version}', '--health-timeout', '8s', '--json', ...extra.filter((a) => a !== '--broken')],
  { env: { ...process.env, SEMPRE_ADMIN_TOKEN: lab.adminToken }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c; });
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, result: JSON.parse(stdout) as DeployResult, stderr })));
}

/** Which versions the page is served by, over `count` requests through the balancer. */
async function servedVersions(count = 40): Promise<Map<string, string>> {
  const byInstance = new Map<string, string>();
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(lab.url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    assert.equal(response.status, 200);
    byInstance.set(response.headers.get('x-served-by') ?? '?', response.headers.get('x-app-version') ?? '?');
  }
  return byInstance;
}

async function underLoad<T>(work: () => Promise<T>): Promise<{ value: T; metrics: ReturnType<typeof computeMetrics> }> {
  await waitForFullRotation(lab, 30_000);
  const load = await startLabLoad(lab, { url: lab.url, rate: 500, durationMs: 120_000, method: 'GET', path: '/' });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const value = await work();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  load.worker.kill('SIGTERM');
  await load.finished;
  const records = [...load.records].sort((a, b) => a.intendedMs - b.intendedMs);
  return { value, metrics: computeMetrics(records, [], { name: 'deploy', target: 'all', startMs: 1000, endMs: records.at(-1)?.intendedMs ?? 0 }) };
}

test('a rolling deploy at 500 GET/s: zero failed requests, every instance on the new version', { skip, timeout: 180_000 }, async () => {
  assert.deepEqual([...(await servedVersions()).values()].sort(), ['1.0.0', '1.0.0']);
  const { value: run, metrics } = await underLoad(() => deploy('2.0.0'));
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.result.ok, true);
  assert.deepEqual(run.result.updated, ['app1', 'app2']);
  const phases = ['maintenance', 'drain', 'restart', 'healthy', 'serving'];
  assert.deepEqual(run.result.steps.map((s) => `${s.instance} ${s.phase}`), ['app1', 'app2'].flatMap((id) => phases.map((p) => `${id} ${p}`)), 'one host at a time, every step in order');
  assert.ok(metrics.total >= 2000, `the load ran throughout (${metrics.total} requests)`);
  assert.equal(metrics.failed, 0, JSON.stringify(metrics.failedByClass));
  await waitForFullRotation(lab, 30_000);
  const versions = await servedVersions();
  assert.deepEqual([...versions.keys()].sort(), ['app1', 'app2']);
  assert.deepEqual([...versions.values()], ['2.0.0', '2.0.0'], 'every instance serves the new version');
  recordFigure('rolling deploy of 2 instances at 500 GET/s: failed / requests / duration / max latency', `${metrics.failed} / ${metrics.total} / ${(run.result.totalMs / 1000).toFixed(1)} s / ${metrics.latency.max} ms`);
});

test('a release that never turns healthy stops the deploy at the first instance; the page stays served', { skip, timeout: 180_000 }, async () => {
  const { value: run, metrics } = await underLoad(() => deploy('2.1.0', ['--broken']));
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.result.ok, false);
  assert.deepEqual(run.result.updated, []);
  assert.equal(run.result.failure?.instance, 'app1');
  assert.equal(run.result.failure?.phase, 'healthy');
  assert.equal(run.result.failure?.leftInMaintenance, true);
  assert.match(run.stderr, /DEPLOY STOPPED at app1 \(healthy\)/);
  assert.match(run.result.failure?.reason ?? '', /HTTP 503/, 'the reason carries the check output');
  assert.equal(metrics.failed, 0, JSON.stringify(metrics.failedByClass));
  // app2 was never touched and serves alone; app1 stays out of rotation.
  const versions = await servedVersions();
  assert.deepEqual([...versions.entries()], [['app2', '2.0.0']]);
  const status = (await (await fetch(`${lab.adminUrl}/_sempre/dashboard`)).json()) as { instances: Array<{ id: string; state: string }> };
  assert.equal(status.instances.find((i) => i.id === 'app1')?.state, 'maintenance');
  recordFigure('broken release: deploy stopped at app1 after', `${(run.result.totalMs / 1000).toFixed(1)} s, ${metrics.failed} failed of ${metrics.total}`);
});
