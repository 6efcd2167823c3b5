import type * as tf from '@tensorflow/tfjs';
import { decodeSafetensors, encodeSafetensors, loadParamsInto } from '@diff-instruct/models';
import { Rng, type RngState } from '@diff-instruct/sde';

import type { TrainLog } from './loop.js';

/**
 * Where a training loop keeps its state: `read()` gives the bytes of the last state written (or
 * undefined when there is none), `write(bytes)` replaces it — completely or not at all. `name`
 * (a path, a key) appears in messages. `fileStateStore(path)` in `@diff-instruct/trainer/node`
 * keeps it in a file; in a browser it may be IndexedDB, or memory.
 */
export interface StateStore {
  read(): Uint8Array | undefined;
  write(bytes: Uint8Array): void;
  readonly name?: string;
}

/** A {@link StateStore} in memory: for tests, and for runs in a page that only need to pause. */
export function memoryStateStore(name = 'memory'): StateStore & { bytes: Uint8Array | undefined } {
  return {
    name,
    bytes: undefined,
    read() {
      return this.bytes;
    },
    write(bytes) {
      this.bytes = bytes.slice();
    },
  };
}

/**
 * The state store of a loop's options. `statePath` (a file) needs the loops of
 * `@diff-instruct/trainer/node`, which turn it into a `stateStore`; the main entry has no file system.
 */
export function stateStoreOf(o: { statePath?: string; stateStore?: StateStore }, who: string): StateStore | undefined {
  if (o.stateStore) return o.stateStore;
  if (o.statePath) {
    throw new Error(
      `${who}: statePath (${o.statePath}) is a file: import ${who} from '@diff-instruct/trainer/node' to keep the state in a file, or pass stateStore`,
    );
  }
  return undefined;
}

const nameOf = (store: StateStore) => store.name ?? 'the training state';

/** The non-tensor part of a training state: where the loop is and how it was configured. */
export interface TrainStateInfo {
  /** Which loop wrote it ('teacher', 'diff-instruct', ...). */
  kind: string;
  /** Steps completed. */
  step: number;
  /** The RNG state after `step` steps. */
  rng: RngState;
  /** Adam step counts, by optimiser name. */
  optimizerSteps: Record<string, number>;
  /** The resolved config of the run that wrote it; a resumed run must use the same. */
  config: unknown;
}

type StoredTensor = ReturnType<typeof decodeSafetensors>['tensors'][string];

export interface LoadedTrainState {
  info: TrainStateInfo;
  tensors: Record<string, StoredTensor>;
}

/**
 * Encodes the full training state — every network, optimiser moment and EMA shadow, by prefixed
 * name, with the step, RNG state and config in the header — as the bytes of one safetensors file.
 * `saveTrainState(path, …)` in `@diff-instruct/trainer/node` writes them atomically.
 */
export function encodeTrainState(groups: Record<string, Record<string, tf.Tensor>>, info: TrainStateInfo): Uint8Array {
  const tensors: Parameters<typeof encodeSafetensors>[0] = {};
  for (const [prefix, group] of Object.entries(groups)) {
    for (const [name, t] of Object.entries(group)) {
      tensors[`${prefix}/${name}`] = { dtype: 'F32', shape: t.shape.slice(), data: t.dataSync() as Float32Array };
    }
  }
  return encodeSafetensors(tensors, { format: 'diff-instruct-train-state', state: JSON.stringify(info) });
}

/** Parses the bytes of a training state from {@link encodeTrainState}; `name` (a path) appears in the errors. */
export function decodeTrainState(bytes: Uint8Array, name: string, expectedKind: string): LoadedTrainState {
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(`${name} is not a valid training state (${(e as Error).message}); it may be truncated or corrupt`);
  }
  const raw = decoded.metadata.state;
  if (decoded.metadata.format !== 'diff-instruct-train-state' || raw === undefined) {
    throw new Error(`${name} is a safetensors file but not a diff-instruct training state`);
  }
  const info = JSON.parse(raw) as TrainStateInfo;
  if (info.kind !== expectedKind) {
    throw new Error(`${name} holds a '${info.kind}' training state, expected '${expectedKind}'`);
  }
  return { info, tensors: decoded.tensors };
}

/** Writes the training state to `store` (see {@link encodeTrainState}). */
export function writeTrainState(store: StateStore, groups: Record<string, Record<string, tf.Tensor>>, info: TrainStateInfo): void {
  store.write(encodeTrainState(groups, info));
}

/** Assigns the stored group `prefix` to `vars`, checking names, shapes and dtypes. */
export function restoreGroup(state: LoadedTrainState, prefix: string, vars: Record<string, tf.Variable>, path: string): void {
  const group: Record<string, StoredTensor> = {};
  for (const [name, t] of Object.entries(state.tensors)) {
    if (name.startsWith(`${prefix}/`)) group[name.slice(prefix.length + 1)] = t;
  }
  loadParamsInto(vars, group, `${path} [${prefix}]`);
}

/**
 * Compares the config stored in a training state with the current one, ignoring the keys that may
 * change on resume (such as the total number of steps). Throws with the differing keys.
 *
 * `added` maps the dotted paths of keys that a loop gained after states were first written to the
 * value that does what the loop did before (e.g. `{ 'train.fakeWarmupSteps': 0 }`): a stored config
 * without such a key matches a current one that holds that value, so older runs still resume.
 */
export function checkResumeConfig(
  stored: unknown,
  current: unknown,
  path: string,
  mayChange: readonly string[] = ['steps'],
  added: Readonly<Record<string, unknown>> = {},
): void {
  const diffs: string[] = [];
  const walk = (a: unknown, b: unknown, key: string) => {
    if (mayChange.includes(key.split('.').pop() ?? '')) return;
    if (a === undefined && key in added && JSON.stringify(b) === JSON.stringify(added[key])) return;
    if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of keys) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], key ? `${key}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      const show = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));
      diffs.push(`${key}: stored ${show(a)}, now ${show(b)}`);
    }
  };
  walk(stored, current, '');
  if (diffs.length > 0) {
    throw new Error(`cannot resume from ${path}: the config differs (${diffs.join('; ')}); resume with the same settings`);
  }
}

/** Where a resumed loop continues. */
export interface Resumed {
  step: number;
  rng: Rng;
  optimizerSteps: Record<string, number>;
}

/**
 * The resume step shared by every trainer: when `resume` is set and `store` holds a state, loads
 * it, checks that it was written by the same kind of loop with the same config, assigns every
 * group of variables, and drops the log lines past its step. Returns undefined for a fresh start.
 */
export function resumeTraining(o: {
  resume?: boolean;
  store?: StateStore;
  kind: string;
  config: unknown;
  /** Keys added to the config since states were first written, with their neutral values: see `checkResumeConfig`. */
  added?: Readonly<Record<string, unknown>>;
  groups: Record<string, Record<string, tf.Variable>>;
  log?: TrainLog;
}): Resumed | undefined {
  if (!o.resume || !o.store) return undefined;
  const bytes = o.store.read();
  if (bytes === undefined) return undefined;
  const name = nameOf(o.store);
  const st = decodeTrainState(bytes, name, o.kind);
  checkResumeConfig(st.info.config, o.config, name, undefined, o.added);
  for (const [prefix, vars] of Object.entries(o.groups)) restoreGroup(st, prefix, vars, name);
  o.log?.truncateAfter?.(o.kind, st.info.step);
  return { step: st.info.step, rng: new Rng(st.info.rng), optimizerSteps: st.info.optimizerSteps };
}
