import { createClassifier } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { CLASSIFIER_DEFAULTS } from './classifier.js';
import { trainClassifier } from './node.js';
import { toyImages } from './trainer.fixtures.js';

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

});
