import type { CommandSpec, OptionValues } from '../shared/config/options.ts';
import { boolean, duration, httpBaseUrl, integer, list, text } from '../shared/config/values.ts';
import { z } from 'zod';

const version = () => z.unknown().transform((input, ctx): string => {
  if (typeof input !== 'string' || !/^[\w.+-]{1,64}$/.test(input)) {
    ctx.addIssue({ code: 'custom', message: `must be a version such as 1.4.2 (letters, digits, . + - _; got ${JSON.stringify(input)})` });
    return z.NEVER;
  }
  return input;
});

const options = {
  version: { flag: 'version', env: 'SEMPRE_DEPLOY_VERSION', placeholder: 'V', description: 'the version to deploy; {version} in --restart and --expect', schema: version() },
  restart: { flag: 'restart', env: 'SEMPRE_DEPLOY_RESTART', placeholder: 'CMD', description: 'shell command that installs the version on one host and restarts its app; {id}, {node}, {address}, {version} are filled in', schema: text(2000) },
  admin: { flag: 'admin', env: 'SEMPRE_ADMIN_URL', placeholder: 'URL', default: 'http://127.0.0.1:8081', description: "the balancer's admin address (status and maintenance)", schema: httpBaseUrl() },
  adminToken: { flag: 'admin-token', env: 'SEMPRE_ADMIN_TOKEN', placeholder: 'TOKEN', description: "the balancer's control token (SEMPRE_ADMIN_TOKEN in /etc/sempre/balancer-secrets.env)", secret: true, schema: text(256) },
  service: { flag: 'service', env: 'SEMPRE_DEPLOY_SERVICE', placeholder: 'NAME', default: '', description: 'the service to deploy when the balancer routes several (--routing routes); empty: its only one', schema: text(128) },
  instances: { flag: 'instances', env: 'SEMPRE_DEPLOY_INSTANCES', placeholder: 'A,B', default: '', description: 'instances to update, in this order (empty: every instance, by ID)', schema: list(/^[\w.:-]{1,128}$/, 'instance IDs') },
  expect: { flag: 'expect', env: 'SEMPRE_DEPLOY_EXPECT', placeholder: 'TEXT', default: '', description: "healthy also means the agent's check output (the health body) contains this, e.g. {version} (empty: passing is enough)", schema: text(256) },
  minServing: { flag: 'min-serving', env: 'SEMPRE_DEPLOY_MIN_SERVING', placeholder: 'N', default: '1', description: 'never take an instance out unless this many others are serving', schema: integer(0, 100) },
  drainTimeout: { flag: 'drain-timeout', env: 'SEMPRE_DEPLOY_DRAIN_TIMEOUT', placeholder: 'DURATION', default: '30s', description: 'wait this long for in-flight requests to finish before restarting anyway', schema: duration(0, 3_600_000) },
  restartTimeout: { flag: 'restart-timeout', env: 'SEMPRE_DEPLOY_RESTART_TIMEOUT', placeholder: 'DURATION', default: '5m', description: 'the --restart command must finish within this', schema: duration(1000, 3_600_000) },
  healthTimeout: { flag: 'health-timeout', env: 'SEMPRE_DEPLOY_HEALTH_TIMEOUT', placeholder: 'DURATION', default: '60s', description: 'the new version must pass its check within this, or the deploy stops', schema: duration(1000, 3_600_000) },
  json: { flag: 'json', env: 'SEMPRE_DEPLOY_JSON', default: 'false', switch: true, description: 'print the result as JSON (progress still goes to stderr)', schema: boolean() },
};

export type DeployOptionsSpec = typeof options;
export type DeployOptions = OptionValues<DeployOptionsSpec>;

export const deployCommand: CommandSpec<DeployOptionsSpec> = {
  command: './sempre deploy',
  section: 'deploy',
  summary: 'updates the app one instance at a time with zero failed requests: maintenance through its agent, drain, restart at the new version, wait until healthy, back in rotation, next',
  options,
  examples: [
    "./sempre deploy --version 1.5.0 --restart \"ssh deploy@{address} 'sudo /opt/sempre/deploy/bin/sempre-install-app {version}'\"   # on infra",
    "./sempre deploy --version 1.5.0 --restart '…' --expect '{version}' --instances app2,app1",
    "./sempre deploy --service api --version 3.1.0 --restart \"ssh deploy@{address} 'sudo systemctl restart sempre-api'\"   # one of several routed services",
    "sudo ./sempre deploy --version 2.0.0 --admin http://10.213.47.1:8081 --admin-token \"$(jq -r .adminToken .run/lab/state.json)\" --restart './sempre lab restart-app {id} --version {version}'   # the lab",
  ],
  notes: [
    'If the new version does not pass its check within --health-timeout, the deploy stops there: that instance',
    'stays in maintenance (never served) and every other instance keeps serving the version it had. Exit 1.',
    'Interrupted (Ctrl-C) before a restart, the instance is put back in rotation; after, it stays in maintenance.',
  ],
};
