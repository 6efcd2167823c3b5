import * as tf from '@tensorflow/tfjs';
import { perSample } from '@diff-instruct/sde';

import { checkBatch } from './validate.js';

/** A discriminator on noised samples: logit(x_t, σ, label) → [N]; > 0 says "real". */
export type NoisyDiscriminator = (xt: tf.Tensor, sigma: tf.Tensor1D, label?: tf.Tensor2D) => tf.Tensor1D;

/** One batch of clean samples with the noise that diffuses them: x_t = x0 + σ·n (VE). */
export interface NoisedBatch {
  /** Clean samples [N, ...dims]. */
  x0: tf.Tensor;
  /** One noise level per sample, [N]. */
  sigma: tf.Tensor1D;
  /** Standard normal noise, the shape of x0. */
  noise: tf.Tensor;
  label?: tf.Tensor2D;
}

/** Arguments of {@link realDataDiscriminatorLoss}. */
export interface RealDataDiscriminatorArgs {
  discriminator: NoisyDiscriminator;
  /** Real samples (from the data set), noised. */
  real: NoisedBatch;
  /** Generated samples, noised; detach them (the generator is not trained by this loss). */
  generated: NoisedBatch;
}

/** Arguments of {@link realDataGeneratorLoss}: the generator's samples and the noise that diffuses them. */
export interface RealDataGeneratorArgs extends NoisedBatch {
  discriminator: NoisyDiscriminator;
}

function logits(op: string, d: NoisyDiscriminator, b: NoisedBatch): tf.Tensor1D {
  const n = checkBatch(op, b);
  const xt = tf.add(b.x0, tf.mul(perSample(b.sigma, b.x0.rank), b.noise));
  const out = d(xt, b.sigma, b.label);
  if (out.rank !== 1 || out.shape[0] !== n) {
    throw new Error(`${op}: the discriminator must return one logit per sample, shape [${n}], got [${out.shape}]`);
  }
  return out;
}

/**
 * The discriminator's loss of the real-data term (DMD2, Yin et al. 2024, §4.3; the logistic loss of
 * a GAN on diffused samples), with x_t = x0 + σ·n for each batch:
 *
 *   L_D = E_real softplus(−D(x_t)) + E_gen softplus(D(x_t))
 *
 * minimised over the discriminator's weights (in DMD2: a head on the fake score's bottleneck and
 * the fake score's encoder, the head's loss added to the fake score's DSM loss). Its minimiser is
 * D*(x_t) = log q_real,σ(x_t) − log q_gen,σ(x_t): the log density ratio of the two diffused
 * distributions, which is what lets the generator's term below pull towards the data rather than
 * towards the teacher alone (Diff-Instruct's §5 asks how to mix in real data; this is one answer).
 */
export function realDataDiscriminatorLoss(args: RealDataDiscriminatorArgs): tf.Scalar {
  return tf.tidy(() => {
    const real = logits('realDataDiscriminatorLoss (real)', args.discriminator, args.real);
    const gen = logits('realDataDiscriminatorLoss (generated)', args.discriminator, args.generated);
    return tf.add(tf.mean(tf.softplus(tf.neg(real))), tf.mean(tf.softplus(gen))) as tf.Scalar;
  });
}

/**
 * The generator's non-saturating term of the real-data loss (DMD2, §4.3):
 *
 *   L_G = E softplus(−D(x_t)),   x_t = x0 + σ·n,  x0 = g_θ(z)
 *
 * Its gradient flows through the discriminator into x_t and so into θ; the discriminator's own
 * weights get none unless the caller asks (`tf.variableGrads(f, generatorVars)`). Non-saturating:
 * ∂L_G/∂D = −sigmoid(−D)/N stays near −1/N where the discriminator rejects the samples (D ≪ 0), so a
 * generator far from the data still gets a gradient, unlike E log(1 − sigmoid(D)).
 */
export function realDataGeneratorLoss(args: RealDataGeneratorArgs): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.softplus(tf.neg(logits('realDataGeneratorLoss', args.discriminator, args)))) as tf.Scalar);
}
