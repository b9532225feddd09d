// Property-based tests (fast-check) for every parser of outside input:
// command-line options and the environment, JSON config files, Consul's
// responses, and the one client header the balancer passes on (X-Request-Id).
// For any input: no exception escapes but the clear ConfigError, and nothing
// invalid is ever accepted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { agentCommand } from '../../agent/options.ts';
import { parseCatalogEntries } from '../../balancer/discovery/catalog-watch.ts';
import { balancerCommand } from '../../balancer/options.ts';
import { acceptedRequestId } from '../../balancer/proxy/forwarding.ts';
import { parseHealthEntries } from '../../balancer/discovery/routing-table.ts';
import { ConfigError, loadOptions } from '../../shared/config/options.ts';
import { isHostName, parseDurationMs } from '../../shared/config/values.ts';

const RUNS = { numRuns: 300 };

// Strings that look like what people type, and strings that do not.
const optionValue = fc.oneof(
  fc.string(),
  fc.integer({ min: -100_000, max: 100_000 }).map(String),
  fc.constantFrom('', '0', '-1', '65536', '1e3', 'NaN', '250ms', '2s', '1.5m', '1h', 'true', 'false', 'http://127.0.0.1:8500', '10.0.0.1', '::1', 'a,b', 'k=v', ' ', '\u0000'),
);
const flags = [...Object.values(balancerCommand.options).map((o) => o.flag), ...Object.values(agentCommand.options).map((o) => o.flag), 'nope'];
const argv = fc.array(fc.tuple(fc.constantFrom(...flags), optionValue).map(([flag, value]) => [`--${flag}`, value]), { maxLength: 6 }).map((pairs) => pairs.flat());

function checkBalancerValues(values: Record<string, unknown>): void {
  const v = values as { port: number; adminPort: number; retries: number; connectTimeout: number; headersTimeout: number; requestTimeout: number; host: string; consul: URL; rateLimit: number };
  assert.ok(Number.isInteger(v.port) && v.port >= 1 && v.port <= 65535);
  assert.notEqual(v.port, v.adminPort);
  assert.ok(Number.isInteger(v.retries) && v.retries >= 0 && v.retries <= 10);
  assert.ok(Number.isFinite(v.connectTimeout) && v.connectTimeout >= 10);
  assert.ok(v.headersTimeout <= v.requestTimeout);
  assert.ok(isHostName(v.host));
  assert.match(v.consul.protocol, /^https?:$/);
  assert.ok(Number.isInteger(v.rateLimit) && v.rateLimit >= 0);
}

test('balancer options from any argv and environment: a valid config or a ConfigError naming fields, nothing else', () => {
  fc.assert(fc.property(argv, fc.dictionary(fc.constantFrom('SEMPRE_PORT', 'SEMPRE_RETRIES', 'CONSUL_HTTP_ADDR', 'SEMPRE_HEADERS_TIMEOUT', 'SEMPRE_RATE_LIMIT'), optionValue), (args, env) => {
    try {
      const loaded = loadOptions(balancerCommand, args, env);
      if (loaded.kind === 'config') checkBalancerValues(loaded.values as never);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `unexpected ${String(error)}`);
      assert.ok((error as ConfigError).problems.every((p) => /^balancer\.\w+: /.test(p) || /^balancer: /.test(p)), (error as ConfigError).problems.join('\n'));
    }
  }), RUNS);
});

test('agent options from any argv: valid or a ConfigError, and an accepted port is a port', () => {
  fc.assert(fc.property(argv, (args) => {
    try {
      const loaded = loadOptions(agentCommand, args, {});
      if (loaded.kind === 'config') {
        assert.ok(Number.isInteger(loaded.values.port) && loaded.values.port >= 1 && loaded.values.port <= 65535);
        assert.ok(loaded.values.ttl >= 1000 && loaded.values.deregisterAfter >= 60_000);
      }
    } catch (error) {
      assert.ok(error instanceof ConfigError, `unexpected ${String(error)}`);
    }
  }), RUNS);
});

test('a JSON config file with any content: valid or a ConfigError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-prop-'));
  try {
    const file = join(dir, 'config.json');
    const content = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.dictionary(fc.constantFrom('balancer', 'port', 'retries', 'strategy'), fc.jsonValue()).map((v) => JSON.stringify(v)),
      fc.record({ balancer: fc.dictionary(fc.constantFrom('port', 'retries', 'strategy', 'consul', 'maxBody', 'slowStart'), fc.jsonValue()) }).map((v) => JSON.stringify(v)),
    );
    fc.assert(fc.property(content, (text) => {
      writeFileSync(file, text);
      try {
        const loaded = loadOptions(balancerCommand, ['--config', file], {});
        if (loaded.kind === 'config') checkBalancerValues(loaded.values as never);
      } catch (error) {
        assert.ok(error instanceof ConfigError, `unexpected ${String(error)} for ${text.slice(0, 80)}`);
      }
    }), RUNS);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('durations: any string parses to a finite, non-negative number or to nothing', () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.stringMatching(/^\d{1,6}(\.\d{1,3})?(ms|s|m|h)?$/)), (text) => {
    const ms = parseDurationMs(text);
    assert.ok(ms === undefined || (Number.isFinite(ms) && ms >= 0));
  }), RUNS);
  fc.assert(fc.property(fc.integer({ min: 0, max: 1_000_000 }), (n) => {
    assert.equal(parseDurationMs(`${n}ms`), n);
    assert.equal(parseDurationMs(`${n}s`), n * 1000);
  }), RUNS);
});

// Consul health entries, valid and not: the shapes a broken or hostile Consul could send.
const entry = fc.record({
  Node: fc.oneof(fc.record({ Node: fc.string(), Address: fc.oneof(fc.ipV4(), fc.string()) }), fc.anything()),
  Service: fc.oneof(
    fc.record({
      ID: fc.oneof(fc.string(), fc.constantFrom('app1', 'app2')),
      Service: fc.constant('web'),
      Address: fc.oneof(fc.ipV4(), fc.domain(), fc.string(), fc.constant('')),
      Port: fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.double(), fc.string()),
      Tags: fc.oneof(fc.array(fc.string()), fc.constant(null), fc.anything()),
      Meta: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.constant(null), fc.anything()),
    }, { requiredKeys: ['ID', 'Port'] }),
    fc.anything(),
  ),
  Checks: fc.oneof(fc.array(fc.record({ CheckID: fc.string(), Status: fc.constantFrom('passing', 'critical', 'warning', 'odd'), Output: fc.string(), ServiceID: fc.string() })), fc.anything()),
}, { requiredKeys: [] });
const consulBody = fc.oneof(fc.array(entry, { maxLength: 6 }), fc.anything(), fc.jsonValue());

test('Consul health responses of any shape: never a throw; every instance routed to has a unique ID, a host and a port', () => {
  fc.assert(fc.property(consulBody, (body) => {
    const parsed = parseHealthEntries(body);
    if ('error' in parsed) return;
    const ids = parsed.instances.map((i) => i.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const instance of parsed.instances) {
      assert.ok(instance.id.length > 0);
      assert.ok(isHostName(instance.address), `address ${JSON.stringify(instance.address)}`);
      assert.ok(Number.isInteger(instance.port) && instance.port >= 1 && instance.port <= 65535);
    }
  }), RUNS);
});

test('Consul catalog responses of any shape (the dashboard): never a throw; each instance has a known health', () => {
  fc.assert(fc.property(consulBody, (body) => {
    const parsed = parseCatalogEntries(body);
    if ('error' in parsed) return;
    for (const instance of parsed) assert.ok(['passing', 'warning', 'critical', 'maintenance'].includes(instance.health));
  }), RUNS);
});

test('X-Request-Id: only a short plain token is passed on; anything else is replaced', () => {
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.stringMatching(/^[\w.-]{1,40}$/), fc.array(fc.string()), fc.constant(undefined)), (header) => {
    const kept = acceptedRequestId(header as string | string[] | undefined);
    if (kept === undefined) return;
    assert.equal(kept, header);
    assert.ok(kept.length <= 128 && !/[\s"'<>\\\u0000-\u001f\u007f]/.test(kept));
  }), RUNS);
  assert.equal(acceptedRequestId('abc-123'), 'abc-123');
  assert.equal(acceptedRequestId('a b'), undefined);
  assert.equal(acceptedRequestId('x'.repeat(129)), undefined);
});
