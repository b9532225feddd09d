// Labels in English and Brazilian Portuguese (the company's language).
export type Lang = 'en' | 'pt';

const en = {
  title: 'sempre',
  instances: 'Instances',
  token: 'Control token',
  requestsChart: 'Requests per second',
  latencyChart: 'Latency (ms)',
  shareChart: 'Requests per second by instance',
  incidents: 'Incidents',
  events: 'Events',
  pageUp: 'Page up: {n} of {m} serving',
  pageDown: 'Page DOWN: no instance serving',
  consulOk: 'Consul reachable',
  consulDown: 'Consul unreachable for {d}: serving the last known instances',
  live: 'Live',
  lost: 'Connection to the balancer lost: reconnecting…',
  state_healthy: 'healthy', state_slow_start: 'slow start', state_ejected: 'ejected by balancer', state_held: 'held (Consul returning)',
  state_critical: 'critical', state_draining: 'draining', state_maintenance: 'maintenance', state_fail_open: 'served: only its health signal failed',
  failOpenBanner: '{listed}; serving the {n} that answer their health probe ({ids}) for {d}: {why}',
  failOpenNone: 'Consul lists no passing instance of {service}', failOpenFew: 'Consul lists only {passing} passing instance(s) of {service}',
  failOpenUnhealthy: 'Consul lists no passing instance of {service}; serving all {n} ({ids}) for {d} although their health endpoints fail (--fail-open-unhealthy)',
  since: 'for {d}', inFlight: 'in flight', tunnels: 'WebSockets open', share: 'share (1 min)', version: 'version', check: 'last check',
  maintenanceOn: 'Put in maintenance', maintenanceOff: 'Back in service',
  needToken: 'Enter the control token (the balancer prints it at start) to use the controls.',
  tokenRefused: 'The balancer refused the token: controls are read-only without it.',
  done: '{id}: {what} requested; Consul will confirm within a few seconds.',
  failed: 'Request failed: {error}',
  noIncidents: 'No incidents.',
  incidentLine: 'down {n} time(s), {d} in total',
  downNow: 'down now for {d}',
  beforeRestart: 'before restart', fromBalancer: 'from {by}',
  historyHelp: 'Kept in Consul: seen before this balancer last started', otherHelp: 'Kept in Consul: seen by the other balancer {by}',
  series_requests: 'requests/s', series_errors: 'errors/s',
  ev_joined: 'joined rotation', ev_left: 'left rotation', ev_ejected: 'ejected by the balancer', ev_readmitted: 'readmitted',
  ev_check_critical: 'health check failed', ev_check_passing: 'health check passing', ev_maintenance_on: 'maintenance on', ev_maintenance_off: 'maintenance off',
  ev_registered: 'registered', ev_deregistered: 'deregistered', ev_consul_unreachable: 'Consul unreachable', ev_consul_reachable: 'Consul reachable again',
  ev_fail_open_on: 'serving against Consul\'s list', ev_fail_open_off: 'back to Consul\'s list', ev_heal: 'hung app restarted by its agent',
  lastHeal: 'last heal', healOut: 'out {d}', evidence: 'evidence (on {host})',
  heal_restarting: 'restarting', heal_healed: 'healed', heal_not_back: 'not back after the restart', heal_restart_failed: 'restart failed', heal_needs_person: 'needs a person', heal_not_fixable: 'not restarted',
  serviceLabel: 'Service',
  noServices: 'No service declares a route yet: start an agent with --route (the balancer routes it within a second).',
  serviceMissing: 'No service "{wanted}" is routed by this balancer now: showing {shown}. The page switches to "{wanted}" by itself once it declares a route.',
  conflicts: 'Route conflicts',
  conflictBadge: 'Route conflicts: {n}',
  conflictsHelp: 'Two services declare the same route: the first in alphabetical order serves it; the others get no request on it until one of them changes its --route.',
  conflictLine: 'served by {winner}; also declared by {losers} (no traffic on this route)',
  logBlocked: 'Log output blocked for {d}: {n} lines dropped',
  logBlockedHelp: 'Standard output is not being read (journald, a log shipper or a pipe is stuck): log lines past --log-buffer are dropped, warnings and errors last. Requests are not affected. {total} lines dropped since start.',
};

type Labels = typeof en;

const pt: Labels = {
  title: 'sempre',
  instances: 'Instâncias',
  token: 'Token de controle',
  requestsChart: 'Requisições por segundo',
  latencyChart: 'Latência (ms)',
  shareChart: 'Requisições por segundo por instância',
  incidents: 'Incidentes',
  events: 'Eventos',
  pageUp: 'Página no ar: {n} de {m} atendendo',
  pageDown: 'Página FORA DO AR: nenhuma instância atendendo',
  consulOk: 'Consul acessível',
  consulDown: 'Consul inacessível há {d}: usando as últimas instâncias conhecidas',
  live: 'Ao vivo',
  lost: 'Conexão com o balanceador perdida: reconectando…',
  state_healthy: 'saudável', state_slow_start: 'aquecendo', state_ejected: 'ejetada pelo balanceador', state_held: 'mantida (Consul voltando)',
  state_critical: 'crítica', state_draining: 'drenando', state_maintenance: 'manutenção', state_fail_open: 'atendendo: só o sinal de saúde falhou',
  failOpenBanner: '{listed}; atendendo há {d} as {n} que respondem ao teste de saúde ({ids}): {why}',
  failOpenNone: 'O Consul não lista nenhuma instância de {service} passando', failOpenFew: 'O Consul lista só {passing} instância(s) de {service} passando',
  failOpenUnhealthy: 'O Consul não lista nenhuma instância de {service} passando; atendendo há {d} todas as {n} ({ids}) embora o endpoint de saúde delas falhe (--fail-open-unhealthy)',
  since: 'há {d}', inFlight: 'em andamento', tunnels: 'WebSockets abertos', share: 'parcela (1 min)', version: 'versão', check: 'último check',
  maintenanceOn: 'Colocar em manutenção', maintenanceOff: 'Voltar ao serviço',
  needToken: 'Informe o token de controle (o balanceador o mostra ao iniciar) para usar os controles.',
  tokenRefused: 'O balanceador recusou o token: sem ele os controles ficam só para leitura.',
  done: '{id}: {what} solicitado; o Consul confirma em poucos segundos.',
  failed: 'Falha na solicitação: {error}',
  noIncidents: 'Nenhum incidente.',
  incidentLine: 'fora {n} vez(es), {d} no total',
  downNow: 'fora agora há {d}',
  beforeRestart: 'antes do reinício', fromBalancer: 'de {by}',
  historyHelp: 'Guardado no Consul: visto antes do último início deste balanceador', otherHelp: 'Guardado no Consul: visto pelo outro balanceador {by}',
  series_requests: 'requisições/s', series_errors: 'erros/s',
  ev_joined: 'entrou em rotação', ev_left: 'saiu de rotação', ev_ejected: 'ejetada pelo balanceador', ev_readmitted: 'readmitida',
  ev_check_critical: 'check de saúde falhou', ev_check_passing: 'check de saúde ok', ev_maintenance_on: 'manutenção ligada', ev_maintenance_off: 'manutenção desligada',
  ev_registered: 'registrada', ev_deregistered: 'registro removido', ev_consul_unreachable: 'Consul inacessível', ev_consul_reachable: 'Consul acessível de novo',
  ev_fail_open_on: 'atendendo contra a lista do Consul', ev_fail_open_off: 'de volta à lista do Consul', ev_heal: 'aplicação travada reiniciada pelo agente',
  lastHeal: 'última cura', healOut: 'fora {d}', evidence: 'evidências (em {host})',
  heal_restarting: 'reiniciando', heal_healed: 'curada', heal_not_back: 'não voltou depois do reinício', heal_restart_failed: 'reinício falhou', heal_needs_person: 'precisa de uma pessoa', heal_not_fixable: 'não reiniciada',
  serviceLabel: 'Serviço',
  noServices: 'Nenhum serviço declara rota ainda: inicie um agente com --route (o balanceador passa a roteá-lo em até um segundo).',
  serviceMissing: 'Nenhum serviço "{wanted}" é roteado por este balanceador agora: mostrando {shown}. A página passa para "{wanted}" sozinha quando ele declarar uma rota.',
  conflicts: 'Conflitos de rota',
  conflictBadge: 'Conflitos de rota: {n}',
  conflictsHelp: 'Dois serviços declaram a mesma rota: o primeiro em ordem alfabética a atende; os outros não recebem nenhuma requisição nela até que um deles mude seu --route.',
  conflictLine: 'atendida por {winner}; também declarada por {losers} (sem tráfego nesta rota)',
  logBlocked: 'Saída de log bloqueada há {d}: {n} linhas descartadas',
  logBlockedHelp: 'Ninguém está lendo a saída padrão (journald, um coletor de logs ou um pipe travado): as linhas de log além de --log-buffer são descartadas, avisos e erros por último. As requisições não são afetadas. {total} linhas descartadas desde o início.',
};

const tables: Record<Lang, Labels> = { en, pt };

export type LabelKey = keyof Labels;

export function t(lang: Lang, key: LabelKey, values: Record<string, string | number> = {}): string {
  return tables[lang][key].replace(/\{(\w+)\}/g, (_m, name: string) => String(values[name] ?? ''));
}

export function initialLang(): Lang {
  const saved = localStorage.getItem('sempre.lang');
  if (saved === 'en' || saved === 'pt') return saved;
  return navigator.language.toLowerCase().startsWith('pt') ? 'pt' : 'en';
}
