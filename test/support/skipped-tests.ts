// What a run skipped, for test/run.ts: a node:test reporter (the default
// export, given with --test-reporter) writes one JSON line per skipped test,
// and rootOnlySummary() turns those lines into the loud summary `./sempre test`
// prints when tests that need root did not run. A skip reason that says
// "needs root" marks a root-only test (test/support/lab.ts, compose.test.ts).
import { relative } from 'node:path';

export interface SkippedTest {
  file: string;
  name: string;
  reason: string;
}

interface TestEvent {
  type: string;
  data: { name?: string; file?: string; skip?: boolean | string };
}

export default async function* skippedTests(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    const { skip, name, file } = event.data ?? {};
    if ((event.type === 'test:pass' || event.type === 'test:fail') && skip !== undefined && skip !== false) {
      yield `${JSON.stringify({ file: file ?? '?', name: name ?? '?', reason: skip === true ? '' : skip } satisfies SkippedTest)}\n`;
    }
  }
}

export const ROOT_ONLY = /needs root/;

/** null when no root-only test was skipped; else the summary, one line per file. */
export function rootOnlySummary(lines: string, root: string): string | null {
  const skipped = lines.split('\n').filter(Boolean).map((l) => JSON.parse(l) as SkippedTest).filter((s) => ROOT_ONLY.test(s.reason));
  if (skipped.length === 0) return null;
  const byFile = new Map<string, SkippedTest[]>();
  for (const s of skipped) byFile.set(s.file, [...(byFile.get(s.file) ?? []), s]);
  const bar = '!'.repeat(78);
  return [
    bar,
    `!! NOT RUN: ${skipped.length} tests in ${byFile.size} root-only files were skipped.`,
    ...[...byFile].map(([file, tests]) => `!!   ${relative(root, file)}: ${tests.length} skipped (${tests[0]!.reason})`),
    '!! The failover drills under faults, the balancer pair, Consul TLS and ACLs, the',
    '!! rolling deploy, the bench and compose are among them: a green run without them',
    '!! does not say those work. Run as root (sudo ./sempre test) for the whole suite.',
    bar,
  ].join('\n');
}

/** CI runs as root: with CI set, a skipped root-only file fails the run. */
export function ciIsSet(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.CI) && !/^(0|false)$/i.test(env.CI!);
}
