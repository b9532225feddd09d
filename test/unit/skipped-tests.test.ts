import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { ciIsSet, rootOnlySummary } from '../support/skipped-tests.ts';

test('a run that skipped root-only tests ends with a loud summary naming each file; other skips are not counted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-skips-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lab.test.ts');
  writeFileSync(file, `import { test } from 'node:test';
test('a drill', { skip: 'the multi-host lab needs root (network namespaces)' }, () => {});
test('another drill', { skip: 'the multi-host lab needs root (network namespaces)' }, () => {});
test('not today', { skip: 'no browser here' }, () => {});
test('runs', () => {});
`);
  const out = join(dir, 'skipped.ndjson');
  // The reporter as test/run.ts passes it, beside spec; a run of its own (without NODE_TEST_CONTEXT,
  // a child of a test would report to this run instead of its reporters).
  const { NODE_TEST_CONTEXT: _inherited, ...env } = process.env;
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(PROJECT_ROOT, 'test/support/skipped-tests.ts')}`, `--test-reporter-destination=${out}`, file], { encoding: 'utf8', env });
  assert.equal(run.status, 0, run.stderr);
  const summary = rootOnlySummary(readFileSync(out, 'utf8'), dir);
  assert.match(summary ?? '', /NOT RUN: 2 tests in 1 root-only files were skipped/);
  assert.match(summary ?? '', /lab\.test\.ts: 2 skipped \(the multi-host lab needs root/);
  assert.equal(rootOnlySummary('', dir), null, 'nothing to say when nothing root-only was skipped');
});

test('CI counts as set unless empty, 0 or false', () => {
  assert.deepEqual([{ CI: 'true' }, { CI: '1' }, {}, { CI: '' }, { CI: 'false' }, { CI: '0' }].map((env) => ciIsSet(env)), [true, true, false, false, false, false]);
});
