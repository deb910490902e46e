// An image worker thread for loader-node.ts's ImagePool: runs each job it is sent and posts the
// result back, handing over the pixel buffer instead of copying it. Started from the compiled
// dist/datasets/loader-worker.js (see loader-node.ts, "Workers").

import { parentPort } from 'node:worker_threads';
import { runImageJob, type WorkerReply, type WorkerRequest } from './loader-node.js';

const port = parentPort;
if (!port) throw new Error('datasets/loader-worker runs only as a worker thread');

port.on('message', (request: WorkerRequest) => {
  const result = runImageJob(request.job);
  const transfer = result.ok && result.data ? [result.data.buffer as ArrayBuffer] : [];
  port.postMessage({ id: request.id, result } satisfies WorkerReply, transfer);
});
