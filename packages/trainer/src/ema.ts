import * as tf from '@tensorflow/tfjs';

import { EMA_KERNEL, hasKernel } from './fused.js';

/**
 * Exponential moving average of a set of parameters, θ_ema ← β θ_ema + (1 − β) θ, as in EDM's
 * training loop. β comes from a half-life in steps: β = 0.5^(1/halfLife), so that a parameter's
 * contribution halves every `halfLife` steps, whatever the run length.
 */
export class Ema {
  readonly shadow: Record<string, tf.Variable> = {};
  readonly beta: number;

  constructor(
    readonly params: Record<string, tf.Variable>,
    halfLife: number,
  ) {
    if (!(halfLife > 0)) throw new Error(`Ema: halfLife must be > 0 steps, got ${halfLife}`);
    this.beta = 0.5 ** (1 / halfLife);
    for (const [name, p] of Object.entries(params)) this.shadow[name] = tf.tidy(() => tf.variable(p.clone(), false));
  }

  update(): void {
    const fused = hasKernel(EMA_KERNEL);
    tf.tidy(() => {
      for (const [name, p] of Object.entries(this.params)) {
        const s = this.shadow[name]!;
        if (fused) s.assign(tf.engine().runKernel(EMA_KERNEL, { shadow: s, p }, { beta: this.beta }) as tf.Tensor);
        else s.assign(tf.add(tf.mul(s, this.beta), tf.mul(p, 1 - this.beta)));
      }
    });
  }

  dispose(): void {
    for (const s of Object.values(this.shadow)) s.dispose();
  }
}
