// When the agent restarts its app: only for failures a restart can fix, only
// after they lasted --heal-after, never during the grace after a restart, and
// at most --heal-budget times in --heal-window — past that, a person decides.
// Pure: the heal loop feeds it probe results and asks.
import type { ProbeFailure, ProbeResult } from '../health-probe.ts';

export interface HealPolicySettings {
  healAfterMs: number;
  graceMs: number;
  budget: number;
  windowMs: number;
  /** Also heal an app whose health endpoint answers an error status (off: it says a dependency is down; a restart would not help). */
  healOnError: boolean;
}

/** Hung (no answer), refused (crashed and not coming back), reset: a restart can fix these. */
const FIXABLE: ReadonlySet<ProbeFailure> = new Set(['timeout', 'refused', 'reset']);

export type HealDecision =
  | { act: true; failingForMs: number }
  | { act: false; why: 'healthy' | 'not-fixable' | 'not-long-enough' | 'grace' | 'budget-spent' };

export class HealPolicy {
  private readonly settings: HealPolicySettings;
  private failingSince: number | undefined;
  private lastFailure: ProbeResult | undefined;
  private graceUntil = 0;
  private readonly heals: number[] = [];

  /** `startedAt`: when the agent started; the app has the grace from then too (a slow boot is not a hang). */
  constructor(settings: HealPolicySettings, startedAt?: number) {
    this.settings = settings;
    if (startedAt !== undefined) this.graceUntil = startedAt + settings.graceMs;
  }

  /** Whether this failure is one a restart can fix (under the settings). */
  fixable(result: ProbeResult): boolean {
    return !result.healthy && (FIXABLE.has(result.failure ?? 'other') || (this.settings.healOnError && result.failure === 'status'));
  }

  observe(result: ProbeResult, now: number): void {
    if (result.healthy) {
      this.failingSince = undefined;
      this.lastFailure = undefined;
      this.graceUntil = 0; // passed: the grace is over, a new failure counts from now
      return;
    }
    this.lastFailure = result;
    // A failure during the grace (a slow start) does not count.
    if (!this.fixable(result) || now < this.graceUntil) {
      this.failingSince = undefined;
      return;
    }
    this.failingSince ??= now;
  }

  decide(now: number): HealDecision {
    if (now < this.graceUntil) return { act: false, why: 'grace' };
    if (!this.lastFailure || this.failingSince === undefined) return { act: false, why: this.lastFailure && !this.fixable(this.lastFailure) ? 'not-fixable' : 'healthy' };
    const failingForMs = now - this.failingSince;
    if (failingForMs < this.settings.healAfterMs) return { act: false, why: 'not-long-enough' };
    if (this.healsInWindow(now) >= this.settings.budget) return { act: false, why: 'budget-spent' };
    return { act: true, failingForMs };
  }

  /** A restart was made: the app has --heal-grace to pass before a failure counts again. */
  acted(now: number): void {
    this.heals.push(now);
    this.graceUntil = now + this.settings.graceMs;
    this.failingSince = undefined;
  }

  healsInWindow(now: number): number {
    while (this.heals.length > 0 && this.heals[0]! <= now - this.settings.windowMs) this.heals.shift();
    return this.heals.length;
  }
}
