// The heal loop: fed every probe result by the agent, it restarts an app that
// stays hung — when the policy allows (heal-policy.ts), when Consul grants a
// heal slot for the service (heal-lock.ts), after the evidence is on disk
// (evidence.ts) — then holds the slot until the app passes again or the grace
// ends, and tells Consul each step (shared/heal-report.ts) for the balancers.
// It never blocks the heartbeat: the agent keeps telling Consul the truth
// (critical) while a heal runs.
//
// Without Consul the agent does not heal: it cannot know whether another
// instance is being restarted, and a hung app is already out of rotation
// (the balancer's stall detector and Consul's TTL): it says so and waits.
import { hostname } from 'node:os';
import type { ConsulClient } from '../../shared/consul-client.ts';
import { describeConsulError } from '../../shared/consul-client.ts';
import { healReportKey, type HealReport } from '../../shared/heal-report.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ProbeResult } from '../health-probe.ts';
import type { AgentOptions } from '../options.ts';
import type { AppHandle } from './app-handle.ts';
import { collectEvidence, saveEvidence, type EvidenceRecord, type ProbeRecord } from './evidence.ts';
import { tryHealLock, type HealLock } from './heal-lock.ts';
import { HealPolicy } from './heal-policy.ts';

const KEPT_PROBES = 20;

export interface HealerDeps {
  options: AgentOptions;
  instanceId: string;
  consul: ConsulClient;
  logger: Logger;
  app: AppHandle;
  now?: () => number;
}

export interface Healer {
  /** Every probe's result, with how long it took. */
  observe(result: ProbeResult, ms: number): void;
  /** The instance is in maintenance (the dashboard's flag, a deploy): an app stopped on purpose is never restarted. */
  setMaintenance(on: boolean): void;
  stop(): Promise<void>;
}

/** The evidence as Consul gets it: no log lines and no command line (they may carry secrets); the whole record stays on the host. */
function forConsul(evidence: EvidenceRecord): Record<string, unknown> {
  const { log: _log, process, ...rest } = evidence;
  return { ...rest, process: process ? { ...process, command: undefined } : null };
}

export function createHealer(deps: HealerDeps): Healer {
  const { options, instanceId, consul, app } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'heal' });
  const policy = new HealPolicy({ healAfterMs: options.healAfter, graceMs: options.healGrace, budget: options.healBudget, windowMs: options.healWindow, healOnError: options.healOnError }, now());
  const probes: ProbeRecord[] = [];
  let busy = false;
  let heal = 0;
  let lock: HealLock | undefined;
  let firstFailure: ProbeRecord | undefined;
  let waitingForPass: ((passedAt: number) => void) | undefined;
  let lastSaid = '';
  let needsPersonSaid = false;
  let stopped = false;
  let maintenance = false;
  let lastProbe: ProbeRecord | undefined;
  /** The heal in progress, for stop() to wait on. */
  let current: Promise<void> | undefined;
  /** While another instance heals, the lock is asked for at most this often (each try is three writes to Consul). */
  let lockRetryAt = 0;

  /** Log a reason for not healing once per change, not every probe. */
  const sayOnce = (key: string, say: () => void) => {
    if (key === lastSaid) return;
    lastSaid = key;
    say();
  };

  const report = async (fields: Omit<HealReport, 'instance' | 'heal' | 'host' | 'budget' | 'healsInWindow' | 'at'>) => {
    const body: HealReport = { instance: instanceId, heal, host: hostname(), budget: options.healBudget, healsInWindow: policy.healsInWindow(now()), at: new Date(now()).toISOString(), ...fields };
    try {
      await consul.kv.set({ key: healReportKey(options.service, instanceId), value: JSON.stringify(body), timeout: 2000 } as never);
    } catch (error) {
      log.warn({ err: describeConsulError(error), outcome: body.outcome }, 'cannot tell Consul of the heal; the evidence is on this host');
    }
  };

  const waitForPass = (deadline: number) => new Promise<number | undefined>((resolve) => {
    const timer = setTimeout(() => {
      waitingForPass = undefined;
      resolve(undefined);
    }, Math.max(0, deadline - now()));
    waitingForPass = (at) => {
      clearTimeout(timer);
      waitingForPass = undefined;
      resolve(at);
    };
  });

  const healNow = async (failingForMs: number) => {
    let attempt;
    try {
      // Consul's shortest session TTL, renewed while the heal runs: a dead agent's slot frees itself within 10–20 s.
      attempt = await tryHealLock({
        consul, service: options.service, instance: instanceId, limit: options.healConcurrency, sessionTtlSeconds: 10,
        onLost: (message) => log.error({ message }, 'the heal lock was lost while this heal runs: another instance may be restarted at the same time'),
      });
    } catch (error) {
      const err = describeConsulError(error);
      if (err.statusCode === 403) sayOnce('acl', () => log.error({ err, failingForMs }, "app hung, but Consul refuses this agent's token the heal lock (403): its policy lacks session and sempre/heal-lock rights (run sempre secrets apply); not restarting it"));
      else sayOnce('no-consul', () => log.error({ err, failingForMs }, 'app hung, but Consul cannot be reached to take the heal lock: not restarting it (another instance may be restarting); the balancer keeps traffic away from it'));
      return;
    }
    if (!attempt.held) {
      lockRetryAt = now() + 5000;
      sayOnce(`locked:${attempt.why}`, () => log.warn({ why: attempt.why, failingForMs }, 'app hung; waiting for the heal lock'));
      return;
    }
    lock = attempt.held;
    try {
      await healHoldingLock(failingForMs);
    } finally {
      await lock?.release();
      lock = undefined;
    }
  };

  const healHoldingLock = async (failingForMs: number) => {
    if (!lock || stopped) return;
    heal += 1;
    lastSaid = '';
    const probeOutput = firstFailure?.output ?? '';
    let evidence: EvidenceRecord | undefined;
    let evidenceFile: string | null = null;
    try {
      evidence = await collectEvidence({ instance: instanceId, pid: await app.pid(), host: options.appHost, port: options.port, probes: [...probes], logTail: () => app.logTail() });
      evidenceFile = await saveEvidence(options.evidenceDir, evidence, options.evidenceKeep);
    } catch (error) {
      log.error({ err: (error as Error).message }, 'could not record the evidence; restarting anyway');
    }
    const diagnosis = evidence?.diagnosis ?? 'evidence not recorded';
    // Taking the lock and the evidence took a second or more: the app may have recovered meanwhile.
    if (lastProbe?.healthy || maintenance || stopped) {
      log.info({ diagnosis, evidence: evidenceFile }, maintenance ? 'put in maintenance meanwhile: not restarting it' : 'the app recovered before the restart: not restarting it');
      return;
    }
    log.warn({ diagnosis, evidence: evidenceFile, failingForMs, probe: probeOutput, holders: lock.holders, how: app.how }, `app hung for ${Math.round(failingForMs / 1000)} s (${diagnosis}): restarting it`);
    // The record itself goes to Consul too (a few KB): the dashboard shows it one click away.
    const shown = evidence ? { evidence: forConsul(evidence) } : {};
    await report({ outcome: 'restarting', diagnosis, probe: probeOutput, failingForMs, outForMs: null, evidenceFile, detail: app.how, ...shown });
    const outSince = firstFailure?.at ?? now() - failingForMs;
    let done: string;
    try {
      done = await app.restart();
    } catch (error) {
      const message = (error as Error).message.slice(0, 300);
      policy.acted(now());
      log.error({ err: message, how: app.how }, 'could not restart the app');
      await report({ outcome: 'restart-failed', diagnosis, probe: probeOutput, failingForMs, outForMs: null, evidenceFile, detail: message });
      return;
    }
    policy.acted(now());
    log.info({ done, graceMs: options.healGrace }, 'restart asked for; waiting for the app to pass');
    const passedAt = await waitForPass(now() + options.healGrace);
    if (stopped) return; // the agent is stopping: the lock is released on the way out
    if (passedAt !== undefined) {
      log.info({ outForMs: passedAt - outSince, diagnosis }, 'app passes again after the restart');
      await report({ outcome: 'healed', diagnosis, probe: probeOutput, failingForMs, outForMs: passedAt - outSince, evidenceFile, detail: done, ...shown });
    } else {
      log.error({ graceMs: options.healGrace }, 'app did not pass within the grace after the restart');
      await report({ outcome: 'not-back', diagnosis, probe: probeOutput, failingForMs, outForMs: null, evidenceFile, detail: done, ...shown });
    }
  };

  const consider = () => {
    if (busy || stopped) return;
    if (maintenance) {
      if (lastProbe && !lastProbe.healthy) sayOnce('maintenance', () => log.info('app down while in maintenance (stopped on purpose?): not healing it'));
      return;
    }
    const decision = policy.decide(now());
    if (decision.act) {
      if (now() < lockRetryAt) return;
      busy = true;
      current = healNow(decision.failingForMs).catch((error: unknown) => log.error({ err: (error as Error).message }, 'heal failed')).finally(() => {
        busy = false;
        current = undefined;
      });
      return;
    }
    if (decision.why === 'budget-spent' && !needsPersonSaid) {
      needsPersonSaid = true;
      const diagnosis = `still hung after ${policy.healsInWindow(now())} restart(s) within ${Math.round(options.healWindow / 60_000)} min: a person is needed`;
      log.error({ budget: options.healBudget, probe: probes.at(-1)?.output }, `${diagnosis}; not restarting it again`);
      void report({ outcome: 'needs-person', diagnosis, probe: probes.at(-1)?.output ?? '', failingForMs: firstFailure ? now() - firstFailure.at : 0, outForMs: null, evidenceFile: null, detail: `--heal-budget ${options.healBudget} per ${Math.round(options.healWindow / 60_000)} min` });
    }
    if (decision.why === 'not-fixable') {
      sayOnce('not-fixable', () => {
        const why = 'it answers its health endpoint with an error: not restarted (a restart does not fix a dependency that is down; --heal-on-error to restart anyway)';
        log.warn({ probe: probes.at(-1)?.output }, `app unhealthy, but ${why}`);
        void report({ outcome: 'not-fixable', diagnosis: why, probe: probes.at(-1)?.output ?? '', failingForMs: 0, outForMs: null, evidenceFile: null, detail: '' });
      });
    }
  };

  return {
    observe(result, ms) {
      const record: ProbeRecord = { at: now(), healthy: result.healthy, ...(result.failure ? { failure: result.failure } : {}), output: result.output, ms: Math.round(ms) };
      probes.push(record);
      lastProbe = record;
      if (probes.length > KEPT_PROBES) probes.shift();
      if (result.healthy) {
        waitingForPass?.(record.at);
        firstFailure = undefined;
        needsPersonSaid = false;
        if (lastSaid) lastSaid = '';
      } else firstFailure ??= record;
      policy.observe(result, record.at);
      consider();
    },
    setMaintenance(on) {
      maintenance = on;
    },
    async stop() {
      stopped = true;
      waitingForPass?.(now());
      await current; // it releases the lock on its way out
    },
  };
}
