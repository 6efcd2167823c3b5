import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '@diff-instruct/sde';

import { Adam, type AdamOptions } from './adam.js';
import { type StateStore, resumeTraining, stateStoreOf, writeTrainState } from './checkpoint.js';
import { Ema } from './ema.js';
import { runLoop, type LoopOptions, type ProgressCallback, type TrainLog } from './loop.js';

/** The options of every trainer that the session handles: state, resume, progress, log, memory check. */
export interface SessionOptions {
  /** The run's random stream; a resumed run continues the stored one instead. */
  rng: Rng;
  /** A file for the state: only the loops of `@diff-instruct/trainer/node` accept it (see `stateStoreOf`). */
  statePath?: string;
  /** Where the training state goes (written every `checkpointEvery` steps and after the last). */
  stateStore?: StateStore;
  /** Continue from the stored state instead of starting over. */
  resume?: boolean;
  onProgress?: ProgressCallback;
  log?: TrainLog;
  /**
   * Refuse to start when one step's estimated tensor memory exceeds this. Default: the wasm heap's
   * ceiling (3.8 GiB) on the wasm backend; no check on other backends; Infinity: no check.
   */
  heapCeilingBytes?: number;
  /**
   * Aborting it stops the run at the next step boundary: the state is written at the last finished
   * step (when there is a store) and the trainer throws `TrainingStopped`, freeing what it made.
   */
  signal?: AbortSignal;
}

/** What a trainer tells its session. */
export interface SessionSpec {
  /** The trainer's name, for messages ('trainTeacher'). */
  who: string;
  /** The kind of state it writes and the phase of its log and progress ('teacher'). */
  kind: string;
  options: SessionOptions;
  /** The resolved config of the run, stored with the state; a resumed run must use the same. */
  config: unknown;
  /** Keys added to the config since states were first written, with their neutral values (see `checkResumeConfig`). */
  added?: Readonly<Record<string, unknown>>;
}

/**
 * The loop of a session: {@link LoopOptions} without what the session fills in (phase, start step,
 * checkpoints, progress, log, heap ceiling). `memoryProbe` is required, so that no trainer skips the
 * memory check: one step's forward and backward passes at a batch size, from an Rng of its own.
 * Without `batchSize` the probe is a whole step of a size the trainer does not choose (e.g. the
 * views of a renderer) and is measured as it is.
 */
export type SessionLoop = Omit<LoopOptions, 'phase' | 'startStep' | 'checkpoint' | 'checkpointHint' | 'onProgress' | 'log' | 'heapCeilingBytes' | 'memoryProbe' | 'signal'> & {
  memoryProbe: (batchSize: number) => void;
  /** Called after the state is written at each checkpoint (and after the last step). */
  onCheckpoint?: (step: number) => void;
};

/**
 * The setup every trainer shares, in one place: it creates the optimisers (Adam) and the EMA and
 * owns them, names the groups of variables of the training state, restores a stored state (checked
 * by `resumeTraining`: kind, config, names, shapes), continues the step count and the Adam step
 * counts, writes the state at each checkpoint, runs the loop with its memory check, and frees what
 * it owns when the run ends, whether it returns or throws (see {@link trainingSession}).
 *
 * The state's layout is fixed by the order of the calls: the groups are written in the order they
 * were named (`group`, `ema`, then `adam`'s `<prefix>.m` and `<prefix>.v`), and the Adam step
 * counts under the keys given to `adam`, in that order.
 */
export class TrainingSession {
  /** Where the state goes; undefined when the run keeps none. */
  readonly store: StateStore | undefined;
  private readonly groups: Record<string, Record<string, tf.Variable>> = {};
  private readonly optimizers: Array<{ key: string; adam: Adam }> = [];
  private readonly disposers: Array<() => void> = [];
  private readonly failureDisposers: Array<() => void> = [];
  private restored: { rng: Rng; startStep: number } | undefined;
  private ended = false;

  constructor(readonly spec: SessionSpec) {
    this.store = stateStoreOf(spec.options, spec.who);
  }

  /** Names a group of variables of the training state (a network, a shadow, a moment). */
  group(prefix: string, vars: Record<string, tf.Variable>): void {
    this.checkOpen(`group '${prefix}'`);
    if (this.restored) throw new Error(`${this.spec.who}: group '${prefix}' named after the state was restored; name every group first`);
    if (prefix in this.groups) throw new Error(`${this.spec.who}: the training state already has a group '${prefix}'`);
    this.groups[prefix] = vars;
  }

  /**
   * An Adam on `params`, owned by the session; its moments are the groups `<prefix>.m` and
   * `<prefix>.v`, and its step count is stored as `optimizerSteps[key]`.
   */
  adam(key: string, prefix: string, params: Record<string, tf.Variable>, opts: AdamOptions): Adam {
    this.checkOpen(`adam '${key}'`);
    if (this.optimizers.some((o) => o.key === key)) throw new Error(`${this.spec.who}: two optimisers named '${key}'`);
    const adam = this.own(new Adam(params, opts), (a) => a.dispose());
    this.group(`${prefix}.m`, adam.m);
    this.group(`${prefix}.v`, adam.v);
    this.optimizers.push({ key, adam });
    return adam;
  }

  /** An EMA of `params` with a half-life in steps, owned by the session; its shadow is the group `prefix`. */
  ema(prefix: string, params: Record<string, tf.Variable>, halfLife: number): Ema {
    this.checkOpen(`ema '${prefix}'`);
    const ema = this.own(new Ema(params, halfLife), (e) => e.dispose());
    this.group(prefix, ema.shadow);
    return ema;
  }

  /** Frees `x` when the session ends, however it ends (e.g. a head of the trainer's own). */
  own<T>(x: T, dispose: (x: T) => void): T {
    this.disposers.push(() => dispose(x));
    return x;
  }

  /** Frees `x` only when the run throws: what the trainer made for the caller to keep (a cloned fake score). */
  ownOnFailure<T>(x: T, dispose: (x: T) => void): T {
    this.failureDisposers.push(() => dispose(x));
    return x;
  }

  /**
   * Where the run starts, once every group is named: a fresh start (the caller's Rng, step 0,
   * Adam step counts 0), or, when resuming and the store holds a state, that state assigned to
   * every group with the stored RNG, step and Adam step counts. Calling it again returns the same.
   */
  restore(): { rng: Rng; startStep: number } {
    if (this.restored) return this.restored;
    this.checkOpen('restore');
    const o = this.spec.options;
    const resumed = resumeTraining({
      resume: o.resume,
      store: this.store,
      kind: this.spec.kind,
      config: this.spec.config,
      added: this.spec.added,
      groups: this.groups,
      log: o.log,
    });
    for (const { key, adam } of this.optimizers) adam.t = resumed?.optimizerSteps[key] ?? 0;
    this.restored = { rng: resumed?.rng ?? o.rng, startStep: resumed?.step ?? 0 };
    return this.restored;
  }

  /** The Adam step counts, by key, in the order the optimisers were made. */
  optimizerSteps(): Record<string, number> {
    return Object.fromEntries(this.optimizers.map(({ key, adam }) => [key, adam.t]));
  }

  /** Writes the training state after `step` steps to the store (nothing without one). */
  snapshot(step: number): void {
    if (!this.store) return;
    const { rng } = this.restore();
    writeTrainState(this.store, this.groups, {
      kind: this.spec.kind,
      step,
      rng: rng.state(),
      optimizerSteps: this.optimizerSteps(),
      config: this.spec.config,
    });
  }

  /**
   * Runs the loop from the restored step to `totalSteps`: progress, log, the memory check (the heap
   * ceiling of the options), and at each checkpoint the state, then `onCheckpoint`.
   */
  async run(loop: SessionLoop): Promise<void> {
    this.checkOpen('run');
    const { startStep } = this.restore();
    const o = this.spec.options;
    const { onCheckpoint, ...rest } = loop;
    await runLoop({
      ...rest,
      phase: this.spec.kind,
      startStep,
      checkpointHint: this.store?.name,
      onProgress: o.onProgress,
      log: o.log,
      heapCeilingBytes: o.heapCeilingBytes,
      signal: o.signal,
      checkpoint: (step) => {
        this.snapshot(step);
        onCheckpoint?.(step);
      },
    });
  }

  /** Frees what the session owns (and, when the run failed, what it made for the caller). Once. */
  end(failed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    const disposers = failed ? [...this.failureDisposers, ...this.disposers] : this.disposers;
    let first: unknown;
    for (const d of disposers.slice().reverse()) {
      try {
        d();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }

  private checkOpen(what: string): void {
    if (this.ended) throw new Error(`${this.spec.who}: ${what} after the training session ended`);
  }
}

/**
 * Runs `body` with a {@link TrainingSession} and ends it in a `finally`: the optimisers, the EMA
 * and whatever else the session owns are freed when `body` returns or throws, and what the trainer
 * made for the caller (`ownOnFailure`) is freed too when it throws, so a failed run leaves no
 * tensors behind. Whatever `body` returns must not share the session's tensors (clone the EMA).
 */
export async function trainingSession<T>(spec: SessionSpec, body: (session: TrainingSession) => Promise<T>): Promise<T> {
  const session = new TrainingSession(spec);
  let failed = true;
  try {
    const result = await body(session);
    failed = false;
    return result;
  } finally {
    if (!failed) session.end(false);
    else {
      try {
        session.end(true);
      } catch {
        // the run's own error is the one to report
      }
    }
  }
}
