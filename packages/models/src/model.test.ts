import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';
import { tol } from '@diff-instruct/sde/testing';

import type { EdmDenoiserConfig, MlpScoreConfig } from './config.js';
import { cloneModel, createDenoiser, createGenerator, tweedieGenerator } from './model.js';
import { copyParams, countParams, disposeModel } from './params.js';

const teacherConfig: EdmDenoiserConfig & { net: MlpScoreConfig } = {
  kind: 'edm',
  sigmaData: 0.5,
  net: { kind: 'mlp', dim: 3, hidden: [16, 16], embedDim: 8, numClasses: 2 },
};
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('tweedieGenerator (eq. B.3)', () => {
  it('is the teacher denoiser at σ*: G(z) = D(σ*·z; σ*)', () => {
    const teacher = createDenoiser(teacherConfig, new Rng(1));
    const g = tweedieGenerator(teacher, 2.5);
    expect(g.latentShape).toEqual([3]);
    expect(g.outputShape).toEqual([3]);
    expect(g.numClasses).toBe(2);
    expect(g.config).toEqual({ kind: 'tweedie', sigmaStar: 2.5, denoiser: teacherConfig });
    const z = new Rng(2).normalTensor([6, 3]);
    const label = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1], 'int32'), 2) as tf.Tensor2D;
    const sigma = tf.fill([6], 2.5) as tf.Tensor1D;
    expect(values(g.generate(z, label))).toEqual(values(teacher.denoise(tf.mul(z, 2.5), sigma, label)));
    expect(values(g.generate(z))).toEqual(values(teacher.denoise(tf.mul(z, 2.5), sigma)));
  });

  it("holds a copy of the teacher's params under 'denoiser.', independent of the teacher", () => {
    const teacher = createDenoiser(teacherConfig, new Rng(1));
    const g = tweedieGenerator(teacher, 2.5);
    expect(Object.keys(g.params)).toEqual(Object.keys(teacher.params).map((n) => `denoiser.${n}`));
    const z = new Rng(3).normalTensor([4, 3]);
    const before = values(g.generate(z));
    for (const v of Object.values(teacher.params)) v.assign(tf.zerosLike(v));
    expect(values(g.generate(z))).toEqual(before);
    // and a generator created from the same config has exactly the same parameter layout
    const fresh = createGenerator(g.config, new Rng(0));
    expect(Object.keys(fresh.params)).toEqual(Object.keys(g.params));
    copyParams(g.params, fresh.params);
    expect(values(fresh.generate(z))).toEqual(before);
  });

  it('is differentiable wrt its params', () => {
    const g = tweedieGenerator(createDenoiser(teacherConfig, new Rng(4)), 1.5);
    const z = new Rng(5).normalTensor([4, 3]);
    const vars = Object.values(g.params);
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(g.generate(z))) as tf.Scalar, vars);
    expect(Object.keys(grads).length).toBe(vars.length - 1); // the label table gets no gradient without labels
    for (const gr of Object.values(grads)) expect(values(gr).every(Number.isFinite)).toBe(true);
  });
});

describe('cloneModel, copyParams, countParams, disposeModel', () => {
  it('clones into new, independent variables with the same values', () => {
    const m = createDenoiser(teacherConfig, new Rng(6));
    const c = cloneModel(m);
    expect(c.config).toEqual(m.config);
    expect(Object.keys(c.params)).toEqual(Object.keys(m.params));
    for (const [n, v] of Object.entries(m.params)) {
      expect(c.params[n]).not.toBe(v);
      expect(values(c.params[n]!)).toEqual(values(v));
    }
    const x = new Rng(7).normalTensor([2, 3]);
    const s = tf.tensor1d([0.3, 3]);
    const before = values(m.denoise(x, s));
    expect(values(c.denoise(x, s))).toEqual(before);
    for (const v of Object.values(c.params)) v.assign(tf.add(v, 1));
    expect(values(m.denoise(x, s))).toEqual(before);
    expect(values(c.denoise(x, s))).not.toEqual(before);

    const g = createGenerator({ kind: 'mlp-generator', latentDim: 2, outDim: 3, hidden: [8], numClasses: 0 }, new Rng(8));
    const gc = cloneModel(g);
    const z = new Rng(9).normalTensor([3, 2]);
    expect(values(gc.generate(z))).toEqual(values(g.generate(z)));
    expect(gc.latentShape).toEqual([2]);
  });

  it('copyParams assigns values and lists every mismatch', () => {
    const a = createDenoiser(teacherConfig, new Rng(10));
    const b = createDenoiser(teacherConfig, new Rng(11));
    copyParams(a.params, b.params);
    for (const [n, v] of Object.entries(a.params)) expect(values(b.params[n]!)).toEqual(values(v));
    const other = createDenoiser({ ...teacherConfig, net: { ...teacherConfig.net, hidden: [16, 12], numClasses: 0 } }, new Rng(0));
    expect(() => copyParams(other.params, a.params)).toThrow(
      /missing 'net.map_label.weight'.*shape of 'net.layers.1.weight' is \[16,12\], expected \[16,16\]/,
    );
  });

  it('counts parameters and frees them', () => {
    const g = createGenerator({ kind: 'mlp-generator', latentDim: 2, outDim: 3, hidden: [8], numClasses: 0 }, new Rng(8));
    expect(countParams(g.params)).toBe(2 * 8 + 8 + 8 * 3 + 3);
    const n0 = tf.memory().numTensors;
    disposeModel(g);
    expect(tf.memory().numTensors).toBe(n0 - 4);
  });

  it('rejects invalid configs with a message naming the field', () => {
    const bad = (net: object) => () => createDenoiser({ ...teacherConfig, net: { ...teacherConfig.net, ...net } } as EdmDenoiserConfig, new Rng(0));
    expect(bad({ embedDim: 7 })).toThrow(/embedDim must be a positive even integer/);
    expect(bad({ hidden: [] })).toThrow(/hidden must be a non-empty list/);
    expect(bad({ kind: 'transformer' })).toThrow(/unknown network kind "transformer"/);
    expect(() => createDenoiser({ ...teacherConfig, sigmaData: 0 }, new Rng(0))).toThrow(/sigmaData must be > 0/);
    expect(() => createGenerator({ kind: 'gan' } as never, new Rng(0))).toThrow(/unknown generator kind "gan"/);
    expect(() => tweedieGenerator(createDenoiser(teacherConfig, new Rng(0)), 0)).toThrow(/sigmaStar must be > 0/);
  });

  it('keeps generation within tolerance of a hand-computed forward pass', () => {
    // a 1-layer generator: x = SiLU(z·W + b)·W_out + b_out
    const g = createGenerator({ kind: 'mlp-generator', latentDim: 2, outDim: 1, hidden: [2], numClasses: 0 }, new Rng(12));
    const W = values(g.params['gen.layers.0.weight']!);
    const b = values(g.params['gen.layers.0.bias']!);
    const Wo = values(g.params['gen.out.weight']!);
    const bo = values(g.params['gen.out.bias']!);
    const z = [0.4, -1.3];
    const silu = (u: number) => u / (1 + Math.exp(-u));
    const h = [0, 1].map((j) => silu(z[0]! * W[j]! + z[1]! * W[2 + j]! + b[j]!));
    const expected = h[0]! * Wo[0]! + h[1]! * Wo[1]! + bo[0]!;
    expect(Math.abs(g.generate(tf.tensor2d([z])).dataSync()[0]! - expected)).toBeLessThan(tol(1e-6));
  });
});
