// The whole suite, as `./sempre test` and CI run it: typecheck, then unit and
// integration tests in one node:test run (one closing summary), files one at
// a time so load tests do not compete for the two cores.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../lab/consul-binary.ts';
import { ciIsSet, rootOnlySummary } from './support/skipped-tests.ts';

const { values } = parseArgs({ options: { unit: { type: 'boolean' }, integration: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(`Usage: ./sempre test [--unit | --integration]

Runs the TypeScript typecheck, then the unit tests (fast, no processes) and the
integration tests (real Consul, real processes, 500 GET/s through the balancer).
Logs of every process a test started are kept in test-results/<test>/.
Tests that need root (the lab, drills, bench, compose) are skipped without
it, and the run ends with a summary of what did not run; with CI set (CI
runs as root), such a skip fails the run.

Examples:
  ./sempre test                 # everything, as CI does
  ./sempre test --unit          # a few seconds
`);
  process.exit(0);
}
const both = !values.unit && !values.integration;
const files = (dir: string) => readdirSync(join(PROJECT_ROOT, dir)).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(dir, f));
const selected = [...(both || values.unit ? files('test/unit') : []), ...(both || values.integration ? files('test/integration') : [])];

process.stdout.write('sempre: typecheck (tsc --noEmit)…\n');
const typecheck = spawnSync(process.execPath, [join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', PROJECT_ROOT], { stdio: 'inherit' });
if (typecheck.status !== 0) {
  process.stdout.write('sempre: typecheck failed\n');
  process.exit(1);
}
rmSync(join(PROJECT_ROOT, 'test-results'), { recursive: true, force: true });
process.stdout.write(`sempre: running ${selected.length} test files (integration tests print # figure: lines with what they measured)…\n`);
const skippedFile = join(PROJECT_ROOT, 'test-results', 'skipped.ndjson');
mkdirSync(dirname(skippedFile), { recursive: true });
// The test stacks listen on fixed ports (20000-39999); 32768-39999 is inside
// Linux's ephemeral range, so an outgoing connection could hold one of them
// at the moment a stack starts (seen once: Consul "address already in use" on
// 33000). As root, reserve them for the run and put the setting back after.
const RESERVED = '/proc/sys/net/ipv4/ip_local_reserved_ports';
let reservedBefore: string | undefined;
try {
  if (process.getuid?.() === 0) {
    reservedBefore = readFileSync(RESERVED, 'utf8').trim();
    writeFileSync(RESERVED, [reservedBefore, '32768-39999'].filter(Boolean).join(','));
  }
} catch {
  reservedBefore = undefined; // not allowed here: the run goes on as before
}
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=240000', '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${join(PROJECT_ROOT, 'test/support/skipped-tests.ts')}`, `--test-reporter-destination=${skippedFile}`, ...selected], { stdio: 'inherit', cwd: PROJECT_ROOT });
if (reservedBefore !== undefined) {
  try {
    writeFileSync(RESERVED, reservedBefore || '\n'); // an empty write changes nothing: a newline clears it
  } catch {
    process.stdout.write(`sempre: could not restore ${RESERVED} to "${reservedBefore}"\n`);
  }
}
const notRun = rootOnlySummary(existsSync(skippedFile) ? readFileSync(skippedFile, 'utf8') : '', PROJECT_ROOT);
if (notRun) {
  process.stdout.write(`\n${notRun}\n`);
  if (ciIsSet(process.env)) {
    process.stdout.write('sempre: CI is set and CI runs as root: a skipped root-only test fails the run.\n');
    process.exit(1);
  }
}
process.exit(run.status ?? 1);
