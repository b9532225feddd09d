// What a person needs to tell why an app hung, collected before the agent restarts it: the
// process as /proc shows it (state, CPU over an interval, memory, threads, descriptors), the
// accept queue and connections of its port as `ss` shows them, the last probes and log lines,
// and a one-line diagnosis leading the record. Nothing here throws for a missing tool, a
// missing process or a permission: what could not be read is named in `errors`.
import { execFile } from 'node:child_process';
import { mkdir, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProbeRecord { at: number /* epoch ms */; healthy: boolean; failure?: 'timeout' | 'refused' | 'reset' | 'status' | 'other'; output: string; ms: number }

export interface EvidenceInput {
  instance: string;
  pid: number | undefined;          // the app's main PID, when known
  host: string; port: number;       // where the app listens (for the accept queue and connections)
  probes: readonly ProbeRecord[];   // the last health probes, oldest first
  logTail: () => Promise<string[]>; // the app's last log lines (journal or file); may reject
  sampleMs?: number;                // CPU sampling interval, default 1000
}

export interface ProcessEvidence {
  pid: number;
  state: string;                    // the letter of /proc/PID/stat: R S D T t Z X I …
  stateText: string;
  cpuPercent: number;               // over cpuSampleMs, all threads (100 = one core)
  cpuSampleMs: number;
  rssBytes: number;
  threads: number;
  fds: number | null;               // null when /proc/PID/fd is not readable
  command: string;
  startedAt: string | null;
}

export interface ListenerEvidence { acceptQueue: number; acceptQueueLimit: number; full: boolean }

export interface EvidenceRecord {
  at: string;                       // ISO time
  instance: string;
  diagnosis: string;                // one line
  pid: number | null;               // the PID asked about, null when unknown
  address: string;                  // host:port the listener and connections are of
  process: null | ProcessEvidence;
  listener: null | ListenerEvidence;
  connections: Record<string, number>;
  probes: ProbeRecord[];
  log: string[];
  errors: string[];
}

const LOG_LINES = 50;
const LOG_LINE_CHARS = 500;
const TOOL_TIMEOUT_MS = 3000;
// USER_HZ: /proc reports CPU times in these ticks, and it is 100 on every Linux Node runs on.
const TICKS_PER_SECOND = 100;
const BUSY_PERCENT = 80;
const IDLE_PERCENT = 5;

export async function collectEvidence(input: EvidenceInput): Promise<EvidenceRecord> {
  const at = new Date().toISOString();
  const errors: string[] = [];
  const sampleMs = input.sampleMs ?? 1000;
  // The queue, connections and log are read while the CPU is being sampled: no extra wait.
  const [proc, listening, all, log] = await Promise.all([
    input.pid === undefined ? null : sampleProcess(input.pid, sampleMs, errors),
    runSs(['-ltnH', `sport = :${input.port}`], errors),
    runSs(['-tanH', `sport = :${input.port}`], errors),
    withDeadline(Promise.resolve().then(input.logTail), 'the log tail').then(
      (lines) => lines.slice(-LOG_LINES).map((line) => line.slice(0, LOG_LINE_CHARS)),
      (error: unknown) => { errors.push(`log: ${describe(error)}`); return []; },
    ),
  ]);
  const evidence = {
    pid: input.pid ?? null,
    process: proc,
    listener: listening === null ? null : listenerOf(parseSs(listening, 'LISTEN'), input.host, input.port),
    probes: [...input.probes],
  };
  return {
    at, instance: input.instance, diagnosis: diagnose(evidence),
    pid: evidence.pid, address: `${isIP(normalizeAddress(input.host)) === 6 ? `[${normalizeAddress(input.host)}]` : input.host}:${input.port}`,
    process: proc, listener: evidence.listener,
    connections: all === null ? {} : connectionsOf(parseSs(all), input.host, input.port),
    probes: evidence.probes, log, errors,
  };
}

/** The one line that leads the record. `pid` tells "PID unknown" from "it exited" when there is no process. */
export function diagnose(e: Pick<EvidenceRecord, 'process' | 'listener' | 'probes'> & { pid?: number | null }): string {
  const p = e.process;
  const queue = e.listener?.full ? `accept queue full (${e.listener.acceptQueue}/${e.listener.acceptQueueLimit})` : undefined;
  const withQueue = (line: string) => (queue ? `${line}; ${queue}` : line);
  if (!p) return withQueue(e.pid == null ? 'PID unknown' : `no process with PID ${e.pid}: it exited`);
  const cpu = `${Math.round(p.cpuPercent)}% CPU`;
  if (p.state === 'T') return withQueue('stopped (SIGSTOP or a debugger): state T');
  if (p.state === 't') return withQueue('stopped by a debugger (tracing stop): state t');
  if (p.state === 'Z') return `exited: PID ${p.pid} is a zombie its parent has not reaped (state Z)`;
  if (p.state === 'X') return `exited: PID ${p.pid} is dying (state X)`;
  // Running (R) at half a core or more is a busy loop too: on a shared host it gets no more than that.
  if (p.cpuPercent >= BUSY_PERCENT || (p.state === 'R' && p.cpuPercent >= BUSY_PERCENT / 1.6)) return withQueue(`busy: ${cpu} for ${seconds(p.cpuSampleMs)} s (state ${p.state})`);
  // A full queue says the app does not accept, whatever it is doing meanwhile (sleeping, disk).
  if (queue) return `${queue}: the app does not accept connections (state ${p.state}, ${cpu})`;
  if (p.state === 'D') return `blocked on disk (state D), ${cpu}`;
  const last = e.probes.at(-1);
  const failure = last && !last.healthy ? last.failure ?? probeFailure(last.output) : undefined;
  if (failure === 'status') return `answers its health check with an error (a restart may not help): ${last?.output.slice(0, 200)}`;
  if (failure === 'refused') return `not listening: probes refused (state ${p.state}, ${cpu})`;
  if (p.cpuPercent < IDLE_PERCENT && (failure === 'timeout' || !last)) {
    return `sleeping with ${cpu}: a deadlock or a wait on something (state ${p.state})`;
  }
  if (!last) return `no probe recorded (state ${p.state}, ${cpu})`;
  if (!failure) return `no hang seen: the last probe passed (state ${p.state}, ${cpu})`;
  return `probes fail (${failure}); the process is at ${cpu} (state ${p.state})`;
}

/** The failure kind an agent's probe output names, for probes recorded without one. */
export function probeFailure(output: string): NonNullable<ProbeRecord['failure']> {
  if (/no answer within|timed? ?out/i.test(output)) return 'timeout';
  if (/ECONNREFUSED/.test(output)) return 'refused';
  if (/ECONNRESET|socket hang up|UND_ERR_SOCKET/.test(output)) return 'reset';
  if (/HTTP \d{3}/.test(output)) return 'status';
  return 'other';
}

/** Writes the record as pretty JSON under dir (created if missing), file name from time and instance; keeps only the newest `keep` files of this instance; returns the path. */
export async function saveEvidence(dir: string, record: EvidenceRecord, keep: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  // "@" never appears in the safe name, so one instance's prefix never matches another's.
  const prefix = `${record.instance.replace(/[^\w.-]/g, '_')}@`;
  const stamp = record.at.replace(/:/g, '-');
  const names = new Set(await readdir(dir));
  let name = `${prefix}${stamp}.json`;
  for (let n = 2; names.has(name); n++) name = `${prefix}${stamp}-${n}.json`;
  const path = join(dir, name);
  // Written aside then renamed: a reader never sees half a record.
  await writeFile(join(dir, `.${name}.tmp`), `${JSON.stringify(record, null, 2)}\n`);
  await rename(join(dir, `.${name}.tmp`), path);
  // Sorting without ".json" puts "…Z" before "…Z-2": oldest first.
  const own = [...names, name].filter((f) => f.startsWith(prefix) && f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  for (const old of own.slice(0, Math.max(0, own.length - Math.max(1, keep)))) {
    await unlink(join(dir, `${old}.json`)).catch(() => undefined); // another writer may have removed it
  }
  return path;
}

/** The last `lines` lines of a log file, read from its end (bounded read, never the whole file). */
export function fileLogTail(path: string, lines = LOG_LINES): () => Promise<string[]> {
  return async () => {
    const file = await open(path, 'r');
    try {
      const size = (await file.stat()).size;
      // About 1 KiB a line: longer lines are cut to 500 characters in the record anyway.
      const length = Math.min(size, lines * 1024);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, size - length);
      const text = buffer.subarray(0, bytesRead).toString('utf8');
      const all = text.split('\n');
      if (size > length) all.shift(); // the first line read is cut (maybe mid-character)
      return all.filter((line) => line.trim()).slice(-lines);
    } finally {
      await file.close();
    }
  };
}

/** The last lines of a systemd unit's journal: `journalctl -u UNIT -n N --no-pager -o cat`. */
export function journalLogTail(unit: string, lines = LOG_LINES): () => Promise<string[]> {
  return async () => {
    const { stdout, stderr } = await run('journalctl', ['-u', unit, '-n', String(lines), '--no-pager', '-o', 'cat']);
    const found = stdout.split('\n').filter((line) => line.trim() && line !== '-- No entries --').slice(-lines);
    // Nothing, and journalctl said why (no journal files, not in the systemd-journal group): keep the why.
    if (found.length === 0 && stderr.trim()) throw new Error(`journalctl: ${stderr.trim().slice(-300)}`);
    return found;
  };
}

// --- /proc ---

export interface ProcStat { state: string; ppid: number; cpuTicks: number; threads: number; startTicks: number }

/** /proc/PID/stat: the command name may hold spaces and parentheses, so fields count from its last ")". */
export function parseProcStat(text: string): ProcStat {
  const fields = text.slice(text.lastIndexOf(')') + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state); ppid is 4, utime, stime are 14–15, num_threads 20, starttime 22.
  const field = (n: number) => Number(fields[n - 3]);
  return { state: fields[0] ?? '?', ppid: field(4), cpuTicks: field(14) + field(15), threads: field(20), startTicks: field(22) };
}

/** /proc/PID/status: the state's words, VmRSS and Threads. */
export function parseProcStatus(text: string): { stateText: string; rssBytes: number; threads: number } {
  const value = (key: string) => new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return {
    stateText: /\((.*)\)/.exec(value('State'))?.[1] ?? value('State'),
    rssBytes: (Number.parseInt(value('VmRSS'), 10) || 0) * 1024, // "12345 kB"; a zombie has none
    threads: Number.parseInt(value('Threads'), 10) || 0,
  };
}

async function sampleProcess(pid: number, sampleMs: number, errors: string[]): Promise<ProcessEvidence | null> {
  const dir = `/proc/${pid}`;
  const first = await readStat(pid);
  if (!first) return null;
  const started = performance.now();
  await sleep(sampleMs);
  const second = await readStat(pid);
  // Gone, or another process under the same PID since the first read.
  if (!second || second.startTicks !== first.startTicks) return null;
  const elapsedMs = performance.now() - started;
  const status = await readFile(`${dir}/status`, 'utf8').then(parseProcStatus, () => null);
  const fds = await readdir(`${dir}/fd`).then((entries) => entries.length, (error: unknown) => {
    // Another user's process: reading its descriptors needs that user or CAP_SYS_PTRACE.
    errors.push(`${dir}/fd: ${describe(error)}`);
    return null;
  });
  const cmdline = await readFile(`${dir}/cmdline`, 'utf8').catch(() => '');
  const comm = (await readFile(`${dir}/comm`, 'utf8').catch(() => '')).trim();
  return {
    pid,
    state: second.state,
    stateText: status?.stateText ?? second.state,
    cpuPercent: Math.round(((second.cpuTicks - first.cpuTicks) / TICKS_PER_SECOND / (elapsedMs / 1000)) * 1000) / 10,
    cpuSampleMs: Math.round(elapsedMs),
    rssBytes: status?.rssBytes ?? 0,
    threads: status?.threads || second.threads,
    fds,
    command: (cmdline.replace(/\0+$/, '').replaceAll('\0', ' ') || `[${comm}]`).slice(0, LOG_LINE_CHARS),
    startedAt: await bootTime().then((boot) => new Date(boot + (second.startTicks / TICKS_PER_SECOND) * 1000).toISOString(), () => null),
  };
}

async function readStat(pid: number): Promise<ProcStat | null> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then(parseProcStat, () => null);
}

async function bootTime(): Promise<number> {
  const btime = /^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1];
  if (!btime) throw new Error('no btime in /proc/stat');
  return Number(btime) * 1000;
}

// --- ss ---

export interface SsRow { state: string; recvQ: number; sendQ: number; local: Endpoint; peer: Endpoint }
export interface Endpoint { address: string; port: number }

/** Rows of `ss -tnH` output. Some ss versions leave the State column out when one state was asked
 * for (`stateIfMissing` then), and a Netid column leads when several protocols were. */
export function parseSs(text: string, stateIfMissing = 'UNKNOWN'): SsRow[] {
  const rows: SsRow[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    if (/^(tcp|udp|raw|u_\w+|p_\w+)$/.test(tokens[0] ?? '')) tokens.shift();
    const state = /^\d+$/.test(tokens[0] ?? '') ? stateIfMissing : tokens.shift();
    const [recvQ, sendQ, local, peer] = tokens;
    if (!state || !local || !peer || !/^\d+$/.test(recvQ ?? '') || !/^\d+$/.test(sendQ ?? '')) continue;
    rows.push({ state, recvQ: Number(recvQ), sendQ: Number(sendQ), local: parseEndpoint(local), peer: parseEndpoint(peer) });
  }
  return rows;
}

/** "127.0.0.1:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "*:80", "127.0.0.1%lo:80" → address and port. */
export function parseEndpoint(text: string): Endpoint {
  const colon = text.lastIndexOf(':');
  return { address: normalizeAddress(text.slice(0, colon)), port: Number(text.slice(colon + 1)) };
}

function normalizeAddress(address: string): string {
  const bare = address.replace(/%[^\]]*$/, '').replace(/^\[(.*)\](%.*)?$/, '$1').toLowerCase();
  return bare.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

const WILDCARDS = new Set(['*', '0.0.0.0', '::']);

/** The LISTEN socket serving host:port: one bound to host itself first, else a wildcard one. */
export function listenerOf(rows: readonly SsRow[], host: string, port: number): ListenerEvidence | null {
  const want = normalizeAddress(host);
  const candidates = rows.filter((r) => r.state === 'LISTEN' && r.local.port === port);
  const row = candidates.find((r) => r.local.address === want)
    ?? candidates.find((r) => WILDCARDS.has(r.local.address) || WILDCARDS.has(want) || !isIP(want));
  if (!row) return null;
  // For a listener, Recv-Q is the accept queue now and Send-Q its limit; Linux queues one past it.
  return { acceptQueue: row.recvQ, acceptQueueLimit: row.sendQ, full: row.recvQ > 0 && row.recvQ >= row.sendQ };
}

/** The app's side of TCP connections to host:port, counted by state. */
export function connectionsOf(rows: readonly SsRow[], host: string, port: number): Record<string, number> {
  const want = normalizeAddress(host);
  const anyAddress = WILDCARDS.has(want) || !isIP(want); // a wildcard or a name: every local address
  const counts: Record<string, number> = {};
  for (const r of rows) {
    if (r.state === 'LISTEN' || r.local.port !== port || (!anyAddress && r.local.address !== want)) continue;
    counts[r.state] = (counts[r.state] ?? 0) + 1;
  }
  return counts;
}

async function runSs(args: string[], errors: string[]): Promise<string | null> {
  return run('ss', args).then(({ stdout }) => stdout, (error: unknown) => {
    errors.push(`ss ${args.join(' ')}: ${describe(error)}`);
    return null;
  });
}

// --- helpers ---

function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: TOOL_TIMEOUT_MS, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { message: `${error.message.split('\n')[0]}${stderr.trim() ? `: ${stderr.trim().slice(-300)}` : ''}` }));
      else resolve({ stdout, stderr });
    });
  });
}

/** A log source that never answers must not hold the heal back. */
async function withDeadline<T>(promise: Promise<T>, what: string, ms = 2 * TOOL_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  const e = error as { code?: unknown; message?: string; killed?: boolean; signal?: unknown };
  if (e?.killed) return `no answer within ${TOOL_TIMEOUT_MS} ms (killed with ${String(e.signal)})`;
  if (e?.code === 'ENOENT' && /spawn/.test(e.message ?? '')) return `not installed (${e.message})`;
  return e?.message ?? String(error);
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}
