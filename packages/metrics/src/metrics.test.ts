import { GaussianMixture, Rng } from '@diff-instruct/sde';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { compareSamples } from './compare.js';
import { energyDistance } from './energy.js';
import { meanLogLik } from './loglik.js';
import { medianBandwidth, mmdRbf } from './mmd.js';
import { slicedWasserstein, wasserstein1d } from './swd.js';

/** erf, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - p * Math.exp(-a * a));
}

/** E|Z| for Z ~ N(m, s²): s √(2/π) exp(−m²/2s²) + m erf(m/(s√2)). */
function meanAbsNormal(m: number, s: number): number {
  return s * Math.sqrt(2 / Math.PI) * Math.exp((-m * m) / (2 * s * s)) + m * erf(m / (s * Math.SQRT2));
}

/** Φ⁻¹(p) by bisection on Φ(x) = (1 + erf(x/√2))/2. */
function normalQuantile(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if ((1 + erf(mid / Math.SQRT2)) / 2 < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function normal(rng: Rng, n: number, dim: number, shift: number[] = [], scale = 1): Float32Array {
  const x = rng.normal(n * dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) x[i * dim + k] = scale * x[i * dim + k]! + (shift[k] ?? 0);
  return x;
}

describe('energyDistance', () => {
  it('is 0 for identical samples and for equal point masses; 2|a − b| between point masses', () => {
    const x = new Rng(0).normal(600);
    expect(energyDistance(x, x, 3)).toBeCloseTo(0, 10);
    const a = new Float32Array(50).fill(1.5);
    const b = new Float32Array(30).fill(-0.5);
    expect(energyDistance(a, a, 1)).toBe(0);
    // 2·E|X − Y| − 0 − 0 with X ≡ 1.5, Y ≡ −0.5.
    expect(energyDistance(a, b, 1)).toBeCloseTo(4, 5);
  });

  it('matches the closed form for N(0, 1) vs N(μ, 1) in 1-D on quantile samples (no sampling noise)', () => {
    // x_i = Φ⁻¹((i + ½)/n): a deterministic sample whose V-statistic is the population value up
    // to O(log n / n), so the tolerance can be tight.
    const n = 2000;
    const q = Float32Array.from({ length: n }, (_, i) => normalQuantile((i + 0.5) / n));
    for (const mu of [0.25, 1, 3]) {
      const exact = 2 * meanAbsNormal(mu, Math.SQRT2) - 2 * meanAbsNormal(0, Math.SQRT2);
      const e = energyDistance(q, Float32Array.from(q, (v) => v + mu), 1);
      expect(Math.abs(e - exact)).toBeLessThan(0.005 + 0.01 * exact);
    }
  });

  it('matches the closed form for N(0, 1) vs N(μ, 1) in 1-D', () => {
    // X − Y ~ N(−μ, 2), X − X' ~ N(0, 2): E = 2 E|N(μ, 2)| − 2 E|N(0, 2)|.
    const n = 2000;
    for (const mu of [0.5, 1, 2]) {
      const exact = 2 * meanAbsNormal(mu, Math.SQRT2) - 2 * meanAbsNormal(0, Math.SQRT2);
      // The V-statistic's within-sample means include n zero diagonal terms: bias + 2 E|X − X'|/n.
      const vBias = (2 * meanAbsNormal(0, Math.SQRT2)) / n;
      let mean = 0;
      const seeds = [1, 2, 3];
      for (const seed of seeds) {
        const rng = new Rng(seed);
        mean += energyDistance(normal(rng, n, 1), normal(rng, n, 1, [mu]), 1) / seeds.length;
      }
      expect(Math.abs(mean - (exact + vBias))).toBeLessThan(0.03 * (1 + exact)); // a few % of scale
    }
    expect(meanAbsNormal(0, 1)).toBeCloseTo(Math.sqrt(2 / Math.PI), 12);
  });

  it('grows with the shift and uses only the first maxPoints rows', () => {
    const rng = new Rng(4);
    const x = normal(rng, 500, 2);
    const d = [0, 0.5, 1, 2].map((c) => energyDistance(x, normal(new Rng(5), 500, 2, [c, 0]), 2));
    for (let i = 1; i < d.length; i++) expect(d[i]!).toBeGreaterThan(d[i - 1]!);
    const far = Float32Array.from([...x.subarray(0, 200), ...new Float32Array(800).fill(100)]);
    expect(energyDistance(far, x, 2, { maxPoints: 100 })).toBe(energyDistance(x.subarray(0, 200), x, 2, { maxPoints: 100 }));
  });

  it('takes a few hundred ms for 2000 × 2000 points in 2-D and 13-D', () => {
    for (const dim of [2, 13]) {
      const rng = new Rng(6);
      const x = normal(rng, 2000, dim);
      const y = normal(rng, 2000, dim, [0.1]);
      const t0 = performance.now();
      const e = energyDistance(x, y, dim);
      const ms = performance.now() - t0;
      console.log(`energyDistance 2000×2000, ${dim}-D: ${ms.toFixed(0)} ms (E = ${e.toFixed(4)})`);
      expect(ms).toBeLessThan(3000); // loose: CI machines are slow; about 100–300 ms here
    }
  });

  it('rejects bad shapes with a clear message', () => {
    expect(() => energyDistance(new Float32Array(5), new Float32Array(4), 2)).toThrow(
      'energyDistance: x has 5 values, not a multiple of dim 2',
    );
    expect(() => energyDistance(new Float32Array(4), new Float32Array(0), 2)).toThrow('energyDistance: y is empty');
    expect(() => energyDistance(new Float32Array(4), new Float32Array(4), 0)).toThrow(/dim must be a positive integer/);
  });
});

describe('mmdRbf', () => {
  it('is 0 for identical samples and increases with the shift', () => {
    const rng = new Rng(7);
    const x = normal(rng, 800, 2);
    expect(mmdRbf(x, x, 2)).toBeCloseTo(0, 10);
    const y = rng.normal(1600);
    const d = [0, 0.25, 0.5, 1, 2, 4].map((c) => mmdRbf(x, Float32Array.from(y, (v, i) => (i % 2 ? v : v + c)), 2));
    for (let i = 1; i < d.length; i++) expect(d[i]!).toBeGreaterThan(d[i - 1]!);
    expect(d[0]!).toBeLessThan(0.01);
  });

  it('matches the closed form between point masses: 2 − 2 exp(−δ²/2h²)', () => {
    const a = Float32Array.from({ length: 40 }, (_, i) => (i % 2 ? 0 : 1)); // 20 points at (1, 0)
    const b = Float32Array.from({ length: 60 }, (_, i) => (i % 2 ? 2 : 1)); // 30 points at (1, 2)
    expect(mmdRbf(a, b, 2, { bandwidth: 1.5 })).toBeCloseTo(2 - 2 * Math.exp(-4 / (2 * 1.5 ** 2)), 6);
    expect(() => mmdRbf(a, b, 2, { bandwidth: 0 })).toThrow(/bandwidth must be a positive number/);
  });

  it('picks the median pairwise distance as bandwidth', () => {
    // Points 0, 1, 2, 3 on a line: distances 1,1,1,2,2,3 → median 1.5.
    const x = Float32Array.of(0, 1);
    const y = Float32Array.of(2, 3);
    expect(medianBandwidth(x, 2, y, 2, 1)).toBeCloseTo(1.5, 10);
    // All points equal: no scale in the data; falls back to 1.
    expect(medianBandwidth(new Float32Array(3), 3, new Float32Array(3), 3, 1)).toBe(1);
    // For N(0, I₂) the median distance is √(2·2 ln 2) ≈ 1.665 (distance/√2 is Rayleigh).
    const g = new Rng(8).normal(2000);
    expect(medianBandwidth(g, 500, g.subarray(1000), 500, 2)).toBeCloseTo(Math.sqrt(4 * Math.LN2), 1);
  });
});

describe('slicedWasserstein', () => {
  it('in 1-D equals |c| between a sample and its shift by c, for any sizes', () => {
    const x = new Rng(9).normal(1000);
    for (const c of [0, 0.3, -2]) {
      const y = Float32Array.from(x, (v) => v + c);
      expect(slicedWasserstein(x, y, 1, new Rng(0), { projections: 3 })).toBeCloseTo(Math.abs(c), 4);
    }
    // Unequal sizes: W1(δ₀, uniform{0, 1}) = 1/2; W1({0, 1}, {0, 0, 1}) = 1/3.
    expect(wasserstein1d(Float64Array.of(0), Float64Array.of(0, 1))).toBeCloseTo(0.5, 12);
    expect(wasserstein1d(Float64Array.of(0, 1), Float64Array.of(0, 0, 1))).toBeCloseTo(1 / 6, 12);
  });

  it('in d-D equals |c| E|θ₁| for a shift by c along an axis (E|θ₁| = 2/π in 2-D)', () => {
    const x = normal(new Rng(10), 1000, 2);
    const c = 1.5;
    const y = Float32Array.from(x, (v, i) => (i % 2 === 0 ? v + c : v));
    const swd = slicedWasserstein(x, y, 2, new Rng(11), { projections: 2000 });
    expect(swd).toBeCloseTo((c * 2) / Math.PI, 1);
    expect(slicedWasserstein(x, x, 2, new Rng(11))).toBe(0);
  });

  it('is deterministic given the rng and uses maxPoints rows', () => {
    const rng = new Rng(12);
    const x = normal(rng, 500, 3);
    const y = normal(rng, 700, 3, [1]);
    expect(slicedWasserstein(x, y, 3, new Rng(1))).toBe(slicedWasserstein(x, y, 3, new Rng(1)));
    expect(slicedWasserstein(x, y, 3, new Rng(1), { maxPoints: 100 })).toBe(
      slicedWasserstein(x.subarray(0, 300), y.subarray(0, 300), 3, new Rng(1)),
    );
    expect(() => slicedWasserstein(x, y, 3, new Rng(1), { projections: 0 })).toThrow(/projections must be a positive integer/);
  });
});

describe('meanLogLik', () => {
  it('of exact samples of N(0, σ² I) is about −(d/2)(1 + log 2πσ²)', () => {
    for (const [d, sigma] of [
      [1, 1],
      [3, 0.5],
      [13, 2],
    ] as const) {
      const mix = new GaussianMixture([{ mean: new Array<number>(d).fill(0.5), std: sigma, weight: 1 }]);
      const x = mix.sample(new Rng(13), 8000);
      const before = tf.memory().numTensors;
      const ll = meanLogLik(x, d, (t) => mix.logProb(t));
      expect(tf.memory().numTensors).toBe(before);
      const negEntropy = -(d / 2) * (1 + Math.log(2 * Math.PI * sigma * sigma));
      // The estimate's std is √(d/2)/√n: about 0.03 at d = 13.
      expect(Math.abs(ll - negEntropy)).toBeLessThan(5 * Math.sqrt(d / 2 / 8000));
    }
  });

  it('works in chunks and checks the shape that logProb returns', () => {
    const mix = new GaussianMixture([{ mean: [0], std: 1, weight: 1 }]);
    const x = mix.sample(new Rng(14), 10_000); // more than one chunk
    const lp = (t: tf.Tensor2D) => mix.logProb(t);
    const direct = tf.tidy(() => lp(tf.tensor2d(x, [10_000, 1])).mean().dataSync()[0]!);
    expect(meanLogLik(x, 1, lp)).toBeCloseTo(direct, 4);
    const before = tf.memory().numTensors;
    expect(() => meanLogLik(x, 1, (t) => t as unknown as tf.Tensor1D)).toThrow(/logProb must return shape \[4096\], got \[4096, 1\]/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('compareSamples', () => {
  it('reports every metric; near the floor for two target samples, far above it for a wrong sample', () => {
    const mix = new GaussianMixture(
      Array.from({ length: 8 }, (_, k) => ({ mean: [2 * Math.cos((k * Math.PI) / 4), 2 * Math.sin((k * Math.PI) / 4)], std: 0.1, weight: 1 })),
    );
    const rng = new Rng(15);
    const ref = mix.sample(rng, 2000);
    const good = mix.sample(rng, 2000);
    const bad = normal(rng, 2000, 2, [], 1.4); // right mean and variance, wrong shape
    const logProb = (t: tf.Tensor2D) => mix.logProb(t);
    const floor = compareSamples(good, ref, 2, new Rng(1), { logProb });
    const wrong = compareSamples(bad, ref, 2, new Rng(1), { logProb });
    expect(Object.keys(floor).sort()).toEqual(['energy', 'loglik', 'mmd', 'swd']);
    expect(wrong.energy).toBeGreaterThan(10 * floor.energy);
    expect(wrong.mmd).toBeGreaterThan(10 * floor.mmd);
    expect(wrong.swd).toBeGreaterThan(3 * floor.swd);
    expect(floor.loglik!).toBeGreaterThan(wrong.loglik! + 1);
    expect(compareSamples(good, ref, 2, new Rng(1)).loglik).toBeUndefined();
  });
});
