// The engine's modules run unchanged in a browser and give the numbers they give in Node.
//
// Bundles web/ops-check.ts for the browser (scripts/build-web.mjs: platform 'browser', no externals,
// any Node import is a build error), serves it from 127.0.0.1, runs it in headless Chromium (WebGPU on
// whatever adapter Chromium offers; SwiftShader in CI), then runs the same cases (web/ops-check-cases.ts)
// in Node on Dawn and compares them value by value.
//
// CHROMIUM_PATH overrides the browser (default /usr/bin/chromium). Without that executable the suite is
// skipped with a warning, unless VITGPU_REQUIRE_BROWSER=1, when it fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
// @ts-ignore -- plain ESM script without type declarations
import { buildWeb, WEB_DIR } from '../../scripts/build-web.mjs';
import { createNodeDevice } from '../../engine/node.js';
import { randomCpu } from '../../kernels/random.js';
import { OPS_CASES, RANDOM_SEED, computeOpsCases, type CaseKind } from '../../web/ops-check-cases.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const REQUIRE = process.env.VITGPU_REQUIRE_BROWSER === '1';
if (!HAVE_CHROMIUM && !REQUIRE) {
  console.warn(`[browser test] skipped: no Chromium at ${CHROMIUM} (set CHROMIUM_PATH, or VITGPU_REQUIRE_BROWSER=1 to fail instead)`);
}

/** Flags for WebGPU in headless Chromium, offline. SwiftShader is picked without more flags where no GPU is. */
const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const PAGE_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 120_000;

interface PageReport {
  adapter: string;
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean; features: string[] };
  results: Record<string, number[]>;
  ms: number;
}

/** What web/ops-check.ts leaves on the page's window. */
type PageWindow = Window & { __vitgpuResult?: unknown; __vitgpuError?: string };

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Serves the files of `dir` (flat) on 127.0.0.1 at a free port. */
async function serve(dir: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    const file = resolve(dir, path);
    if (req.method !== 'GET' || path.includes('/') || !file.startsWith(resolve(dir)) || !CONTENT_TYPES[extname(file)]) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)], 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** WGSL's accuracy bound for sin/cos: 2^-11 absolute (WGSL spec, "Floating Point Accuracy"). */
const WGSL_SIN_COS_ABS_ERROR = 2 ** -11;

/** CPU references for the random cases (kernels/random.ts; an explicit seed uses stream 0). */
const RANDN_REF = randomCpu('normal', 1000, RANDOM_SEED, 0, 0, 1);
const RAND_REF = randomCpu('uniform', 1000, RANDOM_SEED, 0, 0, 1);

/**
 * Largest allowed |browser - Node| for element `i` of a case, with `ref` the Node value.
 * - rand: 0. Integer Philox plus exact f32 scaling is bit-identical on any conforming device.
 * - randn: Box-Muller radius * 2^-11, plus 1e-5 relative. Element i is rad * cos(th) or rad * sin(th),
 *   and WGSL only promises sin/cos to 2^-11 absolute; SwiftShader's are that coarse (errors up to
 *   ~2.4e-4 * rad seen, where Dawn on llvmpipe matches the f64 reference to ~1e-7). The radius is taken
 *   from the f64 reference pair (i, i^1), which share it.
 * - the rest: 1e-5 + 1e-5 * |ref|.
 */
function tolerance(kind: CaseKind, ref: number, i: number): number {
  switch (kind) {
    case 'rand':
      return 0;
    case 'randn': {
      const rad = Math.hypot(RANDN_REF[i], RANDN_REF[i ^ 1]);
      return WGSL_SIN_COS_ABS_ERROR * rad + 1e-5 * Math.max(1, Math.abs(ref));
    }
    default:
      return 1e-5 + 1e-5 * Math.abs(ref);
  }
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRE)('browser: engine runs unchanged in Chromium', () => {
  let outdir = '';
  let server: Server | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let origin = '';
  const pageLog: string[] = [];

  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), 'vitgpu-web-'));
    await buildWeb({ outdir });
    ({ server, origin } = await serve(outdir));
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await page?.close().catch(() => {});
    await browser?.close().catch(() => {});
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((ok) => server!.close(() => ok()));
    }
    if (outdir) await rm(outdir, { recursive: true, force: true });
  }, TEST_TIMEOUT_MS);

  it('the browser bundle refuses Node imports', async () => {
    for (const spec of ['../engine/node.js', 'webgpu', 'node:fs', 'fs']) {
      const dir = await mkdtemp(join(tmpdir(), 'vitgpu-bad-'));
      try {
        const ts = join(dir, 'bad.ts');
        const target = spec.startsWith('.') ? resolve(WEB_DIR, spec) : spec;
        await writeFile(ts, `import * as m from ${JSON.stringify(target)};\nconsole.log(m);\n`);
        await expect(
          buildWeb({ outdir: join(dir, 'out'), entries: [{ name: 'bad', ts, html: join(WEB_DIR, 'ops-check.html') }] }),
          `bundling an import of ${spec}`,
        ).rejects.toThrow(/must not reach Node code/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }, TEST_TIMEOUT_MS);

  it('gives the same numbers in Chromium as in Node', async () => {
    const t0 = Date.now();
    if (!HAVE_CHROMIUM) throw new Error(`no Chromium at ${CHROMIUM} (VITGPU_REQUIRE_BROWSER=1)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: PAGE_TIMEOUT_MS });
    page = await browser.newPage();
    page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`[pageerror] ${e.message}`));
    // Nothing but our own server: the page must not need the network.
    await page.route(/.*/, (route) =>
      route.request().url().startsWith(origin + '/') ? route.continue() : route.abort('blockedbyclient'),
    );
    await page.goto(`${origin}/ops-check.html`, { waitUntil: 'load', timeout: PAGE_TIMEOUT_MS });
    try {
      await page.waitForFunction(() => (window as PageWindow).__vitgpuResult !== undefined || (window as PageWindow).__vitgpuError !== undefined, null, {
        timeout: PAGE_TIMEOUT_MS,
        polling: 200,
      });
    } catch (err) {
      throw new Error(`page produced no result within ${PAGE_TIMEOUT_MS / 1000}s: ${String(err)}\npage log:\n${pageLog.join('\n')}`);
    }
    const pageError = await page.evaluate(() => (window as PageWindow).__vitgpuError);
    if (pageError) throw new Error(`ops check failed in the browser: ${pageError}\npage log:\n${pageLog.join('\n')}`);
    const report = (await page.evaluate(() => (window as PageWindow).__vitgpuResult)) as PageReport;
    const tBrowser = Date.now();

    // A real WebGPU adapter answered (not a stub): it has a name and ran every kernel.
    console.log(`[browser test] Chromium adapter: ${report.adapter}` +
      `${report.info.isFallbackAdapter ? ' (fallback adapter)' : ''}; cases ran in ${report.ms.toFixed(0)} ms`);
    expect(report.adapter).toBeTypeOf('string');
    expect(report.adapter).not.toMatch(/^(unknown|unnamed) adapter$/);
    expect(report.info.vendor || report.info.architecture || report.info.description).toBeTruthy();

    const device = await createNodeDevice();
    let nodeResults: Record<string, number[]>;
    try {
      console.log(`[browser test] Node adapter: ${device.name}`);
      nodeResults = await computeOpsCases(device);
    } finally {
      device.destroy();
    }

    const failures: string[] = [];
    const rows: string[] = [];
    for (const c of OPS_CASES) {
      const got = report.results[c.name];
      const want = nodeResults[c.name];
      const n = c.shape.reduce((a, b) => a * b, 1);
      if (!Array.isArray(got) || got.length !== n || want.length !== n) {
        failures.push(`${c.name}: browser gave ${Array.isArray(got) ? got.length : typeof got} values, Node ${want.length}, expected ${n}`);
        continue;
      }
      let maxAbs = 0;
      let maxRel = 0;
      let bad = 0;
      let firstBad = '';
      for (let i = 0; i < n; i++) {
        const a = got[i];
        const b = want[i];
        if (!Number.isFinite(b)) failures.push(`${c.name}[${i}]: Node value ${b} is not finite`);
        const diff = Math.abs(a - b);
        maxAbs = Math.max(maxAbs, diff);
        if (b !== 0) maxRel = Math.max(maxRel, diff / Math.abs(b));
        if (!(diff <= tolerance(c.kind, b, i))) {
          if (bad++ === 0) firstBad = `[${i}] browser ${a} vs Node ${b} (|diff| ${diff.toExponential(2)})`;
        }
      }
      rows.push(`  ${c.name.padEnd(20)} ${c.kind.padEnd(11)} n=${String(n).padEnd(5)} max|diff| ${maxAbs.toExponential(2)}  max rel ${maxRel.toExponential(2)}${bad ? `  FAIL x${bad}` : ''}`);
      if (bad) failures.push(`${c.name} (${c.kind}): ${bad}/${n} values out of tolerance, first ${firstBad}`);
    }
    // Both sides also match the engine's CPU reference for the random draws (so neither is off alike).
    for (const [side, res] of [['browser', report.results], ['Node', nodeResults]] as const) {
      const randBad = RAND_REF.findIndex((v, i) => res.rand[i] !== Math.fround(v));
      if (randBad >= 0) failures.push(`rand (${side}) differs from the CPU reference at [${randBad}]: ${res.rand[randBad]} vs ${RAND_REF[randBad]}`);
      let worst = 0;
      RANDN_REF.forEach((v, i) => {
        const excess = Math.abs(res.randn[i] - v) / tolerance('randn', v, i);
        if (!(excess <= 1) && excess >= worst) worst = excess;
      });
      if (worst > 0) failures.push(`randn (${side}) is off the CPU reference by up to ${worst.toFixed(1)}x its tolerance`);
    }
    console.log(`[browser test] browser vs Node, per case:\n${rows.join('\n')}`);
    console.log(`[browser test] browser ${((tBrowser - t0) / 1000).toFixed(1)} s, Node + compare ${((Date.now() - tBrowser) / 1000).toFixed(1)} s`);
    expect(failures, failures.join('\n')).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it('the page web/index.html loads a checkpoint and an image and matches PyTorch', async () => {
    browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: PAGE_TIMEOUT_MS });
    const app = await browser.newPage();
    type AppState = { model: unknown; busy: boolean; error: string | null; rows: { embedding: number[] | null; probabilities: number[] | null; error: string | null }[] };
    try {
      await app.route('**/*', (route) => (route.request().url().startsWith(origin + '/') ? route.continue() : route.abort('blockedbyclient')));
      await app.goto(`${origin}/index.html`, { waitUntil: 'load', timeout: PAGE_TIMEOUT_MS });
      const fixtures = new URL('../fixtures/vit/', import.meta.url).pathname;
      // A Hugging Face checkpoint has no vitgpu run settings: size and heads are given on the page.
      await app.click('details summary');
      await app.fill('#size', '32');
      await app.fill('#heads', '2');
      await app.setInputFiles('#weights', join(fixtures, 'hf-vit-f32.safetensors'));
      await app.waitForFunction(() => { const s = (window as unknown as { __vitgpuPage: AppState }).__vitgpuPage; return (s.model && !s.busy) || s.error; }, null, { timeout: PAGE_TIMEOUT_MS });
      await app.setInputFiles('#images', join(fixtures, 'image.png'));
      await app.waitForFunction(() => { const s = (window as unknown as { __vitgpuPage: AppState }).__vitgpuPage; return (s.rows.length === 1 && !s.busy) || s.error; }, null, { timeout: PAGE_TIMEOUT_MS });
      const st = await app.evaluate(() => (window as unknown as { __vitgpuPage: AppState }).__vitgpuPage);
      const statusText = await app.textContent('#model-status');
      expect(st.error, statusText ?? '').toBeNull();
      const row = st.rows[0];
      expect(row.error).toBeNull();
      const expected = JSON.parse(await readFile(join(fixtures, 'expected.json'), 'utf8')).cases['hf-vit-f32.safetensors'];
      // SwiftShader's exp/erf differ from lavapipe's by a few ulps; through two blocks that stays < 1e-4.
      row.embedding!.forEach((v: number, i: number) => expect(Math.abs(v - expected.embedding[i])).toBeLessThan(2e-4 + 2e-4 * Math.abs(expected.embedding[i])));
      expect(row.probabilities).toHaveLength(expected.logits.length);
      expect(statusText).toMatch(/hf-vit naming/);
    } finally {
      await app.close();
    }
  }, TEST_TIMEOUT_MS);
});
