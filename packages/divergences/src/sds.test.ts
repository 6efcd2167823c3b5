import * as tf from '@tensorflow/tfjs';
import { GaussianMixture, Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { iklSurrogate } from './ikl.js';
import { diracDenoiser, sdsSurrogate } from './sds.js';

const teacher = new GaussianMixture([
  { mean: [1, -1, 0.5, 0], std: 0.5, weight: 1 },
  { mean: [-1, 0.5, 0, 1], std: 0.3, weight: 1 },
]).denoiser;

/** A small differentiable "renderer": x0 = g(θ), N copies of an affine map of θ ∈ R³ into R⁴. */
const A = tf.tensor2d([[1, 0.5, 0], [0, -1, 2], [0.3, 0, 1], [-0.7, 0.2, 0.4]]);
const b = tf.tensor1d([0.1, -0.2, 0.3, 0]);
const N = 5;
const render = (theta: tf.Tensor) => tf.tile(tf.add(tf.matMul(A, theta.reshape([3, 1])).reshape([1, 4]), b), [N, 1]);

describe('sdsSurrogate (3.3), (A.11)', () => {
  const rng = new Rng(9);
  const noise = rng.normalTensor([N, 4]);
  const sig = Float32Array.from([0.1, 0.4, 1, 2.5, 8]);
  const sigma = tf.tensor1d(sig);
  const theta = tf.tensor1d([0.2, -0.4, 0.7]);

  it('equals Diff-Instruct with the exact fake score of a Dirac generator (Corollary 3.4)', () => {
    for (const weighting of ['sigma2', 'uniform', 'edm', 'dmd'] as const) {
      const [gSds, gDi] = tf.tidy(() => {
        const sds = tf.grad((th: tf.Tensor) => sdsSurrogate({ x0: render(th), sigma, noise, teacher, weighting }))(theta);
        // The fake denoiser of δ_{g(θ)} at the current θ: x0 itself, as a constant.
        const x0 = tf.tensor(render(theta).dataSync(), [N, 4]);
        const fake = () => x0;
        const di = tf.grad((th: tf.Tensor) => iklSurrogate({ x0: render(th), sigma, noise, teacher, fake, weighting }))(theta);
        return [sds.dataSync(), di.dataSync()];
      });
      gSds.forEach((v, i) => expect(Math.abs(v - gDi[i]!)).toBeLessThan(tol(1e-6) * Math.max(1, Math.abs(v))));
    }
  });

  it('equals the ε-form (A.11) by hand: (w/σ)(ε̂ − ε)·∂x_t/∂θ with ε̂ = (x_t − D)/σ', () => {
    const got = tf.tidy(() =>
      tf.grad((th: tf.Tensor) => sdsSurrogate({ x0: render(th), sigma, noise, teacher, weighting: 'uniform' }))(theta).dataSync(),
    );
    const expected = tf.tidy(() => {
      const x0 = render(theta);
      const s = sigma.reshape([N, 1]);
      const xt = tf.add(x0, tf.mul(s, noise));
      const epsHat = tf.div(tf.sub(xt, teacher(xt, sigma)), s);
      const perSample = tf.div(tf.mul(tf.div(1, s), tf.sub(epsHat, noise)), N); // w = 1
      // ∂x_t/∂θ = A for every sample: Σ_i Aᵀ g_i.
      return tf.matMul(tf.sum(perSample, 0, true), A).reshape([3]).dataSync();
    });
    got.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(tol(1e-4) * Math.max(1, Math.abs(v))));
  });

  it('is the finite-difference gradient of (1/N)Σ w·log(N(·; x0, σ²)/p_σ)(y + σn) at y = x0 (gradCheck)', () => {
    // The Dirac generator's diffused density is N(x0, σ²) with x0 held fixed; its score is the fake score.
    const mixture = new GaussianMixture([
      { mean: [1, -1, 0.5, 0], std: 0.5, weight: 1 },
      { mean: [-1, 0.5, 0, 1], std: 0.3, weight: 1 },
    ]);
    for (const s of [0.4, 1.5]) {
      const x0 = tf.tidy(() => render(theta));
      const sg = tf.fill([N], s) as tf.Tensor1D;
      const G0 = tf.tidy(() => tf.grad((x: tf.Tensor) => sdsSurrogate({ x0: x, sigma: sg, noise, teacher, weighting: 'uniform' }))(x0));
      const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
        const y = inputs[0] as tf.Tensor2D;
        const value = tf.tidy(() => {
          const xt = tf.add(y, tf.mul(noise, s)) as tf.Tensor2D;
          const logQ = tf.div(tf.sum(tf.square(tf.sub(xt, x0)), 1), -2 * s * s);
          return tf.mean(tf.sub(logQ, mixture.logProb(xt, s))) as tf.Scalar;
        });
        return { value, gradFunc: (dy: tf.Tensor) => tf.mul(dy, G0) };
      });
      const r = gradCheck((y) => op(y) as tf.Scalar, [x0], { eps: 1e-2 });
      expect(r.maxRelError).toBeLessThan(tol(2e-3));
      tf.dispose([x0, sg, G0]);
    }
  });

  it('diracDenoiser returns x0 without gradient and checks shapes', () => {
    const x0 = tf.tensor2d([[1, 2], [3, 4]]);
    const D = diracDenoiser(x0);
    const g = tf.grad((x: tf.Tensor) => tf.sum(D(x, tf.ones([2]) as tf.Tensor1D)))(x0);
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0, 0]);
    const y = D(tf.zeros([2, 2]), tf.ones([2]) as tf.Tensor1D);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    expect(() => D(tf.zeros([3, 2]), tf.ones([3]) as tf.Tensor1D)).toThrow(/diracDenoiser: x has shape \[3, 2\]/);
    tf.dispose([x0, g, y]);
  });

  it('leaks nothing and rejects mismatched shapes', () => {
    const before = tf.memory().numTensors;
    tf.grad((th: tf.Tensor) => sdsSurrogate({ x0: render(th), sigma, noise, teacher }))(theta).dispose();
    expect(tf.memory().numTensors).toBe(before);
    const x0 = tf.zeros([N, 4]);
    expect(() => sdsSurrogate({ x0, sigma, noise: tf.zeros([N, 3]), teacher })).toThrow(/sdsSurrogate: noise has shape/);
    expect(() => sdsSurrogate({ x0, sigma: tf.ones([2]) as tf.Tensor1D, noise, teacher })).toThrow(/sdsSurrogate: sigma must have shape \[5\]/);
  });
});
