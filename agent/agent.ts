// The registration agent's life: register when the app answers, renew the
// TTL check every interval with the probe's result, register again when
// Consul forgot us, and on stop leave rotation, drain, then deregister.
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';
import type { ConsulClient } from '../shared/consul-client.ts';
import { describeConsulError } from '../shared/consul-client.ts';
import type { Logger } from '../shared/logger.ts';
import type { HealthProbe } from './health-probe.ts';
import type { Healer } from './heal/healer.ts';
import type { AgentOptions } from './options.ts';
import { buildRegistration, isLostRegistration, ttlCheckId } from './registration.ts';
import { DASHBOARD_REASON_PREFIX, maintenanceKey } from '../shared/maintenance-flag.ts';

export interface AgentDeps {
  consul: ConsulClient;
  logger: Logger;
  probe: HealthProbe;
  /** Aborted when the agent should leave rotation and stop. */
  stop: AbortSignal;
  /** Aborted on a second signal: skip draining and exit now. */
  hurry?: AbortSignal;
  /** Restarts the app when it stays hung (--heal); sees every probe. */
  healer?: Healer;
}

const CONSUL_CALL_TIMEOUT_MS = 2000;

export async function runAgent(options: AgentOptions, instanceId: string, deps: AgentDeps): Promise<void> {
  const { consul, logger, stop } = deps;
  // Every probe's result also goes to the heal loop, which never holds up the heartbeat.
  const probe: HealthProbe = async () => {
    const started = performance.now();
    const result = await deps.probe();
    deps.healer?.observe(result, performance.now() - started);
    return result;
  };
  const log = logger.child({ instance: instanceId, service: options.service });
  let healthy: boolean | undefined;

  const register = async (initiallyHealthy: boolean, note: string) => {
    const registration = buildRegistration(options, instanceId, initiallyHealthy);
    await pRetry(
      async () => {
        await consul.agent.service.register({ ...registration.body, timeout: CONSUL_CALL_TIMEOUT_MS } as never);
        if (initiallyHealthy) await consul.agent.check.pass({ id: registration.checkId, note, timeout: CONSUL_CALL_TIMEOUT_MS } as never);
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 200,
        maxTimeout: 5000,
        signal: stop,
        onFailedAttempt: ({ error, attemptNumber }) => log.warn({ err: describeConsulError(error), attempt: attemptNumber }, 'cannot register with Consul yet; retrying'),
      },
    );
    log.info({ consul: options.consul.href, address: options.address || '(node address)', port: options.port, healthy: initiallyHealthy }, 'registered with Consul');
  };

  const first = await probe();
  healthy = first.healthy;
  if (!first.healthy) log.warn({ output: first.output }, 'app not healthy yet; registering as critical');
  try {
    await register(first.healthy, first.output);
  } catch (error) {
    if (stop.aborted) return; // stopped before Consul ever answered: nothing to undo
    throw error;
  }

  const checkId = ttlCheckId(instanceId);
  // Maintenance asked for through the KV flag (from a dashboard).
  let maintenanceByFlag = false;
  const flagKey = maintenanceKey(options.service, instanceId);
  let flagRefusedSaid = false;
  const syncMaintenanceFlag = async () => {
    try {
      // Stale: any server answers from its own copy. A default read waits for
      // a Raft leader, and while the cluster elects one (a server's host
      // crashed) that wait held up the heartbeat loop past the TTL: healthy
      // instances went critical.
      const flag = (await consul.kv.get({ key: flagKey, stale: true, timeout: CONSUL_CALL_TIMEOUT_MS } as never)) as { Value?: string | null } | undefined;
      if (flag && !maintenanceByFlag) {
        const reason = `${DASHBOARD_REASON_PREFIX}${flag.Value || 'maintenance'}`;
        await consul.agent.service.maintenance({ id: instanceId, enable: true, reason, timeout: CONSUL_CALL_TIMEOUT_MS } as never);
        maintenanceByFlag = true;
        deps.healer?.setMaintenance(true);
        log.warn({ reason }, 'maintenance asked for through Consul: out of rotation');
      } else if (!flag && maintenanceByFlag) {
        await consul.agent.service.maintenance({ id: instanceId, enable: false, timeout: CONSUL_CALL_TIMEOUT_MS } as never);
        maintenanceByFlag = false;
        deps.healer?.setMaintenance(false);
        log.info('maintenance lifted through Consul: back in rotation');
      }
    } catch (error) {
      const err = describeConsulError(error);
      // Refused for good, not a passing outage: the dashboard's maintenance cannot reach this instance. Said once.
      if (err.statusCode === 403 && !flagRefusedSaid) {
        flagRefusedSaid = true;
        log.warn({ err, key: flagKey }, "Consul refuses this agent's token the instance's maintenance flag: the dashboard's maintenance button will not reach it. Is --id what the token was made for (sempre secrets: the first service's instances are named by host, later services' <service>-<host>)?");
      } else log.debug({ err }, 'cannot read the maintenance flag; will retry next interval');
    }
  };
  await syncMaintenanceFlag();
  // What Consul was last told, and when: a change not yet told (Consul did not
  // answer) is told again at the next probe, not a whole interval later.
  let reported = first.healthy;
  let lastReport = performance.now();
  while (!stop.aborted) {
    // An app that is down (crashed, restarting) is probed every --recheck-interval,
    // so it is back in rotation within a fraction of a second of answering again.
    const wait = healthy ? options.checkInterval : Math.min(options.recheckInterval, options.checkInterval);
    await sleep(wait, undefined, { signal: stop }).catch(() => undefined);
    if (stop.aborted) break;
    const result = await probe();
    if (result.healthy !== healthy) {
      if (result.healthy) log.info({ output: result.output }, 'app healthy again');
      else log.warn({ output: result.output }, 'app unhealthy; marking instance critical');
      healthy = result.healthy;
    }
    // Consul hears of a change at once, and otherwise once per --check-interval
    // (half a wait of slack: a healthy app, probed once per interval, renews every time).
    if (result.healthy === reported && performance.now() - lastReport < options.checkInterval - wait / 2) continue;
    lastReport = performance.now();
    try {
      await pRetry(
        async () => {
          try {
            const update = { id: checkId, note: result.output, timeout: CONSUL_CALL_TIMEOUT_MS } as never;
            await (result.healthy ? consul.agent.check.pass(update) : consul.agent.check.fail(update));
          } catch (error) {
            if (isLostRegistration(error)) throw new AbortError(error as Error);
            throw error;
          }
        },
        { retries: 2, minTimeout: 100, maxTimeout: 300, signal: stop },
      );
      reported = result.healthy;
    } catch (error) {
      if (stop.aborted) break;
      const cause = (error as { cause?: unknown }).cause ?? error;
      if (isLostRegistration(cause) || isLostRegistration(error)) {
        log.warn('Consul no longer knows this instance (Consul restarted?); registering again');
        if (await register(result.healthy, result.output).then(() => true, () => false)) reported = result.healthy;
        maintenanceByFlag = false; // a new registration starts out of maintenance
        deps.healer?.setMaintenance(false);
      } else if (describeConsulError(cause).statusCode === 403) {
        // Consul answers, but refuses this agent's token (revoked, rotated, a wrong policy): it keeps
        // the last state it had in its catalog, so a failing app would go unnoticed by Consul.
        log.error({ err: describeConsulError(cause) }, "Consul refuses this agent's token (403): the check cannot be updated and Consul keeps its last state; fix the token (sempre secrets apply)");
      } else {
        log.warn({ err: describeConsulError(error) }, 'cannot reach Consul to renew the check; will retry next interval');
      }
    }
    if (!stop.aborted) await syncMaintenanceFlag();
  }
  await deps.healer?.stop();
  await leaveRotation(options, instanceId, deps, log);
}

async function leaveRotation(options: AgentOptions, instanceId: string, deps: AgentDeps, log: Logger): Promise<void> {
  const { consul } = deps;
  const attempt = (fn: () => Promise<unknown>) => pRetry(fn, { retries: 2, minTimeout: 100, maxTimeout: 500 });
  try {
    await attempt(() => consul.agent.service.maintenance({ id: instanceId, enable: true, reason: 'sempre-agent stopping: draining', timeout: CONSUL_CALL_TIMEOUT_MS } as never));
    log.info({ drainMs: options.drain }, 'in maintenance: out of rotation, draining in-flight requests');
  } catch (error) {
    log.warn({ err: describeConsulError(error) }, 'cannot reach Consul to leave rotation; the TTL will expire instead');
    return;
  }
  if (options.drain > 0 && !deps.hurry?.aborted) {
    await sleep(options.drain, undefined, { signal: deps.hurry }).catch(() => log.warn('second signal: skipping the rest of the drain'));
  }
  if (!options.deregisterOnStop) {
    log.info('left in maintenance as asked (--deregister-on-stop false)');
    return;
  }
  try {
    await attempt(() => consul.agent.service.deregister({ id: instanceId, timeout: CONSUL_CALL_TIMEOUT_MS } as never));
    log.info('deregistered');
  } catch (error) {
    log.warn({ err: describeConsulError(error) }, 'cannot deregister; Consul will remove the instance after deregister-after');
  }
}
