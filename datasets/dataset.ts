// Master lists, browser-safe: one CSV per dataset with an image-path column, a `split` column and one
// column per label (PAPER.md). Everything is checked here, before any image is read: named columns
// exist, every split value is known, no split is empty, every label has a positive in training.

import { parseCsv } from './csv.js';
import { DatasetError } from './errors.js';

export type Split = 'train' | 'valid' | 'test';
export const SPLITS: readonly Split[] = ['train', 'valid', 'test'];

/** What an uncertain label (−1) becomes: 0, 1, or NaN (left out of the loss and of pos_weight). */
export type UncertainPolicy = 'negative' | 'positive' | 'ignore';

export type LabelValue = 'positive' | 'negative' | 'uncertain';

export interface Sample {
  /** Image path as the master list gives it (folder column and suffix applied), relative to the image root. */
  path: string;
  split: Split;
  /** One entry per label: 1, 0, or NaN where an uncertain label is ignored. */
  labels: Float32Array;
  /** The CSV line this sample came from (header = line 1), for error messages. */
  row: number;
}

export interface MasterListOptions {
  /** Image-path column, or candidates tried in order. */
  pathColumn: string | readonly string[];
  /** When no candidate is in the header: use the one column whose values all end in .png, .jpg or .jpeg. */
  pathColumnByContent?: boolean;
  /** A folder column joined in front of the path (PadChest's ImageDir); null or '' for none. */
  pathDirColumn?: string | null;
  /** Appended to every path, for lists that hold ids rather than file names (e.g. '.png'). */
  pathSuffix?: string;
  /**
   * A dataset's own file layout for lists that hold ids: when the path column found is `column` and no
   * pathSuffix is given, the path is `folder[split]/ID + suffix` (VinDr-CXR: train/ID.dicom, test/ID.dicom).
   */
  idLayout?: IdLayout | null;
  splitColumn?: string;
  /** Label columns in output order; null or absent: every column not used for path, folder, split or view. */
  labels?: readonly string[] | null;
  uncertain?: UncertainPolicy;
  /** View column (or candidates); rows whose trimmed value is not in `views` are dropped. Null: no filter. */
  viewColumn?: string | readonly string[] | null;
  views?: readonly string[] | null;
  /** Raw (trimmed) cell text → meaning, checked before the default rule (1 positive, −1 uncertain, else negative). */
  labelValueMap?: Readonly<Record<string, LabelValue>>;
  /** Splits that must have rows; 'train' here also requires a positive of every label in training. */
  requireSplits?: readonly Split[];
  /** Refuse label cells outside {1, 0, −1, blank} (and the value map) instead of warning about them. */
  strictLabels?: boolean;
}

export interface IdLayout {
  column: string;
  folder: Readonly<Record<Split, string>>;
  suffix: string;
}

export interface MasterList {
  file: string;
  samples: Sample[];
  /** The requested label names, in the order of each sample's `labels`. */
  labelNames: string[];
  /** The CSV column each label was read from (differs from the name on a loose match). */
  labelColumns: string[];
  pathColumn: string;
  viewColumn: string | null;
  /** Rows left out by the view filter. */
  droppedByView: number;
  /** Problems that do not stop loading (odd label cells), for the caller to print. */
  warnings: string[];
}

const SPLIT_ALIASES: Readonly<Record<string, Split>> = { train: 'train', valid: 'valid', val: 'valid', validation: 'valid', test: 'test' };

const POSITIVE = /^\+?1(\.0*)?$/;
const UNCERTAIN = /^-1(\.0*)?$/;
/** Label cells the paper's rule reads as negative on purpose: 0, blank, and pandas' "nan". */
const NEGATIVE = /^([+-]?0(\.0*)?|nan|)$/i;
const IMAGE_FILE = /\.(png|jpe?g)$/i;

/** The default label rule: 1 (or 1.0, 1.00) positive, −1 uncertain, anything else (0, blank, nan) negative. */
export function parseLabelValue(text: string, map?: Readonly<Record<string, LabelValue>>): LabelValue {
  const t = text.trim();
  const mapped = map?.[t];
  if (mapped) return mapped;
  if (POSITIVE.test(t)) return 'positive';
  if (UNCERTAIN.test(t)) return 'uncertain';
  return 'negative';
}

function labelNumber(value: LabelValue, uncertain: UncertainPolicy): number {
  if (value === 'positive') return 1;
  if (value === 'negative') return 0;
  return uncertain === 'positive' ? 1 : uncertain === 'ignore' ? NaN : 0;
}

/** Folds case and punctuation: "Pleural Effusion", "pleural_effusion" and "Nodule/Mass" ~ "nodule_mass". */
function looseName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

function listColumns(header: readonly string[]): string {
  const shown = header.slice(0, 40).map((h) => JSON.stringify(h)).join(', ');
  return header.length > 40 ? `${shown} and ${header.length - 40} more` : shown;
}

/**
 * The index of the first candidate the header has (exact name), or with `loose` the one column whose
 * loose name matches; throws DatasetError listing the file's columns when none does.
 */
function findColumn(header: readonly string[], candidates: readonly string[], file: string, role: string, loose = false): number {
  for (const c of candidates) {
    const i = header.indexOf(c);
    if (i >= 0) return i;
  }
  if (loose) {
    for (const c of candidates) {
      const want = looseName(c);
      const hits = header.flatMap((h, i) => (looseName(h) === want ? [i] : []));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1) {
        throw new DatasetError(file, `${role} "${c}" matches several columns (${hits.map((i) => JSON.stringify(header[i])).join(', ')}); name one exactly`, { column: c });
      }
    }
  }
  const looked = candidates.length === 1 ? `column "${candidates[0]}"` : `column (looked for ${candidates.map((c) => JSON.stringify(c)).join(', ')})`;
  throw new DatasetError(file, `no ${role} ${looked}; the file's columns are ${listColumns(header)}`, { column: candidates[0] });
}

function candidates(v: string | readonly string[]): readonly string[] {
  return typeof v === 'string' ? [v] : v;
}

function andList(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The path column by name, else (with pathColumnByContent) the one column whose values all name image files. */
function findPathColumn(header: readonly string[], rows: readonly { fields: string[] }[], options: MasterListOptions, file: string): number {
  const names = candidates(options.pathColumn);
  if (options.pathColumnByContent && !names.some((c) => header.includes(c))) {
    const hits = header.flatMap((_, i) => {
      const values = rows.map((r) => r.fields[i].trim()).filter((v) => v !== '');
      return values.length > 0 && values.every((v) => IMAGE_FILE.test(v)) ? [i] : [];
    });
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) {
      throw new DatasetError(file, `no image-path column (looked for ${names.map((c) => JSON.stringify(c)).join(', ')}); the columns ${andList(hits.map((i) => JSON.stringify(header[i])))} ${hits.length === 2 ? 'both' : 'all'} hold image file names: choose one with --path-column`);
    }
  }
  return findColumn(header, names, file, 'image-path');
}

/**
 * Reads a master list. Throws DatasetError naming the file and line (or column) for: a missing column
 * (listing those that exist), an unknown split value, an empty split, a label without a positive in
 * the training split, an empty image path.
 */
export function loadMasterList(csvText: string, fileName: string, options: MasterListOptions): MasterList {
  const { header, rows } = parseCsv(csvText, fileName);
  const splitName = options.splitColumn ?? 'split';
  const uncertain = options.uncertain ?? 'negative';
  const requireSplits = options.requireSplits ?? SPLITS;
  const pathCol = findPathColumn(header, rows, options, fileName);
  const dirCol = options.pathDirColumn ? findColumn(header, [options.pathDirColumn], fileName, 'image-folder') : -1;
  const splitCol = findColumn(header, [splitName], fileName, 'split');
  let viewCol = -1;
  let views: Set<string> | null = null;
  if (options.viewColumn && options.views && options.views.length > 0) {
    viewCol = findColumn(header, candidates(options.viewColumn), fileName, 'view');
    views = new Set(options.views.map((v) => v.trim()));
  }
  const used = new Set([pathCol, dirCol, splitCol, viewCol]);
  const labelNames = options.labels ? [...options.labels] : header.filter((h, i) => !used.has(i) && h !== '');
  if (labelNames.length === 0) throw new DatasetError(fileName, `no label columns (the file's columns are ${listColumns(header)})`);
  const dup = labelNames.find((l, i) => labelNames.indexOf(l) !== i);
  if (dup !== undefined) throw new DatasetError(fileName, `label "${dup}" is listed twice`, { column: dup });
  const labelCols = labelNames.map((l) => findColumn(header, [l], fileName, 'label', true));
  const roles: [number, string][] = [[pathCol, 'image-path'], [dirCol, 'image-folder'], [splitCol, 'split'], [viewCol, 'view']];
  for (const [j, col] of labelCols.entries()) {
    const role = roles.find(([c]) => c === col);
    if (role) throw new DatasetError(fileName, `"${labelNames[j]}" is the ${role[1]} column, not a label; leave it out of --labels`, { column: header[col] });
  }
  // Cells the paper's rule reads as negative without meaning it ("abc", "yes"): usually a wrong column.
  let oddCells = 0;
  let firstOdd: { line: number; column: string; value: string } | null = null;
  const oddColumns = new Set<string>();

  const samples: Sample[] = [];
  let droppedByView = 0;
  for (const r of rows) {
    if (views && !views.has(r.fields[viewCol].trim())) {
      droppedByView++;
      continue;
    }
    const rawSplit = r.fields[splitCol].trim();
    const split = SPLIT_ALIASES[rawSplit.toLowerCase()];
    if (!split) {
      throw new DatasetError(fileName, `unknown split ${JSON.stringify(rawSplit)} in column "${header[splitCol]}" (allowed: train, valid (or val, validation), test)`, { line: r.line, column: header[splitCol] });
    }
    let path = r.fields[pathCol].trim();
    if (path === '') throw new DatasetError(fileName, `empty image path in column "${header[pathCol]}"`, { line: r.line, column: header[pathCol] });
    if (dirCol >= 0) {
      const dir = r.fields[dirCol].trim().replace(/\/+$/, '');
      if (dir !== '') path = `${dir}/${path}`;
    }
    if (options.pathSuffix) path += options.pathSuffix;
    else if (options.idLayout && header[pathCol] === options.idLayout.column) path = `${options.idLayout.folder[split]}/${path}${options.idLayout.suffix}`;
    const labels = new Float32Array(labelCols.length);
    for (let j = 0; j < labelCols.length; j++) {
      const cell = r.fields[labelCols[j]];
      const t = cell.trim();
      if (!options.labelValueMap?.[t] && !POSITIVE.test(t) && !UNCERTAIN.test(t) && !NEGATIVE.test(t)) {
        oddCells++;
        firstOdd ??= { line: r.line, column: header[labelCols[j]], value: t };
        oddColumns.add(header[labelCols[j]]);
      }
      labels[j] = labelNumber(parseLabelValue(cell, options.labelValueMap), uncertain);
    }
    samples.push({ path, split, labels, row: r.line });
  }

  const warnings: string[] = [];
  if (firstOdd) {
    const { line, column, value } = firstOdd;
    if (options.strictLabels) {
      throw new DatasetError(fileName, `label column "${column}" holds ${JSON.stringify(value)}, which is not 1, 0, -1 or blank (${oddCells} such cell${oddCells > 1 ? 's' : ''} in all); fix the list or choose other --labels`, { line, column });
    }
    warnings.push(`${fileName}: ${oddCells} label cell${oddCells > 1 ? 's are' : ' is'} not 1, 0, -1 or blank (first: line ${line}, column "${column}": ${JSON.stringify(value)}; ` +
      `column${oddColumns.size > 1 ? 's' : ''} ${[...oddColumns].join(', ')}); they count as negative, but such values usually mean a wrong column: ` +
      'check --labels, or pass --strict-labels to refuse them');
  }
  const viewNote = droppedByView > 0 ? ` after the view filter (${header[viewCol]} in ${[...views!].join(', ')}; ${droppedByView} rows dropped)` : '';
  for (const s of requireSplits) {
    if (!samples.some((x) => x.split === s)) throw new DatasetError(fileName, `split "${s}" has no rows${viewNote}`, { column: header[splitCol] });
  }
  if (requireSplits.includes('train')) {
    const train = splitSamples(samples, 'train');
    const missing = labelNames.filter((_, j) => !train.some((s) => s.labels[j] === 1));
    if (missing.length > 0) {
      const names = missing.map((l) => `"${l}"${header[labelCols[labelNames.indexOf(l)]] !== l ? ` (column "${header[labelCols[labelNames.indexOf(l)]]}")` : ''}`).join(', ');
      throw new DatasetError(fileName, `label${missing.length > 1 ? 's' : ''} ${names} ha${missing.length > 1 ? 've' : 's'} no positives in the training split (${train.length} rows); drop ${missing.length > 1 ? 'them' : 'it'} with --labels`, {
        column: header[labelCols[labelNames.indexOf(missing[0])]],
      });
    }
  }
  return {
    file: fileName,
    samples,
    labelNames,
    labelColumns: labelCols.map((i) => header[i]),
    pathColumn: header[pathCol],
    viewColumn: viewCol >= 0 ? header[viewCol] : null,
    droppedByView,
    warnings,
  };
}

export function splitSamples<S extends { split: Split }>(samples: readonly S[], split: Split): S[] {
  return samples.filter((s) => s.split === split);
}

/**
 * BCE pos_weight per label, (N − P) / P over the training split, as the paper's loss uses it.
 * Ignored (NaN) entries count in neither N nor P. Throws DatasetError naming a label with no positives.
 */
export function positiveWeights(samples: readonly Sample[], labelNames: readonly string[]): Float32Array {
  const out = new Float32Array(labelNames.length);
  const train = splitSamples(samples, 'train');
  for (let j = 0; j < labelNames.length; j++) {
    let n = 0;
    let p = 0;
    for (const s of train) {
      const v = s.labels[j];
      if (Number.isNaN(v)) continue;
      n++;
      if (v === 1) p++;
    }
    if (p === 0) throw new DatasetError(undefined, `label "${labelNames[j]}" has no positives in the training split (${n} rows); pos_weight is undefined`, { column: labelNames[j] });
    out[j] = (n - p) / p;
  }
  return out;
}
