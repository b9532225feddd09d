// History that survives restarts, reloads, crashes and upgrades: the
// dashboard model's events, incidents and alert state, kept in Consul's KV
// under sempre/history/<service> (history-doc.ts: the document and its bounds).
//
// - Read at start (the model serves meanwhile, from memory): what is there
//   joins the model as history, never as new events or alerts; this
//   balancer's own incidents that were open when its previous process ended
//   go on, and the alerts are held until that read answers (at most
//   HOLD_ALERTS_MS) so an incident announced before the restart is not
//   announced again.
// - Followed with a blocking query (one for all services: history-watch.ts):
//   what the pair's other balancer writes (same Consul, same key) joins the model too.
// - Written by the process that keeps the model (worker 0) GATHER_MS after
//   a change but at most once per WRITE_EVERY_MS, and at shutdown, with
//   check-and-set on the key's ModifyIndex: on a conflict it reads, merges (union by id) and
//   writes again. Two balancers holding the same entries write the same
//   bytes, and an unchanged document is not written.
// - Consul unreachable, a refused write or a value that is not a history:
//   a warning (at most one a minute) and the model goes on in memory. A
//   document of a newer schema is read as far as it parses and never
//   overwritten.
// - Each entry names the balancer that recorded it: its host name and admin
//   address ("infra 127.0.0.1:8081"), the same after a restart and distinct
//   for the two hosts of a pair (or two lab namespaces sharing a host name).
import { hostname } from 'node:os';
import type { ConsulClient } from '../../shared/consul-client.ts';
import { describeConsulError } from '../../shared/consul-client.ts';
import type { Logger } from '../../shared/logger.ts';
import type { DashboardModel } from './dashboard-model.ts';
import { EMPTY_HISTORY, historyKey, parseHistory, serializeHistory, type HistoryDoc } from './history-doc.ts';
import { followHistoryKey, type KvEntry } from './history-watch.ts';

const WRITE_EVERY_MS = 1000;
/** A change waits this long at least, so that a burst (an ejection's events, a heal's) goes out as one write. */
const GATHER_MS = 250;
const HOLD_ALERTS_MS = 3000;
const WARN_EVERY_MS = 60_000;
const FLUSH_DEADLINE_MS = 3000;

export interface HistoryStoreOptions {
  consul: ConsulClient;
  service: string;
  model: DashboardModel;
  logger: Logger;
  now: () => number;
  /** --consul-wait, and the admin address that (with the host name) names this balancer in the document. */
  options: { consulWait: number; adminHost: string; adminPort: number };
  /** Whether an instance serves here now (restored open incidents of one that does are closed). */
  serving: (id: string) => boolean;
  writeEveryMs?: number;
  holdAlertsMs?: number;
}

export interface HistoryStore {
  /** The name this balancer's entries carry. */
  readonly self: string;
  /** Stops following the key and writes what is left at once (a reload's new worker reads it sooner). */
  stop(): void;
  /** Resolves once that last write is done, or gave up (at most FLUSH_DEADLINE_MS). */
  flush(): Promise<void>;
}

export function startHistoryStore(o: HistoryStoreOptions): HistoryStore {
  const { consul, model, now } = o;
  const key = historyKey(o.service);
  const self = `${hostname()} ${o.options.adminHost}:${o.options.adminPort}`;
  const logger = o.logger.child({ component: 'history', key });
  const writeEveryMs = o.writeEveryMs ?? WRITE_EVERY_MS;
  /** Whether the key has been read once (the start's restore is done). */
  let restored = false;
  /** The key's ModifyIndex as last read ('0': absent); undefined when unknown (read before writing). */
  let index: string | undefined;
  /** The value as last read or written: an unchanged document is not written again. */
  let stored = '';
  /** A newer schema's document: read, never overwritten. */
  let readOnly = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let again = false;
  let lastWrite = Number.NEGATIVE_INFINITY;

  let warnedAt = Number.NEGATIVE_INFINITY;
  let quiet = 0;
  const warn = (err: string, msg: string) => {
    if (now() - warnedAt < WARN_EVERY_MS) {
      quiet += 1;
      return;
    }
    logger.warn({ err, ...(quiet > 0 ? { suppressed: quiet } : {}) }, `${msg}; the dashboard's history goes on in memory`);
    warnedAt = now();
    quiet = 0;
  };

  // Alerts wait for the start's read (at most holdAlertsMs): it may show an incident announced already.
  model.incidents.hold();
  const releaseAlerts = () => {
    clearTimeout(holdTimer);
    model.incidents.release();
  };
  const holdTimer = setTimeout(releaseAlerts, o.holdAlertsMs ?? HOLD_ALERTS_MS);
  holdTimer.unref();

  /** Takes in the key's value as read: merged into the model, as the start's restore the first time. */
  const absorb = (entry: KvEntry | undefined) => {
    index = String(entry?.ModifyIndex ?? 0);
    const value = entry?.Value === undefined || entry.Value === null ? '' : String(entry.Value);
    let doc: HistoryDoc = EMPTY_HISTORY;
    readOnly = false;
    if (value) {
      const parsed = parseHistory(value);
      if ('doc' in parsed) doc = parsed.doc;
      else {
        readOnly = parsed.newer === true;
        warn(parsed.error, readOnly ? 'the history in Consul was written by a newer sempre: not overwritten' : 'the history in Consul is not readable: it will be replaced');
      }
    }
    stored = value;
    const first = !restored;
    restored = true;
    const changed = model.mergeHistory(doc, self, now(), first ? { serving: o.serving } : undefined);
    if (first) {
      releaseAlerts();
      logger.info({ events: doc.events.length, instances: Object.keys(doc.incidents).length }, 'history read from Consul');
    }
    if (changed || first) schedule();
  };

  const read = async (): Promise<KvEntry | undefined> => (await consul.kv.get({ key, timeout: 2000 } as never)) as KvEntry | undefined;

  const writeNow = async (): Promise<void> => {
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      if (index === undefined) absorb(await read());
      if (readOnly) return;
      const value = serializeHistory(model.toHistory(self));
      if (value === stored) return;
      lastWrite = now();
      const written = await consul.kv.set({ key, value, cas: index, timeout: 2000 } as never);
      // Whatever the answer, the index is no longer known: the watch or the next read tells it.
      index = undefined;
      if (written === true) {
        stored = value;
        return;
      }
    }
    throw new Error('the key changed under each of 3 check-and-set writes');
  };

  const write = () => {
    timer = undefined;
    if (writing) {
      again = true;
      return;
    }
    writing = writeNow()
      .catch((error: unknown) => warn(describeConsulError(error).message, 'cannot write the history to Consul'))
      .finally(() => {
        writing = undefined;
        if (again) {
          again = false;
          schedule();
        }
      });
  };

  function schedule(): void {
    if (stopped || !restored || readOnly || timer) return;
    timer = setTimeout(write, Math.max(Math.min(GATHER_MS, writeEveryMs), lastWrite + writeEveryMs - now()));
    timer.unref();
  }

  model.events.onEvent(() => schedule());

  const query = followHistoryKey(consul, key, o.options.consulWait, absorb, (message) => {
    if (!restored) releaseAlerts(); // no reason to keep alerts waiting on a Consul that does not answer
    warn(message, 'cannot read the history from Consul');
  });

  let last: Promise<void> = Promise.resolve();
  return {
    self,
    stop: () => {
      if (stopped) return;
      stopped = true;
      query.stop();
      clearTimeout(timer);
      timer = undefined;
      clearTimeout(holdTimer);
      if (!restored || readOnly) return;
      last = (async () => {
        await writing;
        await writeNow().catch((error: unknown) => warn(describeConsulError(error).message, 'cannot write the history to Consul at shutdown'));
      })();
    },
    flush: async () => {
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([last, new Promise<void>((resolve) => { deadline = setTimeout(resolve, FLUSH_DEADLINE_MS); })]);
      clearTimeout(deadline);
    },
  };
}
