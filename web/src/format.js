// Number and text formatting shared by the views.  Everything here returns plain strings:
// the views put them in the page with textContent, never as HTML.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const sign = v < 0 ? '-' : '';
  let x = Math.abs(v);
  let i = 0;
  while (x >= 1024 && i < UNITS.length - 1) {
    x /= 1024;
    i++;
  }
  const digits = i === 0 ? 0 : x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return `${sign}${x.toFixed(digits)} ${UNITS[i]}`;
}

export function signedBytes(v) {
  return (v > 0 ? '+' : '') + bytes(v);
}

export function rate(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return `${signedBytes(v)}/s`;
}

export function count(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const r = Math.round(v);
  return r.toLocaleString('en-US');
}

export function seconds(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v < 1) return `${(v * 1000).toFixed(0)} ms`;
  if (v < 120) return `${v.toFixed(1)} s`;
  if (v < 7200) return `${(v / 60).toFixed(1)} min`;
  return `${(v / 3600).toFixed(1)} h`;
}

export function percent(v) {
  return `${(100 * v).toFixed(v < 0.1 ? 1 : 0)}%`;
}

export function dateTime(unixMs) {
  if (!unixMs) return '–';
  const d = new Date(unixMs);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// How a figure was obtained, as the text and JSON reports say it.
export function samplingText(s) {
  if (!s || s.mode === 'exact') return 'exact: every allocation traced';
  if (s.mode === 'calls') return `sampled: 1 call in ${count(s.rate)}, figures scaled back`;
  return `sampled: 1 byte in ${bytes(s.rate)} (Poisson), figures scaled back`;
}

// An estimate [estimate, lo, hi, sampled] as "12.0 MiB (95% 10.1–13.9 MiB)".
export function estimate(e, fmt, sampled) {
  if (!e) return '–';
  if (!sampled || e[1] === e[2]) return fmt(e[0]);
  return `${fmt(e[0])} (95% ${fmt(e[1])}–${fmt(e[2])})`;
}
