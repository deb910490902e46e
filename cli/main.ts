// The `vitgpu` command: argument parsing only; each command lives in its own module.

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerDevices } from './devices.js';
import { registerDemo } from './demo.js';
import { registerInspect } from './inspect.js';
import { registerEmbed } from './embed.js';
import { registerTrain } from './train.js';
import { registerEvaluate } from './evaluate.js';
import { registerConvert } from './convert.js';
import { registerStudy } from './study.js';
import { registerWorker } from './worker.js';
import { registerServe } from './serve.js';
import { registerMergeLora } from './merge-lora.js';
import { registerFeatures } from './features.js';
import { registerTune } from './tune.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('vitgpu')
  .description('Vision Transformers on WebGPU: fine-tune and evaluate chest-radiograph classifiers')
  .version(pkg.version);

registerDevices(program);
registerDemo(program);
registerInspect(program);
registerEmbed(program);
registerTrain(program);
registerEvaluate(program);
registerConvert(program);
registerStudy(program);
registerWorker(program);
registerServe(program);
registerMergeLora(program);
registerFeatures(program);
registerTune(program);

program.showHelpAfterError();
await program.parseAsync(process.argv);
