// The study grid, browser-safe: datasets × initializations × fractions × seeds as runs, each named by
// its coordinates, and the exact `vitgpu train` / `vitgpu eval` command lines that carry it out. The
// commands are the user's own CLI, so a run of the study is a run a user could have typed.
//
//   STUDY/plan.yaml, plan.json   the plan as given, and as resolved (absolute paths, label sets)
//   STUDY/state.json             every run's state, for `study status` and a resumed study
//   STUDY/runs/ID/train/         the training run (vitgpu train --out)
//   STUDY/runs/ID/eval/          test-split evaluation (vitgpu eval --out)
//   STUDY/runs/ID/cross-B/       cross-dataset test on dataset B's test split
//   STUDY/runs/ID/done.json      written last: the run is complete and never redone
//   STUDY/report/                study.json, report.md, figures

import type { CrossTest, Plan, PlanDataset, PlanInit, SettingValue } from './plan.js';

/** A plan whose paths are absolute and whose label sets are read from the master lists. */
export interface ResolvedPlan extends Omit<Plan, 'datasets' | 'inits'> {
  datasets: (PlanDataset & { labelNames: string[]; trainRows: number })[];
  inits: PlanInit[];
  /** Cross tests with their shared labels and the derived master list of the test dataset. */
  crossTests: (CrossTest & { shared: { train: string; test: string }[]; csv: string })[];
}

export interface GridRun {
  id: string;
  dataset: string;
  init: string;
  fraction: number;
  seed: number;
}

/** "vindr--dinov2--f0.01--s0". */
export function runId(dataset: string, init: string, fraction: number, seed: number): string {
  return `${dataset}--${init}--f${fraction}--s${seed}`;
}

export function expandGrid(plan: Pick<Plan, 'datasets' | 'inits' | 'fractions' | 'seeds'>): GridRun[] {
  const runs: GridRun[] = [];
  // Seeds outermost: a study stopped early has every cell at least once; small fractions first.
  const fractions = [...plan.fractions].sort((a, b) => a - b);
  for (const seed of plan.seeds) {
    for (const d of plan.datasets) {
      for (const fraction of fractions) {
        for (const i of plan.inits) runs.push({ id: runId(d.name, i.name, fraction, seed), dataset: d.name, init: i.name, fraction, seed });
      }
    }
  }
  return runs;
}

export const runDir = (studyDir: string, id: string) => `${studyDir}/runs/${id}`;

const flag = (key: string) => `--${key.replace(/_/g, '-')}`;

function settingArgs(settings: Record<string, SettingValue>): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(settings)) {
    if (k === 'augment') {
      if (v === false) args.push('--no-augment');
    } else if (k === 'cache') {
      if (v === false) args.push('--no-cache');
    } else if (k === 'cosine') {
      if (v === true) args.push('--cosine');
    } else args.push(flag(k), String(v));
  }
  return args;
}

function dataArgs(d: PlanDataset & { labelNames: string[] }): string[] {
  const args = ['--data', d.data, '--labels', d.labelNames.join(',')];
  if (d.imageRoot) args.push('--image-root', d.imageRoot);
  if (d.preset) args.push('--preset', d.preset);
  if (d.pathColumn) args.push('--path-column', d.pathColumn);
  if (d.pathSuffix) args.push('--path-suffix', d.pathSuffix);
  if (d.splitColumn) args.push('--split-column', d.splitColumn);
  if (d.uncertain) args.push('--uncertain', d.uncertain);
  if (d.allViews) args.push('--all-views');
  if (d.skipBadImages) args.push('--skip-bad-images');
  return args;
}

function find<T extends { name: string }>(xs: readonly T[], name: string, what: string): T {
  const x = xs.find((v) => v.name === name);
  if (!x) throw new Error(`no ${what} named "${name}" in the plan`);
  return x;
}

/** `vitgpu train` arguments of a fresh run (a killed one continues with `train --resume --out`). */
export function trainArgs(plan: ResolvedPlan, run: GridRun, out: string): string[] {
  const d = find(plan.datasets, run.dataset, 'dataset');
  const init = find(plan.inits, run.init, 'initialization');
  const settings: Record<string, SettingValue> = { ...plan.train };
  if (init.arch) settings.arch = init.arch;
  if (init.imageSize) settings.image_size = init.imageSize;
  if (init.heads) settings.heads = init.heads;
  return [
    'train', ...dataArgs(d), '--init', init.kind === 'random' ? 'random' : init.path!, ...settingArgs(settings),
    '--seed', String(run.seed), '--train-fraction', String(run.fraction), '--subset-seed', String(run.seed),
    '--min-positives', String(plan.minPositives), '--out', out,
  ];
}

/** `vitgpu eval` arguments: the run's best model on its own test split. */
export function evalArgs(plan: ResolvedPlan, trainDir: string, out: string): string[] {
  const args = ['eval', '--run', trainDir, '--out', out, '--split', 'test', '--resamples', String(plan.eval.resamples), '--seed', String(plan.eval.seed)];
  if (plan.eval.batchSize) args.push('--batch-size', String(plan.eval.batchSize));
  return args;
}

/** The cross tests a run takes part in: models trained on its dataset at the plan's largest fraction. */
export function crossTestsOf(plan: ResolvedPlan, run: GridRun): ResolvedPlan['crossTests'] {
  if (run.fraction !== Math.max(...plan.fractions)) return [];
  return plan.crossTests.filter((c) => c.train === run.dataset);
}

/**
 * `vitgpu eval` on another dataset's test split. The study writes that split as a master list whose
 * label columns carry the training dataset's label names (shared labels filled from the test dataset,
 * the others 0 and left out of the cross-dataset numbers), so `eval` runs unchanged.
 */
export function crossEvalArgs(plan: ResolvedPlan, cross: ResolvedPlan['crossTests'][number], trainDir: string, out: string): string[] {
  const test = find(plan.datasets, cross.test, 'dataset');
  const args = ['eval', '--run', trainDir, '--out', out, '--split', 'test', '--data', cross.csv, '--image-root', test.imageRoot!,
    '--preset', 'generic', '--path-column', 'path', '--path-suffix', '', '--resamples', String(plan.eval.resamples), '--seed', String(plan.eval.seed)];
  if (plan.eval.batchSize) args.push('--batch-size', String(plan.eval.batchSize));
  return args;
}

/** Folds case and punctuation, as master-list label columns are matched: "Pleural Effusion" ~ "pleural_effusion". */
export function looseLabel(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/** Label pairs (train name, test name) two label sets share by loose name, or those named in `only`. */
export function sharedLabels(train: readonly string[], test: readonly string[], only?: readonly string[]): { train: string; test: string }[] {
  const pairs = train.flatMap((a) => {
    const b = test.find((t) => looseLabel(t) === looseLabel(a));
    return b === undefined ? [] : [{ train: a, test: b }];
  });
  if (!only) return pairs;
  return pairs.filter((p) => only.some((o) => looseLabel(o) === looseLabel(p.train)));
}
