// Two balancers behind one virtual address (keepalived, unicast VRRP, no
// preemption) in the multi-host lab (root). At 500 GET/s to the virtual
// address, killing the active balancer and crashing its whole host each
// leave the page served by the other, for a client that retries once on a
// connection failure; the address then stays where it went.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { runDrill, waitForFullRotation, type DrillResult } from '../../drill/drill.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { KEEPALIVED_DIR } from '../../lab/keepalived.ts';
import { vipHolder, type LabState } from '../../lab/netns-lab.ts';
import { waitFor } from '../../lab/processes.ts';
import { labForThisFile, skipUnlessRoot } from '../support/lab.ts';
import { recordFigure } from '../support/stack.ts';

const skip = skipUnlessRoot;
const quiet = () => undefined;
let lab: LabState;
labForThisFile({ instances: 2, balancers: 2 }, (l) => { lab = l; });

/** One GET on a new connection, as a new visitor (no pooled socket from before a failover). */
function visit(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, timeout: 2000 }, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject);
  });
}

const LOGS = join(PROJECT_ROOT, '.run', 'lab', 'logs');
const ADVERT_INTERVAL_MS = Number(/advert_int ([\d.]+)/.exec(readFileSync(join(KEEPALIVED_DIR, 'keepalived.conf.tmpl'), 'utf8'))![1]) * 1000;

/** Each balancer host's notify-hook log (eip-HOST.log), by host. */
function eipLogs(): Map<string, string> {
  return new Map(readdirSync(LOGS).filter((f) => /^eip-.+\.log$/.test(f)).map((f) => [f.slice(4, -4), readFileSync(join(LOGS, f), 'utf8')]));
}

/** For a failed assertion: the requests that ended last, and when keepalived moved the address (ms from the fault). */
function explain(result: DrillResult): string {
  const { fault, startedAt } = result;
  const last = result.records.filter((r) => r.intendedMs >= fault.startMs && r.intendedMs <= fault.endMs)
    .sort((a, b) => (b.intendedMs + b.latencyMs) - (a.intendedMs + a.latencyMs)).slice(0, 5)
    .map((r) => `sent +${Math.round(r.intendedMs - fault.startMs)}, took ${Math.round(r.latencyMs)}, ${r.errorClass}${r.servedBy ? ` from ${r.servedBy}` : ''}${r.firstTry ? ` (first try: ${r.firstTry.error} at +${r.firstTry.endedMs - fault.startMs})` : ''}`);
  const vrrp = [...eipLogs()].flatMap(([host, log]) => log.split('\n')
    .filter((l) => l.includes('VRRP state'))
    .map((l) => ({ t: Date.parse(l.slice(0, l.indexOf(' '))) - startedAt - fault.startMs, text: `${host} ${l.slice(l.indexOf('VRRP state'))}` })))
    .filter((e) => e.t > -2000 && e.t < fault.endMs - fault.startMs).sort((a, b) => a.t - b.t).map((e) => `+${e.t} ${e.text}`);
  return `ended last (ms): ${last.join('; ')}. keepalived (ms): ${vrrp.join('; ')}`;
}

test('one balancer holds the virtual address and serves the page there; the notify hook saw it become MASTER', { skip }, async () => {
  const holder = await waitFor('a holder', () => vipHolder(lab), 10_000);
  assert.equal(await visit(lab.vipUrl!), 200);
  // The hook logs the state, then what it did about the Elastic IP: a read between the two lines saw only the first (a full run).
  const log = await waitFor('the notify hook\'s Elastic IP line', () => {
    const text = eipLogs().get(holder) ?? '';
    return /no SEMPRE_EIP_ALLOCATION_ID|Elastic IP .* moved|FAILED to move/.test(text) ? text : undefined;
  }, 5000);
  assert.match(log, /VRRP state MASTER/);
  assert.match(log, /no SEMPRE_EIP_ALLOCATION_ID: not moving an Elastic IP/, 'the lab has no Elastic IP to move');
});

for (const fault of ['balancer-crash', 'balancer-host-crash']) {
  test(`${fault} at 500 GET/s: the other balancer takes the address; zero failed for a client that retries once; interruption ≤ 3 s; no flap back`, { skip, timeout: 120_000 }, async () => {
    await waitForFullRotation(lab, 30_000);
    const before = vipHolder(lab);
    assert.ok(before);
    const logSeen = new Map([...eipLogs()].map(([host, log]) => [host, log.length]));
    const result = await runDrill({ fault, target: 'app1', atMs: 2000, forMs: 4000, rate: 500, durationMs: 9000, method: 'GET', path: '/', clientRetry: true }, lab, { say: quiet, interrupted: new AbortController().signal });
    const m = result.metrics;
    assert.equal(result.fault.target, before, 'the fault hit the holder');
    assert.ok(m.total >= 4400, `the load ran at its rate (${m.total})`);
    assert.equal(m.failed, 0, JSON.stringify(result.records.filter((r) => r.errorClass !== 'ok').slice(0, 5)));
    assert.ok(m.interruptionMs !== null && m.interruptionMs <= 3000, `interruption ${m.interruptionMs} ms. ${explain(result)}`);
    const after = vipHolder(lab);
    assert.ok(after && after !== before, `the address moved (${before} → ${after})`);
    // Taking the address, the new holder dropped its own leftover connections of it (notify_master).
    assert.match((eipLogs().get(after) ?? '').slice(logSeen.get(after) ?? 0), /dropped \d+ stale connections of 10\.213\.47\.10 \(0 left\)/);
    // The crashed side back as BACKUP hears the holder's adverts: a preempting peer would take the
    // address at the first one it hears with a lower priority (advert_int 0.2 s). Watched for ten.
    await waitFor(`${before} back as BACKUP`, () => (eipLogs().get(before) ?? '').slice(logSeen.get(before) ?? 0).includes('VRRP state BACKUP') || undefined, 30_000, 100);
    const watchUntil = Date.now() + 10 * ADVERT_INTERVAL_MS;
    while (Date.now() < watchUntil) {
      assert.equal(vipHolder(lab), after, 'no preemption: the address stays');
      await new Promise((resolve) => setTimeout(resolve, ADVERT_INTERVAL_MS / 2));
    }
    assert.doesNotMatch((eipLogs().get(before) ?? '').slice(logSeen.get(before) ?? 0), /VRRP state MASTER/, `${before} never became MASTER again`);
    assert.equal(await visit(lab.vipUrl!), 200);
    recordFigure(`${fault} (${before} → ${after}) at 500 GET/s, client retrying once: failed / interruption / max latency`, `${m.failed} / ${m.interruptionMs} ms / ${m.latency.max} ms`);
  });
}
