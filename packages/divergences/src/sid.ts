import * as tf from '@tensorflow/tfjs';
import { perSample } from '@diff-instruct/sde';

import { dmdNormaliser, iklWeights, type IklSurrogateArgs, type IklWeighting } from './ikl.js';
import { checkBatch } from './validate.js';

/** Arguments of {@link sidLoss}: those of `iklSurrogate`, plus SiD's α. */
export interface SidLossArgs extends IklSurrogateArgs {
  /** SiD's α; 1.2, the value of Zhou et al. (2024) for every data set. */
  alpha?: number;
  /**
   * The weight of each sample, held constant (no gradient), named as in `iklSurrogate` so that
   * the two objectives share one setting: a weighting w(σ) of scores becomes the factor w(σ)/σ² on
   * the product of denoiser differences below, so that the `x_g` term of the gradient is exactly
   * `iklSurrogate`'s gradient under the same weighting.
   * - `'dmd'` (SiD's own, the default here): 1 / mean_dims|x_g − f_T| per sample, the DMD normaliser;
   * - `'sigma2'`: factor 1, the plain product of denoiser differences (Diff-Instruct's default);
   * - `'uniform'`, `'edm'` and functions of σ as in `iklSurrogate`.
   */
  weighting?: IklWeighting;
}

/**
 * The generator loss of Score identity Distillation (SiD; Zhou et al., ICML 2024: the generator
 * update of its Algorithm 1, with its α), per sample with x_t = x_g + σ·n, f_T = D_teacher(x_t, σ),
 * f_F = D_fake(x_t, σ):
 *
 *   L = (1/N) Σ_i c_i · Σ_dims (f_T − f_F) ⊙ ((f_T − x_g) − α (f_T − f_F)),   c_i = w(σ_i)/σ_i²
 *
 * (c_i = 1 / mean|x_g − f_T| for SiD's own `'dmd'` weighting). Unlike `iklSurrogate`, this is a real
 * loss: the gradient flows into x_g directly and through x_t into **both denoisers' inputs** (their
 * Jacobians ∂f/∂x_t enter); the denoisers' weights get no gradient unless the caller asks for them
 * (`tf.variableGrads(f, generatorVars)`), and c_i is a constant.
 *
 * Where it comes from, and what it drops. SiD starts from the model-based Fisher divergence
 * L₁ = E_{x_t∼q_θ,σ}‖f_T(x_t) − f_θ(x_t)‖² (times c), where f_θ(x_t) = E[x_g | x_t] is the exact
 * denoiser of the generator's own diffused distribution q_θ,σ. The score identity
 * E[(f_T − f_θ)ᵀ(f_θ − x_g)] = 0 (Tweedie: f_θ is the conditional mean of x_g) gives a second form
 * with the same value, L₂ = E[(f_T − f_θ)ᵀ(f_T − x_g)], and SiD's loss is L₂ − α·L₁ (the expression
 * above), whose value is (1 − α)·L₁ at the exact f_θ but whose stop-gradient gradient is what
 * matters (α = 1.2 beat α ∈ [0, 1] in SiD's ablation). SiD then replaces f_θ by the
 * fake denoiser f_F and differentiates only along the sample path x_g(θ), x_t(θ). The true gradient
 * of L₁ has one more term, E[2(f_θ − f_T)ᵀ ∂f_θ/∂θ |_{x_t fixed}]: how the
 * generator's own optimal denoiser moves when θ moves. Computing it would need the fake network's
 * response to θ (a bilevel gradient); SiD drops it, as Diff-Instruct drops the corresponding term of
 * the IKL, and relies on the fake score being refitted after every generator step. The x_g term
 * of the gradient, −c(f_T − f_F), is Diff-Instruct's (3.2) under the same weighting; the Jacobian
 * terms through x_t are what SiD adds.
 */
export function sidLoss(args: SidLossArgs): tf.Scalar {
  const { x0, sigma, noise, teacher, fake, label } = args;
  const alpha = args.alpha ?? 1.2;
  const weighting = args.weighting ?? 'dmd';
  const sigmaData = args.sigmaData ?? 0.5;
  if (!Number.isFinite(alpha)) throw new Error(`sidLoss: alpha must be a finite number, got ${alpha}`);
  const n = checkBatch('sidLoss', { x0, sigma, noise, label });
  return tf.tidy(() => {
    const s = perSample(sigma, x0.rank);
    const xt = tf.add(x0, tf.mul(s, noise));
    const fT = teacher(xt, sigma, label);
    const fF = fake(xt, sigma, label);
    const sig = sigma.dataSync() as Float32Array;
    const dmdScale = weighting === 'dmd' ? dmdNormaliser(x0, fT) : undefined;
    const factor = iklWeights(weighting, sig, sigmaData, dmdScale).map((w, i) => w / (sig[i]! * sig[i]!));
    const c = perSample(factor, x0.rank);
    const d = tf.sub(fT, fF);
    const per = tf.mul(d, tf.sub(tf.sub(fT, x0), tf.mul(alpha, d)));
    return tf.div(tf.sum(tf.mul(c, per)), n) as tf.Scalar;
  });
}
