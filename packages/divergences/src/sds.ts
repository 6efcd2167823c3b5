import * as tf from '@tensorflow/tfjs';
import type { Denoiser } from '@diff-instruct/sde';

import { type IklWeighting, iklSurrogate } from './ikl.js';
import { checkBatch } from './validate.js';

/** A gradient-free identity: forward returns x, backward returns zeros. */
const stopGradient = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/**
 * The exact denoiser of a Dirac generator q = δ_{x0} (Corollary 3.4): q^(t) = p_t(· | x0), so
 * E[x0 | x_t] = x0 for every x_t and σ, and its score is the conditional score ∇log p_t(x_t | x0).
 * Returns x0 with its gradient stopped.
 */
export function diracDenoiser(x0: tf.Tensor): Denoiser {
  return (x) => {
    if (x.shape.length !== x0.shape.length || x.shape.some((d, i) => d !== x0.shape[i])) {
      throw new Error(`diracDenoiser: x has shape [${x.shape.join(', ')}] but x0 has [${x0.shape.join(', ')}]`);
    }
    return stopGradient(x0);
  };
}

/** Arguments of {@link sdsSurrogate}. */
export interface SdsSurrogateArgs {
  /** x0 = g(θ), any differentiable function of the parameters (e.g. a rendered image). */
  x0: tf.Tensor;
  sigma: tf.Tensor1D;
  noise: tf.Tensor;
  teacher: Denoiser;
  label?: tf.Tensor2D;
  weighting?: IklWeighting;
  sigmaData?: number;
}

/**
 * Eq. (3.3) / (A.11), score distillation sampling: Diff-Instruct (3.2) with a Dirac generator,
 * whose fake score is exactly the conditional score (Corollary 3.4). In code: {@link iklSurrogate}
 * with `fake = diracDenoiser(x0)`. Gradient w.r.t. x0, per sample:
 *   w(σ)·(x0 − D_teacher(x_t))/σ² / N = (w/σ)·(ε̂ − ε)/N,  ε̂ = (x_t − D_teacher)/σ, (A.11).
 */
export function sdsSurrogate(args: SdsSurrogateArgs): tf.Scalar {
  checkBatch('sdsSurrogate', args);
  return iklSurrogate({ ...args, fake: diracDenoiser(args.x0) });
}
