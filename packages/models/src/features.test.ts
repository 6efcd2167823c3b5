import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';

import type { EdmDenoiserConfig, MlpScoreConfig, UnetConfig } from './config.js';
import { featureHead, initFeatureHead } from './head.js';
import { createDenoiser } from './model.js';
import { disposeModel } from './params.js';

const unet: EdmDenoiserConfig = {
  kind: 'edm',
  sigmaData: 0.5,
  net: { kind: 'unet', resolution: 8, channels: 1, modelChannels: 8, channelMult: [1, 2], numBlocks: 1, attnResolutions: [4], dropout: 0, embedDim: 8, numClasses: 3 } satisfies UnetConfig,
};
const mlp: EdmDenoiserConfig = { kind: 'edm', sigmaData: 0.5, net: { kind: 'mlp', dim: 3, hidden: [16, 12], embedDim: 8, numClasses: 0 } satisfies MlpScoreConfig };
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('DenoiserModel.features', () => {
  it("is the MLP's last hidden layer: the denoiser is c_skip·x + c_out·(features·W_out + b_out)", () => {
    const m = createDenoiser(mlp, new Rng(4));
    const rng = new Rng(5);
    const x = rng.normalTensor([5, 3]);
    const sigma = tf.tensor1d([0.01, 0.3, 1, 4, 40]);
    const f = m.features(x, sigma);
    expect(f.shape).toEqual([5, 12]);
    const rebuilt = tf.tidy(() => {
      const s = sigma.reshape([-1, 1]);
      const s2 = tf.add(tf.square(s), 0.25);
      const F = tf.add(tf.matMul(f, m.params['net.out.weight']!), m.params['net.out.bias']!);
      return tf.add(tf.mul(tf.div(0.25, s2), x), tf.mul(tf.div(tf.mul(s, 0.5), tf.sqrt(s2)), F));
    });
    expect(maxAbsDiff(rebuilt, m.denoise(x, sigma))).toBeLessThan(1e-5);
    disposeModel(m);
  });

  it("is the UNet's encoder output: [N, R/2, R/2, 2C] here, moved by encoder weights and not by decoder weights", () => {
    const m = createDenoiser(unet, new Rng(1));
    const rng = new Rng(2);
    const x = rng.normalTensor([2, 8, 8, 1]);
    const sigma = tf.tensor1d([0.2, 2]);
    const label = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3) as tf.Tensor2D;
    const f0 = m.features(x, sigma, label);
    expect(f0.shape).toEqual([2, 4, 4, 16]);
    const bump = (name: string) => m.params[name]!.assign(tf.add(m.params[name]!, 0.5));
    bump('net.dec.4x4_in0.conv0.bias');
    bump('net.dec.out_conv.bias');
    expect(maxAbsDiff(m.features(x, sigma, label), f0)).toBe(0);
    bump('net.enc.4x4_block0.conv1.bias'); // the last encoder block
    expect(maxAbsDiff(m.features(x, sigma, label), f0)).toBeGreaterThan(1e-3);
    // it sees σ and the label, as the denoiser does
    expect(maxAbsDiff(m.features(x, tf.tensor1d([2, 0.2]), label), m.features(x, sigma, label))).toBeGreaterThan(1e-4);
    disposeModel(m);
  });

  it('carries a gradient back to x', () => {
    const m = createDenoiser(unet, new Rng(1));
    const x = new Rng(3).normalTensor([1, 8, 8, 1]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(m.features(v, tf.tensor1d([0.5]), tf.zeros([1, 3]) as tf.Tensor2D))))(x);
    expect(tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!)).toBeGreaterThan(0);
    disposeModel(m);
  });
});

describe('featureHead', () => {
  it('gives one logit per sample, near 0 at initialisation, and names a wrong feature size', () => {
    const params = initFeatureHead(4 * 4 * 16, 32, new Rng(0), 'head');
    expect(Object.keys(params)).toEqual(['head.layer0.weight', 'head.layer0.bias', 'head.out.weight', 'head.out.bias']);
    const head = featureHead(params, 'head');
    const logits = head(new Rng(1).normalTensor([6, 4, 4, 16]));
    expect(logits.shape).toEqual([6]);
    for (const v of logits.dataSync()) expect(Math.abs(v)).toBeLessThan(0.5);
    expect(() => head(tf.zeros([2, 10]))).toThrow(/expected 256 feature values per sample, got shape \[2,10\]/);
    expect(() => initFeatureHead(0, 32, null, 'head')).toThrow(/inSize must be a positive integer/);
  });
});
