// `vitgpu tune` as users run it, on a tiny model with one kernel family (the whole space of every
// family takes minutes on lavapipe; test/kernels/tune.test.ts checks every candidate's results).

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { getDevice } from '../helpers.js';
import { attentionCandidateId, attentionSearchSpace } from '../../kernels/attention-tune.js';
import { defaultVariants } from '../../kernels/attention-plan.js';

describe('vitgpu tune', () => {
  it('tunes a tiny model once, then finds it cached; --list and --clear', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitgpu-tune-cli-'));
    const env = { VITGPU_CACHE_DIR: dir };
    const args = ['tune', '--arch', 'vit-tiny-test', '--batch-size', '2', '--reps', '1', '--kernels', 'attention.forward'];
    let r = await vitgpu(args, { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| shape class +\| rule +\| chosen +\| speed-up \| timed \| failed \|/);
    // vit-tiny-test: 2 heads of 16 over (32/8)² + 1 = 17 tokens, batch 2: B·H 4, N 17 → 32.
    const row = r.stdout.split('\n').find((l) => l.startsWith('| attention.forward bh4 n32 d16 '));
    // Every candidate is timed: the search space with the rule's choice (the same adapter, so the same
    // subgroup size, as in the CLI's process).
    const device = await getDevice();
    const timed = new Set([attentionCandidateId(defaultVariants(device).forward), ...attentionSearchSpace(device)]).size;
    expect(row, r.stdout).toMatch(new RegExp(`\\| wg\\d+\\.r\\d\\.kb\\d\\.sg\\d+ +\\| wg\\d+\\.r\\d\\.kb\\d\\.sg\\d+ +\\| \\d+\\.\\d\\d× +\\| ${timed} +\\|`));
    expect(r.stdout).toMatch(/\| matmul m\d+ k\d+ n\d+ .*\| rule +\| rule \(not tuned\) \|/);
    expect(r.stderr).toMatch(/tuned attention.forward bh4 n32 d16: /);
    const file = join(dir, 'tune.json');
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    const [adapter] = Object.keys(stored.adapters);
    expect(adapter).toMatch(/ \| vitgpu \d+\.\d+\.\d+/);
    expect(Object.keys(stored.adapters[adapter])).toEqual(['attention.forward bh4 n32 d16']);

    r = await vitgpu(args, { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/, 0 candidates timed in .* \(all cached\)/);
    expect(r.stdout).toContain(row);

    r = await vitgpu(['tune', '--list'], { env });
    expect(r.stdout).toContain(adapter);
    expect(r.stdout).toContain('| attention.forward bh4 n32 d16');
    r = await vitgpu(['tune', '--clear'], { env });
    expect(r.stdout).toContain(`removed ${file}`);
    expect(existsSync(file)).toBe(false);
    r = await vitgpu(['tune', '--list'], { env });
    expect(r.stdout).toContain(`no tuned choices in ${file}`);
  });

  it('bad options and policies are named', { timeout: 240_000 }, async () => {
    const env = { VITGPU_CACHE_DIR: mkdtempSync(join(tmpdir(), 'vitgpu-tune-cli-')) };
    let r = await vitgpu(['tune', '--arch', 'vit-q'], { env });
    expect(r.stderr).toMatch(/--arch: unknown architecture "vit-q"/);
    r = await vitgpu(['tune', '--kernels', 'conv', '--arch', 'vit-tiny-test'], { env });
    expect(r.stderr).toMatch(/--kernels: unknown kernel family "conv"; known: matmul, attention.forward, attention.dq, attention.dkv, layernorm.forward, layernorm.dx/);
    r = await vitgpu(['tune', '--batch-size', '0'], { env });
    expect(r.stderr).toMatch(/--batch-size must be a positive integer/);
    r = await vitgpu(['devices'], { env: { ...env, VITGPU_TUNE: 'always' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/VITGPU_TUNE must be one of off, cached, full, got "always"/);
  });
});
