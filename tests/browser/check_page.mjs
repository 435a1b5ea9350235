// Opens a leakwatch page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded) and prints what the tests assert, as JSON:
//   node check_page.mjs NODE_MODULES URL OUT_DIR NAME [--click FUNCTION] [--selector-wait CSS]
//                       [--top HEIGHT]   (also NAME-top.png: the page's first HEIGHT pixels)
// It records console errors, page errors, dialogs and every request (any request that is not
// the page itself is aborted and listed), waits until the page's script says it is ready,
// reads the flame graph's frames and the charts' points, clicks the frame FUNCTION and reads
// its width again (zoom), and keeps screenshots in OUT_DIR (NAME.png, NAME-zoomed.png).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [nodeModules, url, outDir, name, ...rest] = process.argv.slice(2);
const opt = (flag) => {
  const i = rest.indexOf(flag);
  return i >= 0 ? rest[i + 1] : undefined;
};
const clickName = opt('--click');
const waitFor = opt('--selector-wait') || 'body[data-ready="true"]';
const { chromium } = createRequire(path.join(path.resolve(nodeModules), 'noop.js'))('playwright-core');

const profile = mkdtempSync(path.join(tmpdir(), 'leakwatch-chromium-'));
const result = { console: [], pageErrors: [], dialogs: [], requests: [], blocked: [] };
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') result.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.pageErrors.push(String(e)));
  page.on('dialog', async (d) => {
    result.dialogs.push(d.message());
    await d.dismiss();
  });
  const pageUrl = new URL(url).href;
  await context.route('**/*', (route) => {
    const u = route.request().url();
    result.requests.push(u);
    if (u === pageUrl) return route.continue();
    result.blocked.push(u);
    return route.abort();
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector(waitFor, { timeout: 15000 });
  await page.waitForTimeout(800);  // charts draw on the next animation frame, bars transition
  result.title = await page.title();
  result.info = await page.evaluate(() => {
    const frames = [...document.querySelectorAll('.flame-chart svg g.frame')].map((g) => ({
      name: g.getAttribute('name'),
      width: Number(g.querySelector('rect').getAttribute('width')),
      chart: g.closest('.flame-chart').id,
    }));
    const charts = [...document.querySelectorAll('.timeline')].map((t) => ({
      id: t.id,
      points: t.plot ? t.plot.data[0].length : 0,
      series: t.plot ? t.plot.series.slice(1).map((s) => s.label) : [],
      empty: t.querySelector('.empty') ? t.querySelector('.empty').textContent : '',
    }));
    return {
      scripts: document.querySelectorAll('script').length,
      frames,
      charts,
      finding: document.getElementById('finding') ? document.getElementById('finding').innerText : null,
      tableRows: document.querySelectorAll('table.stacks tbody tr').length,
      reportRows: document.querySelectorAll('table.reports tbody tr').length,
      text: document.body.innerText,
      svgWidth: (() => {
        const s = document.querySelector('.flame-chart svg');
        return s ? Number(s.getAttribute('width')) : 0;
      })(),
    };
  });
  await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true });
  if (opt('--top'))
    await page.screenshot({ path: path.join(outDir, `${name}-top.png`),
                            fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Number(opt('--top')) } });
  if (clickName) {
    const target = page.locator(`.flame-chart svg g.frame[name="${clickName.replace(/"/g, '\\"')}"]`).first();
    result.zoom = { found: await target.count() > 0 };
    if (result.zoom.found) {
      result.zoom.before = Number(await target.locator('rect').getAttribute('width'));
      await target.click();
      await page.waitForTimeout(800);
      result.zoom.after = Number(await target.locator('rect').getAttribute('width'));
      result.zoom.faded = await page.locator('.flame-chart svg g.frame.fade').count();
      await page.screenshot({ path: path.join(outDir, `${name}-zoomed.png`), fullPage: true });
    }
  }
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
