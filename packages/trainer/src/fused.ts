import * as tf from '@tensorflow/tfjs';

/**
 * Kernels of `@diff-instruct/native` that the optimisers use when the backend has them (the names
 * are that package's ADAM_KERNEL, EMA_KERNEL and SUM_SQUARES_KERNEL); otherwise the composed tfjs
 * ops run (equal for Adam and the EMA up to float32 rounding).
 */
export const ADAM_KERNEL = 'DiAdam';
export const EMA_KERNEL = 'DiEma';
/** One call for every parameter, updating in place the ones whose storage no other tensor shares. */
export const ADAM_IN_PLACE_KERNEL = 'DiAdamInPlace';
export const EMA_IN_PLACE_KERNEL = 'DiEmaInPlace';
export const SUM_SQUARES_KERNEL = 'DiSumSquares';

export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** Σ x² over every tensor: one native call where available, else a sum per tensor. */
export function sumOfSquares(ts: tf.Tensor[]): number {
  if (ts.length === 0) return 0;
  return tf.tidy(() => {
    const t = hasKernel(SUM_SQUARES_KERNEL)
      ? (tf.engine().runKernel(SUM_SQUARES_KERNEL, { ...ts } as unknown as tf.NamedTensorMap, {}) as tf.Tensor)
      : tf.addN(ts.map((g) => tf.sum(tf.square(g))));
    return t.dataSync()[0]!;
  });
}
