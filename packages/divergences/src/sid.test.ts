import * as tf from '@tensorflow/tfjs';
import { type Denoiser, GaussianMixture, Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { type IklWeighting, iklSurrogate } from './ikl.js';
import { sidLoss } from './sid.js';

// Isotropic Gaussians in 3-D: the teacher's data p and the generator's distribution q, each with its
// exact denoiser D(x, σ) = μ + b(σ)(x − μ), b = s²/(s² + σ²).
const D = 3;
const P = { mean: [0.5, -1, 2], std: 0.8 };
const Q = { mean: [-0.3, 0.4, 1.1], std: 1.3 };
const p = new GaussianMixture([{ ...P, weight: 1 }]);
const q = new GaussianMixture([{ ...Q, weight: 1 }]);
const bOf = (std: number, s: number) => (std * std) / (std * std + s * s);

/** SiD's loss and its gradient in x_g, in float64 from the closed-form denoisers (c_i held constant). */
function closedForm(xg: number[][], sig: number[], n: number[][], alpha: number, factor: (i: number, fT: number[]) => number) {
  const N = xg.length;
  let value = 0;
  const grad = xg.map((row, i) => {
    const s = sig[i]!;
    const bT = bOf(P.std, s);
    const bF = bOf(Q.std, s);
    const xt = row.map((v, j) => v + s * n[i]![j]!);
    const fT = xt.map((v, j) => P.mean[j]! + bT * (v - P.mean[j]!));
    const fF = xt.map((v, j) => Q.mean[j]! + bF * (v - Q.mean[j]!));
    const c = factor(i, fT);
    return row.map((x, j) => {
      const d = fT[j]! - fF[j]!;
      value += (c * d * (fT[j]! - x - alpha * d)) / N;
      // ∂x_t/∂x_g = 1: ∂d = bT − bF, ∂(f_T − x_g) = bT − 1.
      return (c * ((bT - bF) * (fT[j]! - x - alpha * d) + d * (bT - 1 - alpha * (bT - bF)))) / N;
    });
  });
  return { value, grad };
}

describe('sidLoss (SiD generator loss) for Gaussians with exact denoisers', () => {
  const N = 6;
  const rng = new Rng(21);
  const sig = [0.05, 0.3, 0.8, 1.5, 4, 20];

  it('its value and its gradient through x_t match the closed form, for α and every weighting', () => {
    const x0 = tf.tensor2d(q.sample(rng, N), [N, D]);
    const noise = rng.normalTensor([N, D]);
    const sigma = tf.tensor1d(sig);
    const xg = x0.arraySync() as number[][];
    const n = noise.arraySync() as number[][];
    const sd = 0.5;
    const cases: [IklWeighting, (i: number, fT: number[]) => number][] = [
      ['dmd', (i, fT) => 1 / (xg[i]!.reduce((a, v, j) => a + Math.abs(v - fT[j]!), 0) / D)],
      ['sigma2', () => 1],
      ['uniform', (i) => 1 / sig[i]! ** 2],
      ['edm', (i) => (sig[i]! ** 2 + sd * sd) / (sd * sd)],
      [(s) => s.map((v) => v), (i) => 1 / sig[i]!],
    ];
    for (const alpha of [1.2, 0, 1]) {
      for (const [weighting, factor] of cases) {
        const expected = closedForm(xg, sig, n, alpha, factor);
        const f = (x: tf.Tensor) => sidLoss({ x0: x, sigma, noise, teacher: p.denoiser, fake: q.denoiser, alpha, weighting });
        const value = tf.tidy(() => f(x0).dataSync()[0]!);
        const grad = tf.tidy(() => tf.grad(f)(x0).arraySync() as number[][]);
        expect(Math.abs(value - expected.value)).toBeLessThan(tol(1e-4) * Math.max(1, Math.abs(expected.value)));
        grad.forEach((row, i) =>
          row.forEach((v, j) => {
            const e = expected.grad[i]![j]!;
            expect(Math.abs(v - e)).toBeLessThan(tol(1e-4) * Math.max(1, Math.abs(e)));
          }),
        );
      }
    }
    tf.dispose([x0, noise, sigma]);
  });

  it('moves a Gaussian generator by (1 − b(σ))·(μ_q − μ_p) per sample when the variances agree: (1 − b) times Diff-Instruct', () => {
    // Equal variances: d = f_T − f_F = (1 − b)(μ_p − μ_q) does not depend on x_t, so the α term has
    // no gradient and ∂L/∂x_g = d·(∂f_T/∂x_g − 1)/N = −(1 − b)·d/N = (1 − b)²(μ_q − μ_p)/N, while
    // (3.2) gives −d/N = (1 − b)(μ_q − μ_p)/N.
    const std = 0.9;
    const pm = new GaussianMixture([{ mean: P.mean, std, weight: 1 }]);
    const qm = new GaussianMixture([{ mean: Q.mean, std, weight: 1 }]);
    const x0 = tf.tensor2d(qm.sample(rng, N), [N, D]);
    const noise = rng.normalTensor([N, D]);
    const sigma = tf.tensor1d(sig);
    const args = { sigma, noise, teacher: pm.denoiser, fake: qm.denoiser, weighting: 'sigma2' as const };
    const gSid = tf.tidy(() => tf.grad((x: tf.Tensor) => sidLoss({ x0: x, ...args }))(x0).arraySync() as number[][]);
    const gIkl = tf.tidy(() => tf.grad((x: tf.Tensor) => iklSurrogate({ x0: x, ...args }))(x0).arraySync() as number[][]);
    gSid.forEach((row, i) =>
      row.forEach((v, j) => {
        const oneMinusB = 1 - bOf(std, sig[i]!);
        const dm = Q.mean[j]! - P.mean[j]!;
        expect(v).toBeCloseTo((oneMinusB * oneMinusB * dm) / N, 5);
        expect(gIkl[i]![j]!).toBeCloseTo((oneMinusB * dm) / N, 5);
      }),
    );
    tf.dispose([x0, noise, sigma]);
  });

  it('is zero, with a zero gradient, when the fake denoiser equals the teacher', () => {
    const x0 = tf.tensor2d(p.sample(rng, N), [N, D]);
    const noise = rng.normalTensor([N, D]);
    const sigma = tf.tensor1d(sig);
    const f = (x: tf.Tensor) => sidLoss({ x0: x, sigma, noise, teacher: p.denoiser, fake: p.denoiser });
    expect(tf.tidy(() => f(x0).dataSync()[0]!)).toBe(0);
    expect(tf.tidy(() => tf.max(tf.abs(tf.grad(f)(x0))).dataSync()[0]!)).toBe(0);
    tf.dispose([x0, noise, sigma]);
  });
});

describe('sidLoss: gradients', () => {
  const N = 5;
  const rng = new Rng(8);
  // Nonlinear exact denoisers: two-component mixtures.
  const pm = new GaussianMixture([
    { mean: [1, 0, -1], std: 0.4, weight: 1 },
    { mean: [-1, 0.5, 1], std: 0.6, weight: 2 },
  ]);
  const qm = new GaussianMixture([
    { mean: [0.2, 0.1, -0.3], std: 0.9, weight: 1 },
    { mean: [-0.5, 1, 0.5], std: 0.5, weight: 1 },
  ]);

  it('is the finite-difference gradient through both denoisers (gradCheck)', () => {
    for (const alpha of [1.2, 0.5]) {
      const x0 = tf.tensor2d(qm.sample(rng, N), [N, 3]);
      const noise = rng.normalTensor([N, 3]);
      const sigma = tf.tensor1d([0.2, 0.5, 1, 2, 3]);
      const f = (x: tf.Tensor) => sidLoss({ x0: x, sigma, noise, teacher: pm.denoiser, fake: qm.denoiser, alpha, weighting: 'sigma2' });
      const r = gradCheck(f, [x0], { eps: 1e-2 });
      expect(r.maxRelError).toBeLessThan(tol(3e-3));
      expect(Math.max(...r.analytic.map(Math.abs))).toBeGreaterThan(1e-3);
      tf.dispose([x0, noise, sigma]);
    }
  });

  it('with denoisers that ignore x_t, its gradient is exactly iklSurrogate’s under the same weighting', () => {
    const x0 = tf.tensor2d(qm.sample(rng, N), [N, 3]);
    const noise = rng.normalTensor([N, 3]);
    const sigma = tf.tensor1d([0.1, 0.7, 1, 2.5, 8]);
    const a = tf.tensor2d(pm.sample(rng, N), [N, 3]);
    const b = tf.tensor2d(qm.sample(rng, N), [N, 3]);
    // Constant in x_t, but not in x_g: the stop-gradient of the teacher's and fake's outputs.
    const teacher: Denoiser = () => a.clone();
    const fake: Denoiser = () => b.clone();
    for (const weighting of ['sigma2', 'dmd', 'edm', 'uniform'] as const) {
      const args = { sigma, noise, teacher, fake, weighting };
      const gSid = tf.tidy(() => tf.grad((x: tf.Tensor) => sidLoss({ x0: x, ...args }))(x0).arraySync() as number[][]);
      const gIkl = tf.tidy(() => tf.grad((x: tf.Tensor) => iklSurrogate({ x0: x, ...args }))(x0).arraySync() as number[][]);
      gSid.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - gIkl[i]![j]!)).toBeLessThan(tol(1e-5) * Math.max(1, Math.abs(v)))));
    }
    tf.dispose([x0, noise, sigma, a, b]);
  });

  it('sends no gradient to the denoisers’ variables when the caller names the generator’s', () => {
    const w = tf.variable(tf.scalar(0.7), true, 'sidTeacherParam');
    const theta = tf.variable(tf.tensor2d([[0.3, -0.2], [1, 0.5]]), true, 'sidGeneratorParam');
    const noise = tf.tensor2d([[0.1, -1], [0.7, 0.2]]);
    const sigma = tf.tensor1d([0.5, 1.5]);
    const teacher: Denoiser = (x) => tf.mul(w, tf.tanh(x));
    const fake: Denoiser = (x) => tf.mul(tf.sin(x), 0.5);
    const before = w.dataSync()[0];
    const { grads } = tf.variableGrads(() => sidLoss({ x0: tf.mul(theta, 2), sigma, noise, teacher, fake, weighting: 'sigma2' }), [theta]);
    expect(Object.keys(grads)).toEqual(['sidGeneratorParam']);
    // …and the gradient it gives θ is 2·∂L/∂x_g (x_g = 2θ), Jacobians included.
    const x0 = tf.mul(theta, 2);
    const gx = tf.grad((x: tf.Tensor) => sidLoss({ x0: x, sigma, noise, teacher, fake, weighting: 'sigma2' }))(x0);
    const got = grads.sidGeneratorParam!.arraySync() as number[][];
    const exp = gx.arraySync() as number[][];
    got.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(2 * exp[i]![j]!, 5)));
    expect(w.dataSync()[0]).toBe(before);
    tf.dispose([w, theta, noise, sigma, x0, gx, ...Object.values(grads)]);
  });

  it('leaks nothing, forward or backward', () => {
    const x0 = tf.tensor2d(qm.sample(rng, N), [N, 3]);
    const noise = rng.normalTensor([N, 3]);
    const sigma = tf.tensor1d([0.1, 0.5, 1, 2, 5]);
    const f = (x: tf.Tensor) => sidLoss({ x0: x, sigma, noise, teacher: pm.denoiser, fake: qm.denoiser });
    f(x0).dispose();
    const before = tf.memory().numTensors;
    f(x0).dispose();
    tf.grad(f)(x0).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x0, noise, sigma]);
  });

  it('throws a clear error on bad arguments, naming them', () =>
    tf.tidy(() => {
      const x0 = tf.zeros([4, 3]);
      const base = { x0, noise: tf.zeros([4, 3]), sigma: tf.ones([4]) as tf.Tensor1D, teacher: pm.denoiser, fake: qm.denoiser };
      expect(() => sidLoss({ ...base, noise: tf.zeros([4, 2]) })).toThrow(/sidLoss: noise has shape \[4, 2\] but x0 has shape \[4, 3\]/);
      expect(() => sidLoss({ ...base, sigma: tf.ones([3]) as tf.Tensor1D })).toThrow(/sidLoss: sigma must have shape \[4\]/);
      expect(() => sidLoss({ ...base, alpha: Number.NaN })).toThrow(/sidLoss: alpha must be a finite number/);
    }));
});
