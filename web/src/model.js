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

// Frames of the C++ standard library's containers and allocators, of libc and of the
// runtime: a stack is named after the first frame past them (the program's code).
const PLUMBING = /^(std::|__gnu_cxx::|operator new|operator delete|__libc_|_int_|__GI_|__mem|mem(cpy|set|move)\b)/;
const RUNTIME_MODULES = /^(libc\.so|libstdc\+\+\.so|libgcc_s\.so|ld-linux|libc\.musl)/;

function isPlumbing(frame) {
  if (!frame) return false;
  return PLUMBING.test(frame[0] || '') || (!!frame[0] && RUNTIME_MODULES.test(frame[1] || ''));
}

// The frame that names a stack: the innermost one of the program (the allocation's caller
// past the standard library), else the innermost.
export function stackFrame(report, stack) {
  for (const i of stack.f) {
    const f = report.frames[i];
    if (!isPlumbing(f)) return f;
  }
  return report.frames[stack.f[0]];
}

export function stackName(report, stack) {
  if (!stack || !stack.f.length) return '[no frames]';
  return frameName(stackFrame(report, stack));
}

// "a ← b ← c": the first few callers, for the table.
export function callPath(report, stack, depth = 3) {
  const names = stack.f.slice(1, 1 + depth).map((i) => frameName(report.frames[i]));
  const more = stack.f.length > 1 + depth ? ' ← …' : '';
  return names.length ? `← ${names.join(' ← ')}${more}` : '';
}

export function stackSource(report, stack) {
  for (const i of stack.f) {
    const s = frameSource(report.frames[i]);
    if (s) return s;
  }
  return '';
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
