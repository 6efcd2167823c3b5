import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { type ModelConfig, type ModelRole, roleOf, validateClassifierConfig, validateDenoiserConfig, validateGeneratorConfig } from './config.js';
import { type ClassifierModel, initClassifier } from './lenet.js';
import { type DenoiserModel, type GeneratorModel, initDenoiser, initGenerator } from './model.js';
import { type Params, sameShape } from './params.js';
import { SafetensorsFormatError, type SafetensorsTensor, decodeSafetensors, encodeSafetensors } from './safetensors.js';

/** `metadata.format` of every weight file this package writes. */
export const FORMAT = 'diff-instruct';
const RESERVED = ['format', 'role', 'config'];

function describeWriteError(path: string, e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return `disk full while writing ${path}`;
    case 'ENOENT':
      return `cannot write ${path}: directory ${dirname(path)} does not exist`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `permission denied while writing ${path} (${e.code})`;
    default:
      return `failed to write ${path}: ${e.message}`;
  }
}

/**
 * Writes `bytes` to `path` so that `path` is either untouched or complete: the data goes to a
 * temporary file in the same directory, is flushed to disk, and is then renamed over `path`.
 * On failure the temporary file is removed and the error says what happened.
 */
export function writeFileAtomic(path: string, content: Uint8Array | string): void {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx');
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // the temporary file was never created, or is already gone
    }
    throw new Error(describeWriteError(path, e as NodeJS.ErrnoException), { cause: e });
  }
  // Make the rename itself durable; not every platform can fsync a directory.
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // best effort
  }
}

/**
 * Saves a model's weights as safetensors, with `metadata.config` = JSON of its config,
 * `metadata.format` = 'diff-instruct' and `metadata.role` = 'denoiser' | 'generator' | 'classifier',
 * so that the file is self-describing. `extraMetadata` (e.g. the training step) is stored alongside.
 */
export function saveModel(path: string, model: DenoiserModel | GeneratorModel | ClassifierModel, extraMetadata: Record<string, string> = {}): void {
  for (const k of RESERVED) if (k in extraMetadata) throw new Error(`saveModel: metadata key '${k}' is reserved`);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, v] of Object.entries(model.params)) {
    tensors[name] = { dtype: 'F32', shape: v.shape.slice(), data: v.dataSync() as Float32Array };
  }
  const metadata = { ...extraMetadata, format: FORMAT, role: roleOf(model.config), config: JSON.stringify(model.config) };
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads and parses a weight file; the errors name the path and say what is wrong. */
export function readSafetensorsFile(path: string): ReturnType<typeof decodeSafetensors> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`checkpoint not found: ${path}`, { cause: e });
    if (code === 'EISDIR') throw new Error(`${path} is a directory, expected a safetensors file`, { cause: e });
    throw new Error(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsFormatError) throw new Error(`${path} is not a valid safetensors file (${e.message})`, { cause: e });
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
}

const ROLES: readonly string[] = ['denoiser', 'generator', 'classifier'] satisfies ModelRole[];

function readModelFile(path: string, role: ModelRole): { config: unknown; tensors: Record<string, SafetensorsTensor> } {
  const { tensors, metadata } = readSafetensorsFile(path);
  if (metadata.format !== FORMAT) {
    throw new Error(`${path} was not written by diff-instruct (metadata.format is ${JSON.stringify(metadata.format ?? null)}, expected '${FORMAT}')`);
  }
  if (metadata.role !== role) {
    const held = metadata.role !== undefined && ROLES.includes(metadata.role) ? `a ${metadata.role}` : `role ${JSON.stringify(metadata.role ?? null)}`;
    throw new Error(`${path} holds ${held}, expected a ${role}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(metadata.config ?? '');
  } catch (e) {
    throw new Error(`${path}: metadata.config is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return { config, tensors };
}

/** Loads a denoiser saved by {@link saveModel}. */
export function loadDenoiser(path: string): DenoiserModel {
  const { config, tensors } = readModelFile(path, 'denoiser');
  validateDenoiserConfig(config, `config in ${path}`);
  return loadInto(initDenoiser(config, null), tensors, path);
}

/** Loads a generator saved by {@link saveModel}: `const g = loadGenerator('generator.safetensors')`. */
export function loadGenerator(path: string): GeneratorModel {
  const { config, tensors } = readModelFile(path, 'generator');
  validateGeneratorConfig(config, `config in ${path}`);
  return loadInto(initGenerator(config, null), tensors, path);
}

/** Loads a classifier saved by {@link saveModel}: `const c = loadClassifier('lenet-mnist.safetensors')`. */
export function loadClassifier(path: string): ClassifierModel {
  const { config, tensors } = readModelFile(path, 'classifier');
  validateClassifierConfig(config, `config in ${path}`);
  return loadInto(initClassifier(config, null), tensors, path);
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
