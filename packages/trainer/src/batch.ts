import * as tf from '@tensorflow/tfjs';
import type { Rng } from '@diff-instruct/sde';

/** A dataset held in memory: `data` is row-major [n, ...sampleShape]; `labels` (optional) are class ids. */
export interface Dataset {
  data: Float32Array;
  sampleShape: number[];
  labels?: Int32Array;
  numClasses?: number;
}

export function datasetSize(d: Dataset): number {
  const per = d.sampleShape.reduce((a, b) => a * b, 1);
  if (per === 0 || d.data.length % per !== 0) {
    throw new Error(`dataset: ${d.data.length} values do not divide into samples of shape [${d.sampleShape.join(', ')}]`);
  }
  return d.data.length / per;
}

/** `batch` rows drawn uniformly with replacement (the RNG alone decides, so a resumed run draws the same). */
export function drawBatch(d: Dataset, rng: Rng, batch: number): { x: tf.Tensor; labels?: Int32Array } {
  const n = datasetSize(d);
  const per = d.data.length / n;
  const out = new Float32Array(batch * per);
  const labels = d.labels ? new Int32Array(batch) : undefined;
  for (let b = 0; b < batch; b++) {
    const i = rng.int(n);
    out.set(d.data.subarray(i * per, (i + 1) * per), b * per);
    if (labels && d.labels) labels[b] = d.labels[i]!;
  }
  return { x: tf.tensor(out, [batch, ...d.sampleShape], 'float32'), labels };
}

/**
 * One-hot labels [N, C]. Rows whose label is negative stay all-zero: that is the "no label"
 * input of classifier-free guidance.
 */
export function oneHot(labels: Int32Array, numClasses: number): tf.Tensor2D {
  const out = new Float32Array(labels.length * numClasses);
  labels.forEach((l, i) => {
    if (l >= 0) out[i * numClasses + l] = 1;
  });
  return tf.tensor2d(out, [labels.length, numClasses]);
}

/** Class ids uniform on [0, numClasses). */
export function randomLabels(rng: Rng, n: number, numClasses: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(numClasses);
  return out;
}
