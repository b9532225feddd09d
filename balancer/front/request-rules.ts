// The request rules of the front door: what the balancer answers itself,
// before any instance is chosen, because the request is malformed under
// RFC 9112 or asks for something a reverse proxy does not do. Node's parser
// (llhttp) already refuses CL+TE, a duplicate Content-Length, obs-fold, bare
// LF and NULs (client-guard.ts answers those 400); these are the rest.
import type { IncomingMessage } from 'node:http';

/** uri-host [":" port] (RFC 3986 §3.2.2): a bracketed IP literal or a reg-name. */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::\d*)?$/;

/** The methods sempre proxies, for Allow headers. */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH';

export interface Refusal {
  status: 200 | 400 | 405;
  /** Label of sempre_client_refused_total (an answered OPTIONS * is not counted). */
  reason: 'duplicate-host' | 'bad-host' | 'bad-target' | 'method-not-allowed' | undefined;
  /** Status text and what was wrong; the body reads "STATUS TITLE: DETAIL" (OPTIONS *: no body). */
  title: string;
  detail: string;
  headers: Record<string, string>;
}

export function refusalBody(refusal: Refusal): string {
  return refusal.detail ? `${refusal.status} ${refusal.title}: ${refusal.detail}\n` : '';
}

export interface RequestRules {
  /** Forward TRACE to the instances (off: 405, the usual hardening: TRACE echoes the request, cookies included). */
  allowTrace: boolean;
}

function refusal(status: 400 | 405, reason: NonNullable<Refusal['reason']>, text: string, headers: Record<string, string> = {}): Refusal {
  return { status, reason, title: status === 400 ? 'Bad Request' : 'Method Not Allowed', detail: text, headers };
}

/** What the balancer answers itself instead of proxying, or undefined to proxy. HTTP/1 only: HTTP/2 has no Host duplicates nor asterisk form to speak of. */
export function checkRequest(req: IncomingMessage, rules: RequestRules): Refusal | undefined {
  const method = req.method ?? '';
  const url = req.url ?? '';
  if (url === '*') {
    // The asterisk form (RFC 9112 §3.2.4) asks about the server in general,
    // and the server the client reached is the balancer: it answers. Each
    // resource's own OPTIONS (OPTIONS /path) is proxied to the app.
    if (method === 'OPTIONS') return { status: 200, reason: undefined, title: 'OK', detail: '', headers: { allow: ALLOWED_METHODS } };
    return refusal(400, 'bad-target', `the asterisk request target is only valid for OPTIONS, not ${method}`);
  }
  // origin form (/path) or absolute form (http://host/path); anything else has no instance to go to.
  if (url.charCodeAt(0) !== 47 /* '/' */ && !/^https?:\/\//i.test(url)) return refusal(400, 'bad-target', 'the request target must be a path starting with "/" or an absolute http(s) URL');
  if (method === 'TRACE' && !rules.allowTrace) return refusal(405, 'method-not-allowed', 'TRACE is not forwarded by this balancer (--allow-trace)', { allow: ALLOWED_METHODS });
  if (req.httpVersionMajor === 1) {
    let hosts = 0;
    let host = '';
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
        hosts += 1;
        host = raw[i + 1]!;
      }
    }
    // RFC 9112 §3.2: a server MUST answer 400 to more than one Host.
    if (hosts > 1) return refusal(400, 'duplicate-host', `${hosts} Host headers; a request has exactly one (RFC 9112 §3.2)`);
    // …and to an invalid one (found by the fuzzer: undici asserts on "[" without "]").
    if (hosts === 1 && !AUTHORITY.test(host)) return refusal(400, 'bad-host', 'the Host header is not a host[:port] (RFC 9110 §7.2)');
  }
  return undefined;
}

/** The answer to CONNECT: sempre is a reverse proxy, not a forward one. */
export const CONNECT_REFUSAL = refusal(405, 'method-not-allowed', 'CONNECT is not supported: this is a reverse proxy, not a forward proxy', { allow: ALLOWED_METHODS });
