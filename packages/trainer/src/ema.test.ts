import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Ema } from './ema.js';

describe('Ema', () => {
  it('follows θ_ema ← βθ_ema + (1−β)θ with β from the half-life', () => {
    const p = tf.variable(tf.scalar(0));
    const ema = new Ema({ p }, 10);
    expect(ema.beta).toBeCloseTo(0.5 ** 0.1, 12);
    p.assign(tf.scalar(1));
    for (let i = 0; i < 10; i++) ema.update();
    // After one half-life the shadow has moved half-way to the new value.
    expect(ema.shadow.p!.dataSync()[0]).toBeCloseTo(0.5, 5);
    ema.dispose();
  });
});
