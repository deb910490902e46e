// What a command prints on stderr: its own messages, not Dawn's adapter-discovery chatter.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BIN, vitgpu } from '../cli-runner.js';

/**
 * Runs vitgpu with its stderr on a shell pipe, as in `vitgpu ... 2>&1 | tee log` or on a terminal
 * (Node's own child-process pipes are sockets, which cannot be reopened; there the lines remain).
 */
async function stderrThroughPipe(args: string[]): Promise<string> {
  const script = '"$0" "$@" 2>&1 >/dev/null | cat';
  const { stdout } = await promisify(execFile)('sh', ['-c', script, process.execPath, BIN, ...args]).catch((e) => e as { stdout: string });
  return stdout;
}

describe('stderr', () => {
  it("carries no Dawn 'maxDynamic…BuffersPerPipelineLayout artificially reduced' warnings, and still carries vitgpu's own messages", async () => {
    expect(await stderrThroughPipe(['devices'])).toBe('');
    // After adapter discovery, stderr is back: an error printed later still arrives.
    const bad = await stderrThroughPipe(['demo', '--adapter', 'no-such-gpu']);
    expect(bad).not.toMatch(/artificially reduced/);
    expect(bad).toMatch(/No WebGPU adapter matches adapter "no-such-gpu"/);
  });

  it('VITGPU_DAWN_LOG=1 leaves Dawn its say', async () => {
    const r = await vitgpu(['devices'], { env: { VITGPU_DAWN_LOG: '1' } });
    expect(r.code, r.stderr).toBe(0);
    // Only drivers that report more dynamic buffers than Dawn supports make Dawn warn (lavapipe does).
    if (/llvmpipe/.test(r.stdout)) expect(r.stderr).toMatch(/artificially reduced/);
  });
});
