// Three live charts over the last five minutes, drawn with uPlot.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { SecondPoint } from '../../balancer/observe/traffic-series.ts';

const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2', '#db2777', '#65a30d', '#ea580c'];

function size(el: HTMLElement): { width: number; height: number } {
  return { width: Math.max(240, el.clientWidth), height: 180 };
}

interface Chart {
  plot: uPlot;
  keys: string;
}

export class Charts {
  private requests: Chart | undefined;
  private latency: Chart | undefined;
  private share: Chart | undefined;
  private readonly els: { requests: HTMLElement; latency: HTMLElement; share: HTMLElement };

  constructor(els: { requests: HTMLElement; latency: HTMLElement; share: HTMLElement }) {
    this.els = els;
    window.addEventListener('resize', () => {
      for (const [chart, el] of [[this.requests, els.requests], [this.latency, els.latency], [this.share, els.share]] as const) chart?.plot.setSize(size(el));
    });
  }

  update(series: SecondPoint[], instanceIds: string[], labels: { requests: string; errors: string }): void {
    const x = series.map((p) => p.t);
    this.requests = this.draw(this.requests, this.els.requests, [labels.requests, labels.errors], [x, series.map((p) => p.requests), series.map((p) => p.errors)], ['#2563eb', '#dc2626']);
    this.latency = this.draw(this.latency, this.els.latency, ['p50', 'p90', 'p99'], [x, series.map((p) => p.p50), series.map((p) => p.p90), series.map((p) => p.p99)], ['#16a34a', '#d97706', '#dc2626']);
    this.share = this.draw(this.share, this.els.share, instanceIds, [x, ...instanceIds.map((id) => series.map((p) => p.byInstance[id] ?? 0))], instanceIds.map((_id, i) => PALETTE[i % PALETTE.length]!));
  }

  private draw(chart: Chart | undefined, el: HTMLElement, names: string[], data: number[][], colors: string[]): Chart {
    const keys = names.join('\u0000');
    if (chart && chart.keys === keys) {
      chart.plot.setData(data as uPlot.AlignedData);
      return chart;
    }
    chart?.plot.destroy();
    const plot = new uPlot({
      ...size(el),
      series: [{}, ...names.map((label, i) => ({ label, stroke: colors[i], width: 2, points: { show: false } }))],
      axes: [{ values: (_u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false, minute: '2-digit', second: '2-digit' })) }, {}],
      scales: { x: { time: false } },
      legend: { live: false },
    }, data as uPlot.AlignedData, el);
    return { plot, keys };
  }
}
