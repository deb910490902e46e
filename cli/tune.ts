// `vitgpu tune`: times the kernel candidates of every shape class a model's training uses, ahead of
// time, and stores the fastest per adapter (kernels/tune.ts). Every ViT block has the same shapes, so
// one training step and one inference forward of a 1-block model at the same image and batch size
// meet every class. `--list` prints the stored choices, `--clear` forgets them.

import type { Command } from 'commander';
import { Option } from 'commander';
import { bceWithLogits, createNodeDevice, fileTuneStore, noGrad, tidy, type TuneEntry, type Tuner } from '../engine/node.js';
import { TUNE_FAMILIES, tunerOf } from '../kernels/tuners.js';
import { PRESETS, VisionTransformer, presetConfig } from '../models/vit.js';
import { VitgpuError } from '../engine/errors.js';
import { list, positiveInt } from './options.js';
import { action } from './run.js';

interface TuneFlags {
  arch: string;
  imageSize?: string;
  batchSize: string;
  labels: string;
  reps: string;
  adapter?: string;
  kernels?: string;
  list?: boolean;
  clear?: boolean;
}

/** The rule's time over the chosen one's (1 when they are the same or either is missing). */
export function speedup(e: TuneEntry): number {
  const rule = e.ms[e.rule];
  const best = e.ms[e.choice];
  return rule && best ? rule / best : 1;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => {
    const line = `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
    return i === 0 ? `${line}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|` : line;
  }).join('\n');
}

const HEADER = ['shape class', 'rule', 'chosen', 'speed-up', 'timed', 'failed'];

function entryRow(key: string, e: TuneEntry): string[] {
  const failed = Object.keys(e.failed ?? {}).length;
  return [key, e.rule, e.choice, `${speedup(e).toFixed(2)}×`, `${Object.keys(e.ms).length}`, failed ? `${failed}` : ''];
}

/** One training step and one inference forward of a 1-block `arch`: every tunable launch its training meets. */
async function runModelOnce(tuner: Tuner, arch: string, imageSize: number | undefined, batch: number, labels: number): Promise<void> {
  const device = tuner.device;
  const config = presetConfig(arch, { depth: 1, labels, ...(imageSize ? { imageSize } : {}) });
  const model = new VisionTransformer(device, config, { seed: 0 });
  const s = config.imageSize;
  const images = device.randn([batch, 3, s, s], { seed: 1 });
  const targets = device.zeros([batch, labels]);
  tidy(() => bceWithLogits(model.forward(images).logits!, targets).backward());
  tidy(() => noGrad(() => model.forward(images).logits!));
  await device.sync(); // the queued shape classes are timed here (Device.idleWork)
  for (const t of [images, targets]) t.dispose();
  model.dispose();
}

export function registerTune(program: Command): void {
  program
    .command('tune')
    .description("time each tunable kernel's candidates on every shape a model's training uses; keep the fastest for this adapter")
    .option('--arch <name>', `architecture (${Object.keys(PRESETS).join(', ')})`, 'vit-b16')
    .option('--image-size <n>', "input size (default: the preset's)")
    .option('--batch-size <n>', 'images per batch', '30')
    .option('--labels <n>', 'head outputs', '14')
    .option('--reps <n>', 'timed rounds per candidate (the fastest counts; a round repeats the launch for about 2 ms)', '3')
    .option('--kernels <list>', `only these kernel families (comma-separated: ${TUNE_FAMILIES.map((f) => f.name).join(', ')}, or matmul, attention)`)
    .addOption(new Option('--adapter <name>', 'WebGPU adapter whose name contains NAME').env('VITGPU_ADAPTER'))
    .option('--list', 'print the stored choices of every adapter and exit')
    .option('--clear', 'forget every stored choice and exit')
    .action(
      action(async (opts: TuneFlags) => {
        const store = fileTuneStore();
        if (opts.list || opts.clear) {
          if (opts.clear) {
            store.clear();
            console.log(`removed ${store.where}`);
            return;
          }
          const adapters = store.list();
          if (!Object.keys(adapters).length) console.log(`no tuned choices in ${store.where}`);
          for (const [adapter, entries] of Object.entries(adapters)) {
            console.log(`${adapter}\n\n${table([HEADER, ...Object.entries(entries).map(([k, e]) => entryRow(k, e))])}\n`);
          }
          return;
        }
        if (!PRESETS[opts.arch]) throw new VitgpuError(`--arch: unknown architecture "${opts.arch}"; known: ${Object.keys(PRESETS).join(', ')}`);
        const imageSize = positiveInt(opts.imageSize, '--image-size');
        const batch = positiveInt(opts.batchSize, '--batch-size')!;
        const labels = positiveInt(opts.labels, '--labels')!;
        const reps = positiveInt(opts.reps, '--reps')!;
        const families = list(opts.kernels);
        for (const f of families ?? []) {
          if (!TUNE_FAMILIES.some((t) => t.name === f || t.name.startsWith(`${f}.`))) {
            throw new VitgpuError(`--kernels: unknown kernel family "${f}"; known: ${TUNE_FAMILIES.map((t) => t.name).join(', ')}`);
          }
        }
        const device = await createNodeDevice({ adapter: opts.adapter, tune: { policy: 'full', store, reps, families, log: (l) => console.error(`tuned ${l}`) } });
        const tuner = tunerOf(device)!;
        const started = performance.now();
        const before = tuner.timedCandidates;
        await runModelOnce(tuner, opts.arch, imageSize, batch, labels);
        const rows = [...tuner.seen.keys()].sort().map((key) => {
          const e = tuner.entry(key);
          return e ? entryRow(key, e) : [key, 'rule', 'rule (not tuned)', '', '', ''];
        });
        console.log(`${device.name}: ${opts.arch}${imageSize ? ` at ${imageSize} px` : ''}, batch ${batch}\n`);
        console.log(table([HEADER, ...rows]));
        const timed = tuner.timedCandidates - before;
        console.log(`\n${rows.length} shape classes, ${timed} candidates timed in ${((performance.now() - started) / 1000).toFixed(1)} s${timed ? '' : ' (all cached)'}; stored in ${store.where}`);
        device.destroy();
      }),
    );
}
