// The attempts in flight on one instance, as a list whose links live on the
// attempts themselves, instead of a Set.
//
// Why not a Set: a Set that gains and loses one entry per request is rebuilt
// every few hundred requests, and V8 links each old table to its successor
// (for iterators still walking it). A full collection moves the live table
// to the old generation; from then on every table after it, and the finished
// requests an old table still names, are kept by the young-generation
// collections, which count the dead old table as a reference, and are
// promoted in turn. Measured: 0.3–0.5 MB promoted per scavenge instead of
// 0.02, a full collection every second or two, pauses up to 6 ms
// (BENCHMARKS.md, "The p99 tail on one core"). Here removing an attempt
// clears its links, so a finished attempt names nothing.

export interface InFlightEntry<T> {
  prevInFlight: T | undefined;
  nextInFlight: T | undefined;
  /** The list the entry is on, if any. */
  inFlightList: unknown;
}

export class InFlightList<T extends InFlightEntry<T>> {
  private head: T | undefined;
  private tail: T | undefined;
  size = 0;

  add(entry: T): void {
    if (entry.inFlightList) return;
    entry.inFlightList = this;
    entry.prevInFlight = this.tail;
    entry.nextInFlight = undefined;
    if (this.tail) this.tail.nextInFlight = entry;
    else this.head = entry;
    this.tail = entry;
    this.size += 1;
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
    this.size -= 1;
  }

  /** The entries now, oldest first: safe to change the list while going through them. */
  entries(): T[] {
    const out: T[] = [];
    for (let entry = this.head; entry; entry = entry.nextInFlight) out.push(entry);
    return out;
  }
}
