// `vitgpu inspect`, run as users run it.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../../models/safetensors-write.js';
import { parameterShapes, presetConfig } from '../../models/vit.js';
import { vitgpu } from '../cli-runner.js';

function checkpointFile(metadata: Record<string, string>): string {
  const config = presetConfig('vit-tiny-test', { labels: 3 });
  const tensors = parameterShapes(config).map(([name, shape]) => ({
    name, dtype: 'F32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  }));
  const chunks = encodeSafetensors(tensors, metadata);
  const path = join(mkdtempSync(join(tmpdir(), 'vitgpu-inspect-')), 'model.safetensors');
  writeFileSync(path, Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))));
  return path;
}

describe('vitgpu inspect', () => {
  it("reads the head count from a vitgpu checkpoint's metadata instead of assuming it", async () => {
    // vit-tiny-test is 32 wide with 2 heads: the width/64 rule would assume 1.
    const config = presetConfig('vit-tiny-test', { labels: 3 });
    const r = await vitgpu(['inspect', checkpointFile({ format: 'vitgpu', config: JSON.stringify(config), labels: 'a,b,c' })]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/architecture: ViT patch 8, width 32, depth 2, heads 2 \(from the checkpoint\), MLP 64/);
    expect(r.stdout).not.toMatch(/assumed/);
  });

  it('says the head count is assumed where the file does not store it', async () => {
    const r = await vitgpu(['inspect', checkpointFile({})]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/heads 1 \(assumed: width \/ 64; pass --heads if the model has another count\)/);
  });
});
