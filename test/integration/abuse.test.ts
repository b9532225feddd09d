// The balancer's front door under abuse, with a real stack on loopback. The
// abusers connect from their own loopback addresses (127.0.0.66, .77), so
// the per-address limits hit them and not the normal visitors on 127.0.0.1:
// hundreds of slowloris connections, a client flooding past its rate limit,
// malformed and oversized requests, and every instance at its in-flight cap.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { recordFigure, testStack } from '../support/stack.ts';

const stack = testStack('abuse', 28_000, {
  balancerArgs: ['--rate-limit', '100', '--rate-burst', '50', '--max-connections-per-client', '100', '--headers-timeout', '2s', '--request-timeout', '4s',
    '--max-body', '1048576', '--max-header-size', '8192'],
});
// Its own stack: a cap of 2 in flight would also turn the flood test's burst into 503s.
const capped = testStack('abuse-cap', 28_500, { balancerArgs: ['--max-per-instance', '2'] });
before(async () => { await Promise.all([stack.start(), capped.start()]); }, { timeout: 60_000 });
after(async () => { await Promise.all([stack.stop(), capped.stop()]); });

const port = () => stack.ports.balancer;

async function setAppFault(id: string, query: string): Promise<void> {
  const response = await fetch(`http://${capped.addressOf(id)}:${capped.ports.app}/_fault?${query}`, { method: 'PUT' });
  assert.equal(response.status, 200);
  await response.arrayBuffer();
}

/** One raw HTTP exchange from a given source address; resolves with what came back before the close. */
function raw(localAddress: string, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: port(), localAddress });
    let got = '';
    socket.on('data', (chunk) => { got += chunk.toString(); });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
    socket.on('connect', () => socket.write(payload));
  });
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.ports.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('300 slowloris connections from one address: the normal visitors keep ≥ 99.9% success; the slow ones are cut', { timeout: 60_000 }, async () => {
  const sockets: Array<{ socket: Socket; got: string; closedAt: number | null; openedAt: number }> = [];
  for (let i = 0; i < 300; i += 1) {
    const entry = { socket: connect({ host: '127.0.0.1', port: port(), localAddress: '127.0.0.66' }), got: '', closedAt: null as number | null, openedAt: Date.now() };
    entry.socket.on('data', (c) => { entry.got += c.toString(); });
    entry.socket.on('error', () => undefined);
    entry.socket.on('close', () => { entry.closedAt = Date.now(); });
    entry.socket.on('connect', () => entry.socket.write('GET / HTTP/1.1\r\nHost: sempre\r\n'));
    sockets.push(entry);
  }
  // A header line every 500 ms: never finishing the request head.
  const drip = setInterval(() => { for (const s of sockets) if (s.closedAt === null) s.socket.write(`X-Slow-${Date.now()}: 1\r\n`); }, 500);
  try {
    const summary = summarize(await startLoad({ url: stack.url, rate: 50, durationMs: 5000 }).done);
    assert.ok(summary.total >= 240, describeSummary(summary));
    assert.ok((summary.total - summary.failed) / summary.total >= 0.999, `normal visitors: ${describeSummary(summary)}`);
    await waitFor('every slow connection closed', () => sockets.every((s) => s.closedAt !== null), 10_000);
  } finally {
    clearInterval(drip);
    for (const s of sockets) s.socket.destroy();
  }
  const answered408 = sockets.filter((s) => s.got.startsWith('HTTP/1.1 408'));
  const cutAtOnce = sockets.filter((s) => s.got === '' && s.closedAt! - s.openedAt < 1000);
  assert.ok(answered408.length > 0 && answered408.length <= 100, `at most 100 accepted from one address, each cut with 408 (${answered408.length})`);
  assert.ok(cutAtOnce.length >= 190, `the rest closed at once (${cutAtOnce.length})`);
  const longest = Math.max(...answered408.map((s) => s.closedAt! - s.openedAt));
  assert.ok(longest < 2000 + 1500, `cut within the 2 s headers timeout, plus the 1 s check (${longest} ms)`);
  assert.ok(await metric('sempre_client_refused_total', 'reason="connections-per-client"') >= 190);
  recordFigure('slowloris (300 connections, one address): slow ones cut after', longest, 'ms');
});

test('a client flooding past its rate limit gets 429 with Retry-After; another client is served', { timeout: 60_000 }, async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 20, localAddress: '127.0.0.77' });
  const statuses: number[] = [];
  let retryAfter: string | undefined;
  const one = () => new Promise<void>((resolve) => {
    request({ host: '127.0.0.1', port: port(), path: '/', agent }, (res) => {
      statuses.push(res.statusCode ?? 0);
      if (res.statusCode === 429) retryAfter = res.headers['retry-after'] as string;
      res.resume().on('end', resolve);
    }).on('error', () => { statuses.push(0); resolve(); }).end();
  });
  const normal = startLoad({ url: stack.url, rate: 50, durationMs: 3000 });
  const flood = (async () => {
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) await Promise.all(Array.from({ length: 20 }, one));
  })();
  const [records] = await Promise.all([normal.done, flood]);
  agent.destroy();
  const normalSummary = summarize(records);
  const ok = statuses.filter((s) => s === 200).length;
  const limited = statuses.filter((s) => s === 429).length;
  assert.equal(normalSummary.failed, 0, `the other client: ${describeSummary(normalSummary)}`);
  assert.ok(limited > 0, 'the flood is limited');
  assert.ok(ok <= 50 + 100 * 3.5, `at most burst + rate × time served (${ok} of ${statuses.length})`);
  assert.ok(ok >= 50, `but the burst and the rate are served (${ok})`);
  assert.match(retryAfter ?? '', /^\d+$/);
  recordFigure('rate limit 100/s: flood served / refused 429', `${ok} / ${limited} (other client 0 failed of ${normalSummary.total})`);
});

test('malformed, oversized and huge-header requests get 400, 413 and 431, and nobody else notices', async () => {
  assert.match(await raw('127.0.0.88', 'BLAH\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw('127.0.0.88', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  assert.match(await raw('127.0.0.88', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n'), /^HTTP\/1\.1 413 [\s\S]*at most 1048576 bytes/);
  assert.match(await raw('127.0.0.88', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), /^HTTP\/1\.1 400 /, 'conflicting lengths (request smuggling) refused');
  const response = await fetch(stack.url);
  assert.equal(response.status, 200);
  await response.arrayBuffer();
});

test('with every instance at its in-flight cap, more requests get a quick 503 instead of queueing', { timeout: 30_000 }, async () => {
  for (const id of ['app1', 'app2']) await setAppFault(id, 'mode=slow&ms=1500');
  try {
    const results = await Promise.all(Array.from({ length: 8 }, async () => {
      const t0 = Date.now();
      const r = await fetch(capped.url, { headers: { connection: 'close' } });
      return { status: r.status, body: await r.text(), ms: Date.now() - t0 };
    }));
    const served = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 503);
    assert.equal(served.length, 4, `2 per instance (${JSON.stringify(results.map((r) => r.status))})`);
    assert.equal(refused.length, 4);
    assert.ok(refused.every((r) => r.ms < 1000 && /already has 2 requests in flight/.test(r.body)), JSON.stringify(refused));
  } finally {
    for (const id of ['app1', 'app2']) await setAppFault(id, 'mode=none');
  }
});
