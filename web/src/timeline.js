// Charts over time, drawn by uPlot: the outstanding bytes of a report's top stacks (stacked,
// the rest as "other") with the process's RSS, and the agent's layer-1 memory series
// around a trigger.  Drag across a chart to zoom into a time range, double-click to zoom out.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { el } from './dom.js';
import * as fmt from './format.js';

// Shades per verdict, as the flame graph colours them: leaks stand out in red.
const SHADES = {
  leak: ['#dc2626', '#f87171', '#b91c1c', '#fca5a5'],
  cache: ['#2563eb', '#60a5fa', '#1e40af', '#93c5fd'],
  transient: ['#16a34a', '#4ade80', '#166534', '#86efac'],
  unknown: ['#d97706', '#fbbf24', '#92400e', '#fcd34d'],
};

function axes(yLabel) {
  return [
    { values: (u, ticks) => ticks.map((t) => fmt.seconds(t)), label: 'time since attach' },
    { values: (u, ticks) => ticks.map((t) => fmt.bytes(t)), size: 80, label: yLabel },
  ];
}

function chartWidth(box) {
  return Math.max(420, (box.clientWidth || 900) - 8);
}

function mount(box, opts, data) {
  const plot = new uPlot({ ...opts, width: chartWidth(box) }, data, box);
  box.plot = plot;
  return plot;
}

// timeline: {t_s: [...], total_bytes: [...], rss_bytes: [...], stacks: [{stack_id, bytes}]}
// stackOf(stack_id) gives {label, verdict} of a stack.
export function stackTimeline(timeline, stackOf) {
  const box = el('div', { class: 'timeline', id: 'timeline' });
  const t = timeline.t_s || [];
  if (t.length < 2) {
    box.append(el('p', { class: 'empty', text:
      t.length === 1 ? 'one point only: the trace ended at its first report (a timeline has a point per report)'
                     : 'no timeline in this report' }));
    return box;
  }
  const used = {};
  const series = (timeline.stacks || []).map((s) => {
    const { label, verdict } = stackOf(s.stack_id);
    const shades = SHADES[verdict] || SHADES.unknown;
    const colour = shades[(used[verdict] = (used[verdict] || 0) + 1) % shades.length];
    return { label: `${label} (${verdict})`, values: s.bytes, colour };
  });
  const total = timeline.total_bytes || [];
  // "other": what the top stacks do not account for.
  const other = t.map((_, i) => {
    const top = series.reduce((a, s) => a + (s.values[i] || 0), 0);
    return Math.max(0, (total[i] || 0) - top);
  });
  const layers = [...series];
  if (other.some((v) => v > 0)) layers.push({ label: 'other stacks', values: other });
  // Stacked: layer k is drawn at the sum of layers 0..k, largest sum first so that each
  // smaller one is painted over it.
  const sums = [];
  let acc = t.map(() => 0);
  for (const l of layers) {
    acc = acc.map((a, i) => a + (l.values[i] || 0));
    sums.push(acc);
  }
  const data = [t];
  const uSeries = [{ label: 'time', value: (u, v) => (v === null ? '–' : fmt.seconds(v)) }];
  for (let k = layers.length - 1; k >= 0; k--) {
    const colour = k === series.length ? '#a8a29e' : layers[k].colour;
    data.push(sums[k]);
    uSeries.push({
      label: layers[k].label,
      stroke: colour,
      fill: colour + 'cc',
      width: 1,
      points: { show: t.length < 40 },
      value: (u, v, si, i) => (i === null || i === undefined ? '–' : fmt.bytes(layers[k].values[i])),
    });
  }
  const rss = timeline.rss_bytes || [];
  if (rss.some((v) => v !== null && v !== undefined)) {
    data.push(rss.map((v) => (v === undefined ? null : v)));
    uSeries.push({ label: 'process RSS', stroke: '#111827', width: 2, dash: [6, 4],
                   points: { show: t.length < 40 },
                   value: (u, v) => (v === null ? '–' : fmt.bytes(v)) });
  }
  requestAnimationFrame(() => mount(box, {
    height: 300,
    scales: { x: { time: false } },
    axes: axes('outstanding bytes'),
    series: uSeries,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
  }, data));
  box.pointCount = t.length;
  return box;
}

function relative(v) {
  if (Math.abs(v) < 1e-9) return '0 s';
  return (v < 0 ? '−' : '+') + fmt.seconds(Math.abs(v));
}

// The agent's layer-1 figures of the target: anonymous memory (the leak signal) and RSS,
// with the trigger and the investigation's span marked.  Times are unix ms.
export function memoryTimeline(memory, startedMs, finishedMs) {
  const box = el('div', { class: 'timeline', id: 'memory-timeline' });
  const ts = memory.t_unix_ms || [];
  if (ts.length < 2) {
    box.append(el('p', { class: 'empty', text: 'no memory series stored with this investigation' }));
    return box;
  }
  const origin = memory.trigger_unix_ms || ts[0];
  const t = ts.map((v) => (v - origin) / 1000);
  const data = [t, memory.anon_bytes || [], memory.rss_bytes || []];
  const mark = (u, ms, colour, label) => {
    if (!ms) return;
    const x = u.valToPos((ms - origin) / 1000, 'x', true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.font = `${12 * devicePixelRatio}px sans-serif`;
    ctx.fillText(label, x + 4, u.bbox.top + 14 * devicePixelRatio);
    ctx.restore();
  };
  requestAnimationFrame(() => mount(box, {
    height: 240,
    scales: { x: { time: false } },
    axes: [
      { values: (u, ticks) => ticks.map(relative),
        label: 'time from the trigger' },
      { values: (u, ticks) => ticks.map((v) => fmt.bytes(v)), size: 80, label: 'bytes' },
    ],
    series: [
      { label: 'time', value: (u, v) => (v === null ? '–' : `${v.toFixed(1)} s`) },
      { label: 'anonymous + swap', stroke: '#dc2626', fill: '#dc262622', width: 2,
        value: (u, v) => (v === null ? '–' : fmt.bytes(v)) },
      { label: 'RSS', stroke: '#2563eb', width: 1.5,
        value: (u, v) => (v === null ? '–' : fmt.bytes(v)) },
    ],
    hooks: { draw: [(u) => {
      mark(u, memory.trigger_unix_ms, '#b91c1c', 'trigger');
      if (finishedMs) mark(u, finishedMs, '#57534e', 'stored');
    }] },
    cursor: { drag: { x: true, y: false } },
  }, data));
  box.pointCount = t.length;
  return box;
}
