import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { UsageError } from '@diff-instruct/cli';
import { createClassifier, createDenoiser, createGenerator, tweedieGenerator, type UnetConfig } from '@diff-instruct/models';
import { saveModel } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import { JsonlLog } from '@diff-instruct/trainer/node';

import { checkpointSnapshots, classify, clipImages, committed, generate, imageMetrics, referenceStats, teacherSamples } from './index.js';

/** A UNet teacher and a LeNet small enough that every test takes a second or two. */
const NET: UnetConfig = { kind: 'unet', resolution: 32, channels: 1, modelChannels: 8, channelMult: [1], numBlocks: 1, attnResolutions: [], dropout: 0, embedDim: 16, numClasses: 0 };
const SHAPE = [32, 32, 1];
const PER = 32 * 32;
const cls = createClassifier({ kind: 'lenet', resolution: 32, channels: 1, numClasses: 10, featureDim: 8 }, new Rng(3));
const images = (n: number, seed: number) => clipImages(new Rng(seed).normal(n * PER));
const tmp = () => mkdtempSync(join(tmpdir(), 'di-image-eval-'));
const quietIo = () => {
  const log: string[] = [];
  return { log, io: { stdout: (s: string) => log.push(s), stderr: (s: string) => log.push(s) } };
};

describe('image metrics', () => {
  it('clipImages clips to [-1, 1] in place', () => {
    const x = new Float32Array([-3, -1, 0.25, 1, 5.5]);
    expect(clipImages(x)).toBe(x);
    expect([...x]).toEqual([-1, -1, 0.25, 1, 1]);
  });

  it('classify gives features and class probabilities; FID of a set against its own statistics is ~0', () => {
    const n = 40;
    const x = images(n, 1);
    const { features, probs, d } = classify(cls, x, n, SHAPE);
    expect(d).toBe(8);
    expect(features).toHaveLength(n * 8);
    for (let i = 0; i < n; i++) expect(probs.subarray(i * 10, (i + 1) * 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    const ref = referenceStats(cls, { images: x, n, height: 32, width: 32, channels: 1 });
    const same = imageMetrics(cls, ref, x, n, SHAPE);
    expect(same.fid).toBeLessThan(1e-2);
    expect(same.classFractions.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(same.accuracy).toBeUndefined();
    const other = imageMetrics(cls, ref, images(n, 2).map((v) => v * 0.2 + 0.5), n, SHAPE, new Int32Array(n));
    expect(other.fid).toBeGreaterThan(same.fid);
    expect(other.accuracy).toBeGreaterThanOrEqual(0);
    expect(other.is).toBeGreaterThanOrEqual(1);
  });
});

describe('samples', () => {
  it('generate: fixed latents give the same samples, clipped, with labels in turn when conditional', () => {
    const gen = createGenerator({ kind: 'mlp-generator', latentDim: 3, outDim: 4, hidden: [8], numClasses: 2 }, new Rng(5));
    const a = generate(gen, 150, new Rng(9), Int32Array.from({ length: 150 }, (_, i) => i % 2));
    const b = generate(gen, 150, new Rng(9), Int32Array.from({ length: 150 }, (_, i) => i % 2));
    expect(a).toHaveLength(600);
    expect([...a]).toEqual([...b]);
    expect(a.every((v) => v >= -1 && v <= 1)).toBe(true);
  });

  it('teacherSamples draws once, then reads the cache beside the teacher', () => {
    const dir = tmp();
    const path = join(dir, 'teacher.safetensors');
    saveModel(path, createDenoiser({ kind: 'edm', sigmaData: 0.5, net: NET }, new Rng(2)));
    const first = quietIo();
    const t = teacherSamples(createDenoiser({ kind: 'edm', sigmaData: 0.5, net: NET }, new Rng(2)), path, 1, 3, 0, undefined, first.io);
    expect(t.nfe).toBe(1);
    expect(t.images).toHaveLength(3 * PER);
    expect(first.log.join('')).toMatch(/teacher 1 NFE: sampled 3 in .* s, cached as /);
    expect(readdirSync(join(dir, '.sample-cache')).sort()).toEqual([expect.stringMatching(/^teacher-[0-9a-f]{12}-nfe1-seed0-n3\.json$/), expect.stringMatching(/\.npy$/)]);
    const second = quietIo();
    const again = teacherSamples(createDenoiser({ kind: 'edm', sigmaData: 0.5, net: NET }, new Rng(2)), path, 1, 3, 0, undefined, second.io);
    expect(second.log.join('')).toMatch(/teacher 1 NFE: cache hit/);
    expect([...again.images]).toEqual([...t.images]);
  });

  it('checkpointSnapshots writes the grid of every checkpoint and logs a point of the FID curve', () => {
    const out = tmp();
    const teacher = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: NET }, new Rng(2));
    const refStats = referenceStats(cls, { images: images(20, 4), n: 20, height: 32, width: 32, channels: 1 });
    const log = new JsonlLog(join(out, 'log.jsonl'));
    const snap = checkpointSnapshots({ cls, refStats, shape: SHAPE, labelsFor: () => undefined, curveSamples: 10, seed: 0, out, log, maxRows: 2, title: 't' });
    snap(0, tweedieGenerator(teacher, 2.5));
    snap(5, tweedieGenerator(teacher, 2.5));
    expect(existsSync(join(out, 'grid.png'))).toBe(true);
    const curve = JsonlLog.read(join(out, 'log.jsonl'), 'fid-curve');
    expect(curve.map((r) => r.step)).toEqual([0, 5]);
    expect(curve[0]!.fid).toBe(curve[1]!.fid); // same generator, same latents
  });
});

describe('committed checkpoints', () => {
  it('names the command that makes a missing one', () => {
    expect(() => committed('no-such-dataset', 'classifier', false)).toThrow(UsageError);
    expect(() => committed('no-such-dataset', 'gan', true)).toThrow(/no committed GAN generator for no-such-dataset at .*gan-cond.*; pass --generator FILE, or train one with `distill gan --conditional --dataset no-such-dataset/);
  });

  it("MNIST's default unconditional teacher is the long-trained one; other datasets use teacher-uncond", () => {
    expect(committed('mnist', 'teacher', false)).toMatch(/checkpoints[\\/]mnist[\\/]teacher-uncond-long[\\/]teacher\.safetensors$/);
    expect(committed('mnist', 'teacher', true)).toMatch(/checkpoints[\\/]mnist[\\/]teacher-cond[\\/]teacher\.safetensors$/);
    expect(() => committed('no-such-dataset', 'teacher', false)).toThrow(/no-such-dataset[\\/]teacher-uncond[\\/]teacher\.safetensors/);
  });
});
