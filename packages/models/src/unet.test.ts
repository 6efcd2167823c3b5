import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';

import type { EdmDenoiserConfig, UnetConfig } from './config.js';
import { cloneModel, createDenoiser, denoiserFromParams, createGenerator, tweedieGenerator } from './model.js';
import { countParams, disposeModel } from './params.js';
import { UNET_PRESETS, describeModel, paramCountOf, unetPreset } from './presets.js';
import { noiseFeatures } from './mlp.js';
import { groupsFor } from './unet.js';

/** The tiniest UNet that still has every part: two levels, attention, a skip conv, classes. */
const tinyNet = (over: Partial<UnetConfig> = {}): UnetConfig => ({
  kind: 'unet',
  resolution: 8,
  channels: 1,
  modelChannels: 8,
  channelMult: [1, 2],
  numBlocks: 1,
  attnResolutions: [4],
  dropout: 0,
  embedDim: 8,
  numClasses: 3,
  ...over,
});
const tiny = (over: Partial<UnetConfig> = {}): EdmDenoiserConfig & { net: UnetConfig } => ({ kind: 'edm', sigmaData: 0.5, net: tinyNet(over) });
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const labels = (ks: number[], k = 3) => tf.oneHot(tf.tensor1d(ks, 'int32'), k) as tf.Tensor2D;

describe('UNet denoiser', () => {
  it('names its parameters after EDM SongUNet and maps [N, R, R, C] to itself', () => {
    const m = createDenoiser(tiny(), new Rng(0));
    const names = Object.keys(m.params);
    expect(names.slice(0, 7)).toEqual([
      'net.map_label.weight',
      'net.map_layer0.weight',
      'net.map_layer0.bias',
      'net.map_layer1.weight',
      'net.map_layer1.bias',
      'net.enc.8x8_conv.weight',
      'net.enc.8x8_conv.bias',
    ]);
    for (const n of ['net.enc.4x4_down.conv0.weight', 'net.enc.4x4_block0.skip.weight', 'net.enc.4x4_block0.qkv.weight', 'net.dec.4x4_in0.proj.weight']) {
      expect(names).toContain(n);
    }
    expect(names.filter((n) => n.startsWith('net.dec.4x4_in1.qkv'))).toEqual([]);
    expect(names.slice(-4)).toEqual(['net.dec.out_norm.weight', 'net.dec.out_norm.bias', 'net.dec.out_conv.weight', 'net.dec.out_conv.bias']);
    expect(m.params['net.enc.8x8_conv.weight']!.shape).toEqual([3, 3, 1, 8]);
    expect(m.params['net.dec.8x8_block0.conv0.weight']!.shape).toEqual([3, 3, 24, 8]); // 16 from below + an 8-channel skip
    const x = new Rng(1).normalTensor([2, 8, 8, 1]);
    const out = m.denoise(x, tf.tensor1d([0.5, 3]), labels([0, 2]));
    expect(out.shape).toEqual([2, 8, 8, 1]);
    expect(values(out).every(Number.isFinite)).toBe(true);
    expect(() => m.denoise(tf.zeros([2, 8, 8, 3]), tf.tensor1d([1, 1]))).toThrow(/expected x of shape \[N, 8, 8, 1\], got \[2,8,8,3\]/);
    disposeModel(m);
  });

  it('is deterministic given the seed, and different for another seed', () => {
    const x = new Rng(2).normalTensor([2, 8, 8, 1]);
    const s = tf.tensor1d([0.1, 2]);
    const run = (seed: number) => {
      const m = createDenoiser(tiny(), new Rng(seed));
      const out = values(m.denoise(x, s, labels([1, 0])));
      disposeModel(m);
      return out;
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it('uses the label, and an all-zero label is the unconditional model', () => {
    const m = createDenoiser(tiny(), new Rng(5));
    const x = new Rng(6).normalTensor([2, 8, 8, 1]);
    const s = tf.tensor1d([1, 1]);
    const a = m.denoise(x, s, labels([0, 0]));
    const b = m.denoise(x, s, labels([1, 1]));
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-4);
    expect(values(m.denoise(x, s, tf.zeros([2, 3]) as tf.Tensor2D))).toEqual(values(m.denoise(x, s)));
    const unconditional = createDenoiser(tiny({ numClasses: 0 }), new Rng(0));
    expect(() => unconditional.denoise(x, s, labels([0, 1]))).toThrow(/unconditional/);
  });

  it('is preconditioned as EDM: D(x; σ) → x as σ → 0, and starts near c_skip·x', () => {
    const m = createDenoiser(tiny(), new Rng(7));
    const x = new Rng(8).normalTensor([3, 8, 8, 1]);
    const d = m.denoise(x, tf.fill([3], 1e-4) as tf.Tensor1D);
    expect(maxAbsDiff(d, x)).toBeLessThan(tol(1e-3));
    // F starts small (small-init output layer), so D(x; σ) ≈ σ_d²/(σ² + σ_d²)·x
    const sigma = 2;
    const cSkip = 0.25 / (sigma * sigma + 0.25);
    const cOut = (sigma * 0.5) / Math.sqrt(sigma * sigma + 0.25);
    const dev = maxAbsDiff(m.denoise(x, tf.fill([3], sigma) as tf.Tensor1D), tf.mul(x, cSkip));
    expect(dev).toBeLessThan(0.5 * cOut);
  });

  it('trains: a few Adam steps reduce a denoising loss on tiny random data, with a flat tensor count', () => {
    const m = createDenoiser(tiny({ numClasses: 0 }), new Rng(9));
    const rng = new Rng(10);
    const data = tf.tidy(() => tf.mul(tf.sign(rng.normalTensor([8, 8, 8, 1])), 0.5)); // ±0.5 pixels
    const noise = rng.normalTensor([8, 8, 8, 1]);
    const sigma = tf.tensor1d([0.2, 0.5, 1, 2, 0.3, 0.7, 1.5, 3]);
    const opt = tf.train.adam(3e-3);
    const loss = () =>
      tf.tidy(() => tf.mean(tf.square(tf.sub(m.denoise(tf.add(data, tf.mul(noise, sigma.reshape([-1, 1, 1, 1]))), sigma), data))) as tf.Scalar);
    const first = loss().dataSync()[0]!;
    const counts: number[] = [];
    for (let i = 0; i < 8; i++) {
      opt.minimize(loss, false, Object.values(m.params))?.dispose();
      counts.push(tf.memory().numTensors);
    }
    expect(loss().dataSync()[0]!).toBeLessThan(0.8 * first);
    expect(new Set(counts.slice(2)).size).toBe(1); // after Adam's moments exist, the count is flat
    opt.dispose();
    disposeModel(m);
  });

  it('has dropout only through withDropout(rng), deterministic given the rng', () => {
    const m = createDenoiser(tiny({ dropout: 0.5 }), new Rng(11));
    const x = new Rng(12).normalTensor([2, 8, 8, 1]);
    const s = tf.tensor1d([1, 1]);
    expect(values(m.denoise(x, s))).toEqual(values(m.denoise(x, s)));
    const a = values(m.withDropout!(new Rng(1))(x, s));
    expect(values(m.withDropout!(new Rng(1))(x, s))).toEqual(a);
    expect(a).not.toEqual(values(m.withDropout!(new Rng(2))(x, s)));
    expect(a).not.toEqual(values(m.denoise(x, s)));
    const plain = createDenoiser(tiny(), new Rng(11));
    expect(plain.withDropout!(new Rng(1))).toBe(plain.denoise);
  });

  it('rejects invalid configs with a message naming the field', () => {
    const bad = (over: object) => () => createDenoiser(tiny(over as Partial<UnetConfig>), new Rng(0));
    expect(bad({ resolution: 6, channelMult: [1, 2, 2] })).toThrow(/net.resolution must be a positive integer divisible by 2\^2/);
    expect(bad({ attnResolutions: [16] })).toThrow(/net.attnResolutions must be a list of level resolutions \(8, 4\)/);
    expect(bad({ dropout: 1 })).toThrow(/net.dropout must be a number in \[0, 1\)/);
    expect(bad({ channelMult: [] })).toThrow(/net.channelMult must be a non-empty list/);
    expect(bad({ embedDim: 5 })).toThrow(/embedDim must be a positive even integer/);
  });
});

describe('Tweedie generator, clone, presets', () => {
  it('a Tweedie generator around a UNet teacher has image latents and is D(σ*·z; σ*)', () => {
    const teacher = createDenoiser(tiny(), new Rng(13));
    const g = tweedieGenerator(teacher, 2.5);
    expect(g.latentShape).toEqual([8, 8, 1]);
    expect(g.outputShape).toEqual([8, 8, 1]);
    expect(g.numClasses).toBe(3);
    const z = new Rng(14).normalTensor([2, 8, 8, 1]);
    const y = labels([2, 1]);
    expect(values(g.generate(z, y))).toEqual(values(teacher.denoise(tf.mul(z, 2.5), tf.fill([2], 2.5) as tf.Tensor1D, y)));
    const fresh = createGenerator(g.config, new Rng(0));
    expect(Object.keys(fresh.params)).toEqual(Object.keys(g.params));
    const c = cloneModel(teacher);
    expect(values(c.denoise(z, tf.tensor1d([1, 2])))).toEqual(values(teacher.denoise(z, tf.tensor1d([1, 2]))));
  });

  it('has presets of the documented sizes, and describes a model in one line', () => {
    const n = (name: keyof typeof UNET_PRESETS) => paramCountOf({ kind: 'edm', sigmaData: 0.5, net: unetPreset(name) });
    expect(n('mnist-tiny')).toBeGreaterThan(300_000);
    expect(n('mnist-tiny')).toBeLessThan(600_000);
    expect(n('mnist-small')).toBeGreaterThan(1_000_000);
    expect(n('mnist-small')).toBeLessThan(2_000_000);
    const m = createDenoiser(tiny(), new Rng(0));
    expect(describeModel(m.config)).toBe(
      `EDM denoiser, UNet 8×8×1, channels 8×[1, 2], 1 block per level, attention at 4×4, 3 classes: ${countParams(m.params).toLocaleString('en-US')} parameters`,
    );
    expect(groupsFor(16)).toBe(4);
    expect(groupsFor(24)).toBe(6);
    expect(groupsFor(256)).toBe(32);
    expect(groupsFor(6)).toBe(1);
  });
});

/**
 * The UNet written the straightforward way, with tfjs's own ops only (tf.conv2d 'same', tf.moments
 * group norm, x·sigmoid(x), tf.concat, tf.softmax, resize/avgPool) and tfjs's own autodiff: the
 * reference that the optimised custom ops of ops.ts must reproduce. Mirrors `plan` in unet.ts.
 */
function referenceDenoiser(c: UnetConfig, P: Record<string, tf.Tensor>, sigmaData: number) {
  const p = (n: string) => P[`net.${n}`]!;
  const silu = (t: tf.Tensor) => tf.mul(t, tf.sigmoid(t));
  const conv = (t: tf.Tensor, n: string, s: 1 | 2 = 1) => tf.add(tf.conv2d(t as tf.Tensor4D, p(`${n}.weight`) as tf.Tensor4D, s, 'same'), p(`${n}.bias`));
  const gn = (t: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const [n, h, w, ch] = t.shape as number[];
    const g = groupsFor(ch!);
    const tg = t.reshape([n!, h! * w!, g, ch! / g]);
    const { mean, variance } = tf.moments(tg, [1, 3], true);
    return tf.add(tf.mul(tf.div(tf.sub(tg, mean), tf.sqrt(tf.add(variance, 1e-5))).reshape(t.shape), gamma), beta);
  };
  const norm = (t: tf.Tensor, n: string) => gn(t, p(`${n}.weight`), p(`${n}.bias`));
  const block = (x: tf.Tensor, emb: tf.Tensor, name: string, cin: number, cout: number, resample: string | null, attn: boolean) => {
    const rs = (t: tf.Tensor) =>
      resample === 'up'
        ? tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [2 * t.shape[1]!, 2 * t.shape[2]!])
        : resample === 'down'
          ? tf.avgPool(t as tf.Tensor4D, 2, 2, 'valid')
          : t;
    let h = conv(rs(silu(norm(x, `${name}.norm0`))), `${name}.conv0`);
    const ss = tf.add(tf.matMul(emb, p(`${name}.affine.weight`)), p(`${name}.affine.bias`));
    const scale = ss.slice([0, 0], [-1, cout]).reshape([-1, 1, 1, cout]);
    const shift = ss.slice([0, cout], [-1, cout]).reshape([-1, 1, 1, cout]);
    h = silu(tf.add(tf.mul(norm(h, `${name}.norm1`), tf.add(scale, 1)), shift));
    h = conv(h, `${name}.conv1`);
    let out = tf.mul(tf.add(h, cin !== cout ? conv(rs(x), `${name}.skip`) : rs(x)), Math.SQRT1_2);
    if (attn) {
      const [n, hh, ww, ch] = out.shape as number[];
      const qkv = conv(norm(out, `${name}.norm2`), `${name}.qkv`);
      const [q, k, v] = tf.split(qkv, 3, 3).map((t) => t.reshape([n!, hh! * ww!, ch!]));
      const a = tf.matMul(tf.softmax(tf.div(tf.matMul(q!, k!, false, true), Math.sqrt(ch!))), v!).reshape(out.shape);
      out = tf.mul(tf.add(conv(a, `${name}.proj`), out), Math.SQRT1_2);
    }
    return out;
  };
  return (x: tf.Tensor, sigma: tf.Tensor1D, label: tf.Tensor2D) => {
    const s = sigma.reshape([-1, 1, 1, 1]);
    const s2 = tf.add(tf.square(s), sigmaData ** 2);
    let emb: tf.Tensor = tf.add(noiseFeatures(tf.div(tf.log(sigma), 4) as tf.Tensor1D, c.embedDim), tf.matMul(label, p('map_label.weight')));
    emb = silu(tf.add(tf.matMul(emb, p('map_layer0.weight')), p('map_layer0.bias')));
    emb = silu(tf.add(tf.matMul(emb, p('map_layer1.weight')), p('map_layer1.bias')));
    let h = conv(tf.div(x, tf.sqrt(s2)), `enc.${c.resolution}x${c.resolution}_conv`);
    const skips = [h];
    let ch = c.modelChannels;
    c.channelMult.forEach((mult, level) => {
      const res = c.resolution >> level;
      if (level > 0) skips.push((h = block(h, emb, `enc.${res}x${res}_down`, ch, ch, 'down', false)));
      for (let i = 0; i < c.numBlocks; i++) {
        skips.push((h = block(h, emb, `enc.${res}x${res}_block${i}`, ch, c.modelChannels * mult, null, c.attnResolutions.includes(res))));
        ch = c.modelChannels * mult;
      }
    });
    for (let level = c.channelMult.length - 1; level >= 0; level--) {
      const res = c.resolution >> level;
      if (level === c.channelMult.length - 1) {
        h = block(h, emb, `dec.${res}x${res}_in0`, ch, ch, null, true);
        h = block(h, emb, `dec.${res}x${res}_in1`, ch, ch, null, false);
      } else {
        h = block(h, emb, `dec.${res}x${res}_up`, ch, ch, 'up', false);
      }
      for (let i = 0; i <= c.numBlocks; i++) {
        h = tf.concat([h, skips.pop()!], 3);
        const cout = c.modelChannels * c.channelMult[level]!;
        h = block(h, emb, `dec.${res}x${res}_block${i}`, h.shape[3]!, cout, null, c.attnResolutions.includes(res));
        ch = cout;
      }
    }
    const F = conv(silu(norm(h, 'dec.out_norm')), 'dec.out_conv');
    return tf.add(tf.mul(tf.div(sigmaData ** 2, s2), x), tf.mul(tf.div(tf.mul(s, sigmaData), tf.sqrt(s2)), F));
  };
}

describe('UNet against a plain-tfjs reference', () => {
  it('computes the same denoiser output as the straightforward formulation, with gradients that match finite differences', () => {
    const cfg = tiny({ numBlocks: 2 });
    const m = createDenoiser(cfg, new Rng(21));
    // perturb every parameter (norm gains, biases, zero-initialised layers) so that every path counts
    const r = new Rng(22);
    for (const v of Object.values(m.params)) tf.tidy(() => (v as tf.Variable).assign(tf.add(v, tf.mul(r.normalTensor(v.shape), 0.2))));
    const x = tf.mul(new Rng(23).normalTensor([3, 8, 8, 1]), 1.5);
    const sigma = tf.tensor1d([0.05, 0.8, 6]);
    const y = labels([0, 2, 1]);
    const ref = referenceDenoiser(cfg.net, m.params, cfg.sigmaData);
    const ours = m.denoise(x, sigma, y);
    const theirs = tf.tidy(() => ref(x, sigma, y));
    expect(maxAbsDiff(ours, theirs)).toBeLessThan(tol(1e-5) * Math.max(1, tf.max(tf.abs(theirs)).dataSync()[0]!));

    // gradients of a denoising loss wrt a spread of parameters (norm gains of the adaptive GroupNorm,
    // conv weights and biases, attention) against finite differences, through the whole network
    const target = tf.tanh(x);
    const checked = ['net.enc.8x8_block0.norm0.weight', 'net.enc.4x4_block0.affine.weight', 'net.enc.4x4_block0.norm1.bias', 'net.dec.4x4_in0.qkv.weight', 'net.dec.8x8_block1.conv0.bias', 'net.dec.out_conv.weight'];
    const originals = checked.map((n) => m.params[n]!);
    const f = (...ts: tf.Tensor[]) => {
      const params = { ...m.params };
      checked.forEach((n, i) => (params[n] = ts[i] as tf.Variable));
      return tf.mean(tf.square(tf.sub(denoiserFromParams(cfg, params).denoise(x, sigma, y), target))) as tf.Scalar;
    };
    const fd = gradCheck(f, originals, { eps: 1e-2, probes: 4 });
    expect(fd.maxRelError).toBeLessThan(tol(2e-3));
    disposeModel(m);
  });
});
