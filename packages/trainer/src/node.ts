/**
 * `@diff-instruct/trainer/node`: the file-system side of the package (Node only). The loops of the
 * main entry keep their state in a `StateStore` and log to a `TrainLog`; here they are files:
 * `fileStateStore(path)`, `JsonlLog`, and the loops themselves with `statePath` turned into a
 * file-backed store, so that `trainTeacher({ …, statePath, log: new JsonlLog(p) })` works as before.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

import type * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '@diff-instruct/models/node';

import { type LoadedTrainState, type StateStore, type TrainStateInfo, decodeTrainState, encodeTrainState } from './checkpoint.js';
import { trainClassifier as trainClassifierCore } from './classifier.js';
import { diffInstruct as diffInstructCore } from './diffInstruct.js';
import { trainGan as trainGanCore } from './gan.js';
import type { TrainLog } from './loop.js';
import { scoreDistill as scoreDistillCore } from './scoreDistill.js';
import { trainTeacher as trainTeacherCore } from './teacher.js';

/**
 * A JSONL log, one object per line. On resume it drops the lines past the checkpoint's step, so
 * the log of a resumed run reads like the log of an uninterrupted one.
 */
export class JsonlLog implements TrainLog {
  constructor(readonly path: string) {}

  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  /** Keeps only the lines of `phase` with step ≤ `step` (and every line of other phases). */
  truncateAfter(phase: string, step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (line.trim() === '') return false;
        try {
          const r = JSON.parse(line) as { phase?: string; step?: number };
          return r.phase !== phase || (r.step ?? 0) <= step;
        } catch {
          return false;
        }
      });
    writeFileSync(this.path, kept.map((l) => `${l}\n`).join(''));
  }

  /** Every record of `phase`, in order. */
  static read(path: string, phase?: string): Record<string, unknown>[] {
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => phase === undefined || r.phase === phase);
  }
}


/**
 * A {@link StateStore} in the file `path`: `read()` is undefined while the file does not exist,
 * `write()` replaces it atomically (temporary file, fsync, rename), so that a crash at any moment
 * leaves the previous state intact.
 */
export function fileStateStore(path: string): StateStore {
  return {
    name: path,
    read: () => (existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined),
    write: (bytes) => writeFileAtomic(path, bytes),
  };
}

/**
 * Writes the full training state — every network, optimiser moment and EMA shadow, by prefixed
 * name, with the step, RNG state and config in the header — as one safetensors file, atomically
 * (temporary file, fsync, rename), so that a crash at any moment leaves the previous state intact.
 */
export function saveTrainState(path: string, groups: Record<string, Record<string, tf.Tensor>>, info: TrainStateInfo): void {
  writeFileAtomic(path, encodeTrainState(groups, info));
}

/** Reads a training state written by {@link saveTrainState}; says what is wrong when it cannot. */
export function loadTrainState(path: string, expectedKind: string): LoadedTrainState {
  if (!existsSync(path)) throw new Error(`no training state at ${path}; there is nothing to resume`);
  return decodeTrainState(new Uint8Array(readFileSync(path)), path, expectedKind);
}

/** The options with `statePath` turned into a {@link fileStateStore} (unless a `stateStore` is given). */
function withFiles<O extends { statePath?: string; stateStore?: StateStore }>(o: O): O {
  return o.statePath && !o.stateStore ? { ...o, stateStore: fileStateStore(o.statePath) } : o;
}

/** `trainTeacher` of the main entry, with `statePath` kept in a file. */
export const trainTeacher: typeof trainTeacherCore = (o) => trainTeacherCore(withFiles(o));
/** `diffInstruct` of the main entry, with `statePath` kept in a file. */
export const diffInstruct: typeof diffInstructCore = (o) => diffInstructCore(withFiles(o));
/** `trainGan` of the main entry, with `statePath` kept in a file. */
export const trainGan: typeof trainGanCore = (o) => trainGanCore(withFiles(o));
/** `trainClassifier` of the main entry, with `statePath` kept in a file. */
export const trainClassifier: typeof trainClassifierCore = (o) => trainClassifierCore(withFiles(o));
/** `scoreDistill` of the main entry, with `statePath` kept in a file. */
export const scoreDistill: typeof scoreDistillCore = (o) => scoreDistillCore(withFiles(o));
