// The balancer pair in the lab: keepalived in two balancer namespaces,
// sharing a virtual address over unicast VRRP, from the very template
// deploy/keepalived/ ships for the servers.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './consul-binary.ts';

export const KEEPALIVED_DIR = join(PROJECT_ROOT, 'deploy', 'keepalived');

export interface KeepalivedHost {
  name: string;
  selfIp: string;
  peerIp: string;
  priority: number;
  vip: string;
  interface: string;
  checkUrl: string;
}

export function renderKeepalivedConf(host: KeepalivedHost): string {
  const fields: Record<string, string> = {
    ROUTER_ID: `sempre_${host.name}`, PRIORITY: String(host.priority), SELF_IP: host.selfIp, PEER_IP: host.peerIp, VIP: `${host.vip}/24`,
    INTERFACE: host.interface, VRID: '47', CHECK_URL: host.checkUrl, SCRIPTS: KEEPALIVED_DIR,
  };
  return readFileSync(join(KEEPALIVED_DIR, 'keepalived.conf.tmpl'), 'utf8').replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    const value = fields[key];
    if (value === undefined) throw new Error(`keepalived.conf.tmpl has an unknown field ${whole}`);
    return value;
  });
}

/** Writes the host's config and returns keepalived's command line (foreground, VRRP only, its own pid files). */
export function keepalivedCommand(dir: string, host: KeepalivedHost): string[] {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, `keepalived-${host.name}.conf`);
  writeFileSync(conf, renderKeepalivedConf(host));
  return ['/usr/sbin/keepalived', '--dont-fork', '--log-console', '--log-detail', '--vrrp', '--use-file', conf,
    '--pid', join(dir, `keepalived-${host.name}.pid`), '--vrrp_pid', join(dir, `keepalived-vrrp-${host.name}.pid`)];
}
