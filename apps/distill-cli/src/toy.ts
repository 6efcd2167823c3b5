import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

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
  parseArgs,
  prepareOut,
  progressBar,
  readConfigFile,
  resumeConfig,
  seedFor,
  type FlagSpec,
  type Io,
} from '@diff-instruct/cli';
import { TARGET_NAMES, formatCsvPoints, getTarget, linePlot, scatterPlot, validatePoints, type PointTarget } from '@diff-instruct/data';
import { readPoints } from '@diff-instruct/data/node';
import { compareSamples, type SampleMetrics } from '@diff-instruct/metrics';
import { createDenoiser, createGenerator, disposeModel, tweedieGenerator, type DenoiserModel, type GeneratorModel } from '@diff-instruct/models';
import { loadDenoiser, saveModel, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng, sampleTeacher } from '@diff-instruct/sde';
import { JsonlLog, diffInstruct, trainTeacher } from '@diff-instruct/trainer/node';

import { TOY_DEFAULTS, type ToyConfig } from './config.js';

export const TOY_FLAGS: Record<string, FlagSpec> = {
  target: { type: 'string', help: `built-in target: ${TARGET_NAMES.join(', ')} (default ring8), or gmm-<D>d in D dimensions` },
  data: { type: 'string', help: 'a point file to distil instead: N×D, .csv (header optional) or .npy' },
  teacher: { type: 'string', help: 'load this teacher (.safetensors) instead of training one' },
  out: { type: 'string', help: 'run folder for every output (default runs/toy)' },
  'num-samples': { type: 'int', help: 'rows per sample file and per evaluation sample (default 2000)' },
  'teacher-steps': { type: 'int', help: 'teacher training steps' },
  steps: { type: 'int', help: 'Diff-Instruct generator steps' },
  'batch-size': { type: 'int', help: 'batch size of the teacher and of Diff-Instruct' },
  lr: { type: 'number', help: 'Diff-Instruct learning rate of the generator and the fake score' },
  generator: { type: 'string', help: "'tweedie' (teacher at σ*, eq. B.3; default) or 'mlp'" },
  'init-sigma': { type: 'number', help: 'σ* of the Tweedie initialisation (default 2.5)' },
  ...OBJECTIVE_FLAGS,
  'fake-steps': { type: 'int', help: 'fake-score DSM steps per generator step (default 1)' },
  json: { type: 'boolean', help: 'print report.json to stdout instead of the table' },
  ...RUN_FLAGS,
};

export const TOY_HELP = `distill toy — distil a diffusion model of 2-D (or any-D) points into a one-step generator

Trains a teacher DM on the target (or loads --teacher), runs Diff-Instruct (Algorithm 1) from the
teacher's Tweedie initialisation, and compares the one-step generator with the teacher's EDM Heun
sampler at NFE 1, 3, 5, 9, 17 and 35.

Usage: distill toy [flags]

${flagHelp(TOY_FLAGS)}

Examples:
  distill toy                                   # ring of 8 Gaussians, into runs/toy
  distill toy --target moons --out runs/moons --seed 1
  distill toy --data points.csv --out runs/mine --num-samples 5000
  distill toy --teacher runs/toy/teacher.safetensors --steps 4000 --out runs/longer
  distill toy --resume runs/toy                 # after an interruption
  distill toy --dry-run --config my.json        # show the resolved settings

Outputs in --out: config.json, log.jsonl, teacher.safetensors, generator.safetensors, samples.csv,
teacher-nfe{1,3,5,9,17,35}.csv, report.json, report.md, scatter.png, losses.png.
`;

export type Metrics = SampleMetrics;
export interface ToyReport {
  generator: Metrics;
  teacher: Record<string, Metrics>;
  floor: Metrics;
}

/** Turns flags (and --config, --resume) into the resolved config. Pure apart from reading files. */
export function resolveToyConfig(flags: Record<string, string | number | boolean>): ToyConfig {
  if (flags.resume !== undefined) return resumeConfig(TOY_DEFAULTS, String(flags.resume), flags, { distill: BEFORE_OBJECTIVES });
  let c: ToyConfig = structuredClone(TOY_DEFAULTS);
  if (flags.config !== undefined) c = mergeConfig(c, readConfigFile(String(flags.config)), String(flags.config));
  const set = <K extends keyof ToyConfig>(k: K, v: unknown) => {
    if (v !== undefined) c[k] = v as ToyConfig[K];
  };
  set('target', flags.target);
  set('data', flags.data);
  set('teacher', flags.teacher);
  set('out', flags.out);
  set('seed', flags.seed);
  set('numSamples', flags.numSamples);
  set('generator', flags.generator);
  set('initSigma', flags.initSigma);
  if (flags.teacherSteps !== undefined) c.teacherTrain.steps = Number(flags.teacherSteps);
  if (flags.steps !== undefined) c.distill.steps = Number(flags.steps);
  if (flags.batchSize !== undefined) {
    c.teacherTrain.batchSize = Number(flags.batchSize);
    c.distill.batchSize = Number(flags.batchSize);
  }
  if (flags.lr !== undefined) {
    c.distill.lrGenerator = Number(flags.lr);
    c.distill.lrFake = Number(flags.lr);
  }
  applyObjectiveFlags(flags, c.distill);
  if (flags.fakeSteps !== undefined) c.distill.fakeStepsPerGeneratorStep = Number(flags.fakeSteps);
  checkToyConfig(c);
  return c;
}

function checkToyConfig(c: ToyConfig): void {
  if (c.data === null) {
    try {
      getTarget(c.target);
    } catch (e) {
      throw new UsageError(`${(e as Error).message}; or pass --data FILE`);
    }
  }
  if (c.generator !== 'tweedie' && c.generator !== 'mlp') {
    throw new UsageError(`--generator must be 'tweedie' or 'mlp', got "${c.generator}"`);
  }
  const positive: [string, number][] = [
    ['--num-samples', c.numSamples],
    ['--teacher-steps', c.teacherTrain.steps],
    ['--steps', c.distill.steps],
    ['--batch-size', c.distill.batchSize],
    ['--batch-size', c.teacherTrain.batchSize],
    ['--lr', c.distill.lrGenerator],
    ['--init-sigma', c.initSigma],
    ['--fake-steps', c.distill.fakeStepsPerGeneratorStep],
  ];
  for (const [flag, v] of positive) if (!(v > 0)) throw new UsageError(`${flag} must be > 0, got ${v}`);
}

interface ToyData {
  dim: number;
  train: Float32Array;
  heldout: Float32Array;
  /** Independent target samples, each compared with `heldout` to measure the floor and its noise. */
  floorRefs: Float32Array[];
  target?: PointTarget;
  source: string;
}

/** Loads and splits the data. Throws (before anything is written) on a bad file. */
function loadToyData(c: ToyConfig): ToyData {
  const m = c.numSamples;
  if (c.data !== null) {
    const p = readPoints(c.data);
    validatePoints(p, c.data);
    if (p.n < 50) throw new UsageError(`${c.data}: ${p.n} rows are too few to train and evaluate; give at least 50`);
    const rng = new Rng(seedFor(c.seed, 'split'));
    const perm = rng.permutation(p.n);
    const k = Math.min(m, Math.floor(p.n / 5));
    const take = (from: number, to: number) => {
      const out = new Float32Array((to - from) * p.dim);
      for (let i = from; i < to; i++) out.set(p.data.subarray(perm[i]! * p.dim, (perm[i]! + 1) * p.dim), (i - from) * p.dim);
      return out;
    };
    return { dim: p.dim, heldout: take(0, k), floorRefs: [take(k, 2 * k)], train: take(2 * k, p.n), source: c.data };
  }
  const target = getTarget(c.target);
  return {
    dim: target.dim,
    target,
    train: target.sample(new Rng(seedFor(c.seed, 'train')), c.trainSamples),
    heldout: target.sample(new Rng(seedFor(c.seed, 'heldout')), m),
    floorRefs: [0, 1, 2, 3].map((k) => target.sample(new Rng(seedFor(c.seed, `floor-${k}`)), m)),
    source: `target ${c.target}`,
  };
}

function loadTeacherChecked(path: string, dim: number): DenoiserModel {
  const t = loadDenoiser(path);
  const net = t.config.net as { kind: string; dim?: number };
  if (net.kind !== 'mlp' || net.dim !== dim) {
    disposeModel(t);
    throw new UsageError(
      `${path} is a ${net.kind} teacher for ${net.dim ?? '?'}-D data, but the data is ${dim}-D; train a teacher on this data or pass the matching one`,
    );
  }
  return t;
}

function std(x: Float32Array): number {
  let m = 0;
  for (const v of x) m += v;
  m /= x.length;
  let s = 0;
  for (const v of x) s += (v - m) ** 2;
  return Math.sqrt(s / x.length);
}

export async function runToy(argv: readonly string[], io: Io): Promise<number> {
  const { positionals, flags } = parseArgs(argv, TOY_FLAGS, 'distill toy');
  if (flags.help || positionals.includes('--help')) {
    io.stdout(TOY_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`distill toy takes no arguments, got "${positionals[0]}"; see distill toy --help`);
  const c = resolveToyConfig(flags);
  const resuming = flags.resume !== undefined;
  if (flags.dryRun) {
    io.stdout(`${JSON.stringify(c, null, 2)}\n`);
    return 0;
  }

  // Validate every input before anything is written.
  const data = loadToyData(c);
  let teacher: DenoiserModel | undefined;
  const teacherOut = join(resolve(c.out), 'teacher.safetensors');
  if (c.teacher !== null) teacher = loadTeacherChecked(c.teacher, data.dim);
  else if (resuming && existsSync(teacherOut)) teacher = loadTeacherChecked(teacherOut, data.dim);

  const out = prepareOut(c.out, resuming);
  const sigmaData = c.sigmaData ?? Number(std(data.train).toFixed(4));
  const resolved: ToyConfig = { ...c, sigmaData };
  if (!resuming) writeFileAtomic(join(out, 'config.json'), `${JSON.stringify(resolved, null, 2)}\n`);
  io.stderr(
    `distill toy: ${data.source}, ${data.dim}-D, ${data.train.length / data.dim} training points, σ_data ${sigmaData}; tfjs backend ${io.backend ?? tf.getBackend()}; writing to ${c.out}\n`,
  );
  const log = new JsonlLog(join(out, 'log.jsonl'));
  const onProgress = progressBar(process.stderr, !flags.quiet);

  // 1. The teacher.
  if (teacher === undefined) {
    const model = createDenoiser(
      { kind: 'edm', sigmaData, net: { kind: 'mlp', dim: data.dim, hidden: c.hidden, embedDim: c.embedDim, numClasses: 0 } },
      new Rng(seedFor(c.seed, 'teacher-init')),
    );
    const res = await trainTeacher({
      model,
      data: { data: data.train, sampleShape: [data.dim] },
      config: c.teacherTrain,
      rng: new Rng(seedFor(c.seed, 'teacher')),
      statePath: join(out, 'teacher-state.safetensors'),
      resume: resuming,
      onProgress,
      log,
    });
    for (const v of Object.values(res.model.params)) v.dispose();
    teacher = res.ema;
  }
  saveModel(teacherOut, teacher, { seed: String(c.seed), source: data.source });

  // 2. Diff-Instruct (Algorithm 1).
  const generator: GeneratorModel =
    c.generator === 'tweedie'
      ? tweedieGenerator(teacher, c.initSigma)
      : createGenerator(
          { kind: 'mlp-generator', latentDim: data.dim, outDim: data.dim, hidden: c.hidden, numClasses: 0 },
          new Rng(seedFor(c.seed, 'generator-init')),
        );
  const di = await diffInstruct({
    teacher,
    generator,
    config: c.distill,
    // The real-data term (off by default) draws from the training points the teacher learnt from.
    realData: c.distill.realDataWeight > 0 ? { data: data.train, sampleShape: [data.dim] } : undefined,
    rng: new Rng(seedFor(c.seed, 'diff-instruct')),
    statePath: join(out, 'di-state.safetensors'),
    resume: resuming,
    onProgress,
    log,
  });
  saveModel(join(out, 'generator.safetensors'), di.ema, { seed: String(c.seed), source: data.source });

  // 3. Evaluation against held-out points.
  io.stderr('evaluating: one-step generator and teacher Heun at NFE 1, 3, 5, 9, 17, 35\n');
  const evaluation = evaluate(c, data, teacher, di.ema, out);
  const report: ToyReport = { generator: evaluation.generator, teacher: evaluation.teacher, floor: evaluation.floor };
  writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = reportMarkdown(evaluation, c, data);
  writeFileAtomic(join(out, 'report.md'), md);
  writeFileAtomic(join(out, 'losses.png'), lossPlot(join(out, 'log.jsonl')));
  io.stderr(`wrote ${c.out}/report.md, report.json, samples.csv, teacher-nfe*.csv, scatter.png, losses.png\n`);
  io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : md);
  return 0;
}

interface Evaluation extends ToyReport {
  /** Milliseconds per sample, by sampler. */
  ms: Record<string, number>;
  /** Standard deviation of the floor's energy distance over independent target samples. */
  floorEnergyStd?: number;
}

function evaluate(c: ToyConfig, data: ToyData, teacher: DenoiserModel, gen: GeneratorModel, out: string): Evaluation {
  const m = c.numSamples;
  const dim = data.dim;
  const logProb = data.target?.mixture ? (x: tf.Tensor2D) => data.target!.mixture!.logProb(x) : undefined;
  const metricRng = () => new Rng(seedFor(c.seed, 'metrics'));
  const score = (x: Float32Array) => compareSamples(x, data.heldout, dim, metricRng(), { logProb });
  const ms: Record<string, number> = {};

  let t0 = performance.now();
  const samples = tf.tidy(() => {
    const z = new Rng(seedFor(c.seed, 'samples')).normalTensor([m, ...gen.latentShape]);
    return gen.generate(z).dataSync() as Float32Array;
  });
  ms.generator = (performance.now() - t0) / m;
  writeFileAtomic(join(out, 'samples.csv'), formatCsvPoints({ data: samples, n: m, dim }));

  const teacherSamples: Record<string, Float32Array> = {};
  const teacherMetrics: Record<string, Metrics> = {};
  for (const steps of c.heunSteps) {
    t0 = performance.now();
    const { x, nfe } = sampleTeacher(teacher.denoise, {
      shape: [m, dim],
      steps,
      sampler: 'heun',
      rng: new Rng(seedFor(c.seed, `teacher-sample-${steps}`)),
    });
    const arr = x.dataSync() as Float32Array;
    x.dispose();
    ms[`nfe${nfe}`] = (performance.now() - t0) / m;
    teacherSamples[`nfe${nfe}`] = arr;
    writeFileAtomic(join(out, `teacher-nfe${nfe}.csv`), formatCsvPoints({ data: arr, n: m, dim }));
    teacherMetrics[`nfe${nfe}`] = score(arr);
  }
  // The floor: the mean over independent target samples; its spread is the noise of every row.
  const floors = data.floorRefs.map(score);
  const mean = (k: keyof Metrics) => floors.reduce((a, f) => a + (f[k] ?? 0), 0) / floors.length;
  const floor: Metrics = { energy: mean('energy'), mmd: mean('mmd'), swd: mean('swd') };
  if (floors[0]!.loglik !== undefined) floor.loglik = mean('loglik');
  const floorEnergyStd =
    floors.length > 1 ? Math.sqrt(floors.reduce((a, f) => a + (f.energy - floor.energy) ** 2, 0) / (floors.length - 1)) : undefined;
  const report = { generator: score(samples), teacher: teacherMetrics, floor };
  const best = teacherSamples.nfe35 ?? Object.values(teacherSamples).pop()!;
  writeFileAtomic(
    join(out, 'scatter.png'),
    scatterPlot({
      title: `${data.source}: held-out, teacher (35 NFE), teacher (1 NFE), one-step generator`,
      series: [
        { points: data.heldout, dim, label: 'held-out data' },
        { points: best, dim, label: 'teacher Heun 35 NFE' },
        { points: teacherSamples.nfe1 ?? best, dim, label: 'teacher 1 NFE' },
        { points: samples, dim, label: `${generatorName(c.distill).replace(' generator', '')} 1 NFE` },
      ],
    }),
  );
  return Object.assign(report, { ms, floorEnergyStd });
}

function fmt(v: number | undefined): string {
  if (v === undefined) return '–';
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toExponential(2);
}

export function reportMarkdown(
  r: ToyReport & { ms?: Record<string, number>; floorEnergyStd?: number },
  c: ToyConfig,
  data: { source: string; dim: number },
): string {
  const rows: string[] = [];
  const row = (name: string, nfe: string, m: Metrics, ms?: number) =>
    rows.push(
      `| ${name} | ${nfe} | ${fmt(m.energy)} | ${fmt(m.energy - r.floor.energy)} | ${fmt(m.mmd)} | ${fmt(m.swd)} | ${fmt(m.loglik)} | ${ms === undefined ? '–' : ms.toFixed(3)} |`,
    );
  row(`**${generatorName(c.distill)}**`, '1', r.generator, r.ms?.generator);
  for (const [k, m] of Object.entries(r.teacher)) row('teacher, EDM Heun', k.replace('nfe', ''), m, r.ms?.[k]);
  row(`floor (target vs target${r.floorEnergyStd === undefined ? '' : ', mean of 4'})`, '–', r.floor);
  const noise =
    r.floorEnergyStd === undefined
      ? ''
      : `\nThe floor's energy distance varies by ±${fmt(r.floorEnergyStd)} (one standard deviation over 4 independent target\nsamples): differences in "energy above floor" smaller than that are noise.\n`;
  return `# distill toy: ${data.source}

${data.dim}-D, seed ${c.seed}, ${c.numSamples} samples per row against held-out target points.
Lower is better for energy distance, MMD and sliced Wasserstein; higher is better for the mean
log-likelihood under the true density (built-in mixtures only). "above floor" subtracts the floor:
the energy distance between independent target samples and the held-out points.

| sampler | NFE | energy | energy above floor | MMD | SWD | log-lik | ms/sample |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${noise}
Teacher: ${c.teacherTrain.steps} DSM steps (or loaded); ${describeObjective(c.distill)}: ${c.distill.steps} steps, batch ${c.distill.batchSize}, generator ${c.generator}${c.generator === 'tweedie' ? ` (σ* = ${c.initSigma})` : ''}.
`;
}

function lossPlot(logPath: string): Uint8Array {
  const recs = JsonlLog.read(logPath);
  const series = (phase: string, key: string, label: string) => {
    const r = recs.filter((x) => x.phase === phase && typeof x[key] === 'number');
    return { x: r.map((x) => Number(x.step)), y: r.map((x) => Number(x[key])), label };
  };
  const all = [
    series('teacher', 'loss', 'teacher DSM loss'),
    series('diff-instruct', 'fakeLoss', 'fake score DSM loss'),
    series('diff-instruct', 'generatorGradNorm', 'generator grad norm'),
  ].filter((s) => s.x.length > 0);
  return linePlot({ title: 'training losses', series: all, logY: true, xLabel: 'step' });
}
