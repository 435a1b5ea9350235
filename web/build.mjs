// Bundles the report's scripts and styles (src/main.js and what it imports, d3-flame-graph
// and uPlot from node_modules) into one minified app.js and app.css, and writes the
// Content-Security-Policy hash of app.js.  Run by CMake after `npm ci`:
//   node build.mjs SRC_DIR OUT_DIR NODE_MODULES_DIR
// The files are embedded verbatim in <script> and <style> elements, so they must not
// contain what would end those elements early; that is checked here, not assumed.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [srcDir, outDir, nodeModules] = process.argv.slice(2);
if (!srcDir || !outDir || !nodeModules) {
  console.error('usage: node build.mjs SRC_DIR OUT_DIR NODE_MODULES_DIR');
  process.exit(2);
}
// node_modules is in the build directory (npm ci runs there), not next to this script.
const esbuild = createRequire(path.join(path.resolve(nodeModules), 'noop.js'))('esbuild');
mkdirSync(outDir, { recursive: true });
await esbuild.build({
  entryPoints: { app: path.join(srcDir, 'main.js') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: outDir,
  nodePaths: [nodeModules],
  legalComments: 'none',
  logLevel: 'warning',
  charset: 'utf8',
});

const js = readFileSync(path.join(outDir, 'app.js'), 'utf8');
const css = readFileSync(path.join(outDir, 'app.css'), 'utf8');
for (const [name, text, bad] of [['app.js', js, /<\/script|<!--/i], ['app.css', css, /<\/style|<!--/i]]) {
  const m = text.match(bad);
  if (m) {
    console.error(`${name}: contains "${m[0]}", which would end its HTML element early`);
    process.exit(1);
  }
}
const hash = createHash('sha256').update(js, 'utf8').digest('base64');
writeFileSync(path.join(outDir, 'app.sha256'), `sha256-${hash}`);
console.log(`web assets: app.js ${js.length} bytes, app.css ${css.length} bytes`);
