// Prints the WebGPU adapter Dawn finds (one line) and exits 0, or exits 1 when there is none.
// Used by scripts/setup.sh before anything is built, so it depends on nothing but the `webgpu` package.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.log('no WebGPU adapter');
  process.exit(1);
}
const info = adapter.info;
console.log(`${info.vendor || '?'} ${info.architecture || ''} ${info.device || ''} ${info.description || ''}`.replace(/\s+/g, ' ').trim());
process.exit(0);
