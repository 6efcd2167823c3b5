import * as tf from '@tensorflow/tfjs';
import { type Denoiser, type Rng, perSample } from '@diff-instruct/sde';

import { gradientAsLoss } from './surrogate.js';
import { checkBatch } from './validate.js';

/**
 * An ε-prediction network in the VP/DDPM convention: x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·ε, and
 * ε̂(x_t, t) ≈ ε, with one integer timestep t per sample indexing the schedule ᾱ (`alphasCumprod`).
 * `label`, when the network is conditional, is [N, classes] (one-hot, or a flattened embedding).
 */
export type EpsilonNet = (xt: tf.Tensor, t: Int32Array, label?: tf.Tensor2D) => tf.Tensor;

/**
 * A diffusion model in either convention:
 * - `{ denoiser }`: EDM's D(x; σ) ≈ E[x0 | x0 + σ·ε = x], the project's `Denoiser`;
 * - `{ epsilon, alphasCumprod }`: a DDPM ε-network with its ᾱ_t, t = 0 … T − 1 (e.g. the 1,000
 *   `alphas_cumprod` of Stable Diffusion).
 *
 * The two meet at σ = √((1 − ᾱ)/ᾱ): x̃ = x_t/√ᾱ = x0 + σ·ε is the EDM image, and
 * ε̂(x_t, t) = (x_t − √ᾱ·D(x̃; σ))/√(1 − ᾱ). A continuous-time VP model can be passed as a denoiser
 * through `denoiserFromEpsilon(vpProcess(), …)` of `@diff-instruct/sde`.
 */
export type ScoreModel = { denoiser: Denoiser } | { epsilon: EpsilonNet; alphasCumprod: ArrayLike<number> };

/**
 * w(t) of the SDS/VSD gradient g = w(t)·(ε̂_p − ε̂_q), per sample, in ε form, with the EDM noise
 * level σ² = (1 − ᾱ_t)/ᾱ_t (both conventions):
 * - `'sds'` (default): w = 1 − ᾱ_t = σ²/(1 + σ²), DreamFusion's (and threestudio's) choice;
 * - `'uniform'`: w = 1 (threestudio's name);
 * - `'inverse-snr'`: w = 1/SNR(t) = (1 − ᾱ_t)/ᾱ_t = σ².
 *
 * These weight ε̂ − ε; `iklSurrogate`'s weightings (`IklWeighting`) weight the score difference
 * s_q − s_p. Since w·(ε̂_p − ε̂_q) = σ·w·(s_q − s_p), an SDS weighting w is the IKL weighting
 * σ ↦ σ·w(σ): `'inverse-snr'` is σ³ there, not the σ² of `iklSurrogate`'s `'sigma2'` (and IKL's
 * `'sigma2'`, the plain difference of denoisers, is w = σ here). `'inverse-snr'` was formerly
 * called `'sigma2'`; renamed so that `'sigma2'` means one weighting across the package.
 */
export type SdsWeighting = 'sds' | 'uniform' | 'inverse-snr';

/** Bounds on the SDS gradient g = w·(ε̂ − ε) of each sample (before the 1/N of the batch mean). */
export interface SdsClip {
  /** Clamp every element of g to [−element, element] (threestudio's `grad_clip`). */
  element?: number;
  /** Then scale each sample's g_i down so that ‖g_i‖₂ ≤ sampleNorm. */
  sampleNorm?: number;
}

/** Arguments of {@link sdsLoss}. */
export interface SdsLossArgs {
  /** The image x0 = g(θ), [N, ...dims] (e.g. N rendered views); the gradient flows to it. */
  x0: tf.Tensor;
  /** The pre-trained model p. */
  teacher: ScoreModel;
  /** Draws the noise levels (first) and ε (second), unless both are passed. */
  rng?: Rng;
  /**
   * ε teacher: t ∼ U{lo, …, hi}, integers; [⌊0.02T⌋, ⌊0.98T⌋] by default, DreamFusion's range
   * (the ends carry no useful gradient). Anneal it with {@link annealRange}.
   */
  tRange?: readonly [number, number];
  /**
   * Denoiser teacher: log σ ∼ U[log lo, log hi]; [0.02, 80] by default (EDM's σ_max, and a lower end
   * that mirrors DreamFusion's cut of the 2% least noisy levels).
   */
  sigmaRange?: readonly [number, number];
  /** ε teacher: one integer timestep per sample, instead of drawing from `tRange`. */
  t?: ArrayLike<number>;
  /** Denoiser teacher: one σ per sample, instead of drawing from `sigmaRange`. */
  sigma?: ArrayLike<number>;
  /** ε ∼ N(0, I), the shape of x0; drawn from `rng` when absent. */
  noise?: tf.Tensor;
  weighting?: SdsWeighting;
  /** The teacher's condition, [N, classes]. */
  label?: tf.Tensor2D;
  /**
   * Classifier-free guidance scale s: ε̂ = ε̂(x_t; ∅) + s·(ε̂(x_t; label) − ε̂(x_t; ∅)). Needs `label`.
   * Without it the teacher runs once, on `label`.
   */
  guidanceScale?: number;
  /** The condition ∅ of guidance; all zeros by default (the project's "unconditional" label). */
  unconditionalLabel?: tf.Tensor2D;
  clip?: SdsClip;
  /**
   * Throw when x0, ε or a model's ε̂ holds NaN or ±Infinity; true. Costs one read of four numbers
   * from the backend per call.
   */
  checkFinite?: boolean;
}

/** Arguments of {@link vsdLoss}: those of {@link sdsLoss} and the fake model. */
export interface VsdLossArgs extends SdsLossArgs {
  /**
   * s_φ ≈ s_q, a diffusion model of the renders (trained on them by the caller, e.g. with `dsmLoss`).
   * An ε fake must share the teacher's `alphasCumprod`; a denoiser fake works with either teacher.
   */
  fake: ScoreModel;
  /** The fake's condition (ProlificDreamer: the camera); none by default. Guidance never applies to it. */
  fakeLabel?: tf.Tensor2D;
}

/** What {@link sdsLoss} and {@link vsdLoss} return. */
export interface SdsLossResult {
  /** ½‖x0 − sg(x0 − g)‖²/N: its gradient w.r.t. x0 is g/N exactly; its value, ½Σ‖g_i‖²/N, is for logging. */
  loss: tf.Scalar;
  /** The timesteps used (ε teacher); undefined for a denoiser teacher. */
  t: Int32Array | undefined;
  /** The EDM noise level of each sample, σ = √((1 − ᾱ)/ᾱ). */
  sigma: Float32Array;
  /** w per sample. */
  weight: Float32Array;
}

/**
 * Score distillation sampling, eq. (A.11) (DreamFusion), as a loss for any image x0 = g(θ) that is
 * differentiable w.r.t. the caller's parameters (a NeRF render, a generator's output, raw pixels):
 *
 *   x_t = √ᾱ·x0 + √(1 − ᾱ)·ε   (a denoiser sees x̃ = x_t/√ᾱ = x0 + σ·ε),
 *   g = clip(w(t)·(ε̂(x_t, t) − ε)),   ε̂ guided by CFG when asked,
 *   loss = ½‖x0 − sg(x0 − g)‖²/N,   ∂loss/∂x0 = g/N exactly.
 *
 * The √ᾱ of ∂x_t/∂x0 is absorbed into w, as in DreamFusion: g is (A.11) in the scaled space x̃.
 * The teacher runs inside the forward function of `tf.customGrad`, where tfjs records nothing, so
 * its Jacobian (the U-Net Jacobian DreamFusion drops) never enters and its variables get no
 * gradient. Use it with any optimiser:
 * `opt.applyGradients(tf.variableGrads(() => sdsLoss({ x0: render(), teacher, rng }).loss, vars).grads)`.
 *
 * SDS is Diff-Instruct (3.2) with a Dirac generator q = δ_{x0} (Corollary 3.4, eq. (3.3)): the
 * generator's diffused score is the conditional score −ε/σ, so its ε̂ is the drawn ε itself
 * (`diracDenoiser`). Hence `sdsLoss(args)` is `vsdLoss({ ...args, fake: { denoiser: diracDenoiser(x0) } })`,
 * and, without clipping or guidance, its gradient is that of `sdsSurrogate` (and `iklSurrogate`
 * with the fake δ_{x0}) under the weighting σ ↦ σ·w(σ). It is written in ε form here because the
 * ε teacher, the clipping and the guidance all act on ε̂ − ε.
 */
export function sdsLoss(args: SdsLossArgs): SdsLossResult {
  return scoreDistillation('sdsLoss', args, 'dirac');
}

/**
 * Variational score distillation (ProlificDreamer), i.e. Diff-Instruct (3.2) for a NeRF: the
 * Dirac's exact ε of {@link sdsLoss} is replaced by the ε̂ of a fake model trained on the renders,
 *
 *   g = clip(w(t)·(ε̂_teacher(x_t, t) − ε̂_fake(x_t, t))),   loss = ½‖x0 − sg(x0 − g)‖²/N.
 *
 * With w·(ε̂_p − ε̂_q) = σ·w·(s_q − s_p), this is `iklSurrogate` under the weighting σ ↦ σ·w(σ).
 * Only the generator's loss: the caller alternates it with training the fake (Algorithm 1).
 */
export function vsdLoss(args: VsdLossArgs): SdsLossResult {
  return scoreDistillation('vsdLoss', args, { model: args.fake, label: args.fakeLabel });
}

/** Options of {@link annealRange}. */
export interface AnnealRangeOptions {
  /** The range up to progress `start`, e.g. [20, 980] for DreamFusion's t ∼ U[0.02, 0.98]·T. */
  from: readonly [number, number];
  /** The range from progress `end` on, e.g. [20, 500] (ProlificDreamer's later t_max = 0.5T). */
  to: readonly [number, number];
  /** Progress where the change starts; 0. */
  start?: number;
  /** Progress where it ends; 1. `start === end` gives a step, as in ProlificDreamer. */
  end?: number;
}

/**
 * A noise-level range annealed with training progress (threestudio's linear schedule of
 * `max_step_percent`): each end moves linearly from `from` to `to` while progress goes from `start`
 * to `end`, and stays put outside. Pass the result as `tRange` (ε teacher) or `sigmaRange`.
 */
export function annealRange(progress: number, opts: AnnealRangeOptions): [number, number] {
  const { from, to } = opts;
  const start = opts.start ?? 0;
  const end = opts.end ?? 1;
  if (!Number.isFinite(progress)) throw new Error(`annealRange: progress must be a finite number, got ${progress}`);
  if (!(Number.isFinite(start) && Number.isFinite(end) && start <= end)) {
    throw new Error(`annealRange: start (${start}) and end (${end}) must be finite with start <= end`);
  }
  for (const [name, r] of [['from', from], ['to', to]] as const) {
    if (!(Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] <= r[1])) {
      throw new Error(`annealRange: ${name} = [${r[0]}, ${r[1]}] must be a finite range [lo, hi] with lo <= hi`);
    }
  }
  if (progress <= start) return [from[0], from[1]];
  if (progress >= end) return [to[0], to[1]];
  const u = (progress - start) / (end - start);
  return [from[0] + u * (to[0] - from[0]), from[1] + u * (to[1] - from[1])];
}

/** Noise levels of a batch, one per sample. */
interface NoiseLevels {
  /** Integer timesteps (ε teacher only). */
  t: Int32Array | undefined;
  /** ᾱ; 1/(1 + σ²) for a denoiser teacher. */
  alphaBar: Float64Array;
  /** The EDM noise level of x̃ = x_t/√ᾱ = x0 + σ·ε: σ = √((1 − ᾱ)/ᾱ). */
  sigma: Float64Array;
}

/** The shared body of sdsLoss (fake = the Dirac δ_{x0}, whose ε̂ is ε) and vsdLoss. */
function scoreDistillation(
  op: string,
  args: SdsLossArgs,
  fake: 'dirac' | { model: ScoreModel; label: tf.Tensor2D | undefined },
): SdsLossResult {
  const { x0, teacher, label, guidanceScale, clip } = args;
  if (typeof (x0 as tf.Tensor | undefined)?.rank !== 'number' || x0.rank < 1) {
    throw new Error(`${op}: x0 must be a tensor with a batch dimension, [N, ...dims]`);
  }
  const n = x0.shape[0]!;
  checkModel(op, 'teacher', teacher);
  if (fake !== 'dirac') {
    checkModel(op, 'fake', fake.model);
    checkFakeMatchesTeacher(op, teacher, fake.model);
  }
  checkOptions(op, args);
  const levels = noiseLevels(op, args, n);
  const weight = sdsWeights(op, args.weighting ?? 'sds', levels);
  const noise = args.noise ?? needRng(op, args).normalTensor(x0.shape);
  const sigma = tf.tensor1d(Float32Array.from(levels.sigma));
  try {
    checkBatch(op, { x0, sigma, noise, label });
    checkLabel(op, 'unconditionalLabel', args.unconditionalLabel, n);
    if (fake !== 'dirac') checkLabel(op, 'fakeLabel', fake.label, n);
    const loss = gradientAsLoss(x0, (x) => {
      const g = tf.tidy(() => {
        const at = { x0: x, noise, levels, sigma };
        let epsTeacher = epsilonOf(op, 'teacher', teacher, at, label);
        if (guidanceScale !== undefined) {
          // Classifier-free guidance: ε̂ = ε̂(x_t; ∅) + s·(ε̂(x_t; c) − ε̂(x_t; ∅)).
          const uncond = epsilonOf(op, 'teacher', teacher, at, args.unconditionalLabel ?? tf.zerosLike(label!));
          epsTeacher = tf.add(uncond, tf.mul(guidanceScale, tf.sub(epsTeacher, uncond)));
        }
        const epsFake = fake === 'dirac' ? noise : epsilonOf(op, 'fake', fake.model, at, fake.label);
        if (args.checkFinite ?? true) checkFinite(op, x, noise, epsTeacher, fake === 'dirac' ? undefined : epsFake);
        const w = perSample(weight, x.rank);
        return clipGradient(tf.mul(w, tf.sub(epsTeacher, epsFake)), clip, n);
      });
      // ½‖x0 − sg(x0 − g)‖²/N: gradient g/N, value ½Σ‖g_i‖²/N
      return { grad: tf.div(g, n), value: tf.mul(tf.sum(tf.square(g)), 0.5 / n) as tf.Scalar };
    });
    return { loss, t: levels.t, sigma: Float32Array.from(levels.sigma), weight };
  } finally {
    sigma.dispose();
    if (noise !== args.noise) noise.dispose();
  }
}

/**
 * ε̂ of a model at x0 noised with ε, (A.10):
 * - ε-network: x_t = √ᾱ·x0 + √(1 − ᾱ)·ε, ε̂ = ε_θ(x_t, t);
 * - denoiser, in the scaled space x̃ = x_t/√ᾱ = x0 + σ·ε: ε̂ = (x̃ − D(x̃; σ))/σ.
 */
function epsilonOf(
  op: string,
  role: 'teacher' | 'fake',
  model: ScoreModel,
  at: { x0: tf.Tensor; noise: tf.Tensor; levels: NoiseLevels; sigma: tf.Tensor1D },
  label: tf.Tensor2D | undefined,
): tf.Tensor {
  const { x0, noise, levels } = at;
  if ('denoiser' in model) {
    const s = perSample(levels.sigma, x0.rank);
    const xt = tf.add(x0, tf.mul(s, noise));
    const D = model.denoiser(xt, at.sigma, label);
    checkOutput(op, role, 'D(x; σ)', D, xt);
    return tf.div(tf.sub(xt, D), s);
  }
  if (levels.t === undefined) throw new Error(`${op}: the ${role} is an ε-network but no timesteps were drawn`);
  const sqrtAlphaBar = perSample(levels.alphaBar.map(Math.sqrt), x0.rank);
  const sqrtOneMinus = perSample(levels.alphaBar.map((a) => Math.sqrt(1 - a)), x0.rank);
  const xt = tf.add(tf.mul(sqrtAlphaBar, x0), tf.mul(sqrtOneMinus, noise));
  const eps = model.epsilon(xt, levels.t, label);
  checkOutput(op, role, 'ε̂', eps, xt);
  return eps;
}

/** Per-element clamp, then per-sample norm bound (see {@link SdsClip}). */
function clipGradient(g: tf.Tensor, clip: SdsClip | undefined, n: number): tf.Tensor {
  let out = g;
  if (clip?.element !== undefined) out = tf.clipByValue(out, -clip.element, clip.element);
  if (clip?.sampleNorm !== undefined) {
    const norm = perSample(tf.sqrt(tf.sum(tf.square(out.reshape([n, -1])), 1)), g.rank);
    out = tf.mul(out, tf.minimum(1, tf.div(clip.sampleNorm, tf.maximum(norm, 1e-30))));
  }
  return out;
}

function sdsWeights(op: string, weighting: SdsWeighting, levels: NoiseLevels): Float32Array {
  return Float32Array.from(levels.sigma, (s, i) => {
    switch (weighting) {
      case 'sds':
        return 1 - levels.alphaBar[i]!;
      case 'uniform':
        return 1;
      case 'inverse-snr':
        return s * s;
      default: {
        // 'sigma2' named this weighting before; in the rest of the package it is IKL's σ² on scores.
        const renamed = (weighting as string) === 'sigma2' ? " ('sigma2', w = σ², is now called 'inverse-snr')" : '';
        throw new Error(`${op}: unknown weighting '${String(weighting)}'; use 'sds', 'uniform' or 'inverse-snr'${renamed}`);
      }
    }
  });
}

/** Draws (or checks) one noise level per sample, in the convention of the teacher. */
function noiseLevels(op: string, args: SdsLossArgs, n: number): NoiseLevels {
  const { teacher } = args;
  if ('denoiser' in teacher) {
    if (args.t !== undefined || args.tRange !== undefined) {
      throw new Error(`${op}: t and tRange are integer timesteps of an ε-network teacher; a denoiser teacher takes sigma or sigmaRange`);
    }
    if (args.sigma !== undefined && args.sigmaRange !== undefined) throw new Error(`${op}: pass sigma or sigmaRange, not both`);
    let sigma: Float64Array;
    if (args.sigma !== undefined) {
      sigma = Float64Array.from(args.sigma);
      checkLength(op, 'sigma', sigma.length, n);
      sigma.forEach((s, i) => {
        if (!(Number.isFinite(s) && s > 0)) throw new Error(`${op}: sigma[${i}] = ${s}; every noise level must be finite and > 0`);
      });
    } else {
      const [lo, hi] = args.sigmaRange ?? [0.02, 80];
      if (!(lo > 0 && lo <= hi && Number.isFinite(hi))) {
        throw new Error(`${op}: sigmaRange [${lo}, ${hi}] must satisfy 0 < lo <= hi < Infinity`);
      }
      const rng = needRng(op, args);
      sigma = Float64Array.from({ length: n }, () => Math.exp(Math.log(lo) + (Math.log(hi) - Math.log(lo)) * rng.next()));
    }
    return { t: undefined, alphaBar: sigma.map((s) => 1 / (1 + s * s)), sigma };
  }
  if (args.sigma !== undefined || args.sigmaRange !== undefined) {
    throw new Error(`${op}: sigma and sigmaRange are noise levels of a denoiser teacher; an ε-network teacher takes integer timesteps t or tRange`);
  }
  if (args.t !== undefined && args.tRange !== undefined) throw new Error(`${op}: pass t or tRange, not both`);
  const T = teacher.alphasCumprod.length;
  let t: Int32Array;
  if (args.t !== undefined) {
    checkLength(op, 't', args.t.length, n);
    for (let i = 0; i < n; i++) {
      const v = args.t[i]!;
      if (!(Number.isInteger(v) && v >= 0 && v < T)) {
        throw new Error(`${op}: t[${i}] = ${v} is not a timestep of the teacher; t must be an integer in [0, ${T - 1}] (an index of alphasCumprod)`);
      }
    }
    t = Int32Array.from(args.t);
  } else {
    const [lo, hi] = args.tRange ?? [Math.floor(0.02 * T), Math.floor(0.98 * T)];
    const a = Math.ceil(lo);
    const b = Math.floor(hi);
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && a >= 0 && b <= T - 1 && a <= b)) {
      throw new Error(`${op}: tRange [${lo}, ${hi}] must hold an integer and lie within [0, ${T - 1}] (the indices of alphasCumprod)`);
    }
    const rng = needRng(op, args);
    t = Int32Array.from({ length: n }, () => a + rng.int(b - a + 1));
  }
  const alphaBar = Float64Array.from(t, (k) => teacher.alphasCumprod[k]!);
  return { t, alphaBar, sigma: alphaBar.map((a) => Math.sqrt((1 - a) / a)) };
}

function needRng(op: string, args: SdsLossArgs): Rng {
  if (args.rng === undefined) {
    const level = 'denoiser' in args.teacher ? 'sigma' : 't';
    throw new Error(`${op}: pass rng (an Rng of @diff-instruct/sde) to draw the noise levels and ε, or pass both ${level} and noise`);
  }
  return args.rng;
}

function checkModel(op: string, role: 'teacher' | 'fake', model: ScoreModel): void {
  if (typeof model !== 'object' || model === null) {
    throw new Error(`${op}: ${role} must be { denoiser } (EDM, D(x; σ)) or { epsilon, alphasCumprod } (a DDPM ε-network with its ᾱ_t)`);
  }
  const m = model as Partial<{ denoiser: unknown; epsilon: unknown; alphasCumprod: ArrayLike<number> }>;
  if ('denoiser' in m) {
    if (typeof m.denoiser !== 'function') throw new Error(`${op}: ${role}.denoiser must be a function D(x, sigma, label?)`);
    return;
  }
  if (typeof m.epsilon !== 'function' || m.alphasCumprod === undefined || m.alphasCumprod.length === undefined) {
    throw new Error(`${op}: ${role} must be { denoiser } (EDM, D(x; σ)) or { epsilon, alphasCumprod } (a DDPM ε-network with its ᾱ_t)`);
  }
  const abar = m.alphasCumprod;
  if (abar.length < 1) throw new Error(`${op}: ${role}.alphasCumprod is empty; it needs one ᾱ_t per timestep`);
  for (let i = 0; i < abar.length; i++) {
    const v = abar[i]!;
    if (!(v > 0 && v < 1)) {
      throw new Error(`${op}: ${role}.alphasCumprod[${i}] = ${v}; every ᾱ_t must lie in (0, 1) (a cumulative product of 1 − β_t)`);
    }
  }
}

function checkFakeMatchesTeacher(op: string, teacher: ScoreModel, fake: ScoreModel): void {
  if ('denoiser' in fake) return;
  if ('denoiser' in teacher) {
    throw new Error(
      `${op}: an ε-network fake needs integer timesteps, which a denoiser teacher does not give; pass the fake as { denoiser } (e.g. denoiserFromEpsilon of @diff-instruct/sde)`,
    );
  }
  const a = teacher.alphasCumprod;
  const b = fake.alphasCumprod;
  let same = a === b || a.length === b.length;
  for (let i = 0; same && a !== b && i < a.length; i++) same = a[i] === b[i];
  if (!same) throw new Error(`${op}: the fake's alphasCumprod differs from the teacher's; an ε-network fake must use the teacher's schedule`);
}

function checkOptions(op: string, args: SdsLossArgs): void {
  const { guidanceScale, label, unconditionalLabel, clip } = args;
  if (guidanceScale !== undefined) {
    if (!Number.isFinite(guidanceScale)) throw new Error(`${op}: guidanceScale must be a finite number, got ${guidanceScale}`);
    if (label === undefined) {
      throw new Error(`${op}: guidanceScale needs a label (the condition c); the unconditional branch uses unconditionalLabel, zeros by default`);
    }
  } else if (unconditionalLabel !== undefined) {
    throw new Error(`${op}: unconditionalLabel is only used by classifier-free guidance; pass guidanceScale too`);
  }
  for (const key of ['element', 'sampleNorm'] as const) {
    const v = clip?.[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`${op}: clip.${key} must be finite and > 0, got ${v}`);
  }
}

function checkLength(op: string, name: string, length: number, n: number): void {
  if (length !== n) throw new Error(`${op}: ${name} has ${length} entries but x0 has ${n} samples; pass one per sample`);
}

function checkLabel(op: string, name: string, label: tf.Tensor | undefined, n: number): void {
  if (label !== undefined && (label.rank !== 2 || label.shape[0] !== n)) {
    throw new Error(`${op}: ${name} must have shape [${n}, classes], got [${label.shape.join(', ')}]`);
  }
}

function checkOutput(op: string, role: string, what: string, out: tf.Tensor, input: tf.Tensor): void {
  if (out.rank !== input.rank || out.shape.some((d, i) => d !== input.shape[i])) {
    throw new Error(
      `${op}: the ${role} returned shape [${out.shape.join(', ')}] for an input of shape [${input.shape.join(', ')}]; it must return ${what} of the input's shape`,
    );
  }
}

/** One read of Σ(v·0) per tensor: NaN exactly when v holds a NaN or ±Infinity. */
function checkFinite(op: string, x0: tf.Tensor, noise: tf.Tensor, epsTeacher: tf.Tensor, epsFake: tf.Tensor | undefined): void {
  const named: Array<[string, tf.Tensor]> = [
    ['x0 (the image)', x0],
    ['noise', noise],
    ["the teacher's ε̂", epsTeacher],
  ];
  if (epsFake !== undefined) named.push(["the fake's ε̂", epsFake]);
  const flags = tf.stack(named.map(([, v]) => tf.sum(tf.mul(v, 0)))).dataSync();
  const bad = named.findIndex((_, i) => !Number.isFinite(flags[i]!));
  if (bad >= 0) {
    throw new Error(
      `${op}: ${named[bad]![0]} holds NaN or ±Infinity, which would make the SDS gradient non-finite; check what produced it (pass checkFinite: false to skip this check)`,
    );
  }
}
