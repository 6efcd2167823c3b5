import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { tol } from '@diff-instruct/sde/testing';

import { edmPrecond } from './precond.js';

const sd = 0.5;
const sigmas = [0.002, 0.1, 0.5, 1, 10, 80];
const table = (s: number) => ({
  // Karras et al. (2022), Table 1, "Ours"
  c_skip: (sd * sd) / (s * s + sd * sd),
  c_out: (s * sd) / Math.sqrt(s * s + sd * sd),
  c_in: 1 / Math.sqrt(s * s + sd * sd),
  c_noise: Math.log(s) / 4,
});
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

describe('edmPrecond', () => {
  it('uses the coefficients of EDM Table 1', () => {
    const n = sigmas.length;
    const sigma = tf.tensor1d(sigmas);
    // F = 0 gives c_skip·x; F = 1 at x = 0 gives c_out; a probe F records c_in·x and c_noise.
    const x = tf.ones([n, 2]);
    const cSkip = edmPrecond((xIn) => tf.zerosLike(xIn), sd)(x, sigma).dataSync();
    const cOut = edmPrecond((xIn) => tf.onesLike(xIn), sd)(tf.zeros([n, 2]), sigma).dataSync();
    let cIn: Float32Array = new Float32Array();
    let cNoise: Float32Array = new Float32Array();
    edmPrecond((xIn, c) => {
      cIn = xIn.dataSync() as Float32Array;
      cNoise = c.dataSync() as Float32Array;
      return tf.zerosLike(xIn);
    }, sd)(x, sigma);
    sigmas.forEach((s, i) => {
      const t = table(s);
      expect(rel(cSkip[2 * i]!, t.c_skip)).toBeLessThan(tol(1e-5));
      expect(rel(cOut[2 * i]!, t.c_out)).toBeLessThan(tol(1e-5));
      expect(rel(cIn[2 * i]!, t.c_in)).toBeLessThan(tol(1e-5));
      expect(Math.abs(cNoise[i]! - t.c_noise)).toBeLessThan(tol(1e-6));
    });
  });

  it('passes the label through and broadcasts σ over every axis of x', () => {
    const label = tf.tensor2d([[0, 1]]);
    let seen: tf.Tensor2D | undefined;
    const D = edmPrecond((xIn, _c, l) => {
      seen = l;
      return tf.zerosLike(xIn);
    }, sd);
    const x = tf.ones([1, 2, 3, 1]);
    const out = D(x, tf.tensor1d([1]), label);
    expect(seen).toBe(label);
    expect(out.shape).toEqual([1, 2, 3, 1]);
    expect(rel(out.dataSync()[5]!, table(1).c_skip)).toBeLessThan(tol(1e-5));
  });

  it('tends to the identity as σ → 0 when F is bounded', () => {
    const x = tf.tensor2d([
      [1.5, -2],
      [0.3, 4],
    ]);
    const D = edmPrecond((xIn) => tf.tanh(tf.mul(xIn, 100)), sd); // |F| ≤ 1
    const err = (s: number) => tf.max(tf.abs(tf.sub(D(x, tf.tensor1d([s, s])), x))).dataSync()[0]!;
    expect(err(1e-4)).toBeLessThan(tol(2e-4));
    expect(err(1e-4)).toBeLessThan(err(1e-2));
  });

  it('checks the shape of sigma', () => {
    const D = edmPrecond((xIn) => xIn, sd);
    expect(() => D(tf.ones([3, 2]), tf.ones([2]) as tf.Tensor1D)).toThrow(/sigma must have shape \[3\]/);
  });
});
