/**
 * `pnpm bench`: prints a JSON array of rows { name, ms, ... } to stdout (progress on stderr).
 *
 * - ms per Diff-Instruct iteration (fake-score DSM step + generator step), batch 512, MLP 3×256;
 * - ms per teacher DSM step, same network and batch;
 * - the number of tfjs tensors alive after 1,000 Diff-Instruct iterations (must equal the count
 *   after the first one: no leaks).
 *
 * BENCH_STEPS (default 1000) sets the length of the leak run; BENCH_BACKEND picks the backend.
 */
import * as tf from '@tensorflow/tfjs';
import { createDenoiser, tweedieGenerator } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, TEACHER_DEFAULTS, diffInstruct, trainTeacher } from '@diff-instruct/trainer';
import { getTarget } from '@diff-instruct/data';

import { selectBackend } from '../apps/distill-cli/src/backend.js';

const backend = await selectBackend(process.env.BENCH_BACKEND);
const leakSteps = Number(process.env.BENCH_STEPS ?? 1000);
const batch = 512;
const rows: Record<string, unknown>[] = [];
const net = { kind: 'mlp' as const, dim: 2, hidden: [256, 256, 256], embedDim: 64, numClasses: 0 };
const data = { data: getTarget('ring8').sample(new Rng(1), 20000), sampleShape: [2] };

function timeSteps(label: string, steps: number, fn: (steps: number) => void): number {
  fn(3); // warm-up: kernel compilation, first allocations
  const t0 = performance.now();
  fn(steps);
  const ms = (performance.now() - t0) / steps;
  process.stderr.write(`${label}: ${ms.toFixed(1)} ms/step\n`);
  return ms;
}

const teacher = createDenoiser({ kind: 'edm', sigmaData: 1.4, net }, new Rng(0));
const teacherMs = timeSteps('teacher DSM step', 20, (steps) => {
  trainTeacher({ model: teacher, data, config: { ...TEACHER_DEFAULTS, steps, batchSize: batch }, rng: new Rng(2) }).ema;
});
rows.push({ name: 'teacher-dsm-step', ms: teacherMs, batch, model: 'MLP 3x256', backend });

const diMs = timeSteps('Diff-Instruct iteration', 20, (steps) => {
  const g = tweedieGenerator(teacher, 2.5);
  diffInstruct({ teacher, generator: g, config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: batch }, rng: new Rng(3) });
});
rows.push({ name: 'diff-instruct-iteration', ms: diMs, batch, model: 'MLP 3x256', backend });

// Tensor hygiene over a long run: tensors alive after step 10 and after step `leakSteps`.
const counts: number[] = [];
const g = tweedieGenerator(teacher, 2.5);
const t0 = performance.now();
diffInstruct({
  teacher,
  generator: g,
  config: { ...DIFF_INSTRUCT_DEFAULTS, steps: leakSteps, batchSize: batch, checkpointEvery: leakSteps + 1 },
  rng: new Rng(4),
  onProgress: (e) => {
    if (e.step === 10 || e.step === leakSteps) counts.push(tf.memory().numTensors);
    if (e.step % 100 === 0) process.stderr.write(`leak run: ${e.step}/${leakSteps}, ${tf.memory().numTensors} tensors\n`);
  },
});
rows.push({
  name: 'tensors-alive-after-steps',
  ms: (performance.now() - t0) / leakSteps,
  steps: leakSteps,
  tensorsAfterStep10: counts[0],
  tensorsAfterLastStep: counts[1],
  batch,
  backend,
});
process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
