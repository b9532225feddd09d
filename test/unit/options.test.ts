import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { agentCommand } from '../../agent/options.ts';
import { balancerCommand } from '../../balancer/options.ts';
import { ConfigError, loadOptions, type CommandSpec, type OptionSpecs } from '../../shared/config/options.ts';

function problems<S extends OptionSpecs>(spec: CommandSpec<S>, argv: string[], env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadOptions(spec, argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const AGENT_CASES: Array<[string[], string]> = [
  [[], 'agent.port: is required (set --port or SEMPRE_PORT)'],
  [['--port', '0'], 'agent.port: must be a whole number from 1 to 65535 (got "0"), from --port'],
  [['--port', '3000.5'], 'agent.port: must be a whole number from 1 to 65535 (got "3000.5"), from --port'],
  [['--port', '3000', '--service', 'my app'], `agent.service: must be a service name of 1–63 letters, digits, '.', '_' or '-' (got "my app"), from --service`],
  [['--port', '3000', '--address', 'http://x'], 'agent.address: must be an address or host name (got "http://x"), from --address'],
  [['--port', '3000', '--health-path', 'healthz'], 'agent.healthPath: must be a path starting with / (got "healthz"), from --health-path'],
  [['--port', '3000', '--check-interval', 'soon'], 'agent.checkInterval: must be a duration such as 500ms, 2s or 1m (got "soon"), from --check-interval'],
  [['--port', '3000', '--check-interval', '50ms'], 'agent.checkInterval: must be from 100ms to 1m (got "50ms"), from --check-interval'],
  [['--port', '3000', '--ttl', '500ms'], 'agent.ttl: must be from 1s to 10m (got "500ms"), from --ttl'],
  [['--port', '3000', '--deregister-after', '30s'], 'agent.deregisterAfter: must be from 1m to 168h (got "30s"), from --deregister-after'],
  [['--port', '3000', '--consul', 'consul:8500/v1'], 'agent.consul: must be an http(s) address such as http://127.0.0.1:8500 (got "consul:8500/v1"), from --consul'],
  [['--port', '3000', '--tags', 'a,b c'], 'agent.tags: must be a comma-separated list of tags without spaces (got "b c"), from --tags'],
  [['--port', '3000', '--meta', 'version'], `agent.meta: must be key=value pairs separated by commas, keys of letters, digits, '_' or '-' (got "version"), from --meta`],
  [['--port', '3000', '--drain=-1s'], 'agent.drain: must be a duration such as 500ms, 2s or 1m (got "-1s"), from --drain'],
  [['--port', '3000', '--log-level', 'loud'], 'agent.logLevel: must be one of trace, debug, info, warn, error (got "loud"), from --log-level'],
  [['--port', '3000', '--log-buffer', '1MB'], 'agent.logBuffer: must be a whole number from 16384 to 1073741824 (got "1MB"), from --log-buffer'],
  [['--port', '3000', '--check-interval', '2s', '--ttl', '3s'], 'agent.ttl: must be at least twice agent.checkInterval so one late heartbeat is not an outage (ttl 3000ms, checkInterval 2000ms)'],
  [['--port', '3000', '--probe-timeout', '2s'], 'agent.probeTimeout: must not be longer than agent.checkInterval (probeTimeout 2000ms, checkInterval 1000ms)'],
];

for (const [argv, expected] of AGENT_CASES) {
  test(`agent rejects ${argv.join(' ') || 'no options'} with "${expected.split(':')[0]}"`, () => {
    assert.deepEqual(problems(agentCommand, argv), [expected]);
  });
}

const BALANCER_CASES: Array<[string[], string]> = [
  [['--retries', '11'], 'balancer.retries: must be a whole number from 0 to 10 (got "11"), from --retries'],
  [['--log-buffer', '4096'], 'balancer.logBuffer: must be a whole number from 16384 to 1073741824 (got "4096"), from --log-buffer'],
  [['--strategy', 'random'], 'balancer.strategy: must be one of least-outstanding, round-robin (got "random"), from --strategy'],
  [['--retry-on-status', '404'], 'balancer.retryOnStatus: must be a comma-separated list of HTTP 5xx status codes (got "404"), from --retry-on-status'],
  [['--connect-timeout', '5ms'], 'balancer.connectTimeout: must be from 10ms to 1m (got "5ms"), from --connect-timeout'],
  [['--eject-after', '0'], 'balancer.ejectAfter: must be a whole number from 1 to 100 (got "0"), from --eject-after'],
  [['--access-log', 'maybe'], 'balancer.accessLog: must be true or false (got "maybe"), from --access-log'],
  [['--port', '8081'], 'balancer.adminPort: must differ from balancer.port (both 8081)'],
];

for (const [argv, expected] of BALANCER_CASES) {
  test(`balancer rejects ${argv.join(' ')} with "${expected.split(':')[0]}"`, () => {
    assert.deepEqual(problems(balancerCommand, argv, {}), [expected]);
  });
}

test('the environment overrides the file and flags override the environment', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-options-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agent.json');
  // The file sets all three; the environment two of them; a flag one.
  writeFileSync(file, JSON.stringify({ agent: { port: 3000, service: 'from-file', ttl: '5s' } }));
  const loaded = loadOptions(agentCommand, ['--port', '3002', '--config', file], { SEMPRE_PORT: '3001', SEMPRE_SERVICE: 'shop' });
  assert.equal(loaded.kind, 'config');
  if (loaded.kind !== 'config') return;
  assert.equal(loaded.values.port, 3002, 'a flag beats the environment and the file');
  assert.equal(loaded.values.service, 'shop', 'the environment beats the file');
  assert.equal(loaded.values.ttl, 5000, 'the file beats the default');
  assert.equal(loaded.values.checkInterval, 1000, 'the default where nothing is set');
  assert.deepEqual(loaded.values.meta, {});
  // The same file named by SEMPRE_CONFIG, and a bad value in it is reported as coming from the file.
  const fromEnvFile = loadOptions(agentCommand, [], { SEMPRE_CONFIG: file });
  assert.ok(fromEnvFile.kind === 'config');
  assert.deepEqual([fromEnvFile.values.port, fromEnvFile.values.service], [3000, 'from-file']);
  writeFileSync(file, JSON.stringify({ agent: { port: 3000, ttl: '500ms' } }));
  assert.deepEqual(problems(agentCommand, ['--config', file]), [`agent.ttl: must be from 1s to 10m (got "500ms"), from ${file} key "ttl"`]);
});

test('every problem is reported at once, with where the value came from', () => {
  assert.deepEqual(problems(balancerCommand, ['--retries', 'x'], { SEMPRE_PORT: 'eighty' }), [
    'balancer.port: must be a whole number from 1 to 65535 (got "eighty"), from environment SEMPRE_PORT',
    'balancer.retries: must be a whole number from 0 to 10 (got "x"), from --retries',
  ]);
});

test('tags and meta are parsed into Consul\'s shapes', () => {
  const loaded = loadOptions(agentCommand, ['--port', '1', '--tags', 'blue, v2', '--meta', 'version=1.4.2,zone=a'], {});
  assert.ok(loaded.kind === 'config');
  assert.deepEqual(loaded.values.tags, ['blue', 'v2']);
  assert.deepEqual(loaded.values.meta, { version: '1.4.2', zone: 'a' });
});

test('a token that starts with "-" is taken whole in the --flag=value form (the stacks pass generated tokens so)', () => {
  const loaded = loadOptions(balancerCommand, ['--admin-token=-Xy_9'], {});
  assert.ok(loaded.kind === 'config');
  assert.equal(loaded.values.adminToken, '-Xy_9');
});
