// A study plan: YAML read with `yaml`'s document API so that every error names the key and the line,
// checked in full before anything runs. Browser-safe: paths stay as written (plan-node.ts resolves
// them against the plan's folder and checks the files).
//
//   datasets:          name -> { data, image_root, preset, labels, path_column, ... }
//   initializations:   name -> random | { checkpoint: FILE } | { run: DIR } (+ arch, image_size, heads)
//   fractions:         [0.01, 0.1, 1]      each in (0, 1]
//   seeds:             [0, 1, 2]           training seed = subset seed
//   reference:         the initialization the others are tested against (default: the first)
//   train:             train settings, as `vitgpu train` options in snake_case
//   eval:              { resamples, seed, batch_size }
//   subset:            { min_positives, report_below }
//   cross:             all | [{ train: A, test: B, labels: [...] }]

import type { DataOptions } from '../runs/config.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type Pair, type YAMLMap } from 'yaml';
import { VitgpuError } from '../engine/errors.js';
import { PRESET_NAMES } from '../datasets/presets.js';

export class PlanError extends VitgpuError {
  constructor(readonly file: string, readonly line: number | null, readonly key: string, problem: string) {
    super(`${file}${line ? `:${line}` : ''}: ${key ? `${key}: ` : ''}${problem}`);
  }
}

export type SettingValue = string | number | boolean;

/** A dataset of the plan: a name, and the master-list options a run's data takes (runs/config.ts). */
export interface PlanDataset extends Pick<DataOptions, 'data' | 'imageRoot' | 'preset' | 'labels' | 'pathColumn' | 'pathSuffix' | 'splitColumn' | 'uncertain' | 'allViews' | 'skipBadImages'> {
  name: string;
}

export interface PlanInit {
  name: string;
  kind: 'random' | 'checkpoint' | 'run';
  /** The file or run directory; absent for random. */
  path?: string;
  arch?: string;
  imageSize?: number;
  heads?: number;
}

export interface CrossTest {
  train: string;
  test: string;
  /** Labels to compare; default every label the two share (by loose name). */
  labels?: string[];
  /** From `cross: all`: a pair that shares no label is left out instead of failing. */
  auto?: boolean;
}

export interface Plan {
  file: string;
  name?: string;
  datasets: PlanDataset[];
  inits: PlanInit[];
  fractions: number[];
  seeds: number[];
  reference: string;
  /** `vitgpu train` options (snake_case key -> value), applied to every run. */
  train: Record<string, SettingValue>;
  eval: { resamples: number; seed: number; batchSize?: number };
  minPositives: number;
  /** Subsets where a label has fewer positives than this are listed in the report (default 10). */
  reportBelow: number;
  cross: CrossTest[];
  /** Line of each key path ("datasets.vindr.data"), for errors found later (missing files, labels). */
  lines: Record<string, number>;
}

type Kind = 'string' | 'int' | 'nonNegInt' | 'posInt' | 'number' | 'nonNegNumber' | 'bool' | 'labels' | { oneOf: readonly string[] };

/** `vitgpu train` options a plan may set, by their snake_case names. */
export const TRAIN_KEYS: Record<string, Kind> = {
  arch: 'string', image_size: 'posInt', heads: 'posInt', epochs: 'posInt', batch_size: 'posInt', lr: 'nonNegNumber',
  weight_decay: 'nonNegNumber', grad_accum: 'posInt', warmup_steps: 'nonNegInt', cosine: 'bool', min_lr: 'nonNegNumber',
  clip_norm: 'nonNegNumber', patience: 'nonNegInt', augment: 'bool', rotation: { oneOf: ['nearest', 'bilinear'] },
  checkpoint_minutes: 'nonNegNumber', checkpoint_steps: 'nonNegInt', workers: 'posInt', cache: 'bool', cache_dir: 'string',
  resize: { oneOf: ['lanczos', 'area'] }, normalize: { oneOf: ['none', 'imagenet', 'half'] },
};

const DATASET_KEYS: Record<string, Kind> = {
  data: 'string', image_root: 'string', preset: { oneOf: PRESET_NAMES }, labels: 'labels', path_column: 'string', path_suffix: 'string',
  split_column: 'string', uncertain: { oneOf: ['negative', 'positive', 'ignore'] }, all_views: 'bool', skip_bad_images: 'bool',
};
const INIT_KEYS: Record<string, Kind> = { random: 'bool', checkpoint: 'string', run: 'string', arch: 'string', image_size: 'posInt', heads: 'posInt' };
const TOP_KEYS = ['name', 'datasets', 'initializations', 'fractions', 'seeds', 'reference', 'train', 'eval', 'subset', 'cross'];
const EVAL_KEYS: Record<string, Kind> = { resamples: 'posInt', seed: 'nonNegInt', batch_size: 'posInt' };
const SUBSET_KEYS: Record<string, Kind> = { min_positives: 'nonNegInt', report_below: 'nonNegInt' };
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.]*(?:-[A-Za-z0-9_.]+)*$/;

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

/** Parses and checks a plan; throws PlanError naming the file, line and key of the first problem. */
export function parsePlan(text: string, file: string): Plan {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new PlanError(file, lc.linePos(e.pos[0]).line, '', `not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const lines: Record<string, number> = {};
  const lineOf = (n: YamlNode | null | undefined): number | null => (n?.range ? lc.linePos(n.range[0]).line : null);
  const fail = (n: YamlNode | null | undefined, key: string, problem: string): never => {
    throw new PlanError(file, lineOf(n), key, problem);
  };

  /** The map at `key`, its pairs checked against `known` (unknown keys fail with a suggestion). */
  const mapping = (n: unknown, key: string, known?: readonly string[]): YAMLMap<unknown, unknown> => {
    if (!isMap(n)) fail(n as YamlNode, key, 'must be a mapping (key: value lines)');
    const m = n as YAMLMap<unknown, unknown>;
    for (const pair of m.items as Pair<unknown, unknown>[]) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      const path = key ? `${key}.${k}` : k;
      lines[path] = lineOf(pair.key as YamlNode) ?? 0;
      if (known && !known.includes(k)) {
        const near = known.filter((x) => editDistance(x, k) <= 2);
        fail(pair.key as YamlNode, path, `unknown key${near.length ? ` (did you mean ${near.map((x) => `"${x}"`).join(' or ')}?)` : ''}; known keys: ${known.join(', ')}`);
      }
    }
    return m;
  };
  const entries = (m: YAMLMap<unknown, unknown>) => (m.items as Pair<unknown, unknown>[]).map((p) => ({ key: isScalar(p.key) ? String(p.key.value) : '', keyNode: p.key as YamlNode, node: p.value as YamlNode | null }));

  const value = (n: YamlNode | null, key: string, kind: Kind): SettingValue | string[] => {
    if (kind === 'labels') {
      const items = isSeq(n) ? n.items.map((x) => (isScalar(x) ? String(x.value).trim() : fail(x as YamlNode, key, 'each label must be a name'))) : isScalar(n) && typeof n.value === 'string' ? n.value.split(',').map((s) => s.trim()).filter(Boolean) : fail(n, key, 'must be a list of label names');
      if (items.length === 0) fail(n, key, 'the label set is empty');
      const dup = items.find((l, i) => items.indexOf(l) !== i);
      if (dup !== undefined) fail(n, key, `label "${dup}" is listed twice`);
      return items;
    }
    if (!isScalar(n) || n.value === null || n.value === undefined) return fail(n, key, 'needs a value');
    const v = n.value;
    if (typeof kind === 'object') {
      if (!kind.oneOf.includes(String(v))) fail(n, key, `must be one of ${kind.oneOf.join(', ')}, got ${JSON.stringify(v)}`);
      return String(v);
    }
    if (kind === 'string') {
      if (typeof v !== 'string' && typeof v !== 'number') fail(n, key, 'must be a string');
      return String(v);
    }
    if (kind === 'bool') {
      if (typeof v !== 'boolean') fail(n, key, `must be true or false, got ${JSON.stringify(v)}`);
      return v as boolean;
    }
    const num = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    const ok = {
      int: Number.isInteger(num), nonNegInt: Number.isInteger(num) && num >= 0, posInt: Number.isInteger(num) && num > 0,
      number: Number.isFinite(num), nonNegNumber: Number.isFinite(num) && num >= 0,
    }[kind];
    const what = { int: 'an integer', nonNegInt: 'a non-negative integer', posInt: 'a positive integer', number: 'a number', nonNegNumber: 'a non-negative number' }[kind];
    if (!ok) fail(n, key, `must be ${what}, got ${JSON.stringify(v)}`);
    return num;
  };
  const settings = (m: YAMLMap<unknown, unknown>, key: string, known: Record<string, Kind>) => {
    const out: Record<string, SettingValue | string[]> = {};
    for (const e of entries(m)) out[e.key] = value(e.node, `${key}.${e.key}`, known[e.key]);
    return out;
  };
  const list = (n: unknown, key: string, kind: Kind): number[] => {
    if (!isSeq(n) || n.items.length === 0) return fail(n as YamlNode, key, 'must be a non-empty list');
    const out = n.items.map((x, i) => value(x as YamlNode, `${key}[${i}]`, kind) as number);
    const dup = out.find((v, i) => out.indexOf(v) !== i);
    if (dup !== undefined) fail(n as YamlNode, key, `${dup} is listed twice`);
    return out;
  };

  const root = mapping(doc.contents, '', TOP_KEYS);
  const get = (m: YAMLMap<unknown, unknown>, k: string) => m.get(k, true) as YamlNode | undefined;
  for (const k of ['datasets', 'initializations', 'fractions', 'seeds']) if (!root.has(k)) fail(doc.contents, k, 'missing (a plan needs datasets, initializations, fractions and seeds)');

  const datasets: PlanDataset[] = entries(mapping(get(root, 'datasets'), 'datasets')).map((e) => {
    const key = `datasets.${e.key}`;
    if (!NAME.test(e.key)) fail(e.keyNode, key, 'a dataset name may hold letters, digits, "_", "." and single "-" (it names run folders)');
    const s = settings(mapping(e.node, key, Object.keys(DATASET_KEYS)), key, DATASET_KEYS);
    if (s.data === undefined) fail(e.node, key, 'missing "data" (the master-list CSV)');
    return {
      name: e.key, data: s.data as string, imageRoot: s.image_root as string | undefined, preset: s.preset as string | undefined,
      labels: s.labels as string[] | undefined, pathColumn: s.path_column as string | undefined, pathSuffix: s.path_suffix as string | undefined,
      splitColumn: s.split_column as string | undefined, uncertain: s.uncertain as PlanDataset['uncertain'], allViews: s.all_views as boolean | undefined,
      skipBadImages: s.skip_bad_images as boolean | undefined,
    };
  });
  if (datasets.length === 0) fail(get(root, 'datasets'), 'datasets', 'lists no dataset');

  const inits: PlanInit[] = entries(mapping(get(root, 'initializations'), 'initializations')).map((e) => {
    const key = `initializations.${e.key}`;
    if (!NAME.test(e.key)) fail(e.keyNode, key, 'an initialization name may hold letters, digits, "_", "." and single "-" (it names run folders)');
    if (isScalar(e.node)) {
      if (e.node.value !== 'random') fail(e.node, key, 'write "random", or a mapping with "checkpoint: FILE" or "run: DIR"');
      return { name: e.key, kind: 'random' as const };
    }
    const s = settings(mapping(e.node, key, Object.keys(INIT_KEYS)), key, INIT_KEYS);
    const sources = (['checkpoint', 'run'] as const).filter((k) => s[k] !== undefined);
    if (s.random === true) sources.push('random' as never);
    if (sources.length !== 1) fail(e.node, key, 'needs exactly one of "checkpoint: FILE", "run: DIR" or "random: true"');
    const kind = sources[0] as PlanInit['kind'];
    return { name: e.key, kind, path: kind === 'random' ? undefined : (s[kind] as string), arch: s.arch as string | undefined, imageSize: s.image_size as number | undefined, heads: s.heads as number | undefined };
  });
  if (inits.length === 0) fail(get(root, 'initializations'), 'initializations', 'lists no initialization');

  const fractions = list(get(root, 'fractions'), 'fractions', 'number');
  (get(root, 'fractions') as unknown as { items: YamlNode[] }).items.forEach((n, i) => {
    if (!(fractions[i] > 0 && fractions[i] <= 1)) fail(n, `fractions[${i}]`, `a training fraction must be in (0, 1], got ${fractions[i]}`);
  });
  const seeds = list(get(root, 'seeds'), 'seeds', 'nonNegInt');

  let reference = inits[0].name;
  if (root.has('reference')) {
    reference = value(get(root, 'reference') ?? null, 'reference', 'string') as string;
    if (!inits.some((i) => i.name === reference)) fail(get(root, 'reference'), 'reference', `"${reference}" is not one of the initializations (${inits.map((i) => i.name).join(', ')})`);
  }
  const train = root.has('train') ? settings(mapping(get(root, 'train'), 'train', Object.keys(TRAIN_KEYS)), 'train', TRAIN_KEYS) as Record<string, SettingValue> : {};
  const ev = root.has('eval') ? settings(mapping(get(root, 'eval'), 'eval', Object.keys(EVAL_KEYS)), 'eval', EVAL_KEYS) : {};
  const sub = root.has('subset') ? settings(mapping(get(root, 'subset'), 'subset', Object.keys(SUBSET_KEYS)), 'subset', SUBSET_KEYS) : {};

  const cross: CrossTest[] = [];
  const crossNode = get(root, 'cross');
  const names = datasets.map((d) => d.name);
  if (isScalar(crossNode) && crossNode.value === 'all') {
    for (const a of names) for (const b of names) if (a !== b) cross.push({ train: a, test: b, auto: true });
  } else if (crossNode !== undefined && crossNode !== null && !(isScalar(crossNode) && crossNode.value === null)) {
    if (!isSeq(crossNode)) fail(crossNode, 'cross', 'must be "all" or a list of { train: A, test: B }');
    (crossNode as unknown as { items: YamlNode[] }).items.forEach((n, i) => {
      const key = `cross[${i}]`;
      const s = settings(mapping(n, key, ['train', 'test', 'labels']), key, { train: 'string', test: 'string', labels: 'labels' });
      for (const k of ['train', 'test'] as const) {
        if (s[k] === undefined) fail(n, key, `missing "${k}"`);
        if (!names.includes(s[k] as string)) fail(n, `${key}.${k}`, `"${s[k]}" is not one of the datasets (${names.join(', ')})`);
      }
      if (s.train === s.test) fail(n, key, 'train and test are the same dataset');
      cross.push({ train: s.train as string, test: s.test as string, labels: s.labels as string[] | undefined });
    });
  }

  return {
    file,
    name: root.has('name') ? String(value(get(root, 'name') ?? null, 'name', 'string')) : undefined,
    datasets,
    inits,
    fractions,
    seeds,
    reference,
    train,
    eval: { resamples: (ev.resamples as number) ?? 1000, seed: (ev.seed as number) ?? 0, batchSize: ev.batch_size as number | undefined },
    minPositives: (sub.min_positives as number) ?? 1,
    reportBelow: (sub.report_below as number) ?? 10,
    cross,
    lines,
  };
}

/** "plan.yaml:12: datasets.vindr.data" style location of a key path, for errors found after parsing. */
export function planError(plan: Plan, key: string, problem: string): PlanError {
  let k = key;
  while (k && plan.lines[k] === undefined) k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '';
  return new PlanError(plan.file, plan.lines[k] ?? null, key, problem);
}
