import * as tf from '@tensorflow/tfjs';

/**
 * The layer primitives every network in this package is built from.
 *
 * On the `wasm` backend, tfjs's own matMul gradient uses the transposeA/transposeB flags, which
 * run 10–20× slower than a plain matMul (see DESIGN.md, "Backends"). So `matmul` carries its own
 * gradient written with explicit transposes. Its backward pass calls `matmul` again, so second
 * order gradients (R1 penalties, gradients of scores) take the fast path too. Gradients use only
 * saved inputs, never saved outputs (see `silu`), so second-order gradients are correct.
 */

type MatMul = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

const matmulWithGrad = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    // dA = dy·Bᵀ, dB = Aᵀ·dy
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [matmul(dy as tf.Tensor2D, tf.transpose(sb)), matmul(tf.transpose(sa), dy as tf.Tensor2D)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as MatMul;

/** A·B for [n, k]·[k, m], with a gradient that never uses the transposeA/B flags. */
export function matmul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`matmul: expected two rank-2 tensors, got shapes [${a.shape}] and [${b.shape}]`);
  }
  if (a.shape[1] !== b.shape[0]) {
    throw new Error(`matmul: inner dimensions differ: [${a.shape}]·[${b.shape}]`);
  }
  return matmulWithGrad(a, b);
}

/** An affine layer x·W + b, with x [N, in], W [in, out], b [out]. */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(matmul(x, w), b);
}

const siluWithGrad = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.mul(x, tf.sigmoid(x)),
    // d/dx x·s(x) = s·(1 + x·(1 − s)), written from the saved input only
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const sx = saved[0]!;
      const s = tf.sigmoid(sx);
      return [tf.mul(dy, tf.mul(s, tf.add(1, tf.mul(sx, tf.sub(1, s)))))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * SiLU (swish), x·sigmoid(x). Its gradient is written in terms of the input x only: tfjs 4.22
 * computes second-order gradients wrongly (silently) through ops whose gradient reuses their saved
 * output (sigmoid, tanh, exp, pow, softmax, elu, max), because the tape records the saved copy
 * before the op that produces it. A custom gradient from the input avoids that.
 */
export function silu<T extends tf.Tensor>(x: T): T {
  return siluWithGrad(x) as T;
}

/**
 * An embedding lookup written as a matmul, label [N, C] · table [C, E] → [N, E], because tfjs has
 * no gradient for gather on wasm. One-hot rows select a row of the table; an all-zero row gives a
 * zero embedding, the "unconditional" label of classifier-free guidance.
 */
export function oneHotEmbed(label: tf.Tensor2D, table: tf.Tensor2D): tf.Tensor2D {
  if (label.rank !== 2 || label.shape[1] !== table.shape[0]) {
    throw new Error(`oneHotEmbed: label must have shape [N, ${table.shape[0]}], got [${label.shape}]`);
  }
  return matmul(label, table);
}
