import { existsSync } from 'node:fs';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import {
  RUN_FLAGS,
  UsageError,
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
import { imageGrid, linePlot } from '@diff-instruct/data';
import { createDenoiser, encodeSafetensors, type DenoiserModel, type UnetConfig } from '@diff-instruct/models';
import { loadDenoiser, saveModel, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import { SCORE_DISTILL_DEFAULTS, TEACHER_DEFAULTS, oneHot, type ScoreDistillConfig, type TeacherConfig } from '@diff-instruct/trainer';
import { JsonlLog, scoreDistill, trainTeacher } from '@diff-instruct/trainer/node';

import { fieldGrid, psnr, render, viewBatch, type Camera, type Grid, type RenderOptions, type VoxelField } from './render.js';
import { initField, randomCameras, sceneGrid, turntable, type ViewSettings } from './scene.js';

/** Everything `sds-nerf` does, as plain JSON; stored as config.json in the run folder. */
export interface NerfConfig {
  out: string;
  seed: number;
  /** Voxels per axis of both the ground truth and the learned field. */
  grid: number;
  /** How views are drawn: 16×16 RGB, 32 samples per ray, black background. */
  render: RenderOptions;
  views: ViewSettings;
  /** A saved teacher to load (e.g. the teacher.safetensors of an earlier run) instead of training one. */
  teacher: string | null;
  /** Ground-truth renders (random azimuths) the teacher is trained on. */
  teacherViews: number;
  teacherNet: UnetConfig;
  teacherTrain: TeacherConfig;
  /** Random cameras rendered per SDS/VSD step. */
  viewsPerStep: number;
  distill: ScoreDistillConfig;
  /** Held-out azimuths for PSNR (offset from the bin centres), and the turntable's views. */
  evalViews: number;
  turntableViews: number;
}

export const NERF_DEFAULTS: NerfConfig = {
  out: 'runs/sds-nerf',
  seed: 0,
  grid: 16,
  render: { size: 16, samples: 32, background: 0 },
  views: { elevation: 20, radius: 3, fov: 40, bins: 8 },
  teacher: null,
  teacherViews: 2048,
  // A class-conditional UNet on 16×16×3, label = azimuth bin; 16 channels keep a step near 0.1 s on one core.
  teacherNet: { kind: 'unet', resolution: 16, channels: 3, modelChannels: 16, channelMult: [1, 2], numBlocks: 1, attnResolutions: [], dropout: 0, embedDim: 64, numClasses: 8 },
  // Label dropout 0.1 (TEACHER_DEFAULTS) trains the unconditional model too, for guidance.
  teacherTrain: { ...TEACHER_DEFAULTS, steps: 2000, batchSize: 32, lr: 2e-3, emaHalfLife: 200, checkpointEvery: 1000 },
  viewsPerStep: 4,
  // Voxels take a large Adam rate; σ ∼ logU[0.05, 4] annealed to [0.05, 1] over the first 60%
  // (DreamFusion/threestudio lower t_max as the shape settles); guidance 3 (an image teacher, not text).
  distill: {
    ...SCORE_DISTILL_DEFAULTS,
    steps: 1500,
    lr: 0.05,
    range: [0.05, 4],
    rangeEnd: [0.05, 1],
    annealEnd: 0.6,
    guidanceScale: 3,
    lrFake: 1e-3,
    checkpointEvery: 100,
  },
  evalViews: 8,
  turntableViews: 12,
};

export const NERF_FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: `run folder (default ${NERF_DEFAULTS.out})` },
  mode: { type: 'string', help: `sds (Dirac generator, no second model) or vsd (a fake score trained on the renders) (default ${NERF_DEFAULTS.distill.mode})` },
  steps: { type: 'int', help: `SDS/VSD steps (default ${NERF_DEFAULTS.distill.steps})` },
  teacher: { type: 'string', help: 'a teacher saved by an earlier run (its teacher.safetensors) instead of training one' },
  'teacher-steps': { type: 'int', help: `teacher training steps (default ${NERF_DEFAULTS.teacherTrain.steps})` },
  lr: { type: 'number', help: `Adam rate of the voxels (default ${NERF_DEFAULTS.distill.lr})` },
  guidance: { type: 'number', help: `classifier-free guidance scale, 0 for none (default ${NERF_DEFAULTS.distill.guidanceScale})` },
  'views-per-step': { type: 'int', help: `random cameras per step (default ${NERF_DEFAULTS.viewsPerStep})` },
  json: { type: 'boolean', help: 'print { psnrInitial, psnrFinal, curve } as JSON to stdout' },
  ...RUN_FLAGS,
};

export const NERF_HELP = `sds-nerf — text-free DreamFusion in miniature: distil a 3-D voxel field from a 2-D diffusion teacher

Usage: sds-nerf --out DIR [--mode sds|vsd] [flags]

${flagHelp(NERF_FLAGS)}

A ${NERF_DEFAULTS.grid}³ ground-truth scene is rendered from random azimuths; a class-conditional UNet
(label = azimuth bin of ${NERF_DEFAULTS.views.bins}) is trained on the renders. A fresh voxel field is then optimised
from the teacher alone: SDS (eq. A.11; Diff-Instruct with a Dirac generator, Corollary 3.4) or
VSD (the Diff-Instruct gradient (3.2) with a fake score trained on the renders). Writes into --out:
  teacher.safetensors   the teacher (reuse it with --teacher)
  field.safetensors     the learned field (raw density and colour, ${NERF_DEFAULTS.grid}³)
  turntable.png         ground truth over the learned field, ${NERF_DEFAULTS.turntableViews} azimuths
  psnr.png, report.json PSNR (dB) against ground-truth renders at ${NERF_DEFAULTS.evalViews} held-out azimuths over iterations
  config.json, log.jsonl

Examples:
  sds-nerf --out runs/sds-nerf
  sds-nerf --out runs/vsd-nerf --mode vsd --teacher runs/sds-nerf/teacher.safetensors
  sds-nerf --out /tmp/quick --steps 50 --teacher-steps 100 --json
  sds-nerf --resume runs/sds-nerf
`;

export function resolveNerfConfig(flags: Record<string, string | number | boolean>): NerfConfig {
  if (flags.resume !== undefined) return resumeConfig(NERF_DEFAULTS, String(flags.resume), flags);
  let c: NerfConfig = structuredClone(NERF_DEFAULTS);
  if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
  if (flags.mode !== undefined) {
    const m = String(flags.mode);
    if (m !== 'sds' && m !== 'vsd') throw new UsageError(`--mode must be sds or vsd, got "${m}"`);
    c.distill.mode = m;
  }
  if (flags.out !== undefined) c.out = String(flags.out);
  if (flags.seed !== undefined) c.seed = Number(flags.seed);
  if (flags.steps !== undefined) c.distill.steps = Number(flags.steps);
  if (flags.teacher !== undefined) c.teacher = String(flags.teacher);
  if (flags.teacherSteps !== undefined) c.teacherTrain.steps = Number(flags.teacherSteps);
  if (flags.lr !== undefined) c.distill.lr = Number(flags.lr);
  if (flags.guidance !== undefined) {
    const g = Number(flags.guidance);
    if (g < 0) throw new UsageError(`--guidance must be >= 0, got ${g}`);
    c.distill.guidanceScale = g === 0 ? null : g;
  }
  if (flags.viewsPerStep !== undefined) c.viewsPerStep = Number(flags.viewsPerStep);
  requirePositive([
    ['--steps', c.distill.steps],
    ['--teacher-steps', c.teacherTrain.steps],
    ['--lr', c.distill.lr],
    ['--views-per-step', c.viewsPerStep],
  ]);
  if (c.teacherNet.numClasses !== c.views.bins) throw new UsageError(`teacherNet.numClasses (${c.teacherNet.numClasses}) must equal views.bins (${c.views.bins})`);
  if (c.teacherNet.resolution !== c.render.size) throw new UsageError(`teacherNet.resolution (${c.teacherNet.resolution}) must equal render.size (${c.render.size})`);
  return c;
}

/** What `sds-nerf --json` prints: PSNR (dB) of the field's renders against the ground truth at held-out azimuths. */
export interface NerfReport {
  mode: 'sds' | 'vsd';
  psnrInitial: number;
  psnrFinal: number;
  curve: { step: number; psnr: number }[];
  /** The PSNR of a uniform grey image, for scale. */
  psnrGrey: number;
  teacher: string;
}

/** Renders `cameras` of a grid in chunks (the interpolation maps of many views are large). */
function renderMany(g: Grid, cameras: readonly Camera[], c: NerfConfig, chunk = 64): Float32Array {
  const per = c.render.size * c.render.size * 3;
  const out = new Float32Array(cameras.length * per);
  for (let i = 0; i < cameras.length; i += chunk) {
    const part = cameras.slice(i, i + chunk);
    tf.tidy(() => out.set(render(g, viewBatch(part, c.grid, c.render), c.render).dataSync(), i * per));
  }
  return out;
}

/** Checks that a loaded teacher fits the example's views, with a message that says what to do. */
function checkTeacher(t: DenoiserModel, path: string, c: NerfConfig): void {
  const n = t.config.net;
  const want = `a UNet on ${c.render.size}×${c.render.size}×3 with ${c.views.bins} classes`;
  if (n.kind !== 'unet' || n.resolution !== c.render.size || n.channels !== 3 || n.numClasses !== c.views.bins) {
    const got = n.kind === 'unet' ? `a UNet on ${n.resolution}×${n.resolution}×${n.channels} with ${n.numClasses} classes` : `an ${n.kind} denoiser`;
    throw new UsageError(`${path} is ${got}, but sds-nerf needs ${want}; drop --teacher to train one`);
  }
}

export async function runNerf(argv: readonly string[], io: Io): Promise<number> {
  const started = startCommand(argv, NERF_FLAGS, 'sds-nerf', NERF_HELP, resolveNerfConfig, io.stdout);
  if (started === null) return 0;
  const { c, flags, resuming } = started;
  if (c.teacher !== null && !existsSync(c.teacher)) throw new UsageError(`--teacher ${c.teacher}: no such file`);
  const loaded = c.teacher !== null ? loadDenoiser(c.teacher) : null;
  if (loaded && c.teacher) checkTeacher(loaded, c.teacher, c);
  const out = prepareOut(c.out, resuming);
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
  const quiet = Boolean(flags.quiet);
  const say = (s: string) => {
    if (!quiet) io.stderr(s);
  };
  say(`sds-nerf: ${c.distill.mode.toUpperCase()}, ${c.grid}³ voxels, ${c.render.size}×${c.render.size} views; tfjs backend ${io.backend ?? tf.getBackend()}; writing to ${c.out}\n`);
  const log = new JsonlLog(join(out, 'log.jsonl'));
  const gt = sceneGrid(c.grid);
  const shape = [c.render.size, c.render.size, 3];
  const per = shape[0]! * shape[1]! * shape[2]!;

  // 1. The view-conditioned teacher: trained on ground-truth renders (label = azimuth bin), or loaded.
  const teacherPath = join(out, 'teacher.safetensors');
  let teacher: DenoiserModel;
  if (loaded) teacher = loaded;
  else if (resuming && existsSync(teacherPath)) teacher = loadDenoiser(teacherPath);
  else {
    const { cameras, bins } = randomCameras(new Rng(seedFor(c.seed, 'teacher-views')), c.teacherViews, c.views);
    const data = { data: renderMany(gt, cameras, c), sampleShape: shape, labels: bins, numClasses: c.views.bins };
    const model = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: c.teacherNet }, new Rng(seedFor(c.seed, 'teacher-init')));
    const trained = await trainTeacher({
      model,
      data,
      config: c.teacherTrain,
      rng: new Rng(seedFor(c.seed, 'teacher')),
      onProgress: progressBar(process.stderr, !quiet),
      log,
    });
    teacher = trained.ema;
    saveModel(teacherPath, teacher, { example: 'sds-nerf', scene: 'four solids', views: String(c.teacherViews) });
  }

  // 2. Held-out views for PSNR, between the bin centres; the turntable for the pictures.
  const evalCams = turntable(c.evalViews, c.views, 0.37);
  const evalBatch = viewBatch(evalCams, c.grid, c.render);
  const gtEval = render(gt, evalBatch, c.render);
  const field: VoxelField = initField(c.grid, new Rng(seedFor(c.seed, 'field')));
  const evaluate = () => tf.tidy(() => psnr(render(fieldGrid(field), evalBatch, c.render), gtEval));
  const psnrInitial = evaluate();
  if (!resuming) log.write({ phase: 'psnr', step: 0, psnr: psnrInitial });
  const psnrGrey = tf.tidy(() => psnr(tf.zerosLike(gtEval), gtEval));
  if (!resuming) say(`sds-nerf: PSNR of the fresh field ${psnrInitial.toFixed(2)} dB (a uniform grey image: ${psnrGrey.toFixed(2)} dB)\n`);

  // 3. SDS / VSD from the teacher alone: random cameras, each labelled with its azimuth bin.
  const renderStep = (_step: number, rng: Rng) => {
    const { cameras, bins } = randomCameras(rng, c.viewsPerStep, c.views);
    return { x0: render(fieldGrid(field), cameras, c.render), label: oneHot(bins, c.views.bins) };
  };
  const saveField = () => {
    const t = (v: tf.Tensor) => ({ dtype: 'F32' as const, shape: v.shape.slice(), data: v.dataSync() as Float32Array });
    writeFileAtomic(
      join(out, 'field.safetensors'),
      encodeSafetensors({ density: t(field.params.density), color: t(field.params.color) }, { format: 'sds-nerf-field', grid: String(c.grid), activation: 'density = 10·softplus(raw), colour = sigmoid(raw)' }),
    );
  };
  const result = await scoreDistill({
    params: field.params,
    render: renderStep,
    teacher,
    config: c.distill,
    rng: new Rng(seedFor(c.seed, 'score-distill')),
    statePath: join(out, 'state.safetensors'),
    resume: resuming,
    onProgress: progressBar(process.stderr, !quiet),
    log,
    onCheckpoint: (step) => {
      const p = evaluate();
      log.write({ phase: 'psnr', step, psnr: p });
      saveField();
    },
  });

  // 4. The report, the turntable and the curve.
  const curve = JsonlLog.read(join(out, 'log.jsonl'), 'psnr').map((r) => ({ step: Number(r.step), psnr: Number(r.psnr) }));
  const report: NerfReport = {
    mode: c.distill.mode,
    psnrInitial: curve[0]?.psnr ?? psnrInitial,
    psnrFinal: curve.at(-1)?.psnr ?? evaluate(),
    curve,
    psnrGrey,
    teacher: c.teacher ?? teacherPath,
  };
  writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const spin = turntable(c.turntableViews, c.views);
  const images = new Float32Array(2 * c.turntableViews * per);
  images.set(renderMany(gt, spin, c), 0);
  images.set(renderMany(fieldGrid(field), spin, c), c.turntableViews * per);
  const label = c.distill.mode === 'sds' ? 'SDS field' : 'VSD field';
  writeFileAtomic(
    join(out, 'turntable.png'),
    imageGrid({ images, n: 2 * c.turntableViews, height: shape[0]!, width: shape[1]!, channels: 3, cols: c.turntableViews, rowLabels: ['ground truth', label], scale: 4, title: `${label} after ${c.distill.steps} steps, ${report.psnrFinal.toFixed(2)} dB` }),
  );
  writeFileAtomic(
    join(out, 'psnr.png'),
    linePlot({ title: `PSNR at ${c.evalViews} held-out views`, xLabel: 'step', yLabel: 'dB', series: [{ label, x: curve.map((p) => p.step), y: curve.map((p) => p.psnr) }] }),
  );
  if (result.fake) tf.dispose(Object.values(result.fake.params));
  tf.dispose([gtEval, gt.density, gt.color, field.params.density, field.params.color, ...Object.values(teacher.params)]);
  say(`sds-nerf: PSNR ${report.psnrInitial.toFixed(2)} → ${report.psnrFinal.toFixed(2)} dB; wrote ${c.out}/turntable.png, psnr.png, report.json\n`);
  io.stdout(
    flags.json
      ? `${JSON.stringify({ psnrInitial: report.psnrInitial, psnrFinal: report.psnrFinal, curve })}\n`
      : `PSNR at ${c.evalViews} held-out views: ${report.psnrInitial.toFixed(2)} dB (fresh field) → ${report.psnrFinal.toFixed(2)} dB after ${c.distill.steps} ${c.distill.mode.toUpperCase()} steps\n`,
  );
  return 0;
}
