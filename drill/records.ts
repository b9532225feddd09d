// One record per request (vegeta's model): everything else — summaries,
// reports, assertions — is a pure function over a stream of these.

export type ErrorClass = 'ok' | 'refused' | 'reset' | 'timeout' | '5xx' | 'other';

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

export function classifyStatus(status: number): ErrorClass {
  return status >= 500 ? '5xx' : 'ok';
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
