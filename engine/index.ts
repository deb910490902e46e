/// <reference types="@webgpu/types" preserve="true" />
// vitgpu engine, browser-safe entry: everything here runs unchanged in a browser. In Node, get a
// device from `vitgpu/node` (engine/node.ts), which loads Dawn.
//
// Layers, imports running one way: engine/ops (differentiable ops; ops/index.ts also attaches the
// tensor and device methods) → kernels/ (WGSL, launchers, CPU references) → the engine core (device,
// buffer pool, tensor, shape, scope, autograd, errors, prng).

export { createDevice, Device, describeAdapterInfo, isCpuAdapterInfo, WANTED_FEATURES, type DeviceInfo, type DeviceOptions, type SubgroupSizes } from './device.js';
export { Tensor, Storage, GradNode } from './tensor.js';
export { tidy, keep } from './scope.js';
export { noGrad, isGradEnabled, backward, checkpoint } from './autograd.js';
export { type MemoryStats, sizeClass } from './buffer-pool.js';
export { type ProfileOptions, type ProfileSession, PROFILE_QUERY_CAPACITY } from './profiler.js';
export { chromeTrace, formatProfileTable, mergeTraces, MAX_TRACE_EVENTS, type ChromeTrace, type KernelEvent, type KernelStats, type KernelWork, type ProfileReport, type ProfileTiming } from './profile-report.js';
export * from './errors.js';
export * from './ops/index.js';
export { broadcastShapes, sizeOf, contiguousStrides } from './shape.js';
export { AdamW, gradNormScale, type AdamWOptions } from './optim.js';
export {
  installTuner, tunerOf, memoryTuneStore, adapterKey, TUNE_POLICIES, Tuner, TUNE_FAMILIES,
  type TuneEntry, type TunePolicy, type TuneStore, type TunerOptions,
} from '../kernels/tuners.js';
