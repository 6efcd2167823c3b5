/** Matrix fixtures shared by the linalg and FID tests (float64, row-major). Not exported by the package. */
import type { Rng } from '@diff-instruct/sde';

/** A random d×d orthogonal matrix: Gram–Schmidt (applied twice) on a Gaussian matrix. */
export function randomOrthogonal(rng: Rng, d: number): Float64Array {
  const q = Float64Array.from(rng.normal(d * d));
  for (let j = 0; j < d; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[i * d + j]! * q[i * d + p]!;
        for (let i = 0; i < d; i++) q[i * d + j] = q[i * d + j]! - dot * q[i * d + p]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += q[i * d + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < d; i++) q[i * d + j] = q[i * d + j]! / norm;
  }
  return q;
}

/** Q diag(λ) Qᵀ. */
export function withSpectrum(q: Float64Array, lambda: ArrayLike<number>, d: number): Float64Array {
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += q[i * d + k]! * lambda[k]! * q[j * d + k]!;
      a[i * d + j] = s;
    }
  }
  return a;
}

export function transpose(a: Float64Array, d: number): Float64Array {
  const t = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) t[j * d + i] = a[i * d + j]!;
  return t;
}

export function frob(a: Float64Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return Math.sqrt(s);
}

export function diff(a: Float64Array, b: Float64Array): Float64Array {
  return Float64Array.from(a, (x, i) => x - b[i]!);
}

/** A random PSD matrix G Gᵀ/m with G d×m Gaussian; full rank (condition number ~30) when m = 2d. */
export function randomPsd(rng: Rng, d: number, m = 2 * d): Float64Array {
  const g = Float64Array.from(rng.normal(d * m));
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += g[i * m + k]! * g[j * m + k]!;
      a[i * d + j] = s / m;
      a[j * d + i] = s / m;
    }
  }
  return a;
}

