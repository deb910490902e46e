// Master lists: column lookup and its errors, split values, empty splits, labels without positives,
// uncertain labels three ways, view filters, presets and pos_weight, all against hand-counted tables.

import { describe, expect, it } from 'vitest';
import { loadMasterList, parseLabelValue, positiveWeights, splitSamples, type MasterListOptions } from '../../datasets/dataset.js';
import { DatasetError } from '../../datasets/errors.js';
import { getPreset, PRESET_NAMES, PRESETS, presetOptions } from '../../datasets/presets.js';

const LIST = [
  'path,split,a,b',
  'i0.png,train,1,0',
  'i1.png,train,0,1',
  'i2.png,train,-1,1.0',
  'i3.png,val,1,',
  'i4.png,test,0,nan',
].join('\n');

const OPTS: MasterListOptions = { pathColumn: 'path', labels: ['a', 'b'] };

function errorOf(f: () => unknown): DatasetError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return e as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

describe('label values', () => {
  it('1 is positive, -1 uncertain, anything else negative', () => {
    for (const v of ['1', '1.0', '1.00', ' 1 ', '+1']) expect(parseLabelValue(v)).toBe('positive');
    for (const v of ['-1', '-1.0', '-1.00']) expect(parseLabelValue(v)).toBe('uncertain');
    for (const v of ['0', '0.0', '', 'nan', 'NaN', '2', '10', '0.5', 'True', 'yes']) expect(parseLabelValue(v)).toBe('negative');
  });

  it('a value map is checked first', () => {
    expect(parseLabelValue('yes', { yes: 'positive' })).toBe('positive');
    expect(parseLabelValue('1', { '1': 'negative' })).toBe('negative');
  });
});

describe('loadMasterList', () => {
  it('reads paths, splits (val → valid), labels and CSV lines', () => {
    const m = loadMasterList(LIST, 'm.csv', OPTS);
    expect(m.labelNames).toEqual(['a', 'b']);
    expect(m.samples.map((s) => [s.path, s.split, s.row])).toEqual([
      ['i0.png', 'train', 2],
      ['i1.png', 'train', 3],
      ['i2.png', 'train', 4],
      ['i3.png', 'valid', 5],
      ['i4.png', 'test', 6],
    ]);
    expect(m.samples.map((s) => Array.from(s.labels))).toEqual([
      [1, 0],
      [0, 1],
      [0, 1],
      [1, 0],
      [0, 0],
    ]);
    expect(splitSamples(m.samples, 'train').map((s) => s.path)).toEqual(['i0.png', 'i1.png', 'i2.png']);
  });

  it('treats uncertain labels as negative, positive or ignored', () => {
    const third = (u: 'negative' | 'positive' | 'ignore') => loadMasterList(LIST, 'm.csv', { ...OPTS, uncertain: u }).samples[2].labels[0];
    expect(third('negative')).toBe(0);
    expect(third('positive')).toBe(1);
    expect(third('ignore')).toBeNaN();
  });

  it('names a missing column and lists the columns the file has', () => {
    const e = errorOf(() => loadMasterList(LIST, 'm.csv', { ...OPTS, labels: ['a', 'hernia'] }));
    expect(e.message).toBe('m.csv: no label column "hernia"; the file\'s columns are "path", "split", "a", "b"');
    expect(e.column).toBe('hernia');
    expect(errorOf(() => loadMasterList(LIST, 'm.csv', { ...OPTS, pathColumn: ['Path', 'jpg_rel_path'] })).message).toMatch(
      /^m\.csv: no image-path column \(looked for "Path", "jpg_rel_path"\); the file's columns are "path", "split", "a", "b"$/,
    );
    expect(errorOf(() => loadMasterList(LIST, 'm.csv', { ...OPTS, splitColumn: 'fold' })).message).toMatch(/no split column "fold"/);
  });

  it('names the line of an unknown split value', () => {
    const bad = LIST.replace('i1.png,train', 'i1.png,tran');
    const e = errorOf(() => loadMasterList(bad, 'm.csv', OPTS));
    expect(e.message).toMatch(/^m\.csv line 3: unknown split "tran" in column "split" \(allowed: train, valid \(or val, validation\), test\)$/);
    expect(e.line).toBe(3);
  });

  it('reports an empty split', () => {
    const noValid = LIST.replace('i3.png,val', 'i3.png,train');
    expect(errorOf(() => loadMasterList(noValid, 'm.csv', OPTS)).message).toBe('m.csv: split "valid" has no rows');
    // Not an error when that split is not needed (e.g. evaluation on test only).
    expect(loadMasterList(noValid, 'm.csv', { ...OPTS, requireSplits: ['test'] }).samples).toHaveLength(5);
  });

  it('reports labels without a positive in training', () => {
    const list = 'path,split,a,b,c\nx,train,1,0,0\ny,valid,0,1,1\nz,test,0,1,1\n';
    expect(errorOf(() => loadMasterList(list, 'm.csv', { pathColumn: 'path', labels: ['a', 'b', 'c'] })).message).toBe(
      'm.csv: labels "b", "c" have no positives in the training split (1 rows); drop them with --labels',
    );
    // Uncertain-as-positive can supply the positive.
    const unc = 'path,split,a\nx,train,-1\ny,valid,0\nz,test,0\n';
    expect(() => loadMasterList(unc, 'm.csv', { pathColumn: 'path', labels: ['a'] })).toThrow(/label "a" has no positives/);
    expect(loadMasterList(unc, 'm.csv', { pathColumn: 'path', labels: ['a'], uncertain: 'positive' }).samples[0].labels[0]).toBe(1);
  });

  it('names the line of an empty path, and joins folder column and suffix', () => {
    expect(errorOf(() => loadMasterList(LIST.replace('i1.png', ''), 'm.csv', OPTS)).message).toBe('m.csv line 3: empty image path in column "path"');
    const list = 'ImageID,ImageDir,split,a\nx,7,train,1\ny,,valid,0\nz,3/,test,0\n';
    const m = loadMasterList(list, 'p.csv', { pathColumn: 'ImageID', pathDirColumn: 'ImageDir', pathSuffix: '.png', labels: ['a'] });
    expect(m.samples.map((s) => s.path)).toEqual(['7/x.png', 'y.png', '3/z.png']);
  });

  it('takes labels from the header when none are given', () => {
    const m = loadMasterList('image,split,cat,dog\na,train,1,1\nb,valid,0,0\nc,test,0,0\n', 'd.csv', { pathColumn: 'image', labels: null });
    expect(m.labelNames).toEqual(['cat', 'dog']);
  });

  it('matches label columns loosely, but not ambiguously', () => {
    const list = 'Path,split,Pleural Effusion,No Finding\nx,train,1,1\ny,valid,0,0\nz,test,0,0\n';
    const m = loadMasterList(list, 'c.csv', { pathColumn: 'Path', labels: ['pleural_effusion', 'no_finding'] });
    expect(m.labelColumns).toEqual(['Pleural Effusion', 'No Finding']);
    const amb = 'Path,split,a b,a_b\nx,train,1,1\ny,valid,0,0\nz,test,0,0\n';
    expect(() => loadMasterList(amb, 'c.csv', { pathColumn: 'Path', labels: ['A-B'] })).toThrow(/matches several columns \("a b", "a_b"\)/);
  });

  it('applies a view filter before the split checks', () => {
    const list = [
      'Path,Frontal/Lateral,split,x',
      'f1,Frontal,train,1',
      'l1,Lateral,train,1',
      'f2,Frontal,valid,0',
      'l2,Lateral,test,0',
      'f3,Frontal,test,1',
    ].join('\n');
    const m = loadMasterList(list, 'c.csv', { pathColumn: 'Path', labels: ['x'], viewColumn: ['view', 'Frontal/Lateral'], views: ['Frontal'] });
    expect(m.samples.map((s) => s.path)).toEqual(['f1', 'f2', 'f3']);
    expect(m.droppedByView).toBe(2);
    expect(m.viewColumn).toBe('Frontal/Lateral');
    const onlyLateralTest = list.replace('f3,Frontal,test', 'f3,Lateral,test');
    expect(() => loadMasterList(onlyLateralTest, 'c.csv', { pathColumn: 'Path', labels: ['x'], viewColumn: 'Frontal/Lateral', views: ['Frontal'] })).toThrow(
      'c.csv: split "test" has no rows after the view filter (Frontal/Lateral in Frontal; 3 rows dropped)',
    );
    // A row outside the filter may carry any split value: it is never used.
    expect(loadMasterList(list.replace('l2,Lateral,test', 'l2,Lateral,???'), 'c.csv', { pathColumn: 'Path', labels: ['x'], viewColumn: 'Frontal/Lateral', views: ['Frontal'] }).samples).toHaveLength(3);
  });
});

describe('positiveWeights', () => {
  it('is (N − P) / P on the training split, leaving ignored labels out', () => {
    const list = ['p,split,a,b', 'x1,train,1,1', 'x2,train,0,-1', 'x3,train,0,0', 'x4,train,-1,0', 'x5,valid,1,1', 'x6,test,1,1'].join('\n');
    const neg = loadMasterList(list, 'm.csv', { pathColumn: 'p', labels: ['a', 'b'] });
    // a: P = 1 of N = 4 → 3; b: P = 1 of 4 → 3.
    expect(Array.from(positiveWeights(neg.samples, neg.labelNames))).toEqual([3, 3]);
    const ign = loadMasterList(list, 'm.csv', { pathColumn: 'p', labels: ['a', 'b'], uncertain: 'ignore' });
    // a: N = 3 (x4 ignored) → 2; b: N = 3 (x2 ignored) → 2.
    expect(Array.from(positiveWeights(ign.samples, ign.labelNames))).toEqual([2, 2]);
    const pos = loadMasterList(list, 'm.csv', { pathColumn: 'p', labels: ['a', 'b'], uncertain: 'positive' });
    expect(Array.from(positiveWeights(pos.samples, pos.labelNames))).toEqual([1, 1]);
  });

  it('names a label without positives', () => {
    const samples = [{ path: 'x', split: 'train' as const, labels: new Float32Array([0]), row: 2 }];
    expect(() => positiveWeights(samples, ['hernia'])).toThrow(/label "hernia" has no positives/);
  });
});

describe('presets', () => {
  it('carry the paper label sets and view filters', () => {
    expect(PRESETS['vindr-cxr'].labels).toHaveLength(11);
    expect(PRESETS['chestx-ray14'].labels).toHaveLength(14);
    expect(PRESETS.chexpert.labels).toHaveLength(10);
    expect(PRESETS['mimic-cxr'].labels).toHaveLength(7);
    expect(PRESETS.padchest.labels).toHaveLength(17);
    for (const l of ['scoliosis', 'congestion', 'aortic_elongation', 'kyphosis', 'COPD_signs', 'nodule_mass', 'infiltrates']) expect(PRESETS.padchest.labels).toContain(l);
    expect(PRESETS.chexpert.views).toEqual(['Frontal']);
    expect(PRESETS['mimic-cxr'].views).toEqual(['PA', 'AP']);
    expect(PRESETS.padchest.views).toEqual(['PA', 'AP', 'AP_horizontal']);
    expect(PRESETS['vindr-cxr'].views).toBeUndefined();
    for (const name of PRESET_NAMES) expect(new Set(PRESETS[name].labels ?? []).size).toBe((PRESETS[name].labels ?? []).length);
    expect(() => getPreset('nih')).toThrow(/unknown dataset preset "nih" \(known: generic, vindr-cxr, chestx-ray14, chexpert, mimic-cxr, padchest, demo\)/);
  });

  it('read an official-style CheXpert list and take overrides', () => {
    const labels = PRESETS.chexpert.labels!;
    const header = ['Path', 'Frontal/Lateral', 'split', ...labels.map((l) => l.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase()))];
    const row = (p: string, v: string, s: string) => [p, v, s, ...labels.map(() => '1')].join(',');
    const list = [header.join(','), row('a.jpg', 'Frontal', 'train'), row('b.jpg', 'Lateral', 'train'), row('c.jpg', 'Frontal', 'valid'), row('d.jpg', 'Frontal', 'test')].join('\n');
    const m = loadMasterList(list, 'chexpert.csv', presetOptions(PRESETS.chexpert));
    expect(m.pathColumn).toBe('Path');
    expect(m.samples.map((s) => s.path)).toEqual(['a.jpg', 'c.jpg', 'd.jpg']);
    // An undefined override keeps the preset's value; null turns the view filter off.
    const all = loadMasterList(list, 'chexpert.csv', presetOptions(PRESETS.chexpert, { pathColumn: undefined, viewColumn: null }));
    expect(all.samples).toHaveLength(4);
  });

  it('demo preset takes labels from the header', () => {
    const m = loadMasterList('image,split,round,square\na,train,1,1\nb,valid,0,1\nc,test,1,0\n', 'demo.csv', presetOptions(getPreset('demo')));
    expect(m.labelNames).toEqual(['round', 'square']);
  });
});

describe('the generic preset (the default)', () => {
  it('finds a common path column and takes every other column but split as a label', () => {
    const m = loadMasterList('path,split,effusion,edema\na.png,train,1,1\nb.png,valid,0,1\nc.png,test,1,1\n', 'list.csv', presetOptions(getPreset('generic')));
    expect(m.pathColumn).toBe('path');
    expect(m.labelNames).toEqual(['effusion', 'edema']);
    expect(m.samples.map((s) => s.path)).toEqual(['a.png', 'b.png', 'c.png']);
  });

  it('appends a path suffix to id columns', () => {
    const m = loadMasterList('image_id,split,x\n001,train,1\n002,valid,0\n003,test,1\n', 'ids.csv',
      presetOptions(getPreset('generic'), { pathColumn: 'image_id', pathSuffix: '.png' }));
    expect(m.samples.map((s) => s.path)).toEqual(['001.png', '002.png', '003.png']);
  });
});

