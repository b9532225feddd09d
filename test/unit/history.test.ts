// The history the balancers keep in Consul (history-doc.ts, and the model's
// side of history-store.ts): serialised alike by every balancer, merged by
// id, bounded, and restored as history that alerts nobody again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CatalogInstance } from '../../balancer/discovery/catalog-watch.ts';
import { buildTable, diffTables, EMPTY_TABLE } from '../../balancer/discovery/routing-table.ts';
import { DashboardModel } from '../../balancer/observe/dashboard-model.ts';
import { HISTORY_LIMITS, parseHistory, serializeHistory, type HistoryDoc } from '../../balancer/observe/history-doc.ts';
import type { IncidentTransition } from '../../balancer/observe/incidents.ts';
import type { Instance } from '../../shared/instance.ts';

const instance = (id: string): Instance => ({ id, service: 'web', node: 'n1', address: '10.0.0.1', port: 3000, tags: [], meta: {} });
const entry = (id: string, health: CatalogInstance['health'], checkOutput = ''): CatalogInstance => ({ id, node: 'n1', address: '10.0.0.1', port: 3000, tags: [], meta: {}, health, checkOutput, checkStatus: health, maintenanceReason: null, checks: [] });

/** What one balancer's process wrote: app1 ejected at 1000 and still out (announced), app2 out and back. */
function previousProcess(self = 'infra 127.0.0.1:8081'): { model: DashboardModel; doc: HistoryDoc; value: string } {
  const model = new DashboardModel('web');
  model.ejected(instance('app1'), 'refused', 'connect ECONNREFUSED', 1000);
  model.ejected(instance('app2'), 'timeout', 'no response within 5000 ms', 1100);
  model.readmitted('app2', 2100);
  const doc = model.toHistory(self);
  return { model, doc, value: serializeHistory(doc) };
}

function roundTrip(value: string): HistoryDoc {
  const parsed = parseHistory(value);
  assert.ok('doc' in parsed, JSON.stringify(parsed));
  return parsed.doc;
}

test('a history round-trips through its JSON: events, incidents with causes, and the alert state', () => {
  const { value } = previousProcess();
  const doc = roundTrip(value);
  assert.equal(doc.version, 1);
  assert.deepEqual(doc.events.map((e) => `${e.kind} ${e.instance} ${e.at}`), ['readmitted app2 2100', 'ejected app2 1100', 'ejected app1 1000'], 'newest first');
  assert.ok(doc.events.every((e) => e.by === 'infra 127.0.0.1:8081' && /^[a-z0-9]+\.\d+$/.test(e.id)), 'each event names its balancer and has an id unique to its process');
  assert.deepEqual(doc.incidents.app1!.map((r) => [r.since, r.until, r.cause, r.causes.length]), [[1000, null, 'refused', 1]]);
  assert.deepEqual(doc.incidents.app2!.map((r) => [r.since, r.until, r.cause]), [[1100, 2100, 'timeout']]);
  assert.deepEqual(doc.alerts, { 'infra 127.0.0.1:8081': { open: [doc.incidents.app1![0]!.id] } }, 'the open, announced incident');
  assert.equal(serializeHistory(doc), value, 'serialising what was read gives the same bytes');
});

test('two balancers merge by id: each holds the union, and both write the same bytes', () => {
  const a = new DashboardModel('web');
  const b = new DashboardModel('web');
  a.ejected(instance('app1'), 'refused', 'connect ECONNREFUSED', 1000);
  b.ejected(instance('app1'), 'reset', 'socket hang up', 1200); // the same failure, seen by the other balancer
  b.readmitted('app1', 3000);
  a.readmitted('app1', 3100);
  b.consulReachability(false, 'ECONNREFUSED', 4000);
  const fromA = roundTrip(serializeHistory(a.toHistory('a')));
  const fromB = roundTrip(serializeHistory(b.toHistory('b')));
  const heard: string[] = [];
  a.events.onEvent((e) => heard.push(e.kind));
  assert.equal(a.mergeHistory(fromB, 'a', 5000), true);
  assert.equal(b.mergeHistory(fromA, 'b', 5000), true);
  assert.equal(a.mergeHistory(fromB, 'a', 5000), false, 'a second merge of the same entries changes nothing');
  assert.deepEqual(heard, [], 'merged events are not new events');
  assert.equal(serializeHistory(a.toHistory('a')), serializeHistory(b.toHistory('b')), 'the same union, the same value: no write back and forth');
  const merged = roundTrip(serializeHistory(a.toHistory('a')));
  assert.equal(merged.events.length, 5);
  assert.deepEqual(merged.events.map((e) => e.at), [4000, 3100, 3000, 1200, 1000]);
  const consulAt4000 = a.snapshot({ now: 6000, table: EMPTY_TABLE, states: undefined as never, consul: { reachable: true, unreachableSince: undefined, lastError: undefined, address: '' }, seriesSeconds: 1 }).events.find((e) => e.at === 4000);
  assert.equal(consulAt4000?.history, 'other-balancer');
  assert.equal(consulAt4000?.by, 'b');
  const summary = a.incidents.summary('app1', 6000);
  assert.equal(summary.count, 1, 'two balancers seeing one failure: one incident');
  assert.equal(summary.totalDownMs, 2100, 'from the first to see it leave to the last to see it back');
  assert.deepEqual(summary.lastCauses.map((c) => c.cause), ['refused', 'reset']);
  a.incidents.note('app1', 'hung', 'busy loop', 7000);
  assert.deepEqual(roundTrip(serializeHistory(a.toHistory('a'))).incidents.app1!.map((r) => [r.by, r.causes.map((c) => c.cause).join(' ')]), [['b', 'reset'], ['a', 'refused hung']],
    "a later note joins this balancer's own incident, never the other's");
});

test('bounds: the newest 200 events, 50 incidents per instance, details cut, and the value under its byte cap', () => {
  const model = new DashboardModel('web');
  for (let i = 0; i < 300; i += 1) model.consulReachability(i % 2 === 0, 'x'.repeat(1000), i);
  for (let i = 0; i < 60; i += 1) {
    model.ejected(instance('app1'), 'refused', `failure ${i}`, 10_000 + i * 10);
    model.readmitted('app1', 10_005 + i * 10);
  }
  const doc = roundTrip(serializeHistory(model.toHistory('me')));
  assert.equal(doc.events.length, HISTORY_LIMITS.events);
  assert.ok(doc.events.every((e) => (e.detail ?? '').length <= HISTORY_LIMITS.detailChars));
  assert.equal(doc.events.at(-1)!.at, 220, 'the oldest kept is the 200th newest (120 from the incidents, then Consul events 299 down to 220)');
  assert.equal(doc.incidents.app1!.length, HISTORY_LIMITS.incidentsPerInstance);
  assert.equal(doc.incidents.app1![0]!.detail, 'failure 59');

  // Far too much: 100 instances of 50 incidents with 5 long causes each.
  const huge: HistoryDoc = { version: 1, events: doc.events, incidents: {}, alerts: {} };
  for (let n = 0; n < 120; n += 1) {
    huge.incidents[`app${n}`] = Array.from({ length: 50 }, (_, i) => ({
      id: `p.${n}.${i}`, since: n * 1000 + i, until: n * 1000 + i + 1, cause: 'check', detail: 'y'.repeat(5000), by: 'me',
      causes: Array.from({ length: 5 }, (_, c) => ({ at: n * 1000 + i, cause: `c${c}`, detail: 'z'.repeat(5000) })),
    }));
  }
  const value = serializeHistory(huge);
  assert.ok(Buffer.byteLength(value) <= HISTORY_LIMITS.maxBytes, `${Buffer.byteLength(value)} bytes`);
  const bounded = roundTrip(value);
  assert.equal(Object.keys(bounded.incidents).length, HISTORY_LIMITS.instances, 'the instances out most recently');
  assert.ok(!('app0' in bounded.incidents) && 'app119' in bounded.incidents);
  assert.ok(bounded.incidents.app119!.length >= 1 && bounded.incidents.app119![0]!.id === 'p.119.49', 'newest incidents kept first');
});

test('what is not a version 1 history is refused whole, entry by entry, or kept for a newer balancer', () => {
  assert.match((parseHistory('{"version":1,') as { error: string }).error, /not JSON/);
  assert.match((parseHistory('[1,2]') as { error: string }).error, /not a version 1 history/);
  assert.match((parseHistory('{"version":1,"events":"many"}') as { error: string }).error, /events/);
  assert.deepEqual(parseHistory('{"version":2,"events":[]}'), { error: 'schema version 2 (this balancer writes 1)', newer: true });
  const doc = roundTrip(JSON.stringify({ version: 1, events: [{ id: 'a.1', at: 1, kind: 'joined', instance: 'app1', by: 'x' }, { id: 'a.2', at: 2, kind: 'exploded', by: 'x' }, 7], incidents: { app1: [{ nope: true }] } }));
  assert.deepEqual(doc.events.map((e) => e.id), ['a.1'], 'unknown kinds and malformed entries are dropped, the rest kept');
  assert.deepEqual(doc.incidents, { app1: [] });
  assert.deepEqual(doc.alerts, {});
});

test('after a restart, an incident announced before it goes on without a second "left", and its return is announced once', () => {
  const { doc } = previousProcess('me');
  const model = new DashboardModel('web');
  const sent: IncidentTransition[] = [];
  model.incidents.onTransition((t) => sent.push(t));
  const heard: string[] = [];
  model.events.onEvent((e) => heard.push(e.kind));
  model.incidents.hold();
  model.mergeHistory(roundTrip(serializeHistory(doc)), 'me', 50_000, { serving: () => false });
  model.incidents.release();
  assert.deepEqual(heard, [], 'restored events are history, not new events');
  // The new process hears from Consul: app1 still critical, app2 passing.
  model.catalogChanged([], [entry('app1', 'critical', 'ECONNREFUSED'), entry('app2', 'passing')], 51_000);
  assert.deepEqual(sent, [], 'app1 was announced before the restart: no second "left"');
  const summary = model.incidents.summary('app1', 52_000);
  assert.equal(summary.downSince, 1000, 'the incident that started before the restart goes on');
  assert.equal(summary.count, 1);
  assert.deepEqual(summary.lastCauses.map((c) => c.cause), ['refused', 'check']);
  const table = buildTable(EMPTY_TABLE, [instance('app1'), instance('app2')]);
  model.tableChanged(diffTables(EMPTY_TABLE, table), 60_000, () => true);
  assert.deepEqual((sent as IncidentTransition[]).map((t) => [t.kind, t.id, t.cause, t.downForMs]), [['returned', 'app1', 'refused', 59_000]]);
  assert.equal(model.incidents.summary('app2', 60_000).count, 1, "app2's closed incident is shown");
  assert.deepEqual(model.toHistory('me').alerts, { me: { open: [] } }, 'nothing open is announced any more');
});

test('a restart that heard of the failure first drops its held "left"; one serving already is closed with a "returned"', () => {
  const { doc } = previousProcess('me');
  const model = new DashboardModel('web');
  const sent: string[] = [];
  model.incidents.onTransition((t) => sent.push(`${t.kind} ${t.id}`));
  model.incidents.hold();
  model.catalogChanged([], [entry('app1', 'critical', 'ECONNREFUSED'), entry('app3', 'critical', 'timeout')], 50_000);
  model.mergeHistory(doc, 'me', 50_100, { serving: () => false });
  model.incidents.release();
  assert.deepEqual(sent, ['left app3'], "app1's 'left' was announced before the restart; app3's is new");
  assert.equal(model.incidents.summary('app1', 51_000).downSince, 1000);
  assert.equal(model.incidents.summary('app1', 51_000).count, 1, 'one incident, not two');

  const other = new DashboardModel('web');
  const told: string[] = [];
  other.incidents.onTransition((t) => told.push(`${t.kind} ${t.id} ${t.downForMs}`));
  other.mergeHistory(doc, 'me', 9000, { serving: (id) => id === 'app1' });
  assert.deepEqual(told, ['returned app1 8000'], 'serving again when the restart looked: closed and told');
  assert.equal(other.incidents.summary('app1', 9500).downSince, null);
  const foreign = new DashboardModel('web');
  const none: string[] = [];
  foreign.incidents.onTransition((t) => none.push(t.kind));
  foreign.mergeHistory(doc, 'someone else', 9000, { serving: () => false });
  assert.deepEqual(none, [], "another balancer's open incident is shown, not taken over");
  assert.equal(foreign.incidents.summary('app1', 9500).downSince, null);
  assert.equal(foreign.incidents.summary('app1', 9500).count, 1);
});
