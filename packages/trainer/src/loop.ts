import * as tf from '@tensorflow/tfjs';

import { estimateStepBytes, heapCeilingProblem, type StepMemoryEstimate } from './memory.js';

/** What a long job reports while it runs. */
export interface ProgressEvent {
  phase: string;
  step: number;
  total: number;
  /** Iterations per second over the recent window. */
  itPerSec: number;
  /** Estimated seconds left. */
  etaSec: number;
  elapsedSec: number;
  /** The latest losses of the step. */
  losses: Record<string, number>;
}

export type ProgressCallback = (e: ProgressEvent) => void;

/**
 * Where a loop writes its log records (one object per logged step). On resume, `truncateAfter`
 * (when present) drops the records of `phase` past the checkpoint's step, so the log of a resumed
 * run reads like the log of an uninterrupted one. `JsonlLog` in `@diff-instruct/trainer/node` is a
 * JSONL file; {@link MemoryLog} keeps the records in an array.
 */
export interface TrainLog {
  write(record: Record<string, unknown>): void;
  truncateAfter?(phase: string, step: number): void;
}

/** A {@link TrainLog} in memory (e.g. for a page that plots the losses). */
export class MemoryLog implements TrainLog {
  readonly records: Record<string, unknown>[] = [];

  write(record: Record<string, unknown>): void {
    this.records.push(record);
  }

  /** Keeps only the records of `phase` with step ≤ `step` (and every record of other phases). */
  truncateAfter(phase: string, step: number): void {
    const kept = this.records.filter((r) => r.phase !== phase || ((r.step as number | undefined) ?? 0) <= step);
    this.records.splice(0, this.records.length, ...kept);
  }
}

/** Raised when a loss becomes NaN or Inf, or memory runs out: the last checkpoint is intact. */
export class TrainingError extends Error {
  override readonly name: string = 'TrainingError';
}

/** Raised before step 1 when one step would not fit under the heap ceiling; carries the estimate. */
export class HeapCeilingError extends TrainingError {
  override readonly name: string = 'HeapCeilingError';
  constructor(
    message: string,
    readonly estimate: StepMemoryEstimate,
  ) {
    super(message);
  }
}

/**
 * Raised when the run's `signal` is aborted: the loop stops at the next step boundary, after
 * writing the state at the last finished step (when the run has a state store), so a run with
 * `resume: true` continues exactly from there. Not a failure: nothing is lost.
 */
export class TrainingStopped extends Error {
  override readonly name: string = 'TrainingStopped';
  constructor(
    readonly phase: string,
    /** The last finished step (the state's step when one was written). */
    readonly step: number,
  ) {
    super(`${phase}: stopped after step ${step}`);
  }
}

/**
 * The wasm heap stops near 3.8 GiB and allocations beyond it corrupt memory silently
 * (docs/design.md), so the loop stops well before that.
 */
export const DEFAULT_MEMORY_LIMIT_BYTES = 3.2 * 1024 ** 3;

export interface LoopOptions {
  phase: string;
  totalSteps: number;
  /** Steps already done (a resumed run starts after them). */
  startStep: number;
  /** One training step; returns its scalar losses. Runs inside tf.tidy. */
  step: (i: number) => Record<string, number>;
  /** Called after step i when i % checkpointEvery === 0 and after the last step. */
  checkpoint?: (step: number) => void;
  checkpointEvery?: number;
  /** Where the last checkpoint is, for error messages. */
  checkpointHint?: string;
  onProgress?: ProgressCallback;
  /** Report progress every this many steps (and at the last). */
  progressEvery?: number;
  log?: TrainLog;
  logEvery?: number;
  memoryLimitBytes?: number;
  /**
   * Computes one step's forward and backward passes at a batch size without changing any state.
   * On the wasm backend (or whenever `heapCeilingBytes` is finite) the loop estimates the step's peak
   * memory from it at `batchSize` and refuses to start a run that would not fit under the ceiling.
   * Without `batchSize`, the step's size is not the loop's to choose (a renderer's views): the probe
   * is called once, as a whole step, and measured as it is.
   */
  memoryProbe?: (batchSize: number) => void;
  batchSize?: number;
  /** Default: the wasm heap's 3.8 GiB on the wasm backend, no check elsewhere; Infinity: no check. */
  heapCeilingBytes?: number;
  /** Stops the run at the next step boundary with {@link TrainingStopped}, after a checkpoint. */
  signal?: AbortSignal;
}

/** How long the loop may hold the event loop before it yields (timers, signals, I/O). */
const YIELD_EVERY_MS = 100;

/** `setImmediate` where the host has it (Node), else a zero-delay timer (a browser). */
const yieldNow: () => Promise<void> =
  typeof setImmediate === 'function' ? () => new Promise<void>((r) => setImmediate(r)) : () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * The step loop shared by every trainer: tidy, NaN/Inf guard, memory guard, progress with rate
 * and ETA, JSONL log, periodic checkpoints. Trainers supply only the step. Steps run
 * synchronously, but the loop yields to the event loop every ~100 ms, so a long run never blocks
 * timers, signal handlers or I/O for long.
 */
export async function runLoop(o: LoopOptions): Promise<void> {
  const progressEvery = o.progressEvery ?? 10;
  const logEvery = o.logEvery ?? 10;
  const memoryLimit = o.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES;
  const checkHeap = o.heapCeilingBytes !== undefined ? Number.isFinite(o.heapCeilingBytes) : tf.getBackend() === 'wasm';
  if (o.memoryProbe && checkHeap) {
    const estimate = await estimateStepBytes(o.memoryProbe, o.batchSize ?? 1);
    const problem = heapCeilingProblem(o.phase, estimate, o.heapCeilingBytes, o.batchSize === undefined);
    if (problem) throw new HeapCeilingError(problem, estimate);
  }
  const t0 = performance.now();
  let windowStart = t0;
  let windowSteps = 0;
  let rate = 0;
  let lastYield = t0;
  let checkpointed = o.startStep;
  for (let i = o.startStep + 1; i <= o.totalSteps; i++) {
    if (performance.now() - lastYield > YIELD_EVERY_MS) {
      await yieldNow();
      lastYield = performance.now();
    }
    if (o.signal?.aborted) {
      if (o.checkpoint && checkpointed < i - 1) o.checkpoint(i - 1);
      throw new TrainingStopped(o.phase, i - 1);
    }
    const losses = tf.tidy(() => o.step(i));
    for (const [name, v] of Object.entries(losses)) {
      if (!Number.isFinite(v)) {
        const where = o.checkpointHint ? `; the last checkpoint (${o.checkpointHint}) is intact` : '';
        throw new TrainingError(
          `${o.phase}: loss '${name}' became ${v} at step ${i}${where}. Lower the learning rate, then resume`,
        );
      }
    }
    const bytes = tf.memory().numBytes;
    if (bytes > memoryLimit) {
      throw new TrainingError(
        `${o.phase}: tensors hold ${(bytes / 2 ** 30).toFixed(2)} GiB at step ${i}, over the ${(memoryLimit / 2 ** 30).toFixed(1)} GiB limit of the wasm heap; use a smaller batch`,
      );
    }
    windowSteps += 1;
    const now = performance.now();
    if (now - windowStart > 2000 || rate === 0) {
      rate = (windowSteps * 1000) / Math.max(1e-3, now - windowStart);
      windowStart = now;
      windowSteps = 0;
    }
    if (o.log && (i % logEvery === 0 || i === o.totalSteps)) {
      o.log.write({ phase: o.phase, step: i, time: (now - t0) / 1000, ...losses });
    }
    if (o.onProgress && (i % progressEvery === 0 || i === o.totalSteps)) {
      o.onProgress({
        phase: o.phase,
        step: i,
        total: o.totalSteps,
        itPerSec: rate,
        etaSec: (o.totalSteps - i) / Math.max(rate, 1e-9),
        elapsedSec: (now - t0) / 1000,
        losses,
      });
    }
    if (o.checkpoint && ((o.checkpointEvery !== undefined && i % o.checkpointEvery === 0) || i === o.totalSteps)) {
      o.checkpoint(i);
      checkpointed = i;
    }
  }
}
