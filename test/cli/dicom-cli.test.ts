// DICOM on the command line: `embed` gives a DICOM the embedding of a 16-bit PNG of the same pixels,
// --dicom-window changes it, and a refused file is one line naming the file and the transfer syntax UID.

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';

const VIT = fileURLToPath(new URL('../fixtures/vit/hf-vit-f32.safetensors', import.meta.url));
const DICOM = fileURLToPath(new URL('../fixtures/dicom/', import.meta.url));
const embed = async (image: string, ...extra: string[]) => {
  const r = await vitgpu(['embed', '--weights', VIT, '--image', image, '--image-size', '32', '--heads', '2', '--json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).embedding as number[];
};

describe('DICOM on the command line', () => {
  it('embed: a DICOM and a 16-bit PNG of the same pixels give the same embedding; --dicom-window changes it', async () => {
    const [dcm, png, auto] = await Promise.all([embed(`${DICOM}mono2-12bit-j2k.dcm`), embed(`${DICOM}mono2-12bit.png`), embed(`${DICOM}mono2-12bit.dcm`, '--dicom-window', 'auto')]);
    dcm.forEach((v, i) => expect(Math.abs(v - png[i])).toBeLessThan(1e-4));
    expect(Math.max(...auto.map((v, i) => Math.abs(v - png[i])))).toBeGreaterThan(1e-3);
    const bad = await vitgpu(['embed', '--weights', VIT, '--image', `${DICOM}mono2-12bit.dcm`, '--dicom-window', 'wide', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--dicom-window must be auto, none, or CENTER,WIDTH/);
  }, 120_000);

  it('an unsupported transfer syntax is one line with the file and the UID', async () => {
    const r = await vitgpu(['embed', '--weights', VIT, '--image', `${DICOM}unsupported-rle.dcm`, '--image-size', '32', '--heads', '2']);
    expect(r.code).toBe(1);
    // (Dawn may print its own warnings on stderr; vitgpu's message is one line.)
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('vitgpu:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/^vitgpu: \S*unsupported-rle\.dcm: unsupported DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.5 \(RLE Lossless\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);
});
