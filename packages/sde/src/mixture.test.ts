import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { GaussianMixture } from './mixture.js';
import { Rng } from './rng.js';
import { tol } from './testing/index.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

const mix = new GaussianMixture([
  { mean: [1, 0.5], std: 0.3, weight: 2 },
  { mean: [-1, 0], std: 0.5, weight: 1 },
  { mean: [0, -1.2], std: 0.25, weight: 1 },
]);

describe('GaussianMixture', () => {
  it('normalises the weights and validates its components', () => {
    expect(mix.components.map((c) => c.weight)).toEqual([0.5, 0.25, 0.25]);
    expect(() => new GaussianMixture([])).toThrow(/at least one/);
    expect(() => new GaussianMixture([{ mean: [0], std: 0, weight: 1 }])).toThrow(/std/);
    expect(
      () =>
        new GaussianMixture([
          { mean: [0], std: 1, weight: 1 },
          { mean: [0, 1], std: 1, weight: 1 },
        ]),
    ).toThrow(/dimension/);
  });

  it('logProb of one component is the Gaussian log-density, also diffused to σ', () => {
    const g = new GaussianMixture([{ mean: [0.5, -1, 2], std: 0.7, weight: 3 }]);
    const x = new Rng(1).normalTensor([6, 3]) as tf.Tensor2D;
    const xv = x.arraySync() as number[][];
    for (const sigma of [0, 0.4, 2]) {
      const v = 0.49 + sigma * sigma;
      const expected = xv.map((r) => {
        const d2 = r.reduce((s, u, j) => s + (u - [0.5, -1, 2][j]!) ** 2, 0);
        return -d2 / (2 * v) - 1.5 * Math.log(2 * Math.PI * v);
      });
      const lp = g.logProb(x, sigma);
      expect(maxAbs(lp, tf.tensor1d(expected))).toBeLessThan(tol(1e-4));
      lp.dispose();
    }
    x.dispose();
  });

  it('the density integrates to 1, before and after diffusion', () => {
    const h = 0.025;
    const pts: number[] = [];
    for (let a = -5; a < 5; a += h) for (let b = -5; b < 5; b += h) pts.push(a + h / 2, b + h / 2);
    const grid = tf.tensor2d(pts, [pts.length / 2, 2]);
    for (const sigma of [0, 0.6]) {
      const total = tf.tidy(() => tf.sum(tf.exp(mix.logProb(grid, sigma))).dataSync()[0]! * h * h);
      expect(Math.abs(total - 1)).toBeLessThan(2e-3);
    }
    grid.dispose();
  });

  it('score at σ = 0 is the autodiff gradient of logProb', () => {
    const x = tf.tidy(() => tf.mul(new Rng(2).normalTensor([40, 2]), 1.5)) as tf.Tensor2D;
    tf.tidy(() => {
      const auto = tf.grad((y: tf.Tensor) => tf.sum(mix.logProb(y as tf.Tensor2D)))(x);
      expect(maxAbs(mix.score(x, 0), auto)).toBeLessThan(tol(1e-3));
    });
    x.dispose();
  });

  it('the denoiser is Tweedie of the autodiff score, x + σ² ∇log p_σ(x), per-sample σ', () => {
    const n = 30;
    const x = tf.tidy(() => tf.mul(new Rng(3).normalTensor([n, 2]), 2)) as tf.Tensor2D;
    const sig = Float32Array.from({ length: n }, (_, i) => [0.01, 0.2, 1, 4, 20][i % 5]!);
    tf.tidy(() => {
      const D = mix.denoiser(x, tf.tensor1d(sig));
      // Row i's score at σ_i, from the density diffused to σ_i.
      const rows = Array.from(sig, (s, i) => {
        const xi = x.slice([i, 0], [1, 2]);
        const g = tf.grad((y: tf.Tensor) => tf.sum(mix.logProb(y as tf.Tensor2D, s)))(xi);
        return tf.add(xi, tf.mul(g, s * s));
      });
      expect(maxAbs(D, tf.concat(rows, 0))).toBeLessThan(tol(1e-4) * 400);
      // The relative error is what matters at σ = 20 (σ² = 400); check small σ strictly too.
      const small = [0, 5, 10].map((i) => maxAbs(D.slice([i, 0], [1, 2]), rows[i]!));
      small.forEach((e) => expect(e).toBeLessThan(tol(1e-5)));
    });
    x.dispose();
  });

  it('samples with the right component fractions and moments', () => {
    const n = 40_000;
    const s = mix.sample(new Rng(4), n);
    const K = mix.components.length;
    const count = new Array<number>(K).fill(0);
    let mx = 0;
    let my = 0;
    for (let i = 0; i < n; i++) {
      mx += s[2 * i]!;
      my += s[2 * i + 1]!;
    }
    // E[x] = Σ π_k μ_k = (0.5 − 0.25 + 0, 0.25 + 0 − 0.3).
    expect(Math.abs(mx / n - 0.25)).toBeLessThan(0.015);
    expect(Math.abs(my / n + 0.05)).toBeLessThan(0.015);
    // Classify by highest posterior under the exact density: fractions ≈ weights (the overlap is small).
    const x = tf.tensor2d(s, [n, 2]);
    const r = tf.tidy(() => {
      const cols = mix.components.map((c) =>
        tf.sub(
          Math.log(c.weight) - Math.log(c.std * c.std),
          tf.div(tf.sum(tf.square(tf.sub(x, tf.tensor1d(c.mean))), 1), 2 * c.std * c.std),
        ),
      );
      return tf.argMax(tf.stack(cols, 1), 1).dataSync();
    });
    for (const k of r) count[k]!++;
    expect(Math.abs(count[0]! / n - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(count[1]! / n - 0.25)).toBeLessThan(0.02);
    expect(Math.abs(count[2]! / n - 0.25)).toBeLessThan(0.02);
    x.dispose();
  });

  it('leaks no tensors', () => {
    const x = tf.zeros([5, 2]) as tf.Tensor2D;
    const s = tf.fill([5], 0.3) as tf.Tensor1D;
    const before = tf.memory().numTensors;
    tf.dispose([mix.denoiser(x, s), mix.logProb(x, 0.3), mix.score(x, 0), mix.score(x, 0.3)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, s]);
  });
});
