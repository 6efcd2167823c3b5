/**
 * `@diff-instruct/models/node`: the file-system side of the package (Node only). The main entry
 * works on bytes (`encodeModel`, `loadGenerator(bytes)`, …) and runs in a browser; these wrappers
 * read and write files.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { decodeSafetensorsBytes, encodeModel, loadClassifier as classifierFromBytes, loadDenoiser as denoiserFromBytes, loadGenerator as generatorFromBytes } from './io.js';
import type { ClassifierModel } from './lenet.js';
import type { DenoiserModel, GeneratorModel } from './model.js';
import type { decodeSafetensors } from './safetensors.js';

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
 * Saves a model's weights as safetensors (see `encodeModel`), atomically, with `metadata.config`,
 * `metadata.format` = 'diff-instruct' and `metadata.role`, so that the file is self-describing.
 * `extraMetadata` (e.g. the training step) is stored alongside.
 */
export function saveModel(path: string, model: DenoiserModel | GeneratorModel | ClassifierModel, extraMetadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeModel(model, extraMetadata));
}

/** Reads a file, with errors that name the path and say what is wrong. */
export function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`checkpoint not found: ${path}`, { cause: e });
    if (code === 'EISDIR') throw new Error(`${path} is a directory, expected a safetensors file`, { cause: e });
    throw new Error(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads and parses a weight file; the errors name the path and say what is wrong. */
export function readSafetensorsFile(path: string): ReturnType<typeof decodeSafetensors> {
  return decodeSafetensorsBytes(readBytes(path), path);
}

/** Loads a denoiser saved by {@link saveModel}: `const d = loadDenoiser('teacher.safetensors')`. */
export function loadDenoiser(path: string): DenoiserModel {
  return denoiserFromBytes(readBytes(path), path);
}

/** Loads a generator saved by {@link saveModel}: `const g = loadGenerator('generator.safetensors')`. */
export function loadGenerator(path: string): GeneratorModel {
  return generatorFromBytes(readBytes(path), path);
}

/** Loads a classifier saved by {@link saveModel}: `const c = loadClassifier('lenet-mnist.safetensors')`. */
export function loadClassifier(path: string): ClassifierModel {
  return classifierFromBytes(readBytes(path), path);
}
