import type { Rng } from '@diff-instruct/sde';

import { DEFAULT_MAX_POINTS, rows } from './samples.js';

export interface SlicedWassersteinOptions {
  /** Number of random directions. Default 128. */
  projections?: number;
  /** Use the first `maxPoints` rows of each sample. Default 2000. */
  maxPoints?: number;
}

/**
 * Sliced 1-Wasserstein distance: the mean, over `projections` directions θ drawn uniformly on the
 * unit sphere from `rng`, of W1 between the 1-D empirical distributions of ⟨x, θ⟩ and ⟨y, θ⟩.
 * W1 in 1-D is computed exactly as ∫|F − G| from the sorted projections, so the two samples may
 * have different sizes (with equal sizes it is the mean |x₍ᵢ₎ − y₍ᵢ₎| of the order statistics).
 * In 1-D (dim = 1) it is exactly W1.
 */
export function slicedWasserstein(
  x: Float32Array,
  y: Float32Array,
  dim: number,
  rng: Rng,
  opts: SlicedWassersteinOptions = {},
): number {
  const max = opts.maxPoints ?? DEFAULT_MAX_POINTS;
  const n = rows('slicedWasserstein', 'x', x, dim, max);
  const m = rows('slicedWasserstein', 'y', y, dim, max);
  const L = opts.projections ?? 128;
  if (!Number.isInteger(L) || L < 1) throw new Error(`slicedWasserstein: projections must be a positive integer, got ${L}`);
  const px = new Float64Array(n);
  const py = new Float64Array(m);
  let total = 0;
  for (let l = 0; l < L; l++) {
    const theta = unitVector(rng, dim);
    project(x, n, dim, theta, px);
    project(y, m, dim, theta, py);
    total += wasserstein1d(px.sort(), py.sort());
  }
  return total / L;
}

function unitVector(rng: Rng, dim: number): Float64Array {
  for (;;) {
    const g = rng.normal(dim);
    let norm = 0;
    for (const v of g) norm += v * v;
    norm = Math.sqrt(norm);
    if (norm > 1e-12) return Float64Array.from(g, (v) => v / norm);
  }
}

function project(x: Float32Array, n: number, dim: number, theta: Float64Array, out: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[i * dim + k]! * theta[k]!;
    out[i] = s;
  }
}

/** W1 = ∫ |F(t) − G(t)| dt between two sorted samples' empirical distributions. */
export function wasserstein1d(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let prev = Math.min(a[0]!, b[0]!);
  let total = 0;
  while (i < n || j < m) {
    const t = j >= m || (i < n && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    total += Math.abs(i / n - j / m) * (t - prev);
    prev = t;
    while (i < n && a[i]! === t) i++;
    while (j < m && b[j]! === t) j++;
  }
  return total;
}
