// Builds the browser bundles of web/: every web/NAME.ts that has a web/NAME.html beside it becomes
// web/dist/NAME.js (ESM, bundled with the engine), and the pages are copied next to them.
//   npm run build:web            (or: node scripts/build-web.mjs [outdir])
// The build targets the browser platform with no externals, and refuses outright any import of Node
// (node:* and built-in modules, the `webgpu` package, engine/node.ts): the engine must run unchanged in
// a browser, so such an import is a bug, never something to stub.

import { build } from 'esbuild';
import { builtinModules, createRequire } from 'node:module';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_DIR = join(ROOT, 'web');
export const DEFAULT_OUTDIR = join(WEB_DIR, 'dist');

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

// Third-party DICOM decoders whose browser build still mentions Node modules, in code that never runs
// in a browser: dicom-parser's UMD wrapper passes require('zlib') to its inflater, used only for the
// Deflated transfer syntax, which datasets/dicom.ts refuses before parsing; the CharLS and OpenJPEG
// Emscripten glue calls require('fs') / require('path') only inside its ENVIRONMENT_IS_NODE branch.
// For these files alone such a require resolves to an object that throws as soon as anything on it is
// used, so a browser that reached such code would fail loudly instead of silently.
const NODE_BRANCH_ONLY = [/[/\\]node_modules[/\\]dicom-parser[/\\]/, /[/\\]node_modules[/\\]@cornerstonejs[/\\]codec-[a-z0-9-]+[/\\]dist[/\\]/];
const NODE_BRANCH_MODULES = new Set(['zlib', 'fs', 'path']);

/** The WebAssembly files the DICOM decoders fetch at run time (datasets/dicom-codecs.ts), copied next to the bundle. */
const CODEC_WASM = ['@cornerstonejs/codec-charls/decodewasm', '@cornerstonejs/codec-openjpeg/decodewasm'];

/** An esbuild plugin that fails the build on any import that only exists in Node. */
export const noNodeImports = {
  name: 'vitgpu-no-node-imports',
  setup(b) {
    const refuse = (args, what) => ({
      errors: [{ text: `browser bundle imports ${what} "${args.path}" (from ${relative(ROOT, args.importer) || args.importer}); web/ must not reach Node code` }],
    });
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (NODE_BRANCH_ONLY.some((p) => p.test(args.importer)) && NODE_BRANCH_MODULES.has(args.path)) {
        return { path: args.path, namespace: 'vitgpu-unreachable-node-module' };
      }
      if (args.path.startsWith('node:') || NODE_BUILTINS.has(args.path)) return refuse(args, 'the Node module');
      if (args.path === 'webgpu' || args.path.startsWith('webgpu/')) return refuse(args, 'the Node-only package');
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'vitgpu-unreachable-node-module' }, (args) => ({
      // Required eagerly (dicom-parser hands it to its inflater at load time), so only using it throws.
      contents: `module.exports = new Proxy({}, { get(_, key) { if (typeof key === 'symbol' || key === '__esModule') return undefined; ` +
        `throw new Error(${JSON.stringify(`${args.path} is not available in a browser`)} + ' (' + String(key) + ')'); } });`,
      loader: 'js',
    }));
    // However it is reached, the Node entry (engine/node.ts, which loads Dawn) must not be bundled.
    b.onLoad({ filter: /[/\\]engine[/\\]node\.(ts|js)$/ }, (args) => ({
      errors: [{ text: `browser bundle reaches the Node entry ${relative(ROOT, args.path)}; web/ must not reach Node code` }],
    }));
  },
};

/** The web/ entry points: NAME.ts with a NAME.html page beside it. */
export async function webEntries(webDir = WEB_DIR) {
  const names = await readdir(webDir);
  return names
    .filter((n) => n.endsWith('.html') && names.includes(n.replace(/\.html$/, '.ts')))
    .map((n) => ({ name: n.replace(/\.html$/, ''), ts: join(webDir, n.replace(/\.html$/, '.ts')), html: join(webDir, n) }));
}

/**
 * Bundles the web/ entries into `outdir` (default web/dist) and copies their pages there.
 * Rejects (with esbuild's messages) if anything fails to bundle for the browser.
 */
export async function buildWeb({ outdir = DEFAULT_OUTDIR, minify = false, sourcemap = true, entries } = {}) {
  const list = entries ?? (await webEntries());
  if (list.length === 0) throw new Error(`no web entries (NAME.ts + NAME.html) in ${WEB_DIR}`);
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: Object.fromEntries(list.map((e) => [e.name, e.ts])),
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap,
    metafile: true,
    logLevel: 'silent',
    plugins: [noNodeImports],
  });
  for (const e of list) await copyFile(e.html, join(outdir, `${e.name}.html`));
  const require = createRequire(import.meta.url);
  for (const spec of CODEC_WASM) {
    const file = require.resolve(spec);
    await copyFile(file, join(outdir, basename(file)));
  }
  const inputs = Object.keys(result.metafile.inputs);
  return { outdir, entries: list.map((e) => e.name), inputs, warnings: result.warnings };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const outdir = process.argv[2] ? resolve(process.argv[2]) : DEFAULT_OUTDIR;
  try {
    const r = await buildWeb({ outdir });
    for (const w of r.warnings) console.warn(`warning: ${w.text}`);
    console.log(`built ${r.entries.map((n) => `${n}.js`).join(', ')} (${r.inputs.length} modules) into ${relative(process.cwd(), r.outdir) || '.'}`);
  } catch (err) {
    for (const e of err.errors ?? []) {
      const loc = e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : '';
      console.error(`error: ${loc}${e.text}`);
    }
    if (!err.errors) console.error(err);
    process.exit(1);
  }
}
