#!/usr/bin/env node
// Launcher for the compiled command-line tool (dist/ is produced by `npm run build`, which setup runs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('vitgpu is not built yet: run `npm run setup` (or `npm run build`) in the checkout first.');
  process.exit(1);
}
await import(entry.href);
