// docker-compose.yml run for real (root): a Docker engine (the running one, or
// one started here), local stand-ins for the two public base images Docker
// Hub would give, the project's image built from the Dockerfile, and
// `docker-compose up`. Under a constant load sent only to the balancer's port
// published on 127.0.0.1, app1's container is killed and started again, and a
// third app + agent pair is started with compose. `down -v` then leaves no
// container, network or volume, and an engine started here is stopped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startLoad, type RunningLoad } from '../../drill/load-generator.ts';
import type { RequestRecord } from '../../drill/records.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { findConsul, PROJECT_ROOT } from '../../lab/consul-binary.ts';
import type { BalancerStatus } from '../../lab/local-stack.ts';
import { waitFor } from '../../lab/processes.ts';
import { installedConsulVersion } from '../../ops/consul-version.ts';
import { run, useDockerEngine, type DockerEngine } from '../support/docker-engine.ts';
import { isRoot } from '../support/lab.ts';
import { inRotation, recordFigure, RESULTS_DIR, waitUntilServing } from '../support/stack.ts';
import { standinImages } from '../support/standin-images.ts';

const COMPOSE_FILE = join(PROJECT_ROOT, 'docker-compose.yml');
const PROJECT = 'sempre-compose-test';
const IMAGE = 'sempre-test/sempre:compose';
const PORTS = { http: 31_080, admin: 31_081, consul: 31_500 };
const PAGE = `http://127.0.0.1:${PORTS.http}/`;
const RATE = 200;
const LOG_DIR = join(RESULTS_DIR, 'compose');
const skip = isRoot ? false : 'the compose test needs root: it starts a Docker engine (dockerd) when none is running';
const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;

test('docker-compose.yml is valid and describes Consul, app + agent pairs (a third behind a profile) and the balancer', () => {
  assert.ok(has('docker-compose'), 'docker-compose is not installed: ./sempre test installs it (apt-get install docker-compose)');
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const services = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config', '--services'], { encoding: 'utf8' });
  assert.deepEqual(services.stdout.trim().split('\n').sort(), ['agent1', 'agent2', 'agent3', 'app1', 'app2', 'app3', 'balancer', 'consul']);
  for (const entry of ['demo-app/server.ts', 'agent/main.ts']) {
    assert.match(result.stdout, new RegExp(`node ${entry}`));
    assert.ok(existsSync(join(PROJECT_ROOT, entry)), `${entry} exists`);
  }
  // The balancer through its wrapper, so it gets the same Node memory flags as on the servers.
  assert.match(result.stdout, /bin\/sempre-balancer --service web/);
  assert.match(readFileSync(join(PROJECT_ROOT, 'bin/sempre-balancer'), 'utf8'), /--max-old-space-size=.*balancer\/main\.ts/);
  // The public defaults, so a user with Docker Hub runs it unchanged.
  assert.match(result.stdout, /NODE_IMAGE: node:24-bookworm-slim/);
  assert.match(result.stdout, /image: hashicorp\/consul:\d+\.\d+/);
  assert.match(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'), /^ARG NODE_IMAGE=node:24-bookworm-slim\nFROM \$\{NODE_IMAGE\}$/m);
  // Every published port binds this host's loopback only: page, admin and Consul.
  const published = [...result.stdout.matchAll(/^\s+- ([\d.]+:)?\d+:\d+\/tcp$/gm)].map((m) => m[0].trim());
  assert.deepEqual(published, ['- 127.0.0.1:8080:8080/tcp', '- 127.0.0.1:8081:8081/tcp', '- 127.0.0.1:8500:8500/tcp']);
});

let engine: DockerEngine | undefined;
let dockerdPid: number | undefined;
const env = () => ({
  ...engine!.env, SEMPRE_IMAGE: IMAGE, SEMPRE_HTTP_PORT: String(PORTS.http), SEMPRE_ADMIN_PORT: String(PORTS.admin), SEMPRE_CONSUL_PORT: String(PORTS.consul),
  SEMPRE_CONSUL_IMAGE: images.consul, SEMPRE_NODE_IMAGE: images.node,
});
let images = { node: '', consul: '' };
const compose = (args: readonly string[]) => run('docker-compose', ['-p', PROJECT, '-f', COMPOSE_FILE, ...args], { env: env() });
let composeUp = false;
let load: RunningLoad | undefined;

function statusCounts(records: readonly RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.status || r.errorClass] = (counts[r.status || r.errorClass] ?? 0) + 1;
  return counts;
}

async function status(): Promise<BalancerStatus> {
  const response = await fetch(`http://127.0.0.1:${PORTS.admin}/_sempre/status`, { signal: AbortSignal.timeout(1000) });
  return (await response.json()) as BalancerStatus;
}

/** The containers' own output, kept with the other tests' logs, then everything removed. */
async function down(): Promise<void> {
  mkdirSync(LOG_DIR, { recursive: true });
  writeFileSync(join(LOG_DIR, 'containers.log'), await compose(['--profile', 'app3', 'logs', '--no-color', '--timestamps']).catch((e: Error) => e.message));
  await compose(['--profile', 'app3', 'down', '-v', '--remove-orphans', '--timeout', '5']);
  composeUp = false;
}

/** What the engine still holds of this compose project. */
async function leftovers(): Promise<string[]> {
  const label = `label=com.docker.compose.project=${PROJECT}`;
  const list = async (kind: string) => (await engine!.docker([kind, 'ls', ...(kind === 'container' ? ['-a'] : []), '--filter', label, '--format', kind === 'container' ? '{{.Names}}' : '{{.Name}}'])).split('\n').filter(Boolean).map((n) => `${kind} ${n}`);
  return [...await list('container'), ...await list('network'), ...await list('volume')];
}

/** Processes still using the runtime folder of an engine started here (dockerd, containerd, shims). */
function engineProcesses(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('/run/sempre-docker');
    } catch {
      return false;
    }
  }).map(Number);
}

before(async () => {
  if (!isRoot) return;
  assert.ok(has('dockerd') || existsSync('/usr/sbin/dockerd'), 'no Docker engine installed: ./sempre test installs it (apt-get install docker.io)');
  const started = performance.now();
  engine = await useDockerEngine(LOG_DIR);
  dockerdPid = engine.startedHere ? engineProcesses()[0] : undefined;
  const standins = await standinImages(engine, { consul: installedConsulVersion(findConsul()) });
  images = standins;
  const built = performance.now();
  // The project's own Dockerfile with the stand-in base; BuildKit, and the
  // host's network for npm ci (this engine runs without iptables, so no NAT).
  await engine.docker(['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${images.node}`, '--label', 'sempre.test=compose', '-t', IMAGE, '.'], { env: { DOCKER_BUILDKIT: '1' } });
  // The image of an earlier run, now untagged.
  await engine.docker(['image', 'prune', '-f', '--filter', 'label=sempre.test=compose']);
  recordFigure('compose test: engine + stand-in images / project image build', `${((built - started) / 1000).toFixed(1)} s (stand-ins ${standins.buildSeconds ? `built in ${standins.buildSeconds.toFixed(1)} s` : 'reused'}) / ${((performance.now() - built) / 1000).toFixed(1)} s`);
}, { timeout: 600_000 });

after(async () => {
  await load?.stop();
  if (!engine) return;
  try {
    if (composeUp) await down();
  } finally {
    await engine.stop();
  }
});

test('docker-compose up: Consul, two app + agent pairs and the balancer serve the page on 127.0.0.1, both apps answering', { skip, timeout: 120_000 }, async () => {
  const started = Date.now();
  composeUp = true;
  await compose(['up', '-d', '--no-build']);
  const first = await waitFor('the first page through the published port', async () => {
    const response = await fetch(PAGE, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status === 200 ? Date.now() : undefined;
  }, 60_000, 100);
  recordFigure('docker-compose up -d → first page on the published port', first - started, 'ms');
  await waitFor('app1 and app2 both serving', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i += 1) {
      const response = await fetch(PAGE, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      seen.add(response.headers.get('x-served-by') ?? '');
    }
    return seen.has('app1') && seen.has('app2');
  }, 30_000, 200);
});

test(`docker kill of app1's container at ${RATE} GET/s: zero failed GETs, and started again app1 is back in rotation`, { skip, timeout: 120_000 }, async () => {
  load = startLoad({ url: PAGE, rate: RATE, durationMs: 90_000 });
  await waitFor('app1 serving under load', () => load!.records.some((r) => r.servedBy === 'app1'), 10_000);
  const app1 = (await compose(['ps', '-q', 'app1'])).trim();
  const killedAt = Date.now();
  await engine!.docker(['kill', app1]);
  await waitFor('app1 out of rotation', async () => !inRotation(await status(), 'app1'), 15_000, 100);
  recordFigure('docker kill app1 → out of the balancer\'s rotation', Date.now() - killedAt, 'ms');
  // Killed by hand, the container stays down (restart: unless-stopped): start it again.
  await waitFor('app1\'s container stopped', async () => (await engine!.docker(['inspect', '-f', '{{.State.Running}}', app1])).trim() === 'false', 15_000, 100);
  const restartedAt = Date.now();
  await compose(['start', 'app1']);
  const servingAt = await waitUntilServing(load, 'app1', restartedAt, 30_000);
  recordFigure('app1\'s container started again → serving', servingAt - restartedAt, 'ms');
  const records = load.records.filter((r) => load!.startedAt + r.intendedMs <= servingAt);
  const summary = summarize(records);
  assert.equal(summary.failed, 0, `${describeSummary(summary)}; statuses ${JSON.stringify(statusCounts(records))}`);
  recordFigure(`docker kill app1 at ${RATE} GET/s: failed GETs / max latency`, `${summary.failed} of ${summary.total} / ${Math.round(summary.latencyMs.max)} ms`);
});

test('a third app + agent pair started with compose (--profile app3) receives traffic, with no failed GET', { skip, timeout: 120_000 }, async () => {
  assert.ok(load, 'the load of the previous test is running');
  const startedAt = Date.now();
  await compose(['--profile', 'app3', 'up', '-d', '--no-build', 'app3', 'agent3']);
  const servingAt = await waitUntilServing(load, 'app3', startedAt, 60_000);
  recordFigure('docker-compose --profile app3 up -d → app3 serves its first request', servingAt - startedAt, 'ms');
  const records = await load.stop();
  const summary = summarize(records);
  assert.equal(summary.failed, 0, `${describeSummary(summary)}; statuses ${JSON.stringify(statusCounts(records))}`);
  for (const id of ['app1', 'app2', 'app3']) assert.ok((summary.byInstance[id] ?? 0) > 0, `${id} served: ${describeSummary(summary)}`);
});

test('docker-compose down -v leaves no container, network or volume, and an engine started here is stopped', { skip, timeout: 120_000 }, async () => {
  await down();
  assert.deepEqual(await leftovers(), []);
  const startedHere = engine!.startedHere;
  await engine!.stop();
  engine = undefined;
  if (startedHere) {
    assert.ok(dockerdPid, 'the dockerd started here was seen');
    assert.deepEqual(engineProcesses(), [], 'no dockerd, containerd or shim of the engine started here');
    assert.ok(!existsSync('/run/sempre-docker'), 'its runtime folder is gone');
  }
});
