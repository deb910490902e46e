// Turns worker results into records, the printed table, the verdicts on vitgpu's speed targets, and
// the Markdown written by --markdown.

import type { Case } from './cases.js';
import type { Impl } from './peers.js';
import type { KernelUse, WorkerResult } from './worker.js';

export interface BenchRecord {
  op: string;
  shape: string;
  impl: Impl;
  /** Mean milliseconds per call; null when the implementation failed. */
  ms: number | null;
  gflops: number | null;
  gbps: number | null;
  /** Peak working memory of one call above its inputs (see MemoryTracker); null when not measurable. */
  peakBytes: number | null;
  caseId: string;
  mode: string | null;
  rme: number | null;
  medianMs: number | null;
  minMs: number | null;
  samples: number | null;
  calls: number | null;
  /** Process CPU time per call (see Timing.cpuMs). */
  cpuMs: number | null;
  /** Largest relative error of any output against the CPU reference. */
  checkRelErr: number | null;
  checkOk: boolean | null;
  /** Largest |difference| from vitgpu's outputs at the sampled positions, over all outputs. */
  diffVsVitgpu: number | null;
  memorySource: string | null;
  kernels?: KernelUse[];
  leakBytes?: number;
  notes: string[];
  error: string | null;
  adapter: string;
  loadavg: { start: number; end: number };
  /** Seconds per phase of the measurement (see WorkerResult.phases). */
  phases: Record<string, number>;
}

export function buildRecords(cases: readonly Case[], results: readonly WorkerResult[]): BenchRecord[] {
  const records: BenchRecord[] = [];
  for (const spec of cases) {
    const mine = results.filter((r) => r.caseId === spec.id);
    const vit = mine.find((r) => r.impl === 'vitgpu');
    for (const r of mine) {
      const ms = r.error ? null : (r.timing?.ms ?? null);
      const rate = (amount: number | null) => (amount !== null && ms ? amount / (ms / 1e3) / 1e9 : null);
      const rec: BenchRecord = {
        op: spec.op,
        shape: spec.shape,
        impl: r.impl,
        ms,
        gflops: rate(spec.flops),
        gbps: rate(spec.bytes),
        peakBytes: r.error ? null : r.peakBytes,
        caseId: spec.id,
        mode: r.mode ?? null,
        rme: r.timing?.rme ?? null,
        medianMs: r.timing?.medianMs ?? null,
        minMs: r.timing?.minMs ?? null,
        samples: r.timing?.samples ?? null,
        calls: r.timing?.calls ?? null,
        cpuMs: r.error ? null : (r.timing?.cpuMs ?? null),
        checkRelErr: r.check ? Math.max(...r.check.outputs.map((o) => o.relErr)) : null,
        checkOk: r.check ? r.check.ok : null,
        diffVsVitgpu: r.impl !== 'vitgpu' && vit?.samples && r.samples ? maxDiff(vit.samples, r.samples) : null,
        memorySource: r.memorySource ?? null,
        notes: r.notes,
        error: r.error ?? null,
        adapter: r.adapter,
        loadavg: r.loadavg,
        phases: r.phases,
      };
      if (r.kernels) rec.kernels = r.kernels;
      if (r.leakBytes !== undefined) rec.leakBytes = r.leakBytes;
      records.push(rec);
    }
  }
  return records;
}

function maxDiff(a: number[][], b: number[][]): number | null {
  if (a.length !== b.length) return null;
  let m = 0;
  a.forEach((row, i) => row.forEach((x, j) => {
    const d = Math.abs(x - b[i][j]);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }));
  return m;
}

// ---- formatting ----

const fmt = (x: number | null, digits: number) => (x === null ? '—' : x.toFixed(digits));
const mib = (b: number | null) => (b === null ? 'n/a' : (b / 2 ** 20).toFixed(1));

function msText(r: BenchRecord): string {
  if (r.ms === null) return '—';
  const digits = r.ms < 10 ? 2 : r.ms < 100 ? 1 : 0;
  return `${r.ms.toFixed(digits)} ±${(r.rme ?? 0).toFixed(0)}%`;
}

function vsVitgpu(r: BenchRecord, vit: BenchRecord | undefined): string {
  if (r.error) return `ERROR: ${r.error.length > 110 ? `${r.error.slice(0, 107)}...` : r.error}`;
  if (r.impl === 'vitgpu' || !vit?.ms || !r.ms) return '';
  const ratio = r.ms / vit.ms;
  return ratio >= 1 ? `vitgpu ${ratio.toFixed(2)}× faster than ${r.impl}` : `vitgpu ${(1 / ratio).toFixed(2)}× slower than ${r.impl}`;
}

function checkText(r: BenchRecord): string {
  if (r.checkRelErr === null) return '—';
  return `${r.checkOk ? 'ok' : 'FAIL'} ${r.checkRelErr.toExponential(0)}`;
}

const HEADER = ['op', 'shape', 'impl', 'ms', 'CPU ms', 'GFLOP/s', 'GB/s', 'peak MiB', 'check', 'Δ vitgpu', 'vs vitgpu'];

function rows(records: readonly BenchRecord[]): string[][] {
  return records.map((r) => {
    const vit = records.find((x) => x.caseId === r.caseId && x.impl === 'vitgpu');
    const delta = r.diffVsVitgpu === null ? '' : r.diffVsVitgpu === 0 ? '0' : r.diffVsVitgpu.toExponential(0);
    const cpu = r.cpuMs === null ? '—' : r.cpuMs.toFixed(r.cpuMs < 100 ? 1 : 0);
    return [r.op, r.shape, r.impl, msText(r), cpu, fmt(r.gflops, 2), fmt(r.gbps, 2), mib(r.peakBytes), checkText(r), delta, vsVitgpu(r, vit)];
  });
}

/** The results as an aligned plain-text table. */
export function formatTable(records: readonly BenchRecord[]): string {
  const body = rows(records);
  const all = [HEADER, ...body];
  const widths = HEADER.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd();
  const out = [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  ')];
  let prev = '';
  body.forEach((row, i) => {
    if (prev && records[i].caseId !== prev) out.push('');
    prev = records[i].caseId;
    out.push(line(row));
  });
  return out.join('\n');
}

export function markdownTable(records: readonly BenchRecord[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [HEADER, HEADER.map(() => '---'), ...rows(records)].map((row) => `| ${row.map(esc).join(' | ')} |`).join('\n');
}

// ---- targets ----

export interface TargetVerdict {
  target: string;
  /** null when it could not be judged (a missing measurement). */
  met: boolean | null;
  detail: string;
}

const PEERS: Impl[] = ['tfjs-webgpu', 'jax-js'];

export function evaluateTargets(records: readonly BenchRecord[]): TargetVerdict[] {
  const get = (caseId: string, impl: Impl) => records.find((r) => r.caseId === caseId && r.impl === impl);
  const verdicts: TargetVerdict[] = [];

  const mmTarget = 'matmul 1024³: vitgpu ≥3× the GFLOP/s of both tfjs-webgpu and jax-js';
  const vit = get('matmul-1024', 'vitgpu');
  if (vit) {
    if (!vit.gflops) {
      verdicts.push({ target: mmTarget, met: null, detail: `vitgpu not measured: ${vit.error ?? 'no result'}` });
    } else {
      const parts = [`vitgpu ${vit.gflops.toFixed(2)} GFLOP/s`];
      let met: boolean | null = true;
      for (const impl of PEERS) {
        const p = get('matmul-1024', impl);
        if (!p?.gflops) {
          parts.push(`${impl} not measured (${p?.error ?? 'not run'})`);
          met = met === false ? false : null;
          continue;
        }
        const ratio = vit.gflops / p.gflops;
        const cpuRatio = vit.cpuMs && p.cpuMs ? `; per CPU time ${(p.cpuMs / vit.cpuMs).toFixed(2)}×` : '';
        parts.push(`${impl} ${p.gflops.toFixed(2)} GFLOP/s (vitgpu ${ratio.toFixed(2)}×${cpuRatio})`);
        if (ratio < 3) met = false;
      }
      verdicts.push({ target: mmTarget, met, detail: parts.join('; ') });
    }
  }

  const attTarget = 'attention fwd+bwd B8 H12 N197 D64: vitgpu ≥2× faster than the fastest peer\'s composed version, with lower peak memory';
  const va = get('attention-fwd+bwd', 'vitgpu');
  if (va) {
    const peers = PEERS.map((impl) => get('attention-fwd+bwd', impl)).filter((p): p is BenchRecord => !!p?.ms);
    if (!va.ms) {
      verdicts.push({ target: attTarget, met: null, detail: `vitgpu not measured: ${va.error ?? 'no result'}` });
    } else if (peers.length === 0) {
      verdicts.push({ target: attTarget, met: null, detail: 'no peer produced a measurement' });
    } else {
      const fastest = peers.reduce((a, b) => (b.ms! < a.ms! ? b : a));
      const speedup = fastest.ms! / va.ms;
      const parts = [
        `vitgpu ${va.ms.toFixed(1)} ms, peak ${mib(va.peakBytes)} MiB`,
        ...peers.map((p) => `${p.impl} ${p.ms!.toFixed(1)} ms, peak ${mib(p.peakBytes)} MiB`),
        `fastest peer ${fastest.impl}: vitgpu ${speedup.toFixed(2)}× faster (needs ≥2×${va.cpuMs && fastest.cpuMs ? `; per CPU time ${(fastest.cpuMs / va.cpuMs).toFixed(2)}×` : ''})`,
      ];
      let memOk: boolean | null = null;
      if (va.peakBytes !== null && fastest.peakBytes !== null) {
        memOk = va.peakBytes < fastest.peakBytes;
        parts.push(`peak memory ${memOk ? 'lower' : 'not lower'} than ${fastest.impl}'s (${(va.peakBytes / fastest.peakBytes).toFixed(2)}×)`);
      } else {
        parts.push(`peak memory of ${fastest.impl} not measurable`);
      }
      const missing = PEERS.filter((impl) => !peers.some((p) => p.impl === impl));
      if (missing.length) parts.push(`not measured: ${missing.join(', ')}`);
      // With a peer unmeasured, the fastest peer is unknown: the target can fail but not pass.
      const met = speedup < 2 || memOk === false ? false : memOk === true && missing.length === 0 ? true : null;
      verdicts.push({ target: attTarget, met, detail: parts.join('; ') });
    }
  }
  return verdicts;
}

export function formatTargets(verdicts: readonly TargetVerdict[]): string {
  return verdicts
    .map((v) => `${v.met === true ? 'MET' : v.met === false ? 'NOT MET' : 'UNDECIDED'}: ${v.target}\n    ${v.detail}`)
    .join('\n');
}
