import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { matMul, sqrtmPsd, symmetricEigen } from './linalg.js';
import { diff, frob, randomOrthogonal, randomPsd, transpose, withSpectrum } from './test-matrices.js';

function eye(d: number): Float64Array {
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) a[i * d + i] = 1;
  return a;
}

/** ‖A − VΛVᵀ‖_F/‖A‖_F and ‖VᵀV − I‖_F. */
function eigenErrors(a: Float64Array, d: number): { recon: number; orth: number } {
  const { values, vectors } = symmetricEigen(a, d);
  for (let i = 1; i < d; i++) expect(values[i]!).toBeGreaterThanOrEqual(values[i - 1]!);
  return {
    recon: frob(diff(a, withSpectrum(vectors, values, d))) / Math.max(frob(a), Number.MIN_VALUE),
    orth: frob(diff(matMul(transpose(vectors, d), vectors, d), eye(d))),
  };
}

describe('symmetricEigen', () => {
  it('recovers a known spectrum (with repeated and negative eigenvalues) to 1e-12 relative, d up to 256', () => {
    for (const d of [1, 2, 3, 17, 64, 256]) {
      const rng = new Rng(d);
      const q = randomOrthogonal(rng, d);
      // Spread over [−3, 5], with a block of equal eigenvalues (degenerate eigenspace).
      const lambda = Array.from({ length: d }, (_, i) => (i % 7 === 3 ? 1.25 : -3 + (8 * i) / Math.max(1, d - 1)));
      const a = withSpectrum(q, lambda, d);
      const t0 = performance.now();
      const { values } = symmetricEigen(a, d);
      const ms = performance.now() - t0;
      const sorted = [...lambda].sort((x, y) => x - y);
      let err = 0;
      for (let i = 0; i < d; i++) err = Math.max(err, Math.abs(values[i]! - sorted[i]!));
      const { recon, orth } = eigenErrors(a, d);
      console.log(`symmetricEigen d=${d}: ${ms.toFixed(1)} ms, max|Δλ|/5 = ${(err / 5).toExponential(1)}, recon ${recon.toExponential(1)}, orth ${orth.toExponential(1)}`);
      expect(err / 5).toBeLessThan(1e-12);
      expect(recon).toBeLessThan(1e-12);
      expect(orth).toBeLessThan(1e-12);
    }
  });

  it('reconstructs A = VΛVᵀ with VᵀV = I for random, diagonal, zero, identity and rank-1 matrices', () => {
    const rng = new Rng(11);
    const d = 40;
    const general = Float64Array.from(rng.normal(d * d)); // its symmetric part is decomposed
    const sym = Float64Array.from(general, (_, k) => (general[k]! + general[(k % d) * d + Math.floor(k / d)]!) / 2);
    const diag = new Float64Array(d * d);
    for (let i = 0; i < d; i++) diag[i * d + i] = (i * 37) % 11;
    const u = Float64Array.from(rng.normal(d));
    const rank1 = Float64Array.from({ length: d * d }, (_, k) => u[Math.floor(k / d)]! * u[k % d]!);
    for (const a of [sym, diag, eye(d), rank1]) {
      const { recon, orth } = eigenErrors(a, d);
      expect(recon).toBeLessThan(1e-13);
      expect(orth).toBeLessThan(1e-13);
    }
    // The non-symmetric input decomposes as its symmetric part.
    expect(symmetricEigen(general, d).values).toEqual(symmetricEigen(sym, d).values);
    const zero = symmetricEigen(new Float64Array(d * d), d);
    expect(Array.from(zero.values)).toEqual(new Array(d).fill(0));
    expect(frob(diff(matMul(transpose(zero.vectors, d), zero.vectors, d), eye(d)))).toBe(0);
  });

  it('matches the 2×2 closed form λ = (a + c)/2 ± √(((a − c)/2)² + b²)', () => {
    const [a, b, c] = [2, -0.7, 0.5];
    const r = Math.sqrt(((a - c) / 2) ** 2 + b * b);
    const { values, vectors } = symmetricEigen(Float64Array.of(a, b, b, c), 2);
    expect(values[0]).toBeCloseTo((a + c) / 2 - r, 14);
    expect(values[1]).toBeCloseTo((a + c) / 2 + r, 14);
    // A v = λ v for the first column.
    const [v0, v1] = [vectors[0]!, vectors[2]!];
    expect(a * v0 + b * v1).toBeCloseTo(values[0]! * v0, 14);
  });

  it('rejects bad input with a clear message', () => {
    expect(() => symmetricEigen(new Float64Array(5), 2)).toThrow('symmetricEigen: matrix has 5 values, expected d·d = 4');
    expect(() => symmetricEigen(new Float64Array(0), 0)).toThrow(/d must be a positive integer/);
    expect(() => symmetricEigen(Float64Array.of(1, NaN, NaN, 1), 2)).toThrow(/not finite/);
  });
});

describe('sqrtmPsd', () => {
  it('squares back to A to 1e-10 relative for random PSD matrices (d = 64), full rank and rank-deficient', () => {
    const rng = new Rng(12);
    const d = 64;
    for (const m of [2 * d, d, 10]) {
      const a = randomPsd(rng, d, m);
      const s = sqrtmPsd(a, d);
      expect(frob(diff(s, transpose(s, d)))).toBe(0);
      const rel = frob(diff(matMul(s, s, d), a)) / frob(a);
      console.log(`sqrtmPsd d=64, rank ${Math.min(m, d)}: ‖S² − A‖/‖A‖ = ${rel.toExponential(1)}`);
      expect(rel).toBeLessThan(1e-10);
      // S is PSD: its eigenvalues are ≥ 0 up to rounding.
      expect(symmetricEigen(s, d).values[0]!).toBeGreaterThan(-1e-7);
    }
  });

  it('matches √λ on a known spectrum and clamps rounding-level negative eigenvalues to 0', () => {
    const d = 6;
    const q = randomOrthogonal(new Rng(13), d);
    const s = sqrtmPsd(withSpectrum(q, [4, 9, 0.25, 1e-8, 0, -1e-15], d), d);
    const expected = withSpectrum(q, [2, 3, 0.5, 1e-4, 0, 0], d);
    // √ is not Lipschitz at 0: eigenvalue rounding δ ≈ d·2⁻⁵²·max λ becomes up to √δ ≈ 1e-7 in S.
    const delta = d * 2 ** -52 * 9;
    expect(frob(diff(s, expected))).toBeLessThan(2 * Math.sqrt(delta));
    expect(frob(diff(matMul(s, s, d), withSpectrum(q, [4, 9, 0.25, 1e-8, 0, 0], d)))).toBeLessThan(1e-13);
    expect(sqrtmPsd(Float64Array.of(0), 1)[0]).toBe(0);
    expect(sqrtmPsd(Float64Array.of(2.25), 1)[0]).toBe(1.5);
  });

  it('throws on a matrix that is clearly not PSD', () => {
    expect(() => sqrtmPsd(Float64Array.of(1, 0, 0, -0.5), 2)).toThrow(/sqrtmPsd: matrix is not positive semi-definite/);
  });
});
