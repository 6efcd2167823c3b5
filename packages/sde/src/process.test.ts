import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { GaussianMixture } from './mixture.js';
import {
  type ForwardProcess,
  brownianProcess,
  conditionalScore,
  denoiserFromEpsilon,
  denoiserFromScore,
  perturb,
  tweedie,
  veProcess,
  vpProcess,
} from './process.js';
import { Rng } from './rng.js';
import { tol } from './testing/index.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor | number[][]) =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, Array.isArray(b) ? tf.tensor2d(b) : b))).dataSync()[0]!);

const processes: ForwardProcess[] = [veProcess(), vpProcess(), brownianProcess()];

/** A 1-D Gaussian N(μ, s²) per coordinate, for closed forms under VP. */
const MU = [0.7, -1.3];
const S = 0.6;

/** The exact score of p_t for the process p when x0 ~ N(μ, s² I): −(x − αμ)/(α² s² + σ²). */
function gaussianScore(p: ForwardProcess) {
  return (x: tf.Tensor, t: Float32Array) =>
    tf.tidy(() => {
      const a = Array.from(t, p.alpha);
      const v = Array.from(t, (u) => p.alpha(u) ** 2 * S * S + p.sigma(u) ** 2);
      const mean = tf.mul(tf.tensor2d(a, [t.length, 1]), tf.tensor1d(MU));
      return tf.div(tf.neg(tf.sub(x, mean)), tf.tensor2d(v, [t.length, 1]));
    });
}

describe('forward processes', () => {
  it('VE has σ(t) = t, Brownian σ(t) = √t, both α = 1, and tOfSigma inverts σ', () => {
    const ve = veProcess();
    const bm = brownianProcess();
    for (const t of [0.01, 0.5, 2, 30]) {
      expect(ve.sigma(t)).toBe(t);
      expect(ve.alpha(t)).toBe(1);
      expect(bm.sigma(t)).toBeCloseTo(Math.sqrt(t), 12);
      expect(bm.alpha(t)).toBe(1);
      expect(bm.g(t)).toBe(1);
      expect(ve.tOfSigma(ve.sigma(t))).toBeCloseTo(t, 12);
      expect(bm.tOfSigma(bm.sigma(t))).toBeCloseTo(t, 12);
    }
  });

  it('VP: tOfSigma inverts σ(t)/α(t), and α² + σ² = 1', () => {
    const p = vpProcess();
    for (let t = p.tMin; t <= p.tMax; t += 0.037) {
      expect(p.alpha(t) ** 2 + p.sigma(t) ** 2).toBeCloseTo(1, 12);
      expect(p.tOfSigma(p.sigma(t) / p.alpha(t))).toBeCloseTo(t, 8);
    }
    // β(t) = 0.1 + 19.9 t: α(1) = exp(−(0.1 + 9.95)/2).
    expect(p.alpha(1)).toBeCloseTo(Math.exp(-10.05 / 2), 12);
  });

  it("G(t)² = dσ²/dt − 2 (α'/α) σ² for every process (the variance ODE of (2.1))", () => {
    for (const p of processes) {
      for (const t of [0.05, 0.3, 0.9]) {
        const h = 1e-5;
        const ds2 = (p.sigma(t + h) ** 2 - p.sigma(t - h) ** 2) / (2 * h);
        const dlogA = (Math.log(p.alpha(t + h)) - Math.log(p.alpha(t - h))) / (2 * h);
        expect(p.g(t) ** 2).toBeCloseTo(ds2 - 2 * dlogA * p.sigma(t) ** 2, 5);
      }
    }
  });
});

describe('perturb and conditionalScore', () => {
  it('x_t = α x0 + σ ε and ∇log p(x_t|x0) = −(x_t − α x0)/σ² = −ε/σ, per sample', () => {
    const rng = new Rng(1);
    for (const p of processes) {
      const t = Float32Array.from([0.1, 0.5, 0.9]);
      const x0 = rng.normalTensor([3, 2]);
      const eps = rng.normalTensor([3, 2]);
      const xt = perturb(p, x0, t, eps);
      const x0v = x0.arraySync() as number[][];
      const ev = eps.arraySync() as number[][];
      const expected = x0v.map((r, i) => r.map((v, j) => p.alpha(t[i]!) * v + p.sigma(t[i]!) * ev[i]![j]!));
      expect(maxAbs(xt, expected)).toBeLessThan(tol(1e-5));
      const before = tf.memory().numTensors;
      const sc = conditionalScore(p, xt, x0, t);
      expect(tf.memory().numTensors).toBe(before + 1);
      const expectedScore = ev.map((r, i) => r.map((e) => -e / p.sigma(t[i]!)));
      expect(maxAbs(sc, expectedScore)).toBeLessThan(tol(1e-4));
      tf.dispose([x0, eps, xt, sc]);
    }
  });

  it('rejects a time array of the wrong length', () => {
    const x = tf.zeros([3, 2]);
    expect(() => perturb(veProcess(), x, [1, 2], x)).toThrow(/one t per sample/);
    expect(() => conditionalScore(veProcess(), x, x, [1])).toThrow(/one t per sample/);
    x.dispose();
  });
});

describe('tweedie', () => {
  it('VE: Tweedie of the autodiff score of the diffused mixture is the mixture denoiser', () => {
    const m = new GaussianMixture([
      { mean: [1, 0], std: 0.2, weight: 1 },
      { mean: [-1, 0.5], std: 0.4, weight: 2 },
      { mean: [0, -1], std: 0.3, weight: 1 },
    ]);
    const p = veProcess();
    const x = new Rng(2).normalTensor([32, 2]) as tf.Tensor2D;
    for (const sigma of [0.05, 0.5, 3]) {
      const t = new Float32Array(32).fill(sigma);
      tf.tidy(() => {
        const score = tf.grad((y: tf.Tensor) => tf.sum(m.logProb(y as tf.Tensor2D, sigma)))(x);
        const viaTweedie = tweedie(p, x, score, t);
        const exact = m.denoiser(x, tf.tensor1d(t));
        expect(maxAbs(viaTweedie, exact)).toBeLessThan(tol(1e-4) * Math.max(1, sigma * sigma));
      });
    }
    x.dispose();
  });

  it('VP: (x + σ² s)/α is the posterior mean (α s² x + σ² μ)/(α² s² + σ²) of a Gaussian', () => {
    const p = vpProcess();
    const t = Float32Array.from([0.01, 0.2, 0.5, 0.8]);
    const x = new Rng(3).normalTensor([4, 2]);
    const out = tweedie(p, x, gaussianScore(p)(x, t), t);
    const xv = x.arraySync() as number[][];
    const expected = xv.map((r, i) =>
      r.map((v, j) => {
        const a = p.alpha(t[i]!);
        const s2 = p.sigma(t[i]!) ** 2;
        return (a * S * S * v + s2 * MU[j]!) / (a * a * S * S + s2);
      }),
    );
    expect(maxAbs(out, expected)).toBeLessThan(tol(1e-4));
    tf.dispose([x, out]);
  });
});

describe('denoiser adapters', () => {
  // Under VE, x̃ = x0 + σ̃ ε with x0 ~ N(μ, s²): the exact denoiser is the one-component mixture's.
  const gauss = new GaussianMixture([{ mean: MU, std: S, weight: 1 }]);
  const sigmaTilde = tf.tensor1d([0.01, 0.3, 1, 5, 40]);

  it('denoiserFromScore with the exact VP score is the exact VE denoiser at σ̃ = σ/α', () => {
    const p = vpProcess();
    const xTilde = tf.tidy(() => tf.mul(new Rng(4).normalTensor([5, 2]), tf.reshape(sigmaTilde, [5, 1])));
    const before = tf.memory().numTensors;
    const D = denoiserFromScore(p, gaussianScore(p));
    const out = D(xTilde, sigmaTilde);
    expect(tf.memory().numTensors).toBe(before + 1);
    const exact = gauss.denoiser(xTilde, sigmaTilde);
    expect(maxAbs(out, exact)).toBeLessThan(tol(1e-4));
    tf.dispose([xTilde, out, exact]);
  });

  it('denoiserFromEpsilon with ε̂ = −σ·score is the same denoiser', () => {
    const p = vpProcess();
    const score = gaussianScore(p);
    const epsilon = (x: tf.Tensor, t: Float32Array) =>
      tf.tidy(() => tf.mul(tf.neg(score(x, t)), tf.tensor2d(Array.from(t, p.sigma), [t.length, 1])));
    const xTilde = tf.tidy(() => tf.mul(new Rng(5).normalTensor([5, 2]), tf.reshape(sigmaTilde, [5, 1])));
    const before = tf.memory().numTensors;
    const out = denoiserFromEpsilon(p, epsilon)(xTilde, sigmaTilde);
    expect(tf.memory().numTensors).toBe(before + 1);
    const exact = gauss.denoiser(xTilde, sigmaTilde);
    // (x − σ ε̂)/α divides by α ≈ e^{-5} at σ̃ = 40: float32 cancellation, so a looser bound.
    expect(maxAbs(out, exact)).toBeLessThan(tol(1e-3));
    tf.dispose([xTilde, out, exact]);
  });

  it('passes the time t = tOfSigma(σ̃) to the model', () => {
    const p = vpProcess();
    let seen: Float32Array | undefined;
    const D = denoiserFromScore(p, (x, t) => {
      seen = t;
      return tf.zerosLike(x);
    });
    tf.tidy(() => D(tf.zeros([5, 2]), sigmaTilde));
    const s = sigmaTilde.dataSync();
    seen!.forEach((t, i) => expect(p.sigma(t) / p.alpha(t)).toBeCloseTo(s[i]!, 3));
  });
});
