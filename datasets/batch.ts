// A batch of preprocessed images with their labels, and a source of them per epoch: what the trainer
// and the prediction loop consume (datasets/batch-loader-node.ts makes them in Node).

export interface Batch {
  /** [B, 3, S, S], preprocessed and (for training) augmented. */
  images: Float32Array;
  /** [B, L]: 1 / 0, or NaN where the label is ignored. */
  labels: Float32Array;
  paths: string[];
  /** Master-list lines of the images. */
  rows: number[];
  /**
   * [B, D]: a frozen backbone's final-norm CLS embeddings of the images, when the source serves cached
   * features (runs/features-node.ts); `images` is then empty.
   */
  features?: Float32Array;
  /** Batch number within the epoch. */
  index: number;
  size: number;
}

export interface BatchSource {
  readonly batchesPerEpoch: number;
  /** Samples per epoch. */
  readonly samples: number;
  /** The batches of one epoch, in the order fixed by (seed, epoch), from batch `startBatch` on. */
  epoch(epoch: number, startBatch?: number): AsyncIterable<Batch>;
  /** Seconds the consumer has waited for data so far. */
  dataWaitSeconds(): number;
}
