// The evidence taken before a heal (issue 20): the diagnosis rules, and the parsers of /proc and
// `ss` on text captured on this machine; saveEvidence and fileLogTail on real files.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  connectionsOf, diagnose, fileLogTail, listenerOf, parseEndpoint, parseProcStat, parseProcStatus, parseSs, probeFailure, saveEvidence,
  type EvidenceRecord, type ProbeRecord, type ProcessEvidence,
} from '../../agent/heal/evidence.ts';

// `ss -tanH` with a listener on 127.0.0.77:36077 (backlog 2) that does not accept, six clients
// (three still in SYN-SENT), and a dual-stack listener on *:36078 with one IPv4 client.
const SS_TAN = `LISTEN    2      2              127.0.0.77:36077            0.0.0.0:*    
ESTAB     0      0              127.0.0.77:36077          127.0.0.1:59060
ESTAB     0      0               127.0.0.1:59060         127.0.0.77:36077
ESTAB     0      0               127.0.0.1:59076         127.0.0.77:36077
ESTAB     0      0               127.0.0.1:59086         127.0.0.77:36077
SYN-SENT  0      1               127.0.0.1:59098         127.0.0.77:36077
SYN-SENT  0      1               127.0.0.1:59108         127.0.0.77:36077
SYN-SENT  0      1               127.0.0.1:59110         127.0.0.77:36077
ESTAB     0      0              127.0.0.77:36077          127.0.0.1:59076
ESTAB     0      0               127.0.0.1:44550          127.0.0.1:36078
ESTAB     0      0              127.0.0.77:36077          127.0.0.1:59086
LISTEN    0      511                     *:36078                  *:*    
ESTAB     0      0      [::ffff:127.0.0.1]:36078 [::ffff:127.0.0.1]:44550
`;
// `ss -ltnH` (its columns are not aligned), plus IPv6 listeners and one bound to an interface.
const SS_LTN = `LISTEN 2      2      127.0.0.77:36077 0.0.0.0:*
LISTEN 0      511             *:36078       *:*
LISTEN 0      4      [::1]:36099 [::]:*
LISTEN 129    128    [::]:36050 [::]:*
LISTEN 0      128    127.0.0.1%lo:36051 0.0.0.0:*
`;

test('ss: the LISTEN socket of host:port gives the accept queue and its limit, IPv4, IPv6 and wildcards alike', () => {
  const rows = parseSs(SS_LTN, 'LISTEN');
  assert.deepEqual(listenerOf(rows, '127.0.0.77', 36077), { acceptQueue: 2, acceptQueueLimit: 2, full: true });
  assert.deepEqual(listenerOf(rows, '127.0.0.5', 36078), { acceptQueue: 0, acceptQueueLimit: 511, full: false }, 'a wildcard listener serves 127.0.0.5');
  assert.deepEqual(listenerOf(rows, '::1', 36099), { acceptQueue: 0, acceptQueueLimit: 4, full: false });
  assert.deepEqual(listenerOf(rows, '[::1]', 36099), { acceptQueue: 0, acceptQueueLimit: 4, full: false }, 'a bracketed host too');
  assert.deepEqual(listenerOf(rows, '127.0.0.1', 36050), { acceptQueue: 129, acceptQueueLimit: 128, full: true }, '[::] is dual-stack');
  assert.deepEqual(listenerOf(rows, '127.0.0.1', 36051), { acceptQueue: 0, acceptQueueLimit: 128, full: false }, 'an address with %interface');
  assert.equal(listenerOf(rows, '127.0.0.78', 36077), null, 'another address on that port is not this listener');
  assert.equal(listenerOf(rows, '127.0.0.77', 36000), null);
  assert.deepEqual(listenerOf(parseSs(SS_TAN), 'localhost', 36077)?.acceptQueue, 2, 'a host name: any address on the port');
});

test('ss: an older ss without the State column (one state asked for) still parses; junk lines are skipped', () => {
  const rows = parseSs('0      128    127.0.0.1:36010 0.0.0.0:*\nState Recv-Q Send-Q Local Address:Port Peer Address:Port\n\n', 'LISTEN');
  assert.equal(rows.length, 1);
  assert.deepEqual(listenerOf(rows, '127.0.0.1', 36010), { acceptQueue: 0, acceptQueueLimit: 128, full: false });
  assert.equal(parseSs('tcp   LISTEN 3 4 10.0.0.1:80 0.0.0.0:*')[0]?.state, 'LISTEN', 'a Netid column leading');
});

test('ss: connections are counted on the app side only, by state', () => {
  const rows = parseSs(SS_TAN);
  assert.deepEqual(connectionsOf(rows, '127.0.0.77', 36077), { ESTAB: 3 }, 'not the clients\' ends, nor the listener');
  assert.deepEqual(connectionsOf(rows, '127.0.0.1', 36078), { ESTAB: 1 }, 'an IPv4-mapped address is the IPv4 one');
  assert.deepEqual(connectionsOf(rows, '0.0.0.0', 36077), { ESTAB: 3 });
  assert.deepEqual(connectionsOf(rows, '127.0.0.9', 36077), {});
});

test('ss endpoints: IPv4, IPv6, mapped, wildcard, with an interface', () => {
  assert.deepEqual(parseEndpoint('127.0.0.12:36012'), { address: '127.0.0.12', port: 36012 });
  assert.deepEqual(parseEndpoint('[::1]:443'), { address: '::1', port: 443 });
  assert.deepEqual(parseEndpoint('[::ffff:127.0.0.1]:80'), { address: '127.0.0.1', port: 80 });
  assert.deepEqual(parseEndpoint('[FE80::1]%eth0:80'), { address: 'fe80::1', port: 80 });
  assert.deepEqual(parseEndpoint('127.0.0.1%lo:53'), { address: '127.0.0.1', port: 53 });
  assert.deepEqual(parseEndpoint('*:8080'), { address: '*', port: 8080 });
  assert.ok(Number.isNaN(parseEndpoint('0.0.0.0:*').port));
});

test('/proc/PID/stat: fields count from the last ")" (a command name may hold both), the parent is field 4, CPU is utime + stime', () => {
  // /proc/1/stat on this machine, its name changed to one with spaces and parentheses.
  const text = '1 (my (odd) app) S 0 0 0 0 -1 4194560 27831 18647860 0 1987 152 852 67529 17009 10 -10 16 0 25 46579712 2946 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n';
  assert.deepEqual(parseProcStat(text), { state: 'S', ppid: 0, cpuTicks: 1004, threads: 16, startTicks: 25 });
});

test('/proc/PID/status: state words, VmRSS in bytes, threads; a zombie has no VmRSS', () => {
  const status = 'Name:\tprocess_api\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nVmRSS:\t   11932 kB\nThreads:\t16\n';
  assert.deepEqual(parseProcStatus(status), { stateText: 'sleeping', rssBytes: 11932 * 1024, threads: 16 });
  assert.deepEqual(parseProcStatus('Name:\tnode\nState:\tZ (zombie)\nThreads:\t1\n'), { stateText: 'zombie', rssBytes: 0, threads: 1 });
});

const proc = (state: string, cpuPercent: number): ProcessEvidence => ({
  pid: 4242, state, stateText: '', cpuPercent, cpuSampleMs: 1000, rssBytes: 0, threads: 7, fds: 20, command: 'node app.js', startedAt: null,
});
const probe = (output: string, failure?: ProbeRecord['failure']): ProbeRecord => ({ at: 0, healthy: false, ...(failure ? { failure } : {}), output, ms: 800 });
const TIMEOUT = [probe('GET http://127.0.0.1:3001/health: no answer within 800 ms', 'timeout')];
const full = { acceptQueue: 129, acceptQueueLimit: 128, full: true };
const open = { acceptQueue: 0, acceptQueueLimit: 128, full: false };

test('diagnose: one line per kind of hang, the cause a restart can fix first', () => {
  const cases: Array<[Parameters<typeof diagnose>[0], string]> = [
    [{ process: proc('T', 0), listener: open, probes: TIMEOUT }, 'stopped (SIGSTOP or a debugger): state T'],
    [{ process: proc('T', 0), listener: full, probes: TIMEOUT }, 'stopped (SIGSTOP or a debugger): state T; accept queue full (129/128)'],
    [{ process: proc('t', 0), listener: open, probes: TIMEOUT }, 'stopped by a debugger (tracing stop): state t'],
    [{ process: proc('R', 99.6), listener: open, probes: TIMEOUT }, 'busy: 100% CPU for 1 s (state R)'],
    [{ process: proc('S', 180), listener: full, probes: TIMEOUT }, 'busy: 180% CPU for 1 s (state S); accept queue full (129/128)'],
    [{ process: proc('S', 0), listener: full, probes: TIMEOUT }, 'accept queue full (129/128): the app does not accept connections (state S, 0% CPU)'],
    [{ process: proc('D', 1), listener: open, probes: TIMEOUT }, 'blocked on disk (state D), 1% CPU'],
    [{ process: proc('D', 0), listener: full, probes: TIMEOUT }, 'accept queue full (129/128): the app does not accept connections (state D, 0% CPU)'],
    [{ process: proc('S', 0.4), listener: open, probes: TIMEOUT }, 'sleeping with 0% CPU: a deadlock or a wait on something (state S)'],
    [{ process: proc('S', 0), listener: open, probes: [probe('GET http://127.0.0.1:3001/health: no answer within 800 ms')] }, 'sleeping with 0% CPU: a deadlock or a wait on something (state S)'],
    [{ process: proc('S', 0), listener: null, probes: [probe('GET http://127.0.0.1:3001/health: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:3001)')] }, 'not listening: probes refused (state S, 0% CPU)'],
    [{ process: proc('S', 2), listener: open, probes: [probe('GET http://127.0.0.1:3001/health: HTTP 503: database down')] }, 'answers its health check with an error (a restart may not help): GET http://127.0.0.1:3001/health: HTTP 503: database down'],
    [{ process: proc('S', 40), listener: open, probes: TIMEOUT }, 'probes fail (timeout); the process is at 40% CPU (state S)'],
    [{ process: proc('S', 0), listener: open, probes: [{ at: 0, healthy: true, output: 'HTTP 200', ms: 3 }] }, 'no hang seen: the last probe passed (state S, 0% CPU)'],
    [{ process: proc('Z', 0), listener: null, probes: TIMEOUT }, 'exited: PID 4242 is a zombie its parent has not reaped (state Z)'],
    [{ process: proc('S', 30), listener: open, probes: [] }, 'no probe recorded (state S, 30% CPU)'],
    [{ pid: 1234, process: null, listener: null, probes: TIMEOUT }, 'no process with PID 1234: it exited'],
    [{ process: null, listener: full, probes: TIMEOUT }, 'PID unknown; accept queue full (129/128)'],
    [{ pid: null, process: null, listener: null, probes: [] }, 'PID unknown'],
  ];
  for (const [evidence, line] of cases) assert.equal(diagnose(evidence), line);
});

test('probeFailure reads the kind from an agent probe\'s output', () => {
  assert.equal(probeFailure('GET http://127.0.0.1:3001/health: no answer within 800 ms'), 'timeout');
  assert.equal(probeFailure('GET http://127.0.0.1:3001/health: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:3001)'), 'refused');
  assert.equal(probeFailure('GET http://127.0.0.1:3001/health: ECONNRESET (read ECONNRESET)'), 'reset');
  assert.equal(probeFailure('GET http://127.0.0.1:3001/health: HTTP 500: oops'), 'status');
  assert.equal(probeFailure('GET http://127.0.0.1:3001/health: fetch failed'), 'other');
});

const record = (instance: string, at: string): EvidenceRecord => ({
  at, instance, diagnosis: 'PID unknown', pid: null, address: '127.0.0.1:3001', process: null, listener: null, connections: {}, probes: [], log: [], errors: [],
});

test('saveEvidence writes pretty JSON and keeps only the newest `keep` files of that instance', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'evidence-')), 'not-yet');
  try {
    const paths: string[] = [];
    for (let i = 0; i < 5; i++) paths.push(await saveEvidence(dir, record('app1', `2025-03-0${i + 1}T10:00:00.000Z`), 3));
    await saveEvidence(dir, record('app10', '2025-03-01T09:00:00.000Z'), 3); // "app1" must not match "app10"
    const same = await saveEvidence(dir, record('app1', '2025-03-05T10:00:00.000Z'), 3); // the same millisecond again
    assert.notEqual(same, paths[4]);
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['app10@2025-03-01T09-00-00.000Z.json', 'app1@2025-03-04T10-00-00.000Z.json', 'app1@2025-03-05T10-00-00.000Z-2.json', 'app1@2025-03-05T10-00-00.000Z.json']);
    const text = readFileSync(paths[4] as string, 'utf8');
    assert.match(text, /^\{\n {2}"at": "2025-03-05T10:00:00.000Z",\n/);
    assert.equal(JSON.parse(text).instance, 'app1');
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});

test('fileLogTail reads only the end of a 4 GiB log: the last lines, no cut first line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'log-tail-'));
  const file = join(dir, 'app.log');
  try {
    // Sparse: 4 GiB of zeros cost no disk, and reading them all would fail (too large for a string).
    writeFileSync(file, '');
    truncateSync(file, 4 * 1024 ** 3);
    appendFileSync(file, `\n${Array.from({ length: 200 }, (_, i) => `line ${i} ${'é'.repeat(i % 7)}`).join('\n')}\n`);
    const readBefore = readCharsSoFar();
    const lines = await fileLogTail(file, 50)();
    const read = readCharsSoFar() - readBefore;
    assert.equal(lines.length, 50);
    assert.equal(lines[0], `line 150 ${'é'.repeat(150 % 7)}`);
    assert.equal(lines.at(-1), `line 199 ${'é'.repeat(199 % 7)}`);
    assert.ok(read < 1024 * 1024, `read ${read} bytes`);
    // A file shorter than the window is read whole, its first line kept.
    writeFileSync(file, 'only\ntwo\n');
    assert.deepEqual(await fileLogTail(file)(), ['only', 'two']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Bytes this process has read through read(2) and kin so far (/proc/self/io `rchar`). */
function readCharsSoFar(): number {
  return Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
}
