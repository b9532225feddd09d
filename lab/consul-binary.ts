import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..');

/** The Consul the project installed (.tools/consul) or one on PATH. */
export function findConsul(): string {
  const candidates = [join(PROJECT_ROOT, '.tools/consul/usr/bin/consul'), ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'consul'))];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('no consul binary: run scripts/install-consul.sh (./sempre up and ./sempre test do it for you)');
}
