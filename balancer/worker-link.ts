// The worker processes of one generation (see lifecycle/main-process.ts) act as one balancer:
// - a passive-health verdict (ejection, readmission) reached by one worker is
//   sent through the primary to every other worker, which applies it at once
//   (no other worker keeps sending to an instance one of them saw fail);
// - every worker sends its counters to the primary twice a second, which
//   passes them to worker 0, whose admin listener serves status, metrics and
//   the dashboard for all workers together;
// - when a worker exits, worker 0 keeps its last counters (so the summed
//   counters never go down when the worker is started again, which
//   Prometheus would read as a reset) and drops its gauges.
// The primary only relays: it holds no state of its own.
import type { ChildProcess } from 'node:child_process';
import type { LogOutputStats } from '../shared/log-output.ts';
import type { FailureKind } from './health/failure-kind.ts';
import type { SecondPoint } from './observe/traffic-series.ts';
import { ProxyCounters, type CountersSnapshot } from './proxy/proxy-counters.ts';

export interface Verdict {
  kind: 'eject' | 'readmit';
  service: string;
  instance: string;
  failure?: FailureKind;
  cause?: string;
  message?: string;
}

/** What one worker reports of one service. */
export interface ServiceSnapshot {
  at: number;
  inFlight: number;
  tunnels: number;
  counters: CountersSnapshot;
  instances: Record<string, { requests: number; failures: number; outstanding: number; tunnels: number }>;
  /** Closed seconds of traffic since the last report. */
  seconds: SecondPoint[];
  /** The counters of worker processes that have exited: no gauges, no seconds. */
  retired?: boolean;
}

/** What one worker reports of itself. */
export interface WorkerSnapshot {
  worker: number;
  services: Record<string, ServiceSnapshot>;
  /** Its own stdout's figures (each worker writes its own lines). */
  logOutput?: LogOutputStats;
}

type Message =
  | { sempre: 'verdict'; from: number; verdict: Verdict }
  | { sempre: 'snapshot'; from: number; pid: number; snapshot: WorkerSnapshot }
  /** From the primary: worker `from` has exited. */
  | { sempre: 'gone'; from: number };

const LINK_KINDS = new Set(['verdict', 'snapshot', 'gone']);
/** The link's own messages (the main process and its workers also exchange lifecycle ones). */
const isMessage = (value: unknown): value is Message => typeof value === 'object' && value !== null && LINK_KINDS.has((value as { sempre?: unknown }).sempre as string);

export interface WorkerLink {
  /** This worker's index (0 when not in cluster mode). */
  readonly index: number;
  /** Tell the other workers about a verdict reached here. */
  share(verdict: Verdict): void;
  /**
   * The other workers' latest reports (worker 0 only; empty elsewhere), and
   * one more, marked retired, with the counters of workers that have exited.
   */
  others(): WorkerSnapshot[];
  stop(): void;
}

/** The worker side. In a process the main process did not start (tests, embedding) it does nothing. */
export function linkWorker(options: { index: number; onVerdict: (verdict: Verdict, from: number) => void; report: () => WorkerSnapshot; reportEveryMs?: number }): WorkerLink {
  if (process.env.SEMPRE_WORKER_INDEX === undefined || !process.send) return { index: 0, share: () => undefined, others: () => [], stop: () => undefined };
  const latest = new Map<number, { pid: number; snapshot: WorkerSnapshot }>();
  let retired: WorkerSnapshot | undefined;
  const retire = (index: number) => {
    const gone = latest.get(index);
    if (!gone) return;
    latest.delete(index);
    retired = retireWorker(retired, gone.snapshot, Date.now());
  };
  const onMessage = (message: unknown) => {
    if (!isMessage(message) || message.from === options.index) return;
    if (message.sempre === 'verdict') return options.onVerdict(message.verdict, message.from);
    if (message.sempre === 'gone') return retire(message.from);
    // A report from a new process under a known index: the old one exited unannounced.
    if ((latest.get(message.from)?.pid ?? message.pid) !== message.pid) retire(message.from);
    latest.set(message.from, { pid: message.pid, snapshot: message.snapshot });
  };
  process.on('message', onMessage);
  const send = (message: Message) => {
    if (process.connected) process.send!(message);
  };
  const timer = options.index === 0 ? undefined : setInterval(() => send({ sempre: 'snapshot', from: options.index, pid: process.pid, snapshot: options.report() }), options.reportEveryMs ?? 500);
  timer?.unref();
  return {
    index: options.index,
    share: (verdict) => send({ sempre: 'verdict', from: options.index, verdict }),
    others: () => [...[...latest.values()].map((l) => l.snapshot), ...(retired ? [retired] : [])],
    stop: () => {
      clearInterval(timer);
      process.off('message', onMessage);
    },
  };
}

/** The main process's side: a worker's verdicts go to every other worker of its generation, its reports to worker 0. */
export function relayFromWorker(sender: ChildProcess, message: unknown, peers: ReadonlyMap<number, ChildProcess>): void {
  if (!isMessage(message)) return;
  for (const [index, worker] of peers) {
    if (worker === sender || !worker.connected) continue;
    if (message.sempre === 'verdict' || index === 0) worker.send(message);
  }
}

/** Tell worker 0 of a generation that worker `index` has exited (its counters are kept). */
export function announceGone(index: number, peers: ReadonlyMap<number, ChildProcess>): void {
  const first = peers.get(0);
  if (index === 0 || !first?.connected) return;
  first.send({ sempre: 'gone', from: index } satisfies Message);
}

/** The retired workers' figures plus those of one more that has exited: its dropped log lines stay counted. */
export function retireWorker(retired: WorkerSnapshot | undefined, gone: WorkerSnapshot, at: number): WorkerSnapshot {
  const droppedLines = (retired?.logOutput?.droppedLines ?? 0) + (gone.logOutput?.droppedLines ?? 0);
  return { worker: -1, services: retireInto(retired?.services ?? {}, gone, at), logOutput: { droppedLines, blocked: null } };
}

/**
 * `retired` (per service) plus an exited worker's last report: its counters
 * added, its gauges (in flight, tunnels, outstanding) left out.
 */
export function retireInto(retired: Record<string, ServiceSnapshot>, gone: WorkerSnapshot, at: number): Record<string, ServiceSnapshot> {
  const out: Record<string, ServiceSnapshot> = { ...retired };
  for (const [service, snapshot] of Object.entries(gone.services)) {
    const before = out[service];
    const instances: ServiceSnapshot['instances'] = {};
    for (const [id, figures] of [...Object.entries(before?.instances ?? {}), ...Object.entries(snapshot.instances)]) {
      const known = instances[id];
      instances[id] = { requests: (known?.requests ?? 0) + figures.requests, failures: (known?.failures ?? 0) + figures.failures, outstanding: 0, tunnels: 0 };
    }
    const counters = new ProxyCounters().plus(before ? [before.counters, snapshot.counters] : [snapshot.counters]).snapshot();
    out[service] = { at, inFlight: 0, tunnels: 0, counters, instances, seconds: [], retired: true };
  }
  return out;
}
