import * as tf from '@tensorflow/tfjs';

import { type Denoiser, perSample } from '@diff-instruct/sde';

/** A raw network F(c_in·x, c_noise, label) before preconditioning. `cNoise` has shape [N]. */
export type RawNet = (xIn: tf.Tensor, cNoise: tf.Tensor1D, label?: tf.Tensor2D) => tf.Tensor;

/** EDM's input scaling of x and σ: c_in(σ)·x and c_noise(σ), with σ per sample broadcast over x. */
function edmInputs(x: tf.Tensor, sigma: tf.Tensor1D, sd: number, op: string) {
  if (sigma.rank !== 1 || sigma.shape[0] !== x.shape[0]) {
    throw new Error(`${op}: sigma must have shape [${x.shape[0]}], got [${sigma.shape}]`);
  }
  const s = perSample(sigma, x.rank); // σ per sample, broadcast over x
  const s2 = tf.add(tf.square(s), sd * sd); // σ² + σ_d²
  const c_in = tf.div(1, tf.sqrt(s2)); // 1 / √(σ² + σ_d²)
  const c_noise = tf.div(tf.log(sigma), 4) as tf.Tensor1D; // ln(σ) / 4
  return { s, s2, xIn: tf.mul(c_in, x), c_noise };
}

function checkSigmaData(op: string, sigmaData: number): void {
  if (!(sigmaData > 0)) throw new Error(`${op}: sigmaData must be > 0, got ${sigmaData}`);
}

/**
 * EDM preconditioning (Karras et al. 2022, Table 1, column "Ours"): wraps a raw network F into a
 * denoiser D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)). `sigma` has shape [N].
 */
export function edmPrecond(raw: RawNet, sigmaData: number): Denoiser {
  checkSigmaData('edmPrecond', sigmaData);
  const sd = sigmaData;
  return (x, sigma, label) =>
    tf.tidy(() => {
      const { s, s2, xIn, c_noise } = edmInputs(x, sigma, sd, 'edmPrecond');
      const c_skip = tf.div(sd * sd, s2); // σ_d² / (σ² + σ_d²)
      const c_out = tf.div(tf.mul(s, sd), tf.sqrt(s2)); // σ·σ_d / √(σ² + σ_d²)
      const F = raw(xIn, c_noise, label);
      return tf.add(tf.mul(c_skip, x), tf.mul(c_out, F));
    });
}

/**
 * Internal features of a network at (x, σ), with EDM's input scaling: features(c_in(σ)·x, c_noise(σ)),
 * for a raw feature extractor such as `unetFeatures` (the same inputs its denoiser's network sees).
 */
export function edmFeatures(rawFeatures: RawNet, sigmaData: number): Denoiser {
  checkSigmaData('edmFeatures', sigmaData);
  return (x, sigma, label) =>
    tf.tidy(() => {
      const { xIn, c_noise } = edmInputs(x, sigma, sigmaData, 'edmFeatures');
      return rawFeatures(xIn, c_noise, label);
    });
}
