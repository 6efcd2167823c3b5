/**
 * FID (LeNet features): the Fréchet distance between Gaussians fitted to classifier features of
 * generated and of real images.
 *
 * NOT comparable with Inception FID. The features are the penultimate-layer activations of a small
 * classifier that this project trains and commits for each dataset (packages/models), not those of
 * Inception-v3 on ImageNet, so the numbers have a different scale and meaning from the FID of
 * papers (Heusel et al., 2017). Compare them only with each other: same dataset, same committed
 * classifier, same sample sizes (the estimate is biased upwards by O(d²/n), see
 * {@link fidFromFeatures}). Always label them "FID (LeNet features)".
 *
 * Everything here is plain float64 JavaScript; no tfjs.
 */
import { checkSquare, congruence, psdRoots, sqrtmPsd, symmetricEigen } from './linalg.js';

/** Mean and unbiased covariance of n feature vectors of dimension d. */
export interface GaussianStats {
  mean: Float64Array;
  /** d×d, row-major, normalised by n − 1. */
  cov: Float64Array;
  d: number;
  /** The number of feature vectors the statistics come from. */
  n: number;
}

/**
 * Mean and unbiased covariance Σ = Σ_i (x_i − μ)(x_i − μ)ᵀ / (n − 1) of the n rows of a row-major
 * [n, d] feature array, accumulated in float64 around the mean (two passes, so a large common offset
 * costs no precision). O(n d²): about 30 ms for n = 2000, d = 128. Needs n ≥ 2.
 */
export function gaussianStats(features: Float32Array | Float64Array, n: number, d: number): GaussianStats {
  if (!Number.isInteger(d) || d < 1) throw new Error(`gaussianStats: d must be a positive integer, got ${d}`);
  if (!Number.isInteger(n) || n < 2) throw new Error(`gaussianStats: n must be an integer >= 2, got ${n}`);
  if (features.length !== n * d) throw new Error(`gaussianStats: features has ${features.length} values, expected n·d = ${n * d}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k] = mean[k]! + features[i * d + k]!;
  for (let k = 0; k < d; k++) mean[k] = mean[k]! / n;
  const cov = new Float64Array(d * d);
  const r = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) r[k] = features[i * d + k]! - mean[k]!;
    // Upper triangle only; mirrored below.
    for (let a = 0; a < d; a++) {
      const ra = r[a]!;
      const oa = a * d;
      for (let b = a; b < d; b++) cov[oa + b] = cov[oa + b]! + ra * r[b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const c = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = c;
      cov[b * d + a] = c;
    }
  }
  return { mean, cov, d, n };
}

/**
 * The Fréchet (2-Wasserstein) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂):
 *   FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}).
 * The trace of the square root is taken through the symmetric PSD matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}
 * (two symmetric eigendecompositions), not the non-symmetric sqrtm(Σ₁Σ₂) of scipy: no complex
 * parts to discard, no ε added to the diagonal, and it stays exact for singular covariances.
 * Clamped at 0 (rounding can leave it a few ulps below). Returns NaN when either mean or covariance
 * has a non-finite entry (e.g. features of a diverged generator).
 */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  const d = a.d;
  if (b.d !== d) throw new Error(`frechetDistance: dimensions differ (${a.d} vs ${b.d})`);
  checkSquare('frechetDistance', a.cov, d);
  checkSquare('frechetDistance', b.cov, d);
  if (a.mean.length !== d || b.mean.length !== d) throw new Error(`frechetDistance: means must have length d = ${d}`);
  if (!allFinite(a.mean) || !allFinite(b.mean) || !allFinite(a.cov) || !allFinite(b.cov)) return NaN;
  let meanTerm = 0;
  for (let k = 0; k < d; k++) {
    const t = a.mean[k]! - b.mean[k]!;
    meanTerm += t * t;
  }
  let trace = 0;
  for (let k = 0; k < d; k++) trace += a.cov[k * d + k]! + b.cov[k * d + k]!;
  return Math.max(0, meanTerm + trace - 2 * traceSqrtProduct(a.cov, b.cov, d));
}

/**
 * tr((Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}), the sum of the square roots of the eigenvalues of the symmetric
 * PSD matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2} (equal to those of Σ₁Σ₂, so it is symmetric in Σ₁ and Σ₂).
 * For the inputs of {@link frechetDistance}; not clamped, so tests can see its rounding.
 */
export function traceSqrtProduct(cov1: Float64Array, cov2: Float64Array, d: number): number {
  const m = congruence(sqrtmPsd(cov1, d), cov2, d);
  let t = 0;
  for (const r of psdRoots('frechetDistance', symmetricEigen(m, d).values)) t += r;
  return t;
}

/**
 * FID (LeNet features) between two feature sets: {@link frechetDistance} of their
 * {@link gaussianStats}. `x` is [nx, d] and `y` is [ny, d], row-major; typically x the classifier's
 * penultimate features of generated images and y those of the test set.
 *
 * NOT comparable with Inception FID (see the top of this file). Like every FID, it is biased upwards
 * by the sampling noise of the statistics: for equal Gaussians with identity covariance the expected
 * value is about d(d + 1)/4·(1/(nx − 1) + 1/(ny − 1)) + d·(1/nx + 1/ny), so report n and compare
 * only numbers computed with the same n. About 100 ms for d = 128, n = 2000.
 */
export function fidFromFeatures(x: Float32Array, nx: number, y: Float32Array, ny: number, d: number): number {
  return frechetDistance(gaussianStats(x, nx, d), gaussianStats(y, ny, d));
}

function allFinite(a: Float64Array): boolean {
  for (const x of a) if (!Number.isFinite(x)) return false;
  return true;
}
