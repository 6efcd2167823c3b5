import * as tf from '@tensorflow/tfjs';

import type { Rng } from '@diff-instruct/sde';

/**
 * A model's parameters: named trainable variables, in insertion order, with dotted names such as
 * `net.layers.0.weight`. Weight files, cloning, optimisers and EMA all work on this one shape.
 *
 * Dense weights are stored as [in, out] (y = x·W + b); PyTorch's nn.Linear stores the transpose.
 */
export type Params = Record<string, tf.Variable>;

/**
 * Where initial values come from: an Rng (deterministic given its seed), or `null` for zeros,
 * used when the values are about to be overwritten by a checkpoint.
 */
export type Init = Rng | null;

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Adds a variable N(0, std²) of the given shape under `name`. */
export function addNormal(params: Params, name: string, shape: number[], std: number, init: Init): void {
  if (name in params) throw new Error(`duplicate parameter name '${name}'`);
  const n = sizeOf(shape);
  const values = init === null ? new Float32Array(n) : init.normal(n).map((v) => v * std);
  params[name] = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), true));
}

/** Adds a zero-initialised variable under `name` (biases). */
export function addZeros(params: Params, name: string, shape: number[]): void {
  addNormal(params, name, shape, 0, null);
}

/** Adds a variable of ones under `name` (normalisation gains); zeros when `init` is null (about to be loaded). */
export function addOnes(params: Params, name: string, shape: number[], init: Init): void {
  if (name in params) throw new Error(`duplicate parameter name '${name}'`);
  const values = new Float32Array(sizeOf(shape)).fill(init === null ? 0 : 1);
  params[name] = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), true));
}

/** Looks up a parameter that a network needs; the error names it. */
export function param<T extends tf.Tensor>(params: Params, name: string): T {
  const v = params[name];
  if (v === undefined) throw new Error(`missing parameter '${name}'`);
  return v as unknown as T;
}

/**
 * New variables with the same names and values. They are trainable unless `trainable` says
 * otherwise: a clone is the parameter set of a new model (a fake score, an EMA snapshot).
 */
export function cloneParams(params: Params, trainable = true): Params {
  const out: Params = {};
  for (const [name, v] of Object.entries(params)) out[name] = tf.tidy(() => tf.variable(v.clone(), trainable));
  return out;
}

/**
 * Assigns the values of `from` to `to`. Both must have exactly the same names and shapes; the
 * error lists every difference.
 */
export function copyParams(from: Params, to: Params): void {
  const problems: string[] = [];
  for (const name of Object.keys(to)) if (!(name in from)) problems.push(`missing '${name}'`);
  for (const name of Object.keys(from)) if (!(name in to)) problems.push(`unexpected '${name}'`);
  for (const [name, v] of Object.entries(to)) {
    const src = from[name];
    if (src !== undefined && !sameShape(src.shape, v.shape)) {
      problems.push(`shape of '${name}' is [${src.shape}], expected [${v.shape}]`);
    }
  }
  if (problems.length > 0) throw new Error(`copyParams: parameters do not match: ${problems.join('; ')}`);
  for (const [name, v] of Object.entries(to)) v.assign(from[name]!);
}

/** The number of scalar parameters. */
export function countParams(params: Params): number {
  let n = 0;
  for (const v of Object.values(params)) n += v.size;
  return n;
}

/** Frees every variable of a model. The model must not be used afterwards. */
export function disposeModel(m: { params: Params }): void {
  for (const v of Object.values(m.params)) v.dispose();
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
