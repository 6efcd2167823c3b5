import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { RUN_FLAGS, UsageError, flagHelp, mergeConfig, parseArgs, prepareOut, progressBar, readConfigFile, requirePositive, resumeConfig, seedFor, startCommand, type FlagSpec, type Io } from '@diff-instruct/cli';
import { IMAGE_DATASET_NAMES, imageGrid, linePlot, trainingSet, type ImageDataset } from '@diff-instruct/data';
import { loadImageDataset } from '@diff-instruct/data/node';
import { classAccuracy, argmaxRows } from '@diff-instruct/metrics';
import { UNET_PRESETS, createClassifier, createDenoiser, describeModel, unetPreset, type DenoiserModel, type LenetConfig, type UnetConfig, type UnetPreset } from '@diff-instruct/models';
import { saveModel, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng, sampleTeacher } from '@diff-instruct/sde';
import { CLASSIFIER_DEFAULTS, TEACHER_DEFAULTS, oneHot, type ClassifierTrainConfig, type TeacherConfig } from '@diff-instruct/trainer';
import { JsonlLog, trainClassifier, trainTeacher } from '@diff-instruct/trainer/node';

/** `distill teacher`: everything as plain JSON, stored as config.json in the run folder. */
export interface ImageTeacherConfig {
  dataset: 'mnist' | 'fashion';
  /** Class-conditional, trained with label dropout so that classifier-free guidance works. */
  conditional: boolean;
  preset: UnetPreset;
  out: string;
  seed: number;
  /** Use only the first N training images (null: all 60,000). */
  limit: number | null;
  /** EDM's σ_data for images in [-1, 1]. */
  sigmaData: number;
  train: TeacherConfig;
  /** Heun steps of the sample grid drawn at every checkpoint (9 steps = 17 NFE). */
  gridSteps: number;
}

export const IMAGE_TEACHER_DEFAULTS: ImageTeacherConfig = {
  dataset: 'mnist',
  conditional: false,
  preset: 'mnist-tiny',
  out: 'runs/teacher-mnist',
  seed: 0,
  limit: null,
  sigmaData: 0.5,
  // Batch 32 and lr 5e-4 suit the small presets on 2 cores (a step of mnist-tiny takes ~2 s on wasm).
  train: { ...TEACHER_DEFAULTS, steps: 20000, batchSize: 32, lr: 5e-4, emaHalfLife: 500, checkpointEvery: 250 },
  gridSteps: 9,
};

export const TEACHER_FLAGS: Record<string, FlagSpec> = {
  dataset: { type: 'string', help: `image dataset: ${IMAGE_DATASET_NAMES.join(', ')} (default mnist)` },
  conditional: { type: 'boolean', help: 'class-conditional teacher (label dropout 10%, for guidance)' },
  preset: { type: 'string', help: `UNet preset: ${Object.keys(UNET_PRESETS).join(', ')} (default mnist-tiny)` },
  steps: { type: 'int', help: 'training steps' },
  'batch-size': { type: 'int', help: 'batch size' },
  lr: { type: 'number', help: 'Adam learning rate' },
  limit: { type: 'int', help: 'train on the first N images only' },
  out: { type: 'string', help: 'run folder (default runs/teacher-<dataset>)' },
  ...RUN_FLAGS,
};

export const TEACHER_HELP = `distill teacher — train an image diffusion model (EDM loss, UNet) on MNIST or Fashion-MNIST

Usage: distill teacher --dataset mnist|fashion [--conditional] [flags]

${flagHelp(TEACHER_FLAGS)}

Writes into --out: config.json, log.jsonl, teacher.safetensors (EMA weights, refreshed at every
checkpoint), teacher-state.safetensors (for --resume), grid.png (EDM Heun samples from fixed
latents) and losses.png. Images are 32×32 (28×28 padded) in [-1, 1].

Examples:
  distill teacher --dataset mnist --conditional --out runs/teacher-mnist-cond
  distill teacher --resume runs/teacher-mnist-cond
  distill teacher --dataset fashion --preset mnist-small --steps 50000
`;

function checkDataset(name: string): 'mnist' | 'fashion' {
  if (!(IMAGE_DATASET_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`unknown dataset "${name}"; choose one of: ${IMAGE_DATASET_NAMES.join(', ')}`);
  }
  return name as 'mnist' | 'fashion';
}

export function resolveTeacherConfig(flags: Record<string, string | number | boolean>): ImageTeacherConfig {
  if (flags.resume !== undefined) return resumeConfig(IMAGE_TEACHER_DEFAULTS, String(flags.resume), flags);
  let c: ImageTeacherConfig = structuredClone(IMAGE_TEACHER_DEFAULTS);
  if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
  if (flags.dataset !== undefined) {
    c.dataset = checkDataset(String(flags.dataset));
    if (flags.out === undefined && flags.config === undefined) c.out = `runs/teacher-${c.dataset}`;
  }
  if (flags.conditional !== undefined) c.conditional = Boolean(flags.conditional);
  if (flags.preset !== undefined) c.preset = String(flags.preset) as UnetPreset;
  if (!(c.preset in UNET_PRESETS)) throw new UsageError(`unknown preset "${c.preset}"; choose one of: ${Object.keys(UNET_PRESETS).join(', ')}`);
  if (flags.steps !== undefined) c.train.steps = Number(flags.steps);
  if (flags.batchSize !== undefined) c.train.batchSize = Number(flags.batchSize);
  if (flags.lr !== undefined) c.train.lr = Number(flags.lr);
  if (flags.limit !== undefined) c.limit = Number(flags.limit);
  if (flags.out !== undefined) c.out = String(flags.out);
  if (flags.seed !== undefined) c.seed = Number(flags.seed);
  requirePositive([
    ['--steps', c.train.steps],
    ['--batch-size', c.train.batchSize],
    ['--lr', c.train.lr],
  ]);
  return c;
}

/** The network of a teacher config: the preset, conditional or not, with the dataset's channels. */
export function teacherNet(c: ImageTeacherConfig, data: { channels: number; height: number }): UnetConfig {
  const net = unetPreset(c.preset);
  net.numClasses = c.conditional ? 10 : 0;
  net.channels = data.channels;
  net.resolution = data.height;
  return net;
}

/** A grid of teacher samples from fixed latents: one row per class for a conditional teacher. */
export function teacherGrid(teacher: DenoiserModel, steps: number, seed: number, title: string): Uint8Array {
  const net = teacher.config.net as UnetConfig;
  const k = net.numClasses;
  const rows = k > 0 ? k : 8;
  const cols = 8;
  const n = rows * cols;
  const label = k > 0 ? oneHot(Int32Array.from({ length: n }, (_, i) => Math.floor(i / cols)), k) : undefined;
  const { x } = sampleTeacher(teacher.denoise, {
    shape: [n, net.resolution, net.resolution, net.channels],
    steps,
    rng: new Rng(seedFor(seed, 'grid')),
    label,
  });
  const images = x.dataSync() as Float32Array;
  x.dispose();
  label?.dispose();
  return imageGrid({ images, n, height: net.resolution, width: net.resolution, channels: net.channels, cols, title });
}

function lossCurves(logPath: string, phase: string, keys: string[]): Uint8Array {
  const recs = JsonlLog.read(logPath, phase);
  return linePlot({
    title: `${phase} training`,
    logY: true,
    xLabel: 'step',
    series: keys.map((key) => ({
      label: key,
      x: recs.map((r) => Number(r.step)),
      y: recs.map((r) => Number(r[key])),
    })),
  });
}

export async function runTeacherCommand(argv: readonly string[], io: Io): Promise<number> {
  const started = startCommand(argv, TEACHER_FLAGS, 'distill teacher', TEACHER_HELP, resolveTeacherConfig, io.stdout);
  if (started === null) return 0;
  const { c, flags, resuming } = started;
  const data: ImageDataset = loadImageDataset(c.dataset, { split: 'train', limit: c.limit ?? undefined });
  const out = prepareOut(c.out, resuming);
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
  const net = teacherNet(c, data);
  const model = createDenoiser({ kind: 'edm', sigmaData: c.sigmaData, net }, new Rng(seedFor(c.seed, 'teacher-init')));
  io.stderr(
    `distill teacher: ${data.name}, ${data.n} images ${data.height}×${data.width}×${data.channels}; ${describeModel(model.config)}; tfjs backend ${io.backend ?? tf.getBackend()}; writing to ${c.out}\n`,
  );
  const log = new JsonlLog(join(out, 'log.jsonl'));
  const t0 = performance.now();
  const res = await trainTeacher({
    model,
    data: trainingSet(data),
    config: c.train,
    rng: new Rng(seedFor(c.seed, 'teacher')),
    statePath: join(out, 'teacher-state.safetensors'),
    resume: resuming,
    onProgress: progressBar(process.stderr, !flags.quiet),
    log,
    onCheckpoint: (step, ema) => {
      saveModel(join(out, 'teacher.safetensors'), ema, { seed: String(c.seed), dataset: c.dataset, step: String(step) });
      writeFileAtomic(join(out, 'grid.png'), teacherGrid(ema, c.gridSteps, c.seed, `${c.dataset} teacher, step ${step}, Heun ${2 * c.gridSteps - 1} NFE`));
      writeFileAtomic(join(out, 'losses.png'), lossCurves(join(out, 'log.jsonl'), 'teacher', ['loss']));
    },
  });
  saveModel(join(out, 'teacher.safetensors'), res.ema, { seed: String(c.seed), dataset: c.dataset, step: String(c.train.steps) });
  io.stderr(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s; wrote ${c.out}/teacher.safetensors, grid.png, losses.png\n`);
  return 0;
}

/** `distill classifier`: the metric network of "FID (LeNet features)". */
export interface ClassifierRunConfig {
  dataset: 'mnist' | 'fashion';
  out: string;
  seed: number;
  featureDim: number;
  train: ClassifierTrainConfig;
}

export const CLASSIFIER_RUN_DEFAULTS: ClassifierRunConfig = {
  dataset: 'mnist',
  out: 'runs/classifier-mnist',
  seed: 0,
  featureDim: 128,
  train: { ...CLASSIFIER_DEFAULTS },
};

export const CLASSIFIER_FLAGS: Record<string, FlagSpec> = {
  dataset: { type: 'string', help: `image dataset: ${IMAGE_DATASET_NAMES.join(', ')} (default mnist)` },
  steps: { type: 'int', help: 'training steps' },
  out: { type: 'string', help: 'run folder (default runs/classifier-<dataset>)' },
  json: { type: 'boolean', help: 'print { testAccuracy } to stdout' },
  ...RUN_FLAGS,
};

export const CLASSIFIER_HELP = `distill classifier — train the LeNet whose features give "FID (LeNet features)"

Usage: distill classifier --dataset mnist|fashion [flags]

${flagHelp(CLASSIFIER_FLAGS)}

The FID computed on this network's penultimate features is NOT comparable with Inception FID; it
compares models of this project on one dataset. Writes classifier.safetensors, log.jsonl and the
test-set accuracy (report.json) into --out.

Example:
  distill classifier --dataset mnist --out checkpoints/mnist
`;

export async function runClassifierCommand(argv: readonly string[], io: Io): Promise<number> {
  const { positionals, flags } = parseArgs(argv, CLASSIFIER_FLAGS, 'distill classifier');
  if (flags.help || positionals.includes('--help')) {
    io.stdout(CLASSIFIER_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`distill classifier takes no arguments, got "${positionals[0]}"`);
  let c: ClassifierRunConfig;
  if (flags.resume !== undefined) c = resumeConfig(CLASSIFIER_RUN_DEFAULTS, String(flags.resume), flags);
  else {
    c = structuredClone(CLASSIFIER_RUN_DEFAULTS);
    if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
    if (flags.dataset !== undefined) {
      c.dataset = checkDataset(String(flags.dataset));
      if (flags.out === undefined && flags.config === undefined) c.out = `runs/classifier-${c.dataset}`;
    }
    if (flags.steps !== undefined) c.train.steps = Number(flags.steps);
    if (flags.out !== undefined) c.out = String(flags.out);
    if (flags.seed !== undefined) c.seed = Number(flags.seed);
    if (!(c.train.steps > 0)) throw new UsageError(`--steps must be > 0, got ${c.train.steps}`);
  }
  if (flags.dryRun) {
    io.stdout(`${JSON.stringify(c, null, 2)}\n`);
    return 0;
  }
  const resuming = flags.resume !== undefined;
  const train = loadImageDataset(c.dataset, { split: 'train' });
  const test = loadImageDataset(c.dataset, { split: 'test' });
  const out = prepareOut(c.out, resuming);
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
  const config: LenetConfig = { kind: 'lenet', resolution: train.height, channels: train.channels, numClasses: train.numClasses, featureDim: c.featureDim };
  const model = createClassifier(config, new Rng(seedFor(c.seed, 'classifier-init')));
  io.stderr(`distill classifier: ${train.name}, ${train.n} images; ${describeModel(config)}; writing to ${c.out}\n`);
  const log = new JsonlLog(join(out, 'log.jsonl'));
  await trainClassifier({
    model,
    data: trainingSet(train),
    config: c.train,
    rng: new Rng(seedFor(c.seed, 'classifier')),
    statePath: join(out, 'classifier-state.safetensors'),
    resume: resuming,
    onProgress: progressBar(process.stderr, !flags.quiet),
    log,
  });
  // Test accuracy, in chunks.
  const preds = new Int32Array(test.n);
  const per = test.height * test.width * test.channels;
  for (let i = 0; i < test.n; i += 500) {
    const m = Math.min(500, test.n - i);
    const t = tf.tidy(() => model.logits(tf.tensor4d(test.images.subarray(i * per, (i + m) * per), [m, test.height, test.width, test.channels])));
    const logits = t.dataSync() as Float32Array;
    t.dispose();
    preds.set(argmaxRows(logits, m, test.numClasses), i);
  }
  const testAccuracy = classAccuracy(preds, test.labels);
  saveModel(join(out, 'classifier.safetensors'), model, { seed: String(c.seed), dataset: c.dataset, testAccuracy: testAccuracy.toFixed(4) });
  const report = { testAccuracy };
  writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(join(out, 'losses.png'), lossCurves(join(out, 'log.jsonl'), 'classifier', ['loss', 'accuracy']));
  io.stderr(`test accuracy ${(100 * testAccuracy).toFixed(2)}% on ${test.n} ${test.name} test images\n`);
  io.stdout(flags.json ? `${JSON.stringify(report)}\n` : `test accuracy: ${(100 * testAccuracy).toFixed(2)}%\n`);
  return 0;
}
