import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { argmaxRows, classAccuracy, classCoverage, classFractions, inceptionScore, softmaxRows } from './classes.js';

function oneHot(labels: ArrayLike<number>, k: number): Float32Array {
  const p = new Float32Array(labels.length * k);
  for (let i = 0; i < labels.length; i++) p[i * k + labels[i]!] = 1;
  return p;
}

describe('inceptionScore', () => {
  it('is 1 for identical (e.g. uniform) predictions and k for confident predictions spread evenly', () => {
    const k = 10;
    const n = 1000;
    const uniform = new Float32Array(n * k).fill(1 / k);
    expect(inceptionScore(uniform, n, k).mean).toBeCloseTo(1, 12);
    expect(inceptionScore(uniform, n, k).std).toBeCloseTo(0, 12);
    // Any fixed prediction, repeated: p(y|x) = p(y), KL = 0.
    const fixed = Float32Array.from({ length: n * k }, (_, i) => ((i % k) + 1) / 55);
    expect(inceptionScore(fixed, n, k).mean).toBeCloseTo(1, 6);
    const even = oneHot(Int32Array.from({ length: n }, (_, i) => i % k), k);
    const is = inceptionScore(even, n, k);
    expect(is.mean).toBeCloseTo(k, 10);
    expect(is.std).toBeCloseTo(0, 10);
    // Mode collapse onto 3 of the 10 classes, evenly: 3.
    expect(inceptionScore(oneHot(Int32Array.from({ length: 900 }, (_, i) => i % 3), k), 900, k).mean).toBeCloseTo(3, 10);
  });

  it('equals exp(H(p(y)) − E H(p(y|x))) on a mixed example, per split', () => {
    // Half the rows (0.9, 0.1), half (0.2, 0.8): p(y) = (0.55, 0.45).
    const n = 100;
    const probs = Float32Array.from({ length: 2 * n }, (_, i) => {
      const row = Math.floor(i / 2);
      return row % 2 ? [0.2, 0.8][i % 2]! : [0.9, 0.1][i % 2]!;
    });
    const h = (p: number[]) => -p.reduce((s, x) => s + x * Math.log(x), 0);
    // Use the float32 values actually stored.
    const f = (x: number) => Math.fround(x);
    const r1 = [f(0.9), f(0.1)].map((x, _, a) => x / (a[0]! + a[1]!));
    const r2 = [f(0.2), f(0.8)].map((x, _, a) => x / (a[0]! + a[1]!));
    const py = [(r1[0]! + r2[0]!) / 2, (r1[1]! + r2[1]!) / 2];
    const exact = Math.exp(h(py) - (h(r1) + h(r2)) / 2);
    for (const splits of [1, 5, 10]) {
      const is = inceptionScore(probs, n, 2, { splits });
      expect(is.mean).toBeCloseTo(exact, 12);
      expect(is.std).toBeCloseTo(0, 12);
    }
  });

  it('reports the spread over splits and renormalises rows', () => {
    // Split 1: two classes used evenly (IS 2); split 2: one class (IS 1). Mean 1.5, population std 0.5.
    const probs = oneHot([0, 1, 0, 1, 2, 2, 2, 2], 3);
    const is = inceptionScore(probs, 8, 3, { splits: 2 });
    expect(is.mean).toBeCloseTo(1.5, 12);
    expect(is.std).toBeCloseTo(0.5, 12);
    // Rows scaled by 3 give the same score.
    expect(inceptionScore(probs.map((x) => 3 * x), 8, 3, { splits: 2 }).mean).toBeCloseTo(1.5, 12);
    // With n not a multiple of splits, the last rows are dropped: 9 rows, 2 splits of 4.
    const nine = oneHot([0, 1, 0, 1, 2, 2, 2, 2, 0], 3);
    expect(inceptionScore(nine, 9, 3, { splits: 2 }).mean).toBeCloseTo(1.5, 12);
  });

  it('lies in [1, k] for random softmax outputs', () => {
    const rng = new Rng(41);
    const k = 10;
    const n = 500;
    const probs = softmaxRows(Float32Array.from(rng.normal(n * k), (x) => 3 * x), n, k);
    const is = inceptionScore(probs, n, k);
    expect(is.mean).toBeGreaterThan(1);
    expect(is.mean).toBeLessThan(k);
  });

  it('rejects bad input with a clear message', () => {
    expect(() => inceptionScore(new Float32Array(5), 2, 2)).toThrow('inceptionScore: array has 5 values, expected n·k = 4');
    expect(() => inceptionScore(new Float32Array(4).fill(0.5), 2, 2, { splits: 3 })).toThrow(/splits must be an integer in \[1, n = 2\]/);
    expect(() => inceptionScore(Float32Array.of(0.5, -0.5, 0.5, 0.5), 2, 2, { splits: 1 })).toThrow(/probs\[0, 1\] = -0.5 is not a probability/);
    expect(() => inceptionScore(Float32Array.of(0, 0, 0.5, 0.5), 2, 2, { splits: 1 })).toThrow(/row 0 sums to 0/);
  });
});

describe('classFractions', () => {
  it('is the share of the predictions in each class, summing to 1', () => {
    // 8 predictions: three 0s, one 2, four 3s; class 1 none.
    const f = classFractions(Int32Array.from([0, 3, 0, 2, 3, 3, 0, 3]), 4);
    expect(f).toEqual([3 / 8, 0, 1 / 8, 4 / 8]);
    expect(classFractions(new Int32Array(5).fill(1), 3)).toEqual([0, 1, 0]);
  });

  it('rejects a label outside [0, k) and an empty set', () => {
    expect(() => classFractions(Int32Array.from([0, 4]), 4)).toThrow(/classFractions: predictions\[1\] = 4 is not a class in \[0, 4\)/);
    expect(() => classFractions(new Int32Array(0), 4)).toThrow(/classFractions: no predictions/);
  });
});

describe('classCoverage', () => {
  it('counts the classes with at least minFraction of the samples (default 0.1/k)', () => {
    const k = 10;
    // 1000 samples: classes 0–7 get 124 each (992), class 8 gets 8 (< 10 = 0.1·1000/10), class 9 none.
    const p = new Int32Array(1000);
    for (let i = 0; i < 992; i++) p[i] = i % 8;
    p.fill(8, 992);
    expect(classCoverage(p, k)).toBeCloseTo(0.8, 12);
    // Exactly at the threshold counts: 10 samples of class 8.
    const q = Int32Array.from(p);
    q.fill(8, 990);
    expect(classCoverage(q, k)).toBeCloseTo(0.9, 12);
    // minFraction 0 still needs one sample; any class present counts.
    expect(classCoverage(p, k, { minFraction: 0 })).toBeCloseTo(0.9, 12);
    expect(classCoverage(Int32Array.from({ length: 100 }, (_, i) => i % k), k)).toBe(1);
    expect(classCoverage(new Int32Array(100).fill(3), k)).toBeCloseTo(0.1, 12); // total collapse: 1/k
  });

  it('rejects bad input with a clear message', () => {
    expect(() => classCoverage(Int32Array.of(0, 10), 10)).toThrow('classCoverage: predictions[1] = 10 is not a class in [0, 10)');
    expect(() => classCoverage(new Int32Array(0), 10)).toThrow('classCoverage: no predictions');
    expect(() => classCoverage(Int32Array.of(0), 10, { minFraction: 2 })).toThrow(/minFraction must be in \[0, 1\]/);
  });
});

describe('classAccuracy', () => {
  it('is the fraction of matching labels', () => {
    expect(classAccuracy(Int32Array.of(0, 1, 2, 3), Int32Array.of(0, 1, 0, 3))).toBe(0.75);
    expect(classAccuracy(Int32Array.of(5), Int32Array.of(5))).toBe(1);
    expect(() => classAccuracy(Int32Array.of(0), Int32Array.of(0, 1))).toThrow('classAccuracy: predictions has 1 entries but labels has 2');
    expect(() => classAccuracy(new Int32Array(0), new Int32Array(0))).toThrow('classAccuracy: no predictions');
  });
});

describe('argmaxRows and softmaxRows', () => {
  it('argmaxRows picks the largest entry of each row, the first on ties', () => {
    const x = Float32Array.of(0.1, 0.7, 0.2, /**/ 5, -1, 5, /**/ -3, -2, -1, /**/ NaN, 0, 1);
    expect(Array.from(argmaxRows(x, 4, 3))).toEqual([1, 0, 2, 2]);
    expect(() => argmaxRows(x, 3, 3)).toThrow('argmaxRows: array has 12 values, expected n·k = 9');
  });

  it('softmaxRows gives rows summing to 1 that keep the argmax, and is stable for huge logits', () => {
    const rng = new Rng(42);
    const n = 50;
    const k = 7;
    const logits = Float32Array.from(rng.normal(n * k), (x) => 5 * x);
    const p = softmaxRows(logits, n, k);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += p[i * k + c]!;
      expect(s).toBeCloseTo(1, 6);
    }
    expect(Array.from(argmaxRows(p, n, k))).toEqual(Array.from(argmaxRows(logits, n, k)));
    // log-ratio p₀/p₁ = z₀ − z₁.
    expect(Math.log(p[0]! / p[1]!)).toBeCloseTo(logits[0]! - logits[1]!, 4);
    const big = softmaxRows(Float32Array.of(1000, 1001, -1e30), 1, 3);
    expect(big[0]).toBeCloseTo(1 / (1 + Math.E), 7);
    expect(big[1]).toBeCloseTo(Math.E / (1 + Math.E), 7);
    expect(big[2]).toBe(0);
  });
});
