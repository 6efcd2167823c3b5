import * as tf from '@tensorflow/tfjs';
import {
  dsmLoss,
  iklSurrogate,
  realDataDiscriminatorLoss,
  realDataGeneratorLoss,
  sidLoss,
  type IklWeighting,
  type NoisyDiscriminator,
} from '@diff-instruct/divergences';
import {
  cloneModel,
  cloneParams,
  disposeModel,
  featureHead,
  generatorFromParams,
  initFeatureHead,
  sampleShape,
  type DenoiserModel,
  type GeneratorModel,
  type Params,
} from '@diff-instruct/models';
import { logNormalSigma, Rng } from '@diff-instruct/sde';

import type { Adam } from './adam.js';
import { type Dataset, drawBatch, oneHot, randomLabels } from './batch.js';
import type { StateStore } from './checkpoint.js';
import { sumOfSquares } from './fused.js';
import type { TrainLog, ProgressCallback } from './loop.js';
import { trainingSession } from './session.js';
import { byName } from './teacher.js';

/** The generator's objective in step 2 of Algorithm 1; see `DiffInstructConfig.objective`. */
export type GeneratorObjective = 'ikl' | 'sid';
export const GENERATOR_OBJECTIVES: readonly GeneratorObjective[] = ['ikl', 'sid'];

/** Settings of Algorithm 1. Plain JSON; every default says why. */
export interface DiffInstructConfig {
  /**
   * The generator's update (step 2):
   * - `'ikl'`: Diff-Instruct's IKL gradient (3.2), `iklSurrogate`; no Jacobian of either score net;
   * - `'sid'`: Score identity Distillation's loss (Zhou et al. 2024), `sidLoss`, which also
   *   back-propagates through both denoisers into x_t (a step measured 1.3–1.5× an IKL step).
   * Step 1 (DSM of the fake score) is the same for both. 'ikl' is the default of the library, the
   * paper's method; SiD beat it on the low-dimensional targets and IKL led on MNIST in 500 steps
   * (docs/objectives.md), so each command picks its own.
   */
  objective: GeneratorObjective;
  /** SiD's α (used when `objective` is 'sid'); 1.2 as in the SiD paper. */
  sidAlpha: number;
  /**
   * Weight λ_G of the real-data term in the generator's loss (DMD2, Yin et al. 2024): the objective
   * plus λ_G·E softplus(−D(x_t)), D a head on the fake score's features trained on noised real
   * against noised generated samples (`realDataGeneratorLoss`). 0 (the default) keeps the method
   * data-free: no head, no data. Above 0, `DiffInstructOptions.realData` is required.
   */
  realDataWeight: number;
  /**
   * Weight λ_D of the head's loss (`realDataDiscriminatorLoss`) in the fake score's loss, DSM + λ_D·L_D:
   * how far the fake score's encoder bends to serve the discriminator (DMD2 uses 1e-2). The head
   * has its own Adam, so λ_D does not slow the head itself. Used when `realDataWeight` > 0.
   */
  realDataDiscriminatorWeight: number;
  /** Hidden width of the discriminator head (`featureHead`). Used when `realDataWeight` > 0. */
  realDataHeadWidth: number;
  /** Generator updates. */
  steps: number;
  batchSize: number;
  /** Learning rates of the generator g_θ and of the fake score s_φ; Table 7 uses equal rates. */
  lrGenerator: number;
  lrFake: number;
  /**
   * 'constant', or 'cosine': both learning rates fall as lr·½(1 + cos(π·(i − 1)/steps)) over the
   * run, to 0 at its end. The generator's gradient is a noisy estimate (batch × one σ per sample,
   * no momentum), so a constant rate leaves it on a noise floor; the decay lets it settle.
   */
  lrSchedule: 'constant' | 'cosine';
  /** Adam β = (0, 0.99) for both networks, as in Table 7: no momentum while the target moves. */
  beta1: number;
  beta2: number;
  /** DSM steps of the fake score per generator step (1 in the paper). */
  fakeStepsPerGeneratorStep: number;
  /**
   * DSM steps of s_φ on the initial generator before the generator's first update (0 in the paper).
   * s_φ starts as a copy of the teacher; when the generator is far from the teacher's distribution
   * (a GAN to refine) and the run is short, the first IKL gradients otherwise follow an s_φ that has
   * not yet seen q_θ. They are loop steps 1…W, at lrFake: progress, log, checkpoints and resume count
   * them, and the `steps` generator updates follow (the run has W + steps loop steps).
   */
  fakeWarmupSteps: number;
  /**
   * The weighting of (3.2). 'sigma2' is the official code's plain difference of denoisers
   * (w = σ²); it beat the DMD normaliser on every target measured (docs/design.md), so it is the
   * default.
   * For 'sid' the same names apply (`sidLoss`): 'dmd' is SiD's own normaliser, 'sigma2' the plain
   * product of denoiser differences.
   */
  weighting: Exclude<IklWeighting, (s: Float32Array) => Float32Array>;
  /** Noise levels of both steps: EDM log-normal, the teacher's training distribution. */
  pMean: number;
  pStd: number;
  /** EMA half-life of the generator, in steps. */
  emaHalfLife: number;
  /** Clip the generator's gradient norm (none when 0). */
  clipNorm: number;
  checkpointEvery: number;
}

export const DIFF_INSTRUCT_DEFAULTS: DiffInstructConfig = {
  objective: 'ikl',
  sidAlpha: 1.2,
  realDataWeight: 0,
  realDataDiscriminatorWeight: 0.01,
  realDataHeadWidth: 64,
  steps: 2000,
  batchSize: 512,
  lrGenerator: 1e-4,
  lrFake: 1e-4,
  lrSchedule: 'constant',
  beta1: 0,
  beta2: 0.99,
  fakeStepsPerGeneratorStep: 1,
  fakeWarmupSteps: 0,
  weighting: 'sigma2',
  pMean: -1.2,
  pStd: 1.2,
  emaHalfLife: 100,
  clipNorm: 0,
  checkpointEvery: 500,
};

/** The factor of both learning rates at step i (1-based) of a run: see `DiffInstructConfig.lrSchedule`. */
export function lrScale(c: Pick<DiffInstructConfig, 'lrSchedule' | 'steps'>, i: number): number {
  if (c.lrSchedule === 'constant') return 1;
  if (c.lrSchedule === 'cosine') return 0.5 * (1 + Math.cos((Math.PI * (i - 1)) / c.steps));
  throw new Error(`diffInstruct: unknown lrSchedule ${JSON.stringify(c.lrSchedule)}; use 'constant' or 'cosine'`);
}

export interface DiffInstructOptions {
  /** The pre-trained DM s_{p(t)}, as a denoiser. It is never updated. */
  teacher: DenoiserModel;
  /** The generator g_θ to train (e.g. `tweedieGenerator(teacher, 2.5)` or an MLP generator). */
  generator: GeneratorModel;
  /** The fake score s_φ; by default a copy of the teacher, as in the paper. */
  fake?: DenoiserModel;
  /**
   * Real samples for the real-data term (`config.realDataWeight` > 0), in the generator's output
   * shape, drawn with replacement by the run's Rng (so resume stays exact); labels are required for
   * a conditional generator. Ignored when the weight is 0.
   */
  realData?: Dataset;
  config: DiffInstructConfig;
  rng: Rng;
  statePath?: string;
  /** Where the training state goes instead of a file (a browser's storage, memory); `statePath` needs the `./node` entry. */
  stateStore?: StateStore;
  resume?: boolean;
  onProgress?: ProgressCallback;
  log?: TrainLog;
  /** Called after each checkpoint with the step and the EMA generator (e.g. to draw a grid). */
  onCheckpoint?: (step: number, ema: GeneratorModel) => void;
  /**
   * Refuse to start when one step's estimated tensor memory exceeds this. Default: the wasm heap's
   * ceiling (3.8 GiB) on the wasm backend; no check on other backends; Infinity: no check.
   */
  heapCeilingBytes?: number;
  /** Stops the run at the next step (state written first; see `TrainingStopped`): a page's Stop button. */
  signal?: AbortSignal;
}

export interface DiffInstructResult {
  generator: GeneratorModel;
  /** The EMA of the generator: the model to ship. */
  ema: GeneratorModel;
  fake: DenoiserModel;
}

/**
 * Algorithm 1 of Diff-Instruct. Each iteration:
 * 1. updates φ by DSM (2.2) on detached generator samples x0 = g_θ(z);
 * 2. updates θ with Grad(θ) = E[w(t)(s_φ(x_t,t) − s_p(x_t,t)) ∂x_t/∂θ] (3.2), through the
 *    stop-gradient surrogate of `iklSurrogate`; neither score network gets a gradient.
 */
export async function diffInstruct(o: DiffInstructOptions): Promise<DiffInstructResult> {
  const { teacher, generator, config: c } = o;
  const runConfig = { teacher: teacher.config, generator: generator.config, train: c };
  // States written before these settings existed ran with these values.
  const added = {
    'train.lrSchedule': 'constant',
    'train.fakeWarmupSteps': 0,
    'train.objective': 'ikl',
    'train.sidAlpha': 1.2,
    'train.realDataWeight': 0,
    'train.realDataDiscriminatorWeight': DIFF_INSTRUCT_DEFAULTS.realDataDiscriminatorWeight,
    'train.realDataHeadWidth': DIFF_INSTRUCT_DEFAULTS.realDataHeadWidth,
  };
  return trainingSession({ who: 'diffInstruct', kind: 'diff-instruct', options: o, config: runConfig, added }, async (s) => {
    const numClasses = generator.numClasses;
    if (numClasses !== teacher.config.net.numClasses) {
      throw new Error(
        `diffInstruct: the generator has ${numClasses} classes but the teacher has ${teacher.config.net.numClasses}`,
      );
    }
    const shape = generator.outputShape.join(', ');
    const tShape = sampleShape(teacher.config).join(', ');
    if (tShape !== shape) {
      throw new Error(`diffInstruct: the generator makes samples of shape [${shape}] but the teacher expects [${tShape}]`);
    }
    // Configs stored before the warm-up existed have no field: no warm-up.
    const warmup = c.fakeWarmupSteps ?? 0;
    if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error(`diffInstruct: fakeWarmupSteps must be an integer ≥ 0, got ${warmup}`);
    // Configs stored before the objective existed have no field: Diff-Instruct's IKL.
    const objective = c.objective ?? 'ikl';
    if (!GENERATOR_OBJECTIVES.includes(objective)) {
      throw new Error(`diffInstruct: unknown objective ${JSON.stringify(objective)}; use ${GENERATOR_OBJECTIVES.map((v) => `'${v}'`).join(' or ')}`);
    }
    const sidAlpha = c.sidAlpha ?? 1.2;
    if (!Number.isFinite(sidAlpha)) throw new Error(`diffInstruct: sidAlpha must be a finite number, got ${sidAlpha}`);
    // Configs stored before the real-data term existed have no field: data-free.
    const realWeight = c.realDataWeight ?? 0;
    const discWeight = c.realDataDiscriminatorWeight ?? DIFF_INSTRUCT_DEFAULTS.realDataDiscriminatorWeight;
    if (!(Number.isFinite(realWeight) && realWeight >= 0)) throw new Error(`diffInstruct: realDataWeight must be a finite number ≥ 0, got ${realWeight}`);
    if (realWeight > 0) {
      if (!(Number.isFinite(discWeight) && discWeight >= 0)) {
        throw new Error(`diffInstruct: realDataDiscriminatorWeight must be a finite number ≥ 0, got ${discWeight}`);
      }
      checkRealData(o.realData, generator);
    }
    // The fake score: the caller's, or a copy of the teacher that the caller gets back (freed if the run throws).
    const fake = o.fake ?? s.ownOnFailure(cloneModel(teacher), disposeModel);
    // The discriminator head of the real-data term, on the fake score's features (DMD2); the session's own.
    const head: Params | null =
      realWeight > 0 ? s.own(newHead(fake, generator, c.realDataHeadWidth ?? DIFF_INSTRUCT_DEFAULTS.realDataHeadWidth, o.rng), (h) => tf.dispose(Object.values(h))) : null;
    s.group('generator', generator.params);
    s.group('fake', fake.params);
    const ema = s.ema('ema', generator.params, c.emaHalfLife);
    const optG = s.adam('generator', 'adamG', generator.params, {
      lr: c.lrGenerator,
      beta1: c.beta1,
      beta2: c.beta2,
      clipNorm: c.clipNorm > 0 ? c.clipNorm : undefined,
    });
    const optF = s.adam('fake', 'adamF', fake.params, { lr: c.lrFake, beta1: c.beta1, beta2: c.beta2 });
    let optH: Adam | null = null;
    if (head) {
      s.group('head', head);
      optH = s.adam('head', 'adamH', head, { lr: c.lrFake, beta1: c.beta1, beta2: c.beta2 });
    }
    const { rng } = s.restore();
    const sigmas = logNormalSigma({ pMean: c.pMean, pStd: c.pStd });
    const fakeVars = Object.values(fake.params);
    const genVars = Object.values(generator.params);
    const sigmaData = teacher.config.sigmaData;

    const draw = (n: number, r: Rng) => {
      const z = r.normalTensor([n, ...generator.latentShape]);
      const label = numClasses > 0 ? oneHot(randomLabels(r, n, numClasses), numClasses) : undefined;
      const sigma = tf.tensor1d(sigmas.sample(r, n));
      const noise = r.normalTensor([n, ...generator.outputShape]);
      return { z, label, sigma, noise };
    };
    type Draw = ReturnType<typeof draw>;
    // A batch of noised real samples for the real-data term, drawn by the run's Rng.
    const drawReal = (n: number, r: Rng) => {
      const { x, labels } = drawBatch(o.realData!, r, n);
      const label = numClasses > 0 ? oneHot(labels!, numClasses) : undefined;
      return { x0: x, label, sigma: tf.tensor1d(sigmas.sample(r, n)), noise: r.normalTensor([n, ...generator.outputShape]) };
    };
    type RealDraw = ReturnType<typeof drawReal>;
    const headOf = head ? featureHead(head, 'head') : null;
    const discriminator: NoisyDiscriminator = (xt, sigma, label) => tf.tidy(() => headOf!(fake.features(xt, sigma, label)));
    const headVars = head ? Object.values(head) : [];
    // Step 1's gradient: DSM (eq. 2.2) of s_φ on the generator's current samples; x0 carries no
    // gradient. With real data, the head's loss joins it: DSM + λ_D·L_D over s_φ and the head.
    const fakeGrads = ({ z, label, sigma, noise }: Draw, real?: RealDraw) => {
      const x0 = generator.generate(z, label);
      const losses = { dsm: 0, disc: 0 };
      const out = tf.variableGrads(
        () => {
          const dsm = dsmLoss({ denoiser: fake.denoise, x0, sigma, noise, label, sigmaData });
          losses.dsm = dsm.dataSync()[0]!;
          if (!real) return dsm;
          const disc = realDataDiscriminatorLoss({ discriminator, real, generated: { x0, sigma, noise, label } });
          losses.disc = disc.dataSync()[0]!;
          return tf.add(dsm, tf.mul(disc, discWeight)) as tf.Scalar;
        },
        real ? [...fakeVars, ...headVars] : fakeVars,
      );
      return { grads: out.grads, value: out.value, losses };
    };
    // Step 2's gradient: the IKL gradient (3.2) of θ through the stop-gradient surrogate, or SiD's
    // loss through both denoisers, plus λ_G times the real-data term through the head; only θ is
    // differentiated (genVars), so neither score net nor the head moves.
    const generatorGrads = ({ z, label, sigma, noise }: Draw) => {
      const losses = { objective: 0, realData: 0 };
      const out = tf.variableGrads(() => {
        const x0 = generator.generate(z, label);
        const args = { x0, sigma, noise, teacher: teacher.denoise, fake: fake.denoise, label, weighting: c.weighting, sigmaData };
        const loss = objective === 'sid' ? sidLoss({ ...args, alpha: sidAlpha }) : iklSurrogate(args);
        losses.objective = loss.dataSync()[0]!;
        if (!head) return loss;
        const gan = realDataGeneratorLoss({ discriminator, x0, sigma, noise, label });
        losses.realData = gan.dataSync()[0]!;
        return tf.add(loss, tf.mul(gan, realWeight)) as tf.Scalar;
      }, genVars);
      return { ...out, losses };
    };

    const emaModel = (): GeneratorModel => generatorFromParams(generator.config, cloneParams(ema.shadow));
    const fitFake = (lr: number) =>
      tf.tidy(() => {
        const d = draw(c.batchSize, rng);
        const { grads, losses } = fakeGrads(d, head ? drawReal(c.batchSize, rng) : undefined);
        optF.apply(byName(fake.params, grads), lr);
        if (head && optH) optH.apply(byName(head, grads), lr);
        return losses;
      });

    await s.run({
      totalSteps: warmup + c.steps,
      checkpointEvery: c.checkpointEvery,
      batchSize: c.batchSize,
      // Both gradients at a batch size, from their own RNG: the run's random stream is untouched.
      memoryProbe: (n) => {
        const r = new Rng(0);
        tf.tidy(() => {
          fakeGrads(draw(n, r), head ? drawReal(n, r) : undefined);
        });
        generatorGrads(draw(n, r));
      },
      step: (i): Record<string, number> => {
        // Warm-up: s_φ alone, on the initial generator.
        const fakeLosses = (l: { dsm: number; disc: number }): Record<string, number> =>
          head ? { fakeLoss: l.dsm, discriminatorLoss: l.disc } : { fakeLoss: l.dsm };
        if (i <= warmup) return fakeLosses(fitFake(c.lrFake));
        const scale = lrScale(c, i - warmup);
        // Step 1: fit s_φ to the generator's current samples (and the head to real against generated).
        const mean = { dsm: 0, disc: 0 };
        for (let k = 0; k < c.fakeStepsPerGeneratorStep; k++) {
          const l = fitFake(c.lrFake * scale);
          mean.dsm += l.dsm / c.fakeStepsPerGeneratorStep;
          mean.disc += l.disc / c.fakeStepsPerGeneratorStep;
        }
        // Step 2: update θ with the IKL gradient (3.2) or SiD's, plus the real-data term.
        const { grads, losses } = generatorGrads(draw(c.batchSize, rng));
        const gradNorm = Math.sqrt(sumOfSquares(Object.values(grads)));
        optG.apply(byName(generator.params, grads), c.lrGenerator * scale);
        ema.update();
        return {
          ...fakeLosses(mean),
          generatorSurrogate: losses.objective,
          ...(head ? { realDataLoss: losses.realData } : {}),
          generatorGradNorm: gradNorm,
        };
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
    return { generator, ema: emaModel(), fake };
  });
}

/** The real data must exist and look like the generator's samples. */
function checkRealData(data: Dataset | undefined, generator: GeneratorModel): void {
  const fix = 'or set realDataWeight to 0 for the data-free method';
  if (!data) throw new Error(`diffInstruct: realDataWeight > 0 needs real samples; pass options.realData (a Dataset), ${fix}`);
  const want = generator.outputShape.join(', ');
  if (data.sampleShape.join(', ') !== want) {
    throw new Error(`diffInstruct: the real data has samples of shape [${data.sampleShape.join(', ')}] but the generator makes [${want}]; ${fix}`);
  }
  if (generator.numClasses > 0 && (!data.labels || (data.numClasses !== undefined && data.numClasses !== generator.numClasses))) {
    throw new Error(
      `diffInstruct: the generator is conditional on ${generator.numClasses} classes, so the real data needs labels of as many classes; ${fix}`,
    );
  }
}

/** A discriminator head on the fake score's features at the generator's sample shape, drawn from `rng`. */
function newHead(fake: DenoiserModel, generator: GeneratorModel, width: number, rng: Rng): Params {
  const inSize = tf.tidy(() => {
    const x = tf.zeros([1, ...generator.outputShape]);
    const label = generator.numClasses > 0 ? (tf.zeros([1, generator.numClasses]) as tf.Tensor2D) : undefined;
    return fake.features(x, tf.ones([1]) as tf.Tensor1D, label).size;
  });
  return initFeatureHead(inSize, width, rng, 'head');
}
