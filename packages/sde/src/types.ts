import type * as tf from '@tensorflow/tfjs';

/**
 * A denoiser in the EDM convention: D(x; σ, label?) ≈ E[x0 | x_t = x], where x = x0 + σ·ε.
 *
 * - `x` has shape [N, ...dims];
 * - `sigma` has shape [N] (one noise level per sample);
 * - `label`, when the model is conditional, is a one-hot (or all-zero for "unconditional",
 *   the classifier-free-guidance convention) float tensor of shape [N, numClasses].
 *
 * The score is (D(x, σ) − x) / σ² (Tweedie's formula, eq. (B.2)). Every loss and sampler in this
 * project is written against this one contract; a VP teacher or an ε-prediction network is turned
 * into a denoiser by the adapters in `process.ts`.
 */
export type Denoiser = (x: tf.Tensor, sigma: tf.Tensor1D, label?: tf.Tensor2D) => tf.Tensor;
