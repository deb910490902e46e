// Options shared by the commands that read a master list (train, eval, compare).

import { Option, type Command } from 'commander';
import { PRESET_NAMES } from '../datasets/presets.js';
import type { DataOptions } from '../runs/config.js';
import { list, oneOf, positiveInt } from './options.js';
import { DEFAULT_MAX_PIXELS } from '../datasets/image-header.js';
import { DEFAULT_DICOM_WINDOW, dicomWindowText, parseDicomWindow } from '../datasets/dicom.js';

export interface DataFlags {
  data?: string;
  imageRoot?: string;
  preset?: string;
  labels?: string;
  pathColumn?: string;
  pathSuffix?: string;
  splitColumn?: string;
  uncertain?: string;
  strictLabels?: boolean;
  allViews?: boolean;
  skipBadImages?: boolean;
  cacheDir?: string;
  cache?: boolean;
  workers?: string;
  resize?: string;
  normalize?: string;
  maxPixels?: string;
  dicomWindow?: string;
}

export function withDataOptions(cmd: Command, required: boolean): Command {
  const data = new Option('--data <csv>', 'master-list CSV: image path, split (train/valid/test) and one column per label');
  if (required) data.makeOptionMandatory();
  return cmd
    .addOption(data)
    .option('--image-root <dir>', 'folder the image paths are relative to (default: the CSV\'s folder)')
    .addOption(new Option('--preset <name>', 'dataset preset: label list, path column and view filter (default: generic)').choices([...PRESET_NAMES]))
    .option('--labels <a,b,c>', 'label columns to use, in this order (default: the preset\'s, or every other column)')
    .option('--path-column <name>', 'image-path column (default: the preset\'s)')
    .option('--path-suffix <ext>', 'appended to every image path, for lists that hold ids (e.g. .png)')
    .option('--split-column <name>', 'split column', 'split')
    .option('--uncertain <policy>', 'uncertain labels (-1): negative (as in the paper), positive, or ignore (left out of the loss)', 'negative')
    .option('--strict-labels', 'refuse label cells other than 1, 0, -1 and blank (default: warn and count them as negative)')
    .option('--all-views', 'keep every view even where the preset keeps frontal views only')
    .option('--skip-bad-images', 'skip and count missing or corrupt images instead of stopping')
    .option('--cache-dir <dir>', 'resized-image cache (default: IMAGE_ROOT/.vitgpu-cache)')
    .option('--no-cache', 'decode and resize every image every epoch')
    .option('--workers <n>', 'image-decoding worker threads (default: CPUs - 1)')
    .option('--resize <filter>', 'downscale filter: lanczos (as in the paper) or area', 'lanczos')
    .option('--normalize <mode>', 'none (pixels / 255, as in the paper), imagenet, or half', 'none')
    .option('--max-pixels <n>', `refuse images above this many pixels before decoding them (default ${DEFAULT_MAX_PIXELS})`)
    .option('--dicom-window <policy>', DICOM_WINDOW_HELP);
}

export const DICOM_WINDOW_HELP =
  'DICOM gray levels: none (the image\'s own min..max, as the paper\'s authors converted VinDr-CXR; the default), auto (the file\'s first window), or CENTER,WIDTH';

/** --dicom-window checked, in its stored text form; undefined when not given. */
export function dicomWindowFlag(v: string | undefined): string | undefined {
  return v === undefined ? undefined : dicomWindowText(parseDicomWindow(v));
}

export function dataOptions(f: DataFlags, fallback?: DataOptions): DataOptions {
  const base: Partial<DataOptions> = fallback ?? {};
  return {
    data: f.data ?? base.data!,
    imageRoot: f.imageRoot ?? (f.data ? undefined : base.imageRoot),
    preset: f.preset ?? base.preset,
    labels: list(f.labels) ?? base.labels,
    pathColumn: f.pathColumn ?? base.pathColumn,
    pathSuffix: f.pathSuffix ?? base.pathSuffix,
    splitColumn: f.splitColumn ?? base.splitColumn,
    uncertain: oneOf(f.uncertain, '--uncertain', ['negative', 'positive', 'ignore'] as const) ?? base.uncertain,
    strictLabels: f.strictLabels ?? base.strictLabels,
    allViews: f.allViews ?? base.allViews,
    skipBadImages: f.skipBadImages ?? base.skipBadImages,
    cacheDir: f.cache === false ? null : f.cacheDir ?? base.cacheDir,
    workers: positiveInt(f.workers, '--workers') ?? base.workers,
    filter: oneOf(f.resize, '--resize', ['lanczos', 'area'] as const) ?? base.filter ?? 'lanczos',
    normalize: oneOf(f.normalize, '--normalize', ['none', 'imagenet', 'half'] as const) ?? base.normalize ?? 'none',
    maxPixels: positiveInt(f.maxPixels, '--max-pixels') ?? base.maxPixels,
    dicomWindow: dicomWindowFlag(f.dicomWindow) ?? base.dicomWindow ?? DEFAULT_DICOM_WINDOW,
  };
}
