// Presets for the paper's public datasets (PAPER.md, "Label sets"): label lists, the image-path
// column, and the view filter where the paper used one. Label lists, path lists and views follow the
// authors' public code (tayebiarasteh, data_provider.py). Every field can be overridden on the
// command line (--labels, --path-column, --view-column, --views, --split-column).
//
// Column names are candidates, tried in order: the first one the master list has is used. Label
// columns also match loosely ("Pleural Effusion" for pleural_effusion; see findColumn in
// dataset.ts), so the same preset reads the authors' master lists and ones built from the official
// metadata files (plus a `split` column, which no official file has).

import { DatasetError } from './errors.js';
import type { IdLayout, MasterListOptions } from './dataset.js';

export interface DatasetPreset {
  name: string;
  description: string;
  /** Image-path column candidates (relative to the image root). */
  pathColumn: readonly string[];
  /** Failing those, the one column whose values all end in .png, .jpg or .jpeg (any name, e.g. jpg_rel_path). */
  pathColumnByContent?: boolean;
  /** A folder column joined in front of the path (PadChest's ImageDir). */
  pathDirColumn?: string;
  splitColumn: string;
  /** The labels in output order; null: every column that is not path, folder, split or view (the demo). */
  labels: readonly string[] | null;
  /** View column candidates; rows whose view is not in `views` are dropped. */
  viewColumn?: readonly string[];
  views?: readonly string[];
  /** Where the dataset's own release keeps the file of an id (used when the list holds ids). */
  idLayout?: IdLayout;
}

export const PRESET_NAMES = ['generic', 'vindr-cxr', 'chestx-ray14', 'chexpert', 'mimic-cxr', 'padchest', 'demo'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PRESETS: Readonly<Record<PresetName, DatasetPreset>> = {
  generic: {
    name: 'generic',
    description: 'any master list: the image-path column (a common name, or the column of image file names), every other column (but split) a label',
    pathColumn: ['image', 'path', 'image_path', 'img_path', 'Path', 'filename', 'file'],
    pathColumnByContent: true,
    splitColumn: 'split',
    labels: null,
  },
  'vindr-cxr': {
    name: 'vindr-cxr',
    description: 'VinDr-CXR, 11 labels, all views',
    // A list with the relative file path (`image_path`) is read as it is. The authors' list holds the
    // bare id (`image_id`) and a split; with it the preset reads the original release directly:
    // --image-root at the folder that holds train/ and test/, images train/ID.dicom (the train and
    // valid splits, both cut from the official training set) and test/ID.dicom. Converted copies
    // instead: --path-suffix .png (or .jpg) names ID.png in the image root.
    pathColumn: ['image_path', 'path', 'image_id'],
    idLayout: { column: 'image_id', folder: { train: 'train', valid: 'train', test: 'test' }, suffix: '.dicom' },
    splitColumn: 'split',
    labels: ['Cardiomegaly', 'Pleural effusion', 'Pneumonia', 'Atelectasis', 'No finding', 'Consolidation', 'Pneumothorax', 'Pleural thickening', 'Lung Opacity', 'Pulmonary fibrosis', 'Nodule/Mass'],
  },
  'chestx-ray14': {
    name: 'chestx-ray14',
    description: 'NIH ChestX-ray14, 14 labels, all views',
    // `img_rel_path` in the authors' list; `Image Index` in the official Data_Entry_2017.csv.
    pathColumn: ['img_rel_path', 'path', 'Image Index'],
    splitColumn: 'split',
    labels: ['cardiomegaly', 'effusion', 'pneumonia', 'atelectasis', 'no_finding', 'consolidation', 'pneumothorax', 'fibrosis', 'emphysema', 'hernia', 'pleural_thickening', 'edema', 'nodule', 'mass'],
  },
  chexpert: {
    name: 'chexpert',
    description: 'CheXpert, 10 labels, frontal views only',
    // `jpg_rel_path` and `view` in the authors' list; `Path` and `Frontal/Lateral` in the official CSV.
    pathColumn: ['jpg_rel_path', 'path', 'Path'],
    splitColumn: 'split',
    labels: ['cardiomegaly', 'pleural_effusion', 'pneumonia', 'atelectasis', 'no_finding', 'consolidation', 'pneumothorax', 'lung_opacity', 'lung_lesion', 'fracture'],
    viewColumn: ['view', 'Frontal/Lateral'],
    views: ['Frontal'],
  },
  'mimic-cxr': {
    name: 'mimic-cxr',
    description: 'MIMIC-CXR, 7 labels, PA and AP views',
    // `jpg_rel_path` and `view` in the authors' list; `ViewPosition` in mimic-cxr-2.0.0-metadata.csv.
    pathColumn: ['jpg_rel_path', 'path'],
    splitColumn: 'split',
    labels: ['cardiomegaly', 'pleural_effusion', 'pneumonia', 'atelectasis', 'no_finding', 'consolidation', 'pneumothorax'],
    viewColumn: ['view', 'ViewPosition'],
    views: ['PA', 'AP'],
  },
  padchest: {
    name: 'padchest',
    description: 'PadChest, 17 labels, PA, AP and AP_horizontal views',
    // The official CSV and the authors' list both keep the file name in ImageID and its numbered
    // folder in ImageDir; the authors' list calls the projection `view`, the official one `Projection`.
    pathColumn: ['ImageID'],
    pathDirColumn: 'ImageDir',
    splitColumn: 'split',
    // The 17 labels of the authors' padchest_data_loader_2D ("most labels (17)"); PAPER.md names only
    // some of them. Editable with --labels.
    labels: ['cardiomegaly', 'pleural_effusion', 'pneumonia', 'atelectasis', 'no_finding', 'consolidation', 'pneumothorax', 'emphysema', 'hernia', 'scoliosis', 'congestion', 'aortic_elongation', 'kyphosis', 'COPD_signs', 'pleural_thickening', 'nodule_mass', 'infiltrates'],
    viewColumn: ['view', 'Projection'],
    views: ['PA', 'AP', 'AP_horizontal'],
  },
  demo: {
    name: 'demo',
    description: 'the built-in synthetic dataset: labels are the CSV columns other than image and split',
    pathColumn: ['image'],
    splitColumn: 'split',
    labels: null,
  },
};

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

export function getPreset(name: string): DatasetPreset {
  if (isPresetName(name)) return PRESETS[name];
  throw new DatasetError(undefined, `unknown dataset preset "${name}" (known: ${PRESET_NAMES.join(', ')})`);
}

/** Master-list options for a preset; `overrides` replace single fields (e.g. from command-line flags). */
export function presetOptions(preset: DatasetPreset, overrides: Partial<MasterListOptions> = {}): MasterListOptions {
  const options: MasterListOptions = {
    pathColumn: preset.pathColumn,
    // A path column named on the command line is taken as given.
    pathColumnByContent: Boolean(preset.pathColumnByContent) && overrides.pathColumn === undefined,
    pathDirColumn: preset.pathDirColumn,
    splitColumn: preset.splitColumn,
    labels: preset.labels,
    viewColumn: preset.viewColumn,
    views: preset.views,
    idLayout: preset.idLayout,
  };
  // An option left undefined (a flag not given) keeps the preset's value.
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) Object.assign(options, { [key]: value });
  return options;
}
