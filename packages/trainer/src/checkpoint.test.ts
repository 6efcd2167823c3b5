import * as tf from '@tensorflow/tfjs';
import { createDenoiser, type DenoiserModel } from '@diff-instruct/models';
import { GaussianMixture, Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

// The main entry, as a web page imports it: state and log in memory, no file system.
import { MemoryLog, TEACHER_DEFAULTS, checkResumeConfig, memoryStateStore, trainTeacher } from './index.js';

const values = (m: { params: Record<string, tf.Variable> }) => Object.values(m.params).map((v) => Array.from(v.dataSync()));

function smallTeacher(seed = 0): DenoiserModel {
  return createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: 2, hidden: [16, 16], embedDim: 8, numClasses: 0 } }, new Rng(seed));
}

const data = {
  data: new GaussianMixture([
    { mean: [1.5, 0], std: 0.3, weight: 1 },
    { mean: [-1.5, 0], std: 0.3, weight: 1 },
  ]).sample(new Rng(1), 256),
  sampleShape: [2],
};

describe('state store and log from the main entry', () => {
  it('resumes exactly from a memory store, and the log reads like an uninterrupted one', async () => {
    const cfg = { ...TEACHER_DEFAULTS, steps: 20, batchSize: 16, checkpointEvery: 10 };
    const a = smallTeacher();
    const logA = new MemoryLog();
    await trainTeacher({ model: a, data, config: cfg, rng: new Rng(5), log: logA });

    const store = memoryStateStore('page');
    const log = new MemoryLog();
    await trainTeacher({ model: smallTeacher(), data, config: { ...cfg, steps: 10 }, rng: new Rng(5), stateStore: store, log });
    expect(store.bytes).toBeDefined();
    const c = smallTeacher(99);
    await trainTeacher({ model: c, data, config: cfg, rng: new Rng(777), stateStore: store, log, resume: true });
    expect(values(c)).toEqual(values(a));
    expect(logA.records.map((r) => r.step)).toEqual([10, 20]);
    expect(log.records.map((r) => r.step)).toEqual([10, 20]);
  });

  it('a statePath without a store says to use the ./node entry', async () => {
    await expect(
      trainTeacher({ model: smallTeacher(), data, config: { ...TEACHER_DEFAULTS, steps: 1, batchSize: 8 }, rng: new Rng(0), statePath: 'state.safetensors' }),
    ).rejects.toThrow("trainTeacher: statePath (state.safetensors) is a file: import trainTeacher from '@diff-instruct/trainer/node'");
  });
});

describe('checkResumeConfig', () => {
  it('accepts a key added since the state was written only at its neutral value', () => {
    const stored = { train: { lr: 1 } };
    expect(() => checkResumeConfig(stored, { train: { lr: 1, warm: 0 } }, 'p', ['steps'], { 'train.warm': 0 })).not.toThrow();
    expect(() => checkResumeConfig(stored, { train: { lr: 1, warm: 2 } }, 'p', ['steps'], { 'train.warm': 0 })).toThrow(
      /cannot resume from p: the config differs \(train\.warm: stored \(none\), now 2\)/,
    );
    expect(() => checkResumeConfig(stored, { train: { lr: 1, warm: 0 } }, 'p')).toThrow(/train\.warm: stored \(none\), now 0/);
    // A key the stored config has is compared as usual.
    expect(() => checkResumeConfig({ train: { lr: 1, warm: 1 } }, { train: { lr: 1, warm: 0 } }, 'p', ['steps'], { 'train.warm': 0 })).toThrow(/train\.warm: stored 1, now 0/);
  });
});
