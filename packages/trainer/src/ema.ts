import * as tf from '@tensorflow/tfjs';

import { EMA_IN_PLACE_KERNEL, EMA_KERNEL, hasKernel } from './fused.js';

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
    if (hasKernel(EMA_IN_PLACE_KERNEL)) {
      // one call; shadows sharing storage (cloned from the parameters, before the first update) come back to assign
      tf.tidy(() => {
        const names = Object.keys(this.params);
        const inputs: tf.NamedTensorMap = {};
        names.forEach((name, i) => {
          inputs[`s${i}`] = this.shadow[name]!;
          inputs[`p${i}`] = this.params[name]!;
        });
        const [shared, ...updated] = tf.engine().runKernel(EMA_IN_PLACE_KERNEL, inputs, { beta: this.beta }) as tf.Tensor[];
        Array.from(shared!.dataSync()).forEach((i, k) => this.shadow[names[i]!]!.assign(updated[k]!));
      });
      return;
    }
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
