// A rolling deploy through the balancer: one instance at a time, it asks for
// maintenance (the balancer writes the KV flag, the instance's own agent
// applies it), waits until the balancer stopped routing to it and its
// in-flight requests finished, runs the restart command, waits until the
// agent's check passes on the new version, lifts maintenance and waits until
// the balancer serves it at full weight. A new version that never turns
// healthy stops the deploy with that instance left out of rotation.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DashboardInstance, DashboardSnapshot } from '../balancer/observe/dashboard-model.ts';
import type { DeployOptions } from './deploy-options.ts';

export type DeployPhase = 'precheck' | 'maintenance' | 'drain' | 'restart' | 'healthy' | 'serving';

export interface DeployStep {
  instance: string;
  phase: DeployPhase;
  ms: number;
  detail: string;
}

export interface DeployResult {
  ok: boolean;
  version: string;
  updated: string[];
  steps: DeployStep[];
  failure?: { instance: string; phase: DeployPhase; reason: string; leftInMaintenance: boolean };
  totalMs: number;
}

export class DeployFailure extends Error {
  readonly phase: DeployPhase;
  constructor(phase: DeployPhase, message: string) {
    super(message);
    this.phase = phase;
  }
}

const SERVING = new Set(['healthy', 'slow-start', 'held']);

export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);
}

/** Quotes a value for sh, so an address or version can never become shell syntax. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface DeployHooks {
  say: (line: string) => void;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

export async function rollingDeploy(options: DeployOptions, hooks: DeployHooks): Promise<DeployResult> {
  const started = Date.now();
  const admin = options.admin.origin;
  const steps: DeployStep[] = [];
  const updated: string[] = [];

  const forService = options.service ? `?service=${encodeURIComponent(options.service)}` : '';
  async function snapshot(): Promise<DashboardSnapshot> {
    const response = await fetch(`${admin}/_sempre/dashboard${forService}`, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new DeployFailure('precheck', `the balancer at ${admin} answered HTTP ${response.status}`);
    const seen = (await response.json()) as DashboardSnapshot & { services?: string[] };
    // A balancer in front of several services (--routing routes): the deploy must name one.
    const services = seen.services ?? [seen.service];
    if (!options.service && services.length > 1) throw new DeployFailure('precheck', `the balancer routes several services (${services.join(', ')}): name one with --service`);
    if (options.service && seen.service !== options.service) throw new DeployFailure('precheck', `the balancer does not route a service "${options.service}" (it routes ${services.join(', ') || 'none yet'})`);
    return seen;
  }

  async function instance(id: string): Promise<DashboardInstance | undefined> {
    return (await snapshot()).instances.find((i) => i.id === id);
  }

  async function setMaintenance(id: string, enable: boolean): Promise<void> {
    const response = await fetch(`${admin}/_sempre/instances/${encodeURIComponent(id)}/maintenance${forService}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ enable, reason: `deploy ${options.version}` }),
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok) throw new DeployFailure('maintenance', `the balancer refused maintenance ${enable ? 'on' : 'off'} for ${id}: HTTP ${response.status} ${(await response.text()).trim()}`);
  }

  /** Polls until `check` returns a value; the last thing seen goes in the error. */
  async function until<T>(phase: DeployPhase, what: string, timeoutMs: number, check: () => Promise<T | undefined>, seen: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (hooks.signal.aborted) throw new DeployFailure(phase, 'interrupted');
      try {
        const value = await check();
        if (value !== undefined) return value;
      } catch (error) {
        if (error instanceof DeployFailure) throw error;
      }
      if (Date.now() >= deadline) throw new DeployFailure(phase, `${what}: not within ${Math.round(timeoutMs / 1000)} s (${seen()})`);
      await sleep(200);
    }
  }

  function step(id: string, phase: DeployPhase, since: number, detail: string): void {
    const ms = Date.now() - since;
    steps.push({ instance: id, phase, ms, detail });
    hooks.say(`  ${id}: ${detail} (${(ms / 1000).toFixed(1)} s)`);
  }

  function runRestart(target: DashboardInstance): Promise<string> {
    const values = { id: target.id, node: target.node, address: target.address, version: options.version };
    const quoted = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, shellQuote(v)]));
    const command = fillTemplate(options.restart, quoted);
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, SEMPRE_DEPLOY_ID: target.id, SEMPRE_DEPLOY_NODE: target.node, SEMPRE_DEPLOY_ADDRESS: target.address, SEMPRE_DEPLOY_VERSION: options.version },
      });
      let output = '';
      const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-2000); };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => child.kill('SIGTERM'), options.restartTimeout);
      child.on('error', (error) => { clearTimeout(timer); reject(new DeployFailure('restart', `cannot run the restart command: ${error.message}`)); });
      child.on('exit', (code, sig) => {
        clearTimeout(timer);
        const tail = output.trim().split('\n').slice(-5).join(' | ');
        if (code === 0) resolve(tail);
        else reject(new DeployFailure('restart', `the restart command ${sig ? `was killed (${sig}${sig === 'SIGTERM' ? ', timed out' : ''})` : `exited ${code}`}${tail ? `: ${tail}` : ''}`));
      });
    });
  }

  const first = await snapshot();
  const targets = options.instances.length > 0 ? options.instances : first.instances.map((i) => i.id).sort();
  const unknown = targets.filter((id) => !first.instances.some((i) => i.id === id));
  if (unknown.length > 0) throw new DeployFailure('precheck', `deploy.instances: no instance ${unknown.join(', ')} behind this balancer; it knows ${first.instances.map((i) => i.id).join(', ') || 'none'}`);
  if (targets.length === 0) throw new DeployFailure('precheck', 'the balancer knows no instance to update');
  hooks.say(`deploying ${options.version} to ${targets.join(', ')}, one at a time`);

  for (const id of targets) {
    let phase: DeployPhase = 'precheck';
    let restarted = false;
    try {
      let since = Date.now();
      const now = await snapshot();
      const others = now.instances.filter((i) => i.id !== id && SERVING.has(i.state));
      if (others.length < options.minServing) {
        throw new DeployFailure('precheck', `only ${others.length} other instance(s) serving (${others.map((i) => i.id).join(', ') || 'none'}); taking ${id} out needs ${options.minServing}`);
      }

      phase = 'maintenance';
      await setMaintenance(id, true);
      let last: DashboardInstance | undefined;
      await until(phase, `${id} out of rotation`, 15_000, async () => ((last = await instance(id))?.state === 'maintenance' ? true : undefined), () => `state ${last?.state ?? 'unknown'}`);
      step(id, phase, since, 'in maintenance: the balancer no longer sends it requests');

      phase = 'drain';
      since = Date.now();
      try {
        await until(phase, `${id}'s in-flight requests`, options.drainTimeout, async () => ((last = await instance(id))?.inFlight === 0 ? true : undefined), () => `${last?.inFlight ?? '?'} in flight`);
        step(id, phase, since, 'no request in flight');
      } catch (error) {
        if (hooks.signal.aborted) throw error;
        step(id, phase, since, `still ${last?.inFlight ?? '?'} in flight after ${options.drainTimeout} ms: restarting anyway (the app drains on SIGTERM)`);
      }

      phase = 'restart';
      since = Date.now();
      restarted = true;
      const output = await runRestart(last ?? (await instance(id))!);
      step(id, phase, since, `restarted with ${options.version}${output ? ` (${output.slice(0, 120)})` : ''}`);

      phase = 'healthy';
      since = Date.now();
      const expect = fillTemplate(options.expect, { version: options.version, id });
      await until(phase, `${id} healthy on ${options.version}`, options.healthTimeout, async () => {
        last = await instance(id);
        return last?.checkStatus === 'passing' && (!expect || last.checkOutput.includes(expect)) ? true : undefined;
      }, () => `check ${last?.checkStatus ?? 'unknown'}: ${last?.checkOutput || 'no output'}`);
      step(id, phase, since, `check passing${expect ? ` and showing "${expect}"` : ''}`);

      phase = 'serving';
      since = Date.now();
      await setMaintenance(id, false);
      await until(phase, `${id} back in rotation`, 30_000, async () => ((last = await instance(id))?.state === 'healthy' ? true : undefined), () => `state ${last?.state ?? 'unknown'}`);
      step(id, phase, since, 'serving again at full weight');
      updated.push(id);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      // Before the restart the old version is intact: put it back. After, it
      // may be broken: it stays out of rotation for a person to look at.
      let leftInMaintenance = restarted;
      if (!restarted && phase !== 'precheck') {
        try {
          await setMaintenance(id, false);
        } catch {
          leftInMaintenance = true;
        }
      }
      return { ok: false, version: options.version, updated, steps, failure: { instance: id, phase, reason, leftInMaintenance }, totalMs: Date.now() - started };
    }
  }
  return { ok: true, version: options.version, updated, steps, totalMs: Date.now() - started };
}
