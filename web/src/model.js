// The page's data (written by leakwatch into <script type="application/json" id="lw-data">)
// and what the views derive from it.  Frames are shared: a report lists each distinct frame
// once, [function, module, file, line], and its stacks refer to them by index, innermost
// first.

export function readData() {
  const node = document.getElementById('lw-data');
  return JSON.parse(node.textContent);
}

export function frameName(frame) {
  if (!frame) return '[unknown]';
  const [fn, mod] = frame;
  if (fn) return fn;
  if (mod) return `[${mod}]`;
  return '[unknown]';
}

export function frameSource(frame) {
  if (!frame || !frame[2]) return '';
  const file = frame[2].split('/').pop();
  return frame[3] ? `${file}:${frame[3]}` : file;
}

// The frame that names a stack, as a position in stack.f: the one leakwatch chose (`n`, by
// the finding's rule: past the allocator, the runtimes and the program's allocation
// wrappers; the writer sets it on every stack), else the innermost.
function namedPosition(stack) {
  return Number.isInteger(stack.n) && stack.n >= 0 && stack.n < stack.f.length ? stack.n : 0;
}

function stackFrame(report, stack) {
  return report.frames[stack.f[namedPosition(stack)]];
}

export function stackName(report, stack) {
  if (!stack || !stack.f.length) return '[no frames]';
  return frameName(stackFrame(report, stack));
}

// A function's name for a call path: template arguments elided ("std::map<…>::operator[]"),
// and a long parameter list too.  Operators with '<' in them are left as they are.
export function shortName(name) {
  if (name.includes('operator<') || name.includes('operator>')) return name;
  let out = '';
  let depth = 0;
  for (const c of name) {
    if (c === '<') {
      if (depth++ === 0) out += '<…>';
    } else if (c === '>' && depth > 0) {
      depth--;
    } else if (depth === 0) {
      out += c;
    }
  }
  const paren = out.indexOf('(');
  if (paren > 0 && out.length > 60) out = `${out.slice(0, paren)}(…)${out.endsWith(' const') ? ' const' : ''}`;
  return out;
}

// "← a ← b ← c": the named frame's first few callers, for the table.
export function callPath(report, stack, depth = 3) {
  const from = namedPosition(stack) + 1;
  const names = stack.f.slice(from, from + depth).map((i) => shortName(frameName(report.frames[i])));
  const more = stack.f.length > from + depth ? ' ← …' : '';
  return names.length ? `← ${names.join(' ← ')}${more}` : '';
}

// The source line of the named frame (a caller's would be another function's: in a program
// without debug information, libc's start-up code).
export function stackSource(report, stack) {
  if (!stack.f.length) return '';
  return frameSource(report.frames[stack.f[namedPosition(stack)]]);
}

// The icicle's tree: root "all", then each stack's frames from the outermost in, with
// `value` = the chosen figure of the stacks below, and the bytes of those stacks by
// verdict (`verdicts`) for colouring.  `weight(stack)` returns the figure (>= 0) and
// `delta(stack)` the signed change shown in a diff.
export function buildTree(report, weight, verdictOf, delta) {
  const root = { name: 'all', value: 0, children: [], verdicts: {}, delta: 0, index: new Map() };
  for (const stack of report.stacks) {
    const w = weight(stack);
    if (!(w > 0)) continue;
    const d = delta ? delta(stack) : 0;
    const verdict = verdictOf(stack);
    let node = root;
    const visit = (n) => {
      n.value += w;
      n.verdicts[verdict] = (n.verdicts[verdict] || 0) + w;
      n.delta += d;
    };
    visit(root);
    const path = stack.f.slice().reverse().map((i) => frameName(report.frames[i]));
    if (stack.tr) path.unshift('[truncated stack]');
    for (const name of path) {
      let child = node.index.get(name);
      if (!child) {
        child = { name, value: 0, children: [], verdicts: {}, delta: 0, index: new Map() };
        node.index.set(name, child);
        node.children.push(child);
      }
      visit(child);
      node = child;
    }
  }
  const strip = (n) => {
    delete n.index;
    if (!n.children.length) delete n.children;
    else n.children.forEach(strip);
  };
  strip(root);
  return root;
}

// The verdict carrying most of a node's weight.
export function dominantVerdict(verdicts) {
  let best = 'unknown';
  let bestValue = -1;
  for (const [v, w] of Object.entries(verdicts || {})) {
    if (w > bestValue) {
      best = v;
      bestValue = w;
    }
  }
  return best;
}
