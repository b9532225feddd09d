// Bad options name the field and exit non-zero before anything starts: no
// port is bound and Consul is never contacted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { waitFor } from '../../lab/processes.ts';

// A TCP listener standing where Consul would be, counting connection attempts.
let fakeConsulPort = 0;
let connections = 0;
let listener: Server;
before(async () => {
  listener = createServer((socket) => { connections += 1; socket.destroy(); });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  fakeConsulPort = (listener.address() as { port: number }).port;
});
after(() => listener.close());

function run(bin: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    // Every listen() the command makes shows in its stderr while it runs (test/support/report-listen.ts).
    const child = spawn(process.execPath, ['--import', join(PROJECT_ROOT, 'test/support/report-listen.ts'), join(PROJECT_ROOT, bin), ...args], { env: { ...process.env, ...env } });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (c) => { stderr += c; });
    child.stdout.on('data', (c) => { stdout += c; });
    child.on('exit', (code) => resolve({ code, stderr, stdout }));
  });
}

// What test/support/report-listen.ts writes (not imported: that would patch this process too).
const LISTENED = /sempre-test: listen/;

const consulFlag = () => ['--consul', `http://127.0.0.1:${fakeConsulPort}`];

test('the balancer refuses invalid options, naming each field, before binding any port', async () => {
  const result = await run('balancer/main.ts', ['--port', '70000', '--retries', '11', '--strategy', 'random', '--admin-port', '23011', ...consulFlag()]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /balancer\.port: must be a whole number from 1 to 65535 \(got "70000"\), from --port/);
  assert.match(result.stderr, /balancer\.retries: must be a whole number from 0 to 10 \(got "11"\), from --retries/);
  assert.match(result.stderr, /balancer\.strategy: must be one of least-outstanding, round-robin \(got "random"\)/);
  assert.doesNotMatch(result.stderr, LISTENED, 'no port was bound, not even for a moment');
  const admin = await fetch('http://127.0.0.1:23011/_sempre/status').then(() => 'answered', () => 'refused');
  assert.equal(admin, 'refused', 'the admin port is not bound');
  assert.equal(connections, 0, 'Consul was never contacted');
});

test('the listen report works: a balancer with valid options does bind its ports', async () => {
  // Otherwise the check above could pass with the report broken: a real start (its Consul
  // unreachable, which does not stop it listening), killed as soon as it has said it listens.
  const child = spawn(process.execPath, ['--import', join(PROJECT_ROOT, 'test/support/report-listen.ts'), join(PROJECT_ROOT, 'balancer/main.ts'), '--port', '23012', '--admin-port', '23013', '--consul', 'http://127.0.0.1:9'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    let stderr = '';
    child.stderr.on('data', (c) => { stderr += c; });
    await waitFor('the balancer to report its listen()', () => LISTENED.test(stderr), 15_000);
    assert.match(stderr, /sempre-test: listen .*2301[23]/);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
});

test('the agent refuses invalid options from the environment, naming the field, without contacting Consul', async () => {
  const result = await run('agent/main.ts', consulFlag(), { SEMPRE_PORT: '3000', SEMPRE_TTL: '500ms', SEMPRE_HEALTH_PATH: 'healthz' });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /agent\.healthPath: must be a path starting with \/ \(got "healthz"\), from environment SEMPRE_HEALTH_PATH/);
  assert.match(result.stderr, /agent\.ttl: must be from 1s to 10m \(got "500ms"\), from environment SEMPRE_TTL/);
  assert.equal(connections, 0, 'Consul was never contacted');
});

test('a config file with an unknown key or a bad value is refused the same way', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'sempre-config-'));
  const file = join(dir, 'sempre.json');
  writeFileSync(file, JSON.stringify({ agent: { port: 3000, ttl: '2s', checkInterval: '1s', colour: 'blue' } }));
  const result = await run('agent/main.ts', ['--config', file, ...consulFlag()]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /agent\.colour: unknown option in .*sempre\.json/);
  writeFileSync(file, '{ not json');
  const broken = await run('agent/main.ts', ['--config', file]);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /agent\.config: .*sempre\.json is not valid JSON/);
  assert.equal(connections, 0);
});

test('an unknown flag is named, with a pointer to --help', async () => {
  const result = await run('balancer/main.ts', ['--prot', '8080']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /balancer: Unknown option '--prot' \(see sempre-balancer --help\)/);
});

test('--help shows every option with its default and environment variable, and examples', async () => {
  for (const [bin, name] of [['agent/main.ts', 'sempre-agent'], ['balancer/main.ts', 'sempre-balancer']] as const) {
    const result = await run(bin, ['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, new RegExp(`^${name} — `));
    assert.match(result.stdout, /--consul URL .*\(default: http:\/\/127\.0\.0\.1:8500; env CONSUL_HTTP_ADDR\)/);
    assert.match(result.stdout, /\nExamples:\n/);
  }
});
