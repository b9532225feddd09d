// The bench's tables as markdown: for the terminal, BENCHMARKS.md and notes.
import type { BenchResult } from './bench.ts';
import { describeKinds } from '../drill/records.ts';
import { NOT_MEASURED } from './contenders.ts';
import type { PerCoreRow } from './per-core.ts';

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
  const cells = (r: PerCoreRow) => [r.contender, String(r.round), String(Math.round(r.rps)), String(r.p50Ms), String(r.p99Ms), String(r.cpuUsPerRequest), `${r.wrongAnswers}, ${r.socketErrors}`];
  const rows = perCore.rows.map(cells);
  const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;
  const lines = [
    table(['contender (1 core)', 'round', 'req/s (wrk -t1 -c32)', 'p50 ms', 'p99 ms', 'CPU µs per request', WRK_ERRORS], rows),
    '',
    `sempre: **${percent(perCore.ratio)}** of HAProxy's req/s on the same core (median of the rounds: ${perCore.roundRatios.map(percent).join(', ')}), p99 **${perCore.p99Ratio}×** HAProxy's (${perCore.roundP99Ratios.map((r) => `${r}×`).join(', ')}); its RSS after the rounds ${perCore.sempreRssMb} MB.`,
    '',
    `The floor under sempre (node-floor-1core: Node's HTTP server and undici with no feature at all): **${percent(perCore.floor.ratio)}** of HAProxy's req/s (${perCore.floor.roundRatios.map(percent).join(', ')}), p99 ${perCore.floor.p99Ratio}× HAProxy's; sempre does **${percent(perCore.floor.sempreRatio)}** of the floor's req/s (${perCore.floor.sempreRoundRatios.map(percent).join(', ')}).`,
  ];
  const paced = perCore.paced;
  lines.push('', `At one shared, moderate load (each of wrk's 32 connections pausing ${paced.gapMs} ms after every response, about half the slower one's maximum):`, '',
    table(['contender (1 core)', 'round', 'req/s (paced)', 'p50 ms', 'p99 ms', 'CPU µs per request', WRK_ERRORS], paced.rows.map(cells)),
    '', `sempre's p99 at that load: **${paced.p99Ratio}×** HAProxy's (${paced.roundP99Ratios.map((r) => `${r}×`).join(', ')}); the floor's ${paced.floorP99Ratio}×.`);
  if (perCore.memory) {
    const m = perCore.memory;
    lines.push('', `Memory: sempre alone at its maximum rate for ${m.seconds} s (${m.rps} req/s): RSS **${m.rssMb} MB** at the end (${m.samples.map((s) => `${s.atS} s: ${s.rssMb}`).join(', ')} MB).`);
  }
  return lines.join('\n');
}
