// Consul's RPC under TLS in the multi-host lab (root), as deploy/ runs it: the
// three servers verify incoming and outgoing RPC against the cluster's CA and
// check the servers' host name. A raw RPC client on port 8300 is answered only
// with a certificate from that CA. A Consul agent that has the gossip key and
// even the management token, but no certificate, still joins the gossip
// (Consul has no TLS for gossip), but every RPC it makes is refused; given its
// certificate, the same agent works.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { findConsul } from '../../lab/consul-binary.ts';
import { isAliveMember } from '../../lab/consul-health.ts';
import { consulCommand, hostAddress, isAlive, prepareAppHost, restartProcess, startInHost, writeHostConsulConfig, type LabState } from '../../lab/netns-lab.ts';
import { NotYet, waitFor } from '../../lab/processes.ts';
import { CONSUL_DATACENTER, ensureConsulTls, TLS_FILES } from '../../ops/consul-tls.ts';
import { fetchInHost } from '../../lab/fetch-in-host.ts';
import { labForThisFile, skipUnlessRoot } from '../support/lab.ts';
import { recordFigure } from '../support/stack.ts';

const skip = skipUnlessRoot;
let lab: LabState;
labForThisFile({ instances: 2 }, (l) => { lab = l; });

// Consul's RPC: one byte names the protocol (agent/pool/conn.go: 0 = Consul
// RPC, 3 = TLS), then net/rpc over msgpack. Status.Ping needs no ACL token.
const RPC_CONSUL = 0x00;
const RPC_TLS = 0x03;
const PING = Buffer.concat([
  Buffer.from([0x82, 0xad]), Buffer.from('ServiceMethod'), Buffer.from([0xab]), Buffer.from('Status.Ping'),
  Buffer.from([0xa3]), Buffer.from('Seq'), Buffer.from([0x00]),
  Buffer.from([0x80]), // the empty argument struct
]);
const SERVER_NAME = `server.${CONSUL_DATACENTER}.consul`;

type RpcOutcome = { answered: true } | { answered: false; why: string };

/** Sends Status.Ping on `socket` and waits for the answer, or for the server to close or fail it. */
function ping(socket: Socket, preface: Buffer): Promise<RpcOutcome> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish({ answered: false, why: 'no answer in 5 s' }), 5000);
    const finish = (outcome: RpcOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // The response header is a map with ServiceMethod, Seq and an empty Error string.
      const error = received.indexOf('Error');
      if (received.includes('Status.Ping') && error >= 0 && received[error + 5] === 0xa0) finish({ answered: true });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => finish({ answered: false, why: e.code ?? e.message }));
    socket.on('close', () => finish({ answered: false, why: received.length ? `closed after ${received.length} bytes` : 'closed by the server' }));
    socket.write(Buffer.concat([preface, PING]));
  });
}

function tcp(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: address, port: 8300 }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** RPC over TLS, as a Consul agent speaks it, with the given client certificate (or none). */
async function pingOverTls(address: string, client: { cert: Buffer; key: Buffer } | undefined, ca: Buffer): Promise<RpcOutcome> {
  const raw = await tcp(address);
  raw.write(Buffer.from([RPC_TLS]));
  const secure = connectTls({ socket: raw, ca, servername: SERVER_NAME, ...(client ?? {}) });
  return new Promise((resolve) => {
    secure.once('secureConnect', () => resolve(ping(secure, Buffer.from([RPC_CONSUL]))));
    secure.once('error', (e: NodeJS.ErrnoException) => resolve({ answered: false, why: e.code ?? e.message }));
  });
}

test('the three servers form a cluster with RPC under TLS, every one verifying incoming and outgoing RPC and server names', { skip }, async () => {
  const headers = { 'x-consul-token': lab.consulToken };
  const raft = (await (await fetch(`${lab.consulUrl}/v1/operator/raft/configuration`, { headers })).json()) as { Servers: Array<{ Node: string; Voter: boolean; Leader: boolean }> };
  assert.deepEqual(raft.Servers.map((s) => s.Node).sort(), ['app1', 'app2', 'infra']);
  assert.equal(raft.Servers.filter((s) => s.Leader).length, 1);
  for (const host of lab.servers) {
    const self = fetchInHost(lab, host, 'http://127.0.0.1:8500/v1/agent/self', { headers });
    assert.ok('status' in self && self.status === 200, JSON.stringify(self));
    const config = (JSON.parse(self.body) as { DebugConfig: Record<string, unknown> }).DebugConfig;
    assert.deepEqual([config.VerifyIncomingRPC, config.VerifyOutgoing, config.VerifyServerHostname], [true, true, true], `${host}'s Consul`);
  }
});

test('an RPC client on port 8300 is refused in plain TCP and in TLS without a certificate or with another CA\'s; with one from the cluster CA it is answered', { skip }, async () => {
  const infra = hostAddress('infra');
  const ca = readFileSync(join(lab.secretsDir, 'consul-ca', 'consul-agent-ca.pem'));
  const plain = await ping(await tcp(infra), Buffer.from([RPC_CONSUL]));
  assert.equal(plain.answered, false, 'plain RPC');
  const noCertificate = await pingOverTls(infra, undefined, ca);
  assert.equal(noCertificate.answered, false, 'TLS without a client certificate');
  // A certificate from a CA of one's own, made with the same consul tls commands.
  const elsewhere = join(tmpdir(), `sempre-other-ca-${process.pid}`);
  let otherCa: RpcOutcome;
  try {
    ensureConsulTls(elsewhere, [{ name: 'probe', server: false }], findConsul());
    otherCa = await pingOverTls(infra, clientCertificate(join(elsewhere, 'probe', 'tls')), ca);
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
  assert.equal(otherCa.answered, false, 'TLS with a certificate from another CA');
  // Control: a client certificate from the cluster's CA, as `sempre secrets` makes one for a new host.
  ensureConsulTls(lab.secretsDir, [{ name: 'probe', server: false }], findConsul());
  assert.deepEqual(await pingOverTls(infra, clientCertificate(join(lab.secretsDir, 'probe', 'tls')), ca), { answered: true });
  const why = (o: RpcOutcome) => (o.answered ? 'answered' : o.why);
  recordFigure('Consul RPC (8300) without a cluster certificate: plain / TLS, none / TLS, another CA', `refused (${why(plain)}) / refused (${why(noCertificate)}) / refused (${why(otherCa)})`);
});

function clientCertificate(dir: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(join(dir, TLS_FILES.cert)), key: readFileSync(join(dir, TLS_FILES.key)) };
}

/** The servers' log lines (warn and above) that mention an address. */
function serverLogLines(address: string): string[] {
  return lab.servers.flatMap((host) => readFileSync(lab.processes[`${host}-consul`]!.log, 'utf8').split('\n')).filter((line) => line.includes(`${address}:`));
}

test('a Consul agent with the gossip key and even the management token, but no certificate, joins the gossip yet gets no RPC: nothing it registers reaches the catalog, nothing is read through it; given its certificate, the same agent works', { skip, timeout: 300_000 }, async () => {
  const rogue = 'app9';
  const address = hostAddress(rogue);
  const secrets = await prepareAppHost(lab, rogue);
  // The very files a new host gets, minus TLS.
  const configDir = writeHostConsulConfig(lab, rogue, secrets);
  rmSync(join(configDir, 'tls.hcl'));
  rmSync(join(configDir, 'tls'), { recursive: true });
  startInHost(lab, rogue, `${rogue}-consul`, consulCommand(configDir));
  const management = { 'x-consul-token': lab.consulToken };
  const local = (path: string, init: { method?: string; body?: string } = {}) => fetchInHost(lab, rogue, `http://127.0.0.1:8500${path}`, { ...init, headers: management });
  const service = JSON.stringify({ ID: 'rogue', Name: 'rogue', Port: 1 });
  const inCatalog = async () => 'rogue' in ((await (await fetch(`${lab.consulUrl}/v1/catalog/services`, { headers: management })).json()) as Record<string, unknown>);

  // With the gossip key it can find the servers, but each RPC it makes is refused.
  const refused = await waitFor('the servers to refuse an RPC from app9', () => serverLogLines(address).find((l) => /Non-TLS connection attempted/.test(l)), 30_000, 200);
  // Consul does not put gossip under TLS: with the key, it is a member.
  assert.equal(await isAliveMember(lab.consulUrl, rogue), true, 'app9 in the gossip pool');
  const rogueLog = () => readFileSync(lab.processes[`${rogue}-consul`]!.log, 'utf8');
  // Only what the agent logs after the registration counts as its attempt (startup syncs fail too).
  const logBefore = rogueLog().length;
  const register = local('/v1/agent/service/register', { method: 'PUT', body: service });
  const logSince = () => rogueLog().slice(logBefore);
  // Its anti-entropy sync retries a failed full sync every 15 s plus a random stagger of up to as long again: up to about 30 s between tries; a loaded machine has been seen to take over 60 s.
  await waitFor('app9\'s agent to try registering with the servers, and fail', () => {
    // The RPC's own error, or anti-entropy's report of the sync it was part of (which one a loaded machine logs first varies).
    if (/RPC failed to server: method=Catalog\.Register|failed to sync (remote state|changes)|Syncing (node info|service) failed/.test(logSince())) return true;
    const recent = logSince().split('\n').filter((l) => /sync|RPC|Register/i.test(l)).slice(-3).join(' | ');
    throw new NotYet(`local register answered ${JSON.stringify(register)}; its log: ${recent || '(nothing about sync or RPC)'}`);
  }, 120_000, 200);
  assert.equal(await inCatalog(), false, `app9's registration (accepted locally: ${JSON.stringify(register)}) never reaches the catalog`);
  const readThrough = local('/v1/catalog/services');
  assert.ok('status' in readThrough && readThrough.status !== 200, `a read through app9's agent: ${JSON.stringify(readThrough)}`);

  // The same agent, same files, with its certificate (tls.hcl and tls/ as `sempre secrets` wrote them).
  process.kill(lab.processes[`${rogue}-consul`]!.pid, 'SIGKILL');
  await waitFor('app9\'s agent to exit', () => !isAlive(lab.processes[`${rogue}-consul`]!.pid), 10_000);
  writeHostConsulConfig(lab, rogue, secrets);
  const restartedAt = Date.now();
  restartProcess(lab, `${rogue}-consul`);
  await waitFor('app9 an alive member', () => isAliveMember(lab.consulUrl, rogue), 30_000, 200);
  await waitFor('app9\'s service registered through its own agent', () => {
    const r = local('/v1/agent/service/register', { method: 'PUT', body: service });
    return 'status' in r && r.status === 200;
  }, 30_000, 500);
  await waitFor('the service in the catalog', inCatalog, 30_000, 200);
  recordFigure('Consul agent without a certificate (gossip key and management token in hand): refused; with it: in the catalog after', Date.now() - restartedAt, 'ms');
  assert.match(refused, /Non-TLS connection attempted with VerifyIncoming set/);
});
