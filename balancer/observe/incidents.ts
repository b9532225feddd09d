// Incidents per instance: each time it left rotation unplanned (ejected,
// check critical, dropped by Consul) until it served again. Planned removals
// (maintenance, a draining agent) are not incidents. This is what the team
// reads to find why an instance keeps falling over: how often, for how long,
// and the causes seen each time.

export interface IncidentSummary {
  count: number;
  totalDownMs: number;
  downSince: number | null;
  /** Newest last; at most 5. */
  lastCauses: Array<{ at: number; cause: string; detail: string }>;
}

/** An instance left rotation unplanned, or served again after such a leave. */
export interface IncidentTransition {
  kind: 'left' | 'returned';
  id: string;
  at: number;
  cause: string;
  detail: string;
  /** For 'returned': how long it was out (cause and detail are those it left with). */
  downForMs?: number;
}

interface Track {
  down: boolean;
  planned: boolean;
  since: number;
  count: number;
  totalDownMs: number;
  causes: Array<{ at: number; cause: string; detail: string }>;
  /** What made it leave this time: a 'returned' alert repeats it. */
  leftCause: { cause: string; detail: string };
}

export class IncidentTracker {
  private readonly tracks = new Map<string, Track>();
  private readonly listeners: Array<(transition: IncidentTransition) => void> = [];

  /** Called once when an unplanned incident starts and once when it ends (alerts). */
  onTransition(listener: (transition: IncidentTransition) => void): void {
    this.listeners.push(listener);
  }

  private emit(transition: IncidentTransition): void {
    for (const listener of this.listeners) listener(transition);
  }

  private track(id: string, now: number): Track {
    let track = this.tracks.get(id);
    if (!track) this.tracks.set(id, (track = { down: false, planned: false, since: now, count: 0, totalDownMs: 0, causes: [], leftCause: { cause: '', detail: '' } }));
    return track;
  }

  /** The instance stopped serving; `planned` for maintenance or draining. */
  wentDown(id: string, cause: string, detail: string, planned: boolean, now: number): void {
    const track = this.track(id, now);
    if (!track.down) {
      track.down = true;
      track.planned = planned;
      track.since = now;
      if (!planned) track.count += 1;
    } else if (track.planned && !planned) {
      // A planned stop that turned into a failure counts from now.
      track.planned = false;
      track.since = now;
      track.count += 1;
    } else {
      if (!planned) this.note(id, cause, detail, now);
      return;
    }
    if (planned) return;
    track.leftCause = { cause, detail };
    this.note(id, cause, detail, now);
    this.emit({ kind: 'left', id, at: now, cause, detail });
  }

  /** Another cause seen while already down (e.g. the check output). */
  note(id: string, cause: string, detail: string, now: number): void {
    const track = this.track(id, now);
    const last = track.causes.at(-1);
    if (last && last.cause === cause && last.detail === detail) return;
    track.causes.push({ at: now, cause, detail });
    if (track.causes.length > 5) track.causes.shift();
  }

  cameBack(id: string, now: number): void {
    const track = this.tracks.get(id);
    if (!track?.down) return;
    const unplanned = !track.planned;
    if (unplanned) track.totalDownMs += now - track.since;
    track.down = false;
    track.planned = false;
    if (unplanned) this.emit({ kind: 'returned', id, at: now, cause: track.leftCause.cause, detail: track.leftCause.detail, downForMs: now - track.since });
  }

  summary(id: string, now: number): IncidentSummary {
    const track = this.tracks.get(id);
    if (!track) return { count: 0, totalDownMs: 0, downSince: null, lastCauses: [] };
    const ongoing = track.down && !track.planned;
    return {
      count: track.count,
      totalDownMs: track.totalDownMs + (ongoing ? now - track.since : 0),
      downSince: ongoing ? track.since : null,
      lastCauses: [...track.causes],
    };
  }

  ids(): string[] {
    return [...this.tracks.keys()];
  }
}
