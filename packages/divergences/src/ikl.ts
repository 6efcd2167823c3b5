import * as tf from '@tensorflow/tfjs';
import { type Denoiser, type Rng, perSample } from '@diff-instruct/sde';

import { simpson } from './quadrature.js';
import { gradientAsLoss } from './surrogate.js';
import { checkBatch } from './validate.js';

/**
 * The weight w(σ) of (3.2), per sample, on the score difference s_fake − s_teacher, with scores
 * s = (D − x_t)/σ² (shared by `iklSurrogate`, `sdsSurrogate` and `sidLoss`):
 * - `'sigma2'` (default): w = σ², so w·(s_fake − s_teacher) = D_fake − D_teacher, the plain
 *   difference of denoisers used by the official Diff-Instruct code;
 * - `'uniform'`: w = 1;
 * - `'edm'`: w = σ⁴·λ(σ) = σ²(σ² + σ_d²)/σ_d², the weight under which (2.2) is EDM's DSM loss
 *   (see `dsmLoss`), i.e. the teacher's own training weighting;
 * - `'dmd'`: w = σ² / mean_dims|x0 − D_teacher(x_t)| per sample (DMD's normaliser), held constant;
 * - a function of the per-sample σ returning w per sample.
 *
 * `sdsLoss`/`vsdLoss` weight ε̂ − ε instead (`SdsWeighting`): their w is this w(σ)/σ, and their
 * σ² weighting is called `'inverse-snr'` (σ³ here), so that `'sigma2'` is this one only.
 *
 * Change of variables: the surrogate is a mean over the σ the caller sampled, so its gradient
 * estimates E_{σ∼π}[w(σ)(s_q − s_p)], i.e. ∫ π(σ)·w(σ)·(…) dσ. To estimate the integral
 * ∫ w̃(t)(…) dt of (3.2) for a process with σ(t), pass w(σ) = w̃(t(σ))·(dt/dσ)/π(σ); e.g. for the
 * Brownian motion (A.3) (t = σ²) and σ = e^u on a quadrature grid in u with weights c_k,
 * w(σ_k) = w̃(σ_k²)·2σ_k²·c_k·(N / samples per node).
 */
export type IklWeighting = 'sigma2' | 'uniform' | 'edm' | 'dmd' | ((sigma: Float32Array) => Float32Array);

/** Arguments of {@link iklSurrogate}. All noise is drawn by the caller from its seeded `Rng`. */
export interface IklSurrogateArgs {
  /** Generator output x0 = g_θ(z), [N, ...dims]; the gradient flows to it. */
  x0: tf.Tensor;
  /** One noise level per sample, [N] (VE space: x_t = x0 + σ·n). */
  sigma: tf.Tensor1D;
  /** Standard normal noise n, the shape of x0. */
  noise: tf.Tensor;
  /** The pre-trained model s_p, as a denoiser. */
  teacher: Denoiser;
  /** The fake score s_φ ≈ s_q of the generator's distribution, as a denoiser. */
  fake: Denoiser;
  label?: tf.Tensor2D;
  weighting?: IklWeighting;
  /** σ_data of the `'edm'` weighting; 0.5. */
  sigmaData?: number;
}

/** w(σ) per sample for a named weighting (`'dmd'` also needs x0 and D_teacher). Shared with `sidLoss`. */
export function iklWeights(weighting: IklWeighting, sigma: Float32Array, sigmaData: number, dmdScale?: Float32Array): Float32Array {
  if (typeof weighting === 'function') {
    const w = weighting(sigma);
    if (w.length !== sigma.length) {
      throw new Error(`iklSurrogate: the weighting function returned ${w.length} weights for ${sigma.length} samples`);
    }
    return w;
  }
  return sigma.map((s, i) => {
    switch (weighting) {
      case 'sigma2':
        return s * s;
      case 'uniform':
        return 1;
      case 'edm':
        return (s * s * (s * s + sigmaData * sigmaData)) / (sigmaData * sigmaData);
      case 'dmd':
        return (s * s) / Math.max(dmdScale![i]!, 1e-12);
    }
  });
}

/** DMD's per-sample normaliser mean_dims|x0 − D_teacher(x_t)|, read out as numbers (no gradient). */
export function dmdNormaliser(x0: tf.Tensor, dTeacher: tf.Tensor): Float32Array {
  const n = x0.shape[0]!;
  const m = tf.tidy(() => tf.mean(tf.abs(tf.sub(x0, dTeacher)).reshape([n, -1]), 1));
  const scale = m.dataSync() as Float32Array;
  m.dispose();
  return scale;
}

/**
 * Eq. (3.2), the generator step of Algorithm 1, as a stop-gradient surrogate:
 *
 *   x_t = x0 + σ·n,   g = w(σ)·(s_fake(x_t) − s_teacher(x_t)) = w(σ)·(D_fake − D_teacher)/σ²,
 *   L = (1/N)·Σ_i Σ_dims g_i ⊙ x0_i,   ∂L/∂x0 = g/N exactly.
 *
 * Both denoisers run inside the forward function of `tf.customGrad`, where tfjs records nothing
 * (the engine's kernelDepth is > 0), so no gradient reaches their variables and their Jacobians
 * never enter. Chain with any differentiable x0 = g_θ(z) to get (3.2) w.r.t. θ. The value itself
 * is not the IKL (see {@link iklValue}); only its gradient is meaningful.
 */
export function iklSurrogate(args: IklSurrogateArgs): tf.Scalar {
  const { x0, sigma, noise, teacher, fake, label } = args;
  const weighting = args.weighting ?? 'sigma2';
  const sigmaData = args.sigmaData ?? 0.5;
  const n = checkBatch('iklSurrogate', { x0, sigma, noise, label });
  return gradientAsLoss(x0, (x) => {
    const g = tf.tidy(() => {
      const s = perSample(sigma, x.rank);
      const xt = tf.add(x, tf.mul(s, noise));
      const dTeacher = teacher(xt, sigma, label);
      const dFake = fake(xt, sigma, label);
      const dmdScale = weighting === 'dmd' ? dmdNormaliser(x, dTeacher) : undefined;
      const w = iklWeights(weighting, sigma.dataSync() as Float32Array, sigmaData, dmdScale);
      const coef = perSample(w, x.rank);
      return tf.div(tf.mul(coef, tf.sub(dFake, dTeacher)), tf.mul(tf.square(s), n));
    });
    return { grad: g, value: tf.sum(tf.mul(g, x)) as tf.Scalar };
  });
}

/** Arguments of {@link iklValue}. */
export interface IklValueArgs {
  /** log q^(t)(x), one value per row. */
  logQ: (x: tf.Tensor2D, t: number) => tf.Tensor1D;
  /** log p^(t)(x), one value per row. */
  logP: (x: tf.Tensor2D, t: number) => tf.Tensor1D;
  /** `n` exact samples of q^(t), [n, dim]. */
  sampleQ: (t: number, n: number, rng: Rng) => tf.Tensor2D;
  /** The weight w(t) of (3.1). */
  weight: (t: number) => number;
  rng: Rng;
  /** Monte Carlo samples of x_t at each node; 4096. */
  samplesPerNode?: number;
  /** The range of u = log t; [−10, 10], wide enough for weights that decay like t^±1. */
  logTRange?: [number, number];
  /** Simpson nodes in u (rounded up to odd); 81, which puts a node on u = 0 for symmetric ranges. */
  nodes?: number;
}

/**
 * Eq. (3.1), the IKL value, when both diffused densities are known: Simpson quadrature over
 * u = log t, ∫ w(t)·KL_t dt = ∫ w(e^u)·KL_{e^u}·e^u du, with KL_t = E_{x∼q_t}[log q_t − log p_t]
 * estimated by Monte Carlo at each node. `stderr` is the Monte Carlo standard error of `value`
 * (the quadrature error is not included).
 */
export function iklValue(args: IklValueArgs): { value: number; stderr: number } {
  const { logQ, logP, sampleQ, weight, rng } = args;
  const m = args.samplesPerNode ?? 4096;
  const [a, b] = args.logTRange ?? [-10, 10];
  const { nodes, weights: c } = simpson(a, b, args.nodes ?? 81);
  let value = 0;
  let variance = 0;
  nodes.forEach((u, k) => {
    const t = Math.exp(u);
    const factor = c[k]! * weight(t) * t;
    if (factor === 0) return;
    const x = sampleQ(t, m, rng);
    const d = tf.tidy(() => tf.sub(logQ(x, t), logP(x, t)));
    const r = d.dataSync();
    d.dispose();
    x.dispose();
    let mean = 0;
    for (const v of r) mean += v;
    mean /= r.length;
    let ss = 0;
    for (const v of r) ss += (v - mean) ** 2;
    value += factor * mean;
    variance += (factor * factor * ss) / (r.length - 1) / r.length;
  });
  return { value, stderr: Math.sqrt(variance) };
}
