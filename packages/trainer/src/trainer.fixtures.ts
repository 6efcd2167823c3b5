/**
 * Test fixtures shared by the trainer's tests (not part of the package's entries): small models and
 * data that train in seconds.
 */
import { readFileSync } from 'node:fs';

import * as tf from '@tensorflow/tfjs';
import { createDenoiser, createGenerator, dense, type DenoiserModel, type GeneratorModel, type UnetConfig } from '@diff-instruct/models';
import { GaussianMixture, Rng } from '@diff-instruct/sde';

import type { LoadedTrainState } from './checkpoint.js';
import type { DiscriminatorModel } from './gan.js';

/** The values of a model's parameters, as plain arrays (for bit-for-bit comparisons). */
export const values = (m: { params: Record<string, tf.Variable> }) => Object.values(m.params).map((v) => Array.from(v.dataSync()));

/** An MLP denoiser on `dim`-D points. */
export function smallTeacher(dim: number, seed = 0, hidden = [32, 32]): DenoiserModel {
  return createDenoiser(
    { kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim, hidden, embedDim: 16, numClasses: 0 } },
    new Rng(seed),
  );
}

/** Two modes ±1.5·e1 of std 0.3 in `dim` dimensions. */
export function mixture(dim: number): GaussianMixture {
  return new GaussianMixture([
    { mean: new Array(dim).fill(0).map((_, i) => (i === 0 ? 1.5 : 0)), std: 0.3, weight: 1 },
    { mean: new Array(dim).fill(0).map((_, i) => (i === 0 ? -1.5 : 0)), std: 0.3, weight: 1 },
  ]);
}

/** The smallest UNet: 8×8 images, 4 channels, one level of downsampling, dropout on. */
export const unet: UnetConfig = {
  kind: 'unet',
  resolution: 8,
  channels: 1,
  modelChannels: 4,
  channelMult: [1, 2],
  numBlocks: 1,
  attnResolutions: [4],
  dropout: 0.2,
  embedDim: 8,
  numClasses: 3,
};

/** Three classes of 8×8 images: a bright row, a bright column, a bright diagonal, plus noise. */
export function toyImages(n: number, rng: Rng): { data: Float32Array; labels: Int32Array } {
  const data = new Float32Array(n * 64).fill(-1);
  const labels = new Int32Array(n);
  const noise = rng.normal(n * 64);
  for (let i = 0; i < n; i++) {
    const k = rng.int(3);
    labels[i] = k;
    for (let j = 0; j < 8; j++) {
      const p = k === 0 ? 3 * 8 + j : k === 1 ? j * 8 + 3 : j * 8 + j;
      data[i * 64 + p] = 1;
    }
    for (let p = 0; p < 64; p++) data[i * 64 + p]! += 0.1 * noise[i * 64 + p]!;
  }
  return { data, labels };
}

/** A small MLP discriminator on 2-D points (2 → 32 → 32 → 1, leaky ReLU written for second order). */
export function mlpDiscriminator(seed: number): DiscriminatorModel {
  const rng = new Rng(seed);
  const v = (shape: number[], std: number) => tf.variable(tf.tensor(rng.normal(shape.reduce((a, b) => a * b, 1)).map((x) => x * std), shape));
  const params = { 'd.w0': v([2, 32], 0.7), 'd.b0': v([32], 0), 'd.w1': v([32, 32], 0.18), 'd.b1': v([32], 0), 'd.w2': v([32, 1], 0.18), 'd.b2': v([1], 0) };
  const act = (x: tf.Tensor) => tf.mul(x, tf.add(tf.mul(tf.step(x), 0.8), 0.2));
  return {
    config: { kind: 'test-mlp' },
    params,
    logits: (x) =>
      tf.tidy(() => {
        let h = act(dense(x as tf.Tensor2D, params['d.w0'] as tf.Tensor2D, params['d.b0'] as tf.Tensor1D)) as tf.Tensor2D;
        h = act(dense(h, params['d.w1'] as tf.Tensor2D, params['d.b1'] as tf.Tensor1D)) as tf.Tensor2D;
        return dense(h, params['d.w2'] as tf.Tensor2D, params['d.b2'] as tf.Tensor1D).reshape([-1]) as tf.Tensor1D;
      }),
  };
}

/** An MLP generator of 2-D points from 2-D latents. */
export const mlpGenerator = (seed: number): GeneratorModel => createGenerator({ kind: 'mlp-generator', latentDim: 2, outDim: 2, hidden: [32, 32], numClasses: 0 }, new Rng(seed));

/** The bytes of a file committed to the repository (e.g. a training state under checkpoints/). */
export const committedFile = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../${path}`, import.meta.url)));

/**
 * `vars` against the group `prefix` of a training state: the names that are in one and not the
 * other or differ in shape, and the largest |v − stored| over the rest (0: bit for bit).
 */
export function compareGroup(vars: Record<string, tf.Variable>, state: LoadedTrainState, prefix: string): { unmatched: string[]; maxAbsDiff: number } {
  const stored = Object.fromEntries(
    Object.entries(state.tensors)
      .filter(([k]) => k.startsWith(`${prefix}/`))
      .map(([k, t]) => [k.slice(prefix.length + 1), t]),
  );
  const unmatched = [...Object.keys(stored).filter((k) => !(k in vars)), ...Object.keys(vars).filter((k) => !(k in stored))];
  let maxAbsDiff = 0;
  for (const [name, v] of Object.entries(vars)) {
    const t = stored[name];
    if (!t) continue;
    if (t.shape.join(',') !== v.shape.join(',')) {
      unmatched.push(name);
      continue;
    }
    const a = v.dataSync();
    for (let i = 0; i < a.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i]! - t.data[i]!));
  }
  return { unmatched, maxAbsDiff };
}
