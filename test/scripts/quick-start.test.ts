// The quick start: two commands (`npm start`, `npm test`) that each run the idempotent setup first;
// a setup script that names no hosts; a README that says how to run the command and links no
// package page; CI that runs the same two commands.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const read = (f: string) => readFileSync(root + f, 'utf8');

describe('quick start', () => {
  it('npm start and npm test each run the setup first; npm run setup stays', () => {
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
    expect(scripts.prestart).toMatch(/^bash scripts\/setup\.sh\b/);
    expect(scripts.pretest).toMatch(/^bash scripts\/setup\.sh\b/);
    expect(scripts.setup).toBe('bash scripts/setup.sh');
  });

  it('the setup skips a build that is up to date instead of rebuilding every time', () => {
    const setup = read('scripts/setup.sh');
    expect(setup).toMatch(/-newer "\$stamp"/);
    expect(setup).toMatch(/build is up to date/);
  });

  it('the setup script names no hosts: with no apt source configured it asks for one', () => {
    const setup = read('scripts/setup.sh');
    expect(setup).not.toMatch(/[a-z]+:\/\/[a-z0-9.-]+/i);
    expect(setup).not.toMatch(/\b[a-z0-9-]+\.(org|com|net|io|de)\b/i);
    expect(setup).toMatch(/no Debian apt source is configured/);
  });

  it('the README: two quick-start commands, npx vitgpu in its commands, how to link it, no package page', () => {
    const readme = read('README.md');
    const quick = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)![1];
    expect(quick.trim().split('\n').map((l) => l.split('#')[0].trim())).toEqual(['npm start', 'npm test']);
    expect(readme).not.toMatch(/npmjs\.com/);
    expect(readme).not.toMatch(/^\s*vitgpu /m); // commands say npx vitgpu
    expect(readme).not.toMatch(/`vitgpu /);
    expect(readme).toMatch(/npm link/);
    expect(readme).toMatch(/npx vitgpu demo/);
  });

  it('.ci/run runs the same two commands and still ends with "N passed, N failed"', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/^if ! npm start; then/m);
    expect(ci).toMatch(/^npm test /m);
    expect(ci).not.toMatch(/npm run setup/);
    expect(ci).toMatch(/^node scripts\/ci-summary\.mjs "\$extra" "\$results" "\$main_rc" "\$swiftshader_results" "\$ss_rc"/m);
    expect(read('scripts/ci-summary.mjs')).toMatch(/passed, \$\{/);
    // The kernel and engine tests again on SwiftShader, which fails (never skips) without its ICD.
    expect(ci).toMatch(/VK_ICD_FILENAMES="\$swiftshader_icd" VITGPU_ADAPTER=SwiftShader npx vitest run test\/kernels test\/ops test\/engine/);
    expect(ci).toMatch(/SwiftShader pass failed: \$swiftshader_icd is missing/);
  });
});
