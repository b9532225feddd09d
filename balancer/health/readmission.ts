// Brings ejected instances back. After the least ejection time, the balancer
// probes the instance's own health path (published by its agent in Consul
// meta) and readmits it — with slow start — only when it answers 2xx, so no
// client request is spent finding out whether it recovered.
import { get } from 'node:http';
import { HEALTH_PATH_META, instanceOrigin, type Instance } from '../../shared/instance.ts';
import { hostLookup } from '../discovery/host-lookup.ts';
import type { Logger } from '../../shared/logger.ts';
import type { InstanceStates } from './instance-state.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';

export interface ReadmissionOptions {
  states: InstanceStates;
  table: () => RoutingTable;
  logger: Logger;
  probeTimeoutMs: number;
  intervalMs?: number;
  now?: () => number;
  onReadmitted?: (id: string) => void;
}

/** 2xx from the instance's health path, body and all, within the time (a fresh connection; names through the balancer's shared lookup). */
export function answersHealthy(instance: Instance, timeoutMs: number): Promise<boolean> {
  const path = instance.meta[HEALTH_PATH_META] ?? '/';
  return new Promise((resolve) => {
    let healthy = false;
    let request: ReturnType<typeof get>;
    try {
      request = get(`${instanceOrigin(instance)}${path}`, { agent: false, lookup: hostLookup }, (response) => {
        const ok = (response.statusCode ?? 0) >= 200 && (response.statusCode ?? 0) < 300;
        response.once('end', () => { healthy = ok; });
        response.resume();
      });
    } catch {
      // Not a URL at all (a health path from Consul meta without its leading slash): not healthy.
      resolve(false);
      return;
    }
    const timer = setTimeout(() => request.destroy(), timeoutMs);
    request.once('error', () => undefined); // refused, reset, destroyed: 'close' follows
    request.once('close', () => {
      clearTimeout(timer);
      resolve(healthy);
    });
  });
}

export function startReadmission(options: ReadmissionOptions): { stop(): void } {
  const now = options.now ?? Date.now;
  const probing = new Set<string>();
  const timer = setInterval(() => {
    for (const instance of options.table().instances) {
      const state = options.states.get(instance.id);
      if (!state?.ejected || state.ejectedUntil > now() || probing.has(instance.id)) continue;
      probing.add(instance.id);
      void answersHealthy(instance, options.probeTimeoutMs).then((healthy) => {
        probing.delete(instance.id);
        if (!healthy || !options.states.isEjected(instance.id)) return;
        options.states.readmit(instance.id, now());
        options.onReadmitted?.(instance.id);
        options.logger.info({ instance: instance.id, ejectedForMs: now() - state.since }, 'instance answers its health probe again; readmitted with slow start');
      });
    }
  }, options.intervalMs ?? 250);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
