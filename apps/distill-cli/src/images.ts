import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import {
  BEFORE_OBJECTIVES,
  OBJECTIVE_FLAGS,
  RUN_FLAGS,
  UsageError,
  applyObjectiveFlags,
  describeObjective,
  generatorName,
  flagHelp,
  mergeConfig,
  prepareOut,
  progressBar,
  readConfigFile,
  requirePositive,
  resumeConfig,
  seedFor,
  startCommand,
  type FlagSpec,
  type Io,
} from '@diff-instruct/cli';
import { IMAGE_DATASET_NAMES, encodeNpy, linePlot, trainingSet } from '@diff-instruct/data';
import { loadImageDataset } from '@diff-instruct/data/node';
import { checkpointSnapshots, committed, generate, imageMetrics, referenceStats, teacherSamples, type ImageMetrics } from '@diff-instruct/image-eval';
import { tweedieGenerator } from '@diff-instruct/models';
import { loadClassifier, loadDenoiser, saveModel, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, type DiffInstructConfig } from '@diff-instruct/trainer';
import { JsonlLog, diffInstruct } from '@diff-instruct/trainer/node';

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
    help: `the quick demo's settings: ${QUICK_SETTINGS.steps} steps at lr ${QUICK_SETTINGS.lr}, ${QUICK_SETTINGS.numSamples} samples per row (about 9 min on 2 cores)`,
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
