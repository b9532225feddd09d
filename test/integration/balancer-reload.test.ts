// Issue 21: the balancer on the one infra host is reloaded, upgraded and
// restarted without failing a request. One balancer (no pair) under the
// socket keeper, as ./sempre up and systemd's socket unit run it, in front of
// two instances of an Express + ws app with their agents and a real Consul,
// at 500 GET/s with 200 WebSockets open:
// - a reload with a changed option (in its --environment-file) and a changed
//   file of its code (in a copy of the project): no failed GET, no refused
//   connection, both changes in effect after, WebSockets kept until
//   --tunnel-drain;
// - after each, the dashboard in Chromium still shows the incident (app1
//   killed and started again) and the events recorded before;
// - reloads with a bad option and a bad certificate: refused with the reason
//   (exit 1), the running workers keep serving;
// - kill -9 of the main process and of the serving worker: no connection
//   refused, the failed requests counted, the time until it serves again;
// - over HTTPS, a renewed certificate served after a reload, a broken one refused.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { connect as connectTls } from 'node:tls';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import type { RequestRecord } from '../../drill/records.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { waitFor } from '../../lab/processes.ts';
import { readMainPid, readReloadOutcome } from '../../balancer/lifecycle/run-dir.ts';
import type { Browser } from 'playwright-core';
import type { LocalStack } from '../../lab/local-stack.ts';
import { launchChromium } from '../support/browser.ts';
import { inRotation, recordFigure, testStack } from '../support/stack.ts';
import { closeTunnels, echo, openTunnels, type Tunnel } from '../support/websockets.ts';

const RATE = 500;
const TUNNELS = 200;
const DRAIN_MS = 6000;

// The balancer runs from a copy of the project, so the test can change a file of its code.
const work = mkdtempSync(join(tmpdir(), 'sempre-reload-'));
const code = join(work, 'code');
for (const dir of ['balancer', 'shared', 'bin']) cpSync(join(PROJECT_ROOT, dir), join(code, dir), { recursive: true });
copyFileSync(join(PROJECT_ROOT, 'package.json'), join(code, 'package.json'));
for (const link of ['node_modules', 'dashboard']) symlinkSync(join(PROJECT_ROOT, link), join(code, link));
const envFile = join(work, 'balancer.env');
writeFileSync(envFile, 'SEMPRE_STRATEGY=least-outstanding\n');

const stack = testStack('balancer-reload', 39_000, {
  lab: false,
  appScript: join(PROJECT_ROOT, 'test/apps/real-app.ts'),
  keepBalancer: true,
  balancerRoot: code,
  balancerArgs: ['--environment-file', envFile, '--tunnel-drain', `${DRAIN_MS / 1000}s`, '--shutdown-timeout', '5s'],
});
const sockets = new Set<WebSocket>();
let browser: Browser | undefined;
before(async () => {
  await stack.start();
  browser = await launchChromium();
  await recordAnIncident(stack);
}, { timeout: 120_000 });
after(async () => {
  for (const ws of sockets) ws.terminate();
  await browser?.close();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
});

/** app1 killed and started again: an incident (cause: refused) and its events, for the dashboard to keep. */
async function recordAnIncident(on: LocalStack): Promise<void> {
  on.app('app1').signal('SIGKILL');
  await on.waitForStatus('app1 out of rotation', (s) => !inRotation(s, 'app1'), 20_000);
  await on.startApp('app1');
  await on.waitForStatus('app1 back in rotation', (s) => inRotation(s, 'app1'), 30_000);
}

/** What the dashboard shows in Chromium, after `what`: app1's incident and the events recorded before it. */
async function assertDashboardKeepsHistory(on: LocalStack, what: string): Promise<void> {
  const page = await browser!.newPage({ locale: 'en-US' });
  try {
    await page.goto(on.dashboardUrl);
    await page.locator('[data-incidents="app1"]').first().waitFor({ timeout: 15_000 });
    const count = Number(await page.locator('[data-incidents="app1"]').first().getAttribute('data-count'));
    assert.ok(count >= 1, `${what}: app1's incident on the dashboard (count ${count})`);
    await page.locator('#events li[data-instance="app1"][data-kind="ejected"], #events li[data-instance="app1"][data-kind="check-critical"]').first().waitFor({ timeout: 15_000 });
  } finally {
    await page.close();
  }
}

const wsUrl = () => `ws://127.0.0.1:${stack.ports.balancer}/ws`;

function reload(): { code: number; out: string; ms: number } {
  const started = Date.now();
  const run = spawnSync(join(code, 'bin/sempre-balancer-reload'), ['--run-dir', stack.balancerRunDir], { encoding: 'utf8', timeout: 60_000 });
  return { code: run.status ?? -1, out: `${run.stdout}${run.stderr}`, ms: Date.now() - started };
}

async function strategy(): Promise<string> {
  return (await stack.status() as unknown as { strategy: string }).strategy;
}

async function codeMarker(): Promise<string | null> {
  return (await fetch(stack.url)).headers.get('x-sempre-code');
}

function assertNoFailure(records: readonly RequestRecord[], what: string): void {
  const summary = summarize(records);
  assert.ok(summary.total >= RATE * 3, `${what}: only ${summary.total} requests ran`);
  assert.equal(summary.failed, 0, `${what}: ${describeSummary(summary)}`);
}

test(`reload with a changed option and a changed file of code at ${RATE} GET/s with ${TUNNELS} WebSockets open: no failed GET, no refused connection; the new code and option serve; the WebSockets end only at the drain deadline`, { timeout: 120_000 }, async () => {
  assert.equal(await strategy(), 'least-outstanding');
  assert.equal(await codeMarker(), null);
  const tunnels: Tunnel[] = await openTunnels(wsUrl(), sockets, TUNNELS, { perAddress: 100, addressPrefix: '127.0.7' });
  const load = startLoad({ url: stack.url, rate: RATE, durationMs: 12_000 });
  await waitFor('two seconds of load', () => load.records.length >= RATE * 2, 10_000);
  // The option, in the file systemd would have read only at start; the code, in the request path.
  writeFileSync(envFile, 'SEMPRE_STRATEGY=round-robin\n');
  const httpPath = join(code, 'balancer/proxy/http-path.ts');
  const before = readFileSync(httpPath, 'utf8');
  const changed = before.replace("out.push('x-served-by', servedBy);", "out.push('x-served-by', servedBy, 'x-sempre-code', 'changed');");
  assert.notEqual(changed, before, 'the line the test changes is in http-path.ts');
  writeFileSync(httpPath, changed);
  const reloaded = reload();
  const reloadedAt = Date.now();
  assert.equal(reloaded.code, 0, reloaded.out);
  assert.match(reloaded.out, /reloaded: generation 2 serves/);
  // Before the drain deadline the old worker's WebSockets still carry messages.
  await Promise.all(tunnels.map((t, i) => echo(t, `during the drain ${i}`, 3000)));
  const records = await load.done;
  assertNoFailure(records, 'GETs across the reload');
  assert.equal(await strategy(), 'round-robin', 'the changed option is in effect');
  assert.equal(await codeMarker(), 'changed', 'the changed code serves');
  const closedAt = await Promise.all(tunnels.map((t) => t.closed));
  const after = closedAt.map((at) => at - reloadedAt);
  assert.ok(Math.min(...after) >= DRAIN_MS - 1000, `a WebSocket closed ${Math.min(...after)} ms after the reload, before the ${DRAIN_MS} ms drain`);
  assert.ok(Math.max(...after) <= DRAIN_MS + 4000, `a WebSocket was still open ${Math.max(...after)} ms after the reload`);
  await assertDashboardKeepsHistory(stack, 'after the reload');
  recordFigure(`balancer reload (changed option and code) at ${RATE} GET/s with ${TUNNELS} WebSockets: failed GETs`, `0 of ${records.length}, reload took ${reloaded.ms} ms, WebSockets closed ${Math.round(Math.min(...after) / 100) / 10}–${Math.round(Math.max(...after) / 100) / 10} s after it (drain ${DRAIN_MS / 1000} s)`);
  await closeTunnels(tunnels);
});

test('a reload with a bad option is refused with the reason; the running workers keep serving with no failed GET', { timeout: 60_000 }, async () => {
  const load = startLoad({ url: stack.url, rate: RATE, durationMs: 6000 });
  writeFileSync(envFile, 'SEMPRE_STRATEGY=round-robin\nSEMPRE_RETRIES=99\n');
  const refused = reload();
  writeFileSync(envFile, 'SEMPRE_STRATEGY=round-robin\nSEMPRE_TLS_CERT=/nonexistent/cert.pem\nSEMPRE_TLS_KEY=/nonexistent/key.pem\n');
  const refusedFile = reload();
  writeFileSync(envFile, 'SEMPRE_STRATEGY=round-robin\n');
  assertNoFailure(await load.done, 'GETs across refused reloads');
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, /reload refused.*balancer\.retries/);
  assert.equal(refusedFile.code, 1, refusedFile.out);
  assert.match(refusedFile.out, /reload refused.*tlsCert/);
  assert.equal(readReloadOutcome(stack.balancerRunDir)?.generation, 2, 'generation 2 still serves');
  assert.equal(await codeMarker(), 'changed');
  await assertDashboardKeepsHistory(stack, 'after the refused reloads');
});

for (const victim of ['main process', 'worker'] as const) {
  test(`kill -9 of the balancer's ${victim} at ${RATE} GET/s: no connection refused while it is started again; the failed requests and the time until it serves again`, { timeout: 60_000 }, async () => {
    const mainBefore = readMainPid(stack.balancerRunDir)!;
    const workersBefore = stack.balancerWorkerPids();
    assert.equal(workersBefore.length, 1);
    const load = startLoad({ url: stack.url, rate: RATE, durationMs: 8000 });
    await waitFor('two seconds of load', () => load.records.length >= RATE * 2, 10_000);
    const killedAt = Date.now();
    process.kill(victim === 'worker' ? workersBefore[0]! : mainBefore, 'SIGKILL');
    // Serving again: a request on a new connection answered by a worker that did not exist before.
    const servingAt = await waitFor('a new worker to serve', async () => {
      const worker = stack.balancerWorkerPids().find((pid) => !workersBefore.includes(pid));
      if (!worker) return undefined;
      const response = await fetch(stack.url, { headers: { connection: 'close' } });
      return response.status === 200 && !stack.balancerWorkerPids().includes(workersBefore[0]!) ? Date.now() : undefined;
    }, 20_000, 20);
    const records = await load.done;
    const summary = summarize(records);
    assert.equal(summary.byClass.refused ?? 0, 0, `connections refused: ${describeSummary(summary)}`);
    if (victim === 'main process') assert.notEqual(readMainPid(stack.balancerRunDir), mainBefore, 'a new main process');
    await assertDashboardKeepsHistory(stack, `after kill -9 of the ${victim}`);
    recordFigure(`balancer kill -9 of its ${victim} at ${RATE} GET/s: failed requests, refused connections, time until a new worker serves`, `${summary.failed} of ${summary.total} failed (${describeSummary(summary)}), 0 refused, ${servingAt - killedAt} ms`);
  });
}

// HTTPS: certbot's deploy hook renews the files, then reloads.
const tlsDir = join(work, 'tls');
mkdirSync(tlsDir);
const certFile = join(tlsDir, 'fullchain.pem');
const keyFile = join(tlsDir, 'privkey.pem');
/** A throwaway certificate into cert/key; its SHA-256 fingerprint as Node prints it. */
function makeCertificate(cert: string, key: string, name: string): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return new X509Certificate(readFileSync(cert)).fingerprint256;
}
const firstFingerprint = makeCertificate(certFile, keyFile, 'first.localhost');
const tlsStack = testStack('balancer-reload-tls', 39_500, {
  lab: false,
  appScript: join(PROJECT_ROOT, 'test/apps/real-app.ts'),
  keepBalancer: true,
  balancerArgs: ['--tls-cert', certFile, '--tls-key', keyFile],
});
before(async () => {
  await tlsStack.start();
  await recordAnIncident(tlsStack);
}, { timeout: 120_000 });
after(async () => { await tlsStack.stop(); });

function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port: tlsStack.ports.balancer, servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

function slowGet(ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port: tlsStack.ports.balancer, path: `/slow?ms=${ms}`, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

test('a certificate renewed on disk is served to the next handshake after a reload; a broken one is refused with the reason; requests in flight are unaffected', { timeout: 60_000 }, async () => {
  assert.equal(await servedFingerprint(), firstFingerprint);
  const inFlight = Array.from({ length: 10 }, () => slowGet(4000));
  const reloadTls = () => spawnSync(join(PROJECT_ROOT, 'bin/sempre-balancer-reload'), ['--run-dir', tlsStack.balancerRunDir], { encoding: 'utf8', timeout: 60_000 });
  // A renewal gone wrong: the certificate file holds no certificate.
  writeFileSync(certFile, 'not a certificate\n');
  const broken = reloadTls();
  assert.equal(broken.status, 1, `${broken.stdout}${broken.stderr}`);
  assert.match(broken.stdout, /reload refused.*balancer\.tlsCert: .* is not a usable certificate and key/);
  assert.equal(await servedFingerprint(), firstFingerprint, 'the running workers keep the certificate they had');
  // The renewal done right.
  const renewed = makeCertificate(certFile, keyFile, 'renewed.localhost');
  const ok = reloadTls();
  assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
  assert.equal(await servedFingerprint(), renewed, 'the next handshake gets the renewed certificate');
  assert.deepEqual(await Promise.all(inFlight), Array(10).fill(200), 'requests in flight across both reloads');
  await assertDashboardKeepsHistory(tlsStack, 'after the certificate reloads');
  recordFigure('certificate renewal: broken one refused, renewed one served to the next handshake after reload; slow requests in flight answered', `${broken.stdout.trim().slice(0, 160)}`);
});
