// Whose failure an attempt's error is — decided here, once, for the HTTP path.
//
// Only the instance's own failures may count against it (retry elsewhere,
// passive health, ejection, incidents, alerts, a lost sticky binding). A
// failure the request itself caused is the client's: undici refuses some
// requests before sending a byte (a second Host, the asterisk form, a header
// value it will not write: InvalidArgumentError, NotSupportedError), and a
// client's body can break or fall short of its Content-Length while it is
// being streamed to the instance. Retrying such a request elsewhere would
// fail the same way on every instance and eject them all (issue 22): it gets
// a 4xx naming what was wrong instead.
import { classifyError, type FailureKind } from './retry-policy.ts';

export type Fault =
  /** The request is at fault: answer the client `status`, never retry, count nothing against the instance. */
  | { who: 'request'; status: 400 | 501; message: string }
  /** The instance (or the path to it) failed: the retry policy and passive health take over. */
  | { who: 'instance'; kind: FailureKind };

/** undici's request validation: thrown before anything is sent (lib/core/request.js, lib/core/errors.js). */
const REFUSED_BY_CLIENT_LIBRARY: Readonly<Record<string, 400 | 501>> = {
  UND_ERR_INVALID_ARG: 400,
  UND_ERR_NOT_SUPPORTED: 501,
  // The body that arrived does not match the Content-Length the client declared.
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 400,
};

export interface AttemptFacts {
  /** The socket to the instance had connected (or was a reused keep-alive one). */
  connected: boolean;
  /** The client's request stream broke (a malformed chunk, a reset mid-upload) before the attempt failed. */
  requestBroken: boolean;
}

export function whoseFault(error: { code?: string; message?: string } | undefined, facts: AttemptFacts): Fault {
  const refused = error?.code ? REFUSED_BY_CLIENT_LIBRARY[error.code] : undefined;
  if (refused) return { who: 'request', status: refused, message: error?.message ?? error!.code! };
  // undici checks some request values with assert() before connecting (a Host of "[x"):
  // thrown before any byte went out, it is about the request, never the instance.
  if (error?.code === 'ERR_ASSERTION' && !facts.connected) return { who: 'request', status: 400, message: `the balancer's HTTP client refused the request: ${(error.message ?? '').split('\n')[0]}` };
  if (facts.requestBroken) return { who: 'request', status: 400, message: `the client's request body broke off: ${error?.message ?? 'unknown error'}` };
  return { who: 'instance', kind: classifyError(error, facts.connected) };
}
