// What happened, in order: instances joining and leaving, ejections with their
// cause, check failures with the agent's output, maintenance, and Consul
// becoming unreachable and back. Kept in memory for the dashboard, and in
// Consul by the history store (history-store.ts), so a restarted balancer
// (and the other balancer of a pair) shows them too.
import { randomBytes } from 'node:crypto';

export type EventKind =
  | 'joined' | 'left' | 'ejected' | 'readmitted'
  | 'check-critical' | 'check-passing' | 'maintenance-on' | 'maintenance-off'
  | 'registered' | 'deregistered'
  | 'consul-unreachable' | 'consul-reachable'
  | 'fail-open-on' | 'fail-open-off'
  | 'heal';

export interface DashboardEvent {
  /** Unique across processes and balancers (this process's origin, then a counter): the history store merges by it. */
  id: string;
  at: number;
  kind: EventKind;
  instance?: string;
  /** refused, reset, timeout, stall, 5xx, check, maintenance, … */
  cause?: string;
  detail?: string;
  /** The balancer that recorded it, on entries read from the history store. */
  by?: string;
  /** Read from the history store: recorded before this process started, or since by the pair's other balancer. */
  history?: 'before-restart' | 'other-balancer';
}

/** Newest first: by time, then by id (a total order, so two balancers bound a merged list alike). */
export function newestFirst(a: { at: number; id: string }, b: { at: number; id: string }): number {
  return b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export class EventLog {
  private readonly events: DashboardEvent[] = [];
  private nextId = 1;
  private readonly capacity: number;
  private readonly listeners: Array<(event: DashboardEvent) => void> = [];
  /** Makes this process's ids unique: its start time and a few random bytes. */
  private readonly origin = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

  constructor(capacity = 500) {
    this.capacity = capacity;
  }

  add(event: Omit<DashboardEvent, 'id'>): DashboardEvent {
    const full = { id: `${this.origin}.${this.nextId++}`, ...event };
    this.events.push(full);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    for (const listener of this.listeners) listener(full);
    return full;
  }

  onEvent(listener: (event: DashboardEvent) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Events read from the history store join the log in time order, once
   * each (by id), without telling the listeners: they are not new.
   * Returns how many were new here.
   */
  merge(events: readonly DashboardEvent[]): number {
    const known = new Set(this.events.map((e) => e.id));
    const fresh = events.filter((e) => !known.has(e.id) && known.add(e.id));
    if (fresh.length === 0) return 0;
    this.events.push(...fresh);
    this.events.sort((a, b) => newestFirst(b, a));
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    return fresh.length;
  }

  /** Newest last. */
  recent(count: number): DashboardEvent[] {
    return this.events.slice(-count);
  }
}
