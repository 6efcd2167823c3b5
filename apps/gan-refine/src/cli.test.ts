import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { parseNpyArray } from '@diff-instruct/data';
import { createDenoiser, createGenerator, type StyleGan2GeneratorConfig, type UnetConfig } from '@diff-instruct/models';
import { loadGenerator, readSafetensorsFile, saveModel } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';

import { main } from './main.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** A StyleGAN2 generator and a UNet teacher small enough that a refinement takes seconds. */
const GEN: StyleGan2GeneratorConfig = { kind: 'stylegan2', resolution: 32, channels: 1, latentDim: 8, wDim: 16, mappingLayers: 1, mappingLrMultiplier: 0.01, channelsAt: [8, 8, 8, 8], numClasses: 0 };
const NET: UnetConfig = { kind: 'unet', resolution: 32, channels: 1, modelChannels: 8, channelMult: [1], numBlocks: 1, attnResolutions: [], dropout: 0, embedDim: 16, numClasses: 0 };

function fixtures(): { dir: string; gan: string; teacher: string; cfg: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gan-refine-'));
  const gan = join(dir, 'gan.safetensors');
  saveModel(gan, createGenerator(GEN, new Rng(1)), { dataset: 'mnist', step: '123' });
  const teacher = join(dir, 'teacher.safetensors');
  saveModel(teacher, createDenoiser({ kind: 'edm', sigmaData: 0.5, net: NET }, new Rng(2)));
  const cfg = join(dir, 'tiny.json');
  writeFileSync(cfg, JSON.stringify({ numSamples: 20, curveSamples: 20, referenceImages: 200, refine: { steps: 2, batchSize: 2, checkpointEvery: 1, lrGenerator: 1e-3, lrFake: 1e-3 } }));
  return { dir, gan, teacher, cfg };
}

/** Each bad input: one clear line on stderr, a non-zero exit, and no output folder. */
async function expectCleanFailure(out: string, argv: string[], pattern: RegExp): Promise<void> {
  const r = await cli(...argv, '--out', out);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.startsWith('gan-refine: ')).toBe(true);
  expect(existsSync(out)).toBe(false);
}

describe('gan-refine', () => {
  it('help, version, and Table 9 defaults scaled down; flags over --config over defaults', async () => {
    const h = await cli('--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/Usage: gan-refine/);
    expect(h.stdout).toMatch(/samples-before\.npy, samples-after\.npy/);
    expect((await cli('--version')).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const d = JSON.parse((await cli('--dry-run')).stdout);
    expect(d.refine).toMatchObject({ beta1: 0, beta2: 0.99, batchSize: 32 });
    expect(d.refine.lrGenerator).toBe(d.refine.lrFake);
    const { cfg } = fixtures();
    const o = JSON.parse((await cli('--config', cfg, '--steps', '7', '--lr', '3e-4', '--seed', '4', '--fake-warmup', '12', '--dry-run')).stdout);
    expect(o.refine).toMatchObject({ steps: 7, batchSize: 2, lrGenerator: 3e-4, lrFake: 3e-4, fakeWarmupSteps: 12 });
    expect(o).toMatchObject({ seed: 4, numSamples: 20 });
    const sid = JSON.parse((await cli('--objective', 'sid', '--sid-alpha', '1.1', '--weighting', 'sigma2', '--dry-run')).stdout);
    expect(sid.refine).toMatchObject({ objective: 'sid', sidAlpha: 1.1, weighting: 'sigma2' });
    const bad = await cli('--objective', 'dmd', '--dry-run');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--objective must be one of ikl, sid; got "dmd"/);
    expect(JSON.parse((await cli('--real-data-weight', '0.2', '--dry-run')).stdout).refine.realDataWeight).toBe(0.2);
  });

  it('reads the high-noise recipe the README reports (configs/high-noise.json) on top of the defaults', async () => {
    const recipe = fileURLToPath(new URL('../configs/high-noise.json', import.meta.url));
    const o = JSON.parse((await cli('--config', recipe, '--dry-run')).stdout);
    expect(o.refine).toMatchObject({ steps: 300, fakeStepsPerGeneratorStep: 4, pMean: 0.8, pStd: 0.8, lrGenerator: 1e-5, lrFake: 1e-5, beta1: 0, beta2: 0.99, batchSize: 32 });
    expect(o.numSamples).toBe(2000);
  });

  it('refines end to end: before/after from the same latents, a drop-in generator, exact resume', async () => {
    const { dir, gan, teacher, cfg } = fixtures();
    const args = ['--generator', gan, '--teacher', teacher, '--config', cfg, '--quiet'];
    const out = join(dir, 'run');
    const r = await cli(...args, '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(Number.isFinite(rep.before.fid) && Number.isFinite(rep.after.fid)).toBe(true);
    expect(rep.fidCurve.map((p: { step: number }) => p.step)).toEqual([0, 1, 2]);
    // Class balance before and after: a share per class of the 20 samples, summing to 1, in the report.
    for (const m of [rep.before, rep.after]) {
      expect(m.classFractions).toHaveLength(10);
      expect(m.classFractions.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 12);
      for (const p of m.classFractions) expect(Math.abs(p * 20 - Math.round(p * 20))).toBeLessThan(1e-9);
    }
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain(`| before | ${rep.before.classFractions.map((p: number) => (100 * p).toFixed(1)).join(' | ')} |`);
    expect(md).toContain(`| after | ${rep.after.classFractions.map((p: number) => (100 * p).toFixed(1)).join(' | ')} |`);
    for (const f of ['generator.safetensors', 'samples-before.npy', 'samples-after.npy', 'report.md', 'report.json', 'compare.png', 'grid.png', 'fid.png', 'losses.png', 'di-state.safetensors']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const before = parseNpyArray(new Uint8Array(readFileSync(join(out, 'samples-before.npy'))), 'before');
    const after = parseNpyArray(new Uint8Array(readFileSync(join(out, 'samples-after.npy'))), 'after');
    expect(before.shape).toEqual([20, 32, 32, 1]);
    expect(after.shape).toEqual([20, 32, 32, 1]);
    for (const a of [before, after]) expect(Math.min(...a.data) >= -1 && Math.max(...a.data) <= 1).toBe(true);
    expect(before.data).not.toEqual(after.data); // the refinement changed the generator

    // Drop-in: the same config and parameter names as the input, the input's metadata kept.
    const input = loadGenerator(gan);
    const refined = loadGenerator(join(out, 'generator.safetensors'));
    expect(refined.config).toEqual(input.config);
    expect(Object.keys(refined.params).sort()).toEqual(Object.keys(input.params).sort());
    const meta = readSafetensorsFile(join(out, 'generator.safetensors')).metadata;
    expect(meta).toMatchObject({ dataset: 'mnist', step: '123', refinedFrom: gan, refineSteps: '2' });
    // Before = the input GAN on the run's latents, whatever happens after.
    const out2 = join(dir, 'run2');
    const stopped = await cli(...args, '--out', out2, '--steps', '1');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(readFileSync(join(out2, 'samples-before.npy')).equals(readFileSync(join(out, 'samples-before.npy')))).toBe(true);

    // --resume from step 1 to step 2 gives the straight run's generator, bit for bit.
    const stored = JSON.parse(readFileSync(join(out2, 'config.json'), 'utf8'));
    stored.refine.steps = 2;
    writeFileSync(join(out2, 'config.json'), JSON.stringify(stored));
    const resumed = await cli('--resume', out2, '--quiet');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readFileSync(join(out2, 'samples-after.npy')).equals(readFileSync(join(out, 'samples-after.npy')))).toBe(true);
    const bad = await cli('--resume', out2, '--steps', '5');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--resume continues a run with its stored settings; drop --steps/);

    // SiD through a StyleGAN2 generator: another update from the same latents, named in the report.
    const out3 = join(dir, 'sid');
    const sid = await cli(...args, '--out', out3, '--objective', 'sid', '--json');
    expect(sid.code, sid.stderr).toBe(0);
    expect(readFileSync(join(out3, 'samples-before.npy')).equals(readFileSync(join(out, 'samples-before.npy')))).toBe(true);
    expect(readFileSync(join(out3, 'samples-after.npy')).equals(readFileSync(join(out, 'samples-after.npy')))).toBe(false);
    expect(Number.isFinite(JSON.parse(sid.stdout).after.fid)).toBe(true);
    expect(readFileSync(join(out3, 'report.md'), 'utf8')).toMatch(/SiD \(α = 1\.2\), weighting sigma2: 2 steps/);
  });

  it('rejects bad input with one clear line and no partial output', async () => {
    const { dir, gan, teacher, cfg } = fixtures();
    const out = join(dir, 'bad');
    await expectCleanFailure(out, ['--stepz', '3'], /unknown flag --stepz for 'gan-refine' \(did you mean --steps\?\)/);
    await expectCleanFailure(out, ['--lr', '0'], /--lr must be > 0, got 0/);
    await expectCleanFailure(out, ['--fake-warmup', '-5'], /--fake-warmup must be ≥ 0, got -5/);
    await expectCleanFailure(out, ['--dataset', 'cifar'], /unknown dataset "cifar"; choose one of: mnist, fashion/);
    await expectCleanFailure(out, ['--generator', join(dir, 'missing.safetensors'), '--teacher', teacher], /checkpoint not found: .*missing\.safetensors/);
    await expectCleanFailure(out, ['--generator', teacher, '--teacher', teacher], /holds a denoiser, expected a generator/);
    // a teacher of another image size
    const wide = join(dir, 'teacher16.safetensors');
    saveModel(wide, createDenoiser({ kind: 'edm', sigmaData: 0.5, net: { ...NET, resolution: 16 } }, new Rng(3)));
    await expectCleanFailure(out, ['--generator', gan, '--teacher', wide, '--config', cfg], /makes 32×32×1 images but the teacher .* expects 16×16×1/);
    // a conditional teacher for an unconditional GAN
    const cond = join(dir, 'teacher-cond.safetensors');
    saveModel(cond, createDenoiser({ kind: 'edm', sigmaData: 0.5, net: { ...NET, numClasses: 10 } }, new Rng(4)));
    await expectCleanFailure(out, ['--generator', gan, '--teacher', cond, '--config', cfg], /the generator is unconditional but the teacher .* is class-conditional \(10 classes\)/);
    // the GAN's dataset disagrees with --dataset
    await expectCleanFailure(out, ['--generator', gan, '--teacher', teacher, '--dataset', 'fashion'], /was trained on mnist, not fashion/);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});
