import * as tf from '@tensorflow/tfjs';
import { dsmLoss } from '@diff-instruct/divergences';
import { cloneParams, denoiserFromParams, disposeModel, sampleShape, type DenoiserModel } from '@diff-instruct/models';
import { logNormalSigma, Rng } from '@diff-instruct/sde';

import { drawBatch, oneHot, type Dataset } from './batch.js';
import type { StateStore } from './checkpoint.js';
import type { TrainLog, ProgressCallback } from './loop.js';
import { trainingSession } from './session.js';

/** Teacher (DSM) training settings. Plain JSON; every default says why. */
export interface TeacherConfig {
  /** Optimiser steps. */
  steps: number;
  batchSize: number;
  /** Adam learning rate; 1e-3 suits the small MLPs of the toy targets. */
  lr: number;
  /** Adam β1 = 0.9, β2 = 0.999: EDM's teacher training. */
  beta1: number;
  beta2: number;
  /** EMA half-life in steps. */
  emaHalfLife: number;
  /** EDM log-normal noise levels: ln σ ~ N(P_mean, P_std²), P_mean = −1.2, P_std = 1.2. */
  pMean: number;
  pStd: number;
  /** Fraction of labels dropped (set to "no label") so that classifier-free guidance works. */
  labelDropout: number;
  checkpointEvery: number;
}

export const TEACHER_DEFAULTS: TeacherConfig = {
  steps: 4000,
  batchSize: 512,
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  emaHalfLife: 200,
  pMean: -1.2,
  pStd: 1.2,
  labelDropout: 0.1,
  checkpointEvery: 500,
};

export interface TrainTeacherOptions {
  model: DenoiserModel;
  data: Dataset;
  config: TeacherConfig;
  rng: Rng;
  /** Where the training state goes (written atomically every `checkpointEvery` steps). */
  statePath?: string;
  /** Where the training state goes instead of a file (a browser's storage, memory); `statePath` needs the `./node` entry. */
  stateStore?: StateStore;
  /** Continue from `statePath` instead of starting over. */
  resume?: boolean;
  onProgress?: ProgressCallback;
  log?: TrainLog;
  /** Called after each checkpoint with the step and the EMA teacher (e.g. to save it and draw a grid). */
  onCheckpoint?: (step: number, ema: DenoiserModel) => void;
  /**
   * Refuse to start when one step's estimated tensor memory exceeds this. Default: the wasm heap's
   * ceiling (3.8 GiB) on the wasm backend; no check on other backends; Infinity: no check.
   */
  heapCeilingBytes?: number;
}

export interface TrainTeacherResult {
  /** The live network (its params are the trained, non-averaged weights). */
  model: DenoiserModel;
  /** A separate network holding the EMA weights: the teacher to use. */
  ema: DenoiserModel;
}

/** Trains a denoiser with the EDM loss, Eq. (2.2) with λ(σ) weighting (Adam, EMA). */
export async function trainTeacher(o: TrainTeacherOptions): Promise<TrainTeacherResult> {
  const { model, data, config: c } = o;
  const runConfig = { model: model.config, train: c };
  return trainingSession({ who: 'trainTeacher', kind: 'teacher', options: o, config: runConfig }, async (s) => {
    const numClasses = model.config.net.numClasses;
    if (numClasses > 0 && !data.labels) throw new Error('trainTeacher: the model is conditional but the dataset has no labels');
    const expected = sampleShape(model.config).join('×');
    if (data.sampleShape.join('×') !== expected) {
      throw new Error(`trainTeacher: the data has samples of shape [${data.sampleShape.join(', ')}] but the model expects [${expected.split('×').join(', ')}]`);
    }
    s.group('net', model.params);
    const ema = s.ema('ema', model.params, c.emaHalfLife);
    const adam = s.adam('adam', 'adam', model.params, { lr: c.lr, beta1: c.beta1, beta2: c.beta2 });
    const { rng } = s.restore();
    const sigmas = logNormalSigma({ pMean: c.pMean, pStd: c.pStd });
    const vars = Object.values(model.params);
    // The EDM loss (eq. 2.2 with λ(σ)) of a batch and its gradient.
    const grads = (x: tf.Tensor, labels: Int32Array | undefined, denoiser: DenoiserModel['denoise'], r: Rng) => {
      const label = numClasses > 0 && labels ? oneHot(labels, numClasses) : undefined;
      const sigma = tf.tensor1d(sigmas.sample(r, x.shape[0]));
      const noise = r.normalTensor(x.shape);
      return tf.variableGrads(() => dsmLoss({ denoiser, x0: x, sigma, noise, label, sigmaData: model.config.sigmaData }), vars);
    };
    const emaModel = () => denoiserFromParams(model.config, cloneParams(ema.shadow));
    await s.run({
      totalSteps: c.steps,
      checkpointEvery: c.checkpointEvery,
      batchSize: c.batchSize,
      // One step's gradient at a batch size, from its own RNG: the run's random stream is untouched.
      memoryProbe: (n) => {
        const r = new Rng(0);
        const { x, labels } = drawBatch(data, r, n);
        grads(x, labels, model.denoise, r);
      },
      step: () => {
        const { x, labels } = drawBatch(data, rng, c.batchSize);
        if (numClasses > 0 && labels) {
          for (let i = 0; i < labels.length; i++) if (rng.next() < c.labelDropout) labels[i] = -1;
        }
        // Dropout (where the network has it) draws its masks from the run's RNG, so resume stays exact.
        const denoiser = model.withDropout ? model.withDropout(rng) : model.denoise;
        const { value, grads: g } = grads(x, labels, denoiser, rng);
        adam.apply(byName(model.params, g));
        ema.update();
        return { loss: value.dataSync()[0]! };
      },
      onCheckpoint: (step) => {
        if (!o.onCheckpoint) return;
        const m = emaModel();
        try {
          o.onCheckpoint(step, m);
        } finally {
          disposeModel(m);
        }
      },
    });
    return { model, ema: emaModel() };
  });
}

/** tf.variableGrads keys its result by variable name; map them back to parameter names. */
export function byName(params: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, v] of Object.entries(params)) {
    const g = grads[v.name];
    if (g !== undefined) out[name] = g;
  }
  return out;
}
