// report.md from the study's numbers, browser-safe: the paper's tables (mean AUC ± std per dataset ×
// initialization × fraction, per label), the paired tests against the reference, the cross-dataset
// matrix, training subsets with few positives, and links to the figures.

import { formatPValue } from '../eval/report.js';
import { percentLabel } from '../eval/plots/specs.js';
import type { ResolvedPlan } from './grid.js';
import type { SubsetNote } from './plan-node.js';
import type { StudyNumbers } from './report.js';

const pct = (v: number | null) => (v === null ? 'n/a' : (100 * v).toFixed(2));
const pm = (mean: number | null, std: number | null) => (mean === null ? 'n/a' : std === null ? pct(mean) : `${pct(mean)} ± ${pct(std)}`);

function table(header: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function studyMarkdown(plan: ResolvedPlan, n: StudyNumbers, notes: SubsetNote[]): string {
  const inits = plan.inits.map((i) => i.name);
  const fractions = [...plan.fractions].sort((a, b) => a - b);
  const seedsNote = plan.seeds.length > 1
    ? `mean ± std over ${plan.seeds.length} seeds (${plan.seeds.join(', ')}); 95% intervals mean ± t·std/√n`
    : `one seed (${plan.seeds[0]}): ± is the bootstrap std of the test-set mean AUC (${n.resamples} resamples), 95% intervals its percentile interval`;
  const out: string[] = [`# Study${n.name ? `: ${n.name}` : ''}`, ''];
  out.push(`${plan.datasets.length} dataset(s) × ${inits.length} initialization(s) × ${fractions.length} training fraction(s) × ${plan.seeds.length} seed(s) = ` +
    `${plan.datasets.length * inits.length * fractions.length * plan.seeds.length} runs; ${n.runs.length} finished.`);
  out.push(`AUC in %, point estimates on each run's full test split; ${seedsNote}. Reference for the paired tests: **${n.reference}**.`, '');
  if (n.missing.length) {
    out.push('**Missing runs** (their cells show n/a):', '', ...n.missing.map((m) => `- ${m.id}: ${m.reason}`), '');
  }

  out.push('## Mean AUC by dataset, initialization and training fraction', '');
  out.push(table(['Dataset', 'Fraction', ...inits], plan.datasets.flatMap((d) => fractions.map((f) => [
    d.name, percentLabel(f),
    ...inits.map((i) => {
      const c = n.cells.find((x) => x.dataset === d.name && x.init === i && x.fraction === f)!;
      return pm(c.mean, c.std);
    }),
  ]))), '');
  out.push('![Mean AUC against training-set size](training-size.png)', '');

  out.push('## Per-label AUC', '');
  for (const d of plan.datasets) {
    for (const f of fractions) {
      out.push(`### ${d.name}, ${percentLabel(f)} of the training split`, '');
      const cells = inits.map((i) => n.cells.find((x) => x.dataset === d.name && x.init === i && x.fraction === f)!);
      out.push(table(['Label', ...inits], [
        ...d.labelNames.map((l) => [l, ...cells.map((c) => pm(c.labels[l]?.mean ?? null, c.labels[l]?.std ?? null))]),
        ['Mean', ...cells.map((c) => pm(c.mean, c.std))],
      ]), '');
    }
  }

  out.push(`## Paired tests against ${n.reference}`, '');
  out.push('One-sided p: the fraction of bootstrap resamples (the same resamples for every initialization) in which the ' +
    `initialization's AUC is not above ${n.reference}'s. Per-label p-values are Benjamini–Hochberg adjusted across the ` +
    'labels within each comparison; the Mean row is one test, unadjusted.', '');
  const others = inits.filter((i) => i !== n.reference);
  for (const d of plan.datasets) {
    for (const f of fractions) {
      for (const seed of plan.seeds) {
        const ts = others.map((i) => n.tests.find((t) => t.dataset === d.name && t.fraction === f && t.seed === seed && t.init === i));
        if (ts.every((t) => !t)) continue;
        out.push(`### ${d.name}, ${percentLabel(f)}, seed ${seed}`, '');
        out.push(table(['Label', ...others.map((i) => `p ${i} > ${n.reference} (BH)`)], [
          ...d.labelNames.map((l) => [l, ...ts.map((t) => formatPValue(t?.labels.find((x) => x.label === l)?.pAdjusted ?? null))]),
          ['Mean AUC', ...ts.map((t) => formatPValue(t?.meanAuc.p ?? null))],
        ]), '');
      }
    }
  }

  if (plan.crossTests.length) {
    out.push(`## Cross-dataset tests (trained on ${percentLabel(Math.max(...fractions))} of the row's dataset)`, '');
    out.push('Mean AUC in % on the column dataset\'s test split, over the labels the two datasets share (listed below); the diagonal is in-domain, over all of the dataset\'s labels.', '');
    const names = plan.datasets.map((d) => d.name);
    for (const i of inits) {
      out.push(`### ${i}`, '');
      out.push(table(['Trained on \\ tested on', ...names], names.map((a) => [a, ...names.map((b) => {
        const c = n.cross.find((x) => x.init === i && x.train === a && x.test === b);
        return c ? pm(c.mean, c.std) : '—';
      })])), '');
    }
    out.push(...plan.crossTests.map((c) => `- ${c.train} → ${c.test}: ${c.shared.map((s) => (s.train === s.test ? s.train : `${s.train} (${s.test})`)).join(', ')}`), '');
  }

  out.push('## Training subsets', '');
  out.push(`Subsets are stratified by each image's rarest finding and nested across fractions of one seed; every label keeps at least ${plan.minPositives} positive(s) where the split has them.`, '');
  if (notes.length) {
    out.push(`Subsets with fewer than ${plan.reportBelow} positives for a label:`, '');
    out.push(table(['Dataset', 'Fraction', 'Seed', 'Training images', 'Labels with few positives'], notes.map((x) => [
      x.dataset, percentLabel(x.fraction), String(x.seed), String(x.images), x.few.map((c) => `${c.label} ${c.positives} (of ${c.available})`).join(', '),
    ])), '');
  } else out.push(`No subset has fewer than ${plan.reportBelow} positives for any label.`, '');

  out.push('## Runs', '');
  out.push(table(['Run', 'Training images', 'Epochs (best)', 'Test images', 'Mean AUC', 'Bootstrap 95% interval', 'Figures'], n.runs.map((r) => [
    r.id, String(r.trainImages ?? 'n/a'), `${r.epochs ?? 'n/a'} (${r.bestEpoch ?? 'n/a'})`, String(r.testImages), pct(r.meanAuc),
    r.bootstrap ? `${pct(r.bootstrap.lo)}–${pct(r.bootstrap.hi)}` : 'n/a',
    `[ROC](../runs/${r.id}/eval/roc.png), [curves](../runs/${r.id}/curves.png)`,
  ])), '');
  return out.join('\n');
}
