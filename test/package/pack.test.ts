// The npm package as another project gets it: `npm pack` (with its prepack build) in a copy of this
// working tree, the tarball installed into a fresh temporary project from the registry, and there the
// README's engine example (taken from README.md, so the two cannot drift apart) runs in Node,
// type-checks with tsc under strict settings without skipLibCheck, and bundles for the browser with
// esbuild (the README's browser variant: `createDevice(navigator.gpu)` from 'vitgpu') with nothing
// stubbed. The copy keeps the prepack build from rewriting dist/ while other test files use it.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
const locked = (name: string) => lock.packages[`node_modules/${name}`].version as string;

async function sh(cmd: string, args: string[], cwd: string, timeout = 300_000): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, timeout, maxBuffer: 64 << 20, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stderr ?? ''}\n${e.stdout ?? ''}\n${e.message}`);
  }
}

/** The README's engine example: the ```ts block under "## Using the engine". */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using the engine'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no ```ts block under "## Using the engine"');
  return m[1];
}

let work = '';
let app = '';
let tarball = '';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vitgpu-pack-'));
  const copy = join(work, 'src');
  const files = (await sh('git', ['ls-files', '-co', '--exclude-standard', '-z'], ROOT)).split('\0').filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(ROOT, f))) continue; // deleted in the working tree
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    cpSync(join(ROOT, f), join(copy, f));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const out = await sh('npm', ['pack', '--json', '--pack-destination', work], copy, 400_000);
  const jsonStart = out.indexOf('[');
  tarball = join(work, JSON.parse(out.slice(jsonStart))[0].filename);
  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'vitgpu-consumer', private: true, type: 'module' }));
  await sh('npm', ['install', '--no-audit', '--no-fund', tarball, `typescript@${locked('typescript')}`, `esbuild@${locked('esbuild')}`], app, 400_000);
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('ships what exports and bin point to, the page, LICENSE and README, and no sources or private types', async () => {
    const listed = (await sh('tar', ['-tzf', tarball], work)).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    const targets = [pkg.bin.vitgpu, ...Object.values(pkg.exports as Record<string, Record<string, string>>).flatMap((e) => Object.values(e))].map((p: string) => p.replace(/^\.\//, ''));
    for (const t of targets) expect(listed, t).toContain(t);
    for (const f of ['LICENSE', 'README.md', 'web/dist/index.html', 'web/dist/index.js', 'web/dist/charlswasm_decode.wasm', 'dist/cli/main.js', 'dist/datasets/image-worker-node.js']) expect(listed, f).toContain(f);
    expect(listed.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(listed.filter((f) => f.startsWith('types/') || f.startsWith('test/'))).toEqual([]);
    expect(readFileSync(join(app, 'node_modules', 'vitgpu', 'LICENSE'), 'utf8')).toMatch(/MIT License[\s\S]*vitgpu contributors/);
    // The installed command works (`npx vitgpu` in a project that depends on vitgpu).
    expect(await sh(join(app, 'node_modules', '.bin', 'vitgpu'), ['--help'], app, 60_000)).toMatch(/serve/);
  }, 60_000);

  it('runs the README\'s engine example in Node', async () => {
    writeFileSync(join(app, 'example.mjs'), readmeExample()); // the example has no type annotations: valid JavaScript
    const out = await sh(process.execPath, ['example.mjs'], app, 120_000);
    expect(out).toMatch(/Float32Array\(12\)/);
    expect(out).toMatch(/liveBytes/);
  }, 120_000);

  it('type-checks the example with tsc, strict and without skipLibCheck', async () => {
    writeFileSync(join(app, 'example.ts'), readmeExample());
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true }, files: ['example.ts'] }));
    await sh(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app, 120_000);
  }, 120_000);

  it('bundles the example\'s browser variant with esbuild, nothing stubbed', async () => {
    const browser = readmeExample()
      .replace(/^import \{ createNodeDevice, (.*) \} from 'vitgpu\/node';.*$/m, "import { createDevice, $1 } from 'vitgpu';")
      .replace('await createNodeDevice()', 'await createDevice(navigator.gpu)');
    expect(browser).toMatch(/from 'vitgpu';/);
    writeFileSync(join(app, 'browser.ts'), browser);
    await sh(join(app, 'node_modules', '.bin', 'esbuild'), ['browser.ts', '--bundle', '--platform=browser', '--format=esm', '--log-level=warning', '--outfile=out/browser.js'], app, 120_000);
    const bundle = readFileSync(join(app, 'out', 'browser.js'), 'utf8');
    expect(bundle).toMatch(/navigator\.gpu/);
    expect(bundle).not.toMatch(/require\("webgpu"\)|from "webgpu"|["']node:/); // a Node built-in is imported as "node:…"
    expect(readdirSync(join(app, 'out'))).toEqual(['browser.js']);
  }, 120_000);
});
