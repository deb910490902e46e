// One error type per failure kind, each naming what was at fault.

export class VitgpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No WebGPU adapter could be found; the message says what to install. */
export class NoAdapterError extends VitgpuError {}

/** The GPUDevice was lost (driver reset, destroy(), out of memory); every later call fails with this. */
export class DeviceLostError extends VitgpuError {
  constructor(readonly reason: string, readonly detail: string) {
    super(`WebGPU device lost (${reason})${detail ? `: ${detail}` : ''}`);
  }
}

/** WebGPU reported a validation or out-of-memory error for work the engine submitted. */
export class GpuError extends VitgpuError {}

/** Shapes or axes that do not fit the operation; the message names the op and the shapes. */
export class ShapeError extends VitgpuError {}

/** A tensor was used after dispose(). */
export class DisposedError extends VitgpuError {}

export const LINUX_ADAPTER_HELP = [
  'No WebGPU adapter found.',
  'On Linux without a GPU, install Mesa\'s software Vulkan driver (lavapipe), Mesa 24 or newer:',
  '  Debian 12: add the suite "bookworm-backports" (component main) to your apt sources, then',
  '    apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  '  Debian 13 / Ubuntu 24.04+: apt-get install -y mesa-vulkan-drivers libvulkan1',
  '  (in a checkout, `npm run setup` does this for you).',
  'With a GPU, install its Vulkan driver (NVIDIA: the proprietary driver; AMD/Intel: mesa-vulkan-drivers).',
  'Check with `vitgpu devices`; pick one with --adapter NAME or VITGPU_ADAPTER=NAME.',
].join('\n');

export const BROWSER_ADAPTER_HELP = [
  'No WebGPU adapter available (navigator.gpu.requestAdapter() returned null).',
  'Enable WebGPU in this browser (Chrome/Edge 113+; on Linux start Chromium with --enable-unsafe-webgpu,',
  'and on machines without a GPU its SwiftShader fallback is used), or check chrome://gpu.',
].join('\n');
