// Open-model load: requests start on schedule at a constant rate whether or
// not earlier ones finished, over a keep-alive pool (undici). Latency is
// measured from each request's intended start, so a stall shows up in full.
import { Pool } from 'undici';
import { assertRoutedToLab } from '../lab/netns-lab.ts';
import { classifyRequestError, classifyStatus, errorCode, type RequestRecord } from './records.ts';

export interface LoadOptions {
  /** Target origin, loopback or the lab's own addresses only. */
  url: string;
  rate: number;
  durationMs: number;
  method?: string;
  path?: string;
  body?: string;
  timeoutMs?: number;
  connections?: number;
  /**
   * Behave like a client that tries once more after a connection failure
   * (refused, reset, or no answer within the timeout), after `retryDelayMs`.
   * The record keeps the whole time from the first try.
   */
  retryConnectionFailureOnce?: boolean;
  retryDelayMs?: number;
  /** The one status that counts as success; by default any 2xx does (see classifyStatus). */
  expectStatus?: number;
  /** Extra headers on every request (a cookie, for clients kept on one instance). */
  headers?: Readonly<Record<string, string>>;
}

export interface RunningLoad {
  readonly startedAt: number;
  /** Records of requests finished so far (a live view). */
  readonly records: readonly RequestRecord[];
  /** Resolves with every record once the run ends and all requests finished. */
  readonly done: Promise<RequestRecord[]>;
  /** Ends the schedule early; requests already started still finish. */
  stop(): Promise<RequestRecord[]>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

/** Load goes to loopback, or to an allowed lab address while the lab's bridge routes it; nowhere else. */
export function assertSafeTarget(url: URL, allowed: readonly string[] = []): void {
  if (LOOPBACK.test(url.hostname)) return;
  if (!allowed.includes(url.hostname)) {
    throw new Error(`load target ${url.hostname} is not loopback or a lab address: refusing to send traffic there`);
  }
  assertRoutedToLab(url.hostname);
}

export function startLoad(options: LoadOptions, allowedHosts: readonly string[] = []): RunningLoad {
  const target = new URL(options.url);
  assertSafeTarget(target, allowedHosts);
  const timeoutMs = options.timeoutMs ?? 15_000;
  const pool = new Pool(target.origin, { connections: options.connections ?? 64, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connectTimeout: Math.min(timeoutMs, 5000) });
  const method = (options.method ?? 'GET').toUpperCase() as 'GET';
  const path = options.path ?? (target.pathname + target.search);
  const headers = { ...(options.body ? { 'content-type': 'text/plain' } : {}), ...options.headers };
  const intervalMs = 1000 / options.rate;
  const total = Math.floor((options.durationMs / 1000) * options.rate);
  const records: RequestRecord[] = [];
  const startedAt = performance.now();
  const startedAtWall = Date.now();
  let sent = 0;
  let pending = 0;
  let stopped = false;
  let finish!: () => void;
  const allFinished = new Promise<void>((resolve) => { finish = resolve; });

  const fire = (intendedMs: number) => {
    pending += 1;
    const record = (r: RequestRecord) => {
      records.push(r);
      pending -= 1;
      if (pending === 0 && (stopped || sent >= total)) finish();
    };
    const send = () => pool.request({ method, path, body: options.body, headers });
    let firstTry: RequestRecord['firstTry'];
    const attempt = options.retryConnectionFailureOnce
      ? send().catch(async (error: unknown) => {
        const errorClass = classifyRequestError(error);
        if (!['refused', 'reset', 'timeout'].includes(errorClass)) throw error;
        firstTry = { errorClass, error: errorCode(error), endedMs: Math.round(performance.now() - startedAt) };
        await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? 1000));
        return send();
      })
      : send();
    attempt.then(
      async (response) => {
        await response.body.dump();
        // sempre names the instance; behind other proxies the demo app does.
        const servedBy = response.headers['x-served-by'] ?? response.headers['x-instance'];
        record({ intendedMs, latencyMs: performance.now() - startedAt - intendedMs, status: response.statusCode, errorClass: classifyStatus(response.statusCode, options.expectStatus), servedBy: typeof servedBy === 'string' ? servedBy : null, ...(firstTry && { firstTry }) });
      },
      (error: unknown) => {
        record({ intendedMs, latencyMs: performance.now() - startedAt - intendedMs, status: 0, errorClass: classifyRequestError(error), servedBy: null, error: errorCode(error), ...(firstTry && { firstTry }) });
      },
    );
  };

  // A coarse timer that fires every request that is due, so the rate holds
  // even when the event loop is late.
  const ticker = setInterval(() => {
    const elapsed = performance.now() - startedAt;
    while (!stopped && sent < total && sent * intervalMs <= elapsed) {
      fire(sent * intervalMs);
      sent += 1;
    }
    if (stopped || sent >= total) {
      clearInterval(ticker);
      if (pending === 0) finish();
    }
  }, 1);

  const done = allFinished.then(async () => {
    await pool.close();
    return records.sort((a, b) => a.intendedMs - b.intendedMs);
  });
  return {
    startedAt: startedAtWall,
    records,
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}
