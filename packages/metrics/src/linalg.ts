/**
 * Dense symmetric linear algebra in float64, for the Fréchet distance ({@link ./fid.ts}).
 * Matrices are d×d, row-major `Float64Array`s. No tfjs: float32 is not enough for a matrix square
 * root of a 128×128 covariance.
 */

/**
 * Eigendecomposition A = V diag(λ) Vᵀ of a symmetric d×d matrix (its symmetric part
 * (A + Aᵀ)/2 is used), by Householder tridiagonalisation and the implicit QL algorithm (EISPACK
 * `tred2` + `tql2`, as in JAMA). Backward stable: the eigenvalues are exact for a matrix within
 * about d·2⁻⁵²·‖A‖ of A, and V is orthogonal to the same precision. O(d³): about 10 ms at d = 128.
 *
 * Returns the eigenvalues in ascending order, and `vectors` with the eigenvector of `values[j]` in
 * column j (row-major, so `vectors[i * d + j]` is its i-th component), as `numpy.linalg.eigh`.
 * Throws on non-finite entries.
 */
export function symmetricEigen(a: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  checkSquare('symmetricEigen', a, d);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const x = (a[i * d + j]! + a[j * d + i]!) / 2;
      if (!Number.isFinite(x)) throw new Error(`symmetricEigen: a[${i}, ${j}] is not finite (${a[i * d + j]})`);
      v[i * d + j] = x;
    }
  }
  const values = new Float64Array(d);
  const e = new Float64Array(d);
  tred2(v, values, e, d);
  // tql2 rotates pairs of columns of V: work on Vᵀ so that they are contiguous rows.
  transposeInPlace(v, d);
  tql2(v, values, e, d);
  transposeInPlace(v, d);
  return { values, vectors: v };
}

/**
 * The symmetric positive semi-definite square root S = V diag(√max(λ, 0)) Vᵀ of a symmetric PSD
 * matrix A, so that S = Sᵀ and S² = A. Eigenvalues that are negative only through rounding are
 * clamped to 0; an eigenvalue below −1e-6·max|λ| means A is not PSD, and throws.
 */
export function sqrtmPsd(a: Float64Array, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, d);
  return fromEigen(vectors, psdRoots('sqrtmPsd', values), d);
}

/**
 * √max(λ, 0) of each eigenvalue of a PSD matrix, throwing when one is clearly negative.
 * (Rounding leaves eigenvalues of a PSD matrix as low as about −d·2⁻⁵²·max|λ|.)
 */
export function psdRoots(name: string, values: Float64Array): Float64Array {
  let scale = 0;
  for (const x of values) scale = Math.max(scale, Math.abs(x));
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (x < -1e-6 * scale) throw new Error(`${name}: matrix is not positive semi-definite (eigenvalue ${x}, largest |λ| ${scale})`);
    out[i] = Math.sqrt(Math.max(x, 0));
  }
  return out;
}

/** V diag(s) Vᵀ, computed on one triangle and mirrored, so exactly symmetric. */
function fromEigen(v: Float64Array, s: Float64Array, d: number): Float64Array {
  const w = new Float64Array(d * d); // V diag(s)
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) w[i * d + k] = v[i * d + k]! * s[k]!;
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const oi = i * d;
    for (let j = 0; j <= i; j++) {
      const oj = j * d;
      let t = 0;
      for (let k = 0; k < d; k++) t += w[oi + k]! * v[oj + k]!;
      out[oi + j] = t;
      out[oj + i] = t;
    }
  }
  return out;
}

/** A B for d×d row-major matrices (i-k-j order, so the inner loop is contiguous). */
export function matMul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const oi = i * d;
    for (let k = 0; k < d; k++) {
      const aik = a[oi + k]!;
      if (aik === 0) continue;
      const ok = k * d;
      for (let j = 0; j < d; j++) out[oi + j] = out[oi + j]! + aik * b[ok + j]!;
    }
  }
  return out;
}

/** S B S for symmetric S and B, symmetrised so rounding cannot make it asymmetric. */
export function congruence(s: Float64Array, b: Float64Array, d: number): Float64Array {
  const m = matMul(matMul(s, b, d), s, d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      const x = (m[i * d + j]! + m[j * d + i]!) / 2;
      m[i * d + j] = x;
      m[j * d + i] = x;
    }
  }
  return m;
}

export function checkSquare(name: string, a: Float64Array, d: number): void {
  if (!Number.isInteger(d) || d < 1) throw new Error(`${name}: d must be a positive integer, got ${d}`);
  if (a.length !== d * d) throw new Error(`${name}: matrix has ${a.length} values, expected d·d = ${d * d}`);
}

function transposeInPlace(a: Float64Array, d: number): void {
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const t = a[i * d + j]!;
      a[i * d + j] = a[j * d + i]!;
      a[j * d + i] = t;
    }
  }
}

/** √(a² + b²) without overflow; Math.hypot is several times slower in V8. */
function hypot(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) {
    const r = y / x;
    return x * Math.sqrt(1 + r * r);
  }
  if (y === 0) return 0;
  const r = x / y;
  return y * Math.sqrt(1 + r * r);
}

/**
 * Householder reduction of the symmetric matrix in `v` (row-major) to tridiagonal form:
 * diagonal in `dg`, subdiagonal in `e[1..]`, and the accumulated orthogonal transformation in `v`.
 * EISPACK tred2, after JAMA's EigenvalueDecomposition.
 */
function tred2(v: Float64Array, dg: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) dg[j] = v[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(dg[k]!);
    if (scale === 0) {
      e[i] = dg[i - 1]!;
      for (let j = 0; j < i; j++) {
        dg[j] = v[(i - 1) * n + j]!;
        v[i * n + j] = 0;
        v[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        dg[k] = dg[k]! / scale;
        h += dg[k]! * dg[k]!;
      }
      let f = dg[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      dg[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = dg[j]!;
        v[j * n + i] = f;
        g = e[j]! + v[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += v[k * n + j]! * dg[k]!;
          e[k] = e[k]! + v[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * dg[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * dg[j]!;
      for (let j = 0; j < i; j++) {
        f = dg[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) v[k * n + j] = v[k * n + j]! - (f * e[k]! + g * dg[k]!);
        dg[j] = v[(i - 1) * n + j]!;
        v[i * n + j] = 0;
      }
    }
    dg[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    v[(n - 1) * n + i] = v[i * n + i]!;
    v[i * n + i] = 1;
    const h = dg[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) dg[k] = v[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += v[k * n + i + 1]! * v[k * n + j]!;
        for (let k = 0; k <= i; k++) v[k * n + j] = v[k * n + j]! - g * dg[k]!;
      }
    }
    for (let k = 0; k <= i; k++) v[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    dg[j] = v[(n - 1) * n + j]!;
    v[(n - 1) * n + j] = 0;
  }
  v[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/**
 * Implicit QL iterations on the tridiagonal matrix (`dg`, `e`) from {@link tred2}, applying each
 * rotation to `vt` = Vᵀ (so eigenvectors end up as its rows), then sorts ascending.
 * EISPACK tql2, after JAMA's EigenvalueDecomposition.
 */
function tql2(vt: Float64Array, dg: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(dg[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    // e[n − 1] = 0, so the loop stops at m ≤ n − 1.
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60) throw new Error(`symmetricEigen: QL iteration did not converge (eigenvalue ${l} of ${n})`);
        let g = dg[l]!;
        let p = (dg[l + 1]! - g) / (2 * e[l]!);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        dg[l] = e[l]! / (p + r);
        dg[l + 1] = e[l]! * (p + r);
        const dl1 = dg[l + 1]!;
        let h = g - dg[l]!;
        for (let i = l + 2; i < n; i++) dg[i] = dg[i]! - h;
        f += h;
        p = dg[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * dg[i]! - s * g;
          dg[i + 1] = h + s * (c * g + s * dg[i]!);
          const oi = i * n;
          const oi1 = oi + n;
          for (let k = 0; k < n; k++) {
            const x = vt[oi1 + k]!;
            const y = vt[oi + k]!;
            vt[oi1 + k] = s * y + c * x;
            vt[oi + k] = c * y - s * x;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        dg[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    dg[l] = dg[l]! + f;
    e[l] = 0;
  }
  // Selection sort, ascending, swapping eigenvector rows along.
  for (let i = 0; i < n - 1; i++) {
    let k = i;
    let p = dg[i]!;
    for (let j = i + 1; j < n; j++) {
      if (dg[j]! < p) {
        k = j;
        p = dg[j]!;
      }
    }
    if (k !== i) {
      dg[k] = dg[i]!;
      dg[i] = p;
      for (let j = 0; j < n; j++) {
        const t = vt[i * n + j]!;
        vt[i * n + j] = vt[k * n + j]!;
        vt[k * n + j] = t;
      }
    }
  }
}
