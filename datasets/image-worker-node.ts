// An image worker thread for image-pool-node.ts: runs each job it is sent and posts the
// result back, handing over the pixel buffer instead of copying it. Started from the compiled
// dist/datasets/image-worker-node.js (see image-pool-node.ts, "Workers").

import { parentPort } from 'node:worker_threads';
import { runImageJob, type WorkerReply, type WorkerRequest } from './image-jobs-node.js';

const port = parentPort;
if (!port) throw new Error('datasets/image-worker-node runs only as a worker thread');

port.on('message', async (request: WorkerRequest) => {
  const result = await runImageJob(request.job);
  const transfer = result.ok && result.data ? [result.data.buffer as ArrayBuffer] : [];
  port.postMessage({ id: request.id, result } satisfies WorkerReply, transfer);
});
