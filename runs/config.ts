// A run's settings as `vitgpu train` takes them and a run directory stores them (config.json, and the
// metadata of every checkpoint), and the reporter a run talks through. Browser-safe types.

import type { Normalize, ResizeFilter } from '../datasets/image.js';
import type { EpochRecord } from '../train/trainer.js';
import type { TrainOptions } from '../train/settings.js';

export type { TrainOptions };

export interface DataOptions {
  /** Master-list CSV. */
  data: string;
  /** Folder the image paths are relative to (default: the CSV's folder). */
  imageRoot?: string;
  preset?: string;
  labels?: string[];
  pathColumn?: string;
  /** Appended to every image path (for lists that hold ids, e.g. '.png'). */
  pathSuffix?: string;
  splitColumn?: string;
  uncertain?: 'negative' | 'positive' | 'ignore';
  /** Refuse label cells outside {1, 0, -1, blank} instead of warning about them. */
  strictLabels?: boolean;
  /** Keep all views even where the preset filters them. */
  allViews?: boolean;
  skipBadImages?: boolean;
  /** Resized-image cache folder; null for none (default <image-root>/.vitgpu-cache). */
  cacheDir?: string | null;
  workers?: number;
  filter: ResizeFilter;
  normalize: Normalize;
  /** Images above this many pixels are refused before decoding (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /**
   * VOI policy for DICOM images (--dicom-window): 'none' (the image's min..max, the default), 'auto'
   * (the file's window) or 'C,W'. It changes pixels, so it is part of the resized-image cache key.
   */
  dicomWindow?: string;
  /** Stored by a run: `data` and `imageRoot` relative to the run directory, tried when the absolute paths are gone. */
  relative?: { data: string; imageRoot: string };
}

export interface ModelOptions {
  arch: string;
  /** 'random', a safetensors checkpoint, or a previous vitgpu run directory. */
  init: string;
  imageSize: number;
  heads?: number;
}

export interface RunConfig {
  data: DataOptions;
  model: ModelOptions;
  train: TrainOptions;
  /** The training split a run started on (digest of images and labels in list order), checked on resume. */
  trainSplit?: { images: number; digest: string };
}

export interface Reporter {
  info(message: string): void;
  step?(info: { epoch: number; batch: number; batches: number; loss: number | null; images: number; seconds: number; skipped?: number }): void;
  epochEnd?(record: EpochRecord): void;
  preflightProgress?(done: number, total: number): void;
}
