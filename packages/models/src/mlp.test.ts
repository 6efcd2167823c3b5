import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { type Denoiser, GaussianMixture, Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';

import type { EdmDenoiserConfig, MlpGeneratorConfig, MlpScoreConfig } from './config.js';
import { mlpScore } from './mlp.js';
import { createDenoiser, createGenerator } from './model.js';
import { countParams, disposeModel } from './params.js';
import { edmPrecond } from './precond.js';

const config = (over: Partial<MlpScoreConfig> = {}): EdmDenoiserConfig & { net: MlpScoreConfig } => ({
  kind: 'edm',
  sigmaData: 1,
  net: { kind: 'mlp', dim: 2, hidden: [32, 32], embedDim: 16, numClasses: 0, ...over },
});
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('createDenoiser (MLP, EDM preconditioning)', () => {
  it('names its parameters after the layers and maps [N, dim] to [N, dim]', () => {
    const m = createDenoiser(config({ numClasses: 3 }), new Rng(0));
    expect(Object.keys(m.params)).toEqual([
      'net.map_label.weight',
      'net.map_layer0.weight',
      'net.map_layer0.bias',
      'net.map_layer1.weight',
      'net.map_layer1.bias',
      'net.layers.0.weight',
      'net.layers.0.bias',
      'net.layers.0.emb.weight',
      'net.layers.1.weight',
      'net.layers.1.bias',
      'net.layers.1.emb.weight',
      'net.out.weight',
      'net.out.bias',
    ]);
    expect(m.params['net.layers.0.weight']!.shape).toEqual([2, 32]);
    expect(m.params['net.map_label.weight']!.shape).toEqual([3, 16]);
    expect(countParams(m.params)).toBe(3 * 16 + 2 * (16 * 16 + 16) + (2 * 32 + 32 + 16 * 32) + (32 * 32 + 32 + 16 * 32) + (32 * 2 + 2));
    const x = tf.ones([5, 2]);
    const out = m.denoise(x, tf.fill([5], 0.7) as tf.Tensor1D, tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1], 'int32'), 3) as tf.Tensor2D);
    expect(out.shape).toEqual([5, 2]);
    expect(values(out).every(Number.isFinite)).toBe(true);
    disposeModel(m);
  });

  it('is deterministic given the seed, and different for another seed', () => {
    const x = new Rng(1).normalTensor([4, 2]);
    const s = tf.tensor1d([0.01, 0.3, 2, 40]);
    const run = (seed: number) => {
      const m = createDenoiser(config(), new Rng(seed));
      const out = values(m.denoise(x, s));
      disposeModel(m);
      return out;
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  it('uses the label, and an all-zero label is the unconditional model', () => {
    const m = createDenoiser(config({ numClasses: 2 }), new Rng(2));
    const x = new Rng(3).normalTensor([2, 2]);
    const s = tf.tensor1d([1, 1]);
    const a = values(m.denoise(x, s, tf.tensor2d([[1, 0], [1, 0]])));
    const b = values(m.denoise(x, s, tf.tensor2d([[0, 1], [0, 1]])));
    const none = values(m.denoise(x, s));
    const zero = values(m.denoise(x, s, tf.zeros([2, 2]) as tf.Tensor2D));
    expect(a).not.toEqual(b);
    expect(zero).toEqual(none);
    expect(() => createDenoiser(config(), new Rng(0)).denoise(x, s, tf.tensor2d([[1, 0], [1, 0]]))).toThrow(/unconditional/);
  });

  it('has gradients wrt its weights and its input that match finite differences', () => {
    const cfg = config({ numClasses: 2 });
    const m = createDenoiser(cfg, new Rng(4));
    const x = new Rng(5).normalTensor([3, 2]);
    const s = tf.tensor1d([0.2, 1, 5]);
    const label = tf.tensor2d([[1, 0], [0, 1], [0, 0]]);
    const names = ['net.map_label.weight', 'net.map_layer0.weight', 'net.layers.0.weight', 'net.layers.1.emb.weight', 'net.out.bias'];
    // the denoiser as a function of (x, some weights); the other weights stay the model's variables
    const f = (xx: tf.Tensor, ...ws: tf.Tensor[]) => {
      const p = { ...m.params };
      names.forEach((n, i) => (p[n] = ws[i] as tf.Variable));
      const D = edmPrecond(mlpScore(cfg.net, p, 'net'), cfg.sigmaData);
      return tf.sum(tf.square(D(xx, s, label))) as tf.Scalar;
    };
    const inputs = [x, ...names.map((n) => m.params[n]!.clone())];
    expect(gradCheck(f, inputs, { eps: 1e-2, probes: 6 }).maxRelError).toBeLessThan(tol(5e-3));
    // and the gradients an optimiser sees (wrt the variables) are the same
    const { grads } = tf.variableGrads(() => f(x, ...inputs.slice(1).map((_, i) => m.params[names[i]!]!)), names.map((n) => m.params[n]!));
    const direct = tf.grads(f)(inputs);
    names.forEach((n, i) => expect(values(grads[m.params[n]!.name]!)).toEqual(values(direct[i + 1]!)));
    disposeModel(m);
  });

  it('has correct second-order gradients: ‖∇ₓ D‖² differentiated wrt a weight (an R1-style penalty)', () => {
    const cfg = config({ numClasses: 2 });
    const m = createDenoiser(cfg, new Rng(8));
    const x = new Rng(9).normalTensor([3, 2]);
    const s = tf.tensor1d([0.2, 1, 5]);
    const label = tf.tensor2d([[1, 0], [0, 1], [0, 0]]);
    const name = 'net.layers.0.weight';
    // the network as a function of one weight tensor (the others stay the model's variables)
    const r1 = (w: tf.Tensor) => {
      const D = edmPrecond(mlpScore(cfg.net, { ...m.params, [name]: w as tf.Variable }, 'net'), cfg.sigmaData);
      const gx = tf.grad((xx: tf.Tensor) => tf.sum(D(xx, s, label)))(x);
      return tf.sum(tf.square(gx)) as tf.Scalar;
    };
    const r = gradCheck(r1, [m.params[name]!.clone()], { eps: 1e-2, probes: 8 });
    expect(r.maxRelError).toBeLessThan(tol(2e-4)); // ~2e-5; with a plain x·sigmoid(x) SiLU ~8e-4
    disposeModel(m);
  });

  it('learns: a few Adam steps on a 2-D mixture reduce the denoising score matching loss', () => {
    const target = new GaussianMixture([
      { mean: [1, 1], std: 0.1, weight: 1 },
      { mean: [-1, 1], std: 0.1, weight: 1 },
      { mean: [1, -1], std: 0.1, weight: 1 },
      { mean: [-1, -1], std: 0.1, weight: 1 },
    ]);
    const sigmaData = 1;
    const m = createDenoiser({ ...config(), sigmaData }, new Rng(10));
    const rng = new Rng(11);
    // EDM loss: σ = exp(P_mean + P_std·n), λ(σ) = (σ² + σ_d²)/(σ·σ_d)², E λ‖D(x + σε; σ) − x‖²
    const draw = (n: number) => {
      const x = tf.tensor2d(target.sample(rng, n), [n, 2]);
      const sigma = tf.exp(tf.add(-1.2, tf.mul(1.2, rng.normalTensor([n])))) as tf.Tensor1D;
      const eps = rng.normalTensor([n, 2]);
      return { x, sigma, eps };
    };
    const loss = (D: Denoiser, b: ReturnType<typeof draw>) =>
      tf.tidy(() => {
        const s2 = tf.square(b.sigma);
        const weight = tf.div(tf.add(s2, sigmaData ** 2), tf.mul(s2, sigmaData ** 2)).reshape([-1, 1]);
        const err = tf.sub(D(tf.add(b.x, tf.mul(b.sigma.reshape([-1, 1]), b.eps)), b.sigma), b.x);
        return tf.mean(tf.mul(weight, tf.square(err))) as tf.Scalar;
      });
    const evalBatch = draw(4096);
    const before = loss(m.denoise, evalBatch).dataSync()[0]!;
    const floor = loss(target.denoiser, evalBatch).dataSync()[0]!;
    const opt = tf.train.adam(3e-3);
    for (let step = 0; step < 300; step++) {
      const b = draw(256);
      opt.minimize(() => loss(m.denoise, b));
      tf.dispose([b.x, b.sigma, b.eps]);
    }
    const after = loss(m.denoise, evalBatch).dataSync()[0]!;
    // closes most of the gap to the exact denoiser's loss
    expect(after).toBeLessThan(before);
    expect(after - floor).toBeLessThan(0.3 * (before - floor));
    opt.dispose();
    disposeModel(m);
  });

  it('does not leak tensors over repeated forward and backward passes', () => {
    const m = createDenoiser(config({ numClasses: 2 }), new Rng(0));
    const x = new Rng(1).normalTensor([8, 2]);
    const s = tf.fill([8], 0.5) as tf.Tensor1D;
    const label = tf.oneHot(tf.zeros([8], 'int32'), 2) as tf.Tensor2D;
    const opt = tf.train.sgd(1e-3);
    const step = () => {
      tf.dispose(m.denoise(x, s, label));
      opt.minimize(() => tf.sum(tf.square(m.denoise(x, s, label))) as tf.Scalar);
      tf.dispose(tf.grad((xx: tf.Tensor) => tf.sum(m.denoise(xx, s, label)))(x));
    };
    step();
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(n0);
    opt.dispose();
    disposeModel(m);
  });
});

describe('createGenerator (MLP)', () => {
  const gconfig: MlpGeneratorConfig = { kind: 'mlp-generator', latentDim: 3, outDim: 2, hidden: [16, 16], numClasses: 2 };

  it('maps [N, latentDim] to [N, outDim], uses the label, and is deterministic given the seed', () => {
    const g = createGenerator(gconfig, new Rng(1));
    expect(g.latentShape).toEqual([3]);
    expect(g.outputShape).toEqual([2]);
    expect(g.numClasses).toBe(2);
    expect(Object.keys(g.params)).toEqual([
      'gen.layers.0.weight',
      'gen.layers.0.bias',
      'gen.layers.0.label.weight',
      'gen.layers.1.weight',
      'gen.layers.1.bias',
      'gen.layers.1.label.weight',
      'gen.out.weight',
      'gen.out.bias',
    ]);
    const z = new Rng(2).normalTensor([4, 3]);
    const x = g.generate(z);
    expect(x.shape).toEqual([4, 2]);
    expect(values(g.generate(z, tf.tensor2d([[1, 0], [1, 0], [1, 0], [1, 0]])))).not.toEqual(values(x));
    expect(values(createGenerator(gconfig, new Rng(1)).generate(z))).toEqual(values(x));
    expect(() => g.generate(tf.ones([4, 5]))).toThrow(/expected z of shape \[N, 3\]/);
  });

  it('is differentiable wrt its params (finite differences through the output layer)', () => {
    const g = createGenerator({ ...gconfig, numClasses: 0 }, new Rng(3));
    const z = new Rng(4).normalTensor([5, 3]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(g.generate(z))) as tf.Scalar, [g.params['gen.layers.0.weight']!]);
    const w = g.params['gen.layers.0.weight']!;
    const f = (ww: tf.Tensor) => {
      const keep = w.clone();
      w.assign(ww);
      const v = tf.sum(tf.square(g.generate(z))) as tf.Scalar;
      w.assign(keep);
      return v;
    };
    const base = w.dataSync().slice();
    const at = (d: number) => f(tf.tensor(base.map((v, i) => (i === 4 ? v + d : v)), w.shape)).dataSync()[0]!;
    const num = (at(1e-2) - at(-1e-2)) / 2e-2;
    const ana = grads[w.name]!.dataSync()[4]!;
    expect(Math.abs(num - ana) / Math.max(1, Math.abs(num))).toBeLessThan(tol(1e-2));
  });
});
