// One drill: constant load from the lab's client host, one fault injected at
// --at for --for, a timeline of state changes, and the metrics. The fault is
// always reverted: when it ends, when the drill fails, and on Ctrl-C. A
// fault that lasts until healed (hung-*) ends when the target's agent reports
// the heal; the load then runs until the target serves again, and a little
// longer, so the time to full redundancy is in the records.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lab/consul-binary.ts';
import { appHosts, type LabState } from '../lab/netns-lab.ts';
import { waitFor } from '../lab/processes.ts';
import { ALL_FAULTS, findFault, SINGLE_BALANCER_FAULTS } from './faults/index.ts';
import type { FaultOutcome, Front, Revert } from './faults/fault.ts';
import { keeperMissing } from './faults/balancer-control.ts';
import { computeMetrics, type DrillMetrics, type FaultWindow, type TimelineEvent } from './metrics.ts';
import type { RequestRecord } from './records.ts';
import type { HealReport } from '../shared/heal-report.ts';
import { waitForHeal } from './heal-wait.ts';
import { pollTimeline } from './timeline.ts';

export interface DrillOptions {
  fault: string;
  target: string;
  atMs: number;
  forMs: number;
  rate: number;
  durationMs: number;
  method: string;
  path: string;
  /** Send the load here instead of the lab's balancer (benchmarks of other proxies). */
  url?: string;
  /** The client tries once more after a connection failure (1 s later), with a 2 s timeout per try. */
  clientRetry?: boolean;
}

export interface DrillResult {
  options: DrillOptions;
  /** Wall-clock ms when the load started: records, the fault window and the timeline count from it. */
  startedAt: number;
  fault: FaultWindow;
  records: RequestRecord[];
  timeline: TimelineEvent[];
  metrics: DrillMetrics;
  /** A fault that lasts until healed: the report that ended it; null when none came. */
  heal?: HealReport | null;
  /** A fault that measures its own action (balancer-reload, balancer-restart): what it did, how it went, how long it took. */
  faultOutcome?: FaultOutcome;
}

export interface DrillHooks {
  say: (line: string) => void;
  interrupted: AbortSignal;
  /** The proxy under the load when it is not the lab's balancer (the bench's contenders), for balancer-reload and balancer-restart. */
  front?: Front;
}

export class DrillError extends Error {}

/** Beyond the lab's --heal-after: the evidence (a second of CPU), the lock, the restart, the app passing again. */
export const HEAL_ALLOWANCE_MS = 30_000;
/** After the target serves again, the load goes on this long (at least to --duration). */
const AFTER_HEAL_MS = 2000;

/** Checks the request against the lab before anything is injected. */
export function validateDrill(options: DrillOptions, lab: LabState, front?: Front): void {
  if (!findFault(options.fault)) throw new DrillError(`drill.fault: unknown fault "${options.fault}"; one of ${ALL_FAULTS.map((f) => f.name).join(', ')}`);
  const missing = SINGLE_BALANCER_FAULTS.some((f) => f.name === options.fault) && !front ? keeperMissing(lab) : '';
  if (missing) throw new DrillError(`drill.fault: ${options.fault} needs the single balancer host's keeper; ${missing}`);
  if (!/^app\d+$/.test(options.target) || !lab.processes[options.target]) {
    throw new DrillError(`drill.target: no app host "${options.target}" in the lab; one of ${appHosts(lab).join(', ')}`);
  }
  if (findFault(options.fault)!.lastsUntilHealed && lab.healAfterMs === undefined) {
    throw new DrillError(`drill.fault: ${options.fault} waits for the agent's heal, and this lab's agents do not heal: \`sudo ./sempre lab down\` and up again`);
  }
  if (options.atMs + options.forMs > options.durationMs) throw new DrillError(`drill.for: the fault (at ${options.atMs} ms for ${options.forMs} ms) must end within --duration (${options.durationMs} ms)`);
}

/** Waits until the balancer routes to every app host of the lab again. */
export async function waitForFullRotation(lab: LabState, timeoutMs = 60_000): Promise<void> {
  const apps = appHosts(lab);
  await waitFor(`every instance (${apps.join(', ')}) back in rotation`, async () => {
    const status = (await (await fetch(`${lab.adminUrl}/_sempre/status`, { signal: AbortSignal.timeout(1000) })).json()) as { instances: Array<{ id: string; state: string }> };
    return apps.every((id) => status.instances.some((i) => i.id === id && i.state === 'healthy'));
  }, timeoutMs, 200);
}

export interface LabLoad {
  /** Every finished request so far, in completion order. */
  records: RequestRecord[];
  /** Wall-clock ms when the load started (records' intendedMs count from it). */
  startedAt: number;
  finished: Promise<void>;
  worker: ChildProcess;
}

/** A constant load from the lab's client host (its own namespace), as real visitors would send it. */
export async function startLabLoad(lab: LabState, options: { url: string; rate: number; durationMs: number; method: string; path: string; clientRetry?: boolean }): Promise<LabLoad> {
  const worker = spawn('ip', ['netns', 'exec', lab.hosts.client!.namespace, process.execPath, join(PROJECT_ROOT, 'drill/load-worker.ts'),
    '--url', options.url, '--rate', String(options.rate), '--duration', String(options.durationMs), '--method', options.method, '--path', options.path,
    ...(options.clientRetry ? ['--retry-once', '--timeout', '2000'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const records: RequestRecord[] = [];
  let startedAt = 0;
  const started = new Promise<void>((resolve) => {
    createInterface({ input: worker.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as RequestRecord | { startedAt: number };
      if ('startedAt' in parsed) {
        startedAt = parsed.startedAt;
        resolve();
      } else records.push(parsed);
    });
  });
  const finished = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  await started;
  return { records, startedAt, finished, worker };
}

export async function runDrill(options: DrillOptions, lab: LabState, hooks: DrillHooks): Promise<DrillResult> {
  validateDrill(options, lab, hooks.front);
  const fault = findFault(options.fault)!;
  await waitForFullRotation(lab);
  const healing = fault.lastsUntilHealed === true;
  const healWaitMs = (lab.healAfterMs ?? 0) + HEAL_ALLOWANCE_MS;
  // Long enough for the heal; stopped early once the target serves again.
  const loadMs = healing ? Math.max(options.durationMs, options.atMs + healWaitMs + AFTER_HEAL_MS) : options.durationMs;

  const load = await startLabLoad(lab, { url: options.url ?? lab.vipUrl ?? lab.url, rate: options.rate, durationMs: loadMs, method: options.method, path: options.path, clientRetry: options.clientRetry });
  const { records, startedAt, finished, worker } = load;
  const timeline = pollTimeline(lab, startedAt);
  const window: FaultWindow = { name: fault.name, target: options.target, startMs: options.atMs, endMs: options.atMs + options.forMs };
  let revert: Revert | undefined;
  let active = false;
  let heal: HealReport | null = null;
  let faultOutcome: FaultOutcome | undefined;
  const elapsed = () => Date.now() - startedAt;
  const progress = setInterval(() => {
    const failed = records.filter((r) => r.errorClass !== 'ok').length;
    const phase = active ? `${fault.name} on ${options.target}${healing ? ': waiting for its agent to heal it' : ''}` : elapsed() < window.startMs ? 'before the fault' : 'after the fault';
    hooks.say(`  t=${(elapsed() / 1000).toFixed(0).padStart(3)} s  requests ${String(records.length).padStart(6)}  failed ${String(failed).padStart(4)}  ${phase}`);
  }, 1000);
  const sleepUntil = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms - elapsed()));
    hooks.interrupted.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
  try {
    await sleepUntil(window.startMs);
    if (hooks.interrupted.aborted) throw new DrillError('interrupted before the fault');
    window.startMs = elapsed();
    revert = await fault.inject({ lab, target: options.target, say: (m) => hooks.say(`  · ${m}`), setTarget: (name) => { window.target = name; }, front: hooks.front, report: (outcome) => { faultOutcome = outcome; } });
    active = true;
    hooks.say(`  fault ${fault.name} injected on ${options.target} at t=${(window.startMs / 1000).toFixed(1)} s`);
    if (healing) {
      heal = await waitForHeal(lab, options.target, startedAt + window.startMs, healWaitMs, hooks.interrupted);
      hooks.say(heal ? `  ${options.target}'s agent: ${heal.outcome} (${heal.diagnosis})` : `  no heal of ${options.target} reported within ${healWaitMs / 1000} s`);
    } else await sleepUntil(options.atMs + options.forMs);
  } catch (error) {
    // A fault that could not be injected (or a wait that failed) must not leave the load and the timers running.
    worker.kill('SIGTERM');
    clearInterval(progress);
    timeline.stop();
    throw error;
  } finally {
    try {
      if (revert) {
        // A heal ends the fault when the agent says the app passes again.
        window.endMs = heal ? Math.max(window.startMs, Date.parse(heal.at) - startedAt) : elapsed();
        active = false;
        await revert();
        hooks.say(`  fault ${fault.name} reverted at t=${(window.endMs / 1000).toFixed(1)} s`);
      }
    } catch (error) {
      // A revert that failed must not leave the load and the timers running.
      worker.kill('SIGTERM');
      clearInterval(progress);
      timeline.stop();
      throw error;
    }
    if (hooks.interrupted.aborted) worker.kill('SIGTERM');
  }
  if (healing && !hooks.interrupted.aborted) {
    // The records must show the target serving again: the load runs until it does, then a little longer.
    await waitFor(`${options.target} to serve again`, () => hooks.interrupted.aborted || records.some((r) => r.servedBy === options.target && r.intendedMs >= window.endMs), Math.max(1000, loadMs - elapsed() - AFTER_HEAL_MS), 100).catch(() => undefined);
    await sleepUntil(Math.max(options.durationMs, elapsed() + AFTER_HEAL_MS));
    worker.kill('SIGTERM');
  }
  await finished;
  clearInterval(progress);
  timeline.stop();
  if (hooks.interrupted.aborted) throw new DrillError('drill interrupted: the fault was reverted');
  records.sort((a, b) => a.intendedMs - b.intendedMs);
  return { options, startedAt, fault: window, records, timeline: timeline.events, metrics: computeMetrics(records, timeline.events, window), ...(healing ? { heal } : {}), ...(faultOutcome ? { faultOutcome } : {}) };
}
