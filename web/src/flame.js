// The icicle (flame graph, root on top) of a report's stacks, drawn by d3-flame-graph:
// a metric switch, search, zoom on click (reset with the button), frames coloured by the
// verdict of the stacks they carry (in a diff: by growth or shrinkage).
import { select } from 'd3-selection';
import flamegraph from 'd3-flame-graph';
import { el } from './dom.js';
import { buildTree, dominantVerdict } from './model.js';
import * as fmt from './format.js';

const HUES = { leak: 4, cache: 212, transient: 140, unknown: 38 };

function nameShade(name) {
  let h = 0;
  for (let i = 0; i < Math.min(name.length, 12); i++) h = (h * 31 + name.charCodeAt(i)) % 997;
  return h / 997;
}

function verdictColour(node) {
  const v = dominantVerdict(node.data.verdicts);
  const shade = nameShade(node.data.name || '');
  const sat = v === 'unknown' ? 55 : 68;
  return `hsl(${HUES[v] ?? 38}, ${sat}%, ${58 + 14 * shade}%)`;
}

function diffColour(node) {
  const d = node.data.delta || 0;
  const total = node.value || 1;
  const strength = Math.min(1, Math.abs(d) / total);
  const light = 92 - 40 * strength;
  return d >= 0 ? `hsl(4, 75%, ${light}%)` : `hsl(212, 70%, ${light}%)`;
}

// metrics: [{id, label, weight(stack), delta?(stack), unit: fmt function}]
export function flameView(report, metrics, opts = {}) {
  const root = el('div', { class: 'flame' });
  const chartBox = el('div', { class: 'flame-chart', id: `${opts.id || 'flame'}-chart` });
  const details = el('div', { class: 'flame-details', text: ' ' });
  const select_ = el('select', { 'aria-label': 'figure shown', class: 'flame-metric' });
  for (const m of metrics) select_.append(el('option', { value: m.id, text: m.label }));
  const search = el('input', { type: 'search', placeholder: 'search functions', class: 'flame-search',
                               'aria-label': 'search functions' });
  const reset = el('button', { type: 'button', class: 'flame-reset', text: 'reset zoom' });
  const legend = opts.verdicts === false ? el('span', { class: 'legend', text: 'colour: by function name' })
    : opts.diff
    ? el('span', { class: 'legend' }, el('i', { class: 'sw grow' }), 'grew ',
         el('i', { class: 'sw shrink' }), 'shrank')
    : el('span', { class: 'legend' },
         ...['leak', 'cache', 'transient', 'unknown'].map((v) =>
           el('span', { class: 'lg' }, el('i', { class: `sw v-${v}` }), v)));
  root.append(el('div', { class: 'toolbar' }, select_, search, reset, legend), chartBox, details);

  let chart = null;
  let current = metrics[0];
  const draw = () => {
    chartBox.textContent = '';
    const tree = buildTree(report, current.weight, (s) => s.v || 'unknown', current.delta);
    if (!(tree.value > 0)) {
      chartBox.append(el('p', { class: 'empty', text: `nothing to draw: no stack has ${current.label.toLowerCase()}` }));
      chart = null;
      return;
    }
    const width = Math.max(480, chartBox.clientWidth || root.clientWidth || 960);
    chart = flamegraph()
      .width(width)
      .cellHeight(20)
      .inverted(true)
      .minFrameSize(1)
      .transitionDuration(250)
      .sort((a, b) => b.value - a.value)
      .setColorMapper((d) => (d.highlight ? '#d946ef'
        : opts.diff ? diffColour(d)
          : opts.verdicts === false ? `hsl(${20 + 30 * nameShade(d.data.name || '')}, 80%, 62%)`
            : verdictColour(d)))
      .setSearchMatch((d, term) => !!term && (d.data.name || '').toLowerCase().includes(term.toLowerCase()))
      .setLabelHandler((d) => {
        const share = tree.value ? d.value / tree.value : 0;
        const change = opts.diff ? `, change ${fmt.signedBytes(d.data.delta)}` : '';
        return `${d.data.name}: ${current.unit(d.value)} (${fmt.percent(share)})${change}`;
      })
      .setDetailsElement(details);
    select(chartBox).datum(tree).call(chart);
    if (search.value) chart.search(search.value);
  };
  select_.addEventListener('change', () => {
    current = metrics.find((m) => m.id === select_.value) || metrics[0];
    draw();
  });
  search.addEventListener('input', () => {
    if (!chart) return;
    if (search.value) chart.search(search.value);
    else chart.clear();
  });
  reset.addEventListener('click', () => chart && chart.resetZoom());
  root.draw = draw;
  root.searchFor = (name) => {
    search.value = name;
    if (chart) chart.search(name);
    root.scrollIntoView({ behavior: 'smooth', block: 'start' });
  };
  return root;
}
