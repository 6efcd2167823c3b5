import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';

import { conv2d } from './ops.js';
import { createGenerator } from './model.js';
import { saveModel, loadGenerator } from './node.js';
import { countParams, type Params } from './params.js';
import { STYLEGAN2_PRESETS, describeModel, stylegan2Preset } from './presets.js';
import {
  type StyleGan2DiscriminatorConfig,
  type StyleGan2GeneratorConfig,
  initStyleGan2Discriminator,
  initStyleGan2Generator,
  minibatchStd,
  modulatedConv,
  stylegan2Discriminator,
  stylegan2Generator,
  stylegan2LatentSize,
} from './stylegan2.js';

const gen = (over: Partial<StyleGan2GeneratorConfig> = {}): StyleGan2GeneratorConfig => ({
  kind: 'stylegan2',
  resolution: 8,
  channels: 1,
  latentDim: 6,
  wDim: 8,
  mappingLayers: 2,
  mappingLrMultiplier: 0.01,
  channelsAt: [8, 4],
  numClasses: 0,
  ...over,
});
const disc = (over: Partial<StyleGan2DiscriminatorConfig> = {}): StyleGan2DiscriminatorConfig => ({
  kind: 'stylegan2-discriminator',
  resolution: 8,
  channels: 1,
  channelsAt: [4, 8],
  mbstdGroup: 2,
  numClasses: 0,
  cmapDim: 4,
  ...over,
});
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const labels = (ks: number[], k = 3) => tf.oneHot(tf.tensor1d(ks, 'int32'), k) as tf.Tensor2D;
/** The params with one entry replaced by a tensor (to differentiate with respect to it). */
const withParam = (params: Params, name: string, t: tf.Tensor): Params => ({ ...params, [name]: t as tf.Variable });

describe('StyleGAN2 generator', () => {
  it('maps a standard-normal latent (style + one noise map per conv layer) to images, deterministically', () => {
    const c = gen();
    // 6 style dims + noise maps 4² (4×4 conv) + 2·8² (8×8 up-conv and conv)
    expect(stylegan2LatentSize(c)).toBe(6 + 16 + 128);
    const params = initStyleGan2Generator(c, new Rng(0), 'gen');
    const g = stylegan2Generator(c, params, 'gen');
    const z = new Rng(1).normalTensor([3, stylegan2LatentSize(c)]);
    const x = g(z);
    expect(x.shape).toEqual([3, 8, 8, 1]);
    expect(maxAbsDiff(x, g(z))).toBe(0);
    // the noise part of the latent changes the image, through the learned noise strengths
    tf.tidy(() => params['gen.synthesis.b8.conv1.noise_strength']!.assign(tf.fill([1], 0.5)));
    const z2 = tf.concat([tf.slice(z, [0, 0], [3, 6]), tf.zeros([3, 144])], 1);
    expect(maxAbsDiff(g(z), g(z2))).toBeGreaterThan(1e-3);
    expect(() => g(tf.zeros([2, 10]))).toThrow(/expected z of shape \[N, 150\]/);
    expect(() => g(z, labels([0, 1, 2]))).toThrow(/unconditional/);
  });

  it("output 'tanh' squashes the same image into (−1, 1); other values are refused", () => {
    const params = initStyleGan2Generator(gen(), new Rng(0), 'gen');
    const z = new Rng(1).normalTensor([3, stylegan2LatentSize(gen())]);
    const linear = stylegan2Generator(gen(), params, 'gen')(z);
    const squashed = stylegan2Generator(gen({ output: 'tanh' }), params, 'gen')(z);
    expect(maxAbsDiff(squashed, tf.tanh(linear))).toBeLessThan(1e-6);
    expect(maxAbsDiff(linear, stylegan2Generator(gen({ output: 'linear' }), params, 'gen')(z))).toBe(0);
    expect(Math.max(...Array.from(linear.dataSync()).map(Math.abs))).toBeGreaterThan(1); // so tanh matters here
    expect(() => initStyleGan2Generator(gen({ output: 'sigmoid' as 'tanh' }), new Rng(0), 'gen')).toThrow(/output must be 'linear' or 'tanh', got "sigmoid"/);
  });

  it('is conditional through a label embedding, and counts its parameters', () => {
    const c = gen({ numClasses: 3 });
    const params = initStyleGan2Generator(c, new Rng(0), 'gen');
    const g = stylegan2Generator(c, params, 'gen');
    const z = tf.tile(new Rng(2).normalTensor([1, stylegan2LatentSize(c)]), [3, 1]);
    const x = g(z, labels([0, 1, 2]));
    expect(maxAbsDiff(tf.slice(x, [0], [1]), tf.slice(x, [1], [1]))).toBeGreaterThan(1e-4);
    expect(() => g(z)).toThrow(/conditional \(3 classes\): pass a one-hot label/);
    // embed 3·8; mapping (6+8)·8+8, 8·8+8; const 4·4·8; three modulated 3×3 convs and two toRGB
    const mod = (cin: number, cout: number, k: number, noise: boolean) => 8 * cin + cin + k * k * cin * cout + cout + (noise ? 1 : 0);
    const expected = 24 + (14 * 8 + 8) + (8 * 8 + 8) + 128 + mod(8, 8, 3, true) + mod(8, 4, 3, true) + mod(4, 4, 3, true) + mod(8, 1, 1, false) + mod(4, 1, 1, false);
    expect(countParams(params)).toBe(expected);
  });

  it('modulated convolution with demodulation equals a convolution with per-sample demodulated weights', () => {
    const x = new Rng(3).normalTensor([2, 5, 5, 3]) as tf.Tensor4D;
    const styles = tf.add(new Rng(4).normalTensor([2, 3]), 1) as tf.Tensor2D;
    const weight = new Rng(5).normalTensor([3, 3, 3, 4]) as tf.Tensor4D;
    const ours = modulatedConv(x, styles, weight, true);
    const perSample = [0, 1].map((i) => {
      const w = tf.mul(tf.mul(weight, 1 / Math.sqrt(27)), styles.slice([i, 0], [1, 3]).reshape([1, 1, 3, 1]));
      const d = tf.div(1, tf.sqrt(tf.add(tf.sum(tf.square(w), [0, 1, 2]), 1e-8)));
      return conv2d(x.slice([i], [1]) as tf.Tensor4D, tf.mul(w, d) as tf.Tensor4D);
    });
    expect(maxAbsDiff(ours, tf.concat(perSample, 0))).toBeLessThan(tol(1e-5));
  });

  it('has gradients that match finite differences (latent, a style weight, a conv weight)', () => {
    const c = gen({ numClasses: 2 });
    const params = initStyleGan2Generator(c, new Rng(6), 'gen');
    const z = new Rng(7).normalTensor([2, stylegan2LatentSize(c)]);
    const label = labels([1, 0], 2);
    const r = new Rng(8).normalTensor([2, 8, 8, 1]);
    const loss = (ps: Params, zz: tf.Tensor) => tf.sum(tf.mul(stylegan2Generator(c, ps, 'gen')(zz, label), r)) as tf.Scalar;
    expect(gradCheck((zz) => loss(params, zz), [z], { eps: 1e-2, probes: 24 }).maxRelError).toBeLessThan(tol(5e-3));
    // eps 1e-3: a difference over ±1e-2 can straddle a leaky-ReLU kink (seen: 1.7e-2 on one probe);
    // float32 differences over ±1e-3 are good to about 1e-2
    for (const name of ['gen.synthesis.b8.conv0.affine.weight', 'gen.synthesis.b8.conv1.weight', 'gen.mapping.fc0.weight', 'gen.synthesis.b4.torgb.weight']) {
      const f = (t: tf.Tensor) => loss(withParam(params, name, t), z);
      expect(gradCheck(f, [params[name]!], { eps: 1e-3, probes: 12 }).maxRelError, name).toBeLessThan(tol(1e-2));
    }
  });
});

describe('StyleGAN2 discriminator', () => {
  it('minibatch std appends the mean over features of the std over each group', () => {
    const x = new Rng(9).normalTensor([4, 2, 2, 3]) as tf.Tensor4D;
    const y = minibatchStd(x, 2);
    expect(y.shape).toEqual([4, 2, 2, 4]);
    // groups are samples {0, 2} and {1, 3} (the group axis is outermost, as in StyleGAN2)
    const v = x.arraySync() as number[][][][];
    const groupStd = (a: number, b: number) => {
      let s = 0;
      for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 3; k++) {
        const m = (v[a]![i]![j]![k]! + v[b]![i]![j]![k]!) / 2;
        s += Math.sqrt(((v[a]![i]![j]![k]! - m) ** 2 + (v[b]![i]![j]![k]! - m) ** 2) / 2 + 1e-8);
      }
      return s / 12;
    };
    const feat = (y.slice([0, 0, 0, 3], [4, 1, 1, 1]).dataSync() as Float32Array);
    expect(feat[0]).toBeCloseTo(groupStd(0, 2), 5);
    expect(feat[2]).toBeCloseTo(groupStd(0, 2), 5);
    expect(feat[1]).toBeCloseTo(groupStd(1, 3), 5);
    expect(() => minibatchStd(tf.zeros([6, 2, 2, 1]) as tf.Tensor4D, 4)).toThrow(/batch \(6\) must be a multiple of the group size 4/);
  });

  it('maps images to one logit each; conditional by projection', () => {
    const c = disc({ numClasses: 3 });
    const params = initStyleGan2Discriminator(c, new Rng(10), 'disc');
    const d = stylegan2Discriminator(c, params, 'disc');
    const x = new Rng(11).normalTensor([4, 8, 8, 1]) as tf.Tensor4D;
    const out = d(x, labels([0, 1, 2, 0]));
    expect(out.shape).toEqual([4]);
    expect(maxAbsDiff(out, d(x, labels([1, 1, 2, 0])))).toBeGreaterThan(1e-6);
    expect(() => d(x)).toThrow(/conditional \(3 classes\)/);
    expect(() => d(tf.zeros([4, 4, 4, 1]) as tf.Tensor4D, labels([0, 1, 2, 0]))).toThrow(/expected x of shape \[N, 8, 8, 1\]/);
  });

  it('has first-order gradients and R1 (second-order) gradients that match finite differences', () => {
    const c = disc();
    const params = initStyleGan2Discriminator(c, new Rng(12), 'disc');
    const x = new Rng(13).normalTensor([2, 8, 8, 1]) as tf.Tensor4D;
    const d = (ps: Params, xx: tf.Tensor) => tf.sum(stylegan2Discriminator(c, ps, 'disc')(xx as tf.Tensor4D)) as tf.Scalar;
    expect(gradCheck((xx) => d(params, xx), [x], { eps: 1e-3, probes: 16 }).maxRelError).toBeLessThan(tol(1e-2));
    // R1 = ‖∇ₓ D(x)‖²: its gradient with respect to the weights goes through ∇ₓ D (second order).
    // ∇ₓ D jumps where a pre-activation crosses a leaky-ReLU kink, so the difference step is small
    // (at ±1e-2 one probe in ten crossed one, error 0.47; at ±1e-3 all were within 7e-3).
    const r1 = (ps: Params) => tf.sum(tf.square(tf.grad((xx: tf.Tensor) => d(ps, xx))(x))) as tf.Scalar;
    for (const name of ['disc.b8.conv0.weight', 'disc.b4.conv.weight', 'disc.b4.fc.weight', 'disc.fromrgb.bias']) {
      const f = (t: tf.Tensor) => r1(withParam(params, name, t));
      expect(gradCheck(f, [params[name]!], { eps: 1e-3, probes: 10 }).maxRelError, name).toBeLessThan(tol(1e-2));
    }
  });
});

describe('StyleGAN2 presets and files', () => {
  it('the MNIST preset pair has the documented sizes, and the generator is a GeneratorModel that saves and loads', () => {
    const { generator, discriminator } = stylegan2Preset('mnist-stylegan2');
    expect(describeModel(generator)).toMatch(/^StyleGAN2 generator 32×32×1, .*: 773,547 parameters$/);
    expect(countParams(initStyleGan2Discriminator(discriminator, null, 'disc'))).toBe(871_521);
    expect(STYLEGAN2_PRESETS['mnist-stylegan2'].generator.channelsAt).toEqual([128, 128, 64, 32]);
    const small = gen({ numClasses: 2 });
    const g = createGenerator(small, new Rng(20));
    expect(g.latentShape).toEqual([stylegan2LatentSize(small)]);
    expect(g.outputShape).toEqual([8, 8, 1]);
    const file = join(mkdtempSync(join(tmpdir(), 'sg2-')), 'g.safetensors');
    saveModel(file, g);
    const back = loadGenerator(file);
    const z = new Rng(21).normalTensor([2, stylegan2LatentSize(small)]);
    expect(maxAbsDiff(g.generate(z, labels([0, 1], 2)), back.generate(z, labels([0, 1], 2)))).toBe(0);
    expect(() => createGenerator({ ...small, channelsAt: [8] }, new Rng(0))).toThrow(/channelsAt needs 2 positive integers/);
  });
});
