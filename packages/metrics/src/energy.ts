import { DEFAULT_MAX_POINTS, rows, sumDistances } from './samples.js';

export interface EnergyDistanceOptions {
  /** Use the first `maxPoints` rows of each sample. Default 2000. */
  maxPoints?: number;
}

/**
 * Energy distance (Székely & Rizzo), the V-statistic
 *   E(X, Y) = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖,
 * Euclidean, on the first `maxPoints` rows of `x` and `y`. It is ≥ 0 and zero only when the
 * distributions match. The V-statistic includes the i = j terms of the within-sample means, so it
 * is biased upwards by about (E‖X − X'‖ + E‖Y − Y'‖)/n: compare it with the floor of two
 * samples of the target.
 */
export function energyDistance(x: Float32Array, y: Float32Array, dim: number, opts: EnergyDistanceOptions = {}): number {
  const max = opts.maxPoints ?? DEFAULT_MAX_POINTS;
  const n = rows('energyDistance', 'x', x, dim, max);
  const m = rows('energyDistance', 'y', y, dim, max);
  const xy = sumDistances(x, n, y, m, dim, false) / (n * m);
  const xx = sumDistances(x, n, x, n, dim, true) / (n * n);
  const yy = sumDistances(y, m, y, m, dim, true) / (m * m);
  return Math.max(0, 2 * xy - xx - yy);
}
