// The dataset layer's error type: a master list, preset or image set that cannot be used as given.
// Every message starts with the file (and line or column) at fault so it can be fixed without a debugger.

import { VitgpuError } from '../engine/errors.js';

export interface DatasetErrorPlace {
  /** 1-based line in the file (the header is line 1). */
  line?: number;
  /** The column the problem is in. */
  column?: string;
}

export class DatasetError extends VitgpuError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: string | undefined;

  constructor(file: string | undefined, problem: string, place: DatasetErrorPlace = {}) {
    const where = [file, place.line !== undefined ? `line ${place.line}` : undefined].filter(Boolean).join(' ');
    super(where ? `${where}: ${problem}` : problem);
    this.file = file;
    this.line = place.line;
    this.column = place.column;
  }
}
