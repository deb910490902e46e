// Synthetic chest-radiograph-like images for the built-in demo: a thorax with lungs, spine, ribs and a
// heart shadow, plus findings drawn where a reader would look for them. Each finding is independent;
// its visibility varies, so the task is learnable but not trivial. Deterministic given the seed.

export const DEMO_LABELS = ['cardiomegaly', 'pleural_effusion', 'nodule', 'pneumothorax'] as const;

import { mulberry32 } from '../engine/prng.js';

function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** One radiograph-like image of size×size with the given findings (1/0 per DEMO_LABELS). */
export function renderRadiograph(size: number, labels: readonly number[], rand: () => number): Float32Array {
  const img = new Float32Array(size * size);
  const s = size;
  const jitter = (v: number, a: number) => v + (rand() * 2 - 1) * a;
  const cx = jitter(0.5, 0.03) * s;
  const thoraxW = jitter(0.42, 0.03) * s;
  const thoraxH = jitter(0.45, 0.03) * s;
  const lungW = thoraxW * 0.42;
  const lungH = thoraxH * 0.8;
  const lungY = jitter(0.47, 0.02) * s;
  const lungs = [cx - thoraxW * 0.48, cx + thoraxW * 0.48];
  const heartScale = labels[0] ? jitter(1.75, 0.15) : jitter(1.0, 0.08);
  const heart = { x: cx + 0.05 * s, y: lungY + lungH * 0.45, rx: 0.13 * s * heartScale, ry: 0.1 * s * heartScale };
  const effusionSide = rand() < 0.5 ? 0 : 1;
  const effusionLevel = jitter(0.4, 0.08);
  const noduleSide = rand() < 0.5 ? 0 : 1;
  // Nodules and pneumothoraces are drawn large and dark enough to survive the downscale to the demo
  // model's 32-pixel input; their contrast varies (0.6–1) so that some cases stay hard.
  const nodule = { x: lungs[noduleSide] + jitter(0, lungW * 0.35), y: lungY + jitter(0, lungH * 0.35), r: jitter(0.11, 0.015) * s, contrast: jitter(0.8, 0.2) };
  const ptxSide = rand() < 0.5 ? 0 : 1;
  const ptxDepth = jitter(0.55, 0.1);
  const ptxContrast = jitter(0.8, 0.2);
  const ribPhase = rand() * Math.PI;
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      // Soft tissue of the thorax.
      const tx = (x - cx) / thoraxW;
      const ty = (y - lungY) / thoraxH;
      let v = 0.12 + 0.45 * Math.max(0, 1 - tx * tx - ty * ty * 0.8);
      // Lungs: dark, with faint vessel texture and ribs.
      for (let side = 0; side < 2; side++) {
        const lx = (x - lungs[side]) / lungW;
        const ly = (y - lungY) / lungH;
        const d = lx * lx + ly * ly;
        if (d < 1) {
          let lung = 0.3 * (1 - d) ** 0.5;
          const rib = 0.05 * Math.max(0, Math.sin((y / s) * 42 + lx * 3 + ribPhase)) ** 4;
          lung -= rib;
          if (labels[3] && side === ptxSide && ly < -1 + 2 * ptxDepth && lx * (side ? 1 : -1) > -0.2) lung += 0.4 * ptxContrast * Math.min(1, (-1 + 2 * ptxDepth - ly) * 5); // no lung markings: darker
          if (labels[1] && side === effusionSide && ly > 1 - 2 * effusionLevel) lung -= 0.4 * Math.min(1, (ly - (1 - 2 * effusionLevel)) * 4); // fluid
          v -= lung;
        }
      }
      // Spine and heart.
      v += 0.18 * Math.exp(-(((x - cx) / (0.045 * s)) ** 2));
      const hx = (x - heart.x) / heart.rx;
      const hy = (y - heart.y) / heart.ry;
      if (hx * hx + hy * hy < 1) v += 0.2 * (1 - hx * hx - hy * hy) ** 0.3;
      if (labels[2]) {
        const nd = Math.hypot(x - nodule.x, y - nodule.y) / nodule.r;
        if (nd < 1.5) v += 0.6 * nodule.contrast * Math.exp(-nd * nd * 1.5);
      }
      img[y * s + x] = v;
    }
  }
  // Exposure, contrast and noise vary between "scanners".
  const gain = jitter(1, 0.12);
  const bias = jitter(0, 0.04);
  const noise = 0.015 + rand() * 0.02;
  for (let i = 0; i < img.length; i++) img[i] = Math.min(1, Math.max(0, (img[i] + bias) * gain + noise * gauss(rand)));
  return img;
}

export interface SyntheticSample {
  name: string;
  split: 'train' | 'valid' | 'test';
  labels: number[];
  image: Float32Array;
}

/** Fractions of a synthetic dataset in the training and validation splits; the rest is test. */
export interface SplitFractions {
  train: number;
  valid: number;
}

/** `n` samples with independent findings (prevalences 20–30%), split 60/20/20 unless `fractions` says otherwise. */
export function syntheticDataset(n: number, size: number, seed: number, fractions: SplitFractions = { train: 0.6, valid: 0.2 }): SyntheticSample[] {
  const rand = mulberry32(seed);
  const prevalence = [0.3, 0.25, 0.3, 0.2];
  const out: SyntheticSample[] = [];
  for (let i = 0; i < n; i++) {
    const labels = prevalence.map((p) => (rand() < p ? 1 : 0));
    const r = i / n;
    const split = r < fractions.train ? 'train' : r < fractions.train + fractions.valid ? 'valid' : 'test';
    out.push({ name: `img${String(i).padStart(4, '0')}.png`, split, labels, image: renderRadiograph(size, labels, rand) });
  }
  return out;
}
