import * as tf from '@tensorflow/tfjs';

import { type ModelConfig, type ModelRole, roleOf, validateClassifierConfig, validateDenoiserConfig, validateGeneratorConfig } from './config.js';
import { type ClassifierModel, initClassifier } from './lenet.js';
import { type DenoiserModel, type GeneratorModel, initDenoiser, initGenerator } from './model.js';
import { type Params, sameShape } from './params.js';
import { SafetensorsFormatError, type SafetensorsTensor, decodeSafetensors, encodeSafetensors } from './safetensors.js';

/** `metadata.format` of every weight file this package writes. */
export const FORMAT = 'diff-instruct';
const RESERVED = ['format', 'role', 'config'];

/**
 * Encodes a model's weights as safetensors bytes, with `metadata.config` = JSON of its config,
 * `metadata.format` = 'diff-instruct' and `metadata.role` = 'denoiser' | 'generator' | 'classifier',
 * so that the file is self-describing. `extraMetadata` (e.g. the training step) is stored alongside.
 * `saveModel(path, …)` in `@diff-instruct/models/node` writes these bytes to a file.
 */
export function encodeModel(model: DenoiserModel | GeneratorModel | ClassifierModel, extraMetadata: Record<string, string> = {}): Uint8Array {
  for (const k of RESERVED) if (k in extraMetadata) throw new Error(`saveModel: metadata key '${k}' is reserved`);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, v] of Object.entries(model.params)) {
    tensors[name] = { dtype: 'F32', shape: v.shape.slice(), data: v.dataSync() as Float32Array };
  }
  const metadata = { ...extraMetadata, format: FORMAT, role: roleOf(model.config), config: JSON.stringify(model.config) };
  return encodeSafetensors(tensors, metadata);
}

/**
 * Parses the bytes of a weight file; the errors start with `what` (a file name, a URL) and say
 * what is wrong. `readSafetensorsFile(path)` in `@diff-instruct/models/node` reads the file first.
 */
export function decodeSafetensorsBytes(bytes: Uint8Array, what: string): ReturnType<typeof decodeSafetensors> {
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsFormatError) throw new Error(`${what} is not a valid safetensors file (${e.message})`, { cause: e });
    throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

const ROLES: readonly string[] = ['denoiser', 'generator', 'classifier'] satisfies ModelRole[];

/**
 * Checks a decoded weight file's metadata against `role` and that every weight is finite; returns
 * its config (not yet validated) and tensors. `what` names the file in the errors.
 */
export function parseModelFile(
  decoded: ReturnType<typeof decodeSafetensors>,
  role: ModelRole,
  what: string,
): { config: unknown; tensors: Record<string, SafetensorsTensor> } {
  const { tensors, metadata } = decoded;
  if (metadata.format !== FORMAT) {
    throw new Error(`${what} was not written by diff-instruct (metadata.format is ${JSON.stringify(metadata.format ?? null)}, expected '${FORMAT}')`);
  }
  if (metadata.role !== role) {
    const held = metadata.role !== undefined && ROLES.includes(metadata.role) ? `a ${metadata.role}` : `role ${JSON.stringify(metadata.role ?? null)}`;
    throw new Error(`${what} holds ${held}, expected a ${role}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(metadata.config ?? '');
  } catch (e) {
    throw new Error(`${what}: metadata.config is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  assertFinite(tensors, what);
  return { config, tensors };
}

/** Refuses weights holding NaN or ±Infinity, naming the file and the first such tensor. */
function assertFinite(tensors: Record<string, SafetensorsTensor>, what: string): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== 'F32') continue;
    const data = t.data;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) {
        let count = 0;
        for (let j = i; j < data.length; j++) if (!Number.isFinite(data[j]!)) count++;
        throw new Error(`${what}: tensor '${name}' holds ${count} non-finite value${count === 1 ? '' : 's'} (first: ${v} at index ${i}); refusing to load a diverged checkpoint`);
      }
    }
  }
}

const DEFAULT_WHAT = 'weight bytes';

/**
 * Builds a denoiser from the bytes of a file saved by `saveModel`/{@link encodeModel}, e.g.
 * `loadDenoiser(new Uint8Array(await (await fetch(url)).arrayBuffer()), url)`. `what` names the
 * source in errors. The path version is `loadDenoiser(path)` in `@diff-instruct/models/node`.
 */
export function loadDenoiser(bytes: Uint8Array, what = DEFAULT_WHAT): DenoiserModel {
  const { config, tensors } = parseModelFile(decodeSafetensorsBytes(bytes, what), 'denoiser', what);
  validateDenoiserConfig(config, `config in ${what}`);
  return loadInto(initDenoiser(config, null), tensors, what);
}

/**
 * Builds a generator from the bytes of a file saved by `saveModel`/{@link encodeModel}: in a web
 * page, `const g = loadGenerator(new Uint8Array(await (await fetch('generator.safetensors')).arrayBuffer()))`.
 * The path version is `loadGenerator(path)` in `@diff-instruct/models/node`.
 */
export function loadGenerator(bytes: Uint8Array, what = DEFAULT_WHAT): GeneratorModel {
  const { config, tensors } = parseModelFile(decodeSafetensorsBytes(bytes, what), 'generator', what);
  validateGeneratorConfig(config, `config in ${what}`);
  return loadInto(initGenerator(config, null), tensors, what);
}

/** Builds a classifier from the bytes of a file saved by `saveModel`/{@link encodeModel}; the path version is in `./node`. */
export function loadClassifier(bytes: Uint8Array, what = DEFAULT_WHAT): ClassifierModel {
  const { config, tensors } = parseModelFile(decodeSafetensorsBytes(bytes, what), 'classifier', what);
  validateClassifierConfig(config, `config in ${what}`);
  return loadInto(initClassifier(config, null), tensors, what);
}

function loadInto<M extends { params: Params; config: ModelConfig }>(model: M, tensors: Record<string, SafetensorsTensor>, path: string): M {
  try {
    loadParamsInto(model.params, tensors, path);
  } catch (e) {
    for (const v of Object.values(model.params)) v.dispose();
    throw e;
  }
  return model;
}

/**
 * Assigns stored tensors to `params`. Names, shapes and dtypes must match exactly; otherwise
 * nothing is assigned and the error lists everything that is missing, unexpected, or of the wrong
 * shape or dtype: `WHAT: weights do not match config: missing 'a'; shape of 'b' is [3,4], expected [2,4]`.
 */
export function loadParamsInto(
  params: Params,
  tensors: Record<string, { dtype: string; shape: number[]; data: Float32Array | Int32Array }>,
  what: string,
): void {
  const problems: string[] = [];
  for (const name of Object.keys(params)) if (!(name in tensors)) problems.push(`missing '${name}'`);
  for (const name of Object.keys(tensors)) if (!(name in params)) problems.push(`unexpected '${name}'`);
  for (const [name, v] of Object.entries(params)) {
    const t = tensors[name];
    if (t === undefined) continue;
    if (!sameShape(t.shape, v.shape)) problems.push(`shape of '${name}' is [${t.shape}], expected [${v.shape}]`);
    const expected = v.dtype === 'int32' ? 'I32' : 'F32';
    if (t.dtype !== expected) problems.push(`dtype of '${name}' is ${t.dtype}, expected ${expected}`);
  }
  if (problems.length > 0) throw new Error(`${what}: weights do not match config: ${problems.join('; ')}`);
  for (const [name, v] of Object.entries(params)) {
    const t = tensors[name]!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, v.dtype)));
  }
}
