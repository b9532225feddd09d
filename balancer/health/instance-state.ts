// What the balancer itself has seen of each instance: requests in flight,
// failures, passive-health ejection and slow start. This is live counters,
// kept apart from the immutable routing table (as Envoy keeps host stats
// apart from its host sets), and it works even while Consul is down.
import type { FailureKind } from './failure-kind.ts';
import type { TableDiff } from '../discovery/routing-table.ts';

export interface InstanceState {
  readonly id: string;
  outstanding: number;
  requests: number;
  failures: number;
  consecutiveFailures: number;
  ejections: number;
  ejected: boolean;
  /** Earliest time an ejected instance may be probed for readmission. */
  ejectedUntil: number;
  lastFailure: { kind: FailureKind; message: string; at: number } | undefined;
  /** Start of the slow-start ramp, or 0 when at full weight. */
  slowStartFrom: number;
  /** When the state last changed (joined, ejected, readmitted). */
  since: number;
  /** When response headers last came from this instance. */
  lastAnsweredAt: number;
}

export interface InstanceStateOptions {
  ejectAfter: number;
  ejectForMs: number;
  slowStartMs: number;
}

/** Share of its normal traffic an instance gets right at the start of slow start. */
const SLOW_START_FLOOR = 0.1;

export class InstanceStates {
  private readonly states = new Map<string, InstanceState>();
  private readonly options: InstanceStateOptions;

  constructor(options: InstanceStateOptions) {
    this.options = options;
  }

  /** Follows a routing-table change. `initial` tables are not slow-started: there is nobody to protect them from. */
  applyDiff(diff: TableDiff, now: number, initial: boolean): void {
    for (const instance of diff.added) {
      const slowStartFrom = initial || this.options.slowStartMs === 0 ? 0 : now;
      this.states.set(instance.id, { id: instance.id, outstanding: 0, requests: 0, failures: 0, consecutiveFailures: 0, ejections: 0, ejected: false, ejectedUntil: 0, lastFailure: undefined, slowStartFrom, since: now, lastAnsweredAt: now });
    }
    for (const instance of diff.removed) this.states.delete(instance.id);
  }

  get(id: string): InstanceState | undefined {
    return this.states.get(id);
  }

  all(): InstanceState[] {
    return [...this.states.values()];
  }

  isEjected(id: string): boolean {
    return this.states.get(id)?.ejected ?? false;
  }

  /** 0.1 → 1 over the slow-start period; 1 otherwise. */
  weight(id: string, now: number): number {
    const state = this.states.get(id);
    if (!state || state.slowStartFrom === 0) return 1;
    const progress = (now - state.slowStartFrom) / this.options.slowStartMs;
    if (progress >= 1) return 1;
    return SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * Math.max(0, progress);
  }

  begin(id: string): void {
    const state = this.states.get(id);
    if (state) state.outstanding += 1;
  }

  succeeded(id: string): void {
    const state = this.states.get(id);
    if (!state) return;
    state.outstanding = Math.max(0, state.outstanding - 1);
    state.requests += 1;
    state.consecutiveFailures = 0;
  }

  /** Records a failed attempt; returns true when it ejects the instance. */
  failed(id: string, kind: FailureKind, message: string, countsAgainst: boolean, now: number): boolean {
    const state = this.states.get(id);
    if (!state) return false;
    state.outstanding = Math.max(0, state.outstanding - 1);
    state.requests += 1;
    state.failures += 1;
    state.lastFailure = { kind, message, at: now };
    if (!countsAgainst) return false;
    state.consecutiveFailures += 1;
    return state.consecutiveFailures >= this.options.ejectAfter && this.eject(id, kind, message, now);
  }

  /** Response headers arrived from the instance. */
  answered(id: string, now: number): void {
    const state = this.states.get(id);
    if (state) state.lastAnsweredAt = now;
  }

  /** Ejects at once (a confirmed stall); returns false if already out. */
  eject(id: string, kind: FailureKind, message: string, now: number): boolean {
    const state = this.states.get(id);
    if (!state || state.ejected) return false;
    state.ejected = true;
    state.ejections += 1;
    state.ejectedUntil = now + this.options.ejectForMs;
    state.lastFailure = { kind, message, at: now };
    state.since = now;
    return true;
  }

  /** An attempt ended without a verdict on the instance (the client went away). */
  abandoned(id: string): void {
    const state = this.states.get(id);
    if (state) state.outstanding = Math.max(0, state.outstanding - 1);
  }

  /** The ejected instance answered its health probe: back in, ramping up. */
  readmit(id: string, now: number): void {
    const state = this.states.get(id);
    if (!state || !state.ejected) return;
    state.ejected = false;
    state.consecutiveFailures = 0;
    state.slowStartFrom = this.options.slowStartMs === 0 ? 0 : now;
    state.since = now;
    state.lastAnsweredAt = now;
  }
}
