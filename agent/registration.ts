// The Consul registration for one instance: a service with a single TTL
// check that the agent keeps passing while the app answers its health probe.
import { formatGoDuration } from '../shared/config/values.ts';
import { HEALTH_PATH_META, STICKY_META } from '../shared/instance.ts';
import { formatRoute, ROUTED_TAG, ROUTES_META } from '../shared/routes.ts';
import type { AgentOptions } from './options.ts';

export interface Registration {
  id: string;
  checkId: string;
  body: {
    name: string;
    id: string;
    address: string;
    port: number;
    tags: string[];
    meta: Record<string, string>;
    check: {
      checkid: string;
      name: string;
      ttl: string;
      status: 'passing' | 'critical';
      notes: string;
      deregistercriticalserviceafter: string;
      timeout: string;
    };
  };
}

export function buildRegistration(options: AgentOptions, id: string, initiallyHealthy: boolean): Registration {
  const checkId = ttlCheckId(id);
  return {
    id,
    checkId,
    body: {
      name: options.service,
      id,
      address: options.address,
      port: options.port,
      tags: options.routes.length > 0 && !options.tags.includes(ROUTED_TAG) ? [...options.tags, ROUTED_TAG] : [...options.tags],
      meta: { ...options.meta, [HEALTH_PATH_META]: options.healthPath, ...(options.sticky ? { [STICKY_META]: 'true' } : {}), ...(options.routes.length > 0 ? { [ROUTES_META]: options.routes.map(formatRoute).join(',') } : {}) },
      check: {
        checkid: checkId,
        name: `sempre-agent probe of ${options.healthPath}`,
        ttl: formatGoDuration(options.ttl),
        // A TTL check starts critical unless told otherwise; register passing
        // only when the app already answered, so it joins rotation at once.
        status: initiallyHealthy ? 'passing' : 'critical',
        notes: `Renewed every ${formatGoDuration(options.checkInterval)} by sempre-agent while GET ${options.healthPath} answers 2xx`,
        deregistercriticalserviceafter: formatGoDuration(options.deregisterAfter),
        timeout: formatGoDuration(options.probeTimeout),
      },
    },
  };
}

/** The ID of the instance's TTL check, the one the agent renews (as Consul names a service's first check). */
export function ttlCheckId(instanceId: string): string {
  return `service:${instanceId}`;
}

/** Consul answers this way when it no longer knows the check (it restarted or lost its state). */
export function isLostRegistration(error: unknown): boolean {
  const e = error as { message?: string; response?: { statusCode?: number; body?: unknown } };
  const text = `${e?.message ?? ''} ${typeof e?.response?.body === 'string' ? e.response.body : ''}`;
  return /does not have associated TTL|unknown check/i.test(text) || e?.response?.statusCode === 404;
}
