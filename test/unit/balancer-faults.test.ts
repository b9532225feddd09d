// balancer-reload and balancer-restart need the single balancer host's
// keeper, or a bench contender's own controls.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrillError, validateDrill, type DrillOptions } from '../../drill/drill.ts';
import type { Front } from '../../drill/faults/fault.ts';
import type { LabState } from '../../lab/netns-lab.ts';

const options = (fault: string): DrillOptions => ({ fault, target: 'app1', atMs: 2000, forMs: 3000, rate: 500, durationMs: 8000, method: 'GET', path: '/' });
const labRecord = (name: string, extra: object = {}) => ({ name, host: name === 'balancer' ? 'infra' : name, pid: 1, command: [], log: '', ...extra });
const lab = (extra: Partial<LabState>, balancer: object): LabState => ({
  kind: 'netns', service: 'web', hosts: {}, url: 'http://10.213.47.1:8080/', adminUrl: '', consulUrl: '', consulToken: '', servers: [], balancerHosts: ['infra'],
  secretsDir: '', adminToken: '', startedAt: '', processes: { app1: labRecord('app1'), balancer: labRecord('balancer', balancer) }, ...extra,
});
const front: Front = { name: 'haproxy-stock', url: 'http://10.213.47.1:8090/', mainPid: () => 1, reload: async () => ({ action: '', ok: true, detail: '' }), crash: async () => '' };

test('balancer-reload and balancer-restart run on the single balancer under its keeper, and are refused on the pair or a lab without a keeper, naming what to do', () => {
  const single = lab({}, { pidFile: '/run/main.pid', runDir: '/run' });
  for (const fault of ['balancer-reload', 'balancer-restart']) {
    assert.doesNotThrow(() => validateDrill(options(fault), single));
    assert.throws(() => validateDrill(options(fault), lab({ vip: '10.213.47.10', balancerHosts: ['infra', 'app1'] }, {})), (e: unknown) => e instanceof DrillError && /needs the single balancer host's keeper; the balancer pair .* use balancer-crash there/.test(e.message));
    assert.throws(() => validateDrill(options(fault), lab({}, {})), /does not run under the socket keeper .* lab down/);
    // A bench contender brings its own reload and restart.
    assert.doesNotThrow(() => validateDrill(options(fault), lab({}, {}), front));
  }
});
