// `./sempre bench`: sempre against HAProxy and Nginx on the same lab, load and faults.
import '../shared/closed-stdout.ts';
import { writeFileSync } from 'node:fs';
import { runCommand } from '../shared/command.ts';
import type { CommandSpec } from '../shared/config/options.ts';
import { boolean, duration, integer, list, text } from '../shared/config/values.ts';
import { abortOnCtrlC, labOrExplain } from '../lab/cli-helpers.ts';
import { renderReport } from '../drill/report.ts';
import { BENCH_FAULTS, runBench } from './bench.ts';
import { CONTENDERS } from './contenders.ts';
import { faultTable, notMeasuredTable, overheadTable, perCoreTable } from './markdown.ts';

const options = {
  contenders: { flag: 'contenders', env: 'SEMPRE_BENCH_CONTENDERS', placeholder: 'A,B', default: CONTENDERS.map((c) => c.name).join(','), description: 'which proxies to measure', schema: list(/^[a-z-]+$/, 'contender names') },
  faults: { flag: 'faults', env: 'SEMPRE_BENCH_FAULTS', placeholder: 'A,B', default: BENCH_FAULTS.join(','), description: 'which faults to run against each', schema: list(/^[a-z-]+$/, 'fault names') },
  rate: { flag: 'rate', env: 'SEMPRE_BENCH_RATE', placeholder: 'N', default: '500', description: 'GET/s during the fault drills and the fixed-rate latency', schema: integer(1, 20_000) },
  duration: { flag: 'duration', env: 'SEMPRE_BENCH_DURATION', placeholder: 'DURATION', default: '10s', description: 'each drill\'s load', schema: duration(2000, 600_000) },
  at: { flag: 'at', env: 'SEMPRE_BENCH_AT', placeholder: 'DURATION', default: '2s', description: 'fault start in each drill', schema: duration(0, 600_000) },
  for: { flag: 'for', env: 'SEMPRE_BENCH_FOR', placeholder: 'DURATION', default: '5s', description: 'fault length in each drill', schema: duration(0, 600_000) },
  overhead: { flag: 'overhead', env: 'SEMPRE_BENCH_OVERHEAD', placeholder: 'SECONDS', default: '5', description: 'seconds of wrk and of fixed-rate load per contender', schema: integer(1, 600) },
  perCore: { flag: 'per-core', env: 'SEMPRE_BENCH_PER_CORE', placeholder: 'SECONDS', default: '8', description: 'seconds of each per-core round (--rounds of them): HAProxy nbthread 1, one sempre balancer (main process and worker) and a bare Node proxy (the floor), each pinned to core 1; reports each one\'s CPU µs per request and flags rounds where HAProxy\'s core was not saturated (0: skip)', schema: integer(0, 600) },
  rounds: { flag: 'rounds', env: 'SEMPRE_BENCH_ROUNDS', placeholder: 'N', default: '3', description: 'alternating per-core rounds, at full rate and then at a shared moderate load; on a machine with noisy neighbours, more short rounds (--rounds 10 --per-core 3) give a steadier median than 3 long ones', schema: integer(1, 30) },
  memory: { flag: 'memory', env: 'SEMPRE_BENCH_MEMORY', placeholder: 'SECONDS', default: '0', description: 'after the per-core rounds, keep the pinned sempre at its maximum rate this long and report its RSS (the issue\'s figure: 300; 0: skip)', schema: integer(0, 3600) },
  report: { flag: 'report', env: 'SEMPRE_BENCH_REPORT', placeholder: 'FILE', default: '', description: 'write a self-contained HTML report with every drill\'s charts', schema: text(500) },
  json: { flag: 'json', env: 'SEMPRE_BENCH_JSON', switch: true, default: 'false', description: 'print the results as JSON', schema: boolean() },
};

const benchCommand: CommandSpec<typeof options> = {
  command: './sempre bench',
  section: 'bench',
  summary: 'measures sempre against HAProxy and Nginx in the multi-host lab: overhead and failover, in one run',
  options,
  examples: [
    'sudo ./sempre lab up && sudo ./sempre bench --report bench.html      # the full run (about 8 minutes)',
    'sudo ./sempre bench --contenders sempre,nginx-stock --faults crash,hang --duration 6s',
    'sudo ./sempre bench --contenders sempre,haproxy-stock,nginx-stock --faults balancer-reload,balancer-restart --per-core 0',
    'sudo ./sempre bench --json > bench.json',
    'sudo ./sempre bench --contenders sempre --faults crash --per-core 30   # mostly the per-core rounds',
    'sudo ./sempre bench --contenders sempre --faults crash --per-core 3 --rounds 10 --overhead 1   # many short rounds: steadier on a shared machine',
    'sudo ./sempre bench --contenders sempre --faults crash --per-core 10 --memory 300   # and sempre\'s RSS after 5 minutes at full rate',
  ],
  notes: [`Contenders: ${CONTENDERS.map((c) => `\n  ${c.name.padEnd(15)} ${c.description}`).join('')}\nFaults are the drill's (./sempre drill --help). Every contender is started inside the lab's infra host and stopped at the end.
balancer-reload and balancer-restart act on the proxy itself, as its operators and systemd would: reload is
bin/sempre-balancer-reload for sempre, kill -USR2 to HAProxy's master (-W; its new worker takes the listening
sockets over) and kill -HUP to nginx's; restart is kill -9 of the main process: sempre's keeper starts it again
with the sockets it held, HAProxy's and nginx's masters are started again by the bench after killing their
workers and 100 ms (systemd's KillMode=mixed and RestartSec). sempre-cluster is not measured for these two.`],
};

await runCommand(benchCommand, async (o) => {
  const say = (line: string) => { if (!o.json) process.stdout.write(`${line}\n`); };
  const lab = labOrExplain('./sempre bench');
  if (!lab) return 2;
  const interrupted = abortOnCtrlC('interrupted: finishing the current drill (its fault is reverted) and stopping the contenders');
  let result;
  try {
    result = await runBench({ contenders: o.contenders, faults: o.faults, rate: o.rate, durationMs: o.duration, atMs: o.at, forMs: o.for, overheadSeconds: o.overhead, perCoreSeconds: o.perCore, perCoreRounds: o.rounds, memorySeconds: o.memory }, lab, say, interrupted);
  } catch (error) {
    process.stderr.write(`./sempre bench: ${(error as Error).message}\n`);
    return /^bench\./.test((error as Error).message) ? 2 : 1;
  }
  if (o.report) {
    const drills = result.drills.map(({ contender, result: r }) => ({ ...r, fault: { ...r.fault, name: `${contender} · ${r.fault.name}` } }));
    writeFileSync(o.report, renderReport(drills, 'sempre bench: failover, contender by contender'));
    say(`report: ${o.report}`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ options: result.options, perCore: result.perCore, overhead: result.overhead, faults: result.faults }, null, 2)}\n`);
  else say(`\n## Per core\n\n${perCoreTable(result)}\n\n## Overhead\n\n${overheadTable(result)}\n\n## Failover\n\n${faultTable(result)}\n\n## Not measured\n\n${notMeasuredTable()}`);
  return 0;
});
