// The command line, run as users run it (bin/vitgpu.js on the build that `npm test` makes first).

import { describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';



describe('vitgpu command', () => {
  it('--help lists the commands', async () => {
    const r = await vitgpu(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: vitgpu/);
    expect(r.stdout).toMatch(/devices/);
  });

  it('devices reports the adapter, its features and limits, and exits', async () => {
    const r = await vitgpu(['devices', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.adapters.length).toBeGreaterThan(0);
    expect(report.info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(report.info.features)).toBe(true);
    // Subgroup sizes exactly when the adapter has the 'subgroups' feature (lavapipe 8, SwiftShader 4).
    expect(report.subgroups !== null).toBe(report.info.features.includes('subgroups'));
    if (report.subgroups) expect(report.subgroups.maxSize).toBeGreaterThanOrEqual(report.subgroups.minSize);
  });

  it('demo (npm start) runs the whole comparison end to end and exits (a short version)', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const out = join(mkdtempSync(join(tmpdir(), 'vitgpu-demo-')), 'demo');
    const r = await vitgpu(['demo', '--out', out, '--images', '80', '--epochs', '1', '--resamples', '50', '--seed', '1']);
    expect(r.code, r.stderr).toBe(0);
    // Each stage is named after the run folder it writes.
    for (const stage of ['pretrain', 'random', 'pretrained']) {
      expect(r.stdout).toContain(`-> ${join(out, 'runs', stage)}\n`);
      expect(r.stderr).toMatch(new RegExp(`^\\[${stage}\\] `, 'm'));
    }
    expect(r.stderr).not.toMatch(/\[from-pretrained\]/);
    expect(r.stdout).toMatch(/\| Label \| pretrained AUC \(%\) \| random AUC \(%\) \| p pretrained > random \(BH\) \|/);
    expect(r.stdout).toMatch(/roc\.png/);
  }, 180_000);

  it('with no Vulkan driver, the error says what to install', async () => {
    const r = await vitgpu(['devices'], { env: { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/No WebGPU adapter found/);
    expect(r.stderr).toMatch(/mesa-vulkan-drivers/);
    expect(r.stderr).toMatch(/bookworm-backports/);
  });

  it('an unknown adapter name lists the available ones', async () => {
    const r = await vitgpu(['demo', '--adapter', 'no-such-gpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/No WebGPU adapter matches adapter "no-such-gpu"/);
    expect(r.stderr).toMatch(/Available adapters/);
  });
});

describe('browser safety', () => {
  it('library folders import nothing from Node outside the Node entry and *-node.ts files', async () => {
    const { existsSync, readdirSync, readFileSync, statSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = new URL('../../', import.meta.url).pathname;
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.endsWith(join('engine', 'node.ts'))) {
          const src = readFileSync(p, 'utf8');
          // Dawn only in the Node entry; other Node modules also in files named *-node.ts.
          if (/from\s+['"]webgpu['"]/.test(src)) offenders.push(p.slice(root.length));
          else if (!p.endsWith('-node.ts') && (/from\s+['"]node:/.test(src) || /import\(\s*['"]node:/.test(src))) offenders.push(p.slice(root.length));
        }
      }
    };
    for (const dir of ['engine', 'kernels', 'models', 'datasets', 'eval', 'train', 'runs', 'web']) if (existsSync(join(root, dir))) walk(join(root, dir));
    expect(offenders).toEqual([]);
  });
});
