import * as tf from '@tensorflow/tfjs';

export interface GradCheckOptions {
  /** Finite-difference step. Float32 arithmetic: around 1e-2 balances truncation and round-off. */
  eps?: number;
  /** How many coordinates of each input to probe (chosen evenly); all when the input is smaller. */
  probes?: number;
}

export interface GradCheckResult {
  /** The largest |analytic − numeric| / max(1, |numeric|) over the probed coordinates. */
  maxRelError: number;
  analytic: number[];
  numeric: number[];
}

/**
 * Compares the gradient of a scalar function, as tfjs computes it (custom gradients included),
 * with central finite differences (f(x + h e_i) − f(x − h e_i)) / 2h at chosen coordinates.
 * tfjs has no such checker; every custom gradient in this project is tested with this one.
 */
export function gradCheck(
  f: (...xs: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
  opts: GradCheckOptions = {},
): GradCheckResult {
  const eps = opts.eps ?? 1e-2;
  const probes = opts.probes ?? 16;
  // Read inside a block: tf.tidy walks what its function returns, element by element for a typed array.
  let grads: tf.backend_util.TypedArray[] = [];
  tf.tidy(() => {
    grads = tf.grads(f)(inputs).map((g) => g.dataSync());
  });
  const analytic: number[] = [];
  const numeric: number[] = [];
  let maxRelError = 0;
  inputs.forEach((x, k) => {
    const base = x.dataSync().slice() as Float32Array;
    const step = Math.max(1, Math.floor(base.length / probes));
    for (let i = 0; i < base.length; i += step) {
      const evalAt = (delta: number) =>
        tf.tidy(() => {
          const v = base.slice();
          v[i] = v[i]! + delta;
          const args = inputs.map((y, j) => (j === k ? tf.tensor(v, x.shape, 'float32') : y));
          return f(...args).dataSync()[0]!;
        });
      const num = (evalAt(eps) - evalAt(-eps)) / (2 * eps);
      const ana = grads[k]![i]!;
      analytic.push(ana);
      numeric.push(num);
      maxRelError = Math.max(maxRelError, Math.abs(ana - num) / Math.max(1, Math.abs(num)));
    }
  });
  return { maxRelError, analytic, numeric };
}

/**
 * A tolerance for float32 comparisons that depends on the backend the tests run on:
 * the wasm (XNNPACK) kernels reorder sums differently from the pure-JS `cpu` kernels.
 */
export function tol(base: number): number {
  const backend = tf.getBackend();
  return backend === 'cpu' ? base : base * 2;
}
