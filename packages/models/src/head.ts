import * as tf from '@tensorflow/tfjs';

import { dense, silu } from './ops.js';
import { type Init, type Params, addNormal, addZeros, param } from './params.js';

/**
 * Scale of the output layer's initial weights, relative to 1/√fan_in: small, so that the head
 * starts near logit 0 (D(x) = ½ everywhere) and the first generator gradients of a GAN term stay
 * small while the head learns.
 */
const OUT_INIT_SCALE = 0.1;

/**
 * Creates the parameters of a discriminator head on a network's features, under `prefix`
 * (e.g. 'head'): `layer0.{weight,bias}` [inSize, hidden] and `out.{weight,bias}` [hidden, 1].
 * `inSize` is the number of feature values per sample (e.g. 8·8·32 for a UNet bottleneck).
 */
export function initFeatureHead(inSize: number, hidden: number, init: Init, prefix: string, params: Params = {}): Params {
  if (!(Number.isInteger(inSize) && inSize > 0)) throw new Error(`featureHead: inSize must be a positive integer, got ${inSize}`);
  if (!(Number.isInteger(hidden) && hidden > 0)) throw new Error(`featureHead: hidden must be a positive integer, got ${hidden}`);
  addNormal(params, `${prefix}.layer0.weight`, [inSize, hidden], 1 / Math.sqrt(inSize), init);
  addZeros(params, `${prefix}.layer0.bias`, [hidden]);
  addNormal(params, `${prefix}.out.weight`, [hidden, 1], OUT_INIT_SCALE / Math.sqrt(hidden), init);
  addZeros(params, `${prefix}.out.bias`, [1]);
  return params;
}

/**
 * The head's logit per sample: features [N, ...] are flattened, then
 * logit = W₁·SiLU(W₀·f + b₀) + b₁, → [N]. DMD2 (Yin et al. 2024) puts such a head on the fake
 * score's bottleneck and trains it, with the fake score, to tell noised real samples from noised
 * generated ones.
 */
export function featureHead(params: Params, prefix: string): (features: tf.Tensor) => tf.Tensor1D {
  const w0 = param<tf.Tensor2D>(params, `${prefix}.layer0.weight`);
  const b0 = param<tf.Tensor1D>(params, `${prefix}.layer0.bias`);
  const w1 = param<tf.Tensor2D>(params, `${prefix}.out.weight`);
  const b1 = param<tf.Tensor1D>(params, `${prefix}.out.bias`);
  const inSize = w0.shape[0];
  return (features) =>
    tf.tidy(() => {
      const n = features.shape[0]!;
      if (features.size !== n * inSize) {
        throw new Error(`featureHead: expected ${inSize} feature values per sample, got shape [${features.shape}]`);
      }
      const h = silu(dense(features.reshape([n, inSize]) as tf.Tensor2D, w0, b0));
      return dense(h, w1, b1).reshape([n]) as tf.Tensor1D;
    });
}
