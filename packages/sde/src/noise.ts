import type { ForwardProcess } from './process.js';
import type { Rng } from './rng.js';

/**
 * A distribution of noise levels σ, in the scaled (EDM / VE) space where x = x0 + σ·ε. Losses draw
 * their σ from one of these, through an explicit seeded {@link Rng}.
 */
export interface SigmaDistribution {
  readonly name: string;
  /** `n` independent draws of σ > 0. */
  sample(rng: Rng, n: number): Float32Array;
}

/**
 * EDM's training distribution (Karras et al. 2022, Table 1): ln σ ~ N(P_mean, P_std²).
 * The defaults P_mean = −1.2, P_std = 1.2 are EDM's, tuned for data scaled to σ_data = 0.5.
 */
export function logNormalSigma(opts: { pMean?: number; pStd?: number } = {}): SigmaDistribution {
  const P_mean = opts.pMean ?? -1.2;
  const P_std = opts.pStd ?? 1.2;
  if (!Number.isFinite(P_mean)) throw new Error(`logNormalSigma: pMean must be finite, got ${P_mean}`);
  if (!(P_std >= 0 && Number.isFinite(P_std))) throw new Error(`logNormalSigma: pStd must be >= 0, got ${P_std}`);
  return {
    name: `log-normal(${P_mean}, ${P_std})`,
    sample(rng, n) {
      const out = rng.normal(n);
      for (let i = 0; i < n; i++) out[i] = Math.exp(P_mean + P_std * out[i]!);
      return out;
    },
  };
}

/**
 * ln σ uniform on [ln σ_min, ln σ_max]: every octave of noise gets the same share of draws.
 * Defaults are EDM's sampling range σ ∈ [0.002, 80].
 */
export function logUniformSigma(opts: { sigmaMin?: number; sigmaMax?: number } = {}): SigmaDistribution {
  const sigmaMin = opts.sigmaMin ?? 0.002;
  const sigmaMax = opts.sigmaMax ?? 80;
  if (!(sigmaMin > 0 && sigmaMax >= sigmaMin && Number.isFinite(sigmaMax))) {
    throw new Error(`logUniformSigma: need 0 < sigmaMin <= sigmaMax < ∞, got [${sigmaMin}, ${sigmaMax}]`);
  }
  const lo = Math.log(sigmaMin);
  const hi = Math.log(sigmaMax);
  return {
    name: `log-uniform(${sigmaMin}, ${sigmaMax})`,
    sample(rng, n) {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.exp(lo + (hi - lo) * rng.next());
      return out;
    },
  };
}

/**
 * t uniform on (t_min, t_max) for a forward process, returned as the scaled noise level
 * σ̃ = σ(t)/α(t) (the "uniform in time" weighting of the integral in (3.1) and (2.2)).
 * Defaults are the process's own time range; a process without a finite t_max needs `tMax`.
 * t is drawn from the open interval, so σ̃ > 0 even when t_min = 0.
 */
export function uniformTime(process: ForwardProcess, opts: { tMin?: number; tMax?: number } = {}): SigmaDistribution {
  const tMin = opts.tMin ?? process.tMin;
  const tMax = opts.tMax ?? process.tMax;
  if (!(tMin >= 0 && Number.isFinite(tMax) && tMax > tMin)) {
    throw new Error(
      `uniformTime: need 0 <= tMin < tMax < ∞, got [${tMin}, ${tMax}]` +
        (Number.isFinite(tMax) ? '' : ` (the ${process.name} process has no finite tMax; pass opts.tMax)`),
    );
  }
  return {
    name: `uniform-time(${process.name}, ${tMin}, ${tMax})`,
    sample(rng, n) {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const t = tMin + (tMax - tMin) * rng.nextOpen();
        out[i] = process.sigma(t) / process.alpha(t);
      }
      return out;
    },
  };
}

/**
 * The sampling grid of Karras et al. 2022, eq. (5):
 *   σ_i = (σ_max^{1/ρ} + i/(N−1) · (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0..N−1,  σ_N = 0.
 * Decreasing from σ_max to σ_min, with a final 0; length `steps` + 1. With one step: [σ_max, 0].
 * Defaults are EDM's: σ_min = 0.002, σ_max = 80, ρ = 7.
 */
export function karrasSigmas(opts: {
  steps: number;
  sigmaMin?: number;
  sigmaMax?: number;
  rho?: number;
}): Float32Array {
  const { steps } = opts;
  const sigmaMin = opts.sigmaMin ?? 0.002;
  const sigmaMax = opts.sigmaMax ?? 80;
  const rho = opts.rho ?? 7;
  if (!(Number.isInteger(steps) && steps >= 1))
    throw new Error(`karrasSigmas: steps must be an integer >= 1, got ${steps}`);
  if (!(sigmaMin > 0 && sigmaMax >= sigmaMin && Number.isFinite(sigmaMax))) {
    throw new Error(`karrasSigmas: need 0 < sigmaMin <= sigmaMax < ∞, got [${sigmaMin}, ${sigmaMax}]`);
  }
  if (!(rho > 0)) throw new Error(`karrasSigmas: rho must be > 0, got ${rho}`);
  const out = new Float32Array(steps + 1);
  const a = sigmaMax ** (1 / rho);
  const b = sigmaMin ** (1 / rho);
  for (let i = 0; i < steps; i++) {
    out[i] = steps === 1 ? sigmaMax : (a + (i / (steps - 1)) * (b - a)) ** rho;
  }
  out[steps] = 0;
  return out;
}
