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
}

export interface PerCoreResult {
  rows: PerCoreRow[];
  /** sempre's median req/s over HAProxy's. */
  ratio: number;
  /** sempre's median p99 over HAProxy's. */
  p99Ratio: number;
  sempreRssMb: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

function pin(pid: number, cores: string): void {
  spawnSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
}

function wrkOnCore0(url: string, seconds: number): { rps: number; p50: number; p99: number } {
  const out = execFileSync('taskset', ['-c', '0', 'wrk', '-t1', '-c32', `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const toMs = (text: string | undefined) => {
    const m = /([\d.]+)(us|ms|s)/.exec(text ?? '');
    return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  };
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN), p50: toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1]), p99: toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1]) };
}

/** The pinned processes' RSS, from /proc (the node process under taskset and ip netns exec). */
function rssMb(lab: LabState, name: string): number {
  const proc = lab.processes[name];
  if (!proc || !isAlive(proc.pid)) return NaN;
  const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024);
}

export async function runPerCore(lab: LabState, options: { seconds: number; rounds: number; say: (line: string) => void }): Promise<PerCoreResult> {
  const labPids = Object.values(lab.processes).filter((p) => isAlive(p.pid)).map((p) => p.pid);
  for (const pid of labPids) pin(pid, '0');
  const rows: PerCoreRow[] = [];
  try {
    for (const c of PER_CORE) await c.start(lab);
    for (const c of PER_CORE) wrkOnCore0(c.url(lab), 2); // warm-up: JIT, keep-alive pools
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const c of PER_CORE) {
        const w = wrkOnCore0(c.url(lab), options.seconds);
        rows.push({ contender: c.name, round, rps: w.rps, p50Ms: w.p50, p99Ms: w.p99 });
        options.say(`  per core, round ${round}: ${c.name} ${Math.round(w.rps)} req/s, p50 ${w.p50} ms, p99 ${w.p99} ms`);
      }
    }
    const sempreRssMb = rssMb(lab, 'bench-sempre-1core');
    const of = (name: string, pick: (r: PerCoreRow) => number) => median(rows.filter((r) => r.contender === name).map(pick));
    return {
      rows,
      ratio: Math.round((of('sempre-1core', (r) => r.rps) / of('haproxy-1core', (r) => r.rps)) * 1000) / 1000,
      p99Ratio: Math.round((of('sempre-1core', (r) => r.p99Ms) / of('haproxy-1core', (r) => r.p99Ms)) * 100) / 100,
      sempreRssMb,
    };
  } finally {
    for (const c of PER_CORE) await c.stop(lab);
    for (const pid of labPids) if (isAlive(pid)) pin(pid, `0-${availableParallelism() - 1}`);
  }
}
