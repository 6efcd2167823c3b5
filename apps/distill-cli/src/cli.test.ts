import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { encodeNpy, getTarget, parseNpyArray } from '@diff-instruct/data';
import { Rng } from '@diff-instruct/sde';

import { main } from './main.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** Small settings so a whole run takes seconds. */
const tiny = {
  hidden: [32, 32],
  embedDim: 16,
  trainSamples: 2000,
  teacherTrain: { steps: 40, batchSize: 64, checkpointEvery: 20 },
  distill: { steps: 20, batchSize: 64, checkpointEvery: 10 },
  heunSteps: [1, 2, 3, 5, 9, 18],
};

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'distill-'));
}

function writeConfig(dir: string, patch: object = {}): string {
  const p = join(dir, 'tiny.json');
  writeFileSync(p, JSON.stringify({ ...tiny, ...patch }));
  return p;
}

/** Each bad input: one clear line on stderr, a non-zero exit, and no output folder. */
async function expectCleanFailure(dir: string, out: string, argv: string[], pattern: RegExp): Promise<void> {
  const r = await cli(...argv);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(pattern);
  // Exactly one line on stderr, and it is the error.
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.startsWith('distill: ')).toBe(true);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
}

describe('distill CLI', () => {
  it('prints help with examples, and the version', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: distill <command>/);
    const t = await cli('toy', '--help');
    expect(t.stdout).toMatch(/Examples:/);
    expect(t.stdout).toMatch(/--resume/);
    expect((await cli('--version')).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('--dry-run prints the resolved config, flags over --config over defaults, and writes nothing', async () => {
    const dir = tmp();
    const out = join(dir, 'run');
    const r = await cli('--', 'toy', '--dry-run', '--config', writeConfig(dir), '--steps', '7', '--out', out, '--seed', '3');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.distill.steps).toBe(7);
    expect(c.distill.batchSize).toBe(64);
    expect(c.distill.beta1).toBe(0);
    expect(c.distill.beta2).toBe(0.99);
    expect(c.seed).toBe(3);
    expect(existsSync(out)).toBe(false);
  });

  it('images --quick selects the quick-demo settings; explicit flags still win', async () => {
    const q = JSON.parse((await cli('images', '--dataset', 'mnist', '--quick', '--dry-run')).stdout);
    const d = JSON.parse((await cli('images', '--dataset', 'mnist', '--dry-run')).stdout);
    expect(q.distill.steps).toBeLessThan(d.distill.steps);
    expect(q.numSamples).toBeLessThan(d.numSamples);
    expect(q.curveSamples).toBeLessThanOrEqual(q.numSamples);
    expect(q.distill.steps % q.distill.checkpointEvery).toBe(0);
    // with no command, distill runs exactly this: the MNIST quick demo into runs/demo
    const demo = JSON.parse((await cli('--dry-run')).stdout);
    expect(demo).toEqual({ ...q, out: 'runs/demo' });
    expect(demo.dataset).toBe('mnist');
    const o = JSON.parse((await cli('images', '--quick', '--steps', '7', '--num-samples', '30', '--dry-run')).stdout);
    expect(o.distill.steps).toBe(7);
    expect(o.numSamples).toBe(30);
    // the learning rates decay (cosine) by default; --lr-schedule picks, and a typo is refused
    expect(d.distill.lrSchedule).toBe('cosine');
    expect(JSON.parse((await cli('images', '--lr-schedule', 'constant', '--dry-run')).stdout).distill.lrSchedule).toBe('constant');
    const bad = await cli('images', '--lr-schedule', 'step', '--dry-run');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--lr-schedule must be constant or cosine, got "step"/);
  });

  it('--objective, --sid-alpha and --weighting set the generator objective on toy and images, and typos are refused', async () => {
    for (const cmd of ['toy', 'images']) {
      const o = JSON.parse((await cli(cmd, '--objective', 'sid', '--sid-alpha', '1', '--weighting', 'dmd', '--dry-run')).stdout);
      expect(o.distill).toMatchObject({ objective: 'sid', sidAlpha: 1, weighting: 'dmd' });
      const objective = await cli(cmd, '--objective', 'fisher', '--dry-run');
      expect(objective.code).toBe(2);
      expect(objective.stderr).toMatch(/--objective must be one of ikl, sid; got "fisher"/);
      const weighting = await cli(cmd, '--weighting', 'sigma', '--dry-run');
      expect(weighting.code).toBe(2);
      expect(weighting.stderr).toMatch(/--weighting must be one of sigma2, dmd, uniform, edm; got "sigma"/);
    }
    for (const cmd of ['toy', 'images']) {
      expect(JSON.parse((await cli(cmd, '--dry-run')).stdout).distill.realDataWeight).toBe(0); // data-free unless asked
      expect(JSON.parse((await cli(cmd, '--real-data-weight', '0.3', '--dry-run')).stdout).distill.realDataWeight).toBe(0.3);
      expect((await cli(cmd, '--real-data-weight', '-1', '--dry-run')).stderr).toMatch(/--real-data-weight must be a number ≥ 0 \(0 keeps the method data-free\), got -1/);
    }
    expect(JSON.parse((await cli('images', '--fake-steps', '3', '--dry-run')).stdout).distill.fakeStepsPerGeneratorStep).toBe(3);
    expect((await cli('images', '--fake-steps', '0', '--dry-run')).stderr).toMatch(/--fake-steps must be > 0, got 0/);
  });

  it('gan: trainGan defaults, flags over defaults, clear errors', async () => {
    const d = JSON.parse((await cli('gan', '--dry-run')).stdout);
    expect(d.preset).toBe('mnist-stylegan2');
    expect(d.train).toMatchObject({ lrG: 0.0002, lrD: 0.0002, beta1: 0.5, beta2: 0.99, r1Gamma: 10, r1Every: 16, batchSize: 32 });
    const o = JSON.parse((await cli('gan', '--dataset', 'fashion', '--steps', '9', '--lr', '0.001', '--gamma', '0.2', '--conditional', '--dry-run')).stdout);
    expect(o).toMatchObject({ dataset: 'fashion', out: 'runs/gan-fashion', conditional: true });
    expect(o.train).toMatchObject({ steps: 9, lrG: 0.001, lrD: 0.001, r1Gamma: 0.2 });
    const dir = tmp();
    const out = join(dir, 'run');
    await expectCleanFailure(dir, out, ['gan', '--out', out, '--preset', 'big'], /unknown preset "big"; choose one of: mnist-stylegan2/);
    await expectCleanFailure(dir, out, ['gan', '--out', out, '--gamma', '-1'], /--gamma must be >= 0/);
    expect((await cli('gan', '--help')).stdout).toMatch(/distill gan --resume runs\/gan-mnist/);
  });

  it('rejects bad input with one clear line and no partial output', async () => {
    const dir = tmp();
    const out = join(dir, 'run');
    await expectCleanFailure(dir, out, ['toy', '--out', out, '--stepz', '3'], /unknown flag --stepz .*did you mean --steps/);
    await expectCleanFailure(dir, out, ['toy', '--out', out, '--steps', 'many'], /--steps must be a number/);
    await expectCleanFailure(dir, out, ['toy', '--out', out, '--target', 'donut'], /unknown target "donut"; choose one of: ring8/);

    const nan = join(dir, 'nan.csv');
    writeFileSync(nan, 'x,y\n1,2\n3,NaN\n5,6\n');
    await expectCleanFailure(dir, out, ['toy', '--out', out, '--data', nan], /nan\.csv.*NaN/);

    await expectCleanFailure(
      dir,
      out,
      ['toy', '--out', out, '--teacher', join(dir, 'missing.safetensors')],
      /checkpoint not found: .*missing\.safetensors/,
    );

    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, 'not a checkpoint');
    await expectCleanFailure(dir, out, ['toy', '--out', out, '--teacher', corrupt], /not a valid safetensors file/);
  });

  it('runs end to end, then samples, and rejects mismatched checkpoints and data', async () => {
    const dir = tmp();
    const out = join(dir, 'run');
    const r = await cli('toy', '--config', writeConfig(dir), '--out', out, '--num-samples', '300', '--json', '--quiet');
    expect(r.stderr).toBe(r.stderr); // progress and logs go to stderr
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report).sort()).toEqual(['floor', 'generator', 'teacher']);
    expect(Object.keys(report.teacher)).toEqual(['nfe1', 'nfe3', 'nfe5', 'nfe9', 'nfe17', 'nfe35']);
    for (const m of [report.generator, report.floor, ...Object.values(report.teacher)] as Record<string, number>[]) {
      expect(Object.keys(m).sort()).toEqual(['energy', 'loglik', 'mmd', 'swd']);
      expect(Number.isFinite(m.energy)).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'))).toEqual(report);
    for (const f of ['config.json', 'log.jsonl', 'teacher.safetensors', 'generator.safetensors', 'samples.csv', 'report.md', 'scatter.png', 'losses.png']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    for (const k of [1, 3, 5, 9, 17, 35]) {
      const rows = readFileSync(join(out, `teacher-nfe${k}.csv`), 'utf8').trim().split('\n');
      expect(rows).toHaveLength(300);
      expect(rows[0]!.split(',')).toHaveLength(2);
      expect(Number.isFinite(Number(rows[0]!.split(',')[0]))).toBe(true);
    }
    expect(readFileSync(join(out, 'samples.csv'), 'utf8').trim().split('\n')).toHaveLength(300);

    // distill sample: one saved generator, new samples.
    const csv = join(dir, 'draw.csv');
    const s = await cli('sample', '--generator', join(out, 'generator.safetensors'), '--num-samples', '50', '--out', csv);
    expect(s.code).toBe(0);
    expect(readFileSync(csv, 'utf8').trim().split('\n')).toHaveLength(50);

    // A generator checkpoint is not a teacher.
    const out2 = join(dir, 'run2');
    await expectCleanFailure(dir, out2, ['toy', '--out', out2, '--teacher', join(out, 'generator.safetensors')], /holds a generator, expected a denoiser/);
    // A 3-D point file against this 2-D teacher.
    const pts = join(dir, 'points3.csv');
    writeFileSync(pts, Array.from({ length: 100 }, (_, i) => `${i % 7},${i % 5},${i % 3}`).join('\n'));
    await expectCleanFailure(dir, out2, ['toy', '--out', out2, '--data', pts, '--teacher', join(out, 'teacher.safetensors')], /2-D data, but the data is 3-D/);
    // An existing run folder is never overwritten.
    const again = await cli('toy', '--out', out, '--config', writeConfig(dir));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds files; .* --resume/);
  });

  it('--resume continues exactly where the run stopped', async () => {
    const dir = tmp();
    const straight = join(dir, 'straight');
    // A constant rate: the stopped run is made by a shorter schedule, which cosine decay would change.
    const cfg = writeConfig(dir, { distill: { steps: 20, batchSize: 64, checkpointEvery: 10, objective: 'ikl', lrSchedule: 'constant' } });
    expect((await cli('toy', '--config', cfg, '--out', straight, '--num-samples', '200', '--quiet')).code).toBe(0);

    // The same run stopped after 10 steps (its state file is at step 10), then resumed to 20. Its
    // config.json is written as runs were before the objective existed: a resume takes 'ikl' for it,
    // whatever today's default objective is.
    const stopped = join(dir, 'stopped');
    const cfg10 = writeConfig(dir, { distill: { steps: 10, batchSize: 64, checkpointEvery: 10, objective: 'ikl', lrSchedule: 'constant' } });
    expect((await cli('toy', '--config', cfg10, '--out', stopped, '--num-samples', '200', '--quiet')).code).toBe(0);
    const stored = JSON.parse(readFileSync(join(stopped, 'config.json'), 'utf8'));
    stored.distill.steps = 20;
    delete stored.distill.objective;
    delete stored.distill.sidAlpha;
    writeFileSync(join(stopped, 'config.json'), JSON.stringify(stored));
    const r = await cli('toy', '--resume', stopped, '--quiet');
    expect(r.code).toBe(0);

    const bytes = (d: string, f: string) => readFileSync(join(d, f));
    expect(bytes(stopped, 'generator.safetensors').equals(bytes(straight, 'generator.safetensors'))).toBe(true);
    expect(bytes(stopped, 'samples.csv').equals(bytes(straight, 'samples.csv'))).toBe(true);
    const steps = (d: string) =>
      readFileSync(join(d, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((x) => x.phase === 'diff-instruct')
        .map((x) => x.step);
    expect(steps(stopped)).toEqual(steps(straight));

    const bad = await cli('toy', '--resume', stopped, '--steps', '5');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--resume continues a run with its stored settings; drop --steps/);
  });

  it('distils any point file: a 3-D .npy and a 2-D CSV with a header row', async () => {
    const dir = tmp();
    const npy = join(dir, 'points.npy');
    writeFileSync(npy, encodeNpy(getTarget('gmm-3d').sample(new Rng(0), 600), [600, 3]));
    const out = join(dir, 'npy');
    const r = await cli('toy', '--config', writeConfig(dir), '--data', npy, '--out', out, '--num-samples', '100', '--json', '--quiet');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).generator.loglik).toBeUndefined(); // no known density for a file
    const row = readFileSync(join(out, 'samples.csv'), 'utf8').split('\n')[0]!;
    expect(row.split(',')).toHaveLength(3);

    const csv = join(dir, 'points.csv');
    const ring = getTarget('ring8').sample(new Rng(1), 400);
    const lines = ['x,y', ...Array.from({ length: 400 }, (_, i) => `${ring[2 * i]},${ring[2 * i + 1]}`)];
    writeFileSync(csv, lines.join('\n'));
    const r2 = await cli('toy', '--config', writeConfig(dir), '--data', csv, '--out', join(dir, 'csv'), '--num-samples', '60', '--quiet');
    expect(r2.code).toBe(0);
    expect(r2.stdout).toMatch(/\*\*SiD generator\*\* \| 1 \|/); // the default objective, named in the table

    // The real-data term draws from the file's training points; the report says so, the log has its losses.
    const real = join(dir, 'real');
    const r3 = await cli('toy', '--config', writeConfig(dir), '--data', csv, '--out', real, '--num-samples', '60', '--real-data-weight', '0.5', '--quiet');
    expect(r3.code).toBe(0);
    expect(r3.stdout).toMatch(/with the real-data term \(weight 0\.5\)/);
    const last = readFileSync(join(real, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.phase === 'diff-instruct').at(-1);
    expect(Number.isFinite(last.discriminatorLoss) && Number.isFinite(last.realDataLoss)).toBe(true);
  });
});

describe('distill teacher and distill classifier (images)', () => {
  it('train, checkpoint, draw a grid, and refuse bad datasets and presets', async () => {
    const dir = tmp();
    const cfg = join(dir, 'img.json');
    writeFileSync(cfg, JSON.stringify({ limit: 64, train: { steps: 2, batchSize: 4, checkpointEvery: 1 }, gridSteps: 1 }));
    const out = join(dir, 'teacher');
    const r = await cli('teacher', '--config', cfg, '--conditional', '--out', out, '--quiet');
    expect(r.code).toBe(0);
    for (const f of ['config.json', 'log.jsonl', 'teacher.safetensors', 'teacher-state.safetensors', 'grid.png', 'losses.png']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(r.stderr).toMatch(/348,721 parameters/);
    const bad = join(dir, 'bad');
    await expectCleanFailure(dir, bad, ['teacher', '--dataset', 'cifar', '--out', bad], /unknown dataset "cifar"; choose one of: mnist, fashion/);
    await expectCleanFailure(dir, bad, ['teacher', '--preset', 'huge', '--out', bad], /unknown preset "huge"/);

    const c = await cli('classifier', '--steps', '10', '--out', join(dir, 'cls'), '--json', '--quiet');
    expect(c.code).toBe(0);
    const acc = JSON.parse(c.stdout).testAccuracy;
    expect(acc).toBeGreaterThan(0.3); // chance is 0.1 on 10 balanced classes
    expect(existsSync(join(dir, 'cls', 'classifier.safetensors'))).toBe(true);

    // distill images on that teacher and classifier: outputs, report, and the teacher sample cache.
    const icfg = join(dir, 'images.json');
    writeFileSync(icfg, JSON.stringify({ numSamples: 10, curveSamples: 10, referenceImages: 300, heunSteps: [1], distill: { steps: 2, batchSize: 2, checkpointEvery: 1 } }));
    const args = ['--conditional', '--teacher', join(out, 'teacher.safetensors'), '--classifier', join(dir, 'cls', 'classifier.safetensors'), '--config', icfg, '--quiet'];
    const im = await cli('images', ...args, '--out', join(dir, 'img1'), '--json');
    expect(im.code).toBe(0);
    const rep = JSON.parse(im.stdout);
    expect(Object.keys(rep.teacher)).toEqual(['nfe1']);
    expect(rep.fidCurve.map((p: { step: number }) => p.step)).toEqual([0, 1, 2]);
    expect(Number.isFinite(rep.generator.fid)).toBe(true);
    for (const f of ['generator.safetensors', 'samples.npy', 'teacher-nfe1.npy', 'report.md', 'grid.png', 'fid.png']) {
      expect(existsSync(join(dir, 'img1', f)), f).toBe(true);
    }
    // images in [-1, 1] (a 1-NFE sample of a barely trained teacher leaves that range unclipped)
    for (const f of ['samples.npy', 'teacher-nfe1.npy']) {
      const a = parseNpyArray(new Uint8Array(readFileSync(join(dir, 'img1', f))), f);
      expect(a.shape).toEqual([10, 32, 32, 1]);
      expect(Math.min(...a.data) >= -1 && Math.max(...a.data) <= 1, f).toBe(true);
    }
    expect(im.stderr).toMatch(/teacher 1 NFE: sampled 10/);
    const again = await cli('images', ...args, '--out', join(dir, 'img2'));
    expect(again.stderr).toMatch(/teacher 1 NFE: cache hit \(.*\); [\d.]+ ms per sample measured on 10/);
    expect(readFileSync(join(dir, 'img2', 'teacher-nfe1.npy')).equals(readFileSync(join(dir, 'img1', 'teacher-nfe1.npy')))).toBe(true);
    await expectCleanFailure(
      dir,
      bad,
      ['images', '--teacher', join(out, 'teacher.safetensors'), '--classifier', join(dir, 'cls', 'classifier.safetensors'), '--out', bad],
      /is class-conditional; pass --conditional/,
    );
    await expectCleanFailure(
      dir,
      bad,
      ['images', '--teacher', join(dir, 'cls', 'classifier.safetensors'), '--classifier', join(dir, 'cls', 'classifier.safetensors'), '--out', bad],
      /holds a classifier, expected a denoiser/,
    );

    // distill sample of an image generator: a labelled grid.
    const png = join(dir, 'sevens.png');
    const s = await cli('sample', '--generator', join(dir, 'img1', 'generator.safetensors'), '--label', '7', '--num-samples', '4', '--out', png);
    expect(s.code).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });
});
