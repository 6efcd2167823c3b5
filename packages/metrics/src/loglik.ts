import * as tf from '@tensorflow/tfjs';

/** Rows per call of `logProb`, to bound memory. */
const CHUNK = 4096;

/**
 * The mean log-density (1/n) Σ log p(x_i) of the rows of `x` under `logProb`, evaluated in chunks
 * inside `tf.tidy`. For exact samples of p it estimates −H(p), the negative entropy.
 */
export function meanLogLik(x: Float32Array, dim: number, logProb: (x: tf.Tensor2D) => tf.Tensor1D): number {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`meanLogLik: dim must be a positive integer, got ${dim}`);
  if (x.length % dim !== 0) throw new Error(`meanLogLik: x has ${x.length} values, not a multiple of dim ${dim}`);
  const n = x.length / dim;
  if (n === 0) throw new Error('meanLogLik: x is empty');
  let total = 0;
  for (let s = 0; s < n; s += CHUNK) {
    const rowsHere = Math.min(CHUNK, n - s);
    const lp = tf.tidy(() => {
      const out = logProb(tf.tensor2d(x.subarray(s * dim, (s + rowsHere) * dim), [rowsHere, dim]));
      if (out.shape.length !== 1 || out.shape[0] !== rowsHere) {
        throw new Error(`meanLogLik: logProb must return shape [${rowsHere}], got [${out.shape.join(', ')}]`);
      }
      return out.dataSync();
    });
    for (const v of lp) total += v;
  }
  return total / n;
}
