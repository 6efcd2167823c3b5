import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';

import { batchMatmul, conv2d, downsample2x, groupNorm, groupNormSilu, silu, softmax, upsample2x } from './ops.js';

const rng = new Rng(11);
const randn = (shape: number[]) => rng.normalTensor(shape);
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const maxAbs = (a: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]!);

/** Runs `f` on the pure-JS `cpu` backend, where tfjs has its own conv gradients, and returns plain arrays. */
async function onCpu(f: () => tf.Tensor[]): Promise<{ values: Float32Array[]; shapes: number[][] }> {
  const backend = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    return tf.tidy(() => {
      const out = f();
      return { values: out.map((t) => t.dataSync() as Float32Array), shapes: out.map((t) => t.shape) };
    });
  } finally {
    await tf.setBackend(backend);
  }
}

afterAll(async () => {
  // leave the backend as the setup file chose it
  expect(tf.getBackend()).toBe(process.env.DI_TEST_BACKEND ?? 'wasm');
});

// [N, H, W, C_in], [kh, kw, C_in, C_out], stride
const CASES: [number[], number[], 1 | 2][] = [
  [[2, 5, 5, 3], [3, 3, 3, 16], 1], // 16 output channels: the native direct and filter-gradient kernels, when enabled
  [[2, 6, 6, 2], [3, 3, 2, 16], 2],
  [[2, 5, 5, 3], [3, 3, 3, 4], 1],
  [[2, 6, 4, 2], [3, 3, 2, 3], 1],
  [[2, 6, 6, 3], [3, 3, 3, 2], 2],
  [[2, 7, 5, 2], [3, 3, 2, 3], 2],
  [[1, 8, 8, 2], [4, 4, 2, 2], 2],
  [[2, 6, 6, 2], [5, 5, 2, 3], 1],
  [[2, 4, 4, 3], [1, 1, 3, 2], 1],
  [[2, 5, 5, 2], [1, 1, 2, 3], 2],
];

describe('conv2d', () => {
  it.each(CASES)('x %j, w %j, stride %i: matches tf.conv2d (same padding) and its gradient on cpu', async (xs, ws, s) => {
    const x = randn(xs) as tf.Tensor4D;
    const w = randn(ws) as tf.Tensor4D;
    const r = tf.tidy(() => randn([xs[0]!, Math.ceil(xs[1]! / s), Math.ceil(xs[2]! / s), ws[3]!]));
    const xv = x.dataSync().slice();
    const wv = w.dataSync().slice();
    const rv = r.dataSync().slice();
    const loss = (conv: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), r)) as tf.Scalar;
    const ours = tf.tidy(() => [conv2d(x, w, s), ...tf.grads(loss((a, b) => conv2d(a, b, s)))([x, w])]);
    const theirs = await onCpu(() => {
      const [xc, wc, rc] = [tf.tensor(xv, xs), tf.tensor(wv, ws), tf.tensor(rv, r.shape)];
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, 'same'), rc)) as tf.Scalar;
      return [tf.conv2d(xc as tf.Tensor4D, wc as tf.Tensor4D, s, 'same'), ...tf.grads(f)([xc, wc])];
    });
    ours.forEach((t, i) => {
      expect(t.shape).toEqual(theirs.shapes[i]);
      const ref = tf.tensor(theirs.values[i]!, t.shape);
      expect(maxAbsDiff(t, ref)).toBeLessThan(tol(1e-4) * Math.max(1, maxAbs(ref)));
    });
  });

  it.each(CASES.slice(0, 5))('x %j, w %j, stride %i: gradient matches finite differences', (xs, ws, s) => {
    const x = randn(xs);
    const w = tf.mul(randn(ws), 0.5);
    const r = randn([xs[0]!, Math.ceil(xs[1]! / s), Math.ceil(xs[2]! / s), ws[3]!]);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(silu(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s)), r)) as tf.Scalar;
    expect(gradCheck(f, [x, w], { eps: 1e-2, probes: 10 }).maxRelError).toBeLessThan(tol(5e-3));
  });

  it.each(CASES.slice(0, 5))('x %j, w %j, stride %i: second order, ∇_w ‖∇ₓ f‖², matches finite differences', (xs, ws, s) => {
    const x = randn(xs);
    const w = tf.mul(randn(ws), 0.5);
    const r = randn([xs[0]!, Math.ceil(xs[1]! / s), Math.ceil(xs[2]! / s), ws[3]!]);
    const r1 = (ww: tf.Tensor) => {
      const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(silu(conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s)), r)))(x);
      return tf.sum(tf.square(gx)) as tf.Scalar;
    };
    expect(gradCheck(r1, [w], { eps: 1e-2, probes: 12 }).maxRelError).toBeLessThan(tol(1e-2));
  });

  it('second order through two layers and a stride-2 conv, ∇_w ‖∇ₓ f‖² for every weight', () => {
    const x = randn([2, 6, 6, 2]);
    const w1 = tf.mul(randn([3, 3, 2, 3]), 0.5);
    const w2 = tf.mul(randn([3, 3, 3, 2]), 0.5);
    const r1 = (a: tf.Tensor, b: tf.Tensor) => {
      const f = (xx: tf.Tensor) => tf.sum(silu(conv2d(silu(conv2d(xx as tf.Tensor4D, a as tf.Tensor4D, 2)), b as tf.Tensor4D, 1)));
      return tf.sum(tf.square(tf.grad(f)(x))) as tf.Scalar;
    };
    expect(gradCheck(r1, [w1, w2], { eps: 1e-2, probes: 8 }).maxRelError).toBeLessThan(tol(1e-2));
  });

  it('rejects bad shapes and strides with a clear message', () => {
    expect(() => conv2d(tf.zeros([1, 4, 4, 2]) as tf.Tensor4D, tf.zeros([3, 3, 3, 1]) as tf.Tensor4D)).toThrow(/x has 2 channels but w expects 3/);
    expect(() => conv2d(tf.zeros([4, 4, 2]) as never, tf.zeros([3, 3, 2, 1]) as tf.Tensor4D)).toThrow(/expected x \[N, H, W, C\]/);
    expect(() => conv2d(tf.zeros([1, 4, 4, 2]) as tf.Tensor4D, tf.zeros([3, 3, 2, 1]) as tf.Tensor4D, 3 as never)).toThrow(/stride must be 1 or 2/);
  });

  it('leaks no tensors, forward or backward', () => {
    const x = randn([2, 6, 6, 2]);
    const w = randn([3, 3, 2, 3]);
    const step = () => tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2)))([x, w]));
    tf.dispose(step());
    const n0 = tf.memory().numTensors;
    tf.dispose(step());
    expect(tf.memory().numTensors).toBe(n0);
  });
});

describe('upsample2x, downsample2x', () => {
  it('are nearest-neighbour and 2×2 mean', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    expect(Array.from(upsample2x(x).dataSync())).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    expect(Array.from(downsample2x(upsample2x(x)).dataSync())).toEqual([1, 2, 3, 4]);
    const y = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 4, 1]);
    expect(Array.from(downsample2x(y).dataSync())).toEqual([(1 + 2 + 5 + 6) / 4, (3 + 4 + 7 + 8) / 4]);
    expect(() => downsample2x(tf.zeros([1, 3, 4, 1]) as tf.Tensor4D)).toThrow(/even H and W/);
  });

  it('have gradients (first and second order) that match finite differences', () => {
    const x = randn([2, 4, 6, 3]);
    const r = randn([2, 4, 6, 3]);
    const f = (a: tf.Tensor) => tf.sum(tf.mul(silu(upsample2x(downsample2x(silu(a as tf.Tensor4D)))), r)) as tf.Scalar;
    expect(gradCheck(f, [x], { eps: 1e-2, probes: 20 }).maxRelError).toBeLessThan(tol(5e-3));
    const w = randn([3, 3, 3, 3]);
    const r1 = (ww: tf.Tensor) => {
      const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(silu(upsample2x(conv2d(downsample2x(xx as tf.Tensor4D), ww as tf.Tensor4D))), r)))(x);
      return tf.sum(tf.square(g)) as tf.Scalar;
    };
    expect(gradCheck(r1, [w], { eps: 1e-2, probes: 12 }).maxRelError).toBeLessThan(tol(1e-2));
  });
});

describe('groupNorm', () => {
  it('normalises each group of each sample to mean 0, variance 1, then applies gamma and beta', () => {
    const x = tf.add(tf.mul(randn([2, 3, 3, 4]), 3), 2) as tf.Tensor4D;
    const y = groupNorm(x, tf.ones([4]), tf.zeros([4]), 2);
    const yg = y.reshape([2, 9, 2, 2]);
    const { mean, variance } = tf.moments(yg, [1, 3]);
    expect(maxAbs(mean)).toBeLessThan(tol(1e-5));
    expect(maxAbsDiff(variance, tf.onesLike(variance))).toBeLessThan(tol(1e-3));
    const gamma = randn([4]);
    const beta = randn([4]);
    expect(maxAbsDiff(groupNorm(x, gamma, beta, 2), tf.add(tf.mul(y, gamma), beta))).toBeLessThan(tol(1e-5));
    expect(() => groupNorm(x, gamma, beta, 3)).toThrow(/4 channels cannot be split into 3 groups/);
  });

  it('refuses gamma and beta of any other shape, naming the ones it takes', () => {
    const x = tf.ones([3, 2, 2, 6]) as tf.Tensor4D; // no draws from `rng`: the later tests keep their data
    for (const gn of [groupNorm, groupNormSilu]) {
      expect(() => gn(x, tf.ones([1, 6]), tf.ones([6]), 3)).toThrow(/gamma must have shape \[6\], \[1, 1, 1, 6\] or \[3, 1, 1, 6\], got \[1, 6\]/);
      expect(() => gn(x, tf.ones([6]), tf.ones([1, 1, 6]), 3)).toThrow(/beta must have shape \[6\], \[1, 1, 1, 6\] or \[3, 1, 1, 6\], got \[1, 1, 6\]/);
      expect(() => gn(x, tf.ones([2, 1, 1, 6]), tf.ones([6]), 3)).toThrow(/gamma must have shape .* got \[2, 1, 1, 6\]/);
    }
    expect(() => groupNormSilu(x, tf.ones([6]), tf.ones([7]), 3)).toThrow(/^groupNormSilu: beta must have shape/);
  });

  it('has first- and second-order gradients that match finite differences', () => {
    const x = randn([2, 3, 2, 4]);
    const gamma = randn([1, 1, 1, 4]);
    const beta = randn([2, 1, 1, 4]);
    const r = randn([2, 3, 2, 4]);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(silu(groupNorm(a as tf.Tensor4D, g, b, 2)), r)) as tf.Scalar;
    expect(gradCheck(f, [x, gamma, beta], { eps: 1e-2, probes: 24 }).maxRelError).toBeLessThan(tol(5e-3));
    const r1 = (g: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => f(a, g, beta))(x))) as tf.Scalar;
    expect(gradCheck(r1, [gamma], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(1e-2));
  });

  /** The plain formulation (tf.moments, autodiff): the reference for the fused op. */
  const plainGroupNorm = (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps = 1e-5) => {
    const [n, h, w, c] = x.shape;
    const xg = x.reshape([n, h * w, groups, c / groups]);
    const { mean, variance } = tf.moments(xg, [1, 3], true);
    const xn = tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, eps))).reshape([n, h, w, c]);
    return tf.add(tf.mul(xn, gamma), beta);
  };

  it.each([
    ['[C]', [6], [6]],
    ['per sample [N, 1, 1, C]', [3, 1, 1, 6], [3, 1, 1, 6]],
    ['mixed [1, 1, 1, C] and [N, 1, 1, C]', [1, 1, 1, 6], [3, 1, 1, 6]],
  ])('gamma/beta %s: value and gradients equal the plain tf.moments formulation', (_name, gs, bs) => {
    const x = tf.add(tf.mul(randn([3, 4, 2, 6]), 2), 1.5) as tf.Tensor4D;
    const gamma = tf.add(randn(gs), 1);
    const beta = randn(bs);
    const r = randn([3, 4, 2, 6]);
    const loss = (gn: typeof groupNorm) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(silu(gn(a as tf.Tensor4D, g, b, 3)), r)) as tf.Scalar;
    expect(maxAbsDiff(groupNorm(x, gamma, beta, 3), plainGroupNorm(x, gamma, beta, 3))).toBeLessThan(tol(1e-5));
    const ours = tf.grads(loss(groupNorm))([x, gamma, beta]);
    const plain = tf.grads(loss(plainGroupNorm as typeof groupNorm))([x, gamma, beta]);
    ours.forEach((g, i) => {
      expect(g.shape).toEqual(plain[i]!.shape);
      expect(maxAbsDiff(g, plain[i]!)).toBeLessThan(tol(1e-4) * Math.max(1, maxAbs(plain[i]!)));
    });
    expect(gradCheck(loss(groupNorm), [x, gamma, beta], { eps: 1e-2, probes: 24 }).maxRelError).toBeLessThan(tol(5e-3));
  });

  it.each([
    ['[C]', [6], [6]],
    ['per sample [N, 1, 1, C]', [3, 1, 1, 6], [3, 1, 1, 6]],
  ])('groupNormSilu, gamma/beta %s: equals silu(groupNorm), value and gradients', (_name, gs, bs) => {
    const x = tf.add(tf.mul(randn([3, 4, 2, 6]), 2), 1.5) as tf.Tensor4D;
    const gamma = tf.add(randn(gs), 1);
    const beta = randn(bs);
    const r = randn([3, 4, 2, 6]);
    const fused = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(groupNormSilu(a as tf.Tensor4D, g, b, 3), r)) as tf.Scalar;
    const plain = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const z = plainGroupNorm(a as tf.Tensor4D, g, b, 3);
      return tf.sum(tf.mul(tf.mul(z, tf.sigmoid(z)), r)) as tf.Scalar;
    };
    expect(Math.abs(fused(x, gamma, beta).dataSync()[0]! - plain(x, gamma, beta).dataSync()[0]!)).toBeLessThan(tol(1e-4));
    const ours = tf.grads(fused)([x, gamma, beta]);
    const ref = tf.grads(plain)([x, gamma, beta]);
    ours.forEach((g, i) => {
      expect(g.shape).toEqual(ref[i]!.shape);
      expect(maxAbsDiff(g, ref[i]!)).toBeLessThan(tol(1e-4) * Math.max(1, maxAbs(ref[i]!)));
    });
    expect(gradCheck(fused, [x, gamma, beta], { eps: 1e-2, probes: 24 }).maxRelError).toBeLessThan(tol(5e-3));
  });

  it('groupNormSilu: second-order gradients (∇ of ‖∇ₓ f‖²) match finite differences', () => {
    const x = randn([2, 2, 3, 4]);
    const gamma = tf.add(randn([2, 1, 1, 4]), 1);
    const beta = randn([1, 1, 1, 4]);
    const r = randn([2, 2, 3, 4]);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(groupNormSilu(a as tf.Tensor4D, g, b, 2), r)) as tf.Scalar;
    const r1 = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.grad((aa: tf.Tensor) => f(aa, g, b))(a))) as tf.Scalar;
    expect(gradCheck(r1, [x, gamma, beta], { eps: 1e-2, probes: 16 }).maxRelError).toBeLessThan(tol(1e-2));
  });

  it('per-sample gamma: second-order gradients (∇_γ, ∇_β and ∇ₓ of ‖∇ₓ f‖²) match finite differences', () => {
    const x = randn([2, 2, 3, 4]);
    const gamma = tf.add(randn([2, 1, 1, 4]), 1);
    const beta = randn([2, 1, 1, 4]);
    const r = randn([2, 2, 3, 4]);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(silu(groupNorm(a as tf.Tensor4D, g, b, 2)), r)) as tf.Scalar;
    const r1 = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.grad((aa: tf.Tensor) => f(aa, g, b))(a))) as tf.Scalar;
    expect(gradCheck(r1, [x, gamma, beta], { eps: 1e-2, probes: 16 }).maxRelError).toBeLessThan(tol(1e-2));
  });
});

describe('softmax, batchMatmul', () => {
  it('softmax is tf.softmax, with correct first- and second-order gradients', () => {
    const x = randn([3, 5]);
    expect(maxAbsDiff(softmax(x), tf.softmax(x))).toBeLessThan(tol(1e-6));
    const r = randn([3, 5]);
    const f = (a: tf.Tensor) => tf.sum(tf.mul(softmax(a), r)) as tf.Scalar;
    expect(gradCheck(f, [x], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(5e-3));
    const w = tf.scalar(1.5);
    const r1 = (ww: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(softmax(tf.mul(a, ww)), r)))(x))) as tf.Scalar;
    expect(gradCheck(r1, [w], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(1e-2));
  });

  it('batchMatmul is tf.matMul per batch entry, with gradients that match finite differences', () => {
    const a = randn([2, 3, 4]) as tf.Tensor3D;
    const b = randn([2, 4, 5]) as tf.Tensor3D;
    expect(maxAbsDiff(batchMatmul(a, b), tf.matMul(a, b))).toBeLessThan(tol(1e-5));
    const r = randn([2, 3, 5]);
    const f = (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(silu(batchMatmul(p as tf.Tensor3D, q as tf.Tensor3D)), r)) as tf.Scalar;
    expect(gradCheck(f, [a, b], { eps: 1e-2, probes: 12 }).maxRelError).toBeLessThan(tol(5e-3));
    const r1 = (q: tf.Tensor) => tf.sum(tf.square(tf.grad((p: tf.Tensor) => f(p, q))(a))) as tf.Scalar;
    expect(gradCheck(r1, [b], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(1e-2));
    expect(() => batchMatmul(a, a)).toThrow(/expected \[B, n, k\]·\[B, k, m\]/);
  });
});
