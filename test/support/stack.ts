// Test helpers around the real local stack: each test file gets its own
// block of ports and its own log folder under test-results/.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { LocalStack, type BalancerStatus, type StackOptions } from '../../lab/local-stack.ts';
import type { RunningLoad } from '../../drill/load-generator.ts';
import { waitFor } from '../../lab/processes.ts';

export const RESULTS_DIR = join(PROJECT_ROOT, 'test-results');

export function testStack(name: string, base: number, options: Partial<StackOptions> = {}): LocalStack {
  return new LocalStack({ base, logDir: join(RESULTS_DIR, name), lab: true, ...options });
}

/** Whether the balancer would route to this instance now. */
export function inRotation(status: BalancerStatus, id: string): boolean {
  const instance = status.instances.find((i) => i.id === id);
  return instance !== undefined && instance.state !== 'ejected';
}

/** Waits until the load shows `id` serving a request that started after `afterWallMs`. */
export async function waitUntilServing(load: RunningLoad, id: string, afterWallMs: number, timeoutMs = 15_000): Promise<number> {
  return waitFor(`${id} to serve requests`, () => {
    const hit = load.records.find((r) => r.servedBy === id && load.startedAt + r.intendedMs >= afterWallMs);
    return hit ? load.startedAt + hit.intendedMs + hit.latencyMs : undefined;
  }, timeoutMs);
}

/** Waits until the load has finished at least `count` requests. */
export function waitForRequests(load: RunningLoad, count: number, timeoutMs = 15_000): Promise<true> {
  return waitFor(`${count} requests through the balancer`, () => load.records.length >= count || undefined, timeoutMs);
}

/** Figures a test measured, collected for the closing note and BENCHMARKS. */
export function recordFigure(name: string, value: number | string, unit = ''): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  appendFileSync(join(RESULTS_DIR, 'figures.ndjson'), `${JSON.stringify({ at: new Date().toISOString(), name, value: typeof value === 'number' ? Math.round(value * 10) / 10 : value, unit })}\n`);
  process.stdout.write(`# figure: ${name} = ${typeof value === 'number' ? Math.round(value * 10) / 10 : value}${unit ? ` ${unit}` : ''}\n`);
}
