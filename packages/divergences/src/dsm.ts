import * as tf from '@tensorflow/tfjs';
import { type Denoiser, perSample } from '@diff-instruct/sde';

import { checkBatch } from './validate.js';

/** Arguments of {@link dsmLoss}. All noise is drawn by the caller from its seeded `Rng`. */
export interface DsmLossArgs {
  /** The network being trained (the teacher, or the fake score s_φ of Algorithm 1). */
  denoiser: Denoiser;
  /** Clean samples x0, [N, ...dims] (data, or generator output for the fake score). */
  x0: tf.Tensor;
  /** One noise level per sample, [N]. */
  sigma: tf.Tensor1D;
  /** Standard normal noise n, the shape of x0. */
  noise: tf.Tensor;
  label?: tf.Tensor2D;
  /** σ_data of EDM's weighting; 0.5 (EDM's value for images in [−1, 1]). */
  sigmaData?: number;
}

/**
 * Eq. (2.2), denoising score matching, written with a denoiser and EDM's weighting
 * λ(σ) = (σ² + σ_d²)/(σ·σ_d)²:
 *
 *   L = mean_{batch, dims} λ(σ)·(D(x0 + σ·n; σ) − x0)².
 *
 * With s = (D − x_t)/σ² and ∇log p(x_t | x0) = −(x_t − x0)/σ², the residual of (2.2) is
 * ‖s − ∇log p(x_t|x0)‖² = ‖D − x0‖²/σ⁴, so this is (2.2) with w(σ) = σ⁴·λ(σ) (and the integral
 * over t replaced by the caller's distribution of σ). Plain autodiff: gradients flow to the
 * denoiser's variables; used for both the teacher and the fake score (first step of Algorithm 1).
 */
export function dsmLoss(args: DsmLossArgs): tf.Scalar {
  const { denoiser, x0, sigma, noise, label } = args;
  const sigmaData = args.sigmaData ?? 0.5;
  checkBatch('dsmLoss', { x0, sigma, noise, label });
  return tf.tidy(() => {
    const s = perSample(sigma, x0.rank);
    const xt = tf.add(x0, tf.mul(s, noise));
    const D = denoiser(xt, sigma, label);
    const weight = tf.div(tf.add(tf.square(s), sigmaData * sigmaData), tf.mul(tf.square(s), sigmaData * sigmaData));
    return tf.mean(tf.mul(weight, tf.square(tf.sub(D, x0)))) as tf.Scalar;
  });
}
