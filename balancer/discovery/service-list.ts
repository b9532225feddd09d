// For routing by host and path: follows Consul's list of services with a
// blocking query and reports the ones that declare routes (their agents tag
// them sempre-routed), so the balancer can watch each one's healthy instances.
import type { ConsulClient } from '../../shared/consul-client.ts';
import { ROUTED_TAG } from '../../shared/routes.ts';
import { startBlockingQuery } from './blocking-query.ts';

/** Names of the routed services in a /v1/catalog/services answer ({ name: tags }); never throws. */
export function routedServices(data: unknown): string[] | { error: string } {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return { error: `expected a JSON object of services, got ${data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data}` };
  return Object.entries(data as Record<string, unknown>)
    .filter(([name, tags]) => /^[A-Za-z0-9_.-]{1,128}$/.test(name) && Array.isArray(tags) && tags.includes(ROUTED_TAG))
    .map(([name]) => name)
    .sort();
}

export function watchRoutedServices(options: { consul: ConsulClient; waitMs: number; onChange: (services: readonly string[]) => void; onFailure: (message: string) => void }): { services(): readonly string[]; stop(): void } {
  let current: readonly string[] = [];
  const query = startBlockingQuery({
    consul: options.consul,
    service: '',
    endpoint: 'catalog-services',
    passing: false,
    waitMs: options.waitMs,
    onFailure: options.onFailure,
    onAnswer: (data) => {
      const parsed = routedServices(data);
      if ('error' in parsed) return parsed.error;
      if (parsed.join('\n') !== current.join('\n')) {
        current = parsed;
        options.onChange(parsed);
      }
      return undefined;
    },
  });
  return { services: () => current, stop: () => query.stop() };
}
