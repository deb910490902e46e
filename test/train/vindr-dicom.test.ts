// The VinDr-CXR preset on the dataset's original layout: the authors' master list (image_id, split, the
// 11 labels) and the release's folders train/ID.dicom and test/ID.dicom, read directly by `train`,
// `eval` and `predict` with no conversion. The DICOM files are the pydicom fixtures (uncompressed and
// compressed) under made-up ids.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMasterList } from '../../datasets/dataset.js';
import { PRESETS, presetOptions } from '../../datasets/presets.js';
import { vitgpu } from '../cli-runner.js';

const DICOM = fileURLToPath(new URL('../fixtures/dicom/', import.meta.url));
const SOURCES = ['mono2-12bit.dcm', 'mono1-12bit.dcm', 'rescaled-signed.dcm', 'mono2-12bit-jpegls.dcm', 'mono2-12bit-j2k.dcm', 'mono2-12bit-jpeg-lossless.dcm'];
const LABELS = PRESETS['vindr-cxr'].labels!;
const dir = mkdtempSync(join(tmpdir(), 'vitgpu-vindr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The original layout under dir/vindr, and the authors' master list (ids, no extension). */
function writeVindr(): string {
  const root = join(dir, 'vindr');
  mkdirSync(join(root, 'train'), { recursive: true });
  mkdirSync(join(root, 'test'), { recursive: true });
  const rows = [`image_id,split,${LABELS.map((l) => (l.includes('/') || l.includes(' ') ? `"${l}"` : l)).join(',')}`];
  for (let i = 0; i < 36; i++) {
    const split = i < 24 ? 'train' : i < 30 ? 'valid' : 'test';
    const id = `${(i * 7919).toString(16).padStart(8, '0')}e3f1a2b4c5d6`;
    copyFileSync(join(DICOM, SOURCES[i % SOURCES.length]), join(root, split === 'test' ? 'test' : 'train', `${id}.dicom`));
    // Every label has positives in each split.
    rows.push(`${id},${split},${LABELS.map((_, j) => ((i + j) % 3 === 0 ? 1 : 0)).join(',')}`);
  }
  const csv = join(dir, 'vindr_master_list.csv');
  writeFileSync(csv, `${rows.join('\n')}\n`);
  return csv;
}

describe('VinDr-CXR preset on the original DICOM layout', () => {
  const csv = writeVindr();

  it('maps image ids to train/ID.dicom and test/ID.dicom; --path-suffix keeps ID + suffix', () => {
    const list = loadMasterList(readFileSync(csv, 'utf8'), csv, presetOptions(PRESETS['vindr-cxr']));
    expect(list.pathColumn).toBe('image_id');
    const bySplit = (s: string) => list.samples.find((x) => x.split === s)!.path;
    expect(bySplit('train')).toMatch(/^train\/[0-9a-f]+\.dicom$/);
    expect(bySplit('valid')).toMatch(/^train\/[0-9a-f]+\.dicom$/);
    expect(bySplit('test')).toMatch(/^test\/[0-9a-f]+\.dicom$/);
    const converted = loadMasterList(readFileSync(csv, 'utf8'), csv, presetOptions(PRESETS['vindr-cxr'], { pathSuffix: '.png' }));
    expect(converted.samples[0].path).toMatch(/^[0-9a-f]+\.png$/);
  });

  it('train, eval and predict read the DICOM files directly', async () => {
    const run = join(dir, 'run');
    const root = join(dir, 'vindr');
    const t = await vitgpu(['train', '--data', csv, '--image-root', root, '--preset', 'vindr-cxr', '--init', 'random', '--arch', 'vit-tiny-test',
      '--image-size', '32', '--epochs', '1', '--batch-size', '12', '--lr', '1e-3', '--workers', '1', '--out', run]);
    expect(t.code, t.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect((config.run ?? config).data.dicomWindow).toBe('none');
    const e = await vitgpu(['eval', '--run', run, '--out', join(dir, 'eval'), '--resamples', '50']);
    expect(e.code, e.stderr).toBe(0);
    const predictions = readFileSync(join(dir, 'eval', 'predictions.csv'), 'utf8').trim().split('\n');
    expect(predictions).toHaveLength(1 + 6);
    expect(predictions[1]).toMatch(/^test\/[0-9a-f]+\.dicom,/);
    const image = join(root, 'test', predictions[1].split(',')[0].slice('test/'.length));
    const p = await vitgpu(['predict', '--run', run, image, '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect(Object.keys(JSON.parse(p.stdout).probabilities)).toEqual([...LABELS]);
  }, 240_000);
});
