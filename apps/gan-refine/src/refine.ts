import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import {
  BEFORE_OBJECTIVES,
  OBJECTIVE_FLAGS,
  RUN_FLAGS,
  UsageError,
  applyObjectiveFlags,
  describeObjective,
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
import { IMAGE_DATASET_NAMES, encodeNpy, imageGrid, linePlot, trainingSet } from '@diff-instruct/data';
import { loadImageDataset } from '@diff-instruct/data/node';
import { checkpointSnapshots, committed, generate, imageMetrics, referenceStats, type ImageMetrics } from '@diff-instruct/image-eval';
import { FORMAT, sampleShape } from '@diff-instruct/models';
import { loadClassifier, loadDenoiser, loadGenerator, readSafetensorsFile, saveModel, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import { DIFF_INSTRUCT_DEFAULTS, type DiffInstructConfig } from '@diff-instruct/trainer';
import { JsonlLog, diffInstruct } from '@diff-instruct/trainer/node';

/** `gan-refine`: everything as plain JSON, stored as config.json in the run folder. */
export interface RefineConfig {
  dataset: 'mnist' | 'fashion';
  /** The GAN generator to refine; null = the committed GAN of the dataset (checkpoints/<dataset>/gan). */
  generator: string | null;
  /** The DM teacher; null = the committed teacher of the dataset (conditional when the GAN is). */
  teacher: string | null;
  /** The metric classifier; null = the committed one. */
  classifier: string | null;
  out: string;
  seed: number;
  /** Samples before and after (the same latents), for the table and the .npy files. */
  numSamples: number;
  /** Samples for each point of the FID-against-iterations curve. */
  curveSamples: number;
  /** Test images for the FID reference statistics (null: the whole test split). */
  referenceImages: number | null;
  refine: DiffInstructConfig;
}

export const REFINE_DEFAULTS: RefineConfig = {
  dataset: 'mnist',
  generator: null,
  teacher: null,
  classifier: null,
  out: 'runs/gan-refine',
  seed: 0,
  numSamples: 2000,
  curveSamples: 500,
  referenceImages: null,
  // Table 9 (Adam β = (0, 0.99), equal learning rates for G and the fake score, G EMA), scaled from
  // batch 512 on 4 GPUs to batch 32 on two cores.
  refine: { ...DIFF_INSTRUCT_DEFAULTS, steps: 500, batchSize: 32, lrGenerator: 1e-5, lrFake: 1e-5, beta1: 0, beta2: 0.99, emaHalfLife: 100, checkpointEvery: 100 },
};

export const REFINE_FLAGS: Record<string, FlagSpec> = {
  generator: { type: 'string', help: 'GAN generator .safetensors (default: the committed GAN of the dataset)' },
  teacher: { type: 'string', help: 'DM teacher .safetensors (default: the committed teacher of the dataset)' },
  classifier: { type: 'string', help: 'metric classifier .safetensors (default: the committed one)' },
  dataset: { type: 'string', help: `${IMAGE_DATASET_NAMES.join(' or ')}: picks the committed files and the FID reference (default: the generator's, else mnist)` },
  steps: { type: 'int', help: `Diff-Instruct generator steps (default ${REFINE_DEFAULTS.refine.steps})` },
  'batch-size': { type: 'int', help: `batch size (default ${REFINE_DEFAULTS.refine.batchSize})` },
  lr: { type: 'number', help: `learning rate of the generator and of the fake score, equal as in Table 9 (default ${REFINE_DEFAULTS.refine.lrGenerator})` },
  'fake-warmup': { type: 'int', help: `DSM steps of the fake score on the GAN before the first generator step (default ${REFINE_DEFAULTS.refine.fakeWarmupSteps})` },
  ...OBJECTIVE_FLAGS,
  'num-samples': { type: 'int', help: `samples before and after, from the same latents (default ${REFINE_DEFAULTS.numSamples})` },
  out: { type: 'string', help: `run folder (default ${REFINE_DEFAULTS.out})` },
  json: { type: 'boolean', help: 'print report.json to stdout' },
  ...RUN_FLAGS,
};

export const REFINE_HELP = `gan-refine — improve a pre-trained GAN generator with a diffusion model (Diff-Instruct, Section 4.2)

Usage: gan-refine [--generator FILE] [--teacher FILE] [flags]

${flagHelp(REFINE_FLAGS)}

The GAN generator is trained further, without data, by Diff-Instruct (Algorithm 1) against the DM
teacher; the fake score starts as a copy of the teacher. Writes into --out:
  generator.safetensors   the refined generator (its EMA), in the input's format: a drop-in replacement
  samples-before.npy, samples-after.npy   N×H×W×C float32 in [-1, 1], from the same latents
  report.json, report.md  FID (LeNet features) and IS before and after (FID (LeNet features) is NOT
                          comparable with Inception FID)
  compare.png             before/after pairs from the same latents; grid.png: the same latents at
                          every checkpoint; fid.png: FID against iterations; losses.png; log.jsonl

Examples:
  gan-refine                                       # the committed MNIST GAN and teacher
  gan-refine --generator runs/gan-mnist/generator.safetensors --out runs/refine --seed 1
  gan-refine --resume runs/refine
`;

export function resolveRefineConfig(flags: Record<string, string | number | boolean>): RefineConfig {
  if (flags.resume !== undefined) return resumeConfig(REFINE_DEFAULTS, String(flags.resume), flags, { refine: BEFORE_OBJECTIVES });
  let c: RefineConfig = structuredClone(REFINE_DEFAULTS);
  if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
  if (flags.dataset !== undefined) {
    const d = String(flags.dataset);
    if (!(IMAGE_DATASET_NAMES as readonly string[]).includes(d)) throw new UsageError(`unknown dataset "${d}"; choose one of: ${IMAGE_DATASET_NAMES.join(', ')}`);
    c.dataset = d as RefineConfig['dataset'];
  }
  if (flags.generator !== undefined) c.generator = String(flags.generator);
  if (flags.teacher !== undefined) c.teacher = String(flags.teacher);
  if (flags.classifier !== undefined) c.classifier = String(flags.classifier);
  if (flags.steps !== undefined) c.refine.steps = Number(flags.steps);
  if (flags.batchSize !== undefined) c.refine.batchSize = Number(flags.batchSize);
  if (flags.lr !== undefined) c.refine.lrGenerator = c.refine.lrFake = Number(flags.lr);
  if (flags.fakeWarmup !== undefined) c.refine.fakeWarmupSteps = Number(flags.fakeWarmup);
  applyObjectiveFlags(flags, c.refine);
  if (flags.numSamples !== undefined) c.numSamples = Number(flags.numSamples);
  if (flags.out !== undefined) c.out = String(flags.out);
  if (flags.seed !== undefined) c.seed = Number(flags.seed);
  requirePositive([
    ['--steps', c.refine.steps],
    ['--batch-size', c.refine.batchSize],
    ['--lr', c.refine.lrGenerator],
    ['--num-samples', c.numSamples],
  ]);
  if (!(c.refine.fakeWarmupSteps >= 0)) throw new UsageError(`--fake-warmup must be ≥ 0, got ${c.refine.fakeWarmupSteps}`);
  return c;
}

/** What `gan-refine` measures: the same latents through the generator before and after. */
export interface RefineReport {
  generator: string;
  teacher: string;
  seed: number;
  numSamples: number;
  before: ImageMetrics;
  after: ImageMetrics;
  /** FID (LeNet) of `curveSamples` samples of the EMA generator at every checkpoint (step 0: the GAN). */
  fidCurve: { step: number; fid: number }[];
}

/** Metadata of the input generator that the refined file keeps (its own keys are rewritten by saveModel). */
function inheritedMetadata(path: string): Record<string, string> {
  const { metadata } = readSafetensorsFile(path);
  const keep: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) if (!['format', 'role', 'config'].includes(k)) keep[k] = v;
  if (metadata.format !== FORMAT) throw new UsageError(`${path} was not written by diff-instruct; gan-refine needs a generator saved by distill gan (or saveModel)`);
  return keep;
}

export async function runRefine(argv: readonly string[], io: Io): Promise<number> {
  const started = startCommand(argv, REFINE_FLAGS, 'gan-refine', REFINE_HELP, resolveRefineConfig, io.stdout);
  if (started === null) return 0;
  const { c, flags, resuming } = started;

  // Validate every input before anything is written.
  const generatorPath = c.generator ?? committed(c.dataset, 'gan', false);
  const meta = inheritedMetadata(generatorPath);
  if (meta.dataset !== undefined && meta.dataset !== c.dataset) {
    if (flags.dataset !== undefined || c.generator === null) {
      throw new UsageError(`${generatorPath} was trained on ${meta.dataset}, not ${c.dataset}; drop --dataset or pass a ${c.dataset} generator`);
    }
    c.dataset = meta.dataset as RefineConfig['dataset'];
  }
  const generator = loadGenerator(generatorPath);
  const conditional = generator.numClasses > 0;
  const teacherPath = c.teacher ?? committed(c.dataset, 'teacher', conditional);
  const classifierPath = c.classifier ?? committed(c.dataset, 'classifier', false);
  const teacher = loadDenoiser(teacherPath);
  const tShape = sampleShape(teacher.config);
  const gShape = generator.outputShape;
  if (tShape.join('×') !== gShape.join('×')) {
    throw new UsageError(`${generatorPath} makes ${gShape.join('×')} images but the teacher ${teacherPath} expects ${tShape.join('×')}; pass a teacher of the generator's dataset`);
  }
  if (teacher.config.net.numClasses !== generator.numClasses) {
    const what = (k: number) => (k > 0 ? `class-conditional (${k} classes)` : 'unconditional');
    throw new UsageError(`the generator is ${what(generator.numClasses)} but the teacher ${teacherPath} is ${what(teacher.config.net.numClasses)}; pass a matching --teacher`);
  }
  const cls = loadClassifier(classifierPath);
  const test = loadImageDataset(c.dataset, { split: 'test', limit: c.referenceImages ?? undefined });
  const shape = [test.height, test.width, test.channels];
  if (shape.join('×') !== gShape.join('×')) throw new UsageError(`${generatorPath} makes ${gShape.join('×')} images, but ${c.dataset} is ${shape.join('×')}`);
  const out = prepareOut(c.out, resuming);
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify({ ...c, generator: generatorPath, teacher: teacherPath, classifier: classifierPath }, null, 2)}\n`);
  io.stderr(`gan-refine: ${c.dataset}, generator ${generatorPath}, teacher ${teacherPath}; tfjs backend ${io.backend ?? tf.getBackend()}; writing to ${c.out}\n`);

  const refStats = referenceStats(cls, test);
  const k = generator.numClasses;
  const labelsFor = (n: number) => (k > 0 ? Int32Array.from({ length: n }, (_, i) => i % k) : undefined);
  const n = c.numSamples;
  const labels = labelsFor(n);
  const samplesSeed = seedFor(c.seed, 'samples');

  // Before: the GAN as given (on --resume too: the input file is never changed).
  const before = generate(generator, n, new Rng(samplesSeed), labels);
  writeFileAtomic(join(out, 'samples-before.npy'), encodeNpy(before, [n, ...shape]));
  const beforeMetrics = imageMetrics(cls, refStats, before, n, shape, labels);
  io.stderr(`before: FID (LeNet, ${n} samples) ${beforeMetrics.fid.toFixed(2)}, IS ${beforeMetrics.is.toFixed(2)}\n`);

  const log = new JsonlLog(join(out, 'log.jsonl'));
  const snapshot = checkpointSnapshots({ cls, refStats, shape, labelsFor, curveSamples: c.curveSamples, seed: c.seed, out, log, maxRows: Infinity, title: 'EMA generator, the same latents at every checkpoint' });
  if (!resuming) snapshot(0, generator);
  const save = (path: string, g: Parameters<typeof saveModel>[1], step: number) =>
    saveModel(path, g, { ...meta, refinedFrom: generatorPath, refinedWith: teacherPath, refineSteps: String(step), refineSeed: String(c.seed) });
  const di = await diffInstruct({
    teacher,
    generator,
    config: c.refine,
    // The real-data term (off by default) draws from the training split.
    realData: c.refine.realDataWeight > 0 ? trainingSet(loadImageDataset(c.dataset, { split: 'train' })) : undefined,
    rng: new Rng(seedFor(c.seed, 'diff-instruct')),
    statePath: join(out, 'di-state.safetensors'),
    resume: resuming,
    onProgress: progressBar(process.stderr, !flags.quiet),
    log,
    onCheckpoint: (step, ema) => {
      save(join(out, 'generator.safetensors'), ema, step);
      snapshot(step, ema);
    },
  });
  save(join(out, 'generator.safetensors'), di.ema, c.refine.steps);

  // After: the refined EMA generator on the same latents.
  const after = generate(di.ema, n, new Rng(samplesSeed), labels);
  writeFileAtomic(join(out, 'samples-after.npy'), encodeNpy(after, [n, ...shape]));
  const report: RefineReport = {
    generator: generatorPath,
    teacher: teacherPath,
    seed: c.seed,
    numSamples: n,
    before: beforeMetrics,
    after: imageMetrics(cls, refStats, after, n, shape, labels),
    fidCurve: JsonlLog.read(join(out, 'log.jsonl'), 'fid-curve').map((r) => ({ step: Number(r.step), fid: Number(r.fid) })),
  };
  writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = refineMarkdown(report, c);
  writeFileAtomic(join(out, 'report.md'), md);
  writeFileAtomic(join(out, 'compare.png'), compareGrid(before, after, shape, 5, 10));
  writeFileAtomic(
    join(out, 'fid.png'),
    linePlot({ title: 'FID (LeNet features) against iterations', xLabel: 'step', series: [{ label: 'refined generator (EMA)', x: report.fidCurve.map((p) => p.step), y: report.fidCurve.map((p) => p.fid) }] }),
  );
  const recs = JsonlLog.read(join(out, 'log.jsonl'), 'diff-instruct');
  writeFileAtomic(
    join(out, 'losses.png'),
    linePlot({ title: 'Diff-Instruct losses', xLabel: 'step', series: ['fakeLoss', 'generatorGradNorm'].map((key) => ({ label: key, x: recs.map((r) => Number(r.step)), y: recs.map((r) => Number(r[key])) })) }),
  );
  io.stderr(`after: FID (LeNet, ${n} samples) ${report.after.fid.toFixed(2)}, IS ${report.after.is.toFixed(2)}; wrote ${c.out}/generator.safetensors, samples-before.npy, samples-after.npy, compare.png\n`);
  io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : md);
  return 0;
}

/** Pairs of rows, "before" over "after", of the first rows × cols samples (the same latents in each column). */
export function compareGrid(before: Float32Array, after: Float32Array, shape: number[], rows: number, cols: number): Uint8Array {
  const per = shape.reduce((a, b) => a * b, 1);
  const total = before.length / per;
  const r = Math.max(1, Math.min(rows, Math.floor(total / cols)));
  const c = Math.min(cols, total);
  const images = new Float32Array(2 * r * c * per);
  for (let i = 0; i < r; i++) {
    images.set(before.subarray(i * c * per, (i + 1) * c * per), 2 * i * c * per);
    images.set(after.subarray(i * c * per, (i + 1) * c * per), (2 * i + 1) * c * per);
  }
  const rowLabels = Array.from({ length: 2 * r }, (_, i) => (i % 2 === 0 ? 'before' : 'after'));
  return imageGrid({ images, n: 2 * r * c, height: shape[0]!, width: shape[1]!, channels: shape[2]!, cols: c, rowLabels, title: 'GAN before / after Diff-Instruct, the same latents' });
}

function refineMarkdown(r: RefineReport, c: RefineConfig): string {
  const f = (v: number | undefined, d = 2) => (v === undefined ? '–' : v.toFixed(d));
  const cond = r.before.accuracy !== undefined;
  const row = (name: string, m: ImageMetrics) => `| ${name} | ${f(m.fid)} | ${f(m.is)} | ${f(m.coverage)} | ${cond ? f(m.accuracy, 3) : '–'} |`;
  const classes = r.before.classFractions.map((_, k) => k);
  const balance = (name: string, m: ImageMetrics) => `| ${name} | ${m.classFractions.map((p) => (100 * p).toFixed(1)).join(' | ')} |`;
  return `# gan-refine: ${c.dataset}

${r.numSamples} samples per row from the same latents, seed ${r.seed}; generator ${r.generator}, teacher ${r.teacher}.
FID (LeNet features) is computed on the penultimate features of the project's LeNet against the ${c.dataset} test
split; it is NOT comparable with Inception FID. Lower FID is better; IS (same classifier) and coverage: higher is better.

| generator | FID (LeNet) | IS | coverage | accuracy |
|---|---|---|---|---|
${row('GAN (before)', r.before)}
${row('**GAN + Diff-Instruct (after)**', r.after)}

Change in FID: ${f(r.after.fid - r.before.fid)}. ${describeObjective(c.refine)}: ${c.refine.steps} steps, batch ${c.refine.batchSize}, lr ${c.refine.lrGenerator === c.refine.lrFake ? `${c.refine.lrGenerator} (G and fake score)` : `${c.refine.lrGenerator} (G), ${c.refine.lrFake} (fake score)`}, Adam β = (${c.refine.beta1}, ${c.refine.beta2}), EMA half-life ${c.refine.emaHalfLife} steps${c.refine.fakeWarmupSteps > 0 ? `; the fake score first fitted the GAN alone for ${c.refine.fakeWarmupSteps} steps (loop steps 1–${c.refine.fakeWarmupSteps} of the curves)` : ''}.

Class balance (% of the samples the classifier puts in each class; a mode-seeking update moves mass to a few classes):

| generator | ${classes.map((k) => `${k}`).join(' | ')} |
|---|${classes.map(() => '---|').join('')}
${balance('before', r.before)}
${balance('after', r.after)}
`;
}
