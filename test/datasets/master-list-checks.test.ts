// What a master list must not slip past: label cells outside {1, 0, -1, blank}, the split or path
// column named as a label, and (for the generic preset) a path column found by what it holds.

import { describe, expect, it } from 'vitest';
import { loadMasterList, type MasterListOptions } from '../../datasets/dataset.js';
import { DatasetError } from '../../datasets/errors.js';
import { getPreset, presetOptions } from '../../datasets/presets.js';

const OPTS: MasterListOptions = { pathColumn: 'path', labels: ['a', 'b'] };

const ODD = [
  'path,split,a,b',
  'i0.png,train,1,0',
  'i1.png,train,0,1.0',
  'i2.png,train,-1,',
  'i3.png,valid,yes,nan', // line 5: "yes" in column a
  'i4.png,test,0,abc', // line 6: "abc" in column b
  'i5.png,test,abc,0', // line 7
].join('\n');

function errorOf(f: () => unknown): DatasetError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return e as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

describe('label cells outside 1, 0, -1 and blank', () => {
  it('a clean list has no warnings (1.0, -1, blank, nan and 0 are all known)', () => {
    const m = loadMasterList('path,split,a\nx.png,train,1.0\ny.png,valid,-1\nz.png,test,\nw.png,test,nan\nv.png,test,0\n', 'ok.csv', { pathColumn: 'path' });
    expect(m.warnings).toEqual([]);
  });

  it('count as negative (the paper\'s rule) with one warning: the count, the first line and column', () => {
    const m = loadMasterList(ODD, 'odd.csv', OPTS);
    expect(m.samples.map((s) => Array.from(s.labels))).toEqual([[1, 0], [0, 1], [0, 0], [0, 0], [0, 0], [0, 0]]);
    expect(m.warnings).toEqual([
      'odd.csv: 3 label cells are not 1, 0, -1 or blank (first: line 5, column "a": "yes"; columns a, b); ' +
        'they count as negative, but such values usually mean a wrong column: check --labels, or pass --strict-labels to refuse them',
    ]);
  });

  it('are refused under strictLabels, naming the first line and column', () => {
    const e = errorOf(() => loadMasterList(ODD, 'odd.csv', { ...OPTS, strictLabels: true }));
    expect(e.message).toBe('odd.csv line 5: label column "a" holds "yes", which is not 1, 0, -1 or blank (3 such cells in all); fix the list or choose other --labels');
    expect([e.line, e.column]).toEqual([5, 'a']);
  });

  it('values given a meaning by a value map are not odd', () => {
    const m = loadMasterList('path,split,a\nx.png,train,yes\ny.png,valid,no\nz.png,test,1\n', 'map.csv',
      { pathColumn: 'path', labelValueMap: { yes: 'positive', no: 'negative' }, strictLabels: true });
    expect(m.warnings).toEqual([]);
  });
});

describe('columns that are not labels', () => {
  const LIST = 'image,split,a\nx.png,train,1\ny.png,valid,0\nz.png,test,1\n';
  it('--labels split says the split column is not a label', () => {
    const e = errorOf(() => loadMasterList(LIST, 'l.csv', { pathColumn: 'image', labels: ['a', 'split'] }));
    expect(e.message).toBe('l.csv: "split" is the split column, not a label; leave it out of --labels');
  });

  it('--labels image says the image-path column is not a label', () => {
    const e = errorOf(() => loadMasterList(LIST, 'l.csv', { pathColumn: 'image', labels: ['image'] }));
    expect(e.message).toBe('l.csv: "image" is the image-path column, not a label; leave it out of --labels');
  });
});

describe('the generic preset finds the path column by its values', () => {
  it('a column whose values end in an image extension, whatever its name', () => {
    for (const name of ['jpg_rel_path', 'img_rel_path', 'png_location']) {
      const text = `id,${name},split,effusion\n1,p/a.jpg,train,1\n2,p/b.JPEG,valid,0\n3,p/c.png,test,1\n`;
      const m = loadMasterList(text, 'list.csv', presetOptions(getPreset('generic')));
      expect(m.pathColumn).toBe(name);
      expect(m.samples.map((s) => s.path)).toEqual(['p/a.jpg', 'p/b.JPEG', 'p/c.png']);
      expect(m.labelNames).toEqual(['id', 'effusion']);
    }
  });

  it('two such columns are ambiguous: the error names both and asks for --path-column', () => {
    const text = 'small,large,split,x\na.png,A.png,train,1\nb.png,B.png,valid,0\nc.png,C.png,test,1\n';
    const e = errorOf(() => loadMasterList(text, 'two.csv', presetOptions(getPreset('generic'))));
    expect(e.message).toMatch(/^two\.csv: no image-path column \(looked for .*\); the columns "small" and "large" both hold image file names: choose one with --path-column$/);
  });

  it('a path column named on the command line is not second-guessed', () => {
    const text = 'id,jpg_rel_path,split,x\n1,a.jpg,train,1\n2,b.jpg,valid,0\n3,c.jpg,test,1\n';
    const e = errorOf(() => loadMasterList(text, 'l.csv', presetOptions(getPreset('generic'), { pathColumn: 'file_name' })));
    expect(e.message).toMatch(/no image-path column "file_name"/);
  });
});
