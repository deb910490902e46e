// Master-list problems reported by the command line before any image is read.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'vitgpu-data-checks-'));
const csv = join(dir, 'list.csv');
// No image exists: the command stops at the image pre-flight, after the list has been read.
writeFileSync(csv, 'image,split,a\nx.png,train,1\ny.png,train,yes\nz.png,valid,0\nw.png,test,1\n');

describe('label cells outside 1, 0, -1 and blank on the command line', () => {
  it('train warns with the count and the first line, then goes on', async () => {
    const r = await vitgpu(['train', '--data', csv, '--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--out', join(dir, 'run-warn')]);
    expect(r.stderr).toContain('warning: ' + csv + ': 1 label cell is not 1, 0, -1 or blank (first: line 3, column "a": "yes"; column a)');
    expect(r.stderr).toMatch(/x\.png/); // it went on to the image check
  }, 120_000);

  it('--strict-labels refuses the list', async () => {
    const r = await vitgpu(['train', '--data', csv, '--strict-labels', '--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--out', join(dir, 'run-strict')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${csv} line 3: label column "a" holds "yes", which is not 1, 0, -1 or blank (1 such cell in all)`);
  }, 120_000);
});
