// An HTTP request sent from inside one lab host's network namespace, as a
// process on that server would send it (e.g. to its own Consul on loopback).
import { execFileSync } from 'node:child_process';
import type { LabState } from './netns-lab.ts';

export type InHostResult = { status: number; body: string } | { error: string };

const SCRIPT = `
const [url, init] = JSON.parse(process.argv[1]);
fetch(url, { ...init, signal: AbortSignal.timeout(3000) })
  .then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))
  .catch((e) => console.log(JSON.stringify({ error: String(e.cause?.code ?? e.message) })));
`;

export function fetchInHost(lab: LabState, host: string, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): InHostResult {
  const namespace = lab.hosts[host]?.namespace;
  if (!namespace) throw new Error(`no host ${host} in the lab`);
  const out = execFileSync('ip', ['netns', 'exec', namespace, process.execPath, '-e', SCRIPT, JSON.stringify([url, init])], { encoding: 'utf8' });
  return JSON.parse(out) as InHostResult;
}
