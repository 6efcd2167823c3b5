import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';

import { ADAM_KERNEL, BIAS_GRAD_KERNEL, FILTER_GRAD_KERNEL, GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL, disableNativeKernels, enableNativeKernels, loadNative, nativeKernelsEnabled, nativeStatus, openblasCoretypeFor, setNativeThreads } from './index.js';

const backend = tf.getBackend();
const randn = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** The result of f with the backend's own kernels and with the native ones, as arrays. */
function both(f: () => tf.Tensor, threads?: number): { own: Float32Array; native: Float32Array; shape: number[] } {
  disableNativeKernels();
  const a = tf.tidy(f);
  const own = a.dataSync() as Float32Array;
  const shape = a.shape;
  a.dispose();
  expect(enableNativeKernels(threads === undefined ? {} : { threads }).enabled).toBe(true);
  const b = tf.tidy(f);
  expect(b.shape).toEqual(shape);
  const native = b.dataSync() as Float32Array;
  b.dispose();
  return { own, native, shape };
}

/** max |a − b| / (1 + max |a|). */
function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(a[i]!));
  }
  return d / (1 + m);
}

afterAll(() => {
  // leave the kernels as the setup file chose them
  if (process.env.DI_TEST_NATIVE === '0') disableNativeKernels();
  else enableNativeKernels({ threads: 1 });
});

describe('@diff-instruct/native', () => {
  it('is built and loads (CI builds it at install; DI_TEST_NATIVE=0 skips the native kernels)', () => {
    const s = nativeStatus();
    expect(s.reason).toBeUndefined();
    expect(s.available).toBe(true);
    expect(['openblas', 'builtin']).toContain(s.gemm);
    expect(s.threads).toBeGreaterThanOrEqual(1);
    if (s.gemm === 'openblas') {
      // OpenBLAS runs the kernels chosen from the CPU flags (or the user's OPENBLAS_CORETYPE).
      expect(s.blasCore).toBeTruthy();
      if (process.env.OPENBLAS_CORETYPE !== undefined) expect(s.blasCore!.toLowerCase()).toBe(process.env.OPENBLAS_CORETYPE.toLowerCase());
    }
  });

  it('picks OpenBLAS kernels from the CPU flags', () => {
    const cpu = (flags: string) => `processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`;
    expect(openblasCoretypeFor(cpu('fpu sse sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl'))).toBe('SkylakeX');
    expect(openblasCoretypeFor(cpu('fpu sse sse2 avx avx2 fma avx512f'))).toBe('Haswell'); // AVX-512 without BW/DQ/VL
    expect(openblasCoretypeFor(cpu('fpu sse sse2 avx avx2'))).toBeNull(); // no FMA
    expect(openblasCoretypeFor('processor\t: 0\n')).toBeNull();
  });

  // [x shape, filter shape, stride, pad, bias]
  const convCases: [number[], number[], 1 | 2, 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]], boolean][] = [
    [[3, 9, 7, 5], [3, 3, 5, 16], 1, 'same', false], // direct kernel, odd sizes
    [[2, 8, 8, 16], [3, 3, 16, 32], 2, 'same', true], // direct, stride 2, fused bias
    [[2, 11, 13, 7], [3, 3, 7, 64], 1, 'same', true], // C_out a multiple of 32: two channel blocks at once; 13 = 8 + 4 + 1 pixels
    [[2, 9, 9, 16], [3, 3, 16, 32], 1, [[0, 0], [2, 0], [1, 3], [0, 0]], false],
    [[16, 32, 32, 32], [3, 3, 32, 32], 1, 'same', true], // padded input above 2¹⁸ floats: copied on every thread
    [[2, 9, 9, 8], [3, 3, 8, 16], 2, 'valid', false],
    [[2, 6, 6, 4], [3, 3, 4, 16], 1, [[0, 0], [2, 0], [1, 3], [0, 0]], true], // explicit, uneven pads
    [[2, 7, 6, 3], [3, 3, 3, 5], 1, 'same', true], // C_out not a multiple of 16: im2col + GEMM
    [[2, 7, 6, 3], [3, 3, 3, 1], 2, 'same', false],
    [[2, 5, 5, 12], [1, 1, 12, 20], 1, 'valid', true], // 1×1: one GEMM
    [[4, 10, 10, 6], [10, 8, 6, 16], 1, [[0, 0], [1, 1], [1, 1], [0, 0]], false], // a weight-gradient shape: filter as large as the input
  ];
  it.each(convCases.map((c, i) => [i, ...c] as const))('conv %i: %j * %j, stride %i, pad %j, bias %s, equals the backend', (i, xs, ws, s, pad, bias) => {
    const x = randn(xs, 10 + i);
    const w = randn(ws, 20 + i);
    const b = randn([ws[3]!], 30 + i);
    const { own, native } = both(() =>
      bias ? tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: s, pad, bias: b }) : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, pad),
    );
    expect(relErr(own, native)).toBeLessThan(1e-5);
    tf.dispose([x, w, b]);
  });

  const mmCases: [number[], number[], boolean, boolean][] = [
    [[7, 5], [5, 3], false, false],
    [[5, 7], [5, 3], true, false],
    [[7, 5], [3, 5], false, true],
    [[5, 7], [3, 5], true, true],
    [[4, 6, 5], [4, 5, 2], false, false], // batched
    [[4, 5, 6], [1, 5, 3], true, false], // b broadcast over the batch
    [[1, 6, 5], [3, 2, 5], false, true], // a broadcast
    [[200, 33], [33, 47], false, false],
    [[3000, 5], [3000, 32], true, false], // a long inner axis (a 1×1 conv's weight gradient): the filter-gradient kernel
  ];
  it.each(mmCases.map((c, i) => [i, ...c] as const))('matMul %i: %j · %j (transpose %s, %s) equals the backend', (i, as, bs, ta, tb) => {
    const a = randn(as, 40 + i);
    const b = randn(bs, 50 + i);
    const { own, native } = both(() => tf.matMul(a, b, ta, tb));
    expect(relErr(own, native)).toBeLessThan(1e-5);
    tf.dispose([a, b]);
  });

  it.each([
    [[2, 7, 6, 3], [3, 3, 3, 16], 1, [1, 1, 1, 1]],
    [[3, 8, 8, 5], [3, 3, 5, 32], 2, [0, 1, 0, 1]],
    [[1, 5, 9, 2], [2, 4, 2, 16], 1, [0, 0, 2, 1]],
    [[5, 19, 17, 12], [3, 3, 12, 32], 1, [1, 1, 1, 1]], // above 3e7 flops: rows summed in parts, then added
    [[3, 33, 30, 16], [3, 3, 16, 48], 2, [0, 1, 0, 1]],
  ] as const)('filter gradient of x %j for a filter %j, stride %i, pads %j equals a direct sum', (xs, ws, s, pads) => {
    enableNativeKernels();
    const [n, h, w, c] = xs;
    const [kh, kw, , co] = ws;
    const [pt, pb, pl, pr] = pads;
    const ho = Math.floor((h + pt + pb - kh) / s) + 1;
    const wo = Math.floor((w + pl + pr - kw) / s) + 1;
    const x = randn([...xs], 60);
    const dy = randn([n, ho, wo, co], 61);
    const got = tf.tidy(() => (tf.engine().runKernel(FILTER_GRAD_KERNEL, { x, dy }, { filterShape: [...ws], strides: [s, s], pads: [...pads] }) as tf.Tensor).dataSync());
    const xv = x.dataSync();
    const dv = dy.dataSync();
    const want = new Float32Array(kh * kw * c * co);
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++)
        for (let b = 0; b < n; b++)
          for (let oy = 0; oy < ho; oy++)
            for (let ox = 0; ox < wo; ox++) {
              const iy = oy * s + ky - pt;
              const ix = ox * s + kx - pl;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (let ci = 0; ci < c; ci++)
                for (let o = 0; o < co; o++) want[((ky * kw + kx) * c + ci) * co + o]! += xv[((b * h + iy) * w + ix) * c + ci]! * dv[((b * ho + oy) * wo + ox) * co + o]!;
            }
    expect(relErr(want, got as Float32Array)).toBeLessThan(1e-5);
    expect(() => tf.engine().runKernel(FILTER_GRAD_KERNEL, { x, dy }, { filterShape: [kh, kw, c, co], strides: [s, s], pads: [pt, pb + 2 * s, pl, pr] })).toThrow(/does not match/);
    tf.dispose([x, dy]);
  });

  it('falls back to the backend for what it does not cover (dilations, fused activations, int32)', () => {
    const x = randn([2, 9, 9, 3], 1) as tf.Tensor4D;
    const w = randn([3, 3, 3, 16], 2) as tf.Tensor4D;
    const b = randn([16], 3) as tf.Tensor1D;
    const dil = both(() => tf.conv2d(x, w, 1, 'same', 'NHWC', 2));
    expect(relErr(dil.own, dil.native)).toBe(0);
    const relu = both(() => tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias: b, activation: 'relu' }));
    expect(relErr(relu.own, relu.native)).toBe(0);
    expect(Math.min(...relu.native)).toBeGreaterThanOrEqual(0);
    // int32: whatever the backend does (a value on cpu, an error on wasm), the same with native kernels on
    const intMatMul = () => {
      try {
        return Array.from(tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[3], [4]], [2, 1], 'int32')).dataSync()));
      } catch (e) {
        return (e as Error).message;
      }
    };
    disableNativeKernels();
    const own = intMatMul();
    enableNativeKernels();
    expect(intMatMul()).toEqual(own);
    tf.dispose([x, w, b]);
  });

  it('computes the same with one thread or two, with OpenBLAS or the built-in GEMM, direct or im2col', () => {
    const addon = loadNative()!;
    const x = randn([3, 12, 10, 8], 4) as tf.Tensor4D;
    const w = randn([3, 3, 8, 32], 5) as tf.Tensor4D;
    const run = () => tf.tidy(() => tf.conv2d(x, w, 1, 'same').dataSync() as Float32Array);
    enableNativeKernels();
    setNativeThreads(1);
    const one = run();
    setNativeThreads(2);
    expect(run()).toEqual(one); // rows split across threads: the same arithmetic per output
    addon.setGemm('im2col');
    const im2col = run();
    addon.setGemm('direct');
    expect(relErr(one, im2col)).toBeLessThan(1e-5);
    if (addon.info().openblas) {
      const a = randn([64, 40], 6);
      const b = randn([40, 24], 7);
      const blas = tf.tidy(() => tf.matMul(a, b).dataSync() as Float32Array);
      addon.setGemm('builtin');
      const builtin = tf.tidy(() => tf.matMul(a, b).dataSync() as Float32Array);
      addon.setGemm('openblas');
      expect(relErr(blas, builtin)).toBeLessThan(1e-5);
      tf.dispose([a, b]);
    }
    expect(() => addon.setGemm('nonsense' as 'builtin')).toThrow(/unknown or unavailable GEMM/);
    tf.dispose([x, w]);
  });

  it.each([
    ['channels (the UNet skips)', [[2, 4, 4, 3], [2, 4, 4, 5]], 3],
    ['a middle axis, three parts', [[2, 3, 4], [2, 1, 4], [2, 2, 4]], 1],
    ['the first axis', [[1, 6], [3, 6]], 0],
    ['a negative axis', [[2, 3, 2], [2, 3, 1]], -1],
    ['channels, above 2¹⁸ floats (threaded copy)', [[8, 32, 32, 16], [8, 32, 32, 24]], 3],
  ] as const)('concat along %s, and its gradient (split), equal the backend’s own', (_name, shapes, axis) => {
    const parts = shapes.map((sh, i) => randn([...sh], 90 + i));
    const r = both(() => tf.concat(parts, axis));
    expect(r.native).toEqual(r.own);
    // the gradient of concat is a SplitV of dy
    const dy = randn(r.shape, 99);
    const g = both(() => tf.concat(tf.grads((...xs: tf.Tensor[]) => tf.concat(xs, axis))(parts, dy).map((t) => t.flatten())));
    expect(g.native).toEqual(g.own);
    tf.dispose([...parts, dy]);
  });

  it.each([
    ['same shape', [4, 32, 32, 16], [4, 32, 32, 16]],
    ['a scalar', [4, 32, 32, 16], []],
    ['a scalar first', [], [8, 16, 16, 32]],
    ['[C] against [..., C]', [2048, 48], [48]],
    ['[1, 1, C] first', [1, 1, 24], [40, 30, 24]],
    ['per-sample [N, 1, 1, C] (falls through)', [4, 16, 16, 32], [4, 1, 1, 32]],
    ['small (falls through)', [3, 5], [5]],
  ] as const)('add and multiply (%s) equal the backend’s own, bit for bit, on one thread or two', (_name, as, bs) => {
    const a = randn([...as], 101);
    const b = randn([...bs], 102);
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const add = both(() => tf.add(a, b));
      expect(add.native).toEqual(add.own);
      const mul = both(() => tf.mul(a, b));
      expect(mul.native).toEqual(mul.own);
    }
    setNativeThreads(1);
    enableNativeKernels();
    const ints = tf.add(tf.ones([5000], 'int32'), tf.ones([5000], 'int32'));
    expect(ints.dtype).toBe('int32'); // integer tensors fall through
    expect(ints.dataSync()[4999]).toBe(2);
    tf.dispose([a, b, ints]);
  });

  it.each([
    [[32, 32, 32, 16]],
    [[2048, 96]],
    [[3, 5]],
    [[7]],
  ])('bias gradient of dy %j is the sum over the leading axes, the same on one thread or two', (shape) => {
    enableNativeKernels();
    const dy = randn(shape, 103);
    const c = shape[shape.length - 1]!;
    const ref = tf.sum(dy.reshape([-1, c]), 0);
    const sums = [1, 2].map((threads) => {
      setNativeThreads(threads);
      const t = tf.engine().runKernel(BIAS_GRAD_KERNEL, { dy }, {}) as tf.Tensor;
      expect(t.shape).toEqual([c]);
      const d = t.dataSync() as Float32Array;
      t.dispose();
      return d;
    });
    setNativeThreads(1);
    expect(sums[1]).toEqual(sums[0]);
    expect(relErr(ref.dataSync() as Float32Array, sums[0]!)).toBeLessThan(1e-5);
    expect(() => tf.engine().runKernel(BIAS_GRAD_KERNEL, { dy: tf.scalar(1) }, {})).toThrow(/DiBiasGrad: expected a float32 dy \[\.\.\., C\]/);
    tf.dispose([dy, ref]);
  });

  it('split by sizes and by count equals the backend’s own; integer tensors fall through', () => {
    const x = randn([3, 7, 4], 95);
    const bySizes = both(() => tf.concat(tf.split(x, [2, 4, 1], 1).map((t) => t.flatten())));
    expect(bySizes.native).toEqual(bySizes.own);
    const byCount = both(() => tf.concat(tf.split(x, 2, 2).map((t) => t.flatten())));
    expect(byCount.native).toEqual(byCount.own);
    enableNativeKernels();
    const ints = tf.concat([tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[3]], [1, 1], 'int32')], 1);
    expect(ints.dtype).toBe('int32');
    expect(Array.from(ints.dataSync())).toEqual([1, 2, 3]);
    expect(() => tf.concat([tf.zeros([2, 3]), tf.zeros([3, 3])], 1)).toThrow(/does not match the shape of the rest/);
    tf.dispose([x, ints]);
  });

  it('transpose, reverse and 2× nearest resize equal the backend’s own, at every rank up to 4', () => {
    const x4 = randn([2, 3, 4, 5], 97);
    const x3 = randn([3, 4, 6], 98);
    const x2 = randn([7, 5], 99);
    const big = randn([8, 32, 32, 32], 100) as tf.Tensor4D;
    const cases: [string, () => tf.Tensor][] = [
      ['transpose 4-D (0,3,1,2)', () => tf.transpose(x4, [0, 3, 1, 2])],
      ['transpose 4-D (3,2,1,0)', () => tf.transpose(x4, [3, 2, 1, 0])],
      ['transpose 4-D, last axis kept', () => tf.transpose(x4, [1, 0, 2, 3])],
      ['transpose 3-D (0,2,1)', () => tf.transpose(x3, [0, 2, 1])],
      ['transpose 2-D', () => tf.transpose(x2)],
      ['reverse 4-D axes 0,1 (a filter flip)', () => tf.reverse(x4, [0, 1])],
      ['reverse 4-D last axis', () => tf.reverse(x4, 3)],
      ['reverse 3-D, negative axis', () => tf.reverse(x3, -2)],
      ['reverse 2-D all axes', () => tf.reverse(x2)],
      ['resize 2×', () => tf.image.resizeNearestNeighbor(x4 as tf.Tensor4D, [6, 8])],
      ['resize 2×, half-pixel centres', () => tf.image.resizeNearestNeighbor(x4 as tf.Tensor4D, [6, 8], false, true)],
      ['resize 3× (falls through)', () => tf.image.resizeNearestNeighbor(x4 as tf.Tensor4D, [9, 12])],
      ['resize 2×, aligned corners (falls through)', () => tf.image.resizeNearestNeighbor(x4 as tf.Tensor4D, [6, 8], true)],
      ['resize 2×, above 2¹⁸ floats (threaded)', () => tf.image.resizeNearestNeighbor(big, [64, 64])],
      ['cast to its own dtype', () => tf.cast(x4, 'float32')],
      ['cast to int32 (falls through)', () => tf.cast(tf.mul(x4, 3), 'int32')],
    ];
    for (const [name, f] of cases) {
      const r = both(f);
      expect(r.native, name).toEqual(r.own);
    }
    tf.dispose([x4, x3, x2, big]);
  });

  it.each([
    ['attention weights, above 2¹⁵ floats (threaded)', [32, 64, 64]],
    ['a few rows', [3, 5]],
    ['one entry per row', [4, 1]],
  ] as const)('softmax of %s equals the backend’s own, on one thread or two', (_name, shape) => {
    const x = tf.tidy(() => tf.mul(randn([...shape], 102), 4));
    for (const threads of [1, 2]) {
      const r = both(() => tf.softmax(x), threads);
      expect(relErr(r.own, r.native)).toBeLessThan(1e-6);
    }
    x.dispose();
  });

  it.each([
    ['2×2, stride 2', [2, 6, 8, 5], 2, 2, 'valid'],
    ['above 2¹⁸ floats (threaded)', [8, 64, 64, 32], 2, 2, 'valid'],
    ['3×3 (falls through)', [2, 6, 8, 5], 3, 1, 'same'],
    ['odd height (falls through)', [2, 7, 8, 5], 2, 2, 'valid'],
  ] as const)('average pooling %s equals the backend’s own, on one thread or two', (_name, shape, k, stride, pad) => {
    const x = randn([...shape], 101) as tf.Tensor4D;
    for (const threads of [1, 2]) {
      const r = both(() => tf.avgPool(x, k, stride, pad), threads);
      expect(r.shape).toEqual(tf.tidy(() => tf.avgPool(x, k, stride, pad).shape));
      expect(relErr(r.own, r.native)).toBeLessThan(1e-6);
    }
    x.dispose();
  });

  it('clone shares storage instead of copying it, and frees it with its last tensor', () => {
    enableNativeKernels();
    const before = tf.memory();
    const x = randn([64, 64], 96);
    const values = Array.from(x.dataSync());
    const y = tf.clone(x);
    const v = tf.tidy(() => tf.variable(tf.clone(y), false));
    // one buffer for the three (the wasm backend's own Identity copies)
    if (backend === 'wasm') expect(tf.memory().numDataBuffers - before.numDataBuffers).toBe(1);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual(values);
    tf.tidy(() => v.assign(tf.zerosLike(v))); // a new buffer for v; y keeps its values
    expect(Array.from(y.dataSync())).toEqual(values);
    expect(Array.from(v.dataSync()).every((e) => e === 0)).toBe(true);
    y.dispose();
    v.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers);
  });

  /** GroupNorm (+ SiLU) by plain ops (tf.moments, autodiff): the reference for the native kernels. */
  const plainGroupNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: number, act: boolean) => {
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const xg = x.reshape([n, h * w, groups, c / groups]);
    const { mean, variance } = tf.moments(xg, [1, 3], true);
    const z = tf.add(tf.mul(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, 1e-5))).reshape([n, h, w, c]), gamma), beta);
    return act ? tf.mul(z, tf.sigmoid(z)) : z;
  };

  it.each([
    ['SiLU, per-sample γ and β', true, [3, 5, 4, 8], 2, true],
    ['no activation, per-sample γ and β', false, [3, 5, 4, 8], 4, true],
    ['SiLU, shared γ and β, one group', true, [2, 7, 3, 6], 1, false],
    ['SiLU, 32×32×32 (threaded)', true, [4, 32, 32, 32], 8, true],
  ] as const)('GroupNorm kernels (%s) equal the plain ops, value and gradients', (_name, act, shape, groups, perSample) => {
    enableNativeKernels({ threads: 2 });
    const [n, , , c] = shape;
    const x = tf.add(tf.mul(randn([...shape], 80), 2), 0.7);
    const gamma = tf.add(randn([perSample ? n : 1, 1, 1, c], 81), 1);
    const beta = randn([perSample ? n : 1, 1, 1, c], 82);
    const dy = randn([...shape], 83);
    const attrs = { groups, eps: 1e-5, silu: act };
    const y = tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma, beta }, attrs) as tf.Tensor;
    const ref = plainGroupNorm(x, gamma, beta, groups, act);
    expect(relErr(ref.dataSync() as Float32Array, y.dataSync() as Float32Array)).toBeLessThan(2e-6);
    const [dx, dg, db] = tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, { x, gamma, beta, dy }, attrs) as tf.Tensor[];
    // per-sample γ/β: autodiff gives per-sample gradients; shared: their sum over the batch
    const [rx, rg, rb] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(plainGroupNorm(a, g, b, groups, act), dy)))([x, gamma, beta]);
    expect(dx!.shape).toEqual([...shape]);
    expect(dg!.shape).toEqual([n, 1, 1, c]);
    expect(relErr(rx!.dataSync() as Float32Array, dx!.dataSync() as Float32Array)).toBeLessThan(2e-5);
    const sumIfShared = (t: tf.Tensor) => (perSample ? t : tf.sum(t, 0, true));
    expect(relErr(rg!.dataSync() as Float32Array, sumIfShared(dg!).dataSync() as Float32Array)).toBeLessThan(2e-5);
    expect(relErr(rb!.dataSync() as Float32Array, sumIfShared(db!).dataSync() as Float32Array)).toBeLessThan(2e-5);
    enableNativeKernels({ threads: 1 });
    tf.dispose([x, gamma, beta, dy, y, ref, dx!, dg!, db!, rx!, rg!, rb!]);
  });

  it('GroupNorm kernels refuse bad shapes with a clear error', () => {
    const x = tf.zeros([2, 3, 3, 6]);
    const g = tf.ones([1, 1, 1, 6]);
    expect(() => tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma: g, beta: g }, { groups: 4, eps: 1e-5, silu: false })).toThrow(/6 channels cannot be split into 4 groups/);
    expect(() => tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma: tf.ones([6]), beta: g }, { groups: 2, eps: 1e-5, silu: false })).toThrow(/gamma must be \[1, 1, 1, 6\] or \[2, 1, 1, 6\], got \[6\]/);
    expect(() => tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, { x, gamma: g, beta: g, dy: tf.zeros([2, 3, 3, 5]) }, { groups: 2, eps: 1e-5, silu: true })).toThrow(/dy \[2,3,3,5\] must have the shape of x/);
    const addon = loadNative()!;
    const small = new Float32Array(4);
    expect(() => addon.groupNorm(small, [2, 9, 6, 2, 0, 0, 1], 1e-5, small, small, small)).toThrow(/smaller than/);
    const attrs = { lr: 1, beta1: 0, beta2: 0.99, eps: 1e-8, bc1: 1, bc2: 1, scale: 1 };
    expect(() => tf.engine().runKernel(ADAM_KERNEL, { p: g, m: g, v: g, g: x }, attrs)).toThrow(/DiAdam: p, m, v, g must be float32 tensors of one size, got .* g float32 \[2,3,3,6\]/);
    tf.dispose([x, g]);
  });

  it('splits large products over threads without changing the result', () => {
    // sizes above the addon's threading threshold (3e7 flops), so that two threads really run
    const x = randn([8, 32, 32, 16], 70) as tf.Tensor4D;
    const w32 = randn([3, 3, 16, 32], 71) as tf.Tensor4D; // direct kernel
    const w24 = randn([3, 3, 16, 24], 72) as tf.Tensor4D; // im2col + GEMM
    const dy = randn([8, 32, 32, 32], 73);
    const a = randn([600, 300], 74);
    const b = randn([300, 200], 75);
    const gamma = randn([8, 1, 1, 16], 76);
    const beta = randn([1, 1, 1, 16], 77);
    const gnAttrs = { groups: 4, eps: 1e-5, silu: true };
    const run = () => {
      const ts = tf.tidy(() => [
        tf.conv2d(x, w32, 1, 'same'),
        tf.conv2d(x, w24, 1, 'same'),
        tf.engine().runKernel(FILTER_GRAD_KERNEL, { x, dy }, { filterShape: [3, 3, 16, 32], strides: [1, 1], pads: [1, 1, 1, 1] }) as tf.Tensor,
        tf.matMul(a, b),
        tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma, beta }, gnAttrs) as tf.Tensor,
        ...(tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, { x, gamma, beta, dy: x }, gnAttrs) as tf.Tensor[]),
      ]);
      const arrays = ts.map((t) => t.dataSync() as Float32Array); // read outside the tidy: it walks what it returns
      tf.dispose(ts);
      return arrays;
    };
    enableNativeKernels({ threads: 1 });
    const one = run();
    enableNativeKernels({ threads: 2 });
    const two = run();
    // the pool's workers spin for ~1 ms after a job, then sleep: after 5 ms they must be woken
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    const woken = run();
    const repeated = Array.from({ length: 20 }, () => run()).at(-1)!; // back to back: spinning workers
    enableNativeKernels({ threads: 4 }); // more workers than cores, then fewer again
    const four = run();
    enableNativeKernels({ threads: 2 });
    const twoAgain = run();
    enableNativeKernels({ threads: 1 });
    for (const again of [four, twoAgain]) again.forEach((arr, i) => expect(arr).toEqual(two[i]));
    for (const again of [woken, repeated]) again.forEach((arr, i) => expect(arr).toEqual(two[i]));
    expect(two[0]).toEqual(one[0]);
    expect(two[1]).toEqual(one[1]);
    expect(two[2]).toEqual(one[2]);
    expect(relErr(one[3]!, two[3]!)).toBeLessThan(1e-6);
    for (let i = 4; i < 8; i++) expect(two[i]).toEqual(one[i]); // GroupNorm: samples are split, each computed alike
    tf.dispose([x, w32, w24, dy, a, b, gamma, beta]);
  });

  it.each([
    [1000, 0.9],
    [65_536 + 37, 0.9], // above 2¹⁶: chunks jump ahead in the stream
    [3 * 131_072 + 5, 0.5],
  ])('dropout mask of %i units (keep %f) is the serial xoshiro128** stream on one thread or two', (n, keep) => {
    const state = [0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x85a308d3];
    // the serial reference: xoshiro128**, each draw r kept when fround(r / 2³²) < keep
    const want = new Float32Array(n);
    let [s0, s1, s2, s3] = state.map((v) => v | 0) as [number, number, number, number];
    for (let i = 0; i < n; i++) {
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      want[i] = Math.fround(r / 4294967296) < keep ? Math.fround(1 / keep) : 0;
    }
    const wantState = [s0, s1, s2, s3].map((v) => v >>> 0);
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const got = new Float32Array(n);
      const after = loadNative()!.dropoutMask(state, keep, got);
      expect(got).toEqual(want);
      expect(after).toEqual(wantState);
    }
    setNativeThreads(1);
  });

  it('saves tensors for first-order gradients without Identity kernels; nested gradients keep tfjs’s clones', async () => {
    const x = randn([6, 5], 110);
    const w = randn([5, 4], 111);
    // y = Σ tanh(x·w)²: matMul and tanh save tensors for their gradients
    const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(tf.tanh(tf.matMul(xx, ww))));
    const first = () => tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a, b))([x, w]);
    // the gradient of ‖∂y/∂x‖² with respect to w: a gradient of a gradient (as an R1 penalty)
    const second = () => tf.grad((b: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => f(a, b))(x))))(w);
    const run = async (g: () => tf.Tensor | tf.Tensor[]) => {
      const before = tf.memory().numTensors;
      const p = await tf.profile(() => tf.tidy(() => tf.concat([g()].flat().map((t) => t.flatten()))));
      const out = p.result as tf.Tensor;
      const values = out.dataSync() as Float32Array;
      out.dispose();
      expect(tf.memory().numTensors).toBe(before);
      return { values, identities: p.kernels.filter((k) => k.name === 'Identity').length };
    };
    disableNativeKernels();
    const plainFirst = await run(first);
    const plainSecond = await run(second);
    enableNativeKernels();
    const fastFirst = await run(first);
    const fastSecond = await run(second);
    expect(plainFirst.identities).toBeGreaterThan(0);
    expect(fastFirst.identities).toBe(0);
    expect(fastSecond.identities).toBeGreaterThan(0);
    expect(relErr(plainFirst.values, fastFirst.values)).toBeLessThan(1e-5);
    expect(relErr(plainSecond.values, fastSecond.values)).toBeLessThan(1e-5);
    disableNativeKernels();
    expect(Object.prototype.hasOwnProperty.call(tf.engine(), 'clone')).toBe(false);
    enableNativeKernels();
    tf.dispose([x, w]);
  });

  it('checks sizes before it touches memory', () => {
    const addon = loadNative()!;
    const small = new Float32Array(4);
    expect(() => addon.gemmBatched(1, false, false, 3, 3, 3, small, 0, small, 0, small, 0)).toThrow(/smaller than/);
    expect(() => addon.conv2d(small, [1, 2, 2, 1], small, [3, 3, 1], [1, 1, 1, 1, 2, 2], null, small)).toThrow(/smaller than/);
    expect(() => addon.gemmBatched(1, false, false, 1, 1, 1, [1] as unknown as Float32Array, 0, small, 0, small, 0)).toThrow(/Float32Array/);
  });

  it('leaves no tensors or wasm memory behind', () => {
    enableNativeKernels();
    const x = randn([2, 8, 8, 16], 8) as tf.Tensor4D;
    const w = randn([3, 3, 16, 16], 9) as tf.Tensor4D;
    const step = () => tf.tidy(() => tf.sum(tf.matMul(tf.conv2d(x, w, 1, 'same').reshape([128, 16]), w.reshape([144, 16]), false, true)).dataSync());
    step();
    const before = tf.memory();
    for (let i = 0; i < 50; i++) step();
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    tf.dispose([x, w]);
  });

  it('restores the backend kernels, and stays off with DI_NATIVE=0', () => {
    enableNativeKernels();
    expect(nativeKernelsEnabled()).toBe(true);
    disableNativeKernels();
    expect(nativeKernelsEnabled()).toBe(false);
    const saved = process.env.DI_NATIVE;
    process.env.DI_NATIVE = '0';
    try {
      const r = enableNativeKernels();
      expect(r.enabled).toBe(false);
      expect(r.reason).toMatch(/DI_NATIVE=0/);
      expect(nativeKernelsEnabled()).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.DI_NATIVE;
      else process.env.DI_NATIVE = saved;
    }
    expect(enableNativeKernels({ backend: 'webgl' }).enabled).toBe(false);
    expect(backend).toBe(tf.getBackend());
  });
});
