import { a1Weight } from '@diff-instruct/sde';
import * as tf from '@tensorflow/tfjs';
import { tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { disjointSupportLogDensity, iklDisjointSupport } from './analytic.js';
import { boxDenoiser } from './a1.fixtures.js';

describe('iklDisjointSupport (A.4)', () => {
  it('is θ² for the weight of appendix A.1', () => {
    for (const theta of [0, 0.5, 1, -2]) expect(iklDisjointSupport(theta, a1Weight)).toBeCloseTo(theta * theta, 6);
  });

  it('is θ²/2 for w(t) = t·e^{−t}', () => {
    expect(iklDisjointSupport(3, (t) => t * Math.exp(-t))).toBeCloseTo(4.5, 6);
  });
});

describe('disjointSupportLogDensity', () => {
  it('matches log N(x; θ, t) + log ∫_0^1 N(z; s, t) ds by direct quadrature', () => {
    const rows = [
      [0.3, 0.5, 0.5],
      [1.2, -0.4, 0.05],
      [-1, 1.7, 2],
      [0, 0.5, 1e4],
    ];
    for (const [x, z, t] of rows) {
      const n = 20001;
      let box = 0;
      for (let k = 0; k < n; k++) {
        const s = k / (n - 1);
        const f = Math.exp(-((z! - s) ** 2) / (2 * t!)) / Math.sqrt(2 * Math.PI * t!);
        box += (k === 0 || k === n - 1 ? 0.5 : 1) * f;
      }
      box /= n - 1;
      const expected = -((x! - 0.7) ** 2) / (2 * t!) - 0.5 * Math.log(2 * Math.PI * t!) + Math.log(box);
      const got = tf.tidy(() => disjointSupportLogDensity(0.7, tf.tensor2d([[x!, z!]]), t!).dataSync()[0]!);
      expect(Math.abs(got - expected)).toBeLessThan(tol(1e-4) * Math.max(1, Math.abs(expected)));
    }
  });

  it('stays finite far in the tails, where Φ(b) − Φ(a) underflows', () => {
    const v = tf.tidy(() => disjointSupportLogDensity(0, tf.tensor2d([[0, -3], [0, 4], [0, 0.5]]), 1e-3).dataSync());
    for (const y of v) expect(Number.isFinite(y)).toBe(true);
    // log Φ(−3/√t) ≈ −z²/2t − log(|z|/√t) − ½log 2π
    const zt = -3 / Math.sqrt(1e-3);
    const asym = -0.5 * zt * zt - Math.log(-zt) - 0.5 * Math.log(2 * Math.PI) - 0.5 * Math.log(2 * Math.PI * 1e-3);
    expect(Math.abs(v[0]! - asym) / Math.abs(asym)).toBeLessThan(1e-3);
  });

  it('throws on rows that are not (x, z)', () => {
    const x = tf.zeros([3, 3]) as tf.Tensor2D;
    expect(() => disjointSupportLogDensity(0, x, 1)).toThrow(/x must have shape \[N, 2\]/);
    x.dispose();
  });

  it('leaks nothing', () => {
    const x = tf.tensor2d([[0.1, 0.2]]);
    const before = tf.memory().numTensors;
    disjointSupportLogDensity(1, x, 0.3).dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('boxDenoiser (test fixture)', () => {
  it('is the posterior mean of U[0,1] given z_t, by quadrature', () => {
    for (const [zt, s] of [[0.3, 0.2], [1.5, 0.7], [-2, 0.01], [40, 30]]) {
      let num = 0;
      let den = 0;
      for (let k = 0; k <= 4000; k++) {
        const z0 = k / 4000;
        const f = Math.exp(-((zt! - z0) ** 2) / (2 * s! * s!)) * (k === 0 || k === 4000 ? 0.5 : 1);
        num += z0 * f;
        den += f;
      }
      const expected = den > 0 ? num / den : zt! < 0 ? 0 : 1;
      expect(boxDenoiser(zt!, s!)).toBeCloseTo(expected, 3);
    }
  });
});
