// The dashboard: a snapshot pushed by the balancer every second over
// server-sent events, rendered without a framework. It says so when its own
// connection or Consul is lost instead of showing stale numbers as live.
// In front of several services (--routing routes) it shows one at a time,
// chosen with a selector kept in the URL (#service=api), and the route
// conflicts between services.
import type { DashboardInstance, DashboardSnapshot } from '../../balancer/observe/dashboard-model.ts';
import type { DashboardEvent } from '../../balancer/observe/events.ts';
import type { LogOutputStats } from '../../shared/log-output.ts';
import { Charts } from './charts.ts';
import { clock, duration, escapeHtml } from './format.ts';
import { initialLang, t, type Lang, type LabelKey } from './i18n.ts';
import './style.css';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let lang: Lang = initialLang();

/** What the balancer adds to a service's snapshot: the services it routes to, routing by host and path the conflicts, and its log output. */
interface RouteConflict { route: string; winner: string; losers: string[] }
type Snapshot = DashboardSnapshot & { services?: string[]; conflicts?: RouteConflict[]; logOutput?: LogOutputStats };

let last: Snapshot | undefined;
let source: EventSource | undefined;
/** The service the open stream asked for ('' for the balancer's first). */
let streaming = '';
let lastMessageAt = 0;
let linkUp = false;
const charts = new Charts({ requests: $('chart-requests'), latency: $('chart-latency'), share: $('chart-share') });
const tokenInput = $<HTMLInputElement>('token');
tokenInput.value = sessionStorage.getItem('sempre.token') ?? '';
tokenInput.addEventListener('input', () => sessionStorage.setItem('sempre.token', tokenInput.value));

function applyStaticLabels(): void {
  document.documentElement.lang = lang === 'pt' ? 'pt-BR' : 'en';
  for (const el of document.querySelectorAll<HTMLElement>('[data-i18n]')) el.textContent = t(lang, el.dataset.i18n as LabelKey);
  $('lang').textContent = lang === 'pt' ? 'EN' : 'PT';
}

function stateLabel(state: DashboardInstance['state']): string {
  return t(lang, `state_${state.replace('-', '_')}` as LabelKey);
}

function sharePercent(snapshot: DashboardSnapshot, id: string): string {
  const window = snapshot.series.slice(-60);
  const total = window.reduce((sum, p) => sum + p.requests, 0);
  const mine = window.reduce((sum, p) => sum + (p.byInstance[id] ?? 0), 0);
  return total === 0 ? '–' : `${Math.round((mine / total) * 100)}%`;
}

/** The agent's last heal of the instance: outcome, diagnosis, time out, and the evidence one click away. */
function renderHeal(i: DashboardInstance): string {
  const heal = i.heal;
  if (!heal) return '';
  const out = heal.outForMs !== null ? ` · ${t(lang, 'healOut', { d: duration(heal.outForMs) })}` : '';
  return `<dt>${t(lang, 'lastHeal')}</dt><dd class="heal" data-heal-outcome="${escapeHtml(heal.outcome)}"><b>${escapeHtml(t(lang, `heal_${heal.outcome.replace(/-/g, '_')}` as LabelKey))}</b> ${clock(Date.parse(heal.at))}${out}<br>${escapeHtml(heal.diagnosis)}
    <details data-heal="${escapeHtml(i.id)}"><summary>${t(lang, 'evidence', { host: heal.host })}</summary><pre>${escapeHtml(JSON.stringify(heal.evidence ?? { file: heal.evidenceFile }, null, 2))}</pre></details></dd>`;
}

function renderInstances(snapshot: DashboardSnapshot): void {
  // Re-rendered every second: keep the evidence a person opened open.
  const open = new Set([...document.querySelectorAll<HTMLDetailsElement>('details[data-heal][open]')].map((d) => d.dataset.heal));
  $('instances').innerHTML = snapshot.instances.map((i) => {
    const inMaintenance = i.state === 'maintenance';
    return `<article class="instance state-${i.state}" data-instance="${escapeHtml(i.id)}" data-state="${i.state}">
      <header><strong>${escapeHtml(i.id)}</strong> <span class="badge state">${escapeHtml(stateLabel(i.state))}</span>
        <span class="muted">${escapeHtml(t(lang, 'since', { d: duration(snapshot.now - i.since) }))}</span></header>
      <dl>
        <dt>${t(lang, 'version')}</dt><dd>${escapeHtml(i.version ?? '–')}${i.tags.length ? ` · ${escapeHtml(i.tags.join(', '))}` : ''}</dd>
        <dt>${escapeHtml(i.node)}</dt><dd>${escapeHtml(`${i.address}:${i.port}`)}</dd>
        <dt>${t(lang, 'inFlight')}</dt><dd>${i.inFlight}</dd>
        <dt>${t(lang, 'tunnels')}</dt><dd>${i.tunnels}</dd>
        <dt>${t(lang, 'share')}</dt><dd>${sharePercent(snapshot, i.id)}</dd>
        <dt>${t(lang, 'check')}</dt><dd class="output">${escapeHtml(i.maintenanceReason ?? i.checkOutput ?? '')}</dd>
        ${renderHeal(i)}
      </dl>
      <button type="button" data-action="maintenance" data-id="${escapeHtml(i.id)}" data-enable="${!inMaintenance}">${t(lang, inMaintenance ? 'maintenanceOff' : 'maintenanceOn')}</button>
    </article>`;
  }).join('');
  for (const details of document.querySelectorAll<HTMLDetailsElement>('details[data-heal]')) if (open.has(details.dataset.heal)) details.open = true;
}

function renderIncidents(snapshot: DashboardSnapshot): void {
  const withIncidents = snapshot.instances.filter((i) => i.incidents.count > 0);
  $('incidents').innerHTML = withIncidents.length === 0 ? `<p class="muted">${t(lang, 'noIncidents')}</p>` : withIncidents.map((i) => `
    <div class="incident" data-incidents="${escapeHtml(i.id)}" data-count="${i.incidents.count}">
      <strong>${escapeHtml(i.id)}</strong>: ${t(lang, 'incidentLine', { n: i.incidents.count, d: duration(i.incidents.totalDownMs) })}
      ${i.incidents.downSince ? `<span class="badge state-critical">${t(lang, 'downNow', { d: duration(snapshot.now - i.incidents.downSince) })}</span>` : ''}
      <ul>${i.incidents.lastCauses.slice().reverse().map((c) => `<li><time>${clock(c.at)}</time> <b>${escapeHtml(c.cause)}</b> ${escapeHtml(c.detail)}</li>`).join('')}</ul>
    </div>`).join('');
}

/** A discreet mark on events read back from Consul (history-store.ts): before the restart, or the pair's other balancer's. */
function historyMark(e: DashboardEvent): string {
  if (!e.history) return '';
  const by = (e.by ?? '').split(' ')[0] ?? '';
  const [label, help] = e.history === 'before-restart' ? [t(lang, 'beforeRestart'), t(lang, 'historyHelp')] : [t(lang, 'fromBalancer', { by }), t(lang, 'otherHelp', { by })];
  return ` <span class="history" title="${escapeHtml(help)}">${escapeHtml(label)}</span>`;
}

function renderEvents(events: DashboardEvent[]): void {
  $('events').innerHTML = events.slice().reverse().slice(0, 100).map((e) => `
    <li data-kind="${e.kind}" data-instance="${escapeHtml(e.instance ?? '')}" data-cause="${escapeHtml(e.cause ?? '')}"${e.history ? ` data-history="${e.history}"` : ''}>
      <time>${clock(e.at)}</time>${historyMark(e)} ${e.instance ? `<strong>${escapeHtml(e.instance)}</strong> ` : ''}${escapeHtml(t(lang, `ev_${e.kind.replace(/-/g, '_')}` as LabelKey))}${e.cause ? ` <b>${escapeHtml(e.cause)}</b>` : ''}
      ${e.detail ? `<span class="muted output">${escapeHtml(e.detail)}</span>` : ''}</li>`).join('');
}

/** The service asked for in the URL (#service=api, or ?service=api), if any. */
function wantedService(): string {
  return new URLSearchParams(location.hash.slice(1)).get('service') ?? new URLSearchParams(location.search).get('service') ?? '';
}

function renderServices(snapshot: Snapshot): void {
  const services = [...(snapshot.services ?? [])].sort();
  const picker = $('service-picker');
  const select = $<HTMLSelectElement>('service-select');
  // One service (the usual --service web): no choice to offer.
  picker.hidden = services.length < 2;
  $('service-title').hidden = !picker.hidden || !snapshot.service;
  const options = services.includes(snapshot.service) || !snapshot.service ? services : [snapshot.service, ...services];
  if ([...select.options].map((o) => o.value).join('\u0000') !== options.join('\u0000')) {
    select.innerHTML = options.map((name) => `<option value="${escapeHtml(name)}">${escapeHtml(name)}</option>`).join('');
  }
  if (document.activeElement !== select) select.value = snapshot.service;
  // Asked for a service this balancer does not route to (now): say what is shown instead.
  const wanted = wantedService();
  const note = $('service-note');
  const text = services.length === 0 ? t(lang, 'noServices') : wanted && wanted !== snapshot.service ? t(lang, 'serviceMissing', { wanted, shown: snapshot.service }) : '';
  note.hidden = text === '';
  note.textContent = text;
}

function renderConflicts(conflicts: RouteConflict[]): void {
  $('conflicts').hidden = conflicts.length === 0;
  // In the header too: the list itself is below the instances.
  const badge = $('conflict-badge');
  badge.hidden = conflicts.length === 0;
  badge.textContent = t(lang, 'conflictBadge', { n: conflicts.length });
  $('conflict-list').innerHTML = conflicts.map((c) => `<li data-route="${escapeHtml(c.route)}" data-winner="${escapeHtml(c.winner)}">
    <code>${escapeHtml(c.route)}</code> ${t(lang, 'conflictLine', { winner: `<strong>${escapeHtml(c.winner)}</strong>`, losers: c.losers.map((l) => `<strong>${escapeHtml(l)}</strong>`).join(', ') })}</li>`).join('');
}

/** Shown only while log lines are being dropped (stdout not read). */
function renderLogBadge(snapshot: Snapshot): void {
  const badge = $('log-badge');
  const blocked = snapshot.logOutput?.blocked;
  badge.hidden = !blocked;
  if (!blocked) return;
  badge.textContent = t(lang, 'logBlocked', { d: duration(snapshot.now - blocked.since), n: blocked.droppedLines.toLocaleString() });
  badge.title = t(lang, 'logBlockedHelp', { total: snapshot.logOutput!.droppedLines.toLocaleString() });
}

function renderBadges(): void {
  const page = $('page-badge');
  const consul = $('consul-badge');
  const link = $('link-badge');
  const stale = !linkUp || Date.now() - lastMessageAt > 3000;
  link.textContent = stale ? t(lang, 'lost') : t(lang, 'live');
  link.className = `badge ${stale ? 'bad' : 'good'}`;
  document.body.classList.toggle('stale', stale);
  if (!last) return;
  renderLogBadge(last);
  $('service').textContent = last.service;
  // Routing by host and path before any service declares a route, there is no service to describe.
  if (!last.consul) {
    page.textContent = t(lang, 'pageDown');
    page.className = 'badge bad';
    consul.textContent = '';
    consul.className = 'badge';
    consul.hidden = true;
    return;
  }
  consul.hidden = false;
  page.textContent = last.serving > 0 ? t(lang, 'pageUp', { n: last.serving, m: last.instances.length }) : t(lang, 'pageDown');
  page.className = `badge ${last.serving > 0 ? 'good' : 'bad'}`;
  consul.textContent = last.consul.reachable ? t(lang, 'consulOk') : t(lang, 'consulDown', { d: duration(last.now - (last.consul.since ?? last.now)) });
  consul.className = `badge ${last.consul.reachable ? 'good' : 'bad'}`;
  consul.title = last.consul.lastError ?? '';
}

/** While the balancer serves against Consul's list: who, since when, and why (the evidence). */
function renderFailOpen(snapshot: Snapshot): void {
  const banner = $('fail-open-banner');
  const failOpen = snapshot.failOpen;
  banner.hidden = !failOpen;
  if (!failOpen) return;
  const ids = failOpen.served.map((s) => s.id).join(', ');
  const why = [...new Set(failOpen.served.map((s) => reasonLabel(s.reason)))].join('; ');
  const values = { service: snapshot.service, n: failOpen.served.length, ids, d: duration(snapshot.now - failOpen.since), why, passing: snapshot.instances.filter((i) => i.state === 'healthy' || i.state === 'slow-start' || i.state === 'held').length };
  const listed = t(lang, values.passing === 0 ? 'failOpenNone' : 'failOpenFew', values);
  banner.textContent = t(lang, failOpen.text.includes('--fail-open-unhealthy') ? 'failOpenUnhealthy' : 'failOpenBanner', { ...values, listed });
  banner.title = failOpen.text;
}

/** The first clause of a fail-open reason, in the page's language where it is one we know. */
function reasonLabel(reason: string): string {
  const first = reason.split(';')[0]!;
  if (lang !== 'pt') return first;
  if (first.startsWith('its agent is silent')) return 'o agente dela está calado: o TTL expirou (agente congelado ou parado, ou o Consul recusa as atualizações dele)';
  if (first.startsWith("its node's Consul agent")) return 'o agente Consul do nó dela está inacessível (serfHealth)';
  return first;
}

function render(): void {
  applyStaticLabels();
  renderBadges();
  if (!last) return;
  renderFailOpen(last);
  renderServices(last);
  renderConflicts(last.conflicts ?? []);
  renderInstances(last);
  renderIncidents(last);
  renderEvents(last.events);
  charts.update(last.series, last.instances.map((i) => i.id), { requests: t(lang, 'series_requests'), errors: t(lang, 'series_errors') });
}

/** One stream for the chosen service; choosing another closes it and opens the next. */
function connect(): void {
  source?.close();
  const wanted = wantedService();
  streaming = wanted;
  const stream = new EventSource(`/_sempre/stream${wanted ? `?service=${encodeURIComponent(wanted)}` : ''}`);
  source = stream;
  stream.onopen = () => { linkUp = true; renderBadges(); };
  stream.onmessage = (message) => {
    if (stream !== source) return;
    last = JSON.parse(message.data as string) as Snapshot;
    lastMessageAt = Date.now();
    linkUp = true;
    render();
  };
  stream.onerror = () => { if (stream === source) { linkUp = false; renderBadges(); } };
}

/** Shows another service: the URL keeps the choice (a reload or a shared link shows the same one). */
function chooseService(name: string): void {
  if (name === streaming) return;
  history.replaceState(null, '', `${location.pathname}${location.search}#service=${encodeURIComponent(name)}`);
  switchStream();
}

function switchStream(): void {
  // Nothing of the previous service stays on screen as if it were this one's.
  last = undefined;
  for (const id of ['instances', 'incidents', 'events', 'conflict-list']) $(id).innerHTML = '';
  $('control-message').textContent = '';
  connect();
}

$<HTMLSelectElement>('service-select').addEventListener('change', (event) => chooseService((event.target as HTMLSelectElement).value));
// Back, forward or an edited URL: follow it when it names another service.
window.addEventListener('hashchange', () => { if (wantedService() !== streaming) switchStream(); });
$('conflict-badge').addEventListener('click', () => $('conflicts').scrollIntoView({ behavior: 'smooth' }));

$('lang').addEventListener('click', () => {
  lang = lang === 'pt' ? 'en' : 'pt';
  localStorage.setItem('sempre.lang', lang);
  render();
});

$('instances').addEventListener('click', (event) => {
  const button = (event.target as HTMLElement).closest<HTMLButtonElement>('button[data-action="maintenance"]');
  if (!button) return;
  const message = $('control-message');
  const token = tokenInput.value.trim();
  if (!token) {
    message.textContent = t(lang, 'needToken');
    message.className = 'bad-text';
    return;
  }
  const id = button.dataset.id ?? '';
  const enable = button.dataset.enable === 'true';
  const service = last?.service ? `?service=${encodeURIComponent(last.service)}` : '';
  fetch(`/_sempre/instances/${encodeURIComponent(id)}/maintenance${service}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ enable, reason: 'from the dashboard' }),
  }).then(async (response) => {
    if (response.status === 401) throw new Error(t(lang, 'tokenRefused'));
    const body = (await response.json()) as { error?: string };
    if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
    message.textContent = t(lang, 'done', { id, what: t(lang, enable ? 'maintenanceOn' : 'maintenanceOff') });
    message.className = 'good-text';
  }).catch((error: unknown) => {
    message.textContent = error instanceof Error && error.message === t(lang, 'tokenRefused') ? error.message : t(lang, 'failed', { error: String(error) });
    message.className = 'bad-text';
  });
});

applyStaticLabels();
setInterval(renderBadges, 1000);
connect();
