// `vitgpu inspect FILE`: the tensors of a safetensors file and what vitgpu makes of them.

import type { Command } from 'commander';
import { readCheckpointHeader } from '../models/checkpoint-file.js';
import { openFileSource } from '../engine/node.js';
import { planCheckpoint } from '../models/checkpoint.js';
import { action } from './run.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('list the tensors of a safetensors checkpoint, its naming and architecture')
    .argument('<file>', 'a .safetensors file')
    .option('--json', 'print one JSON object')
    .action(
      action(async (file: string, opts: { json?: boolean }) => {
        const src = await openFileSource(file);
        try {
          const header = await readCheckpointHeader(src);
          const tensors = [...header.tensors.values()].sort((a, b) => a.begin - b.begin);
          const shapes = new Map(tensors.map((t) => [t.name, t.shape] as const));
          let plan: ReturnType<typeof planCheckpoint> | null = null;
          let planError: string | null = null;
          try {
            plan = planCheckpoint(shapes, header.metadata, { source: file });
          } catch (err) {
            planError = (err as Error).message;
          }
          const total = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
          if (opts.json) {
            console.log(JSON.stringify({
              file,
              tensors: tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
              parameters: total,
              metadata: header.metadata,
              fileFormat: header.fileFormat,
              naming: plan?.format ?? null,
              architecture: plan?.config ?? null,
              unexpected: plan?.unexpected ?? [],
              error: planError,
            }));
            return;
          }
          const w = Math.max(...tensors.map((t) => t.name.length), 4);
          for (const t of tensors) console.log(`${t.name.padEnd(w)}  ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]`);
          console.log(`\n${tensors.length} tensors, ${total.toLocaleString('en')} values`);
          if (header.fileFormat === 'pth') {
            const key = header.metadata.pth_state_key;
            console.log(`file: PyTorch checkpoint (zip)${key ? `, state dict under "${key}"` : ''}; \`vitgpu convert\` writes it as safetensors`);
          } else if (Object.keys(header.metadata).length) console.log(`metadata: ${JSON.stringify(header.metadata)}`);
          if (plan) {
            const c = plan.config;
            console.log(`naming: ${plan.format}${plan.prefix ? ` (prefix "${plan.prefix}")` : ''}`);
            console.log(`architecture: ViT patch ${c.patchSize}, width ${c.width}, depth ${c.depth}, heads ${c.heads} ${plan.headsStored ? '(from the checkpoint)' : '(assumed: width / 64; pass --heads if the model has another count)'}, MLP ${c.mlpWidth}, ` +
              `${c.layerScale ? 'LayerScale, ' : ''}${c.registers ? `${c.registers} registers, ` : ''}${c.rope ? `2-D rotary positions (theta ${c.rope})${c.maskKeyBias ? ', no key bias' : ''}` : `positional grid ${c.posGrid}×${c.posGrid}`}, ` +
              `${c.labels ? `head with ${c.labels} labels` : 'no head'}, LayerNorm eps ${c.eps}`);
            if (plan.unexpected.length) console.log(`not used by the model: ${plan.unexpected.join(', ')}`);
          } else {
            console.log(`not a ViT checkpoint vitgpu can load: ${planError}`);
          }
        } finally {
          await src.close();
        }
      }),
    );
}
