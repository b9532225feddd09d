// What happened, in order: instances joining and leaving, ejections with their
// cause, check failures with the agent's output, maintenance, and Consul
// becoming unreachable and back. Kept in memory for the dashboard.

export type EventKind =
  | 'joined' | 'left' | 'ejected' | 'readmitted'
  | 'check-critical' | 'check-passing' | 'maintenance-on' | 'maintenance-off'
  | 'registered' | 'deregistered'
  | 'consul-unreachable' | 'consul-reachable'
  | 'fail-open-on' | 'fail-open-off'
  | 'heal';

export interface DashboardEvent {
  id: number;
  at: number;
  kind: EventKind;
  instance?: string;
  /** refused, reset, timeout, stall, 5xx, check, maintenance, … */
  cause?: string;
  detail?: string;
}

export class EventLog {
  private readonly events: DashboardEvent[] = [];
  private nextId = 1;
  private readonly capacity: number;
  private readonly listeners: Array<(event: DashboardEvent) => void> = [];

  constructor(capacity = 500) {
    this.capacity = capacity;
  }

  add(event: Omit<DashboardEvent, 'id'>): DashboardEvent {
    const full = { id: this.nextId++, ...event };
    this.events.push(full);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    for (const listener of this.listeners) listener(full);
    return full;
  }

  onEvent(listener: (event: DashboardEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Newest last. */
  recent(count: number): DashboardEvent[] {
    return this.events.slice(-count);
  }
}
