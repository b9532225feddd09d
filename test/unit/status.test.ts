// GET /_sempre/status with --workers: how many processes, and every reporting
// worker's figures added up, with those of workers that have exited.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTable, diffTables, EMPTY_TABLE } from '../../balancer/discovery/routing-table.ts';
import { InstanceStates } from '../../balancer/health/instance-state.ts';
import { balancerStatus, logOutputStatus, type StatusInput } from '../../balancer/observe/status.ts';
import { ProxyCounters } from '../../balancer/proxy/proxy-counters.ts';
import { retireInto, retireWorker, type ServiceSnapshot } from '../../balancer/worker-link.ts';
import { combineLogOutput } from '../../shared/log-output.ts';
import type { Instance } from '../../shared/instance.ts';

const instance = (id: string): Instance => ({ id, service: 'web', node: 'n1', address: '10.0.0.1', port: 3000, tags: [], meta: {} });

function statusWith(workers: number, others: ServiceSnapshot[]) {
  const table = buildTable(EMPTY_TABLE, [instance('app1'), instance('app2')]);
  const states = new InstanceStates({ ejectAfter: 1, ejectForMs: 1000, slowStartMs: 0 });
  states.applyDiff(diffTables(EMPTY_TABLE, table), 0, true);
  states.get('app1')!.requests = 10;
  const input: StatusInput = {
    service: 'web', startedAt: 0, now: 5000, strategy: 'least-outstanding', consulAddress: 'http://127.0.0.1:8500',
    discovery: { reachable: true, everAnswered: true, lastContactAt: 4000, unreachableSince: undefined, lastError: undefined },
    table, states, sticky: false, workers,
    own: { inFlight: 1, tunnels: 0, tunnelsOn: () => 0 },
    others,
  };
  return balancerStatus(input);
}

const report = (requests: Record<string, number>, inFlight: number): ServiceSnapshot => ({
  at: 4500, inFlight, tunnels: 0, seconds: [],
  counters: new ProxyCounters().snapshot(),
  instances: Object.fromEntries(Object.entries(requests).map(([id, n]) => [id, { requests: n, failures: 0, outstanding: 0, tunnels: 0 }])),
});

test('status: workers is how many processes the balancer runs, not how many have reported', () => {
  // Four workers; one has not reported yet (just started), two have.
  const status = statusWith(4, [report({ app1: 5, app2: 7 }, 2), report({ app2: 1 }, 3)]);
  assert.equal(status.workers, 4);
  assert.equal(status.workersReporting, 3);
  assert.equal(status.inFlight, 1 + 2 + 3);
  assert.deepEqual(status.instances.map((i) => [i.id, i.requests]), [['app1', 15], ['app2', 8]]);
});

test('status: a single process is one worker reporting its own figures', () => {
  const status = statusWith(1, []);
  assert.equal(status.workers, 1);
  assert.equal(status.workersReporting, 1);
  assert.deepEqual(status.instances.map((i) => [i.id, i.requests]), [['app1', 10], ['app2', 0]]);
});

test('a worker that exited: its counters stay in the sums (they never go down), its gauges and its place among the reporting go', () => {
  const counted = (requests: number) => {
    const counters = new ProxyCounters();
    for (let i = 0; i < requests; i += 1) counters.request(200, 3);
    return counters.snapshot();
  };
  const first: ServiceSnapshot = { ...report({ app1: 5, app2: 7 }, 2), tunnels: 4, counters: counted(12) };
  first.instances.app1!.outstanding = 2;
  first.instances.app1!.tunnels = 4;
  // Worker 1 exits; restarted, it exits again after 3 more requests.
  let retired = retireInto({}, { worker: 1, services: { web: first } }, 5000);
  retired = retireInto(retired, { worker: 1, services: { web: { ...report({ app1: 3 }, 1), counters: counted(3) } } }, 6000);
  const web = retired.web!;
  assert.equal(web.retired, true);
  assert.deepEqual([web.inFlight, web.tunnels, web.seconds.length], [0, 0, 0], 'no gauges, no seconds');
  assert.deepEqual(web.instances, { app1: { requests: 8, failures: 0, outstanding: 0, tunnels: 0 }, app2: { requests: 7, failures: 0, outstanding: 0, tunnels: 0 } });
  assert.deepEqual(web.counters.byStatus, [[200, 15]], 'both lives of the worker counted');

  // Status with the restarted worker (just started: nothing yet) and the retired figures.
  const status = statusWith(2, [report({}, 0), web]);
  assert.equal(status.workersReporting, 2, 'the retired figures are not a worker');
  assert.equal(status.inFlight, 1);
  assert.deepEqual(status.instances.map((i) => [i.id, i.requests]), [['app1', 10 + 8], ['app2', 7]]);
});

test('status: log lines dropped by every worker, those of exited workers kept, blocked while one of them is', () => {
  // Worker 1 dropped 40 lines and exited while blocked; restarted, it is blocked again.
  const retired = retireWorker(undefined, { worker: 1, services: {}, logOutput: { droppedLines: 40, blocked: { since: 1000, droppedLines: 40 } } }, 5000);
  assert.deepEqual(retired.logOutput, { droppedLines: 40, blocked: null }, 'an exited worker is no longer blocked, its count stays');
  const own = { droppedLines: 10, blocked: null };
  const restarted = { droppedLines: 5, blocked: { since: 6000, droppedLines: 5 } };
  const combined = combineLogOutput([own, restarted, retired.logOutput]);
  assert.deepEqual(logOutputStatus(combined, 8400), { droppedLines: 55, blocked: { since: new Date(6000).toISOString(), seconds: 2, droppedLines: 5 } });
  assert.deepEqual(logOutputStatus(combineLogOutput([own, retired.logOutput]), 8400), { droppedLines: 50, blocked: null });
});
