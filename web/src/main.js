// leakwatch's HTML report: one page per report (memleak, growth, a diff of two reports) or
// per agent investigation, drawn from the JSON leakwatch embedded in the page.  Nothing is
// loaded from the network; every name from the traced program is set as text.
import './style.css';
import { el, section, badge, facts } from './dom.js';
import { readData, stackName, stackSource, callPath } from './model.js';
import { flameView } from './flame.js';
import { stackTimeline, memoryTimeline } from './timeline.js';
import { stackTable } from './table.js';
import * as fmt from './format.js';

function targetText(t) {
  if (!t) return '–';
  if (t.kernel) return 'the kernel';
  const parts = [];
  if (t.comm) parts.push(t.comm);
  if (t.pid) parts.push(`pid ${t.pid}`);
  if (t.cgroup) parts.push(`cgroup ${t.cgroup}`);
  return parts.join(', ') || '–';
}

// The finding, or an honest "no finding" with what the report does show.
function findingCard(finding, fallback) {
  if (!finding || !finding.function) {
    const box = el('div', { class: 'finding none', id: 'finding' },
      el('div', { class: 'finding-title', text: 'No finding' }),
      el('p', { text: 'leakwatch did not name a leaking function for this report.' }));
    if (fallback) box.append(el('p', { class: 'fallback' }, fallback));
    return box;
  }
  const where = [finding.module, finding.file ? `${finding.file}${finding.line ? `:${finding.line}` : ''}` : '']
    .filter(Boolean).join(' · ');
  const level = finding.alert_level || '';
  return el('div', { class: `finding v-${finding.verdict || 'unknown'}`, id: 'finding' },
    el('div', { class: 'finding-head' },
      el('span', { class: 'finding-label', text: 'Leaking function' }),
      badge(finding.verdict),
      level ? el('span', { class: `alert alert-${level}`, text: `alert: ${level}` }) : null),
    el('div', { class: 'finding-function', text: finding.function }),
    where ? el('div', { class: 'finding-where', text: where }) : null,
    facts([
      ['outstanding', fmt.bytes(finding.bytes)],
      ['growth', fmt.rate(finding.bytes_per_s)],
      ['confidence', finding.confidence !== undefined ? fmt.percent(finding.confidence) : ''],
      ['seen by', (finding.seen_by || []).join(', ')],
      ['agreement', finding.agreement],
    ]),
    finding.reason ? el('p', { class: 'finding-reason', text: finding.reason }) : null);
}

// A report's own finding card; inside an investigation, whose finding (above) combines its
// steps, a step shows its largest stack instead of a second, contradicting "no finding".
function stepFinding(finding, largest, opts) {
  if (!opts.step) return findingCard(finding, largest);
  return el('p', { class: 'step-top' }, largest,
    typeof largest === 'string' ? null : ' (the investigation\'s finding, above, weighs this step with the other)');
}

function lossesAndNotes(report) {
  const lost = Object.entries(report.lost || {}).filter(([, v]) => v > 0);
  const box = el('div', { class: 'notes' });
  box.append(lost.length
    ? el('p', { class: 'warn', id: 'losses' }, 'Lost (figures are lower bounds): ',
         lost.map(([k, v]) => `${k}=${fmt.count(v)}`).join(', '))
    : el('p', { class: 'ok', id: 'losses', text: 'Nothing lost: every loss counter is zero.' }));
  if (report.omitted && report.omitted.stacks)
    box.append(el('p', { class: 'warn', text:
      `${fmt.count(report.omitted.stacks)} smallest stacks (${fmt.bytes(report.omitted.bytes)}) are left out of this page to keep it small; the JSON report has them.` }));
  if ((report.notes || []).length)
    box.append(el('ul', null, report.notes.map((n) => el('li', { text: n }))));
  return box;
}

// Without a finding, the stack that matters most: the largest leak, else the largest.
function largestStack(report, what, figure) {
  const leak = report.stacks.find((s) => s.v === 'leak');
  const s = leak || report.stacks[0];
  if (!s) return `No stack has ${what}.`;
  return el('span', null, leak ? 'Largest stack with verdict leak: ' : 'Largest stack: ',
    el('strong', { class: 'fname', text: stackName(report, s) }),
    ` — ${figure(s)}${s.g ? `, ${fmt.rate(s.g)}` : ''}${s.v ? ` (${s.v})` : ''}`);
}

// ---- allocation reports (memleak, diff)

function memleakSections(r, opts = {}) {
  const sampled = r.sampling && r.sampling.mode !== 'exact';
  const diff = !!r.diff;
  const totalBytes = r.stacks.reduce((a, s) => a + s.b[0], 0);
  const totalCount = r.stacks.reduce((a, s) => a + s.c[0], 0);
  const leaks = r.stacks.filter((s) => s.v === 'leak');
  const out = [];
  out.push(section(opts.title || (diff ? 'Difference' : 'Summary'), opts.prefix ? `${opts.prefix}-summary` : 'summary',
    diff ? null : stepFinding(r.finding, largestStack(r, 'outstanding bytes', (s) => fmt.bytes(s.b[0])), opts),
    facts([
      ['target', targetText(r.target)],
      [diff ? 'between the reports' : 'traced for', fmt.seconds(r.duration_s)],
      ['report time', fmt.dateTime(r.timestamp_unix_ms)],
      ['how', fmt.samplingText(r.sampling)],
      [diff ? 'change in outstanding bytes' : 'outstanding', diff ? fmt.signedBytes(totalBytes) : fmt.bytes(totalBytes)],
      [diff ? 'change in allocations' : 'allocations', fmt.count(totalCount)],
      ['stacks', `${fmt.count(r.stacks.length)}${diff ? '' : `, ${leaks.length} with verdict leak`}`],
    ]),
    lossesAndNotes(r)));

  const metrics = diff
    ? [{ id: 'dbytes', label: 'Change in bytes', weight: (s) => Math.abs(s.b[0]), delta: (s) => s.b[0], unit: fmt.bytes },
       { id: 'dcount', label: 'Change in allocations', weight: (s) => Math.abs(s.c[0]), delta: (s) => s.c[0], unit: fmt.count }]
    : [{ id: 'bytes', label: 'Outstanding bytes', weight: (s) => s.b[0], unit: fmt.bytes },
       { id: 'count', label: 'Outstanding allocations', weight: (s) => s.c[0], unit: fmt.count },
       ...(sampled ? [{ id: 'lo', label: 'Outstanding bytes, 95% low', weight: (s) => s.b[1], unit: fmt.bytes },
                      { id: 'hi', label: 'Outstanding bytes, 95% high', weight: (s) => s.b[2], unit: fmt.bytes }] : []),
       { id: 'alloc', label: 'Allocated during the session', weight: (s) => (s.ab ? s.ab[0] : 0), unit: fmt.bytes }];
  const flame = flameView(r, metrics, { diff, id: opts.prefix || 'flame' });
  out.push(section(diff ? 'Flame graph of the change' : 'Flame graph: outstanding memory by stack',
    opts.prefix ? `${opts.prefix}-flame` : 'flame-section',
    el('p', { class: 'hint', text: diff
      ? 'Width: size of the change; red: grew, blue: shrank. Click a frame to zoom in.'
      : 'Each bar is a function; its width is the memory still allocated by the stacks through it (callers on top). Colour: verdict of those stacks. Click a frame to zoom in.' }),
    flame));

  if (!diff) {
    const byId = new Map(r.stacks.map((s) => [String(s.id), s]));
    const stackOf = (id) => {
      const s = byId.get(String(id));
      return s ? { label: stackName(r, s), verdict: s.v || 'unknown' } : { label: `stack ${id}`, verdict: 'unknown' };
    };
    out.push(section('Timeline', opts.prefix ? `${opts.prefix}-timeline` : 'timeline-section',
      el('p', { class: 'hint', text: 'Outstanding bytes of the largest stacks over the session (stacked), and the process\'s resident memory. Drag to zoom into a time range, double-click to zoom out.' }),
      stackTimeline(r.timeline || {}, stackOf)));
  }

  const est = (e, f) => fmt.estimate(e, f, sampled);
  const columns = [
    { label: 'function', value: (s) => stackName(r, s), cls: 'fn',
      node: (s) => el('span', null, el('span', { class: 'fname', text: stackName(r, s) }),
                      el('span', { class: 'path', text: ` ${callPath(r, s)}` })) },
    { label: 'source', value: (s) => stackSource(r, s), text: (s) => stackSource(r, s), cls: 'src' },
    { label: diff ? 'Δ bytes' : 'bytes', num: true, value: (s) => s.b[0],
      node: (s) => el('span', { class: diff ? (s.b[0] >= 0 ? 'grow' : 'shrink') : undefined,
                                text: diff ? fmt.signedBytes(s.b[0]) : est(s.b, fmt.bytes) }) },
    { label: diff ? 'Δ allocations' : 'allocations', num: true, value: (s) => s.c[0],
      text: (s) => (diff && s.c[0] > 0 ? '+' : '') + est(s.c, fmt.count) },
    { label: 'verdict', value: (s) => s.v || 'unknown', node: (s) => badge(s.v) },
    { label: 'growth', num: true, value: (s) => s.g, text: (s) => fmt.rate(s.g), title: 'slope of outstanding bytes over the session' },
    { label: 'oldest', num: true, value: (s) => s.o, text: (s) => fmt.seconds(s.o), title: 'age of the oldest surviving allocation' },
  ];
  const table = stackTable(r.stacks, columns, (s) => flame.searchFor(stackName(r, s)), 2,
                           (s) => s.r || '');
  out.push(section(diff ? 'Stacks by change' : 'Stacks', opts.prefix ? `${opts.prefix}-stacks` : 'stacks-section',
    el('p', { class: 'hint', text: 'Click a column to sort, a row to find its function in the flame graph. Verdict reasons are in each row\'s tooltip.' }),
    table));
  return { sections: out, draw: () => flame.draw() };
}

// ---- growth reports

function growthSections(g, opts = {}) {
  const sampled = g.sample_period > 1;
  const out = [];
  const t = g.totals || {};
  const rssRows = (g.processes || []).map((p) => {
    const a = p.rss && p.rss.anon;
    return el('li', { text: `pid ${p.pid} ${p.comm}: anonymous RSS ${a ? `${fmt.bytes(a.first)} → ${fmt.bytes(a.current)} (peak ${fmt.bytes(a.peak)})` : 'no update seen'}` });
  });
  out.push(section(opts.title || 'Summary', opts.prefix ? `${opts.prefix}-summary` : 'summary',
    stepFinding(g.finding, largestStack(g, 'growth', (s) => fmt.bytes(s.gb)), opts),
    facts([
      ['target', targetText(g.target)],
      ['traced for', fmt.seconds(g.duration_s)],
      ['report time', fmt.dateTime(g.timestamp_unix_ms)],
      ['how', `page faults and mmap/brk on tracepoints; ${sampled ? `1 in ${g.sample_period} fault stacks captured, faulted bytes estimated` : 'every fault stack captured'}`],
      ['anonymous faulted', fmt.bytes(t.faulted_bytes)],
      ['anonymous still mapped', `${fmt.bytes(t.mapped_bytes)} (brk ${fmt.bytes(t.brk_bytes)})`],
      ['faults', fmt.count(t.faults)],
    ]),
    rssRows.length ? el('ul', { class: 'rss' }, rssRows) : null,
    lossesAndNotes(g)));
  const metrics = [
    { id: 'growth', label: 'Growth (larger of faulted and mapped)', weight: (s) => s.gb, unit: fmt.bytes },
    { id: 'faulted', label: 'Faulted bytes (anonymous first touches)', weight: (s) => s.fb[0], unit: fmt.bytes },
    { id: 'mapped', label: 'Mapped bytes (still mapped)', weight: (s) => s.mb, unit: fmt.bytes },
    { id: 'faults', label: 'Faults', weight: (s) => s.fl[0], unit: fmt.count },
  ];
  // The flame graph colours by verdict; the growth report has none.
  const flame = flameView(g, metrics, { id: opts.prefix || 'flame', verdicts: false });
  out.push(section('Flame graph: memory growth by stack', opts.prefix ? `${opts.prefix}-flame` : 'flame-section',
    el('p', { class: 'hint', text: 'Width: bytes the stacks through a function made resident (first touches) or mapped. Click a frame to zoom in.' }),
    flame));
  const columns = [
    { label: 'function', value: (s) => stackName(g, s), cls: 'fn',
      node: (s) => el('span', null, el('span', { class: 'fname', text: stackName(g, s) }),
                      el('span', { class: 'path', text: ` ${callPath(g, s)}` })) },
    { label: 'source', value: (s) => stackSource(g, s), text: (s) => stackSource(g, s), cls: 'src' },
    { label: 'growth', num: true, value: (s) => s.gb, text: (s) => fmt.bytes(s.gb) },
    { label: 'faulted', num: true, value: (s) => s.fb[0], text: (s) => fmt.estimate(s.fb, fmt.bytes, sampled) },
    { label: 'faults', num: true, value: (s) => s.fl[0], text: (s) => fmt.count(s.fl[0]) },
    { label: 'mapped', num: true, value: (s) => s.mb, text: (s) => fmt.bytes(s.mb) },
    { label: 'brk', num: true, value: (s) => s.bb, text: (s) => fmt.bytes(s.bb) },
  ];
  out.push(section('Stacks', opts.prefix ? `${opts.prefix}-stacks` : 'stacks-section',
    stackTable(g.stacks, columns, (s) => flame.searchFor(stackName(g, s)), 2)));
  return { sections: out, draw: () => flame.draw() };
}

// ---- agent investigations

function investigationSections(doc) {
  const inv = doc.investigation || {};
  const req = inv.request || {};
  const out = [];
  const finding = inv.finding || (doc.memleak && doc.memleak.finding) || null;
  const top = doc.memleak && doc.memleak.stacks[0]
    ? `Largest stack of the allocation trace: ${stackName(doc.memleak, doc.memleak.stacks[0])}.`
    : doc.growth && doc.growth.stacks[0]
      ? `Largest growth stack: ${stackName(doc.growth, doc.growth.stacks[0])}.` : '';
  const o = inv.overhead || {};
  out.push(section('Investigation', 'summary',
    findingCard(finding, top),
    facts([
      ['target', `${req.target || ''} · ${req.comm || ''} pid ${req.pid || ''}`],
      ['trigger', req.reason],
      ['started', fmt.dateTime(inv.started_unix_ms)],
      ['duration', inv.finished_unix_ms ? fmt.seconds((inv.finished_unix_ms - inv.started_unix_ms) / 1000) : ''],
      ['ended', inv.end],
      ['allocation trace', inv.memleak_error ? `no report: ${inv.memleak_error}` : ''],
      ['growth step', inv.growth ? `${inv.growth.outcome}${inv.growth.error ? `: ${inv.growth.error}` : ''}` : 'not configured'],
      ['estimated overhead', o.overhead_percent !== undefined ? `${o.overhead_percent.toFixed(2)}% of the target's CPU (${fmt.count(o.probe_hits)} probe hits)` : ''],
    ])));
  out.push(section('Memory of the target around the trigger', 'memory-section',
    el('p', { class: 'hint', text: 'What the agent\'s always-on watch (layer 1) saw: anonymous memory (the leak signal) and RSS.' }),
    memoryTimeline(inv.memory || {}, inv.started_unix_ms, inv.finished_unix_ms)));
  const draws = [];
  if (doc.growth) {
    const g = growthSections(doc.growth, { title: 'Growth step (where resident memory grew)', prefix: 'growth', step: true });
    out.push(el('h2', { class: 'part', text: 'Growth step' }), ...g.sections);
    draws.push(g.draw);
  }
  if (doc.memleak) {
    const m = memleakSections(doc.memleak, { title: 'Allocation trace', prefix: 'memleak', step: true });
    out.push(el('h2', { class: 'part', text: 'Allocation trace' }), ...m.sections);
    draws.push(m.draw);
  }
  return { sections: out, draw: () => draws.forEach((d) => d()) };
}

function main() {
  const doc = readData();
  const app = document.getElementById('app');
  app.textContent = '';
  let view;
  if (doc.kind === 'investigation') view = investigationSections(doc);
  else if (doc.kind === 'growth') view = growthSections(doc.growth);
  else view = memleakSections(doc.memleak);
  app.append(...view.sections);
  view.draw();
  document.body.dataset.ready = 'true';
}

main();
