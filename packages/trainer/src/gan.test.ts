import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { createGenerator, createStyleGan2Discriminator, dense, disposeModel, type GeneratorModel } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { GAN_DEFAULTS, type DiscriminatorModel } from './gan.js';
import { trainGan } from './node.js';

/** A small MLP discriminator on vectors (2 → 32 → 32 → 1, leaky ReLU written for second order). */
function mlpDiscriminator(seed: number): DiscriminatorModel {
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

const mlpGenerator = (seed: number): GeneratorModel => createGenerator({ kind: 'mlp-generator', latentDim: 2, outDim: 2, hidden: [32, 32], numClasses: 0 }, new Rng(seed));
const values = (ps: Record<string, tf.Variable>) => Object.values(ps).map((p) => Array.from(p.dataSync()));

/** Data: N((2, −1), 0.3²). */
const gaussian = (n: number) => {
  const z = new Rng(99).normal(2 * n);
  return { data: z.map((v, i) => (i % 2 === 0 ? 2 : -1) + 0.3 * v), sampleShape: [2] };
};

describe('trainGan (non-saturating loss, lazy R1, EMA)', () => {
  it('moves the generator onto the data', async () => {
    const g = mlpGenerator(1);
    const d = mlpDiscriminator(2);
    const mean = (m: GeneratorModel) => tf.tidy(() => Array.from(tf.mean(m.generate(new Rng(5).normalTensor([2000, 2])), 0).dataSync()));
    const before = mean(g);
    const { ema } = await trainGan({ generator: g, discriminator: d, data: gaussian(4096), config: { ...GAN_DEFAULTS, steps: 600, batchSize: 64, lrG: 2e-3, lrD: 2e-3, r1Gamma: 0.1, r1Every: 4, emaHalfLife: 20 }, rng: new Rng(3) });
    const after = mean(ema);
    const dist = (m: number[]) => Math.hypot(m[0]! - 2, m[1]! + 1);
    expect(dist(before)).toBeGreaterThan(1.5);
    expect(dist(after)).toBeLessThan(0.3);
    disposeModel(ema);
  });

  it('resumes exactly (R1 steps included) and keeps the tensor count flat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gan-'));
    const data = gaussian(512);
    const cfg = { ...GAN_DEFAULTS, steps: 8, batchSize: 16, r1Gamma: 0.1, r1Every: 3, checkpointEvery: 4 };
    const a = { g: mlpGenerator(1), d: mlpDiscriminator(2) };
    disposeModel((await trainGan({ generator: a.g, discriminator: a.d, data, config: cfg, rng: new Rng(7) })).ema);
    const b = { g: mlpGenerator(1), d: mlpDiscriminator(2) };
    const statePath = join(dir, 'gan-state.safetensors');
    disposeModel((await trainGan({ generator: b.g, discriminator: b.d, data, config: { ...cfg, steps: 4 }, rng: new Rng(7), statePath })).ema);
    const c = { g: mlpGenerator(11), d: mlpDiscriminator(12) }; // other weights: the state must overwrite them
    const counts: number[] = [];
    const { ema } = await trainGan({
      generator: c.g,
      discriminator: c.d,
      data,
      config: cfg,
      rng: new Rng(0),
      statePath,
      resume: true,
      onProgress: () => counts.push(tf.memory().numTensors),
    });
    expect(values(c.g.params)).toEqual(values(a.g.params));
    expect(values(c.d.params)).toEqual(values(a.d.params));
    disposeModel(ema);
    // progress every 10 steps and at the last: run 30 more steps to see the count at 10, 20, 30
    const longer: number[] = [];
    disposeModel((await trainGan({ generator: a.g, discriminator: a.d, data, config: { ...cfg, steps: 30 }, rng: new Rng(8), onProgress: () => longer.push(tf.memory().numTensors) })).ema);
    expect(longer.length).toBe(3);
    expect(new Set(longer).size).toBe(1);
    expect(counts.length).toBeGreaterThan(0);
  });

  it('trains a StyleGAN2 pair one step on images without leaking, and refuses mismatched data', async () => {
    const g = createGenerator({ kind: 'stylegan2', resolution: 8, channels: 1, latentDim: 4, wDim: 8, mappingLayers: 1, mappingLrMultiplier: 0.01, channelsAt: [8, 4], numClasses: 2 }, new Rng(1));
    const d = createStyleGan2Discriminator({ kind: 'stylegan2-discriminator', resolution: 8, channels: 1, channelsAt: [4, 8], mbstdGroup: 2, numClasses: 2, cmapDim: 4 }, new Rng(2));
    const images = { data: new Rng(3).uniform(16 * 64, -1, 1), sampleShape: [8, 8, 1], labels: Int32Array.from({ length: 16 }, (_, i) => i % 2), numClasses: 2 };
    const before = tf.memory().numTensors;
    const seen: Record<string, number>[] = [];
    const { ema } = await trainGan({ generator: g, discriminator: d, data: images, config: { ...GAN_DEFAULTS, steps: 2, batchSize: 4, r1Every: 1 }, rng: new Rng(4), onProgress: (e) => seen.push(e.losses) });
    // the logistic loss and R1's E‖∇ₓD‖² are reported apart (the R1 term is not in lossD)
    expect(Object.keys(seen.at(-1)!).sort()).toEqual(['lossD', 'lossG', 'r1']);
    expect(seen.at(-1)!.r1).toBeGreaterThan(0);
    expect(seen.at(-1)!.lossD).toBeGreaterThan(0);
    disposeModel(ema);
    expect(tf.memory().numTensors).toBe(before);
    await expect(trainGan({ generator: g, discriminator: d, data: { ...images, labels: undefined }, config: GAN_DEFAULTS, rng: new Rng(4) })).rejects.toThrow(/generator has 2 classes but the dataset has no labels/);
    await expect(trainGan({ generator: g, discriminator: d, data: { ...images, sampleShape: [8, 8, 1].reverse() }, config: GAN_DEFAULTS, rng: new Rng(4) })).rejects.toThrow(/samples of shape \[1, 8, 8\] but the generator makes \[8, 8, 1\]/);
  });
});
