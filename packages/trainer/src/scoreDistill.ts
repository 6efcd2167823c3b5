import * as tf from '@tensorflow/tfjs';
import { annealRange, dsmLoss, sdsLoss, vsdLoss, type ScoreModel, type SdsLossArgs, type SdsWeighting } from '@diff-instruct/divergences';
import { cloneModel, disposeModel, type DenoiserModel } from '@diff-instruct/models';
import { logNormalSigma, Rng } from '@diff-instruct/sde';

import type { Adam } from './adam.js';
import type { StateStore } from './checkpoint.js';
import { sumOfSquares } from './fused.js';
import type { TrainLog, ProgressCallback } from './loop.js';
import { trainingSession } from './session.js';
import { byName } from './teacher.js';

/** Settings of {@link scoreDistill}. Plain JSON; every default says why. */
export interface ScoreDistillConfig {
  /** 'sds': the Dirac generator of Corollary 3.4 (no second model); 'vsd': Diff-Instruct (3.2) with a fake score. */
  mode: 'sds' | 'vsd';
  /** Updates of the parameters θ. */
  steps: number;
  /**
   * Adam on θ. A field (voxels, an MLP) is fitted directly, like a NeRF, so a larger rate than a
   * generator's: 1e-2, with DreamFusion-style β = (0.9, 0.99).
   */
  lr: number;
  beta1: number;
  beta2: number;
  /** Clip the global norm of θ's gradient (none when 0). */
  clipNorm: number;
  /**
   * w(t) of the SDS/VSD gradient w·(ε̂_p − ε̂_q) (`SdsWeighting`): 'sds' (w = 1 − ᾱ_t, DreamFusion's),
   * 'uniform' (w = 1) or 'inverse-snr' (w = (1 − ᾱ_t)/ᾱ_t = σ²).
   */
  weighting: SdsWeighting;
  /**
   * Noise levels at the start: σ ∼ logU[lo, hi] for a denoiser teacher, t ∼ U{lo, …, hi} for an ε
   * teacher. null: the loss's default ([0.02, 80], or [0.02T, 0.98T]).
   */
  range: [number, number] | null;
  /**
   * Anneal `range` linearly to this between progress `annealStart` and `annealEnd` (threestudio's
   * schedule; ProlificDreamer lowers t_max to 0.5T); null: no annealing. Needs `range`.
   */
  rangeEnd: [number, number] | null;
  annealStart: number;
  annealEnd: number;
  /** Classifier-free guidance scale of the teacher; null: the conditional teacher alone. */
  guidanceScale: number | null;
  /** Clamp every element of the per-sample gradient w·(ε̂ − ε) to ±clipElement (none when 0). */
  clipElement: number;
  /** VSD: Adam rate of the fake score; DMD/ProlificDreamer train it at about the generator's rate. */
  lrFake: number;
  /** VSD: Adam β of the fake, (0, 0.99) as in Table 7: no momentum while its target moves. */
  betaFake1: number;
  betaFake2: number;
  /** VSD: DSM steps of the fake per θ step, on the renders of that step (ProlificDreamer: 1). */
  fakeStepsPerStep: number;
  /** VSD: EDM log-normal noise levels of the fake's DSM, the teacher's training distribution. */
  pMean: number;
  pStd: number;
  checkpointEvery: number;
}

export const SCORE_DISTILL_DEFAULTS: ScoreDistillConfig = {
  mode: 'sds',
  steps: 1000,
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.99,
  clipNorm: 0,
  weighting: 'sds',
  range: null,
  rangeEnd: null,
  annealStart: 0,
  annealEnd: 1,
  guidanceScale: null,
  clipElement: 0,
  lrFake: 1e-3,
  betaFake1: 0,
  betaFake2: 0.99,
  fakeStepsPerStep: 1,
  pMean: -1.2,
  pStd: 1.2,
  checkpointEvery: 250,
};

/** What the caller's renderer returns for one step: the images and, for a conditional teacher, their labels. */
export interface Rendered {
  /** x0 = g(θ), [N, ...dims]: N views (or samples) differentiable w.r.t. the parameters. */
  x0: tf.Tensor;
  /** The teacher's condition, [N, classes] (e.g. the one-hot view bin of each camera). */
  label?: tf.Tensor2D;
}

export interface ScoreDistillOptions {
  /** θ: the variables of the caller's field or generator, by name (the names go into checkpoints). */
  params: Record<string, tf.Variable>;
  /**
   * Renders the images of step `step` (1-based; 0 in the probe of a VSD fake) from random draws of
   * `rng` (cameras, latents). Called inside the gradient tape: differentiable w.r.t. `params`.
   */
  render: (step: number, rng: Rng) => Rendered;
  /**
   * The pre-trained model p: a `DenoiserModel` of `@diff-instruct/models`, or any `ScoreModel` of
   * `@diff-instruct/divergences` ({ denoiser } or a DDPM { epsilon, alphasCumprod }). Never updated.
   */
  teacher: DenoiserModel | ScoreModel;
  /**
   * VSD: the fake score s_φ, trained on the renders with DSM (2.2). By default a copy of the teacher,
   * as in Diff-Instruct; needed when the teacher is not a `DenoiserModel`. Gets the teacher's labels.
   */
  fake?: DenoiserModel;
  config: ScoreDistillConfig;
  rng: Rng;
  /** Where the training state goes (θ, the fake, both Adams, step, RNG), atomically, every `checkpointEvery`. */
  statePath?: string;
  /** Where the training state goes instead of a file (a browser's storage, memory); `statePath` needs the `./node` entry. */
  stateStore?: StateStore;
  /** Continue from `statePath`. */
  resume?: boolean;
  onProgress?: ProgressCallback;
  log?: TrainLog;
  /** Called after each checkpoint (and the last step) with the step, e.g. to evaluate the field. */
  onCheckpoint?: (step: number) => void;
  /**
   * Refuse to start when one step's estimated tensor memory (a render, the teacher, the gradients;
   * the fake's step too for VSD) exceeds this. Default: the wasm heap's ceiling (3.8 GiB) on the
   * wasm backend; no check on other backends; Infinity: no check.
   */
  heapCeilingBytes?: number;
}

export interface ScoreDistillResult {
  /** The trained parameters (the caller's variables, updated in place). */
  params: Record<string, tf.Variable>;
  /** VSD: the fake score after training (owned by the caller); undefined for SDS. */
  fake: DenoiserModel | undefined;
}

function isDenoiserModel(m: DenoiserModel | ScoreModel): m is DenoiserModel {
  return 'config' in m && 'params' in m && 'denoise' in m;
}

/**
 * Score distillation of a pre-trained diffusion model into a parametric image x0 = g(θ) (a NeRF
 * render, a "Dirac generator"), the loop around `sdsLoss` / `vsdLoss`. Each step:
 * 1. renders x0 = render(step, rng) and updates θ with the SDS gradient (A.11) = Diff-Instruct
 *    with q = δ_{g(θ)} (Corollary 3.4, eq. 3.3), or with the VSD gradient w·(ε̂_p − ε̂_φ) (3.2);
 * 2. VSD only: fits the fake s_φ to the same renders, detached, by DSM (2.2) (Algorithm 1's first
 *    step, in ProlificDreamer's order).
 * The noise range can be annealed (`range` → `rangeEnd`); neither score model gets a gradient.
 */
export async function scoreDistill(o: ScoreDistillOptions): Promise<ScoreDistillResult> {
  const { params, config: c } = o;
  const teacherModel = isDenoiserModel(o.teacher) ? o.teacher : undefined;
  const vsd = c.mode === 'vsd';
  // The fake's config: the caller's fake, or the teacher it starts as a copy of.
  const runConfig = { teacher: teacherModel?.config ?? null, fake: vsd ? ((o.fake ?? teacherModel)?.config ?? null) : null, train: c };
  return trainingSession({ who: 'scoreDistill', kind: 'score-distill', options: o, config: runConfig }, async (s) => {
    if (c.mode !== 'sds' && c.mode !== 'vsd') throw new Error(`scoreDistill: unknown mode ${JSON.stringify(c.mode)}; use 'sds' or 'vsd'`);
    if (Object.keys(params).length === 0) throw new Error('scoreDistill: params is empty; pass the variables of your field');
    if (!(c.steps >= 0 && Number.isInteger(c.steps))) throw new Error(`scoreDistill: steps must be a non-negative integer, got ${c.steps}`);
    if (!(c.lr > 0)) throw new Error(`scoreDistill: lr must be > 0, got ${c.lr}`);
    if (c.rangeEnd !== null && c.range === null) {
      throw new Error('scoreDistill: rangeEnd anneals from range; set range too (e.g. [0.02, 80] for a denoiser teacher)');
    }
    const teacher: ScoreModel = teacherModel ? { denoiser: teacherModel.denoise } : (o.teacher as ScoreModel);
    if (vsd && !o.fake && !teacherModel) {
      throw new Error('scoreDistill: VSD needs a fake score; pass fake (a DenoiserModel), or pass the teacher as a DenoiserModel to start the fake as its copy');
    }
    // VSD's fake score: the caller's, or a copy of the teacher that the caller gets back (freed if the run throws).
    const fake = vsd ? (o.fake ?? s.ownOnFailure(cloneModel(teacherModel!), disposeModel)) : undefined;
    s.group('params', params);
    const optP = s.adam('params', 'adam', params, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, clipNorm: c.clipNorm > 0 ? c.clipNorm : undefined });
    let optF: Adam | undefined;
    if (fake) {
      s.group('fake', fake.params);
      optF = s.adam('fake', 'adamF', fake.params, { lr: c.lrFake, beta1: c.betaFake1, beta2: c.betaFake2 });
    }
    const { rng } = s.restore();
    const sigmas = logNormalSigma({ pMean: c.pMean, pStd: c.pStd });
    const paramVars = Object.values(params);
    const fakeVars = fake ? Object.values(fake.params) : [];
    const denoiserTeacher = 'denoiser' in teacher;
    const clip = c.clipElement > 0 ? { element: c.clipElement } : undefined;

    /** The noise range at step i (1-based), annealed; undefined: the loss's default. */
    const rangeAt = (i: number): [number, number] | undefined => {
      if (c.range === null) return undefined;
      if (c.rangeEnd === null) return c.range;
      return annealRange((i - 1) / Math.max(1, c.steps), { from: c.range, to: c.rangeEnd, start: c.annealStart, end: c.annealEnd });
    };
    // θ's gradient at step i: the SDS (A.11) or VSD (3.2) gradient at x0 = render(i, r). With a VSD
    // fake, also the renders, kept past the gradient's scope for the fake's step (the caller frees them).
    const paramGrads = (i: number, r: Rng, range: [number, number] | undefined) => {
      let kept: Rendered | undefined;
      const out = tf.variableGrads(() => {
        const rendered = o.render(i, r);
        if (fake) kept = { x0: tf.keep(rendered.x0), label: rendered.label && tf.keep(rendered.label) };
        const args: SdsLossArgs = {
          x0: rendered.x0,
          teacher,
          rng: r,
          label: rendered.label,
          weighting: c.weighting,
          clip,
          ...(c.guidanceScale !== null ? { guidanceScale: c.guidanceScale } : {}),
          ...(range === undefined ? {} : denoiserTeacher ? { sigmaRange: range } : { tRange: range }),
        };
        return fake ? vsdLoss({ ...args, fake: { denoiser: fake.denoise }, fakeLabel: rendered.label }).loss : sdsLoss(args).loss;
      }, paramVars);
      return { ...out, kept };
    };
    // The fake's DSM (eq. 2.2) gradient on renders x0, detached.
    const fakeGrads = (f: DenoiserModel, x0: tf.Tensor, label: tf.Tensor2D | undefined, r: Rng) => {
      const sigma = tf.tensor1d(sigmas.sample(r, x0.shape[0]!));
      const noise = r.normalTensor(x0.shape);
      const denoiser = f.withDropout ? f.withDropout(r) : f.denoise;
      return tf.variableGrads(() => dsmLoss({ denoiser, x0, sigma, noise, label, sigmaData: f.config.sigmaData }), fakeVars);
    };

    await s.run({
      totalSteps: c.steps,
      checkpointEvery: c.checkpointEvery,
      // No batch size: the renderer decides how many views a step has. The probe is one whole step
      // (render 0, as the doc of `render` says) from an Rng of its own, so the run's stream is untouched.
      memoryProbe: () => {
        const r = new Rng(0);
        const { kept } = paramGrads(0, r, rangeAt(1));
        if (fake && kept) {
          try {
            fakeGrads(fake, kept.x0, kept.label, r);
          } finally {
            tf.dispose([kept.x0, ...(kept.label ? [kept.label] : [])]);
          }
        }
      },
      step: (i) => {
        const range = rangeAt(i);
        // Step 1: θ ← θ − Adam(∂x0/∂θ · g), g the SDS (A.11) or VSD (3.2) gradient at x0 = render.
        const { value, grads, kept } = paramGrads(i, rng, range);
        const gradNorm = Math.sqrt(sumOfSquares(Object.values(grads)));
        optP.apply(byName(params, grads));
        const losses: Record<string, number> = { sdsLoss: value.dataSync()[0]!, gradNorm };
        if (range !== undefined) losses.rangeHi = range[1];
        // Step 2 (VSD): fit s_φ to the renders of this step, detached (DSM, eq. 2.2).
        if (fake && optF && kept) {
          const { x0, label } = kept;
          try {
            let fakeLoss = 0;
            for (let k = 0; k < c.fakeStepsPerStep; k++) {
              fakeLoss += tf.tidy(() => {
                const { value: v, grads: g } = fakeGrads(fake, x0, label, rng);
                optF.apply(byName(fake.params, g));
                return v.dataSync()[0]! / c.fakeStepsPerStep;
              });
            }
            losses.fakeLoss = fakeLoss;
          } finally {
            tf.dispose([x0, ...(label ? [label] : [])]);
          }
        }
        return losses;
      },
      onCheckpoint: (step) => o.onCheckpoint?.(step),
    });
    return { params, fake };
  });
}
