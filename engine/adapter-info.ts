// What the engine knows of an adapter, and the helpers that read it (engine/device.ts re-exports them).
// Browser-safe: no import of Node.

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** The optional features we asked for and got. */
  features: string[];
  limits: Record<string, number>;
}

/** Reads an environment flag in Node, nothing in a browser (no import of `process`). */
export function envValue(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = proc?.env?.[name];
  return v === '' ? undefined : v;
}

export function describeAdapterInfo(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length ? [...new Set(parts)].join(' / ') : 'unnamed adapter';
}

/** True for adapters that are really CPUs (lavapipe/llvmpipe, SwiftShader, fallback adapters). */
export function isCpuAdapterInfo(info: DeviceInfo): boolean {
  return (
    info.architecture === 'software' ||
    info.isFallbackAdapter ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`)
  );
}
