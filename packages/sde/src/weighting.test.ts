import { describe, expect, it } from 'vitest';

import { a1Weight, edmWeight, sigma2Weight, uniformWeight } from './weighting.js';

describe('weightings', () => {
  it('edmWeight is (σ² + σ_d²)/(σ σ_d)²', () => {
    const w = edmWeight();
    expect(w(0.5)).toBeCloseTo((0.25 + 0.25) / (0.25 * 0.25), 10); // = 8
    expect(w(1)).toBeCloseTo(1.25 / 0.25, 10);
    expect(edmWeight(1)(2)).toBeCloseTo(5 / 4, 10);
    // λ(σ)·c_out(σ)² = 1 with c_out = σ σ_d/√(σ² + σ_d²).
    for (const s of [0.01, 0.3, 7, 80]) {
      const cOut = (s * 0.5) / Math.sqrt(s * s + 0.25);
      expect(w(s) * cOut * cOut).toBeCloseTo(1, 8);
    }
    expect(() => edmWeight(0)).toThrow(/sigmaData/);
  });

  it('uniform is 1 and sigma2 is σ²', () => {
    expect(uniformWeight(3)).toBe(1);
    expect(sigma2Weight(3)).toBe(9);
  });

  it('a1Weight is t below 1, 1/t above, and continuous at 1', () => {
    expect(a1Weight(0.25)).toBe(0.25);
    expect(a1Weight(4)).toBe(0.25);
    expect(a1Weight(1)).toBe(1);
    expect(a1Weight(1 + 1e-9)).toBeCloseTo(1, 8);
  });
});
