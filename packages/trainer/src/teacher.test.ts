import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { createDenoiser, disposeModel, type DenoiserConfig } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { decodeTrainState, memoryStateStore } from './checkpoint.js';
import { trainTeacher } from './node.js';
import { TEACHER_DEFAULTS, type TeacherConfig } from './teacher.js';
import { committedFile, compareGroup, mixture, smallTeacher, toyImages, unet, values } from './trainer.fixtures.js';

describe('trainTeacher', () => {
  it('resumes exactly: 12 steps = 6 steps, stop, resume 6 steps (weights bit for bit)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-'));
    const data = { data: mixture(2).sample(new Rng(1), 512), sampleShape: [2] };
    const cfg = { ...TEACHER_DEFAULTS, steps: 12, batchSize: 32, checkpointEvery: 6 };

    const a = smallTeacher(2);
    const ra = await trainTeacher({ model: a, data, config: cfg, rng: new Rng(5) });

    const b = smallTeacher(2);
    const statePath = join(dir, 'state.safetensors');
    await trainTeacher({ model: b, data, config: { ...cfg, steps: 6 }, rng: new Rng(5), statePath });
    const c = smallTeacher(2, 99); // different init: everything must come from the checkpoint
    const rc = await trainTeacher({ model: c, data, config: cfg, rng: new Rng(12345), statePath, resume: true });

    expect(values(c)).toEqual(values(a));
    expect(values(rc.ema)).toEqual(values(ra.ema));
  });

  it('refuses to resume with different settings, and says which', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-'));
    const data = { data: mixture(2).sample(new Rng(1), 256), sampleShape: [2] };
    const statePath = join(dir, 'state.safetensors');
    await trainTeacher({ model: smallTeacher(2), data, config: { ...TEACHER_DEFAULTS, steps: 2, batchSize: 16 }, rng: new Rng(0), statePath });
    await expect(
      trainTeacher({
        model: smallTeacher(2),
        data,
        config: { ...TEACHER_DEFAULTS, steps: 4, batchSize: 16, lr: 0.5 },
        rng: new Rng(0),
        statePath,
        resume: true,
      }),
    ).rejects.toThrow(/config differs \(train\.lr: stored 0\.001, now 0\.5\)/);
  });

  it('says clearly when the training state is corrupt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-'));
    const statePath = join(dir, 'state.safetensors');
    writeFileSync(statePath, 'garbage that is not safetensors');
    const data = { data: mixture(2).sample(new Rng(1), 64), sampleShape: [2] };
    await expect(
      trainTeacher({ model: smallTeacher(2), data, config: { ...TEACHER_DEFAULTS, steps: 2, batchSize: 8 }, rng: new Rng(0), statePath, resume: true }),
    ).rejects.toThrow(/is not a valid training state/);
  });

  it('trains a conditional UNet teacher with dropout and label dropout, and resumes it exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unet-'));
    const { data, labels } = toyImages(64, new Rng(1));
    const ds = { data, labels, numClasses: 3, sampleShape: [8, 8, 1] };
    const cfg = { ...TEACHER_DEFAULTS, steps: 4, batchSize: 8, checkpointEvery: 2 };
    const a = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(0));
    await trainTeacher({ model: a, data: ds, config: cfg, rng: new Rng(2) });
    const b = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(0));
    const statePath = join(dir, 'state.safetensors');
    await trainTeacher({ model: b, data: ds, config: { ...cfg, steps: 2 }, rng: new Rng(2), statePath });
    const c = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(7));
    await trainTeacher({ model: c, data: ds, config: cfg, rng: new Rng(99), statePath, resume: true });
    expect(values(c)).toEqual(values(a));
    await expect(
      trainTeacher({ model: c, data: { ...ds, sampleShape: [64] }, config: cfg, rng: new Rng(0) }),
    ).rejects.toThrow(/samples of shape \[64\] but the model expects \[8, 8, 1\]/);
  });

  it('keeps the tensor count flat over steps', async () => {
    const model = smallTeacher(2);
    const data = { data: mixture(2).sample(new Rng(1), 256), sampleShape: [2] };
    const counts: number[] = [];
    const { ema } = await trainTeacher({ model, data, config: { ...TEACHER_DEFAULTS, steps: 30, batchSize: 16 }, rng: new Rng(2), onProgress: () => counts.push(tf.memory().numTensors) });
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
    disposeModel(ema);
    disposeModel(model);
  });

  it('resumes the committed MNIST teacher state (checkpoints/mnist/teacher-uncond-long) and trains one more step', async () => {
    const bytes = committedFile('checkpoints/mnist/teacher-uncond-long/teacher-state.safetensors');
    const state = decodeTrainState(bytes, 'teacher-state.safetensors', 'teacher');
    const { model: modelConfig, train } = state.info.config as { model: DenoiserConfig; train: TeacherConfig };
    const done = state.info.step;
    const model = createDenoiser(modelConfig, new Rng(0)); // fresh weights: all of them must come from the file
    const data = { data: new Rng(1).uniform(64 * 32 * 32, -1, 1), sampleShape: [32, 32, 1] };
    const store = memoryStateStore('teacher-state.safetensors');
    store.bytes = bytes;
    const run = (steps: number, onProgress?: (e: { step: number }) => void) =>
      trainTeacher({ model, data, config: { ...train, steps }, rng: new Rng(0), stateStore: store, resume: true, heapCeilingBytes: Infinity, onProgress });

    // Nothing left to do at the stored step: the run only loads the state. Its weights are the file's.
    const loaded = await run(done);
    expect(compareGroup(model.params, state, 'net')).toEqual({ unmatched: [], maxAbsDiff: 0 });
    expect(compareGroup(loaded.ema.params, state, 'ema')).toEqual({ unmatched: [], maxAbsDiff: 0 });
    expect(store.bytes).toBe(bytes); // and it wrote nothing
    disposeModel(loaded.ema);

    // One step more continues the count: step, Adam step and RNG move on from the file's.
    const steps: number[] = [];
    disposeModel((await run(done + 1, (e) => steps.push(e.step))).ema);
    expect(steps).toEqual([done + 1]);
    const after = decodeTrainState(store.bytes!, 'teacher-state.safetensors', 'teacher');
    expect(after.info.step).toBe(done + 1);
    expect(after.info.optimizerSteps).toEqual({ adam: state.info.optimizerSteps.adam! + 1 });
    expect(after.info.rng).not.toEqual(state.info.rng);
    expect(after.info.config).toEqual({ model: modelConfig, train: { ...train, steps: done + 1 } });
    // One Adam step from the file's weights (β = (0.9, 0.999)) moves each by at most ~32·lr, and some by more than nothing.
    const moved = compareGroup(model.params, after, 'net').maxAbsDiff;
    expect(moved).toBe(0); // the state written is the model's own weights
    const step = compareGroup(model.params, state, 'net');
    expect(step.unmatched).toEqual([]);
    expect(step.maxAbsDiff).toBeGreaterThan(0);
    expect(step.maxAbsDiff).toBeLessThan(32 * train.lr);
    disposeModel(model);
  });
});
