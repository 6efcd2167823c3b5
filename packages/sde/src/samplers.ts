import * as tf from '@tensorflow/tfjs';

import { karrasSigmas } from './noise.js';
import type { Rng } from './rng.js';
import type { Denoiser } from './types.js';

/** Options shared by the samplers. */
export interface SamplerOptions {
  /** Class labels, [N, numClasses], passed to every denoiser call. */
  label?: tf.Tensor2D;
}

/** A sampler's output: the samples, and the number of function (denoiser) evaluations. */
export interface SamplerResult {
  x: tf.Tensor;
  nfe: number;
}

export type SamplerName = 'heun' | 'euler' | 'euler-maruyama';

/**
 * EDM's deterministic sampler, Algorithm 1 of Karras et al. 2022: Heun's method on the
 * probability-flow ODE dx/dσ = (x − D(x; σ))/σ, with no second-order correction on the last step to
 * σ = 0. `x` is at noise level sigmas[0] (already scaled by σ_max). With n steps, NFE = 2n − 1.
 */
export function heunSampler(
  denoiser: Denoiser,
  x: tf.Tensor,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): SamplerResult {
  return runSteps('heunSampler', denoiser, x, sigmas, opts, (cur, s, sNext, D) => {
    const d = tf.div(tf.sub(cur, D(cur, s)), s); // dx/dσ at σ_i
    const xNext = tf.add(cur, tf.mul(d, sNext - s)); // Euler step
    if (sNext === 0) return xNext;
    const dNext = tf.div(tf.sub(xNext, D(xNext, sNext)), sNext); // dx/dσ at σ_{i+1}
    return tf.add(cur, tf.mul(tf.add(d, dNext), 0.5 * (sNext - s))); // trapezoidal correction
  });
}

/** Euler's method on the probability-flow ODE dx/dσ = (x − D(x; σ))/σ. With n steps, NFE = n. */
export function eulerSampler(
  denoiser: Denoiser,
  x: tf.Tensor,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): SamplerResult {
  return runSteps('eulerSampler', denoiser, x, sigmas, opts, (cur, s, sNext, D) => {
    const d = tf.div(tf.sub(cur, D(cur, s)), s);
    return tf.add(cur, tf.mul(d, sNext - s));
  });
}

/**
 * Euler–Maruyama on the reverse-time SDE of the VE process (σ(t) = t, G(t) = √(2t), eq. (B.1)):
 *   dx = −G(t)² ∇log p_t(x) dt + G(t) dw̄ = −2t ∇log p_t(x) dt + √(2t) dw̄,   ∇log p_t = (D(x; t) − x)/t².
 * A step from t_i down to t_{i+1} (Δ = t_i − t_{i+1} > 0) is
 *   x ← x + 2 t_i Δ · (D(x; t_i) − x)/t_i² + √(2 t_i Δ) · z,   z ~ N(0, I),
 * and the last step, to σ = 0, is the deterministic denoise x ← D(x; t_{n−1}). With n steps, NFE = n.
 */
export function eulerMaruyamaSampler(
  denoiser: Denoiser,
  x: tf.Tensor,
  sigmas: ArrayLike<number>,
  rng: Rng,
  opts: SamplerOptions = {},
): SamplerResult {
  return runSteps('eulerMaruyamaSampler', denoiser, x, sigmas, opts, (cur, t, tNext, D) => {
    const d = D(cur, t);
    if (tNext === 0) return d;
    const dt = t - tNext;
    const score = tf.div(tf.sub(d, cur), t * t);
    const z = rng.normalTensor(cur.shape);
    return tf.add(tf.add(cur, tf.mul(score, 2 * t * dt)), tf.mul(z, Math.sqrt(2 * t * dt)));
  });
}

/**
 * Draws samples from a teacher denoiser: x_T = σ_max·ε with ε from `rng`, the Karras grid (eq. (5) of
 * Karras et al. 2022, ρ = 7 by default), then the chosen sampler (EDM Heun by default).
 * `shape` includes the batch axis. NFE: 2·steps − 1 for Heun, `steps` otherwise.
 */
export function sampleTeacher(
  denoiser: Denoiser,
  opts: {
    shape: number[];
    steps: number;
    sampler?: SamplerName;
    rng: Rng;
    label?: tf.Tensor2D;
    sigmaMin?: number;
    sigmaMax?: number;
    rho?: number;
  },
): SamplerResult {
  const sampler = opts.sampler ?? 'heun';
  const sigmas = karrasSigmas({
    steps: opts.steps,
    ...(opts.sigmaMin !== undefined && { sigmaMin: opts.sigmaMin }),
    ...(opts.sigmaMax !== undefined && { sigmaMax: opts.sigmaMax }),
    ...(opts.rho !== undefined && { rho: opts.rho }),
  });
  const xT = tf.tidy(() => tf.mul(opts.rng.normalTensor(opts.shape), sigmas[0]!));
  const so: SamplerOptions = opts.label ? { label: opts.label } : {};
  try {
    switch (sampler) {
      case 'heun':
        return heunSampler(denoiser, xT, sigmas, so);
      case 'euler':
        return eulerSampler(denoiser, xT, sigmas, so);
      case 'euler-maruyama':
        return eulerMaruyamaSampler(denoiser, xT, sigmas, opts.rng, so);
      default:
        throw new Error(`sampleTeacher: unknown sampler "${String(sampler)}" (heun, euler, euler-maruyama)`);
    }
  } finally {
    xT.dispose();
  }
}

type CountedDenoiser = (x: tf.Tensor, sigma: number) => tf.Tensor;

/**
 * The loop shared by the samplers: validates the grid, counts denoiser calls, and runs each step in
 * its own tf.tidy, so that only the current x is alive between steps. The caller's `x` is not disposed.
 */
function runSteps(
  op: string,
  denoiser: Denoiser,
  x: tf.Tensor,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions,
  step: (x: tf.Tensor, sigma: number, sigmaNext: number, D: CountedDenoiser) => tf.Tensor,
): SamplerResult {
  checkSigmas(op, sigmas);
  if (x.rank < 1) throw new Error(`${op}: x must have a batch axis, got a scalar`);
  const n = x.shape[0]!;
  if (opts.label && opts.label.shape[0] !== n) {
    throw new Error(`${op}: label has batch size ${opts.label.shape[0]} but x has ${n}`);
  }
  let nfe = 0;
  const D: CountedDenoiser = (y, sigma) => {
    nfe++;
    return denoiser(y, tf.fill([n], sigma) as tf.Tensor1D, opts.label);
  };
  let cur = x.clone();
  for (let i = 0; i + 1 < sigmas.length; i++) {
    const prev = cur;
    cur = tf.tidy(() => step(prev, sigmas[i]!, sigmas[i + 1]!, D));
    prev.dispose();
  }
  return { x: cur, nfe };
}

function checkSigmas(op: string, sigmas: ArrayLike<number>): void {
  if (sigmas.length < 1) throw new Error(`${op}: sigmas must not be empty`);
  for (let i = 0; i < sigmas.length; i++) {
    const s = sigmas[i]!;
    const last = i === sigmas.length - 1;
    if (!(Number.isFinite(s) && (s > 0 || (last && s === 0)))) {
      throw new Error(`${op}: sigmas must be finite and > 0 (only the last may be 0); sigmas[${i}] = ${s}`);
    }
    if (i > 0 && !(s < sigmas[i - 1]!)) {
      throw new Error(
        `${op}: sigmas must be strictly decreasing; sigmas[${i - 1}] = ${sigmas[i - 1]}, sigmas[${i}] = ${s}`,
      );
    }
  }
}
