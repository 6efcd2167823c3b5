/**
 * A weighting w of the noise levels: the w(t) of the DSM objective (2.2) and of the IKL divergence
 * (Definition 3.1, eq. (3.1)), here written as a function of the noise level σ (the EDM λ(σ)).
 */
export type Weighting = (sigma: number) => number;

/**
 * EDM's loss weighting (Karras et al. 2022, Table 1): λ(σ) = (σ² + σ_d²)/(σ·σ_d)², which makes the
 * effective weight of the network's output unit at every σ. σ_d = 0.5 is EDM's data scale.
 */
export function edmWeight(sigmaData = 0.5): Weighting {
  if (!(sigmaData > 0)) throw new Error(`edmWeight: sigmaData must be > 0, got ${sigmaData}`);
  const sd2 = sigmaData * sigmaData;
  return (sigma) => (sigma * sigma + sd2) / (sigma * sigma * sd2);
}

/** w(σ) = 1: every noise level counts the same. */
export const uniformWeight: Weighting = () => 1;

/**
 * w(σ) = σ²: turns a difference of scores into a difference of denoisers,
 * σ²·(s_p − s_q) = D_p − D_q (Tweedie, eq. (B.2)). The project's default for Diff-Instruct.
 */
export const sigma2Weight: Weighting = (sigma) => sigma * sigma;

/**
 * The weighting of the example in Appendix A.1 (below eq. (A.4)), a function of the time t of the
 * Brownian motion (A.3): w(t) = t for t ≤ 1, 1/t for t ≥ 1. It keeps ∫ w(t)/(2t) dt finite, so the IKL
 * of two distributions with disjoint supports is finite.
 */
export const a1Weight = (t: number): number => (t <= 1 ? t : 1 / t);
