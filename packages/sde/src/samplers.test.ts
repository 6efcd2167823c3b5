import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { GaussianMixture } from './mixture.js';
import { karrasSigmas } from './noise.js';
import { Rng } from './rng.js';
import { eulerMaruyamaSampler, eulerSampler, heunSampler, sampleTeacher } from './samplers.js';
import { tol } from './testing/index.js';
import type { Denoiser } from './types.js';

const MEANS = [
  [1, 1],
  [-1, 1],
  [-1, -1],
  [1, -1],
];
const WEIGHTS = [0.1, 0.2, 0.3, 0.4];
const STD = 0.1;
const mixture = new GaussianMixture(MEANS.map((mean, k) => ({ mean, std: STD, weight: WEIGHTS[k]! })));

/** Energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| between two 2-D point sets (V-statistics). */
function energyDistance(a: Float32Array, b: Float32Array): number {
  const mean = (p: Float32Array, q: Float32Array) => {
    let s = 0;
    const n = p.length / 2;
    const m = q.length / 2;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) s += Math.hypot(p[2 * i]! - q[2 * j]!, p[2 * i + 1]! - q[2 * j + 1]!);
    }
    return s / (n * m);
  };
  return 2 * mean(a, b) - mean(a, a) - mean(b, b);
}

/** Fraction of points nearest to each mean, and the per-component mean and std of those points. */
function components(x: Float32Array): { frac: number[]; mean: number[][]; std: number[] } {
  const K = MEANS.length;
  const count = new Array<number>(K).fill(0);
  const sum = MEANS.map(() => [0, 0]);
  const sq = new Array<number>(K).fill(0);
  const n = x.length / 2;
  const nearest = (i: number) => {
    let best = 0;
    let bd = Infinity;
    MEANS.forEach((m, k) => {
      const d = (x[2 * i]! - m[0]!) ** 2 + (x[2 * i + 1]! - m[1]!) ** 2;
      if (d < bd) [best, bd] = [k, d];
    });
    return best;
  };
  for (let i = 0; i < n; i++) {
    const k = nearest(i);
    count[k]!++;
    sum[k]![0]! += x[2 * i]!;
    sum[k]![1]! += x[2 * i + 1]!;
  }
  const mean = sum.map((s, k) => [s[0]! / count[k]!, s[1]! / count[k]!]);
  for (let i = 0; i < n; i++) {
    const k = nearest(i);
    sq[k]! += (x[2 * i]! - mean[k]![0]!) ** 2 + (x[2 * i + 1]! - mean[k]![1]!) ** 2;
  }
  return { frac: count.map((c) => c / n), mean, std: sq.map((s, k) => Math.sqrt(s / (2 * count[k]!))) };
}

function expectMatchesMixture(x: Float32Array, fracTol: number, stdTol: number): void {
  const c = components(x);
  c.frac.forEach((f, k) => expect(Math.abs(f - WEIGHTS[k]!)).toBeLessThan(fracTol));
  c.mean.forEach((m, k) => {
    expect(Math.abs(m[0]! - MEANS[k]![0]!)).toBeLessThan(0.03);
    expect(Math.abs(m[1]! - MEANS[k]![1]!)).toBeLessThan(0.03);
  });
  c.std.forEach((s) => expect(Math.abs(s - STD)).toBeLessThan(stdTol));
}

/** Wraps a denoiser to count its calls and check the σ it is given. */
function counted(d: Denoiser): { d: Denoiser; calls: () => number } {
  let calls = 0;
  return {
    d: (x, sigma, label) => {
      calls++;
      expect(sigma.shape).toEqual([x.shape[0]]);
      return d(x, sigma, label);
    },
    calls: () => calls,
  };
}

const N = 1000;
const exact = mixture.sample(new Rng(100), N);
const exact2 = mixture.sample(new Rng(101), N);
/**
 * Energy distance below which samples count as matching. Exact-vs-exact (the floor) is 0.0015–0.0045
 * for N = 1000; Heun 18 steps gives ≈ 0.002, EM 100 steps ≈ 0.003, but Euler 10 steps ≈ 0.012 and
 * Heun 3 steps ≈ 1.8, so the bound separates a correct sampler from a coarse or wrong one.
 */
const ED_OK = 0.008;

it('the energy-distance floor of the mixture is below the bound', () => {
  expect(energyDistance(exact, exact2)).toBeLessThan(ED_OK);
});

describe('heunSampler (Algorithm 1 of Karras et al.)', () => {
  it('counts 2n − 1 denoiser calls for n steps', () => {
    for (const [steps, nfe] of [
      [1, 1],
      [2, 3],
      [3, 5],
      [5, 9],
      [9, 17],
      [18, 35],
    ] as const) {
      const c = counted(mixture.denoiser);
      const x = tf.tidy(() => tf.mul(new Rng(steps).normalTensor([4, 2]), 80));
      const out = heunSampler(c.d, x, karrasSigmas({ steps }));
      expect(out.nfe).toBe(nfe);
      expect(c.calls()).toBe(nfe);
      tf.dispose([x, out.x]);
    }
  });

  it('with one step is a single denoise of x_T, close to the mixture mean', () => {
    const x = tf.tidy(() => tf.mul(new Rng(7).normalTensor([500, 2]), 80));
    const out = heunSampler(mixture.denoiser, x, karrasSigmas({ steps: 1 }));
    const d = mixture.denoiser(x, tf.fill([500], 80) as tf.Tensor1D);
    const diff = tf.max(tf.abs(tf.sub(out.x, d))).dataSync()[0]!;
    expect(diff).toBeLessThan(tol(1e-4));
    // E[x0] = Σ π_k μ_k = (0.1 − 0.2 − 0.3 + 0.4, 0.1 + 0.2 − 0.3 − 0.4) = (0, −0.4).
    const v = out.x.dataSync();
    for (let i = 0; i < 500; i++) {
      expect(Math.abs(v[2 * i]! - 0)).toBeLessThan(0.1);
      expect(Math.abs(v[2 * i + 1]! + 0.4)).toBeLessThan(0.1);
    }
    // ... and so far from the target in energy distance: the metric can tell.
    expect(energyDistance(v.slice(0, 2 * N) as Float32Array, exact)).toBeGreaterThan(0.3);
    tf.dispose([x, out.x, d]);
  });

  it('with 18 steps and the exact mixture denoiser matches exact samples', () => {
    const before = tf.memory().numTensors;
    const out = sampleTeacher(mixture.denoiser, { shape: [N, 2], steps: 18, rng: new Rng(8) });
    expect(out.nfe).toBe(35);
    const v = out.x.dataSync() as Float32Array;
    out.x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expectMatchesMixture(v, 0.04, 0.02);
    expect(energyDistance(v, exact)).toBeLessThan(ED_OK);
  });

  it('passes the label to the denoiser and validates its batch size', () => {
    const seen: (tf.Tensor2D | undefined)[] = [];
    const d: Denoiser = (x, sigma, label) => {
      seen.push(label);
      return mixture.denoiser(x, sigma);
    };
    const label = tf.oneHot(tf.tensor1d([0, 1, 1], 'int32'), 2).toFloat() as tf.Tensor2D;
    const x = tf.zeros([3, 2]);
    const out = heunSampler(d, x, karrasSigmas({ steps: 2 }), { label });
    expect(seen.length).toBe(3);
    expect(seen.every((l) => l === label)).toBe(true);
    expect(() => heunSampler(d, tf.zeros([2, 2]), [1, 0], { label })).toThrow(/label/);
    tf.dispose([label, x, out.x]);
  });

  it('rejects a grid that is not decreasing or has σ = 0 before the end', () => {
    const x = tf.zeros([2, 2]);
    expect(() => heunSampler(mixture.denoiser, x, [1, 2, 0])).toThrow(/decreasing/);
    expect(() => heunSampler(mixture.denoiser, x, [1, 0, 0])).toThrow(/> 0/);
    x.dispose();
  });
});

describe('eulerSampler', () => {
  it('counts n calls, and one step is a denoise', () => {
    const c = counted(mixture.denoiser);
    const x = tf.tidy(() => tf.mul(new Rng(9).normalTensor([8, 2]), 80));
    const out = eulerSampler(c.d, x, karrasSigmas({ steps: 7 }));
    expect(out.nfe).toBe(7);
    expect(c.calls()).toBe(7);
    const one = eulerSampler(mixture.denoiser, x, [80, 0]);
    const d = mixture.denoiser(x, tf.fill([8], 80) as tf.Tensor1D);
    expect(tf.max(tf.abs(tf.sub(one.x, d))).dataSync()[0]!).toBeLessThan(tol(1e-4));
    tf.dispose([x, out.x, one.x, d]);
  });

  it('with 40 steps matches the mixture', () => {
    const out = sampleTeacher(mixture.denoiser, { shape: [N, 2], steps: 40, sampler: 'euler', rng: new Rng(10) });
    expect(out.nfe).toBe(40);
    const v = out.x.dataSync() as Float32Array;
    out.x.dispose();
    expectMatchesMixture(v, 0.04, 0.03);
  });
});

describe('eulerMaruyamaSampler (reverse-time VE SDE)', () => {
  it('with 100 steps matches the mixture, and counts n calls', () => {
    const before = tf.memory().numTensors;
    const c = counted(mixture.denoiser);
    const out = sampleTeacher(c.d, { shape: [N, 2], steps: 100, sampler: 'euler-maruyama', rng: new Rng(11) });
    expect(out.nfe).toBe(100);
    expect(c.calls()).toBe(100);
    const v = out.x.dataSync() as Float32Array;
    out.x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expectMatchesMixture(v, 0.04, 0.02);
    expect(energyDistance(v, exact)).toBeLessThan(ED_OK);
  });

  it('takes the step x + 2tΔ·(D − x)/t² + √(2tΔ)·z, and ends with a plain denoise', () => {
    const x = tf.tidy(() => new Rng(12).normalTensor([64, 2]));
    const [t, tNext] = [2, 1.5];
    const out = eulerMaruyamaSampler(mixture.denoiser, x, [t, tNext, 0], new Rng(13));
    const expected = tf.tidy(() => {
      const z = new Rng(13).normalTensor([64, 2]);
      const dt = t - tNext;
      const score = tf.div(tf.sub(mixture.denoiser(x, tf.fill([64], t) as tf.Tensor1D), x), t * t);
      const x1 = tf.add(tf.add(x, tf.mul(score, 2 * t * dt)), tf.mul(z, Math.sqrt(2 * t * dt)));
      return mixture.denoiser(x1, tf.fill([64], tNext) as tf.Tensor1D);
    });
    expect(tf.max(tf.abs(tf.sub(out.x, expected))).dataSync()[0]!).toBeLessThan(tol(1e-5));
    tf.dispose([x, out.x, expected]);
  });

  it('keeps the variance of a point mass target on a two-step grid', () => {
    // Target δ_0: D ≡ 0, score −x/t². From x ~ N(0, 2²): step t=2→1 (Δ=1) gives x·0 + √4·z, step
    // t=1→0.5 (Δ=½) gives x·0 + √1·z, so the variance ends at exactly 1.
    const zero: Denoiser = (x) => tf.zerosLike(x);
    const x = tf.tidy(() => tf.mul(new Rng(12).normalTensor([20_000, 1]), 2));
    const out = eulerMaruyamaSampler(zero, x, [2, 1, 0.5], new Rng(13));
    const v = out.x.dataSync();
    let m2 = 0;
    for (const u of v) m2 += u * u;
    expect(Math.abs(m2 / v.length - 1)).toBeLessThan(0.04);
    tf.dispose([x, out.x]);
  });
});

describe('sampleTeacher', () => {
  it('is reproducible from the rng, and leaks nothing for every sampler', () => {
    for (const sampler of ['heun', 'euler', 'euler-maruyama'] as const) {
      const before = tf.memory().numTensors;
      const a = sampleTeacher(mixture.denoiser, { shape: [16, 2], steps: 5, sampler, rng: new Rng(14) });
      const b = sampleTeacher(mixture.denoiser, { shape: [16, 2], steps: 5, sampler, rng: new Rng(14) });
      expect(Array.from(a.x.dataSync())).toEqual(Array.from(b.x.dataSync()));
      tf.dispose([a.x, b.x]);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('starts at σ_max·ε: with σ_max = σ_min the single step sees that x_T', () => {
    let first: Float32Array | undefined;
    const d: Denoiser = (x, sigma) => {
      first ??= x.dataSync() as Float32Array;
      expect(sigma.dataSync()[0]).toBeCloseTo(3, 5);
      return tf.zerosLike(x);
    };
    const out = sampleTeacher(d, { shape: [4, 3], steps: 1, rng: new Rng(15), sigmaMax: 3 });
    const eps = new Rng(15).normal(12);
    expect(Array.from(first!)).toEqual(Array.from(eps, (e) => Math.fround(e * 3)));
    out.x.dispose();
  });
});
