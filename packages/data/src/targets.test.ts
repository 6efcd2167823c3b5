import { Rng } from '@diff-instruct/sde';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { TARGET_NAMES, getTarget, highDimMixture } from './targets.js';

function moments(x: Float32Array, dim: number): { mean: number[]; std: number[] } {
  const n = x.length / dim;
  const mean = new Array<number>(dim).fill(0);
  const sq = new Array<number>(dim).fill(0);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mean[d]! += x[i * dim + d]! / n;
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) sq[d]! += (x[i * dim + d]! - mean[d]!) ** 2 / n;
  return { mean, std: sq.map(Math.sqrt) };
}

describe('targets', () => {
  it('lists the built-in 2-D targets, ring8 first', () => {
    expect(TARGET_NAMES).toEqual(['ring8', 'grid25', 'gmm', 'moons', 'checkerboard', 'spiral', 'swissroll']);
  });

  it.each(TARGET_NAMES)('%s: 2-D, finite, deterministic by seed, scale within [-4, 4] and std 1–2', (name) => {
    const t = getTarget(name);
    expect(t.name).toBe(name);
    expect(t.dim).toBe(2);
    expect(t.description.length).toBeGreaterThan(10);
    const x = t.sample(new Rng(5), 20_000);
    expect(x.length).toBe(40_000);
    expect(Array.from(t.sample(new Rng(5), 100))).toEqual(Array.from(x.subarray(0, 200)));
    expect(Array.from(t.sample(new Rng(6), 100))).not.toEqual(Array.from(x.subarray(0, 200)));
    expect(x.every(Number.isFinite)).toBe(true);
    expect(x.filter((v) => Math.abs(v) <= 4).length / x.length).toBeGreaterThan(0.999);
    const { mean, std } = moments(x, 2);
    for (const m of mean) expect(Math.abs(m)).toBeLessThan(1);
    for (const s of std) {
      expect(s).toBeGreaterThan(0.9);
      expect(s).toBeLessThan(2);
    }
  });

  it('ring8 points lie near radius 2 in 8 equal modes, with mean about 0', () => {
    const t = getTarget('ring8');
    const x = t.sample(new Rng(1), 16_000);
    const counts = new Array<number>(8).fill(0);
    let far = 0;
    for (let i = 0; i < 16_000; i++) {
      const a = x[2 * i]!;
      const b = x[2 * i + 1]!;
      if (Math.abs(Math.hypot(a, b) - 2) > 0.5) far++; // 5 std of the radial noise
      const k = (Math.round(Math.atan2(b, a) / (Math.PI / 4)) + 8) % 8;
      counts[k]!++;
    }
    expect(far).toBe(0);
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(200);
    const { mean } = moments(x, 2);
    for (const m of mean) expect(Math.abs(m)).toBeLessThan(0.05);
  });

  it('mixture targets expose an exact density that matches their samples', () => {
    for (const name of ['ring8', 'grid25', 'gmm']) {
      const t = getTarget(name);
      expect(t.mixture).toBeDefined();
      const x = t.sample(new Rng(2), 50);
      const lp = tf.tidy(() => t.mixture!.logProb(tf.tensor2d(x, [50, 2])).arraySync());
      for (const v of lp) expect(Number.isFinite(v)).toBe(true);
    }
    for (const name of ['moons', 'checkerboard', 'spiral', 'swissroll']) expect(getTarget(name).mixture).toBeUndefined();
  });

  it('checkerboard only fills the dark squares', () => {
    const x = getTarget('checkerboard').sample(new Rng(3), 5000);
    let light = 0;
    for (let i = 0; i < 5000; i++) {
      const a = Math.floor(x[2 * i]! / 1.5);
      const b = Math.floor(x[2 * i + 1]! / 1.5);
      if (Math.abs(a + b) % 2 === 1) light++;
    }
    expect(light).toBe(0);
  });

  it('highDimMixture: any dimension, fixed by seed, reachable as gmm-<dim>d[-<k>]', () => {
    for (const dim of [1, 3, 13]) {
      const t = highDimMixture(dim, 5, 7);
      expect(t.dim).toBe(dim);
      expect(t.mixture!.components.length).toBe(5);
      expect(t.sample(new Rng(0), 10).length).toBe(10 * dim);
    }
    expect(highDimMixture(4, 3, 1).mixture!.components).toEqual(highDimMixture(4, 3, 1).mixture!.components);
    expect(highDimMixture(4, 3, 1).mixture!.components).not.toEqual(highDimMixture(4, 3, 2).mixture!.components);
    expect(getTarget('gmm-13d').dim).toBe(13);
    expect(getTarget('gmm-13d').mixture!.components.length).toBe(8);
    expect(getTarget('gmm-3d-2').mixture!.components.length).toBe(2);
    expect(() => highDimMixture(0)).toThrow(/dim must be a positive integer/);
  });

  it('rejects unknown names with the list of choices', () => {
    expect(() => getTarget('rings')).toThrow('unknown target "rings"; choose one of: ring8, grid25, gmm, moons');
    expect(() => getTarget('toString')).toThrow(/unknown target/);
    expect(() => getTarget('ring8').sample(new Rng(0), -1)).toThrow(/non-negative integer/);
  });
});
