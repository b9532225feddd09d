// Name lookups for instance addresses that are host names (compose
// registers `app1`, not an IP). Node's dns.lookup runs getaddrinfo on the
// libuv thread pool (4 threads), and the name of a container that was just
// killed does not fail fast: Docker's DNS forwards it upstream, and the
// lookup blocks a thread for 10 s before EAI_AGAIN. The readmission probe
// asks every 250 ms, so within a second every thread waited on the dead name
// and the live instances' new connections (and the access log's writes)
// queued behind them: 502s in the compose drill.
//
// So: at most one lookup per name at a time, its answer kept for `ttlMs`,
// and while a name is being looked up again its last answer is used (and
// forgotten if that lookup fails).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';

export interface HostLookupOptions {
  /** How long an answer is used before the name is looked up again. */
  ttlMs?: number;
  now?: () => number;
  /** dns.lookup by default; tests pass their own. */
  resolve?: (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;
}

type Waiter = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

/** A `lookup` for net.connect and http.request: one getaddrinfo per name at a time, answers cached. */
export function createHostLookup(options: HostLookupOptions = {}): LookupFunction {
  const ttlMs = options.ttlMs ?? 2000;
  const now = options.now ?? Date.now;
  const resolve = options.resolve ?? ((hostname, callback) => dnsLookup(hostname, { all: true }, callback));
  const answers = new Map<string, { addresses: LookupAddress[]; at: number }>();
  const pending = new Map<string, Waiter[]>();

  const start = (hostname: string) => {
    pending.set(hostname, []);
    resolve(hostname, (error, addresses) => {
      const waiters = pending.get(hostname) ?? [];
      pending.delete(hostname);
      // A name that stopped resolving is forgotten: its old address may be
      // handed to another container, which must not answer for this instance.
      if (!error && addresses?.length) answers.set(hostname, { addresses, at: now() });
      else answers.delete(hostname);
      for (const waiter of waiters) waiter(error, addresses ?? []);
    });
  };

  const withAnswer = (hostname: string, done: Waiter) => {
    const known = answers.get(hostname);
    if (known && now() - known.at < ttlMs) return done(null, known.addresses);
    if (!pending.has(hostname)) start(hostname);
    // Looked up before: the last answer now, the new one for later callers.
    if (known) return done(null, known.addresses);
    pending.get(hostname)!.push(done);
  };

  return ((hostname: string, lookupOptions: { all?: boolean; family?: number | string }, callback: (...args: unknown[]) => void) => {
    withAnswer(hostname, (error, addresses) => {
      const family = Number(String(lookupOptions.family ?? 0).replace(/\D/g, '')) || 0;
      const usable = family ? addresses.filter((a) => a.family === family) : addresses;
      if (error || usable.length === 0) {
        const failure = error ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
        return lookupOptions.all ? callback(failure, []) : callback(failure, undefined, undefined);
      }
      if (lookupOptions.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  }) as LookupFunction;
}

/** The balancer's one lookup: its pools and its health probes share the cache and the one-at-a-time rule. */
export const hostLookup = createHostLookup();
