import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { fidFromFeatures, frechetDistance, gaussianStats, traceSqrtProduct, type GaussianStats } from './fid.js';
import { matMul } from './linalg.js';
import { randomOrthogonal, randomPsd, transpose, withSpectrum } from './test-matrices.js';

function stats(mean: ArrayLike<number>, cov: Float64Array): GaussianStats {
  const d = mean.length;
  return { mean: Float64Array.from(mean), cov, d, n: Infinity };
}

function diagonal(a: ArrayLike<number>): Float64Array {
  const d = a.length;
  const m = new Float64Array(d * d);
  for (let i = 0; i < d; i++) m[i * d + i] = a[i]!;
  return m;
}

/** R Σ Rᵀ. */
function rotate(r: Float64Array, s: Float64Array, d: number): Float64Array {
  return matMul(matMul(r, s, d), transpose(r, d), d);
}

function trace(a: Float64Array, d: number): number {
  let t = 0;
  for (let i = 0; i < d; i++) t += a[i * d + i]!;
  return t;
}

function sqDist(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

/** FD between diagonal Gaussians: ‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)². */
function diagonalFd(mu1: number[], a: number[], mu2: number[], b: number[]): number {
  return sqDist(mu1, mu2) + a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i]!)) ** 2, 0);
}

/** 2×2: tr((A^{1/2} B A^{1/2})^{1/2}) = √(tr(AB) + 2√(det A det B)) (from tr √M = √(tr M + 2√det M)). */
function trSqrt2x2(a: number[], b: number[]): number {
  const [a0, a1, a2, a3] = a as [number, number, number, number];
  const [b0, b1, b2, b3] = b as [number, number, number, number];
  const trAB = a0 * b0 + a1 * b2 + a2 * b1 + a3 * b3;
  return Math.sqrt(trAB + 2 * Math.sqrt((a0 * a3 - a1 * a2) * (b0 * b3 - b1 * b2)));
}

/** A random SPD 2×2 matrix [[p, q], [q, r]]. */
function spd2(rng: Rng): number[] {
  const [u, v, w] = rng.normal(3) as unknown as [number, number, number];
  const p = 0.2 + u * u;
  const r = 0.2 + v * v;
  const q = 0.9 * Math.sqrt(p * r) * Math.tanh(w);
  return [p, q, q, r];
}

/** n samples of N(μ, R diag(a) Rᵀ): x = μ + R (√a ⊙ z), as float32 features. */
function sampleGaussian(rng: Rng, n: number, mu: number[], r: Float64Array, a: number[]): Float32Array {
  const d = mu.length;
  const z = rng.normal(n * d);
  const x = new Float32Array(n * d);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < d; i++) {
      let v = mu[i]!;
      for (let k = 0; k < d; k++) v += r[i * d + k]! * Math.sqrt(a[k]!) * z[s * d + k]!;
      x[s * d + i] = v;
    }
  }
  return x;
}

describe('gaussianStats', () => {
  it('gives the mean and the unbiased (n − 1) covariance, without losing precision to a large offset', () => {
    const x = Float64Array.of(1, 2, 3, 6, 5, 4);
    const s = gaussianStats(x, 3, 2);
    expect(Array.from(s.mean)).toEqual([3, 4]);
    expect(Array.from(s.cov)).toEqual([4, 2, 2, 4]);
    expect([s.n, s.d]).toEqual([3, 2]);
    const shifted = gaussianStats(Float64Array.from(x, (v) => v + 1e9), 3, 2);
    expect(Array.from(shifted.cov)).toEqual([4, 2, 2, 4]);
  });

  it('rejects bad shapes with a clear message', () => {
    expect(() => gaussianStats(new Float32Array(5), 2, 2)).toThrow('gaussianStats: features has 5 values, expected n·d = 4');
    expect(() => gaussianStats(new Float32Array(2), 1, 2)).toThrow(/n must be an integer >= 2/);
    expect(() => gaussianStats(new Float32Array(2), 2, 0)).toThrow(/d must be a positive integer/);
  });
});

describe('frechetDistance', () => {
  it('(a) matches ‖μ₁ − μ₂‖² + Σ(√a_i − √b_i)² for diagonal covariances, singular ones included', () => {
    const rng = new Rng(21);
    const d = 12;
    const mu1 = Array.from(rng.normal(d));
    const mu2 = Array.from(rng.normal(d));
    const a = Array.from(rng.uniform(d, 0.01, 4));
    const b = Array.from(rng.uniform(d, 0.01, 4));
    const fd = frechetDistance(stats(mu1, diagonal(a)), stats(mu2, diagonal(b)));
    const exact = diagonalFd(mu1, a, mu2, b);
    expect(Math.abs(fd - exact) / exact).toBeLessThan(1e-13);
    // Zero variances in different coordinates: still exact (no ε on the diagonal as in scipy's FID).
    const a0 = a.map((v, i) => (i % 3 === 0 ? 0 : v));
    const b0 = b.map((v, i) => (i % 4 === 1 ? 0 : v));
    const fd0 = frechetDistance(stats(mu1, diagonal(a0)), stats(mu1, diagonal(b0)));
    const exact0 = diagonalFd(mu1, a0, mu1, b0);
    expect(Math.abs(fd0 - exact0) / exact0).toBeLessThan(1e-13);
    // 1-D: (σ₁ − σ₂)² + (μ₁ − μ₂)².
    expect(frechetDistance(stats([1], Float64Array.of(4)), stats([-2], Float64Array.of(9)))).toBeCloseTo(1 + 9, 13);
  });

  it('(b) matches the analytic 2×2 formula for non-commuting covariances', () => {
    const rng = new Rng(22);
    for (let t = 0; t < 50; t++) {
      const a = spd2(rng);
      const b = spd2(rng);
      const mu1 = Array.from(rng.normal(2));
      const mu2 = Array.from(rng.normal(2));
      const A = Float64Array.from(a);
      const B = Float64Array.from(b);
      expect(Math.abs(a[1]! * (b[0]! - b[3]!) - b[1]! * (a[0]! - a[3]!))).toBeGreaterThan(0); // AB ≠ BA
      const exact = sqDist(mu1, mu2) + a[0]! + a[3]! + b[0]! + b[3]! - 2 * trSqrt2x2(a, b);
      const fd = frechetDistance(stats(mu1, A), stats(mu2, B));
      expect(Math.abs(fd - exact)).toBeLessThan(1e-13 * (trace(A, 2) + trace(B, 2) + sqDist(mu1, mu2)));
    }
  });

  it('(c) d = 64: block-diagonal closed form under a random rotation; FD(a, a) = 0, symmetric, rotation-invariant', () => {
    const rng = new Rng(23);
    const d = 64;
    // 32 non-commuting 2×2 blocks, rotated by a random orthogonal R: FD is the sum of the block FDs.
    const A = new Float64Array(d * d);
    const B = new Float64Array(d * d);
    let exact = 0;
    for (let k = 0; k < d / 2; k++) {
      const a = spd2(rng);
      const b = spd2(rng);
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 2; j++) {
          A[(2 * k + i) * d + 2 * k + j] = a[2 * i + j]!;
          B[(2 * k + i) * d + 2 * k + j] = b[2 * i + j]!;
        }
      }
      exact += a[0]! + a[3]! + b[0]! + b[3]! - 2 * trSqrt2x2(a, b);
    }
    const mu1 = Array.from(rng.normal(d));
    const mu2 = Array.from(rng.normal(d));
    exact += sqDist(mu1, mu2);
    const r = randomOrthogonal(rng, d);
    const rot = (m: number[]) => Array.from({ length: d }, (_, i) => m.reduce((s, v, k) => s + r[i * d + k]! * v, 0));
    const s1 = stats(rot(mu1), rotate(r, A, d));
    const s2 = stats(rot(mu2), rotate(r, B, d));
    const scale = trace(A, d) + trace(B, d);
    const fd = frechetDistance(s1, s2);
    console.log(`FD d=64 block closed form: rel error ${(Math.abs(fd - exact) / scale).toExponential(1)}`);
    expect(Math.abs(fd - exact) / scale).toBeLessThan(1e-12);
    expect(Math.abs(fd - frechetDistance(stats(mu1, A), stats(mu2, B))) / scale).toBeLessThan(1e-12);

    // Random full-rank PSD pair: FD(a, a) = 0, FD(a, b) = FD(b, a), FD(RΣ₁Rᵀ, RΣ₂Rᵀ) = FD(Σ₁, Σ₂).
    const C1 = randomPsd(rng, d);
    const C2 = randomPsd(rng, d);
    const t1 = stats(mu1, C1);
    const t2 = stats(mu2, C2);
    const scale2 = trace(C1, d) + trace(C2, d);
    // FD(a, a) is clamped at 0, so test its unclamped parts: tr((Σ^{1/2} Σ Σ^{1/2})^{1/2}) = tr Σ.
    const self = Math.abs(2 * trace(C1, d) - 2 * traceSqrtProduct(C1, C1, d));
    const fd12 = frechetDistance(t1, t2);
    const fd21 = frechetDistance(t2, t1);
    // Σ₁^{1/2}Σ₂Σ₁^{1/2} and Σ₂^{1/2}Σ₁Σ₂^{1/2} are different matrices with the same spectrum.
    expect(Math.abs(traceSqrtProduct(C1, C2, d) - traceSqrtProduct(C2, C1, d)) / scale2).toBeLessThan(1e-12);
    expect(fd12).toBeGreaterThan(1);
    const fdRot = frechetDistance(stats(rot(mu1), rotate(r, C1, d)), stats(rot(mu2), rotate(r, C2, d)));
    console.log(
      `FD d=64 random PSD: FD(a,a)/tr = ${(self / scale2).toExponential(1)}, asym ${(Math.abs(fd12 - fd21) / scale2).toExponential(1)}, ` +
        `rotation ${(Math.abs(fd12 - fdRot) / scale2).toExponential(1)}`,
    );
    expect(self / trace(C1, d)).toBeLessThan(1e-8);
    expect(Math.abs(fd12 - fd21) / scale2).toBeLessThan(1e-10);
    expect(Math.abs(fd12 - fdRot) / scale2).toBeLessThan(1e-10);
    // Scaling both covariances by c scales the covariance part by c.
    const scaled = frechetDistance(stats(mu1, C1.map((v) => 4 * v)), stats(mu1, C2.map((v) => 4 * v)));
    expect(Math.abs(scaled - 4 * frechetDistance(stats(mu1, C1), stats(mu1, C2))) / scale2).toBeLessThan(1e-10);
  });

  it('(d) stays finite and ≥ 0, and near exact, for ill-conditioned and rank-deficient covariances (n < d)', () => {
    const rng = new Rng(24);
    const d = 64;
    // Eigenvalues from 1 down to 1e-14, in a random common eigenbasis: closed form Σ(√a_i − √b_i)².
    const r = randomOrthogonal(rng, d);
    const a = Array.from({ length: d }, (_, i) => 10 ** (-(14 * i) / (d - 1)));
    const b = Array.from({ length: d }, (_, i) => 10 ** (-(14 * ((i * 7) % d)) / (d - 1)));
    const zero = new Array<number>(d).fill(0);
    const sa = stats(zero, withSpectrum(r, a, d));
    const sb = stats(zero, withSpectrum(r, b, d));
    const fd = frechetDistance(sa, sb);
    const exact = diagonalFd(zero, a, zero, b);
    // √ is not Lipschitz at 0: eigenvalue rounding δ ≈ d·2⁻⁵² becomes up to √δ per eigenvalue.
    const tol = d * Math.sqrt(d * 2 ** -52);
    console.log(`FD ill-conditioned d=64: |FD − exact| = ${Math.abs(fd - exact).toExponential(1)} (tolerance ${tol.toExponential(1)}), FD(a,a) = ${frechetDistance(sa, sa).toExponential(1)}`);
    expect(Math.abs(fd - exact)).toBeLessThan(tol);
    expect(frechetDistance(sa, sa)).toBeLessThan(tol);
    const selfRaw = 2 * trace(sa.cov, d) - 2 * traceSqrtProduct(sa.cov, sa.cov, d);
    console.log(`  unclamped FD(a,a) = ${selfRaw.toExponential(1)}`);
    expect(Math.abs(selfRaw)).toBeLessThan(tol);

    // Statistics of n = 10 < d samples: covariance of rank 9.
    for (const n of [2, 10, 40]) {
      const x = rng.normal(n * d);
      const y = rng.normal(n * d);
      const gx = gaussianStats(x, n, d);
      const gy = gaussianStats(y, n, d);
      for (const v of [frechetDistance(gx, gy), frechetDistance(gx, gx), fidFromFeatures(x, n, y, n, d)]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      }
      expect(Math.abs(trace(gx.cov, d) - traceSqrtProduct(gx.cov, gx.cov, d)) / trace(gx.cov, d)).toBeLessThan(tol);
      // The covariance part is a squared distance too: FD ≥ ‖μ₁ − μ₂‖².
      expect(frechetDistance(gx, gy)).toBeGreaterThanOrEqual(sqDist(gx.mean, gy.mean) * (1 - 1e-12));
    }
  });

  it('returns NaN for non-finite statistics and rejects mismatched dimensions', () => {
    const ok = stats([0, 0], diagonal([1, 1]));
    expect(frechetDistance(ok, stats([NaN, 0], diagonal([1, 1])))).toBeNaN();
    expect(frechetDistance(ok, stats([0, 0], diagonal([Infinity, 1])))).toBeNaN();
    expect(() => frechetDistance(ok, stats([0], diagonal([1])))).toThrow('frechetDistance: dimensions differ (2 vs 1)');
  });
});

describe('fidFromFeatures', () => {
  it('for two samples of N(0, I) is the sampling bias d(d + 1)/(2(n − 1)) + 2d/n on average', () => {
    // Second order: the Bures metric at I is ¼‖dΣ‖²_F, so FID ≈ ¼‖Σ̂₁ − Σ̂₂‖²_F + ‖μ̂₁ − μ̂₂‖², i.e.
    // χ²_{d(d+1)/2}/(n − 1) + (2/n)χ²_d: mean d(d+1)/(2(n−1)) + 2d/n, variance d(d+1)/(n−1)² + 8d/n².
    const d = 8;
    const n = 500;
    const seeds = 40;
    const r = randomOrthogonal(new Rng(30), d);
    const ones = new Array<number>(d).fill(1);
    const zero = new Array<number>(d).fill(0);
    let mean = 0;
    for (let s = 0; s < seeds; s++) {
      const rng = new Rng(100 + s);
      mean += fidFromFeatures(sampleGaussian(rng, n, zero, r, ones), n, sampleGaussian(rng, n, zero, r, ones), n, d) / seeds;
    }
    const bias = (d * (d + 1)) / (2 * (n - 1)) + (2 * d) / n;
    const sd = Math.sqrt((d * (d + 1)) / (n - 1) ** 2 + (8 * d) / n ** 2) / Math.sqrt(seeds);
    console.log(`FID of N(0,I) vs N(0,I), d=${d}, n=${n}: mean ${mean.toFixed(4)}, predicted ${bias.toFixed(4)} ± ${sd.toFixed(4)}`);
    expect(Math.abs(mean - bias)).toBeLessThan(4 * sd);
  });

  it('converges to the closed form as n grows, within bias + 5σ of the delta method', () => {
    // Σ₁ = R diag(a) Rᵀ, Σ₂ = R diag(b) Rᵀ: FD = ‖Δμ‖² + Σ(√a_i − √b_i)². First-order fluctuation
    // (delta method; ∂FD/∂Σ₁ = I − T with T the transport map diag(√(b/a)), Var tr(GΣ̂) = 2tr(GΣGΣ)/(n−1),
    // Var 2Δμᵀ(μ̂ − μ) = 4Δμᵀ(Σ₁ + Σ₂)Δμ/n):
    //   σ² = 4Δμᵀ(Σ₁ + Σ₂)Δμ/n + 4Σ_i(√a_i − √b_i)²(a_i + b_i)/(n − 1).
    // Bias: (tr Σ₁ + tr Σ₂)/n from the means, and the second-order covariance term, which at
    // Σ₁ = Σ₂ = cI is c·d(d+1)/(2(n−1)) (previous test); allow it with c = max(a, b).
    const d = 6;
    const rng = new Rng(31);
    const r = randomOrthogonal(rng, d);
    const a = [0.5, 1, 2, 1.5, 0.8, 3];
    const b = [1, 1.2, 0.6, 1.5, 2.5, 1.1];
    const mu1 = [0, 0, 0, 0, 0, 0];
    const dmu = [0.3, -0.2, 0.5, 0, 0.1, -0.4]; // in the eigenbasis
    const mu2 = Array.from({ length: d }, (_, i) => dmu.reduce((s, v, k) => s + r[i * d + k]! * v, 0));
    const exact = diagonalFd(mu1, a, mu2, b);
    const quadMu = dmu.reduce((s, v, k) => s + v * v * (a[k]! + b[k]!), 0);
    const covVar = a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i]!)) ** 2 * (ai + b[i]!), 0);
    const cMax = Math.max(...a, ...b);
    const trSum = a.reduce((s, v) => s + v, 0) + b.reduce((s, v) => s + v, 0);
    for (const n of [500, 5000, 50000]) {
      const fid = fidFromFeatures(sampleGaussian(rng, n, mu1, r, a), n, sampleGaussian(rng, n, mu2, r, b), n, d);
      const sigma = Math.sqrt((4 * quadMu) / n + (4 * covVar) / (n - 1));
      const bias = trSum / n + (cMax * d * (d + 1)) / (2 * (n - 1));
      console.log(`FID n=${n}: ${fid.toFixed(5)} vs exact ${exact.toFixed(5)}, |error| ${Math.abs(fid - exact).toFixed(5)}, tolerance ${(bias + 5 * sigma).toFixed(5)}`);
      expect(Math.abs(fid - exact)).toBeLessThan(bias + 5 * sigma);
    }
    expect(exact).toBeGreaterThan(0.5);
  });

  it('takes well under a second for d = 128, n = 2000', () => {
    const rng = new Rng(32);
    const d = 128;
    const n = 2000;
    const x = rng.normal(n * d);
    const y = Float32Array.from(rng.normal(n * d), (v, i) => (i % d === 0 ? v + 1 : v));
    fidFromFeatures(x.subarray(0, 200 * d), 200, y.subarray(0, 200 * d), 200, d); // warm up the JIT
    const t0 = performance.now();
    const fid = fidFromFeatures(x, n, y, n, d);
    const ms = performance.now() - t0;
    // Expected: 1 (mean shift) + bias d(d+1)/(2(n−1)) + 2d/n ≈ 1 + 4.1 + 0.13.
    console.log(`fidFromFeatures d=${d}, n=${n}: ${ms.toFixed(0)} ms, FID ${fid.toFixed(3)}`);
    expect(fid).toBeGreaterThan(4.5);
    expect(fid).toBeLessThan(6);
    expect(ms).toBeLessThan(1000);
  });
});
