// One record per request (vegeta's model): everything else — summaries,
// reports, assertions — is a pure function over a stream of these.

/**
 * How a request ended. Only 'ok' is a success: any 2xx, the answer the demo
 * app gives on every path. A 3xx or 4xx can only come from the balancer
 * itself (a 404 while a route table is rebuilt, a 429 from a limiter gone
 * global, a 400 from a front door refusing good requests), so it is a
 * failure like a 5xx. refused, reset, timeout and other: no answer at all.
 */
export type ErrorClass = 'ok' | '2xx' | '3xx' | '4xx' | '5xx' | 'refused' | 'reset' | 'timeout' | 'other';

/** The kinds every figure and report shows failures by: an answer other than the expected one, by status class, or none at all. */
export type FailureKind = '2xx' | '3xx' | '4xx' | '5xx' | 'network';
export const FAILURE_KINDS: readonly FailureKind[] = ['4xx', '5xx', 'network', '3xx', '2xx'];

export interface RequestRecord {
  /** When the request was meant to start, ms since the run started. */
  intendedMs: number;
  /** From the intended start to the end of the response body (no coordinated omission). */
  latencyMs: number;
  /** HTTP status, or 0 when no response came. */
  status: number;
  errorClass: ErrorClass;
  /** The x-served-by header: which instance answered. */
  servedBy: string | null;
  /** Error code or message when errorClass is not ok. */
  error?: string;
  /** With a retrying client: how the first try failed, when it was retried (its latency counts in latencyMs). */
  firstTry?: { errorClass: ErrorClass; error: string; endedMs: number };
}

/**
 * The class of an answer: 'ok' when it is the expected one (any 2xx, or
 * exactly `expected` when a caller names it), else its status class (a 2xx
 * is a failure only when another status was named).
 */
export function classifyStatus(status: number, expected?: number): ErrorClass {
  if (expected === undefined ? status >= 200 && status < 300 : status === expected) return 'ok';
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return '2xx';
}

/** The kind a failed request counts under: its status class, or 'network' when no answer came. */
export function failureKind(errorClass: Exclude<ErrorClass, 'ok'>): FailureKind {
  return errorClass === 'refused' || errorClass === 'reset' || errorClass === 'timeout' || errorClass === 'other' ? 'network' : errorClass;
}

/** Failed records counted by kind (no entry for a kind that did not occur). */
export function countFailuresByKind(records: Iterable<RequestRecord>): Partial<Record<FailureKind, number>> {
  const counts: Partial<Record<FailureKind, number>> = {};
  for (const r of records) {
    if (r.errorClass === 'ok') continue;
    const kind = failureKind(r.errorClass);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** "4xx 3, network 1" in FAILURE_KINDS order; '' when nothing failed. */
export function describeKinds(counts: Partial<Record<FailureKind, number>>): string {
  return FAILURE_KINDS.filter((k) => counts[k]).map((k) => `${k} ${counts[k]}`).join(', ');
}

/** What a failed request's record says of its error: the code, else the message. */
export function errorCode(error: unknown): string {
  return (error as { code?: string })?.code ?? String(error);
}

export function classifyRequestError(error: unknown): ErrorClass {
  const code = (error as { code?: string })?.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') return 'reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}
