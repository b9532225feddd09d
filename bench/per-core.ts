// The per-core comparison: HAProxy with one thread, one sempre balancer (its
// main process and worker) and the floor (a bare Node proxy), each pinned to
// core 1, with wrk and every lab process (apps, Consul, agents) pinned to
// core 0, in alternating rounds of the same run. Affinity is restored
// afterwards. The headline is what a request costs: each proxy's own CPU time
// per request. A req/s ratio is a per-core figure only for a round in which
// both proxies were saturated, so each core's busy share and how much of the
// run each proxy had work are read around every run, and the req/s medians
// leave out the rounds where one waited for the client side.
import { readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { balancerWorkers, rssMiB, treeCpuSeconds, treePssMiB, treeRssMiB, treeThreadTimes } from '../lab/process-tree.ts';
import { targetPid } from '../lab/app-restarts.ts';
import { PROJECT_ROOT } from '../lab/consul-binary.ts';
import { isAlive, LAB_ADDRESSES, namespacePids, type LabState } from '../lab/netns-lab.ts';
import { assertSafeTarget } from '../drill/load-generator.ts';
import { PER_CORE, PER_CORE_NAMES } from './contenders.ts';
import { busiestThreadBusyShare, busyShare, median, parseProcStatCpus, SATURATED_BUSY_SHARE } from './per-core-stats.ts';
import { parseWrk, type WrkFigures } from './wrk-output.ts';

/**
 * Busy shares (0–1) during one wrk run. cpu0 and cpu1 from /proc/stat: the
 * client side's core (wrk, the apps, Consul) and the proxy's. proxy: the
 * share of the run in which the proxy's busiest thread had work (running or
 * waiting for the CPU), from its schedstat; the rest it waited for requests.
 * This one decides whether the proxy was saturated: core 1 can be busy with
 * other processes (on a shared machine) while the proxy waits for the client.
 */
export interface CoreBusy { cpu0: number; cpu1: number; proxy: number }

export interface PerCoreRow {
  contender: string;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the proxy spent per request (user + system, all threads and child processes), from /proc. */
  cpuUsPerRequest: number;
  /** wrk's answers other than 2xx/3xx and its socket errors: req/s counts them too. */
  wrongAnswers: number;
  socketErrors: number;
  coreBusy: CoreBusy;
}

/** The three contenders of the per-core rounds, by role. */
export type Role = keyof typeof PER_CORE_NAMES;
type Roles<T> = Record<Role, T>;

/** One figure of one contender over another's, round by round, and the median of the rounds that count for it. */
export interface RoundRatios {
  perRound: number[];
  /** null when no round counts. */
  median: number | null;
  /** The rounds in the median. */
  rounds: number[];
}

export interface PerCoreRound {
  round: number;
  /**
   * HAProxy, the reference, was held back: it had work less than
   * SATURATED_BUSY_SHARE of its run and waited for requests the rest, so its
   * req/s was the client side's limit, not its own. Such a round is left out
   * of the req/s medians against HAProxy.
   */
  heldBack: boolean;
  /** Each contender's core busy shares during its run in this round. */
  coreBusy: Roles<CoreBusy>;
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
  /** p99 over HAProxy's at that load: sempre's and the floor's. */
  p99: { sempre: RoundRatios; floor: RoundRatios };
}

export interface MemorySoak {
  seconds: number;
  rps: number;
  /** RSS every 30 s (and at the end): sempre's process tree (main process and worker), its worker alone, and the tree's PSS. */
  samples: { atS: number; rssMb: number; workerRssMb: number; pssMb: number }[];
  rssMb: number;
  workerRssMb: number;
  /** The tree's proportional set size: the node executable's pages, which both processes map, counted once. */
  pssMb: number;
}

export interface PerCoreResult {
  rows: PerCoreRow[];
  rounds: PerCoreRound[];
  /** The headline: each contender's CPU µs per request, the median of the rounds. */
  cpuUsPerRequest: Roles<number>;
  /** CPU per request over another's: what a request costs. Every round counts (the rounds alternate, so each trio saw the same machine). */
  cost: { sempreOverHaproxy: RoundRatios; sempreOverFloor: RoundRatios; floorOverHaproxy: RoundRatios };
  /** req/s over another's: a per-core figure only when both proxies were saturated, so the medians count only those rounds. */
  rps: { sempreOverHaproxy: RoundRatios; sempreOverFloor: RoundRatios; floorOverHaproxy: RoundRatios };
  /** p99 over HAProxy's at full rate, every round. */
  p99: { sempre: RoundRatios; floor: RoundRatios };
  /** RSS after the rounds: sempre's process tree (main process and worker), its worker alone and the tree's PSS; the floor's process, the reference for what Node and undici alone hold at full rate. */
  rssMb: { sempreTree: number; sempreWorker: number; sempreTreePss: number; floor: number };
  /** p99 at a shared moderate load (about half the slower contender's maximum). */
  paced: PacedRounds;
  /** sempre at its maximum rate for --memory seconds, then its RSS (null: not asked). */
  memory: MemorySoak | null;
}

export interface PerCoreOptions {
  seconds: number;
  rounds: number;
  memorySeconds: number;
  say: (line: string) => void;
  /** Called before each full-rate run (a test starves the client side with it on purpose); what it returns is called when that run ends. */
  aroundRun?: (contender: string, round: number) => (() => void) | undefined;
}

function pin(pid: number, cores: string): void {
  spawnSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
}

const CONNECTIONS = 32;
const PACE_SCRIPT = join(PROJECT_ROOT, 'bench', 'pace.lua');
const BALANCER_SCRIPT = join(PROJECT_ROOT, 'balancer/main.ts');
const procStat = () => parseProcStatCpus(readFileSync('/proc/stat', 'utf8'));
const byRole = <T>(of: (role: Role) => T): Roles<T> => ({ haproxy: of('haproxy'), sempre: of('sempre'), floor: of('floor') });
const percent = (share: number) => `${Math.round(share * 100)}%`;

/** wrk -t1 -c32 on core 0; with gapMs, each connection pauses that long after every response. */
function wrkOnCore0(url: string, seconds: number, gapMs?: number): WrkFigures {
  assertSafeTarget(new URL(url), LAB_ADDRESSES);
  const target = gapMs === undefined ? [url] : ['-s', PACE_SCRIPT, url, '--', String(gapMs)];
  return parseWrk(execFileSync('taskset', ['-c', '0', 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...target], { encoding: 'utf8' }));
}

/** CPU seconds (user + system, all threads) a lab process and its children (sempre's worker) have used so far. */
function cpuSeconds(lab: LabState, name: string): number {
  const proc = lab.processes[name];
  return proc && isAlive(proc.pid) ? treeCpuSeconds(proc.pid) : NaN;
}

/** sempre's memory from /proc: its process tree's RSS (main process and worker), its worker's alone, and the tree's PSS. */
function sempreRssMb(lab: LabState): { tree: number; worker: number; treePss: number } {
  const proc = lab.processes[`bench-${PER_CORE_NAMES.sempre}`];
  if (!proc || !isAlive(proc.pid)) return { tree: NaN, worker: NaN, treePss: NaN };
  // No keeper here: the process the bench started is the main process, its workers are its children.
  const workers = balancerWorkers(proc.pid, BALANCER_SCRIPT);
  return { tree: Math.round(treeRssMiB(proc.pid)), worker: workers.length ? Math.round(workers.reduce((sum, pid) => sum + (rssMiB(pid) || 0), 0)) : NaN, treePss: Math.round(treePssMiB(proc.pid)) };
}

/** The floor's RSS from /proc. */
function floorRssMb(lab: LabState): number {
  const proc = lab.processes[`bench-${PER_CORE_NAMES.floor}`];
  return proc && isAlive(proc.pid) ? Math.round(treeRssMiB(proc.pid)) : NaN;
}

export async function runPerCore(lab: LabState, options: PerCoreOptions): Promise<PerCoreResult> {
  // Every process of every lab host: an app's restarter and the app, the balancer's keeper, its main
  // process and its workers (a child started before the pinning keeps its own affinity).
  const labPids = [...Object.values(lab.processes).flatMap((p) => [p.pid, targetPid(p) ?? p.pid]), ...Object.values(lab.hosts).flatMap((h) => namespacePids(h.namespace))]
    .filter((pid, i, all) => isAlive(pid) && all.indexOf(pid) === i);
  for (const pid of labPids) pin(pid, '0');
  try {
    for (const c of PER_CORE) await c.start(lab);
    for (const c of PER_CORE) wrkOnCore0(c.url(lab), 2); // warm-up: JIT, keep-alive pools
    const rows = alternatingRounds(lab, { ...options, label: 'per core' });
    const rounds = roundsOf(rows);
    const saturated = (round: number, ...roles: Role[]) => roles.every((role) => rounds.find((r) => r.round === round)!.coreBusy[role].proxy >= SATURATED_BUSY_SHARE);
    const rps = (numerator: Role, denominator: Role) => ratioByRound(rows, 'rps', numerator, denominator, (round) => saturated(round, numerator, denominator));
    const rss = sempreRssMb(lab);
    const floorRss = floorRssMb(lab);
    const paced = pacedRounds(lab, rows, options);
    const memory = options.memorySeconds > 0 ? memorySoak(lab, options.memorySeconds, options.say) : null;
    return {
      rows,
      rounds,
      cpuUsPerRequest: byRole((role) => median(rows.filter((r) => r.contender === PER_CORE_NAMES[role]).map((r) => r.cpuUsPerRequest))),
      cost: { sempreOverHaproxy: ratioByRound(rows, 'cpuUsPerRequest', 'sempre', 'haproxy'), sempreOverFloor: ratioByRound(rows, 'cpuUsPerRequest', 'sempre', 'floor'), floorOverHaproxy: ratioByRound(rows, 'cpuUsPerRequest', 'floor', 'haproxy') },
      rps: { sempreOverHaproxy: rps('sempre', 'haproxy'), sempreOverFloor: rps('sempre', 'floor'), floorOverHaproxy: rps('floor', 'haproxy') },
      p99: { sempre: ratioByRound(rows, 'p99Ms', 'sempre', 'haproxy'), floor: ratioByRound(rows, 'p99Ms', 'floor', 'haproxy') },
      rssMb: { sempreTree: rss.tree, sempreWorker: rss.worker, sempreTreePss: rss.treePss, floor: floorRss },
      paced,
      memory,
    };
  } finally {
    for (const c of PER_CORE) await c.stop(lab);
    for (const pid of labPids) if (isAlive(pid)) pin(pid, `0-${availableParallelism() - 1}`);
  }
}

/** The rounds of the rows: each contender's core busy shares, and whether HAProxy was held back. */
function roundsOf(rows: readonly PerCoreRow[]): PerCoreRound[] {
  return [...new Set(rows.map((r) => r.round))].map((round) => {
    const coreBusy = byRole((role) => rows.find((r) => r.round === round && r.contender === PER_CORE_NAMES[role])!.coreBusy);
    return { round, heldBack: !(coreBusy.haproxy.proxy >= SATURATED_BUSY_SHARE), coreBusy };
  });
}

/** What a round's line says about HAProxy's core: saturated, or held back and left out. */
export function describeRound(round: PerCoreRound): string {
  const busy = round.coreBusy.haproxy;
  return round.heldBack
    ? `HAProxy HELD BACK by the client side (it had work ${percent(busy.proxy)} of its run and waited for requests the rest; core 1 busy ${percent(busy.cpu1)}, core 0 ${percent(busy.cpu0)}): left out of the req/s medians against HAProxy`
    : `HAProxy saturated (it had work ${percent(busy.proxy)} of its run; core 1 busy ${percent(busy.cpu1)}, core 0 ${percent(busy.cpu0)})`;
}

/** HAProxy, sempre, then the floor, `rounds` times: each round's contenders saw the same machine. */
function alternatingRounds(lab: LabState, options: { seconds: number; rounds: number; gapMs?: number; label: string; say: (line: string) => void; aroundRun?: PerCoreOptions['aroundRun'] }): PerCoreRow[] {
  const rows: PerCoreRow[] = [];
  for (let round = 1; round <= options.rounds; round += 1) {
    for (const c of PER_CORE) {
      const done = options.aroundRun?.(c.name, round);
      const pid = lab.processes[`bench-${c.name}`]?.pid ?? 0;
      const cpuBefore = cpuSeconds(lab, `bench-${c.name}`);
      const threadsBefore = treeThreadTimes(pid);
      const statBefore = procStat();
      const startedNs = process.hrtime.bigint();
      let w: WrkFigures;
      try {
        w = wrkOnCore0(c.url(lab), options.seconds, options.gapMs);
      } finally {
        done?.();
      }
      const wallNs = Number(process.hrtime.bigint() - startedNs);
      const statAfter = procStat();
      const proxy = busiestThreadBusyShare(threadsBefore, treeThreadTimes(pid), wallNs);
      const cpuUsPerRequest = w.requests > 0 ? Math.round(((cpuSeconds(lab, `bench-${c.name}`) - cpuBefore) * 1e6) / w.requests) : NaN;
      const coreBusy = { cpu0: busyShare(statBefore, statAfter, 0), cpu1: busyShare(statBefore, statAfter, 1), proxy };
      rows.push({ contender: c.name, round, rps: w.rps, p50Ms: w.p50, p99Ms: w.p99, cpuUsPerRequest, wrongAnswers: w.wrongAnswers, socketErrors: w.socketErrors, coreBusy });
      const errors = w.wrongAnswers || w.socketErrors ? ` — WRONG ANSWERS: non-2xx/3xx ${w.wrongAnswers}, socket errors ${w.socketErrors}` : '';
      options.say(`  ${options.label}, round ${round}/${options.rounds}: ${c.name} ${cpuUsPerRequest} µs of CPU per request, ${Math.round(w.rps)} req/s, p50 ${w.p50} ms, p99 ${w.p99} ms, had work ${percent(coreBusy.proxy)} of the run, core 1 busy ${percent(coreBusy.cpu1)}, core 0 ${percent(coreBusy.cpu0)}${errors}`);
    }
    if (options.gapMs === undefined) options.say(`  ${options.label}, round ${round}/${options.rounds}: ${describeRound(roundsOf(rows).at(-1)!)}`);
  }
  return rows;
}

/**
 * Digits kept per ratio: req/s ratios are printed as whole percents, so
 * they keep four decimals and are rounded once; p99 and CPU ratios are printed as x.xx×.
 */
const RATIO_SCALE = { rps: 10_000, p99Ms: 100, cpuUsPerRequest: 100 } as const;

/** One contender's figure over another's, round by round, and the median of the rounds `counts` keeps (every round by default). */
function ratioByRound(rows: readonly PerCoreRow[], field: keyof typeof RATIO_SCALE, numerator: Role, denominator: Role, counts: (round: number) => boolean = () => true): RoundRatios {
  const scale = RATIO_SCALE[field];
  const of = (role: Role, round: number) => rows.find((r) => r.contender === PER_CORE_NAMES[role] && r.round === round)!;
  const all = [...new Set(rows.map((r) => r.round))];
  const perRound = all.map((round) => Math.round((of(numerator, round)[field] / of(denominator, round)[field]) * scale) / scale);
  const rounds = all.filter(counts);
  const kept = perRound.filter((_, i) => counts(all[i]!));
  return { perRound, median: kept.length ? Math.round(median(kept) * scale) / scale : null, rounds };
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
  return { gapMs, rows, p99: { sempre: ratioByRound(rows, 'p99Ms', 'sempre', 'haproxy'), floor: ratioByRound(rows, 'p99Ms', 'floor', 'haproxy') } };
}

/** sempre at its maximum rate (wrk on core 0, as in the rounds) for `seconds`, its RSS read every 30 s. */
function memorySoak(lab: LabState, seconds: number, say: (line: string) => void): MemorySoak {
  const sempre = PER_CORE.find((c) => c.name === PER_CORE_NAMES.sempre)!;
  const samples: MemorySoak['samples'] = [];
  let requests = 0;
  for (let at = 0; at < seconds;) {
    const step = Math.min(30, seconds - at);
    requests += wrkOnCore0(sempre.url(lab), step).requests;
    at += step;
    const rss = sempreRssMb(lab);
    samples.push({ atS: at, rssMb: rss.tree, workerRssMb: rss.worker, pssMb: rss.treePss });
    say(`  memory: ${at}/${seconds} s at full rate, sempre's RSS ${rss.tree} MB (its worker ${rss.worker} MB; PSS of both ${rss.treePss} MB)`);
  }
  const last = samples.at(-1);
  return { seconds, rps: Math.round(requests / seconds), samples, rssMb: last?.rssMb ?? NaN, workerRssMb: last?.workerRssMb ?? NaN, pssMb: last?.pssMb ?? NaN };
}

/** The per-core result in one line, for the bench's progress: the cost per request first, then the req/s ratio of the saturated rounds. */
export function perCoreSummary(result: PerCoreResult): string {
  const { cpuUsPerRequest: us, cost, rps } = result;
  const heldBack = result.rounds.filter((r) => r.heldBack).map((r) => r.round);
  const memory = result.memory ? `; ${result.memory.rssMb} MB (worker ${result.memory.workerRssMb} MB, PSS of both ${result.memory.pssMb} MB) after ${result.memory.seconds} s at ${result.memory.rps} req/s` : '';
  return `  CPU per request (median of ${result.rounds.length} rounds): HAProxy ${us.haproxy} µs, the floor ${us.floor} µs, sempre ${us.sempre} µs: sempre ${cost.sempreOverHaproxy.median}× HAProxy's, ${cost.sempreOverFloor.median}× the floor's. `
    + `req/s, from rounds with both proxies saturated: sempre over HAProxy ${rpsMedian(rps.sempreOverHaproxy)}, the floor over HAProxy ${rpsMedian(rps.floorOverHaproxy)}${heldBack.length ? ` (HAProxy held back by the client side in round${heldBack.length === 1 ? '' : 's'} ${heldBack.join(', ')})` : ''}. `
    + `p99 ${result.p99.sempre.median}× HAProxy's at full rate and ${result.paced.p99.sempre.median}× at a shared moderate load; RSS ${result.rssMb.sempreTree} MB (worker ${result.rssMb.sempreWorker} MB; the floor ${result.rssMb.floor} MB)${memory}`;
}

/** A req/s median as a percent with the rounds it is of, or that no round counted. */
export function rpsMedian(ratio: RoundRatios): string {
  if (ratio.median === null) return 'none (no round with both proxies saturated)';
  return `${percent(ratio.median)} (round${ratio.rounds.length === 1 ? '' : 's'} ${ratio.rounds.join(', ')})`;
}
