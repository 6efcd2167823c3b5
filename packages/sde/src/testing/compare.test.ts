import { describe, expect, it } from 'vitest';

import { errorMessageOf, relativeMaxDiff } from './compare.js';

describe('test comparisons', () => {
  it('relativeMaxDiff is max |a − b| over max |b|, and refuses arrays of different lengths', () => {
    expect(relativeMaxDiff([1, 2, -3], [1, 4, -3])).toBe(2 / 4);
    expect(relativeMaxDiff(new Float32Array([0, -8]), new Float32Array([0, 8]))).toBe(2);
    expect(() => relativeMaxDiff([1], [1, 2])).toThrow(/lengths differ \(1 and 2\)/);
  });

  it('errorMessageOf returns the message, and throws when nothing is thrown', () => {
    expect(errorMessageOf(() => {
      throw new Error('bad input');
    })).toBe('bad input');
    expect(() => errorMessageOf(() => 1)).toThrow(/expected an error/);
  });
});
