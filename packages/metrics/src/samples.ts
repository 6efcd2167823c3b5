/** Shared argument checks: a row-major [n, dim] sample, truncated to its first `maxPoints` rows. */
export function rows(name: string, arg: string, x: Float32Array, dim: number, maxPoints: number): number {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${name}: dim must be a positive integer, got ${dim}`);
  if (x.length % dim !== 0) throw new Error(`${name}: ${arg} has ${x.length} values, not a multiple of dim ${dim}`);
  const n = x.length / dim;
  if (n === 0) throw new Error(`${name}: ${arg} is empty`);
  if (!(maxPoints >= 1)) throw new Error(`${name}: maxPoints must be >= 1, got ${maxPoints}`);
  return Math.min(n, Math.floor(maxPoints));
}

/** Default cap on the rows used by the O(n²) metrics: 2000 × 2000 pairs take a few hundred ms. */
export const DEFAULT_MAX_POINTS = 2000;

/**
 * Σ_{i,j} ‖a_i − b_j‖ over all pairs. With `same` (a = b), each unordered pair is computed once
 * and counted twice; the diagonal adds 0.
 */
export function sumDistances(a: Float32Array, na: number, b: Float32Array, nb: number, dim: number, same: boolean): number {
  let total = 0;
  for (let i = 0; i < na; i++) {
    const oi = i * dim;
    let row = 0;
    for (let j = same ? i + 1 : 0; j < nb; j++) {
      const oj = j * dim;
      let d2 = 0;
      for (let k = 0; k < dim; k++) {
        const t = a[oi + k]! - b[oj + k]!;
        d2 += t * t;
      }
      row += Math.sqrt(d2);
    }
    total += row;
  }
  return same ? 2 * total : total;
}

/**
 * Σ_{i,j} exp(−γ‖a_i − b_j‖²) over all pairs. With `same` (a = b), each unordered pair is
 * computed once and counted twice; the diagonal adds na. (Kept apart from {@link sumDistances}:
 * a shared loop with a callback is 2–3× slower.)
 */
export function sumRbf(a: Float32Array, na: number, b: Float32Array, nb: number, dim: number, gamma: number, same: boolean): number {
  let total = 0;
  for (let i = 0; i < na; i++) {
    const oi = i * dim;
    let row = 0;
    for (let j = same ? i + 1 : 0; j < nb; j++) {
      const oj = j * dim;
      let d2 = 0;
      for (let k = 0; k < dim; k++) {
        const t = a[oi + k]! - b[oj + k]!;
        d2 += t * t;
      }
      row += Math.exp(-gamma * d2);
    }
    total += row;
  }
  return same ? 2 * total + na : total;
}
