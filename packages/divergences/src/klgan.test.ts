import * as tf from '@tensorflow/tfjs';
import { GaussianMixture, Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { iklSurrogate } from './ikl.js';

/**
 * Corollary 3.5: a KL-GAN — a generator trained against the exact density-ratio discriminator
 * D(x) = log q(x) − log p(x), held fixed — gets the gradient E[(∇log q − ∇log p)(g_θ(z))·∂g/∂θ],
 * which is Diff-Instruct's gradient (3.2) with all of the weight w(t) at t = 0.
 */
describe('KL-GAN is Diff-Instruct with the weight at t = 0 (Corollary 3.5)', () => {
  // the teacher p: a two-component mixture in 2-D; the generator g_θ(z) = μ + a·z, so q = N(μ, a²I)
  const p = new GaussianMixture([
    { mean: [1, -0.5], std: 0.6, weight: 2 },
    { mean: [-1.2, 0.8], std: 0.4, weight: 1 },
  ]);
  const mu0 = [0.3, 0.2];
  const a0 = 0.7;
  const n = 256;
  const z = new Rng(5).normalTensor([n, 2]);
  const generate = (mu: tf.Tensor, a: tf.Tensor) => tf.add(mu, tf.mul(a, z)) as tf.Tensor2D;

  it('the generator gradients (μ and a) agree', () => {
    const mu = tf.tensor1d(mu0);
    const a = tf.scalar(a0);
    // KL-GAN: ∇θ E_z[D(g_θ(z))] with D = log q − log p at the current θ, a fixed function
    const q = new GaussianMixture([{ mean: mu0, std: a0, weight: 1 }]);
    const ratio = (x: tf.Tensor2D) => tf.sub(q.logProb(x), p.logProb(x));
    const [gMuGan, gAGan] = tf.grads((m: tf.Tensor, s: tf.Tensor) => tf.mean(ratio(generate(m, s))))([mu, a]);
    // Diff-Instruct at t → 0: both scores exact (q's is the fake score's optimum), no noise, σ = 0.01
    const sigma = tf.fill([n], 0.01) as tf.Tensor1D;
    const noise = tf.zeros([n, 2]);
    const di = (m: tf.Tensor, s: tf.Tensor) => iklSurrogate({ x0: generate(m, s), sigma, noise, teacher: p.denoiser, fake: q.denoiser, weighting: 'uniform' });
    const [gMuDi, gADi] = tf.grads(di)([mu, a]);
    const gan = [...gMuGan!.dataSync(), ...gAGan!.dataSync()];
    const ours = [...gMuDi!.dataSync(), ...gADi!.dataSync()];
    // σ = 0.01 moves each score by O(σ²) ≈ 1e-4 relative; float32 differences D − x of size σ² cost ~1e-3
    gan.forEach((g, i) => expect(Math.abs(g - ours[i]!)).toBeLessThan(1e-2 * Math.max(1, Math.abs(g))));
    // and the gradient is not trivially small: q is far from p
    expect(Math.hypot(...gan)).toBeGreaterThan(0.1);
  });

  it('with the weight spread over t, the gradient differs (the correspondence is specific to t = 0)', () => {
    const mu = tf.tensor1d(mu0);
    const a = tf.scalar(a0);
    const q = new GaussianMixture([{ mean: mu0, std: a0, weight: 1 }]);
    const atSigma = (s: number) => {
      const di = (m: tf.Tensor, sc: tf.Tensor) =>
        iklSurrogate({ x0: generate(m, sc), sigma: tf.fill([n], s) as tf.Tensor1D, noise: tf.zeros([n, 2]), teacher: p.denoiser, fake: q.denoiser, weighting: 'uniform' });
      return tf.grads(di)([mu, a]).flatMap((g) => Array.from(g.dataSync()));
    };
    const small = atSigma(0.01);
    const large = atSigma(1.5);
    expect(Math.hypot(...small.map((g, i) => g - large[i]!))).toBeGreaterThan(0.1 * Math.hypot(...small));
  });
});
