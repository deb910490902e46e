// Any checkpoint file vitgpu reads, by its first bytes: safetensors, or a PyTorch zip checkpoint
// (`.pth` / `.pt`). Both give the same header (tensor names, dtypes, shapes and byte ranges), so the
// loader and `inspect` do not care which it was. Browser-safe.

import { VitgpuError } from '../engine/errors.js';
import { isLegacyTorch, readPthHeader } from './pth.js';
import { readHeader, type ByteSource, type SafetensorsHeader } from './safetensors.js';
import { isZip } from './zip.js';

export type CheckpointFileFormat = 'safetensors' | 'pth';

export interface CheckpointHeader extends SafetensorsHeader {
  fileFormat: CheckpointFileFormat;
}

/** Reads the header of a safetensors or PyTorch checkpoint. */
export async function readCheckpointHeader(src: ByteSource): Promise<CheckpointHeader> {
  const head = await src.read(0, Math.min(16, src.size));
  if (isZip(head)) return { ...(await readPthHeader(src)), fileFormat: 'pth' };
  if (isLegacyTorch(head)) {
    throw new VitgpuError(
      `${src.name}: a PyTorch checkpoint in the legacy (before 1.6) format, which vitgpu does not read; ` +
      're-save it with a current PyTorch (torch.save(torch.load(IN), OUT)) or convert it to safetensors',
    );
  }
  return { ...(await readHeader(src)), fileFormat: 'safetensors' };
}
