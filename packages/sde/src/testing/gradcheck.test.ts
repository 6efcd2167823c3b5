import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '../rng.js';
import { gradCheck, tol } from './index.js';

describe('gradCheck', () => {
  it('passes on a smooth function and reports the known gradient', () => {
    // f(x, y) = Σ sin(x)·y², ∂f/∂x = cos(x)·y², ∂f/∂y = 2 sin(x)·y.
    const rng = new Rng(1);
    const x = rng.normalTensor([3, 4]);
    const y = rng.normalTensor([3, 4]);
    const f = (...[a, b]: tf.Tensor[]) => tf.sum(tf.mul(tf.sin(a!), tf.square(b!))) as tf.Scalar;
    const before = tf.memory().numTensors;
    const r = gradCheck(f, [x, y], { probes: 12 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.maxRelError).toBeLessThan(tol(5e-3));
    expect(r.analytic.length).toBe(24);
    const xv = x.dataSync();
    const yv = y.dataSync();
    expect(r.analytic[0]!).toBeCloseTo(Math.cos(xv[0]!) * yv[0]! ** 2, 4);
    expect(r.analytic[12]!).toBeCloseTo(2 * Math.sin(xv[0]!) * yv[0]!, 4);
    tf.dispose([x, y]);
  });

  it('fails on a custom gradient that is wrong', () => {
    // Value Σ x², but the declared gradient is x instead of 2x.
    const squareSum = (factor: number) =>
      tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
        save([x]);
        return {
          value: tf.sum(tf.square(x)),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(saved[0]!, factor)),
        };
      });
    const right = squareSum(2);
    const wrong = squareSum(1);
    const x = tf.tidy(() => tf.add(new Rng(2).normalTensor([10]), 3));
    expect(gradCheck((a) => right(a) as tf.Scalar, [x]).maxRelError).toBeLessThan(tol(5e-3));
    expect(gradCheck((a) => wrong(a) as tf.Scalar, [x]).maxRelError).toBeGreaterThan(0.3);
    x.dispose();
  });
});
