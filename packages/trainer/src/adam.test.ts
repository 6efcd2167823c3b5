import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Adam } from './adam.js';
import { Ema } from './ema.js';
import { ADAM_IN_PLACE_KERNEL, ADAM_KERNEL, EMA_IN_PLACE_KERNEL, EMA_KERNEL, SUM_SQUARES_KERNEL, hasKernel, sumOfSquares } from './fused.js';

describe('Adam', () => {
  it('matches the update rule computed by hand over three steps', () => {
    const p = tf.variable(tf.tensor1d([1, -2, 3]));
    const opt = new Adam({ p }, { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8 });
    const gs = [
      [0.5, -1, 2],
      [0.1, 0.3, -0.2],
      [-0.4, 0.2, 0.0],
    ];
    let x = [1, -2, 3];
    let m = [0, 0, 0];
    let v = [0, 0, 0];
    gs.forEach((g, k) => {
      const t = k + 1;
      m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]!);
      v = v.map((vi, i) => 0.99 * vi + 0.01 * g[i]! ** 2);
      x = x.map((xi, i) => xi - (0.1 * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.99 ** t)) + 1e-8));
      opt.apply({ p: tf.tensor1d(g) });
    });
    const got = Array.from(p.dataSync());
    got.forEach((g, i) => expect(g).toBeCloseTo(x[i]!, 5));
    expect(opt.t).toBe(3);
    opt.dispose();
    p.dispose();
  });

  it('with β1 = 0 (Table 7) takes a sign-like first step of size lr', () => {
    const p = tf.variable(tf.tensor1d([0, 0]));
    const opt = new Adam({ p }, { lr: 0.01, beta1: 0, beta2: 0.99 });
    opt.apply({ p: tf.tensor1d([3, -0.5]) });
    const got = Array.from(p.dataSync());
    expect(got[0]).toBeCloseTo(-0.01, 6);
    expect(got[1]).toBeCloseTo(0.01, 6);
  });

  it('clips the global gradient norm', () => {
    const p = tf.variable(tf.tensor1d([0, 0]));
    const opt = new Adam({ p }, { lr: 1, beta1: 0.9, beta2: 0.999, clipNorm: 1 });
    opt.apply({ p: tf.tensor1d([30, 40]) });
    // Clipped to [0.6, 0.8]; the first Adam step is still ±lr per coordinate.
    expect(Array.from(opt.m.p!.dataSync()).map((v) => v / 0.1)).toEqual([expect.closeTo(0.6, 5), expect.closeTo(0.8, 5)]);
  });
});

describe('optimiser state', () => {
  it('gives back every byte on dispose (no initial values left behind by the state variables)', () => {
    const p = tf.variable(tf.ones([64, 64]));
    const before = tf.memory();
    const opt = new Adam({ p }, { lr: 0.1, beta1: 0, beta2: 0.99 });
    const ema = new Ema({ p }, 10);
    expect(tf.memory().numBytes - before.numBytes).toBe(3 * 64 * 64 * 4); // m, v and the shadow
    const g = tf.onesLike(p);
    opt.apply({ p: g });
    ema.update();
    g.dispose();
    opt.dispose();
    ema.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    p.dispose();
  });
});

describe('the fused optimiser kernels (@diff-instruct/native)', () => {
  /** Runs f with the named kernels unregistered (the composed tfjs ops), then re-registers them. */
  function composed<T>(names: string[], f: () => T): T {
    const saved = names.map((n) => tf.getKernel(n, tf.getBackend())!);
    for (const n of names) tf.unregisterKernel(n, tf.getBackend());
    try {
      return f();
    } finally {
      for (const k of saved) tf.registerKernel(k);
    }
  }

  it('Adam (with gradient clipping) and the EMA equal the composed ops up to float32 rounding; in place, the per-parameter kernels bit for bit', () => {
    // the test setup enables the native kernels unless DI_TEST_NATIVE=0
    expect(hasKernel(ADAM_KERNEL) && hasKernel(EMA_KERNEL) && hasKernel(SUM_SQUARES_KERNEL)).toBe(process.env.DI_TEST_NATIVE !== '0');
    // in place on wasm only (the cpu backend's dataSync() returns the storage itself)
    expect(hasKernel(ADAM_IN_PLACE_KERNEL) && hasKernel(EMA_IN_PLACE_KERNEL)).toBe(process.env.DI_TEST_NATIVE !== '0' && tf.getBackend() === 'wasm');
    if (!hasKernel(ADAM_KERNEL)) return;
    const run = () => {
      // c starts on the storage of another tensor (as a clone does): never updated in place
      const other = tf.randomNormal([4, 2], 0, 1, 'float32', 5);
      const before = Array.from(other.dataSync());
      const p = { a: tf.variable(tf.randomNormal([7, 5], 0, 1, 'float32', 1)), b: tf.variable(tf.randomNormal([3], 0, 1, 'float32', 2)), c: tf.variable(other) };
      const opt = new Adam(p, { lr: 3e-3, beta1: 0.9, beta2: 0.99, clipNorm: 0.5 });
      const ema = new Ema(p, 3);
      for (let t = 0; t < 6; t++) {
        const g = { a: tf.randomNormal([7, 5], 0, 1, 'float32', 10 + t), b: tf.randomNormal([3], 0, 2, 'float32', 20 + t), c: tf.randomNormal([4, 2], 0, 1, 'float32', 30 + t) };
        opt.apply(g);
        ema.update();
        tf.dispose(Object.values(g));
      }
      const out = [...Object.values(p), ...Object.values(opt.m), ...Object.values(opt.v), ...Object.values(ema.shadow)].map((v) => Array.from(v.dataSync()));
      opt.dispose();
      ema.dispose();
      tf.dispose(Object.values(p));
      expect(Array.from(other.dataSync())).toEqual(before);
      other.dispose();
      return out;
    };
    const inPlaceKernels = [ADAM_IN_PLACE_KERNEL, EMA_IN_PLACE_KERNEL].filter(hasKernel);
    const inPlace = run();
    const fused = composed(inPlaceKernels, run);
    const plain = composed([...inPlaceKernels, ADAM_KERNEL, EMA_KERNEL, SUM_SQUARES_KERNEL], run);
    // one call for all parameters, in place where no other tensor shares the storage: the same bits
    expect(inPlace).toEqual(fused);
    // six steps of Adam (lr 3e-3) and EMA: every value within a few float32 ulps (wasm: the same bits)
    fused.forEach((vs, k) => vs.forEach((v, i) => expect(Math.abs(v - plain[k]![i]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(v)))));
    const gs = [tf.randomNormal([100], 0, 1, 'float32', 3), tf.randomNormal([4, 4], 0, 1, 'float32', 4)];
    const a = sumOfSquares(gs);
    const b = composed([SUM_SQUARES_KERNEL], () => sumOfSquares(gs));
    expect(Math.abs(a - b) / b).toBeLessThan(1e-6);
    tf.dispose(gs);
  });
});
