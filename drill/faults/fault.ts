// What every fault is: it injects itself and returns the function that
// reverts it. The drill calls the revert in a finally block and on Ctrl-C,
// so no fault outlives its drill.
import type { LabState } from '../../lab/netns-lab.ts';

export type Revert = () => Promise<void>;

/**
 * What a fault measured of its own action (balancer-reload,
 * balancer-restart), kept with the drill's records: the requests say what
 * visitors saw, this says what the operator's command did and how long it took.
 */
export interface FaultOutcome {
  /** What was done, as a person would type or read it: `bin/sempre-balancer-reload --run-dir …`, `kill -9 1234 (main process)`. */
  action: string;
  /** The reload was taken, or the proxy served again (false: refused, or not back in time). */
  ok: boolean;
  /** From the action to its outcome: the reload's answer, or the first answer on a new connection after the kill. */
  durationMs: number;
  /** What it said: the reload's reason, the main PID before and after. */
  detail: string;
}

/**
 * The proxy a drill's load goes through, as balancer-reload and
 * balancer-restart act on it: the lab's balancer under its keeper by
 * default, or a bench contender (HAProxy, nginx) with what its operators and
 * its supervisor would do.
 */
export interface Front {
  name: string;
  /** Where it serves: a GET there on a new connection answers once it serves again. */
  url: string;
  /** Its main process now (undefined: none running). */
  mainPid(): number | undefined;
  /** Reloads it in place, as its operators do; resolves once it said how that went. */
  reload(): Promise<Omit<FaultOutcome, 'durationMs'>>;
  /**
   * kill -9 of its main process, and what its supervisor then does (the
   * keeper starts the balancer again; for the bench's peers, the bench does
   * what systemd would). Resolves with the action taken, once it is done;
   * the fault then waits for the proxy to serve.
   */
  crash(): Promise<string>;
}

export interface FaultContext {
  lab: LabState;
  /** The app host the fault is aimed at (app1, app2, …). */
  target: string;
  say: (message: string) => void;
  /** For faults that create their target (scale-out): names it for the metrics. */
  setTarget?: (name: string) => void;
  /** The proxy under the load when it is not the lab's balancer (the bench's contenders). */
  front?: Front;
  /** For faults that measure their own action: kept in the drill's result. */
  report?: (outcome: FaultOutcome) => void;
}

export interface Fault {
  name: string;
  summary: string;
  /**
   * The fault does not end after --for: it stays until the target's agent
   * heals the app (its heal report says so), and the drill waits for that
   * (hung-*). Its revert leaves the app healthy, healed or not.
   */
  lastsUntilHealed?: boolean;
  inject(ctx: FaultContext): Promise<Revert>;
}
