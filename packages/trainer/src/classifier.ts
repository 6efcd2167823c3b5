import * as tf from '@tensorflow/tfjs';
import type { ClassifierModel } from '@diff-instruct/models';
import type { Rng } from '@diff-instruct/sde';

import { Adam } from './adam.js';
import { drawBatch, oneHot, type Dataset } from './batch.js';
import { type StateStore, resumeTraining, stateStoreOf, writeTrainState } from './checkpoint.js';
import { runLoop, type TrainLog, type ProgressCallback } from './loop.js';
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
}

/** Cross-entropy training of a classifier (Adam), with the same loop, checkpoints and resume as every trainer. */
export async function trainClassifier(o: TrainClassifierOptions): Promise<ClassifierModel> {
  const store = stateStoreOf(o, 'trainClassifier');
  const { model, data, config: c } = o;
  if (!data.labels || data.numClasses === undefined) throw new Error('trainClassifier: the dataset has no labels');
  const k = data.numClasses;
  const adam = new Adam(model.params, { lr: c.lr, beta1: 0.9, beta2: 0.999 });
  const runConfig = { model: model.config, train: c };
  const groups = { net: model.params, 'adam.m': adam.m, 'adam.v': adam.v };
  const resumed = resumeTraining({ resume: o.resume, store, kind: 'classifier', config: runConfig, groups, log: o.log });
  const rng = resumed?.rng ?? o.rng;
  adam.t = resumed?.optimizerSteps.adam ?? 0;
  const vars = Object.values(model.params);
  await runLoop({
    phase: 'classifier',
    totalSteps: c.steps,
    startStep: resumed?.step ?? 0,
    checkpointEvery: c.checkpointEvery,
    checkpointHint: store?.name,
    onProgress: o.onProgress,
    log: o.log,
    step: () => {
      const { x, labels } = drawBatch(data, rng, c.batchSize);
      const y = oneHot(labels!, k);
      let accuracy = 0;
      const { value, grads } = tf.variableGrads(() => {
        const logits = model.logits(x);
        accuracy = tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0]!;
        return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      }, vars);
      adam.apply(byName(model.params, grads));
      return { loss: value.dataSync()[0]!, accuracy };
    },
    checkpoint: (step) => {
      if (!store) return;
      writeTrainState(store, groups, { kind: 'classifier', step, rng: rng.state(), optimizerSteps: { adam: adam.t }, config: runConfig });
    },
  });
  adam.dispose();
  return model;
}
