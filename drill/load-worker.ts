// Runs the open-model load inside the lab's client host and streams one
// NDJSON record per request on stdout (the first line gives the start time),
// so the drill process can stay in the root namespace and control the faults.
import { parseArgs } from 'node:util';
import { startLoad } from './load-generator.ts';
import { LAB_ADDRESSES } from '../lab/netns-lab.ts';

const { values } = parseArgs({ options: { url: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, method: { type: 'string' }, path: { type: 'string' }, timeout: { type: 'string' }, 'retry-once': { type: 'boolean' } } });
const url = new URL(values.url ?? '');
const load = startLoad({
  url: new URL(values.path ?? '/', url).href,
  rate: Number(values.rate),
  durationMs: Number(values.duration),
  method: values.method ?? 'GET',
  timeoutMs: Number(values.timeout ?? 15_000),
  retryConnectionFailureOnce: Boolean(values['retry-once']),
  ...(values.method && values.method !== 'GET' && values.method !== 'HEAD' ? { body: 'drill=1' } : {}),
}, LAB_ADDRESSES);
process.stdout.write(`${JSON.stringify({ startedAt: load.startedAt })}\n`);
let written = 0;
const flush = () => {
  const records = load.records;
  let out = '';
  for (; written < records.length; written += 1) out += `${JSON.stringify(records[written])}\n`;
  if (out) process.stdout.write(out);
};
const timer = setInterval(flush, 100);
process.on('SIGTERM', () => void load.stop());
await load.done;
clearInterval(timer);
// `done` sorts the records it returns, not the live array we stream from.
flush();
