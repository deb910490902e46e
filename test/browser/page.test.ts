// The page people use, in real headless Chromium, on a model trained here (with DICOM files among its
// training images): `vitgpu serve --run RUN` preloads the run's model; the page shows the run's label
// names without typing, gives the probabilities `vitgpu predict` gives for the same images, draws a
// heat map at each image's size, gives a DICOM and a PNG of the same pixels the same result, exports
// the table as CSV, and clears an old result when a new image fails. Screenshots go to
// test/artifacts/ (gitignored).
//
// Tolerance page vs `vitgpu predict`: 2e-4 absolute on probabilities. Chromium computes on its
// SwiftShader WebGPU, the CLI on Dawn + lavapipe; their exp/erf/sqrt differ by a few ulps, which the
// engine's browser test (browser.test.ts) bounds below 2e-4 on embeddings through two blocks; a
// sigmoid's slope is at most 1/4, so probabilities differ by less than the logits do.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BIN, vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const REQUIRE = process.env.VITGPU_REQUIRE_BROWSER === '1';
const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TIMEOUT = 120_000;
const PROB_TOL = 2e-4;
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const DICOM = fileURLToPath(new URL('../fixtures/dicom/', import.meta.url));

interface PageState {
  adapter: string | null;
  model: { labels: string[]; thresholds: Record<string, number> | null } | null;
  busy: boolean;
  error: string | null;
  rows: { name: string; probabilities: number[] | null; error: string | null }[];
}
const pageState = (page: Page) => page.evaluate(() => (window as unknown as { __vitgpuPage: PageState }).__vitgpuPage);

/** Adds label thresholds to a safetensors file's __metadata__ (as `train` will store them), in place. */
function addThresholds(file: string, thresholds: Record<string, number>): void {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  header.__metadata__ = { ...header.__metadata__, thresholds: JSON.stringify(thresholds), threshold_policy: 'youden-valid' };
  let text = JSON.stringify(header);
  while ((8 + Buffer.byteLength(text)) % 8) text += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  writeFileSync(file, Buffer.concat([len, Buffer.from(text), buf.subarray(8 + n)]));
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRE)('the browser page on a trained run', () => {
  let dir = '';
  let run = '';
  let server: ChildProcess | undefined;
  let url = '';
  let browser: Browser | undefined;
  let page: Page | undefined;
  const log: string[] = [];
  const images: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitgpu-page-'));
    const csv = await writeSyntheticDataset(join(dir, 'data'), { images: 60, size: 40, seed: 3 });
    // DICOM files among the training images, uncompressed and compressed (train reads them as any image).
    const dicoms = ['mono2-12bit.dcm', 'mono1-12bit.dcm', 'rescaled-signed.dcm', 'mono2-12bit-jpegls.dcm', 'mono2-12bit-j2k.dcm', 'mono2-12bit-jpeg-lossless.dcm'];
    dicoms.forEach((f, i) => {
      copyFileSync(join(DICOM, f), join(dir, 'data', 'images', f.replace('.dcm', i % 2 ? '.dicom' : '.dcm')));
      appendFileSync(csv, `images/${f.replace('.dcm', i % 2 ? '.dicom' : '.dcm')},train,${i % 2},${(i + 1) % 2},0,${i % 3 === 0 ? 1 : 0}\n`);
    });
    run = join(dir, 'run');
    const r = await vitgpu(['train', '--data', csv, '--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--epochs', '1',
      '--batch-size', '16', '--lr', '1e-3', '--seed', '1', '--workers', '1', '--out', run]);
    expect(r.code, r.stderr).toBe(0);
    addThresholds(join(run, 'best.safetensors'), { cardiomegaly: 0.5, pleural_effusion: 0.45, nodule: 0.55, pneumothorax: 0.5 });
    images.push(join(dir, 'data', 'images', 'img0001.png'), join(dir, 'data', 'images', 'img0002.png'), join(DICOM, 'mono2-12bit-jpegls.dcm'), join(DICOM, 'mono2-12bit.png'));
    server = spawn(process.execPath, [BIN, 'serve', '--run', run, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((ok, fail) => {
      let out = '';
      server!.stdout!.on('data', (d) => {
        out += d;
        const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) ok(m[1]);
      });
      server!.stderr!.on('data', (d) => log.push(String(d)));
      server!.on('exit', (code) => fail(new Error(`vitgpu serve exited (${code}): ${log.join('')}`)));
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: TIMEOUT });
    page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
    await page.route('**/*', (route) => (route.request().url().startsWith(url) ? route.continue() : route.abort('blockedbyclient')));
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 400_000);

  afterAll(async () => {
    await page?.close().catch(() => {});
    await browser?.close().catch(() => {});
    server?.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the served run\'s model once, with its label names, adapter and notice, without typing anything', async () => {
    await page!.goto(url, { waitUntil: 'load', timeout: TIMEOUT });
    await page!.waitForFunction(() => { const s = (window as unknown as { __vitgpuPage: PageState }).__vitgpuPage; return (s.model && !s.busy) || s.error; }, null, { timeout: TIMEOUT });
    const st = await pageState(page!);
    expect(st.error, log.join('\n')).toBeNull();
    expect(st.model!.labels).toEqual(['cardiomegaly', 'pleural_effusion', 'nodule', 'pneumothorax']);
    expect(await page!.textContent('#model-status')).toMatch(/cardiomegaly, pleural_effusion, nodule, pneumothorax/);
    expect(await page!.textContent('#gpu')).toMatch(/^WebGPU available: \S/);
    expect(await page!.isVisible('.notice')).toBe(true);
    expect(await page!.textContent('.notice')).toMatch(/Not for clinical use/);
  }, TIMEOUT);

  it('gives the probabilities `vitgpu predict` gives, and the same result for a DICOM and a PNG of the same pixels', async () => {
    await page!.setInputFiles('#images', images);
    await page!.waitForFunction((n) => { const s = (window as unknown as { __vitgpuPage: PageState }).__vitgpuPage; return s.rows.length === n && !s.busy; }, images.length, { timeout: TIMEOUT });
    const st = await pageState(page!);
    const cli = await vitgpu(['predict', '--run', run, ...images, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const want = cli.stdout.trim().split('\n').map((l) => JSON.parse(l) as { image: string; probabilities: Record<string, number> });
    expect(want).toHaveLength(images.length);
    st.rows.forEach((row, i) => {
      expect(row.error, row.name).toBeNull();
      const expected = st.model!.labels.map((l) => want[i].probabilities[l]);
      row.probabilities!.forEach((p, j) => expect(Math.abs(p - expected[j]), `${row.name} ${st.model!.labels[j]}: page ${p} vs predict ${expected[j]}`).toBeLessThanOrEqual(PROB_TOL));
    });
    const [dcm, png] = [st.rows[2], st.rows[3]];
    dcm.probabilities!.forEach((p, j) => expect(Math.abs(p - png.probabilities![j])).toBeLessThanOrEqual(PROB_TOL));
    // The decisions use the stored thresholds.
    expect(await page!.textContent('#findings')).toMatch(/(positive|negative) \(threshold 0\.500\)/);
    await page!.screenshot({ path: join(ARTIFACTS, 'page-results.png'), fullPage: true });
  }, TIMEOUT);

  it('draws the heat map at the image\'s size, not constant, for a PNG and a DICOM', async () => {
    for (const [row, size] of [[0, [40, 40]], [2, [48, 64]]] as const) {
      await page!.click(`#results tbody tr:nth-child(${row + 1}) button`);
      const heat = await page!.evaluate(() => {
        const c = document.getElementById('heat') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const colors = new Set<number>();
        for (let i = 0; i < d.length; i += 4) colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        const img = document.getElementById('image-canvas') as HTMLCanvasElement;
        return { width: c.width, height: c.height, colors: colors.size, image: [img.width, img.height] };
      });
      expect([heat.width, heat.height]).toEqual(size);
      expect(heat.image).toEqual(size);
      expect(heat.colors).toBeGreaterThan(10);
    }
    expect(await page!.isVisible('#window-controls')).toBe(true); // a DICOM has window/level
    await page!.fill('#opacity', '0.7');
    await page!.screenshot({ path: join(ARTIFACTS, 'page-dicom-heatmap.png'), fullPage: true });
    expect(await page!.textContent('#heat-method')).toMatch(/last block's CLS-to-patch attention/);
  }, TIMEOUT);

  it('exports the table as CSV', async () => {
    const [download] = await Promise.all([page!.waitForEvent('download'), page!.click('#csv')]);
    const text = readFileSync((await download.path())!, 'utf8').trim().split('\n');
    expect(text[0]).toBe('image,cardiomegaly probability,cardiomegaly at threshold,pleural_effusion probability,pleural_effusion at threshold,nodule probability,nodule at threshold,pneumothorax probability,pneumothorax at threshold,error');
    expect(text).toHaveLength(1 + images.length);
    expect(text[3]).toMatch(/^mono2-12bit-jpegls\.dcm,0\.\d+,(positive|negative),/);
  }, TIMEOUT);

  it('an image that cannot be read shows its error in place and clears the old result', async () => {
    const bad = join(dir, 'broken.png');
    writeFileSync(bad, 'this is not an image');
    expect(await page!.isVisible('#result')).toBe(true);
    await page!.setInputFiles('#images', bad);
    await page!.waitForFunction(() => { const s = (window as unknown as { __vitgpuPage: PageState }).__vitgpuPage; return s.rows.length === 1 && !s.busy; }, null, { timeout: TIMEOUT });
    const st = await pageState(page!);
    expect(st.rows[0].error).toMatch(/broken\.png: not a PNG, JPEG or DICOM image/);
    expect(await page!.isVisible('#result')).toBe(false);
    expect(await page!.$$eval('#findings li', (l) => l.length)).toBe(0);
    expect(await page!.textContent('#error')).toMatch(/broken\.png/);
    expect(await page!.$$eval('#results tbody tr', (r) => r.length)).toBe(1);
    await page!.screenshot({ path: join(ARTIFACTS, 'page-error.png'), fullPage: true });
  }, TIMEOUT);
});
