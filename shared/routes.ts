// Routes an app instance declares for itself (agent --route), published in
// its Consul registration so a balancer routes by host and path with no
// configuration of its own. Written `[host]/path[;strip]`:
//   shop.example.com/        every path of that host
//   *.example.com/           any host one label under example.com
//   /api                     /api and /api/… on any host
//   /api;strip               the same, with /api taken off before the app sees it

/** Service meta key holding the instance's routes, comma-separated. */
export const ROUTES_META = 'sempre_routes';
/** Tag on the services that declare routes, so a balancer need not read every service in Consul. */
export const ROUTED_TAG = 'sempre-routed';

export interface Route {
  /** Lower-case host, "*.example.com" for a wildcard, "" for any host. */
  readonly host: string;
  /** Starts with "/"; no trailing "/" except the root. */
  readonly path: string;
  /** Take the path prefix off before forwarding. */
  readonly strip: boolean;
}

const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PATH = /^\/[A-Za-z0-9._~!$&'()*+=:@%\/-]*$/;

/** Parses one route; a message names what is wrong. */
export function parseRoute(text: string): Route | { error: string } {
  const [spec = '', ...options] = text.trim().split(';');
  const unknown = options.find((o) => o !== 'strip');
  if (unknown !== undefined) return { error: `unknown route option "${unknown}" in "${text}" (the only one is ;strip)` };
  const slash = spec.indexOf('/');
  if (slash < 0) return { error: `"${text}" has no path: write host/ or /path (e.g. shop.example.com/ or /api)` };
  const host = spec.slice(0, slash).toLowerCase();
  let path = spec.slice(slash);
  if (host && (!HOST.test(host) || host.length > 253 || host.slice(1).includes('*'))) return { error: `"${host}" in "${text}" is not a host name or *.domain wildcard` };
  if (!PATH.test(path) || path.includes('//') || /(^|\/)\.\.?(\/|$)/.test(path)) return { error: `"${path}" in "${text}" is not a plain URL path` };
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const strip = options.includes('strip');
  if (strip && path === '/') return { error: `"${text}": ;strip needs a path prefix to strip` };
  return { host, path, strip };
}

export function formatRoute(route: Route): string {
  return `${route.host}${route.path}${route.strip ? ';strip' : ''}`;
}

/** The routes in an instance's meta; entries that do not parse are returned as problems. */
export function routesFromMeta(meta: Readonly<Record<string, string>>): { routes: Route[]; problems: string[] } {
  const routes: Route[] = [];
  const problems: string[] = [];
  for (const item of (meta[ROUTES_META] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const parsed = parseRoute(item);
    if ('error' in parsed) problems.push(parsed.error);
    else routes.push(parsed);
  }
  return { routes, problems };
}

/** Whether `path` (the request's, without query) falls under `prefix`, on segment boundaries. */
export function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* / */);
}

/** The request target with the route's prefix taken off ("/api/x?q" → "/x?q", "/api" → "/"). */
export function stripPrefix(target: string, prefix: string): string {
  const rest = target.slice(prefix.length);
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}
