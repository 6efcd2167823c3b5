import * as tf from '@tensorflow/tfjs';

import { ADAM_IN_PLACE_KERNEL, ADAM_KERNEL, hasKernel, sumOfSquares } from './fused.js';

export interface AdamOptions {
  /** Learning rate. */
  lr: number;
  /** β1. Table 7 of the paper uses 0 for Diff-Instruct (no momentum): the target moves every step. */
  beta1: number;
  /** β2. Table 7: 0.99. */
  beta2: number;
  /** ε of the denominator. */
  eps?: number;
  /** Clip the global gradient norm to this value (none when absent). */
  clipNorm?: number;
}

/**
 * Adam (Kingma & Ba) whose whole state — first and second moments, step count — is a set of named
 * variables, so that a checkpoint can store it and a resumed run continues bit for bit.
 * tf.train.adam keeps its moments private to the optimiser; this one exposes them. Where the
 * backend has `@diff-instruct/native`'s DiAdam kernel, each parameter is one kernel call (the
 * composed ops are ~14), equal to them up to float32 rounding.
 */
export class Adam {
  readonly m: Record<string, tf.Variable> = {};
  readonly v: Record<string, tf.Variable> = {};
  /** Number of updates taken so far. */
  t = 0;

  constructor(
    readonly params: Record<string, tf.Variable>,
    readonly opts: AdamOptions,
  ) {
    for (const [name, p] of Object.entries(params)) {
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false, undefined, p.dtype));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false, undefined, p.dtype));
    }
  }

  /**
   * One update with the given gradients (names as in `params`; a missing gradient counts as zero),
   * at the learning rate `lr` (default: the one given at construction; a schedule passes its own).
   */
  apply(grads: Record<string, tf.Tensor>, lr = this.opts.lr): void {
    const { beta1, beta2 } = this.opts;
    const eps = this.opts.eps ?? 1e-8;
    this.t += 1;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      let scale = 1;
      if (this.opts.clipNorm !== undefined) {
        const norm = Math.sqrt(sumOfSquares(Object.values(grads)));
        if (norm > this.opts.clipNorm) scale = this.opts.clipNorm / norm;
      }
      const attrs = { lr, beta1, beta2, eps, bc1, bc2, scale };
      if (hasKernel(ADAM_IN_PLACE_KERNEL)) {
        // one call for all parameters; those whose storage is shared (a clone's, before its first
        // update) come back as new tensors to assign, the rest are updated in place
        const names = Object.keys(this.params).filter((name) => grads[name] !== undefined);
        const inputs: tf.NamedTensorMap = {};
        names.forEach((name, i) => {
          inputs[`p${i}`] = this.params[name]!;
          inputs[`m${i}`] = this.m[name]!;
          inputs[`v${i}`] = this.v[name]!;
          inputs[`g${i}`] = grads[name]!;
        });
        const [shared, ...updated] = tf.engine().runKernel(ADAM_IN_PLACE_KERNEL, inputs, attrs) as tf.Tensor[];
        Array.from(shared!.dataSync()).forEach((i, k) => {
          const name = names[i]!;
          this.m[name]!.assign(updated[3 * k + 1]!);
          this.v[name]!.assign(updated[3 * k + 2]!);
          this.params[name]!.assign(updated[3 * k]!);
        });
        return;
      }
      const fused = hasKernel(ADAM_KERNEL);
      for (const [name, p] of Object.entries(this.params)) {
        const g0 = grads[name];
        if (g0 === undefined) continue;
        const m = this.m[name]!;
        const v = this.v[name]!;
        if (fused) {
          const [p1, m1, v1] = tf.engine().runKernel(ADAM_KERNEL, { p, m, v, g: g0 }, attrs) as tf.Tensor[];
          m.assign(m1!);
          v.assign(v1!);
          p.assign(p1!);
          continue;
        }
        const g = scale === 1 ? g0 : tf.mul(g0, scale);
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const step = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        p.assign(tf.sub(p, tf.mul(step, lr)));
      }
    });
  }

  /** The state as named tensors, for a checkpoint. */
  stateTensors(prefix: string): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [k, m] of Object.entries(this.m)) out[`${prefix}.m.${k}`] = m;
    for (const [k, v] of Object.entries(this.v)) out[`${prefix}.v.${k}`] = v;
    return out;
  }

  dispose(): void {
    for (const x of [...Object.values(this.m), ...Object.values(this.v)]) x.dispose();
  }
}
