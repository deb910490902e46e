/// <reference types="@webgpu/types" preserve="true" />
// The Node-only entry: creates devices through Dawn (the `webgpu` npm package) and gives file access
// (random-access reads, atomic writes). Nothing else in engine/, kernels/ or models/ imports Node; a
// browser bundle never reaches this file.

import { create, globals } from 'webgpu';
import { createDevice, type Device, type DeviceOptions } from './device.js';
import { LINUX_ADAPTER_HELP, NoAdapterError } from './errors.js';

export * from './index.js';
export * from './files-node.js';

let globalsInstalled = false;
// Dawn's GPU instance must outlive every device made from it: if it is garbage-collected, the next
// map or submit aborts the process. Devices keep theirs here until destroyed.
const instances = new Map<Device, GPU>();

function installGlobals(): void {
  if (globalsInstalled) return;
  // Dawn's GPUBufferUsage, GPUMapMode, ... as in a browser.
  Object.assign(globalThis, globals);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  globalsInstalled = true;
}

export interface NodeDeviceOptions extends DeviceOptions {
  /** Dawn backend to use (`vulkan`, `metal`, `d3d12`, `opengl`, ...). Also `VITGPU_BACKEND`. */
  backend?: string;
}

export interface AdapterSummary {
  backend: string;
  name: string;
}

function dawnFlags(adapter: string | undefined, backend: string | undefined): string[] {
  const flags: string[] = [];
  if (adapter) flags.push(`adapter=${adapter}`);
  if (backend) flags.push(`dawn-backend=${backend}`);
  return flags;
}

function parseAvailable(message: string): AdapterSummary[] {
  const out: AdapterSummary[] = [];
  for (const m of message.matchAll(/backend: '([^']*)', name: '([^']*)'/g)) out.push({ backend: m[1], name: m[2] });
  return out;
}

/** The adapters Dawn can see, by backend and name. */
export async function listAdapters(): Promise<AdapterSummary[]> {
  installGlobals();
  // Dawn lists every adapter in the error for an adapter name that matches none.
  try {
    await create(['adapter=\u0001no-such-adapter']).requestAdapter();
  } catch (err) {
    const found = parseAvailable(String((err as Error).message ?? err));
    if (found.length) return found;
  }
  const adapter = await create([]).requestAdapter();
  return adapter ? [{ backend: 'default', name: adapter.info?.description || adapter.info?.device || 'adapter' }] : [];
}

/**
 * A vitgpu Device on Dawn. The adapter is chosen by `options.adapter` or `VITGPU_ADAPTER` (a
 * case-insensitive substring of its name), else Dawn's default.
 */
export async function createNodeDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  installGlobals();
  const adapterName = options.adapter ?? (process.env.VITGPU_ADAPTER || undefined);
  const backend = options.backend ?? (process.env.VITGPU_BACKEND || undefined);
  const gpu = create(dawnFlags(adapterName, backend));
  try {
    // Dawn does its own name matching; don't match again against a differently formatted name.
    const device = await createDevice(gpu, { ...options, adapter: undefined, noAdapterHelp: LINUX_ADAPTER_HELP });
    instances.set(device, gpu);
    device.onDestroy(() => instances.delete(device));
    return device;
  } catch (err) {
    const message = String((err as Error).message ?? err);
    if (err instanceof NoAdapterError) throw err;
    if (/no suitable backends|adapter/i.test(message)) {
      const found = parseAvailable(message);
      const list = found.length ? found.map((a) => `  ${a.backend}: ${a.name}`).join('\n') : '  (none)';
      const what = [adapterName && `adapter "${adapterName}"`, backend && `backend "${backend}"`].filter(Boolean).join(' and ');
      throw new NoAdapterError(
        found.length ? `No WebGPU adapter matches ${what || 'the request'}. Available adapters:\n${list}` : LINUX_ADAPTER_HELP,
      );
    }
    throw err;
  }
}

/** A file opened for random access (structurally a models/safetensors.ts ByteSource). */
