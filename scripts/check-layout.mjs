#!/usr/bin/env node
// Layout check (run by .ci/run before the tests; Node only, no dependencies). It enforces four rules
// on the repository's source files (.ts, .mts, .js, .mjs; never node_modules/, dist/, web/dist/,
// .git/ or *.d.ts):
//
//   lines      No source file over 450 lines. Tests (test/) and generated files (a `@generated`
//              marker in their first five lines) are exempt.
//   node       No Node built-in (`node:*`, or a bare name such as 'fs', 'path', 'worker_threads')
//              imported or required outside the Node entries: engine/node.ts, bin/, cli/, bench/,
//              scripts/, test/ and files named *-node.ts. Everything else must run in a browser.
//   direction  Imports run one way, engine/ops → kernels/ → the engine core:
//              - the core (engine/device, adapter-info, derived, buffer-pool, tensor, shape, scope,
//                autograd, errors, prng, profiler, profile-report, half, precision)
//                imports only core files: no kernels/, no engine/ops/, no engine/optim, index or node;
//              - kernels/ imports no engine/ops/ and no engine/optim, index or node (only the core and
//                other kernels/ files);
//              - so autograd imports no kernels/, and nothing in engine/ or kernels/ imports the layers
//                above them (models/, datasets/, train/, eval/, cli/, web/, bench/).
//   cycles     No import cycle among source files (static imports and re-exports, `import type`
//              included; dynamic import() is a deliberate lazy load and not counted).
//
// Usage: node scripts/check-layout.mjs [--rules lines,node,direction,cycles] [PATH ...]
// With PATHs (files or folders, relative to the repository root) only problems in files under them
// are reported (a cycle when one of its files is). Prints one line per problem, naming the file and
// the rule, then a summary; exits 1 when there is a problem.

import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAX_LINES = 450;
const ALL_RULES = ['lines', 'node', 'direction', 'cycles'];
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'demo-out']);
const SOURCE = /\.(ts|mts|js|mjs)$/;
const CORE = ['device', 'adapter-info', 'derived', 'buffer-pool', 'tensor', 'shape', 'scope', 'autograd', 'errors', 'prng', 'profiler', 'profile-report', 'half', 'precision'].map((n) => `engine/${n}.ts`);
const ENGINE_ENTRIES = ['engine/optim.ts', 'engine/index.ts', 'engine/node.ts'];
const UPPER_LAYERS = ['models/', 'datasets/', 'train/', 'eval/', 'cli/', 'web/', 'bench/'];
const NODE_BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

function parseArgs(argv) {
  let rules = ALL_RULES;
  const paths = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rules') rules = argv[++i].split(',');
    else if (argv[i].startsWith('--rules=')) rules = argv[i].slice(8).split(',');
    else paths.push(relative(ROOT, resolve(argv[i])).split(sep).join('/'));
  }
  const unknown = rules.filter((r) => !ALL_RULES.includes(r));
  if (unknown.length) {
    console.error(`check-layout: unknown rule(s) ${unknown.join(', ')}; the rules are ${ALL_RULES.join(', ')}`);
    process.exit(2);
  }
  return { rules, paths };
}

function walk(dir, out) {
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = dir ? `${dir}/${name}` : name;
    if (SKIP_DIRS.has(name)) continue;
    const st = statSync(join(ROOT, rel));
    if (st.isDirectory()) walk(rel, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Static imports and re-exports (`import type` too) at the start of a line: [specifier, line]. */
function staticImports(text) {
  const found = [];
  const re = /^[ \t]*(?:import|export)\b(?:[^;'"]*?\bfrom\s*)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) found.push([m[1], text.slice(0, m.index).split('\n').length]);
  return found;
}

/** Every module a file loads, dynamic import() and require() included (for the node rule). */
function allImports(text) {
  const found = staticImports(text);
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (/^\s*(\/\/|\*)/.test(line)) return;
    for (const m of line.matchAll(/\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push([m[1], i + 1]);
  });
  return found;
}

/** The repository file a relative specifier names ('./x.js' may be x.ts), or null. */
function resolveRelative(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = relative(ROOT, resolve(ROOT, dirname(from), spec)).split(sep).join('/');
  const stem = base.replace(/\.(js|mjs|ts|mts)$/, '');
  for (const candidate of [base, `${stem}.ts`, `${stem}.mts`, `${stem}.js`, `${stem}.mjs`, `${base}/index.ts`, `${base}/index.js`]) {
    if (existsSync(join(ROOT, candidate)) && statSync(join(ROOT, candidate)).isFile()) return candidate;
  }
  return null;
}

const isNodeEntry = (f) =>
  f === 'engine/node.ts' || /^(bin|cli|bench|scripts|test)\//.test(f) || /-node\.(ts|mts|js|mjs)$/.test(f);

function directionProblem(file, target) {
  const isCore = CORE.includes(file);
  if (isCore && !CORE.includes(target)) {
    return `the engine core imports only the core; ${target} is not part of it`;
  }
  if (file.startsWith('kernels/') && (target.startsWith('engine/ops/') || ENGINE_ENTRIES.includes(target))) {
    return `kernels/ imports only the engine core and kernels/, not ${target} (the direction is engine/ops → kernels → core)`;
  }
  if ((file.startsWith('engine/') || file.startsWith('kernels/')) && UPPER_LAYERS.some((p) => target.startsWith(p))) {
    return `the engine and kernels import no layer above them, not ${target}`;
  }
  return null;
}

/** Strongly connected components with more than one file (or a file importing itself): Tarjan. */
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

function main() {
  const { rules, paths } = parseArgs(process.argv.slice(2));
  const inScope = (f) => paths.length === 0 || paths.some((p) => p === '' || p === '.' || f === p || f.startsWith(`${p}/`));
  const files = walk('', []).sort();
  const problems = [];
  const report = (file, rule, message) => {
    if (inScope(file)) problems.push(`${file}: ${rule}: ${message}`);
  };
  const graph = new Map();

  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    if (rules.includes('lines') && !file.startsWith('test/') && !/@generated/.test(text.split('\n', 5).join('\n'))) {
      const n = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
      if (n > MAX_LINES) report(file, 'lines', `${n} lines, over the budget of ${MAX_LINES}: split it along its jobs`);
    }
    if (rules.includes('node') && !isNodeEntry(file)) {
      for (const [spec, line] of allImports(text)) {
        const name = spec.startsWith('node:') ? spec : spec.split('/')[0];
        if (spec.startsWith('node:') || NODE_BUILTINS.has(name)) {
          report(file, 'node', `line ${line} imports the Node built-in '${spec}'; only engine/node.ts, bin/, cli/, bench/, scripts/, test/ and *-node.ts files may`);
        }
      }
    }
    const targets = new Set();
    for (const [spec, line] of staticImports(text)) {
      const target = resolveRelative(file, spec);
      if (!target) continue;
      targets.add(target);
      if (rules.includes('direction')) {
        const why = directionProblem(file, target);
        if (why) report(file, 'direction', `line ${line} imports '${spec}': ${why}`);
      }
    }
    graph.set(file, targets);
  }

  if (rules.includes('cycles')) {
    for (const scc of cycles(graph)) {
      if (scc.some(inScope)) problems.push(`${scc[0]}: cycles: import cycle among ${scc.length} file(s): ${scc.join(', ')}`);
    }
  }

  for (const p of problems) console.log(`check-layout: ${p}`);
  const scope = paths.length ? ` under ${paths.join(', ')}` : '';
  if (problems.length) {
    console.log(`check-layout: ${problems.length} problem(s) in ${files.length} source files${scope} (rules: ${rules.join(', ')})`);
    process.exit(1);
  }
  console.log(`check-layout: ok, ${files.length} source files${scope} (rules: ${rules.join(', ')})`);
}

main();
