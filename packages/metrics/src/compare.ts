import type { Rng } from '@diff-instruct/sde';
import type * as tf from '@tensorflow/tfjs';

import { energyDistance } from './energy.js';
import { meanLogLik } from './loglik.js';
import { mmdRbf } from './mmd.js';
import { DEFAULT_MAX_POINTS } from './samples.js';
import { slicedWasserstein } from './swd.js';

/** Distances between a sample and a reference sample; lower is better, 0 for identical samples. */
export interface SampleMetrics {
  /** {@link energyDistance} (V-statistic). */
  energy: number;
  /** {@link mmdRbf}: biased MMD², RBF kernel, median-heuristic bandwidth. */
  mmd: number;
  /** {@link slicedWasserstein}: sliced W1. */
  swd: number;
  /** Mean log-density of the sample under the target's exact density, when known (higher is better). */
  loglik?: number;
}

export interface CompareOptions {
  /** The target's exact log-density (e.g. `mixture.logProb`): adds `loglik`. */
  logProb?: (x: tf.Tensor2D) => tf.Tensor1D;
  /** Rows of each sample used by the distances. Default 2000. loglik uses every row of `x`. */
  maxPoints?: number;
  /** Directions for the sliced Wasserstein distance. Default 128. */
  projections?: number;
}

/**
 * Every low-dimensional metric of `x` (the samples under test) against `y` (a held-out sample of
 * the target). Report it next to the floor `compareSamples(y1, y2)` of two target samples.
 */
export function compareSamples(
  x: Float32Array,
  y: Float32Array,
  dim: number,
  rng: Rng,
  opts: CompareOptions = {},
): SampleMetrics {
  const maxPoints = opts.maxPoints ?? DEFAULT_MAX_POINTS;
  const out: SampleMetrics = {
    energy: energyDistance(x, y, dim, { maxPoints }),
    mmd: mmdRbf(x, y, dim, { maxPoints }),
    swd: slicedWasserstein(x, y, dim, rng, { maxPoints, ...(opts.projections !== undefined && { projections: opts.projections }) }),
  };
  if (opts.logProb) out.loglik = meanLogLik(x, dim, opts.logProb);
  return out;
}
