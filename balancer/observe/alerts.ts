// Webhook alerts: one POST when an instance leaves rotation unplanned and one
// when it serves again, with the cause; one when the service starts being
// served against Consul's list (fail-open.ts) and one when that ends. Generic JSON by default, or a
// Slack-compatible {"text": …} body. Alerts go out in order, each retried a
// few times; a receiver that is down or slow never slows the proxy and never
// crashes the balancer: after the retries the alert is logged and dropped.
import { hostname } from 'node:os';
import pRetry from 'p-retry';
import type { Logger } from '../../shared/logger.ts';
import type { IncidentTransition } from './incidents.ts';
import type { HealReport } from '../../shared/heal-report.ts';

export type AlertFormat = 'json' | 'slack';

export interface AlertInstanceInfo {
  address: string;
  port: number;
  node: string;
  version: string | null;
}

export interface AlerterOptions {
  url: URL;
  format: AlertFormat;
  timeoutMs: number;
  service: string;
  logger: Logger;
  /** Where the instance was, if the balancer still knows. */
  lookup: (id: string) => AlertInstanceInfo | undefined;
  /** At most this many alerts wait; older ones are dropped (a receiver down for long). */
  maxQueued?: number;
}

export interface AlertPayload {
  /** fail-open.*: the service is served against Consul's list (instance is empty; detail says which and why). */
  event: 'instance.left' | 'instance.returned' | 'fail-open.started' | 'fail-open.ended'
    /** The instance's agent restarts its hung app (detail: the diagnosis), it passes again, or it gave up: a person is needed. */
    | 'instance.healing' | 'instance.healed' | 'instance.heal-failed' | 'instance.needs-person';
  service: string;
  instance: string;
  address: string | null;
  port: number | null;
  node: string | null;
  version: string | null;
  cause: string;
  detail: string;
  at: string;
  downForMs: number | null;
  balancer: string;
}

export function alertPayload(transition: IncidentTransition, service: string, info: AlertInstanceInfo | undefined, balancer = hostname()): AlertPayload {
  return {
    event: transition.kind === 'left' ? 'instance.left' : 'instance.returned',
    service,
    instance: transition.id,
    address: info?.address ?? null,
    port: info?.port ?? null,
    node: info?.node || null,
    version: info?.version ?? null,
    cause: transition.cause,
    detail: transition.detail,
    at: new Date(transition.at).toISOString(),
    downForMs: transition.downForMs ?? null,
    balancer,
  };
}

/** Slack's incoming webhooks (and Mattermost, Rocket.Chat, Teams' Slack mode) read `text`. */
export function slackBody(alert: AlertPayload): { text: string } {
  const where = alert.address ? ` (${alert.address}:${alert.port})` : '';
  if (alert.event.startsWith('instance.heal') || alert.event === 'instance.needs-person') {
    const icon = alert.event === 'instance.healed' ? ':large_green_circle:' : alert.event === 'instance.healing' ? ':wrench:' : ':sos:';
    return { text: `${icon} *${alert.service}/${alert.instance}*${alert.address ? ` (${alert.address}:${alert.port})` : ''} ${alert.event.slice('instance.'.length)}: ${alert.detail} — balancer ${alert.balancer}` };
  }
  if (alert.event === 'fail-open.started' || alert.event === 'fail-open.ended') {
    return { text: `${alert.event === 'fail-open.started' ? ':warning:' : ':large_green_circle:'} *${alert.service}*: ${alert.detail} — balancer ${alert.balancer}` };
  }
  const text = alert.event === 'instance.left'
    ? `:red_circle: *${alert.service}/${alert.instance}*${where} left rotation: ${alert.cause}: ${alert.detail}`
    : `:large_green_circle: *${alert.service}/${alert.instance}*${where} is serving again after ${(Number(alert.downForMs) / 1000).toFixed(1)} s out (it left with ${alert.cause}: ${alert.detail})`;
  return { text: `${text} — balancer ${alert.balancer}` };
}

export function createAlerter(options: AlerterOptions): {
  send: (transition: IncidentTransition) => void;
  sendServiceEvent: (event: 'fail-open.started' | 'fail-open.ended', detail: string, at: number) => void;
  sendHeal: (report: HealReport) => void;
} {
  const { url, format, timeoutMs, service, logger } = options;
  const maxQueued = options.maxQueued ?? 100;
  let queued = 0;
  // A chain keeps alerts in order: a "returned" never overtakes its "left".
  let chain: Promise<void> = Promise.resolve();

  async function post(alert: AlertPayload): Promise<void> {
    const body = JSON.stringify(format === 'slack' ? slackBody(alert) : alert);
    await pRetry(async () => {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'sempre-balancer' }, body, signal: AbortSignal.timeout(timeoutMs) });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`the webhook answered HTTP ${response.status}`);
    }, { retries: 3, minTimeout: 500, maxTimeout: 4000 });
  }

  const enqueue = (alert: AlertPayload) => {
    if (queued >= maxQueued) {
      logger.warn({ instance: alert.instance, event: alert.event, queued }, 'alert dropped: the webhook is not keeping up');
      return;
    }
    queued += 1;
    chain = chain.then(async () => {
      try {
        await post(alert);
        logger.info({ instance: alert.instance, event: alert.event, cause: alert.cause }, 'alert sent');
      } catch (error) {
        logger.error({ instance: alert.instance, event: alert.event, err: (error as Error).message, webhook: url.origin }, 'alert not delivered after retries');
      } finally {
        queued -= 1;
      }
    });
  };

  return {
    send: (transition) => enqueue(alertPayload(transition, service, options.lookup(transition.id))),
    sendHeal: (report) => {
      if (report.outcome === 'not-fixable') return; // nothing was done: the check's own alert said it
      const event = report.outcome === 'restarting' ? 'instance.healing' : report.outcome === 'healed' ? 'instance.healed' : report.outcome === 'needs-person' ? 'instance.needs-person' : 'instance.heal-failed';
      const info = options.lookup(report.instance);
      enqueue({
        event, service, instance: report.instance, address: info?.address ?? null, port: info?.port ?? null, node: info?.node || null, version: info?.version ?? null,
        cause: report.outcome, detail: `${report.diagnosis}${report.outForMs !== null ? `; out ${(report.outForMs / 1000).toFixed(1)} s` : ''}; heal ${report.healsInWindow} of ${report.budget} in the window; evidence on ${report.host}: ${report.evidenceFile ?? 'none'}`,
        at: report.at, downForMs: report.outForMs, balancer: hostname(),
      });
    },
    sendServiceEvent: (event, detail, at) => enqueue({
      event, service, instance: '', address: null, port: null, node: null, version: null,
      cause: 'fail-open', detail, at: new Date(at).toISOString(), downForMs: null, balancer: hostname(),
    }),
  };
}
