import * as tf from '@tensorflow/tfjs';
import type { ClassifierModel } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';

import { drawBatch, oneHot, type Dataset } from './batch.js';
import type { StateStore } from './checkpoint.js';
import type { TrainLog, ProgressCallback } from './loop.js';
import { trainingSession } from './session.js';
import { byName } from './teacher.js';

/** Training settings of the metric classifier ("FID (LeNet features)"). */
export interface ClassifierTrainConfig {
  steps: number;
  batchSize: number;
  /** Adam, β = (0.9, 0.999). */
  lr: number;
  checkpointEvery: number;
}

export const CLASSIFIER_DEFAULTS: ClassifierTrainConfig = { steps: 2000, batchSize: 128, lr: 1e-3, checkpointEvery: 500 };

export interface TrainClassifierOptions {
  model: ClassifierModel;
  data: Dataset;
  config: ClassifierTrainConfig;
  rng: Rng;
  statePath?: string;
  /** Where the training state goes instead of a file (a browser's storage, memory); `statePath` needs the `./node` entry. */
  stateStore?: StateStore;
  resume?: boolean;
  onProgress?: ProgressCallback;
  log?: TrainLog;
  /** See `trainTeacher`. */
  heapCeilingBytes?: number;
}

/** Cross-entropy training of a classifier (Adam), with the same loop, checkpoints and resume as every trainer. */
export async function trainClassifier(o: TrainClassifierOptions): Promise<ClassifierModel> {
  const { model, data, config: c } = o;
  const runConfig = { model: model.config, train: c };
  return trainingSession({ who: 'trainClassifier', kind: 'classifier', options: o, config: runConfig }, async (s) => {
    if (!data.labels || data.numClasses === undefined) throw new Error('trainClassifier: the dataset has no labels');
    const k = data.numClasses;
    s.group('net', model.params);
    const adam = s.adam('adam', 'adam', model.params, { lr: c.lr, beta1: 0.9, beta2: 0.999 });
    const { rng } = s.restore();
    const vars = Object.values(model.params);
    // The cross-entropy of a batch, its gradient and the batch's accuracy.
    const grads = (x: tf.Tensor, labels: Int32Array) => {
      const y = oneHot(labels, k);
      let accuracy = 0;
      const { value, grads: g } = tf.variableGrads(() => {
        const logits = model.logits(x);
        accuracy = tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0]!;
        return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      }, vars);
      return { value, grads: g, accuracy };
    };
    await s.run({
      totalSteps: c.steps,
      checkpointEvery: c.checkpointEvery,
      batchSize: c.batchSize,
      // One step's gradient at a batch size, from its own RNG: the run's random stream is untouched.
      memoryProbe: (n) => {
        const r = new Rng(0);
        const { x, labels } = drawBatch(data, r, n);
        grads(x, labels!);
      },
      step: () => {
        const { x, labels } = drawBatch(data, rng, c.batchSize);
        const { value, grads: g, accuracy } = grads(x, labels!);
        adam.apply(byName(model.params, g));
        return { loss: value.dataSync()[0]!, accuracy };
      },
    });
    return model;
  });
}
