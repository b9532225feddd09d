// The bench's tables as markdown: for the terminal, BENCHMARKS.md and notes.
import type { BenchResult } from './bench.ts';
import { describeKinds } from '../drill/records.ts';
import { NOT_MEASURED } from './contenders.ts';
import { describeRound, rpsMedian, type PerCoreRow } from './per-core.ts';
import { SATURATED_BUSY_SHARE } from './per-core-stats.ts';

const table = (head: string[], rows: string[][]) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
const WRK_ERRORS = 'wrk non-2xx/3xx, socket errors';
const ms = (v: number | null) => (v === null ? '–' : String(v));

export function overheadTable(result: BenchResult): string {
  return table(['contender', 'req/s (wrk -c32)', 'vs direct', 'wrk p50 ms', 'wrk p99 ms', `p50 ms at ${result.options.rate}/s`, `p99 ms at ${result.options.rate}/s`, 'added p50 ms', 'wrong answers (wrk non-2xx/3xx, socket errors; fixed rate)'],
    result.overhead.map((o) => [o.contender, String(Math.round(o.wrkRps)), `${Math.round(o.rpsRatio * 100)}%`, String(o.wrkP50Ms), String(o.wrkP99Ms), String(o.rateP50Ms), String(o.rateP99Ms), String(o.addedP50Ms),
      `${o.wrkWrongAnswers}, ${o.wrkSocketErrors}; ${describeKinds(o.rateFailedByKind) || '0'}`]));
}

export function faultTable(result: BenchResult): string {
  return table(['contender', 'fault', 'requests', 'failed GETs', 'of which refused', 'availability', 'disruption ms', 'recover ms', 'new instance ms', 'reload / restart ms', 'p99 ms (fault)', 'max ms (fault)'],
    result.faults.map((f) => [f.contender, f.fault, String(f.total), f.failed ? `${f.failed} (${describeKinds(f.failedByKind)})` : '0', String(f.refused), `${(f.availability * 100).toFixed(2)}%`, ms(f.disruptionMs), ms(f.recoverMs), f.fault === 'scale-out' ? ms(f.newInstanceMs) ?? 'never' : '',
      f.actionMs === null ? '' : `${f.actionMs}${f.actionOk ? '' : ' (failed)'}`, String(f.p99Ms), String(f.maxMs)]));
}

export function notMeasuredTable(): string {
  return table(['peer', 'what', 'failover, from its code and docs'], NOT_MEASURED.map((p) => [p.name, p.description, p.failover]));
}

export function perCoreTable(result: BenchResult): string {
  const perCore = result.perCore;
  if (!perCore) return '(not measured: --per-core 0)';
  const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;
  const times = (ratios: readonly number[]) => ratios.map((r) => `${r}×`).join(', ');
  const busy = (share: number, mark: boolean) => `${percent(share)}${mark && !(share >= SATURATED_BUSY_SHARE) ? ' (not saturated)' : ''}`;
  const cells = (mark: boolean) => (r: PerCoreRow) => [r.contender, String(r.round), String(r.cpuUsPerRequest), String(Math.round(r.rps)), busy(r.coreBusy.proxy, mark), percent(r.coreBusy.cpu1), percent(r.coreBusy.cpu0), String(r.p50Ms), String(r.p99Ms), `${r.wrongAnswers}, ${r.socketErrors}`];
  const head = (rps: string) => ['contender (1 core)', 'round', 'CPU µs per request', rps, 'proxy had work', 'core 1 busy (proxy)', 'core 0 busy (client side)', 'p50 ms', 'p99 ms', WRK_ERRORS];
  const { cpuUsPerRequest: us, cost, rps } = perCore;
  const heldBack = perCore.rounds.filter((r) => r.heldBack);
  const lines = [
    `CPU per request (the proxy's own CPU time, all threads and child processes, over the requests it served; median of ${perCore.rounds.length} rounds): HAProxy **${us.haproxy} µs**, the floor **${us.floor} µs**, sempre **${us.sempre} µs**. sempre costs **${cost.sempreOverHaproxy.median}×** HAProxy's (${times(cost.sempreOverHaproxy.perRound)}) and **${cost.sempreOverFloor.median}×** the floor's (${times(cost.sempreOverFloor.perRound)}); the floor ${cost.floorOverHaproxy.median}× HAProxy's.`,
    '',
    table(head('req/s (wrk -t1 -c32)'), perCore.rows.map(cells(true))),
    '',
    `req/s, only from rounds in which both proxies were saturated (had work ≥ ${percent(SATURATED_BUSY_SHARE)} of their run): sempre over HAProxy ${rpsMedian(rps.sempreOverHaproxy)}; the floor over HAProxy ${rpsMedian(rps.floorOverHaproxy)}; sempre over the floor ${rpsMedian(rps.sempreOverFloor)}. Every round: sempre ${rps.sempreOverHaproxy.perRound.map(percent).join(', ')} of HAProxy's, the floor ${rps.floorOverHaproxy.perRound.map(percent).join(', ')}.`,
    ...(heldBack.length ? ['', ...heldBack.map((r) => `Round ${r.round}: ${describeRound(r)}.`)] : []),
    '',
    `p99 at full rate: sempre **${perCore.p99.sempre.median}×** HAProxy's (${times(perCore.p99.sempre.perRound)}), the floor ${perCore.p99.floor.median}×. RSS after the rounds: sempre ${perCore.rssMb.sempreTree} MB (main process and worker; PSS ${perCore.rssMb.sempreTreePss} MB, the node executable's pages counted once), its worker ${perCore.rssMb.sempreWorker} MB; the floor ${perCore.rssMb.floor} MB (Node and undici alone).`,
  ];
  const paced = perCore.paced;
  lines.push('', `At one shared, moderate load (each of wrk's 32 connections pausing ${paced.gapMs} ms after every response, about half the slower one's maximum):`, '',
    table(head('req/s (paced)'), paced.rows.map(cells(false))),
    '', `sempre's p99 at that load: **${paced.p99.sempre.median}×** HAProxy's (${times(paced.p99.sempre.perRound)}); the floor's ${paced.p99.floor.median}×.`);
  if (perCore.memory) {
    const m = perCore.memory;
    lines.push('', `Memory: sempre alone at its maximum rate for ${m.seconds} s (${m.rps} req/s): RSS **${m.rssMb} MB** at the end (PSS ${m.pssMb} MB), its worker ${m.workerRssMb} MB (${m.samples.map((s) => `${s.atS} s: ${s.rssMb}`).join(', ')} MB).`);
  }
  return lines.join('\n');
}
