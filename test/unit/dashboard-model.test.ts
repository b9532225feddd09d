import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalogEntries, type CatalogInstance } from '../../balancer/discovery/catalog-watch.ts';
import { DashboardModel } from '../../balancer/observe/dashboard-model.ts';
import { IncidentTracker } from '../../balancer/observe/incidents.ts';
import { InstanceStates } from '../../balancer/health/instance-state.ts';
import { buildTable, diffTables, EMPTY_TABLE } from '../../balancer/discovery/routing-table.ts';
import { TrafficSeries } from '../../balancer/observe/traffic-series.ts';
import type { Instance } from '../../shared/instance.ts';

const instance = (id: string): Instance => ({ id, service: 'web', node: 'n1', address: '10.0.0.1', port: 3000, tags: [], meta: {} });
const catalogEntry = (id: string, health: CatalogInstance['health'], extra: Partial<CatalogInstance> = {}): CatalogInstance => ({ id, node: 'n1', address: '10.0.0.1', port: 3000, tags: [], meta: {}, health, checkOutput: '', checkStatus: health === 'maintenance' ? 'passing' : health, maintenanceReason: null, checks: [], ...extra });

test('Consul entries give each instance its health, check output and maintenance reason', () => {
  const entry = (id: string, checks: unknown[]) => ({ Node: { Node: 'n1', Address: '10.0.0.1' }, Service: { ID: id, Address: '', Port: 3000, Meta: { version: '2' } }, Checks: checks });
  const parsed = parseCatalogEntries([
    entry('a', [{ CheckID: 'serfHealth', Status: 'passing', Output: 'Agent alive' }, { CheckID: 'service:a', ServiceID: 'a', Status: 'passing', Output: 'HTTP 200' }]),
    entry('b', [{ CheckID: 'service:b', ServiceID: 'b', Status: 'critical', Output: 'GET /healthz: ECONNREFUSED' }]),
    entry('c', [{ CheckID: 'service:c', ServiceID: 'c', Status: 'passing', Output: 'ok' }, { CheckID: '_service_maintenance:c', ServiceID: 'c', Status: 'critical', Notes: 'dashboard: disk check' }]),
    { Node: 'broken' },
  ]);
  assert.ok(Array.isArray(parsed));
  assert.deepEqual(parsed.map((i) => [i.id, i.health, i.checkOutput, i.maintenanceReason]), [
    ['a', 'passing', 'HTTP 200', null],
    ['b', 'critical', 'GET /healthz: ECONNREFUSED', null],
    ['c', 'maintenance', 'ok', 'dashboard: disk check'],
  ]);
  assert.deepEqual(parseCatalogEntries('nope'), { error: 'expected a JSON array, got string' });
});

test('an incident lasts from leaving rotation unplanned until serving again, with its causes', () => {
  const incidents = new IncidentTracker();
  incidents.wentDown('app1', 'refused', 'connect ECONNREFUSED', false, 1000);
  incidents.wentDown('app1', 'check', 'GET /healthz: ECONNREFUSED', false, 1500); // same incident, another cause
  assert.deepEqual(incidents.summary('app1', 3000), { count: 1, totalDownMs: 2000, downSince: 1000, lastCauses: [{ at: 1000, cause: 'refused', detail: 'connect ECONNREFUSED' }, { at: 1500, cause: 'check', detail: 'GET /healthz: ECONNREFUSED' }] });
  incidents.cameBack('app1', 4000);
  incidents.wentDown('app1', 'timeout', 'no response within 5000 ms', false, 10_000);
  incidents.cameBack('app1', 10_500);
  const summary = incidents.summary('app1', 20_000);
  assert.equal(summary.count, 2);
  assert.equal(summary.totalDownMs, 3500);
  assert.equal(summary.downSince, null);
});

test('maintenance and draining are not incidents, unless the instance fails while out', () => {
  const incidents = new IncidentTracker();
  incidents.wentDown('app1', 'maintenance', 'dashboard: upgrade', true, 0);
  incidents.cameBack('app1', 5000);
  assert.deepEqual(incidents.summary('app1', 6000), { count: 0, totalDownMs: 0, downSince: null, lastCauses: [] });
  incidents.wentDown('app1', 'maintenance', 'upgrade', true, 7000);
  incidents.wentDown('app1', 'check', 'crashed during the upgrade', false, 8000);
  assert.equal(incidents.summary('app1', 9000).count, 1);
  assert.equal(incidents.summary('app1', 9000).totalDownMs, 1000);
});

test('the model turns catalog changes into events and shows each instance\'s state', () => {
  const model = new DashboardModel('web');
  const states = new InstanceStates({ ejectAfter: 1, ejectForMs: 1000, slowStartMs: 0 });
  const table = buildTable(EMPTY_TABLE, [instance('app1'), instance('app2')]);
  states.applyDiff(diffTables(EMPTY_TABLE, table), 0, true);
  model.catalogChanged([], [catalogEntry('app1', 'passing'), catalogEntry('app2', 'passing')], 0);
  model.tableChanged(diffTables(EMPTY_TABLE, table), 0, () => true);
  model.catalogChanged([catalogEntry('app1', 'passing'), catalogEntry('app2', 'passing')], [catalogEntry('app1', 'critical', { checkOutput: 'ECONNREFUSED' }), catalogEntry('app2', 'maintenance', { maintenanceReason: 'sempre-agent stopping: draining' })], 100);
  const consul = { reachable: true, unreachableSince: undefined, lastError: undefined, address: 'http://c:8500' };
  const snapshot = model.snapshot({ now: 200, table, states, consul, seriesSeconds: 10 });
  assert.deepEqual(snapshot.instances.map((i) => [i.id, i.state]), [['app1', 'ejected'], ['app2', 'draining']]);
  assert.deepEqual(snapshot.events.map((e) => `${e.kind} ${e.instance}`), ['registered app1', 'registered app2', 'joined app1', 'joined app2', 'check-critical app1', 'maintenance-on app2']);
  assert.equal(snapshot.instances[0]?.incidents.count, 1);
  assert.equal(snapshot.instances[1]?.incidents.count, 0, 'draining is planned');
  assert.equal(snapshot.serving, 0);
});

test('the traffic series counts each second, with errors, percentiles and shares', () => {
  const series = new TrafficSeries(60);
  for (let i = 0; i < 100; i += 1) series.record(200, i + 1, i % 4 === 0 ? 'a' : 'b', 10_000 + i);
  series.record(502, 3, undefined, 10_500);
  series.record(200, 2, 'a', 12_100);
  const points = series.series(13_000, 4);
  assert.deepEqual(points.map((p) => [p.t, p.requests, p.errors]), [[9, 0, 0], [10, 101, 1], [11, 0, 0], [12, 1, 0]]);
  const busy = points[1]!;
  assert.deepEqual(busy.byInstance, { a: 25, b: 75 });
  assert.ok(Math.abs(busy.p50 - 50) <= 1, `p50 ${busy.p50}`);
  assert.ok(Math.abs(busy.p99 - 99) <= 1, `p99 ${busy.p99}`);
});
