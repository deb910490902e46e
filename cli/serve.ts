// `vitgpu serve [--run RUN] [--port N]`: the browser page on http://127.0.0.1, with a run's model
// preloaded. The page (web/dist, built by scripts/build-web.mjs when missing) asks for
// model/info.json; with --run that names model/best.safetensors, served from the run with its length
// so the page can show download progress. Nothing listens beyond the loopback interface.

import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { runFiles, runSettings } from '../runs/run-dir-node.js';
import { nonNegativeInt } from './options.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_DIST = join(ROOT, 'web', 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
};

async function ensureBuilt(): Promise<void> {
  if (existsSync(join(WEB_DIST, 'index.html')) && existsSync(join(WEB_DIST, 'index.js'))) return;
  const script = join(ROOT, 'scripts', 'build-web.mjs');
  if (!existsSync(script)) throw new VitgpuError(`the web page is not built (${WEB_DIST}) and scripts/build-web.mjs is missing`);
  console.error('vitgpu: building the web page (web/dist)…');
  const { buildWeb } = (await import(pathToFileURL(script).href)) as { buildWeb: (o?: object) => Promise<unknown> };
  await buildWeb();
}

export interface ServeOptions {
  run?: string;
  port: number;
}

/** Starts the server; resolves with its URL and a close function. */
export async function startServer(opts: ServeOptions): Promise<{ url: string; close: () => Promise<void> }> {
  await ensureBuilt();
  let model: { file: string; size: number; name: string } | null = null;
  if (opts.run) {
    const { config } = await runSettings(opts.run); // a vitgpu run with readable settings, or a clear error now
    if (config.train?.lora) {
      throw new VitgpuError(`${opts.run} is a LoRA run: its best.safetensors holds the adapters and head only, which the page cannot put on their base; write a full checkpoint with \`npx vitgpu merge-lora ${opts.run} --out FILE\` and open FILE in the page`);
    }
    const file = runFiles(opts.run).best;
    model = { file, size: statSync(file).size, name: `${basename(resolve(opts.run))}/best.safetensors` };
  }
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
    if (path === '/model/info.json') {
      if (!model) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no model preloaded (vitgpu serve --run RUN)');
      return void res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' })
        .end(JSON.stringify({ url: 'model/best.safetensors', name: model.name, bytes: model.size }));
    }
    if (path === '/model/best.safetensors' && model) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(model.size), 'cache-control': 'no-store' });
      if (req.method === 'HEAD') return void res.end();
      return void createReadStream(model.file).on('error', () => res.destroy()).pipe(res);
    }
    const name = path === '/' ? 'index.html' : path.replace(/^\/+/, '');
    const file = resolve(WEB_DIST, name);
    if (name.includes('/') || !file.startsWith(WEB_DIST) || !TYPES[extname(file)]) return void res.writeHead(404).end();
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': TYPES[extname(file)], 'cache-control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'EADDRINUSE' ? new VitgpuError(`port ${opts.port} is in use on 127.0.0.1; pick another with --port (0: any free port)`) : err));
    server.listen(opts.port, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the browser page on 127.0.0.1, with a run\'s model preloaded')
    .option('--run <run-dir>', 'a vitgpu run directory whose best.safetensors the page loads at start')
    .option('--port <n>', 'port on 127.0.0.1 (0: any free port)', '8417')
    .action(async (f: { run?: string; port: string }) => {
      try {
        const { url, close } = await startServer({ run: f.run, port: nonNegativeInt(f.port, '--port')! });
        console.log(`vitgpu: serving ${url}${f.run ? ` with the model of ${f.run}` : ''} (Ctrl-C to stop)`);
        const stop = () => void close().then(() => process.exit(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (err) {
        console.error(`vitgpu: ${err instanceof VitgpuError ? err.message : (err as Error).stack ?? err}`);
        process.exit(1);
      }
    });
}
