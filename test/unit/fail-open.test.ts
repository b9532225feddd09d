// Issue 24: the fail-open rule's reading of Consul's evidence, its threshold,
// and what it serves — decided without waiting, never against maintenance or
// an instance that never passed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CatalogCheck, CatalogInstance } from '../../balancer/discovery/catalog-watch.ts';
import { createFailOpen, describeFailOpen, readEvidence, shouldFailOpen, type FailOpenSettings } from '../../balancer/discovery/fail-open.ts';
import type { Instance } from '../../shared/instance.ts';
import { waitFor } from '../../lab/processes.ts';

const TTL_EXPIRED: CatalogCheck = { id: 'service:app', status: 'critical', output: 'TTL expired (last output before timeout follows): GET /healthz: HTTP 200', ofService: true };

function entry(id: string, health: CatalogInstance['health'], checks: CatalogCheck[], maintenanceReason: string | null = null): CatalogInstance {
  return { id, node: `n-${id}`, address: '127.0.0.1', port: 3000, tags: [], meta: {}, health, checkOutput: '', checkStatus: 'critical', maintenanceReason, checks: checks.map((c) => ({ ...c, id: c.id === 'service:app' ? `service:${id}` : c.id })) };
}
const instance = (id: string): Instance => ({ id, service: 'web', node: `n-${id}`, address: '127.0.0.1', port: 3000, tags: [], meta: {} });

test('a TTL that expired or an unreachable node agent is the signal failing; anything else the agent reports is the app', () => {
  assert.deepEqual(readEvidence(entry('a', 'critical', [TTL_EXPIRED]), false).eligible, true);
  assert.match(readEvidence(entry('a', 'critical', [TTL_EXPIRED]), false).reason, /agent is silent/);
  assert.equal(readEvidence(entry('a', 'critical', [{ id: 'serfHealth', status: 'critical', output: 'Agent not live or unreachable', ofService: false }]), false).eligible, true);
  const app = readEvidence(entry('a', 'critical', [{ id: 'service:app', status: 'critical', output: 'GET /healthz: HTTP 503', ofService: true }]), false);
  assert.equal(app.eligible, false);
  assert.match(app.reason, /HTTP 503/);
  assert.equal(readEvidence(entry('a', 'warning', [{ id: 'service:app', status: 'warning', output: 'slow', ofService: true }]), false).eligible, false);
});

test('maintenance of the service, of the node, or the dashboard\'s flag is never overridden', () => {
  assert.equal(readEvidence(entry('a', 'maintenance', [TTL_EXPIRED], 'deploy'), false).eligible, false);
  assert.equal(readEvidence(entry('a', 'critical', [TTL_EXPIRED, { id: '_node_maintenance', status: 'critical', output: '', ofService: false }]), false).eligible, false);
  assert.equal(readEvidence(entry('a', 'critical', [TTL_EXPIRED, { id: '_service_maintenance:a', status: 'critical', output: '', ofService: false }]), false).eligible, false);
  assert.match(readEvidence(entry('a', 'critical', [TTL_EXPIRED]), true).reason, /flag/);
});

test('the threshold: fewer than this share of the known instances passing; 0 turns the rule off', () => {
  assert.equal(shouldFailOpen(0, 2, 50), true);
  assert.equal(shouldFailOpen(1, 2, 50), false, 'one of two passing: as today');
  assert.equal(shouldFailOpen(1, 3, 50), true);
  assert.equal(shouldFailOpen(0, 2, 0), false);
  assert.equal(shouldFailOpen(0, 0, 50), false, 'nothing known: nothing to serve');
  assert.equal(shouldFailOpen(1, 2, 100), true);
});

/** A rule over a catalog the test sets, with probes the test answers. */
function rule(settings: Partial<FailOpenSettings> = {}) {
  let catalog: CatalogInstance[] = [];
  const health = new Map<string, boolean>();
  const flags = new Map<string, boolean>();
  let changes = 0;
  const failOpen = createFailOpen({
    service: 'web',
    settings: { thresholdPercent: 50, serveUnhealthy: false, ...settings },
    catalog: () => catalog,
    probe: async (i) => health.get(i.id) ?? false,
    maintenanceFlag: async (id) => flags.get(id) ?? false,
    onChange: () => { changes += 1; },
    probeIntervalMs: 20,
  });
  return { failOpen, health, flags, setCatalog: (c: CatalogInstance[]) => { catalog = c; }, changes: () => changes };
}

test('both agents silent: the instances in the table stay while probed (no gap), then those that answer are served', async () => {
  const { failOpen, health, setCatalog } = rule();
  setCatalog([entry('app1', 'passing', []), entry('app2', 'passing', [])]);
  assert.deepEqual(failOpen.extra([instance('app1'), instance('app2')], new Set(['app1', 'app2'])), [], 'both passing: nothing to add');
  setCatalog([entry('app1', 'critical', [TTL_EXPIRED]), entry('app2', 'critical', [TTL_EXPIRED])]);
  health.set('app1', true).set('app2', false);
  const first = failOpen.extra([], new Set(['app1', 'app2'])).map((i) => i.id);
  assert.deepEqual(first, ['app1', 'app2'], 'unprobed, both stay');
  assert.equal(failOpen.state().active, true);
  await waitFor('app2\'s probe to fail', () => failOpen.extra([], new Set(['app1', 'app2'])).length === 1 || undefined, 2000);
  assert.deepEqual(failOpen.state().served.map((s) => s.id), ['app1']);
  assert.match(failOpen.state().refused[0]!.reason, /health probe fails/);
  assert.match(describeFailOpen('web', 0, failOpen.state()), /^Consul lists no passing instance of web; serving the 1 that answer their health probe \(app1\): its agent is silent/);
  assert.deepEqual(failOpen.extra([instance('app1'), instance('app2')], new Set(['app1', 'app2'])), [], 'passing again: back to Consul\'s list at once');
  assert.equal(failOpen.state().active, false);
  failOpen.stop();
});

test('an instance that never passed, or that Consul forgot, is never served by the rule', async () => {
  const { failOpen, health, setCatalog } = rule();
  setCatalog([entry('app1', 'critical', [TTL_EXPIRED]), entry('new', 'critical', [TTL_EXPIRED])]);
  health.set('app1', true).set('new', true);
  failOpen.extra([instance('app1')], new Set(['app1']));
  setCatalog([entry('new', 'critical', [TTL_EXPIRED])]);
  assert.deepEqual(failOpen.extra([], new Set(['app1'])), [], 'app1 deregistered, new never passed');
  assert.equal(failOpen.state().active, false, 'nothing known that ever passed');
  failOpen.stop();
});

test('the dashboard\'s maintenance flag, read while the rule is on, takes an instance out', async () => {
  const { failOpen, health, flags, setCatalog } = rule();
  setCatalog([entry('app1', 'passing', []), entry('app2', 'passing', [])]);
  failOpen.extra([instance('app1'), instance('app2')], new Set(['app1', 'app2']));
  setCatalog([entry('app1', 'critical', [TTL_EXPIRED]), entry('app2', 'critical', [TTL_EXPIRED])]);
  health.set('app1', true).set('app2', true);
  flags.set('app2', true);
  await waitFor('app2 refused for its flag', () => {
    const served = failOpen.extra([], new Set(['app1', 'app2'])).map((i) => i.id);
    return served.length === 1 && served[0] === 'app1' || undefined;
  }, 2000);
  assert.match(failOpen.state().refused.find((r) => r.id === 'app2')!.reason, /maintenance: its flag/);
  assert.equal(failOpen.state().active, true, 'the flag does not switch the rule off');
  failOpen.stop();
});

test('every health endpoint failing: 503 by default; --fail-open-unhealthy serves them all, never one in maintenance', async () => {
  for (const serveUnhealthy of [false, true]) {
    const { failOpen, setCatalog } = rule({ serveUnhealthy });
    setCatalog([entry('app1', 'passing', []), entry('app2', 'passing', []), entry('app3', 'passing', [])]);
    failOpen.extra([instance('app1'), instance('app2'), instance('app3')], new Set(['app1', 'app2', 'app3']));
    setCatalog([entry('app1', 'critical', [TTL_EXPIRED]), entry('app2', 'critical', [{ id: 'service:app', status: 'critical', output: 'GET /healthz: HTTP 503', ofService: true }]), entry('app3', 'maintenance', [], 'deploy')]);
    const served = await waitFor('app1\'s probe to fail', () => {
      failOpen.extra([], new Set(['app1', 'app2', 'app3']));
      return failOpen.state().refused.some((r) => /health probe fails/.test(r.reason)) || failOpen.state().unhealthy ? failOpen.extra([], new Set(['app1', 'app2', 'app3'])).map((i) => i.id) : undefined;
    }, 2000);
    assert.deepEqual(served, serveUnhealthy ? ['app1', 'app2'] : [], `serveUnhealthy ${serveUnhealthy}`);
    failOpen.stop();
  }
});
