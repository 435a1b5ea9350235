// A sortable table of stacks.  columns: [{label, value(stack) (sort key), text(stack) or
// node(stack), num: bool}]; clicking a header sorts by it (again: the other way), clicking
// a row calls onPick(stack); rowTitle(stack) is the row's tooltip.
import { el } from './dom.js';

const MAX_ROWS = 500;

export function stackTable(stacks, columns, onPick, initial = 0, rowTitle = null) {
  const wrap = el('div', { class: 'table-wrap' });
  const table = el('table', { class: 'stacks' });
  const thead = el('thead');
  const tbody = el('tbody');
  const note = el('p', { class: 'note' });
  table.append(thead, tbody);
  wrap.append(table, note);
  let sortCol = initial;
  let descending = true;

  const render = () => {
    const col = columns[sortCol];
    const rows = stacks.slice().sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      const c = typeof x === 'string' ? x.localeCompare(y) : (x ?? -Infinity) - (y ?? -Infinity);
      return descending ? -c : c;
    });
    thead.textContent = '';
    const tr = el('tr');
    columns.forEach((c, i) => {
      const mark = i === sortCol ? (descending ? ' ▼' : ' ▲') : '';
      tr.append(el('th', {
        class: c.num ? 'num' : undefined,
        scope: 'col',
        'aria-sort': i === sortCol ? (descending ? 'descending' : 'ascending') : undefined,
        title: c.title,
        onclick: () => {
          if (sortCol === i) descending = !descending;
          else {
            sortCol = i;
            descending = !!c.num;
          }
          render();
        },
      }, c.label + mark));
    });
    thead.append(tr);
    tbody.textContent = '';
    for (const s of rows.slice(0, MAX_ROWS)) {
      const row = el('tr', { onclick: () => onPick && onPick(s), title: rowTitle ? rowTitle(s) : undefined });
      for (const c of columns) {
        const content = c.node ? c.node(s) : c.text(s);
        row.append(el('td', { class: c.num ? 'num' : c.cls }, content));
      }
      tbody.append(row);
    }
    note.textContent = rows.length > MAX_ROWS
      ? `${MAX_ROWS} of ${rows.length} stacks shown (sort to see others)` : `${rows.length} stacks`;
  };
  render();
  return wrap;
}
