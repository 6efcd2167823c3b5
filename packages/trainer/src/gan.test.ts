import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import {
  createGenerator,
  createStyleGan2Discriminator,
  disposeModel,
  type GeneratorConfig,
  type GeneratorModel,
  type StyleGan2DiscriminatorConfig,
} from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { decodeTrainState, memoryStateStore } from './checkpoint.js';
import { GAN_DEFAULTS, type GanConfig } from './gan.js';
import { trainGan } from './node.js';
import { committedFile, compareGroup, mlpDiscriminator, mlpGenerator } from './trainer.fixtures.js';

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

  it('resumes the committed MNIST GAN state (checkpoints/mnist/gan) and trains one more step', async () => {
    const bytes = committedFile('checkpoints/mnist/gan/gan-state.safetensors');
    const state = decodeTrainState(bytes, 'gan-state.safetensors', 'gan');
    const config = state.info.config as { generator: GeneratorConfig; discriminator: StyleGan2DiscriminatorConfig; train: GanConfig };
    const done = state.info.step;
    // Fresh weights: all of them must come from the file.
    const generator = createGenerator(config.generator, new Rng(0));
    const discriminator = createStyleGan2Discriminator(config.discriminator, new Rng(1));
    const data = { data: new Rng(2).uniform(64 * 32 * 32, -1, 1), sampleShape: [32, 32, 1] };
    const store = memoryStateStore('gan-state.safetensors');
    store.bytes = bytes;
    const run = (steps: number, onProgress?: (e: { step: number }) => void) =>
      trainGan({ generator, discriminator, data, config: { ...config.train, steps }, rng: new Rng(0), stateStore: store, resume: true, heapCeilingBytes: Infinity, onProgress });

    // Nothing left to do at the stored step: the run only loads the state. Its weights are the file's.
    const loaded = await run(done);
    expect(compareGroup(generator.params, state, 'generator')).toEqual({ unmatched: [], maxAbsDiff: 0 });
    expect(compareGroup(discriminator.params, state, 'discriminator')).toEqual({ unmatched: [], maxAbsDiff: 0 });
    expect(compareGroup(loaded.ema.params, state, 'ema')).toEqual({ unmatched: [], maxAbsDiff: 0 });
    expect(store.bytes).toBe(bytes); // and it wrote nothing
    disposeModel(loaded.ema);

    // One step more continues the count: step, both Adam steps and the RNG move on from the file's.
    const steps: number[] = [];
    disposeModel((await run(done + 1, (e) => steps.push(e.step))).ema);
    expect(steps).toEqual([done + 1]);
    const after = decodeTrainState(store.bytes!, 'gan-state.safetensors', 'gan');
    expect(after.info.step).toBe(done + 1);
    expect(after.info.optimizerSteps).toEqual({ generator: state.info.optimizerSteps.generator! + 1, discriminator: state.info.optimizerSteps.discriminator! + 1 });
    expect(after.info.rng).not.toEqual(state.info.rng);
    // One Adam step (β = (0.5, 0.99)) from the file's weights moves each by at most ~10·lr.
    for (const [model, prefix, lr] of [[generator, 'generator', config.train.lrG], [discriminator, 'discriminator', config.train.lrD]] as const) {
      expect(compareGroup(model.params, after, prefix).maxAbsDiff).toBe(0); // the state written is the model's own weights
      const step = compareGroup(model.params, state, prefix);
      expect(step.unmatched).toEqual([]);
      expect(step.maxAbsDiff).toBeGreaterThan(0);
      expect(step.maxAbsDiff).toBeLessThan(11 * lr);
    }
    disposeModel(generator);
    disposeModel(discriminator);
  });
});
