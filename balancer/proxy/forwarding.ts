// What a request to an instance carries of the client's headers, for both
// paths: the HTTP path (undici, raw header arrays) and the tunnels (WebSocket
// and other upgrades, through http-proxy-3, which sends req.headers).
// Hop-by-hop headers are dropped and the forwarding headers set afresh, so the
// app knows who the client is and which request this is: X-Forwarded-For
// (appended to), X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1): not forwarded either way. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

// A request also loses what undici sets itself or refuses (expect) and the
// forwarding headers, which are set afresh. HTTP/2 pseudo-headers go too.
const REQUEST_DROP: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'proxy-authorization', 'expect', 'http2-settings', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']);
// An upgrade keeps Connection and Upgrade: they ask the instance for the tunnel.
const UPGRADE_DROP: ReadonlySet<string> = new Set([...REQUEST_DROP].filter((name) => name !== 'connection' && name !== 'upgrade'));

/** Headers named in a Connection header are hop-by-hop too (RFC 9110 §7.6.1). */
export function connectionTokens(value: string): Set<string> | undefined {
  // Nearly every Connection header is one of these: no set to build.
  if (value.length <= 10 && /^(keep-alive|close)$/i.test(value)) return undefined;
  const tokens = value.toLowerCase().split(',').map((t) => t.trim()).filter((t) => t && t !== 'close' && t !== 'keep-alive' && t !== 'upgrade');
  return tokens.length > 0 ? new Set(tokens) : undefined;
}

/**
 * A client's X-Request-Id is kept only when it is a plain token: it ends up
 * in logs and in the app's headers, so nothing with spaces, quotes or
 * control characters, and nothing long, gets through.
 */
export function acceptedRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && /^[\w.:@+\/=-]{1,128}$/.test(header) ? header : undefined;
}

/** A request's ID from the client's X-Request-Id (kept when acceptable), or a new one. */
export type RequestIdSource = (clientValue: string | string[] | undefined) => string;

/** Request IDs unique to this process: a prefix from the PID and start time, then a counter. */
export function requestIdSource(): RequestIdSource {
  const prefix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  let sequence = 0;
  return (clientValue) => acceptedRequestId(clientValue) ?? `${prefix}-${(sequence += 1).toString(36)}`;
}

/** What the HTTP path needs to know of a request's headers, read in the same pass. */
export interface RequestFacts {
  /** Content-Length above 0 or Transfer-Encoding: there is a body to read. */
  hasBody: boolean;
  cookie: string | undefined;
  /** The ID the request was given (X-Request-Id upstream, reqId in the logs). */
  reqId: string;
}

/**
 * The request's headers for the instance on the HTTP path, from the raw array
 * in one pass (Node builds req.headers only when something reads it, so the
 * client's X-Request-Id is read here too). `facts`, when given, is filled in
 * the same pass.
 */
export function upstreamRequestHeaders(raw: readonly string[], remote: string, encrypted: boolean, reqId: string | RequestIdSource, facts?: RequestFacts): string[] {
  return forwardedHeaders(raw, remote, encrypted, reqId, REQUEST_DROP, facts);
}

/**
 * The same rules for an upgrade (a tunnel), applied to req.headers, which
 * http-proxy-3 sends. Once per client request, not per attempt, or retries
 * would append the client's address again.
 */
export function setForwardingHeaders(req: IncomingMessage, reqId: string): void {
  const socket = req.socket as { remoteAddress?: string; encrypted?: boolean };
  req.headers = headerObject(forwardedHeaders(req.rawHeaders, socket.remoteAddress ?? '', socket.encrypted === true, reqId, UPGRADE_DROP));
}

/** Flat [name, value, ...] in, flat out: the client's headers less `drop`, less those Connection names, then the forwarding headers. */
function forwardedHeaders(raw: readonly string[], remote: string, encrypted: boolean, reqId: string | RequestIdSource, drop: ReadonlySet<string>, facts?: RequestFacts): string[] {
  const out: string[] = [];
  let clientRequestId: string | undefined;
  let forwardedFor = '';
  let host = '';
  let authority = '';
  let nominated: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
    else if (lower === 'host') host = value;
    else if (lower === ':authority') authority = value;
    else if (lower === 'connection') nominated = connectionTokens(value);
    // Repeated, it is joined as req.headers would, and then refused.
    else if (lower === 'x-request-id') clientRequestId = clientRequestId === undefined ? value : `${clientRequestId}, ${value}`;
    else if (facts && lower === 'cookie') facts.cookie = facts.cookie ? `${facts.cookie}; ${value}` : value;
    else if (facts && (lower === 'transfer-encoding' || (lower === 'content-length' && value !== '0'))) facts.hasBody = true;
    if (drop.has(lower) || lower.charCodeAt(0) === 58 /* ':' */) continue;
    out.push(name, value);
  }
  if (nominated) {
    for (let i = out.length - 2; i >= 0; i -= 2) if (nominated.has(out[i]!.toLowerCase())) out.splice(i, 2);
  }
  // HTTP/2 names the host :authority.
  if (!host && authority) out.push('host', authority);
  const id = typeof reqId === 'string' ? reqId : reqId(clientRequestId);
  if (facts) facts.reqId = id;
  out.push(
    'x-forwarded-for', forwardedFor ? `${forwardedFor}, ${remote}` : remote,
    'x-forwarded-proto', encrypted ? 'https' : 'http',
    'x-forwarded-host', host || authority,
    'x-request-id', id,
  );
  return out;
}

/**
 * A flat header list as req.headers: lower-case names, a repeated header
 * joined with ", " (Cookie with "; "). Node would keep only the first of a
 * repeated Host or Authorization; joined, the instance refuses it instead.
 */
function headerObject(flat: readonly string[]): IncomingHttpHeaders {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const prior = headers[name];
    headers[name] = prior === undefined ? flat[i + 1]! : `${prior}${name === 'cookie' ? '; ' : ', '}${flat[i + 1]!}`;
  }
  return headers;
}
