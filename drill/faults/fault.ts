// What every fault is: it injects itself and returns the function that
// reverts it. The drill calls the revert in a finally block and on Ctrl-C,
// so no fault outlives its drill.
import type { LabState } from '../../lab/netns-lab.ts';

export type Revert = () => Promise<void>;

export interface FaultContext {
  lab: LabState;
  /** The app host the fault is aimed at (app1, app2, …). */
  target: string;
  say: (message: string) => void;
  /** For faults that create their target (scale-out): names it for the metrics. */
  setTarget?: (name: string) => void;
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
