import type * as tf from '@tensorflow/tfjs';

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * The shape contract shared by every loss: `x0` is [N, ...dims], `noise` has the same shape,
 * `sigma` is [N] (one noise level per sample) and `label`, if given, is [N, classes].
 * Throws an error that names the op and the offending argument.
 */
export function checkBatch(
  op: string,
  args: { x0: tf.Tensor; sigma: tf.Tensor; noise: tf.Tensor; label?: tf.Tensor | undefined },
): number {
  const { x0, sigma, noise, label } = args;
  if (x0.rank < 1) throw new Error(`${op}: x0 must have a batch dimension, got shape ${fmt(x0.shape)}`);
  const n = x0.shape[0]!;
  if (noise.rank !== x0.rank || noise.shape.some((d, i) => d !== x0.shape[i])) {
    throw new Error(`${op}: noise has shape ${fmt(noise.shape)} but x0 has shape ${fmt(x0.shape)}; they must match`);
  }
  if (sigma.rank !== 1 || sigma.shape[0] !== n) {
    throw new Error(`${op}: sigma must have shape [${n}] (one noise level per sample of x0), got ${fmt(sigma.shape)}`);
  }
  if (label !== undefined && (label.rank !== 2 || label.shape[0] !== n)) {
    throw new Error(`${op}: label must have shape [${n}, classes], got ${fmt(label.shape)}`);
  }
  return n;
}
