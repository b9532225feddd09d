// The per-core comparison: HAProxy with one thread and one sempre process,
// each pinned to core 1, with wrk and every lab process (apps, Consul,
// agents) pinned to core 0, in alternating rounds of the same run. Affinity
// is restored afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAlive, type LabState } from '../lab/netns-lab.ts';
import { PER_CORE } from './contenders.ts';

export interface PerCoreRow {
  contender: string;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the proxy process spent per request (user + system), from /proc. */
  cpuUsPerRequest: number;
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
  sempreRssMb: number;
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

function wrkOnCore0(url: string, seconds: number): { rps: number; p50: number; p99: number; requests: number } {
  const out = execFileSync('taskset', ['-c', '0', 'wrk', '-t1', '-c32', `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const toMs = (text: string | undefined) => {
    const m = /([\d.]+)(us|ms|s)/.exec(text ?? '');
    return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  };
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1]),
    p99: toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
  };
}

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system, all threads) a lab process has used so far. */
function cpuSeconds(lab: LabState, name: string): number {
  const proc = lab.processes[name];
  if (!proc || !isAlive(proc.pid)) return NaN;
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** The pinned processes' RSS, from /proc (the node process under taskset and ip netns exec). */
function rssMb(lab: LabState, name: string): number {
  const proc = lab.processes[name];
  if (!proc || !isAlive(proc.pid)) return NaN;
  const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024);
}

export async function runPerCore(lab: LabState, options: { seconds: number; rounds: number; memorySeconds: number; say: (line: string) => void }): Promise<PerCoreResult> {
  const labPids = Object.values(lab.processes).filter((p) => isAlive(p.pid)).map((p) => p.pid);
  for (const pid of labPids) pin(pid, '0');
  const rows: PerCoreRow[] = [];
  try {
    for (const c of PER_CORE) await c.start(lab);
    for (const c of PER_CORE) wrkOnCore0(c.url(lab), 2); // warm-up: JIT, keep-alive pools
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const c of PER_CORE) {
        const cpuBefore = cpuSeconds(lab, `bench-${c.name}`);
        const w = wrkOnCore0(c.url(lab), options.seconds);
        const cpuUsPerRequest = Math.round(((cpuSeconds(lab, `bench-${c.name}`) - cpuBefore) * 1e6) / w.requests);
        rows.push({ contender: c.name, round, rps: w.rps, p50Ms: w.p50, p99Ms: w.p99, cpuUsPerRequest });
        options.say(`  per core, round ${round}/${options.rounds}: ${c.name} ${Math.round(w.rps)} req/s, p50 ${w.p50} ms, p99 ${w.p99} ms, ${cpuUsPerRequest} µs of CPU per request`);
      }
    }
    const sempreRssMb = rssMb(lab, 'bench-sempre-1core');
    const of = (name: string, round: number) => rows.find((r) => r.contender === name && r.round === round)!;
    const rounds = Array.from({ length: options.rounds }, (_v, i) => i + 1);
    const roundRatios = rounds.map((r) => Math.round((of('sempre-1core', r).rps / of('haproxy-1core', r).rps) * 1000) / 1000);
    const roundP99Ratios = rounds.map((r) => Math.round((of('sempre-1core', r).p99Ms / of('haproxy-1core', r).p99Ms) * 100) / 100);
    const memory = options.memorySeconds > 0 ? memorySoak(lab, options.memorySeconds, options.say) : null;
    return {
      rows,
      roundRatios,
      ratio: Math.round(median(roundRatios) * 1000) / 1000,
      roundP99Ratios,
      p99Ratio: Math.round(median(roundP99Ratios) * 100) / 100,
      sempreRssMb,
      memory,
    };
  } finally {
    for (const c of PER_CORE) await c.stop(lab);
    for (const pid of labPids) if (isAlive(pid)) pin(pid, `0-${availableParallelism() - 1}`);
  }
}

/** sempre at its maximum rate (wrk on core 0, as in the rounds) for `seconds`, its RSS read every 30 s. */
function memorySoak(lab: LabState, seconds: number, say: (line: string) => void): MemorySoak {
  const sempre = PER_CORE.find((c) => c.name === 'sempre-1core')!;
  const samples: MemorySoak['samples'] = [];
  let requests = 0;
  for (let at = 0; at < seconds;) {
    const step = Math.min(30, seconds - at);
    requests += wrkOnCore0(sempre.url(lab), step).requests;
    at += step;
    samples.push({ atS: at, rssMb: rssMb(lab, 'bench-sempre-1core') });
    say(`  memory: ${at}/${seconds} s at full rate, sempre's RSS ${samples.at(-1)!.rssMb} MB`);
  }
  return { seconds, rps: Math.round(requests / seconds), samples, rssMb: samples.at(-1)?.rssMb ?? NaN };
}
