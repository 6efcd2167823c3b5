import * as tf from '@tensorflow/tfjs';
import { cloneParams, disposeModel, generatorFromParams, type GeneratorModel, type Params } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';

import { drawBatch, oneHot, randomLabels, type Dataset } from './batch.js';
import type { StateStore } from './checkpoint.js';
import type { TrainLog, ProgressCallback } from './loop.js';
import { trainingSession } from './session.js';
import { byName } from './teacher.js';

/** A discriminator: plain data (config, params) and its logit function. */
export interface DiscriminatorModel {
  readonly config: unknown;
  readonly params: Params;
  /** x [N, ...] (label one-hot [N, K]) ↦ logits [N]; differentiable twice with respect to x and params. */
  logits(x: tf.Tensor, label?: tf.Tensor2D): tf.Tensor1D;
}

/** GAN training settings (StyleGAN2's, scaled down). Plain JSON; every default says why. */
export interface GanConfig {
  /** Generator updates (one discriminator update each). */
  steps: number;
  batchSize: number;
  /** Adam learning rates (StyleGAN2: 0.0025 for both; see GAN_DEFAULTS for why not here). */
  lrG: number;
  lrD: number;
  /** Adam β (StyleGAN2: (0, 0.99)). */
  beta1: number;
  beta2: number;
  /** R1 weight γ: the penalty is γ/2·E‖∇ₓD(x)‖² on real data (StyleGAN2-ADA CIFAR-10: 0.01). */
  r1Gamma: number;
  /** Lazy regularisation: R1 every this many steps, scaled up by as much (StyleGAN2: 16). */
  r1Every: number;
  /** EMA half-life of G in steps (StyleGAN2: 10 kimg, 312 steps at batch 32). */
  emaHalfLife: number;
  checkpointEvery: number;
}

/**
 * StyleGAN2's recipe (lr 0.0025, β1 = 0, γ ≈ 0.01–0.05) mode-collapsed on MNIST at batch 32 with
 * the small preset in every run measured (README: lr 0.0025 or 0.0005, γ 0.05–10, minibatch-std
 * group 4 or 32, conditional too). These defaults, a DCGAN-like lr 2e-4 with β1 = 0.5 and a strong
 * R1 (γ = 10), were the only ones that kept the samples diverse through the probe (300 steps).
 */
export const GAN_DEFAULTS: GanConfig = {
  steps: 10000,
  batchSize: 32,
  lrG: 0.0002,
  lrD: 0.0002,
  beta1: 0.5,
  beta2: 0.99,
  r1Gamma: 10,
  r1Every: 16,
  emaHalfLife: 312,
  checkpointEvery: 500,
};

export interface TrainGanOptions {
  generator: GeneratorModel;
  discriminator: DiscriminatorModel;
  data: Dataset;
  config: GanConfig;
  rng: Rng;
  statePath?: string;
  /** Where the training state goes instead of a file (a browser's storage, memory); `statePath` needs the `./node` entry. */
  stateStore?: StateStore;
  resume?: boolean;
  onProgress?: ProgressCallback;
  log?: TrainLog;
  /** Called after each checkpoint with the step and the EMA generator (e.g. to draw a grid). */
  onCheckpoint?: (step: number, ema: GeneratorModel) => void;
  /** See `trainTeacher`. */
  heapCeilingBytes?: number;
}

export interface TrainGanResult {
  generator: GeneratorModel;
  /** The EMA of the generator: the model to ship. */
  ema: GeneratorModel;
  discriminator: DiscriminatorModel;
}

const softplus = (x: tf.Tensor) => tf.softplus(x);

/**
 * Non-saturating logistic GAN training (Goodfellow et al. 2014; StyleGAN2's loss) with lazy R1
 * regularisation of the discriminator and an EMA of the generator. Each step:
 * 1. D: minimise E softplus(D(G(z))) + E softplus(−D(x)), plus every `r1Every` steps
 *    r1Every·γ/2·E‖∇ₓD(x)‖² (a second-order gradient through D);
 * 2. G: minimise E softplus(−D(G(z))).
 * Conditional when the generator has classes: real samples carry their labels, fakes random ones.
 */
export async function trainGan(o: TrainGanOptions): Promise<TrainGanResult> {
  const { generator: G, discriminator: D, data, config: c } = o;
  const runConfig = { generator: G.config, discriminator: D.config, train: c };
  return trainingSession({ who: 'trainGan', kind: 'gan', options: o, config: runConfig }, async (s) => {
    const k = G.numClasses;
    if (k > 0 && (!data.labels || data.numClasses !== k)) {
      throw new Error(`trainGan: the generator has ${k} classes but the dataset has ${data.labels ? `${data.numClasses} classes` : 'no labels'}`);
    }
    const shape = G.outputShape.join(', ');
    if (data.sampleShape.join(', ') !== shape) {
      throw new Error(`trainGan: the data has samples of shape [${data.sampleShape.join(', ')}] but the generator makes [${shape}]`);
    }
    s.group('generator', G.params);
    s.group('discriminator', D.params);
    const ema = s.ema('ema', G.params, c.emaHalfLife);
    const optG = s.adam('generator', 'adamG', G.params, { lr: c.lrG, beta1: c.beta1, beta2: c.beta2 });
    const optD = s.adam('discriminator', 'adamD', D.params, { lr: c.lrD, beta1: c.beta1, beta2: c.beta2 });
    const { rng } = s.restore();
    const gVars = Object.values(G.params);
    const dVars = Object.values(D.params);

    const fakes = (n: number, r: Rng) => {
      const z = r.normalTensor([n, ...G.latentShape]);
      const label = k > 0 ? oneHot(randomLabels(r, n, k), k) : undefined;
      return { z, label };
    };
    const reals = (n: number, r: Rng) => {
      const { x, labels } = drawBatch(data, r, n);
      return { x, label: k > 0 && labels ? oneHot(labels, k) : undefined };
    };
    // D's loss and gradient; with r1, the lazy R1 term on the same real batch. Also returns the
    // logistic loss alone and E‖∇ₓD(x)‖² (R1 steps only), so that the log shows them apart.
    const dGrads = (real: ReturnType<typeof reals>, fake: ReturnType<typeof fakes>, r1: boolean) => {
      const xf = G.generate(fake.z, fake.label); // outside the gradient scope: no gradient flows into G
      const parts: { logistic?: tf.Tensor; r1?: tf.Tensor } = {};
      const res = tf.variableGrads(() => {
        const lossFake = tf.mean(softplus(D.logits(xf, fake.label)));
        const lossReal = tf.mean(softplus(tf.neg(D.logits(real.x, real.label))));
        let loss = tf.add(lossFake, lossReal);
        parts.logistic = tf.keep(loss);
        if (r1) {
          const gx = tf.grad((xx: tf.Tensor) => tf.sum(D.logits(xx, real.label)))(real.x);
          const penalty = tf.mean(tf.sum(tf.square(gx.reshape([gx.shape[0]!, -1])), 1));
          parts.r1 = tf.keep(penalty);
          loss = tf.add(loss, tf.mul(penalty, (c.r1Gamma / 2) * c.r1Every));
        }
        return loss as tf.Scalar;
      }, dVars);
      return { ...res, logistic: parts.logistic!, r1: parts.r1 };
    };
    const gGrads = (fake: ReturnType<typeof fakes>) =>
      tf.variableGrads(() => tf.mean(softplus(tf.neg(D.logits(G.generate(fake.z, fake.label), fake.label)))) as tf.Scalar, gVars);
    const emaModel = () => generatorFromParams(G.config, cloneParams(ema.shadow));
    let lastR1 = 0;

    await s.run({
      totalSteps: c.steps,
      checkpointEvery: c.checkpointEvery,
      batchSize: c.batchSize,
      // Both steps at a batch size (R1 included), from their own RNG: the run's stream is untouched.
      memoryProbe: (n) => {
        const r = new Rng(0);
        tf.tidy(() => {
          const { logistic, r1 } = dGrads(reals(n, r), fakes(n, r), c.r1Gamma > 0);
          tf.dispose([logistic, r1 ?? []]);
        });
        gGrads(fakes(n, r));
      },
      step: (i) => {
        const r1 = c.r1Gamma > 0 && i % c.r1Every === 0;
        const lossD = tf.tidy(() => {
          const { grads, logistic, r1: penalty } = dGrads(reals(c.batchSize, rng), fakes(c.batchSize, rng), r1);
          optD.apply(byName(D.params, grads));
          if (penalty) lastR1 = penalty.dataSync()[0]!;
          const v = logistic.dataSync()[0]!;
          tf.dispose([logistic, penalty ?? []]); // kept past variableGrads' scope: no tidy frees them
          return v;
        });
        const { value, grads } = gGrads(fakes(c.batchSize, rng));
        optG.apply(byName(G.params, grads));
        ema.update();
        // lossD: the logistic loss without the R1 term; r1: E‖∇ₓD(x)‖² at the last R1 step.
        return { lossD, lossG: value.dataSync()[0]!, r1: lastR1 };
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
    return { generator: G, ema: emaModel(), discriminator: D };
  });
}
