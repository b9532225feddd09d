// GET /_sempre/status with --workers: how many processes, and every reporting
// worker's figures added up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTable, diffTables, EMPTY_TABLE } from '../../balancer/discovery/routing-table.ts';
import { InstanceStates } from '../../balancer/health/instance-state.ts';
import { balancerStatus, type StatusInput } from '../../balancer/observe/status.ts';
import { ProxyCounters } from '../../balancer/proxy/proxy-counters.ts';
import type { ServiceSnapshot } from '../../balancer/worker-link.ts';
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
