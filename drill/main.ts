// `./sempre drill`: prove the page stays up under a fault, with numbers.
import '../shared/closed-stdout.ts';
import { createReadStream, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { runCommand } from '../shared/command.ts';
import type { CommandSpec } from '../shared/config/options.ts';
import { boolean, duration, integer, oneOf, text, urlPath } from '../shared/config/values.ts';
import { abortOnCtrlC, labOrExplain } from '../lab/cli-helpers.ts';
import { DrillError, runDrill, waitForFullRotation, type DrillOptions, type DrillResult } from './drill.ts';
import { ALL_FAULTS, FAULTS, findFault, PAIR_FAULTS, SINGLE_BALANCER_FAULTS } from './faults/index.ts';
import { checkSlo, computeMetrics, parseSlo, type DrillMetrics } from './metrics.ts';
import { renderReport } from './report.ts';
import { classifyStatus, describeKinds, type RequestRecord } from './records.ts';

const options = {
  fault: { flag: 'fault', env: 'SEMPRE_DRILL_FAULT', placeholder: 'NAME', default: 'crash', description: `the fault: ${ALL_FAULTS.map((f) => f.name).join(', ')}`, schema: text(40) },
  target: { flag: 'target', env: 'SEMPRE_DRILL_TARGET', placeholder: 'HOST', default: 'app1', description: 'the app host the fault hits', schema: text(20) },
  at: { flag: 'at', env: 'SEMPRE_DRILL_AT', placeholder: 'DURATION', default: '3s', description: 'when the fault starts, from the start of the load', schema: duration(0, 3_600_000) },
  for: { flag: 'for', env: 'SEMPRE_DRILL_FOR', placeholder: 'DURATION', default: '5s', description: 'how long the fault lasts before it is reverted', schema: duration(0, 3_600_000) },
  rate: { flag: 'rate', env: 'SEMPRE_DRILL_RATE', placeholder: 'N', default: '500', description: 'requests per second, constant (open model)', schema: integer(1, 20_000) },
  duration: { flag: 'duration', env: 'SEMPRE_DRILL_DURATION', placeholder: 'DURATION', default: '15s', description: 'how long the load runs', schema: duration(1000, 3_600_000) },
  method: { flag: 'method', env: 'SEMPRE_DRILL_METHOD', placeholder: 'METHOD', default: 'GET', description: 'GET or POST (POSTs show what cannot be retried safely)', schema: oneOf(['GET', 'POST', 'HEAD', 'PUT', 'DELETE'] as const) },
  path: { flag: 'path', env: 'SEMPRE_DRILL_PATH', placeholder: 'PATH', default: '/', description: 'the path requested', schema: urlPath() },
  slo: { flag: 'slo', env: 'SEMPRE_DRILL_SLO', placeholder: 'SPEC', default: '', description: 'objectives, e.g. availability=100,p99=500ms; exit 1 when one is missed', schema: text(200) },
  report: { flag: 'report', env: 'SEMPRE_DRILL_REPORT', placeholder: 'FILE', default: '', description: 'write a self-contained HTML report with charts', schema: text(500) },
  save: { flag: 'save', env: 'SEMPRE_DRILL_SAVE', placeholder: 'FILE', default: '', description: 'save the drill (records and timeline) as NDJSON', schema: text(500) },
  from: { flag: 'from', env: 'SEMPRE_DRILL_FROM', placeholder: 'FILE', default: '', description: 'no new drill: re-render a saved one (with --report/--json)', schema: text(500) },
  clientRetry: { flag: 'client-retry', env: 'SEMPRE_DRILL_CLIENT_RETRY', switch: true, default: 'false', description: 'the client tries once more, 1 s later, after a connection failure (2 s timeout per try), as a browser would', schema: boolean() },
  all: { flag: 'all', env: 'SEMPRE_DRILL_ALL', switch: true, default: 'false', description: 'run every fault in turn, waiting for full recovery between them, and print a scoreboard', schema: boolean() },
  json: { flag: 'json', env: 'SEMPRE_DRILL_JSON', switch: true, default: 'false', description: 'print the results as JSON instead of text', schema: boolean() },
};

/** The faults' names in --help line up in one column. */
const NAME_WIDTH = Math.max(...ALL_FAULTS.map((f) => f.name.length));

const drillCommand: CommandSpec<typeof options> = {
  command: './sempre drill',
  section: 'drill',
  summary: 'runs a failover drill in the multi-host lab: constant load, one fault, the numbers',
  options,
  examples: [
    'sudo ./sempre lab up',
    'sudo ./sempre drill --fault crash --target app1 --report crash.html',
    'sudo ./sempre drill --fault partition --at 2s --for 6s --slo availability=100,p99=500ms',
    'sudo ./sempre drill --all --report drills.html          # every fault, a scoreboard',
    'sudo ./sempre drill --method POST --fault hang            # POSTs sent to a hung instance are not retried',
    'sudo ./sempre drill --fault hung-stopped                  # stays hung until app1\'s agent heals it: time to full redundancy',
    'sudo ./sempre drill --fault balancer-reload               # reload the balancer under load: its outcome, duration and failed requests',
    'sudo ./sempre drill --fault balancer-restart              # kill -9 its main process: time until it serves again, refused connections',
    'sudo ./sempre lab up --balancers 2 && sudo ./sempre drill --fault balancer-host-crash --client-retry',
    './sempre drill --from crash.ndjson --report crash.html    # re-render a saved drill',
  ],
  notes: [`Faults: ${FAULTS.map((f) => `\n  ${f.name.padEnd(NAME_WIDTH)} ${f.summary}`).join('')}`,
    `With the single balancer host (the lab's default, its balancer under the socket keeper), also: ${SINGLE_BALANCER_FAULTS.map((f) => `\n  ${f.name.padEnd(NAME_WIDTH)} ${f.summary}`).join('')}`,
    `With the balancer pair (sudo ./sempre lab up --balancers 2) the load goes to the virtual address, and also: ${PAIR_FAULTS.map((f) => `\n  ${f.name.padEnd(NAME_WIDTH)} ${f.summary}`).join('')}`],
};

/** What the target's agent reported of a fault that lasts until healed ('' for other faults). */
function healLine(result: DrillResult): string {
  if (result.heal === undefined) return '';
  if (result.heal === null) return `\n  no heal of ${result.fault.target} reported by its agent`;
  const h = result.heal;
  return `\n  healed by ${h.instance}'s agent: ${h.outcome}, diagnosis "${h.diagnosis}"${h.outForMs === null ? '' : `, out ${(h.outForMs / 1000).toFixed(1)} s`}; evidence on ${h.host}: ${h.evidenceFile ?? 'none'}`;
}

const msOrDash = (v: number | null) => (v === null ? '–' : `${Math.round(v)} ms`);

/** What a fault that measures its own action did (balancer-reload, balancer-restart; '' for other faults), with the refused connections. */
function outcomeLine(result: DrillResult): string {
  const o = result.faultOutcome;
  if (!o) return '';
  const refused = result.metrics.failedByClass.refused ?? 0;
  const verdict = result.fault.name === 'balancer-restart'
    ? (o.ok ? `serving again after ${o.durationMs} ms` : `NOT serving again after ${o.durationMs} ms`)
    : `${o.ok ? 'taken' : 'REFUSED (the old workers serve on)'} in ${o.durationMs} ms`;
  return `\n  ${o.action}: ${verdict}${o.detail ? ` (${o.detail})` : ''}; refused connections ${refused}, reset ${result.metrics.failedByClass.reset ?? 0}`;
}

function line(result: DrillResult): string {
  const m = result.metrics;
  const kinds = describeKinds(m.failedByKind);
  const classes = Object.entries(m.failedByClass).map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `${result.fault.name} on ${result.fault.target}: ${m.total} requests, ${m.failed} failed${kinds ? ` (${kinds}; ${classes})` : ''}, availability ${(m.availability * 100).toFixed(3)}%, time to full redundancy ${msOrDash(m.fullRedundancyMs)}${healLine(result)}${outcomeLine(result)}`,
    `  detect ${m.detectMs ?? '–'} ms, recover ${m.recoverMs === null ? '–' : Math.round(m.recoverMs)} ms,${result.fault.name === 'scale-out' ? ` new instance's first request ${m.firstServedMs === null ? '–' : Math.round(m.firstServedMs)} ms after the fault started,` : ''} error window ${m.errorWindow ? `${m.errorWindow[0]}–${m.errorWindow[1]} ms` : 'none'}, interruption ${m.interruptionMs === null ? 'none' : `${m.interruptionMs} ms`}`,
    `  latency p50 ${m.latency.p50} / p90 ${m.latency.p90} / p99 ${m.latency.p99} / p99.9 ${m.latency.p999} / max ${m.latency.max} ms; fault window p99 ${m.faultLatency.p99} / max ${m.faultLatency.max} ms`,
  ].join('\n');
}

function scoreboard(results: DrillResult[]): string {
  const rows = results.map((r) => [r.fault.name, r.fault.target, String(r.metrics.total), String(r.metrics.failed), describeKinds(r.metrics.failedByKind) || '–', `${(r.metrics.availability * 100).toFixed(3)}%`, r.metrics.fullRedundancyMs === null ? '–' : `${r.metrics.fullRedundancyMs}`, r.metrics.detectMs === null ? '–' : `${r.metrics.detectMs}`, r.metrics.recoverMs === null ? '–' : `${Math.round(r.metrics.recoverMs)}`, `${r.metrics.faultLatency.p99}`, `${r.metrics.faultLatency.max}`, r.faultOutcome ? `${r.faultOutcome.durationMs}${r.faultOutcome.ok ? '' : ' (failed)'}` : '–']);
  const head = ['fault', 'target', 'requests', 'failed', 'failed by kind', 'availability', 'full redundancy ms', 'detect ms', 'recover ms', 'p99 ms (fault)', 'max ms (fault)', 'reload / restart ms'];
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function slim(result: DrillResult): unknown {
  const { perSecond, ...metrics } = result.metrics as DrillMetrics;
  return { fault: result.fault, options: result.options, metrics, perSecond, timeline: result.timeline, ...(result.heal === undefined ? {} : { heal: result.heal }), ...(result.faultOutcome ? { faultOutcome: result.faultOutcome } : {}) };
}

async function load(file: string): Promise<DrillResult[]> {
  const results: DrillResult[] = [];
  for await (const text of createInterface({ input: createReadStream(file) })) {
    const entry = JSON.parse(text) as { type: string } & Record<string, unknown>;
    if (entry.type === 'drill') results.push({ options: entry.options as DrillOptions, startedAt: Number(entry.startedAt ?? 0), fault: entry.fault as DrillResult['fault'], records: [], timeline: [], metrics: undefined as never, ...(entry.heal === undefined ? {} : { heal: entry.heal as DrillResult['heal'] }), ...(entry.faultOutcome ? { faultOutcome: entry.faultOutcome as DrillResult['faultOutcome'] } : {}) });
    else if (entry.type === 'event') results.at(-1)!.timeline.push(entry.event as never);
    else if (entry.type === 'record') {
      // Classified again from its status: a file saved before 4xx answers counted as failures says 'ok' for them.
      const record = entry.record as RequestRecord;
      results.at(-1)!.records.push(record.status > 0 ? { ...record, errorClass: classifyStatus(record.status) } : record);
    }
  }
  for (const r of results) r.metrics = computeMetrics(r.records, r.timeline, r.fault);
  return results;
}

await runCommand(drillCommand, async (o) => {
  const say = (text: string) => { if (!o.json) process.stdout.write(`${text}\n`); };
  let slo: ReturnType<typeof parseSlo> = [];
  try {
    slo = parseSlo(o.slo);
  } catch (error) {
    process.stderr.write(`./sempre drill: ${(error as Error).message}\n`);
    return 2;
  }
  let results: DrillResult[] = [];
  if (o.from) {
    results = await load(o.from);
  } else {
    const lab = labOrExplain('./sempre drill');
    if (!lab) return 2;
    const interrupted = abortOnCtrlC('interrupted: reverting the fault');
    const faults = o.all ? [...FAULTS, ...(lab.vip ? PAIR_FAULTS : SINGLE_BALANCER_FAULTS)].map((f) => f.name) : [o.fault];
    for (const fault of faults) {
      const drill: DrillOptions = { fault, target: o.target, atMs: o.at, forMs: o.for, rate: o.rate, durationMs: o.duration, method: o.method, path: o.path, clientRetry: o.clientRetry };
      const until = findFault(fault)?.lastsUntilHealed ? `until ${o.target}'s agent heals it (the load runs on until it serves again)` : `for ${o.for / 1000} s`;
      say(`drill: ${fault} on ${o.target}, ${o.rate} ${o.method}/s for ${o.duration / 1000} s, fault at ${o.at / 1000} s ${until}`);
      try {
        results.push(await runDrill(drill, lab, { say, interrupted }));
      } catch (error) {
        process.stderr.write(`./sempre drill: ${(error as Error).message}\n`);
        return error instanceof DrillError ? 2 : 1;
      }
      say(line(results.at(-1)!));
    }
    if (o.all) await waitForFullRotation(lab);
  }
  if (o.save) {
    const lines: string[] = [];
    for (const r of results) {
      lines.push(JSON.stringify({ type: 'drill', options: r.options, startedAt: r.startedAt, fault: r.fault, ...(r.heal === undefined ? {} : { heal: r.heal }), ...(r.faultOutcome ? { faultOutcome: r.faultOutcome } : {}) }));
      for (const event of r.timeline) lines.push(JSON.stringify({ type: 'event', event }));
      for (const record of r.records) lines.push(JSON.stringify({ type: 'record', record }));
    }
    writeFileSync(o.save, `${lines.join('\n')}\n`);
    say(`saved ${o.save}`);
  }
  if (o.report) {
    writeFileSync(o.report, renderReport(results, results.length > 1 ? 'sempre drills: every fault' : `sempre drill: ${results[0]?.fault.name ?? ''}`));
    say(`report: ${o.report}`);
  }
  const checks = results.map((r) => ({ fault: r.fault.name, checks: checkSlo(r.metrics, slo) }));
  if (o.json) process.stdout.write(`${JSON.stringify({ results: results.map(slim), slo: checks }, null, 2)}\n`);
  else {
    if (o.from) for (const r of results) say(line(r));
    if (results.length > 1) say(`\n${scoreboard(results)}`);
  }
  let violated = false;
  for (const { fault, checks: list } of checks) {
    for (const check of list) {
      if (!check.ok) {
        violated = true;
        process.stderr.write(`SLO violated: ${fault}: ${check.name} ${check.actual}, wanted ${check.wanted}\n`);
      }
    }
  }
  return violated ? 1 : 0;
});
