// One Consul blocking query on /v1/health/service/<name> (or, for routing
// by host and path, on /v1/catalog/services), repeated for as
// long as it runs: each answer is handed over with its index, failures are
// retried with backoff (p-retry), and the index restarts from 0 after any
// failure, because a restarted Consul starts its own index from scratch.
import { EventEmitter } from 'node:events';
import pRetry from 'p-retry';
import type { ConsulClient } from '../../shared/consul-client.ts';
import { describeConsulError } from '../../shared/consul-client.ts';

export interface BlockingQueryOptions {
  consul: ConsulClient;
  /** The service whose instances are followed; '' with `endpoint: 'catalog-services'`. */
  service: string;
  /** health-service (the default): one service's instances; catalog-services: every service's name and tags; kv-prefix: the KV entries under `key` (the agents' heal reports). */
  endpoint?: 'health-service' | 'catalog-services' | 'kv-prefix';
  /** With kv-prefix: the prefix. */
  key?: string;
  /** Only instances whose checks all pass (the routing view), or all of them. */
  passing: boolean;
  waitMs: number;
  /** Handles an answer; returns a complaint when the answer is malformed. */
  onAnswer: (data: unknown) => string | undefined;
  onFailure: (message: string) => void;
}

type HealthServiceCall = (opts: Record<string, unknown>) => Promise<[{ headers: Record<string, string | undefined> }, unknown]>;

export function startBlockingQuery(options: BlockingQueryOptions): { stop(): void } {
  const stopper = new AbortController();
  const waitSeconds = Math.max(1, Math.round(options.waitMs / 1000));
  const call = (options.endpoint === 'catalog-services'
    ? options.consul.catalog.service.list.bind(options.consul.catalog.service)
    : options.endpoint === 'kv-prefix' ? options.consul.kv.get.bind(options.consul.kv)
      : options.consul.health.service.bind(options.consul.health)) as unknown as HealthServiceCall;
  const target = options.endpoint === 'catalog-services' ? {} : options.endpoint === 'kv-prefix' ? { key: options.key, recurse: true } : { service: options.service };
  // The client returns [response, body] when given an emitter context with
  // includeResponse, and aborts the request when it emits 'cancel'.
  const context = Object.assign(new EventEmitter(), { includeResponse: true });
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  const loop = async () => {
    let index = '0';
    while (!stopper.signal.aborted) {
      try {
        const [response, data] = await pRetry(
          () => call({ ...target, ...(options.passing ? { passing: true } : {}), stale: true, index, wait: `${waitSeconds}s`, timeout: (waitSeconds + 5) * 1000, ctx: context }),
          {
            retries: Number.POSITIVE_INFINITY,
            minTimeout: 200,
            maxTimeout: 2000,
            signal: stopper.signal,
            onFailedAttempt: ({ error }) => {
              options.onFailure(describeConsulError(error).message);
              index = '0';
            },
          },
        );
        const nextIndex = response.headers['x-consul-index'];
        const complaint = !nextIndex || !/^\d+$/.test(nextIndex) ? 'no X-Consul-Index header' : options.onAnswer(data);
        if (complaint) {
          options.onFailure(`malformed answer from Consul: ${complaint}`);
          index = '0';
          await pause(1000);
          continue;
        }
        index = BigInt(nextIndex!) < BigInt(index) ? '0' : nextIndex!;
      } catch (error) {
        if (stopper.signal.aborted) break;
        options.onFailure(describeConsulError(error).message);
        index = '0';
        await pause(1000);
      }
    }
  };
  void loop();
  return {
    stop: () => {
      stopper.abort();
      context.emit('cancel');
    },
  };
}
