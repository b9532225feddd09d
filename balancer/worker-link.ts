// With --workers, the worker processes act as one balancer:
// - a passive-health verdict (ejection, readmission) reached by one worker is
//   sent through the primary to every other worker, which applies it at once
//   (no other worker keeps sending to an instance one of them saw fail);
// - every worker sends its counters to the primary twice a second, which
//   passes them to worker 0, whose admin listener serves status, metrics and
//   the dashboard for all workers together.
// The primary only relays: it holds no state of its own.
import cluster, { type Worker } from 'node:cluster';
import type { FailureKind } from './health/failure-kind.ts';
import type { SecondPoint } from './observe/traffic-series.ts';
import type { CountersSnapshot } from './proxy/proxy-counters.ts';

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
}

/** What one worker reports of itself. */
export interface WorkerSnapshot {
  worker: number;
  services: Record<string, ServiceSnapshot>;
}

type Message = { sempre: 'verdict'; from: number; verdict: Verdict } | { sempre: 'snapshot'; from: number; snapshot: WorkerSnapshot };

const isMessage = (value: unknown): value is Message => typeof value === 'object' && value !== null && 'sempre' in value;

export interface WorkerLink {
  /** This worker's index (0 when not in cluster mode). */
  readonly index: number;
  /** Tell the other workers about a verdict reached here. */
  share(verdict: Verdict): void;
  /** The other workers' latest reports (worker 0 only; empty elsewhere). */
  others(): WorkerSnapshot[];
  stop(): void;
}

/** The worker side. Outside cluster mode it does nothing. */
export function linkWorker(options: { index: number; onVerdict: (verdict: Verdict, from: number) => void; report: () => WorkerSnapshot; reportEveryMs?: number }): WorkerLink {
  if (!cluster.isWorker || !process.send) return { index: 0, share: () => undefined, others: () => [], stop: () => undefined };
  const latest = new Map<number, WorkerSnapshot>();
  const onMessage = (message: unknown) => {
    if (!isMessage(message) || message.from === options.index) return;
    if (message.sempre === 'verdict') options.onVerdict(message.verdict, message.from);
    else latest.set(message.from, message.snapshot);
  };
  process.on('message', onMessage);
  const send = (message: Message) => {
    if (process.connected) process.send!(message);
  };
  const timer = options.index === 0 ? undefined : setInterval(() => send({ sempre: 'snapshot', from: options.index, snapshot: options.report() }), options.reportEveryMs ?? 500);
  timer?.unref();
  return {
    index: options.index,
    share: (verdict) => send({ sempre: 'verdict', from: options.index, verdict }),
    others: () => [...latest.values()],
    stop: () => {
      clearInterval(timer);
      process.off('message', onMessage);
    },
  };
}

/** The primary side: verdicts to every other worker, reports to worker 0. */
export function relayBetweenWorkers(workers: () => Map<number, Worker>): void {
  cluster.on('message', (sender, message: unknown) => {
    if (!isMessage(message)) return;
    for (const [index, worker] of workers()) {
      if (worker === sender || !worker.isConnected()) continue;
      if (message.sempre === 'verdict' || index === 0) worker.send(message);
    }
  });
}
