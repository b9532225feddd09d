// After an install (npm ci runs scripts/warm-compile-cache.sh), every module
// the balancer's main process and its worker load is in Node's compile cache
// already: the first worker never strips TypeScript itself, so it never loads
// the type stripper, which a process keeps for life (34 MB of RSS, measured).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../lab/processes.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';

test('after the install\'s warm-up, the balancer and its first worker find every module of theirs in the compile cache', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-compile-cache-'));
  const env = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'cache') };
  execFileSync('sh', [join(PROJECT_ROOT, 'scripts/warm-compile-cache.sh')], { env, stdio: 'ignore' });
  // Consul is not needed: the worker imports its modules before it asks Consul anything.
  const balancer = spawn(join(PROJECT_ROOT, 'bin/sempre-balancer'), ['--service', 'web', '--host', '127.0.0.1', '--port', '37980', '--admin-port', '37981', '--consul', 'http://127.0.0.1:9', '--run-dir', join(dir, 'run'), '--log-format', 'json'], {
    env: { ...env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let debug = '';
  balancer.stderr.setEncoding('utf8').on('data', (chunk: string) => { debug += chunk; });
  const exited = new Promise((resolve) => balancer.once('exit', resolve));
  try {
    await waitFor('the worker to load balancer/balancer.ts', () => debug.includes('balancer/balancer.ts') && /balancer\/service-runtime\.ts/.test(debug), 60_000);
    const ours = (line: string) => line.includes(`file://${PROJECT_ROOT}/`) && !line.includes('/node_modules/');
    const stripped = debug.split('\n').filter((line) => /transpile cache for StrippedTypeScript/.test(line) && ours(line));
    assert.ok(stripped.length > 50, `the main process and the worker asked the cache for their TypeScript (${stripped.length} lines)`);
    const misses = stripped.filter((line) => !/\.\.\.success$/.test(line.trim()));
    assert.deepEqual(misses, [], 'every TypeScript module came from the cache');
  } finally {
    balancer.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    if (balancer.exitCode === null && balancer.signalCode === null) balancer.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
