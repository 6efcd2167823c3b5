/**
 * Test fixtures shared by the trainer's tests (not part of the package's entries): small models and
 * data that train in seconds.
 */
import type * as tf from '@tensorflow/tfjs';
import { createDenoiser, type DenoiserModel, type UnetConfig } from '@diff-instruct/models';
import { GaussianMixture, Rng } from '@diff-instruct/sde';

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

