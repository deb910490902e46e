// The one seeded CPU generator, for everything on the CPU side that must be reproducible from a seed:
// data shuffling and augmentation, bootstrap resampling, synthetic data. (GPU draws use Philox, in
// kernels/random.ts.)

/** mulberry32: a small, fast 32-bit PRNG returning uniform floats in [0, 1); the seed is taken modulo 2^32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
