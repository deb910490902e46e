// Attention kernel lab: times the variants of kernels/attention.ts (forward, dQ, dK/dV) at ViT-B/16
// batch 8 (B 8, H 12, N 197, D 64) and the shipped defaults end to end, next to the composed
// matmul–softmax–matmul on this engine's own kernels. Run it on the built-in adapter with
//
//   npx esbuild bench/lab/attention.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/attention.lab.mjs && node node_modules/.cache/vitgpu-lab/attention.lab.mjs
//
// Arguments (all optional): --shape 8,12,197,64  --kernels default,fwd,dq,dkv,composed
// --configs wg:rows:keyBlock:subgroup,...  (e.g. 8:2:1:8; "default" for the device's defaults)  --reps 5
//
// Each configuration runs once first (pipeline compile, unless lavapipe's disk cache has it) and is
// checked on the first and last head against the f64 reference. "cpu-norm." is the CPU time of this
// process (lavapipe's threads run in it) over the core count, best of the reps: when other jobs share
// the machine it still says roughly what the kernel costs with all cores to itself.
//
// Results on lavapipe (Mesa 25.0.7, LLVM 15, 2 cores of an AMD EPYC, shared with other jobs: load
// 2–9, so wall times vary 2×; cpu-norm. ms, ranges over 3–4 runs, B 8 H 12 N 197 D 64):
//
//   kernel  variant (wg:rows:keyBlock:subgroup)            cpu-norm. ms   compile (cold, loaded)
//   fwd     32:1:1:0  plain loads                          500–645
//   fwd     32:1:1:8  subgroup broadcast                   58–60          1–2.5 s
//   fwd     8:1:1:8                                        45–69          ~2.5 s
//   fwd     8:2:1:8   (default)                            35–52          ~6 s
//   fwd     16:2:1:8                                       37–51
//   fwd     32:2:2:8  key blocks of 2                      59–77
//   fwd     8:1:2:8                                        64–74
//   fwd     32:1:4:8                                       90
//   fwd     16:4:1:8, 32:4:1:8, 32:8:1:8 (wall ms, early runs) 38–49, 91–121, 119–144   16–35 s (rows 4), 143 s (rows 8)
//   fwd     32:3:1:8                                       —              27 s
//   dq      32:1:1:0  plain loads                          505–632
//   dq      8:1:1:8   (default)                            58–79          ~6 s
//   dq      8:2:1:8                                        59–81
//   dq      8:1:2:8                                        71–82
//   dkv     32:1:1:0  plain loads                          516–632
//   dkv     8:1:1:8   (default)                            71–114         ~5 s
//   dkv     8:2:1:8                                        46–62          ~29 s (not worth it as a default)
//   dkv     8:1:2:8                                        76–99
//
//   defaults end to end: forward 35–40 cpu-norm. ms (76–80 ms wall), backward 171–184 (340–364 ms
//   wall), forward + backward 190–198 (400–640 ms wall). Composed forward on this engine's kernels
//   (matmul, max, sub, exp, sum, div, matmul): 180–195 cpu-norm. ms (278–371 ms wall). The peers from
//   `node dist/bench/run.js --quick --only attention` at load ~9 (wall): tfjs-webgpu 2494 ms forward,
//   6596 ms forward + backward; jax-js 3805 ms and 7298 ms.

// At 512-bit vectors (16 lanes; 2026-11-30 18:00, quiet; configurations of a line run in both orders,
// best of 9, ms): fwd 8:2:1:8 25.0–25.2, 16:2:1:16 24.4–25.4; dq 8:1:1:8 40.5–41.5, 16:2:1:16 29.8–32.1,
// 16:1:1:16 33.7–34.2; dkv 8:1:1:8 56.8–58.9, 16:1:1:16 50.9–56.6. The backward defaults at 16 lanes
// are 16:1:1:16 since (bench/RESULTS.md, "Attention at 16 lanes").

import { availableParallelism, loadavg } from 'node:os';
import { createNodeDevice, Tensor, type Device } from '../../engine/node.js';
import { attentionBackward, attentionBackwardCpu, attentionCpu, attentionForward } from '../../kernels/attention.js';
import { defaultVariants, type AttentionVariant } from '../../kernels/attention-plan.js';
import {
  attentionBackwardDkvKernel, attentionBackwardDqKernel, attentionBackwardParams, attentionRowStatsKernel, attentionRowStatsParams,
  attentionRowStatsWorkgroups, attentionWorkgroups,
} from '../../kernels/attention-wgsl.js';
import { launch } from '../../kernels/wgsl.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function values(n: number, seed: number, amp: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = amp * (s / 2 ** 31 - 1);
  }
  return out;
}

function parseConfig(spec: string, fallback: AttentionVariant): AttentionVariant {
  if (spec === 'default') return fallback;
  const [wg, rows, keyBlock, subgroup] = spec.split(':').map(Number);
  return { wg, rows, keyBlock, subgroup: subgroup ?? 0 };
}

interface Timing {
  ms: number;
  cpuMs: number;
  firstMs: number;
}

/** Runs `step` once (compile), then `reps` times, each ending with a device sync. */
async function time(device: Device, reps: number, step: () => Tensor[]): Promise<Timing> {
  let t0 = performance.now();
  for (const t of step()) t.dispose();
  await device.sync();
  const firstMs = performance.now() - t0;
  const cores = availableParallelism();
  let best = Infinity;
  let bestCpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    for (const t of step()) t.dispose();
    await device.sync();
    best = Math.min(best, performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1000 / cores);
  }
  return { ms: best, cpuMs: bestCpu, firstMs };
}

/** Largest |got − ref| over the first and last head (`ref` holds those two heads back to back). */
function headError(got: Float32Array, ref: Float64Array, headSize: number, heads: number): number {
  let err = 0;
  [0, heads - 1].forEach((h, slot) => {
    for (let j = 0; j < headSize; j++) err = Math.max(err, Math.abs(got[h * headSize + j] - ref[slot * headSize + j]));
  });
  return err;
}

async function main(): Promise<void> {
  const [B, H, N, D] = arg('shape', '8,12,197,64').split(',').map(Number);
  const kernels = arg('kernels', 'default,fwd,dq,dkv,composed').split(',');
  const configs = arg('configs', 'default,8:1:1:8,8:2:1:8').split(',');
  const reps = Number(arg('reps', '5'));
  const scale = 1 / Math.sqrt(D);
  const device = await createNodeDevice();
  const defaults = defaultVariants(device);
  console.log(`adapter: ${device.name}; ${availableParallelism()} cores; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`shape B ${B} H ${H} N ${N} D ${D}; defaults ${JSON.stringify(defaults)}`);

  const shape = [B, H, N, D];
  const size = B * H * N * D;
  const host = [values(size, 1, 2), values(size, 2, 2), values(size, 3, 1), values(size, 4, 1)];
  const [q, k, v, g] = host.map((x) => device.tensor(x, shape));
  // f64 reference for the first and last head.
  const headSize = N * D;
  const headOf = (x: Float32Array, h: number) => x.subarray(h * headSize, (h + 1) * headSize);
  const refs = [0, B * H - 1].map((h) => {
    const [qh, kh, vh, gh] = host.map((x) => headOf(x, h));
    return { ...attentionCpu(qh, kh, vh, 1, 1, N, D, scale), ...attentionBackwardCpu(qh, kh, vh, gh, 1, 1, N, D, scale) };
  });
  const cat = (key: 'out' | 'dq' | 'dk' | 'dv') => {
    const r = new Float64Array(2 * headSize);
    r.set(refs[0][key], 0);
    r.set(refs[1][key], headSize);
    return r;
  };
  const errOf = async (t: Tensor, key: 'out' | 'dq' | 'dk' | 'dv') => headError(await t.data(), cat(key), headSize, B * H);

  const fwd = attentionForward(q, k, v, scale);
  const report = (what: string, t: Timing, err: number) =>
    console.log(`${what.padEnd(44)} ${t.ms.toFixed(1).padStart(8)} ms  ${t.cpuMs.toFixed(1).padStart(8)} cpu-norm. ms  first ${t.firstMs.toFixed(0).padStart(6)} ms  max|err| ${err.toExponential(1)}`);

  if (kernels.includes('default')) {
    const f = attentionForward(q, k, v, scale);
    const ef = await errOf(f.out, 'out');
    const b = attentionBackward(q, k, v, f.out, f.lse, g, scale);
    const eb = Math.max(await errOf(b.dq, 'dq'), await errOf(b.dk, 'dk'), await errOf(b.dv, 'dv'));
    for (const t of [f.out, f.lse, b.dq, b.dk, b.dv]) t.dispose();
    report('default forward', await time(device, reps, () => Object.values(attentionForward(q, k, v, scale))), ef);
    report('default backward', await time(device, reps, () => Object.values(attentionBackward(q, k, v, fwd.out, fwd.lse, g, scale))), eb);
    report('default forward + backward', await time(device, reps, () => {
      const r = attentionForward(q, k, v, scale);
      const grads = attentionBackward(q, k, v, r.out, r.lse, g, scale);
      return [r.out, r.lse, ...Object.values(grads)];
    }), Math.max(ef, eb));
  }

  // The backward kernels one at a time, on the stats of the default forward.
  const stats = Tensor.empty(device, [B, H, N, 2]);
  // Contiguous [B, H, N, D] in vec4s; dk and dv share one [2, B, H, N, D] buffer (one binding).
  const flat = { offset: 0, batch: (H * N * D) / 4, head: (N * D) / 4, row: D / 4 };
  launch(attentionRowStatsKernel(D), { stats, o: fwd.out, dO: g, lse: fwd.lse },
    attentionRowStatsParams(B * H * N, N, H, 0, flat, flat), attentionRowStatsWorkgroups(B * H * N));
  const io = { q: flat, k: flat, v: flat, dOut: flat };
  const dqParams = attentionBackwardParams(N, B * H, H, scale, { ...io, out1: flat, out2: flat });
  const dkvParams = attentionBackwardParams(N, B * H, H, scale, { ...io, out1: flat, out2: { ...flat, offset: (B * H * N * D) / 4 } });
  const inputs = { q, k, v, dO: g, stats };
  for (const kernel of kernels.filter((x) => x === 'fwd' || x === 'dq' || x === 'dkv')) {
    for (const spec of configs) {
      if (kernel === 'fwd') {
        const vr = parseConfig(spec, defaults.forward);
        const f = attentionForward(q, k, v, scale, vr);
        const err = await errOf(f.out, 'out');
        f.out.dispose();
        f.lse.dispose();
        report(`fwd ${JSON.stringify(vr)}`, await time(device, reps, () => Object.values(attentionForward(q, k, v, scale, vr))), err);
      } else if (kernel === 'dq') {
        const vr = parseConfig(spec, defaults.dq);
        const run = () => {
          const dq = Tensor.empty(device, shape);
          launch(attentionBackwardDqKernel(D, vr), { dq, ...inputs }, dqParams, attentionWorkgroups(N, B * H, vr));
          return [dq];
        };
        const [dq] = run();
        const err = await errOf(dq, 'dq');
        dq.dispose();
        report(`dq ${JSON.stringify(vr)}`, await time(device, reps, run), err);
      } else {
        const vr = parseConfig(spec, defaults.dkv);
        const run = () => {
          const dkv = Tensor.empty(device, [2, ...shape]);
          launch(attentionBackwardDkvKernel(D, vr), { dkv, ...inputs }, dkvParams, attentionWorkgroups(N, B * H, vr));
          const dk = dkv.narrow(0, 0, 1).squeeze(0);
          const dv = dkv.narrow(0, 1, 1).squeeze(0);
          dkv.dispose();
          return [dk, dv];
        };
        const [dk, dv] = run();
        const err = Math.max(await errOf(dk, 'dk'), await errOf(dv, 'dv'));
        dk.dispose();
        dv.dispose();
        report(`dkv ${JSON.stringify(vr)}`, await time(device, reps, run), err);
      }
    }
  }

  if (kernels.includes('composed')) {
    // softmax(q·kᵀ·scale)·v from this engine's matmul, reductions and elementwise kernels.
    const composed = () => {
      const s = q.matmul(k.transpose()).mul(scale);
      const m = s.max(-1, true);
      const e = s.sub(m).exp();
      const l = e.sum(-1, true);
      const p = e.div(l);
      const o = p.matmul(v);
      for (const t of [s, m, e, l, p]) t.dispose();
      return o;
    };
    const o = composed();
    const err = await errOf(o, 'out');
    o.dispose();
    report('composed forward (matmul, softmax, matmul)', await time(device, reps, () => [composed()]), err);
  }
  device.destroy();
  // Dawn keeps the process alive while its instance is referenced.
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
