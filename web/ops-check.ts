// Browser check: runs the engine's modules, unchanged, on navigator.gpu and publishes the results of a
// fixed set of computations (web/ops-check-cases.ts) for test/browser/browser.test.ts to compare with
// the same computations in Node. Bundled by scripts/build-web.mjs into web/dist/ops-check.js.

import { createDevice, type Device } from '../engine/index.js';
import { computeOpsCases } from './ops-check-cases.js';

export interface OpsCheckReport {
  /** The adapter's one-line name (Device.name). */
  adapter: string;
  info: Device['info'];
  results: Record<string, number[]>;
  ms: number;
}

declare global {
  interface Window {
    __vitgpuResult?: OpsCheckReport;
    __vitgpuError?: string;
  }
}

/** Creates a device on `gpu`, runs every case and returns the report (the device is destroyed after). */
export async function runOpsCheckReport(gpu: GPU): Promise<OpsCheckReport> {
  const t0 = performance.now();
  const device = await createDevice(gpu);
  try {
    const results = await computeOpsCases(device);
    return { adapter: device.name, info: device.info, results, ms: performance.now() - t0 };
  } finally {
    device.destroy();
  }
}

function show(text: string): void {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
}

// In a page: run at once and leave the outcome on window for the test (and a line for a person).
if (typeof window !== 'undefined' && typeof document !== 'undefined') {
  runOpsCheckReport(navigator.gpu).then(
    (report) => {
      window.__vitgpuResult = report;
      show(`ok: ${Object.keys(report.results).length} cases on ${report.adapter} in ${report.ms.toFixed(0)} ms`);
    },
    (err: unknown) => {
      const e = err as Error;
      const text = String(err);
      window.__vitgpuError = e && typeof e.stack === 'string' ? (e.stack.includes(text) ? e.stack : `${text}\n${e.stack}`) : text;
      show(`error: ${String(err)}`);
    },
  );
}
