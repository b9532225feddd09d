// One self-contained HTML file per drill (or --all run): uPlot and its CSS
// are inlined, so the report opens with no network. Charts: requests per
// second by outcome, latency percentiles per second, traffic per instance;
// the fault window is shaded and state changes are marked.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lab/consul-binary.ts';
import type { DrillResult } from './drill.ts';
import { describeKinds, FAILURE_KINDS } from './records.ts';

const esc = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const ms = (v: number | null) => (v === null ? '–' : `${Math.round(v)} ms`);

/** For a fault that lasts until healed: what the target's agent reported. */
function healParagraph(result: DrillResult): string {
  if (result.heal === undefined) return '';
  if (result.heal === null) return `<p class="bad">No heal of ${esc(result.fault.target)} was reported by its agent.</p>`;
  const h = result.heal;
  return `<p class="heal">Healed by ${esc(h.instance)}'s agent: <b>${esc(h.outcome)}</b>, diagnosis <b>${esc(h.diagnosis)}</b>${h.outForMs === null ? '' : `, out ${(h.outForMs / 1000).toFixed(1)} s`}; evidence on ${esc(h.host)}: ${esc(h.evidenceFile ?? 'none')}</p>`;
}

function section(result: DrillResult, index: number): string {
  const m = result.metrics;
  const instances = [...new Set(m.perSecond.flatMap((s) => Object.keys(s.byInstance)))].sort();
  const data = {
    x: m.perSecond.map((s) => s.second),
    ok: m.perSecond.map((s) => s.ok),
    // One series per kind of failure that occurred: a 404 storm and a reset storm are different bugs.
    failed: FAILURE_KINDS.filter((k) => m.failedByKind[k]).map((kind) => ({ kind, values: m.perSecond.map((s) => s.failedByKind[kind] ?? 0) })),
    p50: m.perSecond.map((s) => s.p50),
    p99: m.perSecond.map((s) => s.p99),
    max: m.perSecond.map((s) => s.max),
    instances: instances.map((id) => ({ id, values: m.perSecond.map((s) => s.byInstance[id] ?? 0) })),
    fault: [result.fault.startMs / 1000, result.fault.endMs / 1000],
    marks: result.timeline.filter((e) => e.source === 'balancer').map((e) => ({ t: e.t / 1000, label: `${e.instance}: ${e.to}` })),
  };
  return `<section>
<h2>${esc(result.fault.name)} on ${esc(result.fault.target)} <span class="${m.failed === 0 ? 'good' : 'bad'}">${m.failed} failed of ${m.total}</span></h2>
<table><tr><th>availability</th><th>time to full redundancy</th><th>failed by kind</th><th>failed by class</th><th>error window</th><th>time to detect</th><th>time to recover</th><th>p50 / p90 / p99 / p99.9 / max</th><th>fault window p99 / max</th></tr>
<tr><td>${(m.availability * 100).toFixed(3)}%</td><td>${ms(m.fullRedundancyMs)}</td><td>${esc(describeKinds(m.failedByKind) || 'none')}</td><td>${esc(Object.entries(m.failedByClass).map(([k, v]) => `${k} ${v}`).join(', ') || 'none')}</td>
<td>${m.errorWindow ? `${(m.errorWindow[0] / 1000).toFixed(2)}–${(m.errorWindow[1] / 1000).toFixed(2)} s` : 'none'}</td><td>${ms(m.detectMs)}</td><td>${ms(m.recoverMs)}</td>
<td>${m.latency.p50} / ${m.latency.p90} / ${m.latency.p99} / ${m.latency.p999} / ${m.latency.max} ms</td><td>${m.faultLatency.p99} / ${m.faultLatency.max} ms</td></tr></table>
${healParagraph(result)}
<div class="charts"><div id="c${index}a"></div><div id="c${index}b"></div><div id="c${index}c"></div></div>
<details><summary>Timeline (${result.timeline.length} state changes)</summary><ol>${result.timeline.map((e) => `<li>${(e.t / 1000).toFixed(2)} s — ${esc(e.source)}: ${esc(e.instance)} ${esc(e.from)} → ${esc(e.to)}</li>`).join('')}</ol></details>
<script>drawDrill(${index}, ${JSON.stringify(data)});</script>
</section>`;
}

export function renderReport(results: DrillResult[], title: string): string {
  const uplotJs = readFileSync(join(PROJECT_ROOT, 'node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(join(PROJECT_ROOT, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8');
  const o = results[0]?.options;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${uplotCss}
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111827}section{margin-bottom:2rem}table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #d1d5db;padding:.3rem .5rem;text-align:left}.good{color:#166534}.bad{color:#b91c1c}.charts{display:flex;flex-wrap:wrap;gap:1rem;margin-top:1rem}
h2 span{font-size:.9rem;font-weight:normal;margin-left:.5rem}</style>
<script>${uplotJs}</script>
<script>
function drawDrill(i, d) {
  const band = (u) => { const c = u.ctx, x0 = u.valToPos(d.fault[0], 'x', true), x1 = u.valToPos(d.fault[1], 'x', true);
    c.save(); c.fillStyle = 'rgba(220,38,38,0.10)'; c.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
    c.strokeStyle = 'rgba(37,99,235,0.6)'; c.fillStyle = '#1e3a8a'; c.font = '10px sans-serif';
    d.marks.forEach((m, k) => { const x = u.valToPos(m.t, 'x', true); c.beginPath(); c.moveTo(x, u.bbox.top); c.lineTo(x, u.bbox.top + u.bbox.height); c.stroke(); c.fillText(m.label, x + 2, u.bbox.top + 10 + (k % 6) * 11); });
    c.restore(); };
  const opts = (title, series) => ({ title, width: 460, height: 240, scales: { x: { time: false } }, axes: [{ label: 's' }, {}], series: [{}, ...series], hooks: { draw: [band] } });
  const failColors = { '4xx': '#9333ea', '5xx': '#dc2626', network: '#d97706', '3xx': '#0891b2', '2xx': '#64748b' };
  new uPlot(opts('Requests per second by outcome', [{ label: 'ok', stroke: '#16a34a' }, ...d.failed.map((f) => ({ label: f.kind, stroke: failColors[f.kind] }))]), [d.x, d.ok, ...d.failed.map((f) => f.values)], document.getElementById('c' + i + 'a'));
  new uPlot(opts('Latency (ms)', [{ label: 'p50', stroke: '#16a34a' }, { label: 'p99', stroke: '#d97706' }, { label: 'max', stroke: '#dc2626' }]), [d.x, d.p50, d.p99, d.max], document.getElementById('c' + i + 'b'));
  const colors = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2'];
  new uPlot(opts('Requests per second by instance', d.instances.map((s, k) => ({ label: s.id, stroke: colors[k % colors.length] }))), [d.x, ...d.instances.map((s) => s.values)], document.getElementById('c' + i + 'c'));
}
</script></head><body>
<h1>${esc(title)}</h1>
<p>${o ? `${o.rate} ${esc(o.method)} requests per second to ${esc(o.path)} for ${o.durationMs / 1000} s; fault at ${o.atMs / 1000} s for ${o.forMs / 1000} s. ` : ''}Generated ${new Date().toISOString()}. The shaded band is the fault window; blue lines are the balancer's state changes.</p>
${results.map(section).join('\n')}
</body></html>
`;
}
