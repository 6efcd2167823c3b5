import * as tf from '@tensorflow/tfjs';

import type { MlpGeneratorConfig, MlpScoreConfig } from './config.js';
import { dense, matmul, oneHotEmbed, silu } from './ops.js';
import { type Init, type Params, addNormal, addZeros, param } from './params.js';
import type { RawNet } from './precond.js';

/**
 * Scale of the last layer's initial weights, relative to 1/√fan_in. Small, so that F starts near
 * zero and the denoiser near c_skip·x (the exact denoiser of N(0, σ_d² I) data), but not zero, so
 * every layer receives a gradient at the first step and differently seeded models differ.
 */
const OUT_INIT_SCALE = 0.1;

/**
 * Frequencies of the noise-level features, log-spaced from 0.5 to 32 radians per unit of c_noise.
 * c_noise = ln(σ)/4 spans about [-1.6, 1.1] for σ ∈ [0.002, 80]: the lowest frequency is almost
 * linear over that range, the highest resolves noise levels about 1.2× apart.
 */
const FREQ_MIN = 0.5;
const FREQ_MAX = 32;

/** Fourier features [cos(f_k c), sin(f_k c)] of c_noise [N] → [N, embedDim]. */
export function noiseFeatures(cNoise: tf.Tensor1D, embedDim: number): tf.Tensor2D {
  return tf.tidy(() => {
    const half = embedDim / 2;
    const f = new Float32Array(half);
    for (let k = 0; k < half; k++) f[k] = FREQ_MIN * (FREQ_MAX / FREQ_MIN) ** (half > 1 ? k / (half - 1) : 0);
    const phase = tf.mul(cNoise.reshape([-1, 1]), tf.tensor2d(f, [1, half]));
    return tf.concat([tf.cos(phase), tf.sin(phase)], 1) as tf.Tensor2D;
  });
}

/** A dense layer's weight N(0, gain²/fan_in) and zero bias, as `${name}.weight` and `${name}.bias`. */
function addDense(params: Params, name: string, fanIn: number, fanOut: number, init: Init, gain = 1): void {
  addNormal(params, `${name}.weight`, [fanIn, fanOut], gain / Math.sqrt(fanIn), init);
  addZeros(params, `${name}.bias`, [fanOut]);
}

/**
 * Creates the parameters of an MLP score network under `prefix` (e.g. 'net'):
 * - `map_label.weight` [C, E] (conditional only), `map_layer0.{weight,bias}`, `map_layer1.{weight,bias}`:
 *   the embedding of (c_noise, label);
 * - `layers.i.{weight,bias}` [in, h_i] and `layers.i.emb.weight` [E, h_i] for each hidden layer;
 * - `out.{weight,bias}` [h_last, dim].
 */
export function initMlpScore(config: MlpScoreConfig, init: Init, prefix: string, params: Params = {}): Params {
  const E = config.embedDim;
  if (config.numClasses > 0) addNormal(params, `${prefix}.map_label.weight`, [config.numClasses, E], 1, init);
  addDense(params, `${prefix}.map_layer0`, E, E, init);
  addDense(params, `${prefix}.map_layer1`, E, E, init);
  let width = config.dim;
  config.hidden.forEach((h, i) => {
    addDense(params, `${prefix}.layers.${i}`, width, h, init);
    addNormal(params, `${prefix}.layers.${i}.emb.weight`, [E, h], 1 / Math.sqrt(E), init);
    width = h;
  });
  addDense(params, `${prefix}.out`, width, config.dim, init, OUT_INIT_SCALE);
  return params;
}

/**
 * The MLP score network F(x_in, c_noise, label), the "raw" network inside EDM preconditioning.
 * As in EDM's networks: emb = Fourier(c_noise) + label·W_label, then two SiLU layers; each hidden
 * layer adds a projection of emb to its pre-activation: h ← SiLU(h·W + b + emb·W_emb). An all-zero
 * label row adds nothing (the unconditional model of classifier-free guidance).
 */
export function mlpScore(config: MlpScoreConfig, params: Params, prefix: string): RawNet {
  return mlpNet(config, params, prefix).score;
}

/**
 * The MLP score network's features at (x_in, c_noise, label): its last hidden layer [N, h_last],
 * the input of its output layer (for a discriminator head on a score network, as DMD2 does).
 */
export function mlpFeatures(config: MlpScoreConfig, params: Params, prefix: string): RawNet {
  return mlpNet(config, params, prefix).features;
}

/** The score network and its features, sharing one trunk. */
function mlpNet(config: MlpScoreConfig, params: Params, prefix: string): { score: RawNet; features: RawNet } {
  const p = (name: string) => param<tf.Tensor2D>(params, `${prefix}.${name}`);
  const b = (name: string) => param<tf.Tensor1D>(params, `${prefix}.${name}`);
  const mapLabel = config.numClasses > 0 ? p('map_label.weight') : null;
  const map0 = [p('map_layer0.weight'), b('map_layer0.bias')] as const;
  const map1 = [p('map_layer1.weight'), b('map_layer1.bias')] as const;
  const layers = config.hidden.map((_, i) => [p(`layers.${i}.weight`), b(`layers.${i}.bias`), p(`layers.${i}.emb.weight`)] as const);
  const out = [p('out.weight'), b('out.bias')] as const;
  const trunk = (xIn: tf.Tensor, cNoise: tf.Tensor1D, label?: tf.Tensor2D): tf.Tensor2D => {
    const n = xIn.shape[0]!;
    if (xIn.size !== n * config.dim) {
      throw new Error(`mlp score network: expected x with ${config.dim} values per sample, got shape [${xIn.shape}]`);
    }
    let emb = noiseFeatures(cNoise, config.embedDim);
    if (label !== undefined) {
      if (mapLabel === null) throw new Error('mlp score network: got a label, but the network is unconditional (numClasses = 0)');
      emb = tf.add(emb, oneHotEmbed(label, mapLabel));
    }
    emb = silu(dense(emb, ...map0));
    emb = silu(dense(emb, ...map1));
    let h = xIn.reshape([n, config.dim]) as tf.Tensor2D;
    for (const [w, bias, wEmb] of layers) h = silu(tf.add(dense(h, w, bias), matmul(emb, wEmb)));
    return h;
  };
  return {
    score: (xIn, cNoise, label) => tf.tidy(() => dense(trunk(xIn, cNoise, label), ...out).reshape(xIn.shape)),
    features: (xIn, cNoise, label) => tf.tidy(() => trunk(xIn, cNoise, label)),
  };
}

/**
 * Creates the parameters of an MLP generator under `prefix` (e.g. 'gen'): `layers.i.{weight,bias}`,
 * `layers.i.label.weight` [C, h_i] (conditional only), `out.{weight,bias}`.
 */
export function initMlpGenerator(config: MlpGeneratorConfig, init: Init, prefix: string, params: Params = {}): Params {
  let width = config.latentDim;
  config.hidden.forEach((h, i) => {
    addDense(params, `${prefix}.layers.${i}`, width, h, init);
    if (config.numClasses > 0) addNormal(params, `${prefix}.layers.${i}.label.weight`, [config.numClasses, h], 1, init);
    width = h;
  });
  addDense(params, `${prefix}.out`, width, config.outDim, init);
  return params;
}

/** The MLP generator G(z, label): h ← SiLU(h·W + b + label·W_label), then a linear output layer. */
export function mlpGenerator(config: MlpGeneratorConfig, params: Params, prefix: string): (z: tf.Tensor, label?: tf.Tensor2D) => tf.Tensor {
  const p = (name: string) => param<tf.Tensor2D>(params, `${prefix}.${name}`);
  const b = (name: string) => param<tf.Tensor1D>(params, `${prefix}.${name}`);
  const layers = config.hidden.map(
    (_, i) => [p(`layers.${i}.weight`), b(`layers.${i}.bias`), config.numClasses > 0 ? p(`layers.${i}.label.weight`) : null] as const,
  );
  const out = [p('out.weight'), b('out.bias')] as const;
  return (z, label) =>
    tf.tidy(() => {
      const n = z.shape[0]!;
      if (z.size !== n * config.latentDim) {
        throw new Error(`mlp generator: expected z of shape [N, ${config.latentDim}], got [${z.shape}]`);
      }
      if (label !== undefined && config.numClasses === 0) {
        throw new Error('mlp generator: got a label, but the generator is unconditional (numClasses = 0)');
      }
      let h = z.reshape([n, config.latentDim]) as tf.Tensor2D;
      for (const [w, bias, wLabel] of layers) {
        let pre = dense(h, w, bias);
        if (label !== undefined && wLabel !== null) pre = tf.add(pre, oneHotEmbed(label, wLabel));
        h = silu(pre);
      }
      return dense(h, ...out);
    });
}
