import * as tf from '@tensorflow/tfjs';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { type NoisyDiscriminator, realDataDiscriminatorLoss, realDataGeneratorLoss } from './realData.js';

// 1-D Gaussians: real data N(μ_r, s²) and generated samples N(μ_g, s²). Diffused at σ, both have
// variance v = s² + σ², and the log density ratio is linear: D*(x) = (μ_r − μ_g)/v · (x − (μ_r + μ_g)/2).
const MU_R = 1.0;
const MU_G = -0.5;
const S = 0.7;
const optimalSlope = (sigma: number) => (MU_R - MU_G) / (S * S + sigma * sigma);

function batch(rng: Rng, n: number, mu: number, sigma: number) {
  const x0 = tf.tensor2d(Float32Array.from(rng.normal(n), (v) => mu + S * v), [n, 1]);
  return { x0, sigma: tf.fill([n], sigma) as tf.Tensor1D, noise: rng.normalTensor([n, 1]) };
}

const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe('realDataDiscriminatorLoss', () => {
  it('its value is E_real softplus(−D) + E_gen softplus(D) on the noised samples', () => {
    const rng = new Rng(3);
    const real = batch(rng, 5, MU_R, 0.4);
    const generated = batch(rng, 7, MU_G, 1.5);
    const a = 0.8;
    const b = -0.3;
    const D: NoisyDiscriminator = (xt, sigma) => tf.add(tf.mul(xt.reshape([-1]), a), tf.mul(sigma, b)) as tf.Tensor1D;
    const value = realDataDiscriminatorLoss({ discriminator: D, real, generated }).dataSync()[0]!;
    const xt = (bt: typeof real, s: number) => {
      const x = bt.x0.dataSync();
      const n = bt.noise.dataSync();
      return Array.from(x, (v, i) => a * (v + s * n[i]!) + b * s);
    };
    const lr = xt(real, 0.4);
    const lg = xt(generated, 1.5);
    const expected = lr.reduce((s, l) => s + softplus(-l), 0) / lr.length + lg.reduce((s, l) => s + softplus(l), 0) / lg.length;
    expect(value).toBeCloseTo(expected, 5);
  });

  it('trained on noised real against noised generated Gaussians, its minimiser is the log density ratio', () => {
    // Logistic regression D(x) = a·x + c fitted by full-batch gradient descent on 8,000 samples per
    // side; the closed-form minimiser of the population loss is D*, with slope (μ_r − μ_g)/(s² + σ²).
    for (const sigma of [0.3, 1.2]) {
      const rng = new Rng(11);
      const real = batch(rng, 8000, MU_R, sigma);
      const generated = batch(rng, 8000, MU_G, sigma);
      const a = tf.variable(tf.scalar(0));
      const c = tf.variable(tf.scalar(0));
      const D: NoisyDiscriminator = (xt) => tf.add(tf.mul(xt.reshape([-1]), a), c) as tf.Tensor1D;
      const opt = tf.train.sgd(2);
      for (let i = 0; i < 400; i++) opt.minimize(() => realDataDiscriminatorLoss({ discriminator: D, real, generated }));
      const slope = a.dataSync()[0]!;
      const intercept = c.dataSync()[0]!;
      const k = optimalSlope(sigma);
      expect(Math.abs(slope - k) / k).toBeLessThan(0.06);
      // D*(x) = k·x − k·(μ_r + μ_g)/2
      expect(intercept).toBeCloseTo((-k * (MU_R + MU_G)) / 2, 1);
      tf.dispose([a, c, real.x0, real.sigma, real.noise, generated.x0, generated.sigma, generated.noise]);
      opt.dispose();
    }
  });

  it('says which argument is wrong', () => {
    const rng = new Rng(1);
    const real = batch(rng, 4, MU_R, 1);
    const generated = batch(rng, 4, MU_G, 1);
    const perBatch: NoisyDiscriminator = (xt) => tf.sum(xt).reshape([1]) as tf.Tensor1D;
    expect(() => realDataDiscriminatorLoss({ discriminator: perBatch, real, generated })).toThrow(/one logit per sample, shape \[4\], got \[1\]/);
    const D: NoisyDiscriminator = (xt) => xt.reshape([-1]) as tf.Tensor1D;
    const bad = { ...generated, noise: tf.zeros([4, 2]) };
    expect(() => realDataDiscriminatorLoss({ discriminator: D, real, generated: bad })).toThrow(/\(generated\): noise has shape \[4, 2\] but x0 has shape \[4, 1\]/);
  });
});

describe('realDataGeneratorLoss', () => {
  it('its gradient in x0 is −sigmoid(−D(x_t))·D′(x_t)/N, through the discriminator', () => {
    // A nonlinear discriminator D(x) = tanh(x)·2 + 0.1·x², so that D′ depends on x_t.
    const rng = new Rng(5);
    const N = 6;
    const { x0, sigma, noise } = batch(rng, N, MU_G, 0.5);
    const xVar = tf.variable(x0);
    const D: NoisyDiscriminator = (xt) => {
      const x = xt.reshape([-1]);
      return tf.add(tf.mul(tf.tanh(x), 2), tf.mul(tf.square(x), 0.1)) as tf.Tensor1D;
    };
    const { value, grads } = tf.variableGrads(() => realDataGeneratorLoss({ discriminator: D, x0: xVar, sigma, noise }), [xVar]);
    const xs = x0.dataSync();
    const ns = noise.dataSync();
    let v = 0;
    const g = Array.from(xs, (x, i) => {
      const t = x + 0.5 * ns[i]!;
      const d = 2 * Math.tanh(t) + 0.1 * t * t;
      v += softplus(-d) / N;
      const dPrime = 2 * (1 - Math.tanh(t) ** 2) + 0.2 * t;
      return (-sigmoid(-d) * dPrime) / N;
    });
    expect(value.dataSync()[0]!).toBeCloseTo(v, 5);
    const got = grads[xVar.name]!.dataSync();
    g.forEach((e, i) => expect(got[i]!).toBeCloseTo(e, 5));
  });

  it('is non-saturating: where the discriminator rejects the samples, the gradient per logit stays near −1/N', () => {
    const N = 4;
    const x = tf.variable(tf.zeros([N, 1]));
    const shift = -12; // D ≪ 0: the samples look fake
    const D: NoisyDiscriminator = (xt) => tf.add(xt.reshape([-1]), shift) as tf.Tensor1D;
    const { grads } = tf.variableGrads(
      () => realDataGeneratorLoss({ discriminator: D, x0: x, sigma: tf.fill([N], 1) as tf.Tensor1D, noise: tf.zeros([N, 1]) }),
      [x],
    );
    for (const v of grads[x.name]!.dataSync()) expect(v).toBeCloseTo(-1 / N, 4);
  });

  it('leaves no tensors behind', () => {
    const rng = new Rng(2);
    const b = batch(rng, 8, MU_G, 0.7);
    const D: NoisyDiscriminator = (xt) => tf.sin(xt.reshape([-1])) as tf.Tensor1D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      realDataGeneratorLoss({ discriminator: D, ...b }).dispose();
      realDataDiscriminatorLoss({ discriminator: D, real: b, generated: b }).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
