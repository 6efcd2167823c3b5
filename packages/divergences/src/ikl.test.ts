import * as tf from '@tensorflow/tfjs';
import { type Denoiser, GaussianMixture, Rng, a1Weight } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { disjointSupportLogDensity, iklDisjointSupport } from './analytic.js';
import { a1Denoiser } from './a1.fixtures.js';
import { type IklWeighting, iklSurrogate, iklValue } from './ikl.js';
import { simpson } from './quadrature.js';

/** Rows (θ, z), z ∼ U[0,1]: g_θ(z) of appendix A.1, differentiable in θ. */
function a1Generator(theta: tf.Scalar, z: Float32Array): tf.Tensor2D {
  return tf.concat([tf.mul(tf.ones([z.length, 1]), theta), tf.tensor2d(z, [z.length, 1])], 1) as tf.Tensor2D;
}

describe('iklValue (3.1)', () => {
  it('matches the closed form θ² of appendix A.1 within 2%', () => {
    for (const theta of [1, 2.5]) {
      const rng = new Rng(7);
      const sampleQ = (t: number, n: number, r: Rng): tf.Tensor2D => {
        const e = r.normal(2 * n);
        const u = r.uniform(n);
        const x = new Float32Array(2 * n);
        for (let i = 0; i < n; i++) {
          x[2 * i] = theta + Math.sqrt(t) * e[2 * i]!;
          x[2 * i + 1] = u[i]! + Math.sqrt(t) * e[2 * i + 1]!;
        }
        return tf.tensor2d(x, [n, 2]);
      };
      const before = tf.memory().numTensors;
      const { value, stderr } = iklValue({
        logQ: (x, t) => disjointSupportLogDensity(theta, x, t),
        logP: (x, t) => disjointSupportLogDensity(0, x, t),
        sampleQ,
        weight: a1Weight,
        rng,
        samplesPerNode: 16384,
      });
      expect(tf.memory().numTensors).toBe(before);
      const exact = iklDisjointSupport(theta, a1Weight);
      expect(exact).toBeCloseTo(theta * theta, 6);
      expect(Math.abs(value - exact) / exact).toBeLessThan(0.02);
      expect(stderr).toBeGreaterThan(0);
      expect(stderr / exact).toBeLessThan(0.01);
      expect(Math.abs(value - exact)).toBeLessThan(5 * stderr + 1e-3 * exact);
    }
  });
});

describe('iklSurrogate (3.2) on appendix A.1', () => {
  const I = iklDisjointSupport(1, a1Weight); // ∫ w/2t dt = 1
  const closedFormGrad = (theta: number) =>
    tf.tidy(() => tf.grad((th: tf.Tensor) => tf.mul(tf.square(th), I))(tf.scalar(theta)).dataSync()[0]!);

  it('its gradient in θ over a quadrature grid of σ equals d/dθ of θ²∫w/2t', () => {
    // Simpson in u = log σ on [−7, 7] (a node on σ = 1, the kink of w), M draws of (z, n) per node.
    // With t = σ², ∫ w(t)(…) dt = ∫ w(σ²)(…) 2σ² du, and the surrogate averages over all N = K·M
    // samples, so sample i at node k gets w_i = (N/M)·c_k·w(σ_k²)·2σ_k².
    const { nodes, weights } = simpson(-7, 7, 61);
    const K = nodes.length;
    const M = 8;
    const N = K * M;
    const rng = new Rng(3);
    const sig = new Float32Array(N);
    const w = new Float32Array(N);
    for (let k = 0; k < K; k++) {
      const s = Math.exp(nodes[k]!);
      for (let j = 0; j < M; j++) {
        sig[k * M + j] = s;
        w[k * M + j] = (N / M) * weights[k]! * a1Weight(s * s) * 2 * s * s;
      }
    }
    const z = rng.uniform(N);
    const noise = rng.normalTensor([N, 2]);
    const sigma = tf.tensor1d(sig);
    for (const theta of [0.8, -1.5]) {
      const g = tf.tidy(() =>
        tf
          .grad((th: tf.Tensor) =>
            iklSurrogate({
              x0: a1Generator(th as tf.Scalar, z),
              sigma,
              noise,
              teacher: a1Denoiser(0),
              fake: a1Denoiser(theta),
              weighting: () => w,
            }),
          )(tf.scalar(theta))
          .dataSync()[0]!,
      );
      const expected = closedFormGrad(theta);
      expect(expected).toBeCloseTo(2 * theta, 5);
      expect(Math.abs(g - expected) / Math.abs(expected)).toBeLessThan(0.01);
    }
    tf.dispose([noise, sigma]);
  });

  it('its gradient with Monte Carlo σ and the density correction w/π matches within a few %', () => {
    // u = log σ ∼ Laplace(0, 1), π(u) = e^{−|u|}/2: w_i = w(σ_i²)·2σ_i² / π(u_i) (dt = 2σ² du).
    const N = 4096;
    const rng = new Rng(11);
    const uu = rng.uniform(N);
    const sig = new Float32Array(N);
    const w = new Float32Array(N);
    for (let i = 0; i < N; i++) {
      const v = uu[i]! - 0.5;
      const u = -Math.sign(v) * Math.log(1 - 2 * Math.abs(v));
      const s = Math.exp(u);
      sig[i] = s;
      w[i] = (a1Weight(s * s) * 2 * s * s) / (Math.exp(-Math.abs(u)) / 2);
    }
    const z = rng.uniform(N);
    const noise = rng.normalTensor([N, 2]);
    const sigma = tf.tensor1d(sig);
    const theta = 1.3;
    const g = tf.tidy(() =>
      tf
        .grad((th: tf.Tensor) =>
          iklSurrogate({
            x0: a1Generator(th as tf.Scalar, z),
            sigma,
            noise,
            teacher: a1Denoiser(0),
            fake: a1Denoiser(theta),
            weighting: () => w,
          }),
        )(tf.scalar(theta))
        .dataSync()[0]!,
    );
    expect(Math.abs(g - closedFormGrad(theta)) / closedFormGrad(theta)).toBeLessThan(0.04);
    tf.dispose([noise, sigma]);
  });
});

/** Two 3-D mixtures with exact diffused log-densities, scores and denoisers. */
const p = new GaussianMixture([
  { mean: [1, 0, -0.5], std: 0.4, weight: 1 },
  { mean: [-1, 0.5, 0], std: 0.7, weight: 2 },
]);
const q = new GaussianMixture([
  { mean: [0.2, -0.3, 0.4], std: 0.6, weight: 1 },
  { mean: [-0.5, 1, 0.3], std: 0.3, weight: 1 },
]);

/** The surrogate gradient w.r.t. x0, by tf.grad. */
function surrogateGrad(x0: tf.Tensor, sigma: tf.Tensor1D, noise: tf.Tensor, weighting: IklWeighting, teacher: Denoiser = p.denoiser, fake: Denoiser = q.denoiser): tf.Tensor {
  return tf.grad((x: tf.Tensor) => iklSurrogate({ x0: x, sigma, noise, teacher, fake, weighting }))(x0);
}

describe('iklSurrogate (3.2): the custom gradient', () => {
  const N = 6;
  const rng = new Rng(5);

  it('is w(σ)(s_fake − s_teacher)/N per sample, for every weighting', () => {
    const x0 = tf.tensor2d(q.sample(rng, N), [N, 3]);
    const noise = rng.normalTensor([N, 3]);
    const sig = Float32Array.from([0.05, 0.3, 0.8, 1.5, 4, 20]);
    const sigma = tf.tensor1d(sig);
    const sd = 0.5;
    const dmdScale = tf.tidy(() => {
      const xt = tf.add(x0, tf.mul(sigma.reshape([N, 1]), noise));
      return tf.mean(tf.abs(tf.sub(x0, p.denoiser(xt, sigma))), 1).dataSync();
    });
    const cases: [IklWeighting, (s: number, i: number) => number][] = [
      ['sigma2', (s) => s * s],
      ['uniform', () => 1],
      ['edm', (s) => (s * s * (s * s + sd * sd)) / (sd * sd)],
      ['dmd', (s, i) => (s * s) / dmdScale[i]!],
      [(s) => s.map((v) => 1 / v), (s) => 1 / s],
    ];
    for (const [weighting, wOf] of cases) {
      const got = tf.tidy(() => surrogateGrad(x0, sigma, noise, weighting).arraySync() as number[][]);
      const expected = tf.tidy(() => {
        const xt = tf.add(x0, tf.mul(sigma.reshape([N, 1]), noise)) as tf.Tensor2D;
        const sf = tf.div(tf.sub(q.denoiser(xt, sigma), xt), tf.square(sigma).reshape([N, 1]));
        const sp = tf.div(tf.sub(p.denoiser(xt, sigma), xt), tf.square(sigma).reshape([N, 1]));
        const w = tf.tensor2d(Array.from(sig, wOf), [N, 1]);
        return tf.div(tf.mul(w, tf.sub(sf, sp)), N).arraySync() as number[][];
      });
      got.forEach((row, i) =>
        row.forEach((v, d) => {
          const e = expected[i]![d]!;
          expect(Math.abs(v - e)).toBeLessThan(tol(1e-4) * Math.max(1, Math.abs(e)));
        }),
      );
    }
    tf.dispose([x0, noise, sigma]);
  });

  it('is the finite-difference gradient of (1/N)Σ w·(log q_σ − log p_σ)(x0 + σn) (gradCheck)', () => {
    // With exact scores s = ∇log, w(s_q − s_p)(x0 + σn) is the gradient in x0 of w·log(q_σ/p_σ)(x0 + σn).
    // gradCheck gets an op whose value is that log-ratio and whose gradient is the surrogate's.
    for (const s of [0.3, 1.2]) {
      for (const weighting of ['sigma2', 'uniform', 'edm'] as const) {
        const x0 = tf.tensor2d(q.sample(rng, N), [N, 3]);
        const noise = rng.normalTensor([N, 3]);
        const sigma = tf.fill([N], s) as tf.Tensor1D;
        const w = weighting === 'sigma2' ? s * s : weighting === 'uniform' ? 1 : (s * s * (s * s + 0.25)) / 0.25;
        const G0 = tf.tidy(() => surrogateGrad(x0, sigma, noise, weighting));
        const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
          const y = inputs[0] as tf.Tensor2D;
          const value = tf.tidy(() => {
            const xt = tf.add(y, tf.mul(noise, s)) as tf.Tensor2D;
            return tf.mul(tf.mean(tf.sub(q.logProb(xt, s), p.logProb(xt, s))), w) as tf.Scalar;
          });
          return { value, gradFunc: (dy: tf.Tensor) => tf.mul(dy, G0) };
        });
        const r = gradCheck((y) => op(y) as tf.Scalar, [x0], { eps: 1e-2 });
        expect(r.maxRelError).toBeLessThan(tol(2e-3));
        tf.dispose([x0, noise, sigma, G0]);
      }
    }
  });

  it('sends no gradient to the denoisers’ variables, and none through their Jacobians', () => {
    const a = tf.variable(tf.scalar(2), true, 'teacherParam');
    const theta = tf.variable(tf.tensor2d([[0.3, -0.2], [1, 0.5]]), true, 'generatorParam');
    const noise = tf.tensor2d([[0.1, -1], [0.7, 0.2]]);
    const sigma = tf.tensor1d([0.5, 1.5]);
    // A teacher that depends strongly on x and on a variable, and a fake with a large Jacobian.
    const teacher: Denoiser = (x) => tf.mul(a, tf.square(x));
    const fake: Denoiser = (x) => tf.mul(tf.sin(tf.mul(x, 3)), 4);
    const { grads } = tf.variableGrads(
      () => iklSurrogate({ x0: tf.mul(theta, 2), sigma, noise, teacher, fake, weighting: 'uniform' }),
      [a, theta],
    );
    expect(grads.teacherParam).toBeUndefined();
    const expected = tf.tidy(() => {
      const x0 = tf.mul(theta, 2);
      const xt = tf.add(x0, tf.mul(sigma.reshape([2, 1]), noise));
      const g = tf.div(tf.sub(fake(xt, sigma), teacher(xt, sigma)), tf.square(sigma).reshape([2, 1]));
      return tf.mul(g, 2 / 2).arraySync() as number[][]; // ∂x0/∂θ = 2, 1/N = 1/2
    });
    const got = grads.generatorParam!.arraySync() as number[][];
    got.forEach((row, i) => row.forEach((v, d) => expect(v).toBeCloseTo(expected[i]![d]!, 4)));
    tf.dispose([a, theta, noise, sigma, ...Object.values(grads)]);
  });

  it('leaks nothing, forward or backward', () => {
    const x0 = tf.tensor2d(q.sample(rng, N), [N, 3]);
    const noise = rng.normalTensor([N, 3]);
    const sigma = tf.tensor1d([0.1, 0.5, 1, 2, 5, 10]);
    iklSurrogate({ x0, sigma, noise, teacher: p.denoiser, fake: q.denoiser, weighting: 'dmd' }).dispose();
    const before = tf.memory().numTensors;
    iklSurrogate({ x0, sigma, noise, teacher: p.denoiser, fake: q.denoiser }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    for (const weighting of ['sigma2', 'dmd', 'edm'] as const) surrogateGrad(x0, sigma, noise, weighting).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x0, noise, sigma]);
  });

  it('throws a clear error on mismatched shapes, naming the argument', () => tf.tidy(() => {
    const x0 = tf.zeros([4, 3]);
    const teacher = p.denoiser;
    const fake = q.denoiser;
    const bad = (over: { noise?: tf.Tensor; sigma?: tf.Tensor1D; label?: tf.Tensor2D }) => () =>
      iklSurrogate({ x0, noise: tf.zeros([4, 3]), sigma: tf.ones([4]) as tf.Tensor1D, teacher, fake, ...over });
    expect(bad({ noise: tf.zeros([4, 2]) })).toThrow(/iklSurrogate: noise has shape \[4, 2\] but x0 has shape \[4, 3\]/);
    expect(bad({ sigma: tf.ones([3]) as tf.Tensor1D })).toThrow(/iklSurrogate: sigma must have shape \[4\]/);
    expect(bad({ label: tf.zeros([2, 10]) as tf.Tensor2D })).toThrow(/iklSurrogate: label must have shape \[4, classes\]/);
    expect(() =>
      iklSurrogate({ x0, noise: tf.zeros([4, 3]), sigma: tf.ones([4]) as tf.Tensor1D, teacher, fake, weighting: () => new Float32Array(2) }),
    ).toThrow(/weighting function returned 2 weights for 4 samples/);
  }));
});

/**
 * Corollary 3.5: a KL-GAN — a generator trained against the exact density-ratio discriminator
 * D(x) = log q(x) − log p(x), held fixed — gets the gradient E[(∇log q − ∇log p)(g_θ(z))·∂g/∂θ],
 * which is Diff-Instruct's gradient (3.2) with all of the weight w(t) at t = 0.
 */
describe('KL-GAN is Diff-Instruct with the weight at t = 0 (Corollary 3.5)', () => {
  // the teacher p: a two-component mixture in 2-D; the generator g_θ(z) = μ + a·z, so q = N(μ, a²I)
  const p = new GaussianMixture([
    { mean: [1, -0.5], std: 0.6, weight: 2 },
    { mean: [-1.2, 0.8], std: 0.4, weight: 1 },
  ]);
  const mu0 = [0.3, 0.2];
  const a0 = 0.7;
  const n = 256;
  const z = new Rng(5).normalTensor([n, 2]);
  const generate = (mu: tf.Tensor, a: tf.Tensor) => tf.add(mu, tf.mul(a, z)) as tf.Tensor2D;

  it('the generator gradients (μ and a) agree', () => {
    const mu = tf.tensor1d(mu0);
    const a = tf.scalar(a0);
    // KL-GAN: ∇θ E_z[D(g_θ(z))] with D = log q − log p at the current θ, a fixed function
    const q = new GaussianMixture([{ mean: mu0, std: a0, weight: 1 }]);
    const ratio = (x: tf.Tensor2D) => tf.sub(q.logProb(x), p.logProb(x));
    const [gMuGan, gAGan] = tf.grads((m: tf.Tensor, s: tf.Tensor) => tf.mean(ratio(generate(m, s))))([mu, a]);
    // Diff-Instruct at t → 0: both scores exact (q's is the fake score's optimum), no noise, σ = 0.01
    const sigma = tf.fill([n], 0.01) as tf.Tensor1D;
    const noise = tf.zeros([n, 2]);
    const di = (m: tf.Tensor, s: tf.Tensor) => iklSurrogate({ x0: generate(m, s), sigma, noise, teacher: p.denoiser, fake: q.denoiser, weighting: 'uniform' });
    const [gMuDi, gADi] = tf.grads(di)([mu, a]);
    const gan = [...gMuGan!.dataSync(), ...gAGan!.dataSync()];
    const ours = [...gMuDi!.dataSync(), ...gADi!.dataSync()];
    // σ = 0.01 moves each score by O(σ²) ≈ 1e-4 relative; float32 differences D − x of size σ² cost ~1e-3
    gan.forEach((g, i) => expect(Math.abs(g - ours[i]!)).toBeLessThan(1e-2 * Math.max(1, Math.abs(g))));
    // and the gradient is not trivially small: q is far from p
    expect(Math.hypot(...gan)).toBeGreaterThan(0.1);
  });

  it('with the weight spread over t, the gradient differs (the correspondence is specific to t = 0)', () => {
    const mu = tf.tensor1d(mu0);
    const a = tf.scalar(a0);
    const q = new GaussianMixture([{ mean: mu0, std: a0, weight: 1 }]);
    const atSigma = (s: number) => {
      const di = (m: tf.Tensor, sc: tf.Tensor) =>
        iklSurrogate({ x0: generate(m, sc), sigma: tf.fill([n], s) as tf.Tensor1D, noise: tf.zeros([n, 2]), teacher: p.denoiser, fake: q.denoiser, weighting: 'uniform' });
      return tf.grads(di)([mu, a]).flatMap((g) => Array.from(g.dataSync()));
    };
    const small = atSigma(0.01);
    const large = atSigma(1.5);
    expect(Math.hypot(...small.map((g, i) => g - large[i]!))).toBeGreaterThan(0.1 * Math.hypot(...small));
  });
});
