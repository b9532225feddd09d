// The attempts in flight on one instance, as a list whose links live on the
// attempts themselves, instead of a Set.
//
// Why not a Set: a Set that gains and loses one entry per request has its
// table replaced many times a second. Once the table is in the old
// generation (a full collection moves it there), V8 makes its replacements
// there too, and each replaced table still names the attempts that were in
// flight when it was replaced. Scavenges count those dead old tables as
// references until the next full collection, so those attempts, with their
// requests, responses and headers, are promoted: 0.3–0.5 MB per scavenge
// instead of 0.02, a full collection every second or two, pauses up to 6 ms
// (BENCHMARKS.md, "Per core"). Here removing an attempt clears its links, so
// a finished attempt is named by nothing.

export interface InFlightEntry<T> {
  prevInFlight: T | undefined;
  nextInFlight: T | undefined;
  /** The list the entry is on, if any. */
  inFlightList: unknown;
}

export class InFlightList<T extends InFlightEntry<T>> {
  private head: T | undefined;
  private tail: T | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(entry: T): void {
    if (entry.inFlightList === this) return;
    // An attempt belongs to one instance: on two lists, one of them would lose it.
    if (entry.inFlightList !== undefined) throw new Error('already in flight on another list');
    entry.inFlightList = this;
    entry.prevInFlight = this.tail;
    entry.nextInFlight = undefined;
    if (this.tail) this.tail.nextInFlight = entry;
    else this.head = entry;
    this.tail = entry;
    this.count += 1;
  }

  delete(entry: T): void {
    if (entry.inFlightList !== this) return;
    if (entry.prevInFlight) entry.prevInFlight.nextInFlight = entry.nextInFlight;
    else this.head = entry.nextInFlight;
    if (entry.nextInFlight) entry.nextInFlight.prevInFlight = entry.prevInFlight;
    else this.tail = entry.prevInFlight;
    entry.prevInFlight = undefined;
    entry.nextInFlight = undefined;
    entry.inFlightList = undefined;
    this.count -= 1;
  }

  /** The oldest entry that satisfies `test`, found without copying the list. */
  first(test: (entry: T) => boolean): T | undefined {
    for (let entry = this.head; entry; entry = entry.nextInFlight) if (test(entry)) return entry;
    return undefined;
  }

  /**
   * The entries now, oldest first, as a copy: safe to change the list while
   * going through them (abandoning one attempt can eject its instance, which
   * abandons the others and clears their links).
   */
  entries(): T[] {
    const out: T[] = [];
    for (let entry = this.head; entry; entry = entry.nextInFlight) out.push(entry);
    return out;
  }
}
