import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alertPayload, slackBody } from '../../balancer/observe/alerts.ts';
import { IncidentTracker, type IncidentTransition } from '../../balancer/observe/incidents.ts';

test('an unplanned leave and its return are one transition each; planned maintenance is none', () => {
  const incidents = new IncidentTracker();
  const seen: IncidentTransition[] = [];
  incidents.onTransition((t) => seen.push(t));
  incidents.wentDown('app1', 'maintenance', 'deploy', true, 1000);
  incidents.cameBack('app1', 2000);
  assert.equal(seen.length, 0, 'no alert for planned maintenance');
  incidents.wentDown('app1', 'refused', 'connect ECONNREFUSED', false, 3000);
  incidents.wentDown('app1', 'check', 'GET /healthz: ECONNREFUSED', false, 3100);
  incidents.cameBack('app1', 5500);
  assert.deepEqual(seen.map((t) => [t.kind, t.cause, t.downForMs]), [['left', 'refused', undefined], ['returned', 'refused', 2500]]);
});

test('maintenance that turns into a failure alerts from the failure on', () => {
  const incidents = new IncidentTracker();
  const seen: IncidentTransition[] = [];
  incidents.onTransition((t) => seen.push(t));
  incidents.wentDown('app2', 'maintenance', 'deploy', true, 0);
  incidents.wentDown('app2', 'deregistered', 'was critical', false, 400);
  incidents.cameBack('app2', 1400);
  assert.deepEqual(seen.map((t) => [t.kind, t.cause, t.downForMs]), [['left', 'deregistered', undefined], ['returned', 'deregistered', 1000]]);
});

test('the JSON and Slack bodies say which instance, where, and why', () => {
  const left = alertPayload({ kind: 'left', id: 'app1', at: Date.UTC(2026, 10, 24), cause: 'refused', detail: 'connect ECONNREFUSED 10.0.0.1:3000' }, 'web', { address: '10.0.0.1', port: 3000, node: 'app1', version: '1.2.0' }, 'infra');
  assert.equal(left.event, 'instance.left');
  assert.equal(left.at, '2026-11-24T00:00:00.000Z');
  assert.equal(left.downForMs, null);
  assert.match(slackBody(left).text, /web\/app1\* \(10\.0\.0\.1:3000\) left rotation: refused: connect ECONNREFUSED/);
  const back = alertPayload({ kind: 'returned', id: 'app1', at: 0, cause: 'refused', detail: 'x', downForMs: 4200 }, 'web', undefined, 'infra');
  assert.equal(back.address, null);
  assert.match(slackBody(back).text, /serving again after 4\.2 s out/);
});
