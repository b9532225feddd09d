// A quick bench (two contenders, two faults, short drills) in the lab: the
// scoreboard has its shape, sempre's row has zero failed GETs, and every
// contender the bench started is stopped afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { runBench } from '../../bench/bench.ts';
import { faultTable, overheadTable, perCoreTable } from '../../bench/markdown.ts';
import { isAlive, type LabState } from '../../lab/netns-lab.ts';
import { labForThisFile, skipUnlessRoot } from '../support/lab.ts';
import { recordFigure } from '../support/stack.ts';

const skip = skipUnlessRoot;
let lab: LabState;
labForThisFile({ instances: 2 }, (l) => { lab = l; });

test('a quick bench: scoreboard shape, sempre with zero failed GETs, contenders stopped afterwards', { skip, timeout: 300_000 }, async () => {
  const result = await runBench({ contenders: ['sempre', 'nginx-tuned'], faults: ['crash', 'hang'], rate: 500, durationMs: 6000, atMs: 2000, forMs: 2000, overheadSeconds: 2, perCoreSeconds: 2, memorySeconds: 3 }, lab, () => undefined, new AbortController().signal);
  assert.deepEqual(result.overhead.map((o) => o.contender), ['direct', 'sempre', 'nginx-tuned']);
  for (const row of result.overhead) {
    assert.ok(row.wrkRps > 0 && Number.isFinite(row.wrkP50Ms), `${row.contender} was measured: ${JSON.stringify(row)}`);
    // req/s counts every answer: a 4xx or 5xx at full rate would make it a figure of errors.
    assert.equal(row.wrkWrongAnswers, 0, `${row.contender}: wrk's answers were all 2xx/3xx: ${JSON.stringify(row)}`);
    assert.deepEqual(row.rateFailedByKind, {}, `${row.contender}: every request at the fixed rate got a 2xx: ${JSON.stringify(row)}`);
  }
  assert.deepEqual(result.faults.map((f) => `${f.contender}:${f.fault}`), ['sempre:crash', 'sempre:hang', 'nginx-tuned:crash', 'nginx-tuned:hang']);
  for (const row of result.faults) assert.ok(row.total >= 2900, `${row.contender} × ${row.fault} ran at its rate (${row.total})`);
  for (const row of result.faults.filter((f) => f.contender === 'sempre')) assert.equal(row.failed, 0, `sempre × ${row.fault}: ${JSON.stringify(row)}`);
  assert.match(overheadTable(result), /^\| contender \| req\/s \(wrk -c32\) \| vs direct \|/);
  assert.match(faultTable(result), /\| sempre \| crash \| \d+ \| 0 \|/);
  const started = Object.values(lab.processes).filter((p) => p.name.startsWith('bench-'));
  assert.equal(started.length, 4, 'nginx-tuned and the three per-core contenders were started in the lab');
  for (const proc of started) assert.equal(isAlive(proc.pid), false, `${proc.name} was stopped`);
  const port = await fetch('http://10.213.47.1:8093/', { signal: AbortSignal.timeout(1000) }).then(() => 'open', () => 'closed');
  assert.equal(port, 'closed', "nginx-tuned's workers are gone too");
  // The per-core contenders were measured, stopped, and every lab process may use every core again.
  const perCoreOrder = ['haproxy-1core', 'sempre-1core', 'node-floor-1core'];
  assert.deepEqual(result.perCore?.rows.map((r) => r.contender), [...perCoreOrder, ...perCoreOrder, ...perCoreOrder]);
  for (const row of result.perCore!.rows) {
    assert.ok(row.rps > 0 && row.cpuUsPerRequest > 0, `${row.contender} served, on its own CPU time: ${JSON.stringify(row)}`);
    assert.equal(row.wrongAnswers, 0, `${row.contender}: req/s is of 2xx/3xx answers: ${JSON.stringify(row)}`);
  }
  assert.equal(result.perCore!.roundRatios.length, 3);
  assert.equal(result.perCore!.ratio, [...result.perCore!.roundRatios].sort((a, b) => a - b)[1], 'the summary is the middle round');
  // The floor's ratios are the rows' own figures, round by round.
  const rps = (name: string, round: number) => result.perCore!.rows.find((r) => r.contender === name && r.round === round)!.rps;
  for (const [i, ratio] of result.perCore!.floor.sempreRoundRatios.entries()) {
    assert.ok(Math.abs(ratio - rps('sempre-1core', i + 1) / rps('node-floor-1core', i + 1)) < 0.001, `round ${i + 1}: sempre over the floor ${ratio}`);
  }
  assert.equal(result.perCore!.floor.roundRatios.length, 3);
  // The paced rounds held both proxies well below their maximum (about half the slower one's), so their p99 compares pauses, not queues.
  const paced = result.perCore!.paced;
  assert.deepEqual(paced.rows.map((r) => r.contender), [...perCoreOrder, ...perCoreOrder, ...perCoreOrder]);
  for (const row of paced.rows) {
    const fullRate = Math.max(...result.perCore!.rows.filter((r) => r.contender === row.contender).map((r) => r.rps));
    assert.ok(row.rps > 0 && row.rps < 0.85 * fullRate, `${row.contender} paced at ${paced.gapMs} ms: ${Math.round(row.rps)} req/s, below its full rate ${Math.round(fullRate)}`);
    assert.ok(Number.isFinite(row.p99Ms) && row.p99Ms > 0, `${row.contender}'s paced p99 was read from wrk: ${JSON.stringify(row)}`);
  }
  for (const round of [1, 2, 3]) {
    const [haproxy, sempre, floor] = perCoreOrder.map((name) => paced.rows.find((r) => r.contender === name && r.round === round)!.rps);
    assert.ok(Math.abs(haproxy! - sempre!) < 0.25 * haproxy! && Math.abs(haproxy! - floor!) < 0.25 * haproxy!, `round ${round}: all carried about the same load (HAProxy ${Math.round(haproxy!)}, sempre ${Math.round(sempre!)}, floor ${Math.round(floor!)} req/s)`);
  }
  assert.equal(paced.roundP99Ratios.length, 3);
  // The memory soak ran sempre at full rate and read its RSS from /proc.
  assert.ok(result.perCore!.memory && result.perCore!.memory.rps > 0 && result.perCore!.memory.rssMb > 30, `memory soak: ${JSON.stringify(result.perCore!.memory)}`);
  assert.match(perCoreTable(result), /CPU µs per request[\s\S]*The floor under sempre[\s\S]*At one shared, moderate load[\s\S]*Memory: sempre alone at its maximum rate for 3 s/);
  for (const name of ['bench-haproxy-1core', 'bench-sempre-1core', 'bench-node-floor-1core']) assert.equal(isAlive(lab.processes[name]!.pid), false, `${name} was stopped`);
  const affinity = execFileSync('taskset', ['-pc', String(lab.processes.app1!.pid)], { encoding: 'utf8' });
  assert.match(affinity, /list: 0[-,]1\s*$/, `app1 may run on both cores again: ${affinity}`);
  recordFigure('quick bench: one sempre process vs HAProxy nbthread 1, same core (req/s)', `${Math.round(result.perCore!.ratio * 100)}%`);
  recordFigure('quick bench: a bare Node proxy (the floor) vs HAProxy nbthread 1, same core (req/s)', `${Math.round(result.perCore!.floor.ratio * 100)}%`);
  const sempre = result.overhead.find((o) => o.contender === 'sempre')!;
  recordFigure('quick bench: sempre req/s vs direct (wrk -t2 -c32)', `${Math.round(sempre.wrkRps)} (${Math.round(sempre.rpsRatio * 100)}%)`);
});
