import * as tf from '@tensorflow/tfjs';
import * as divergences from '@diff-instruct/divergences';
import { type Denoiser, GaussianMixture, Rng } from '@diff-instruct/sde';
import { tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { iklSurrogate } from './ikl.js';
import { diracDenoiser, sdsSurrogate } from './sds.js';
import { type EpsilonNet, type SdsWeighting, annealRange, sdsLoss, vsdLoss } from './sdsLoss.js';

const N = 5;
const mixture = new GaussianMixture([
  { mean: [1, -1, 0.5, 0], std: 0.5, weight: 1 },
  { mean: [-1, 0.5, 0, 1], std: 0.3, weight: 1 },
]);
const teacherD = mixture.denoiser;
const otherD = new GaussianMixture([{ mean: [0.3, 0.2, -0.4, 0.1], std: 0.7, weight: 1 }]).denoiser;

/** DDPM's linear β schedule, T = 1000 (Ho et al. 2020): ᾱ_t = Π_{s≤t} (1 − β_s). */
const T = 1000;
const alphasCumprod = (() => {
  const a = new Float32Array(T);
  let prod = 1;
  for (let t = 0; t < T; t++) {
    prod *= 1 - (1e-4 + ((0.02 - 1e-4) * t) / (T - 1));
    a[t] = prod;
  }
  return a;
})();

/** Per-sample values as an [N, 1] column. */
const col = (v: ArrayLike<number>) => tf.tensor2d(Float32Array.from(v), [v.length, 1]);

/**
 * An ε-network built from a denoiser, by hand: x0 = (x_t − √(1−ᾱ)ε)/√ᾱ, so
 * ε̂(x_t, t) = (x_t − √ᾱ·D(x_t/√ᾱ; σ))/√(1−ᾱ), σ = √((1−ᾱ)/ᾱ).
 */
const epsilonFromDenoiser =
  (D: Denoiser): EpsilonNet =>
  (xt, t, label) =>
    tf.tidy(() => {
      const abar = Array.from(t, (k) => alphasCumprod[k]!);
      const sigma = tf.tensor1d(abar.map((a) => Math.sqrt((1 - a) / a)));
      const sa = col(abar.map(Math.sqrt));
      const x0 = D(tf.div(xt, sa), sigma, label);
      return tf.div(tf.sub(xt, tf.mul(sa, x0)), col(abar.map((a) => Math.sqrt(1 - a))));
    });

/** A plain nonlinear ε-network that has nothing to do with the mixture. */
const someEpsNet: EpsilonNet = (xt, t) => tf.tidy(() => tf.tanh(tf.add(tf.mul(xt, 0.7), col(Array.from(t, (k) => k / T)))));

/** A conditional ε-network: the label shifts the prediction. */
const M = tf.tensor2d([[0.5, -0.2, 0.1, 0.3], [-0.4, 0.6, 0.2, 0], [0.1, 0.1, -0.7, 0.5]]);
const condEpsNet: EpsilonNet = (xt, t, label) =>
  tf.tidy(() => {
    const shift = label === undefined ? tf.zeros([xt.shape[0]!, 4]) : tf.matMul(label, M);
    return tf.add(someEpsNet(xt, t), tf.mul(shift, tf.add(1, tf.sin(xt))));
  });

/** max |a − b| ≤ rel·max(1, max|b|). */
function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rel: number): void {
  expect(a.length).toBe(b.length);
  let scale = 1;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  expect(err).toBeLessThanOrEqual(rel * scale);
}

/** w per sample, by hand, from ᾱ (σ² = (1 − ᾱ)/ᾱ). */
const weightByHand = (weighting: SdsWeighting, abar: number) =>
  weighting === 'sds' ? 1 - abar : weighting === 'uniform' ? 1 : (1 - abar) / abar;

const weightings: SdsWeighting[] = ['sds', 'uniform', 'inverse-snr'];

const rng = new Rng(7);
const x0 = tf.tidy(() => tf.add(rng.normalTensor([N, 4]), 0.3));
const noise = rng.normalTensor([N, 4]);
const sig = [0.05, 0.4, 1, 2.5, 8];
const ts = [3, 100, 400, 700, 990];

/** ∂loss/∂x0 as a flat array. */
const gradOf = (f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor = x0) => tf.tidy(() => tf.grad(f)(x).dataSync() as Float32Array);

describe('sdsLoss (A.11)', () => {
  it('has gradient w(σ)(ε̂ − ε)/N w.r.t. x0 and value ½Σ‖g‖²/N, denoiser teacher, every weighting', () => {
    for (const weighting of weightings) {
      const got = gradOf((x) => sdsLoss({ x0: x, teacher: { denoiser: teacherD }, sigma: sig, noise, weighting }).loss);
      const value = tf.tidy(() => sdsLoss({ x0, teacher: { denoiser: teacherD }, sigma: sig, noise, weighting }).loss.dataSync()[0]!);
      const [expected, expectedValue] = tf.tidy(() => {
        const s = col(sig);
        const xt = tf.add(x0, tf.mul(s, noise));
        const epsHat = tf.div(tf.sub(xt, teacherD(xt, tf.tensor1d(sig))), s);
        const w = col(sig.map((v) => weightByHand(weighting, 1 / (1 + v * v))));
        const g = tf.mul(w, tf.sub(epsHat, noise));
        return [tf.div(g, N).dataSync(), tf.sum(tf.square(g)).dataSync()[0]! / (2 * N)];
      });
      expectClose(got, expected, tol(1e-5));
      expect(Math.abs(value - expectedValue)).toBeLessThan(tol(1e-5) * Math.max(1, expectedValue));
    }
  });

  it('has gradient w(t)(ε̂ − ε)/N w.r.t. x0 with x_t = √ᾱ x0 + √(1−ᾱ) ε, ε-network teacher, every weighting', () => {
    for (const weighting of weightings) {
      const teacher = { epsilon: someEpsNet, alphasCumprod };
      const got = gradOf((x) => sdsLoss({ x0: x, teacher, t: ts, noise, weighting }).loss);
      const expected = tf.tidy(() => {
        const abar = ts.map((k) => alphasCumprod[k]!);
        const xt = tf.add(tf.mul(col(abar.map(Math.sqrt)), x0), tf.mul(col(abar.map((a) => Math.sqrt(1 - a))), noise));
        const epsHat = someEpsNet(xt, Int32Array.from(ts));
        const w = col(abar.map((a) => weightByHand(weighting, a)));
        return tf.div(tf.mul(w, tf.sub(epsHat, noise)), N).dataSync();
      });
      expectClose(got, expected, tol(1e-5));
    }
  });

  it('an ε-network made from the analytic denoiser gives the denoiser form at σ = √((1−ᾱ)/ᾱ)', () => {
    const teacherEps = { epsilon: epsilonFromDenoiser(teacherD), alphasCumprod };
    const sigmaMatch = ts.map((k) => Math.sqrt((1 - alphasCumprod[k]!) / alphasCumprod[k]!));
    for (const weighting of weightings) {
      const fromEps = gradOf((x) => sdsLoss({ x0: x, teacher: teacherEps, t: ts, noise, weighting }).loss);
      const fromD = gradOf((x) => sdsLoss({ x0: x, teacher: { denoiser: teacherD }, sigma: sigmaMatch, noise, weighting }).loss);
      expectClose(fromEps, fromD, tol(1e-4));
    }
    const r = sdsLoss({ x0, teacher: teacherEps, t: ts, noise });
    expectClose(r.sigma, sigmaMatch, 1e-6);
    expectClose(r.weight, ts.map((k) => 1 - alphasCumprod[k]!), 1e-7);
    expect(Array.from(r.t!)).toEqual(ts);
    r.loss.dispose();
  });

  it('equals Diff-Instruct with a Dirac generator (Corollary 3.4): vsdLoss with diracDenoiser, sdsSurrogate, iklSurrogate', () => {
    for (const weighting of weightings) {
      // SDS = VSD whose fake is the exact denoiser of δ_{x0}.
      for (const teacher of [{ denoiser: teacherD }, { epsilon: someEpsNet, alphasCumprod }]) {
        const levels = 'denoiser' in teacher ? { sigma: sig } : { t: ts };
        const sds = gradOf((x) => sdsLoss({ x0: x, teacher, noise, weighting, ...levels }).loss);
        const vsd = gradOf((x) => vsdLoss({ x0: x, teacher, fake: { denoiser: diracDenoiser(x0) }, noise, weighting, ...levels }).loss);
        expectClose(sds, vsd, tol(1e-5));
      }
      // (3.2) with the fake δ_{x0}, on scores, under the weighting σ ↦ σ·w(σ).
      const sdsToIkl = (s: Float32Array) => s.map((v) => v * weightByHand(weighting, 1 / (1 + v * v)));
      const sigma = tf.tensor1d(sig);
      const sds = gradOf((x) => sdsLoss({ x0: x, teacher: { denoiser: teacherD }, sigma: sig, noise, weighting }).loss);
      const viaSurrogate = gradOf((x) => sdsSurrogate({ x0: x, sigma, noise, teacher: teacherD, weighting: sdsToIkl }));
      const fakeX0 = tf.clone(x0);
      const viaIkl = gradOf((x) => iklSurrogate({ x0: x, sigma, noise, teacher: teacherD, fake: () => fakeX0, weighting: sdsToIkl }));
      expectClose(sds, viaSurrogate, tol(1e-5));
      expectClose(sds, viaIkl, tol(1e-5));
      tf.dispose([sigma, fakeX0]);
    }
  });

  it('reaches the user\'s variables through tf.variableGrads, never the teacher\'s, and trains with the user\'s optimiser', () => {
    // Teacher: one Gaussian N(μ, 0.3²I), as an ε-network with a variable inside. SDS on a Dirac
    // moves x0 = render(θ) to the mode μ: E[ε̂ − ε] ∝ (x0 − μ).
    const mu = [0.8, -0.5, 0.2, 1.1];
    const gauss = new GaussianMixture([{ mean: mu, std: 0.3, weight: 1 }]).denoiser;
    const gain = tf.variable(tf.scalar(1), true, 'sdsLoss-test-teacher-gain');
    const eps = epsilonFromDenoiser(gauss);
    const teacher = { epsilon: ((xt, t) => tf.mul(gain, eps(xt, t))) as EpsilonNet, alphasCumprod };
    const theta = tf.variable(tf.tensor1d([-1, 1, -1, -0.5]), true, 'sdsLoss-test-theta');
    const render = () => tf.tile(tf.mul(theta, 1).reshape([1, 4]), [3, 1]);
    const opt: tf.Optimizer = tf.train.adam(0.05);
    const r = new Rng(3);
    const steps = 300;
    for (let step = 0; step < steps; step++) {
      const tRange = annealRange(step / steps, { from: [20, 980], to: [20, 500] });
      let used: Int32Array | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = sdsLoss({ x0: render(), teacher, rng: r, tRange });
        used = out.t;
        return out.loss;
      });
      expect(Object.keys(grads)).toEqual(['sdsLoss-test-theta']);
      for (const k of used!) expect(k >= tRange[0] && k <= tRange[1]).toBe(true);
      opt.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const dist = Math.hypot(...Array.from(theta.dataSync(), (v, i) => v - mu[i]!));
    expect(dist).toBeLessThan(0.2);
    expect(gain.dataSync()[0]).toBe(1);
    opt.dispose();
    tf.dispose([gain, theta]);
  });

  it('classifier-free guidance: scale 1 is the conditional teacher, scale 0 the unconditional, s by hand', () => {
    const teacher = { epsilon: condEpsNet, alphasCumprod };
    const label = tf.oneHot(tf.tensor1d([0, 2, 1, 1, 0], 'int32'), 3).toFloat() as tf.Tensor2D;
    const zeros = tf.zeros([N, 3]) as tf.Tensor2D;
    const other = tf.oneHot(tf.tensor1d([1, 1, 1, 1, 1], 'int32'), 3).toFloat() as tf.Tensor2D;
    const base = { teacher, t: ts, noise };
    const cond = gradOf((x) => sdsLoss({ x0: x, ...base, label }).loss);
    const uncond = gradOf((x) => sdsLoss({ x0: x, ...base, label: zeros }).loss);
    const uncondOther = gradOf((x) => sdsLoss({ x0: x, ...base, label: other }).loss);
    // The shift makes the branches differ, so the comparisons below can tell them apart.
    expect(Math.max(...cond.map((v, i) => Math.abs(v - uncond[i]!)))).toBeGreaterThan(1e-3);
    expectClose(gradOf((x) => sdsLoss({ x0: x, ...base, label, guidanceScale: 1 }).loss), cond, tol(1e-5));
    expectClose(gradOf((x) => sdsLoss({ x0: x, ...base, label, guidanceScale: 0 }).loss), uncond, tol(1e-5));
    expectClose(
      gradOf((x) => sdsLoss({ x0: x, ...base, label, guidanceScale: 0, unconditionalLabel: other }).loss),
      uncondOther,
      tol(1e-5),
    );
    // s = 7.5: ε̂ = ε_u + s(ε_c − ε_u), so g_s = g_u + s(g_c − g_u) (w(ε̂ − ε) is affine in ε̂).
    const s = 7.5;
    expectClose(
      gradOf((x) => sdsLoss({ x0: x, ...base, label, guidanceScale: s }).loss),
      cond.map((c, i) => uncond[i]! + s * (c - uncond[i]!)),
      tol(1e-4),
    );
    // Denoiser teacher: the guided D is D_u + s(D_c − D_u), ε̂ is affine in D.
    const condD: Denoiser = (x, sigma, lab) =>
      tf.tidy(() => tf.add(teacherD(x, sigma), lab === undefined ? 0 : tf.matMul(lab, M)));
    const dBase = { teacher: { denoiser: condD }, sigma: sig, noise };
    const dc = gradOf((x) => sdsLoss({ x0: x, ...dBase, label }).loss);
    const du = gradOf((x) => sdsLoss({ x0: x, ...dBase, label: zeros }).loss);
    expectClose(
      gradOf((x) => sdsLoss({ x0: x, ...dBase, label, guidanceScale: 3 }).loss),
      dc.map((c, i) => du[i]! + 3 * (c - du[i]!)),
      tol(1e-4),
    );
    tf.dispose([label, zeros, other]);
  });

  it('clips the gradient per element and per sample norm', () => {
    const base = { teacher: { denoiser: teacherD }, sigma: sig, noise, weighting: 'inverse-snr' as const };
    const g = gradOf((x) => sdsLoss({ x0: x, ...base }).loss).map((v) => v * N);
    const c = 0.5;
    expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(2 * c); // clipping has work to do
    const ge = gradOf((x) => sdsLoss({ x0: x, ...base, clip: { element: c } }).loss).map((v) => v * N);
    ge.forEach((v, i) => {
      expect(Math.abs(v)).toBeLessThanOrEqual(c * (1 + 1e-6));
      expect(Math.abs(v - Math.max(-c, Math.min(c, g[i]!)))).toBeLessThan(1e-6);
    });
    const gn = gradOf((x) => sdsLoss({ x0: x, ...base, clip: { sampleNorm: 1 } }).loss).map((v) => v * N);
    let clipped = 0;
    for (let i = 0; i < N; i++) {
      const row = g.slice(4 * i, 4 * i + 4);
      const norm = Math.hypot(...row);
      const scale = Math.min(1, 1 / norm);
      if (scale < 1) clipped++;
      const rowClipped = gn.slice(4 * i, 4 * i + 4);
      expect(Math.hypot(...rowClipped)).toBeLessThanOrEqual(1 + 1e-5);
      rowClipped.forEach((v, d) => expect(Math.abs(v - row[d]! * scale)).toBeLessThan(1e-5 * Math.max(1, Math.abs(row[d]!))));
    }
    expect(clipped).toBeGreaterThan(0);
    expect(clipped).toBeLessThan(N);
    const both = gradOf((x) => sdsLoss({ x0: x, ...base, clip: { element: c, sampleNorm: 0.6 } }).loss).map((v) => v * N);
    for (let i = 0; i < N; i++) expect(Math.hypot(...both.slice(4 * i, 4 * i + 4))).toBeLessThanOrEqual(0.6 + 1e-5);
    both.forEach((v) => expect(Math.abs(v)).toBeLessThanOrEqual(c * (1 + 1e-6)));
  });

  it('draws t from tRange and σ from sigmaRange with the rng, reproducibly', () => {
    const teacher = { epsilon: someEpsNet, alphasCumprod };
    const x = tf.zeros([400, 4]);
    const a = sdsLoss({ x0: x, teacher, rng: new Rng(1), tRange: [5, 9] });
    const b = sdsLoss({ x0: x, teacher, rng: new Rng(1), tRange: [5, 9] });
    expect(Array.from(a.t!)).toEqual(Array.from(b.t!));
    expect(a.loss.dataSync()[0]).toBe(b.loss.dataSync()[0]);
    expect(new Set(a.t!)).toEqual(new Set([5, 6, 7, 8, 9]));
    const d = sdsLoss({ x0: x, teacher, rng: new Rng(2) });
    for (const k of d.t!) expect(k >= 20 && k <= 980).toBe(true); // DreamFusion's [0.02T, 0.98T]
    const s = sdsLoss({ x0: x, teacher: { denoiser: teacherD }, rng: new Rng(3), sigmaRange: [0.1, 10] });
    expect(s.t).toBeUndefined();
    for (const v of s.sigma) expect(v >= 0.1 * (1 - 1e-6) && v <= 10 * (1 + 1e-6)).toBe(true);
    // log-uniform: about half the draws below the geometric mean 1.
    expect(Math.abs(s.sigma.filter((v) => v < 1).length / 400 - 0.5)).toBeLessThan(0.1);
    tf.dispose([x, a.loss, b.loss, d.loss, s.loss]);
  });

  it('leaks nothing, also when it throws', () => {
    const teacher = { epsilon: someEpsNet, alphasCumprod };
    const before = tf.memory().numTensors;
    tf.grad((x: tf.Tensor) => sdsLoss({ x0: x, teacher, rng: new Rng(4), guidanceScale: 2, label: tf.ones([N, 3]) as tf.Tensor2D, clip: { element: 1, sampleNorm: 1 } }).loss)(x0).dispose();
    tf.grad((x: tf.Tensor) => vsdLoss({ x0: x, teacher, fake: { denoiser: otherD }, rng: new Rng(4) }).loss)(x0).dispose();
    const nanTeacher = { epsilon: ((xt) => tf.fill(xt.shape, Number.NaN)) as EpsilonNet, alphasCumprod };
    expect(() => tf.grad((x: tf.Tensor) => sdsLoss({ x0: x, teacher: nanTeacher, rng: new Rng(4) }).loss)(x0)).toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad input with an error that names the problem and the fix', () => {
    const eps = { epsilon: someEpsNet, alphasCumprod };
    const den = { denoiser: teacherD };
    const bad: Array<[() => unknown, RegExp]> = [
      [() => sdsLoss({ x0, teacher: eps, t: ts, noise: tf.zeros([N, 3]) }), /sdsLoss: noise has shape \[5, 3\] but x0 has shape \[5, 4\]/],
      [() => sdsLoss({ x0: tf.scalar(1), teacher: eps, rng }), /sdsLoss: x0 must be a tensor with a batch dimension/],
      [() => sdsLoss({ x0, teacher: eps, t: [1, 2, 3, 4, 1000], noise }), /t\[4\] = 1000 is not a timestep.*integer in \[0, 999\]/],
      [() => sdsLoss({ x0, teacher: eps, t: [1, 2, 3, 4, 2.5], noise }), /t\[4\] = 2.5 is not a timestep/],
      [() => sdsLoss({ x0, teacher: eps, t: [1, 2], noise }), /t has 2 entries but x0 has 5 samples; pass one per sample/],
      [() => sdsLoss({ x0, teacher: eps, tRange: [20, 1200], rng }), /tRange \[20, 1200\] must .*within \[0, 999\]/],
      [() => sdsLoss({ x0, teacher: eps, tRange: [500, 20], rng }), /tRange \[500, 20\]/],
      [() => sdsLoss({ x0, teacher: eps, sigma: sig, noise }), /an ε-network teacher takes integer timesteps t or tRange/],
      [() => sdsLoss({ x0, teacher: den, t: ts, noise }), /a denoiser teacher takes sigma or sigmaRange/],
      [() => sdsLoss({ x0, teacher: den, sigma: [1, 1, 0, 1, 1], noise }), /sigma\[2\] = 0; every noise level must be finite and > 0/],
      [() => sdsLoss({ x0, teacher: den, sigmaRange: [0, 1], rng }), /sigmaRange \[0, 1\] must satisfy 0 < lo <= hi/],
      [() => sdsLoss({ x0, teacher: eps, noise }), /pass rng .* or pass both t and noise/],
      [() => sdsLoss({ x0, teacher: den, sigma: sig }), /pass rng .* or pass both sigma and noise/],
      [() => sdsLoss({ x0, teacher: { epsilon: someEpsNet, alphasCumprod: [0.9, 1, 0.5] }, rng }), /teacher.alphasCumprod\[1\] = 1; every ᾱ_t must lie in \(0, 1\)/],
      [() => sdsLoss({ x0, teacher: undefined as never, rng }), /teacher must be \{ denoiser \}/],
      [() => sdsLoss({ x0, teacher: {} as never, rng }), /teacher must be \{ denoiser \} .* or \{ epsilon, alphasCumprod \}/],
      [() => sdsLoss({ x0, teacher: eps, rng, guidanceScale: 5 }), /guidanceScale needs a label/],
      [() => sdsLoss({ x0, teacher: eps, rng, guidanceScale: Number.NaN, label: tf.ones([N, 3]) as tf.Tensor2D }), /guidanceScale must be a finite number/],
      [() => sdsLoss({ x0, teacher: eps, rng, label: tf.ones([2, 3]) as tf.Tensor2D }), /label must have shape \[5, classes\], got \[2, 3\]/],
      [() => sdsLoss({ x0, teacher: eps, rng, clip: { element: 0 } }), /clip.element must be finite and > 0, got 0/],
      [() => sdsLoss({ x0, teacher: eps, rng, clip: { sampleNorm: Number.POSITIVE_INFINITY } }), /clip.sampleNorm must be finite/],
      [() => sdsLoss({ x0, teacher: eps, rng, weighting: 'dmd' as never }), /unknown weighting 'dmd'; use 'sds', 'uniform' or 'inverse-snr'/],
      [() => sdsLoss({ x0, teacher: eps, rng, weighting: 'sigma2' as never }), /unknown weighting 'sigma2'; use .* \('sigma2', w = σ², is now called 'inverse-snr'\)/],
      [() => sdsLoss({ x0, teacher: { epsilon: (xt) => xt.slice([0, 0], [-1, 2]), alphasCumprod }, rng }), /the teacher returned shape \[5, 2\] for an input of shape \[5, 4\]/],
      [() => sdsLoss({ x0: tf.fill([N, 4], Number.NaN), teacher: eps, rng }), /x0 \(the image\) holds NaN or ±Infinity/],
      [() => sdsLoss({ x0, teacher: eps, t: ts, noise: tf.fill([N, 4], Number.POSITIVE_INFINITY) }), /noise holds NaN or ±Infinity/],
      [() => sdsLoss({ x0, teacher: { epsilon: (xt) => tf.div(xt, 0), alphasCumprod }, rng }), /the teacher's ε̂ holds NaN or ±Infinity/],
      [() => vsdLoss({ x0, teacher: den, fake: eps, rng }), /an ε-network fake needs integer timesteps.*pass the fake as \{ denoiser \}/],
      [() => vsdLoss({ x0, teacher: eps, fake: { epsilon: someEpsNet, alphasCumprod: alphasCumprod.slice(0, 10) }, rng }), /the fake's alphasCumprod differs from the teacher's/],
      [() => vsdLoss({ x0, teacher: eps, fake: { epsilon: (xt) => tf.mul(xt, Number.NaN), alphasCumprod }, rng }), /the fake's ε̂ holds NaN/],
      [() => annealRange(Number.NaN, { from: [20, 980], to: [20, 500] }), /annealRange: progress must be a finite number/],
      [() => annealRange(0.5, { from: [980, 20], to: [20, 500] }), /annealRange: from = \[980, 20\] must be a finite range \[lo, hi\]/],
      [() => annealRange(0.5, { from: [20, 980], to: [20, 500], start: 0.8, end: 0.2 }), /start \(0.8\) and end \(0.2\) must be finite with start <= end/],
    ];
    for (const [f, message] of bad) expect(() => tf.tidy(() => void f())).toThrow(message);
    // A non-finite value passes when the check is off (the caller asked for speed).
    expect(() => tf.tidy(() => void sdsLoss({ x0: tf.fill([N, 4], Number.NaN), teacher: eps, rng, checkFinite: false }))).not.toThrow();
  });
});

describe('vsdLoss', () => {
  it('has gradient w(t)(ε̂_teacher − ε̂_fake)/N by hand, for ε and denoiser fakes', () => {
    const abar = ts.map((k) => alphasCumprod[k]!);
    const xt = () => tf.add(tf.mul(col(abar.map(Math.sqrt)), x0), tf.mul(col(abar.map((a) => Math.sqrt(1 - a))), noise));
    const sigmaMatch = abar.map((a) => Math.sqrt((1 - a) / a));
    const teacher = { epsilon: someEpsNet, alphasCumprod };
    const fakeNet: EpsilonNet = (x, t) => tf.tidy(() => tf.mul(someEpsNet(x, t), 0.6));
    for (const weighting of weightings) {
      const w = () => col(abar.map((a) => weightByHand(weighting, a)));
      // ε fake sharing the teacher's schedule.
      const got = gradOf((x) => vsdLoss({ x0: x, teacher, fake: { epsilon: fakeNet, alphasCumprod }, t: ts, noise, weighting }).loss);
      const expected = tf.tidy(() => {
        const e = someEpsNet(xt(), Int32Array.from(ts));
        return tf.div(tf.mul(w(), tf.sub(e, fakeNet(xt(), Int32Array.from(ts)))), N).dataSync();
      });
      expectClose(got, expected, tol(1e-5));
      // Denoiser fake under an ε teacher: ε̂_fake = (x̃ − D(x̃; σ))/σ with x̃ = x_t/√ᾱ = x0 + σε.
      const gotD = gradOf((x) => vsdLoss({ x0: x, teacher, fake: { denoiser: otherD }, t: ts, noise, weighting }).loss);
      const expectedD = tf.tidy(() => {
        const s = col(sigmaMatch);
        const xTilde = tf.add(x0, tf.mul(s, noise));
        const eFake = tf.div(tf.sub(xTilde, otherD(xTilde, tf.tensor1d(sigmaMatch))), s);
        return tf.div(tf.mul(w(), tf.sub(someEpsNet(xt(), Int32Array.from(ts)), eFake)), N).dataSync();
      });
      expectClose(gotD, expectedD, tol(1e-4));
    }
  });

  it('is iklSurrogate (3.2) under σ ↦ σ·w(σ) for denoisers, and vanishes when the fake is the teacher', () => {
    const sigma = tf.tensor1d(sig);
    for (const weighting of weightings) {
      const got = gradOf((x) => vsdLoss({ x0: x, teacher: { denoiser: teacherD }, fake: { denoiser: otherD }, sigma: sig, noise, weighting }).loss);
      const toIkl = (s: Float32Array) => s.map((v) => v * weightByHand(weighting, 1 / (1 + v * v)));
      const di = gradOf((x) => iklSurrogate({ x0: x, sigma, noise, teacher: teacherD, fake: otherD, weighting: toIkl }));
      expectClose(got, di, tol(1e-5));
    }
    const same = gradOf((x) => vsdLoss({ x0: x, teacher: { denoiser: teacherD }, fake: { denoiser: teacherD }, sigma: sig, noise }).loss);
    same.forEach((v) => expect(v).toBe(0));
    sigma.dispose();
  });
});

describe('@diff-instruct/divergences', () => {
  it('exports the SDS API', () => {
    expect(divergences.sdsLoss).toBe(sdsLoss);
    expect(divergences.vsdLoss).toBe(vsdLoss);
    expect(divergences.annealRange).toBe(annealRange);
  });
});

describe('annealRange', () => {
  it('is monotone, stays between its ends, and holds them outside [start, end]', () => {
    const opts = { from: [20, 980], to: [20, 500], start: 0.2, end: 0.6 } as const;
    let prev = annealRange(-0.5, opts);
    expect(prev).toEqual([20, 980]);
    for (let k = -50; k <= 150; k++) {
      const p = k / 100;
      const [lo, hi] = annealRange(p, opts);
      expect(lo).toBe(20);
      expect(hi).toBeLessThanOrEqual(prev[1]);
      expect(hi >= 500 && hi <= 980).toBe(true);
      if (p <= 0.2) expect(hi).toBe(980);
      if (p >= 0.6) expect(hi).toBe(500);
      prev = [lo, hi];
    }
    expect(annealRange(0.4, opts)[1]).toBeCloseTo(740, 9);
    // Increasing ends work the same way (e.g. a σ range that widens).
    const up = { from: [0.02, 1], to: [0.5, 80] } as const;
    let last = annealRange(0, up);
    for (let k = 0; k <= 20; k++) {
      const r = annealRange(k / 20, up);
      expect(r[0]).toBeGreaterThanOrEqual(last[0]);
      expect(r[1]).toBeGreaterThanOrEqual(last[1]);
      expect(r[0] <= r[1]).toBe(true);
      last = r;
    }
    expect(last[1]).toBeCloseTo(80, 9);
    // start === end: a step (ProlificDreamer's t_max drop).
    const step = { from: [20, 980], to: [20, 500], start: 0.2, end: 0.2 } as const;
    expect(annealRange(0.19, step)).toEqual([20, 980]);
    expect(annealRange(0.2, step)).toEqual([20, 980]);
    expect(annealRange(0.21, step)).toEqual([20, 500]);
  });
});
