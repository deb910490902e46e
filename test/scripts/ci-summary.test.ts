// scripts/ci-summary.mjs, the last line of .ci/run, on reports shaped as vitest 4 writes them. The
// crashed-file report is the one vitest wrote when a test file's worker aborted (a Dawn instance
// collected under a live device, engine/node.ts): its test "pending", the run a "success", exit 1.

import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = new URL('../../scripts/ci-summary.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'vitgpu-ci-summary-'));

function report(name: string, files: { status: string; tests: string[] }[], success = true): string {
  const tests = files.flatMap((f) => f.tests);
  const path = join(dir, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      numTotalTests: tests.length,
      numPassedTests: tests.filter((t) => t === 'passed').length,
      numFailedTests: tests.filter((t) => t === 'failed').length,
      numPendingTests: tests.filter((t) => t === 'pending').length,
      success,
      testResults: files.map((f, i) => ({ name: `/x/test/f${i}.test.ts`, status: f.status, message: '', assertionResults: f.tests.map((status) => ({ status })) })),
    }),
  );
  return path;
}

async function summary(...args: string[]): Promise<string[]> {
  const { stdout } = await run(process.execPath, [SCRIPT, ...args]);
  return stdout.trim().split('\n');
}

describe('scripts/ci-summary.mjs', () => {
  const clean = report('clean', [{ status: 'passed', tests: ['passed', 'passed', 'pending'] }]);
  const failing = report('failing', [{ status: 'failed', tests: ['passed', 'failed'] }, { status: 'failed', tests: [] }], false);
  const crashed = report('crashed', [{ status: 'passed', tests: ['pending'] }, { status: 'passed', tests: ['passed', 'passed'] }]);

  it('sums passed and failed tests over the passes, a suite that cannot load counting as one failure', async () => {
    expect(await summary('0', clean, '0', failing, '1')).toEqual(['3 passed, 2 failed']);
    expect(await summary('2', clean, '0')).toEqual(['2 passed, 2 failed']);
  });

  it('counts a pass whose vitest failed with no failed test in its report (a crashed file) as a failure, and says why', async () => {
    const lines = await summary('0', clean, '0', crashed, '1');
    expect(lines.at(-1)).toBe('4 passed, 1 failed');
    expect(lines[0]).toContain(`vitest exited with 1 but ${crashed} lists no failed test`);
    // The same report from a vitest that exited 0 is a clean pass.
    expect(await summary('0', crashed, '0')).toEqual(['2 passed, 0 failed']);
  });

  it('counts a missing or empty report as one failure', async () => {
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '');
    const lines = await summary('0', clean, '0', join(dir, 'missing.json'), '0', empty, '1');
    expect(lines.at(-1)).toBe('2 passed, 2 failed');
    expect(lines[0]).toContain('missing.json');
  });
});
