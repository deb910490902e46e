// What a profile reports: kernel events, the per-kernel table and a Chrome trace (Trace Event Format,
// which Perfetto and chrome://tracing open). Plain data, so a report can cross a process boundary
// (the benchmark's workers send theirs to the orchestrator). Browser-safe.

/** Work one dispatch does, as its launcher declares it: FLOPs (2 per multiply-add) and bytes moved. */
export interface KernelWork {
  flops?: number;
  bytes?: number;
}

/** 'timestamp': GPU timestamp queries around each dispatch; 'cpu': a flush per kernel, timed by the CPU. */
export type ProfileTiming = 'timestamp' | 'cpu';

/** One timed dispatch. */
export interface KernelEvent {
  name: string;
  work?: KernelWork;
  /** Start, ms from the first timed dispatch (timestamp) or from the profile's start (cpu). */
  startMs: number;
  ms: number;
}

export interface KernelStats {
  name: string;
  calls: number;
  ms: number;
  /** Fraction of all kernels' time. */
  share: number;
  /** Totals over the calls when every call declared them, else null. */
  flops: number | null;
  bytes: number | null;
  gflops: number | null;
  gbps: number | null;
}

export interface ProfileReport {
  timing: ProfileTiming;
  /** Events not kept for the trace (past MAX_TRACE_EVENTS); they still count in `kernels`. */
  droppedEvents: number;
  device: string;
  /** Wall-clock time from the profile's start to its stop, ms. */
  wallMs: number;
  /** Sum of all kernel times, ms. */
  kernelMs: number;
  dispatches: number;
  /** By total time, largest first. */
  kernels: KernelStats[];
  events: KernelEvent[];
}

/** Events kept for the trace; a long profiled run (a whole training) keeps counting past it. */
export const MAX_TRACE_EVENTS = 200_000;

/** Per-kernel totals, added to one event at a time (flops/bytes: NaN once a call declared none). */
export class KernelTotals {
  private readonly byName = new Map<string, { calls: number; ms: number; flops: number; bytes: number }>();
  readonly events: KernelEvent[] = [];
  dropped = 0;

  add(e: KernelEvent): void {
    let t = this.byName.get(e.name);
    if (!t) this.byName.set(e.name, (t = { calls: 0, ms: 0, flops: 0, bytes: 0 }));
    t.calls++;
    t.ms += e.ms;
    t.flops += e.work?.flops ?? NaN;
    t.bytes += e.work?.bytes ?? NaN;
    if (this.events.length < MAX_TRACE_EVENTS) this.events.push(e);
    else this.dropped++;
  }

  report(meta: { timing: ProfileTiming; device: string; wallMs: number }): ProfileReport {
    let kernelMs = 0;
    let dispatches = 0;
    for (const t of this.byName.values()) {
      kernelMs += t.ms;
      dispatches += t.calls;
    }
    const known = (x: number) => (Number.isNaN(x) ? null : x);
    const kernels = [...this.byName].map(([name, t]): KernelStats => {
      const flops = known(t.flops);
      const bytes = known(t.bytes);
      return {
        name, calls: t.calls, ms: t.ms, share: kernelMs > 0 ? t.ms / kernelMs : 0, flops, bytes,
        gflops: flops !== null && t.ms > 0 ? flops / t.ms / 1e6 : null,
        gbps: bytes !== null && t.ms > 0 ? bytes / t.ms / 1e6 : null,
      };
    });
    kernels.sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name));
    const events = [...this.events].sort((a, b) => a.startMs - b.startMs);
    return { ...meta, droppedEvents: this.dropped, kernelMs, dispatches, kernels, events };
  }
}

const fmt = (x: number | null, digits: number) => (x === null ? '—' : x.toFixed(digits));

/** The table of kernels by total time (the first `top` rows, the rest summed in one line). */
export function formatProfileTable(r: ProfileReport, top = 25): string {
  const how = r.timing === 'timestamp' ? 'GPU timestamp queries' : 'CPU-timed, a flush per kernel (coarse: includes queue gaps)';
  const head = [
    `profile: ${r.dispatches} dispatches, kernels ${r.kernelMs.toFixed(1)} ms of ${r.wallMs.toFixed(1)} ms wall (${how}); ${r.device}`,
  ];
  if (r.droppedEvents) head.push(`(the trace keeps the first ${r.events.length} dispatches; the table counts all)`);
  const rows = r.kernels.slice(0, top).map((k) => [
    k.name, String(k.calls), k.ms.toFixed(2), `${(100 * k.share).toFixed(1)}%`, (k.ms / k.calls).toFixed(3), fmt(k.gflops, 2), fmt(k.gbps, 2),
  ]);
  const rest = r.kernels.slice(top);
  if (rest.length) {
    const ms = rest.reduce((s, k) => s + k.ms, 0);
    const calls = rest.reduce((s, k) => s + k.calls, 0);
    rows.push([`(${rest.length} more kernels)`, String(calls), ms.toFixed(2), `${(100 * (r.kernelMs > 0 ? ms / r.kernelMs : 0)).toFixed(1)}%`, '', '', '']);
  }
  const header = ['kernel', 'calls', 'ms', 'share', 'ms/call', 'GFLOP/s', 'GB/s'];
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  return [...head, line(header), ...rows.map(line)].join('\n');
}

/** Chrome's Trace Event Format (JSON object form). */
export interface ChromeTrace {
  traceEvents: Record<string, unknown>[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

/**
 * The report's kernels as complete ('X') events on one track per process: `pid` and `label` tell
 * several reports apart when traces are merged (one process per benchmark case).
 */
export function chromeTrace(r: ProfileReport, label = 'vitgpu', pid = 1): ChromeTrace {
  const tid = 1;
  const meta = [
    { name: 'process_name', ph: 'M', pid, tid, args: { name: label } },
    { name: 'thread_name', ph: 'M', pid, tid, args: { name: r.timing === 'timestamp' ? 'GPU kernels (timestamp-query)' : 'GPU kernels (CPU-timed)' } },
  ];
  const events = r.events.map((e) => ({
    name: e.name, cat: 'kernel', ph: 'X', pid, tid,
    ts: Math.round(e.startMs * 1e3 * 1000) / 1000,
    dur: Math.round(e.ms * 1e3 * 1000) / 1000,
    args: e.work ? { ...e.work } : {},
  }));
  return {
    traceEvents: [...meta, ...events],
    displayTimeUnit: 'ms',
    otherData: { timing: r.timing, device: r.device, wallMs: r.wallMs, kernelMs: r.kernelMs, dispatches: r.dispatches, droppedEvents: r.droppedEvents },
  };
}

/** Several traces in one file, each keeping its own process track. */
export function mergeTraces(traces: readonly ChromeTrace[]): ChromeTrace {
  return {
    traceEvents: traces.flatMap((t) => t.traceEvents),
    displayTimeUnit: 'ms',
    otherData: { parts: traces.map((t) => t.otherData) },
  };
}
