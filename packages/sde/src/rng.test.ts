import { describe, expect, it } from 'vitest';

import { Rng } from './rng.js';

describe('Rng', () => {
  it('is reproducible from a seed and resumable from its state', () => {
    const a = new Rng(42);
    a.normal(7);
    const st = a.state();
    const x = a.normal(100);
    const b = new Rng(st);
    expect(Array.from(b.normal(100))).toEqual(Array.from(x));
    expect(Array.from(new Rng(42).uniform(5))).toEqual(Array.from(new Rng(42).uniform(5)));
    expect(Array.from(new Rng(43).uniform(5))).not.toEqual(Array.from(new Rng(42).uniform(5)));
  });

  it('draws standard normals with the right moments', () => {
    const x = new Rng(1).normal(200_000);
    let m = 0;
    let v = 0;
    for (const u of x) m += u;
    m /= x.length;
    for (const u of x) v += (u - m) ** 2;
    v /= x.length;
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(Math.abs(v - 1)).toBeLessThan(0.01);
  });

  it('draws uniforms in range and permutations that are permutations', () => {
    const r = new Rng(3);
    const u = r.uniform(10_000, -2, 3);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    const p = Array.from(r.permutation(50)).sort((a, b) => a - b);
    expect(p).toEqual([...Array(50).keys()]);
  });

  it.each([
    [0, 0.9],
    [7, 0.5],
    [123456, 1],
    [99, 0.3],
  ])('dropoutMask (seed %i, keep %f) is the mask of uniform() compared with keep, and leaves the same state', (seed, keep) => {
    const a = new Rng(seed);
    const b = new Rng(seed);
    a.normal(3); // start mid-stream
    b.normal(3);
    const n = 10_001;
    const u = a.uniform(n);
    const expected = Float32Array.from(u, (x) => (x < keep ? 1 / keep : 0));
    expect(b.dropoutMask(n, keep)).toEqual(expected);
    expect(b.state()).toEqual(a.state());
    expect(b.next()).toBe(a.next());
    const kept = expected.filter((x) => x !== 0).length / n;
    expect(Math.abs(kept - keep)).toBeLessThan(0.02);
  });

  it('dropoutMask refuses a keep probability outside (0, 1]', () => {
    expect(() => new Rng(1).dropoutMask(4, 0)).toThrow(/keep must be in \(0, 1\], got 0/);
    expect(() => new Rng(1).dropoutMask(4, 1.5)).toThrow(/keep must be in/);
  });
});
