import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import { IMAGE_DATASET_NAMES, encodeNpy, imageGrid, linePlot, loadImageDataset, parseNpyArray, trainingSet } from '@diff-instruct/data';
import {
  argmaxRows,
  classAccuracy,
  classCoverage,
  classFractions,
  frechetDistance,
  gaussianStats,
  inceptionScore,
  softmaxRows,
  type GaussianStats,
} from '@diff-instruct/metrics';
import {
  loadClassifier,
  loadDenoiser,
  saveModel,
  tweedieGenerator,
  writeFileAtomic,
  type ClassifierModel,
  type DenoiserModel,
  type GeneratorModel,
  type UnetConfig,
} from '@diff-instruct/models';
import { Rng, sampleTeacher } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, JsonlLog, diffInstruct, oneHot, type DiffInstructConfig } from '@diff-instruct/trainer';

import { OBJECTIVE_FLAGS, RUN_FLAGS, UsageError, applyObjectiveFlags, describeObjective, generatorName, flagHelp, requirePositive, startCommand, type FlagSpec } from './args.js';
import { BEFORE_OBJECTIVES, mergeConfig, prepareOut, readConfigFile, resumeConfig } from './config.js';
import { progressBar } from './progress.js';
import { seedFor } from './seeds.js';
import type { Io } from './toy.js';

/** `distill images`: everything as plain JSON, stored as config.json in the run folder. */
export interface ImagesConfig {
  dataset: 'mnist' | 'fashion';
  /** The teacher; null = the committed teacher of the dataset (checkpoints/<dataset>/teacher*). */
  teacher: string | null;
  /** The metric classifier; null = the committed one (checkpoints/<dataset>/classifier). */
  classifier: string | null;
  /** Distil the teacher as class-conditional (the teacher must be conditional). */
  conditional: boolean;
  out: string;
  seed: number;
  /** σ* of the Tweedie initialisation, eq. (B.3) (Table 7: 2.5 on CIFAR-10). */
  initSigma: number;
  /** Samples for the table and the .npy files. */
  numSamples: number;
  /** Samples for each point of the FID-against-iterations curve (Figure 3). */
  curveSamples: number;
  /** Test images for the FID reference statistics (null: the whole test split). */
  referenceImages: number | null;
  distill: DiffInstructConfig;
  /** Teacher Heun steps for the table: 2n − 1 NFE. */
  heunSteps: number[];
}

export const IMAGES_DEFAULTS: ImagesConfig = {
  dataset: 'mnist',
  teacher: null,
  classifier: null,
  conditional: false,
  out: 'runs/images-mnist',
  seed: 0,
  initSigma: 2.5,
  numSamples: 2000,
  curveSamples: 500,
  referenceImages: null,
  // Table 7 (β = (0, 0.99), equal learning rates for G and the fake score), scaled to batch 32 on
  // two cores. lr 1e-4, not Table 7's 1e-5 scale: measured on the committed MNIST teacher (same seed,
  // 100-sample FID curve) 2e-5 moved FID 290 → 273 in 50 steps where 1e-4 moved it 290 → 263. 1,000
  // steps: on the 500-sample curve FID fell 268 → 140 → 108 → 106 → 107 at steps 0/250/500/750/1000
  // and then rose (111 at 1,250), so a longer default run only costs time. Cosine decay of both
  // rates: with it (and the teacher at step 6,000) the generator passed the 9-NFE teacher (README).
  distill: { ...DIFF_INSTRUCT_DEFAULTS, steps: 1000, batchSize: 32, lrGenerator: 1e-4, lrFake: 1e-4, lrSchedule: 'cosine', emaHalfLife: 200, checkpointEvery: 250 },
  heunSteps: [1, 2, 3, 5, 9, 18],
};

/**
 * `--quick`: the settings of the quick demo (`pnpm distill` with no command), sized to finish in
 * about 10 minutes on two cores with the committed MNIST teacher: half the steps of the full run and
 * 200 samples per row of the table (FID from 200 samples is biased upwards; rows are comparable with
 * each other, not with the 2,000-sample defaults). Flags given beside it win.
 */
export const QUICK_SETTINGS = { steps: 500, lr: 1e-4, checkpointEvery: 50, numSamples: 200, curveSamples: 100 } as const;

export const IMAGES_FLAGS: Record<string, FlagSpec> = {
  dataset: { type: 'string', help: `image dataset: ${IMAGE_DATASET_NAMES.join(', ')} (default mnist)` },
  teacher: { type: 'string', help: 'teacher .safetensors (default: the committed teacher of the dataset)' },
  classifier: { type: 'string', help: 'metric classifier .safetensors (default: the committed one)' },
  conditional: { type: 'boolean', help: 'class-conditional generator (needs a conditional teacher)' },
  steps: { type: 'int', help: 'Diff-Instruct generator steps' },
  'batch-size': { type: 'int', help: 'batch size' },
  lr: { type: 'number', help: 'learning rate of the generator and the fake score' },
  'init-sigma': { type: 'number', help: 'σ* of the Tweedie initialisation (default 2.5)' },
  ...OBJECTIVE_FLAGS,
  'fake-steps': { type: 'int', help: 'fake-score DSM steps per generator step (default 1)' },
  'num-samples': { type: 'int', help: 'samples for the table and the .npy files (default 2000)' },
  quick: {
    type: 'boolean',
    help: `the quick demo's settings: ${QUICK_SETTINGS.steps} steps at lr ${QUICK_SETTINGS.lr}, ${QUICK_SETTINGS.numSamples} samples per row (about 15 min on 2 cores)`,
  },
  out: { type: 'string', help: 'run folder (default runs/images-<dataset>)' },
  json: { type: 'boolean', help: 'print report.json to stdout' },
  ...RUN_FLAGS,
};

export const IMAGES_HELP = `distill images — distil an image diffusion model into a one-step generator (Section 4.1)

Usage: distill images --dataset mnist|fashion [--teacher FILE] [--conditional] [flags]

${flagHelp(IMAGES_FLAGS)}

The generator is the teacher's denoiser at σ* (eq. B.3), trained by Diff-Instruct (Algorithm 1).
Writes into --out: generator.safetensors, samples.npy and teacher-nfe{1,3,5,9,17,35}.npy
(N×32×32×C float32 in [-1, 1]), report.json and report.md (FID (LeNet features), IS, time per
sample; FID (LeNet features) is NOT comparable with Inception FID), grid.png (the same latents at
every checkpoint, as Figure 4), fid.png (FID against iterations, as Figure 3), log.jsonl.
Teacher samples are cached next to the teacher, keyed by teacher, NFE, seed and N.

Examples:
  distill images --dataset mnist
  distill images --dataset mnist --quick --out runs/demo     # what \`pnpm distill\` runs
  distill images --dataset mnist --conditional --teacher runs/teacher-mnist-cond/teacher.safetensors
`;

/** The repository's `checkpoints/` folder: found upwards from this module, else in the working directory. */
function checkpointsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'checkpoints')) && existsSync(join(dir, 'pnpm-workspace.yaml'))) return join(dir, 'checkpoints');
    dir = dirname(dir);
  }
  return resolve('checkpoints');
}

/** The committed checkpoint of a dataset, or a clear error saying how to make one. */
export function committed(dataset: string, what: 'teacher' | 'classifier' | 'gan', conditional: boolean): string {
  const root = checkpointsDir();
  const cond = conditional ? ' --conditional' : '';
  const [path, make, flag] =
    what === 'classifier'
      ? [join(root, dataset, 'classifier', 'classifier.safetensors'), 'distill classifier', 'classifier']
      : what === 'gan'
        ? [join(root, dataset, conditional ? 'gan-cond' : 'gan', 'generator.safetensors'), `distill gan${cond}`, 'generator']
        : [join(root, dataset, conditional ? 'teacher-cond' : 'teacher-uncond', 'teacher.safetensors'), `distill teacher${cond}`, 'teacher'];
  if (!existsSync(path)) {
    const name = what === 'gan' ? 'GAN generator' : what;
    throw new UsageError(`no committed ${name} for ${dataset} at ${path}; pass --${flag} FILE, or train one with \`${make} --dataset ${dataset} --out ${dirname(path)}\``);
  }
  return path;
}

export function resolveImagesConfig(flags: Record<string, string | number | boolean>): ImagesConfig {
  if (flags.resume !== undefined) return resumeConfig(IMAGES_DEFAULTS, String(flags.resume), flags, { distill: BEFORE_OBJECTIVES });
  let c: ImagesConfig = structuredClone(IMAGES_DEFAULTS);
  if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
  if (flags.dataset !== undefined) {
    const d = String(flags.dataset);
    if (!(IMAGE_DATASET_NAMES as readonly string[]).includes(d)) {
      throw new UsageError(`unknown dataset "${d}"; choose one of: ${IMAGE_DATASET_NAMES.join(', ')}`);
    }
    c.dataset = d as ImagesConfig['dataset'];
    if (flags.out === undefined && flags.config === undefined) c.out = `runs/images-${c.dataset}`;
  }
  if (flags.quick === true) {
    c.distill.steps = QUICK_SETTINGS.steps;
    c.distill.lrGenerator = c.distill.lrFake = QUICK_SETTINGS.lr;
    c.distill.checkpointEvery = QUICK_SETTINGS.checkpointEvery;
    c.numSamples = QUICK_SETTINGS.numSamples;
    c.curveSamples = QUICK_SETTINGS.curveSamples;
  }
  if (flags.teacher !== undefined) c.teacher = String(flags.teacher);
  if (flags.classifier !== undefined) c.classifier = String(flags.classifier);
  if (flags.conditional !== undefined) c.conditional = Boolean(flags.conditional);
  if (flags.steps !== undefined) c.distill.steps = Number(flags.steps);
  if (flags.batchSize !== undefined) c.distill.batchSize = Number(flags.batchSize);
  if (flags.lr !== undefined) c.distill.lrGenerator = c.distill.lrFake = Number(flags.lr);
  applyObjectiveFlags(flags, c.distill);
  if (flags.fakeSteps !== undefined) c.distill.fakeStepsPerGeneratorStep = Number(flags.fakeSteps);
  if (flags.initSigma !== undefined) c.initSigma = Number(flags.initSigma);
  if (flags.numSamples !== undefined) c.numSamples = Number(flags.numSamples);
  if (flags.out !== undefined) c.out = String(flags.out);
  if (flags.seed !== undefined) c.seed = Number(flags.seed);
  requirePositive([
    ['--steps', c.distill.steps],
    ['--batch-size', c.distill.batchSize],
    ['--lr', c.distill.lrGenerator],
    ['--init-sigma', c.initSigma],
    ['--num-samples', c.numSamples],
    ['--fake-steps', c.distill.fakeStepsPerGeneratorStep],
  ]);
  return c;
}

/** Image metrics of one sample set, on the metric classifier. */
export interface ImageMetrics {
  /** FID (LeNet features) against the test split. Not comparable with Inception FID. */
  fid: number;
  /** Inception-Score analogue on the same classifier. */
  is: number;
  /** Fraction of classes that receive a fair share of the samples. */
  coverage: number;
  /** The share of the samples that the classifier puts in each class (sums to 1). */
  classFractions: number[];
  /** For conditional samples: the classifier's accuracy on the requested labels. */
  accuracy?: number;
  /** Milliseconds per sample. */
  msPerSample?: number;
}

/** Features and class probabilities of images, in chunks so memory stays small. */
export function classify(cls: ClassifierModel, images: Float32Array, n: number, shape: number[]): { features: Float32Array; probs: Float32Array; d: number } {
  const per = shape.reduce((a, b) => a * b, 1);
  const k = cls.config.numClasses;
  const d = cls.config.featureDim;
  const features = new Float32Array(n * d);
  const probs = new Float32Array(n * k);
  for (let i = 0; i < n; i += 250) {
    const m = Math.min(250, n - i);
    tf.tidy(() => {
      const x = tf.tensor(images.subarray(i * per, (i + m) * per), [m, ...shape]);
      features.set(cls.features(x).dataSync(), i * d);
      probs.set(softmaxRows(cls.logits(x).dataSync() as Float32Array, m, k), i * k);
    });
  }
  return { features, probs, d };
}

/** FID's reference: the Gaussian statistics of the classifier's features of a dataset split (the test split). */
export function referenceStats(cls: ClassifierModel, data: { images: Float32Array; n: number; height: number; width: number; channels: number }): GaussianStats {
  const ref = classify(cls, data.images, data.n, [data.height, data.width, data.channels]);
  return gaussianStats(ref.features, data.n, ref.d);
}

export function imageMetrics(cls: ClassifierModel, ref: GaussianStats, images: Float32Array, n: number, shape: number[], labels?: Int32Array): ImageMetrics {
  const { features, probs, d } = classify(cls, images, n, shape);
  const k = cls.config.numClasses;
  const preds = argmaxRows(probs, n, k);
  const m: ImageMetrics = {
    fid: frechetDistance(gaussianStats(features, n, d), ref),
    is: inceptionScore(probs, n, k).mean,
    coverage: classCoverage(preds, k),
    classFractions: classFractions(preds, k),
  };
  if (labels) m.accuracy = classAccuracy(preds, labels);
  return m;
}

/**
 * Images are clipped to [-1, 1] before they are written or measured, as EDM's generate.py clips
 * before quantising: a sampler can leave pixels outside (the committed MNIST teacher at 9 NFE: from
 * −3.3 to 5.7), and the .npy files promise [-1, 1]. In place; returns its argument.
 */
export function clipImages(images: Float32Array): Float32Array {
  for (let i = 0; i < images.length; i++) images[i] = Math.min(1, Math.max(-1, images[i]!));
  return images;
}

/** Draws N samples from the generator with fixed latents (and labels 0..K−1 in turn when conditional), clipped to [-1, 1]. */
export function generate(gen: GeneratorModel, n: number, rng: Rng, labels?: Int32Array): Float32Array {
  const per = gen.outputShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i += 100) {
    const m = Math.min(100, n - i);
    tf.tidy(() => {
      const z = rng.normalTensor([m, ...gen.latentShape]);
      const label = labels ? oneHot(labels.subarray(i, i + m), gen.numClasses) : undefined;
      out.set(gen.generate(z, label).dataSync(), i * per);
    });
  }
  return clipImages(out);
}

/**
 * Teacher samples at `steps` Heun steps, clipped to [-1, 1], cached (as the sampler made them) next
 * to the teacher, keyed by the teacher's bytes, the NFE, the seed, N and the labels. A hit is said
 * in the log, and its time per sample is measured again on 20 samples.
 */
export function teacherSamples(
  teacher: DenoiserModel,
  teacherPath: string,
  steps: number,
  n: number,
  seed: number,
  labels: Int32Array | undefined,
  io: Io,
): { images: Float32Array; nfe: number; msPerSample: number } {
  const net = teacher.config.net as UnetConfig;
  const hash = createHash('sha256').update(readFileSync(teacherPath)).digest('hex').slice(0, 12);
  const nfe = 2 * steps - 1;
  const cacheDir = join(dirname(resolve(teacherPath)), '.sample-cache');
  const key = `${basename(teacherPath, '.safetensors')}-${hash}-nfe${nfe}-seed${seed}-n${n}${labels ? '-cond' : ''}`;
  const cachePath = join(cacheDir, `${key}.npy`);
  const metaPath = join(cacheDir, `${key}.json`);
  const shape = [net.resolution, net.resolution, net.channels];
  if (existsSync(cachePath) && existsSync(metaPath)) {
    const p = parseNpyArray(new Uint8Array(readFileSync(cachePath)), cachePath);
    // the time per sample is measured now, on a few samples: the cached run may have been slower code
    const m = Math.min(n, 20);
    const t0 = performance.now();
    const label = labels ? oneHot(labels.subarray(0, m), net.numClasses) : undefined;
    const { x } = sampleTeacher(teacher.denoise, { shape: [m, ...shape], steps, rng: new Rng(seedFor(seed, 'teacher-timing')), label });
    x.dataSync();
    x.dispose();
    label?.dispose();
    const msPerSample = (performance.now() - t0) / m;
    io.stderr(`teacher ${nfe} NFE: cache hit (${cachePath}); ${msPerSample.toFixed(1)} ms per sample measured on ${m}\n`);
    return { images: clipImages(p.data), nfe, msPerSample };
  }
  const per = shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(n * per);
  const rng = new Rng(seedFor(seed, `teacher-sample-${steps}`));
  io.stderr(`teacher ${nfe} NFE: sampling ${n} images…\n`);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) {
    const m = Math.min(100, n - i);
    const label = labels ? oneHot(labels.subarray(i, i + m), net.numClasses) : undefined;
    const { x } = sampleTeacher(teacher.denoise, { shape: [m, ...shape], steps, rng, label });
    images.set(x.dataSync(), i * per);
    x.dispose();
    label?.dispose();
    if (i === 0 && n > m) {
      const eta = ((performance.now() - t0) / m) * (n - m);
      io.stderr(`teacher ${nfe} NFE: ${(m / ((performance.now() - t0) / 1000)).toFixed(1)} images/s, ETA ${(eta / 1000).toFixed(0)} s\n`);
    }
  }
  const msPerSample = (performance.now() - t0) / n;
  mkdirSync(cacheDir, { recursive: true });
  writeFileAtomic(cachePath, encodeNpy(images, [n, ...shape]));
  writeFileAtomic(metaPath, JSON.stringify({ msPerSample, teacher: teacherPath, nfe, seed, n }));
  io.stderr(`teacher ${nfe} NFE: sampled ${n} in ${((msPerSample * n) / 1000).toFixed(1)} s, cached as ${cachePath}\n`);
  return { images: clipImages(images), nfe, msPerSample };
}

/** What a checkpoint of an image run draws and measures; see {@link checkpointSnapshots}. */
export interface SnapshotOptions {
  cls: ClassifierModel;
  refStats: GaussianStats;
  shape: number[];
  labelsFor: (n: number) => Int32Array | undefined;
  curveSamples: number;
  seed: number;
  out: string;
  log: JsonlLog;
  /** Grid rows (checkpoints) kept, the latest ones. */
  maxRows: number;
  title: string;
}

/**
 * The per-checkpoint snapshot of an image run: a grid row of 10 samples from the same latents at
 * every checkpoint (grid.png) and a point of the FID (LeNet features) curve, logged as 'fid-curve'.
 */
export function checkpointSnapshots(o: SnapshotOptions): (step: number, g: GeneratorModel) => void {
  const cols = 10;
  const gridSeed = seedFor(o.seed, 'grid-latents');
  const curveSeed = seedFor(o.seed, 'curve');
  const rows: { step: number; images: Float32Array }[] = [];
  return (step, g) => {
    rows.push({ step, images: generate(g, cols, new Rng(gridSeed), o.labelsFor(cols)) });
    if (rows.length > o.maxRows) rows.splice(0, rows.length - o.maxRows);
    const m = imageMetrics(o.cls, o.refStats, generate(g, o.curveSamples, new Rng(curveSeed), o.labelsFor(o.curveSamples)), o.curveSamples, o.shape);
    o.log.write({ phase: 'fid-curve', step, fid: m.fid, is: m.is });
    const all = new Float32Array(rows.length * cols * o.shape.reduce((a, b) => a * b, 1));
    rows.forEach((r, i) => all.set(r.images, i * r.images.length));
    writeFileAtomic(
      join(o.out, 'grid.png'),
      imageGrid({ images: all, n: rows.length * cols, height: o.shape[0]!, width: o.shape[1]!, channels: o.shape[2]!, cols, rowLabels: rows.map((r) => `step ${r.step}`), title: o.title }),
    );
  };
}

export async function runImages(argv: readonly string[], io: Io): Promise<number> {
  const started = startCommand(argv, IMAGES_FLAGS, 'distill images', IMAGES_HELP, resolveImagesConfig, io.stdout);
  if (started === null) return 0;
  const { c, flags, resuming } = started;

  // Validate every input before anything is written.
  const teacherPath = c.teacher ?? committed(c.dataset, 'teacher', c.conditional);
  const classifierPath = c.classifier ?? committed(c.dataset, 'classifier', false);
  const teacher = loadDenoiser(teacherPath);
  const net = teacher.config.net;
  if (net.kind !== 'unet') throw new UsageError(`${teacherPath} is an ${net.kind} teacher; distill images needs an image (UNet) teacher`);
  if (c.conditional && net.numClasses === 0) throw new UsageError(`--conditional needs a conditional teacher; ${teacherPath} is unconditional`);
  if (!c.conditional && net.numClasses > 0) {
    throw new UsageError(`${teacherPath} is class-conditional; pass --conditional, or give an unconditional teacher`);
  }
  const cls = loadClassifier(classifierPath);
  const test = loadImageDataset(c.dataset, { split: 'test', limit: c.referenceImages ?? undefined });
  const shape = [test.height, test.width, test.channels];
  if (net.resolution !== test.height || net.channels !== test.channels) {
    throw new UsageError(`${teacherPath} makes ${net.resolution}×${net.resolution}×${net.channels} images, but ${c.dataset} is ${shape.join('×')}`);
  }
  const out = prepareOut(c.out, resuming);
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify({ ...c, teacher: teacherPath, classifier: classifierPath }, null, 2)}\n`);
  io.stderr(`distill images: ${c.dataset}, teacher ${teacherPath}, classifier ${classifierPath}; tfjs backend ${io.backend ?? tf.getBackend()}; writing to ${c.out}\n`);

  // Reference statistics: the classifier's features of the test split.
  const refStats = referenceStats(cls, test);
  const k = net.numClasses;
  const labelsFor = (n: number) => (c.conditional ? Int32Array.from({ length: n }, (_, i) => i % k) : undefined);

  // Diff-Instruct from the Tweedie initialisation, with a grid and an FID point at every checkpoint.
  const log = new JsonlLog(join(out, 'log.jsonl'));
  const generator = tweedieGenerator(teacher, c.initSigma);
  const snapshot = checkpointSnapshots({ cls, refStats, shape, labelsFor, curveSamples: c.curveSamples, seed: c.seed, out, log, maxRows: Infinity, title: 'same latents at every checkpoint' });
  if (!resuming) snapshot(0, generator);
  const di = await diffInstruct({
    teacher,
    generator,
    config: c.distill,
    // The real-data term (off by default) draws from the training split.
    realData: c.distill.realDataWeight > 0 ? trainingSet(loadImageDataset(c.dataset, { split: 'train' })) : undefined,
    rng: new Rng(seedFor(c.seed, 'diff-instruct')),
    statePath: join(out, 'di-state.safetensors'),
    resume: resuming,
    onProgress: progressBar(process.stderr, !flags.quiet),
    log,
    onCheckpoint: (step, ema) => {
      saveModel(join(out, 'generator.safetensors'), ema, { seed: String(c.seed), dataset: c.dataset, step: String(step) });
      snapshot(step, ema);
    },
  });
  saveModel(join(out, 'generator.safetensors'), di.ema, { seed: String(c.seed), dataset: c.dataset });

  // The table: the one-step generator against the teacher's Heun sampler at NFE 1 … 35.
  const n = c.numSamples;
  const labels = labelsFor(n);
  let t0 = performance.now();
  const samples = generate(di.ema, n, new Rng(seedFor(c.seed, 'samples')), labelsFor(n));
  const genMs = (performance.now() - t0) / n;
  writeFileAtomic(join(out, 'samples.npy'), encodeNpy(samples, [n, ...shape]));
  const report: { generator: ImageMetrics; teacher: Record<string, ImageMetrics>; fidCurve: { step: number; fid: number }[] } = {
    generator: { ...imageMetrics(cls, refStats, samples, n, shape, labels), msPerSample: genMs },
    teacher: {},
    fidCurve: JsonlLog.read(join(out, 'log.jsonl'), 'fid-curve').map((r) => ({ step: Number(r.step), fid: Number(r.fid) })),
  };
  for (const steps of c.heunSteps) {
    t0 = performance.now();
    const t = teacherSamples(teacher, teacherPath, steps, n, c.seed, labels, io);
    writeFileAtomic(join(out, `teacher-nfe${t.nfe}.npy`), encodeNpy(t.images, [n, ...shape]));
    report.teacher[`nfe${t.nfe}`] = { ...imageMetrics(cls, refStats, t.images, n, shape, labels), msPerSample: t.msPerSample };
  }
  writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = imagesMarkdown(report, c, teacherPath);
  writeFileAtomic(join(out, 'report.md'), md);
  writeFileAtomic(
    join(out, 'fid.png'),
    linePlot({ title: 'FID (LeNet features) against iterations', xLabel: 'step', series: [{ label: 'one-step generator (EMA)', x: report.fidCurve.map((p) => p.step), y: report.fidCurve.map((p) => p.fid) }] }),
  );
  io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : md);
  return 0;
}

function imagesMarkdown(r: { generator: ImageMetrics; teacher: Record<string, ImageMetrics> }, c: ImagesConfig, teacherPath: string): string {
  const f = (v: number | undefined, d = 2) => (v === undefined ? '–' : v.toFixed(d));
  const row = (name: string, nfe: string, m: ImageMetrics) =>
    `| ${name} | ${nfe} | ${f(m.fid)} | ${f(m.is)} | ${f(m.coverage)} | ${c.conditional ? f(m.accuracy, 3) : '–'} | ${f(m.msPerSample, 3)} |`;
  return `# distill images: ${c.dataset}${c.conditional ? ' (class-conditional)' : ''}

${c.numSamples} samples per row, seed ${c.seed}, teacher ${teacherPath}. FID (LeNet features) is computed on the
penultimate features of the project's LeNet against the ${c.dataset} test split; it is NOT comparable with
Inception FID. Lower FID is better; IS (on the same classifier) and coverage: higher is better.

| sampler | NFE | FID (LeNet) | IS | coverage | accuracy | ms/sample |
|---|---|---|---|---|---|---|
${[row(`**${generatorName(c.distill)}**`, '1', r.generator), ...Object.entries(r.teacher).map(([k, m]) => row('teacher, EDM Heun', k.replace('nfe', ''), m))].join('\n')}

${describeObjective(c.distill)}: ${c.distill.steps} steps, batch ${c.distill.batchSize}, lr ${c.distill.lrGenerator} (${c.distill.lrSchedule}), ${c.distill.fakeStepsPerGeneratorStep} fake step(s) per generator step, Tweedie init at σ* = ${c.initSigma}.
`;
}
