import * as tf from '@tensorflow/tfjs';

import type { Denoiser } from './types.js';

/**
 * A forward diffusion process (2.1) whose transition is x_t = α(t)·x0 + σ(t)·ε (Remark A.1, (A.10)).
 *
 * `sigma(t)` is the noise scale of the transition kernel, `g(t)` the diffusion coefficient G(t) of
 * the SDE, and `tOfSigma` the inverse of σ(t)/α(t), the noise level in the scaled space where every
 * process looks like VE (x̃ = x/α, σ̃ = σ/α). Losses and samplers work in that space, through
 * denoisers.
 */
export interface ForwardProcess {
  readonly name: 've' | 'vp' | 'brownian';
  /** Signal scale α(t). */
  alpha(t: number): number;
  /** Noise scale σ(t) of p_t(x_t | x0) = N(α x0, σ² I). */
  sigma(t: number): number;
  /** Diffusion coefficient G(t) of dx = F dt + G dw. */
  g(t: number): number;
  /** The time t at which σ(t)/α(t) equals `sigmaTilde` (the EDM noise level). */
  tOfSigma(sigmaTilde: number): number;
  /** The time range on which the process is defined. */
  readonly tMin: number;
  readonly tMax: number;
}

/** VE / EDM process: dx = √(2t) dw, so σ(t) = t, α(t) = 1 (Karras et al. 2022; eq. (B.1)). */
export function veProcess(opts: { tMax?: number } = {}): ForwardProcess {
  return {
    name: 've',
    alpha: () => 1,
    sigma: (t) => t,
    g: (t) => Math.sqrt(2 * t),
    tOfSigma: (s) => s,
    tMin: 0,
    tMax: opts.tMax ?? 80,
  };
}

/**
 * VP process (Song et al. 2021) with a linear β(t) = β_min + β_d·t on t ∈ [ε_t, 1]:
 * α(t) = exp(−½∫β) = exp(−(β_min t + ½ β_d t²)/2), σ(t) = √(1 − α²), G(t) = √β(t).
 */
export function vpProcess(opts: { betaMin?: number; betaD?: number } = {}): ForwardProcess {
  const betaMin = opts.betaMin ?? 0.1;
  const betaD = opts.betaD ?? 19.9;
  const alpha = (t: number) => Math.exp(-0.5 * (betaMin * t + 0.5 * betaD * t * t));
  return {
    name: 'vp',
    alpha,
    sigma: (t) => Math.sqrt(Math.max(0, 1 - alpha(t) ** 2)),
    g: (t) => Math.sqrt(betaMin + betaD * t),
    // σ̃² = e^{∫β} − 1  ⇒  ½β_d t² + β_min t − log(1 + σ̃²) = 0.
    tOfSigma: (s) => {
      const c = Math.log1p(s * s);
      return (-betaMin + Math.sqrt(betaMin * betaMin + 2 * betaD * c)) / betaD;
    },
    tMin: 1e-3,
    tMax: 1,
  };
}

/** The Brownian motion of (A.3): dx = dw, so σ(t) = √t, α(t) = 1, G(t) = 1. */
export function brownianProcess(opts: { tMax?: number } = {}): ForwardProcess {
  return {
    name: 'brownian',
    alpha: () => 1,
    sigma: (t) => Math.sqrt(t),
    g: () => 1,
    tOfSigma: (s) => s * s,
    tMin: 0,
    tMax: opts.tMax ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * One value per sample, as a tensor of shape [N, 1, …, 1] that broadcasts against an x [N, ...dims]
 * of rank `rank`: numbers (a scalar function of t or σ per sample, weights) become a float32 tensor;
 * a [N] tensor (σ, a per-sample norm) is reshaped, keeping its gradient. The one per-sample
 * broadcast helper of the libraries.
 */
export function perSample(values: ArrayLike<number> | tf.Tensor, rank: number): tf.Tensor {
  const ones = new Array<number>(Math.max(0, rank - 1)).fill(1);
  if (values instanceof tf.Tensor) {
    if (values.rank !== 1) throw new Error(`perSample: expected one value per sample, shape [N], got [${values.shape.join(', ')}]`);
    return tf.reshape(values, [values.shape[0]!, ...ones]);
  }
  return tf.tensor(Float32Array.from(values), [values.length, ...ones], 'float32');
}

function mapT(t: ArrayLike<number>, f: (t: number) => number): Float32Array {
  const out = new Float32Array(t.length);
  for (let i = 0; i < t.length; i++) out[i] = f(t[i]!);
  return out;
}

/** The forward perturbation x_t = α(t)·x0 + σ(t)·ε (A.10), with one t per sample. */
export function perturb(p: ForwardProcess, x0: tf.Tensor, t: ArrayLike<number>, eps: tf.Tensor): tf.Tensor {
  checkBatch('perturb', x0, t);
  return tf.tidy(() =>
    tf.add(tf.mul(perSample(mapT(t, p.alpha), x0.rank), x0), tf.mul(perSample(mapT(t, p.sigma), x0.rank), eps)),
  );
}

/** The conditional score ∇ log p_t(x_t | x0) = −(x_t − α x0)/σ², the regression target of (2.2). */
export function conditionalScore(p: ForwardProcess, xt: tf.Tensor, x0: tf.Tensor, t: ArrayLike<number>): tf.Tensor {
  checkBatch('conditionalScore', xt, t);
  return tf.tidy(() => {
    const a = perSample(mapT(t, p.alpha), xt.rank);
    const s2 = perSample(
      mapT(t, (u) => p.sigma(u) ** 2),
      xt.rank,
    );
    return tf.div(tf.neg(tf.sub(xt, tf.mul(a, x0))), s2);
  });
}

/**
 * Tweedie's formula (B.2), generalised to α ≠ 1: E[x0 | x_t] = (x_t + σ(t)²·∇log p_t(x_t)) / α(t).
 */
export function tweedie(p: ForwardProcess, xt: tf.Tensor, score: tf.Tensor, t: ArrayLike<number>): tf.Tensor {
  checkBatch('tweedie', xt, t);
  return tf.tidy(() => {
    const a = perSample(mapT(t, p.alpha), xt.rank);
    const s2 = perSample(
      mapT(t, (u) => p.sigma(u) ** 2),
      xt.rank,
    );
    return tf.div(tf.add(xt, tf.mul(s2, score)), a);
  });
}

/**
 * A score model s(x_t, t) of the process `p`, as a denoiser in the scaled (VE) space:
 * x̃ = x/α, σ̃ = σ/α, D(x̃; σ̃) = (x + σ²·s(x, t)) / α with x = α·x̃ and t = tOfSigma(σ̃).
 * This is how a VP teacher joins the losses and samplers, which all work in the VE space.
 */
export function denoiserFromScore(
  p: ForwardProcess,
  score: (x: tf.Tensor, t: Float32Array, label?: tf.Tensor2D) => tf.Tensor,
): Denoiser {
  return (xTilde, sigmaTilde, label) =>
    tf.tidy(() => {
      const t = mapT(sigmaTilde.dataSync(), p.tOfSigma);
      const a = perSample(mapT(t, p.alpha), xTilde.rank);
      const x = tf.mul(a, xTilde);
      return tweedie(p, x, score(x, t, label), t);
    });
}

/**
 * An ε-prediction network ε̂(x_t, t) (the DDPM convention) as a denoiser in the scaled space:
 * x̂0 = (x_t − σ ε̂)/α, with x_t = α·x̃ and t = tOfSigma(σ̃).
 */
export function denoiserFromEpsilon(
  p: ForwardProcess,
  epsilon: (x: tf.Tensor, t: Float32Array, label?: tf.Tensor2D) => tf.Tensor,
): Denoiser {
  return (xTilde, sigmaTilde, label) =>
    tf.tidy(() => {
      const t = mapT(sigmaTilde.dataSync(), p.tOfSigma);
      const a = perSample(mapT(t, p.alpha), xTilde.rank);
      const s = perSample(mapT(t, p.sigma), xTilde.rank);
      const x = tf.mul(a, xTilde);
      return tf.div(tf.sub(x, tf.mul(s, epsilon(x, t, label))), a);
    });
}

function checkBatch(op: string, x: tf.Tensor, t: ArrayLike<number>): void {
  if (x.rank < 1 || x.shape[0] !== t.length) {
    throw new Error(`${op}: x has batch size ${x.shape[0]} but ${t.length} times were given; pass one t per sample`);
  }
}
