// The dashboard: a snapshot pushed by the balancer every second over
// server-sent events, rendered without a framework. It says so when its own
// connection or Consul is lost instead of showing stale numbers as live.
import type { DashboardInstance, DashboardSnapshot } from '../../balancer/observe/dashboard-model.ts';
import type { DashboardEvent } from '../../balancer/observe/events.ts';
import { Charts } from './charts.ts';
import { clock, duration, escapeHtml } from './format.ts';
import { initialLang, t, type Lang, type LabelKey } from './i18n.ts';
import './style.css';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let lang: Lang = initialLang();
let last: DashboardSnapshot | undefined;
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

function renderInstances(snapshot: DashboardSnapshot): void {
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
      </dl>
      <button type="button" data-action="maintenance" data-id="${escapeHtml(i.id)}" data-enable="${!inMaintenance}">${t(lang, inMaintenance ? 'maintenanceOff' : 'maintenanceOn')}</button>
    </article>`;
  }).join('');
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

function renderEvents(events: DashboardEvent[]): void {
  $('events').innerHTML = events.slice().reverse().slice(0, 100).map((e) => `
    <li data-kind="${e.kind}" data-instance="${escapeHtml(e.instance ?? '')}" data-cause="${escapeHtml(e.cause ?? '')}">
      <time>${clock(e.at)}</time> ${e.instance ? `<strong>${escapeHtml(e.instance)}</strong> ` : ''}${escapeHtml(t(lang, `ev_${e.kind.replace(/-/g, '_')}` as LabelKey))}${e.cause ? ` <b>${escapeHtml(e.cause)}</b>` : ''}
      ${e.detail ? `<span class="muted output">${escapeHtml(e.detail)}</span>` : ''}</li>`).join('');
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
  $('service').textContent = last.service;
  page.textContent = last.serving > 0 ? t(lang, 'pageUp', { n: last.serving, m: last.instances.length }) : t(lang, 'pageDown');
  page.className = `badge ${last.serving > 0 ? 'good' : 'bad'}`;
  consul.textContent = last.consul.reachable ? t(lang, 'consulOk') : t(lang, 'consulDown', { d: duration(last.now - (last.consul.since ?? last.now)) });
  consul.className = `badge ${last.consul.reachable ? 'good' : 'bad'}`;
  consul.title = last.consul.lastError ?? '';
}

function render(): void {
  applyStaticLabels();
  renderBadges();
  if (!last) return;
  renderInstances(last);
  renderIncidents(last);
  renderEvents(last.events);
  charts.update(last.series, last.instances.map((i) => i.id), { requests: t(lang, 'series_requests'), errors: t(lang, 'series_errors') });
}

function connect(): void {
  const source = new EventSource('/_sempre/stream');
  source.onopen = () => { linkUp = true; renderBadges(); };
  source.onmessage = (message) => {
    last = JSON.parse(message.data as string) as DashboardSnapshot;
    lastMessageAt = Date.now();
    linkUp = true;
    render();
  };
  source.onerror = () => { linkUp = false; renderBadges(); };
}

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
  fetch(`/_sempre/instances/${encodeURIComponent(id)}/maintenance`, {
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
