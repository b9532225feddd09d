// balancer-reload and balancer-restart need the single balancer host's
// keeper (or a bench contender's own controls), and the bench's peers are
// restarted with their workers, found through /proc.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { DrillError, validateDrill, type DrillOptions } from '../../drill/drill.ts';
import type { Front } from '../../drill/faults/fault.ts';
import { childPids, descendantPids } from '../../bench/peer-front.ts';
import type { LabState } from '../../lab/netns-lab.ts';
import { waitFor } from '../../lab/processes.ts';

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

test("a peer's workers are found below its master through /proc, children and grandchildren", async () => {
  const parent = spawn('sh', ['-c', 'sleep 30 & sh -c "sleep 30 & wait" & wait'], { stdio: 'ignore' });
  try {
    const below = await waitFor('the three processes below the shell', () => (descendantPids(parent.pid!).length >= 3 ? descendantPids(parent.pid!) : undefined), 5000);
    const children = childPids(parent.pid!);
    assert.equal(children.length, 2, `two children: ${children.join(', ')}`);
    for (const child of children) assert.ok(below.includes(child));
    assert.deepEqual(childPids(below.find((p) => !children.includes(p))!), [], 'a leaf has no children');
  } finally {
    for (const pid of descendantPids(parent.pid!)) process.kill(pid, 'SIGKILL');
    parent.kill('SIGKILL');
  }
});
