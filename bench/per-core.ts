// The per-core comparison: HAProxy with one thread and one sempre process,
// each pinned to core 1, with wrk and every lab process (apps, Consul,
// agents) pinned to core 0, in alternating rounds of the same run. Affinity
// is restored afterwards.
import { treeCpuSeconds, treeRssMiB } from '../lab/process-tree.ts';
import { targetPid } from '../lab/app-restarts.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lab/consul-binary.ts';
import { isAlive, namespacePids, type LabState } from '../lab/netns-lab.ts';
import { PER_CORE, PER_CORE_NAMES } from './contenders.ts';
import { parseWrk, type WrkFigures } from './wrk-output.ts';

export interface PerCoreRow {
  contender: string;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the proxy process spent per request (user + system), from /proc. */
  cpuUsPerRequest: number;
  /** wrk's answers other than 2xx/3xx and its socket errors: req/s counts them too. */
  wrongAnswers: number;
  socketErrors: number;
}

/**
 * The same pair at one shared, moderate load: wrk's connections pause after
 * each response (bench/pace.lua), so neither proxy is at its maximum and the
 * p99 shows pauses inside the proxy rather than the queue of a saturated core.
 * Closed loop: a request is not sent while its connection waits. wrk makes
 * up for part of that (its stats_correct adds samples for any latency over
 * twice the mean cycle of a connection, pause included), which wrk2's
 * open-loop load would count exactly; Debian has no wrk2.
 */
export interface PacedRounds {
  /** Each connection's pause after a response, ms. */
  gapMs: number;
  rows: PerCoreRow[];
  roundP99Ratios: number[];
  p99Ratio: number;
  /** The floor's p99 over HAProxy's at that load (median of the rounds). */
  floorP99Ratio: number;
}

export interface MemorySoak {
  seconds: number;
  rps: number;
  /** RSS of the sempre process every 30 s (and at the end). */
  samples: { atS: number; rssMb: number }[];
  rssMb: number;
}

export interface PerCoreResult {
  rows: PerCoreRow[];
  /** sempre's req/s over HAProxy's, round by round (the rounds alternate, so each pair saw the same machine). */
  roundRatios: number[];
  /** The median of roundRatios. */
  ratio: number;
  /** sempre's p99 over HAProxy's, round by round, and their median. */
  roundP99Ratios: number[];
  p99Ratio: number;
  /**
   * The floor (bench/bare-proxy.ts on the same Node and undici) over
   * HAProxy's req/s, and sempre over the floor, round by round and their
   * medians: how much of the gap to HAProxy is Node's and undici's, and how
   * much sempre's own.
   */
  floor: { roundRatios: number[]; ratio: number; sempreRoundRatios: number[]; sempreRatio: number; p99Ratio: number };
  sempreRssMb: number;
  /** p99 at a shared moderate load (about half the slower contender's maximum). */
  paced: PacedRounds;
  /** sempre at its maximum rate for --memory seconds, then its RSS (null: not asked). */
  memory: MemorySoak | null;
}

/** The middle value; for an even count, the mean of the two middle ones. */
function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function pin(pid: number, cores: string): void {
  spawnSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
}

const { haproxy: HAPROXY, sempre: SEMPRE, floor: FLOOR } = PER_CORE_NAMES;
const CONNECTIONS = 32;
const PACE_SCRIPT = join(PROJECT_ROOT, 'bench', 'pace.lua');

/** wrk -t1 -c32 on core 0; with gapMs, each connection pauses that long after every response. */
function wrkOnCore0(url: string, seconds: number, gapMs?: number): WrkFigures {
  const target = gapMs === undefined ? [url] : ['-s', PACE_SCRIPT, url, '--', String(gapMs)];
  return parseWrk(execFileSync('taskset', ['-c', '0', 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...target], { encoding: 'utf8' }));
}


/** CPU seconds (user + system, all threads) a lab process and its children (sempre's workers) have used so far. */
function cpuSeconds(lab: LabState, name: string): number {
  const proc = lab.processes[name];
  return proc && isAlive(proc.pid) ? treeCpuSeconds(proc.pid) : NaN;
}

/** The pinned processes' RSS, from /proc: the process and its children (sempre's main process and its worker). */
function rssMb(lab: LabState, name: string): number {
  const proc = lab.processes[name];
  return proc && isAlive(proc.pid) ? Math.round(treeRssMiB(proc.pid)) : NaN;
}

export async function runPerCore(lab: LabState, options: { seconds: number; rounds: number; memorySeconds: number; say: (line: string) => void }): Promise<PerCoreResult> {
  // Every process of every lab host: an app's restarter and the app, the balancer's keeper, its main
  // process and its workers (a child started before the pinning keeps its own affinity).
  const labPids = [...Object.values(lab.processes).flatMap((p) => [p.pid, targetPid(p) ?? p.pid]), ...Object.values(lab.hosts).flatMap((h) => namespacePids(h.namespace))]
    .filter((pid, i, all) => isAlive(pid) && all.indexOf(pid) === i);
  for (const pid of labPids) pin(pid, '0');
  try {
    for (const c of PER_CORE) await c.start(lab);
    for (const c of PER_CORE) wrkOnCore0(c.url(lab), 2); // warm-up: JIT, keep-alive pools
    const rows = alternatingRounds(lab, { ...options, label: 'per core' });
    const sempreRssMb = rssMb(lab, `bench-${SEMPRE}`);
    const throughput = ratioByRound(rows, 'rps', SEMPRE, HAPROXY);
    const p99 = ratioByRound(rows, 'p99Ms', SEMPRE, HAPROXY);
    const floor = ratioByRound(rows, 'rps', FLOOR, HAPROXY);
    const sempreOverFloor = ratioByRound(rows, 'rps', SEMPRE, FLOOR);
    const floorP99 = ratioByRound(rows, 'p99Ms', FLOOR, HAPROXY);
    const paced = pacedRounds(lab, rows, options);
    const memory = options.memorySeconds > 0 ? memorySoak(lab, options.memorySeconds, options.say) : null;
    return {
      rows,
      roundRatios: throughput.perRound,
      ratio: throughput.median,
      roundP99Ratios: p99.perRound,
      p99Ratio: p99.median,
      floor: { roundRatios: floor.perRound, ratio: floor.median, sempreRoundRatios: sempreOverFloor.perRound, sempreRatio: sempreOverFloor.median, p99Ratio: floorP99.median },
      sempreRssMb,
      paced,
      memory,
    };
  } finally {
    for (const c of PER_CORE) await c.stop(lab);
    for (const pid of labPids) if (isAlive(pid)) pin(pid, `0-${availableParallelism() - 1}`);
  }
}

/** HAProxy, sempre, then the floor, `rounds` times: each round's contenders saw the same machine. */
function alternatingRounds(lab: LabState, options: { seconds: number; rounds: number; gapMs?: number; label: string; say: (line: string) => void }): PerCoreRow[] {
  const rows: PerCoreRow[] = [];
  for (let round = 1; round <= options.rounds; round += 1) {
    for (const c of PER_CORE) {
      const cpuBefore = cpuSeconds(lab, `bench-${c.name}`);
      const w = wrkOnCore0(c.url(lab), options.seconds, options.gapMs);
      const cpuUsPerRequest = Math.round(((cpuSeconds(lab, `bench-${c.name}`) - cpuBefore) * 1e6) / w.requests);
      rows.push({ contender: c.name, round, rps: w.rps, p50Ms: w.p50, p99Ms: w.p99, cpuUsPerRequest, wrongAnswers: w.wrongAnswers, socketErrors: w.socketErrors });
      const errors = w.wrongAnswers || w.socketErrors ? ` — WRONG ANSWERS: non-2xx/3xx ${w.wrongAnswers}, socket errors ${w.socketErrors}` : '';
      options.say(`  ${options.label}, round ${round}/${options.rounds}: ${c.name} ${Math.round(w.rps)} req/s, p50 ${w.p50} ms, p99 ${w.p99} ms, ${cpuUsPerRequest} µs of CPU per request${errors}`);
    }
  }
  return rows;
}

/**
 * Digits kept per ratio: req/s ratios are printed as whole percents, so
 * they keep four decimals and are rounded once; p99 ratios are printed as x.xx×.
 */
const RATIO_SCALE = { rps: 10_000, p99Ms: 100 } as const;

/** One contender's figure over another's, round by round, and their median. */
function ratioByRound(rows: readonly PerCoreRow[], field: 'rps' | 'p99Ms', numerator: string, denominator: string): { perRound: number[]; median: number } {
  const scale = RATIO_SCALE[field];
  const of = (name: string, round: number) => rows.find((r) => r.contender === name && r.round === round)!;
  const rounds = [...new Set(rows.map((r) => r.round))];
  const perRound = rounds.map((round) => Math.round((of(numerator, round)[field] / of(denominator, round)[field]) * scale) / scale);
  return { perRound, median: Math.round(median(perRound) * scale) / scale };
}

/**
 * Alternating rounds at about half the slower contender's median maximum:
 * each connection's cycle is its share of that rate, less ~1.5 ms for the
 * request itself (wrk's pause is whole milliseconds).
 */
function pacedRounds(lab: LabState, maxRows: readonly PerCoreRow[], options: { seconds: number; rounds: number; say: (line: string) => void }): PacedRounds {
  const slower = Math.min(...PER_CORE.map((c) => median(maxRows.filter((r) => r.contender === c.name).map((r) => r.rps))));
  const gapMs = Math.max(1, Math.round((CONNECTIONS * 1000) / (slower / 2) - 1.5));
  const rows = alternatingRounds(lab, { ...options, gapMs, label: `paced (${gapMs} ms between a connection's requests)` });
  const p99 = ratioByRound(rows, 'p99Ms', SEMPRE, HAPROXY);
  const floorP99 = ratioByRound(rows, 'p99Ms', FLOOR, HAPROXY);
  return { gapMs, rows, roundP99Ratios: p99.perRound, p99Ratio: p99.median, floorP99Ratio: floorP99.median };
}

/** sempre at its maximum rate (wrk on core 0, as in the rounds) for `seconds`, its RSS read every 30 s. */
function memorySoak(lab: LabState, seconds: number, say: (line: string) => void): MemorySoak {
  const sempre = PER_CORE.find((c) => c.name === SEMPRE)!;
  const samples: MemorySoak['samples'] = [];
  let requests = 0;
  for (let at = 0; at < seconds;) {
    const step = Math.min(30, seconds - at);
    requests += wrkOnCore0(sempre.url(lab), step).requests;
    at += step;
    samples.push({ atS: at, rssMb: rssMb(lab, `bench-${SEMPRE}`) });
    say(`  memory: ${at}/${seconds} s at full rate, sempre's RSS ${samples.at(-1)!.rssMb} MB`);
  }
  return { seconds, rps: Math.round(requests / seconds), samples, rssMb: samples.at(-1)?.rssMb ?? NaN };
}
