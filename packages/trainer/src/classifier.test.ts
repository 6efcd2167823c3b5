import * as tf from '@tensorflow/tfjs';
import { createClassifier } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { memoryStateStore } from './checkpoint.js';
import { CLASSIFIER_DEFAULTS } from './classifier.js';
import { trainClassifier } from './node.js';
import { toyImages, values } from './trainer.fixtures.js';

describe('trainClassifier', () => {
  it('trains the metric classifier: cross-entropy falls and accuracy rises', async () => {
    const { data, labels } = toyImages(256, new Rng(4));
    const model = createClassifier({ kind: 'lenet', resolution: 8, channels: 1, numClasses: 3, featureDim: 8 }, new Rng(5));
    const losses: number[] = [];
    const acc: number[] = [];
    await trainClassifier({
      model,
      data: { data, labels, numClasses: 3, sampleShape: [8, 8, 1] },
      config: { ...CLASSIFIER_DEFAULTS, steps: 60, batchSize: 32, lr: 3e-3 },
      rng: new Rng(6),
      onProgress: (e) => {
        losses.push(e.losses.loss!);
        acc.push(e.losses.accuracy!);
      },
    });
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
    expect(acc.at(-1)!).toBeGreaterThan(0.9);
  });

  it('resumes exactly (12 steps = 6, stop, 6 more) and keeps the tensor count flat', async () => {
    const { data: x, labels } = toyImages(64, new Rng(4));
    const data = { data: x, labels, numClasses: 3, sampleShape: [8, 8, 1] };
    const lenet = (seed: number) => createClassifier({ kind: 'lenet', resolution: 8, channels: 1, numClasses: 3, featureDim: 8 }, new Rng(seed));
    const cfg = { ...CLASSIFIER_DEFAULTS, steps: 12, batchSize: 8, checkpointEvery: 6 };
    const a = lenet(5);
    await trainClassifier({ model: a, data, config: cfg, rng: new Rng(6) });
    const store = memoryStateStore();
    await trainClassifier({ model: lenet(5), data, config: { ...cfg, steps: 6 }, rng: new Rng(6), stateStore: store });
    const b = lenet(7); // other weights: the state must overwrite them
    await trainClassifier({ model: b, data, config: cfg, rng: new Rng(99), stateStore: store, resume: true });
    expect(values(b)).toEqual(values(a));
    // Hygiene: the same count at steps 10, 20 and 30.
    const counts: number[] = [];
    await trainClassifier({ model: b, data, config: { ...cfg, steps: 30 }, rng: new Rng(1), onProgress: () => counts.push(tf.memory().numTensors) });
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
  });
});
