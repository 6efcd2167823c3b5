import { DEFAULT_MAX_POINTS, rows, sumRbf } from './samples.js';

export interface MmdOptions {
  /** RBF bandwidth h in k(a, b) = exp(−‖a − b‖² / (2h²)). Default: the median heuristic. */
  bandwidth?: number;
  /** Use the first `maxPoints` rows of each sample. Default 2000. */
  maxPoints?: number;
}

/**
 * Squared maximum mean discrepancy with an RBF kernel, the biased (V-statistic) estimate
 *   MMD² = mean k(x, x') + mean k(y, y') − 2 mean k(x, y),
 * diagonal terms included, on the first `maxPoints` rows of each sample. Without `bandwidth`,
 * h is the median pairwise distance of the pooled sample (the first 500 rows of each).
 */
export function mmdRbf(x: Float32Array, y: Float32Array, dim: number, opts: MmdOptions = {}): number {
  const max = opts.maxPoints ?? DEFAULT_MAX_POINTS;
  const n = rows('mmdRbf', 'x', x, dim, max);
  const m = rows('mmdRbf', 'y', y, dim, max);
  const h = opts.bandwidth ?? medianBandwidth(x, n, y, m, dim);
  if (!(h > 0 && Number.isFinite(h))) throw new Error(`mmdRbf: bandwidth must be a positive number, got ${h}`);
  const gamma = 1 / (2 * h * h);
  const xx = sumRbf(x, n, x, n, dim, gamma, true) / (n * n);
  const yy = sumRbf(y, m, y, m, dim, gamma, true) / (m * m);
  const xy = sumRbf(x, n, y, m, dim, gamma, false) / (n * m);
  return Math.max(0, xx + yy - 2 * xy);
}

/**
 * The median heuristic: the median Euclidean distance between distinct points of the pooled
 * sample (at most 500 rows of each, so it costs little). Falls back to the mean distance, then 1,
 * when the median is 0 (e.g. a sample with many repeated points).
 */
export function medianBandwidth(x: Float32Array, n: number, y: Float32Array, m: number, dim: number): number {
  const nx = Math.min(n, 500);
  const ny = Math.min(m, 500);
  const pooled = new Float32Array((nx + ny) * dim);
  pooled.set(x.subarray(0, nx * dim), 0);
  pooled.set(y.subarray(0, ny * dim), nx * dim);
  const p = nx + ny;
  const d2 = new Float64Array((p * (p - 1)) / 2);
  let c = 0;
  let sum = 0;
  for (let i = 0; i < p; i++) {
    for (let j = i + 1; j < p; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) {
        const t = pooled[i * dim + k]! - pooled[j * dim + k]!;
        s += t * t;
      }
      d2[c++] = s;
      sum += Math.sqrt(s);
    }
  }
  if (c === 0) return 1;
  d2.sort();
  const med = c % 2 ? Math.sqrt(d2[(c - 1) / 2]!) : (Math.sqrt(d2[c / 2 - 1]!) + Math.sqrt(d2[c / 2]!)) / 2;
  if (med > 0) return med;
  return sum > 0 ? sum / c : 1;
}
