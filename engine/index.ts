/// <reference types="@webgpu/types" preserve="true" />
// vitgpu engine, browser-safe entry: everything here runs unchanged in a browser. In Node, get a
// device from `vitgpu/node` (engine/node.ts), which loads Dawn.

export { createDevice, Device, describeAdapterInfo, WANTED_FEATURES, type DeviceInfo, type DeviceOptions } from './device.js';
export { Tensor, Storage } from './tensor.js';
export { tidy, keep } from './scope.js';
export { noGrad, isGradEnabled, backward, GradNode } from './autograd.js';
export { type MemoryStats, sizeClass } from './buffer-pool.js';
export * from './errors.js';
export { tensor, full, randn, rand, arange, type TensorData } from './ops/creation.js';
export { add, sub, mul, div, pow, maximum, minimum, clamp, where, unary, elementwise } from './ops/elementwise.js';
export { sum, mean, max, min } from './ops/reduce.js';
export { reshape, permute, transpose, slice, narrow, expand, squeeze, unsqueeze, contiguous, concat } from './ops/views.js';
export { matmul, linear, type LinearOptions } from './ops/linear.js';
export { broadcastShapes, sizeOf, contiguousStrides } from './shape.js';
export { layerNorm, softmax, bceWithLogits, type BceOptions } from './ops/nn.js';
export { AdamW, gradNormScale, type AdamWOptions } from './optim.js';
export { attention } from './ops/attention.js';
export { patchEmbed, patchEmbedCpu } from './ops/conv.js';
