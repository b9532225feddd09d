// The multi-host lab for one test file: up before its tests, down after,
// also when they fail. Root only; the tests skip themselves otherwise.
import { cpSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before } from 'node:test';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { labDown, labUp, type LabState, type LabUpOptions } from '../../lab/netns-lab.ts';
import { RESULTS_DIR } from './stack.ts';

export const isRoot = process.getuid?.() === 0;
export const skipUnlessRoot: false | string = isRoot ? false : 'the multi-host lab needs root (network namespaces, nftables, keepalived)';
const quiet = () => undefined;

/** Brings the lab up for this file and hands it to `use` once it is. */
export function labForThisFile(options: Omit<LabUpOptions, 'say'>, use: (lab: LabState) => void): void {
  before(async () => {
    if (isRoot) use(await labUp({ ...options, say: quiet }));
  }, { timeout: 120_000 });
  after(() => {
    if (!isRoot) return;
    labDown(quiet);
    // The next file's `lab up` empties the lab's logs: keep this file's for a look after a failure.
    const logs = join(PROJECT_ROOT, '.run', 'lab', 'logs');
    if (existsSync(logs)) cpSync(logs, join(RESULTS_DIR, `lab-${basename(process.argv[1] ?? 'unknown', '.test.ts')}`), { recursive: true });
  });
}
