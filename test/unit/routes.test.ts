// Routes by host and path (agent --route, balancer --routing routes): parsing
// what an agent is given, matching a request's host and path, and the route
// table built from every routed service's instances. Examples first, then
// properties (fast-check): the parser never throws and what it accepts reads
// back the same, and matching agrees with a plain reading of the rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { buildRouteTable, describeRoutes, EMPTY_ROUTES, matchRoute, requestHost, type RouteTable } from '../../balancer/discovery/route-table.ts';
import { buildTable, EMPTY_TABLE, type RoutingTable } from '../../balancer/discovery/routing-table.ts';
import type { Instance } from '../../shared/instance.ts';
import { formatRoute, parseRoute, ROUTES_META, routesFromMeta, stripPrefix, underPrefix, type Route } from '../../shared/routes.ts';

const RUNS = { numRuns: 300 };

function parsed(text: string): Route {
  const result = parseRoute(text);
  assert.ok(!('error' in result), `${text}: ${'error' in result ? result.error : ''}`);
  return result;
}

function refused(text: string): string {
  const result = parseRoute(text);
  assert.ok('error' in result, `${text} should be refused, got ${JSON.stringify(result)}`);
  return result.error;
}

// --- parseRoute -------------------------------------------------------------

test('parseRoute reads a host route, a wildcard, a path on any host and ;strip', () => {
  assert.deepEqual(parsed('shop.example.com/'), { host: 'shop.example.com', path: '/', strip: false });
  assert.deepEqual(parsed('*.example.com/'), { host: '*.example.com', path: '/', strip: false });
  assert.deepEqual(parsed('/api'), { host: '', path: '/api', strip: false });
  assert.deepEqual(parsed('/api;strip'), { host: '', path: '/api', strip: true });
  assert.deepEqual(parsed('shop.example.com/cart;strip'), { host: 'shop.example.com', path: '/cart', strip: true });
  assert.deepEqual(parsed('/'), { host: '', path: '/', strip: false });
  assert.deepEqual(parsed('localhost/'), { host: 'localhost', path: '/', strip: false });
});

test('parseRoute lower-cases the host, drops a trailing slash and surrounding spaces', () => {
  assert.deepEqual(parsed('Shop.Example.COM/'), { host: 'shop.example.com', path: '/', strip: false });
  assert.deepEqual(parsed('/api/'), { host: '', path: '/api', strip: false });
  assert.deepEqual(parsed('shop.example.com/api/'), { host: 'shop.example.com', path: '/api', strip: false });
  assert.deepEqual(parsed('  /api;strip  '), { host: '', path: '/api', strip: true });
  // Paths keep their case: /API and /api are different routes, as they are different URLs.
  assert.equal(parsed('/API').path, '/API');
});

test('parseRoute refuses with a message naming the problem', () => {
  assert.match(refused('shop.example.com'), /"shop\.example\.com" has no path: write host\/ or \/path/);
  assert.match(refused(''), /has no path/);
  assert.match(refused(';strip'), /has no path/);
  assert.match(refused('/api;STRIP'), /unknown route option "STRIP" in "\/api;STRIP" \(the only one is ;strip\)/);
  assert.match(refused('/api;strip;cache'), /unknown route option "cache"/);
  assert.match(refused('/api;'), /unknown route option ""/);
  assert.match(refused('/;strip'), /;strip needs a path prefix to strip/);
  assert.match(refused('shop.example.com:8080/'), /"shop\.example\.com:8080" in "shop\.example\.com:8080\/" is not a host name or \*\.domain wildcard/);
  assert.match(refused('-shop.example.com/'), /not a host name/);
  assert.match(refused('shop..example.com/'), /not a host name/);
  assert.match(refused('sh op.example.com/'), /not a host name/);
  assert.match(refused('*/'), /"\*" .* not a host name or \*\.domain wildcard/);
  assert.match(refused('a*.example.com/'), /not a host name/);
  assert.match(refused('*.*.example.com/'), /not a host name/);
  assert.match(refused('shop.*.com/'), /not a host name/);
  assert.match(refused('[::1]/'), /not a host name/);
  assert.match(refused(`${'a'.repeat(64)}.com/`), /not a host name/, 'a label has at most 63 characters');
  assert.match(refused(`${Array.from({ length: 64 }, () => 'abc').join('.')}/`), /not a host name/, 'a name has at most 253 characters');
  for (const path of ['/a//b', '/a/../b', '/a/./b', '/..', '/.', '/a b', '/a?x=1', '/a#top', '/api,/v2', '/a\\b', '/ä']) {
    assert.match(refused(path), /is not a plain URL path/, path);
    assert.ok(refused(path).includes(`"${path}"`), `the message quotes ${path}`);
  }
});

test('routesFromMeta reads the comma-separated list an agent publishes, and reports the entries that do not parse', () => {
  const { routes, problems } = routesFromMeta({ [ROUTES_META]: 'shop.example.com/, /api;strip,bad, ,/v2/' });
  assert.deepEqual(routes.map(formatRoute), ['shop.example.com/', '/api;strip', '/v2']);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /"bad" has no path/);
  assert.deepEqual(routesFromMeta({}), { routes: [], problems: [] });
  assert.deepEqual(routesFromMeta({ [ROUTES_META]: '' }), { routes: [], problems: [] });
});

// --- underPrefix, stripPrefix ---------------------------------------------------

test('underPrefix matches on segment boundaries only: /api takes /api and /api/x, never /apix', () => {
  assert.equal(underPrefix('/api', '/api'), true);
  assert.equal(underPrefix('/api/', '/api'), true);
  assert.equal(underPrefix('/api/x/y', '/api'), true);
  assert.equal(underPrefix('/apix', '/api'), false);
  assert.equal(underPrefix('/ap', '/api'), false);
  assert.equal(underPrefix('/v2/api', '/api'), false);
  assert.equal(underPrefix('/API', '/api'), false, 'paths are compared with their case');
  assert.equal(underPrefix('/anything', '/'), true);
  assert.equal(underPrefix('/', '/'), true);
  assert.equal(underPrefix('/api/v1/x', '/api/v1'), true);
  assert.equal(underPrefix('/api/v10', '/api/v1'), false);
});

test('stripPrefix takes the prefix off and keeps the query; what is left always starts with /', () => {
  assert.equal(stripPrefix('/api/orders', '/api'), '/orders');
  assert.equal(stripPrefix('/api/orders?x=1&y=2', '/api'), '/orders?x=1&y=2');
  assert.equal(stripPrefix('/api', '/api'), '/');
  assert.equal(stripPrefix('/api/', '/api'), '/');
  assert.equal(stripPrefix('/api?x=1', '/api'), '/?x=1');
  assert.equal(stripPrefix('/api/v1/a/b', '/api/v1'), '/a/b');
});

// --- matchRoute, requestHost ------------------------------------------------------

let nextId = 0;
function instance(service: string, routes: string[], id = `${service}-${(nextId += 1)}`): Instance {
  return { id, service, node: `node-${id}`, address: '10.0.0.1', port: 3000, tags: ['sempre-routed'], meta: { [ROUTES_META]: routes.join(',') } };
}

function tableOf(services: Record<string, Instance[]>, previous: RouteTable = EMPTY_ROUTES): RouteTable {
  return buildRouteTable(previous, new Map<string, RoutingTable>(Object.entries(services).map(([name, instances]) => [name, buildTable(EMPTY_TABLE, instances)])));
}

const served = (table: RouteTable, host: string, path: string) => {
  const target = matchRoute(table, host, path);
  return target ? `${target.service} ${formatRoute(target.route)}` : 'none';
};

test('matchRoute: an exact host before a wildcard before any host, whatever the path lengths', () => {
  const table = tableOf({
    shop: [instance('shop', ['shop.example.com/'])],
    tenants: [instance('tenants', ['*.example.com/', '*.example.com/admin'])],
    api: [instance('api', ['/api;strip', '/api/v2/long/prefix'])],
  });
  assert.equal(served(table, 'shop.example.com', '/'), 'shop shop.example.com/');
  assert.equal(served(table, 'shop.example.com', '/api/v2/long/prefix/x'), 'shop shop.example.com/', 'an exact host wins over a longer path on any host');
  assert.equal(served(table, 'acme.example.com', '/api'), 'tenants *.example.com/', 'a wildcard host wins over a path on any host');
  assert.equal(served(table, 'acme.example.com', '/admin/users'), 'tenants *.example.com/admin');
  assert.equal(served(table, 'www.other.org', '/api/x'), 'api /api;strip');
  assert.equal(served(table, 'www.other.org', '/api/v2/long/prefix'), 'api /api/v2/long/prefix', 'the longest prefix within a host group');
  assert.equal(served(table, 'www.other.org', '/'), 'none');
  assert.equal(served(table, '', '/api'), 'api /api;strip', 'no Host header still meets routes on any host');
});

test('matchRoute: a wildcard covers exactly one label, never the bare domain or two labels', () => {
  const table = tableOf({ tenants: [instance('tenants', ['*.example.com/'])] });
  assert.equal(served(table, 'acme.example.com', '/'), 'tenants *.example.com/');
  assert.equal(served(table, 'example.com', '/'), 'none');
  assert.equal(served(table, 'a.b.example.com', '/'), 'none');
  assert.equal(served(table, 'acme.example.com.evil.org', '/'), 'none');
});

test('matchRoute: within a host, the longest prefix that holds on a segment boundary', () => {
  const table = tableOf({
    site: [instance('site', ['www.example.com/'])],
    api: [instance('api', ['www.example.com/api'])],
    apiv2: [instance('apiv2', ['www.example.com/api/v2'])],
  });
  assert.equal(served(table, 'www.example.com', '/api/v2/orders'), 'apiv2 www.example.com/api/v2');
  assert.equal(served(table, 'www.example.com', '/api/v20'), 'api www.example.com/api');
  assert.equal(served(table, 'www.example.com', '/api'), 'api www.example.com/api');
  assert.equal(served(table, 'www.example.com', '/apix'), 'site www.example.com/');
  assert.equal(served(table, 'www.example.com', '/'), 'site www.example.com/');
});

test('matchRoute: a host with only path routes falls through to the wildcard and any-host routes for its other paths', () => {
  const table = tableOf({
    admin: [instance('admin', ['shop.example.com/admin'])],
    tenants: [instance('tenants', ['*.example.com/'])],
  });
  assert.equal(served(table, 'shop.example.com', '/admin/x'), 'admin shop.example.com/admin');
  assert.equal(served(table, 'shop.example.com', '/cart'), 'tenants *.example.com/');
});

test('requestHost: lower case, no port, no trailing dot; IPv6 literals keep their brackets', () => {
  assert.equal(requestHost('Shop.Example.com:8080'), 'shop.example.com');
  assert.equal(requestHost('shop.example.com'), 'shop.example.com');
  assert.equal(requestHost('SHOP.EXAMPLE.COM.'), 'shop.example.com');
  assert.equal(requestHost('shop.example.com.:443'), 'shop.example.com');
  assert.equal(requestHost(' shop.example.com '), 'shop.example.com');
  assert.equal(requestHost('[::1]:8080'), '[::1]');
  assert.equal(requestHost('[2001:DB8::1]'), '[2001:db8::1]');
  assert.equal(requestHost('127.0.0.1:8080'), '127.0.0.1');
  assert.equal(requestHost(''), '');
  assert.equal(requestHost(undefined), '');
  // Whatever the header says, a request reaches the routes through this: case and port never matter.
  const table = tableOf({ shop: [instance('shop', ['shop.example.com/'])] });
  assert.equal(served(table, requestHost('SHOP.example.com.:8080'), '/'), 'shop shop.example.com/');
});

// --- buildRouteTable ---------------------------------------------------------------

test('buildRouteTable: each route is served by the instances of its service that declare it; the union is served', () => {
  // A rolling deploy: api-old declares /api; api-new declares /api and /v2.
  const old = instance('api', ['/api;strip'], 'api-old');
  const renewed = instance('api', ['/api;strip', '/v2'], 'api-new');
  const table = tableOf({ api: [old, renewed], shop: [instance('shop', ['shop.example.com/'], 'shop-1'), instance('shop', ['shop.example.com/'], 'shop-2')] });
  assert.deepEqual(describeRoutes(table).map((r) => `${r.route} ${r.service} ${r.instances.join('+')}${r.strip ? ' strip' : ''}`).sort(), [
    '/api api api-new+api-old strip',
    '/v2 api api-new',
    'shop.example.com/ shop shop-1+shop-2',
  ]);
  assert.deepEqual(matchRoute(table, 'x', '/v2/a')?.table.instances.map((i) => i.id), ['api-new'], 'only the instance that declares /v2 gets /v2');
  assert.deepEqual(table.conflicts, []);
  assert.deepEqual(table.problems, []);
});

test('buildRouteTable: a route stays while any instance declares it, and goes with the last one', () => {
  const a = instance('api', ['/api', '/old'], 'api-a');
  const b = instance('api', ['/api'], 'api-b');
  const first = tableOf({ api: [a, b] });
  assert.equal(served(first, 'h', '/old'), 'api /old');
  const second = tableOf({ api: [b] }, first);
  assert.equal(served(second, 'h', '/old'), 'none');
  assert.equal(served(second, 'h', '/api'), 'api /api');
  assert.equal(second.version, first.version + 1, 'each table is a new version');
  assert.equal(served(first, 'h', '/old'), 'api /old', 'the previous table is untouched');
});

test('buildRouteTable: two services on one route, the first by name wins and the conflict names both', () => {
  const table = tableOf({
    zshop: [instance('zshop', ['shop.example.com/', 'zshop.example.com/'], 'zshop-1')],
    shop: [instance('shop', ['shop.example.com/'], 'shop-1')],
    beta: [instance('beta', ['shop.example.com/'], 'beta-1')],
  });
  assert.equal(served(table, 'shop.example.com', '/'), 'beta shop.example.com/');
  assert.deepEqual(table.conflicts, [{ route: 'shop.example.com/', winner: 'beta', losers: ['shop', 'zshop'] }]);
  assert.equal(served(table, 'zshop.example.com', '/'), 'zshop zshop.example.com/', 'the loser keeps its other routes');
  // Same host and path with and without ;strip is still the same route.
  const strip = tableOf({ a: [instance('a', ['/api'])], b: [instance('b', ['/api;strip'])] });
  assert.deepEqual(strip.conflicts.map((c) => `${c.route} ${c.winner} ${c.losers.join()}`), ['/api a b']);
});

test('buildRouteTable: routes that do not parse are skipped and reported with service and instance', () => {
  const table = tableOf({ api: [instance('api', ['/api', 'nopath', '/x;gzip'], 'api-1')] });
  assert.equal(served(table, 'h', '/api'), 'api /api');
  assert.equal(table.problems.length, 2);
  assert.match(table.problems[0]!, /^api\/api-1: "nopath" has no path/);
  assert.match(table.problems[1]!, /^api\/api-1: unknown route option "gzip"/);
});

test('buildRouteTable: a service whose instances declare no route gets no traffic', () => {
  const table = tableOf({ quiet: [instance('quiet', [])], api: [instance('api', ['/api'])] });
  assert.deepEqual(table.targets.map((t) => t.service), ['api']);
});

test('buildRouteTable: a service whose instances are all down keeps its routes with no instance behind them (a 503, not another service)', () => {
  const tables = new Map<string, RoutingTable>([
    ['web', buildTable(EMPTY_TABLE, [instance('web', ['/'], 'web-1')])],
    ['api', buildTable(EMPTY_TABLE, [])],
  ]);
  const down = instance('api', ['api.example.com/', '/api'], 'api-1');
  const table = buildRouteTable(EMPTY_ROUTES, tables, new Map([['api', [down]]]));
  const target = matchRoute(table, 'api.example.com', '/orders');
  assert.equal(target?.service, 'api', 'not the catch-all of another service');
  assert.deepEqual(target?.table.instances, []);
  assert.equal(matchRoute(table, 'www.example.com', '/api/x')?.service, 'api');
  assert.equal(matchRoute(table, 'www.example.com', '/')?.service, 'web');
  // Deregistered (Consul knows no instance): the route is gone and the catch-all answers.
  assert.equal(matchRoute(buildRouteTable(table, tables), 'api.example.com', '/orders')?.service, 'web');
});

test('buildRouteTable: an instance listed both passing and not passing counts once, with its passing routes', () => {
  const live = instance('api', ['/api'], 'api-1');
  const stale = { ...live, meta: { [ROUTES_META]: '/api,/old' } };
  const table = buildRouteTable(EMPTY_ROUTES, new Map([['api', buildTable(EMPTY_TABLE, [live])]]), new Map([['api', [stale]]]));
  assert.deepEqual(describeRoutes(table).map((r) => `${r.route} ${r.instances.join('+')}`), ['/api api-1']);
});

test('buildRouteTable: a conflict is won by name whatever the health, so a route never moves between services as instances come and go', () => {
  const tables = new Map<string, RoutingTable>([['shop', buildTable(EMPTY_TABLE, [instance('shop', ['shop.example.com/'], 'shop-1')])], ['ashop', buildTable(EMPTY_TABLE, [])]]);
  const table = buildRouteTable(EMPTY_ROUTES, tables, new Map([['ashop', [instance('ashop', ['shop.example.com/'], 'ashop-1')]]]));
  assert.deepEqual(table.conflicts, [{ route: 'shop.example.com/', winner: 'ashop', losers: ['shop'] }]);
  assert.deepEqual(matchRoute(table, 'shop.example.com', '/')?.table.instances, [], 'the winner is down: 503, not the loser');
});

// --- properties --------------------------------------------------------------------

const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('/', '.', '*', ';', 'a', 'B', '-', ':', '%', ' ', 'strip', '..', '?') }));

test('parseRoute never throws; what it accepts is well formed and reads back the same', () => {
  fc.assert(fc.property(anyText, (text) => {
    const result = parseRoute(text);
    if ('error' in result) {
      assert.equal(typeof result.error, 'string');
      assert.ok(result.error.length > 0);
      return;
    }
    assert.ok(result.path.startsWith('/'));
    assert.ok(result.path === '/' || !result.path.endsWith('/'));
    assert.ok(!result.path.includes('//'));
    assert.equal(result.host, result.host.toLowerCase());
    assert.ok(!result.host.includes('/') && !result.host.includes(':'));
    assert.ok(!result.host.slice(1).includes('*'));
    assert.ok(!(result.strip && result.path === '/'));
    assert.deepEqual(parseRoute(formatRoute(result)), result);
  }), { numRuns: 2000 });
});

const label = fc.constantFrom('shop', 'api', 'www', 'a-b', 'x1');
const domain = fc.constantFrom('example.com', 'example.org');
const segment = fc.constantFrom('api', 'apix', 'v2', 'a', 'shop', 'x');
const path = fc.array(segment, { maxLength: 3 }).map((s) => `/${s.join('/')}`);
const routeHost = fc.oneof(fc.constant(''), fc.tuple(label, domain).map(([l, d]) => `${l}.${d}`), domain.map((d) => `*.${d}`));

test('a generated route reads back the same, and a request path under it is matched by underPrefix', () => {
  fc.assert(fc.property(routeHost, path, fc.boolean(), fc.array(segment, { maxLength: 2 }), (host, prefix, strip, rest) => {
    const text = `${host}${prefix}${strip && prefix !== '/' ? ';strip' : ''}`;
    const route = parsed(text);
    assert.equal(formatRoute(route), text);
    const below = rest.length ? `${prefix === '/' ? '' : prefix}/${rest.join('/')}` : prefix;
    assert.ok(underPrefix(below, route.path), `${below} under ${route.path}`);
    assert.equal(underPrefix(`${prefix}x`, route.path), prefix === '/', `${prefix}x is not under ${prefix}`);
  }), RUNS);
});

test('stripPrefix: the prefix plus what is left gives the request back', () => {
  fc.assert(fc.property(path.filter((p) => p !== '/'), fc.array(segment, { maxLength: 2 }), fc.option(fc.constantFrom('?x=1', '?a=/api&b', '?'), { nil: '' }), (prefix, rest, query) => {
    const target = `${prefix}${rest.length ? `/${rest.join('/')}` : ''}${query}`;
    const left = stripPrefix(target, prefix);
    assert.ok(left.startsWith('/'), left);
    assert.equal(left.endsWith(query), true);
    assert.equal(rest.length === 0 ? `${prefix}${left.slice(1)}` : `${prefix}${left}`, target);
  }), RUNS);
});

/** The rules as a person reads them, with no cleverness: the reference matchRoute must agree with. */
function reference(routes: Array<{ service: string; route: Route }>, host: string, reqPath: string): string {
  const rank = (h: string) => (h === host ? 0 : h.startsWith('*.') && host.endsWith(h.slice(1)) && !host.slice(0, -(h.length - 1)).includes('.') && host.length > h.length - 1 ? 1 : h === '' ? 2 : -1);
  const candidates = routes
    .filter((r) => rank(r.route.host) >= 0 && (r.route.path === '/' || reqPath === r.route.path || reqPath.startsWith(`${r.route.path}/`)))
    .sort((a, b) => rank(a.route.host) - rank(b.route.host) || b.route.path.length - a.route.path.length || a.service.localeCompare(b.service));
  const best = candidates[0];
  return best ? `${best.service} ${best.route.host}${best.route.path}` : 'none';
}

test('matchRoute agrees with the rules read plainly, for any set of routes and any request', () => {
  const declared = fc.array(fc.tuple(fc.constantFrom('s1', 's2', 's3'), routeHost, path), { minLength: 1, maxLength: 8 });
  const requestHostArb = fc.oneof(fc.tuple(label, domain).map(([l, d]) => `${l}.${d}`), domain, fc.constant('a.shop.example.com'), fc.constant(''));
  fc.assert(fc.property(declared, requestHostArb, path, fc.boolean(), (routes, host, reqPath, trailing) => {
    const byService: Record<string, Instance[]> = {};
    for (const [service, h, p] of routes) (byService[service] ??= []).push(instance(service, [`${h}${p}`]));
    const table = tableOf(byService);
    const list = routes.map(([service, h, p]) => ({ service, route: parsed(`${h}${p}`) }));
    const target = trailing && reqPath !== '/' ? `${reqPath}/` : reqPath;
    const got = matchRoute(table, host, target);
    assert.equal(got ? `${got.service} ${got.route.host}${got.route.path}` : 'none', reference(list, host, target));
  }), { numRuns: 1000 });
});

test('requestHost never throws, and a host name with any port and case reads as the lower-case name', () => {
  fc.assert(fc.property(anyText, (header) => {
    const host = requestHost(header);
    assert.equal(host, host.toLowerCase());
  }), RUNS);
  fc.assert(fc.property(fc.tuple(label, domain).map(([l, d]) => `${l}.${d}`), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.boolean(), fc.boolean(), (name, port, upper, dot) => {
    const header = `${upper ? name.toUpperCase() : name}${dot ? '.' : ''}${port === undefined ? '' : `:${port}`}`;
    assert.equal(requestHost(header), name);
  }), RUNS);
});

test('instances of one service that disagree on ;strip (a deploy adding it) each get the path they declared', () => {
  const old = instance('api', ['/api'], 'api-old');
  const fresh = instance('api', ['/api;strip'], 'api-new');
  const target = matchRoute(tableOf({ api: [old, fresh] }), 'www.example.com', '/api/x')!;
  assert.deepEqual(target.table.instances.map((i) => i.id), ['api-new', 'api-old']);
  assert.deepEqual([...target.strips], ['api-new'], 'only the instance that asked for ;strip has the prefix taken off');
  assert.equal(target.route.strip, true, 'the route reads as stripped while any instance strips it');
});
