import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { RUN_FLAGS, UsageError, flagHelp, mergeConfig, prepareOut, progressBar, readConfigFile, requirePositive, resumeConfig, seedFor, startCommand, type FlagSpec, type Io } from '@diff-instruct/cli';
import { IMAGE_DATASET_NAMES, linePlot, trainingSet } from '@diff-instruct/data';
import { loadImageDataset } from '@diff-instruct/data/node';
import { STYLEGAN2_PRESETS, createGenerator, createStyleGan2Discriminator, describeModel, stylegan2Preset, type GeneratorModel, type StyleGan2Preset } from '@diff-instruct/models';
import { loadClassifier, saveModel, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import { checkpointSnapshots, committed, referenceStats } from '@diff-instruct/image-eval';
import { GAN_DEFAULTS, type GanConfig } from '@diff-instruct/trainer';
import { JsonlLog, trainGan } from '@diff-instruct/trainer/node';

/** `distill gan`: everything as plain JSON, stored as config.json in the run folder. */
export interface GanRunConfig {
  dataset: 'mnist' | 'fashion';
  conditional: boolean;
  preset: StyleGan2Preset;
  out: string;
  seed: number;
  /** Samples of the FID (LeNet features) point drawn at every checkpoint. */
  curveSamples: number;
  train: GanConfig;
}

export const GAN_RUN_DEFAULTS: GanRunConfig = {
  dataset: 'mnist',
  conditional: false,
  preset: 'mnist-stylegan2',
  out: 'runs/gan-mnist',
  seed: 0,
  curveSamples: 500,
  // trainGan's defaults (lr 2e-4, β = (0.5, 0.99), γ 10: StyleGAN2's own recipe collapsed here), lazy R1
  // every 16 steps, G EMA 10 kimg.
  train: { ...GAN_DEFAULTS, steps: 20000, checkpointEvery: 500 },
};

export const GAN_FLAGS: Record<string, FlagSpec> = {
  dataset: { type: 'string', help: `image dataset: ${IMAGE_DATASET_NAMES.join(', ')} (default mnist)` },
  conditional: { type: 'boolean', help: 'class-conditional GAN (projection discriminator)' },
  preset: { type: 'string', help: `StyleGAN2 preset: ${Object.keys(STYLEGAN2_PRESETS).join(', ')} (default mnist-stylegan2)` },
  steps: { type: 'int', help: 'generator steps (one discriminator step each)' },
  'batch-size': { type: 'int', help: 'batch size' },
  lr: { type: 'number', help: 'Adam learning rate of G and D' },
  gamma: { type: 'number', help: `R1 weight γ (default ${GAN_DEFAULTS.r1Gamma})` },
  classifier: { type: 'string', help: 'metric classifier .safetensors of the FID curve (default: the committed one)' },
  out: { type: 'string', help: 'run folder (default runs/gan-<dataset>)' },
  ...RUN_FLAGS,
};

export const GAN_HELP = `distill gan — train a StyleGAN2 on MNIST or Fashion-MNIST (the GAN that gan-refine improves)

Usage: distill gan --dataset mnist|fashion [--conditional] [flags]

${flagHelp(GAN_FLAGS)}

Non-saturating logistic loss, lazy R1, Adam, EMA of G (StyleGAN2's loss; its lr 0.0025 and β1 = 0
mode-collapsed at this scale, so the defaults are lr 2e-4, β = (0.5, 0.99), γ = 10). Writes into
--out: config.json, log.jsonl, generator.safetensors (the EMA generator, refreshed at every
checkpoint; a drop-in generator file for distill sample and gan-refine), gan-state.safetensors (for
--resume), grid.png (the same latents at every checkpoint), fid.png (FID (LeNet features) of 500
samples at every checkpoint, against the test split; NOT comparable with Inception FID) and
losses.png.

Examples:
  distill gan --dataset mnist --out runs/gan-mnist
  distill gan --resume runs/gan-mnist
`;

export function resolveGanConfig(flags: Record<string, string | number | boolean>): GanRunConfig {
  if (flags.resume !== undefined) return resumeConfig(GAN_RUN_DEFAULTS, String(flags.resume), flags);
  let c: GanRunConfig = structuredClone(GAN_RUN_DEFAULTS);
  if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
  if (flags.dataset !== undefined) {
    const d = String(flags.dataset);
    if (!(IMAGE_DATASET_NAMES as readonly string[]).includes(d)) throw new UsageError(`unknown dataset "${d}"; choose one of: ${IMAGE_DATASET_NAMES.join(', ')}`);
    c.dataset = d as GanRunConfig['dataset'];
    if (flags.out === undefined && flags.config === undefined) c.out = `runs/gan-${c.dataset}`;
  }
  if (flags.conditional !== undefined) c.conditional = Boolean(flags.conditional);
  if (flags.preset !== undefined) c.preset = String(flags.preset) as StyleGan2Preset;
  if (!(c.preset in STYLEGAN2_PRESETS)) throw new UsageError(`unknown preset "${c.preset}"; choose one of: ${Object.keys(STYLEGAN2_PRESETS).join(', ')}`);
  if (flags.steps !== undefined) c.train.steps = Number(flags.steps);
  if (flags.batchSize !== undefined) c.train.batchSize = Number(flags.batchSize);
  if (flags.lr !== undefined) c.train.lrG = c.train.lrD = Number(flags.lr);
  if (flags.gamma !== undefined) c.train.r1Gamma = Number(flags.gamma);
  if (flags.out !== undefined) c.out = String(flags.out);
  if (flags.seed !== undefined) c.seed = Number(flags.seed);
  requirePositive([
    ['--steps', c.train.steps],
    ['--batch-size', c.train.batchSize],
    ['--lr', c.train.lrG],
  ]);
  if (!(c.train.r1Gamma >= 0)) throw new UsageError(`--gamma must be >= 0, got ${c.train.r1Gamma}`);
  return c;
}

export async function runGanCommand(argv: readonly string[], io: Io): Promise<number> {
  const started = startCommand(argv, GAN_FLAGS, 'distill gan', GAN_HELP, resolveGanConfig, io.stdout);
  if (started === null) return 0;
  const { c, flags, resuming } = started;
  const classifierPath = flags.classifier !== undefined ? String(flags.classifier) : committed(c.dataset, 'classifier', false);
  const data = loadImageDataset(c.dataset, { split: 'train' });
  const test = loadImageDataset(c.dataset, { split: 'test' });
  const shape = [data.height, data.width, data.channels];
  const out = prepareOut(c.out, resuming);
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
  const { generator: gc, discriminator: dc } = stylegan2Preset(c.preset);
  const k = c.conditional ? data.numClasses : 0;
  gc.numClasses = dc.numClasses = k;
  gc.channels = dc.channels = data.channels;
  gc.resolution = dc.resolution = data.height;
  const G = createGenerator(gc, new Rng(seedFor(c.seed, 'gan-g-init')));
  const D = createStyleGan2Discriminator(dc, new Rng(seedFor(c.seed, 'gan-d-init')));
  io.stderr(`distill gan: ${data.name}, ${data.n} images ${shape.join('×')}; ${describeModel(gc)}; discriminator ${Object.values(D.params).reduce((s, v) => s + v.size, 0).toLocaleString('en-US')} parameters; tfjs backend ${io.backend ?? tf.getBackend()}; writing to ${c.out}\n`);

  const cls = loadClassifier(classifierPath);
  const refStats = referenceStats(cls, test);
  const labelsFor = (n: number) => (k > 0 ? Int32Array.from({ length: n }, (_, i) => i % k) : undefined);
  const log = new JsonlLog(join(out, 'log.jsonl'));
  // the grid keeps the last 10 checkpoints of this process (a resumed run starts a new grid)
  const draw = checkpointSnapshots({ cls, refStats, shape, labelsFor, curveSamples: c.curveSamples, seed: c.seed, out, log, maxRows: 10, title: 'EMA generator, the same latents at every checkpoint' });
  const snapshot = (step: number, g: GeneratorModel) => {
    draw(step, g);
    const curve = JsonlLog.read(join(out, 'log.jsonl'), 'fid-curve');
    writeFileAtomic(join(out, 'fid.png'), linePlot({ title: 'FID (LeNet features) against iterations', xLabel: 'step', logY: true, series: [{ label: 'EMA generator', x: curve.map((r) => Number(r.step)), y: curve.map((r) => Number(r.fid)) }] }));
    const recs = JsonlLog.read(join(out, 'log.jsonl'), 'gan');
    writeFileAtomic(join(out, 'losses.png'), linePlot({ title: 'GAN losses', xLabel: 'step', series: ['lossD', 'lossG'].map((key) => ({ label: key, x: recs.map((r) => Number(r.step)), y: recs.map((r) => Number(r[key])) })) }));
  };
  const t0 = performance.now();
  const res = await trainGan({
    generator: G,
    discriminator: D,
    data: trainingSet(data),
    config: c.train,
    rng: new Rng(seedFor(c.seed, 'gan')),
    statePath: join(out, 'gan-state.safetensors'),
    resume: resuming,
    onProgress: progressBar(process.stderr, !flags.quiet),
    log,
    onCheckpoint: (step, ema) => {
      saveModel(join(out, 'generator.safetensors'), ema, { seed: String(c.seed), dataset: c.dataset, step: String(step) });
      snapshot(step, ema);
    },
  });
  saveModel(join(out, 'generator.safetensors'), res.ema, { seed: String(c.seed), dataset: c.dataset, step: String(c.train.steps) });
  const last = JsonlLog.read(join(out, 'log.jsonl'), 'fid-curve').at(-1);
  io.stderr(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s; FID (LeNet, ${c.curveSamples} samples) ${Number(last?.fid).toFixed(1)}; wrote ${c.out}/generator.safetensors, grid.png, fid.png\n`);
  return 0;
}
