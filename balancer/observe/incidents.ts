// Incidents per instance: each time it left rotation unplanned (ejected,
// check critical, dropped by Consul) until it served again. Planned removals
// (maintenance, a draining agent) are not incidents. This is what the team
// reads to find why an instance keeps falling over: how often, for how long,
// and the causes seen each time. Each incident is also kept as a record
// (IncidentRecord) that the history store writes to Consul and reads back
// after a restart, together with the other balancer's of a pair.

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

export interface IncidentCause {
  at: number;
  cause: string;
  detail: string;
}

/** One unplanned stay out of rotation, as the history store keeps it. */
export interface IncidentRecord {
  /** Unique across processes and balancers: the history store merges by it. */
  id: string;
  since: number;
  /** null while open. */
  until: number | null;
  cause: string;
  detail: string;
  /** Oldest first; at most 5. */
  causes: IncidentCause[];
  /** The balancer that recorded it (set when written to the history store). */
  by?: string;
}

/** What the history store read at start says of this balancer's own incidents. */
export interface RestoredIncidents {
  /** Open incidents this balancer had announced (a 'left' transition went out). */
  announced: ReadonlySet<string>;
  /** Whether a record was this balancer's own (its previous process's). */
  mine: (record: IncidentRecord) => boolean;
  /** Whether the instance serves here now. */
  serving: (id: string) => boolean;
}

interface Track {
  down: boolean;
  planned: boolean;
  since: number;
  causes: IncidentCause[];
  /** What made it leave this time: a 'returned' alert repeats it. */
  leftCause: { cause: string; detail: string };
  /** The open unplanned incident's record. */
  current: IncidentRecord | undefined;
  /** A 'left' went out (or is held) for the current incident. */
  announced: boolean;
}

/** The two records' later state (same id: only its balancer changes it, so closed and longer is newer). */
function later(a: IncidentRecord, b: IncidentRecord): IncidentRecord {
  if ((a.until === null) !== (b.until === null)) return a.until === null ? b : a;
  return b.causes.length > a.causes.length ? b : a;
}

/** Newest first by start, then id. */
function byStartDesc(a: IncidentRecord, b: IncidentRecord): number {
  return b.since - a.since || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export class IncidentTracker {
  private readonly tracks = new Map<string, Track>();
  /** Every instance's incidents, this process's and those read from the history store; newest first. */
  private readonly records = new Map<string, IncidentRecord[]>();
  private readonly listeners: Array<(transition: IncidentTransition) => void> = [];
  /** Transitions kept back while the history is read at start (hold()). */
  private held: IncidentTransition[] | undefined;
  private nextId = 1;
  private readonly origin = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  /** Records kept per instance (the history store keeps as many). */
  private readonly keep: number;

  constructor(keepPerInstance = 50) {
    this.keep = keepPerInstance;
  }

  /** Called once when an unplanned incident starts and once when it ends (alerts). */
  onTransition(listener: (transition: IncidentTransition) => void): void {
    this.listeners.push(listener);
  }

  private emit(transition: IncidentTransition): void {
    if (this.held) this.held.push(transition);
    else for (const listener of this.listeners) listener(transition);
  }

  /** Keep transitions back until release(): the history read at start may show them announced already. */
  hold(): void {
    this.held ??= [];
  }

  /** Send what was held (a 'left' for an incident restored as announced was dropped by restore()). */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const transition of held) this.emit(transition);
  }

  private track(id: string, now: number): Track {
    let track = this.tracks.get(id);
    if (!track) this.tracks.set(id, (track = { down: false, planned: false, since: now, causes: [], leftCause: { cause: '', detail: '' }, current: undefined, announced: false }));
    return track;
  }

  private recordsOf(id: string): IncidentRecord[] {
    let list = this.records.get(id);
    if (!list) this.records.set(id, (list = []));
    return list;
  }

  /** The instance stopped serving; `planned` for maintenance or draining. */
  wentDown(id: string, cause: string, detail: string, planned: boolean, now: number): void {
    const track = this.track(id, now);
    if (!track.down) {
      track.down = true;
      track.planned = planned;
      track.since = now;
    } else if (track.planned && !planned) {
      // A planned stop that turned into a failure counts from now.
      track.planned = false;
      track.since = now;
    } else {
      if (!planned) this.note(id, cause, detail, now);
      return;
    }
    if (planned) return;
    track.leftCause = { cause, detail };
    track.current = { id: `${this.origin}.${this.nextId++}`, since: now, until: null, cause, detail, causes: [] };
    const list = this.recordsOf(id);
    list.unshift(track.current);
    if (list.length > this.keep) list.length = this.keep;
    track.announced = true;
    this.note(id, cause, detail, now);
    this.emit({ kind: 'left', id, at: now, cause, detail });
  }

  /** Another cause seen while already down (e.g. the check output); after an incident, it joins this process's latest one (never another balancer's). */
  note(id: string, cause: string, detail: string, now: number): void {
    const track = this.track(id, now);
    const entry = { at: now, cause, detail };
    const same = (c: IncidentCause | undefined) => c !== undefined && c.cause === cause && c.detail === detail;
    const record = track.current ?? this.records.get(id)?.find((r) => r.by === undefined);
    if (record && !same(record.causes.at(-1))) {
      record.causes.push(entry);
      if (record.causes.length > 5) record.causes.shift();
    }
    if (same(track.causes.at(-1))) return;
    track.causes.push(entry);
    if (track.causes.length > 5) track.causes.shift();
  }

  cameBack(id: string, now: number): void {
    const track = this.tracks.get(id);
    if (!track?.down) return;
    const unplanned = !track.planned;
    track.down = false;
    track.planned = false;
    if (!unplanned) return;
    if (track.current) track.current.until = now;
    track.current = undefined;
    const announced = track.announced;
    track.announced = false;
    if (announced) this.emit({ kind: 'returned', id, at: now, cause: track.leftCause.cause, detail: track.leftCause.detail, downForMs: now - track.since });
  }

  /**
   * Counted over the records, this process's and restored ones alike;
   * incidents that overlap in time (the two balancers of a pair saw the same
   * failure) count once. `downSince`: out of rotation here, now.
   */
  summary(id: string, now: number): IncidentSummary {
    const track = this.tracks.get(id);
    const records = [...(this.records.get(id) ?? [])].sort((a, b) => a.since - b.since);
    let count = 0;
    let totalDownMs = 0;
    let end = Number.NEGATIVE_INFINITY;
    for (const record of records) {
      const until = Math.max(record.since, record.until ?? now);
      if (record.since >= end) {
        count += 1;
        totalDownMs += until - record.since;
        end = until;
      } else if (until > end) {
        totalDownMs += until - end;
        end = until;
      }
    }
    const unique = new Map([...(track?.causes ?? []), ...records.flatMap((r) => r.causes)].map((c) => [`${c.at} ${c.cause} ${c.detail}`, c]));
    const causes = [...unique.values()].sort((a, b) => a.at - b.at)
      .filter((c, i, all) => i === 0 || c.cause !== all[i - 1]!.cause || c.detail !== all[i - 1]!.detail);
    const ongoing = track !== undefined && track.down && !track.planned;
    return { count, totalDownMs, downSince: ongoing ? track.since : null, lastCauses: causes.slice(-5).map((c) => ({ at: c.at, cause: c.cause, detail: c.detail })) };
  }

  /** Every instance's records, newest first (for the history store). */
  allRecords(): ReadonlyMap<string, readonly IncidentRecord[]> {
    return this.records;
  }

  /**
   * Records read from the history store join this process's, once each (by
   * id). At start (`restored` given), this balancer's own incidents that
   * were open when its previous process ended go on here: still open while
   * the instance is out (no second 'left'), closed now if it serves already
   * (with a 'returned' if the 'left' had been announced). Returns whether
   * anything changed here.
   */
  merge(byInstance: ReadonlyMap<string, readonly IncidentRecord[]>, now: number, restored?: RestoredIncidents): boolean {
    let changed = false;
    for (const [id, incoming] of byInstance) {
      const list = this.recordsOf(id);
      for (const record of incoming) {
        const index = list.findIndex((r) => r.id === record.id);
        const mine = index >= 0 ? list[index]! : undefined;
        if (mine && later(mine, record) === mine) continue;
        // An own open record of this process is never replaced by an older copy of itself.
        if (mine && this.tracks.get(id)?.current === mine) continue;
        const copy = { ...record, causes: record.causes.map((c) => ({ ...c })) };
        if (index >= 0) list[index] = copy;
        else list.push(copy);
        changed = true;
        if (restored && copy.until === null && restored.mine(copy)) changed = this.resume(id, copy, restored.announced.has(copy.id), restored.serving(id), now) || changed;
      }
      list.sort(byStartDesc);
      if (list.length > this.keep) list.length = this.keep;
    }
    return changed;
  }

  /** An open incident of the previous process goes on here (see merge). */
  private resume(id: string, record: IncidentRecord, announced: boolean, serving: boolean, now: number): boolean {
    const track = this.track(id, now);
    if (track.down && !track.planned && track.current) {
      // Seen out already by this process: one incident, from the earlier start.
      const live = track.current;
      const list = this.recordsOf(id);
      list.splice(list.indexOf(live), 1);
      for (const cause of live.causes) if (!record.causes.some((c) => c.cause === cause.cause && c.detail === cause.detail)) record.causes.push(cause);
      record.causes.splice(0, Math.max(0, record.causes.length - 5));
      track.since = record.since;
      track.current = record;
      if (announced && this.held) this.held = this.held.filter((t) => !(t.kind === 'left' && t.id === id));
      track.announced = announced || track.announced;
      return true;
    }
    if (serving || track.down) {
      // Serving again (or planned out) by the time this process looked.
      record.until = now;
      if (announced) this.emit({ kind: 'returned', id, at: now, cause: record.cause, detail: record.detail, downForMs: now - record.since });
      return true;
    }
    Object.assign(track, { down: true, planned: false, since: record.since, leftCause: { cause: record.cause, detail: record.detail }, current: record, announced });
    return false;
  }

  /** Open incidents whose 'left' was announced: the alert state the history store keeps. */
  announcedOpen(): string[] {
    return [...this.tracks.values()].flatMap((t) => (t.down && !t.planned && t.current && t.announced ? [t.current.id] : []));
  }

  ids(): string[] {
    return [...this.tracks.keys()];
  }
}
