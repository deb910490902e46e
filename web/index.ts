// The browser page: a run's model loaded once (preloaded by `vitgpu serve`, or a checkpoint the user
// picks), radiographs dropped or chosen (PNG, JPEG, DICOM; one or many), and for each the per-finding
// probabilities with the run's decisions, a heat map of where the model looked, and a results table
// with CSV export. Everything runs on this browser's WebGPU with the engine the command line uses.

import { createDevice, type Device } from '../engine/index.js';
import { setDicomCodecBase } from '../datasets/dicom-codecs.js';
import { ATTENTION_MAP_METHOD } from '../models/attention-map.js';
import { analyzeImage, type Analysis } from './page-image.js';
import { blobSource, bytesSource, fetchWithProgress, loadPageModel, type ManualSettings, type PageModel } from './page-model.js';
import { drawHeat, drawImage, renderFindings, renderTable, resultsCsv, type Row } from './page-view.js';
import type { Normalize } from '../datasets/image.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** What tests (and curious users, in the console) can read: the page's state. */
interface PageState {
  adapter: string | null;
  model: { source: string; labels: string[]; arch: string; imageSize: number; thresholds: Record<string, number | string> | null } | null;
  busy: boolean;
  error: string | null;
  rows: { name: string; probabilities: number[] | null; embedding: number[] | null; error: string | null }[];
}
const state: PageState = { adapter: null, model: null, busy: false, error: null, rows: [] };
(window as unknown as { __vitgpuPage: PageState }).__vitgpuPage = state;

setDicomCodecBase(new URL('./', import.meta.url));
let device: Promise<Device> | null = null;
let current: PageModel | null = null;
let rows: Row[] = [];
let selected = 0;

function setError(message: string | null): void {
  state.error = message;
  $('error').textContent = message ?? '';
}

function getDevice(): Promise<Device> {
  device ??= createDevice(navigator.gpu);
  return device;
}

async function showAdapter(): Promise<void> {
  const line = $('gpu');
  if (!navigator.gpu) {
    line.textContent = 'WebGPU is not available in this browser: use a recent Chrome or Edge (or Chromium with --enable-unsafe-webgpu).';
    line.classList.add('bad');
    return;
  }
  try {
    const dev = await getDevice();
    state.adapter = dev.name;
    line.textContent = `WebGPU available: ${dev.name}`;
  } catch (err) {
    line.textContent = `WebGPU is present but no device could be created: ${(err as Error).message}`;
    line.classList.add('bad');
  }
}

function manualSettings(): ManualSettings {
  const size = Number($<HTMLInputElement>('size').value);
  const heads = Number($<HTMLInputElement>('heads').value);
  return { imageSize: size > 0 ? size : undefined, heads: heads > 0 ? heads : undefined, normalize: $<HTMLSelectElement>('normalize').value as Normalize };
}

function clearResults(): void {
  rows = [];
  state.rows = [];
  $('result').classList.add('hidden');
  $('table-panel').classList.add('hidden');
  $('findings').replaceChildren();
  $('results').replaceChildren();
}

/** Loads a model (replacing the current one) from a URL (with download progress) or a file. */
async function loadModel(from: { url: string; name: string } | File): Promise<void> {
  const status = $('model-status');
  const progress = $<HTMLProgressElement>('model-progress');
  setError(null);
  clearResults();
  state.busy = true;
  try {
    const dev = await getDevice();
    let src;
    if (from instanceof File) {
      status.textContent = `Loading ${from.name} (${(from.size / 2 ** 20).toFixed(1)} MB)…`;
      src = blobSource(from, from.name);
    } else {
      progress.classList.remove('hidden');
      const bytes = await fetchWithProgress(from.url, (loaded, total) => {
        progress.max = total ?? loaded;
        progress.value = loaded;
        status.textContent = `Downloading ${from.name}: ${(loaded / 2 ** 20).toFixed(1)}${total ? ` of ${(total / 2 ** 20).toFixed(1)}` : ''} MB`;
      });
      src = bytesSource(bytes, from.name);
    }
    const next = await loadPageModel(dev, src, manualSettings());
    current?.model.dispose();
    current = next;
    state.model = { source: next.source, labels: next.labels, arch: next.arch, imageSize: next.imageSize, thresholds: next.thresholds };
    status.textContent = `${next.source}: ${next.labels.length} findings (${next.labels.join(', ')}); ${next.summary}.`;
    $('threshold-note').textContent = next.thresholds
      ? `Positive / negative at the thresholds the run chose on its validation split (${next.thresholdPolicy ?? 'policy not stored'}).`
      : 'This checkpoint stores no decision thresholds: probabilities only.';
  } catch (err) {
    current?.model.dispose();
    current = null;
    state.model = null;
    status.textContent = 'No model loaded.';
    setError(`Cannot load the checkpoint: ${(err as Error).message ?? err}`);
  } finally {
    progress.classList.add('hidden');
    state.busy = false;
  }
}

function showSelected(): void {
  const row = rows[selected];
  if (!current || !row) return;
  renderTable($<HTMLTableElement>('results'), current, rows, (i) => {
    selected = i;
    showSelected();
  }, selected);
  $('table-panel').classList.toggle('hidden', rows.length === 0);
  $('result-name').textContent = row.name;
  if (!row.analysis) {
    // An image that failed: its error in place of a result, never a previous image's result.
    $('result').classList.add('hidden');
    $('findings').replaceChildren();
    setError(row.error);
    return;
  }
  setError(null);
  const a: Analysis = row.analysis;
  $('result').classList.remove('hidden');
  drawImage($<HTMLCanvasElement>('image-canvas'), a.display);
  drawHeat($<HTMLCanvasElement>('heat'), a.heat, a.display.width, a.display.height);
  $<HTMLCanvasElement>('heat').style.opacity = $<HTMLInputElement>('opacity').value;
  $('image-kind').textContent = `${a.display.kind}, ${a.display.width} × ${a.display.height}`;
  const windowed = a.display.values !== null;
  $('window-controls').classList.toggle('hidden', !windowed);
  if (windowed) {
    const level = $<HTMLInputElement>('level');
    const win = $<HTMLInputElement>('window');
    level.min = String(a.display.min);
    level.max = String(a.display.max);
    level.value = String(a.display.center);
    win.min = '1';
    win.max = String(Math.max(2, 2 * (a.display.max - a.display.min)));
    win.value = String(a.display.windowWidth);
  }
  renderFindings($('findings'), current, a);
}

function redrawWindow(): void {
  const a = rows[selected]?.analysis;
  if (!a || !a.display.values) return;
  drawImage($<HTMLCanvasElement>('image-canvas'), a.display, Number($<HTMLInputElement>('level').value), Number($<HTMLInputElement>('window').value));
}

/** Analyzes files one by one; results of an earlier selection are cleared first. */
async function analyzeFiles(files: File[]): Promise<void> {
  if (files.length === 0) return;
  clearResults();
  setError(null);
  if (!current) {
    setError('Load a model first (choose a checkpoint above).');
    return;
  }
  state.busy = true;
  try {
    for (const [i, file] of files.entries()) {
      $('image-status').textContent = `Analyzing ${file.name} (${i + 1} of ${files.length})…`;
      let row: Row;
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        row = { name: file.name, analysis: await analyzeImage(current, bytes, file.name), error: null };
      } catch (err) {
        row = { name: file.name, analysis: null, error: (err as Error).message ?? String(err) };
      }
      rows.push(row);
      state.rows.push({ name: row.name, probabilities: row.analysis?.probabilities ?? null, embedding: row.analysis?.embedding ?? null, error: row.error });
      if (i === 0) {
        selected = 0;
        showSelected();
      } else showSelected();
    }
    const failed = rows.filter((r) => r.error).length;
    $('image-status').textContent = `${rows.length} image${rows.length > 1 ? 's' : ''} analyzed${failed ? ` (${failed} could not be read)` : ''}.`;
  } finally {
    state.busy = false;
  }
}

function wire(): void {
  $('heat-method').textContent = `Heat map: the ${ATTENTION_MAP_METHOD} (computed with the same engine), stretched to its own range; not attention rollout.`;
  $<HTMLInputElement>('weights').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void loadModel(f);
  });
  $<HTMLInputElement>('images').addEventListener('change', (e) => void analyzeFiles(Array.from((e.target as HTMLInputElement).files ?? [])));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void analyzeFiles(Array.from(e.dataTransfer?.files ?? []));
  });
  $<HTMLInputElement>('opacity').addEventListener('input', (e) => {
    $<HTMLCanvasElement>('heat').style.opacity = (e.target as HTMLInputElement).value;
  });
  $('level').addEventListener('input', redrawWindow);
  $('window').addEventListener('input', redrawWindow);
  $('window-reset').addEventListener('click', showSelected);
  $('csv').addEventListener('click', () => {
    if (!current) return;
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([resultsCsv(current, rows)], { type: 'text/csv' }));
    a.download = 'vitgpu-results.csv';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  });
}

/** `vitgpu serve --run RUN` offers the run's checkpoint at model/info.json; a plain static server does not. */
async function preload(): Promise<void> {
  let info: { url: string; name: string } | null = null;
  try {
    const res = await fetch('model/info.json', { cache: 'no-store' });
    if (res.ok) info = (await res.json()) as { url: string; name: string };
  } catch {
    // no server-side model
  }
  if (info) await loadModel({ url: new URL(info.url, location.href).href, name: info.name });
}

wire();
void showAdapter().then(() => (navigator.gpu ? preload() : undefined));
