// HTTPS on the balancer: a throwaway certificate from openssl, then what a
// client sees: the page over TLS, TLS 1.2 and 1.3 accepted, and TLS 1.1 and
// 1.0 refused by the server (checked with `openssl s_client`).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { testStack } from '../support/stack.ts';

const dir = mkdtempSync(join(tmpdir(), 'sempre-tls-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });

const stack = testStack('tls', 29_000, { balancerArgs: ['--tls-cert', cert, '--tls-key', key] });
const h2stack = testStack('tls-h2', 29_500, { balancerArgs: ['--tls-cert', cert, '--tls-key', key, '--http2', 'true', '--headers-timeout', '2s', '--request-timeout', '4s'] });
before(async () => { await Promise.all([stack.start(), h2stack.start()]); }, { timeout: 60_000 });
after(async () => {
  await Promise.all([stack.stop(), h2stack.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function sClient(...args: string[]): string {
  return sClientTo(stack.ports.balancer, ...args);
}

function sClientTo(port: number, ...args: string[]): string {
  // Level 0 lets this client offer the old versions, so a refusal is the server's.
  const run = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-cipher', 'DEFAULT@SECLEVEL=0', ...args], { input: '', encoding: 'utf8', timeout: 10_000 });
  return `${run.stdout}\n${run.stderr}`;
}

test('the page is served over HTTPS by both instances', async () => {
  const { status, servedBy } = await new Promise<{ status: number; servedBy: string }>((resolve, reject) => {
    get({ host: '127.0.0.1', port: stack.ports.balancer, path: '/', rejectUnauthorized: false }, (res) => {
      res.resume().on('end', () => resolve({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by']) }));
    }).on('error', reject);
  });
  assert.equal(status, 200);
  assert.match(servedBy, /^app[12]$/);
});

test('TLS 1.2 and 1.3 are accepted; 1.1 and 1.0 are refused by the server (openssl s_client)', () => {
  assert.match(sClient('-tls1_3'), /New, TLSv1\.3, Cipher is TLS_/);
  assert.match(sClient('-tls1_2'), /New, TLSv1\.2, Cipher is ECDHE-/);
  for (const old of ['-tls1_1', '-tls1']) {
    const out = sClient(old);
    assert.match(out, /New, \(NONE\), Cipher is \(NONE\)/, `${old}: no session (${out.slice(0, 300)})`);
    assert.match(out, /alert protocol version/i, `${old}: the server answered with a protocol_version alert`);
  }
});

test('with --http2: browsers get HTTP/2 (ALPN h2), GET and POST are proxied, and HTTP/1.1 clients on the same port are still served', async () => {
  const session = connectHttp2(`https://localhost:${h2stack.ports.balancer}`, { rejectUnauthorized: false });
  try {
    const ask = (method: string, body?: string) => new Promise<{ status: number; servedBy: string; text: string }>((resolve, reject) => {
      const stream = session.request({ ':method': method, ':path': '/', ...(body ? { 'content-type': 'text/plain' } : {}) });
      let text = '';
      let status = 0;
      let servedBy = '';
      stream.on('response', (headers) => { status = Number(headers[':status']); servedBy = String(headers['x-served-by']); });
      stream.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      stream.on('end', () => resolve({ status, servedBy, text }));
      stream.on('error', reject);
      stream.end(body);
    });
    const first = await ask('GET');
    assert.equal(session.alpnProtocol, 'h2');
    assert.equal(first.status, 200);
    assert.match(first.servedBy, /^app[12]$/);
    assert.match(first.text, /<html/i);
    const seen = new Set([first.servedBy, (await ask('GET')).servedBy, (await ask('GET')).servedBy, (await ask('GET')).servedBy]);
    assert.equal(seen.size, 2, 'both instances over one HTTP/2 connection');
    assert.equal((await ask('POST', 'hello')).status, 200);
  } finally {
    session.close();
  }
  const http1 = await new Promise<number>((resolve, reject) => {
    get({ host: '127.0.0.1', port: h2stack.ports.balancer, path: '/', rejectUnauthorized: false }, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject);
  });
  assert.equal(http1, 200);
  assert.match(sClientTo(h2stack.ports.balancer, '-alpn', 'h2,http/1.1'), /ALPN protocol: h2/);
  assert.match(sClientTo(h2stack.ports.balancer, '-tls1_1'), /alert protocol version/i, 'still no TLS 1.1');
});

test('with --http2, a slowloris over HTTP/1.1 is still cut by the headers timeout', { timeout: 20_000 }, async () => {
  const started = Date.now();
  const { got, closedAfter } = await new Promise<{ got: string; closedAfter: number }>((resolve) => {
    const socket = connectTls({ host: '127.0.0.1', port: h2stack.ports.balancer, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    let got = '';
    const drip = setInterval(() => socket.write(`X-Slow: ${Date.now()}\r\n`), 500);
    socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: sempre\r\n'));
    socket.on('data', (c: Buffer) => { got += c.toString(); });
    socket.on('error', () => undefined);
    socket.on('close', () => { clearInterval(drip); resolve({ got, closedAfter: Date.now() - started }); });
    setTimeout(() => socket.destroy(), 15_000);
  });
  assert.ok(closedAfter < 2000 + 1500, `closed after ${closedAfter} ms (headers timeout 2 s)`);
  assert.match(got, /^HTTP\/1\.1 408 /);
});
