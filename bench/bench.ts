// sempre side by side with the proxies people trust, on the same lab, app,
// load and faults, in one run: overhead against going direct, then every
// contender × fault through the drill engine.
import { spawnSync } from 'node:child_process';
import { appHosts, LAB_ADDRESSES, type LabState } from '../lab/netns-lab.ts';
import { waitFor } from '../lab/processes.ts';
import { runDrill, type DrillResult } from '../drill/drill.ts';
import { assertSafeTarget, startLoad } from '../drill/load-generator.ts';
import { percentiles } from '../drill/metrics.ts';
import { countFailuresByKind, describeKinds, type FailureKind } from '../drill/records.ts';
import { CONTENDERS, DIRECT, type Contender } from './contenders.ts';
import { SINGLE_BALANCER_FAULTS } from '../drill/faults/index.ts';
import type { Front } from '../drill/faults/fault.ts';
import { perCoreSummary, runPerCore, type PerCoreResult } from './per-core.ts';
import { parseWrk, type WrkFigures } from './wrk-output.ts';

// agents-frozen: every agent at once, so Consul lists no passing instance and its DNS answers NXDOMAIN (sempre fails open).
// haproxy-consul keeps its servers a few seconds after that: with the default --for 5s it lost none here, with 15 s 4,503 of 10,000.
// agents-tokens-revoked is left to --faults: Consul's catalog keeps the last status, so it changes nothing for any contender.
// balancer-reload and balancer-restart act on the proxy itself (contender.front): a contender without one is not measured for them.
export const BENCH_FAULTS = ['crash', 'hang', 'partition', 'errors', 'agent-crash', 'scale-out', 'agents-frozen', 'balancer-reload', 'balancer-restart'] as const;

export interface BenchOptions {
  contenders: string[];
  faults: string[];
  rate: number;
  durationMs: number;
  atMs: number;
  forMs: number;
  /** Seconds of wrk and of fixed-rate load per contender for the overhead figures. */
  overheadSeconds: number;
  /** Seconds of each per-core round (HAProxy nbthread 1 against one sempre process, pinned); 0: skip. */
  perCoreSeconds: number;
  /** Alternating per-core rounds (a median of an even count, when held-back rounds are left out, is the mean of the middle two). */
  perCoreRounds: number;
  /** Seconds of sempre alone at full rate after the per-core rounds, then its RSS (0: skip). */
  memorySeconds: number;
}

export interface OverheadRow {
  contender: string;
  /** wrk -t2 -c32: requests per second and its latency percentiles. */
  wrkRps: number;
  wrkP50Ms: number;
  wrkP99Ms: number;
  /** wrk's answers other than 2xx/3xx and its socket errors (both should be 0). */
  wrkWrongAnswers: number;
  wrkSocketErrors: number;
  /** Our load generator at the bench's rate: latency percentiles. */
  rateP50Ms: number;
  rateP99Ms: number;
  /** Requests of the fixed-rate load that failed, by kind (should be none). */
  rateFailedByKind: Partial<Record<FailureKind, number>>;
  /** Against direct, measured in the same run. */
  rpsRatio: number;
  addedP50Ms: number;
}

export interface FaultRow {
  contender: string;
  fault: string;
  total: number;
  failed: number;
  failedByKind: Partial<Record<FailureKind, number>>;
  availability: number;
  /** Fault start → the last request that failed or took over 200 ms (null: none). */
  disruptionMs: number | null;
  /** Fault end → the target serves again. */
  recoverMs: number | null;
  /** scale-out: fault start → the new instance's first request (null: never). */
  newInstanceMs: number | null;
  p99Ms: number;
  maxMs: number;
  /** Failed requests whose connection was refused (none when the listening socket is held). */
  refused: number;
  /** balancer-reload / balancer-restart: the reload's answer, or the kill until a new connection is answered (null: other faults). */
  actionMs: number | null;
  /** … and whether the reload was taken, or the proxy served again. */
  actionOk: boolean | null;
}

export interface BenchResult {
  options: BenchOptions;
  perCore: PerCoreResult | null;
  overhead: OverheadRow[];
  faults: FaultRow[];
  drills: Array<{ contender: string; result: DrillResult }>;
}

const SLOW_MS = 200;

function wrk(url: string, seconds: number): WrkFigures {
  assertSafeTarget(new URL(url), LAB_ADDRESSES);
  const run = spawnSync('wrk', ['-t2', '-c32', `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`wrk failed: ${run.stderr}`);
  return parseWrk(run.stdout);
}

async function atRate(url: string, rate: number, seconds: number): Promise<{ p50: number; p99: number; failedByKind: Partial<Record<FailureKind, number>> }> {
  const records = await startLoad({ url, rate, durationMs: seconds * 1000 }, LAB_ADDRESSES).done;
  const p = percentiles(records.map((r) => r.latencyMs));
  return { p50: p.p50, p99: p.p99, failedByKind: countFailuresByKind(records) };
}

/** Waits until the contender spreads requests over every app host again (its own view of recovery). */
async function waitBalanced(url: string, lab: LabState): Promise<void> {
  const apps = appHosts(lab);
  await waitFor(`${url} to send traffic to ${apps.join(' and ')}`, async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i += 1) {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      seen.add(response.headers.get('x-instance') ?? '');
    }
    return apps.every((a) => seen.has(a));
  }, 60_000, 250);
}

/** '' when every answer was right; else what went wrong, for the progress line. */
function overheadErrors(row: OverheadRow): string {
  const kinds = describeKinds(row.rateFailedByKind);
  const parts = [row.wrkWrongAnswers ? `wrk non-2xx/3xx ${row.wrkWrongAnswers}` : '', row.wrkSocketErrors ? `wrk socket errors ${row.wrkSocketErrors}` : '', kinds ? `failed at the fixed rate: ${kinds}` : ''].filter(Boolean);
  return parts.length ? ` — WRONG ANSWERS: ${parts.join(', ')}` : '';
}

function faultRow(contender: string, result: DrillResult): FaultRow {
  const { fault, records, metrics } = result;
  const hit = records.filter((r) => r.intendedMs >= fault.startMs && r.intendedMs <= fault.endMs && (r.errorClass !== 'ok' || r.latencyMs > SLOW_MS));
  return {
    contender,
    fault: fault.name,
    total: metrics.total,
    failed: metrics.failed,
    failedByKind: metrics.failedByKind,
    availability: metrics.availability,
    disruptionMs: hit.length === 0 ? null : Math.round(Math.max(...hit.map((r) => r.intendedMs)) - fault.startMs),
    recoverMs: fault.name === 'scale-out' ? null : metrics.recoverMs === null ? null : Math.round(metrics.recoverMs),
    newInstanceMs: fault.name === 'scale-out' ? (metrics.firstServedMs === null ? null : Math.round(metrics.firstServedMs)) : null,
    p99Ms: metrics.faultLatency.p99,
    maxMs: metrics.faultLatency.max,
    refused: metrics.failedByClass.refused ?? 0,
    actionMs: result.faultOutcome?.durationMs ?? null,
    actionOk: result.faultOutcome?.ok ?? null,
  };
}

/** How balancer-reload and balancer-restart act on the contender, or why they cannot. */
function frontOf(c: Contender, lab: LabState): Front | string {
  if (!c.front) return `${c.name} is not reloaded or restarted here`;
  try {
    return c.front(lab);
  } catch (error) {
    return (error as Error).message;
  }
}

export function selectContenders(names: string[]): Contender[] {
  return names.map((name) => {
    const found = CONTENDERS.find((c) => c.name === name);
    if (!found) throw new Error(`bench.contenders: unknown contender "${name}"; one of ${CONTENDERS.map((c) => c.name).join(', ')}`);
    return found;
  });
}

export async function runBench(options: BenchOptions, lab: LabState, say: (line: string) => void, interrupted: AbortSignal): Promise<BenchResult> {
  const contenders = selectContenders(options.contenders);
  const overhead: OverheadRow[] = [];
  const faults: FaultRow[] = [];
  const drills: BenchResult['drills'] = [];
  let perCore: PerCoreResult | null = null;
  if (options.perCoreSeconds > 0) {
    say(`per core: HAProxy nbthread 1, one sempre balancer (main process and worker) and a bare Node proxy (the floor), each pinned to core 1; wrk -t1 -c32 and the lab on core 0; each proxy's CPU per request and each core's busy share over ${options.perCoreRounds} rounds of ${options.perCoreSeconds} s at full rate, then ${options.perCoreRounds} at a shared moderate load${options.memorySeconds > 0 ? `, then sempre alone at full rate for ${options.memorySeconds} s` : ''}…`);
    perCore = await runPerCore(lab, { seconds: options.perCoreSeconds, rounds: options.perCoreRounds, memorySeconds: options.memorySeconds, say });
    say(perCoreSummary(perCore));
  }
  try {
    for (const c of contenders) {
      say(`starting ${c.name}…`);
      await c.start(lab);
    }
    say(`overhead: wrk -t2 -c32 -d${options.overheadSeconds}s and ${options.rate} req/s for ${options.overheadSeconds} s, each contender and direct…`);
    const direct = wrk(DIRECT.url(), options.overheadSeconds);
    const directRate = await atRate(DIRECT.url(), options.rate, options.overheadSeconds);
    overhead.push({ contender: 'direct', wrkRps: direct.rps, wrkP50Ms: direct.p50, wrkP99Ms: direct.p99, wrkWrongAnswers: direct.wrongAnswers, wrkSocketErrors: direct.socketErrors, rateP50Ms: directRate.p50, rateP99Ms: directRate.p99, rateFailedByKind: directRate.failedByKind, rpsRatio: 1, addedP50Ms: 0 });
    for (const c of contenders) {
      await waitBalanced(c.url(lab), lab);
      const w = wrk(c.url(lab), options.overheadSeconds);
      const r = await atRate(c.url(lab), options.rate, options.overheadSeconds);
      overhead.push({ contender: c.name, wrkRps: w.rps, wrkP50Ms: w.p50, wrkP99Ms: w.p99, wrkWrongAnswers: w.wrongAnswers, wrkSocketErrors: w.socketErrors, rateP50Ms: r.p50, rateP99Ms: r.p99, rateFailedByKind: r.failedByKind, rpsRatio: Math.round((w.rps / direct.rps) * 1000) / 1000, addedP50Ms: Math.round((r.p50 - directRate.p50) * 100) / 100 });
      say(`  ${c.name}: ${Math.round(w.rps)} req/s (${Math.round((w.rps / direct.rps) * 100)}% of direct), p50 at ${options.rate}/s ${r.p50} ms${overheadErrors(overhead.at(-1)!)}`);
    }
    for (const c of contenders) {
      for (const fault of options.faults) {
        if (interrupted.aborted) throw new Error('bench interrupted');
        const front = SINGLE_BALANCER_FAULTS.some((f) => f.name === fault) ? frontOf(c, lab) : undefined;
        if (typeof front === 'string') {
          say(`${c.name} × ${fault}: not measured (${front})`);
          continue;
        }
        await waitBalanced(c.url(lab), lab);
        say(`${c.name} × ${fault}…`);
        const result = await runDrill({ fault, target: 'app1', atMs: options.atMs, forMs: options.forMs, rate: options.rate, durationMs: options.durationMs, method: 'GET', path: '/', url: c.url(lab) }, lab, { say: () => undefined, interrupted, front });
        drills.push({ contender: c.name, result });
        const row = faultRow(c.name, result);
        faults.push(row);
        const action = row.actionMs === null ? '' : `${fault === 'balancer-restart' ? 'serving again after' : 'reload answered in'} ${row.actionMs} ms${row.actionOk ? '' : ' (FAILED)'}, refused connections ${row.refused}, `;
        say(`  ${action}${row.failed} failed of ${row.total}${row.failed ? ` (${describeKinds(row.failedByKind)})` : ''}, disruption ${row.disruptionMs ?? '–'} ms, recover ${row.recoverMs ?? '–'} ms${fault === 'scale-out' ? `, new instance's first request ${row.newInstanceMs ?? 'never'} ms` : ''}, p99 ${row.p99Ms} ms, max ${row.maxMs} ms`);
      }
    }
  } finally {
    for (const c of contenders) await c.stop(lab);
  }
  return { options, perCore, overhead, faults, drills };
}
