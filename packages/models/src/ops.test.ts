import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';

import { DROPOUT_MASK_KERNEL, FILTER_GRAD_KERNEL, addBias, batchMatmul, conv2d, conv2dBias, dense, dropoutMaskTensor, matmul, oneHotEmbed, silu } from './ops.js';

const rng = new Rng(7);
const t2 = (r: number, c: number) => rng.normalTensor([r, c]) as tf.Tensor2D;
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('matmul', () => {
  it('computes A·B like tf.matMul', () => {
    const a = t2(5, 3);
    const b = t2(3, 4);
    expect(maxAbsDiff(matmul(a, b), tf.matMul(a, b))).toBeLessThan(tol(1e-6));
  });

  it('has a gradient that matches finite differences', () => {
    const a = t2(4, 3);
    const b = t2(3, 5);
    const w = t2(4, 5); // a non-trivial dy
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.tanh(matmul(x as tf.Tensor2D, y as tf.Tensor2D)), w)) as tf.Scalar;
    const r = gradCheck(f, [a, b], { eps: 1e-2, probes: 12 });
    expect(r.maxRelError).toBeLessThan(tol(5e-3));
  });

  it("has the same gradient as tf's own matMul", () => {
    const a = t2(6, 3);
    const b = t2(3, 2);
    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(matmul(x as tf.Tensor2D, y as tf.Tensor2D))))([a, b]);
    const theirs = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y))))([a, b]);
    expect(maxAbsDiff(ours[0]!, theirs[0]!)).toBeLessThan(tol(1e-4));
    expect(maxAbsDiff(ours[1]!, theirs[1]!)).toBeLessThan(tol(1e-4));
  });

  it('supports second-order gradients (an R1-style penalty ‖∇ₓ f‖² differentiated wrt the weights)', () => {
    const x = t2(3, 4);
    const b = t2(4, 2);
    const r1 = (mm: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor) => (w: tf.Tensor) => {
      const gx = tf.grad((xx: tf.Tensor) => tf.sum(silu(mm(xx as tf.Tensor2D, w as tf.Tensor2D))))(x);
      return tf.sum(tf.square(gx));
    };
    const ours = tf.grad(r1(matmul))(b);
    const theirs = tf.grad(r1((p, q) => tf.matMul(p, q)))(b);
    expect(maxAbsDiff(ours, theirs)).toBeLessThan(tol(1e-4));
    const fd = gradCheck((w) => r1(matmul)(w) as tf.Scalar, [b], { eps: 1e-2 });
    expect(fd.maxRelError).toBeLessThan(tol(1e-2));
  });

  it('rejects mismatched shapes with a clear message', () => {
    expect(() => matmul(t2(2, 3), t2(4, 2))).toThrow(/inner dimensions/);
  });
});

describe('batchMatmul', () => {
  const t3 = (b: number, r: number, c: number) => rng.normalTensor([b, r, c]) as tf.Tensor3D;

  it.each([false, true])('computes A·B (transposeB %s) and its gradients like tf.matMul', (transposeB) => {
    const a = t3(3, 4, 5);
    const b = transposeB ? t3(3, 6, 5) : t3(3, 5, 6);
    const w = t3(3, 4, 6);
    expect(maxAbsDiff(batchMatmul(a, b, transposeB), tf.matMul(a, b, false, transposeB))).toBeLessThan(tol(1e-5));
    const loss = (mm: (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.tanh(mm(x as tf.Tensor3D, y as tf.Tensor3D)), w));
    const ours = tf.grads(loss((x, y) => batchMatmul(x, y, transposeB)))([a, b]);
    const theirs = tf.grads(loss((x, y) => tf.matMul(x, y, false, transposeB)))([a, b]);
    expect(maxAbsDiff(ours[0]!, theirs[0]!)).toBeLessThan(tol(1e-4));
    expect(maxAbsDiff(ours[1]!, theirs[1]!)).toBeLessThan(tol(1e-4));
  });

  it.each([false, true])('has second-order gradients that match finite differences (transposeB %s)', (transposeB) => {
    const x = t3(2, 3, 4);
    const b0 = transposeB ? t3(2, 5, 4) : t3(2, 4, 5);
    // ‖∇ₓ Σ silu(x·op(B))‖², differentiated wrt B: the gradient's own gradient runs the flagged products
    const r1 = (bb: tf.Tensor) => {
      const gx = tf.grad((xx: tf.Tensor) => tf.sum(silu(batchMatmul(xx as tf.Tensor3D, bb as tf.Tensor3D, transposeB))))(x);
      return tf.sum(tf.square(gx)) as tf.Scalar;
    };
    const fd = gradCheck(r1, [b0], { eps: 1e-2 });
    expect(fd.maxRelError).toBeLessThan(tol(1e-2));
  });

  it('rejects mismatched shapes with a clear message', () => {
    expect(() => batchMatmul(t3(2, 3, 4), t3(2, 5, 4))).toThrow(/batchMatmul: expected \[B, n, k\]·\[B, k, m\]/);
  });
});

describe('dense, silu, oneHotEmbed', () => {
  it('dense has a gradient that matches finite differences for x, W and b', () => {
    const x = t2(5, 3);
    const w = t2(3, 4);
    const b = rng.normalTensor([4]);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.square(silu(dense(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D)))) as tf.Scalar;
    expect(gradCheck(f, [x, w, b], { eps: 1e-2, probes: 12 }).maxRelError).toBeLessThan(tol(5e-3));
  });

  it('silu is x·sigmoid(x)', () => {
    const x = tf.tensor1d([-3, -0.5, 0, 0.5, 3]);
    const expected = [-3, -0.5, 0, 0.5, 3].map((v) => v / (1 + Math.exp(-v)));
    const got = Array.from(silu(x).dataSync());
    got.forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 5));
  });

  it('oneHotEmbed selects table rows, gives zero for an all-zero label, and has the gather gradient', () => {
    const table = t2(3, 4);
    const label = tf.tensor2d([
      [0, 1, 0],
      [0, 0, 0],
    ]);
    const e = oneHotEmbed(label, table);
    expect(maxAbsDiff(e.slice([0, 0], [1, 4]), table.slice([1, 0], [1, 4]))).toBe(0);
    expect(maxAbsDiff(e.slice([1, 0], [1, 4]), tf.zeros([1, 4]))).toBe(0);
    const f = (t: tf.Tensor) => tf.sum(tf.square(oneHotEmbed(label, t as tf.Tensor2D))) as tf.Scalar;
    expect(gradCheck(f, [table], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(5e-3));
  });
});

describe('second-order gradients', () => {
  it('are correct through silu (tf.sigmoid alone gets them wrong in tfjs 4.22)', () => {
    const x = rng.normalTensor([6]);
    const w = tf.scalar(2);
    const r1 = (ww: tf.Tensor) => tf.sum(tf.square(tf.grad((xx: tf.Tensor) => tf.sum(silu(tf.mul(xx, ww))))(x))) as tf.Scalar;
    expect(gradCheck(r1, [w], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(1e-3)); // plain x·sigmoid(x): ~0.2
    // the first derivative itself
    expect(gradCheck((xx) => tf.sum(tf.mul(silu(xx), tf.range(0, 6))) as tf.Scalar, [x]).maxRelError).toBeLessThan(tol(5e-3));
  });
});

describe('addBias, conv2dBias (bias gradients as a matmul against ones)', () => {
  it('addBias is x + b, with first- and second-order gradients that match finite differences', () => {
    const x = rng.normalTensor([2, 3, 4]);
    const b = rng.normalTensor([4]);
    expect(maxAbsDiff(addBias(x, b as tf.Tensor1D), tf.add(x, b))).toBe(0);
    const r = rng.normalTensor([2, 3, 4]);
    const f = (xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(silu(addBias(xx, bb as tf.Tensor1D)), r)) as tf.Scalar;
    expect(gradCheck(f, [x, b], { eps: 1e-2, probes: 12 }).maxRelError).toBeLessThan(tol(5e-3));
    const r1 = (bb: tf.Tensor) => tf.sum(tf.square(tf.grad((xx: tf.Tensor) => f(xx, bb))(x))) as tf.Scalar;
    expect(gradCheck(r1, [b], { eps: 1e-2 }).maxRelError).toBeLessThan(tol(1e-2));
    expect(() => addBias(x, rng.normalTensor([3]) as tf.Tensor1D)).toThrow(/bias of shape \[4\]/);
  });

  it.each([
    [[2, 5, 5, 3], [3, 3, 3, 4], 1],
    [[2, 6, 6, 3], [3, 3, 3, 2], 2],
    [[2, 4, 4, 3], [1, 1, 3, 2], 1],
  ] as [number[], number[], 1 | 2][])('conv2dBias x %j, w %j, stride %i is conv2d + b, with FD-checked first- and second-order gradients', (xs, ws, s) => {
    const x = rng.normalTensor(xs) as tf.Tensor4D;
    const w = tf.mul(rng.normalTensor(ws), 0.5) as tf.Tensor4D;
    const b = rng.normalTensor([ws[3]!]) as tf.Tensor1D;
    expect(maxAbsDiff(conv2dBias(x, w, b, s), tf.add(conv2d(x, w, s), b))).toBeLessThan(tol(1e-5));
    const r = tf.tidy(() => rng.normalTensor(conv2d(x, w, s).shape));
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(silu(conv2dBias(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, s)), r)) as tf.Scalar;
    expect(gradCheck(f, [x, w, b], { eps: 1e-2, probes: 10 }).maxRelError).toBeLessThan(tol(5e-3));
    const r1 = (ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.grad((xx: tf.Tensor) => f(xx, ww, bb))(x))) as tf.Scalar;
    expect(gradCheck(r1, [w, b], { eps: 1e-2, probes: 10 }).maxRelError).toBeLessThan(tol(1e-2));
  });
});

describe('gradients computed only for inputs that need them', () => {
  it('∂/∂x through a conv, a dense layer and attention products runs no weight-gradient kernels, and equals the full gradient’s ∂x', async () => {
    const x = new Rng(30).normalTensor([2, 8, 8, 16]) as tf.Tensor4D;
    const w = new Rng(31).normalTensor([3, 3, 16, 16]).mul(0.1) as tf.Tensor4D;
    const b = new Rng(32).normalTensor([16]) as tf.Tensor1D;
    const wd = new Rng(33).normalTensor([16, 16]).mul(0.1) as tf.Tensor2D;
    const f = (xx: tf.Tensor4D, ww: tf.Tensor4D, bb: tf.Tensor1D, dd: tf.Tensor2D) => {
      const h = conv2dBias(xx, ww, bb).reshape([2, 64, 16]) as tf.Tensor3D;
      const att = batchMatmul(batchMatmul(h, h, true), h); // [2, 64, 16]
      return tf.sum(tf.square(dense(att.reshape([128, 16]) as tf.Tensor2D, dd, bb)));
    };
    const gradX = () => tf.grad((xx: tf.Tensor) => f(xx as tf.Tensor4D, w, b, wd))(x);
    const gradAll = () => tf.grads((...t: tf.Tensor[]) => f(t[0] as tf.Tensor4D, t[1] as tf.Tensor4D, t[2] as tf.Tensor1D, t[3] as tf.Tensor2D))([x, w, b, wd]);
    // (tf.profile returns the same object each time: read its kernels before the next call)
    const onlyX = (await tf.profile(() => tf.tidy(() => void gradX()))).kernels.map((k) => k.name);
    const all = (await tf.profile(() => tf.tidy(() => void gradAll()))).kernels.map((k) => k.name);
    const gx = gradX();
    const gs = gradAll();
    expect(Math.max(...(await tf.abs(tf.sub(gx, gs[0]!)).data()))).toBeLessThan(tol(1e-4));
    if (process.env.DI_TEST_NATIVE !== '0') expect(all).toContain(FILTER_GRAD_KERNEL);
    expect(onlyX).not.toContain(FILTER_GRAD_KERNEL);
    expect(onlyX).not.toContain('DiBiasGrad');
    // the weight, bias and dense gradients (and their kernels) are skipped: clearly fewer calls
    expect(onlyX.length).toBeLessThan(all.length - 4);
    tf.dispose([x, w, b, wd, gx, ...gs]);
  });
});

describe('dropoutMaskTensor', () => {
  it.each([
    [3, 0.9, [4, 8, 8, 16]],
    [11, 0.5, [2, 5, 7, 3]],
    [5, 1, [9]],
  ])('draws (seed %i, keep %f) the mask and stream of Rng.dropoutMask, on the native kernel where there is one', (seed, keep, shape) => {
    const a = new Rng(seed);
    const b = new Rng(seed);
    a.next();
    b.next();
    const expected = a.dropoutMask(shape.reduce((x, y) => x * y, 1), keep);
    const before = tf.memory().numTensors;
    const mask = dropoutMaskTensor(b, shape, keep);
    expect(mask.shape).toEqual(shape);
    expect(mask.dataSync()).toEqual(expected);
    expect(b.state()).toEqual(a.state());
    mask.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // the native path is the one under test where the native kernels are on (the default setup)
    if (process.env.DI_TEST_NATIVE !== '0') expect(tf.getKernel(DROPOUT_MASK_KERNEL, tf.getBackend())).toBeDefined();
  });

  it('refuses a keep probability outside (0, 1]', () => {
    expect(() => dropoutMaskTensor(new Rng(0), [2], 0)).toThrow(/keep must be in \(0, 1\], got 0/);
  });
});
