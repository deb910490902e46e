// `vitgpu convert IN OUT.safetensors`: a PyTorch checkpoint (or any checkpoint vitgpu reads) as
// safetensors, tensor for tensor, with dtypes kept (F64 becomes F32; integer tensors such as counters
// are left out and listed).

import { basename } from 'node:path';
import type { Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import { readCheckpointHeader } from '../models/checkpoint-file.js';
import { readTensorF32 } from '../models/safetensors.js';
import { encodeSafetensors, type TensorToWrite } from '../models/safetensors-write.js';
import { action } from './run.js';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('write a PyTorch .pth/.pt checkpoint (or a safetensors file) as safetensors')
    .argument('<in>', 'a .pth / .pt (torch.save zip) or .safetensors file')
    .argument('<out>', 'the .safetensors file to write')
    .action(
      action(async (input: string, out: string) => {
        if (!out.endsWith('.safetensors')) throw new VitgpuError(`${out}: the output must be a .safetensors file`);
        const src = await openFileSource(input);
        try {
          const header = await readCheckpointHeader(src);
          const tensors: TensorToWrite[] = [];
          const skipped: string[] = [];
          for (const info of [...header.tensors.values()].sort((a, b) => a.begin - b.begin)) {
            const dtype = info.dtype === 'F16' || info.dtype === 'BF16' ? info.dtype : info.dtype === 'F32' || info.dtype === 'F64' ? 'F32' : null;
            if (!dtype) {
              skipped.push(`${info.name} (${info.dtype})`);
              continue;
            }
            tensors.push({ name: info.name, dtype, shape: info.shape, data: await readTensorF32(src, info) });
          }
          const metadata: Record<string, string> = { format: 'pt', converted_from: basename(input) };
          if (header.metadata.pth_state_key) metadata.pth_state_key = header.metadata.pth_state_key;
          await writeFileAtomic(out, encodeSafetensors(tensors, header.fileFormat === 'safetensors' ? header.metadata : metadata));
          console.log(`${out}: ${tensors.length} tensors from ${input}${header.metadata.pth_state_key ? ` (state dict under "${header.metadata.pth_state_key}")` : ''}`);
          if (skipped.length) console.log(`left out (not weights): ${skipped.join(', ')}`);
        } finally {
          await src.close();
        }
      }),
    );
}
