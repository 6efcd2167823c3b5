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
 * cores); and `peakRssMiB` of this process. The MNIST rows alternate ours and PyTorch for
 * BENCH_ROUNDS rounds (default 5): `ms` and `pytorchMs` are the medians, `msRounds` and
 * `pytorchMsRounds` every round. Both sides time steps only: ours as the difference between a run of
 * 3 + n steps and one of 3 (see timeSteps), so that a run's setup is not counted.
 *
 * BENCH_ONLY=scaling (never part of the default run) runs the scaling group instead: ms per step,
 * images/s and peak RSS of the teacher step and of the Diff-Instruct iteration for the UNet presets
 * mnist-tiny and mnist-small at batch 16, 32, 64 and the largest batch the trainer's memory guard
 * accepts (and, ours only, the next power of two, which the guard refuses), ours and PyTorch (every
 * core), each row in a fresh process (bench/scaling.ts, di_bench.py) so that its peak RSS is its
 * own. BENCH_SCALING_QUICK=1 cuts each row to one warm-up and one timed step (a smoke test).
 * `bench/scaling-plot.ts <rows.json>` draws the rows (docs/bench-scaling.png) and prints their table.
 *
 * BENCH_STEPS (default 10000) sets the length of the leak run; BENCH_BACKEND picks the backend;
 * BENCH_ONLY=toy|mnist|profile|scaling runs one group; BENCH_PYTORCH=0 skips the reference.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@diff-instruct/cli';
import { createDenoiser, disposeModel, tweedieGenerator, unetPreset } from '@diff-instruct/models';
import { Rng, sampleTeacher } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, TEACHER_DEFAULTS, oneHot } from '@diff-instruct/trainer';
import { diffInstruct, trainTeacher } from '@diff-instruct/trainer/node';
import { getTarget } from '@diff-instruct/data';

import { matMulPeakGflops, profileKernels } from './profile.js';
import { peakRssMiB, pytorchBoth, pytorchTiming, runPytorch } from './pytorch.js';
import type { ScalingChildRow } from './scaling.js';

// The scaling group runs every row in a child process, each with its own backend.
const backend = process.env.BENCH_ONLY === 'scaling' ? 'see each row' : await selectBackend(process.env.BENCH_BACKEND);
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

/** The middle value (the mean of the two middle ones for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const warmed = new Set<string>();

/**
 * ms per step of `fn(steps)`, a whole training run. A run's setup (parameter copies, optimiser
 * state, the memory guard's probe steps) is not a step, and PyTorch's reference times steps only:
 * so a run of 3 steps and one of 3 + `steps` are timed, and their difference is `steps` steps after
 * the same warm-up. The first call of each label runs once untimed (compilation, first allocations).
 */
async function timeSteps(label: string, steps: number, fn: (steps: number) => Promise<unknown>): Promise<number> {
  if (!warmed.has(label)) {
    await fn(3);
    warmed.add(label);
  }
  const t0 = performance.now();
  await fn(3);
  const t1 = performance.now();
  await fn(3 + steps);
  const t2 = performance.now();
  const ms = (t2 - t1 - (t1 - t0)) / steps;
  process.stderr.write(`${label}: ${ms.toFixed(1)} ms/step\n`);
  return ms;
}

const only = process.env.BENCH_ONLY;
if (only !== undefined && !['toy', 'mnist', 'profile', 'scaling'].includes(only)) throw new Error(`BENCH_ONLY=${only}: use toy, mnist, profile or scaling`);
if (only === undefined || only === 'toy') await runToyRows();
if (only === undefined || only === 'mnist') await runMnistRows();
if (only === undefined || only === 'profile') await runProfileRows();
if (only === 'scaling') runScalingRows();
process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);

async function runToyRows(): Promise<void> {
const teacher = createDenoiser({ kind: 'edm', sigmaData: 1.4, net }, new Rng(0));
// (each timed run's EMA copies, fake scores and generators are freed: the leak row below counts tensors)
const teacherMs = await timeSteps('teacher DSM step', 20, async (steps) => {
  const r = await trainTeacher({ model: teacher, data, config: { ...TEACHER_DEFAULTS, steps, batchSize: batch }, rng: new Rng(2) });
  disposeModel(r.ema);
});
const toyTorch = pytorchBoth('toy', batch, 20);
rows.push({ name: 'teacher-dsm-step', ms: teacherMs, ...versus(teacherMs, toyTorch, 'msPerTeacherStep'), batch, model: 'MLP 3x256', backend, peakRssMiB: peakRssMiB() });

const diMs = await timeSteps('Diff-Instruct iteration', 20, async (steps) => {
  const g = tweedieGenerator(teacher, 2.5);
  const r = await diffInstruct({ teacher, generator: g, config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: batch }, rng: new Rng(3) });
  disposeModel(r.ema);
  disposeModel(r.fake);
  disposeModel(g);
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
  // SiD's generator step (packages/divergences/src/sid.ts) back-propagates through both denoisers
  // into x_t: one more backward pass than IKL. The trainer's settings for it: α = sidAlpha (1.2)
  // and the config's weighting, 'sigma2' by default (as `distill`'s SiD recipes), so c_i = 1.
  const sidConfig = { ...DIFF_INSTRUCT_DEFAULTS, objective: 'sid' as const };
  // Ours and PyTorch take turns, BENCH_ROUNDS rounds (default 5) of 8 (ours) and 5 (PyTorch) timed
  // steps; every row reports the median round of each side, the ratio of the medians, and every
  // round. On a shared machine a single round of either can be off by 20 %.
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
  const ours = { teacher: [] as number[], di: [] as number[], sid: [] as number[] };
  const theirs = { teacher: [] as number[], di: [] as number[], sid: [] as number[] };
  let torch: ReturnType<typeof pytorchTiming> = null;
  let sidTorch: ReturnType<typeof pytorchTiming> = null;
  for (let round = 1; round <= rounds; round++) {
    process.stderr.write(`MNIST round ${round}/${rounds}\n`);
    ours.teacher.push(await timeSteps('MNIST teacher step', 8, async (steps) => {
      await trainTeacher({ model: teacher, data: images, config: { ...TEACHER_DEFAULTS, steps, batchSize: b }, rng: new Rng(2) });
    }));
    ours.di.push(await timeSteps('MNIST Diff-Instruct iteration', 8, async (steps) => {
      await diffInstruct({ teacher, generator: tweedieGenerator(teacher, 2.5), config: { ...DIFF_INSTRUCT_DEFAULTS, steps, batchSize: b }, rng: new Rng(3) });
    }));
    ours.sid.push(await timeSteps('MNIST SiD iteration', 8, async (steps) => {
      const generator = tweedieGenerator(teacher, 2.5);
      const r = await diffInstruct({ teacher, generator, config: { ...sidConfig, steps, batchSize: b }, rng: new Rng(3) });
      disposeModel(r.ema);
      disposeModel(r.fake);
      disposeModel(generator);
    }));
    torch = pytorchTiming('unet', b, cpus().length, 5);
    sidTorch = pytorchTiming('unet', b, cpus().length, 5, { what: 'di', objective: 'sid' });
    if (torch !== null) {
      theirs.teacher.push(torch.msPerTeacherStep!);
      theirs.di.push(torch.msPerDiIteration!);
    }
    if (sidTorch !== null) theirs.sid.push(sidTorch.msPerDiIteration!);
  }
  // one thread, once, for information
  const torch1 = torch === null ? null : pytorchTiming('unet', b, 1, 5);
  const sidTorch1 = sidTorch === null ? null : pytorchTiming('unet', b, 1, 5, { what: 'di', objective: 'sid' });
  const row = (kind: 'teacher' | 'di' | 'sid', all: typeof torch, one: typeof torch) => {
    const ms = median(ours[kind]);
    const key = kind === 'teacher' ? 'msPerTeacherStep' : 'msPerDiIteration';
    const base = { ms, msRounds: ours[kind], rounds };
    if (all === null || theirs[kind].length === 0) return { ...base, pytorchMs: null };
    const pytorchMs = median(theirs[kind]);
    return { ...base, pytorchMs, pytorchMsRounds: theirs[kind], pytorchThreads: all.threads, pytorch1ThreadMs: one?.[key] ?? null, ratio: ms / pytorchMs, torch: all.torch };
  };
  const teacherRow = row('teacher', torch, torch1);
  const diRow = row('di', torch, torch1);
  const sidRow = row('sid', sidTorch, sidTorch1);
  rows.push({ name: 'mnist-teacher-step', ...teacherRow, batch: b, model, backend, peakRssMiB: peakRssMiB() });
  rows.push({ name: 'mnist-diff-instruct-iteration', ...diRow, batch: b, model, backend, peakRssMiB: peakRssMiB() });
  rows.push({
    name: 'mnist-sid-iteration',
    ...sidRow,
    sidOverIkl: sidRow.ms / diRow.ms,
    pytorchSidOverIkl: sidRow.pytorchMs != null && diRow.pytorchMs != null ? sidRow.pytorchMs / diRow.pytorchMs : null,
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
  /** The profile as a row: the 16 slowest kernels, the rest, and the time outside kernels (engine and JavaScript). */
  const profileRow = (name: string, ms: number, p: typeof prof) => ({
    name,
    ms,
    wallMsPerIteration: p.wallMsPerIteration,
    kernelMsPerIteration: p.kernelMsPerIteration,
    outsideKernelsMsPerIteration: p.wallMsPerIteration - p.kernelMsPerIteration,
    kernelCallsPerIteration: p.rows.reduce((s, r) => s + r.callsPerIteration, 0),
    kernels: p.rows.slice(0, 16),
    otherKernelsMsPerIteration: p.rows.slice(16).reduce((s, r) => s + r.msPerIteration, 0),
    batch: b,
    model,
    backend,
  });
  rows.push(profileRow('mnist-diff-instruct-profile', diMs, prof));
  // The teacher step, with the images and labels of runMnistRows.
  const images = { data: new Rng(1).uniform(256 * 1024, -1, 1), sampleShape: [32, 32, 1], labels: Int32Array.from({ length: 256 }, (_, i) => i % 10), numClasses: 10 };
  const teacherRun = (steps: number) => trainTeacher({ model: teacher, data: images, config: { ...TEACHER_DEFAULTS, steps, batchSize: b }, rng: new Rng(2) });
  const teacherMs = await timeSteps('MNIST teacher step', 5, async (steps) => {
    await teacherRun(steps);
  });
  const tprof = await profileKernels(async () => {
    await teacherRun(3);
  }, 3, peak);
  rows.push(profileRow('mnist-teacher-step-profile', teacherMs, tprof));
}

/**
 * The scaling group (BENCH_ONLY=scaling): for each UNet preset and step kind, ours at batch 16, 32,
 * 64, the largest batch the memory guard accepts and the next power of two above it (which it
 * refuses), then PyTorch on every core at 16, 32, 64 and that largest batch; each row in a fresh
 * process (bench/scaling.ts; di_bench.py), so that its peak RSS is its own.
 */
function runScalingRows(): void {
  const quick = process.env.BENCH_SCALING_QUICK === '1';
  // About 6 s of timed steps per row (at least 2 steps) after 2 warm-up steps (1 above batch 64).
  // Quick (one warm-up step, one timed step): 36 rows in 8.5 min on the 2-core machine while it
  // trained a teacher; the full run adds about 6 s per timed row and a step per row (~12–14 min).
  const timing = (batch: number) => (quick ? { seconds: 0.01, warmup: 1, minSteps: 1 } : { seconds: 6, warmup: batch > 64 ? 1 : 2, minSteps: 2 });
  const script = join(import.meta.dirname, 'scaling.ts');
  const threads = cpus().length;
  const t0 = performance.now();
  for (const preset of ['mnist-tiny', 'mnist-small'] as const) {
    for (const what of ['teacher', 'di'] as const) {
      const whatName = what === 'teacher' ? 'teacher-step' : 'di-iteration';
      const name = (impl: string, batch: number | string) => `scaling-${preset}-${whatName}-${impl}-batch-${batch}`;
      const common = { group: 'scaling', preset, what: whatName };
      let maxBatch: number | null = null;
      const ours = (batchArg: string, batchKind: string) => {
        const t = timing(batchArg === 'max' ? (maxBatch ?? Infinity) : Number(batchArg));
        const args = ['--preset', preset, '--what', what, '--batch', batchArg, '--seconds', String(t.seconds), '--warmup', String(t.warmup), '--min-steps', String(t.minSteps)];
        // The same node flags as this process (the source condition, tsx), so the child runs the same code.
        const r = spawnSync(process.execPath, [...process.execArgv, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: process.env });
        const line = r.status === 0 ? r.stdout.trim().split('\n').at(-1) : undefined;
        if (line === undefined) {
          rows.push({ name: name('ours', batchArg), ...common, impl: 'ours', batchKind, batch: batchArg === 'max' ? maxBatch : Number(batchArg), error: `bench/scaling.ts exited with ${r.status ?? r.signal}` });
          return;
        }
        const c = JSON.parse(line) as ScalingChildRow;
        maxBatch ??= c.maxBatch;
        rows.push({ name: name('ours', c.batch), ...common, impl: 'ours', batchKind, batch: c.batch, maxBatch: c.maxBatch, ms: c.ms ?? null, imagesPerS: c.imagesPerS ?? null, peakRssMiB: c.peakRssMiB, steps: c.steps ?? null, ...(c.refused !== undefined ? { refused: c.refused } : {}), params: c.params, backend: c.backend });
      };
      for (const b of [16, 32, 64]) ours(String(b), String(b));
      ours('max', 'max');
      // The next power of two above the largest batch: the guard's refusal, as a row.
      if (maxBatch !== null && 2 ** Math.ceil(Math.log2(maxBatch + 1)) > 64) ours(String(2 ** Math.ceil(Math.log2(maxBatch + 1))), 'over-max');
      if (process.env.BENCH_PYTORCH === '0') continue;
      const batches: Array<[number | null, string]> = [[16, '16'], [32, '32'], [64, '64'], [maxBatch, 'max']];
      for (const [batch, batchKind] of batches) {
        if (batch === null) {
          rows.push({ name: name('pytorch', batchKind), ...common, impl: 'pytorch', batchKind, batch, error: 'no largest batch: the memory guard gave none for ours' });
          continue;
        }
        const why: { reason?: string } = {};
        const j = runPytorch({ model: 'unet', preset, what, batch, threads, ...timing(batch) }, why);
        const ms = j === null ? null : what === 'teacher' ? j.msPerTeacherStep : j.msPerDiIteration;
        if (j === null || ms === null) {
          rows.push({ name: name('pytorch', batch), ...common, impl: 'pytorch', batchKind, batch, error: why.reason ?? 'no timing' });
          continue;
        }
        rows.push({ name: name('pytorch', batch), ...common, impl: 'pytorch', batchKind, batch, maxBatch, ms, imagesPerS: (batch * 1000) / ms, peakRssMiB: j.peakRssMiB, steps: what === 'teacher' ? j.teacherSteps : j.diSteps, params: j.params, threads, torch: j.torch });
      }
    }
  }
  const backends = new Set(rows.filter((r) => r.impl === 'ours' && typeof r.backend === 'string').map((r) => r.backend));
  if (backends.size > 1) process.stderr.write(`bench: WARNING: the scaling rows ran on different backends (${[...backends].join(' | ')}); was the native addon rebuilt meanwhile?\n`);
  process.stderr.write(`scaling: ${rows.length} rows in ${((performance.now() - t0) / 60000).toFixed(1)} min\n`);
}
