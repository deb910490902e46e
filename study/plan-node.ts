// Reading a plan from disk and checking it against the files it names (Node): paths resolved against
// the plan's folder, every file and folder present, every master list readable with its labels, every
// training subset with positives for every label, every cross test with shared labels. All of it runs
// before any training, and each error names the plan's key and line.

import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { VitgpuError } from '../engine/errors.js';
import { loadMasterList, splitSamples, type MasterList } from '../datasets/dataset.js';
import { getPreset, presetOptions } from '../datasets/presets.js';
import { trainSubset, type LabelCount } from '../datasets/subset.js';
import { csvField } from '../eval/report.js';
import { parsePlan, planError, type Plan, type PlanDataset } from './plan.js';
import { looseLabel, sharedLabels, type ResolvedPlan } from './grid.js';

export interface SubsetNote {
  dataset: string;
  fraction: number;
  seed: number;
  images: number;
  /** Labels with fewer positives than the plan's report_below. */
  few: LabelCount[];
}

async function kindOf(path: string): Promise<'file' | 'dir' | null> {
  const st = await stat(path).catch(() => null);
  return st ? (st.isDirectory() ? 'dir' : 'file') : null;
}

function readList(d: PlanDataset, text: string): MasterList {
  return loadMasterList(text, d.data, presetOptions(getPreset(d.preset ?? 'generic'), {
    labels: d.labels, pathColumn: d.pathColumn, pathSuffix: d.pathSuffix, splitColumn: d.splitColumn, uncertain: d.uncertain,
    ...(d.allViews ? { viewColumn: null, views: null } : {}),
  }));
}

/** The cross test's master list: the test dataset's test rows, with the training dataset's label names. */
function crossCsv(test: MasterList, trainLabels: readonly string[], shared: { train: string; test: string }[]): string {
  const col = new Map(shared.map((p) => [p.train, test.labelNames.indexOf(p.test)]));
  const lines = [['path', 'split', ...trainLabels].map(csvField).join(',')];
  for (const s of splitSamples(test.samples, 'test')) {
    const values = trainLabels.map((l) => {
      const j = col.get(l);
      if (j === undefined) return '0';
      const v = s.labels[j];
      return Number.isNaN(v) ? '-1' : String(v);
    });
    lines.push([csvField(s.path), 'test', ...values].join(','));
  }
  return `${lines.join('\n')}\n`;
}

export interface LoadedPlan {
  plan: ResolvedPlan;
  yaml: string;
  notes: SubsetNote[];
  /** Derived master lists of the cross tests: file name -> CSV text (written to STUDY/cross/). */
  crossFiles: Map<string, string>;
}

/** Reads, resolves and checks a plan; `studyDir` is where the cross-test master lists will live. */
export async function loadPlan(file: string, studyDir: string): Promise<LoadedPlan> {
  const yaml = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new VitgpuError(`${file}: cannot read the plan (${err.code ?? err.message})`);
  });
  const plan: Plan = parsePlan(yaml, file);
  const base = dirname(resolve(file));
  const abs = (p: string) => resolve(base, p);
  const lists = new Map<string, MasterList>();
  const datasets: ResolvedPlan['datasets'] = [];
  for (const d0 of plan.datasets) {
    const d = { ...d0, data: abs(d0.data), imageRoot: d0.imageRoot ? abs(d0.imageRoot) : dirname(abs(d0.data)) };
    const key = `datasets.${d.name}`;
    if ((await kindOf(d.data)) !== 'file') throw planError(plan, `${key}.data`, `no such file: ${d.data}`);
    if ((await kindOf(d.imageRoot)) !== 'dir') throw planError(plan, `${key}.image_root`, `no such folder: ${d.imageRoot}`);
    let list: MasterList;
    try {
      list = readList(d, await readFile(d.data, 'utf8'));
    } catch (err) {
      throw planError(plan, d0.labels ? `${key}.labels` : `${key}.data`, (err as Error).message);
    }
    lists.set(d.name, list);
    datasets.push({ ...d, labelNames: list.labelNames, trainRows: splitSamples(list.samples, 'train').length });
  }
  const inits = [];
  for (const i of plan.inits) {
    if (i.kind === 'random') {
      inits.push(i);
      continue;
    }
    const path = abs(i.path!);
    const kind = await kindOf(path);
    if (i.kind === 'checkpoint' && kind !== 'file') throw planError(plan, `initializations.${i.name}.checkpoint`, `no such checkpoint file: ${path}`);
    if (i.kind === 'run' && (kind !== 'dir' || (await kindOf(join(path, 'best.safetensors'))) !== 'file')) {
      throw planError(plan, `initializations.${i.name}.run`, `${path} is not a vitgpu run directory (no best.safetensors)`);
    }
    inits.push({ ...i, path });
  }

  // Every subset the grid trains on, drawn as train will draw it: positives per label, before any training.
  const notes: SubsetNote[] = [];
  for (const d of datasets) {
    const list = lists.get(d.name)!;
    const train = splitSamples(list.samples, 'train');
    for (const fraction of plan.fractions) {
      for (const seed of plan.seeds) {
        const sub = trainSubset(train, list.labelNames, { fraction, seed, minPositives: plan.minPositives });
        const none = sub.counts.filter((c) => c.positives === 0);
        const where = `after subsetting to fraction ${fraction} (seed ${seed}, ${sub.samples.length} of ${train.length} training rows)`;
        if (none.length === sub.counts.length) throw planError(plan, 'fractions', `datasets.${d.name}: the label set is empty ${where}: no label has a positive; raise subset.min_positives or the fraction`);
        if (none.length) throw planError(plan, 'fractions', `datasets.${d.name}: ${where}, label${none.length > 1 ? 's' : ''} ${none.map((c) => c.label).join(', ')} ha${none.length > 1 ? 've' : 's'} no positives; raise subset.min_positives, or drop ${none.length > 1 ? 'them' : 'it'} from datasets.${d.name}.labels`);
        const few = sub.counts.filter((c) => c.positives < plan.reportBelow);
        if (few.length) notes.push({ dataset: d.name, fraction, seed, images: sub.samples.length, few });
      }
    }
  }

  const crossFiles = new Map<string, string>();
  const crossTests: ResolvedPlan['crossTests'] = [];
  plan.cross.forEach((c, i) => {
    const a = datasets.find((d) => d.name === c.train)!;
    const b = datasets.find((d) => d.name === c.test)!;
    const shared = sharedLabels(a.labelNames, b.labelNames, c.labels);
    if (c.labels) {
      const missing = c.labels.filter((l) => !shared.some((p) => looseLabel(p.train) === looseLabel(l)));
      if (missing.length) throw planError(plan, `cross[${i}]`, `label${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not in both ${c.train} (${a.labelNames.join(', ')}) and ${c.test} (${b.labelNames.join(', ')})`);
    }
    if (shared.length === 0 && c.auto) return;
    if (shared.length === 0) throw planError(plan, `cross[${i}]`, `${c.train} and ${c.test} share no label (${a.labelNames.join(', ')} / ${b.labelNames.join(', ')})`);
    const name = `${c.test}-for-${c.train}.csv`;
    crossFiles.set(name, crossCsv(lists.get(c.test)!, a.labelNames, shared));
    crossTests.push({ ...c, shared, csv: join(resolve(studyDir), 'cross', name) });
  });
  return { plan: { ...plan, file: resolve(file), datasets, inits, crossTests }, yaml, notes, crossFiles };
}
