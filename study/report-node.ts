// The study report on disk (Node): reads every finished run's predictions and summaries, computes the
// numbers (report.ts) and writes
//   STUDY/report/study.json            every number
//   STUDY/report/report.md             the tables
//   STUDY/report/training-size.png/svg mean AUC against training fraction, one panel per dataset

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCsv } from '../datasets/csv.js';
import { trainingSizeSpec } from '../eval/plots/specs.js';
import { writeFigure } from '../eval/plots/render-node.js';
import { expandGrid, runDir, crossTestsOf, type ResolvedPlan } from './grid.js';
import { isRunDone, runError } from './execute-node.js';
import { computeStudy, trainingSizePoints, type Predictions, type RunResult, type StudyNumbers } from './report.js';
import { studyMarkdown } from './report-markdown.js';
import type { SubsetNote } from './plan-node.js';

/** A predictions.csv written by `vitgpu eval` (image, then LABEL_true and LABEL_prob per label). */
export async function readPredictions(file: string): Promise<Predictions> {
  const { header, rows } = parseCsv(await readFile(file, 'utf8'), file);
  const labels = header.filter((h) => h.endsWith('_true')).map((h) => h.slice(0, -5));
  const num = (s: string) => (s.trim() === '' ? NaN : Number(s));
  return {
    labels,
    paths: rows.map((r) => r.fields[0]),
    truth: rows.map((r) => labels.map((_, j) => num(r.fields[1 + 2 * j]))),
    probs: rows.map((r) => labels.map((_, j) => num(r.fields[2 + 2 * j]))),
  };
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export async function writeReport(studyDir: string, plan: ResolvedPlan): Promise<{ numbers: StudyNumbers; files: string[] }> {
  const results: RunResult[] = [];
  const missing: { id: string; reason: string }[] = [];
  for (const run of expandGrid(plan)) {
    if (!(await isRunDone(studyDir, run.id))) {
      const err = await runError(studyDir, run.id);
      missing.push({ id: run.id, reason: err ? `failed: ${err.message}` : 'not finished' });
      continue;
    }
    const dir = runDir(studyDir, run.id);
    const summary = await readJson<{ epochs: number; bestEpoch: number }>(join(dir, 'train', 'summary.json'));
    const subset = await readJson<{ images: number }>(join(dir, 'train', 'subset.json'));
    const test = await readPredictions(join(dir, 'eval', 'predictions.csv'));
    // Fraction 1 trains on the whole split, and writes no subset.json.
    const trainImages = subset?.images ?? plan.datasets.find((d) => d.name === run.dataset)?.trainRows ?? null;
    const cross = [];
    for (const c of crossTestsOf(plan, run)) cross.push({ test: c.test, predictions: await readPredictions(join(dir, `cross-${c.test}`, 'predictions.csv')) });
    results.push({ run, test, trainImages, epochs: summary?.epochs ?? null, bestEpoch: summary?.bestEpoch ?? null, cross });
  }
  const numbers = computeStudy(plan, results, missing);
  const notes = (await readJson<SubsetNote[]>(join(studyDir, 'subsets.json'))) ?? [];
  const out = join(studyDir, 'report');
  await mkdir(out, { recursive: true });
  await writeAtomic(join(out, 'study.json'), `${JSON.stringify({ ...numbers, subsets: notes }, null, 2)}\n`);
  await writeAtomic(join(out, 'report.md'), studyMarkdown(plan, numbers, notes));
  const files = [join(out, 'study.json'), join(out, 'report.md')];
  const points = trainingSizePoints(numbers);
  if (points.length) {
    const intervalNote = plan.seeds.length > 1 ? `95% t-interval over ${plan.seeds.length} seeds` : '95% bootstrap interval';
    files.push(...(await writeFigure(join(out, 'training-size'), trainingSizeSpec(points, {
      title: `Mean AUC against training-set size${plan.name ? `: ${plan.name}` : ''}`,
      inits: plan.inits.map((i) => i.name), datasets: plan.datasets.map((d) => d.name), intervalNote,
    }))));
  }
  return { numbers, files };
}
