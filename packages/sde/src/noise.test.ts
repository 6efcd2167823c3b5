import { describe, expect, it } from 'vitest';

import { karrasSigmas, logNormalSigma, logUniformSigma, uniformTime } from './noise.js';
import { brownianProcess, veProcess, vpProcess } from './process.js';
import { Rng } from './rng.js';

function moments(x: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i]!;
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i]! - m) ** 2;
  return { mean: m, std: Math.sqrt(v / x.length) };
}

describe('karrasSigmas', () => {
  it('follows eq. (5) of Karras et al.: endpoints, the ρ formula, decreasing, a final 0', () => {
    const s = karrasSigmas({ steps: 18 });
    expect(s.length).toBe(19);
    expect(s[0]).toBeCloseTo(80, 4);
    expect(s[17]).toBeCloseTo(0.002, 6);
    expect(s[18]).toBe(0);
    for (let i = 1; i < s.length; i++) expect(s[i]!).toBeLessThan(s[i - 1]!);
    // σ_i^{1/ρ} is an arithmetic progression between σ_max^{1/ρ} and σ_min^{1/ρ}.
    const a = 80 ** (1 / 7);
    const b = 0.002 ** (1 / 7);
    for (let i = 0; i < 18; i++) {
      expect(s[i]! ** (1 / 7)).toBeCloseTo(a + (i / 17) * (b - a), 5);
    }
    // A hand-computed middle value: i = 9 of 18 steps.
    expect(s[9]).toBeCloseTo((a + (9 / 17) * (b - a)) ** 7, 4);
  });

  it('takes custom σ_min, σ_max and ρ; ρ = 1 is a linear grid', () => {
    const s = karrasSigmas({ steps: 4, sigmaMin: 1, sigmaMax: 4, rho: 1 });
    expect(Array.from(s)).toEqual([4, 3, 2, 1, 0]);
  });

  it('gives [σ_max, 0] for one step and rejects bad input', () => {
    expect(Array.from(karrasSigmas({ steps: 1 }))).toEqual([80, 0]);
    expect(() => karrasSigmas({ steps: 0 })).toThrow(/steps/);
    expect(() => karrasSigmas({ steps: 2.5 })).toThrow(/steps/);
    expect(() => karrasSigmas({ steps: 3, sigmaMin: 0 })).toThrow(/sigmaMin/);
  });
});

describe('logNormalSigma', () => {
  it('draws ln σ ~ N(P_mean, P_std²), EDM defaults −1.2 and 1.2', () => {
    const d = logNormalSigma();
    const s = d.sample(new Rng(0), 100_000);
    const { mean, std } = moments(Array.from(s, Math.log));
    expect(Math.abs(mean + 1.2)).toBeLessThan(0.02);
    expect(Math.abs(std - 1.2)).toBeLessThan(0.02);
    const c = moments(Array.from(logNormalSigma({ pMean: 0.5, pStd: 0.3 }).sample(new Rng(1), 100_000), Math.log));
    expect(Math.abs(c.mean - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(c.std - 0.3)).toBeLessThan(0.01);
  });

  it('is reproducible from the rng', () => {
    const d = logNormalSigma();
    expect(Array.from(d.sample(new Rng(5), 10))).toEqual(Array.from(d.sample(new Rng(5), 10)));
  });
});

describe('logUniformSigma', () => {
  it('draws ln σ uniform on [ln σ_min, ln σ_max]', () => {
    const s = logUniformSigma({ sigmaMin: 0.01, sigmaMax: 100 }).sample(new Rng(2), 100_000);
    const l = Array.from(s, Math.log);
    expect(Math.min(...l)).toBeGreaterThanOrEqual(Math.log(0.01) - 1e-6);
    expect(Math.max(...l)).toBeLessThanOrEqual(Math.log(100) + 1e-6);
    const { mean, std } = moments(l);
    // Uniform on [a, b]: mean (a+b)/2 = 0, std (b−a)/√12.
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(std - (2 * Math.log(100)) / Math.sqrt(12))).toBeLessThan(0.02);
  });
});

describe('uniformTime', () => {
  it('VE: σ = t, uniform on the range', () => {
    const s = uniformTime(veProcess(), { tMin: 0.5, tMax: 2.5 }).sample(new Rng(3), 50_000);
    expect(Math.min(...s)).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...s)).toBeLessThanOrEqual(2.5);
    const { mean, std } = moments(s);
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.02);
    expect(Math.abs(std - 2 / Math.sqrt(12))).toBeLessThan(0.01);
  });

  it('VP: returns σ(t)/α(t), in the range of the process, and t is uniform', () => {
    const p = vpProcess();
    const s = uniformTime(p).sample(new Rng(4), 20_000);
    const lo = p.sigma(p.tMin) / p.alpha(p.tMin);
    const hi = p.sigma(p.tMax) / p.alpha(p.tMax);
    expect(Math.min(...s)).toBeGreaterThanOrEqual(lo * (1 - 1e-4));
    expect(Math.max(...s)).toBeLessThanOrEqual(hi * (1 + 1e-4));
    const t = Array.from(s, (v) => p.tOfSigma(v));
    const { mean } = moments(t);
    expect(Math.abs(mean - (p.tMin + p.tMax) / 2)).toBeLessThan(0.01);
  });

  it('Brownian: needs a finite tMax, and gives σ = √t', () => {
    expect(() => uniformTime(brownianProcess())).toThrow(/tMax/);
    const s = uniformTime(brownianProcess(), { tMax: 4 }).sample(new Rng(5), 50_000);
    // E[√t] for t ~ U(0, 4) is (2/3)·2 = 4/3.
    expect(Math.abs(moments(s).mean - 4 / 3)).toBeLessThan(0.01);
    expect(Math.min(...s)).toBeGreaterThan(0);
  });
});
