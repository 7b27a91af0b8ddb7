// Time-series charts over the live feed's history, drawn by uPlot (served from
// /console/vendor, installed from npm). Colors come from the CSS theme.

import uPlot from '/console/vendor/uPlot.esm.js';

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const SERIES_VARS = ['--series-1', '--series-2', '--series-3', '--series-4', '--series-5', '--series-6'];

/// A live line chart.
///   series: [{ label, value: (snapshot) => number|null }]
///   unit: y-axis unit shown in the legend values, format: value → string
/// Call update(history) with the feed's history (oldest first).
export class LiveChart {
  constructor(container, { series, format = (v) => String(v), height = 220, yMin = 0 }) {
    this.container = container;
    this.series = series;
    this.format = format;
    const grid = cssVar('--grid');
    const text = cssVar('--text-dim');
    const axis = {
      stroke: text,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      font: '11px system-ui, sans-serif',
    };
    const opts = {
      width: Math.max(200, container.clientWidth || 400),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(yMin, min ?? 0), max > 0 ? max * 1.15 : 1] } },
      axes: [
        { ...axis },
        { ...axis, size: 56, values: (u, ticks) => ticks.map((t) => format(t)) },
      ],
      series: [
        { value: (u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s, i) => {
          const color = cssVar(SERIES_VARS[i % SERIES_VARS.length]);
          return {
            label: s.label,
            stroke: color,
            width: 2,
            fill: i === 0 && series.length <= 2 ? `${color}22` : undefined,
            points: { show: false },
            spanGaps: false,
            value: (u, v) => (v == null ? '—' : format(v)),
          };
        }),
      ],
    };
    this.plot = new uPlot(opts, this.data([]), container);
    this.resize = () => {
      const w = container.clientWidth;
      if (w > 0 && Math.abs(w - this.plot.width) > 2) this.plot.setSize({ width: w, height });
    };
    this.observer = new ResizeObserver(this.resize);
    this.observer.observe(container);
  }

  data(history) {
    const xs = history.map((s) => s.t / 1000);
    return [xs, ...this.series.map((s) => history.map((snap) => {
      const v = s.value(snap);
      return v === undefined ? null : v;
    }))];
  }

  update(history) {
    this.plot.setData(this.data(history));
    // Without a cursor over the chart, the legend shows the newest values.
    if (history.length && (this.plot.cursor.left == null || this.plot.cursor.left < 0)) {
      this.plot.setLegend({ idx: history.length - 1 });
    }
  }

  destroy() {
    this.observer.disconnect();
    this.plot.destroy();
  }
}
