import * as tf from '@tensorflow/tfjs';

import type { Rng } from './rng.js';
import type { Denoiser } from './types.js';

/** One isotropic Gaussian component N(mean, std² I) with a mixture weight. */
export interface MixtureComponent {
  mean: number[];
  std: number;
  weight: number;
}

/**
 * An isotropic Gaussian mixture p(x) = Σ_k π_k N(x; μ_k, s_k² I), with everything that a diffusion
 * model needs in closed form: exact sampling, log-density, the score, and the exact denoiser of the
 * diffused mixture p_σ = p ∗ N(0, σ² I) = Σ_k π_k N(μ_k, (s_k² + σ²) I),
 *   D(x; σ) = E[x0 | x] = Σ_k r_k(x) (s_k² x + σ² μ_k)/(s_k² + σ²),
 * where r_k are the posterior responsibilities. Used as a target with a known density and as the
 * "perfect teacher" in tests.
 */
export class GaussianMixture {
  readonly dim: number;
  readonly components: readonly MixtureComponent[];

  constructor(components: MixtureComponent[]) {
    if (components.length === 0) throw new Error('GaussianMixture: at least one component is needed');
    const dim = components[0]!.mean.length;
    let total = 0;
    for (const c of components) {
      if (c.mean.length !== dim) throw new Error('GaussianMixture: all means must have the same dimension');
      if (!(c.std > 0)) throw new Error(`GaussianMixture: std must be > 0, got ${c.std}`);
      if (!(c.weight > 0)) throw new Error(`GaussianMixture: weight must be > 0, got ${c.weight}`);
      total += c.weight;
    }
    this.dim = dim;
    this.components = components.map((c) => ({ ...c, weight: c.weight / total }));
  }

  /** `n` exact samples as an [n, dim] Float32Array (row-major). */
  sample(rng: Rng, n: number): Float32Array {
    const out = new Float32Array(n * this.dim);
    const cdf: number[] = [];
    let acc = 0;
    for (const c of this.components) cdf.push((acc += c.weight));
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      let k = cdf.findIndex((v) => u < v);
      if (k < 0) k = this.components.length - 1;
      const c = this.components[k]!;
      const e = rng.normal(this.dim);
      for (let d = 0; d < this.dim; d++) out[i * this.dim + d] = c.mean[d]! + c.std * e[d]!;
    }
    return out;
  }

  /** Log-density of the mixture diffused to noise level σ (σ = 0: the mixture itself), per row. */
  logProb(x: tf.Tensor2D, sigma = 0): tf.Tensor1D {
    return tf.tidy(() => tf.logSumExp(this.logJoint(x, sigma), 1) as tf.Tensor1D);
  }

  /** The exact denoiser of the diffused mixture. `sigma` per sample, as every denoiser. */
  readonly denoiser: Denoiser = (x, sigma) =>
    tf.tidy(() => {
      const x2 = x.reshape([x.shape[0]!, this.dim]) as tf.Tensor2D;
      const s2 = tf.square(sigma).reshape([-1, 1]); // [N,1]
      const joint = this.componentLogJoint(x2, s2); // [N,K]
      const r = tf.softmax(joint, 1); // responsibilities
      let out: tf.Tensor = tf.zerosLike(x2);
      this.components.forEach((c, k) => {
        const v = c.std * c.std;
        const mu = tf.tensor1d(c.mean);
        // (v x + σ² μ) / (v + σ²)
        const mean = tf.div(tf.add(tf.mul(x2, v), tf.mul(s2, mu)), tf.add(s2, v));
        out = tf.add(out, tf.mul(r.slice([0, k], [-1, 1]), mean));
      });
      return out.reshape(x.shape);
    });

  /** The exact score ∇ log p_σ(x) = (D(x; σ) − x)/σ² for σ > 0; at σ = 0 the mixture's own score. */
  score(x: tf.Tensor2D, sigma: number): tf.Tensor2D {
    return tf.tidy(() => {
      if (sigma > 0) {
        const d = this.denoiser(x, tf.fill([x.shape[0]], sigma) as tf.Tensor1D);
        return tf.div(tf.sub(d, x), sigma * sigma) as tf.Tensor2D;
      }
      const r = tf.softmax(this.logJoint(x, 0), 1);
      let out: tf.Tensor = tf.zerosLike(x);
      this.components.forEach((c, k) => {
        const g = tf.div(tf.sub(tf.tensor1d(c.mean), x), c.std * c.std);
        out = tf.add(out, tf.mul(r.slice([0, k], [-1, 1]), g));
      });
      return out as tf.Tensor2D;
    });
  }

  private logJoint(x: tf.Tensor2D, sigma: number): tf.Tensor2D {
    return this.componentLogJoint(x, tf.fill([x.shape[0], 1], sigma * sigma));
  }

  /** log π_k + log N(x; μ_k, (s_k² + σ²) I), shape [N, K]. */
  private componentLogJoint(x: tf.Tensor2D, s2: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const cols = this.components.map((c) => {
        const v = tf.add(s2, c.std * c.std); // [N,1]
        const d2 = tf.sum(tf.square(tf.sub(x, tf.tensor1d(c.mean))), 1, true); // [N,1]
        return tf.sub(
          tf.scalar(Math.log(c.weight)),
          tf.add(tf.div(d2, tf.mul(v, 2)), tf.mul(tf.log(tf.mul(v, 2 * Math.PI)), this.dim / 2)),
        );
      });
      return tf.concat(cols, 1) as tf.Tensor2D;
    });
  }
}
