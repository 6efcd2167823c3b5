/**
 * One row of `BENCH_ONLY=scaling` (bench/run.ts), ours, in a process of its own so that its peak RSS
 * is its own:
 *
 *     node --conditions=@diff-instruct/source --import tsx bench/scaling.ts \
 *       --preset mnist-tiny|mnist-small --what teacher|di --batch N|max [--seconds S] [--warmup W] [--min-steps M]
 *
 * prints one JSON line on stdout (progress on stderr):
 *
 *     { preset, what, batch, maxBatch, ms, imagesPerS, steps, peakRssMiB, params, backend }
 *
 * or, when the memory guard refuses the batch, `{ preset, what, batch, maxBatch, refused: <the guard's
 * message>, peakRssMiB, … }`.
 *
 * - `teacher`: one teacher DSM step (`trainTeacher`, TEACHER_DEFAULTS), on 256 random images with
 *   labels i % 10 as `runMnistRows`; `di`: one Diff-Instruct iteration (`diffInstruct`,
 *   DIFF_INSTRUCT_DEFAULTS: IKL, σ² weighting; fake-score step + generator step), generator
 *   `tweedieGenerator(teacher, 2.5)`. The UNet is the preset's, with its 10 classes, σ_data 0.5.
 * - `maxBatch` is the largest batch the trainer's memory guard (packages/trainer/src/memory.ts)
 *   accepts on this backend: the guard estimates a step's peak tensor bytes as fixed + perSample ×
 *   batch from two probes (batches 1 and 4) and refuses a step over the 3.8 GiB wasm heap ceiling;
 *   the largest batch it accepts is ⌊(ceiling − fixed) / perSample⌋, the number its own message
 *   names. It is read from the guard itself: a run at a batch far over the ceiling throws
 *   `HeapCeilingError`, which carries the estimate. `--batch max` runs at that batch.
 * - Timing: a warm-up run of W steps (default 2; through the guard when the batch is over
 *   maxBatch, which then refuses it with its own message), then a run of as many steps as fill about S seconds (default 10) at the
 *   warm-up's pace, at least M (default 2). ms is the loop's own time (the trainer's progress
 *   event at the last step: after the guard's probes and the session's setup) per step.
 * - imagesPerS = batch × 1000 / ms (a Diff-Instruct iteration generates `batch` images for each of
 *   its two steps; the rate counts one batch per iteration).
 */
import { parseArgs } from 'node:util';

import { selectBackend } from '@diff-instruct/cli';
import { countParams, createDenoiser, disposeModel, tweedieGenerator, unetPreset, type UnetPreset } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, HeapCeilingError, TEACHER_DEFAULTS, WASM_HEAP_CEILING_BYTES, type StepMemoryEstimate } from '@diff-instruct/trainer';
import { diffInstruct, trainTeacher } from '@diff-instruct/trainer/node';

export const SCALING_PRESETS = ['mnist-tiny', 'mnist-small'] as const satisfies readonly UnetPreset[];
export const SCALING_WHATS = ['teacher', 'di'] as const;
export type ScalingWhat = (typeof SCALING_WHATS)[number];

/** What the child prints: one row of the scaling group, ours. */
export interface ScalingChildRow {
  preset: string;
  what: ScalingWhat;
  batch: number;
  /** The largest batch the memory guard accepts for this preset and step (null: no guard on this backend). */
  maxBatch: number | null;
  ms?: number;
  imagesPerS?: number;
  steps?: number;
  /** The guard's message when it refuses the batch. */
  refused?: string;
  peakRssMiB: number;
  params: number;
  backend: string;
}

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string' },
    what: { type: 'string' },
    batch: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'min-steps': { type: 'string', default: '2' },
  },
});
const usage = 'usage: bench/scaling.ts --preset mnist-tiny|mnist-small --what teacher|di --batch N|max [--seconds S] [--warmup W] [--min-steps M]';
const preset = args.preset as UnetPreset;
const what = args.what as ScalingWhat;
if (!(SCALING_PRESETS as readonly string[]).includes(preset) || !(SCALING_WHATS as readonly string[]).includes(what)) throw new Error(usage);
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const minSteps = Number(args['min-steps']);
if (!(seconds > 0 && Number.isInteger(warmup) && warmup >= 1 && Number.isInteger(minSteps) && minSteps >= 1)) throw new Error(usage);

const backend = await selectBackend(process.env.BENCH_BACKEND);
const teacher = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unetPreset(preset) }, new Rng(0));
const rng = new Rng(1);
const images = { data: rng.uniform(256 * 1024, -1, 1), sampleShape: [32, 32, 1], labels: Int32Array.from({ length: 256 }, (_, i) => i % 10), numClasses: 10 };

/**
 * Runs `steps` steps at `batch` and returns the loop's ms per step (from the progress event of the
 * last step). `guard`: through the memory guard (the default ceiling on this backend), else none.
 */
async function run(batch: number, steps: number, guard: boolean): Promise<number> {
  let elapsedSec = NaN;
  const onProgress = (e: { step: number; total: number; elapsedSec: number }) => {
    if (e.step === e.total) elapsedSec = e.elapsedSec;
  };
  const heapCeilingBytes = guard ? undefined : Infinity;
  if (what === 'teacher') {
    const r = await trainTeacher({ model: teacher, data: images, config: { ...TEACHER_DEFAULTS, steps, batchSize: batch, checkpointEvery: steps + 1 }, rng: new Rng(2), onProgress, heapCeilingBytes });
    disposeModel(r.ema); // r.model is `teacher`, trained in place
  } else {
    const generator = tweedieGenerator(teacher, 2.5);
    const r = await diffInstruct({ teacher, generator, config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: batch, checkpointEvery: steps + 1 }, rng: new Rng(3), onProgress, heapCeilingBytes });
    disposeModel(r.ema);
    disposeModel(r.fake);
    disposeModel(generator);
  }
  return (elapsedSec * 1000) / steps;
}

/** The guard's estimate for this step: a batch far over the ceiling makes it throw, with the estimate. */
async function guardEstimate(): Promise<StepMemoryEstimate | null> {
  try {
    await run(2 ** 30, 1, true);
  } catch (e) {
    if (e instanceof HeapCeilingError) return e.estimate;
    throw e;
  }
  return null; // no guard on this backend (not wasm)
}

const estimate = await guardEstimate();
const maxBatch = estimate === null ? null : Math.floor((WASM_HEAP_CEILING_BYTES - estimate.fixedBytes) / estimate.perSampleBytes);
if (estimate !== null) {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  process.stderr.write(`${preset} ${what}: the guard's estimate: ${mib(estimate.fixedBytes)} MiB + ${mib(estimate.perSampleBytes)} MiB per sample; largest batch ${maxBatch}\n`);
}
let batch: number;
if (args.batch === 'max') {
  if (maxBatch === null) throw new Error(`bench/scaling.ts: --batch max needs the memory guard, which ${backend} does not have`);
  batch = maxBatch;
} else {
  batch = Number(args.batch);
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(usage);
}
const base = { preset, what, batch, maxBatch, params: countParams(teacher.params) };
const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

let warmMs: number;
try {
  // Through the guard when it refuses the batch (its own message), else without its probes: it
  // accepts every batch up to maxBatch.
  warmMs = await run(batch, warmup, maxBatch === null || batch > maxBatch);
} catch (e) {
  if (!(e instanceof HeapCeilingError)) throw e;
  process.stderr.write(`${preset} ${what} batch ${batch}: refused by the memory guard\n`);
  process.stdout.write(`${JSON.stringify({ ...base, refused: e.message, peakRssMiB: peakRssMiB(), backend } satisfies ScalingChildRow)}\n`);
  process.exit(0);
}
const steps = Math.max(minSteps, Math.min(500, Math.round((seconds * 1000) / warmMs)));
const ms = await run(batch, steps, false);
process.stderr.write(`${preset} ${what} batch ${batch}: ${ms.toFixed(1)} ms/step over ${steps} steps (warm-up ${warmMs.toFixed(0)} ms/step), ${((batch * 1000) / ms).toFixed(1)} images/s, peak RSS ${peakRssMiB()} MiB\n`);
process.stdout.write(`${JSON.stringify({ ...base, ms, imagesPerS: (batch * 1000) / ms, steps, peakRssMiB: peakRssMiB(), backend } satisfies ScalingChildRow)}\n`);
