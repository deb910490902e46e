import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each test file opens its own Dawn device in its own process: a native addon is safest in forks.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Kernel choices by the rules only (engine/tune-node.ts): a user's tuning cache must not change
    // what the suite runs; the autotuner's own tests ask for their policy and a temporary cache.
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', VITGPU_TUNE: 'off' },
  },
});
