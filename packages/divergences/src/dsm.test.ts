import * as tf from '@tensorflow/tfjs';
import { type Denoiser, GaussianMixture, Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { dsmLoss } from './dsm.js';

/** Data, EDM's log-normal σ (ln σ ∼ N(−1.2, 1.2²)) and noise, all from one seeded Rng. */
function batch(mixture: GaussianMixture, n: number, seed: number) {
  const rng = new Rng(seed);
  const x0 = tf.tensor2d(mixture.sample(rng, n), [n, mixture.dim]);
  const sigma = tf.tensor1d(rng.normal(n).map((e) => Math.exp(-1.2 + 1.2 * e)));
  const noise = rng.normalTensor([n, mixture.dim]);
  return { x0, sigma, noise };
}

const mixtures = {
  '2-D': new GaussianMixture([
    { mean: [1, 1], std: 0.3, weight: 1 },
    { mean: [-1, 0.5], std: 0.5, weight: 2 },
  ]),
  '5-D': new GaussianMixture([
    { mean: [1, 0, -1, 0.5, 0], std: 0.4, weight: 1 },
    { mean: [-0.5, 1, 0, 0, -1], std: 0.6, weight: 1 },
    { mean: [0, -1, 1, -0.5, 0.5], std: 0.2, weight: 1 },
  ]),
};

describe('dsmLoss (2.2)', () => {
  for (const [name, mixture] of Object.entries(mixtures)) {
    it(`is minimised by the exact denoiser of a ${name} Gaussian mixture`, () => {
      const { x0, sigma, noise } = batch(mixture, 8192, 1);
      const D = mixture.denoiser;
      const loss = (d: Denoiser) => tf.tidy(() => dsmLoss({ denoiser: d, x0, sigma, noise }).dataSync()[0]!);
      const exact = loss(D);
      const shift = tf.fill([mixture.dim], 0.1);
      const perturbed: Denoiser[] = [
        (x, s) => tf.mul(D(x, s), 1.1),
        (x, s) => tf.mul(D(x, s), 0.9),
        (x, s) => tf.add(D(x, s), shift),
        (x, s) => tf.add(tf.mul(D(x, s), 0.9), tf.mul(x, 0.1)), // towards the identity
      ];
      for (const d of perturbed) expect(loss(d)).toBeGreaterThan(exact);

      // d/da L(D·(1 + a) + b) at a = b = 0 is ~0, far below its value at a = 0.2.
      const gradAt = (a0: number) =>
        tf.tidy(() =>
          tf
            .grads((a: tf.Tensor, b: tf.Tensor) =>
              dsmLoss({ denoiser: (x, s) => tf.add(tf.mul(D(x, s), tf.add(1, a)), b), x0, sigma, noise }),
            )([tf.scalar(a0), tf.scalar(0)])
            .map((g) => g.dataSync()[0]!),
        );
      const [ga0, gb0] = gradAt(0);
      const [ga1] = gradAt(0.2);
      expect(Math.abs(ga0!)).toBeLessThan(0.05 * Math.abs(ga1!));
      const [, gb1] = tf.tidy(() =>
        tf
          .grads((a: tf.Tensor, b: tf.Tensor) => dsmLoss({ denoiser: (x, s) => tf.add(tf.mul(D(x, s), tf.add(1, a)), b), x0, sigma, noise }))([
            tf.scalar(0),
            tf.scalar(0.2),
          ])
          .map((g) => g.dataSync()[0]!),
      );
      expect(Math.abs(gb0!)).toBeLessThan(0.05 * Math.abs(gb1!));
      tf.dispose([x0, sigma, noise, shift]);
    });
  }

  it('has the gradient finite differences give, w.r.t. a denoiser’s parameters (gradCheck)', () => {
    const { x0, sigma, noise } = batch(mixtures['2-D'], 16, 2);
    const sd = 0.5;
    // An EDM-preconditioned toy network F(x) = tanh(W·c_in·x + c), D = c_skip·x + c_out·F.
    const f = (W: tf.Tensor, c: tf.Tensor) =>
      dsmLoss({
        x0,
        sigma,
        noise,
        denoiser: (x, s) => {
          const s2 = tf.square(s).reshape([-1, 1]);
          const cSkip = tf.div(sd * sd, tf.add(s2, sd * sd));
          const cOut = tf.div(tf.mul(s.reshape([-1, 1]), sd), tf.sqrt(tf.add(s2, sd * sd)));
          const cIn = tf.div(1, tf.sqrt(tf.add(s2, sd * sd)));
          const F = tf.tanh(tf.add(tf.matMul(tf.mul(cIn, x) as tf.Tensor2D, W as tf.Tensor2D), c));
          return tf.add(tf.mul(cSkip, x), tf.mul(cOut, F));
        },
      });
    const W = tf.tensor2d([[0.5, -0.3], [0.2, 0.8]]);
    const c = tf.tensor1d([0.1, -0.2]);
    const r = gradCheck(f, [W, c], { eps: 1e-2 });
    expect(r.maxRelError).toBeLessThan(tol(2e-3));
    expect(Math.max(...r.analytic.map(Math.abs))).toBeGreaterThan(1e-3);
    tf.dispose([x0, sigma, noise, W, c]);
  });

  it('leaks nothing, and rejects mismatched shapes by name', () => {
    const { x0, sigma, noise } = batch(mixtures['2-D'], 8, 3);
    const denoiser = mixtures['2-D'].denoiser;
    const before = tf.memory().numTensors;
    dsmLoss({ denoiser, x0, sigma, noise }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.tidy(() => {
      expect(() => dsmLoss({ denoiser, x0, sigma, noise: tf.zeros([8, 3]) })).toThrow(/dsmLoss: noise has shape \[8, 3\] but x0 has shape \[8, 2\]/);
      expect(() => dsmLoss({ denoiser, x0, sigma: tf.ones([8, 1]) as unknown as tf.Tensor1D, noise })).toThrow(/dsmLoss: sigma must have shape \[8\]/);
      expect(() => dsmLoss({ denoiser, x0: tf.scalar(1), sigma, noise })).toThrow(/dsmLoss: x0 must have a batch dimension/);
    });
    tf.dispose([x0, sigma, noise]);
  });
});
