// Which failed attempts may be tried again on another instance. The rule that
// matters: a request that may have reached the app is retried only when
// repeating it is harmless (an idempotent method, RFC 9110 §9.2.2).

import type { FailureKind } from '../health/failure-kind.ts';

export type { FailureKind };

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method.toUpperCase());
}

/** Whether a failure of this kind allows another attempt for this method. */
export function mayRetry(method: string, failure: FailureKind): boolean {
  return failure === 'connect' || isIdempotent(method);
}

const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ECONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/**
 * Classifies a proxy error. `connected` says whether the socket had been
 * connected (or was a reused keep-alive socket) when the error came: if not,
 * no byte of the request can have left, whatever the error code.
 */
export function classifyError(error: { code?: string } | undefined, connected: boolean): FailureKind {
  // Our own response timeout, or the instance left rotation while we waited.
  if (error?.code === 'ERESPONSETIMEOUT' || error?.code === 'EINSTANCEGONE') return 'timeout';
  if (!connected || NEVER_CONNECTED.has(error?.code ?? '')) return 'connect';
  return 'reset';
}

/**
 * Failures that say the instance itself is in trouble (not a stale socket).
 * A response timeout does not: a slow page on an instance that still answers
 * is not a failed instance. A frozen one is ejected by the stall detector,
 * which asks the instance's health path before it decides.
 */
export function countsAgainstInstance(failure: FailureKind, reusedSocket: boolean): boolean {
  if (failure === 'reset') return !reusedSocket;
  return failure === 'connect';
}
