import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { createClassifier, createDenoiser, disposeModel, tweedieGenerator } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { CLASSIFIER_DEFAULTS } from './classifier.js';
import { DIFF_INSTRUCT_DEFAULTS } from './diffInstruct.js';
import { HeapCeilingError, TrainingError } from './loop.js';
import { WASM_HEAP_CEILING_BYTES, estimateStepBytes, heapCeilingProblem } from './memory.js';
import { diffInstruct, scoreDistill, trainClassifier, trainTeacher } from './node.js';
import { SCORE_DISTILL_DEFAULTS } from './scoreDistill.js';
import { TEACHER_DEFAULTS } from './teacher.js';

const teacherOf = (seed: number) =>
  createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: 2, hidden: [64, 64], embedDim: 16, numClasses: 0 } }, new Rng(seed));

describe('estimateStepBytes', () => {
  it('recovers an affine peak exactly: fixed part and bytes per sample', async () => {
    const before = tf.memory().numBytes;
    // Peak while the add runs: 5,000 fixed floats and the scalar 1 + the b×1,000 input + the output.
    const probe = (b: number) => {
      tf.ones([5000]);
      tf.add(tf.ones([b, 1000]), 1);
    };
    const e = await estimateStepBytes(probe, 100);
    expect(e.perSampleBytes).toBe(8000);
    expect(e.fixedBytes).toBe(before + 20004);
    expect(e.bytes).toBe(before + 20004 + 8000 * 100);
    const small = await estimateStepBytes(probe, 3); // measured directly
    expect(small.bytes).toBe(before + 20004 + 8000 * 3);
    expect(tf.memory().numBytes).toBe(before); // the probes leave nothing behind
  });

  it('rejects a batch size that is not a positive integer', async () => {
    await expect(estimateStepBytes(() => {}, 0)).rejects.toThrow(/batch size must be a positive integer, got 0/);
  });

  it('says what does not fit, the largest batch that does, and the fix', () => {
    const e = { batchSize: 4096, fixedBytes: 2 ** 30, perSampleBytes: 2 ** 20, bytes: 2 ** 30 + 4096 * 2 ** 20 };
    const msg = heapCeilingProblem('teacher', e)!;
    expect(msg).toMatch(/^teacher: one step at batch 4096 needs an estimated 5\.00 GiB/);
    expect(msg).toMatch(/1\.00 GiB of weights, optimiser state and gradients \+ 1\.00 MiB per sample/);
    expect(msg).toMatch(/over the 3\.80 GiB ceiling of the wasm heap/);
    expect(msg).toContain(`use a batch size of ${Math.floor((WASM_HEAP_CEILING_BYTES - 2 ** 30) / 2 ** 20)} or less`);
    expect(heapCeilingProblem('teacher', { ...e, batchSize: 64, bytes: 2 ** 30 + 64 * 2 ** 20 })).toBeNull();
    expect(heapCeilingProblem('x', { batchSize: 1, fixedBytes: 5 * 2 ** 30, perSampleBytes: 10, bytes: 5 * 2 ** 30 })).toMatch(
      /weights and optimiser state alone do not fit: use a smaller model/,
    );
  });
});

describe('the heap-ceiling refusal of the trainers', () => {
  const weights = (m: { params: Record<string, tf.Variable> }) => Object.values(m.params).map((v) => Array.from(v.dataSync()));

  it('diffInstruct: refuses before step 1, names the largest batch that fits, and that batch runs', async () => {
    const teacher = teacherOf(0);
    const generator = tweedieGenerator(teacher, 2.5);
    const run = async (batchSize: number, heapCeilingBytes: number, statePath?: string) => {
      const r = await diffInstruct({
        teacher,
        generator,
        config: { ...DIFF_INSTRUCT_DEFAULTS, steps: 1, batchSize, checkpointEvery: 1 },
        rng: new Rng(1),
        heapCeilingBytes,
        statePath,
      });
      disposeModel(r.ema);
      disposeModel(r.fake);
    };
    const refusal = (p: Promise<void>) => p.then(() => null, (e: unknown) => e as HeapCeilingError);
    // The estimate at batch 256, read from a refusal at a ceiling of 0 bytes.
    const e = (await refusal(run(256, 0)))!.estimate;
    expect(e.perSampleBytes).toBeGreaterThan(0);
    // A ceiling where exactly 100 samples fit.
    const ceiling = e.fixedBytes + 100.5 * e.perSampleBytes;
    const before = weights(generator);
    const statePath = join(mkdtempSync(join(tmpdir(), 'heap-')), 'di-state.safetensors');
    const err = await refusal(run(256, ceiling, statePath));
    expect(err).toBeInstanceOf(TrainingError);
    expect(err!.message).toMatch(/^diff-instruct: one step at batch 256 needs an estimated .* over the .* ceiling of the wasm heap/);
    expect(err!.message).toContain('Nothing was trained. To fix it, use a batch size of 100 or less');
    // Nothing was trained and nothing was written.
    expect(weights(generator)).toEqual(before);
    expect(existsSync(statePath)).toBe(false);
    await run(100, ceiling);
    expect(weights(generator)).not.toEqual(before);
    expect(await refusal(run(101, ceiling))).toBeInstanceOf(HeapCeilingError);
  });

  it('trainTeacher refuses too, and the check leaves the run RNG alone', async () => {
    const data = { data: new Rng(2).normal(2 * 512), sampleShape: [2] };
    await expect(
      trainTeacher({ model: teacherOf(3), data, config: { ...TEACHER_DEFAULTS, steps: 1, batchSize: 10_000_000 }, rng: new Rng(4), heapCeilingBytes: WASM_HEAP_CEILING_BYTES }),
    ).rejects.toThrow(/^teacher: one step at batch 10000000 needs an estimated .* use a batch size of \d+ or less/);
    // The probe draws from its own RNG: with the check and without it, the same weights.
    const a = teacherOf(3);
    const b = teacherOf(3);
    const cfg = { ...TEACHER_DEFAULTS, steps: 3, batchSize: 16 };
    disposeModel((await trainTeacher({ model: a, data, config: cfg, rng: new Rng(4), heapCeilingBytes: WASM_HEAP_CEILING_BYTES })).ema);
    disposeModel((await trainTeacher({ model: b, data, config: cfg, rng: new Rng(4), heapCeilingBytes: Infinity })).ema);
    expect(weights(a)).toEqual(weights(b));
  });

  it('trainClassifier and scoreDistill refuse too (they had no check); scoreDistill, whose renderer sets the step size, names no batch', async () => {
    const model = createClassifier({ kind: 'lenet', resolution: 8, channels: 1, numClasses: 3, featureDim: 8 }, new Rng(1));
    const images = { data: new Rng(2).uniform(32 * 64, -1, 1), labels: Int32Array.from({ length: 32 }, (_, i) => i % 3), numClasses: 3, sampleShape: [8, 8, 1] };
    const before = weights(model);
    await expect(
      trainClassifier({ model, data: images, config: { ...CLASSIFIER_DEFAULTS, steps: 1, batchSize: 16 }, rng: new Rng(3), heapCeilingBytes: 0 }),
    ).rejects.toThrow(/^classifier: one step at batch 16 needs an estimated .* Nothing was trained/);
    expect(weights(model)).toEqual(before);

    const x = tf.variable(tf.tensor2d([[0.4, 0.3, -0.2]]));
    const teacher = createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: 3, hidden: [8], embedDim: 4, numClasses: 0 } }, new Rng(4));
    for (const mode of ['sds', 'vsd'] as const) {
      const err = (await scoreDistill({
        params: { x },
        render: () => ({ x0: tf.tile(x, [4, 1]) }),
        teacher,
        config: { ...SCORE_DISTILL_DEFAULTS, mode, steps: 1 },
        rng: new Rng(5),
        heapCeilingBytes: 0,
      }).catch((e: unknown) => e)) as HeapCeilingError;
      expect(err).toBeInstanceOf(HeapCeilingError);
      expect(err.message).toMatch(/^score-distill: one step needs an estimated .* Nothing was trained. To fix it, make each step smaller \(fewer views or samples per step\)/);
      expect(err.estimate.bytes).toBeGreaterThan(0);
    }
    expect(Array.from(x.dataSync())).toEqual([expect.closeTo(0.4, 6), expect.closeTo(0.3, 6), expect.closeTo(-0.2, 6)]);
    x.dispose();
    disposeModel(model);
    disposeModel(teacher);
  });

  it('estimates the peak of a real step to within 25%', async () => {
    const teacher = teacherOf(5);
    const generator = tweedieGenerator(teacher, 2.5);
    const config = { ...DIFF_INSTRUCT_DEFAULTS, steps: 1, batchSize: 512 };
    const err = (await diffInstruct({ teacher, generator, config, rng: new Rng(1), heapCeilingBytes: 0 }).catch((e: unknown) => e)) as HeapCeilingError;
    const estimate = err.estimate.bytes;
    // The check's probes run at batch 1 and 4, far below the peak of the step at 512.
    const info = await tf.profile(async () => {
      const r = await diffInstruct({ teacher, generator, config, rng: new Rng(1), heapCeilingBytes: Infinity });
      disposeModel(r.ema);
      disposeModel(r.fake);
    });
    expect(estimate / info.peakBytes).toBeGreaterThan(0.75);
    expect(estimate / info.peakBytes).toBeLessThan(1.25);
  });
});
