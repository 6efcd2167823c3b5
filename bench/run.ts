/**
 * `pnpm bench`: prints a JSON array of rows { name, ms, ... } to stdout (progress on stderr).
 *
 * - ms per Diff-Instruct iteration (fake-score DSM step + generator step), batch 512, MLP 3×256;
 * - ms per teacher DSM step, same network and batch;
 * - the number of tfjs tensors alive after 10,000 Diff-Instruct iterations at batch 64 (must equal
 *   the count after step 10: no leaks).
 *
 * - for the MNIST UNet preset (mnist-tiny, 32×32×1, batch 32): ms per teacher step, ms per
 *   Diff-Instruct iteration, ms per SiD iteration (`objective: 'sid'`, the trainer's defaults:
 *   α 1.2, weighting 'sigma2'), and images/s of one-step sampling against the 35-NFE Heun teacher;
 * - the machine's matMul peak (GFLOP/s, 1024³ on this backend) and a profile of the MNIST
 *   Diff-Instruct iteration: ms per kernel, its share, and GFLOP/s of the dense kernels against
 *   that peak.
 *
 * Each Diff-Instruct and teacher row also carries the PyTorch reference (bench/pytorch.ts) timed in
 * the same run: `pytorchMs` on every core, `pytorch1ThreadMs`, and `ratio` = ours / PyTorch (all
 * cores); and `peakRssMiB` of this process.
 *
 * BENCH_STEPS (default 10000) sets the length of the leak run; BENCH_BACKEND picks the backend;
 * BENCH_ONLY=toy|mnist|profile runs one group; BENCH_PYTORCH=0 skips the reference.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@diff-instruct/cli';
import { createDenoiser, disposeModel, tweedieGenerator, unetPreset } from '@diff-instruct/models';
import { Rng, sampleTeacher } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, TEACHER_DEFAULTS, oneHot } from '@diff-instruct/trainer';
import { diffInstruct, trainTeacher } from '@diff-instruct/trainer/node';
import { getTarget } from '@diff-instruct/data';

import { matMulPeakGflops, profileKernels } from './profile.js';
import { peakRssMiB, pytorchBoth } from './pytorch.js';

const backend = await selectBackend(process.env.BENCH_BACKEND);
const leakSteps = Number(process.env.BENCH_STEPS ?? 10000);
/** The leak run's batch: small, so that 10,000 steps take a couple of minutes (leaks do not depend on it). */
const leakBatch = 64;
const batch = 512;
const rows: Record<string, unknown>[] = [];
const net = { kind: 'mlp' as const, dim: 2, hidden: [256, 256, 256], embedDim: 64, numClasses: 0 };
const data = { data: getTarget('ring8').sample(new Rng(1), 20000), sampleShape: [2] };

/** The PyTorch fields of a row: its ms on every core and on one thread, and ours / PyTorch (all cores). */
function versus(ours: number, torch: ReturnType<typeof pytorchBoth>, key: 'msPerDiIteration' | 'msPerTeacherStep'): Record<string, unknown> {
  const ms = torch.all?.[key] ?? null;
  if (torch.all === null || ms === null) return { pytorchMs: null };
  return {
    pytorchMs: ms,
    pytorchThreads: torch.all.threads,
    pytorch1ThreadMs: torch.one?.[key] ?? null,
    ratio: ours / ms,
    torch: torch.all.torch,
  };
}

async function timeSteps(label: string, steps: number, fn: (steps: number) => Promise<unknown>): Promise<number> {
  await fn(3); // warm-up: kernel compilation, first allocations
  const t0 = performance.now();
  await fn(steps);
  const ms = (performance.now() - t0) / steps;
  process.stderr.write(`${label}: ${ms.toFixed(1)} ms/step\n`);
  return ms;
}

const only = process.env.BENCH_ONLY;
if (only === undefined || only === 'toy') await runToyRows();
if (only === undefined || only === 'mnist') await runMnistRows();
if (only === undefined || only === 'profile') await runProfileRows();
process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);

async function runToyRows(): Promise<void> {
const teacher = createDenoiser({ kind: 'edm', sigmaData: 1.4, net }, new Rng(0));
const teacherMs = await timeSteps('teacher DSM step', 20, async (steps) => {
  await trainTeacher({ model: teacher, data, config: { ...TEACHER_DEFAULTS, steps, batchSize: batch }, rng: new Rng(2) });
});
const toyTorch = pytorchBoth('toy', batch, 20);
rows.push({ name: 'teacher-dsm-step', ms: teacherMs, ...versus(teacherMs, toyTorch, 'msPerTeacherStep'), batch, model: 'MLP 3x256', backend, peakRssMiB: peakRssMiB() });

const diMs = await timeSteps('Diff-Instruct iteration', 20, async (steps) => {
  const g = tweedieGenerator(teacher, 2.5);
  await diffInstruct({ teacher, generator: g, config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: batch }, rng: new Rng(3) });
});
rows.push({ name: 'diff-instruct-iteration', ms: diMs, ...versus(diMs, toyTorch, 'msPerDiIteration'), batch, model: 'MLP 3x256', backend, peakRssMiB: peakRssMiB() });

// Tensor hygiene over a long run: tensors alive after step 10 and after step `leakSteps`.
const counts: number[] = [];
const bytes: number[] = [];
const g = tweedieGenerator(teacher, 2.5);
const t0 = performance.now();
await diffInstruct({
  teacher,
  generator: g,
  config: { ...DIFF_INSTRUCT_DEFAULTS, steps: leakSteps, batchSize: leakBatch, checkpointEvery: leakSteps + 1 },
  rng: new Rng(4),
  onProgress: (e) => {
    if (e.step === 10 || e.step === leakSteps) {
      counts.push(tf.memory().numTensors);
      bytes.push(tf.memory().numBytes);
    }
    if (e.step % 1000 === 0) process.stderr.write(`leak run: ${e.step}/${leakSteps}, ${tf.memory().numTensors} tensors\n`);
  },
});
rows.push({
  name: 'tensors-alive-after-steps',
  ms: (performance.now() - t0) / leakSteps,
  steps: leakSteps,
  tensorsAfterStep10: counts[0],
  tensorsAfterLastStep: counts[1],
  tensorBytesAfterStep10: bytes[0],
  tensorBytesAfterLastStep: bytes[1],
  batch: leakBatch,
  backend,
});
}

async function runMnistRows(): Promise<void> {
  const b = 32;
  const unet = unetPreset('mnist-tiny');
  const teacher = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(0));
  const rng = new Rng(1);
  const images = { data: rng.uniform(256 * 1024, -1, 1), sampleShape: [32, 32, 1], labels: Int32Array.from({ length: 256 }, (_, i) => i % 10), numClasses: 10 };
  const model = 'UNet mnist-tiny (32x32x1, 348,721 params)';
  const teacherMs = await timeSteps('MNIST teacher step', 5, async (steps) => {
    await trainTeacher({ model: teacher, data: images, config: { ...TEACHER_DEFAULTS, steps, batchSize: b }, rng: new Rng(2) });
  });
  const diMs = await timeSteps('MNIST Diff-Instruct iteration', 5, async (steps) => {
    await diffInstruct({ teacher, generator: tweedieGenerator(teacher, 2.5), config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: b }, rng: new Rng(3) });
  });
  // SiD's generator step (packages/divergences/src/sid.ts) back-propagates through both denoisers
  // into x_t: one more backward pass than IKL. The trainer's settings for it: α = sidAlpha (1.2)
  // and the config's weighting, 'sigma2' by default (as `distill`'s SiD recipes), so c_i = 1.
  const sidConfig = { ...DIFF_INSTRUCT_DEFAULTS, objective: 'sid' as const };
  const sidMs = await timeSteps('MNIST SiD iteration', 5, async (steps) => {
    const generator = tweedieGenerator(teacher, 2.5);
    const r = await diffInstruct({ teacher, generator, config: { ...sidConfig, steps, batchSize: b }, rng: new Rng(3) });
    disposeModel(r.ema);
    disposeModel(r.fake);
    disposeModel(generator);
  });
  const torch = pytorchBoth('unet', b, 5);
  const sidTorch = pytorchBoth('unet', b, 5, { what: 'di', objective: 'sid' });
  rows.push({ name: 'mnist-teacher-step', ms: teacherMs, ...versus(teacherMs, torch, 'msPerTeacherStep'), batch: b, model, backend, peakRssMiB: peakRssMiB() });
  rows.push({ name: 'mnist-diff-instruct-iteration', ms: diMs, ...versus(diMs, torch, 'msPerDiIteration'), batch: b, model, backend, peakRssMiB: peakRssMiB() });
  rows.push({
    name: 'mnist-sid-iteration',
    ms: sidMs,
    ...versus(sidMs, sidTorch, 'msPerDiIteration'),
    sidOverIkl: sidMs / diMs,
    pytorchSidOverIkl: sidTorch.all?.msPerDiIteration != null && torch.all?.msPerDiIteration != null ? sidTorch.all.msPerDiIteration / torch.all.msPerDiIteration : null,
    objective: 'sid',
    sidAlpha: sidConfig.sidAlpha,
    weighting: sidConfig.weighting,
    batch: b,
    model,
    backend,
    peakRssMiB: peakRssMiB(),
  });
  // One-step sampling against the 35-NFE teacher, 100 images, class labels 0..9.
  const n = 100;
  const label = oneHot(Int32Array.from({ length: n }, (_, i) => i % 10), 10);
  const g = tweedieGenerator(teacher, 2.5);
  const z = new Rng(4).normalTensor([n, 32, 32, 1]);
  // (a block: tf.tidy walks what it returns, element by element for a typed array)
  const once = () => tf.tidy(() => {
    g.generate(z, label).dataSync();
  });
  once(); // warm-up
  let t0 = performance.now();
  const reps = 5; // one call is ~1 s: time several
  for (let i = 0; i < reps; i++) once();
  const oneStep = (reps * n) / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  const { x, nfe } = sampleTeacher(teacher.denoise, { shape: [n, 32, 32, 1], steps: 18, rng: new Rng(5), label });
  x.dataSync();
  x.dispose();
  const heun = n / ((performance.now() - t0) / 1000);
  process.stderr.write(`one-step: ${oneStep.toFixed(1)} images/s; teacher ${nfe} NFE: ${heun.toFixed(2)} images/s\n`);
  rows.push({ name: 'mnist-one-step-images-per-s', ms: 1000 / oneStep, imagesPerS: oneStep, model, backend });
  rows.push({ name: 'mnist-teacher-35nfe-images-per-s', ms: 1000 / heun, imagesPerS: heun, nfe, speedupOfOneStep: oneStep / heun, model, backend });
}

/** Where the MNIST iteration's time goes, and how fast the dense kernels run against the matMul peak. */
async function runProfileRows(): Promise<void> {
  const b = 32;
  const teacher = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unetPreset('mnist-tiny') }, new Rng(0));
  const model = 'UNet mnist-tiny (32x32x1, 348,721 params)';
  const diMs = await timeSteps('MNIST Diff-Instruct iteration', 3, async (steps) => {
    const r = await diffInstruct({ teacher, generator: tweedieGenerator(teacher, 2.5), config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: b }, rng: new Rng(3), heapCeilingBytes: Infinity });
    disposeModel(r.ema);
    disposeModel(r.fake);
  });
  const peak = matMulPeakGflops(1024);
  process.stderr.write(`matMul peak (1024×1024×1024): ${peak.toFixed(1)} GFLOP/s\n`);
  rows.push({ name: 'matmul-peak-gflops', gflops: peak, shape: '1024x1024 @ 1024x1024', backend });
  const profiled = 2;
  const prof = await profileKernels(async () => {
    const r = await diffInstruct({ teacher, generator: tweedieGenerator(teacher, 2.5), config: { ...DIFF_INSTRUCT_DEFAULTS, steps: profiled, batchSize: b }, rng: new Rng(3), heapCeilingBytes: Infinity });
    disposeModel(r.ema);
    disposeModel(r.fake);
  }, profiled, peak);
  rows.push({
    name: 'mnist-diff-instruct-profile',
    ms: diMs,
    kernelMsPerIteration: prof.kernelMsPerIteration,
    kernels: prof.rows.slice(0, 16),
    otherKernelsMsPerIteration: prof.rows.slice(16).reduce((s, r) => s + r.msPerIteration, 0),
    batch: b,
    model,
    backend,
  });
}
