// Tiny DOM helpers: elements are built with textContent and setAttribute only, so text that
// comes from the traced program (function names, file names, comm) is never parsed as HTML.

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function section(title, id, ...children) {
  return el('section', { class: 'card', id }, el('h2', { text: title }), ...children);
}

export function badge(verdict) {
  return el('span', { class: `badge v-${verdict || 'unknown'}`, text: verdict || 'unknown' });
}

// A definition list from [label, value] pairs (values: strings or nodes); empty values skipped.
export function facts(pairs) {
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(el('dt', { text: k }), el('dd', null, v));
  }
  return dl;
}
