import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { createDenoiser, type DenoiserModel } from '@diff-instruct/models';
import { GaussianMixture, Rng } from '@diff-instruct/sde';
import { tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { scoreDistill } from './node.js';
import { SCORE_DISTILL_DEFAULTS, type ScoreDistillConfig } from './scoreDistill.js';

const DIM = 3;
/** Two modes ±1.5·e1 with std 0.3: the exact denoiser is the teacher. */
const mixture = new GaussianMixture([
  { mean: [1.5, 0, 0], std: 0.3, weight: 1 },
  { mean: [-1.5, 0, 0], std: 0.3, weight: 1 },
]);
const teacher = { denoiser: mixture.denoiser };

/** A "Dirac image": one point x ∈ R³, rendered as `views` copies (independent noise draws per copy). */
function dirac(start = [0.4, 0.3, -0.2], views = 8) {
  const x = tf.variable(tf.tensor2d([start]), true, `dirac-${Math.random()}`);
  const render = () => ({ x0: tf.tile(x, [views, 1]) });
  return { params: { x }, render, value: () => Array.from(x.dataSync()) };
}

const dist = (a: number[], b: number[]) => Math.hypot(...a.map((v, i) => v - b[i]!));
const MODE = [1.5, 0, 0];

/** Noise levels annealed from logU[0.02, 3] to logU[0.1, 0.6] over the first half: a coarse pull, then the mode. */
const CFG: ScoreDistillConfig = { ...SCORE_DISTILL_DEFAULTS, steps: 300, lr: 0.02, range: [0.02, 3], rangeEnd: [0.1, 0.6], annealEnd: 0.5, checkpointEvery: 1000 };

/** A fake score that is exactly the Dirac's: D(x; σ) = x0 (its one variable only keeps DSM well-posed). */
function exactDiracFake(x: tf.Variable): DenoiserModel {
  const dummy = tf.variable(tf.zeros([1]), true, `dummy-${Math.random()}`);
  return {
    config: { kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: DIM, hidden: [1], embedDim: 2, numClasses: 0 } },
    params: { dummy },
    denoise: (xt) => tf.add(tf.broadcastTo(x, xt.shape), tf.mul(dummy, 0)),
    features: (xt) => tf.broadcastTo(x, xt.shape),
  };
}

describe('scoreDistill', () => {
  it('SDS drives a Dirac image to the mode of an analytic Gaussian-mixture teacher', async () => {
    const d = dirac();
    const before = dist(d.value(), MODE);
    await scoreDistill({ params: d.params, render: d.render, teacher, config: CFG, rng: new Rng(1) });
    const after = dist(d.value(), MODE);
    expect(before).toBeGreaterThan(1);
    expect(after, String(d.value())).toBeLessThan(0.1);
    d.params.x.dispose();
  });

  it('VSD with the exact Dirac fake takes the SDS step (Corollary 3.4)', async () => {
    const a = dirac();
    const b = dirac();
    const one = { ...CFG, steps: 1 };
    await scoreDistill({ params: a.params, render: a.render, teacher, config: one, rng: new Rng(3) });
    const fake = exactDiracFake(b.params.x);
    await scoreDistill({ params: b.params, render: b.render, teacher, fake, config: { ...one, mode: 'vsd' }, rng: new Rng(3) });
    const [va, vb] = [a.value(), b.value()];
    expect(dist(va, [0.4, 0.3, -0.2])).toBeGreaterThan(0.01); // it moved
    for (let i = 0; i < DIM; i++) expect(vb[i]).toBeCloseTo(va[i]!, 4);
  });

  it('VSD with a learned fake behaves like SDS on a Dirac: the same mode', async () => {
    const d = dirac();
    const fake = createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: DIM, hidden: [32, 32], embedDim: 16, numClasses: 0 } }, new Rng(4));
    const losses: number[] = [];
    await scoreDistill({
      params: d.params,
      render: d.render,
      teacher,
      fake,
      config: { ...CFG, mode: 'vsd', lrFake: 1e-2, fakeStepsPerStep: 2 },
      rng: new Rng(5),
      onProgress: (e) => losses.push(e.losses.fakeLoss!),
    });
    expect(dist(d.value(), MODE)).toBeLessThan(0.25);
    expect(losses.every(Number.isFinite)).toBe(true);
  });

  it('keeps the tensor count flat over steps (SDS and VSD) and resumes exactly', async () => {
    for (const mode of ['sds', 'vsd'] as const) {
      const d = dirac();
      const fake = mode === 'vsd' ? exactDiracFake(d.params.x) : undefined;
      const counts: number[] = [];
      await scoreDistill({
        params: d.params,
        render: d.render,
        teacher,
        fake,
        config: { ...CFG, mode, steps: 12, checkpointEvery: 1 },
        rng: new Rng(6),
        onCheckpoint: () => counts.push(tf.memory().numTensors),
      });
      expect(counts).toHaveLength(12);
      expect(new Set(counts.slice(1)).size, `${mode}: ${counts.join(' ')}`).toBe(1);
    }

    // 8 steps at once = 4 steps, stop, 4 more from the state file (bit for bit), with a VSD fake.
    const dir = mkdtempSync(join(tmpdir(), 'score-distill-'));
    const statePath = join(dir, 'state.safetensors');
    const newFake = () => createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: DIM, hidden: [8], embedDim: 4, numClasses: 0 } }, new Rng(7));
    // A fixed noise range: an annealed one follows `steps`, which a resumed run may change.
    const cfg = { ...CFG, mode: 'vsd' as const, steps: 8, checkpointEvery: 4, rangeEnd: null };
    const a = dirac();
    const fa = newFake();
    await scoreDistill({ params: a.params, render: a.render, teacher, fake: fa, config: cfg, rng: new Rng(8) });
    const b = dirac();
    await scoreDistill({ params: b.params, render: b.render, teacher, fake: newFake(), config: { ...cfg, steps: 4 }, rng: new Rng(8), statePath });
    const c = dirac([9, 9, 9]);
    const fc = createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: DIM, hidden: [8], embedDim: 4, numClasses: 0 } }, new Rng(99));
    await scoreDistill({ params: c.params, render: c.render, teacher, fake: fc, config: cfg, rng: new Rng(1234), statePath, resume: true });
    expect(c.value()).toEqual(a.value());
    expect(Array.from(Object.values(fc.params)[0]!.dataSync())).toEqual(Array.from(Object.values(fa.params)[0]!.dataSync()));
  });

  it('says what is wrong with its inputs', async () => {
    const d = dirac();
    await expect(scoreDistill({ params: d.params, render: d.render, teacher, config: { ...CFG, mode: 'vsd' }, rng: new Rng(0) })).rejects.toThrow(
      /VSD needs a fake score/,
    );
    await expect(scoreDistill({ params: d.params, render: d.render, teacher, config: { ...CFG, range: null }, rng: new Rng(0) })).rejects.toThrow(
      /rangeEnd anneals from range/,
    );
    await expect(scoreDistill({ params: {}, render: d.render, teacher, config: CFG, rng: new Rng(0) })).rejects.toThrow(/params is empty/);
    expect(tol(1)).toBeGreaterThan(0);
  });
});
